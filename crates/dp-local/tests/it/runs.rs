//! What a run is made of besides its activity, seen through the API with a worker-group runner played by the test:
//! the task object carries every object reachable from the activity (two references away too), with expressions
//! evaluated in the run's period; an output data node is ready when its activity finishes; a user-managed
//! precondition runs where its activity runs, and a `FALSE` answer is checked again rather than failing the run.

use serde_json::{Value, json};

use crate::support::*;

fn task_objects(task: &Value) -> &serde_json::Map<String, Value> {
    task["objects"].as_object().unwrap()
}

fn field<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .and_then(|f| f["stringValue"].as_str().or(f["refValue"].as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_objects_carry_what_the_work_needs_evaluated() {
    let server = crate::server(60.0, 1.0);
    let client = Client::new(&server.url());
    let objects = vec![
        object(
            "Default",
            vec![s("scheduleType", "ondemand"), s("workerGroup", "copiers")],
        ),
        object(
            "Copy",
            vec![
                s("type", "CopyActivity"),
                r("input", "In"),
                r("output", "Out"),
                s("note", "#{input.directoryPath} -> #{output.filePath}"),
            ],
        ),
        object(
            "In",
            vec![
                s("type", "SqlDataNode"),
                s("table", "orders"),
                r("database", "Db"),
                s(
                    "directoryPath",
                    "s3://in/#{format(minusDays(@scheduledStartTime,1),'YYYY-MM-dd')}",
                ),
            ],
        ),
        object(
            "Out",
            vec![
                s("type", "S3DataNode"),
                r("dataFormat", "Csv"),
                s("filePath", "s3://out/#{node.@scheduledStartTime}.csv"),
            ],
        ),
        object("Csv", vec![s("type", "CSV")]),
        object(
            "Db",
            vec![
                s("type", "JdbcDatabase"),
                s("connectionString", "jdbc:postgresql://127.0.0.1/test"),
                s("username", "#{myUser}"),
                s("*password", "#{*myPassword}"),
            ],
        ),
    ];
    let id = client
        .ok(
            "CreatePipeline",
            json!({"name": "copy", "uniqueId": "copy"}),
        )
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let put = client
        .ok(
            "PutPipelineDefinition",
            json!({
                "pipelineId": id,
                "pipelineObjects": objects,
                "parameterObjects": [
                    {"id": "*myPassword", "attributes": [{"key": "type", "stringValue": "String"}]},
                ],
                "parameterValues": [
                    {"id": "*myPassword", "stringValue": "pw"},
                    {"id": "myUser", "stringValue": "loader"},
                ],
            }),
        )
        .await;
    assert_eq!(put["errored"], false, "{put}");
    client
        .ok("ActivatePipeline", json!({"pipelineId": id}))
        .await;
    let task = poll_until_task(&client, "copiers").await;
    let objects = task_objects(&task);
    for id in ["In", "Out", "Csv", "Db"] {
        assert!(objects.contains_key(id), "{id} missing from {task}");
    }
    let attempt = &objects[task["attemptId"].as_str().unwrap()];
    let start = field(attempt, "@scheduledStartTime").unwrap();
    let day_before = {
        let t = dp_model::timestamp::parse(start).unwrap() - 86_400;
        dp_model::timestamp::format_utc(t)[..10].to_string()
    };
    assert_eq!(
        field(attempt, "note").unwrap(),
        format!("s3://in/{day_before} -> s3://out/{start}.csv")
    );
    assert_eq!(field(&objects["Db"], "username"), Some("loader"));
    assert_eq!(field(&objects["Db"], "*password"), Some("pw"));
    assert_eq!(field(&objects["In"], "database"), Some("Db"));
    assert_eq!(field(&objects["Out"], "dataFormat"), Some("Csv"));

    // The output data node waits for its activity, and is ready once it has finished.
    let instances = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": id, "sphere": "INSTANCE"}),
        )
        .await;
    let out_instance = instances["ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|i| i.starts_with("@Out_"))
        .unwrap()
        .to_string();
    let f = fields(&client, &id, &out_instance).await;
    assert_eq!(f["@status"], "WAITING_ON_DEPENDENCIES");
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": task["taskId"], "taskStatus": "FINISHED"}),
        )
        .await;
    wait_for(&client, &id, &out_instance, "@status", "FINISHED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_managed_precondition_runs_where_its_activity_runs_and_false_is_checked_again() {
    let server = crate::server(600.0, 1.0);
    let client = Client::new(&server.url());
    let objects = vec![
        object(
            "Default",
            vec![s("scheduleType", "ondemand"), s("workerGroup", "checkers")],
        ),
        object(
            "Act",
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "true"),
                r("precondition", "Ready"),
            ],
        ),
        object(
            "Ready",
            vec![
                s("type", "ShellCommandPrecondition"),
                s("command", "test -e /nowhere"),
                s("preconditionTimeout", "1 hours"),
                s("retryDelay", "1 minutes"),
            ],
        ),
    ];
    let id = running_pipeline(&client, "checks", objects).await;
    // Two checks answer FALSE, the third FINISHED; then the activity itself is handed out.
    for answer in ["FALSE", "FALSE", "FINISHED"] {
        let task = poll_until_task(&client, "checkers").await;
        let objects = task_objects(&task);
        let attempt = &objects[task["attemptId"].as_str().unwrap()];
        assert_eq!(field(attempt, "type"), Some("ShellCommandPrecondition"));
        client
            .ok(
                "SetTaskStatus",
                json!({"taskId": task["taskId"], "taskStatus": answer}),
            )
            .await;
    }
    let task = poll_until_task(&client, "checkers").await;
    let objects = task_objects(&task);
    let attempt = &objects[task["attemptId"].as_str().unwrap()];
    assert_eq!(field(attempt, "type"), Some("ShellCommandActivity"));
    let instances = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": id, "sphere": "INSTANCE"}),
        )
        .await;
    let ready = instances["ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|i| i.starts_with("@Ready_"))
        .unwrap()
        .to_string();
    let f = fields(&client, &id, &ready).await;
    assert_eq!(f["@status"], "FINISHED");
    assert_eq!(
        f["@attemptCount"], "3",
        "two checks that did not hold, one that did"
    );
}

