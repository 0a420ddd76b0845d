//! Known differences from the service that dp-local now closes: `attemptTimeout`, and heartbeats that answer
//! `terminate: true` to the runners of a worker group an operator stopped.

use serde_json::json;

use crate::state::{TempDir, durable_server};
use crate::support::*;

/// An attempt that runs longer than its `attemptTimeout` ends `TIMEDOUT` and is retried, even while its runner
/// keeps reporting progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_timeout_times_out_a_running_attempt() {
    // At scale 1000: attemptTimeout 5 minutes = 300 ms, reportProgressTimeout (15 minutes) = 900 ms.
    let server = crate::server(1000.0, 20.0);
    let client = Client::new(&server.url());
    let objects = ondemand(
        "wg-attempt-timeout",
        vec![
            s("attemptTimeout", "5 minutes"),
            s("maximumRetries", "1"),
            s("retryDelay", "1 minutes"),
        ],
    );
    let pipeline = running_pipeline(&client, "attempt-timeout", objects).await;
    let task = poll_until_task(&client, "wg-attempt-timeout").await;
    let attempt = task["attemptId"].as_str().unwrap().to_string();
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task["taskId"]}))
            .await,
        json!({"canceled": false})
    );
    wait_for(&client, &pipeline, &attempt, "@status", "TIMEDOUT").await;
    let fields = fields(&client, &pipeline, &attempt).await;
    assert_eq!(
        fields["errorMessage"],
        "The attempt ran longer than its attemptTimeout"
    );
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task["taskId"]}))
            .await,
        json!({"canceled": true}),
        "the runner is told to stop"
    );
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": task["taskId"], "taskStatus": "FINISHED"}),
            "TaskNotFoundException",
        )
        .await;
    let retry = poll_until_task(&client, "wg-attempt-timeout").await;
    assert_eq!(
        retry["attemptId"],
        json!(attempt.replace("_Attempt=1", "_Attempt=2")),
        "retried as a new attempt"
    );
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": retry["taskId"], "taskStatus": "FINISHED"}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_of_a_stopped_worker_group_answer_terminate() {
    let dir = TempDir::new("terminate");
    let path = dir.path("state.db");
    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    let beat = |id: &str, group: &str| json!({"taskrunnerId": id, "workerGroup": group});
    let heartbeat = "ReportTaskRunnerHeartbeat";
    assert_eq!(
        client.ok(heartbeat, beat("r1", "wg-a")).await,
        json!({"terminate": false})
    );
    client
        .ok("DpLocal.StopWorkerGroup", json!({"workerGroup": "wg-a"}))
        .await;
    assert_eq!(
        client.ok(heartbeat, beat("r1", "wg-a")).await,
        json!({"terminate": true})
    );
    assert_eq!(
        client.ok(heartbeat, beat("r2", "wg-b")).await,
        json!({"terminate": false}),
        "other groups run on"
    );
    // dp-local's own calls are signed like the service's.
    let unsigned = client
        .call_with(
            "DpLocal.ResumeWorkerGroup",
            br#"{"workerGroup": "wg-a"}"#.to_vec(),
            Signing::None,
        )
        .await
        .unwrap_err();
    assert_eq!(unsigned.code, "MissingAuthenticationTokenException");
    client
        .fails(
            "DpLocal.StopWorkerGroup",
            json!({}),
            "InvalidRequestException",
        )
        .await;
    server.shutdown();

    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    assert_eq!(
        client.ok(heartbeat, beat("r1", "wg-a")).await,
        json!({"terminate": true}),
        "the stop survives a restart"
    );
    client
        .ok("DpLocal.ResumeWorkerGroup", json!({"workerGroup": "wg-a"}))
        .await;
    assert_eq!(
        client.ok(heartbeat, beat("r1", "wg-a")).await,
        json!({"terminate": false})
    );
}
