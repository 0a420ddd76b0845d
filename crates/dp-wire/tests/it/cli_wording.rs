//! Differential: the AWS CLI and dp-wire against the same scripted server. dp-wire's error text must equal what
//! `aws datapipeline report-task-progress` prints on stderr, for the errors whose wording users script against.
//! (Cases where dp differs on purpose, such as a 2xx body that is not JSON, are tested elsewhere.)

use std::time::Duration;

use dp_wire::{Client, Settings};

use crate::server::{Action, Server};
use crate::support::{ACCESS_KEY_ID, SECRET_KEY, env_with, op, temp_dir};

/// Runs the installed AWS CLI against `url` in standard retry mode and returns its stderr.
fn aws_cli(url: &str, extra: &[&str]) -> String {
    let home = temp_dir("aws-cli-home");
    let output = std::process::Command::new("aws")
        .args([
            "datapipeline",
            "report-task-progress",
            "--task-id",
            "task-123",
            "--region",
            "us-east-1",
        ])
        .args(["--endpoint-url", url])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_RETRY_MODE", "standard")
        .env("AWS_MAX_ATTEMPTS", "3")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the AWS CLI is installed");
    assert!(!output.status.success(), "the CLI failed as expected");
    // Only the newlines around the message: a message may end in a space.
    String::from_utf8(output.stderr)
        .unwrap()
        .trim_matches('\n')
        .to_string()
}

async fn dp_error(url: &str, read_timeout: Option<Duration>) -> String {
    let settings = Settings {
        read_timeout,
        ..crate::support::settings(url)
    };
    let client = Client::with_environment(settings, env_with(&[]))
        .unwrap()
        .with_backoff_base(Duration::from_millis(1));
    let input = serde_json::json!({"taskId": "task-123"});
    client
        .call_json(op("ReportTaskProgress"), &input)
        .await
        .unwrap_err()
        .to_string()
}

/// The same script served to the CLI and to dp-wire; their messages must match, with the server's URL in both.
async fn check(script: Vec<Action>) {
    let cli_server = Server::start(script.clone()).await;
    let url = cli_server.url.clone();
    let cli = tokio::task::spawn_blocking(move || aws_cli(&url, &[]))
        .await
        .unwrap();
    let dp_server = Server::start(script).await;
    let dp = dp_error(&dp_server.url, None).await;
    assert_eq!(
        dp.replace(&dp_server.url, "URL"),
        cli.replace(&cli_server.url, "URL")
    );
    assert_eq!(
        cli_server.count(),
        dp_server.count(),
        "same number of attempts for {cli}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_errors_read_as_in_the_aws_cli() {
    check(vec![Action::error(
        400,
        "TaskNotFoundException",
        "Task not found: task-123",
    )])
    .await;
    check(vec![Action::error(500, "InternalServiceError", "boom"); 3]).await;
    check(vec![Action::status(502, "<html>Bad Gateway</html>"); 3]).await;
    check(vec![Action::status(
        400,
        r#"{"__type":"InvalidRequestException"}"#,
    )])
    .await;
    check(vec![
        Action::error(400, "ThrottlingException", "Rate exceeded"),
        Action::error(400, "PipelineNotFoundException", "gone"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_read_as_in_the_aws_cli() {
    // Connection refused: nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let cli_url = url.clone();
    let cli = tokio::task::spawn_blocking(move || aws_cli(&cli_url, &[]))
        .await
        .unwrap();
    assert_eq!(dp_error(&url, None).await, cli);

    // Read timeout: one-second timeout, a server that answers after three.
    let script = vec![Action::Delay(Duration::from_secs(3)); 3];
    let cli_server = Server::start(script.clone()).await;
    let cli_url = cli_server.url.clone();
    let cli = tokio::task::spawn_blocking(move || aws_cli(&cli_url, &["--cli-read-timeout", "1"]))
        .await
        .unwrap();
    let dp_server = Server::start(script).await;
    let dp = dp_error(&dp_server.url, Some(Duration::from_secs(1))).await;
    assert_eq!(
        dp.replace(&dp_server.url, "URL"),
        cli.replace(&cli_server.url, "URL")
    );
}
