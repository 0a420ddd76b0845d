//! `--state`: everything comes back after a restart, lease deadlines are stored instants, and export/import move
//! a state to a new file unchanged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dp_local::{Config, Server};
use serde_json::{Value, json};

use crate::pgmode::Durable;
use crate::support::*;

/// A temporary directory removed on drop (also when the test fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "dp-local-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn durable_server(path: &Path, time_scale: f64, poll_secs: f64) -> Server {
    Server::bind(Config {
        time_scale,
        poll_timeout: Duration::from_secs_f64(poll_secs),
        state: Some(path.to_path_buf()),
        ..Config::default()
    })
    .expect("dp-local opens its state file")
}

/// Everything a client can see of the given pipelines: descriptions, both definitions, every object.
pub async fn view(client: &Client, pipelines: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("list".into(), client.ok("ListPipelines", json!({})).await);
    out.insert(
        "describe".into(),
        client
            .ok("DescribePipelines", json!({"pipelineIds": pipelines}))
            .await,
    );
    for p in pipelines {
        for version in ["latest", "active"] {
            let def = client
                .call(
                    "GetPipelineDefinition",
                    json!({"pipelineId": p, "version": version}),
                )
                .await
                .unwrap_or_else(|f| json!({"error": f.code}));
            out.insert(format!("{p}/{version}"), def);
        }
        for sphere in ["COMPONENT", "INSTANCE", "ATTEMPT"] {
            let ids = client
                .ok(
                    "QueryObjects",
                    json!({"pipelineId": p, "sphere": sphere, "limit": 1000}),
                )
                .await["ids"]
                .clone();
            let ids: Vec<Value> = ids.as_array().cloned().unwrap_or_default();
            let mut objects = Vec::new();
            for chunk in ids.chunks(100) {
                let described = client
                    .ok(
                        "DescribeObjects",
                        json!({"pipelineId": p, "objectIds": chunk}),
                    )
                    .await;
                objects.extend(
                    described["pipelineObjects"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            out.insert(format!("{p}/{sphere}"), Value::Array(objects));
        }
    }
    Value::Object(out)
}

/// Builds a state with a bit of everything: tags, parameters, two activations, a held task with reported
/// fields, a failed attempt with error fields and its retry, a finished task, a paused instance, a runner.
/// Returns the pipeline ids and the id of the task still held.
pub async fn busy_state(client: &Client) -> (Vec<String>, String) {
    let a = client
        .ok(
            "CreatePipeline",
            json!({"name": "busy-a", "uniqueId": "busy-a", "description": "first",
                   "tags": [{"key": "team", "value": "data"}]}),
        )
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut objects = ondemand(
        "wg-busy",
        vec![s("retryDelay", "10 minutes"), s("maximumRetries", "1")],
    );
    objects.push(object(
        "Act2",
        vec![
            s("type", "ShellCommandActivity"),
            s("command", "echo #{myGreeting}"),
        ],
    ));
    let put = client
        .ok(
            "PutPipelineDefinition",
            json!({"pipelineId": a, "pipelineObjects": objects,
                   "parameterObjects": [{"id": "myGreeting", "attributes": [{"key": "type", "stringValue": "String"}]}],
                   "parameterValues": [{"id": "myGreeting", "stringValue": "hello"}]}),
        )
        .await;
    assert_eq!(put["errored"], json!(false), "{put}");
    client
        .ok("ActivatePipeline", json!({"pipelineId": a}))
        .await;
    let held = poll_until_task(client, "wg-busy").await;
    let held_id = held["taskId"].as_str().unwrap().to_string();
    client
        .ok(
            "ReportTaskProgress",
            json!({"taskId": held_id, "fields": [{"key": "progress", "stringValue": "half"}]}),
        )
        .await;
    let failed = poll_until_task(client, "wg-busy").await;
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": failed["taskId"], "taskStatus": "FAILED", "errorId": "E1",
                   "errorMessage": "it broke", "errorStackTrace": "at line 1"}),
        )
        .await;
    client
        .ok(
            "ActivatePipeline",
            json!({"pipelineId": a, "parameterValues": [{"id": "myGreeting", "stringValue": "again"}]}),
        )
        .await;
    for _ in 0..2 {
        let finished = poll_until_task(client, "wg-busy").await;
        client
            .ok(
                "SetTaskStatus",
                json!({"taskId": finished["taskId"], "taskStatus": "FINISHED"}),
            )
            .await;
    }
    let b = running_pipeline(client, "busy-b", ondemand("wg-paused", vec![])).await;
    let instances = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": b, "sphere": "INSTANCE"}),
        )
        .await["ids"]
        .clone();
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": b, "objectIds": instances, "status": "PAUSE"}),
        )
        .await;
    let c = client
        .ok(
            "CreatePipeline",
            json!({"name": "busy-c", "uniqueId": "busy-c"}),
        )
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    client.ok("DeletePipeline", json!({"pipelineId": c})).await;
    client
        .ok(
            "ReportTaskRunnerHeartbeat",
            json!({"taskrunnerId": "runner-1", "workerGroup": "wg-busy", "hostname": "h1"}),
        )
        .await;
    (vec![a, b], held_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_brings_everything_back() {
    let state = Durable::new("restart");
    let path = state.location();
    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    let (pipelines, held) = busy_state(&client).await;
    let before = view(&client, &pipelines).await;
    let runners = server.runners();
    server.shutdown();

    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    let after = view(&client, &pipelines).await;
    assert_eq!(after, before, "every pipeline, definition and object");
    assert_eq!(server.runners(), runners, "runners");
    assert_eq!(runners.len(), 1);
    // Deleted pipelines stay deleted, and create-pipeline stays idempotent on (name, uniqueId).
    let again = client
        .ok(
            "CreatePipeline",
            json!({"name": "busy-a", "uniqueId": "busy-a"}),
        )
        .await;
    assert_eq!(again["pipelineId"], json!(pipelines[0]));
    // The task handed out before the restart is still held, under the same id.
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": held}))
            .await,
        json!({"canceled": false})
    );
    let none = client
        .ok("PollForTask", json!({"workerGroup": "wg-busy"}))
        .await;
    assert_eq!(
        none,
        json!({}),
        "the failed attempt's retry waits out its 10-minute delay and the held task stays held"
    );
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": held, "taskStatus": "FINISHED"}),
        )
        .await;
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": held, "taskStatus": "FINISHED"}),
            "TaskNotFoundException",
        )
        .await;
}

