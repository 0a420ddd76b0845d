//! Responses and failures of single calls: error parsing, invalid bodies, timeouts, refused and dropped
//! connections, request framing for every operation, typed calls.

use std::time::Duration;

use dp_model::ops;
use dp_wire::{CallError, Client, ErrorKind};
use http::StatusCode;

use crate::server::{Action, Server};
use crate::support::{client, env_with, op, report_task_progress, settings};

fn check_error(status: u16, header: Option<&str>, body: &str, code: &str, message: Option<&str>) {
    let parsed = dp_wire::protocol::parse_error_parts(
        StatusCode::from_u16(status).unwrap(),
        header,
        body.as_bytes(),
        None,
    );
    assert_eq!(
        (parsed.code.as_str(), parsed.message.as_deref()),
        (code, message),
        "{status} {header:?} {body}"
    );
}

#[test]
fn error_codes_follow_the_smithy_order() {
    check_error(
        400,
        None,
        r#"{"__type":"com.amazonaws.datapipeline#TaskNotFoundException","Message":"task gone"}"#,
        "TaskNotFoundException",
        Some("task gone"),
    );
    check_error(
        400,
        Some("TaskNotFoundException:http://internal.amazon.com/coral/x"),
        r#"{"message":"gone"}"#,
        "TaskNotFoundException",
        Some("gone"),
    );
    check_error(
        400,
        Some("PipelineNotFoundException"),
        r#"{"__type":"x#TaskNotFoundException"}"#,
        "PipelineNotFoundException",
        None,
    );
    check_error(
        400,
        None,
        r#"{"code":"aws.protocoltests.json#FooError","__type":"Other"}"#,
        "FooError",
        None,
    );
    check_error(
        400,
        None,
        r#"{"__type":"aws.protocoltests.json#FooError:http://internal.amazon.com/"}"#,
        "FooError",
        None,
    );
    check_error(
        400,
        None,
        r#"{"errorMessage":"m","__type":"A"}"#,
        "A",
        Some("m"),
    );
    check_error(
        502,
        None,
        "<html>Bad Gateway</html>",
        "502",
        Some("Bad Gateway"),
    );
    check_error(500, None, "{}", "500", None);
    check_error(400, None, r#"{"nested":{"__type":"Deep"}}"#, "400", None);
}

#[tokio::test]
async fn error_code_only_in_the_header() {
    let server = Server::start(vec![
        Action::status(400, r#"{"message":"Task not found: x"}"#).with_header(
            "X-Amzn-ErrorType",
            "TaskNotFoundException:http://internal.amazon.com/coral/com.amazon.datapipeline/",
        ),
    ])
    .await;
    let error = client(&server.url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "An error occurred (TaskNotFoundException) when calling the ReportTaskProgress operation: Task not found: x"
    );
    assert_eq!(
        error.service_error().unwrap().request_id.as_deref(),
        Some("req-1")
    );
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_2xx_body_that_is_not_json_is_an_error() {
    for body in [
        "not json",
        r#"{"canceled": tr"#,
        r#"{"a":1} trailing"#,
        "[1,2]",
    ] {
        let server = Server::start(vec![Action::ok(body)]).await;
        let error = client(&server.url, &[])
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidResponse, "{body}");
        assert_eq!(server.count(), 1, "not retried: {body}");
    }
    // An empty 2xx body is an empty output.
    let server = Server::start(vec![Action::ok("")]).await;
    let value = client(&server.url, &[])
        .call_json(
            op("ActivatePipeline"),
            &serde_json::json!({"pipelineId": "df-1"}),
        )
        .await;
    assert_eq!(value.unwrap(), serde_json::json!({}));
}

#[tokio::test]
async fn output_is_shaped_as_the_cli_prints_it() {
    // Members in the model's order (pipelineIdList, marker, hasMoreResults), unknown and null members dropped,
    // also inside lists; list order kept.
    let server = Server::start(vec![Action::ok(
        r#"{"hasMoreResults":true,"zzz":1,"marker":null,"pipelineIdList":[{"name":"b","id":"df-2","x":0},{"id":"df-1","name":null}]}"#,
    )])
    .await;
    let value = client(&server.url, &[])
        .call_json(op("ListPipelines"), &serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(
        value.to_string(),
        r#"{"pipelineIdList":[{"id":"df-2","name":"b"},{"id":"df-1"}],"hasMoreResults":true}"#
    );
}

#[tokio::test]
async fn operations_without_output_return_an_empty_object() {
    let server = Server::start(vec![Action::ok(r#"{"unexpected":1}"#)]).await;
    let value = client(&server.url, &[])
        .call_json(
            op("DeletePipeline"),
            &serde_json::json!({"pipelineId": "df-1"}),
        )
        .await
        .unwrap();
    assert_eq!(value, serde_json::json!({}));
}

#[tokio::test]
async fn timestamps_are_sent_as_epoch_seconds() {
    // As the CLI sends `--start-timestamp`: ISO 8601 and epoch seconds (fractions truncated) become integers.
    let server = Server::start(vec![]).await;
    let client = client(&server.url, &[]);
    for start in [
        serde_json::json!("2026-01-02T03:04:05Z"),
        serde_json::json!(1767323045.9),
        serde_json::json!(1767323045),
    ] {
        client
            .call_json(
                op("ActivatePipeline"),
                &serde_json::json!({"pipelineId": "df-1", "startTimestamp": start}),
            )
            .await
            .unwrap();
    }
    for request in server.recorded() {
        assert_eq!(
            String::from_utf8_lossy(&request.body),
            r#"{"pipelineId":"df-1","startTimestamp":1767323045}"#
        );
    }
}

#[tokio::test]
async fn slow_server_against_the_read_timeout() {
    let server = Server::start(vec![Action::Delay(Duration::from_secs(3))]).await;
    let mut s = settings(&server.url);
    s.read_timeout = Some(Duration::from_millis(200));
    let client = Client::with_environment(s, env_with(&[("AWS_MAX_ATTEMPTS", "1")])).unwrap();
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Read timeout on endpoint URL: \"{}/\"", server.url)
    );
    assert_eq!(error.kind(), &ErrorKind::Transport);
}

#[tokio::test]
async fn connection_refused() {
    // Bind and drop: nothing listens on the port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let error = client(&url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Could not connect to the endpoint URL: \"http://127.0.0.1:{port}/\"")
    );
    assert_eq!(error.kind(), &ErrorKind::Transport);
}

#[tokio::test]
async fn connection_dropped_mid_response() {
    let server = Server::start(vec![Action::DropMidResponse]).await;
    let client = Client::with_environment(
        settings(&server.url),
        env_with(&[("AWS_MAX_ATTEMPTS", "1")]),
    )
    .unwrap();
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "Connection was closed before we received a valid response from endpoint URL: \"{}/\".",
            server.url
        )
    );
    assert_eq!(error.kind(), &ErrorKind::Transport);
}

