//! `dp-task-runner exec`: lease discipline for users who poll themselves. Given a task id that a `poll-for-task`
//! returned, it acknowledges the task, runs one command (no shell, its output on the runner's own stdout and
//! stderr) in its own process group, reports progress while it runs, stops it on cancel, and sets `FINISHED` or
//! `FAILED` from its exit status.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext};
use crate::shell::{Ended, describe_status, group_command, run_in_group};

/// The activity behind `exec`: runs `argv` and remembers how it ended.
#[derive(Debug, Clone)]
pub struct ExecCommand {
    argv: Vec<String>,
    status: Arc<Mutex<Option<ExitStatus>>>,
}

impl ExecCommand {
    /// The command `argv[0]` with arguments `argv[1..]`.
    pub fn new(argv: Vec<String>) -> ExecCommand {
        ExecCommand {
            argv,
            status: Arc::new(Mutex::new(None)),
        }
    }

    /// The exit status, once the command has ended by itself.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Activity for ExecCommand {
    fn run<'a>(&'a self, _task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some((program, args)) = self.argv.split_first() else {
                return Outcome::Failed(Failure::new("InvalidCommand", "exec: no command given"));
            };
            let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            let command = group_command(program.as_ref(), &args, context.cancel_grace());
            match run_in_group(command, context, None).await {
                Ended::Exited(status) => {
                    *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                    if status.success() {
                        Outcome::Finished
                    } else {
                        let (id, what) = describe_status(status);
                        Outcome::Failed(Failure::new(id, format!("{program} {what}")))
                    }
                }
                Ended::Canceled => Outcome::Failed(Failure::new("Canceled", "canceled")),
                Ended::TimedOut => Outcome::Failed(Failure::new("AttemptTimeout", "timed out")),
                Ended::SpawnFailed(e) => Outcome::Failed(Failure::new(
                    "CommandNotStarted",
                    format!("{program} could not be started: {e}"),
                )),
            }
        })
    }
}
