//! A task's life through the runner: success, failure and retries, a long task, cancel, a killed runner, shutdown,
//! concurrency, secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(60);

fn attempt_dir(runner: &RunnerProcess, pipeline: &str) -> std::path::PathBuf {
    let base = runner.output.join("logs").join(pipeline).join("Work");
    let instance = std::fs::read_dir(&base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_dir(&instance)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

#[test]
fn success_captures_output_and_sends_one_status() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("success");
    let copy = dir.path().join("copies/stdout.txt");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-success",
        &[
            ("command", "echo \"hello $1 and $2\"; echo careful >&2"),
            ("scriptArgument", "world"),
            ("scriptArgument", "moon"),
            ("stdout", copy.to_str().unwrap()),
        ],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-success", "--once"],
    );
    let status = runner.wait(LIMIT);
    assert_eq!(status.code(), Some(0), "stderr: {}", runner.stderr_text());

    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(attempts.len(), 1);
    assert_eq!(field(&attempts[0], "@status"), "FINISHED");
    assert!(!field(&attempts[0], "@hostname").is_empty());

    let logs = attempt_dir(&runner, &pipeline);
    assert_eq!(
        logs.file_name().unwrap().to_string_lossy(),
        attempts[0].id,
        "the attempt directory is named by the attempt"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("StdOutput")).unwrap(),
        "hello world and moon\n"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("StdError")).unwrap(),
        "careful\n"
    );
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "hello world and moon\n"
    );

    // Acknowledged before the status, and exactly one status.
    let statuses = endpoint.proxy.calls("SetTaskStatus");
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].request["taskStatus"], "FINISHED");
    let reports = endpoint.proxy.calls("ReportTaskProgress");
    assert!(!reports.is_empty());
    assert_eq!(reports[0].request["taskId"], statuses[0].request["taskId"]);
    assert_eq!(endpoint.proxy.calls("ReportTaskRunnerHeartbeat").len(), 1);
}

#[test]
fn failures_carry_their_error_fields_and_are_retried() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("failure");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-fail",
        &[
            (
                "command",
                "echo starting; echo 'disk full on /data' >&2; exit 3",
            ),
            ("maximumRetries", "1"),
            ("retryDelay", "1 minutes"),
        ],
    );
    let mut runner = RunnerProcess::start(&endpoint, dir.path(), &["--workerGroup=wg-fail"]);
    wait_until(LIMIT, "the instance to fail after its retry", || {
        instances(&endpoint, &pipeline)
            .first()
            .is_some_and(|i| field(i, "@status") == "FAILED")
    });
    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(attempts.len(), 2, "one try and one retry");
    for attempt in &attempts {
        assert_eq!(field(attempt, "@status"), "FAILED");
        assert_eq!(field(attempt, "errorId"), "ExitCode_3");
        assert_eq!(field(attempt, "errorMessage"), "disk full on /data");
        assert!(
            field(attempt, "errorStackTrace").contains("exited with status 3"),
            "{attempt:?}"
        );
    }
    runner.signal(Signal::SIGTERM);
    assert_eq!(runner.wait(LIMIT).code(), Some(0));
    assert!(
        runner.log().contains("task ended FAILED (ExitCode_3)"),
        "{}",
        runner.log()
    );
}

#[test]
fn once_exits_with_the_task_outcome() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("once");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-once",
        &[("command", "exit 1"), ("maximumRetries", "0")],
    );
    let mut runner =
        RunnerProcess::start(&endpoint, dir.path(), &["--workerGroup=wg-once", "--once"]);
    assert_eq!(runner.wait(LIMIT).code(), Some(1), "FAILED exits 1");
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "errorId"),
        "ExitCode_1"
    );
}