/// As the AWS samples' READMEs do: parameters given only values at put time (no declarations) are accepted and
/// resolve; `#{myPassword}` also finds a `*myPassword` value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_without_declarations_are_accepted_and_resolve() {
    let server = crate::server(60.0, 1.0);
    let client = Client::new(&server.url());
    let objects = vec![
        object(
            "Default",
            vec![s("scheduleType", "ondemand"), s("workerGroup", "values")],
        ),
        object(
            "Act",
            vec![
                s("type", "ShellCommandActivity"),
                s("command", "echo #{myLogUri} #{myPassword}"),
            ],
        ),
    ];
    let id = client
        .ok(
            "CreatePipeline",
            json!({"name": "values", "uniqueId": "values"}),
        )
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let put = client
        .ok(
            "PutPipelineDefinition",
            json!({
                "pipelineId": id,
                "pipelineObjects": objects,
                "parameterValues": [
                    {"id": "myLogUri", "stringValue": "s3://logs"},
                    {"id": "*myPassword", "stringValue": "pw"},
                ],
            }),
        )
        .await;
    assert_eq!(put["errored"], false, "{put}");
    assert_eq!(put["validationErrors"], json!([]));
    client
        .ok("ActivatePipeline", json!({"pipelineId": id}))
        .await;
    let task = poll_until_task(&client, "values").await;
    let attempt = &task_objects(&task)[task["attemptId"].as_str().unwrap()];
    assert_eq!(field(attempt, "command"), Some("echo s3://logs pw"));
}
