//! HTTP proxies: plain http requests go to the proxy in absolute form, https is tunnelled with `CONNECT`, `NO_PROXY`
//! bypasses, and proxy credentials are sent but never logged.

use std::sync::{Arc, Mutex};

use dp_wire::{Client, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::{Action, Server};
use crate::support::{env_with, op, report_task_progress, settings};

#[tokio::test]
async fn plain_http_through_a_proxy() {
    // The scripted server plays the proxy: it sees the absolute URL of a host that is never resolved.
    let proxy = Server::start(vec![]).await;
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let settings = Settings {
        debug: true,
        ..settings("http://dp.example:8080")
    };
    let client = Client::with_environment(
        settings,
        env_with(&[(
            "HTTP_PROXY",
            &proxy.url.replace("http://", "http://user:p%40ss@"),
        )]),
    )
    .unwrap()
    .with_log_sink(Arc::new(move |line: &str| {
        sink.lock().unwrap().push_str(line)
    }));
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let request = &proxy.recorded()[0];
    assert_eq!(request.path, "http://dp.example:8080/");
    assert_eq!(request.header("host"), Some("dp.example:8080"));
    // Basic base64("user:p@ss").
    assert_eq!(
        request.header("proxy-authorization"),
        Some("Basic dXNlcjpwQHNz")
    );
    let jobs = vec![crate::sigv4::botocore_job(
        "http://dp.example:8080/",
        request,
        None,
        "us-east-1",
    )];
    assert_eq!(
        crate::sigv4::botocore_disagreements(&jobs),
        Vec::<String>::new(),
        "signed for the target host"
    );
    let log = log.lock().unwrap().clone();
    assert!(
        !log.contains("dXNlcjpwQHNz") && !log.contains("p%40ss"),
        "proxy credentials in the log: {log}"
    );
}

/// A `CONNECT` proxy that tunnels to `127.0.0.1:<port of the requested authority>` and records request lines.
async fn start_connect_proxy(status_line: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    start_connect_proxy_to(status_line, None).await
}

/// The same, tunnelling every `CONNECT` to `127.0.0.1:<upstream>` when given, whatever host was asked for.
async fn start_connect_proxy_to(
    status_line: &'static str,
    upstream: Option<u16>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        for _ in 0..10 {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let line = head.lines().next().unwrap_or("").to_string();
                record.lock().unwrap().push(line.clone());
                let requested: u16 = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                let _ = client
                    .write_all(format!("{status_line}\r\n\r\n").as_bytes())
                    .await;
                if !status_line.contains(" 200 ") {
                    return;
                }
                let port = upstream.unwrap_or(requested);
                let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (url, seen)
}

fn cert() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tls/cert.pem")
        .display()
        .to_string()
}

#[tokio::test]
async fn https_is_tunnelled_with_connect() {
    let server = Server::start_tls(vec![Action::ok(r#"{"canceled":true}"#)]).await;
    let (proxy, seen) = start_connect_proxy("HTTP/1.1 200 Connection established").await;
    let settings = Settings {
        ca_bundle: Some(cert().into()),
        ..settings(&server.url)
    };
    let client = Client::with_environment(settings, env_with(&[("HTTPS_PROXY", &proxy)])).unwrap();
    let output = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    assert_eq!(output["canceled"], true);
    let authority = server.url.trim_start_matches("https://").to_string();
    assert_eq!(
        seen.lock().unwrap().clone(),
        [format!("CONNECT {authority} HTTP/1.1")]
    );
    assert_eq!(
        server.count(),
        1,
        "the request reached the server through the tunnel"
    );
}

#[tokio::test]
async fn a_refused_tunnel_is_a_connection_error() {
    let (proxy, _) = start_connect_proxy("HTTP/1.1 407 Proxy Authentication Required").await;
    let settings = Settings {
        ca_bundle: Some(cert().into()),
        ..settings("https://localhost:9")
    };
    let client = Client::with_environment(
        settings,
        env_with(&[("HTTPS_PROXY", &proxy), ("AWS_MAX_ATTEMPTS", "1")]),
    )
    .unwrap();
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Could not connect to the endpoint URL: \"https://localhost:9/\""
    );
    let source = std::error::Error::source(&error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    assert!(source.contains("407"), "{source}");
}

#[tokio::test]
async fn no_proxy_bypasses_the_proxy() {
    let server = Server::start(vec![]).await;
    // A proxy that refuses connections: using it would fail.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    for no_proxy in ["127.0.0.1", "example.com,127.0.0.1:1234", "*"] {
        let client = Client::with_environment(
            settings(&server.url),
            env_with(&[("HTTP_PROXY", &dead), ("NO_PROXY", no_proxy)]),
        )
        .unwrap();
        client
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap();
    }
    assert_eq!(server.count(), 3);
    let client = Client::with_environment(
        settings(&server.url),
        env_with(&[("http_proxy", &dead), ("AWS_MAX_ATTEMPTS", "1")]),
    )
    .unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    let client = Client::with_environment(
        settings(&server.url),
        env_with(&[("HTTP_PROXY", "https://proxy.example:443")]),
    )
    .unwrap();
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Config, "{error}");
}

#[tokio::test]
async fn credential_sources_use_the_proxy_too() {
    // Instance metadata at a host that is never resolved, reached only through the proxy.
    let expiration = dp_model::timestamp::format_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
    ) + "Z";
    let credentials = format!(
        r#"{{"Code":"Success","AccessKeyId":"AKIDPROXIEDIMDS","SecretAccessKey":"s","Token":"t","Expiration":"{expiration}"}}"#
    );
    let proxy = Server::start_with(Arc::new(move |request: &crate::server::Recorded| {
        match (request.method.as_str(), request.path.as_str()) {
            ("PUT", "http://imds.example/latest/api/token") => {
                Action::ok("tok").with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            }
            ("GET", "http://imds.example/latest/meta-data/iam/security-credentials/") => {
                Action::ok("role")
            }
            ("GET", "http://imds.example/latest/meta-data/iam/security-credentials/role") => {
                Action::ok(&credentials)
            }
            _ => Action::status(404, "not found"),
        }
    }))
    .await;
    let service = Server::start(vec![]).await;
    let home = crate::support::temp_dir("proxied-imds");
    let env = dp_wire::Environment::from_vars([
        ("HOME", home.display().to_string()),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://imds.example".to_string(),
        ),
        ("HTTP_PROXY", proxy.url.clone()),
        ("NO_PROXY", "127.0.0.1".to_string()),
    ]);
    let client = Client::with_environment(settings(&service.url), env).unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let auth = service.recorded()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROXIEDIMDS/"),
        "{auth}"
    );
    assert!(
        proxy
            .recorded()
            .iter()
            .all(|r| r.path.starts_with("http://imds.example/"))
    );
}