#[test]
fn a_task_three_times_longer_than_its_timeout_keeps_its_lease() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("long");
    let marker = dir.path().join("runs.txt");
    // reportProgressTimeout 2 minutes is 2 s at the test's time scale; the command runs 6 s. The progress interval
    // stays at its default (60 s): the runner reports within the timeout by itself (every 0.67 s).
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-long",
        &[
            (
                "command",
                &format!("sleep 6; echo ran >> {}", marker.display()),
            ),
            ("reportProgressTimeout", "2 minutes"),
            ("retryDelay", "1 minutes"),
        ],
    );
    let mut runner =
        RunnerProcess::start(&endpoint, dir.path(), &["--workerGroup=wg-long", "--once"]);
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "stderr: {}",
        runner.stderr_text()
    );
    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(attempts.len(), 1, "never handed out twice: {attempts:?}");
    assert_eq!(field(&attempts[0], "@status"), "FINISHED");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    let handed_out = endpoint
        .proxy
        .calls("PollForTask")
        .iter()
        .filter(|c| c.response.get("taskObject").is_some())
        .count();
    assert_eq!(handed_out, 1);
    assert!(
        endpoint.proxy.calls("ReportTaskProgress").len() >= 4,
        "reports every third of the timeout"
    );
}

#[test]
fn deactivation_kills_the_whole_process_group_and_sends_no_status() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("cancel");
    let (sh_pid, bg_pid) = (dir.path().join("sh.pid"), dir.path().join("bg.pid"));
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-cancel",
        &[(
            "command",
            &format!(
                "sleep 600 & echo $! > {bg}; echo $$ > {sh}; wait",
                bg = bg_pid.display(),
                sh = sh_pid.display()
            ),
        )],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-cancel",
            "--progress-interval=0.2",
            "--cancel-grace=2",
        ],
    );
    wait_until(LIMIT, "the command to start", || {
        read_pid(&sh_pid).is_some() && read_pid(&bg_pid).is_some()
    });
    let (sh, bg) = (read_pid(&sh_pid).unwrap(), read_pid(&bg_pid).unwrap());
    assert!(alive(sh) && alive(bg));
    call(
        &endpoint,
        "DeactivatePipeline",
        json!({"pipelineId": pipeline}),
    );
    wait_until(
        LIMIT,
        "the shell and its background child to be gone",
        || !alive(sh) && !alive(bg),
    );
    wait_until(LIMIT, "the runner to log the cancel", || {
        runner
            .log()
            .contains("task canceled by the service; no status sent")
    });
    assert!(
        endpoint.proxy.calls("SetTaskStatus").is_empty(),
        "no set-task-status after a cancel"
    );
    assert!(
        endpoint
            .proxy
            .calls("ReportTaskProgress")
            .iter()
            .any(|c| c.response["canceled"] == true),
        "the service said canceled"
    );
    runner.signal(Signal::SIGTERM);
    assert_eq!(runner.wait(LIMIT).code(), Some(0));
}

/// A runner killed with SIGKILL runs no code of its own, yet leaves no work running: the guard between it and the
/// command stops the command's process group (SIGTERM, then SIGKILL after the grace) when the runner's end of its
/// pipe closes. The service then times the attempt out and the next runner finishes the retry, once.
#[test]
fn a_killed_runners_work_stops_and_its_task_is_finished_once_by_the_next_runner() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("sigkill");
    let (pid_file, bg_file, marker) = (
        dir.path().join("cmd.pid"),
        dir.path().join("bg.pid"),
        dir.path().join("done.txt"),
    );
    // The first run never ends by itself (a background sleep and a wait); the retry finishes at once.
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-kill",
        &[
            (
                "command",
                &format!(
                    "if [ -f {pid} ]; then echo finished >> {marker}; exit 0; fi; \
                     sleep 600 & echo $! > {bg}; echo $$ > {pid}; wait",
                    pid = pid_file.display(),
                    bg = bg_file.display(),
                    marker = marker.display()
                ),
            ),
            ("reportProgressTimeout", "1 minutes"),
            ("retryDelay", "1 minutes"),
            ("maximumRetries", "2"),
        ],
    );
    let first_dir = TempDir::new("sigkill-first");
    let first = RunnerProcess::start(
        &endpoint,
        first_dir.path(),
        &["--workerGroup=wg-kill", "--cancel-grace=2"],
    );
    wait_until(LIMIT, "the first runner's command", || {
        read_pid(&pid_file).is_some() && read_pid(&bg_file).is_some()
    });
    let (sh, bg) = (read_pid(&pid_file).unwrap(), read_pid(&bg_file).unwrap());
    let _reaper = Reaper(vec![sh, bg]);
    assert!(alive(sh) && alive(bg));
    first.signal(Signal::SIGKILL);
    wait_until(
        LIMIT,
        "the killed runner's command and its child to be gone",
        || !alive(sh) && !alive(bg),
    );
    drop(first);

    let second_dir = TempDir::new("sigkill-second");
    let mut second = RunnerProcess::start(
        &endpoint,
        second_dir.path(),
        &["--workerGroup=wg-kill", "--once"],
    );
    assert_eq!(
        second.wait(LIMIT).code(),
        Some(0),
        "stderr: {}",
        second.stderr_text()
    );
    let attempts = attempts(&endpoint, &pipeline);
    let statuses: Vec<&str> = attempts.iter().map(|a| field(a, "@status")).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "FINISHED").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "TIMEDOUT").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "finished\n");
    assert_eq!(
        field(&instances(&endpoint, &pipeline)[0], "@status"),
        "FINISHED"
    );
}

