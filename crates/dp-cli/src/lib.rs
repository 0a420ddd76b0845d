//! The `dp` command line: `aws datapipeline` in native Rust.
//!
//! [`run`] is the whole program. Arguments → [`cli::parse`] → [`cli::Request`] (plain data) holding an
//! [`invocation::Invocation`] (plain data); then one way through [`operation::run`]: checks of the command line →
//! input value ([`params::input_value`]: paramfiles, shorthand or JSON, custom options, `--cli-input-json`) →
//! validated ([`params::validate`]) → one or more calls through a [`session::Session`] ([`paginate`]) → output
//! ([`output`]).
//!
//! The modules depend one way: `invocation` on nothing; `customize` (every per-operation piece of the generic
//! path: renamed and custom options, definition files, `after_call`) on `invocation`; `cli` and `params` on both;
//! `operation` on those and on `session`. The two commands that are not model operations live in their own
//! modules (`list_runs`, `default_roles`), apart from their clap definitions. Anything that needs no request
//! (skeletons, help, input errors) returns before a session is opened, so before credentials or the network are
//! touched. This crate is the only one that knows clap, and within it only `cli` does; it composes the others and
//! does not reimplement them.

pub mod cli;
pub mod customize;
pub mod default_roles;
pub mod error;
pub mod help;
pub mod hints;
pub mod invocation;
pub mod list_runs;
pub mod operation;
pub mod output;
pub mod paginate;
pub mod paramfile;
pub mod params;
pub mod pyjson;
pub mod session;
pub mod settings;

use std::ffi::OsString;
use std::io::Write as _;

use crate::cli::Request;
use crate::error::{CliError, exit};

/// Runs dp with `args` (including the program name) and returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let mut stdout = String::new();
    let code = match run_inner(args, &mut stdout) {
        Ok(()) => exit::OK,
        Err(e) => {
            // CLI v2 answers Ctrl-C with a newline on stdout (so the shell's prompt starts on a line of its own)
            // and exit status 130.
            if e.code == exit::INTERRUPTED {
                stdout.push('\n');
            }
            write_out(&stdout);
            stdout.clear();
            let _ = std::io::stderr().write_all(e.render().as_bytes());
            e.code
        }
    };
    if !write_out(&stdout) {
        return exit::OTHER;
    }
    code
}

/// Writes to stdout; a closed pipe counts as success (`dp … | head`).
fn write_out(text: &str) -> bool {
    if text.is_empty() {
        return true;
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::BrokenPipe,
    }
}

fn run_inner(args: Vec<OsString>, stdout: &mut String) -> Result<(), CliError> {
    match cli::parse(args)? {
        Request::Version => {
            stdout.push_str(&version_line());
            stdout.push('\n');
            Ok(())
        }
        Request::Help(text) => {
            stdout.push_str(&text);
            Ok(())
        }
        Request::Completion(script) => {
            stdout.push_str(&script);
            Ok(())
        }
        Request::Run(settings, inv) => operation::run(&settings, &inv, stdout),
        Request::ListRuns(settings, args) => list_runs::run(&settings, &args, stdout),
        Request::CreateDefaultRoles(settings) => default_roles::run(&settings, stdout),
    }
}

/// The commit this binary was built from (`git rev-parse HEAD` at build time, `DP_BUILD_COMMIT` for archive
/// builds), or `unknown`.
pub const BUILD_COMMIT: &str = env!("DP_BUILD_COMMIT");

/// What `dp --version` prints (without the newline): the version, the commit it was built from, the platform.
pub fn version_line() -> String {
    format!(
        "dp/{} (aws-cli datapipeline compatible) {}/{} commit/{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        BUILD_COMMIT
    )
}
