//! `EmrActivity` without a cluster: the steps of the form `command-runner.jar,CMD,ARGS…` run CMD on this machine,
//! so a step such as `command-runner.jar,spark-submit,job.py` can be tried where `spark-submit` is installed.
//!
//! Each `step` value is the jar, then its arguments, separated by commas; a comma inside an argument is written
//! `\\,` (or `\,`). Before anything runs, every step is checked: a jar other than `command-runner.jar` or a command
//! not found on `PATH` ends the attempt `FAILED` (`EmrStepJarNotRunLocally`, `EmrStepCommandNotFound`) naming the
//! step. Then `preStepCommand` (under `sh -c`), the steps in order and `postStepCommand` run as the shell activity
//! runs its command: in a process group of their own, stdout and stderr appended to the attempt's `StdOutput` and
//! `StdError`, stopped on cancel, and the whole attempt bounded by `attemptTimeout`. The first command that fails
//! ends the attempt with its exit status (`ExitCode_N`) and the end of its stderr; the later ones do not run.
//! Nothing here talks to EMR: other step kinds (Hadoop jars, `script-runner.jar`) and the cluster's own fields are
//! not run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext};
use crate::shell::{
    Ended, describe_status, group_command, open_log, parse_period, run_in_group, tail_of,
};

/// The `EmrActivity` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmrActivity;

impl Activity for EmrActivity {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match run(task, context).await {
                Ok(()) => Outcome::Finished,
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

/// The jar whose steps run locally.
const COMMAND_RUNNER: &str = "command-runner.jar";

/// Splits a `step` value at its commas; `\,` and `\\,` are a comma inside a value.
pub fn split_step(step: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut rest = step;
    while let Some(at) = rest.find([',', '\\']) {
        let current = parts.last_mut().expect("never empty");
        current.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail
            .strip_prefix("\\\\,")
            .or_else(|| tail.strip_prefix("\\,"))
        {
            current.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix(',') {
            parts.push(String::new());
            rest = after;
        } else {
            current.push('\\');
            rest = &tail[1..];
        }
    }
    parts.last_mut().expect("never empty").push_str(rest);
    parts
}

/// One command to run: what it is called in messages, the program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    what: String,
    program: PathBuf,
    args: Vec<String>,
}

/// The commands of an attempt, or why it cannot run here.
fn plan(task: &Task, path: Option<&std::ffi::OsStr>) -> Result<Vec<Command>, Failure> {
    let steps = task.fields("step");
    let mut commands = Vec::new();
    let shell = |what: &str, script: &str| Command {
        what: what.to_string(),
        program: "sh".into(),
        args: vec!["-c".into(), script.to_string()],
    };
    if let Some(pre) = task.field("preStepCommand") {
        commands.push(shell("preStepCommand", pre));
    }
    if steps.is_empty() {
        return Err(Failure::new(
            "InvalidTaskObject",
            format!("EmrActivity {} has no step", task.attempt_id),
        ));
    }
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let parts = split_step(step);
        let jar = parts[0].trim();
        let jar_name = jar.rsplit('/').next().unwrap_or(jar);
        if jar_name != COMMAND_RUNNER {
            return Err(Failure::new(
                "EmrStepJarNotRunLocally",
                format!(
                    "step {n} of {total} runs the jar {jar:?}: without an EMR cluster only {COMMAND_RUNNER} steps \
                     run (their command on this machine), so no step ran"
                ),
            ));
        }
        let Some(command) = parts.get(1).filter(|c| !c.is_empty()) else {
            return Err(Failure::new(
                "InvalidTaskObject",
                format!(
                    "step {n} of {total} is {COMMAND_RUNNER} with no command: expected \
                     {COMMAND_RUNNER},COMMAND,ARGUMENTS…"
                ),
            ));
        };
        let Some(program) = find_program(command, path) else {
            let searched = if command.contains('/') {
                "it is not an executable file".to_string()
            } else {
                format!(
                    "it is not on PATH ({})",
                    path.map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                )
            };
            return Err(Failure::new(
                "EmrStepCommandNotFound",
                format!(
                    "step {n} of {total}: {COMMAND_RUNNER} runs {command:?}, and {searched}; no step ran"
                ),
            ));
        };
        commands.push(Command {
            what: format!("step {n} of {total} ({command})"),
            program,
            args: parts[2..].to_vec(),
        });
    }
    if let Some(post) = task.field("postStepCommand") {
        commands.push(shell("postStepCommand", post));
    }
    Ok(commands)
}

/// `command` as an executable file: a path as it is, a name looked up in `path`.
fn find_program(command: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let p = PathBuf::from(command);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(command))
        .find(|p| executable(p))
}