/// A lease that lapsed while dp-local was down lapses at start; one that did not keeps its remaining time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_deadlines_are_stored_instants() {
    let state = Durable::new("lease");
    let path = state.location();
    // At scale 1000 the acknowledgement window is 120 ms.
    let server = durable_server(&path, 1000.0, 20.0);
    let client = Client::new(&server.url());
    let pipeline = running_pipeline(&client, "lapse", ondemand("wg-lapse", vec![])).await;
    let task = poll_until_task(&client, "wg-lapse").await;
    let attempt = task["attemptId"].as_str().unwrap().to_string();
    server.shutdown();
    std::thread::sleep(Duration::from_millis(300));

    let server = durable_server(&path, 1000.0, 20.0);
    let client = Client::new(&server.url());
    let again = poll_until_task(&client, "wg-lapse").await;
    assert_eq!(
        again["attemptId"],
        json!(attempt),
        "the unacknowledged attempt is handed out again"
    );
    assert_ne!(again["taskId"], task["taskId"], "under a new task id");
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task["taskId"]}))
            .await,
        json!({"canceled": true}),
        "the old task id is cancelled, not unknown"
    );
    drop(pipeline);
    server.shutdown();

    // At scale 1 nothing lapses during the test: the held task stays held across the restart.
    let state = Durable::new("lease-kept");
    let path = state.location();
    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    running_pipeline(&client, "kept", ondemand("wg-kept", vec![])).await;
    let task = poll_until_task(&client, "wg-kept").await;
    server.shutdown();
    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    assert_eq!(
        client
            .ok("PollForTask", json!({"workerGroup": "wg-kept"}))
            .await,
        json!({}),
        "the task is still held"
    );
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task["taskId"]}))
            .await,
        json!({"canceled": false})
    );
}

/// A progress lease that lapsed while dp-local was down ends its attempt at the lapse, not at the restart, and the
/// retry delay counts from the lapse: after a downtime longer than both, the retry is handed out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_lapsed_while_down_is_dated_at_the_lapse() {
    let state = Durable::new("lapse-dated");
    let path = state.location();
    // At scale 60: the lease lapses 1 s after the acknowledgement, the retry waits 2 s more.
    let server = durable_server(&path, 60.0, 1.0);
    let client = Client::new(&server.url());
    let pipeline = running_pipeline(
        &client,
        "lapse-dated",
        ondemand(
            "wg-dated",
            vec![
                s("reportProgressTimeout", "1 minutes"),
                s("retryDelay", "2 minutes"),
                s("maximumRetries", "1"),
            ],
        ),
    )
    .await;
    let task = poll_until_task(&client, "wg-dated").await;
    let first = task["attemptId"].as_str().unwrap().to_string();
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task["taskId"]}))
            .await,
        json!({"canceled": false})
    );
    let acknowledged = std::time::SystemTime::now();
    server.shutdown();
    std::thread::sleep(Duration::from_secs(5));

    let restarted = std::time::SystemTime::now();
    let server = durable_server(&path, 60.0, 1.0);
    let client = Client::new(&server.url());
    // The retry's delay ended during the downtime, so one poll (which waits at most 1 s) gets it.
    let retry = client
        .ok(
            "PollForTask",
            json!({"workerGroup": "wg-dated", "hostname": "test-host"}),
        )
        .await;
    assert!(
        retry["taskObject"]["attemptId"].is_string(),
        "the retry is handed out at once (its delay ended during the downtime), got {retry}"
    );
    assert_ne!(retry["taskObject"]["attemptId"], json!(first), "{retry}");
    let attempt = fields(&client, &pipeline, &first).await;
    assert_eq!(attempt["@status"], "TIMEDOUT");
    let ended = dp_model::timestamp::parse(&attempt["@actualEndTime"]).expect("a timestamp");
    let epoch = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    };
    assert!(
        ended >= epoch(acknowledged) && ended <= epoch(acknowledged) + 2,
        "ended at the lapse ({}), not at the restart ({}): {ended}",
        epoch(acknowledged) + 1,
        epoch(restarted)
    );
}

