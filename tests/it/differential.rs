//! `dp` against the installed `aws datapipeline`: same arguments, same scripted loopback server; the requests
//! received (target, JSON body, signature validity), stdout and success must agree.
//!
//! Each case is one line of data. Where dp deliberately differs from v1 (reference §13: exit codes, caret
//! display, validation the reference leaves to the server), the case says so with its expectation.

use serde_json::{Value, json};

use crate::harness::{Recorded, Reply, Server, aws, dp};

/// A fake Data Pipeline that answers every operation with realistic data, pages by `marker`, and fails on
/// request for the ids `missing`, `boom` and `throttle`.
pub fn fake_service(rec: &Recorded, _index: usize) -> Reply {
    let body = rec.json();
    let op = rec.target().trim_start_matches("DataPipeline.");
    let marker = body.get("marker").and_then(Value::as_str).unwrap_or("");
    let text = |v: Value| Reply::ok(&v.to_string());
    let task = body.get("taskId").and_then(Value::as_str).unwrap_or("");
    let pipeline = body.get("pipelineId").and_then(Value::as_str).unwrap_or("");
    if task == "missing" || pipeline == "missing" {
        return Reply::error(
            400,
            "com.amazonaws.datapipeline#TaskNotFoundException",
            "Task not found: missing",
        );
    }
    if task == "boom" {
        return Reply::error(500, "InternalServiceError", "boom");
    }
    if pipeline == "deleted" {
        return Reply::error(
            400,
            "PipelineDeletedException",
            "Pipeline df-deleted was deleted",
        );
    }
    match op {
        "ReportTaskProgress" => text(json!({"canceled": task == "cancel-me"})),
        "ReportTaskRunnerHeartbeat" => text(json!({"terminate": false})),
        "CreatePipeline" => text(json!({"pipelineId": "df-0001"})),
        "PollForTask" => text(json!({"taskObject": {
            "taskId": "task-123", "pipelineId": "df-0001", "attemptId": "@Act_2024-01-01T00:00:00_Attempt=1",
            "objects": {"@Act_2024-01-01T00:00:00_Attempt=1": {"id": "@Act_Attempt=1", "name": "Act", "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"},
                {"key": "command", "stringValue": "echo hello"},
                {"key": "runsOn", "refValue": "Ec2"}]}}}})),
        "DescribePipelines" => text(json!({"pipelineDescriptionList": [{
            "pipelineId": "df-0001", "name": "demo", "description": "a demo",
            "fields": [{"key": "@pipelineState", "stringValue": "SCHEDULED"}, {"key": "uniqueId", "stringValue": "u1"},
                       {"key": "@creationTime", "stringValue": "2024-01-01T00:00:00"}],
            "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "x"}]}]})),
        "ListPipelines" => match marker {
            "" => text(
                json!({"pipelineIdList": [{"id": "df-1", "name": "p1"}, {"id": "df-2", "name": "p2"}], "marker": "m1", "hasMoreResults": true}),
            ),
            "m1" => text(
                json!({"pipelineIdList": [{"id": "df-3", "name": "p3"}], "marker": "m2", "hasMoreResults": true}),
            ),
            _ => text(
                json!({"pipelineIdList": [{"id": "df-4", "name": "p4 日本"}], "hasMoreResults": false}),
            ),
        },
        "QueryObjects" => match marker {
            "" => text(
                json!({"ids": ["@a_1", "@a_2", "@a_3"], "marker": "q1", "hasMoreResults": true}),
            ),
            _ => text(json!({"ids": ["@a_4"], "marker": "", "hasMoreResults": false})),
        },
        "DescribeObjects" => text(
            json!({"pipelineObjects": [{"id": "Default", "name": "Default", "fields": [
            {"key": "workerGroup", "stringValue": "wg1"}, {"key": "*password", "stringValue": "secret"}]}], "hasMoreResults": false}),
        ),
        "EvaluateExpression" => text(json!({"evaluatedExpression": "2024-01-01T00:00:00"})),
        "GetPipelineDefinition" => text(
            json!({"pipelineObjects": [{"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg1"}]}],
            "parameterObjects": [{"id": "myParam", "attributes": [{"key": "type", "stringValue": "String"}]}],
            "parameterValues": [{"id": "myParam", "stringValue": "v1"}]}),
        ),
        "PutPipelineDefinition" | "ValidatePipelineDefinition" => text(
            json!({"errored": false, "validationWarnings": [{"id": "Act", "warnings": ["no schedule"]}]}),
        ),
        "DeletePipeline" | "SetStatus" => Reply::ok(""),
        _ => text(json!({})),
    }
}

/// Runs one case with both clients and compares. `dp_code` is dp's expected exit code where it is fixed.
fn check(args: &[&str], files: &[(&str, &str)]) -> (i32, i32) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dp-diff-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    let server = Server::start(fake_service);
    let theirs = aws(&server.url, args, &dir);
    let their_requests = server.take();
    let ours = dp(&server.url, args, &dir);
    let our_requests = server.take();
    let what = format!(
        "case {args:?}\n--- aws (rc {}):\n{}{}\n--- dp (rc {}):\n{}{}",
        theirs.code, theirs.stdout, theirs.stderr, ours.code, ours.stdout, ours.stderr
    );

    assert_eq!(
        our_requests.len(),
        their_requests.len(),
        "number of requests differs: {what}"
    );
    for (a, b) in our_requests.iter().zip(&their_requests) {
        assert_eq!(a.method, "POST", "{what}");
        assert_eq!(a.path, b.path, "{what}");
        assert_eq!(a.target(), b.target(), "{what}");
        assert_eq!(
            a.header("content-type"),
            Some("application/x-amz-json-1.1"),
            "{what}"
        );
        assert_eq!(a.json(), b.json(), "request bodies differ: {what}");
        a.verify_signature()
            .unwrap_or_else(|e| panic!("dp's signature is invalid: {e}\n{what}"));
        b.verify_signature()
            .unwrap_or_else(|e| panic!("the harness cannot verify aws's signature: {e}\n{what}"));
    }
    assert_eq!(ours.code == 0, theirs.code == 0, "success differs: {what}");
    assert_eq!(ours.stdout, theirs.stdout, "stdout differs: {what}");
    if theirs.code != 0 {
        if their_requests.is_empty() {
            assert!(
                matches!(ours.code, 252 | 253),
                "input errors exit 252 (or 253 for configuration): {what}"
            );
        } else {
            assert_eq!(ours.stderr, theirs.stderr, "stderr differs: {what}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    (ours.code, their_requests.len() as i32)
}

macro_rules! cases {
    ($($name:ident: [$($arg:expr),* $(,)?] $(files [$(($f:expr, $c:expr)),*])?;)*) => {
        $(
            #[test]
            fn $name() {
                check(&[$($arg),*], &[$($(($f, $c)),*)?]);
            }
        )*
    };
}

cases! {
    // The seed command, in every parameter form.
    rtp_shorthand: ["report-task-progress", "--task-id", "task-123", "--fields", "key=a,stringValue=b", "key=c,refValue=d"];
    rtp_no_fields: ["report-task-progress", "--task-id", "task-123"];
    rtp_json_list: ["report-task-progress", "--task-id", "t", "--fields", r#"[{"key": "a", "stringValue": "b"}]"#];
    rtp_json_items: ["report-task-progress", "--task-id", "t", "--fields", r#"{"key":"j1"}"#, r#"{"key":"j2","refValue":"r"}"#];
    rtp_json_then_shorthand: ["report-task-progress", "--task-id", "t", "--fields", r#"{"key":"j1"}"#, "key=b"];
    rtp_empty_list: ["report-task-progress", "--task-id", "t", "--fields"];
    rtp_repeated_option: ["report-task-progress", "--task-id", "t", "--fields", "key=a", "--fields", "key=b"];
    rtp_repeated_scalar: ["report-task-progress", "--task-id", "t1", "--task-id", "t2"];
    rtp_quoted: ["report-task-progress", "--task-id", "t", "--fields", "key=a,stringValue='b,c'", r#"key="x y",refValue=z\,w"#];
    rtp_unicode: ["report-task-progress", "--task-id", "tâche-✓", "--fields", "key=é,stringValue=日本語"];
    rtp_canceled: ["report-task-progress", "--task-id", "cancel-me"];
    rtp_text: ["report-task-progress", "--task-id", "t", "--output", "text"];
    rtp_table: ["report-task-progress", "--task-id", "t", "--output", "table"];
    rtp_query: ["report-task-progress", "--task-id", "t", "--query", "canceled"];
    rtp_global_first: ["--output", "text", "report-task-progress", "--task-id", "t"];
    rtp_file_task_id: ["report-task-progress", "--task-id", "file://id.txt"] files [("id.txt", "from-file\n")];
    rtp_file_json: ["report-task-progress", "--task-id", "t", "--fields", "file://fields.json"] files [("fields.json", r#"[{"key": "k", "stringValue": "v"}]"#)];
    rtp_file_shorthand_is_one_struct: ["report-task-progress", "--task-id", "t", "--fields", "file://f.txt"] files [("f.txt", "key=sh,stringValue=x")];
    rtp_cli_input_json: ["report-task-progress", "--cli-input-json", r#"{"taskId": "from-json", "fields": [{"key": "k", "stringValue": "v"}]}"#];
    rtp_cli_input_merge: ["report-task-progress", "--cli-input-json", r#"{"taskId":"from-json","fields":[{"key":"k","stringValue":"v"}]}"#, "--task-id", "from-cli", "--fields", "key=x,stringValue=y"];
    rtp_cli_input_file: ["report-task-progress", "--cli-input-json", "file://in.json"] files [("in.json", r#"{"taskId": "f"}"#)];
    rtp_skeleton: ["report-task-progress", "--generate-cli-skeleton"];
    rtp_skeleton_output: ["report-task-progress", "--task-id", "t", "--generate-cli-skeleton", "output"];
    rtp_skeleton_output_text: ["report-task-progress", "--task-id", "t", "--generate-cli-skeleton", "output", "--output", "text"];
    rtp_skeleton_output_table: ["report-task-progress", "--task-id", "t", "--generate-cli-skeleton", "output", "--output", "table"];
    // Input errors: both fail and neither sends.
    rtp_missing_task_id: ["report-task-progress", "--fields", "key=a"];
    rtp_bad_shorthand: ["report-task-progress", "--task-id", "t", "--fields", "key=a,stringValue=b,"];
    rtp_duplicate_key: ["report-task-progress", "--task-id", "t", "--fields", "key=a,key=b"];
    rtp_unknown_member: ["report-task-progress", "--task-id", "t", "--fields", "key=a,bogus=b"];
    rtp_comma_list_scalar: ["report-task-progress", "--task-id", "t", "--fields", "key=a,stringValue=b,c"];
    rtp_empty_task_id: ["report-task-progress", "--task-id", ""];
    rtp_bad_json: ["report-task-progress", "--task-id", "t", "--fields", r#"[{"key": "a",}]"#];
    rtp_unknown_option: ["report-task-progress", "--task-id", "t", "--bogus-arg", "x"];
    rtp_cli_input_bad_json: ["report-task-progress", "--cli-input-json", r#"{"taskId": "x",}"#];
    rtp_cli_input_unknown_key: ["report-task-progress", "--cli-input-json", r#"{"taskId": "x", "foo": 1}"#];
    rtp_missing_file: ["report-task-progress", "--task-id", "file://nonexist.txt"];
    // Service errors.
    rtp_task_not_found: ["report-task-progress", "--task-id", "missing"];
    rtp_internal_error_retried: ["report-task-progress", "--task-id", "boom"];
    // Every other operation.
    poll_for_task: ["poll-for-task", "--worker-group", "wg", "--hostname", "h1"];
    poll_for_task_text: ["poll-for-task", "--worker-group", "wg", "--output", "text"];
    poll_for_task_table: ["poll-for-task", "--worker-group", "wg", "--output", "table"];
    poll_for_task_identity: ["poll-for-task", "--worker-group", "wg", "--instance-identity", "document=d,signature=s"];
    heartbeat: ["report-task-runner-heartbeat", "--taskrunner-id", "r1", "--worker-group", "wg", "--hostname", "h"];
    set_task_status: ["set-task-status", "--task-id", "t", "--task-status", "FAILED", "--error-id", "E1", "--error-message", "it broke", "--error-stack-trace", "at x"];
    create_pipeline: ["create-pipeline", "--name", "demo", "--unique-id", "u1", "--description", "d", "--tags", "key=env,value=dev", "key=team,value=x"];
    create_pipeline_table: ["create-pipeline", "--name", "demo", "--unique-id", "u1", "--output", "table"];
    activate_pipeline: ["activate-pipeline", "--pipeline-id", "df-0001"];
    deactivate_pipeline: ["deactivate-pipeline", "--pipeline-id", "df-0001", "--no-cancel-active"];
    deactivate_pipeline_cancel: ["deactivate-pipeline", "--pipeline-id", "df-0001", "--cancel-active"];
    delete_pipeline: ["delete-pipeline", "--pipeline-id", "df-0001"];
    deleted_pipeline_error: ["delete-pipeline", "--pipeline-id", "deleted"];
    add_tags: ["add-tags", "--pipeline-id", "df-0001", "--tags", "key=a,value=b"];
    remove_tags: ["remove-tags", "--pipeline-id", "df-0001", "--tag-keys", "a", "b"];
    describe_pipelines: ["describe-pipelines", "--pipeline-ids", "df-0001", "df-0002"];
    describe_pipelines_text: ["describe-pipelines", "--pipeline-ids", "df-0001", "--output", "text"];
    describe_pipelines_table: ["describe-pipelines", "--pipeline-ids", "df-0001", "--output", "table"];
    describe_pipelines_commas: ["describe-pipelines", "--pipeline-ids", "df-1,df-2"];
    describe_objects: ["describe-objects", "--pipeline-id", "df-0001", "--object-ids", "Default", "--evaluate-expressions"];
    evaluate_expression: ["evaluate-expression", "--pipeline-id", "df-0001", "--object-id", "Act", "--expression", "#{@scheduledStartTime}"];
    set_status: ["set-status", "--pipeline-id", "df-0001", "--object-ids", "@a_1", "--status", "RERUN"];
    validate_definition: ["validate-pipeline-definition", "--pipeline-id", "df-0001", "--pipeline-objects", "id=Default,name=Default,fields=[{key=workerGroup,stringValue=wg1}]"];
    validate_definition_json: ["validate-pipeline-definition", "--pipeline-id", "df-0001", "--pipeline-objects", r#"[{"id": "Default", "name": "Default", "fields": []}]"#, "--parameter-values", "id=p,stringValue=v"];
    // Pagination.
    list_pipelines: ["list-pipelines"];
    list_pipelines_text: ["list-pipelines", "--output", "text"];
    list_pipelines_table: ["list-pipelines", "--output", "table"];
    list_pipelines_max_items: ["list-pipelines", "--max-items", "1"];
    list_pipelines_max_items_boundary: ["list-pipelines", "--max-items", "2"];
    list_pipelines_max_items_text: ["list-pipelines", "--max-items", "3", "--output", "text"];
    list_pipelines_starting_token: ["list-pipelines", "--starting-token", "eyJtYXJrZXIiOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ=="];
    list_pipelines_no_paginate: ["list-pipelines", "--no-paginate"];
    list_pipelines_query: ["list-pipelines", "--query", "pipelineIdList[].id"];
    list_pipelines_marker: ["list-pipelines", "--marker", "m1"];
    query_objects: ["query-objects", "--pipeline-id", "df-0001", "--sphere", "INSTANCE", "--objects-query", "selectors=[{fieldName=@status,operator={type=EQ,values=[FINISHED]}}]"];
    query_objects_page_size: ["query-objects", "--pipeline-id", "df-0001", "--sphere", "INSTANCE", "--page-size", "2", "--max-items", "2"];
}