/// `--exit-with-parent`: when the process that started the runner dies, the runner stops at once and kills the
/// work it holds.
#[test]
fn exit_with_parent_stops_the_runner_and_its_work_when_the_parent_dies() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("exit-with-parent");
    let (pid_file, bg_file, runner_pid) = (
        dir.path().join("cmd.pid"),
        dir.path().join("bg.pid"),
        dir.path().join("runner.pid"),
    );
    shell_pipeline(
        &endpoint,
        "wg-parent",
        &[(
            "command",
            &format!(
                "sleep 600 & echo $! > {bg}; echo $$ > {pid}; wait",
                pid = pid_file.display(),
                bg = bg_file.display()
            ),
        )],
    );
    // The runner's parent is a shell the test can kill.
    let template = runner_command(&endpoint, &[]);
    let mut parent = std::process::Command::new("sh");
    parent
        .arg("-c")
        .arg(format!(
            "\"$0\" \"$@\" 2> {stderr} & echo $! > {runner}; wait",
            stderr = dir.path().join("runner-stderr.txt").display(),
            runner = runner_pid.display()
        ))
        .arg(template.get_program())
        .args([
            "--workerGroup=wg-parent",
            "--exit-with-parent",
            "--cancel-grace=600",
            "--shutdown-grace=600",
            &format!("--time-scale={TIME_SCALE}"),
            &format!("--output={}", dir.path().join("output").display()),
        ])
        .env_clear()
        .current_dir(dir.path());
    for (key, value) in template.get_envs() {
        if let Some(value) = value {
            parent.env(key, value);
        }
    }
    let mut parent = parent.spawn().unwrap();
    wait_until(LIMIT, "the command", || {
        read_pid(&pid_file).is_some()
            && read_pid(&bg_file).is_some()
            && read_pid(&runner_pid).is_some()
    });
    let (sh, bg, runner) = (
        read_pid(&pid_file).unwrap(),
        read_pid(&bg_file).unwrap(),
        read_pid(&runner_pid).unwrap(),
    );
    let _reaper = Reaper(vec![sh, bg, runner]);
    assert!(alive(sh) && alive(bg) && alive(runner));
    parent.kill().unwrap();
    parent.wait().unwrap();
    // Both graces are ten minutes: only stopping at once ends the work within the test's bound.
    wait_until(LIMIT, "the runner and its work to be gone", || {
        !alive(runner) && !alive(sh) && !alive(bg)
    });
    let log = std::fs::read_to_string(dir.path().join("output/logs/dp-task-runner.log")).unwrap();
    assert!(
        log.contains("(--exit-with-parent): stopping at once"),
        "{log}"
    );
}

/// A command killed by a signal fails naming the signal (the guard between the runner and the command dies the
/// same way the command did).
#[test]
fn a_command_killed_by_a_signal_fails_naming_it() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("signal");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-signal",
        &[("command", "kill -TERM $$"), ("maximumRetries", "0")],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-signal", "--once"],
    );
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(1),
        "{}",
        runner.stderr_text()
    );
    let attempt = &attempts(&endpoint, &pipeline)[0];
    assert_eq!(field(attempt, "errorId"), "Signal_SIGTERM", "{attempt:?}");
}

