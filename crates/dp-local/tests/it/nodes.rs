//! Several dp-local processes on one PostgreSQL database: one serves, a second stands by (answering 503) and takes
//! over when the first is killed with SIGKILL, with every answered change there; tools are refused meanwhile.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::observe::get;
use crate::process::{DpLocal, run};
use crate::stores::PgDatabase;
use crate::support::*;

/// A dp-local child that is killed (SIGKILL) and reaped on drop, also when the test fails.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get_async(url: &str, path: &'static str) -> (u16, String) {
    let url = url.to_string();
    let (status, _, body) = tokio::task::spawn_blocking(move || get(&url, path))
        .await
        .unwrap();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_answers_503_and_takes_over_when_the_serving_node_is_killed() {
    let db = PgDatabase::new("nodes");
    let mut first = tokio::task::spawn_blocking({
        let url = db.url.clone();
        move || DpLocal::start(&["--state", &url, "--no-console", "--resources", "off"])
    })
    .await
    .unwrap()
    .expect("the first node serves");
    let client = Client::new(&first.url);
    let mut answered = Vec::new();
    for i in 0..5 {
        let id = client
            .ok(
                "CreatePipeline",
                json!({"name": format!("n{i}"), "uniqueId": format!("n{i}")}),
            )
            .await["pipelineId"]
            .clone();
        answered.push(id);
    }
    let held_pipeline = running_pipeline(&client, "held", ondemand("wg-nodes", vec![])).await;
    answered.push(json!(held_pipeline));
    let held = poll_until_task(&client, "wg-nodes").await["taskId"].clone();
    client
        .ok("ReportTaskProgress", json!({"taskId": held}))
        .await;

    // The second node binds its port and stands by.
    let port = free_port();
    let standby_url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .args([
            "--state",
            &db.url,
            "--port",
            &port.to_string(),
            "--no-console",
            "--resources",
            "off",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let second = Node(child);
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = url_tx.send(line);
    });
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let start = Instant::now();
    let standing_by = loop {
        if let Ok(line) = log_rx.recv_timeout(Duration::from_millis(100)) {
            break line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the second node said nothing"
        );
    };
    assert!(
        standing_by.contains("standing by to take over"),
        "{standing_by}"
    );
    let (status, body) = get_async(&standby_url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("standby"), "{body}");
    assert_eq!(get_async(&standby_url, "/healthz").await.0, 200);
    let refused = Client::new(&standby_url)
        .call("ListPipelines", json!({}))
        .await
        .expect_err("a standby serves nothing");
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (503, "ServiceUnavailableException")
    );
    assert!(
        url_rx.try_recv().is_err(),
        "no URL printed while standing by"
    );
    // A tool is refused while a node serves.
    let export = tokio::task::spawn_blocking({
        let url = db.url.clone();
        move || run(&["export", "--state", &url], None)
    })
    .await
    .unwrap();
    assert_eq!(export.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&export.stderr).contains("is served by another dp-local"),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    // The first node still serves, and its answers keep being committed.
    let last = client
        .ok(
            "CreatePipeline",
            json!({"name": "last", "uniqueId": "last"}),
        )
        .await["pipelineId"]
        .clone();
    answered.push(last);

    first.kill();
    let start = Instant::now();
    loop {
        if get_async(&standby_url, "/readyz").await.0 == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the standby never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let printed = url_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(printed.trim_end(), standby_url, "the URL once serving");
    let client = Client::new(&standby_url);
    let listed = client.ok("ListPipelines", json!({})).await;
    let ids: Vec<_> = listed["pipelineIdList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    for id in &answered {
        assert!(
            ids.contains(id),
            "{id} was answered by the first node and is lost: {listed}"
        );
    }
    assert_eq!(ids.len(), answered.len(), "{listed}");
    // The task held through the first node is still held, under the same id.
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": held}))
            .await,
        json!({"canceled": false})
    );
    drop(second);
}
