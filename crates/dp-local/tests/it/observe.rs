//! What an operator's load balancer and scraper see: `GET /healthz`, `GET /readyz` and `GET /metrics`, in memory
//! and on each store, and `/readyz` going 503 while PostgreSQL refuses connections and 200 again afterwards,
//! with nothing answered lost.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dp_local::{Config, Server};
use serde_json::json;

use crate::state::durable_server;
use crate::stores::{Kind, PgDatabase, Place, admin_url, sql};
use crate::support::*;

/// A plain GET: status, content type, body.
pub fn get(url: &str, path: &str) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// The value of the series whose line starts with `series` (name and labels exactly as printed).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

fn metrics(url: &str) -> String {
    let (status, content_type, body) = get(url, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

async fn health_and_metrics(kind: Option<Kind>) {
    let place = kind.map(|k| Place::new(k, "metrics"));
    let config = Config {
        // The acknowledgement window becomes 0.12 s, so a lease lapses quickly.
        time_scale: 1000.0,
        poll_timeout: Duration::from_secs_f64(200.0),
        state: place.as_ref().map(Place::location),
        ..Config::default()
    };
    let server = Server::bind(config).unwrap();
    let url = server.url();
    let client = Client::new(&url);
    let (status, _, body) = get(&url, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = get(&url, "/readyz");
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    let pipeline = running_pipeline(&client, "metrics", ondemand("wg-metrics", vec![])).await;
    client
        .fails(
            "DescribePipelines",
            json!({"pipelineIds": ["df-NOPE"]}),
            "PipelineNotFoundException",
        )
        .await;
    let task = poll_until_task(&client, "wg-metrics").await;
    assert!(task["taskId"].is_string());
    // Not acknowledged: the lease lapses after the (scaled) acknowledgement window.
    let start = Instant::now();
    let text = loop {
        let text = tokio::task::spawn_blocking({
            let url = url.clone();
            move || metrics(&url)
        })
        .await
        .unwrap();
        if value(&text, "dp_local_leases_lapsed_total") >= Some(1.0) {
            break text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no lease lapsed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(&text, "dp_local_leases_lapsed_total"), Some(1.0));
    assert_eq!(value(&text, "dp_local_tasks_handed_out_total"), Some(1.0));
    for (series, want) in [
        (
            r#"dp_local_requests_total{operation="CreatePipeline",status="200"}"#,
            1.0,
        ),
        (
            r#"dp_local_requests_total{operation="PutPipelineDefinition",status="200"}"#,
            1.0,
        ),
        (
            r#"dp_local_requests_total{operation="DescribePipelines",status="400"}"#,
            1.0,
        ),
        (
            r#"dp_local_requests_total{operation="healthz",status="200"}"#,
            1.0,
        ),
        (
            r#"dp_local_requests_total{operation="readyz",status="200"}"#,
            1.0,
        ),
        (
            r#"dp_local_request_duration_seconds_count{operation="CreatePipeline"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(want), "{series} in {text}");
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("dp_local_request_duration_seconds_bucket{")
                && l.contains(r#"operation="CreatePipeline""#)
                && l.contains(r#"le="+Inf""#)
                && l.ends_with(" 1")
        ),
        "{text}"
    );
    assert!(
        value(&text, "dp_local_open_connections") >= Some(1.0),
        "the scrape's own connection is open: {text}"
    );
    let commits = value(&text, "dp_local_store_commit_duration_seconds_count").unwrap();
    match kind {
        None => assert_eq!(commits, 0.0, "no store in memory"),
        Some(_) => assert!(commits >= 3.0, "create, put and activate committed: {text}"),
    }
    // An unsigned API request is not counted as an operation it did not prove to be.
    let (status, _, _) = get(&url, "/");
    assert_eq!(status, 400);
    let text = metrics(&url);
    assert!(
        value(
            &text,
            r#"dp_local_requests_total{operation="unknown",status="400"}"#
        ) >= Some(1.0),
        "{text}"
    );
    drop(pipeline);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_in_memory() {
    health_and_metrics(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_on_sqlite() {
    health_and_metrics(Some(Kind::Sqlite)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_on_postgres() {
    health_and_metrics(Some(Kind::Postgres)).await;
}

async fn get_async(url: &str, path: &'static str) -> (u16, String) {
    let url = url.to_string();
    let (status, _, body) = tokio::task::spawn_blocking(move || get(&url, path))
        .await
        .unwrap();
    (status, body)
}

/// While PostgreSQL refuses dp-local's connections, `/readyz` answers 503 and a change answers 500; once it
/// accepts them again, dp-local reconnects by itself, `/readyz` answers 200, and after a restart every change
/// that was answered with success is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database() {
    let db = PgDatabase::new("ready");
    let location: PathBuf = db.location();
    let server = durable_server(&location, 1.0, 0.2);
    let url = server.url();
    let client = Client::new(&url);
    let before = client
        .ok(
            "CreatePipeline",
            json!({"name": "before", "uniqueId": "before"}),
        )
        .await["pipelineId"]
        .clone();
    assert_eq!(get_async(&url, "/readyz").await.0, 200);

    let admin = admin_url();
    sql(
        &admin,
        &format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
            db.name
        ),
    );
    let start = Instant::now();
    let (status, body) = loop {
        let (status, body) = get_async(&url, "/readyz").await;
        if status != 200 {
            break (status, body);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "/readyz stays 200 with the database gone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: "), "{body}");
    let during = client
        .call(
            "CreatePipeline",
            json!({"name": "during", "uniqueId": "during"}),
        )
        .await
        .expect_err("no success for a change that did not commit");
    assert_eq!(
        (during.status, during.code.as_str()),
        (500, "InternalServiceError")
    );

    sql(
        &admin,
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name),
    );
    let start = Instant::now();
    loop {
        if get_async(&url, "/readyz").await.0 == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "/readyz never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = client
        .ok(
            "CreatePipeline",
            json!({"name": "after", "uniqueId": "after"}),
        )
        .await["pipelineId"]
        .clone();
    let text = metrics(&url);
    assert!(
        value(
            &text,
            r#"dp_local_requests_total{operation="readyz",status="503"}"#
        ) >= Some(1.0),
        "{text}"
    );
    server.shutdown();

    let server = durable_server(&location, 1.0, 0.2);
    let client = Client::new(&server.url());
    let listed = client.ok("ListPipelines", json!({})).await;
    let ids: Vec<_> = listed["pipelineIdList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "what was answered, and not the change that answered 500: {listed}"
    );
    for answered in [before, after] {
        assert!(ids.contains(&answered), "{answered} is lost: {listed}");
    }
    server.shutdown();
}