#[test]
fn sigterm_fails_held_tasks_after_the_grace_so_they_are_retried() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("sigterm");
    let pid_file = dir.path().join("cmd.pid");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-term",
        &[
            (
                "command",
                &format!("echo $$ > {}; sleep 600", pid_file.display()),
            ),
            ("retryDelay", "1 minutes"),
        ],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-term",
            "--shutdown-grace=0.5",
            "--cancel-grace=2",
        ],
    );
    wait_until(LIMIT, "the command", || read_pid(&pid_file).is_some());
    let pid = read_pid(&pid_file).unwrap();
    runner.signal(Signal::SIGTERM);
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "stderr: {}",
        runner.stderr_text()
    );
    // Signalled; gone as soon as the kernel schedules it (its parent, the guard, may have died first).
    wait_until(LIMIT, "the command was stopped", || !alive(pid));
    let statuses = endpoint.proxy.calls("SetTaskStatus");
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].request["taskStatus"], "FAILED");
    assert_eq!(statuses[0].request["errorId"], "TaskRunnerShutdown");
    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(field(&attempts[0], "errorId"), "TaskRunnerShutdown");
    // The service retries it: a second attempt is queued for the next runner.
    wait_until(LIMIT, "the retry attempt", || {
        attempts_count(&endpoint, &pipeline) == 2
    });
}

fn attempts_count(endpoint: &Endpoint, pipeline: &str) -> usize {
    attempts(endpoint, pipeline).len()
}

#[test]
fn four_at_a_time_over_two_hundred_tasks_each_finished_once() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("many");
    let record = dir.path().join("record.txt");
    let command = format!(
        "s=$(date +%s%N); sleep 0.05; e=$(date +%s%N); echo \"$1 $s $e\" >> {}",
        record.display()
    );
    let objects: Vec<_> = (0..200)
        .map(|i| {
            object(
                &format!("Work{i}"),
                vec![
                    text("type", "ShellCommandActivity"),
                    text("workerGroup", "wg-many"),
                    text("command", &command),
                    text("scriptArgument", &i.to_string()),
                ],
            )
        })
        .collect();
    let pipeline = dp_runner::testing::pipeline(&endpoint.url(), "many", objects).unwrap();
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-many", "--tasks=4"],
    );
    wait_until(Duration::from_secs(240), "200 finished instances", || {
        std::fs::read_to_string(&record).map_or(0, |t| t.lines().count()) == 200
            && endpoint.proxy.calls("SetTaskStatus").len() == 200
    });
    runner.signal(Signal::SIGTERM);
    assert_eq!(runner.wait(LIMIT).code(), Some(0));

    let text = std::fs::read_to_string(&record).unwrap();
    let mut runs: BTreeMap<u32, u32> = BTreeMap::new();
    let mut events = Vec::new();
    for line in text.lines() {
        let parts: Vec<u128> = line.split(' ').map(|p| p.parse().unwrap()).collect();
        *runs.entry(parts[0] as u32).or_default() += 1;
        events.push((parts[1], 1i32));
        events.push((parts[2], -1i32));
    }
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|n| *n == 1), "each ran once: {runs:?}");
    events.sort();
    let (mut running, mut most) = (0, 0);
    for (_, delta) in events {
        running += delta;
        most = most.max(running);
    }
    assert!(most <= 4, "at most 4 at once, saw {most}");
    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(attempts.len(), 200);
    assert!(attempts.iter().all(|a| field(a, "@status") == "FINISHED"));
    let statuses = endpoint.proxy.calls("SetTaskStatus");
    let ids: std::collections::HashSet<_> = statuses
        .iter()
        .map(|c| c.request["taskId"].to_string())
        .collect();
    assert_eq!(ids.len(), 200, "one status per task");
}

#[test]
fn secrets_never_reach_the_runner_log_or_stderr() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("secrets");
    let password = "pw-Sentinel-9f3a7c";
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-secret",
        &[
            ("*password", password),
            ("command", "echo \"login failed for $1\" >&2; exit 3"),
            ("scriptArgument", password),
            ("maximumRetries", "0"),
        ],
    );
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-secret",
            "--once",
            "--debug",
            "--log-format=json",
            &format!("--accessId={KEY_ID}"),
            &format!("--secretKey={SECRET}"),
        ],
        &[],
    );
    assert_eq!(runner.wait(LIMIT).code(), Some(1));
    // The message reached the service (it is the user's own output), but no log shows the secret.
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "errorMessage"),
        format!("login failed for {password}")
    );
    let log = runner.log();
    assert!(log.contains("login failed for ****"), "{log}");
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        assert!(v["time"].is_string() && v["level"].is_string() && v["message"].is_string());
    }
    let stderr = runner.stderr_text();
    assert!(stderr.contains("dp_wire.http"), "--debug logged the calls");
    for text in [&log, &stderr] {
        assert!(!text.contains(password));
        assert!(!text.contains(SECRET));
        assert!(!text.contains(KEY_ID), "the key id is masked");
    }
}

