//! The task-lease rules, run with a fast clock: every service duration is divided by the server's time scale,
//! so the tests wait for states (bounded polling), never for real service durations.

use serde_json::{Value, json};

use crate::server;
use crate::support::*;

fn task_ids(task: &Value) -> (String, String) {
    (
        task["taskId"].as_str().unwrap().to_string(),
        task["attemptId"].as_str().unwrap().to_string(),
    )
}

fn instance_of(attempt: &str) -> String {
    attempt.rsplit_once("_Attempt=").unwrap().0.to_string()
}

/// Not acknowledged within 2 minutes (120 ms at this scale): the same attempt is handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_task_is_handed_out_again() {
    let server = server(1000.0, 90.0);
    let client = Client::new(&server.url());
    let pipeline = running_pipeline(&client, "ack", ondemand("wg-ack", vec![])).await;
    let (first, attempt) = task_ids(&poll_until_task(&client, "wg-ack").await);
    let (second, again) = task_ids(&poll_until_task(&client, "wg-ack").await);
    assert_eq!(again, attempt, "the same attempt is handed out again");
    assert_ne!(second, first, "under a new task id");
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": first}))
            .await,
        json!({"canceled": true})
    );
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": first, "taskStatus": "FINISHED"}),
            "TaskNotFoundException",
        )
        .await;
    assert_eq!(
        fields(&client, &pipeline, &instance_of(&attempt)).await["@attemptCount"],
        "1"
    );
}

/// Acknowledged, then silent past reportProgressTimeout: the attempt times out and a new attempt is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_progress_makes_a_new_attempt() {
    let server = server(20.0, 20.0);
    let client = Client::new(&server.url());
    let objects = ondemand(
        "wg-lapse",
        vec![
            s("reportProgressTimeout", "1 minutes"),
            s("retryDelay", "1 minutes"),
        ],
    );
    let pipeline = running_pipeline(&client, "lapse", objects).await;
    let (first, attempt1) = task_ids(&poll_until_task(&client, "wg-lapse").await);
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": first}))
            .await,
        json!({"canceled": false})
    );
    let (second, attempt2) = task_ids(&poll_until_task(&client, "wg-lapse").await);
    assert_ne!(second, first);
    assert_eq!(
        attempt2,
        format!("{}_Attempt=2", instance_of(&attempt1)),
        "a new attempt"
    );
    assert_eq!(
        fields(&client, &pipeline, &attempt1).await["@status"],
        "TIMEDOUT"
    );
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": first}))
            .await,
        json!({"canceled": true})
    );
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": first, "taskStatus": "FINISHED"}),
            "TaskNotFoundException",
        )
        .await;
    let instance = fields(&client, &pipeline, &instance_of(&attempt1)).await;
    assert_eq!(
        (
            instance["@attemptCount"].as_str(),
            instance["@status"].as_str()
        ),
        ("2", "RUNNING")
    );
    assert_eq!(instance["@headAttempt"], attempt2);
}

/// With maximumRetries 0, a lapse ends the instance TIMEDOUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapse_without_retries_ends_the_instance() {
    let server = server(20.0, 20.0);
    let client = Client::new(&server.url());
    let objects = ondemand(
        "wg-once",
        vec![
            s("reportProgressTimeout", "1 minutes"),
            s("maximumRetries", "0"),
        ],
    );
    let pipeline = running_pipeline(&client, "once", objects).await;
    let (task, attempt) = task_ids(&poll_until_task(&client, "wg-once").await);
    client
        .ok("ReportTaskProgress", json!({"taskId": task}))
        .await;
    wait_for(
        &client,
        &pipeline,
        &instance_of(&attempt),
        "@status",
        "TIMEDOUT",
    )
    .await;
    assert_eq!(
        fields(&client, &pipeline, &instance_of(&attempt)).await["@attemptCount"],
        "1"
    );
}