async fn run(task: &Task, context: &TaskContext) -> Result<(), Failure> {
    let timeout = match task.field("attemptTimeout") {
        None => None,
        Some(text) => Some(
            parse_period(text)
                .map(|d| context.service_duration(d))
                .ok_or_else(|| {
                    Failure::new(
                        "InvalidTaskObject",
                        format!(
                            "EmrActivity {}: attemptTimeout {text:?} is not a period such as \"30 minutes\"",
                            task.attempt_id
                        ),
                    )
                })?,
        ),
    };
    let commands = plan(task, std::env::var_os("PATH").as_deref())?;
    let log_dir = context.log_dir().to_path_buf();
    tokio::fs::create_dir_all(&log_dir)
        .await
        .map_err(|e| Failure::new("LogDirectory", format!("{}: {e}", log_dir.display())))?;
    let stdout_path = log_dir.join("StdOutput");
    let stderr_path = log_dir.join("StdError");
    let stdout = open_log(&stdout_path)?;
    let stderr = open_log(&stderr_path)?;
    let started = Instant::now();
    let total = commands.len();
    for (i, command) in commands.iter().enumerate() {
        let left = timeout.map(|limit| limit.saturating_sub(started.elapsed()));
        let args: Vec<OsString> = command.args.iter().map(OsString::from).collect();
        let mut child = group_command(command.program.as_os_str(), &args, context.cancel_grace());
        let output = |file: &std::fs::File, path: &Path| {
            file.try_clone()
                .map_err(|e| Failure::new("LogDirectory", format!("{}: {e}", path.display())))
        };
        child
            .stdout(output(&stdout, &stdout_path)?)
            .stderr(output(&stderr, &stderr_path)?);
        context.log().info(
            "EmrActivity runs a command",
            &[
                ("task", &task.task_id),
                ("command", &command.what),
                ("program", &command.program.to_string_lossy()),
            ],
        );
        context.set_progress_field("commandsRun", i.to_string());
        let status = match run_in_group(child, context, left).await {
            Ended::Exited(status) => status,
            Ended::Canceled => {
                return Err(Failure::new(
                    "Canceled",
                    format!("the task was canceled and {} stopped", command.what),
                ));
            }
            Ended::TimedOut => {
                return Err(Failure::new(
                    "AttemptTimeout",
                    format!(
                        "the attempt ran longer than its attemptTimeout ({}): {} was killed",
                        task.field("attemptTimeout").unwrap_or_default(),
                        command.what
                    ),
                ));
            }
            Ended::SpawnFailed(e) => {
                return Err(Failure::new(
                    "CommandNotStarted",
                    format!(
                        "{} ({}) could not be started: {e}",
                        command.what,
                        command.program.display()
                    ),
                ));
            }
        };
        if !status.success() {
            let (error_id, how) = describe_status(status);
            let tail = tail_of(&stderr_path, 800);
            let message = if tail.is_empty() {
                format!("{} {how} (no output on stderr)", command.what)
            } else {
                format!("{} {how}: {tail}", command.what)
            };
            return Err(Failure::new(error_id, message).with_stack_trace(format!(
                "EmrActivity {}: command {} of {total} {how} after {:.1}s; output in {}",
                task.attempt_id,
                i + 1,
                started.elapsed().as_secs_f64(),
                log_dir.display()
            )));
        }
    }
    context.set_progress_field("commandsRun", total.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_split_at_unescaped_commas() {
        assert_eq!(
            split_step("command-runner.jar,spark-submit,--conf,a=b\\\\,c,x\\,y,back\\slash,"),
            [
                "command-runner.jar",
                "spark-submit",
                "--conf",
                "a=b,c",
                "x,y",
                "back\\slash",
                ""
            ]
        );
        assert_eq!(split_step("only"), ["only"]);
    }

    fn task(steps: &[&str]) -> Task {
        let fields = steps
            .iter()
            .map(|s| dp_model::types::Field {
                key: "step".into(),
                string_value: Some(s.to_string()),
                ref_value: None,
            })
            .collect();
        let attempt = dp_model::types::PipelineObject {
            id: "@A_1".into(),
            name: "@A_1".into(),
            fields,
        };
        let mut objects = dp_model::IndexMap::new();
        objects.insert(attempt.id.clone(), attempt);
        Task::from_task_object(dp_model::types::TaskObject {
            task_id: Some("t".into()),
            pipeline_id: Some("df-1".into()),
            attempt_id: Some("@A_1".into()),
            objects: Some(objects),
        })
    }

    #[test]
    fn only_command_runner_steps_with_a_command_on_path_run() {
        let path = std::env::var_os("PATH");
        let path = path.as_deref();
        let planned = plan(&task(&["command-runner.jar,sh,-c,echo a\\\\,b"]), path).unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].what, "step 1 of 1 (sh)");
        assert!(planned[0].program.is_absolute(), "{planned:?}");
        assert_eq!(planned[0].args, ["-c", "echo a,b"]);

        let jar = plan(
            &task(&["command-runner.jar,true", "s3://bucket/MyWork.jar,arg1"]),
            path,
        )
        .unwrap_err();
        assert_eq!(jar.error_id, "EmrStepJarNotRunLocally");
        assert!(
            jar.message
                .starts_with("step 2 of 2 runs the jar \"s3://bucket/MyWork.jar\""),
            "{}",
            jar.message
        );
        let missing = plan(
            &task(&["command-runner.jar,dp-no-such-command-xyz,1"]),
            Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        )
        .unwrap_err();
        assert_eq!(missing.error_id, "EmrStepCommandNotFound");
        assert_eq!(
            missing.message,
            "step 1 of 1: command-runner.jar runs \"dp-no-such-command-xyz\", and it is not on PATH \
             (/usr/bin:/bin); no step ran"
        );
        let empty = plan(&task(&["command-runner.jar"]), path).unwrap_err();
        assert_eq!(empty.error_id, "InvalidTaskObject");
        assert_eq!(
            plan(&task(&[]), path).unwrap_err().error_id,
            "InvalidTaskObject"
        );
    }
}
