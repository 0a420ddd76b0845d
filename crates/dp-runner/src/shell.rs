//! The built-in activity: `ShellCommandActivity` and `ShellCommandPrecondition`.
//!
//! `command` runs under `sh -c` with the `scriptArgument` values as `$1…`; `scriptUri` (an `s3://` object or a
//! local path) is fetched into the attempt's log directory and run with the same arguments. The child gets its own
//! process group, so a cancel, a timeout or a shutdown stops everything it started: SIGTERM to the group, SIGKILL
//! after the cancel grace. In the `dp-task-runner` binary a guard process leads that group (see [`crate::guard`]),
//! so the group is stopped even when the runner itself is killed with SIGKILL. Its output goes to the attempt's `StdOutput` and `StdError`, then to the `stdout` and
//! `stderr` locations when the attempt ends. With `stage: true`, S3 inputs are downloaded into
//! `INPUT<n>_STAGING_DIR` before the command and `OUTPUT<n>_STAGING_DIR` is uploaded after it succeeds.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext, string_field};

/// The shell activity. Register it (the runner does, for both type names) or run it directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellCommand {
    precondition: bool,
}

impl ShellCommand {
    /// `ShellCommandActivity`: a non-zero exit fails the attempt.
    pub fn activity() -> ShellCommand {
        ShellCommand {
            precondition: false,
        }
    }

    /// `ShellCommandPrecondition`: a non-zero exit means the precondition is `FALSE`.
    pub fn precondition() -> ShellCommand {
        ShellCommand { precondition: true }
    }
}