#[tokio::test]
async fn every_operation_is_framed_alike() {
    let server = Server::start(vec![]).await;
    let client = client(&server.url, &[]);
    for operation in dp_model::operations() {
        client
            .call_json(operation, &serde_json::Value::Null)
            .await
            .unwrap();
    }
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 19);
    for (operation, request) in dp_model::operations().iter().zip(&recorded) {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/"),
            "{}",
            operation.name
        );
        assert_eq!(
            request.header("x-amz-target").unwrap(),
            format!("DataPipeline.{}", operation.name)
        );
        assert_eq!(
            request.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(request.body, b"{}");
    }
}

#[tokio::test]
async fn typed_calls_decode_outputs_and_modeled_errors() {
    let server = Server::start(vec![
        Action::ok(r#"{"canceled":true}"#),
        Action::error(400, "TaskNotFoundException", "Task not found: t"),
        Action::error(400, "SomethingNew", "new"),
    ])
    .await;
    let client = client(&server.url, &[]);
    let input = dp_model::types::ReportTaskProgressInput {
        task_id: "t".into(),
        fields: None,
    };
    let output = client
        .call::<ops::ReportTaskProgress>(&input)
        .await
        .unwrap();
    assert!(output.canceled);
    assert_eq!(server.recorded()[0].body, br#"{"taskId":"t"}"#);
    match client.call::<ops::ReportTaskProgress>(&input).await {
        Err(CallError::Service {
            error: ops::ReportTaskProgressError::TaskNotFoundException(e),
            details,
        }) => {
            assert_eq!(e.message.as_deref(), Some("Task not found: t"));
            assert_eq!(details.kind(), &ErrorKind::Service);
        }
        other => panic!("expected a modeled error, got {other:?}"),
    }
    match client.call::<ops::ReportTaskProgress>(&input).await {
        Err(CallError::Service {
            error: ops::ReportTaskProgressError::Unhandled { code, .. },
            ..
        }) => {
            assert_eq!(code, "SomethingNew")
        }
        other => panic!("expected an unhandled error, got {other:?}"),
    }
}

#[tokio::test]
async fn clock_skew_is_corrected_after_a_skew_error() {
    // The server's clock is one hour ahead and it rejects the first signature.
    let ahead = std::time::SystemTime::now() + Duration::from_secs(3600);
    let date = http_date(ahead);
    let script = vec![
        Action::error(400, "InvalidSignatureException", "Signature expired")
            .with_header("Date", &date),
        Action::ok("{}").with_header("Date", &date),
    ];
    let server = Server::start(script.clone()).await;
    client(&server.url, &[])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 2, "succeeds on the second attempt");
    let first = recorded[0].header("x-amz-date").unwrap().to_string();
    let second = recorded[1].header("x-amz-date").unwrap().to_string();
    assert!(second[..11] >= first[..11], "{first} {second}");
    assert_ne!(
        first[9..11],
        second[9..11],
        "the second attempt is signed at server time: {first} {second}"
    );

    // Opted out: one attempt, and the error.
    let server = Server::start(script).await;
    let error = client(
        &server.url,
        &[("AWS_DISABLE_CLOCK_SKEW_CORRECTION", "true")],
    )
    .call_json(op("ReportTaskProgress"), &report_task_progress())
    .await
    .unwrap_err();
    assert_eq!(server.count(), 1);
    assert_eq!(error.service_code(), Some("InvalidSignatureException"));
}

fn http_date(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let iso = dp_model::timestamp::format_utc(secs);
    let (date, time) = iso.split_once('T').unwrap();
    let mut parts = date.split('-');
    let (y, m, d) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][m.parse::<usize>().unwrap() - 1];
    let weekday =
        ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(secs.div_euclid(86_400) % 7) as usize];
    format!("{weekday}, {d} {month} {y} {time} GMT")
}

