//! The guard: a small process between the runner and each command it starts, so that a runner killed with
//! SIGKILL (which runs no code of its own) leaves no work running.
//!
//! The runner starts its own executable in guard mode (`dp-task-runner __guard GRACE_MS PROGRAM ARGS…`) as the
//! leader of a new process group, with a pipe on the guard's stdin whose write end only the runner holds. The guard
//! starts the command in that group and waits. When the command ends, the guard ends the same way (exit code or
//! signal), so the runner sees the command's own status. When the pipe closes before that (the runner died, since
//! the kernel closes a dead process's descriptors), the guard sends SIGTERM to the group, waits for the cancel
//! grace, then sends SIGKILL to the group, itself included.
//!
//! Once the command has started, the guard blocks SIGTERM, SIGINT and SIGHUP for itself (the runner signals the
//! whole group when it stops a task; the command must get the signal, the guard must outlive it to report its
//! status); it blocks them only after starting the command, because a child inherits the signal mask. No
//! `unsafe`: blocking signals and signalling a group are safe calls of `nix`.
//!
//! It must not do anything else: no network, no files, no logging (its stdout and stderr are the command's).

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, killpg, pthread_sigmask, raise};
use nix::unistd::getpgrp;

/// The hidden first argument that runs an executable as a guard.
pub const GUARD_ARG: &str = "__guard";

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Call first thing in `main`. When the process was started as a guard, runs the guard and returns how the
/// process must exit. Otherwise records that this executable can act as a guard (so commands started later run
/// under one) and returns `None`. The `dp-task-runner` binary calls it; an embedder's binary may too.
pub fn main_if_requested() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == GUARD_ARG) {
        return Some(run(args.collect()));
    }
    let own = PathBuf::from("/proc/self/exe");
    // In the child between fork and exec, /proc/self/exe is still this executable, even if its file was
    // replaced on disk since the runner started.
    let program = if own.exists() {
        Some(own)
    } else {
        std::env::current_exe().ok()
    };
    if let Some(program) = program {
        let _ = PROGRAM.set(program);
    }
    None
}

/// The executable to start as a guard, when `main_if_requested` was called in this process.
pub(crate) fn program() -> Option<&'static PathBuf> {
    PROGRAM.get()
}

/// The arguments that make `guard` start `program args…` with this cancel grace.
pub(crate) fn guard_args(grace: Duration, program: &OsString, args: &[OsString]) -> Vec<OsString> {
    let mut all = vec![
        OsString::from(GUARD_ARG),
        OsString::from(grace.as_millis().to_string()),
        program.clone(),
    ];
    all.extend(args.iter().cloned());
    all
}

enum Event {
    Ended(std::process::ExitStatus),
    WaitFailed,
    ParentGone,
}

fn run(args: Vec<OsString>) -> ExitCode {
    let (Some(grace), Some(program)) = (
        args.first()
            .and_then(|g| g.to_str())
            .and_then(|g| g.parse::<u64>().ok()),
        args.get(1),
    ) else {
        eprintln!("dp-task-runner {GUARD_ARG}: usage: {GUARD_ARG} GRACE_MS PROGRAM [ARGS…]");
        return ExitCode::from(125);
    };
    let grace = Duration::from_millis(grace);
    let mut child = match std::process::Command::new(program)
        .args(&args[2..])
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("{}: {e}", program.to_string_lossy());
            return ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    // Blocked after the command started (a child inherits the mask) and before any other thread starts (so every
    // thread of the guard keeps them blocked). A signal to the group in the moment before reaches the command too.
    let mut stopping = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stopping.add(signal);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&stopping), None);
    let (events, event) = mpsc::channel();
    let ended = events.clone();
    std::thread::spawn(move || {
        let _ = ended.send(match child.wait() {
            Ok(status) => Event::Ended(status),
            Err(_) => Event::WaitFailed,
        });
    });
    std::thread::spawn(move || {
        // Nothing is ever written: the read returns when the runner's end closes.
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = events.send(Event::ParentGone);
    });

    match event.recv() {
        Ok(Event::Ended(status)) => end_like(status, &stopping),
        Ok(Event::WaitFailed) | Err(_) => ExitCode::from(125),
        Ok(Event::ParentGone) => {
            let group = getpgrp();
            let _ = killpg(group, Signal::SIGTERM);
            let _ = event.recv_timeout(grace);
            // Whatever the command did, nothing of the group outlives the runner (this kills the guard too).
            let _ = killpg(group, Signal::SIGKILL);
            ExitCode::from(137)
        }
    }
}

/// Ends the guard as the command ended: the same exit code, or death by the same signal.
fn end_like(status: std::process::ExitStatus, blocked: &SigSet) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let signal = status.signal().unwrap_or(0);
    if let Ok(signal) = Signal::try_from(signal) {
        // Pending while blocked, delivered (with its default action) once unblocked.
        let _ = raise(signal);
        let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(blocked), None);
    }
    // A signal whose default action is not to end the process (or that this process ignores, as SIGPIPE): the
    // shell's convention.
    ExitCode::from((128 + signal).clamp(0, 255) as u8)
}