impl Activity for ShellCommand {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.run_shell(task, context).await {
                Ok(outcome) => outcome,
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

/// The staging directories of one attempt.
struct Staging {
    /// `(n, INPUTn_STAGING_DIR)`.
    inputs: Vec<(usize, PathBuf)>,
    outputs: Vec<StagedOutput>,
}

/// An output data node and its staging directory.
struct StagedOutput {
    n: usize,
    dir: PathBuf,
    node_id: String,
    /// The node's `directoryPath` or `filePath`.
    target: String,
    is_dir: bool,
}

impl ShellCommand {
    async fn run_shell(&self, task: &Task, context: &TaskContext) -> Result<Outcome, Failure> {
        let kind = task.activity_type().unwrap_or("ShellCommandActivity");
        let program = match (task.field("command"), task.field("scriptUri")) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "{kind} {}: both command and scriptUri are set; set exactly one",
                    task.attempt_id
                )));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "{kind} {}: neither command nor scriptUri is set; set exactly one",
                    task.attempt_id
                )));
            }
            (Some(command), None) => Program::Command(command.to_string()),
            (None, Some(uri)) => Program::Script(uri.to_string()),
        };
        let timeout = match task.field("attemptTimeout") {
            None => None,
            Some(text) => Some(parse_period(text).map(|d| context.service_duration(d)).ok_or_else(|| {
                invalid(format!(
                    "{kind} {}: attemptTimeout {text:?} is not a period such as \"30 minutes\"",
                    task.attempt_id
                ))
            })?),
        };
        let log_dir = context.log_dir().to_path_buf();
        tokio::fs::create_dir_all(&log_dir)
            .await
            .map_err(|e| io_failure("LogDirectory", &log_dir, e))?;

        let mut argv: Vec<String> = match &program {
            Program::Command(command) => {
                vec!["sh".into(), "-c".into(), command.clone(), "sh".into()]
            }
            Program::Script(uri) => {
                let name = uri
                    .rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("script");
                let path = log_dir.join(format!("script-{name}"));
                context
                    .storage()
                    .download_file(uri, &path)
                    .await
                    .map_err(|e| Failure::new("ScriptDownloadFailed", format!("scriptUri: {e}")))?;
                make_executable(&path)?;
                vec![
                    "sh".into(),
                    "-c".into(),
                    "exec \"$0\" \"$@\"".into(),
                    path.to_string_lossy().into_owned(),
                ]
            }
        };
        argv.extend(
            task.fields("scriptArgument")
                .into_iter()
                .map(str::to_string),
        );

        let staging = if task.field("stage") == Some("true") {
            Some(self.stage_inputs(task, context, &log_dir).await?)
        } else {
            None
        };

        let stdout_path = log_dir.join("StdOutput");
        let stderr_path = log_dir.join("StdError");
        let args: Vec<OsString> = argv[1..].iter().map(OsString::from).collect();
        let mut command = group_command(argv[0].as_ref(), &args, context.cancel_grace());
        command
            .stdout(open_log(&stdout_path)?)
            .stderr(open_log(&stderr_path)?);
        if let Some(staging) = &staging {
            for (n, dir) in &staging.inputs {
                command.env(format!("INPUT{n}_STAGING_DIR"), dir);
            }
            for output in &staging.outputs {
                command.env(format!("OUTPUT{}_STAGING_DIR", output.n), &output.dir);
            }
        }
        let started = Instant::now();
        let run = run_in_group(command, context, timeout).await;
        let elapsed = started.elapsed();

        // The attempt has ended (whatever its outcome): its output goes where the object says.
        let mut copy_errors = Vec::new();
        for (key, path) in [("stdout", &stdout_path), ("stderr", &stderr_path)] {
            if let Some(to) = task.field(key)
                && let Err(e) = context.storage().upload_file(path, to).await
            {
                copy_errors.push(format!("{key}: {e}"));
            }
        }

        let status = match run {
            Ended::Exited(status) => status,
            Ended::Canceled => {
                // The supervisor decides what to send (nothing, after a cancel).
                return Ok(Outcome::Failed(Failure::new(
                    "Canceled",
                    "the task was canceled and its command stopped",
                )));
            }
            Ended::TimedOut => {
                let limit = timeout.unwrap_or_default();
                return Ok(Outcome::Failed(
                    Failure::new(
                        "AttemptTimeout",
                        format!(
                            "the command ran longer than its attemptTimeout ({}) and was killed",
                            task.field("attemptTimeout").unwrap_or_default()
                        ),
                    )
                    .with_stack_trace(format!(
                        "attempt {} killed after {:.1}s (limit {:.1}s)",
                        task.attempt_id,
                        elapsed.as_secs_f64(),
                        limit.as_secs_f64()
                    )),
                ));
            }
            Ended::SpawnFailed(e) => {
                return Err(Failure::new(
                    "CommandNotStarted",
                    format!("{} could not be started: {e}", argv[0]),
                ));
            }
        };

        if status.success() {
            if let Some(staging) = &staging {
                self.stage_outputs(context, staging).await?;
            }
            if !copy_errors.is_empty() {
                return Err(Failure::new("OutputCopyFailed", copy_errors.join("; ")));
            }
            return Ok(Outcome::Finished);
        }
        let (error_id, what) = describe_status(status);
        let tail = tail_of(&stderr_path, 1000);
        let message = if tail.is_empty() {
            format!("the command {what} (no output on stderr)")
        } else {
            tail
        };
        let failure = Failure::new(error_id, message).with_stack_trace(format!(
            "{kind} {} {what} after {:.1}s; output in {}",
            task.attempt_id,
            elapsed.as_secs_f64(),
            log_dir.display()
        ));
        Ok(if self.precondition {
            Outcome::False(failure)
        } else {
            Outcome::Failed(failure)
        })
    }

    async fn stage_inputs(
        &self,
        task: &Task,
        context: &TaskContext,
        log_dir: &Path,
    ) -> Result<Staging, Failure> {
        let root = log_dir.join("staging");
        let mut staging = Staging {
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        for (i, node) in task.refs("input").into_iter().enumerate() {
            let n = i + 1;
            let dir = root.join(format!("input{n}"));
            let (kind, from, is_dir) = data_node_path(node)?;
            let result = if is_dir {
                context
                    .storage()
                    .download_dir(&from, &dir)
                    .await
                    .map(|_| ())
            } else {
                let name = from.rsplit('/').next().unwrap_or("input");
                context
                    .storage()
                    .download_file(&from, &dir.join(name))
                    .await
            };
            result.map_err(|e| {
                Failure::new(
                    "StagingFailed",
                    format!("staging input {n} ({kind} {}): {e}", node.id),
                )
            })?;
            staging.inputs.push((n, dir));
        }
        for (i, node) in task.refs("output").into_iter().enumerate() {
            let n = i + 1;
            let dir = root.join(format!("output{n}"));
            let (_, target, is_dir) = data_node_path(node)?;
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| io_failure("StagingFailed", &dir, e))?;
            staging.outputs.push(StagedOutput {
                n,
                dir,
                node_id: node.id.clone(),
                target,
                is_dir,
            });
        }
        Ok(staging)
    }

    async fn stage_outputs(&self, context: &TaskContext, staging: &Staging) -> Result<(), Failure> {
        for output in &staging.outputs {
            let failed = |e: String| {
                Failure::new(
                    "StagingFailed",
                    format!("uploading output {} ({}): {e}", output.n, output.node_id),
                )
            };
            if output.is_dir {
                context
                    .storage()
                    .upload_dir(&output.dir, &output.target)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                continue;
            }
            let files: Vec<PathBuf> = std::fs::read_dir(&output.dir)
                .map_err(|e| failed(e.to_string()))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            match files.as_slice() {
                [one] => context
                    .storage()
                    .upload_file(one, &output.target)
                    .await
                    .map_err(|e| failed(e.to_string()))?,
                _ => {
                    return Err(failed(format!(
                        "the node's filePath takes one file, and OUTPUT{}_STAGING_DIR holds {}",
                        output.n,
                        files.len()
                    )));
                }
            }
        }
        Ok(())
    }
}