#[test]
fn timeouts_default_to_the_cli_and_leave_room_for_poll_for_task() {
    use dp_wire::{Settings, timeouts};
    let sixty = Some(Duration::from_secs(60));
    let check =
        |settings: Settings, operation: &str, expected: (Option<Duration>, Option<Duration>)| {
            assert_eq!(
                timeouts(&settings, operation),
                expected,
                "{operation} {settings:?}"
            );
        };
    check(Settings::default(), "ReportTaskProgress", (sixty, sixty));
    check(
        Settings::default(),
        "PollForTask",
        (sixty, Some(Duration::from_secs(100))),
    );
    let zero = Settings {
        connect_timeout: Some(Duration::ZERO),
        read_timeout: Some(Duration::ZERO),
        ..Default::default()
    };
    check(zero, "PollForTask", (None, None));
    let set = Settings {
        read_timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    check(set, "PollForTask", (sixty, Some(Duration::from_secs(5))));
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_hits_the_connect_timeout() {
    // Accepts TCP connections and holds them without a byte: the TLS handshake never completes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        for _ in 0..5 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            keep.lock().unwrap().push(stream);
        }
    });
    let url = format!("https://127.0.0.1:{port}");
    let mut s = settings(&url);
    s.connect_timeout = Some(Duration::from_millis(200));
    let client = Client::with_environment(s, env_with(&[("AWS_MAX_ATTEMPTS", "2")])).unwrap();
    let error = client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Connect timeout on endpoint URL: \"https://127.0.0.1:{port}/\"")
    );
    assert_eq!(
        held.lock().unwrap().len(),
        2,
        "a connect timeout is retried"
    );
}