/// Failures are retried up to maximumRetries, then the instance fails with the last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_exhausted() {
    let server = server(20.0, 20.0);
    let client = Client::new(&server.url());
    let objects = ondemand(
        "wg-retry",
        vec![s("maximumRetries", "1"), s("retryDelay", "1 minutes")],
    );
    let pipeline = running_pipeline(&client, "retry", objects).await;
    let mut attempts = Vec::new();
    for n in 1..=2 {
        let (task, attempt) = task_ids(&poll_until_task(&client, "wg-retry").await);
        assert!(attempt.ends_with(&format!("_Attempt={n}")), "{attempt}");
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await;
        let failure = json!({"taskId": task, "taskStatus": "FAILED", "errorId": format!("E{n}"),
                             "errorMessage": format!("boom {n}"), "errorStackTrace": "at line 1"});
        client.ok("SetTaskStatus", failure).await;
        attempts.push(attempt);
    }
    let instance = instance_of(&attempts[0]);
    let f = fields(&client, &pipeline, &instance).await;
    assert_eq!(
        (
            f["@status"].as_str(),
            f["@attemptCount"].as_str(),
            f["@triesLeft"].as_str()
        ),
        ("FAILED", "2", "0")
    );
    assert_eq!(
        (
            f["errorId"].as_str(),
            f["errorMessage"].as_str(),
            f["errorStackTrace"].as_str()
        ),
        ("E2", "boom 2", "at line 1")
    );
    let first = fields(&client, &pipeline, &attempts[0]).await;
    assert_eq!(
        (first["@status"].as_str(), first["errorMessage"].as_str()),
        ("FAILED", "boom 1")
    );
    assert_eq!(
        client
            .ok("PollForTask", json!({"workerGroup": "wg-retry"}))
            .await,
        json!({}),
        "no third attempt"
    );
    let described = client
        .ok("DescribePipelines", json!({"pipelineIds": [pipeline]}))
        .await;
    assert!(
        described
            .to_string()
            .contains(r#""key":"@healthStatus","stringValue":"ERROR""#),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_cancels_running_tasks() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let pipeline = running_pipeline(&client, "deact", ondemand("wg-deact", vec![])).await;
    let (task, attempt) = task_ids(&poll_until_task(&client, "wg-deact").await);
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await,
        json!({"canceled": false})
    );
    client
        .ok("DeactivatePipeline", json!({"pipelineId": pipeline}))
        .await;
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await,
        json!({"canceled": true})
    );
    assert_eq!(
        fields(&client, &pipeline, &instance_of(&attempt)).await["@status"],
        "CANCELED"
    );
    assert_eq!(
        fields(&client, &pipeline, &attempt).await["@status"],
        "CANCELED"
    );
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": task, "taskStatus": "FINISHED"}),
        )
        .await;
    assert_eq!(
        fields(&client, &pipeline, &attempt).await["@status"],
        "CANCELED",
        "a cancelled task stays cancelled"
    );

    // cancelActive=false lets the running task go on.
    let gentle = running_pipeline(&client, "gentle", ondemand("wg-gentle", vec![])).await;
    let (task, _) = task_ids(&poll_until_task(&client, "wg-gentle").await);
    client
        .ok("ReportTaskProgress", json!({"taskId": task}))
        .await;
    client
        .ok(
            "DeactivatePipeline",
            json!({"pipelineId": gentle, "cancelActive": false}),
        )
        .await;
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await,
        json!({"canceled": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_status_cancel_and_deletion_cancel_tasks() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let pipeline = running_pipeline(&client, "cancel", ondemand("wg-cancel", vec![])).await;
    let (task, attempt) = task_ids(&poll_until_task(&client, "wg-cancel").await);
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await,
        json!({"canceled": false})
    );
    client.ok("SetStatus", json!({"pipelineId": pipeline, "objectIds": [instance_of(&attempt)], "status": "CANCEL"})).await;
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await,
        json!({"canceled": true})
    );
    assert_eq!(
        fields(&client, &pipeline, &instance_of(&attempt)).await["@status"],
        "CANCELED"
    );

    // TRY_CANCEL on a waiting instance: it is never handed out.
    let waiting = running_pipeline(&client, "try", ondemand("wg-try", vec![])).await;
    let ids = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": waiting, "sphere": "INSTANCE"}),
        )
        .await;
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": waiting, "objectIds": ids["ids"], "status": "TRY_CANCEL"}),
        )
        .await;
    assert_eq!(
        client
            .ok("PollForTask", json!({"workerGroup": "wg-try"}))
            .await,
        json!({})
    );
    assert_eq!(
        fields(&client, &waiting, ids["ids"][0].as_str().unwrap()).await["@status"],
        "CANCELED"
    );

    // Deletion cancels too.
    let doomed = running_pipeline(&client, "doomed", ondemand("wg-doomed", vec![])).await;
    let (task, _) = task_ids(&poll_until_task(&client, "wg-doomed").await);
    client
        .ok("ReportTaskProgress", json!({"taskId": task}))
        .await;
    client
        .ok("DeletePipeline", json!({"pipelineId": doomed}))
        .await;
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": task}))
            .await,
        json!({"canceled": true})
    );
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": task, "taskStatus": "FINISHED"}),
            "PipelineDeletedException",
        )
        .await;
}