enum Program {
    Command(String),
    Script(String),
}

/// How the child ended.
pub(crate) enum Ended {
    /// The child exited by itself.
    Exited(ExitStatus),
    /// The context was canceled and the group stopped.
    Canceled,
    /// The timeout passed and the group was stopped.
    TimedOut,
    /// The child could not be started (or waited for).
    SpawnFailed(std::io::Error),
}

/// `program args…` ready for [`run_in_group`]: the leader of a new process group, its stdin closed. When this
/// executable can act as a guard (see [`crate::guard`]), the guard leads the group and starts the command, so the
/// group is stopped even if the runner is killed with SIGKILL. Set stdout, stderr and the environment on the
/// returned command (the command inherits them from the guard); do not set stdin.
pub(crate) fn group_command(
    program: &OsStr,
    args: &[OsString],
    grace: Duration,
) -> tokio::process::Command {
    let mut command = match crate::guard::program() {
        Some(guard) => {
            let mut command = tokio::process::Command::new(guard);
            command
                .args(crate::guard::guard_args(
                    grace,
                    &program.to_os_string(),
                    args,
                ))
                .stdin(Stdio::piped());
            command
        }
        None => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).stdin(Stdio::null());
            command
        }
    };
    command.process_group(0).kill_on_drop(true);
    command
}

/// Runs `command` (from [`group_command`]) until it exits, the context is canceled or `timeout` passes; in the last
/// two cases the whole group is stopped: SIGTERM, then SIGKILL after the cancel grace.
pub(crate) async fn run_in_group(
    mut command: tokio::process::Command,
    context: &TaskContext,
    timeout: Option<Duration>,
) -> Ended {
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Ended::SpawnFailed(e),
    };
    // The guard's lifeline: held, never written, closed by the kernel if this process dies.
    let _lifeline = child.stdin.take();
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        status = child.wait() => {
            return match status {
                Ok(status) => Ended::Exited(status),
                Err(e) => Ended::SpawnFailed(e),
            };
        }
        _ = context.canceled() => Ended::Canceled,
        _ = deadline => Ended::TimedOut,
    };
    if let Some(pgid) = pgid {
        let _ = killpg(pgid, Signal::SIGTERM);
        tokio::select! {
            waited = tokio::time::timeout(context.cancel_grace(), child.wait()) => {
                if waited.is_err() {
                    context.log().warn(
                        "the command did not stop within the cancel grace: SIGKILL to its process group",
                        &[("pgid", &pgid.to_string())],
                    );
                }
            }
            _ = context.stopping_at_once() => {}
        }
        // Whatever the leader did, nothing of the group may outlive the task.
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    let _ = child.wait().await;
    ended
}