/// The runner's own attemptTimeout, through the binary: dp-local runs at the real clock (its timer would fire
/// after a minute) while the runner divides by the test's time scale (1 s), so only the runner can stop the
/// command in time, and the attempt must end FAILED with the runner's error.
#[test]
fn attempt_timeout_kills_the_command_and_fails_the_attempt() {
    let endpoint = Endpoint::start_with(dp_local::Config {
        time_scale: 1.0,
        ..Default::default()
    });
    let dir = TempDir::new("timeout");
    let (pid_file, marker) = (dir.path().join("cmd.pid"), dir.path().join("late.txt"));
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-timeout",
        &[
            (
                "command",
                &format!(
                    "echo $$ > {}; sleep 30; echo late > {}",
                    pid_file.display(),
                    marker.display()
                ),
            ),
            ("attemptTimeout", "1 minutes"),
            ("maximumRetries", "0"),
        ],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-timeout", "--once", "--cancel-grace=2"],
    );
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(1),
        "{}",
        runner.stderr_text()
    );
    let pid = read_pid(&pid_file).expect("the command ran");
    // Signalled; gone as soon as the kernel schedules it (its parent, the guard, may have died first).
    wait_until(LIMIT, "the command was killed", || !alive(pid));
    assert!(!marker.exists(), "the command never got past its sleep");
    let attempt = &attempts(&endpoint, &pipeline)[0];
    assert_eq!(field(attempt, "@status"), "FAILED", "{attempt:?}");
    assert_eq!(field(attempt, "errorId"), "AttemptTimeout");
    assert!(
        field(attempt, "errorMessage").contains("attemptTimeout (1 minutes)"),
        "{attempt:?}"
    );
}

/// The same through `ShellCommand` alone, with no service at all: its own timer stops the command's whole process
/// group and fails the attempt.
#[test]
fn shell_commands_own_attempt_timeout_stops_the_group() {
    use dp_runner::{Activity, Outcome, Task, TaskContext};
    let dir = TempDir::new("shell-timeout");
    let (pid_file, bg_file) = (dir.path().join("cmd.pid"), dir.path().join("bg.pid"));
    let task: dp_model::types::TaskObject = serde_json::from_value(json!({
        "taskId": "t-1",
        "pipelineId": "df-LOCAL",
        "attemptId": "@Work_Attempt=1",
        "objects": {"@Work_Attempt=1": {"id": "@Work_Attempt=1", "name": "@Work_Attempt=1", "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"},
            {"key": "attemptTimeout", "stringValue": "2 seconds"},
            {"key": "command", "stringValue": format!(
                "sleep 600 & echo $! > {bg}; echo $$ > {pid}; wait",
                bg = bg_file.display(),
                pid = pid_file.display()
            )},
        ]}},
    }))
    .unwrap();
    let task = Task::from_task_object(task);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let client = dp_wire::Client::with_environment(
            dp_wire::Settings::default(),
            dp_wire::Environment::from_vars([("AWS_DEFAULT_REGION", "us-east-1")]),
        )
        .unwrap();
        let storage = dp_runner::storage::Storage::new(std::sync::Arc::new(client), None);
        let log = dp_runner::RunnerLog::open(
            &dir.path().join("runner.log"),
            dp_runner::LogFormat::Text,
            false,
        )
        .unwrap();
        let context = TaskContext::new(dir.path().join("attempt"), storage, log);
        // A bound on a hang (the command alone would run ten minutes), not a timing assertion.
        tokio::time::timeout(
            LIMIT,
            dp_runner::shell::ShellCommand::activity().run(&task, &context),
        )
        .await
        .expect("the command was stopped by its attemptTimeout")
    });
    let (sh, bg) = (read_pid(&pid_file).unwrap(), read_pid(&bg_file).unwrap());
    // The signals are sent; the background child dies as soon as the kernel schedules it.
    wait_until(LIMIT, "the whole group to be stopped", || {
        !alive(sh) && !alive(bg)
    });
    match outcome {
        Outcome::Failed(f) => {
            assert_eq!(f.error_id, "AttemptTimeout", "{f:?}");
            assert!(f.message.contains("attemptTimeout (2 seconds)"), "{f:?}");
        }
        other => panic!("expected the attempt to fail: {other:?}"),
    }
}

