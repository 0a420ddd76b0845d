//! The installed AWS CLI as a second client: a whole task life against dp-local, signed by botocore.

use std::process::Command;

use serde_json::Value;

fn aws(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("aws")
        .arg("datapipeline")
        .args(args)
        .args(["--endpoint-url", url, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", crate::support::AKID)
        .env("AWS_SECRET_ACCESS_KEY", crate::support::SECRET)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("the AWS CLI (`aws`) is installed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(url: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = aws(url, args);
    assert_eq!(code, 0, "aws {args:?} failed: {stderr}");
    stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn aws_cli_runs_a_whole_task_life() {
    // Time runs 3 times faster: the 2-minute acknowledgement window is 40 s, room for a few `aws` processes
    // (each a Python start, several seconds on a loaded two-core machine) between the poll and the first report.
    let server = crate::server(3.0, 5.0);
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("dp-local-awscli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let definition = dir.join("definition.json");
    std::fs::write(
        &definition,
        r#"{"objects": [
            {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "wg-cli", "retryDelay": "1 minutes"},
            {"id": "Act", "name": "Act", "type": "ShellCommandActivity", "command": "echo #{myGreeting}"}],
           "parameters": [{"id": "myGreeting", "type": "String", "default": "hello"}]}"#,
    )
    .unwrap();
    let id = ok(
        &url,
        &[
            "create-pipeline",
            "--name",
            "cli",
            "--unique-id",
            "cli-1",
            "--query",
            "pipelineId",
            "--output",
            "text",
        ],
    )
    .trim()
    .to_string();
    assert!(id.starts_with("df-"), "{id}");
    let put = json(&ok(
        &url,
        &[
            "put-pipeline-definition",
            "--pipeline-id",
            &id,
            "--pipeline-definition",
            &format!("file://{}", definition.display()),
        ],
    ));
    assert_eq!(put["errored"], false, "{put}");
    ok(
        &url,
        &[
            "activate-pipeline",
            "--pipeline-id",
            &id,
            "--parameter-values",
            "myGreeting=bonjour",
        ],
    );

    let polled = json(&ok(
        &url,
        &[
            "poll-for-task",
            "--worker-group",
            "wg-cli",
            "--hostname",
            "cli-host",
        ],
    ));
    let task = &polled["taskObject"];
    let task_id = task["taskId"].as_str().unwrap();
    let attempt = task["attemptId"].as_str().unwrap();
    let command = task["objects"][attempt]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "command")
        .map(|f| f["stringValue"].clone());
    assert_eq!(command, Some(Value::from("echo bonjour")), "{polled}");

    let progress = json(&ok(&url, &["report-task-progress", "--task-id", task_id]));
    assert_eq!(progress, serde_json::json!({"canceled": false}));
    let beat = json(&ok(
        &url,
        &[
            "report-task-runner-heartbeat",
            "--taskrunner-id",
            "cli-runner",
            "--worker-group",
            "wg-cli",
        ],
    ));
    assert_eq!(beat, serde_json::json!({"terminate": false}));
    let set = ok(
        &url,
        &[
            "set-task-status",
            "--task-id",
            task_id,
            "--task-status",
            "FAILED",
            "--error-id",
            "E1",
            "--error-message",
            "it broke",
            "--error-stack-trace",
            "trace",
        ],
    );
    assert_eq!(set, "", "set-task-status prints nothing");
    let instance = attempt.rsplit_once("_Attempt=").unwrap().0;
    let described = json(&ok(
        &url,
        &[
            "describe-objects",
            "--pipeline-id",
            &id,
            "--object-ids",
            attempt,
        ],
    ));
    let text = described.to_string();
    assert!(
        text.contains(r#"{"key":"errorMessage","stringValue":"it broke"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"key":"@status","stringValue":"FAILED"}"#),
        "{text}"
    );

    // The retry (after a retryDelay of 1 minute, 20 s at this scale) finishes the run.
    let mut second = Value::Null;
    for _ in 0..40 {
        // An answer without a task is `{}`, which the CLI prints as nothing.
        let out = ok(&url, &["poll-for-task", "--worker-group", "wg-cli"]);
        if out.trim().is_empty() {
            continue;
        }
        let polled = json(&out);
        if polled.get("taskObject").is_some() {
            second = polled["taskObject"].clone();
            break;
        }
    }
    assert_eq!(
        second["attemptId"],
        format!("{instance}_Attempt=2"),
        "the retry is a second attempt"
    );
    ok(
        &url,
        &[
            "set-task-status",
            "--task-id",
            second["taskId"].as_str().unwrap(),
            "--task-status",
            "FINISHED",
        ],
    );

    let runs = ok(&url, &["list-runs", "--pipeline-id", &id]);
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 6, "{runs}");
    assert!(
        lines[3].starts_with("   1.  Act ") && lines[3].contains("FINISHED"),
        "{runs}"
    );
    assert!(lines[4].trim_start().starts_with(instance), "{runs}");

    let (code, _, stderr) = aws(
        &url,
        &["describe-pipelines", "--pipeline-ids", "df-NOSUCHPIPELINE"],
    );
    assert!(
        code == 255 || code == 254,
        "v1 exits 255 on service errors, v2 254: {code} {stderr}"
    );
    assert!(stderr.contains("An error occurred (PipelineNotFoundException) when calling the DescribePipelines operation"), "{stderr}");
    ok(&url, &["delete-pipeline", "--pipeline-id", &id]);
    let listed = json(&ok(&url, &["list-pipelines"]));
    assert_eq!(listed["pipelineIdList"], serde_json::json!([]));
    std::fs::remove_dir_all(&dir).unwrap();
}
