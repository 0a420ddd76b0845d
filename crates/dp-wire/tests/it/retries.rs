//! Retries against the scripted server: K transient failures then success, for each failure kind and several
//! maximum attempts; throttling; modeled 4xx errors tried once; the retry headers of each attempt.

use std::time::Duration;

use dp_wire::{Client, RetryMode, RetryPolicy, Settings};

use crate::server::{Action, Server};
use crate::support::{client, env_with, op, report_task_progress, settings, temp_dir};

/// The failure kinds that must be retried.
fn failure(kind: &str) -> Action {
    match kind {
        "500" | "502" | "503" | "504" => Action::status(kind.parse().unwrap(), "<html>oops</html>"),
        "InternalServiceError" => Action::error(500, "InternalServiceError", "boom"),
        "ThrottlingException" => Action::error(400, "ThrottlingException", "slow down"),
        "connection-drop" => Action::Drop,
        "mid-response-drop" => Action::DropMidResponse,
        "read-timeout" => Action::Delay(Duration::from_millis(400)),
        other => panic!("unknown failure kind {other}"),
    }
}

const KINDS: &[&str] = &[
    "500",
    "502",
    "503",
    "504",
    "InternalServiceError",
    "ThrottlingException",
    "connection-drop",
    "mid-response-drop",
    "read-timeout",
];

/// How max_attempts is configured in a case.
#[derive(Clone, Copy, Debug)]
enum Source {
    EnvVar,
    ProfileKey,
}