#[test]
fn an_unreachable_endpoint_is_retried_with_backoff_not_fatal() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("unreachable");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-down", "--poll-backoff-cap=0.5"],
        &[
            (
                "AWS_ENDPOINT_URL_DATA_PIPELINE",
                &format!("http://{closed}"),
            ),
            ("NO_PROXY", "127.0.0.1"),
        ],
    );
    wait_until(LIMIT, "three failed polls", || {
        runner
            .log()
            .matches("poll-for-task failed (retry in")
            .count()
            >= 3
    });
    assert!(runner.child.try_wait().unwrap().is_none(), "still running");
    runner.signal(Signal::SIGTERM);
    assert_eq!(runner.wait(LIMIT).code(), Some(0));
}

/// A command that records its pid and runs until the test creates the release file, so a test can tell that a
/// task is still held at a given moment.
fn held_until_released(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let (pid, release) = (dir.join("cmd.pid"), dir.join("release"));
    let command = format!(
        "echo $$ > {pid}; while [ ! -f {release} ]; do sleep 0.05; done",
        pid = pid.display(),
        release = release.display()
    );
    (command, pid, release)
}

/// The runner was told to terminate while the task was still held (its command running, no status sent), and the
/// task then finished and the runner exited.
fn assert_held_at_terminate_then_finished(
    endpoint: &Endpoint,
    runner: &mut RunnerProcess,
    pipeline: &str,
    pid_file: &std::path::Path,
    release: &std::path::Path,
) {
    wait_until(LIMIT, "the runner to hear terminate", || {
        runner.log().contains("asked this runner to terminate")
    });
    let pid = read_pid(pid_file).unwrap();
    assert!(
        alive(pid),
        "the task was still running when terminate arrived"
    );
    assert!(
        endpoint.proxy.calls("SetTaskStatus").is_empty(),
        "no status before terminate"
    );
    std::fs::write(release, "").unwrap();
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "stderr: {}",
        runner.stderr_text()
    );
    let attempt = &attempts(endpoint, pipeline)[0];
    assert_eq!(
        field(attempt, "@status"),
        "FINISHED",
        "the held task finished: {attempt:?}"
    );
    assert_eq!(endpoint.proxy.calls("SetTaskStatus").len(), 1);
    assert_eq!(endpoint.proxy.handed_out().len(), 1, "no new task taken");
}

#[test]
fn a_heartbeat_answered_terminate_stops_polling_and_lets_held_tasks_finish() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("terminate");
    let (command, pid_file, release) = held_until_released(dir.path());
    let pipeline = shell_pipeline(&endpoint, "wg-terminate", &[("command", &command)]);
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-terminate", "--heartbeat-interval=1"],
    );
    wait_until(LIMIT, "the command", || read_pid(&pid_file).is_some());
    endpoint.proxy.answer_terminate();
    assert_held_at_terminate_then_finished(&endpoint, &mut runner, &pipeline, &pid_file, &release);
    assert!(endpoint.proxy.calls("ReportTaskRunnerHeartbeat").len() >= 2);
}

#[test]
fn a_second_signal_stops_at_once_even_a_command_that_ignores_sigterm() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("second-signal");
    let pid_file = dir.path().join("cmd.pid");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-second",
        &[(
            "command",
            &format!("trap '' TERM; echo $$ > {}; sleep 600", pid_file.display()),
        )],
    );
    // Both graces are ten minutes: only the second signal can end this run within the test's bound.
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-second",
            "--shutdown-grace=600",
            "--cancel-grace=600",
        ],
    );
    wait_until(LIMIT, "the command", || read_pid(&pid_file).is_some());
    let pid = read_pid(&pid_file).unwrap();
    runner.signal(Signal::SIGTERM);
    wait_until(LIMIT, "the drain to start", || {
        runner.log().contains("SIGTERM: draining")
    });
    assert!(alive(pid), "the first signal leaves the task its grace");
    runner.signal(Signal::SIGTERM);
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "stderr: {}",
        runner.stderr_text()
    );
    // Signalled; gone as soon as the kernel schedules it (its parent, the guard, may have died first).
    wait_until(LIMIT, "the command was killed", || !alive(pid));
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "errorId"),
        "TaskRunnerShutdown"
    );
}

