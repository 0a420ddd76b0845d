//! `cargo xtask bench runner [TASKS]`: dp-task-runner end to end through dp-local, release builds of both.
//!
//! One pipeline with TASKS (default 2,000) `ShellCommandActivity` objects whose command is `true` is activated, and
//! a runner with `--tasks 8` drains it. Measured: tasks per second from the runner's start to its log's last
//! `task ended FINISHED`; the runner's peak RSS (VmHWM) idle (polling an empty worker group for 3 s) and after the
//! drain (it held 8 tasks at a time); and the runner's own CPU time (user + system, children excluded) per task.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::demo::EXAMPLE_ENVIRONMENT as KEYS;

pub(super) struct Killed(pub(super) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |key: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Ok((
        get("VmHWM:").context("no VmHWM")?,
        get("VmRSS:").context("no VmRSS")?,
    ))
}

/// User plus system CPU time of the process itself (not its children), in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit(')').next().context("no stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: f64 = fields[11].parse()?;
    let stime: f64 = fields[12].parse()?;
    let ticks = String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
        .trim()
        .parse::<f64>()
        .unwrap_or(100.0);
    Ok((utime + stime) / ticks)
}

pub(super) fn dp(dp: &Path, url: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(dp)
        .args(args)
        .args(["--endpoint-url", url])
        .envs(KEYS)
        .output()
        .context("running dp")?;
    if !out.status.success() {
        bail!(
            "dp {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn runner(binary: &Path, url: &str, work: &Path, group: &str) -> Result<Killed> {
    let child = Command::new(binary)
        .args([
            &format!("--workerGroup={group}"),
            "--tasks=8",
            "--quiet",
            "--time-scale=60",
            &format!("--output={}", work.join(group).display()),
            "--endpoint-url",
            url,
        ])
        .envs(KEYS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dp-task-runner")?;
    Ok(Killed(child))
}

pub(super) fn stop(runner: &mut Killed) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &runner.0.id().to_string()])
        .status()?;
    let start = Instant::now();
    while runner.0.try_wait()?.is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("dp-task-runner did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Builds dp-local, dp and dp-task-runner in release; returns the directory of the binaries.
pub(super) fn release_binaries() -> Result<std::path::PathBuf> {
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "dp-local",
            "-p",
            "dp-runner",
            "-p",
            "dp-cli",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), Into::into)
        .join("release"))
}

/// dp-local at 60 times speed: the process (killed on drop), its API URL and its console URL.
pub(super) fn start_local(bin: &Path) -> Result<(Killed, String, String)> {
    let mut local = Command::new(bin.join("dp-local"))
        .args(["--port", "0", "--time-scale", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dp-local")?;
    let mut lines = BufReader::new(local.stdout.take().context("no stdout")?);
    let (mut url, mut console) = (String::new(), String::new());
    lines.read_line(&mut url)?;
    lines.read_line(&mut console)?;
    Ok((
        Killed(local),
        url.trim().to_string(),
        console.trim().to_string(),
    ))
}

/// An activated on-demand pipeline with `tasks` `ShellCommandActivity` objects running `true` on `group`.
pub(super) fn true_pipeline(
    bin: &Path,
    url: &str,
    work: &Path,
    name: &str,
    tasks: usize,
    group: &str,
) -> Result<String> {
    let objects: Vec<serde_json::Value> = std::iter::once(serde_json::json!({
        "id": "Default", "name": "Default",
        "fields": [{"key": "scheduleType", "stringValue": "ondemand"}]
    }))
    .chain((0..tasks).map(|i| {
        serde_json::json!({
            "id": format!("T{i}"), "name": format!("T{i}"),
            "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"},
                {"key": "command", "stringValue": "true"},
                {"key": "workerGroup", "stringValue": group}
            ]
        })
    }))
    .collect();
    submit(bin, url, work, name, &objects)
}

/// Writes `objects` as a definition file in `work`, then creates, defines and activates pipeline `name` with
/// `dp`; returns its id.
pub(super) fn submit(
    bin: &Path,
    url: &str,
    work: &Path,
    name: &str,
    objects: &[serde_json::Value],
) -> Result<String> {
    let file = work.join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_string(objects)?)?;
    let dp_bin = bin.join("dp");
    let created = dp(
        &dp_bin,
        url,
        &["create-pipeline", "--name", name, "--unique-id", name],
    )?;
    let id = serde_json::from_str::<serde_json::Value>(&created)?["pipelineId"]
        .as_str()
        .context("no pipelineId")?
        .to_string();
    let objects_arg = format!("file://{}", file.display());
    dp(
        &dp_bin,
        url,
        &[
            "put-pipeline-definition",
            "--pipeline-id",
            &id,
            "--pipeline-objects",
            &objects_arg,
        ],
    )?;
    dp(&dp_bin, url, &["activate-pipeline", "--pipeline-id", &id])?;
    Ok(id)
}

/// Starts a runner for `group` and waits until its log shows `tasks` finished tasks; returns it (still running)
/// and how long that took.
pub(super) fn drain(
    bin: &Path,
    url: &str,
    work: &Path,
    group: &str,
    tasks: usize,
) -> Result<(Killed, Duration)> {
    let started = Instant::now();
    let busy = runner(&bin.join("dp-task-runner"), url, work, group)?;
    let log = work.join(group).join("logs/dp-task-runner.log");
    loop {
        let done = std::fs::read_to_string(&log)
            .map(|t| t.matches("task ended FINISHED").count())
            .unwrap_or(0);
        if done >= tasks {
            return Ok((busy, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {done} of {tasks} tasks finished in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn run(tasks: usize) -> Result<()> {
    let bin = release_binaries()?;
    let work = std::env::temp_dir().join(format!("dp-bench-runner-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let (_local, url, _) = start_local(&bin)?;

    // Idle: an empty worker group, long polls only.
    let mut idle = runner(&bin.join("dp-task-runner"), &url, &work, "idle")?;
    std::thread::sleep(Duration::from_secs(3));
    let (idle_peak, idle_rss) = memory_kib(idle.0.id())?;
    stop(&mut idle)?;

    true_pipeline(&bin, &url, &work, "bench", tasks, "bench")?;
    let (mut busy, elapsed) = drain(&bin, &url, &work, "bench", tasks)?;
    let cpu = cpu_seconds(busy.0.id())?;
    let (busy_peak, _) = memory_kib(busy.0.id())?;
    stop(&mut busy)?;
    let _ = std::fs::remove_dir_all(&work);

    let per_second = tasks as f64 / elapsed.as_secs_f64();
    let cpu_ms = cpu * 1000.0 / tasks as f64;
    println!("| measure | dp-task-runner | target |");
    println!("|---|---|---|");
    println!("| tasks per second (`true`, --tasks 8, {tasks} tasks) | {per_second:.0} | >= 200 |");
    println!(
        "| peak RSS idle (VmHWM; VmRSS {:.1} MB) | {:.1} MB | <= 10 MB |",
        idle_rss as f64 / 1024.0,
        idle_peak as f64 / 1024.0
    );
    println!(
        "| peak RSS holding 8 tasks (VmHWM) | {:.1} MB | |",
        busy_peak as f64 / 1024.0
    );
    println!(
        "| runner CPU per task (user + system, children excluded) | {cpu_ms:.2} ms | <= 5 ms |"
    );
    println!();
    println!("{tasks} tasks in {:.2} s", elapsed.as_secs_f64());
    Ok(())
}