#[tokio::test]
async fn assume_role_with_source_profile_through_aws_config() {
    // STS is a loopback TLS server reached through a CONNECT proxy, so sts.us-east-1.amazonaws.com is never resolved.
    let sts_response = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:dp</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/test/dp</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>AKIDASSUMED</AccessKeyId>
      <SecretAccessKey>assumedsecret</SecretAccessKey>
      <SessionToken>assumedtoken</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;
    let sts = Server::start_tls(vec![
        Action::ok(sts_response).with_header("Content-Type", "text/xml"),
    ])
    .await;
    let sts_port: u16 = sts.url.rsplit(':').next().unwrap().parse().unwrap();
    let (proxy, seen) =
        start_connect_proxy_to("HTTP/1.1 200 Connection established", Some(sts_port)).await;
    let service = Server::start(vec![]).await;
    let home = crate::support::temp_dir("assume-role");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile src]\naws_access_key_id = AKIDSOURCE\naws_secret_access_key = srcsecret\n\
         [profile assumed]\nrole_arn = arn:aws:iam::123456789012:role/test\nsource_profile = src\nrole_session_name = dp\n",
    )
    .unwrap();
    let env = dp_wire::Environment::from_vars([
        ("HOME", home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("HTTPS_PROXY", proxy.clone()),
    ]);
    // The STS stand-in's certificate is for localhost, not for the STS host name.
    let settings = Settings {
        profile: Some("assumed".into()),
        no_verify_ssl: true,
        ..settings(&service.url)
    };
    let client = Client::with_environment(settings, env).unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();

    let service_request = &service.recorded()[0];
    let auth = service_request.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDASSUMED/"),
        "{auth}"
    );
    assert_eq!(
        service_request.header("x-amz-security-token"),
        Some("assumedtoken")
    );
    let sts_request = &sts.recorded()[0];
    let body = String::from_utf8_lossy(&sts_request.body).to_string();
    assert!(
        body.contains("Action=AssumeRole") && body.contains("RoleSessionName=dp"),
        "{body}"
    );
    let sts_auth = sts_request.header("authorization").unwrap();
    assert!(
        sts_auth.contains("Credential=AKIDSOURCE/") && sts_auth.contains("/sts/aws4_request"),
        "{sts_auth}"
    );
    assert!(
        seen.lock().unwrap()[0].starts_with("CONNECT sts."),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn web_identity_through_aws_config() {
    let sts_response = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>subject</SubjectFromWebIdentityToken>
    <AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:web</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/web/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>AKIDWEBIDENTITY</AccessKeyId>
      <SecretAccessKey>websecret</SecretAccessKey>
      <SessionToken>webtoken</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;
    let sts = Server::start_tls(vec![
        Action::ok(sts_response).with_header("Content-Type", "text/xml"),
    ])
    .await;
    let sts_port: u16 = sts.url.rsplit(':').next().unwrap().parse().unwrap();
    let (proxy, _) =
        start_connect_proxy_to("HTTP/1.1 200 Connection established", Some(sts_port)).await;
    let service = Server::start(vec![]).await;
    let home = crate::support::temp_dir("web-identity");
    let token_file = home.join("token");
    std::fs::write(&token_file, "web-identity-token-value").unwrap();
    let env = dp_wire::Environment::from_vars([
        ("HOME", home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/web".to_string(),
        ),
        ("AWS_ROLE_SESSION_NAME", "s".to_string()),
        ("HTTPS_PROXY", proxy),
    ]);
    let settings = Settings {
        no_verify_ssl: true,
        ..settings(&service.url)
    };
    Client::with_environment(settings, env)
        .unwrap()
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let auth = service.recorded()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDWEBIDENTITY/"),
        "{auth}"
    );
    let body = String::from_utf8_lossy(&sts.recorded()[0].body).to_string();
    assert!(
        body.contains("Action=AssumeRoleWithWebIdentity")
            && body.contains("WebIdentityToken=web-identity-token-value"),
        "{body}"
    );
}

