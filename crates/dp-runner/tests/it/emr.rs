//! `EmrActivity` without a cluster: `command-runner.jar` steps run their command on this machine through the
//! runner binary and dp-local (output captured in the attempt's `StdOutput`/`StdError`, in order, with
//! `preStepCommand`); a step that cannot run here fails the attempt before anything runs; a failing step stops the
//! ones after it; `attemptTimeout` and a cancel stop the running step's whole process group.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The attempt directory of the only attempt of `pipeline`'s `Work`.
fn attempt_dir(runner: &RunnerProcess, pipeline: &str) -> PathBuf {
    let base = runner.output.join("logs").join(pipeline).join("Work");
    let first = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    first(&first(&base))
}

#[test]
fn command_runner_steps_run_locally_and_others_fail_saying_why() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("emr");
    let (early, late) = (dir.path().join("early.txt"), dir.path().join("late.txt"));
    let group = "wg-emr";
    let pipeline = |fields: &[(&str, &str)]| {
        let mut all = vec![("maximumRetries", "0")];
        all.extend_from_slice(fields);
        dp_runner::testing::one_task_pipeline(&endpoint.url(), group, "EmrActivity", &all)
            .expect("pipeline made")
    };
    let touch_early = format!("command-runner.jar,touch,{}", early.display());
    let touch_late = format!("command-runner.jar,sh,-c,touch {}", late.display());
    // `\\,` is a comma inside an argument; printf gets `%s-%s\n` as written.
    let ok = pipeline(&[
        ("preStepCommand", "echo pre"),
        (
            "step",
            "command-runner.jar,sh,-c,echo hello\\\\,world; echo oops >&2",
        ),
        ("step", "command-runner.jar,printf,%s-%s\\n,a,b"),
    ]);
    let missing = pipeline(&[
        ("step", &touch_early),
        ("step", "command-runner.jar,dp-no-such-command,x"),
    ]);
    let jar = pipeline(&[
        ("step", &touch_early),
        ("step", "s3://bkt/MyWork.jar,arg1,arg2"),
    ]);
    let failing = pipeline(&[
        ("step", "command-runner.jar,sh,-c,echo it broke >&2; exit 3"),
        ("step", &touch_late),
    ]);
    let mut runner =
        RunnerProcess::start(&endpoint, dir.path(), &[&format!("--workerGroup={group}")]);
    wait_until(LIMIT, "four ended tasks", || {
        endpoint.proxy.calls("SetTaskStatus").len() == 4
    });
    runner.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(runner.wait(LIMIT).code(), Some(0), "{}", runner.log());

    let attempt = |pipeline: &str| attempts(&endpoint, pipeline).remove(0);
    let status = |pipeline: &str| {
        let a = attempt(pipeline);
        format!(
            "{} {} {}",
            field(&a, "@status"),
            field(&a, "errorId"),
            field(&a, "errorMessage")
        )
    };

    assert_eq!(status(&ok), "FINISHED  ", "{}", runner.log());
    assert_eq!(field(&attempt(&ok), "commandsRun"), "3");
    let logs = attempt_dir(&runner, &ok);
    assert_eq!(
        std::fs::read_to_string(logs.join("StdOutput")).unwrap(),
        "pre\nhello,world\na-b\n"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("StdError")).unwrap(),
        "oops\n"
    );

    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(
        status(&missing),
        format!(
            "FAILED EmrStepCommandNotFound step 2 of 2: command-runner.jar runs \"dp-no-such-command\", and it is \
             not on PATH ({path}); no step ran"
        )
    );
    assert_eq!(
        status(&jar),
        "FAILED EmrStepJarNotRunLocally step 2 of 2 runs the jar \"s3://bkt/MyWork.jar\": without an EMR cluster \
         only command-runner.jar steps run (their command on this machine), so no step ran"
    );
    assert!(!early.exists(), "a step ran before the attempt was refused");

    assert_eq!(
        status(&failing),
        "FAILED ExitCode_3 step 1 of 2 (sh) exited with status 3: it broke"
    );
    assert!(!late.exists(), "the step after the failing one ran");
}

/// The activity through the library: `attemptTimeout` stops the running step's whole process group (its
/// background child too), and so does a cancel.
#[test]
fn attempt_timeout_and_cancel_stop_the_running_step() {
    use dp_runner::{Activity, CancelReason, Outcome, Task, TaskContext};
    let dir = TempDir::new("emr-stop");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (case, timeout) in [("timeout", Some("2 seconds")), ("cancel", None)] {
        let (pid_file, bg_file) = (
            dir.path().join(format!("{case}.pid")),
            dir.path().join(format!("{case}-bg.pid")),
        );
        let mut fields = vec![
            json!({"key": "type", "stringValue": "EmrActivity"}),
            json!({"key": "step", "stringValue": format!(
                "command-runner.jar,sh,-c,sleep 600 & echo $! > {bg}; echo $$ > {pid}; wait",
                bg = bg_file.display(),
                pid = pid_file.display()
            )}),
        ];
        if let Some(t) = timeout {
            fields.push(json!({"key": "attemptTimeout", "stringValue": t}));
        }
        let task: dp_model::types::TaskObject = serde_json::from_value(json!({
            "taskId": "t-1",
            "pipelineId": "df-LOCAL",
            "attemptId": "@Work_Attempt=1",
            "objects": {"@Work_Attempt=1": {"id": "@Work_Attempt=1", "name": "@Work_Attempt=1",
                                            "fields": fields}},
        }))
        .unwrap();
        let task = Task::from_task_object(task);
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
            let context = TaskContext::new(dir.path().join(case), storage, log);
            let cancel = async {
                if timeout.is_none() {
                    // Once the step is running, the service says "canceled".
                    while read_pid(&pid_file).is_none() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    context.cancel(CancelReason::Service);
                }
            };
            // A bound on a hang (the step alone would run ten minutes), not a timing assertion.
            let run = tokio::time::timeout(LIMIT, dp_runner::emr::EmrActivity.run(&task, &context));
            let (outcome, ()) = tokio::join!(run, cancel);
            outcome.expect("the step was stopped")
        });
        let (sh, bg) = (read_pid(&pid_file).unwrap(), read_pid(&bg_file).unwrap());
        wait_until(LIMIT, "the whole group to be stopped", || {
            !alive(sh) && !alive(bg)
        });
        match outcome {
            Outcome::Failed(f) if case == "timeout" => {
                assert_eq!(f.error_id, "AttemptTimeout", "{f:?}");
                assert_eq!(
                    f.message,
                    "the attempt ran longer than its attemptTimeout (2 seconds): step 1 of 1 (sh) was killed"
                );
            }
            Outcome::Failed(f) => {
                assert_eq!(f.error_id, "Canceled", "{f:?}");
                assert_eq!(
                    f.message,
                    "the task was canceled and step 1 of 1 (sh) stopped"
                );
            }
            other => panic!("{case}: expected the attempt to fail: {other:?}"),
        }
    }
}
