//! Several dp-local processes on one PostgreSQL database. By default they all serve it together: a task made
//! through one node wakes a long poll waiting on another, concurrent pollers spread over the nodes get each task
//! once, a schedule makes one instance per period however many nodes' timers see it, and a lapsed lease acts
//! once. With `--standby`, one serves and a second stands by (answering 503) and takes over when the first is
//! killed with SIGKILL, with every answered change there; tools are refused meanwhile. Under load, nodes killed at
//! random, the database's sessions cut off, and a PostgreSQL server of the test's own restarted and crashed lose
//! nothing answered.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
        move || {
            DpLocal::start(&[
                "--state",
                &url,
                "--no-console",
                "--resources",
                "off",
                "--standby",
            ])
        }
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
            "--standby",
            "--exit-with-parent",
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

/// Starts `count` nodes serving the database at `url` together, each with `args` too.
async fn nodes(url: &str, count: usize, args: &[&str]) -> Vec<DpLocal> {
    let mut started = Vec::new();
    for _ in 0..count {
        let mut all: Vec<String> = ["--state", url, "--no-console", "--resources", "off"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        all.extend(args.iter().map(|a| a.to_string()));
        let node = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            DpLocal::start(&args)
        })
        .await
        .unwrap()
        .expect("a node serves");
        started.push(node);
    }
    started
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_made_through_one_node_wakes_a_long_poll_on_another() {
    let db = PgDatabase::new("wake");
    // A long poll of 60 s: only a wake-up can end it early with a task (no node polls the database).
    let started = nodes(&db.url, 2, &["--poll-timeout", "60"]).await;
    let (a, b) = (Client::new(&started[0].url), Client::new(&started[1].url));
    let poll = tokio::spawn({
        let b = b.clone();
        async move {
            let asked = Instant::now();
            let out = b
                .ok(
                    "PollForTask",
                    json!({"workerGroup": "wg-wake", "hostname": "on-b"}),
                )
                .await;
            (out, asked.elapsed())
        }
    });
    // Time for the poll to reach node B and wait there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !poll.is_finished(),
        "the poll answered before any task existed"
    );
    let pipeline = running_pipeline(&a, "wake", ondemand("wg-wake", vec![])).await;
    let (out, waited) = poll.await.unwrap();
    let task = &out["taskObject"];
    assert_eq!(task["pipelineId"], json!(pipeline), "{out}");
    assert!(
        waited < Duration::from_secs(30),
        "the long poll on B ended after {waited:?}, by its timeout rather than a wake-up: {out}"
    );
    // Node A sees the hand-out B made.
    let attempt = task["attemptId"].as_str().unwrap();
    wait_for(&a, &pipeline, attempt, "@status", "RUNNING").await;
    wait_for(&a, &pipeline, attempt, "@hostname", "on-b").await;
}

