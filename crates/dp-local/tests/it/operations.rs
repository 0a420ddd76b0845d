//! Every operation over HTTP, with its success answers and the errors the service gives.

use serde_json::{Value, json};

use crate::server;
use crate::support::*;

async fn create(client: &Client, name: &str, unique: &str) -> String {
    client
        .ok("CreatePipeline", json!({"name": name, "uniqueId": unique}))
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .into()
}

fn state_of(describe: &Value) -> String {
    describe["pipelineDescriptionList"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "@pipelineState")
        .map(|f| f["stringValue"].as_str().unwrap().to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_tags_and_deletion() {
    let server = server(1.0, 1.0);
    let client = Client::new(&server.url());
    let a = create(&client, "one", "u1").await;
    assert!(
        a.starts_with("df-") && a.len() == 22,
        "pipeline id shape: {a}"
    );
    assert_eq!(
        create(&client, "one", "u1").await,
        a,
        "same name and uniqueId give the same pipeline"
    );
    assert_ne!(
        create(&client, "other", "u1").await,
        a,
        "the idempotency key is name plus uniqueId"
    );

    client
        .fails(
            "CreatePipeline",
            json!({"name": "t", "uniqueId": "t", "tags": [{"key": "aws:x", "value": "1"}]}),
            "InvalidRequestException",
        )
        .await;
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    client
        .fails(
            "CreatePipeline",
            json!({"name": "t", "uniqueId": "t", "tags": eleven}),
            "InvalidRequestException",
        )
        .await;

    client.ok("AddTags", json!({"pipelineId": a, "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "x"}]})).await;
    client
        .ok(
            "AddTags",
            json!({"pipelineId": a, "tags": [{"key": "env", "value": "prod"}]}),
        )
        .await;
    client
        .ok("RemoveTags", json!({"pipelineId": a, "tagKeys": ["team"]}))
        .await;
    let described = client
        .ok("DescribePipelines", json!({"pipelineIds": [a]}))
        .await;
    assert_eq!(
        described["pipelineDescriptionList"][0]["tags"],
        json!([{"key": "env", "value": "prod"}])
    );
    assert_eq!(described["pipelineDescriptionList"][0]["name"], "one");
    assert_eq!(state_of(&described), "PENDING");

    let listed = client.ok("ListPipelines", json!({})).await;
    let ids: Vec<&str> = listed["pipelineIdList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&a.as_str()),
        "list-pipelines shows {a}: {listed}"
    );
    assert_eq!(listed["hasMoreResults"], false);

    client.ok("DeletePipeline", json!({"pipelineId": a})).await;
    client
        .fails(
            "DescribePipelines",
            json!({"pipelineIds": [a]}),
            "PipelineDeletedException",
        )
        .await;
    client
        .fails(
            "AddTags",
            json!({"pipelineId": a, "tags": []}),
            "PipelineDeletedException",
        )
        .await;
    client
        .fails(
            "DeletePipeline",
            json!({"pipelineId": a}),
            "PipelineNotFoundException",
        )
        .await;
    client
        .fails(
            "DescribePipelines",
            json!({"pipelineIds": ["df-NOPE"]}),
            "PipelineNotFoundException",
        )
        .await;
    let listed = client.ok("ListPipelines", json!({})).await;
    assert!(
        !listed.to_string().contains(&a),
        "deleted pipelines are not listed"
    );
    let again = create(&client, "one", "u1").await;
    assert_ne!(again, a, "a deleted pipeline's uniqueId can be used again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pipelines_pages() {
    let server = server(1.0, 1.0);
    let client = Client::new(&server.url());
    for i in 0..105 {
        create(&client, &format!("p{i}"), "u").await;
    }
    let first = client.ok("ListPipelines", json!({})).await;
    assert_eq!(first["pipelineIdList"].as_array().unwrap().len(), 100);
    assert_eq!(first["hasMoreResults"], true);
    let second = client
        .ok("ListPipelines", json!({"marker": first["marker"]}))
        .await;
    assert_eq!(second["pipelineIdList"].as_array().unwrap().len(), 5);
    assert_eq!(second["hasMoreResults"], false);
    assert_eq!(second["pipelineIdList"][4]["name"], "p104");
    client
        .fails(
            "ListPipelines",
            json!({"marker": "garbage"}),
            "InvalidRequestException",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_validation_versions_and_parameters() {
    let server = server(1.0, 1.0);
    let client = Client::new(&server.url());
    let id = create(&client, "defs", "d").await;

    let bad = vec![
        object("Default", vec![s("scheduleType", "ondemand")]),
        object(
            "Act",
            vec![s("type", "ShellCommandActivity"), r("runsOn", "Missing")],
        ),
    ];
    let answer = client
        .ok(
            "ValidatePipelineDefinition",
            json!({"pipelineId": id, "pipelineObjects": bad}),
        )
        .await;
    assert_eq!(answer["errored"], true);
    assert_eq!(
        answer["validationErrors"],
        json!([{"id": "Act", "errors": ["Field 'runsOn' refers to object 'Missing', which does not exist"]}])
    );
    let answer = client
        .ok(
            "PutPipelineDefinition",
            json!({"pipelineId": id, "pipelineObjects": bad}),
        )
        .await;
    assert_eq!(answer["errored"], true);
    let latest = client
        .ok("GetPipelineDefinition", json!({"pipelineId": id}))
        .await;
    assert_eq!(
        latest["pipelineObjects"],
        json!([]),
        "an errored definition is not stored"
    );

    let mut good = ondemand("wg-defs", vec![]);
    good[1]["fields"][1] = s("command", "echo #{myWord}");
    good.push(object("Ec2", vec![s("type", "Ec2Resource")]));
    let params = json!([{"id": "myWord", "attributes": [{"key": "type", "stringValue": "String"}, {"key": "default", "stringValue": "hello"}]}]);
    let answer = client
        .ok(
            "PutPipelineDefinition",
            json!({"pipelineId": id, "pipelineObjects": good, "parameterObjects": params}),
        )
        .await;
    assert_eq!(answer["errored"], false, "{answer}");
    assert_eq!(answer["validationErrors"], json!([]));
    assert_eq!(
        answer["validationWarnings"],
        json!([{"id": "Ec2", "warnings": ["Object is not referenced by any other object"]}])
    );
    let latest = client
        .ok(
            "GetPipelineDefinition",
            json!({"pipelineId": id, "version": "latest"}),
        )
        .await;
    assert_eq!(latest["pipelineObjects"], json!(good));
    assert_eq!(latest["parameterObjects"], params);
    client
        .fails(
            "GetPipelineDefinition",
            json!({"pipelineId": id, "version": "active"}),
            "InvalidRequestException",
        )
        .await;
    client
        .fails(
            "GetPipelineDefinition",
            json!({"pipelineId": id, "version": "newest"}),
            "InvalidRequestException",
        )
        .await;

    // A value for a parameter that is not declared is accepted (see runs.rs); it is not tried here, so that the
    // active definition below holds exactly the values of this activation.
    client
        .ok(
            "ActivatePipeline",
            json!({"pipelineId": id, "parameterValues": [{"id": "myWord", "stringValue": "bye"}]}),
        )
        .await;
    let active = client
        .ok(
            "GetPipelineDefinition",
            json!({"pipelineId": id, "version": "active"}),
        )
        .await;
    assert_eq!(
        active["parameterValues"],
        json!([{"id": "myWord", "stringValue": "bye"}])
    );
    let task = poll_until_task(&client, "wg-defs").await;
    let attempt = &task["objects"][task["attemptId"].as_str().unwrap()];
    let command = attempt["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "command")
        .unwrap();
    assert_eq!(
        command["stringValue"], "echo bye",
        "parameters are substituted in the task"
    );
    let instance = task["attemptId"]
        .as_str()
        .unwrap()
        .rsplit_once("_Attempt=")
        .unwrap()
        .0
        .to_string();
    for (evaluate, want) in [(false, "echo #{myWord}"), (true, "echo bye")] {
        let described = client
            .ok(
                "DescribeObjects",
                json!({"pipelineId": id, "objectIds": [instance], "evaluateExpressions": evaluate}),
            )
            .await;
        let fields = described["pipelineObjects"][0]["fields"]
            .as_array()
            .unwrap();
        let command = fields.iter().find(|f| f["key"] == "command").unwrap();
        assert_eq!(
            command["stringValue"], want,
            "evaluateExpressions {evaluate}"
        );
    }

    let no_def = create(&client, "nodef", "n").await;
    client
        .fails(
            "ActivatePipeline",
            json!({"pipelineId": no_def}),
            "InvalidRequestException",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_queries_expressions_and_set_status() {
    let server = server(10.0, 1.0);
    let client = Client::new(&server.url());
    let id = running_pipeline(&client, "objs", ondemand("wg-objs", vec![])).await;

    let described = client
        .ok("DescribePipelines", json!({"pipelineIds": [id]}))
        .await;
    assert_eq!(state_of(&described), "SCHEDULED");

    let components = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": id, "sphere": "COMPONENT"}),
        )
        .await;
    assert_eq!(components["ids"], json!(["Default", "Act"]));
    let instances = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": id, "sphere": "INSTANCE"}),
        )
        .await;
    let instance = instances["ids"][0].as_str().unwrap().to_string();
    assert!(
        instance.starts_with("@Act_") && instance.len() == "@Act_2024-01-01T00:00:00".len(),
        "{instance}"
    );
    let f = fields(&client, &id, &instance).await;
    assert_eq!(f["@status"], "WAITING_FOR_RUNNER");
    assert_eq!(f["@componentParent"], "Act");
    assert_eq!(f["@attemptCount"], "1");
    assert_eq!(f["@headAttempt"], format!("{instance}_Attempt=1"));
    assert_eq!(
        f["type"], "ShellCommandActivity",
        "instances carry their component's fields"
    );

    let query = |field: &str, op: &str, values: Vec<&str>| json!({"pipelineId": id, "sphere": "INSTANCE", "query": {"selectors": [{"fieldName": field, "operator": {"type": op, "values": values}}]}});
    let scheduled = &f["@scheduledStartTime"];
    for (q, hits) in [
        (
            query("@status", "EQ", vec!["WAITING_FOR_RUNNER", "RUNNING"]),
            1,
        ),
        (query("@status", "EQ", vec!["FINISHED"]), 0),
        (query("@componentParent", "REF_EQ", vec!["Act"]), 1),
        (
            query(
                "@scheduledStartTime",
                "BETWEEN",
                vec!["2000-01-01T00:00:00", "2999-01-01T00:00:00"],
            ),
            1,
        ),
        (
            query("@scheduledStartTime", "LE", vec!["2000-01-01T00:00:00"]),
            0,
        ),
        (query("@scheduledStartTime", "GE", vec![scheduled]), 1),
        (
            query("@actualStartTime", "GE", vec!["2000-01-01T00:00:00"]),
            0,
        ),
    ] {
        let out = client.ok("QueryObjects", q.clone()).await;
        assert_eq!(out["ids"].as_array().unwrap().len(), hits, "{q}");
    }
    client
        .fails(
            "QueryObjects",
            json!({"pipelineId": id, "sphere": "GALAXY"}),
            "InvalidRequestException",
        )
        .await;

    let evaluated = client
        .ok("EvaluateExpression", json!({"pipelineId": id, "objectId": instance, "expression": "#{format(@scheduledStartTime,'YYYY')}/#{command}"}))
        .await;
    assert_eq!(
        evaluated["evaluatedExpression"],
        format!("{}/echo hi", &scheduled[..4])
    );
    let bad = client
        .fails(
            "EvaluateExpression",
            json!({"pipelineId": id, "objectId": instance, "expression": "#{nothing}"}),
            "InvalidRequestException",
        )
        .await;
    assert!(bad.message.contains("nothing"), "{bad:?}");
    client
        .fails(
            "EvaluateExpression",
            json!({"pipelineId": id, "objectId": "@Nope", "expression": "x"}),
            "InvalidRequestException",
        )
        .await;

    // PAUSE keeps the waiting instance from being handed out; RESUME releases it.
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": ["Act"], "status": "PAUSE"}),
        )
        .await;
    assert_eq!(fields(&client, &id, &instance).await["@status"], "PAUSED");
    let none = client
        .ok("PollForTask", json!({"workerGroup": "wg-objs"}))
        .await;
    assert_eq!(none, json!({}), "a paused component hands out nothing");
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": ["Act"], "status": "RESUME"}),
        )
        .await;
    let task = poll_until_task(&client, "wg-objs").await;
    assert_eq!(task["attemptId"], format!("{instance}_Attempt=1"));
    assert_eq!(task["pipelineId"], id.as_str());

    client
        .fails(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": ["Act"], "status": "RERUN"}),
            "InvalidRequestException",
        )
        .await;
    client
        .fails(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": [instance], "status": "EXPLODE"}),
            "InvalidRequestException",
        )
        .await;
    client
        .fails(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": ["@Nope"], "status": "RERUN"}),
            "InvalidRequestException",
        )
        .await;

    let task_id = task["taskId"].as_str().unwrap();
    assert_eq!(
        client
            .ok(
                "ReportTaskProgress",
                json!({"taskId": task_id, "fields": [s("progress", "50%")]})
            )
            .await,
        json!({"canceled": false})
    );
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": task_id, "taskStatus": "FINISHED"}),
        )
        .await;
    let f = fields(&client, &id, &instance).await;
    assert_eq!(f["@status"], "FINISHED");
    assert!(
        !f["@actualEndTime"].is_empty(),
        "finished instances have an end time"
    );
    let attempt = fields(&client, &id, &format!("{instance}_Attempt=1")).await;
    assert_eq!(attempt["@status"], "FINISHED");
    assert_eq!(
        attempt["progress"], "50%",
        "reported fields are kept on the attempt"
    );
    assert_eq!(attempt["@hostname"], "test-host");

    // RERUN a finished instance: a second attempt, handed out again.
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": [instance], "status": "RERUN"}),
        )
        .await;
    let task = poll_until_task(&client, "wg-objs").await;
    assert_eq!(task["attemptId"], format!("{instance}_Attempt=2"));
    client
        .ok(
            "SetStatus",
            json!({"pipelineId": id, "objectIds": [instance], "status": "MARK_FINISHED"}),
        )
        .await;
    assert_eq!(fields(&client, &id, &instance).await["@status"], "FINISHED");
    let attempts = client
        .ok(
            "QueryObjects",
            json!({"pipelineId": id, "sphere": "ATTEMPT", "limit": 1}),
        )
        .await;
    assert_eq!(attempts["ids"].as_array().unwrap().len(), 1);
    assert_eq!(attempts["hasMoreResults"], true);
    let rest = client.ok("QueryObjects", json!({"pipelineId": id, "sphere": "ATTEMPT", "limit": 1, "marker": attempts["marker"]})).await;
    assert_eq!(rest["ids"], json!([format!("{instance}_Attempt=2")]));

    let described = client.ok("DescribeObjects", json!({"pipelineId": id, "objectIds": ["Act", "@Unknown"], "evaluateExpressions": true})).await;
    assert_eq!(
        described["pipelineObjects"].as_array().unwrap().len(),
        1,
        "unknown ids are left out"
    );

    client
        .ok("DeactivatePipeline", json!({"pipelineId": id}))
        .await;
    let described = client
        .ok("DescribePipelines", json!({"pipelineIds": [id]}))
        .await;
    assert_eq!(state_of(&described), "PAUSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_runner_calls_and_heartbeats() {
    let server = server(10.0, 0.5);
    let client = Client::new(&server.url());
    let empty = client
        .ok("PollForTask", json!({"workerGroup": "nobody-home"}))
        .await;
    assert_eq!(
        empty,
        json!({}),
        "a poll with no task answers without taskObject"
    );
    client
        .fails(
            "ReportTaskProgress",
            json!({"taskId": "no-such-task"}),
            "TaskNotFoundException",
        )
        .await;
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": "no-such-task", "taskStatus": "FINISHED"}),
            "TaskNotFoundException",
        )
        .await;
    let beat = client
        .ok(
            "ReportTaskRunnerHeartbeat",
            json!({"taskrunnerId": "runner-1", "workerGroup": "wg", "hostname": "h1"}),
        )
        .await;
    assert_eq!(beat, json!({"terminate": false}));
    client
        .ok(
            "ReportTaskRunnerHeartbeat",
            json!({"taskrunnerId": "runner-1"}),
        )
        .await;
    let runners = server.runners();
    assert_eq!(runners.len(), 1);
    assert_eq!(
        (
            runners[0].id.as_str(),
            runners[0].worker_group.as_deref(),
            runners[0].heartbeats
        ),
        ("runner-1", Some("wg"), 2)
    );

    running_pipeline(&client, "errors", ondemand("wg-err", vec![])).await;
    let task = poll_until_task(&client, "wg-err").await;
    let task_id = task["taskId"].as_str().unwrap();
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": task_id, "taskStatus": "FAILED", "errorId": "Service_Oops"}),
            "InvalidRequestException",
        )
        .await;
    client
        .fails(
            "SetTaskStatus",
            json!({"taskId": task_id, "taskStatus": "DONE"}),
            "InvalidRequestException",
        )
        .await;
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": task_id, "taskStatus": "FINISHED"}),
        )
        .await;
    let again = client
        .fails(
            "SetTaskStatus",
            json!({"taskId": task_id, "taskStatus": "FINISHED"}),
            "TaskNotFoundException",
        )
        .await;
    assert!(again.message.contains("already ended"), "{again:?}");
    client
        .fails(
            "ReportTaskProgress",
            json!({"taskId": task_id}),
            "TaskNotFoundException",
        )
        .await;
}

/// Malformed requests get the service's protocol errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors() {
    let server = server(1.0, 1.0);
    let client = Client::new(&server.url());
    let check =
        |op: &'static str, body: &'static str, code: &'static str, message: &'static str| {
            let client = client.clone();
            async move {
                let failure = client
                    .call_with(op, body.as_bytes().to_vec(), Signing::example())
                    .await
                    .unwrap_err();
                assert_eq!(
                    (failure.status, failure.code.as_str()),
                    (400, code),
                    "{op} {body}: {failure:?}"
                );
                assert!(
                    failure.message.contains(message),
                    "{op} {body}: {failure:?}"
                );
            }
        };
    check(
        "DescribePipelines",
        "{}",
        "InvalidRequestException",
        "Value null at 'pipelineIds' failed to satisfy constraint: Member must not be null",
    )
    .await;
    check(
        "ReportTaskProgress",
        r#"{"taskId": ""}"#,
        "InvalidRequestException",
        "Member must have length greater than or equal to 1",
    )
    .await;
    check(
        "SetTaskStatus",
        r#"{"taskId": "t", "taskStatus": "DONE"}"#,
        "InvalidRequestException",
        "Member must satisfy enum value set: [FINISHED, FAILED, FALSE]",
    )
    .await;
    check(
        "CreatePipeline",
        r#"{"name": 5, "uniqueId": "u"}"#,
        "SerializationException",
        "name",
    )
    .await;
    check(
        "CreatePipeline",
        "{not json",
        "SerializationException",
        "Malformed JSON",
    )
    .await;
    check(
        "CreatePipeline",
        "[]",
        "SerializationException",
        "JSON object",
    )
    .await;
    check(
        "Frobnicate",
        "{}",
        "UnknownOperationException",
        "DataPipeline.Frobnicate",
    )
    .await;
    // Unknown members are ignored, as the service ignores them.
    let ok = client
        .call_with(
            "ListPipelines",
            br#"{"bogus": 1}"#.to_vec(),
            Signing::example(),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}
