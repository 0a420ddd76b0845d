//! Authentication: valid signatures pass; forged, tampered, unknown-key, missing and stale ones are refused with
//! the codes AWS uses.

use std::time::{Duration, SystemTime};

use dp_local::Config;
use dp_local::config::parse_credentials_file;
use serde_json::json;

use crate::support::*;

fn keys(access_key_id: &str, secret: &str, time: SystemTime) -> Signing {
    Signing::Keys {
        access_key_id: access_key_id.into(),
        secret: secret.into(),
        time,
    }
}

async fn check(client: &Client, signing: Signing, code: Option<&str>, message: &str) {
    let got = client
        .call_with("ListPipelines", b"{}".to_vec(), signing.clone())
        .await;
    match (code, got) {
        (None, Ok(_)) => {}
        (Some(code), Err(f)) => {
            assert_eq!(
                (f.status, f.code.as_str()),
                (400, code),
                "{signing:?}: {f:?}"
            );
            assert!(f.message.contains(message), "{signing:?}: {f:?}");
        }
        (want, got) => panic!("{signing:?}: expected {want:?}, got {got:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_verified() {
    let server = crate::server(1.0, 1.0);
    let client = Client::new(&server.url());
    let now = SystemTime::now();
    let minutes = |m: u64| Duration::from_secs(60 * m);
    check(&client, keys(AKID, SECRET, now), None, "").await;
    check(&client, keys(AKID, SECRET, now - minutes(4)), None, "").await;
    check(
        &client,
        keys(AKID, "forged-secret", now),
        Some("InvalidSignatureException"),
        "does not match the signature you provided",
    )
    .await;
    check(
        &client,
        keys("AKIDUNKNOWN", SECRET, now),
        Some("UnrecognizedClientException"),
        "security token included in the request is invalid",
    )
    .await;
    check(
        &client,
        Signing::None,
        Some("MissingAuthenticationTokenException"),
        "Missing Authentication Token",
    )
    .await;
    check(
        &client,
        keys(AKID, SECRET, now - minutes(6)),
        Some("InvalidSignatureException"),
        "Signature expired",
    )
    .await;
    check(
        &client,
        keys(AKID, SECRET, now + minutes(6)),
        Some("InvalidSignatureException"),
        "Signature not yet current",
    )
    .await;

    let tampered = client
        .call_tampered(
            "ListPipelines",
            b"{}".to_vec(),
            br#"{"marker": "0"}"#.to_vec(),
            Signing::example(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        tampered.code, "InvalidSignatureException",
        "a body changed after signing: {tampered:?}"
    );

    let garbage = http::Request::builder()
        .method("POST")
        .uri(format!("{}/", server.url()))
        .header("x-amz-target", "DataPipeline.ListPipelines")
        .header("authorization", "Bearer nonsense")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let failure = client.send(garbage).await.unwrap_err();
    assert_eq!(failure.code, "IncompleteSignatureException", "{failure:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_file_replaces_the_example_pair() {
    let file = "[default]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = otherSecret\n\n[session]\naws_access_key_id=AKIDTOKEN\naws_secret_access_key=s\naws_session_token=tok\n";
    let credentials = parse_credentials_file(file).unwrap();
    assert_eq!(credentials.len(), 2);
    assert!(
        !format!("{credentials:?}").contains("otherSecret"),
        "Debug redacts secrets"
    );
    let server = crate::pgmode::bind(Config {
        credentials,
        ..Config::default()
    });
    let client = Client::new(&server.url());
    let now = SystemTime::now();
    check(&client, keys("AKIDOTHER", "otherSecret", now), None, "").await;
    check(
        &client,
        keys(AKID, SECRET, now),
        Some("UnrecognizedClientException"),
        "",
    )
    .await;
    // A key that needs a session token is refused without one.
    check(
        &client,
        keys("AKIDTOKEN", "s", now),
        Some("UnrecognizedClientException"),
        "",
    )
    .await;
    assert!(
        parse_credentials_file("aws_access_key_id = x\n").is_err(),
        "a key outside a section"
    );
    assert!(
        parse_credentials_file("[a]\naws_access_key_id = x\n").is_err(),
        "a key without its secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_accepts_anything() {
    let server = crate::pgmode::bind(Config {
        auth: false,
        ..Config::default()
    });
    let client = Client::new(&server.url());
    let out = client
        .call_with(
            "CreatePipeline",
            json!({"name": "n", "uniqueId": "u"})
                .to_string()
                .into_bytes(),
            Signing::None,
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    check(
        &client,
        keys("AKIDUNKNOWN", "x", SystemTime::now()),
        None,
        "",
    )
    .await;
}
