//! TLS: an https loopback server with a self-signed certificate is trusted through `--ca-bundle`, `AWS_CA_BUNDLE`
//! or the profile's `ca_bundle`, refused otherwise, and accepted without verification only with `--no-verify-ssl`.

use dp_wire::{Client, ErrorKind, Settings};

use crate::server::Server;
use crate::support::{env_with, op, report_task_progress, settings, temp_dir};

fn cert() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tls/cert.pem")
        .display()
        .to_string()
}

async fn call(
    settings: Settings,
    extra_env: &[(&str, &str)],
) -> Result<serde_json::Value, dp_wire::Error> {
    Client::with_environment(settings, env_with(extra_env))
        .unwrap()
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
}

#[tokio::test]
async fn ca_bundle_from_option_environment_and_profile() {
    let server = Server::start_tls(vec![]).await;
    let by_option = Settings {
        ca_bundle: Some(cert().into()),
        ..settings(&server.url)
    };
    call(by_option, &[]).await.unwrap();
    call(settings(&server.url), &[("AWS_CA_BUNDLE", &cert())])
        .await
        .unwrap();
    let dir = temp_dir("ca");
    std::fs::write(
        dir.join("config"),
        format!("[default]\nca_bundle = {}\n", cert()),
    )
    .unwrap();
    let config = dir.join("config").display().to_string();
    call(settings(&server.url), &[("AWS_CONFIG_FILE", &config)])
        .await
        .unwrap();
    assert_eq!(server.count(), 3);
    let request = &server.recorded()[0];
    assert!(request.header("host").unwrap().starts_with("localhost:"));
}

#[tokio::test]
async fn an_unknown_certificate_is_refused() {
    let server = Server::start_tls(vec![]).await;
    // A bundle holding some other certificate: the loopback certificate does not chain to it.
    let other =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tls/other-cert.pem");
    let settings = Settings {
        ca_bundle: Some(other),
        ..settings(&server.url)
    };
    let error = call(settings, &[("AWS_MAX_ATTEMPTS", "1")])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Transport);
    assert!(
        error
            .to_string()
            .starts_with("Could not connect to the endpoint URL: \"https://localhost:"),
        "{error}"
    );
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn no_verify_ssl_accepts_any_certificate() {
    let server = Server::start_tls(vec![]).await;
    let settings = Settings {
        no_verify_ssl: true,
        ..settings(&server.url)
    };
    call(settings, &[]).await.unwrap();
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_missing_ca_bundle_is_a_configuration_error() {
    let settings = Settings {
        ca_bundle: Some("/nonexistent/bundle.pem".into()),
        ..settings("https://localhost:9")
    };
    let error = call(settings, &[]).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Config, "{error}");
    assert!(
        error.to_string().contains("/nonexistent/bundle.pem"),
        "{error}"
    );
}
