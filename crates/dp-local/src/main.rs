//! The `dp-local` binary: parse arguments, start the server, print its URL, serve until killed.

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
        Err(e) => {
            eprintln!("dp-local: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("dp-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (the reader only wanted the URL) is not a reason to stop serving.
    let _ = writeln!(stdout, "{}", server.url());
    let _ = stdout.flush();
    drop(stdout);
    server.wait();
    ExitCode::SUCCESS
}
