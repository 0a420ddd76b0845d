//! `dp-task-runner`: parses the command line (`args.rs`), wires SIGTERM/SIGINT to the runner's shutdown states, and
//! maps how the run ended to an exit code. Everything else is in the `dp_runner` library.

mod args;

use std::process::ExitCode;

use dp_runner::doctor::{self, Verdict};
use dp_runner::exec::ExecCommand;
use dp_runner::{Control, Runner, RunnerLog, Task, TaskEnd};

/// `--version`: the package version and the commit it was built from.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DP_BUILD_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    // The guard between the runner and each command it starts is this same executable (see dp_runner::guard).
    if let Some(code) = dp_runner::guard::main_if_requested() {
        return code;
    }
    let invocation = match args::parse(std::env::args_os()) {
        Ok(invocation) => invocation,
        Err(refusal) => {
            if refusal.code == 0 {
                print!("{}", refusal.message);
            } else {
                eprintln!("dp-task-runner: {}", refusal.message);
            }
            return ExitCode::from(refusal.code as u8);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dp-task-runner: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(invocation))
}

async fn run(invocation: args::Invocation) -> ExitCode {
    match invocation {
        args::Invocation::Doctor(config) => {
            let checks = doctor::diagnose(&config).await;
            for check in &checks {
                println!("{check}");
            }
            if checks.iter().any(|c| c.verdict == Verdict::Fail) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        args::Invocation::Run(config) => {
            let once = config.once;
            let runner = match start(config).await {
                Ok(r) => r,
                Err(code) => return code,
            };
            forward_signals(runner.control(), runner.log().clone());
            let summary = runner.run().await;
            if !once {
                return ExitCode::SUCCESS;
            }
            match summary.last {
                None => ExitCode::from(3),
                Some(end) => end_code(&end),
            }
        }
        args::Invocation::Exec {
            config,
            task_id,
            argv,
        } => {
            let runner = match start(config).await {
                Ok(r) => r,
                Err(code) => return code,
            };
            forward_signals(runner.control(), runner.log().clone());
            let command = ExecCommand::new(argv);
            let end = runner
                .hold(Task::from_task_id(task_id), command.clone())
                .await;
            match (&end, command.status()) {
                (TaskEnd::Finished | TaskEnd::Failed(_), Some(status)) => {
                    use std::os::unix::process::ExitStatusExt;
                    let code = status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                    ExitCode::from(code.clamp(0, 255) as u8)
                }
                _ => end_code(&end),
            }
        }
    }
}

/// Makes the runner and checks the configuration that needs no network (region, endpoint), so a runner that can
/// never work says why at once instead of retrying.
async fn start(config: dp_runner::RunnerConfig) -> Result<Runner, ExitCode> {
    let runner = Runner::new(config).map_err(|e| {
        eprintln!("dp-task-runner: {e}");
        ExitCode::from(2)
    })?;
    runner.check_configuration().await.map_err(|e| {
        eprintln!("dp-task-runner: {e}");
        ExitCode::from(2)
    })?;
    Ok(runner)
}

fn end_code(end: &TaskEnd) -> ExitCode {
    match end {
        TaskEnd::Finished => ExitCode::SUCCESS,
        TaskEnd::Failed(_) | TaskEnd::False => ExitCode::from(1),
        TaskEnd::Canceled | TaskEnd::LeaseLost | TaskEnd::Shutdown | TaskEnd::Abandoned => {
            ExitCode::from(3)
        }
    }
}

/// The first SIGTERM or SIGINT drains the runner; a second stops it at once.
fn forward_signals(control: Control, log: RunnerLog) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log.error("cannot install signal handlers", &[]);
        return;
    };
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            seen += 1;
            if seen == 1 {
                log.info(
                    &format!("{name}: draining (a second signal stops at once)"),
                    &[],
                );
                control.drain();
            } else {
                log.warn(&format!("{name} again: stopping at once"), &[]);
                control.stop_now();
            }
        }
    });
}
