//! Known differences from the service that dp-local now closes: `attemptTimeout`, `onSuccess`/`onFail`/`onLateAction`
//! actions, heartbeats that answer `terminate: true` to the runners of a worker group an operator stopped, and
//! schedules that run at the time scale.

use serde_json::json;

use crate::pgmode::{ChildState, Durable};
use crate::state::{TempDir, durable_server};
use crate::support::*;

/// An attempt that runs longer than its `attemptTimeout` ends `TIMEDOUT` and is retried, even while its runner
/// keeps reporting progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_timeout_times_out_a_running_attempt() {
    // At scale 60: the acknowledgement window (2 minutes) is 2 s, attemptTimeout 5 minutes = 5 s, the progress
    // lease (15 minutes) 15 s, the retry delay 1 s; every window the test must act within is at least 2 s, so a
    // loaded machine does not make it fail (at scale 1000 the acknowledgement had 120 ms).
    let server = crate::server(60.0, 20.0);
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
    let state = Durable::new("terminate");
    let path = state.location();
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

/// `onSuccess` and `onFail` actions become `@event` fields of the instance, and an SnsAlarm's message, with
/// `#{node...}` evaluated against the instance, is written to dp-local's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_success_and_on_fail_actions_are_recorded_and_logged() {
    let dir = TempDir::new("actions");
    let log_path = dir.path("dp-local.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let state = ChildState::new();
    let mut server =
        crate::process::DpLocal::start_logging(&state.args(&["--port", "0"]), log).unwrap();
    let client = Client::new(&server.url);
    let objects = vec![
        object(
            "Default",
            vec![
                s("scheduleType", "ondemand"),
                s("workerGroup", "wg-actions"),
                s("maximumRetries", "0"),
            ],
        ),
        object(
            "Good",
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "true"),
                r("onSuccess", "Done"),
            ],
        ),
        object(
            "Bad",
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "false"),
                r("onFail", "Alarm"),
                r("onFail", "Stop"),
                r("onSuccess", "Done"),
            ],
        ),
        object(
            "Done",
            vec![
                s("type", "SnsAlarm"),
                s("topicArn", "arn:aws:sns:us-east-1:123456789012:done"),
                s("subject", "finished"),
                s("message", "#{node.@componentParent} is done"),
                s("role", "DataPipelineDefaultRole"),
            ],
        ),
        object(
            "Alarm",
            vec![
                s("type", "SnsAlarm"),
                s("topicArn", "arn:aws:sns:us-east-1:123456789012:alarm"),
                s("subject", "failed at #{node.@scheduledStartTime}"),
                s("message", "#{node.errorMessage}"),
                s("role", "DataPipelineDefaultRole"),
            ],
        ),
        object("Stop", vec![s("type", "Terminate")]),
    ];
    let pipeline = running_pipeline(&client, "actions", objects).await;
    let mut instances = std::collections::HashMap::new();
    for _ in 0..2 {
        let task = poll_until_task(&client, "wg-actions").await;
        let attempt = task["attemptId"].as_str().unwrap().to_string();
        let instance = attempt.rsplit_once("_Attempt=").unwrap().0.to_string();
        let (status, component) = if instance.starts_with("@Good_") {
            ("FINISHED", "Good")
        } else {
            ("FAILED", "Bad")
        };
        client
            .ok(
                "SetTaskStatus",
                json!({"taskId": task["taskId"], "taskStatus": status, "errorMessage": "exit code 1"}),
            )
            .await;
        instances.insert(component, instance);
    }
    let events = |object: &serde_json::Value| -> Vec<String> {
        object["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["key"] == "@event")
            .map(|f| f["stringValue"].as_str().unwrap().to_string())
            .collect()
    };
    let described = client
        .ok(
            "DescribeObjects",
            json!({"pipelineId": pipeline, "objectIds": [instances["Good"], instances["Bad"]]}),
        )
        .await;
    let good = events(&described["pipelineObjects"][0]);
    let bad = events(&described["pipelineObjects"][1]);
    assert_eq!(good.len(), 1, "{good:?}");
    assert!(good[0].starts_with("onSuccess SnsAlarm Done "), "{good:?}");
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("onFail SnsAlarm Alarm "), "{bad:?}");
    assert!(bad[1].starts_with("onFail Terminate Stop "), "{bad:?}");
    server.kill();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let bad_instance = &instances["Bad"];
    let scheduled = bad_instance.trim_start_matches("@Bad_").to_string();
    assert!(
        log.contains(&format!(
            "SnsAlarm Done (onSuccess of {} in {pipeline}) to arn:aws:sns:us-east-1:123456789012:done: finished: Good is done",
            instances["Good"]
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "SnsAlarm Alarm (onFail of {bad_instance} in {pipeline}) to arn:aws:sns:us-east-1:123456789012:alarm: failed at {scheduled}: exit code 1"
        )),
        "{log}"
    );
}

