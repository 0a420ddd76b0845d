//! The command line: bad input refused before any request, `exec`, `doctor`, `--config` files, unsupported types.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs the binary to its end (it must not hang), returning (code, stdout, stderr).
fn run(endpoint: &Endpoint, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut command = runner_command(endpoint, &[]);
    command
        .arg(format!("--output={}", dir.join("output").display()))
        .arg(format!("--time-scale={TIME_SCALE}"))
        .args(args)
        .current_dir(dir);
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_is_refused_in_one_line_before_any_request() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("bad");
    let malformed = dir.path().join("bad.json");
    std::fs::write(&malformed, "{\"access-id\": \"AKIDEXAMPLE\",").unwrap();
    let unknown_key = dir.path().join("unknown.json");
    std::fs::write(&unknown_key, r#"{"access-id": "A", "secret-key": "B"}"#).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "--workerGroup is required"),
        (
            &["--workerGroup", "wg", "--nonsense"],
            "unexpected argument '--nonsense'",
        ),
        (
            &["--workerGroup=wg", "--config=/nonexistent/credentials.json"],
            "cannot read the file",
        ),
        (
            &[
                "--workerGroup=wg",
                &format!("--config={}", malformed.display()),
            ],
            "line 1 column",
        ),
        (
            &[
                "--workerGroup=wg",
                &format!("--config={}", unknown_key.display()),
            ],
            "unknown field `secret-key`",
        ),
        (&["--workerGroup=wg", "--tasks=many"], "--tasks"),
        (
            &["--workerGroup=wg", "--secretKey=x"],
            "without its access key id",
        ),
        (&["--workerGroup=wg", "--log-format=xml"], "--log-format"),
        (&["--workerGroup=wg", "--region=not a region"], "region"),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = run(&endpoint, dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(stderr.starts_with("dp-task-runner: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr:?}"
        );
    }
    assert_eq!(endpoint.proxy.count(), 0, "no request was sent");
}

#[test]
fn config_file_keys_and_endpoint_are_used() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("config");
    let pipeline = shell_pipeline(&endpoint, "wg-config", &[("command", "true")]);
    let config = dir.path().join("credentials.json");
    std::fs::write(
        &config,
        json!({"access-id": KEY_ID, "private-key": SECRET, "endpoint": endpoint.url(), "region": "us-west-2"})
            .to_string(),
    )
    .unwrap();
    let mut command = runner_command(&endpoint, &[]);
    // No keys, no region and no endpoint in the environment: all come from the file.
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL_DATA_PIPELINE")
        .args([
            &format!("--config={}", config.display()),
            "--workerGroup=wg-config",
            "--once",
            &format!("--output={}", dir.path().join("output").display()),
        ]);
    let status = command.status().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "@status"),
        "FINISHED"
    );
}

#[test]
fn unsupported_types_and_senseless_objects_fail_at_once_and_the_runner_goes_on() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("unsupported");
    let copy = dp_runner::testing::one_task_pipeline(
        &endpoint.url(),
        "wg-odd",
        "HiveActivity",
        &[("hiveScript", "select 1"), ("maximumRetries", "0")],
    )
    .unwrap();
    let neither = shell_pipeline(&endpoint, "wg-odd", &[("maximumRetries", "0")]);
    let both = shell_pipeline(
        &endpoint,
        "wg-odd",
        &[
            ("command", "true"),
            ("scriptUri", "s3://b/x.sh"),
            ("maximumRetries", "0"),
        ],
    );
    let mut runner = RunnerProcess::start(&endpoint, dir.path(), &["--workerGroup=wg-odd"]);
    wait_until(LIMIT, "three failed tasks", || {
        endpoint.proxy.calls("SetTaskStatus").len() == 3
    });
    let failed = |pipeline: &str| {
        let a = &attempts(&endpoint, pipeline)[0];
        (
            field(a, "errorId").to_string(),
            field(a, "errorMessage").to_string(),
        )
    };
    let (id, message) = failed(&copy);
    // Hadoop's types say why they cannot run here (edf29cb); other unknown types are UnsupportedActivityType.
    assert_eq!(id, "HiveActivityNotRunLocally");
    assert!(message.contains("HiveActivity"), "{message}");
    let (id, message) = failed(&neither);
    assert_eq!(id, "InvalidTaskObject");
    assert!(
        message.contains("neither command nor scriptUri"),
        "{message}"
    );
    let (id, message) = failed(&both);
    assert_eq!(id, "InvalidTaskObject");
    assert!(message.contains("both command and scriptUri"), "{message}");
    assert!(
        runner.child.try_wait().unwrap().is_none(),
        "the runner keeps running"
    );
    runner.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(runner.wait(LIMIT).code(), Some(0));
}

