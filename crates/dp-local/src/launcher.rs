//! Local resources as processes: a `dp-task-runner` stands in for each launched `Ec2Resource` or `EmrCluster`
//! instance, polling the worker group private to it, and one more serves dp-local's own work (the system-managed
//! preconditions).
//!
//! The engine decides when a resource is launched or stopped and sends [`ResourceCommand`]s; this module only
//! carries them out and reports back what happened to each process (started, could not start, exited and how).
//! It never decides a status. Runners talk to dp-local over the API like any other runner; dp-local does not link
//! the runner's code. A runner is told to exit with its parent (`--exit-with-parent`), so that none outlives a
//! dp-local that is killed; a dp-local that stops normally stops them itself (SIGTERM, then SIGKILL after a grace).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::Credential;
use crate::engine::{Engine, ResourceCommand};

/// The runner binary's file name.
pub const RUNNER_BIN: &str = "dp-task-runner";

/// What every launched runner is given.
#[derive(Debug, Clone)]
pub struct LaunchSettings {
    /// The runner binary.
    pub runner_bin: PathBuf,
    /// Extra arguments for every runner (`--runner-arg`).
    pub runner_args: Vec<String>,
    /// Where each runner keeps its logs and staging (one folder per resource attempt).
    pub data_dir: PathBuf,
    /// dp-local's own endpoint URL.
    pub endpoint: String,
    /// Keys the runner signs with, when the inherited environment's are not ones dp-local accepts.
    pub credential: Option<Credential>,
    /// dp-local's time scale, which the runner's progress timer follows.
    pub time_scale: f64,
    /// How long a stopped runner has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

/// Finds the runner binary: `explicit`, else the one beside this executable, else the first on `PATH`.
pub fn find_runner(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(RUNNER_BIN)));
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(RUNNER_BIN))
            .find(|p| p.is_file())
    }) {
        return Ok(path);
    }
    Err(format!(
        "{RUNNER_BIN} was not found beside dp-local{} or on PATH; install it there or give --runner-bin PATH",
        beside
            .and_then(|p| p.parent().map(|d| format!(" ({})", d.display())))
            .unwrap_or_default()
    ))
}

/// The processes launched so far, by (pipeline, attempt); dp-local's own runner has empty names.
#[derive(Debug, Default, Clone)]
pub struct Launcher {
    alive: Arc<Mutex<HashMap<(String, String), u32>>>,
}

impl Launcher {
    /// Carries out the engine's commands until the channel closes.
    pub async fn run(
        self,
        engine: Arc<Engine>,
        mut commands: tokio::sync::mpsc::UnboundedReceiver<ResourceCommand>,
        settings: Result<LaunchSettings, String>,
    ) {
        while let Some(command) = commands.recv().await {
            match command {
                ResourceCommand::Launch {
                    pipeline,
                    attempt,
                    group,
                } => {
                    let spawned = settings
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|s| spawn(s, &pipeline, &attempt, &group));
                    match spawned {
                        Ok(mut child) => {
                            let pid = child.id().unwrap_or(0);
                            self.alive
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert((pipeline.clone(), attempt.clone()), pid);
                            engine.resource_launched(
                                &pipeline,
                                &attempt,
                                Ok(format!("local-{pid}")),
                            );
                            let (engine, alive) = (engine.clone(), self.alive.clone());
                            tokio::spawn(async move {
                                let how = match child.wait().await {
                                    Ok(status) => describe(status),
                                    Err(e) => format!("could not be waited for: {e}"),
                                };
                                alive
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .remove(&(pipeline.clone(), attempt.clone()));
                                engine.resource_exited(&pipeline, &attempt, &how);
                            });
                        }
                        Err(why) => engine.resource_launched(&pipeline, &attempt, Err(why)),
                    }
                }
                ResourceCommand::Stop { pipeline, attempt } => {
                    let pid = self
                        .alive
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&(pipeline, attempt))
                        .copied();
                    if let Some(pid) = pid {
                        let grace = settings.as_ref().map(|s| s.stop_grace).unwrap_or_default();
                        tokio::spawn(stop(pid, grace));
                    }
                }
            }
        }
    }

    /// Stops every runner still alive (SIGTERM, then SIGKILL after `grace`) and waits for them to be gone.
    pub async fn stop_all(&self, grace: Duration) {
        let pids: Vec<u32> = self
            .alive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .collect();
        let stops: Vec<_> = pids
            .into_iter()
            .map(|pid| tokio::spawn(stop(pid, grace)))
            .collect();
        for s in stops {
            let _ = s.await;
        }
    }

    /// The pids of the runners alive now.
    pub fn pids(&self) -> Vec<u32> {
        self.alive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .collect()
    }
}

fn spawn(
    s: &LaunchSettings,
    pipeline: &str,
    attempt: &str,
    group: &str,
) -> Result<tokio::process::Child, String> {
    let label = if pipeline.is_empty() {
        "dp-local-service".to_string()
    } else {
        format!("{}/{}", safe(pipeline), safe(attempt))
    };
    let dir = s.data_dir.join(&label);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot make the runner's folder {}: {e}", dir.display()))?;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    let mut command = tokio::process::Command::new(&s.runner_bin);
    command
        .arg(format!("--workerGroup={group}"))
        .arg(format!("--endpoint={}", s.endpoint))
        .arg(format!("--region={region}"))
        .arg(format!("--output={}", dir.display()))
        .arg(format!("--time-scale={}", s.time_scale))
        .arg(format!("--taskrunnerId={}", label.replace('/', ":")))
        .arg("--exit-with-parent")
        .args(shutdown_grace(s))
        .args(&s.runner_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let stderr = std::fs::File::create(dir.join("runner.stderr"))
        .map_err(|e| format!("cannot make {}: {e}", dir.join("runner.stderr").display()))?;
    command.stderr(stderr);
    if let Some(c) = &s.credential {
        command
            .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
        match &c.session_token {
            Some(t) => command.env("AWS_SESSION_TOKEN", t),
            None => command.env_remove("AWS_SESSION_TOKEN"),
        };
    }
    command.spawn().map_err(|e| {
        format!(
            "cannot start the task runner {}: {e}",
            s.runner_bin.display()
        )
    })
}

/// The runner's shutdown grace (how long held work may go on after SIGTERM): shorter than dp-local's own stop grace,
/// so that a stopped runner ends its work and exits before dp-local gives up on it, unless `--runner-arg` sets one.
fn shutdown_grace(s: &LaunchSettings) -> Option<String> {
    let given = s
        .runner_args
        .iter()
        .any(|a| a.starts_with("--shutdown-grace"));
    (!given).then(|| format!("--shutdown-grace={}", (s.stop_grace.as_secs() / 2).max(1)))
}

/// A path component made of the id's safe characters.
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!(
            "was killed by signal {signal}{}",
            Signal::try_from(signal)
                .map(|s| format!(" ({})", s.as_str()))
                .unwrap_or_default()
        ),
        _ => "ended".into(),
    }
}

/// SIGTERM, then SIGKILL if the process is still there after `grace`.
async fn stop(pid: u32, grace: Duration) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let pid = Pid::from_raw(raw);
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        // Signal 0 checks that the process still exists (the waiter reaps it when it exits).
        if kill(pid, None).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill(pid, Signal::SIGKILL);
    // SIGKILL is delivered, not done: wait (bounded) until the process is gone and reaped, so that a dp-local
    // that stops never exits before its runners have.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline && kill(pid, None).is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