/// IAM is global: without a configured endpoint, `call_iam` goes to the partition's IAM endpoint whatever the
/// region. The proxy refuses every tunnel, so the request never leaves the machine; its `CONNECT` line shows the
/// host dp would have reached.
#[tokio::test]
async fn iam_goes_to_the_partition_endpoint() {
    for (region, authority) in [
        ("eu-west-1", "iam.amazonaws.com:443"),
        ("us-east-1", "iam.amazonaws.com:443"),
        ("cn-northwest-1", "iam.cn-north-1.amazonaws.com.cn:443"),
        ("us-gov-east-1", "iam.us-gov.amazonaws.com:443"),
        ("us-iso-east-1", "iam.us-iso-east-1.c2s.ic.gov:443"),
    ] {
        let (proxy, seen) = start_connect_proxy("HTTP/1.1 403 Forbidden").await;
        let settings = Settings {
            region: Some(region.into()),
            ..Settings::default()
        };
        let client = Client::with_environment(
            settings,
            env_with(&[("HTTPS_PROXY", &proxy), ("AWS_MAX_ATTEMPTS", "1")]),
        )
        .unwrap();
        let error = client
            .call_iam("GetRole", &[("RoleName", "DataPipelineDefaultRole")])
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "Could not connect to the endpoint URL: \"https://{}/\"",
                authority.trim_end_matches(":443")
            ),
            "{region}"
        );
        assert_eq!(
            seen.lock().unwrap().clone(),
            [format!("CONNECT {authority} HTTP/1.1")],
            "{region}"
        );
    }
}

/// A configured IAM endpoint (`AWS_ENDPOINT_URL_IAM`) wins over the global one and leaves Data Pipeline's alone; the
/// request is awsQuery, signed for the caller's region and the service `iam`.
#[tokio::test]
async fn iam_honours_its_configured_endpoint() {
    let iam = Server::start(vec![Action::ok(
        "<GetRoleResponse><GetRoleResult><Role><RoleName>R</RoleName></Role></GetRoleResult></GetRoleResponse>",
    )])
    .await;
    let settings = Settings {
        region: Some("us-west-2".into()),
        ..Settings::default()
    };
    let client =
        Client::with_environment(settings, env_with(&[("AWS_ENDPOINT_URL_IAM", &iam.url)]))
            .unwrap();
    let result = client
        .call_iam("GetRole", &[("RoleName", "R")])
        .await
        .unwrap();
    assert_eq!(result.text_at(&["Role", "RoleName"]), Some("R"));
    let request = &iam.recorded()[0];
    assert_eq!(
        request.body,
        b"Action=GetRole&Version=2010-05-08&RoleName=R"
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    assert_eq!(request.header("x-amz-target"), None);
    let authorization = request.header("authorization").unwrap_or_default();
    assert!(
        authorization
            .contains("/us-west-2/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date,"),
        "{authorization}"
    );
    assert_eq!(
        client.endpoint_url().await.unwrap(),
        "https://datapipeline.us-west-2.amazonaws.com/",
        "Data Pipeline's endpoint does not change"
    );
}