#[test]
fn exec_holds_a_task_polled_elsewhere() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("exec");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-exec",
        &[("command", "unused"), ("maximumRetries", "0")],
    );
    let polled = call(&endpoint, "PollForTask", json!({"workerGroup": "wg-exec"}));
    let task_id = polled["taskObject"]["taskId"].as_str().unwrap().to_string();
    let (code, _, stderr) = run(
        &endpoint,
        dir.path(),
        &[
            "exec",
            "--task-id",
            &task_id,
            "--progress-interval=0.2",
            "--",
            "sh",
            "-c",
            "sleep 1; exit 4",
        ],
    );
    assert_eq!(code, 4, "exec exits with the command's status: {stderr}");
    let attempt = &attempts(&endpoint, &pipeline)[0];
    assert_eq!(field(attempt, "@status"), "FAILED");
    assert_eq!(field(attempt, "errorId"), "ExitCode_4");
    let reports = endpoint.proxy.calls("ReportTaskProgress");
    assert!(
        reports.len() >= 2,
        "acknowledged, then reported while running: {}",
        reports.len()
    );

    let pipeline = shell_pipeline(&endpoint, "wg-exec2", &[("command", "unused")]);
    let polled = call(&endpoint, "PollForTask", json!({"workerGroup": "wg-exec2"}));
    let task_id = polled["taskObject"]["taskId"].as_str().unwrap().to_string();
    let (code, stdout, _) = run(
        &endpoint,
        dir.path(),
        &["exec", "--task-id", &task_id, "--", "echo", "from exec"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        stdout, "from exec\n",
        "the command's output is the runner's own"
    );
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "@status"),
        "FINISHED"
    );
}

