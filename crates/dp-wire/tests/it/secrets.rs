//! Sentinel secrets: every path of a call runs with `--debug` logging captured, and neither the log nor any
//! `Debug`/`Display` output may contain the secret key, the session token, a signature, the full access key id, or
//! the value of a `*`-keyed pipeline field.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dp_wire::{Client, Settings};

use crate::server::{Action, Server};
use crate::support::{env_with, op};

const KEY_ID: &str = "AKIDSENTINELKEY00042";
const SECRET: &str = "SENTINEL/secret+key/0123456789abcdefXYZ";
const TOKEN: &str = "SENTINELsessionTOKEN//0123456789==";
const PASSWORD: &str = "SENTINEL-hunter2-password";

fn sentinel_env() -> dp_wire::Environment {
    env_with(&[
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
    ])
}

fn assert_clean(text: &str, signatures: &[String], what: &str) {
    for (label, secret) in [
        ("secret key", SECRET),
        ("session token", TOKEN),
        ("access key id", KEY_ID),
        ("*password", PASSWORD),
    ] {
        assert!(
            !text.contains(secret),
            "{what} contains the {label}:\n{text}"
        );
    }
    for signature in signatures {
        assert!(
            !text.contains(signature.as_str()),
            "{what} contains a signature:\n{text}"
        );
    }
}

#[tokio::test]
async fn debug_output_and_debug_impls_never_show_secrets() {
    let pipeline_body = format!(
        r#"{{"pipelineObjects":[{{"id":"Db","name":"Db","fields":[{{"key":"*password","stringValue":"{PASSWORD}"}},{{"key":"username","stringValue":"u"}}]}}],
            "parameterValues":[{{"id":"*myPassword","stringValue":"{PASSWORD}"}}]}}"#
    );
    let input: serde_json::Value = serde_json::from_str(&pipeline_body).unwrap();
    // Success (echoing the secret fields), retries, a modeled error, invalid JSON, a skew error, a timeout.
    let script = vec![
        Action::ok(&pipeline_body),
        Action::error(500, "InternalServiceError", "boom"),
        Action::status(503, "<html>unavailable</html>"),
        Action::ok("{}"),
        Action::error(400, "InvalidRequestException", "bad"),
        Action::ok("not json at all"),
        Action::error(400, "InvalidSignatureException", "Signature expired")
            .with_header("Date", "Sun, 29 Nov 2026 07:40:59 GMT"),
        Action::ok("{}"),
        Action::Drop,
        Action::Delay(Duration::from_millis(500)),
    ];
    let server = Server::start(script).await;
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let settings = Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url.clone()),
        debug: true,
        read_timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let client = Client::with_environment(settings.clone(), sentinel_env())
        .unwrap()
        .with_backoff_base(Duration::from_millis(1))
        .with_log_sink(Arc::new(move |line: &str| {
            let mut log = sink.lock().unwrap();
            log.push_str(line);
            log.push('\n');
        }));
    let mut printed = Vec::new();
    for name in [
        "GetPipelineDefinition",
        "PutPipelineDefinition",
        "PutPipelineDefinition",
        "PutPipelineDefinition",
        "PutPipelineDefinition",
        "PutPipelineDefinition",
    ] {
        // Outputs are the caller's data (the CLI prints them as the service sent them); only errors are checked.
        if let Err(error) = client.call_json(op(name), &input).await {
            printed.push(format!("{error} {error:?}"));
        }
    }
    let recorded = server.recorded();
    assert!(
        recorded.len() >= 9,
        "every path ran: {} requests",
        recorded.len()
    );
    let signatures: Vec<String> = recorded
        .iter()
        .filter_map(|r| r.header("authorization"))
        .map(|a| a.rsplit("Signature=").next().unwrap().to_string())
        .collect();
    assert!(
        recorded
            .iter()
            .all(|r| r.header("x-amz-security-token") == Some(TOKEN)),
        "the token was sent"
    );
    assert!(
        recorded
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(PASSWORD)),
        "the field was sent"
    );

    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("AKID…0042"),
        "the key id appears masked:\n{log}"
    );
    assert!(log.contains("** redacted"), "redaction markers are present");
    assert!(log.contains("retrying"), "retries are logged");
    assert!(
        log.contains("credentials=AKID…0042 (environment)"),
        "environment keys are read directly: {log}"
    );
    assert!(
        !log.contains("aws-config"),
        "environment keys never start aws-config: {log}"
    );
    assert_clean(&log, &signatures, "the debug log");
    assert_clean(
        &printed.join("\n"),
        &signatures,
        "errors and outputs (Debug and Display)",
    );
    assert_clean(
        &format!("{client:?} {settings:?} {:?}", sentinel_env()),
        &signatures,
        "Debug of Client, Settings, Environment",
    );
}

#[test]
fn signing_output_debug_is_redacted() {
    let credentials =
        aws_credential_types::Credentials::new(KEY_ID, SECRET, Some(TOKEN.into()), None, "test");
    let headers = [("host", "example.com")];
    let signed = dp_wire::signing::sign_request(
        &dp_wire::signing::SigningRequest {
            method: "POST",
            url: "https://example.com/",
            headers: &headers,
            body: b"{}",
        },
        &credentials,
        &dp_wire::signing::SigningScope {
            region: "us-east-1",
            service: "datapipeline",
            time: std::time::SystemTime::now(),
        },
    )
    .unwrap();
    assert_clean(
        &format!("{signed:?}"),
        std::slice::from_ref(&signed.signature),
        "Debug of Signed",
    );
}

#[tokio::test]
async fn credential_process_secrets_stay_out_of_the_debug_log() {
    let server = Server::start(vec![Action::ok("{}")]).await;
    let home = crate::support::temp_dir("sentinel-process");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let script = home.join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"{KEY_ID}\", \"SecretAccessKey\": \"{SECRET}\", \"SessionToken\": \"{TOKEN}\"}}'\n"
        ),
    )
    .unwrap();
    assert!(
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        home.join(".aws/config"),
        format!("[profile p]\ncredential_process = {}\n", script.display()),
    )
    .unwrap();
    let env = dp_wire::Environment::from_vars([
        ("HOME".to_string(), home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ]);
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let settings = Settings {
        region: Some("us-east-1".into()),
        profile: Some("p".into()),
        endpoint_url: Some(server.url.clone()),
        debug: true,
        ..Default::default()
    };
    let client = Client::with_environment(settings, env)
        .unwrap()
        .with_log_sink(Arc::new(move |line: &str| {
            let mut log = sink.lock().unwrap();
            log.push_str(line);
            log.push('\n');
        }));
    client
        .call_json(op("ListPipelines"), &serde_json::json!({}))
        .await
        .unwrap();
    let signature = server.recorded()[0]
        .header("authorization")
        .unwrap()
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_string();
    let log = log.lock().unwrap().clone();
    assert!(log.contains("profile p via aws-config"), "{log}");
    assert_clean(&log, &[signature], "the debug log with credential_process");
}