/// Without --state nothing is written, and two servers do not share anything. (In memory whatever
/// `DP_LOCAL_TEST_STORE` says: this is about the in-memory mode.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_mode_keeps_nothing() {
    let memory = || Server::bind(Config::default()).expect("dp-local binds a free port");
    let server = memory();
    let client = Client::new(&server.url());
    running_pipeline(&client, "mem", ondemand("wg-mem", vec![])).await;
    server.shutdown();
    let server = memory();
    let client = Client::new(&server.url());
    assert_eq!(
        client.ok("ListPipelines", json!({})).await,
        json!({"pipelineIdList": [], "hasMoreResults": false})
    );
}

/// A tmpfs of a few MiB mounted for one test (root only), unmounted on drop, also when the test fails.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(&at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk(at))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The state file on a small filesystem that fills up: a change answers 500 (saying the state could not be saved)
/// and is rolled back, reads keep being served from the saved state, and once space returns changes are saved
/// again; after a restart the state holds exactly what was answered. Needs `mount -t tmpfs` (root); elsewhere the
/// store's own test with a store that fails as a full disk does covers the same path.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_errors_and_recovers_when_space_returns() {
    let dir = TempDir::new("disk-full");
    let Some(disk) = SmallDisk::mount(dir.path("fs"), "2m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    let state = disk.0.join("state.db");
    let server = durable_server(&state, 1.0, 1.0);
    let client = Client::new(&server.url());
    let mut answered = Vec::new();
    let create = |n: usize| {
        let client = client.clone();
        async move {
            client
                .call(
                    "CreatePipeline",
                    json!({"name": format!("p{n}"), "uniqueId": format!("u{n}"),
                           "description": "d".repeat(1000)}),
                )
                .await
                .map(|v| v["pipelineId"].as_str().unwrap().to_string())
        }
    };
    for n in 0..5 {
        answered.push(create(n).await.expect("saved while there is room"));
    }
    // Fill the filesystem.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }
    let mut failure = None;
    for n in 5..2000 {
        match create(n).await {
            Ok(id) => answered.push(id),
            Err(f) => {
                failure = Some(f);
                break;
            }
        }
    }
    let failure = failure.expect("a full disk fails a commit");
    assert_eq!(failure.status, 500, "{failure:?}");
    assert!(
        failure.message.contains("could not save its state"),
        "{failure:?}"
    );
    // Still up, and reads are served from the last saved state: the creation that answered 500 is not in it.
    async fn listed_ids(client: &Client) -> Vec<String> {
        let mut ids = Vec::new();
        let mut marker = None;
        loop {
            let input = match &marker {
                Some(m) => json!({ "marker": m }),
                None => json!({}),
            };
            let page = client.ok("ListPipelines", input).await;
            ids.extend(
                page["pipelineIdList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string()),
            );
            if page["hasMoreResults"] != json!(true) {
                break;
            }
            marker = page["marker"].as_str().map(str::to_string);
        }
        ids.sort();
        ids
    }
    let mut expected = answered.clone();
    expected.sort();
    assert_eq!(
        listed_ids(&client).await,
        expected,
        "a read during the outage shows exactly what was answered"
    );

    std::fs::remove_file(&filler).unwrap();
    let start = std::time::Instant::now();
    loop {
        // A change that fails is rolled back, so the same request can be tried again.
        match create(9999).await {
            Ok(id) => break answered.push(id),
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(30),
                "dp-local did not save again once space returned: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);

    let server = durable_server(&state, 1.0, 1.0);
    let client = Client::new(&server.url());
    let mut expected = answered.clone();
    expected.sort();
    assert_eq!(
        listed_ids(&client).await,
        expected,
        "after a restart: every answered pipeline, and nothing that answered an error"
    );
    drop(server);
    drop(disk);
}
