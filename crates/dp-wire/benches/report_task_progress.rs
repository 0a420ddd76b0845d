//! Per-call latency of ReportTaskProgress on one kept-alive loopback connection, three ways in the same run:
//! a raw HTTP/1.1 round trip (the floor: same bytes, no signing, no parsing), dp-wire, and aws-sdk-datapipeline.
//! Then start-up: a new client, configured as a command line would configure it, and its first call on a new
//! connection, for dp-wire and for aws-sdk-datapipeline (the SDK's orchestrator set-up against dp-wire's).
//!
//! The server is a plain blocking thread per connection answering `{"canceled":false}` with keep-alive. Besides
//! criterion's figures, the run prints the mean of 1,000 consecutive calls per client and each client's overhead
//! above the raw round trip, and the mean of 300 start-ups per client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};

const BODY: &[u8] = br#"{"canceled":false}"#;

/// Serves every connection on its own thread, answering each request with `BODY`. Runs until the process ends.
fn start_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: r\r\nContent-Length: {}\r\n\r\n",
                        BODY.len()
                    );
                    if writer
                        .write_all(head.as_bytes())
                        .and_then(|_| writer.write_all(BODY))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The floor: a pre-built request with the same headers and body, sent on one hyper connection.
struct Raw {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        let host = url.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        Raw { sender, host }
    }

    async fn call(&mut self) {
        let body = Bytes::from_static(br#"{"taskId":"task-123"}"#);
        let request = http::Request::post("/")
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "DataPipeline.ReportTaskProgress")
            .header("content-length", body.len())
            .body(Full::new(body))
            .unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], BODY);
    }
}

fn dp_client(url: &str) -> dp_wire::Client {
    let env = dp_wire::Environment::from_vars([
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("HOME", "/nonexistent"),
    ]);
    let settings = dp_wire::Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.to_string()),
        ..Default::default()
    };
    dp_wire::Client::with_environment(settings, env).unwrap()
}

async fn dp_call(client: &dp_wire::Client) {
    let operation = dp_model::operation("ReportTaskProgress").unwrap();
    let output = client
        .call_json(operation, &serde_json::json!({"taskId": "task-123"}))
        .await
        .unwrap();
    assert_eq!(output["canceled"], false);
}

fn sdk_client(url: &str) -> aws_sdk_datapipeline::Client {
    let credentials = aws_credential_types::Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "bench",
    );
    let config = aws_sdk_datapipeline::Config::builder()
        .behavior_version(aws_sdk_datapipeline::config::BehaviorVersion::latest())
        .region(aws_sdk_datapipeline::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_datapipeline::Client::from_conf(config)
}

async fn sdk_call(client: &aws_sdk_datapipeline::Client) {
    let output = client
        .report_task_progress()
        .task_id("task-123")
        .send()
        .await
        .unwrap();
    assert!(!output.canceled);
}

/// Mean per call over `n` consecutive calls, after 50 warm-up calls.
fn mean_of<F: FnMut()>(n: u32, mut call: F) -> Duration {
    for _ in 0..50 {
        call();
    }
    let start = Instant::now();
    for _ in 0..n {
        call();
    }
    start.elapsed() / n
}

fn report_task_progress(c: &mut Criterion) {
    let url = start_server();
    let rt = runtime();
    let mut raw = rt.block_on(Raw::connect(&url));
    let dp = dp_client(&url);
    let sdk = rt.block_on(async { sdk_client(&url) });

    let raw_mean = mean_of(1000, || rt.block_on(raw.call()));
    let dp_mean = mean_of(1000, || rt.block_on(dp_call(&dp)));
    let sdk_mean = mean_of(1000, || rt.block_on(sdk_call(&sdk)));
    let over = |d: Duration| d.saturating_sub(raw_mean);
    println!(
        "mean of 1,000 calls: raw {raw_mean:?}, dp-wire {dp_mean:?} (+{:?}), aws-sdk-datapipeline {sdk_mean:?} (+{:?}); \
         dp-wire overhead / SDK overhead = {:.2}",
        over(dp_mean),
        over(sdk_mean),
        over(dp_mean).as_secs_f64() / over(sdk_mean).as_secs_f64().max(f64::MIN_POSITIVE)
    );

    let dp_start = mean_of(300, || rt.block_on(dp_call(&dp_client(&url))));
    let sdk_start = mean_of(300, || {
        rt.block_on(async { sdk_call(&sdk_client(&url)).await })
    });
    println!(
        "mean of 300 start-ups (new client, first call on a new connection): dp-wire {dp_start:?}, \
         aws-sdk-datapipeline {sdk_start:?}; dp-wire / SDK = {:.2}",
        dp_start.as_secs_f64() / sdk_start.as_secs_f64().max(f64::MIN_POSITIVE)
    );

    let mut group = c.benchmark_group("report_task_progress");
    group.bench_function("raw_http_round_trip", |b| {
        b.iter(|| rt.block_on(raw.call()))
    });
    group.bench_function("dp_wire", |b| b.iter(|| rt.block_on(dp_call(&dp))));
    group.bench_function("aws_sdk_datapipeline", |b| {
        b.iter(|| rt.block_on(sdk_call(&sdk)))
    });
    group.finish();

    let mut group = c.benchmark_group("new_client_first_call");
    group.bench_function("dp_wire", |b| {
        b.iter(|| rt.block_on(dp_call(&dp_client(&url))))
    });
    group.bench_function("aws_sdk_datapipeline", |b| {
        b.iter(|| rt.block_on(async { sdk_call(&sdk_client(&url)).await }))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(4));
    targets = report_task_progress
}
criterion_main!(benches);
