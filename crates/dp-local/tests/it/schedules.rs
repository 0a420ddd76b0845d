//! Cron and time-series schedules, back-fill, `dependsOn` and cascading failure.

use std::time::{SystemTime, UNIX_EPOCH};

use dp_model::timestamp::format_utc;
use serde_json::{Value, json};

use crate::server;
use crate::support::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn scheduled(kind: &str, start: i64, extra: Vec<Value>) -> Vec<Value> {
    let mut schedule = vec![
        s("type", "Schedule"),
        s("period", "1 day"),
        s("startDateTime", &format_utc(start)),
    ];
    schedule.extend(extra);
    vec![
        object(
            "Default",
            vec![
                s("scheduleType", kind),
                s("workerGroup", &format!("wg-{kind}")),
                r("schedule", "Daily"),
            ],
        ),
        object("Daily", schedule),
        object(
            "A",
            vec![s("type", "ShellCommandActivity"), s("command", "echo a")],
        ),
        object(
            "B",
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "echo b"),
                r("dependsOn", "A"),
            ],
        ),
    ]
}

async fn instances(client: &Client, pipeline: &str) -> Vec<String> {
    let out = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": pipeline, "sphere": "INSTANCE"}),
        )
        .await;
    out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_backfills_each_period_start() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let start = now() - 3 * 86_400 + 3600;
    let pipeline = running_pipeline(&client, "cron", scheduled("cron", start, vec![])).await;
    let mut ids = instances(&client, &pipeline).await;
    ids.sort();
    let days: Vec<String> = (0..3).map(|d| format_utc(start + d * 86_400)).collect();
    let mut want: Vec<String> = days
        .iter()
        .flat_map(|d| [format!("@A_{d}"), format!("@B_{d}")])
        .collect();
    want.sort();
    assert_eq!(
        ids, want,
        "one instance per activity per period start up to now"
    );
    let b0 = format!("@B_{}", days[0]);
    let f = fields(&client, &pipeline, &b0).await;
    assert_eq!(f["@status"], "WAITING_ON_DEPENDENCIES");
    assert_eq!(f["@dependsOnInstance"], format!("@A_{}", days[0]));
    assert_eq!(f["@scheduledEndTime"], days[1]);

    // Finish A's first instance: only B's first instance becomes ready.
    let mut finished_a = false;
    for _ in 0..3 {
        let task = poll_until_task(&client, "wg-cron").await;
        let id = task["taskId"].as_str().unwrap();
        if task["attemptId"] == format!("@A_{}_Attempt=1", days[0]) {
            client
                .ok(
                    "SetTaskStatus",
                    json!({"taskId": id, "taskStatus": "FINISHED"}),
                )
                .await;
            finished_a = true;
        } else {
            assert!(
                task["attemptId"].as_str().unwrap().starts_with("@A_"),
                "B waits for A: {task}"
            );
            client.ok("ReportTaskProgress", json!({"taskId": id})).await;
        }
    }
    assert!(finished_a, "A's first instance was handed out");
    assert_eq!(
        fields(&client, &pipeline, &b0).await["@status"],
        "WAITING_FOR_RUNNER"
    );
    assert_eq!(
        fields(&client, &pipeline, &format!("@B_{}", days[1])).await["@status"],
        "WAITING_ON_DEPENDENCIES"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeseries_runs_at_period_end_and_occurrences_limit() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let start = now() - 3 * 86_400 + 3600;
    let pipeline = running_pipeline(&client, "ts", scheduled("timeseries", start, vec![])).await;
    assert_eq!(
        instances(&client, &pipeline).await.len(),
        4,
        "two ended periods, two activities"
    );

    let limited = running_pipeline(
        &client,
        "ts1",
        scheduled("timeseries", start, vec![s("occurrences", "1")]),
    )
    .await;
    assert_eq!(
        instances(&client, &limited).await.len(),
        2,
        "occurrences 1: one period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_cascades_and_rerun_recovers() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let objects = vec![
        object(
            "Default",
            vec![
                s("scheduleType", "ondemand"),
                s("workerGroup", "wg-cascade"),
                s("failureAndRerunMode", "CASCADE"),
                s("maximumRetries", "0"),
            ],
        ),
        object(
            "A",
            vec![s("type", "ShellCommandActivity"), s("command", "false")],
        ),
        object(
            "B",
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "echo b"),
                r("dependsOn", "A"),
            ],
        ),
    ];
    let pipeline = running_pipeline(&client, "cascade", objects).await;
    let task = poll_until_task(&client, "wg-cascade").await;
    let attempt = task["attemptId"].as_str().unwrap().to_string();
    assert!(attempt.starts_with("@A_"), "{attempt}");
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": task["taskId"], "taskStatus": "FAILED", "errorMessage": "exit 1"}),
        )
        .await;
    let a = attempt.rsplit_once("_Attempt=").unwrap().0.to_string();
    let b = a.replacen("@A_", "@B_", 1);
    assert_eq!(fields(&client, &pipeline, &a).await["@status"], "FAILED");
    assert_eq!(
        fields(&client, &pipeline, &b).await["@status"],
        "CASCADE_FAILED"
    );

    client
        .ok(
            "SetStatus",
            json!({"pipelineId": pipeline, "objectIds": [a], "status": "RERUN"}),
        )
        .await;
    assert_eq!(
        fields(&client, &pipeline, &b).await["@status"],
        "WAITING_ON_DEPENDENCIES"
    );
    let task = poll_until_task(&client, "wg-cascade").await;
    assert_eq!(task["attemptId"], format!("{a}_Attempt=2"));
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": task["taskId"], "taskStatus": "FINISHED"}),
        )
        .await;
    let task = poll_until_task(&client, "wg-cascade").await;
    assert_eq!(task["attemptId"], format!("{b}_Attempt=1"));
}

/// The next period's instance is made when its time comes (here 60 s of schedule time, 6 s at scale 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_occurrence_appears_on_time() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let start = now() - 15 * 60 + 60;
    let mut objects = scheduled("cron", start, vec![]);
    objects[1]["fields"][1] = s("period", "15 minutes");
    let pipeline = running_pipeline(&client, "soon", objects).await;
    assert_eq!(
        instances(&client, &pipeline).await.len(),
        2,
        "the current period's instances"
    );
    let mut seen = 0;
    for _ in 0..400 {
        seen = instances(&client, &pipeline).await.len();
        if seen == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 4, "the next period's instances appear at its start");
    let ids = instances(&client, &pipeline).await;
    assert!(
        ids.contains(&format!("@A_{}", format_utc(start + 15 * 60))),
        "{ids:?}"
    );
}