/// An instance of a scheduled pipeline that has not ended when its `lateAfterTimeout` passes takes its
/// `onLateAction` actions; one that ended in time does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_instances_take_their_on_late_action() {
    // At scale 1000: 1 minute = 60 ms, 30 minutes = 1.8 s.
    let server = crate::server(1000.0, 20.0);
    let client = Client::new(&server.url());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = dp_model::timestamp::format_utc(now - 3600);
    let activity = |id: &str, late: &str| {
        object(
            id,
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "true"),
                s("lateAfterTimeout", late),
                r("onLateAction", "Alarm"),
            ],
        )
    };
    let objects = vec![
        object(
            "Default",
            vec![
                s("scheduleType", "cron"),
                s("workerGroup", "wg-late"),
                r("schedule", "Daily"),
            ],
        ),
        object(
            "Daily",
            vec![
                s("type", "Schedule"),
                s("period", "1 day"),
                s("startDateTime", &start),
            ],
        ),
        activity("Slow", "1 minutes"),
        activity("Quick", "30 minutes"),
        object(
            "Alarm",
            vec![
                s("type", "SnsAlarm"),
                s("topicArn", "arn:aws:sns:us-east-1:123456789012:late"),
                s("subject", "late"),
                s("message", "#{node.@scheduledStartTime} is late"),
                s("role", "DataPipelineDefaultRole"),
            ],
        ),
    ];
    let pipeline = running_pipeline(&client, "late", objects).await;
    let quick = format!("@Quick_{start}");
    let slow = format!("@Slow_{start}");
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": pipeline, "objectIds": [quick], "status": "MARK_FINISHED"}),
        )
        .await;
    let mut event = String::new();
    for _ in 0..2000 {
        event = fields(&client, &pipeline, &slow)
            .await
            .get("@event")
            .cloned()
            .unwrap_or_default();
        if !event.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        event.starts_with("onLateAction SnsAlarm Alarm "),
        "{slow}: {event:?}"
    );
    // Past Quick's 1.8 s: it had ended, so it took no late action.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let quick_fields = fields(&client, &pipeline, &quick).await;
    assert_eq!(quick_fields["@status"], "FINISHED");
    assert!(
        quick_fields
            .get("@event")
            .is_none_or(|e| !e.starts_with("onLateAction")),
        "{quick_fields:?}"
    );
}

/// `--time-scale` scales schedule periods: at scale 900 a 15-minute cron schedule makes an instance every second,
/// with `@scheduledStartTime`s 15 minutes apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_at_the_time_scale() {
    let server = crate::server(900.0, 20.0);
    let client = Client::new(&server.url());
    let objects = vec![
        object(
            "Default",
            vec![
                s("scheduleType", "cron"),
                s("workerGroup", "wg-scaled"),
                r("schedule", "Quarter"),
            ],
        ),
        object(
            "Quarter",
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
    let pipeline = running_pipeline(&client, "scaled", objects).await;
    let mut starts = Vec::new();
    for _ in 0..2000 {
        let ids = client
            .ok(
                "QueryObjects",
                json!({"pipelineId": pipeline, "sphere": "INSTANCE"}),
            )
            .await["ids"]
            .as_array()
            .unwrap()
            .clone();
        if ids.len() >= 3 {
            for id in &ids[..3] {
                let start =
                    fields(&client, &pipeline, id.as_str().unwrap()).await["@scheduledStartTime"]
                        .clone();
                starts.push(dp_model::timestamp::parse(&start).unwrap());
            }
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(starts.len(), 3, "three periods passed");
    assert_eq!(starts[1] - starts[0], 15 * 60, "{starts:?}");
    assert_eq!(starts[2] - starts[1], 15 * 60, "{starts:?}");
}