#[test]
fn dp_locals_stop_worker_group_terminates_the_runner_after_its_held_task() {
    // Unsigned requests, so the test can send dp-local's own StopWorkerGroup call without a signer.
    let endpoint = Endpoint::start_with(dp_local::Config {
        time_scale: TIME_SCALE,
        auth: false,
        ..Default::default()
    });
    let dir = TempDir::new("stop-group");
    let (command, pid_file, release) = held_until_released(dir.path());
    let pipeline = shell_pipeline(&endpoint, "wg-stop", &[("command", &command)]);
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-stop", "--heartbeat-interval=1"],
    );
    wait_until(LIMIT, "the command", || read_pid(&pid_file).is_some());
    let body = r#"{"workerGroup": "wg-stop"}"#;
    let mut stream = std::net::TcpStream::connect(endpoint.server.addr()).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DpLocal.StopWorkerGroup\r\nContent-Type: \
             application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_held_at_terminate_then_finished(&endpoint, &mut runner, &pipeline, &pid_file, &release);
}

/// `--log-rotate` closes the runner log while the runner works, each closed file goes to `--logUri` under its own
/// name, `--log-keep` bounds what stays in `OUTPUT/logs`, and the log at exit goes up as `dp-task-runner.log`:
/// across the uploaded files every line the runner wrote is there exactly once.
#[test]
fn the_runner_log_rotates_uploads_each_closed_file_and_keeps_a_few() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("rotate");
    let uploads = dir.path().join("uploaded");
    let pipeline = shell_pipeline(&endpoint, "wg-rotate", &[("command", "sleep 3")]);
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-rotate",
            "--taskrunnerId=rotating-runner",
            "--log-rotate=1",
            "--log-keep=1",
            &format!("--logUri={}", uploads.display()),
        ],
    );
    wait_until(LIMIT, "the task to finish", || {
        attempts(&endpoint, &pipeline)
            .first()
            .is_some_and(|a| field(a, "@status") == "FINISHED")
    });
    // Past at least one more rotation, so the lines of the task's end are in a closed file too.
    std::thread::sleep(Duration::from_millis(2500));
    runner.signal(Signal::SIGTERM);
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "{}",
        runner.stderr_text()
    );

    let uploaded_dir = uploads.join("TaskRunner/rotating-runner");
    let mut uploaded: Vec<String> = std::fs::read_dir(&uploaded_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", uploaded_dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    uploaded.sort();
    let closed: Vec<&String> = uploaded
        .iter()
        .filter(|n| n.starts_with("dp-task-runner.") && n.as_str() != "dp-task-runner.log")
        .collect();
    assert!(closed.len() >= 2, "closed files uploaded: {uploaded:?}");
    assert!(
        uploaded.contains(&"dp-task-runner.log".to_string()),
        "{uploaded:?}"
    );
    // Closed files first (their names sort by time), then the log at exit.
    let mut lines = Vec::new();
    for name in closed
        .iter()
        .map(|n| n.as_str())
        .chain(["dp-task-runner.log"])
    {
        let text = std::fs::read_to_string(uploaded_dir.join(name)).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("dp-task-runner started"), 1, "{lines:#?}");
    assert_eq!(count("task received"), 1, "{lines:#?}");
    assert_eq!(count("dp-task-runner stopped"), 1, "{lines:#?}");
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "the files hold the lines in time order: {lines:#?}"
    );
    let distinct: std::collections::BTreeSet<&String> = lines.iter().collect();
    assert_eq!(distinct.len(), lines.len(), "no line twice: {lines:#?}");

    let mut local: Vec<String> = std::fs::read_dir(runner.output.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dp-task-runner."))
        .collect();
    local.sort();
    assert_eq!(
        local.len(),
        2,
        "the current log and one closed file: {local:?}"
    );
    assert!(local.contains(&"dp-task-runner.log".to_string()));
}