/// The number of commits a node's `/metrics` counted (`dp_local_store_commit_duration_seconds_count`).
async fn commits(url: &str) -> f64 {
    let url = url.to_string();
    let (_, _, text) = tokio::task::spawn_blocking(move || get(&url, "/metrics"))
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("dp_local_store_commit_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no commit count in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_on_one_node_share_commits_and_all_are_saved() {
    const CHANGES: usize = 64;
    let db = PgDatabase::new("group");
    let started = nodes(&db.url, 2, &[]).await;
    let (a, b) = (Client::new(&started[0].url), Client::new(&started[1].url));
    let before = commits(&started[0].url).await;
    // Every creation is a change of its own; sent all at once, they wait for each other's turns and share them.
    let mut made = Vec::new();
    for i in 0..CHANGES {
        let a = a.clone();
        made.push(tokio::spawn(async move {
            let out = a
                .ok(
                    "CreatePipeline",
                    json!({"name": format!("group-{i}"), "uniqueId": format!("group-{i}")}),
                )
                .await;
            out["pipelineId"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = HashSet::new();
    for m in made {
        ids.insert(m.await.unwrap());
    }
    assert_eq!(ids.len(), CHANGES);
    let used = commits(&started[0].url).await - before;
    assert!(
        used >= 1.0 && used < CHANGES as f64,
        "{CHANGES} concurrent creations took {used} commits: none was shared"
    );
    // Each answered creation was committed: the other node lists them all, and a creation retried there with
    // the same uniqueId answers the same pipeline.
    let listed = b.ok("ListPipelines", json!({})).await;
    let listed: HashSet<String> = listed["pipelineIdList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.is_subset(&listed),
        "node B lists {listed:?}, A made {ids:?}"
    );
    let again = b
        .ok(
            "CreatePipeline",
            json!({"name": "group-7", "uniqueId": "group-7"}),
        )
        .await;
    assert!(
        ids.contains(again["pipelineId"].as_str().unwrap()),
        "{again}"
    );
}

/// The server's write-ahead log positions: (written so far, flushed to disk so far), as numbers.
fn wal_positions(url: &str) -> (i64, i64) {
    let rows = crate::stores::try_sql(
        url,
        "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, pg_current_wal_flush_lsn() - '0/0'::pg_lsn",
    )
    .unwrap();
    let number = |i: usize| -> i64 {
        let text = rows[0][i].as_deref().unwrap();
        text.split('.').next().unwrap().parse().unwrap()
    };
    (number(0), number(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_change_was_flushed_to_disk_first() {
    // A server of the test's own whose background WAL writer flushes only every 10 s, so that only a flush made
    // for the change itself can have put it on disk by the time it is answered.
    let server = Arc::new(
        tokio::task::spawn_blocking(|| {
            PgServer::start_with("-c wal_writer_delay=10000 -c wal_writer_flush_after=1GB")
        })
        .await
        .unwrap(),
    );
    // Two nodes, asked in turn: the first change is made by a node that has heard of no other (its commit waits
    // for the disk itself); every later one by a node that heard the other commit (its turn commits without
    // waiting for the disk, so that the turn lock is let go at once, then flushes in a second transaction).
    let started = nodes(&server.url(), 2, &[]).await;
    let clients = [Client::new(&started[0].url), Client::new(&started[1].url)];
    for i in 0..10 {
        let url = server.url();
        let (written, _) = tokio::task::spawn_blocking(move || wal_positions(&url))
            .await
            .unwrap();
        clients[i % 2]
            .ok(
                "CreatePipeline",
                json!({"name": format!("flushed-{i}"), "uniqueId": format!("flushed-{i}")}),
            )
            .await;
        let url = server.url();
        let (_, flushed) = tokio::task::spawn_blocking(move || wal_positions(&url))
            .await
            .unwrap();
        assert!(
            flushed > written,
            "change {i} was answered with the log flushed only to {flushed}, not past {written}, where it began"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_pollers_on_three_nodes_get_each_task_once() {
    const TASKS: usize = 30;
    let db = PgDatabase::new("pollers");
    let started = nodes(&db.url, 3, &["--poll-timeout", "0.5"]).await;
    let clients: Vec<Client> = started.iter().map(|n| Client::new(&n.url)).collect();
    let mut objects = vec![object(
        "Default",
        vec![s("scheduleType", "ondemand"), s("workerGroup", "wg-ten")],
    )];
    for i in 0..TASKS {
        objects.push(object(
            &format!("A{i}"),
            vec![s("type", "ShellCommandActivity"), s("command", "true")],
        ));
    }
    let pipeline = running_pipeline(&clients[0], "ten", objects).await;
    let handed: Arc<Mutex<Vec<(String, String, usize)>>> = Arc::default();
    let mut pollers = Vec::new();
    for i in 0..10 {
        let (poll_via, end_via) = (clients[i % 3].clone(), clients[(i + 1) % 3].clone());
        let handed = handed.clone();
        pollers.push(tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(60);
            while handed.lock().unwrap().len() < TASKS && Instant::now() < until {
                let out = poll_via
                    .ok(
                        "PollForTask",
                        json!({"workerGroup": "wg-ten", "hostname": format!("poller-{i}")}),
                    )
                    .await;
                let Some(task) = out.get("taskObject") else {
                    continue;
                };
                let task_id = task["taskId"].as_str().unwrap().to_string();
                handed.lock().unwrap().push((
                    task["attemptId"].as_str().unwrap().to_string(),
                    task_id.clone(),
                    i % 3,
                ));
                end_via
                    .ok(
                        "SetTaskStatus",
                        json!({"taskId": task_id, "taskStatus": "FINISHED"}),
                    )
                    .await;
            }
        }));
    }
    for p in pollers {
        p.await.unwrap();
    }
    let handed = handed.lock().unwrap().clone();
    let mut by_attempt: HashMap<&str, Vec<&str>> = HashMap::new();
    for (attempt, task, _) in &handed {
        by_attempt.entry(attempt).or_default().push(task);
    }
    let twice: Vec<_> = by_attempt.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(twice.is_empty(), "handed out twice: {twice:?}");
    assert_eq!(by_attempt.len(), TASKS, "{handed:?}");
    let nodes_used: HashSet<usize> = handed.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(
        nodes_used.len(),
        3,
        "every node handed out tasks: {handed:?}"
    );
    // Every node shows every attempt finished.
    for client in &clients {
        for attempt in by_attempt.keys() {
            let f = fields(client, &pipeline, attempt).await;
            assert_eq!(
                f.get("@status").map(String::as_str),
                Some("FINISHED"),
                "{attempt}: {f:?}"
            );
        }
    }
}

/// Instance ids of a pipeline as one node shows them, each with its `@scheduledStartTime` and `@attemptCount`.
async fn instances(client: &Client, pipeline: &str) -> Vec<(String, String, String)> {
    let ids: Vec<Value> = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": pipeline, "sphere": "INSTANCE", "limit": 1000}),
        )
        .await["ids"]
        .as_array()
        .unwrap()
        .clone();
    let mut out = Vec::new();
    for id in ids {
        let id = id.as_str().unwrap();
        let f = fields(client, pipeline, id).await;
        out.push((
            id.to_string(),
            f.get("@scheduledStartTime").cloned().unwrap_or_default(),
            f.get("@attemptCount").cloned().unwrap_or_default(),
        ));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_makes_one_instance_per_period_with_three_nodes() {
    let db = PgDatabase::new("sched");
    // At 900 times the service's speed a 15-minute period passes every second.
    let started = nodes(&db.url, 3, &["--time-scale", "900"]).await;
    let clients: Vec<Client> = started.iter().map(|n| Client::new(&n.url)).collect();
    let objects = vec![
        object(
            "Default",
            vec![
                s("scheduleType", "cron"),
                s("workerGroup", "wg-sched"),
                r("schedule", "Every"),
            ],
        ),
        object(
            "Every",
            vec![
                s("type", "Schedule"),
                s("period", "15 minutes"),
                s("startAt", "FIRST_ACTIVATION_DATE_TIME"),
            ],
        ),
        object(
            "A",
            vec![s("type", "ShellCommandActivity"), s("command", "true")],
        ),
    ];
    let pipeline = running_pipeline(&clients[1], "sched", objects).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Each node's timer saw every period; the instances are the same on every node, one per period, each with
    // one attempt.
    let mut shown = Vec::new();
    for client in &clients {
        shown.push(instances(client, &pipeline).await);
    }
    let first = &shown[0];
    assert!(first.len() >= 4, "too few periods passed: {first:?}");
    let starts: Vec<i64> = first
        .iter()
        .map(|(_, start, _)| {
            dp_model::timestamp::parse(start).unwrap_or_else(|| panic!("not a time: {start}"))
        })
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        first.len(),
        "two instances of one period: {first:?}"
    );
    for pair in sorted.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            900,
            "a period skipped or doubled: {first:?}"
        );
    }
    assert!(
        first.iter().all(|(_, _, attempts)| attempts == "1"),
        "an instance got more than one attempt: {first:?}"
    );
    // Later nodes may have seen one more period come by; what both show agrees.
    for other in &shown[1..] {
        let common = first.len().min(other.len());
        assert_eq!(first[..common], other[..common], "nodes disagree");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_acts_once_across_three_nodes() {
    let db = PgDatabase::new("lapse");
    // At 60 times the service's speed, the 1-minute progress timeout lapses after a second.
    let started = nodes(&db.url, 3, &["--time-scale", "60"]).await;
    let clients: Vec<Client> = started.iter().map(|n| Client::new(&n.url)).collect();
    let pipeline = running_pipeline(
        &clients[0],
        "lapse",
        ondemand(
            "wg-lapse",
            vec![
                s("reportProgressTimeout", "1 minutes"),
                s("maximumRetries", "3"),
                s("retryDelay", "60 minutes"),
            ],
        ),
    )
    .await;
    let task = poll_until_task(&clients[1], "wg-lapse").await;
    let attempt = task["attemptId"].as_str().unwrap().to_string();
    clients[2]
        .ok("ReportTaskProgress", json!({"taskId": task["taskId"]}))
        .await;
    // Every node knows the deadline; it must act once: attempt 1 times out and one retry is made.
    wait_for(&clients[0], &pipeline, &attempt, "@status", "TIMEDOUT").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let instance = attempt.split("_Attempt=").next().unwrap().to_string();
    for client in &clients {
        let f = fields(client, &pipeline, &instance).await;
        assert_eq!(
            f.get("@attemptCount").map(String::as_str),
            Some("2"),
            "{instance}: {f:?}"
        );
    }
    let mut lapsed = 0.0;
    for node in &started {
        let url = node.url.clone();
        let (_, _, text) = tokio::task::spawn_blocking(move || get(&url, "/metrics"))
            .await
            .unwrap();
        lapsed += text
            .lines()
            .find_map(|l| l.strip_prefix("dp_local_leases_lapsed_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert_eq!(lapsed, 1.0, "leases lapsed over all nodes");
}

/// What the crash test's clients were told with a 2xx answer, and what broke the rules.
#[derive(Default)]
struct Told {
    /// Pipelines whose creation was answered.
    created: HashSet<String>,
    activated: HashSet<String>,
    /// (pipeline, attempt) -> task ids handed out for it.
    handed: HashMap<(String, String), Vec<String>>,
    /// (pipeline, attempt) -> answered FINISHED.
    ended: HashSet<(String, String)>,
    /// Attempts whose set-task-status answer was lost and whose retry said "already ended".
    ended_unanswered: HashSet<(String, String)>,
    violations: Vec<String>,
    unanswered_polls: usize,
    answered: usize,
    /// 5xx answers (a turn that could not commit), sent again.
    server_errors: usize,
    /// Requests that got no answer at all (the node was killed, or broke the connection), sent again.
    no_answer: usize,
    /// Tasks ended with an answer while `counting` was set.
    ended_while_counting: usize,
    counting: bool,
}

type Record = Arc<Mutex<Told>>;

/// Sends until an answer comes that is not "try again": a node being killed or restarted gives no answer, a turn
/// that could not commit answers 5xx (nothing was made), and both are sent again, as the CLI and runners do.
/// `None` once `stop` is set and the nodes stayed away.
async fn until_answered(
    client: &Client,
    told: &Record,
    stop: &std::sync::atomic::AtomicBool,
    operation: &str,
    input: &Value,
) -> Option<Result<Value, Failure>> {
    let mut tries = 0;
    loop {
        match client.try_unsigned(operation, input).await {
            Ok(Err(f)) if f.status >= 500 => told.lock().unwrap().server_errors += 1,
            Ok(answer) => return Some(answer),
            Err(_) => told.lock().unwrap().no_answer += 1,
        }
        tries += 1;
        if stop.load(std::sync::atomic::Ordering::Relaxed) && tries > 200 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn crash_maker(
    index: usize,
    client: Client,
    told: Record,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut round = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        round += 1;
        let name = format!("nodes-crash-{index}-{round}");
        let mut objects = vec![object(
            "Default",
            vec![
                s("scheduleType", "ondemand"),
                s("workerGroup", "wg-nodes-crash"),
                s("maximumRetries", "0"),
            ],
        )];
        for i in 0..4 {
            objects.push(object(
                &format!("A{i}"),
                vec![s("type", "ShellCommandActivity"), s("command", "true")],
            ));
        }
        let steps = [
            ("CreatePipeline", json!({"name": name, "uniqueId": name})),
            ("PutPipelineDefinition", json!({"pipelineObjects": objects})),
            ("ActivatePipeline", json!({})),
        ];
        let mut pid = String::new();
        for (operation, mut input) in steps {
            if !pid.is_empty() {
                input["pipelineId"] = json!(pid);
            }
            match until_answered(&client, &told, &stop, operation, &input).await {
                Some(Ok(out)) => {
                    told.lock().unwrap().answered += 1;
                    if operation == "CreatePipeline" {
                        pid = out["pipelineId"].as_str().unwrap().to_string();
                        told.lock().unwrap().created.insert(pid.clone());
                    }
                    if operation == "ActivatePipeline" {
                        told.lock().unwrap().activated.insert(pid.clone());
                    }
                }
                Some(Err(f)) => {
                    told.lock()
                        .unwrap()
                        .violations
                        .push(format!("{operation} {pid}: {f:?}"));
                    break;
                }
                None => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(50..300))).await;
    }
}

async fn crash_worker(
    index: usize,
    client: Client,
    told: Record,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut empty = 0;
    loop {
        let poll = json!({"workerGroup": "wg-nodes-crash", "hostname": format!("w{index}")});
        let task = match client.try_unsigned("PollForTask", &poll).await {
            Ok(Ok(out)) => out.get("taskObject").cloned(),
            Ok(Err(f)) if f.status < 500 => {
                told.lock().unwrap().violations.push(format!("poll: {f:?}"));
                None
            }
            // No answer, or a turn that failed: a task it may have handed out is lost with the answer.
            answer => {
                {
                    let mut t = told.lock().unwrap();
                    t.unanswered_polls += 1;
                    t.server_errors += usize::from(answer.is_ok());
                    t.no_answer += usize::from(answer.is_err());
                }
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(task) = task else {
            empty += 1;
            if stop.load(std::sync::atomic::Ordering::Relaxed) && empty >= 3 {
                return;
            }
            continue;
        };
        empty = 0;
        let task_id = task["taskId"].as_str().unwrap().to_string();
        let key = (
            task["pipelineId"].as_str().unwrap().to_string(),
            task["attemptId"].as_str().unwrap().to_string(),
        );
        told.lock()
            .unwrap()
            .handed
            .entry(key.clone())
            .or_default()
            .push(task_id.clone());
        let report = json!({"taskId": task_id});
        match until_answered(&client, &told, &stop, "ReportTaskProgress", &report).await {
            Some(Ok(_)) => {}
            Some(Err(f)) => told
                .lock()
                .unwrap()
                .violations
                .push(format!("report {task_id}: {f:?}")),
            None => return,
        }
        let end = json!({"taskId": task_id, "taskStatus": "FINISHED"});
        let mut retried = false;
        loop {
            match client.try_unsigned("SetTaskStatus", &end).await {
                Ok(Ok(_)) => {
                    let mut t = told.lock().unwrap();
                    t.ended.insert(key.clone());
                    t.ended_while_counting += usize::from(t.counting);
                    break;
                }
                Ok(Err(f)) if f.status < 500 => {
                    let mut t = told.lock().unwrap();
                    if retried && f.message.contains("already ended") {
                        t.ended_unanswered.insert(key.clone());
                    } else {
                        t.violations
                            .push(format!("set-task-status {task_id}: {f:?}"));
                    }
                    break;
                }
                // No answer, or a 5xx, may have changed something (a turn whose COMMIT was sent when the
                // connection broke cannot know whether it took effect): the retry's answer tells.
                Ok(Err(_)) => {
                    told.lock().unwrap().server_errors += 1;
                    retried = true;
                }
                Err(_) => {
                    told.lock().unwrap().no_answer += 1;
                    retried = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `@pipelineState` of each of `pipelines` that one node shows (a pipeline it does not know is left out).
async fn pipeline_states(client: &Client, pipelines: &HashSet<String>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let ids: Vec<&String> = pipelines.iter().collect();
    for chunk in ids.chunks(25) {
        // A pipeline the node does not know fails the whole call: then ask one at a time.
        let described = match client
            .call("DescribePipelines", json!({"pipelineIds": chunk}))
            .await
        {
            Ok(d) => d["pipelineDescriptionList"].as_array().unwrap().clone(),
            Err(_) => {
                let mut one_by_one = Vec::new();
                for id in chunk {
                    if let Ok(d) = client
                        .call("DescribePipelines", json!({"pipelineIds": [id]}))
                        .await
                    {
                        one_by_one.extend(d["pipelineDescriptionList"].as_array().unwrap().clone());
                    }
                }
                one_by_one
            }
        };
        for p in described {
            let state = p["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["key"] == "@pipelineState")
                .and_then(|f| f["stringValue"].as_str())
                .unwrap_or("")
                .to_string();
            out.insert(p["pipelineId"].as_str().unwrap().to_string(), state);
        }
    }
    out
}

/// The statuses of every attempt of the pipelines, as one node shows them.
async fn attempt_statuses(
    client: &Client,
    pipelines: &HashSet<String>,
) -> HashMap<(String, String), HashMap<String, String>> {
    let mut out = HashMap::new();
    for pid in pipelines {
        let ids: Vec<String> = client
            .ok(
                "QueryObjects",
                json!({"pipelineId": pid, "sphere": "ATTEMPT", "limit": 1000}),
            )
            .await["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for chunk in ids.chunks(100) {
            let described = client
                .ok(
                    "DescribeObjects",
                    json!({"pipelineId": pid, "objectIds": chunk}),
                )
                .await;
            for o in described["pipelineObjects"].as_array().unwrap() {
                let mut f = HashMap::new();
                for field in o["fields"].as_array().unwrap() {
                    let v = field["stringValue"]
                        .as_str()
                        .or(field["refValue"].as_str())
                        .unwrap_or("");
                    f.entry(field["key"].as_str().unwrap().to_string())
                        .or_insert_with(|| v.to_string());
                }
                out.insert((pid.clone(), o["id"].as_str().unwrap().to_string()), f);
            }
        }
    }
    out
}

/// Stops the clients [`crash_clients`] started, waits for them, and returns what they were told.
async fn stop_clients(
    stop: &std::sync::atomic::AtomicBool,
    clients: Vec<tokio::task::JoinHandle<()>>,
    told: Record,
) -> Told {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    Arc::try_unwrap(told)
        .unwrap_or_else(|_| panic!("clients still hold the record"))
        .into_inner()
        .unwrap()
}

/// Starts `makers` clients that create and activate pipelines and `workers` that poll and end tasks, spread over
/// the nodes at `urls` in turn, recording what they were told in `told` until `stop` is set.
fn crash_clients(
    urls: &[String],
    makers: usize,
    workers: usize,
    told: &Record,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut clients = Vec::new();
    for i in 0..makers {
        let c = Client::new(&urls[i % urls.len()]);
        clients.push(tokio::spawn(crash_maker(i, c, told.clone(), stop.clone())));
    }
    for i in 0..workers {
        let c = Client::new(&urls[i % urls.len()]);
        clients.push(tokio::spawn(crash_worker(i, c, told.clone(), stop.clone())));
    }
    clients
}

/// Three nodes on one database, 20 clients spread over them, random nodes killed with SIGKILL and restarted:
/// afterwards every answered request is reflected on every node, no attempt was handed to two pollers, and every
/// task ended exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_killed_at_random_lose_nothing_answered() {
    const KILL_PHASE: Duration = Duration::from_secs(20);
    let db = PgDatabase::new("ncrash");
    let args = ["--no-auth", "--poll-timeout", "0.2"];
    let mut running = nodes(&db.url, 3, &args).await;
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();
    let told: Record = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = crash_clients(&urls, 6, 14, &told, &stop);
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < KILL_PHASE {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(200..1200))).await;
        let k = fastrand::usize(..3);
        running[k].kill();
        kills += 1;
        let activated = told.lock().unwrap().activated.clone();
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..100))).await;
        let port = urls[k].rsplit(':').next().unwrap().to_string();
        let mut restart_args: Vec<&str> = args.to_vec();
        restart_args.extend(["--port", &port]);
        let mut all: Vec<String> = ["--state", &db.url, "--no-console", "--resources", "off"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        all.extend(restart_args.iter().map(|a| a.to_string()));
        running[k] = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            DpLocal::start(&args)
        })
        .await
        .unwrap()
        .expect("a killed node restarts");
        // The restarted node shows every pipeline whose activation was answered, by any node, as activated.
        let checker = Client::new(&urls[k]);
        let ids: Vec<&String> = activated.iter().collect();
        for chunk in ids.chunks(25) {
            let described = checker
                .ok("DescribePipelines", json!({"pipelineIds": chunk}))
                .await;
            for p in described["pipelineDescriptionList"].as_array().unwrap() {
                let state = p["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["key"] == "@pipelineState")
                    .and_then(|f| f["stringValue"].as_str())
                    .unwrap_or("");
                assert_ne!(state, "PENDING", "{} was activated: {p}", p["pipelineId"]);
            }
        }
    }
    let told = stop_clients(&stop, clients, told).await;
    let (ended, running_now, waiting) = verify(&told, &urls).await;
    eprintln!(
        "three-node crash test: {kills} SIGKILLs in {:?}, {} answered setup calls, {} tasks handed out, {} ended, {running_now} orphaned by lost poll answers, {waiting} left waiting",
        started.elapsed(),
        told.answered,
        told.handed.len(),
        ended
    );
    assert!(kills >= 5, "only {kills} kills");
    assert!(
        ended >= 50,
        "only {ended} tasks ended: too light a load to mean anything"
    );
}

/// The invariants after a run of the crash clients, checked through every node in `urls`; returns how many tasks
/// ended, how many attempts are left running (orphaned by lost poll answers) and how many wait for a runner.
async fn verify(told: &Told, urls: &[String]) -> (usize, usize, usize) {
    assert!(
        told.violations.is_empty(),
        "answers that break the rules:\n{}",
        told.violations.join("\n")
    );
    let doubled: Vec<_> = told.handed.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(doubled.is_empty(), "handed out twice: {doubled:?}");
    // Every node shows every pipeline whose creation was answered, and those whose activation was answered as
    // activated.
    for url in urls {
        let states = pipeline_states(&Client::new(url), &told.created).await;
        let missing: Vec<_> = told
            .created
            .iter()
            .filter(|p| !states.contains_key(*p))
            .collect();
        assert!(missing.is_empty(), "{url} does not show {missing:?}");
        let pending: Vec<_> = told
            .activated
            .iter()
            .filter(|p| states.get(*p).is_none_or(|s| s == "PENDING"))
            .collect();
        assert!(
            pending.is_empty(),
            "{url} shows these answered activations as not activated: {pending:?}"
        );
    }
    let mut pipelines: HashSet<String> = told.activated.clone();
    pipelines.extend(told.handed.keys().map(|(p, _)| p.clone()));
    // Every node shows the same attempts; ended ones are exactly those the workers ended.
    let mut shown = Vec::new();
    for url in urls {
        shown.push(attempt_statuses(&Client::new(url), &pipelines).await);
    }
    for other in &shown[1..] {
        let differ: Vec<_> = shown[0]
            .iter()
            .filter(|(k, f)| other.get(*k).map(|o| o.get("@status")) != Some(f.get("@status")))
            .map(|(k, _)| k)
            .collect();
        assert!(
            differ.is_empty(),
            "nodes show different statuses for {differ:?}"
        );
    }
    let server_ended: HashSet<(String, String)> = shown[0]
        .iter()
        .filter(|(_, f)| f.get("@status").map(String::as_str) == Some("FINISHED"))
        .map(|(k, _)| k.clone())
        .collect();
    let client_ended: HashSet<(String, String)> = told
        .ended
        .iter()
        .chain(told.ended_unanswered.iter())
        .cloned()
        .collect();
    let not_by_clients: Vec<_> = server_ended.difference(&client_ended).collect();
    assert!(
        not_by_clients.is_empty(),
        "ended on the server but by no client: {not_by_clients:?}"
    );
    let lost: Vec<_> = told.ended.difference(&server_ended).collect();
    assert!(lost.is_empty(), "answered FINISHED but not: {lost:?}");
    let running_now = shown[0]
        .values()
        .filter(|f| f.get("@status").map(String::as_str) == Some("RUNNING"))
        .count();
    assert!(
        running_now <= told.unanswered_polls,
        "{running_now} attempts are running but only {} polls went unanswered",
        told.unanswered_polls
    );
    let waiting = shown[0]
        .values()
        .filter(|f| f.get("@status").map(String::as_str) == Some("WAITING_FOR_RUNNER"))
        .count();
    (client_ended.len(), running_now, waiting)
}

/// What a PostgreSQL restart does to the nodes, under load: every dp-local session of the database is terminated
/// and new ones are refused for 2 s, then allowed again. Meanwhile changes answer 5xx (never success), and
/// afterwards the nodes serve again by themselves: tasks end, and nothing answered is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_under_load_fails_changes_cleanly_and_loses_nothing() {
    database_away_under_load("outage", 2, &[]).await;
}

/// The same for one node started with `--standby`, which commits through its writer (a commit in one round trip)
/// rather than in turns: the commit in hand fails, the writer keeps the rows and retries them on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_node_with_its_database_gone_under_load_fails_changes_cleanly_and_loses_nothing()
{
    database_away_under_load("outage_standby", 1, &["--standby"]).await;
}

async fn database_away_under_load(label: &str, count: usize, extra: &[&str]) {
    let db = PgDatabase::new(label);
    let mut args = vec!["--no-auth", "--poll-timeout", "0.2"];
    args.extend_from_slice(extra);
    let running = nodes(&db.url, count, &args).await;
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();
    let told: Record = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = crash_clients(&urls, 4, 8, &told, &stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let admin = crate::stores::admin_url();
    let name = db.name.clone();
    tokio::task::spawn_blocking({
        let (admin, name) = (admin.clone(), name.clone());
        move || {
            crate::stores::sql(
                &admin,
                &format!(
                    "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ),
            )
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let errors_during = told.lock().unwrap().server_errors;
    tokio::task::spawn_blocking(move || {
        crate::stores::sql(
            &admin,
            &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
        )
    })
    .await
    .unwrap();
    told.lock().unwrap().counting = true;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let told = stop_clients(&stop, clients, told).await;
    let (ended, running_now, _) = verify(&told, &urls).await;
    // And in the database itself: every pipeline whose creation was answered has its row.
    let url = db.url.clone();
    let stored: HashSet<String> =
        tokio::task::spawn_blocking(move || crate::stores::sql(&url, "SELECT id FROM pipelines"))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|row| row.into_iter().next().flatten())
            .collect();
    let missing: Vec<_> = told.created.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "answered creations with no row in the database: {missing:?}"
    );
    eprintln!(
        "outage test ({label}): {errors_during} 5xx answers during the outage, {} in all, {ended} tasks ended ({} after it), {running_now} orphaned by lost poll answers",
        told.server_errors, told.ended_while_counting
    );
    assert!(
        errors_during > 0,
        "no request failed while the database was away"
    );
    assert!(
        told.ended_while_counting > 0,
        "no task ended once the database was back"
    );
}

/// A real PostgreSQL server restarted under load, twice, while two nodes serve it and stay up: `pg_ctl restart -m
/// fast` (sessions terminated, shutdown checkpoint), then a crash (`pg_ctl stop -m immediate`: every server process
/// quits at once; started again a second later, it recovers from the WAL). The server is one of the test's own
/// (`PgServer`), never the shared one. While it is away, changes answer 5xx and never success, and every request
/// is answered; once it is back each node takes a change again by itself. Afterwards every answered change is
/// there through both nodes and through a third node started on the database after the load (which knows only
/// what was committed), no task was handed to two pollers, and a pipeline made through one node is seen through
/// the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_server_restarted_and_crashed_under_load_fails_changes_cleanly_and_loses_nothing()
 {
    let server = Arc::new(tokio::task::spawn_blocking(PgServer::start).await.unwrap());
    let args = ["--no-auth", "--poll-timeout", "0.2"];
    let running = nodes(&server.url(), 2, &args).await;
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();
    let told: Record = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = crash_clients(&urls, 4, 8, &told, &stop);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut report = Vec::new();
    for (round, outage) in ["restart -m fast", "crash"].into_iter().enumerate() {
        let (errors_before, ended_before) = {
            let t = told.lock().unwrap();
            (t.server_errors, t.ended.len())
        };
        let began = Instant::now();
        let s = server.clone();
        tokio::task::spawn_blocking(move || {
            if round == 0 {
                s.restart_fast();
            } else {
                s.crash();
                std::thread::sleep(Duration::from_secs(1));
                s.start_again();
            }
        })
        .await
        .unwrap();
        let away = began.elapsed();
        if round == 1 {
            let log = server.log_text();
            assert!(
                log.contains("automatic recovery in progress"),
                "the server did not recover from a crash:\n{log}"
            );
        }
        // Each node takes a change again, without being restarted.
        for (n, url) in urls.iter().enumerate() {
            let name = format!("after-{round}-{n}");
            let input = json!({"name": name, "uniqueId": name});
            let client = Client::new(url);
            let deadline = Instant::now() + Duration::from_secs(30);
            let id = loop {
                let answer = tokio::time::timeout(
                    Duration::from_secs(30),
                    client.try_unsigned("CreatePipeline", &input),
                )
                .await
                .unwrap_or_else(|_| {
                    panic!("node {url} did not answer within 30 s after the {outage}")
                });
                match answer {
                    Ok(Ok(out)) => break out["pipelineId"].as_str().unwrap().to_string(),
                    Ok(Err(f)) if f.status >= 500 => {}
                    Ok(Err(f)) => panic!("create-pipeline through {url} after the {outage}: {f:?}"),
                    Err(e) => panic!("node {url} gave no answer after the {outage}: {e}"),
                }
                assert!(
                    Instant::now() < deadline,
                    "node {url} did not take a change within 30 s of the server's {outage}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            told.lock().unwrap().created.insert(id);
        }
        let back = began.elapsed();
        let errors = told.lock().unwrap().server_errors - errors_before;
        assert!(
            errors > 0,
            "no request failed during the server's {outage} ({away:?} away)"
        );
        // Tasks end again through the nodes (the workers are spread over both).
        let deadline = Instant::now() + Duration::from_secs(30);
        while told.lock().unwrap().ended.len() == ended_before {
            assert!(
                Instant::now() < deadline,
                "no task ended within 30 s of the server's {outage}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        report.push(format!(
            "{outage}: server away for {away:?}, both nodes took a change {back:?} after it began, {errors} 5xx answers"
        ));
        eprintln!("server restart test: {}", report.last().unwrap());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    told.lock().unwrap().counting = true;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let told = stop_clients(&stop, clients, told).await;
    assert_eq!(
        told.no_answer, 0,
        "requests the nodes left without an answer (they must answer 5xx while the database is away)"
    );
    // A node started now loads what the database holds, and nothing else.
    let fresh = nodes(&server.url(), 1, &args).await;
    let mut all = urls.clone();
    all.push(fresh[0].url.clone());
    let (ended, running_now, _) = verify(&told, &all).await;
    // The nodes still serve: a pipeline made through one is seen through the others.
    let made = running_pipeline(&Client::new(&urls[0]), "last", ondemand("wg-last", vec![])).await;
    let made: HashSet<String> = [made].into();
    for url in &all[1..] {
        let states = pipeline_states(&Client::new(url), &made).await;
        assert_eq!(states.len(), 1, "{url} does not show {made:?}");
        assert!(
            states.values().all(|s| s != "PENDING"),
            "{url} shows {states:?}"
        );
    }
    eprintln!(
        "server restart test: {}; {} 5xx answers in all, {} answered setup calls, {ended} tasks ended ({} after the \
         restarts), {running_now} orphaned by 5xx poll answers, {:?} in all",
        report.join("; "),
        told.server_errors,
        told.answered,
        told.ended_while_counting,
        started.elapsed()
    );
    assert!(
        told.ended_while_counting > 0,
        "no task ended after the restarts"
    );
}

/// The private server's programs are found in the newest version's directory, and their absence fails with a
/// message naming them (the restart test then fails with it, never skips).
#[test]
fn a_private_server_finds_the_newest_programs_and_names_them_when_missing() {
    let lib = crate::state::TempDir::new("pglib");
    let programs = |version: &str, names: &[&str]| {
        let bin = lib.path(version).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in names {
            std::fs::write(bin.join(name), "").unwrap();
        }
        bin
    };
    let empty_path = std::ffi::OsString::new();
    let missing = pg_server_programs(&lib.0, &empty_path).unwrap_err();
    for named in [
        "initdb",
        "pg_ctl",
        "package postgresql",
        &lib.0.display().to_string(),
    ] {
        assert!(missing.contains(named), "{named} in: {missing}");
    }
    programs("9.6", &["initdb", "pg_ctl"]);
    let fifteen = programs("15", &["initdb", "pg_ctl"]);
    // A newer version without pg_ctl does not count.
    programs("16", &["initdb"]);
    assert_eq!(pg_server_programs(&lib.0, &empty_path), Ok(fifteen));
    // Without any under the directory, the PATH's.
    let other = crate::state::TempDir::new("pgpath");
    let on_path = other.path("bin");
    std::fs::create_dir_all(&on_path).unwrap();
    for name in ["initdb", "pg_ctl"] {
        std::fs::write(on_path.join(name), "").unwrap();
    }
    let path = std::env::join_paths([other.path("none"), on_path.clone()]).unwrap();
    assert_eq!(pg_server_programs(&other.0, &path), Ok(on_path));
}