#[test]
fn doctor_names_the_worker_group_and_its_near_misses() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("doctor");
    shell_pipeline(&endpoint, "etl-workers", &[("command", "true")]);

    let (code, stdout, stderr) = run(
        &endpoint,
        dir.path(),
        &["doctor", "--workerGroup=etl-workers"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok   region       us-east-1"), "{stdout}");
    assert!(
        stdout.contains("ok   credentials  environment, key id"),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY_ID), "the key id is masked: {stdout}");
    assert!(stdout.contains("ok   PollForTask  allowed"), "{stdout}");
    assert!(
        stdout.contains("ok   workerGroup  1 activity in active pipelines"),
        "{stdout}"
    );

    let (code, stdout, _) = run(
        &endpoint,
        dir.path(),
        &["doctor", "--workerGroup=ETL-Workers"],
    );
    assert_eq!(code, 0, "warnings only: {stdout}");
    assert!(
        stdout.contains("warn workerGroup  no active pipeline"),
        "{stdout}"
    );
    assert!(
        stdout.contains("near misses") && stdout.contains("\"etl-workers\""),
        "{stdout}"
    );

    // No task was taken by the doctor's own poll.
    let handed_out = endpoint
        .proxy
        .calls("PollForTask")
        .iter()
        .filter(|c| c.response.get("taskObject").is_some())
        .count();
    assert_eq!(handed_out, 0);

    let (code, stdout, _) = run(
        &endpoint,
        dir.path(),
        &[
            "doctor",
            "--workerGroup=etl-workers",
            "--secretKey=wrong",
            &format!("--accessId={KEY_ID}"),
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL PollForTask  not allowed"), "{stdout}");
}

/// A task object as PollForTask hands it out, for running an activity without a service.
fn task_with(fields: &[(&str, &str)]) -> dp_runner::Task {
    let mut objects = dp_model::IndexMap::new();
    let mut all = vec![text("type", "ShellCommandPrecondition")];
    all.extend(fields.iter().map(|(k, v)| text(k, v)));
    objects.insert(
        "@Check_Attempt=1".to_string(),
        object("@Check_Attempt=1", all),
    );
    dp_runner::Task::from_task_object(dp_model::types::TaskObject {
        task_id: Some("task-1".into()),
        pipeline_id: Some("df-1".into()),
        attempt_id: Some("@Check_Attempt=1".into()),
        objects: Some(objects),
    })
}

#[test]
fn a_precondition_that_exits_non_zero_is_false() {
    let dir = TempDir::new("precondition");
    let context = dp_runner::TaskContext::new(
        dir.path().join("logs"),
        dp_runner::storage::Storage::local_only(),
        dp_runner::RunnerLog::stderr_only(dp_runner::LogFormat::Text, false),
    );
    let check = dp_runner::shell::ShellCommand::precondition();
    let run = |fields: &[(&str, &str)]| {
        let task = task_with(fields);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(dp_runner::Activity::run(&check, &task, &context))
    };
    match run(&[("command", "test -e /nonexistent/flag")]) {
        dp_runner::Outcome::False(f) => assert_eq!(f.error_id, "ExitCode_1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        run(&[("command", "test -d /")]),
        dp_runner::Outcome::Finished
    );
}

#[test]
fn java_proxy_flags_send_every_call_through_the_proxy_and_hide_the_password() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("proxy");
    let pipeline = shell_pipeline(&endpoint, "wg-proxy", &[("command", "true")]);
    let port = endpoint.proxy.url().rsplit(':').next().unwrap().to_string();
    let mut command = runner_command(&endpoint, &[]);
    command.env_remove("HTTP_PROXY").args([
        "--workerGroup=wg-proxy",
        "--once",
        "--proxyHost=127.0.0.1",
        &format!("--proxyPort={port}"),
        "--proxyUsername=builder",
        "--proxyPassword=proxy-Pass-42",
        "--proxyDomain=CORP",
        &format!("--output={}", dir.path().join("output").display()),
    ]);
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "@status"),
        "FINISHED"
    );
    assert_eq!(
        endpoint.proxy.calls("SetTaskStatus").len(),
        1,
        "the calls went through the proxy"
    );
    // Basic credentials on every call: base64 of "builder:proxy-Pass-42", computed once by hand.
    let calls = endpoint.proxy.all_calls("");
    assert!(!calls.is_empty());
    for call in &calls {
        assert_eq!(
            call.proxy_authorization.as_deref(),
            Some("Basic YnVpbGRlcjpwcm94eS1QYXNzLTQy"),
            "{} sent without the proxy credentials",
            call.operation
        );
    }
    let log = std::fs::read_to_string(dir.path().join("output/logs/dp-task-runner.log")).unwrap();
    for text in [log, String::from_utf8_lossy(&out.stderr).into_owned()] {
        assert!(
            !text.contains("proxy-Pass-42") && !text.contains("proxy-Pass%2D42"),
            "{text}"
        );
    }
}

#[test]
fn version_names_the_version_and_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dp-task-runner"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let commit = text
        .trim()
        .strip_prefix(concat!(
            "dp-task-runner ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_commit(commit);
}

/// A full commit id that exists in this repository when the tests run from a git checkout (and `DP_BUILD_COMMIT`
/// does not name one), `unknown` only without git.
fn assert_commit(commit: &str) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let id = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if git(&["rev-parse", "--git-dir"]) && std::env::var_os("DP_BUILD_COMMIT").is_none() {
        assert!(id, "not a commit id in a git checkout: {commit:?}");
        assert!(
            git(&["cat-file", "-e", &format!("{commit}^{{commit}}")]),
            "{commit} is not a commit of this repository"
        );
    } else {
        assert!(commit == "unknown" || id, "{commit:?}");
    }
}
