//! 50 concurrent pollers drain 10,000 tasks: every task is handed out exactly once per attempt and none is lost.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::server;
use crate::support::*;

const TASKS: usize = 10_000;
const POLLERS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_pollers_ten_thousand_tasks() {
    let server = server(1.0, 0.5);
    let client = Client::new(&server.url());
    let mut objects = vec![object(
        "Default",
        vec![s("scheduleType", "ondemand"), s("workerGroup", "wg-many")],
    )];
    objects.extend((0..TASKS).map(|i| {
        object(
            &format!("A{i}"),
            vec![
                s("type", "ShellCommandActivity"),
                s("command", &format!("echo {i}")),
            ],
        )
    }));
    let pipeline = running_pipeline(&client, "many", objects).await;

    let handed: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let finished = Arc::new(AtomicUsize::new(0));
    let mut pollers = Vec::new();
    for _ in 0..POLLERS {
        let (client, handed, finished) = (client.clone(), handed.clone(), finished.clone());
        pollers.push(tokio::spawn(async move {
            let mut empty_polls = 0;
            loop {
                let out = client
                    .ok("PollForTask", json!({"workerGroup": "wg-many"}))
                    .await;
                let Some(task) = out.get("taskObject") else {
                    if finished.load(Ordering::SeqCst) == TASKS {
                        return empty_polls;
                    }
                    empty_polls += 1;
                    continue;
                };
                let (task_id, attempt) = (
                    task["taskId"].as_str().unwrap(),
                    task["attemptId"].as_str().unwrap(),
                );
                handed
                    .lock()
                    .unwrap()
                    .push((task_id.to_string(), attempt.to_string()));
                let progress = client
                    .ok("ReportTaskProgress", json!({"taskId": task_id}))
                    .await;
                assert_eq!(progress, json!({"canceled": false}));
                client
                    .ok(
                        "SetTaskStatus",
                        json!({"taskId": task_id, "taskStatus": "FINISHED"}),
                    )
                    .await;
                finished.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for p in pollers {
        p.await.expect("poller finished without panicking");
    }

    let handed = std::mem::take(&mut *handed.lock().unwrap());
    let attempts: HashSet<&str> = handed.iter().map(|(_, a)| a.as_str()).collect();
    let tasks: HashSet<&str> = handed.iter().map(|(t, _)| t.as_str()).collect();
    eprintln!(
        "concurrency: {} hand-outs, {} distinct attempts, {} distinct task ids, {} finished",
        handed.len(),
        attempts.len(),
        tasks.len(),
        finished.load(Ordering::SeqCst)
    );
    assert_eq!(handed.len(), TASKS, "hand-outs");
    assert_eq!(
        attempts.len(),
        TASKS,
        "each attempt handed out exactly once"
    );
    assert_eq!(tasks.len(), TASKS, "task ids are unique");
    assert!(
        attempts.iter().all(|a| a.ends_with("_Attempt=1")),
        "no attempt was lost and retried"
    );

    let mut done = 0;
    let mut marker = Value::Null;
    loop {
        let mut query = json!({"pipelineId": pipeline, "sphere": "INSTANCE", "limit": 5000,
            "query": {"selectors": [{"fieldName": "@status", "operator": {"type": "EQ", "values": ["FINISHED"]}}]}});
        if !marker.is_null() {
            query["marker"] = marker.clone();
        }
        let page = client.ok("QueryObjects", query).await;
        done += page["ids"].as_array().unwrap().len();
        if page["hasMoreResults"] != true {
            break;
        }
        marker = page["marker"].clone();
    }
    assert_eq!(done, TASKS, "every instance is FINISHED");
    assert_eq!(
        client
            .ok("PollForTask", json!({"workerGroup": "wg-many"}))
            .await,
        json!({}),
        "nothing is left"
    );
}