async fn check(kind: &str, failures: u32, max_attempts: u32, source: Source) {
    let mut script: Vec<Action> = (0..failures).map(|_| failure(kind)).collect();
    script.push(Action::ok(r#"{"canceled":false}"#));
    let server = Server::start(script).await;
    let max = max_attempts.to_string();
    let mut s = settings(&server.url);
    // Only the read-timeout kind needs a short read timeout; it is far above a loopback round trip.
    s.read_timeout = Some(Duration::from_millis(if kind == "read-timeout" {
        100
    } else {
        5000
    }));
    let client = match source {
        Source::EnvVar => Client::with_environment(s, env_with(&[("AWS_MAX_ATTEMPTS", &max)])),
        Source::ProfileKey => {
            let dir = temp_dir("maxattempts");
            let config = dir.join("config");
            std::fs::write(&config, format!("[default]\nmax_attempts = {max}\n")).unwrap();
            Client::with_environment(
                s,
                env_with(&[("AWS_CONFIG_FILE", &config.display().to_string())]),
            )
        }
    }
    .unwrap()
    .with_backoff_base(Duration::from_millis(1));
    let result = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await;
    let expected_attempts = (failures + 1).min(max_attempts) as usize;
    let case = format!("{kind}: {failures} failures, max_attempts {max_attempts} via {source:?}");
    assert_eq!(server.count(), expected_attempts, "attempts for {case}");
    if failures < max_attempts {
        assert_eq!(
            result.unwrap(),
            serde_json::json!({"canceled": false}),
            "{case}"
        );
    } else {
        let error = result.unwrap_err();
        let expected_kind = match kind {
            "connection-drop" | "mid-response-drop" | "read-timeout" => {
                dp_wire::ErrorKind::Transport
            }
            _ => dp_wire::ErrorKind::Service,
        };
        assert_eq!(error.kind(), &expected_kind, "{case}");
        if error.service_code().is_some() {
            assert!(
                error
                    .to_string()
                    .contains(&format!("(reached max retries: {})", max_attempts - 1)),
                "{case}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn k_transient_failures_then_success() {
    for kind in KINDS {
        for max_attempts in [1, 2, 3, 5] {
            for failures in 0..=max_attempts {
                check(kind, failures, max_attempts, Source::EnvVar).await;
            }
        }
    }
}

#[tokio::test]
async fn max_attempts_from_the_profile() {
    for kind in ["500", "ThrottlingException", "connection-drop"] {
        for max_attempts in [1, 2, 3, 5] {
            for failures in [max_attempts - 1, max_attempts] {
                check(kind, failures, max_attempts, Source::ProfileKey).await;
            }
        }
    }
}

#[tokio::test]
async fn default_is_standard_mode_with_three_attempts() {
    let server = Server::start(vec![Action::error(500, "InternalServiceError", "boom"); 5]).await;
    let error = client(&server.url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(server.count(), 3);
    assert_eq!(
        error.to_string(),
        "An error occurred (InternalServiceError) when calling the ReportTaskProgress operation (reached max retries: 2): boom"
    );
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Service);
    let recorded = server.recorded();
    let request_headers: Vec<&str> = recorded
        .iter()
        .map(|r| r.header("amz-sdk-request").unwrap())
        .collect();
    assert_eq!(
        request_headers,
        ["attempt=1; max=3", "attempt=2; max=3", "attempt=3; max=3"]
    );
    assert!(
        recorded[0]
            .header("user-agent")
            .unwrap()
            .ends_with("cfg/retry-mode#standard")
    );
}

#[tokio::test]
async fn legacy_mode_has_five_attempts_and_retries_bare_429() {
    let server = Server::start(vec![Action::status(429, "{}"); 6]).await;
    let client = client(&server.url, &[("AWS_RETRY_MODE", "legacy")]);
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(server.count(), 5);
    assert!(
        error.to_string().contains("(reached max retries: 4)"),
        "{error}"
    );

    // Standard mode does not retry a 429 whose code is not a throttling code.
    let server = Server::start(vec![Action::status(429, "{}"); 2]).await;
    let error = crate::support::client(&server.url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(server.count(), 1);
    assert_eq!(error.service_code(), Some("429"));
}

#[tokio::test]
async fn modeled_client_errors_are_tried_once() {
    for code in [
        "TaskNotFoundException",
        "InvalidRequestException",
        "PipelineNotFoundException",
        "PipelineDeletedException",
    ] {
        let server = Server::start(vec![Action::error(400, code, "no"); 3]).await;
        let error = client(&server.url, &[])
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap_err();
        assert_eq!(server.count(), 1, "{code}");
        assert_eq!(error.service_code(), Some(code));
        assert_eq!(error.kind(), &dp_wire::ErrorKind::Service);
        assert_eq!(
            error.to_string(),
            format!("An error occurred ({code}) when calling the ReportTaskProgress operation: no")
        );
    }
}

#[tokio::test]
async fn every_attempt_is_signed_afresh_with_one_invocation_id() {
    let server = Server::start(vec![failure("503"), failure("connection-drop")]).await;
    client(&server.url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 3);
    let ids: Vec<&str> = recorded
        .iter()
        .map(|r| r.header("amz-sdk-invocation-id").unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one invocation id per call: {ids:?}"
    );
    let id = uuid::Uuid::parse_str(ids[0]).unwrap();
    assert_eq!(id.get_version_num(), 4);
    let dates: Vec<&str> = recorded
        .iter()
        .map(|r| r.header("x-amz-date").unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] <= w[1]),
        "dates never go back: {dates:?}"
    );
    for r in &recorded {
        let auth = r.header("authorization").unwrap();
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target,"),
            "{auth}"
        );
        assert!(r.header("user-agent").unwrap().starts_with("dp/"));
        assert_eq!(
            r.header("x-amz-target"),
            Some("DataPipeline.ReportTaskProgress")
        );
        assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/"));
    }
    // Each attempt's signature is valid for its own bytes and date (botocore signs them again).
    let jobs: Vec<serde_json::Value> = recorded
        .iter()
        .map(|r| crate::sigv4::botocore_job(&format!("{}/", server.url), r, None, "us-east-1"))
        .collect();
    assert_eq!(
        crate::sigv4::botocore_disagreements(&jobs),
        Vec::<String>::new()
    );
    // A second call gets a new invocation id.
    let again = Server::start(vec![]).await;
    client(&again.url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    assert_ne!(
        again.recorded()[0].header("amz-sdk-invocation-id").unwrap(),
        ids[0]
    );
}

#[tokio::test]
async fn retry_quota_runs_out() {
    // 500 tokens at 5 per retry: after 100 paid retries the next failure is returned at once.
    let server = Server::start(vec![Action::status(500, "{}"); 400]).await;
    let client = client(&server.url, &[("AWS_MAX_ATTEMPTS", "2")]);
    for _ in 0..100 {
        client
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap_err();
    }
    assert_eq!(server.count(), 200);
    assert_eq!(client.retry_tokens(), 0);
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(server.count(), 201, "no retry without quota");
    assert!(
        !error.to_string().contains("reached max retries"),
        "{error}"
    );
}

#[test]
fn backoff_bounds() {
    let standard = RetryPolicy::new(RetryMode::Standard);
    for (attempt, ceiling) in [
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (5, 16.0),
        (6, 20.0),
        (30, 20.0),
    ] {
        assert_eq!(standard.backoff(attempt, 0.0), Duration::ZERO);
        let top = standard.backoff(attempt, 0.999_999);
        assert!(
            top.as_secs_f64() <= ceiling && top.as_secs_f64() > ceiling * 0.99,
            "attempt {attempt}: {top:?}"
        );
    }
    let legacy = RetryPolicy::new(RetryMode::Legacy);
    assert!(
        legacy.backoff(6, 0.999_999).as_secs_f64() > 31.0,
        "legacy has no 20 s cap"
    );
    for _ in 0..1000 {
        let r = fastrand::f64();
        for attempt in 1..8 {
            let d = standard.backoff(attempt, r);
            assert!(d <= Duration::from_secs(20).min(Duration::from_secs(1 << (attempt - 1))));
        }
    }
}

#[tokio::test]
async fn invalid_retry_settings_are_configuration_errors() {
    for (var, value) in [
        ("AWS_MAX_ATTEMPTS", "0"),
        ("AWS_MAX_ATTEMPTS", "many"),
        ("AWS_RETRY_MODE", "eager"),
    ] {
        let client =
            Client::with_environment(settings("http://127.0.0.1:9"), env_with(&[(var, value)]))
                .unwrap();
        let error = client
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            &dp_wire::ErrorKind::Config,
            "{var}={value}: {error}"
        );
    }
    let _ = Settings::default();
}

#[tokio::test]
async fn adaptive_mode_retries_like_standard_and_limits_after_throttling() {
    let server = Server::start(vec![
        Action::error(400, "ThrottlingException", "slow down"),
        Action::ok("{}"),
    ])
    .await;
    let client = client(&server.url, &[("AWS_RETRY_MODE", "adaptive")]);
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    assert_eq!(server.count(), 2);
    assert!(
        server.recorded()[0]
            .header("user-agent")
            .unwrap()
            .ends_with("cfg/retry-mode#adaptive")
    );
    let server = Server::start(vec![Action::status(500, "{}"); 5]).await;
    let client = crate::support::client(&server.url, &[("AWS_RETRY_MODE", "adaptive")]);
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(server.count(), 3, "three attempts, as standard");
}

#[test]
fn retry_quota_costs_and_refunds() {
    use dp_wire::retry::RetryQuota;
    let quota = RetryQuota::default();
    assert_eq!(quota.available(), 500);
    assert_eq!(
        quota.acquire(false),
        Some(5),
        "a retry after an error costs 5"
    );
    assert_eq!(
        quota.acquire(true),
        Some(10),
        "a retry after a timeout costs 10"
    );
    assert_eq!(quota.available(), 485);
    quota.release(Some(10));
    assert_eq!(
        quota.available(),
        495,
        "a successful retry refunds its cost"
    );
    quota.release(None);
    assert_eq!(quota.available(), 496, "a first-try success adds 1");
    for _ in 0..10 {
        quota.release(None);
    }
    assert_eq!(quota.available(), 500, "never above 500");
    while quota.acquire(true).is_some() {}
    assert_eq!(quota.available(), 0);
    assert_eq!(quota.acquire(false), None, "no tokens, no retry");
}

#[tokio::test]
async fn a_successful_retry_refunds_the_quota() {
    let server = Server::start(vec![failure("500"), Action::ok("{}")]).await;
    let client = client(&server.url, &[]);
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    assert_eq!(client.retry_tokens(), 500);
    let server = Server::start(vec![failure("500"); 3]).await;
    let client = crate::support::client(&server.url, &[]);
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(client.retry_tokens(), 490, "two paid retries, no refund");
}