#[tokio::test]
async fn calls_share_one_kept_alive_connection() {
    let server = Server::start(vec![]).await;
    let client = client(&server.url, &[]);
    for _ in 0..5 {
        client
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap();
    }
    assert_eq!((server.count(), server.connection_count()), (5, 1));
    // `Connection: close` from the server ends the reuse.
    let server = Server::start(vec![Action::ok("{}").with_header("Connection", "close"); 2]).await;
    let client = crate::support::client(&server.url, &[]);
    for _ in 0..2 {
        client
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap();
    }
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn ipv6_literal_endpoints() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        // No IPv6 loopback on this machine: nothing to test.
        return;
    };
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://[::1]:{port}");
    let error = client(&url, &[("AWS_MAX_ATTEMPTS", "1")])
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err();
    // Reaches the socket layer (refused), so the bracketed host was parsed and connected to.
    assert_eq!(
        error.to_string(),
        format!("Could not connect to the endpoint URL: \"http://[::1]:{port}/\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_is_shared_across_tasks_and_threads() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let server = Server::start(vec![]).await;
    let client = std::sync::Arc::new(client(&server.url, &[]));
    assert_send_sync(&*client);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            // `tokio::spawn` on a multi-thread runtime requires the call's future to be Send.
            tokio::spawn(async move {
                client
                    .call_json(op("ReportTaskProgress"), &report_task_progress())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.count(), 4);
}

/// The 13 awsJson1_1 error-response cases of Smithy's protocol tests (smithy-lang/smithy
/// `smithy-aws-protocol-tests/model/awsJson1_1/errors.smithy`, Apache-2.0), as (id, status, header, body, code,
/// message).
#[test]
fn smithy_aws_json_1_1_error_cases() {
    const URI: &str = "http://internal.amazon.com/coral/com.amazon.coral.validate/";
    let header_uri = format!("FooError:{URI}");
    let header_uri_ns = format!("aws.protocoltests.json#FooError:{URI}");
    let code_uri_ns = format!(r#"{{"code": "aws.protocoltests.json#FooError:{URI}"}}"#);
    let type_uri_ns = format!(r#"{{"__type": "aws.protocoltests.json#FooError:{URI}"}}"#);
    type Case<'a> = (
        &'a str,
        u16,
        Option<&'a str>,
        &'a str,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "AwsJson11InvalidGreetingError",
            400,
            None,
            r#"{"__type": "InvalidGreeting", "Message": "Hi"}"#,
            "InvalidGreeting",
            Some("Hi"),
        ),
        (
            "AwsJson11ComplexError",
            400,
            None,
            r#"{"__type": "ComplexError", "TopLevel": "Top level", "Nested": {"Foo": "bar"}}"#,
            "ComplexError",
            None,
        ),
        (
            "AwsJson11EmptyComplexError",
            400,
            None,
            r#"{"__type": "ComplexError"}"#,
            "ComplexError",
            None,
        ),
        (
            "AwsJson11FooErrorUsingXAmznErrorType",
            500,
            Some("FooError"),
            "",
            "FooError",
            Some("Internal Server Error"),
        ),
        (
            "AwsJson11FooErrorUsingXAmznErrorTypeWithUri",
            500,
            Some(&header_uri),
            "",
            "FooError",
            Some("Internal Server Error"),
        ),
        (
            "AwsJson11FooErrorUsingXAmznErrorTypeWithUriAndNamespace",
            500,
            Some(&header_uri_ns),
            "",
            "FooError",
            Some("Internal Server Error"),
        ),
        (
            "AwsJson11FooErrorUsingCode",
            500,
            None,
            r#"{"code": "FooError"}"#,
            "FooError",
            None,
        ),
        (
            "AwsJson11FooErrorUsingCodeAndNamespace",
            500,
            None,
            r#"{"code": "aws.protocoltests.json#FooError"}"#,
            "FooError",
            None,
        ),
        (
            "AwsJson11FooErrorUsingCodeUriAndNamespace",
            500,
            None,
            &code_uri_ns,
            "FooError",
            None,
        ),
        (
            "AwsJson11FooErrorWithDunderType",
            500,
            None,
            r#"{"__type": "FooError"}"#,
            "FooError",
            None,
        ),
        (
            "AwsJson11FooErrorWithDunderTypeAndNamespace",
            500,
            None,
            r#"{"__type": "aws.protocoltests.json#FooError"}"#,
            "FooError",
            None,
        ),
        (
            "AwsJson11FooErrorWithDunderTypeUriAndNamespace",
            500,
            None,
            &type_uri_ns,
            "FooError",
            None,
        ),
        (
            "AwsJson11FooErrorWithNestedTypeProperty",
            500,
            None,
            r#"{"__type": "aws.protocoltests.json#FooError", "ErrorDetails": [{"__type": "com.amazon.internal#ErrorDetails", "reason": "Some reason"}]}"#,
            "FooError",
            None,
        ),
    ];
    assert_eq!(cases.len(), 13);
    for (id, status, header, body, code, message) in cases {
        let parsed = dp_wire::protocol::parse_error_parts(
            StatusCode::from_u16(status).unwrap(),
            header,
            body.as_bytes(),
            None,
        );
        assert_eq!(
            (parsed.code.as_str(), parsed.message.as_deref()),
            (code, message),
            "{id}"
        );
    }
}
