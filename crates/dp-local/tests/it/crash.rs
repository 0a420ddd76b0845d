//! Durability under SIGKILL: 20 clients drive dp-local `--state` while it is killed at random moments and
//! restarted on the same file; after every restart everything that was answered with a 2xx must be there, no
//! attempt may be handed to two pollers, and every task ends exactly once.
//!
//! The clock runs at scale 1, so no lease (2 minutes to acknowledge) can lapse during the test: an attempt that
//! is handed out twice was handed out by a state that forgot the first hand-out, which is a lost answer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::DpLocal;
use crate::state::TempDir;
use crate::support::*;

const MAKERS: usize = 6;
const WORKERS: usize = 14;
const KILL_PHASE: Duration = Duration::from_secs(30);
/// How many pipelines' facts are checked after each restart of the kill phase.
const SAMPLED_PIPELINES: usize = 40;
/// The longest the kill phase may last while it waits for its minimum number of kills.
const KILL_PHASE_MOST: Duration = Duration::from_secs(120);
const ACTIVITIES: usize = 4;
const GROUP: &str = "wg-crash";

/// What clients were told, with a 2xx answer.
#[derive(Default)]
struct Told {
    /// pipeline id -> highest `rev` of an answered put-pipeline-definition.
    revs: HashMap<String, u64>,
    /// Pipelines whose activation was answered.
    activated: HashSet<String>,
    /// (pipeline, attempt) -> task ids handed out for it. Attempt ids are unique within a pipeline only.
    handed: HashMap<Key, Vec<String>>,
    /// (pipeline, attempt) -> highest `seq` of an answered report-task-progress.
    reported: HashMap<Key, u64>,
    /// (pipeline, attempt) -> the status a set-task-status was answered for (FINISHED or FAILED).
    ended: HashMap<Key, String>,
    /// Attempts a worker finished whose answer was lost, confirmed by "already ended" on retry.
    ended_unanswered: HashSet<Key>,
    /// (pipeline, instance) whose CANCEL was answered.
    canceled: HashSet<(String, String)>,
    /// Problems seen by clients (answers that break the rules).
    violations: Vec<String>,
    answered: usize,
    unanswered_polls: usize,
}

type Shared = Arc<Mutex<Told>>;
type Key = (String, String);

