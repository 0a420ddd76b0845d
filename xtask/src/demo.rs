//! `cargo xtask demo`: the README's main job. Starts dp-local on a free port with a fast clock, then runs a whole
//! task life with `dp` against it and prints each command with its output; then `dp-task-runner` takes the next run
//! and really runs the activity's command, and its `StdOutput` is shown; last, a definition written as the AWS
//! samples write theirs (its activity `runsOn` an `Ec2Resource`) runs on the resource dp-local launches for it.
//! Needs no AWS account.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The documented example keys and a region, with no profile files or instance metadata: every process the demo
/// and the benchmarks start talks only to the local endpoint.
pub(crate) const EXAMPLE_ENVIRONMENT: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

struct Endpoint(Child);

impl Drop for Endpoint {
    fn drop(&mut self) {
        // SIGTERM: dp-local stops the runners it launched, then exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// The helloworld sample's shape, written here: a cron schedule that runs once from the first activation, an
/// `Ec2Resource` ended after an hour at the latest, and an echo that `runsOn` it; logs go to a parameter's path.
const HELLO_WORLD: &str = r##"{
  "objects": [
    {"id": "Default", "scheduleType": "cron", "failureAndRerunMode": "cascade",
     "role": "DataPipelineDefaultRole", "resourceRole": "DataPipelineDefaultResourceRole",
     "pipelineLogUri": "#{myS3LogsPath}/HelloWorld", "schedule": {"ref": "RunOnce"}},
    {"id": "RunOnce", "type": "Schedule", "period": "1 Day", "occurrences": "1",
     "startAt": "FIRST_ACTIVATION_DATE_TIME"},
    {"id": "HelloWorldInstance", "type": "Ec2Resource", "terminateAfter": "1 Hour"},
    {"id": "SayHelloWorld", "type": "ShellCommandActivity", "runsOn": {"ref": "HelloWorldInstance"},
     "command": "echo 'Hello World!'"}
  ],
  "parameters": [
    {"id": "myS3LogsPath", "type": "AWS::S3::ObjectKey", "description": "Where the logs go"}
  ]
}
"##;

pub(crate) fn run() -> Result<()> {
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "-p",
            "dp-cli",
            "-p",
            "dp-local",
            "-p",
            "dp-runner",
        ])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building dp, dp-local and dp-task-runner failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), Into::into)
        .join("debug");
    let dp = target.join("dp");

    let mut child = Command::new(target.join("dp-local"))
        .args(["--port", "0", "--time-scale", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dp-local")?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first)?;
    let endpoint = Endpoint(child);
    let url = first.trim().to_string();
    if !url.starts_with("http://") {
        bail!("dp-local did not print its URL (got {first:?})");
    }
    println!("# dp-local is serving the Data Pipeline API at {url} (time runs 60 times faster)\n");

    let work = std::env::temp_dir().join(format!("dp-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let objects = work.join("objects.json");
    std::fs::write(
        &objects,
        r#"[
  {"id": "Default", "name": "Default", "fields": [
    {"key": "scheduleType", "stringValue": "ondemand"},
    {"key": "failureAndRerunMode", "stringValue": "CASCADE"}]},
  {"id": "SayHello", "name": "SayHello", "fields": [
    {"key": "type", "stringValue": "ShellCommandActivity"},
    {"key": "command", "stringValue": "echo \"hello from $(uname -n), run by dp-task-runner\""},
    {"key": "workerGroup", "stringValue": "demo-workers"}]}
]
"#,
    )?;

    let run = |args: &[&str]| -> Result<String> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains([' ', '{', '}', '*', '#']) {
                    format!("'{a}'")
                } else {
                    (*a).to_string()
                }
            })
            .collect();
        println!("$ dp {}", shown.join(" "));
        let out = Command::new(&dp)
            .args(args)
            .args(["--endpoint-url", &url])
            .envs(EXAMPLE_ENVIRONMENT)
            .current_dir(&work)
            .output()
            .context("running dp")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        println!();
        if !out.status.success() {
            bail!(
                "dp {} failed with exit code {:?}",
                args.join(" "),
                out.status.code()
            );
        }
        Ok(stdout)
    };
    let field = |text: &str, path: &[&str]| -> Result<String> {
        let mut v: Value = serde_json::from_str(text).context("dp printed no JSON")?;
        for p in path {
            v = v
                .get(*p)
                .cloned()
                .with_context(|| format!("no {p} in {text}"))?;
        }
        Ok(v.as_str().unwrap_or_default().to_string())
    };

    let created = run(&["create-pipeline", "--name", "demo", "--unique-id", "demo-1"])?;
    let pipeline = field(&created, &["pipelineId"])?;
    run(&[
        "put-pipeline-definition",
        "--pipeline-id",
        &pipeline,
        "--pipeline-objects",
        "file://objects.json",
    ])?;
    run(&["activate-pipeline", "--pipeline-id", &pipeline])?;
    let task = run(&[
        "poll-for-task",
        "--worker-group",
        "demo-workers",
        "--hostname",
        "demo-host",
        "--query",
        "taskObject.{taskId: taskId, attemptId: attemptId}",
    ])?;
    let task_id = field(&task, &["taskId"])?;
    let attempt = field(&task, &["attemptId"])?;
    run(&[
        "report-task-progress",
        "--task-id",
        &task_id,
        "--fields",
        "key=percentComplete,stringValue=50",
    ])?;
    run(&[
        "set-task-status",
        "--task-id",
        &task_id,
        "--task-status",
        "FINISHED",
    ])?;
    run(&[
        "describe-objects",
        "--pipeline-id",
        &pipeline,
        "--object-ids",
        &attempt,
        "--output",
        "text",
    ])?;

    println!(
        "# the same work done by dp-task-runner: activate again (a new run), and the runner takes the task,"
    );
    println!(
        "# acknowledges it, runs the command, reports progress while it runs, and sets the status\n"
    );
    run(&["activate-pipeline", "--pipeline-id", &pipeline])?;
    let runner_args = [
        "--workerGroup=demo-workers",
        "--once",
        "--time-scale=60",
        "--output=runner",
    ];
    println!(
        "$ dp-task-runner {} --endpoint-url {url}",
        runner_args.join(" ")
    );
    let status = Command::new(target.join("dp-task-runner"))
        .args(runner_args)
        .args(["--endpoint-url", &url])
        .envs(EXAMPLE_ENVIRONMENT)
        .current_dir(&work)
        .status()
        .context("running dp-task-runner")?;
    if !status.success() {
        bail!("dp-task-runner --once exited with {status}");
    }
    println!();
    let outputs = find_files(&work.join("runner/logs").join(&pipeline), "StdOutput");
    let Some(stdout) = outputs.first() else {
        bail!("dp-task-runner left no StdOutput under runner/logs/{pipeline}");
    };
    let shown = stdout.strip_prefix(&work).unwrap_or(stdout);
    println!("$ cat '{}'", shown.display());
    print!("{}", std::fs::read_to_string(stdout)?);
    println!();
    run(&["list-runs", "--pipeline-id", &pipeline])?;

    println!(
        "# a definition as the AWS samples write theirs: the activity runsOn an Ec2Resource, which dp-local"
    );
    println!(
        "# launches as a local dp-task-runner polling a worker group of its own, and releases when the work is done\n"
    );
    std::fs::write(work.join("helloworld.json"), HELLO_WORLD)?;
    let created = run(&[
        "create-pipeline",
        "--name",
        "hello_world_pipeline",
        "--unique-id",
        "hello_world_pipeline",
    ])?;
    let hello = field(&created, &["pipelineId"])?;
    run(&[
        "put-pipeline-definition",
        "--pipeline-id",
        &hello,
        "--pipeline-definition",
        "file://helloworld.json",
        "--parameter-values",
        "myS3LogsPath=s3://demo-logs",
    ])?;
    run(&["activate-pipeline", "--pipeline-id", &hello])?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = Command::new(&dp)
            .args(["list-runs", "--pipeline-id", &hello, "--endpoint-url", &url])
            .envs(EXAMPLE_ENVIRONMENT)
            .output()
            .context("running dp")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.matches("FINISHED").count() >= 2 || text.contains("FAILED") {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("the helloworld pipeline did not finish within a minute:\n{text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    run(&["list-runs", "--pipeline-id", &hello])?;
    // Without --state, dp-local keeps its resources' folders under the temporary directory, by its pid.
    let resources = std::env::temp_dir().join(format!("dp-local-{}.resources", endpoint.0.id()));
    let outputs = find_files(&resources.join(&hello), "StdOutput");
    let Some(stdout) = outputs.first() else {
        bail!(
            "the resource's runner left no StdOutput under {}",
            resources.display()
        );
    };
    println!("$ cat '{}'", stdout.display());
    print!("{}", std::fs::read_to_string(stdout)?);
    println!();
    drop(endpoint);
    let _ = std::fs::remove_dir_all(&resources);
    let _ = std::fs::remove_dir_all(&work);
    println!("# done: dp-local stopped");
    Ok(())
}

/// Every file named `name` below `dir`, sorted.
fn find_files(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
