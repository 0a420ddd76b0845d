//! The `dp-local` binary: parse arguments, then serve (printing the URL first) until killed, or export or import
//! a state file.

use std::io::Write;
use std::process::ExitCode;

use dp_local::{Config, Invocation, Server};

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(Invocation::Serve(config)) => config,
        Ok(Invocation::Help) => {
            print!("{}", dp_local::config::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!(
                "dp-local {} (commit {})",
                env!("CARGO_PKG_VERSION"),
                env!("DP_BUILD_COMMIT")
            );
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Export(path)) => return finish(export(&path)),
        Ok(Invocation::Import(path)) => return finish(import(&path)),
        Err(e) => {
            eprintln!("dp-local: {e}");
            return ExitCode::from(2);
        }
    };
    let exit_with_parent = config.exit_with_parent;
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("dp-local: {e}");
            return exit_code(&e);
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (the reader only wanted the URL) is not a reason to stop serving.
    let _ = writeln!(stdout, "{}", server.url());
    if let Some(console) = server.console_url() {
        let _ = writeln!(stdout, "{console}");
    }
    let _ = stdout.flush();
    drop(stdout);
    // SIGTERM and SIGINT (and, with --exit-with-parent, the end of its parent) stop dp-local in order: launched
    // runners are stopped, then serving ends.
    wait_for_signal(exit_with_parent);
    server.shutdown();
    ExitCode::SUCCESS
}

fn wait_for_signal(exit_with_parent: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        let orphaned = async {
            if !exit_with_parent {
                return std::future::pending::<()>().await;
            }
            let parent = std::os::unix::process::parent_id();
            while std::os::unix::process::parent_id() == parent {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            eprintln!(
                "dp-local: the process that started it has ended (--exit-with-parent): stopping"
            );
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = orphaned => {}
        }
    });
}

/// 2 for a PostgreSQL state that cannot be used (as for a bad argument: nothing was written), else 1.
fn exit_code(e: &dp_local::Error) -> ExitCode {
    match e.kind {
        dp_local::ErrorKind::Database => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

fn finish(result: Result<(), dp_local::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dp-local: {e}");
            exit_code(&e)
        }
    }
}

fn failure(message: String) -> dp_local::Error {
    dp_local::Error {
        kind: dp_local::ErrorKind::State,
        message,
    }
}

fn is_url(path: &std::path::Path) -> bool {
    path.to_str().is_some_and(dp_local::store::is_url)
}

fn export(path: &std::path::Path) -> Result<(), dp_local::Error> {
    if !is_url(path) && !path.exists() {
        return Err(failure(format!("{} does not exist", path.display())));
    }
    let mut store = dp_local::store::open(path)?;
    let dump = dp_local::store::export(&mut *store)?;
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut stdout, &dump)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout))
        .and_then(|()| stdout.flush());
    match written {
        // Whoever reads the dump may stop early (`| head`); that is not a failure of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| failure(format!("cannot write the export: {e}"))),
    }
}

fn import(path: &std::path::Path) -> Result<(), dp_local::Error> {
    let url = is_url(path);
    if !url && path.exists() {
        return Err(failure(format!(
            "{} already exists; import writes a new state file",
            path.display()
        )));
    }
    let dump: dp_local::store::Dump = serde_json::from_reader(std::io::stdin().lock())
        .map_err(|e| failure(format!("the input is not a dp-local export: {e}")))?;
    let mut store = dp_local::store::open(path)?;
    if url {
        // A database is not created by import: it must hold no dp-local rows yet (its schema may exist).
        for table in dp_local::store::Table::ALL {
            if !store.load(table)?.is_empty() {
                return Err(dp_local::Error {
                    kind: dp_local::ErrorKind::Database,
                    message: format!(
                        "the database already holds a dp-local state (table {} has rows); import writes into an empty one",
                        table.name()
                    ),
                });
            }
        }
    }
    if url {
        // Checked before anything is written: the rows are staged, loaded as the engine would, then committed in
        // one transaction.
        let mut staged = Staged(Vec::new());
        dp_local::store::import(&mut staged, dump)?;
        dp_local::engine::Engine::check(&mut staged)?;
        return store.commit(&staged.0);
    }
    let imported = dp_local::store::import(&mut *store, dump)
        .and_then(|_| dp_local::engine::Engine::check(&mut *store));
    match imported {
        Ok(_) => Ok(()),
        Err(e) => {
            drop(store);
            // Leave no half-made file behind.
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// Rows held in memory, so that an import into a database is checked before it is written.
struct Staged(Vec<dp_local::store::Row>);

impl dp_local::store::Store for Staged {
    fn load(
        &mut self,
        table: dp_local::store::Table,
    ) -> Result<Vec<dp_local::store::Row>, dp_local::Error> {
        Ok(self
            .0
            .iter()
            .filter(|r| r.table == table)
            .cloned()
            .collect())
    }

    fn commit(&mut self, rows: &[dp_local::store::Row]) -> Result<(), dp_local::Error> {
        self.0.extend_from_slice(rows);
        Ok(())
    }
}