/// Calls until an answer comes (the server may be down for a moment); `None` once `stop` is set.
async fn call(
    client: &Client,
    told: &Shared,
    stop: &AtomicBool,
    operation: &str,
    input: &Value,
) -> Option<Result<Value, Failure>> {
    let mut failures = 0;
    loop {
        match client.try_unsigned(operation, input).await {
            // A node standing by until the killed one's database session ends answers 503, which clients retry
            // as the CLI and the runners do (only PostgreSQL has standbys): not an answer yet.
            Ok(Err(failure)) if failure.status == 503 => {
                if stop.load(Ordering::Relaxed) && failures > 100 {
                    return None;
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(answer) => {
                told.lock().unwrap().answered += 1;
                return Some(answer);
            }
            // Give up only after the test has stopped and the server stayed unreachable for a while.
            Err(_) if stop.load(Ordering::Relaxed) && failures > 100 => return None,
            Err(_) => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn definition(rev: u64) -> Value {
    let mut objects = vec![object(
        "Default",
        vec![
            s("scheduleType", "ondemand"),
            s("workerGroup", GROUP),
            s("maximumRetries", "0"),
            s("rev", &rev.to_string()),
        ],
    )];
    for i in 0..ACTIVITIES {
        objects.push(object(
            &format!("A{i}"),
            vec![s("type", "ShellCommandActivity"), s("command", "true")],
        ));
    }
    Value::Array(objects)
}

async fn maker(index: usize, client: Client, told: Shared, stop: Arc<AtomicBool>) {
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let name = format!("crash-{index}-{round}");
        let Some(Ok(created)) = call(
            &client,
            &told,
            &stop,
            "CreatePipeline",
            &json!({"name": name, "uniqueId": name}),
        )
        .await
        else {
            return;
        };
        let pid = created["pipelineId"].as_str().unwrap().to_string();
        for rev in 1..=2 {
            let input = json!({"pipelineId": pid, "pipelineObjects": definition(rev)});
            match call(&client, &told, &stop, "PutPipelineDefinition", &input).await {
                Some(Ok(_)) => {
                    told.lock().unwrap().revs.insert(pid.clone(), rev);
                }
                Some(Err(f)) => told
                    .lock()
                    .unwrap()
                    .violations
                    .push(format!("put-pipeline-definition {pid}: {f:?}")),
                None => return,
            }
        }
        match call(
            &client,
            &told,
            &stop,
            "ActivatePipeline",
            &json!({"pipelineId": pid}),
        )
        .await
        {
            Some(Ok(_)) => {
                told.lock().unwrap().activated.insert(pid.clone());
            }
            Some(Err(f)) => told
                .lock()
                .unwrap()
                .violations
                .push(format!("activate {pid}: {f:?}")),
            None => return,
        }
        // Now and then cancel an instance (it may be waiting, held, or already ended).
        if round % 3 == 0 {
            let instance = format!("@A{}_", fastrand::usize(..ACTIVITIES));
            let Some(Ok(ids)) = call(
                &client,
                &told,
                &stop,
                "QueryObjects",
                &json!({"pipelineId": pid, "sphere": "INSTANCE"}),
            )
            .await
            else {
                return;
            };
            let target = ids["ids"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .find(|id| id.starts_with(&instance))
                .map(str::to_string);
            if let Some(target) = target {
                let input = json!({"pipelineId": pid, "objectIds": [target], "status": "CANCEL"});
                if let Some(Ok(_)) = call(&client, &told, &stop, "SetStatus", &input).await {
                    told.lock().unwrap().canceled.insert((pid.clone(), target));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..400))).await;
    }
}

async fn worker(index: usize, client: Client, told: Shared, stop: Arc<AtomicBool>) {
    let mut empty = 0;
    loop {
        let poll = json!({"workerGroup": GROUP, "hostname": format!("worker-{index}")});
        let answer = match client.try_unsigned("PollForTask", &poll).await {
            // A standby's 503 (PostgreSQL only) is retried like an unreachable server.
            Ok(Ok(a)) => {
                told.lock().unwrap().answered += 1;
                Ok(a)
            }
            Ok(Err(f)) if f.status != 503 => {
                told.lock().unwrap().answered += 1;
                Err(f)
            }
            Ok(Err(_)) | Err(_) => {
                told.lock().unwrap().unanswered_polls += 1;
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let task = match answer {
            Ok(out) => out.get("taskObject").cloned(),
            Err(f) => {
                told.lock().unwrap().violations.push(format!("poll: {f:?}"));
                None
            }
        };
        let Some(task) = task else {
            empty += 1;
            // After the kill phase, workers drain the queue and stop once it stays empty.
            if stop.load(Ordering::Relaxed) && empty >= 3 {
                return;
            }
            continue;
        };
        empty = 0;
        let task_id = task["taskId"].as_str().unwrap().to_string();
        let attempt = task["attemptId"].as_str().unwrap().to_string();
        let pid = task["pipelineId"].as_str().unwrap().to_string();
        let key = (pid.clone(), attempt.clone());
        told.lock()
            .unwrap()
            .handed
            .entry(key.clone())
            .or_default()
            .push(task_id.clone());
        let mut canceled = false;
        for seq in 1..=2u64 {
            let input = json!({"taskId": task_id, "fields": [s("seq", &seq.to_string())]});
            match call(&client, &told, &stop, "ReportTaskProgress", &input).await {
                Some(Ok(out)) => {
                    canceled |= out["canceled"] == json!(true);
                    // A cancelled task's report changes nothing (the instance was cancelled by a maker).
                    if !canceled {
                        told.lock().unwrap().reported.insert(key.clone(), seq);
                    }
                }
                Some(Err(f)) => told
                    .lock()
                    .unwrap()
                    .violations
                    .push(format!("report-task-progress {task_id} ({attempt}): {f:?}")),
                None => return,
            }
        }
        let status = if fastrand::u8(..5) == 0 {
            "FAILED"
        } else {
            "FINISHED"
        };
        let mut input = json!({"taskId": task_id, "taskStatus": status});
        if status == "FAILED" {
            input["errorId"] = json!("CrashTest");
            input["errorMessage"] = json!(format!("failed by worker {index}"));
        }
        // A set-task-status whose answer is lost is sent again: the second answer says whether the first
        // took effect.
        let mut retried = false;
        loop {
            match client.try_unsigned("SetTaskStatus", &input).await {
                Ok(Ok(_)) => {
                    let mut t = told.lock().unwrap();
                    t.answered += 1;
                    t.ended.insert(key.clone(), status.to_string());
                    break;
                }
                // A standby's 503 (PostgreSQL only): that node took nothing in; send again. Whether an earlier
                // send whose answer was lost took effect is still what `retried` says.
                Ok(Err(f)) if f.status == 503 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(f)) => {
                    let mut t = told.lock().unwrap();
                    t.answered += 1;
                    if retried
                        && f.code == "TaskNotFoundException"
                        && f.message.contains("already ended")
                    {
                        t.ended_unanswered.insert(key.clone());
                    } else if !canceled {
                        t.violations
                            .push(format!("set-task-status {task_id} ({attempt}): {f:?}"));
                    }
                    break;
                }
                Err(_) => {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// The fields of many objects of one pipeline as `id -> key -> value`.
async fn describe(
    client: &Client,
    pipeline: &str,
    ids: &[String],
) -> HashMap<String, HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(100) {
        let described = client
            .ok(
                "DescribeObjects",
                json!({"pipelineId": pipeline, "objectIds": chunk}),
            )
            .await;
        for o in described["pipelineObjects"].as_array().unwrap() {
            let mut fields = HashMap::new();
            for f in o["fields"].as_array().unwrap() {
                let v = f["stringValue"]
                    .as_str()
                    .or(f["refValue"].as_str())
                    .unwrap_or("");
                fields
                    .entry(f["key"].as_str().unwrap().to_string())
                    .or_insert_with(|| v.to_string());
            }
            out.insert(o["id"].as_str().unwrap().to_string(), fields);
        }
    }
    out
}

/// Checks that the server reflects everything in `told`; returns how many facts were checked.
async fn check(client: &Client, told: &Told) -> usize {
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut pipelines: Vec<&String> = told.revs.keys().collect();
    pipelines.sort();
    for pid in &pipelines {
        let def = client
            .ok("GetPipelineDefinition", json!({"pipelineId": pid}))
            .await;
        let default = def["pipelineObjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == "Default")
            .cloned()
            .unwrap_or_default();
        let rev: u64 = default["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["key"] == "rev")
            .and_then(|f| f["stringValue"].as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if rev < told.revs[*pid] {
            problems.push(format!(
                "{pid}: latest definition rev {rev}, answered {}",
                told.revs[*pid]
            ));
        }
        checked += 1;
    }
    let activated: Vec<String> = told.activated.iter().cloned().collect();
    for chunk in activated.chunks(25) {
        let described = client
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
            if state == "PENDING" {
                problems.push(format!("{} was activated but is PENDING", p["pipelineId"]));
            }
            checked += 1;
        }
    }
    // Attempts and instances, grouped by pipeline.
    let mut by_pipeline: HashMap<&str, Vec<String>> = HashMap::new();
    for (pid, attempt) in told.handed.keys() {
        by_pipeline
            .entry(pid.as_str())
            .or_default()
            .push(attempt.clone());
    }
    for (pid, instance) in &told.canceled {
        by_pipeline
            .entry(pid.as_str())
            .or_default()
            .push(instance.clone());
    }
    for (pid, ids) in &by_pipeline {
        let objects = describe(client, pid, ids).await;
        for id in ids {
            let Some(fields) = objects.get(id) else {
                problems.push(format!("{pid}/{id} is gone"));
                continue;
            };
            let status = fields.get("@status").map(String::as_str).unwrap_or("");
            if told.canceled.contains(&(pid.to_string(), id.clone())) {
                if !matches!(status, "CANCELED" | "FINISHED" | "FAILED") {
                    problems.push(format!("{id} was cancelled but is {status}"));
                }
                checked += 1;
                continue;
            }
            let key = (pid.to_string(), id.clone());
            if status == "WAITING_FOR_RUNNER" {
                problems.push(format!("{id} was handed out but is waiting for a runner"));
            }
            if let Some(seq) = told.reported.get(&key) {
                let stored: u64 = fields.get("seq").and_then(|v| v.parse().ok()).unwrap_or(0);
                if stored < *seq {
                    problems.push(format!("{id}: seq {stored}, answered {seq}"));
                }
            }
            if let Some(ended) = told.ended.get(&key)
                && status != ended
                && status != "CANCELED"
            {
                problems.push(format!("{id} was answered {ended} but is {status}"));
            }
            checked += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "after a restart the state lost answered requests:\n{}",
        problems.join("\n")
    );
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_answered() {
    let dir = TempDir::new("crash");
    let path = dir.path("state.db");
    sigkill_at_random_moments(path.to_str().unwrap().to_string(), &[], 10).await;
}

/// The two crash tests load the machine heavily (20 clients each and a restart loop); they take turns, so that
/// neither counts fewer kills because the other runs.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The same with the state in PostgreSQL (a database of the test's own) and `--standby`, the one-node way, which
/// commits through the writer as the SQLite file does (nodes serving together have their own crash test,
/// `nodes::three_nodes_killed_at_random_lose_nothing_answered`): each restarted process waits as a standby
/// (answering 503, which the clients retry) until the killed one's session has ended. A restart there takes
/// longer (the session's end, the lock poll, loading over the connection), so fewer kills fit in the same kill
/// phase: at least 5 are required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_answered_on_postgres() {
    let db = crate::stores::PgDatabase::new("crash");
    sigkill_at_random_moments(db.url.clone(), &["--standby"], 5).await;
}

/// Kills and restarts a dp-local on `path_arg` (started with `mode` besides the usual arguments) under load.
async fn sigkill_at_random_moments(path_arg: String, mode: &[&str], min_kills: usize) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut args = vec!["--state", &path_arg, "--no-auth", "--poll-timeout", "0.2"];
    args.extend_from_slice(mode);
    let mut server = DpLocal::start(&args).unwrap();
    let port = server.port().to_string();
    let url = server.url.clone();
    let told: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..MAKERS {
        clients.push(tokio::spawn(maker(
            i,
            Client::new(&url),
            told.clone(),
            stop.clone(),
        )));
    }
    for i in 0..WORKERS {
        clients.push(tokio::spawn(worker(
            i,
            Client::new(&url),
            told.clone(),
            stop.clone(),
        )));
    }
    let checker = Client::new(&url);
    let kills = Arc::new(AtomicUsize::new(0));
    let mut facts_checked = 0;
    let started = Instant::now();
    let restart = |server: &mut DpLocal| {
        // The same port, so the clients find it again; std sets SO_REUSEADDR, so the port is free at once.
        let mut again = args.clone();
        again.extend(["--port", &port]);
        *server = DpLocal::start(&again).expect("dp-local restarts on its state file");
    };
    // At least KILL_PHASE and at least `min_kills` kills: on a loaded machine restarts take longer, and the phase
    // lasts until enough kills happened (up to KILL_PHASE_MOST, past which the count below fails the test).
    while (started.elapsed() < KILL_PHASE || kills.load(Ordering::Relaxed) < min_kills)
        && started.elapsed() < KILL_PHASE_MOST
    {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..900))).await;
        server.kill();
        kills.fetch_add(1, Ordering::Relaxed);
        // Everything answered so far was answered by the process just killed. After each restart the facts of
        // up to SAMPLED_PIPELINES pipelines picked at random are checked (checking all of them after every kill
        // would make each restart slower than the last); after the kill phase every fact is checked.
        let snapshot = {
            let t = told.lock().unwrap();
            let mut pipelines: Vec<&String> = t.revs.keys().collect();
            fastrand::shuffle(&mut pipelines);
            let sample: HashSet<String> = pipelines
                .into_iter()
                .take(SAMPLED_PIPELINES)
                .cloned()
                .collect();
            let keep = |pid: &String| sample.contains(pid);
            Told {
                revs: t
                    .revs
                    .iter()
                    .filter(|(p, _)| keep(p))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                activated: t.activated.iter().filter(|p| keep(p)).cloned().collect(),
                handed: t
                    .handed
                    .iter()
                    .filter(|(k, _)| keep(&k.0))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                reported: t
                    .reported
                    .iter()
                    .filter(|(k, _)| keep(&k.0))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                ended: t
                    .ended
                    .iter()
                    .filter(|(k, _)| keep(&k.0))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                canceled: t.canceled.iter().filter(|k| keep(&k.0)).cloned().collect(),
                ..Told::default()
            }
        };
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..100))).await;
        restart(&mut server);
        facts_checked += check(&checker, &snapshot).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    // One more restart after the clients are done, then the final count.
    server.kill();
    restart(&mut server);
    // Every client task has ended, so this is the only reference left.
    let told = Arc::try_unwrap(told)
        .unwrap_or_else(|_| panic!("clients still hold the record"))
        .into_inner()
        .unwrap();
    facts_checked += check(&checker, &told).await;
    assert!(
        told.violations.is_empty(),
        "clients saw answers that break the rules:\n{}",
        told.violations.join("\n")
    );
    // No attempt was handed to two pollers (no lease can lapse at scale 1 within the test).
    let doubled: Vec<_> = told
        .handed
        .iter()
        .filter(|(_, tasks)| tasks.len() > 1)
        .collect();
    assert!(doubled.is_empty(), "handed out twice: {doubled:?}");
    // Every task ended exactly once: the attempts the server shows ended by a runner are exactly those a worker
    // ended (answered, or confirmed by "already ended" when the answer was lost).
    let mut server_ended = HashSet::new();
    let mut running = 0;
    let mut pipelines: HashSet<&str> = told.handed.keys().map(|(p, _)| p.as_str()).collect();
    pipelines.extend(told.activated.iter().map(String::as_str));
    for pid in pipelines {
        let ids = checker
            .ok(
                "QueryObjects",
                json!({"pipelineId": pid, "sphere": "ATTEMPT", "limit": 1000}),
            )
            .await["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>();
        for (id, fields) in describe(&checker, pid, &ids).await {
            match fields.get("@status").map(String::as_str) {
                Some("FINISHED" | "FAILED") if fields.contains_key("@actualEndTime") => {
                    if !fields.contains_key("@hostname") {
                        // Ended without a runner: MARK_FINISHED is not used here, so this cannot happen.
                        panic!("{id} ended without having been handed out: {fields:?}");
                    }
                    server_ended.insert((pid.to_string(), id));
                }
                Some("RUNNING") => running += 1,
                _ => {}
            }
        }
    }
    let client_ended: HashSet<Key> = told
        .ended
        .keys()
        .chain(told.ended_unanswered.iter())
        .cloned()
        .collect();
    let not_ended_by_clients: Vec<_> = server_ended.difference(&client_ended).collect();
    let lost_ends: Vec<_> = client_ended
        .iter()
        .filter(|a| !server_ended.contains(*a))
        .filter(|a| {
            // A task whose instance was cancelled first is answered without change (CANCELED).
            told.ended.contains_key(*a)
                && !told
                    .canceled
                    .iter()
                    .any(|(p, i)| *p == a.0 && a.1.starts_with(&format!("{i}_Attempt=")))
        })
        .collect();
    assert!(
        not_ended_by_clients.is_empty(),
        "ended on the server but by no client: {not_ended_by_clients:?}"
    );
    assert!(
        lost_ends.is_empty(),
        "answered as ended but not: {lost_ends:?}"
    );
    // Attempts still running were handed out by polls whose answer was lost to a kill.
    assert!(
        running <= told.unanswered_polls,
        "{running} attempts are running but only {} polls went unanswered",
        told.unanswered_polls
    );
    let kills = kills.load(Ordering::Relaxed);
    eprintln!(
        "crash test: {kills} SIGKILLs, {} answered requests, {facts_checked} facts checked after restarts, {} tasks handed out, {} ended, {running} orphaned by lost poll answers",
        told.answered,
        told.handed.len(),
        client_ended.len()
    );
    assert!(
        kills >= min_kills,
        "the kill phase killed only {kills} times"
    );
    assert!(
        client_ended.len() >= 100,
        "only {} tasks ended: the load was too light to mean anything",
        client_ended.len()
    );
}