/// `ExitCode_3` and "exited with status 3", or `Signal_SIGKILL` and "was killed by SIGKILL".
pub(crate) fn describe_status(status: ExitStatus) -> (String, String) {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return (
            format!("ExitCode_{code}"),
            format!("exited with status {code}"),
        );
    }
    let signal = status.signal().unwrap_or(0);
    let name = Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"));
    (format!("Signal_{name}"), format!("was killed by {name}"))
}

/// The last `max` characters of a file's last lines, as one string the model accepts (control characters other
/// than tab and newline become spaces).
pub(crate) fn tail_of(path: &Path, max: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let start = bytes.len().saturating_sub(max * 4);
    let text: String = String::from_utf8_lossy(&bytes[start..])
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let chars: Vec<char> = text.trim().chars().collect();
    let from = chars.len().saturating_sub(max);
    chars[from..]
        .iter()
        .collect::<String>()
        .trim_start()
        .to_string()
}

/// A Data Pipeline period (`30 minutes`, `1 hour`, `2 days`, `45 seconds`).
pub fn parse_period(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('s').unwrap_or(&unit);
    let seconds = match unit {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        "month" => 30 * 86_400,
        "year" => 365 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(seconds)?))
}

/// Where a data node's data is: `(type, path, is a directory)`. Only S3 data nodes (and local paths in them) can
/// be staged.
fn data_node_path(
    node: &dp_model::types::PipelineObject,
) -> Result<(String, String, bool), Failure> {
    let kind = string_field(node, "type")
        .unwrap_or("(no type)")
        .to_string();
    if kind != "S3DataNode" {
        return Err(Failure::new(
            "StagingUnsupported",
            format!(
                "stage: true works with S3DataNode inputs and outputs; {} is a {kind}",
                node.id
            ),
        ));
    }
    if let Some(dir) = string_field(node, "directoryPath") {
        return Ok((kind, dir.to_string(), true));
    }
    if let Some(file) = string_field(node, "filePath") {
        return Ok((kind, file.to_string(), false));
    }
    Err(Failure::new(
        "InvalidTaskObject",
        format!(
            "{} ({kind}) has neither directoryPath nor filePath",
            node.id
        ),
    ))
}

fn invalid(message: String) -> Failure {
    Failure::new("InvalidTaskObject", message)
}

fn io_failure(id: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new(id, format!("{}: {e}", path.display()))
}

pub(crate) fn open_log(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::File::create(path).map_err(|e| io_failure("LogDirectory", path, e))
}

fn make_executable(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io_failure("ScriptDownloadFailed", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let check = |text: &str, secs: Option<u64>| {
            assert_eq!(parse_period(text), secs.map(Duration::from_secs), "{text}");
        };
        check("30 minutes", Some(1800));
        check("1 hour", Some(3600));
        check("2 Hours", Some(7200));
        check("45 seconds", Some(45));
        check("1 day", Some(86_400));
        check("3 weeks", Some(1_814_400));
        check("10minutes", Some(600));
        check("minutes", None);
        check("5 fortnights", None);
        check("", None);
        check("-1 hours", None);
    }

    #[test]
    fn tails_keep_the_end_and_clean_control_characters() {
        let dir = std::env::temp_dir().join(format!("dp-runner-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("err");
        std::fs::write(
            &path,
            format!("{}\x1b[31mlast line\x07\n\n", "x".repeat(5000)),
        )
        .unwrap();
        let tail = tail_of(&path, 20);
        assert_eq!(tail, "xxxxxx [31mlast line");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
