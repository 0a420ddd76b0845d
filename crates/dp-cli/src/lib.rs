//! The `dp` command line: `aws datapipeline` in native Rust.
//!
//! [`run`] is the whole program. Arguments → [`cli::Request`] (clap, built generically from the model) holding an
//! [`invocation::Invocation`] (plain data); then one way through [`operation::run`]: checks of the command line →
//! input value ([`params::input_value`]: paramfiles, shorthand or JSON, custom options, `--cli-input-json`) →
//! validated ([`params::validate`]) → one or more calls through a [`session::Session`] ([`paginate`]) → output
//! ([`output`]).
//!
//! The modules depend one way: `invocation` on nothing; `customize` (every per-operation piece of the generic
//! path: renamed and custom options, definition files, `after_call`) on `invocation`; `cli` and `params` on both;
//! `operation` on those and on `session`. The two commands that are not model operations live whole in their own
//! modules (`list_runs`, `default_roles`). Anything that needs no request (skeletons, help, input errors) returns
//! before a session is opened, so before credentials or the network are touched. This crate is the only one that
//! knows clap; it composes the others and does not reimplement them.

pub mod cli;
pub mod customize;
pub mod default_roles;
pub mod error;
pub mod help;
pub mod hints;
pub mod invocation;
pub mod list_runs;
pub mod man;
pub mod operation;
pub mod output;
pub mod paginate;
pub mod paramfile;
pub mod params;
pub mod session;
pub mod settings;

use std::ffi::OsString;
use std::io::Write as _;

use crate::cli::Request;
use crate::error::{CliError, exit};
use crate::settings::GlobalSettings;

/// Runs dp with `args` (including the program name) and returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let mut stdout = String::new();
    let code = match run_inner(args, &mut stdout) {
        Ok(()) => exit::OK,
        Err(e) => {
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

fn parse_args(args: Vec<OsString>) -> Result<Request, CliError> {
    // `dp help` and `dp <command> help`, as the AWS CLI spells them.
    let strings: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let wants_help = strings.last().map(String::as_str) == Some("help")
        || strings.iter().skip(1).any(|a| a == "--help" || a == "-h");
    if wants_help {
        let command = strings
            .iter()
            .skip(1)
            .find(|a| !a.starts_with('-') && *a != "help");
        let text = match command.map(String::as_str) {
            Some("list-runs") => list_runs::help_page(),
            Some(default_roles::NAME) => default_roles::help_page(),
            Some(name) => match dp_model::operation_by_cli_name(name) {
                Some(op) => help::operation_help(op),
                None => help::main_help(),
            },
            None => help::main_help(),
        };
        return Ok(Request::Help(text));
    }
    let args = join_hyphen_values(args);
    let matches = cli::command()
        .try_get_matches_from(args.clone())
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::UnknownArgument => match unknown_options(&args) {
                Some(unknown) => {
                    CliError::argument(format!("Unknown options: {}", unknown.join(", ")))
                }
                None => clap_error(e),
            },
            _ => clap_error(e),
        })?;
    if matches.get_flag("version") {
        return Ok(Request::Version);
    }
    let settings = GlobalSettings::from_matches(&matches).map_err(CliError::argument)?;
    match matches.subcommand() {
        Some(("list-runs", m)) => Ok(Request::ListRuns(
            settings,
            crate::list_runs::ListRuns::from_matches(m)?,
        )),
        Some((default_roles::NAME, _)) => Ok(Request::CreateDefaultRoles(settings)),
        Some(("completion", m)) => Ok(Request::Completion(
            m.get_one::<String>("shell").cloned().unwrap_or_default(),
        )),
        Some((name, m)) => {
            let op =
                dp_model::operation_by_cli_name(name).expect("every subcommand is an operation");
            Ok(Request::Run(settings, cli::invocation(op, m)))
        }
        None => Err(CliError::argument(
            "the following arguments are required: command",
        )),
    }
}

/// argparse takes a token that starts with `-` as a value when it contains a space or is a negative number
/// (`--cli-input-yaml '- a'`, `--limit -1`); clap would read it as an option. Such a token is joined to the
/// option before it (`--opt=VALUE`), which clap reads as that option's value.
fn join_hyphen_values(args: Vec<OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::with_capacity(args.len());
    for arg in args {
        let text = arg.to_string_lossy();
        let value_like = text.starts_with('-')
            && (text.contains(char::is_whitespace) || text.parse::<f64>().is_ok());
        if value_like && let Some(prev) = out.last_mut() {
            let p = prev.to_string_lossy().into_owned();
            if p.starts_with("--") && !p.contains('=') && p.len() > 2 {
                *prev = OsString::from(format!("{p}={text}"));
                continue;
            }
        }
        out.push(arg);
    }
    out
}

/// The tokens argparse leaves unrecognized, as the CLI lists them in `Unknown options: …`: every `--option` the
/// command does not know, each with the plain tokens after it (no option takes them). `None` when none is found
/// (clap's own message is used then).
fn unknown_options(args: &[OsString]) -> Option<Vec<String>> {
    let root = cli::command();
    let tokens: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let command = tokens
        .iter()
        .find_map(|t| root.find_subcommand(t))
        .unwrap_or(&root);
    let known = |name: &str| {
        name == "help"
            || command
                .get_arguments()
                .chain(root.get_arguments())
                .any(|a| a.get_long() == Some(name))
    };
    let mut unknown = Vec::new();
    let mut in_unknown = false;
    for token in &tokens {
        if token == command.get_name() {
            in_unknown = false;
        } else if let Some(name) = token.strip_prefix("--") {
            let name = name.split_once('=').map_or(name, |(n, _)| n);
            in_unknown = !known(name);
            if in_unknown {
                unknown.push(token.clone());
            }
        } else if in_unknown {
            unknown.push(token.clone());
        }
    }
    (!unknown.is_empty()).then_some(unknown)
}

fn clap_error(e: clap::Error) -> CliError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => CliError {
            message: e.to_string(),
            code: exit::OK,
            with_usage: false,
        },
        ErrorKind::UnknownArgument => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            CliError::argument(format!("Unknown options: {arg}"))
        }
        ErrorKind::InvalidSubcommand => {
            let name = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            let mut msg = "argument command: Invalid choice, valid choices are:\n\n".to_string();
            for op in dp_model::operations() {
                msg.push_str(&format!("{}\n", op.cli_name));
            }
            if let Some(ContextValue::Strings(s)) = e.get(ContextKind::SuggestedSubcommand) {
                msg = format!(
                    "Invalid choice: '{name}', maybe you meant:\n\n  * {}",
                    s.join("\n  * ")
                );
            }
            CliError::argument(msg)
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            CliError::argument(first)
        }
    }
}

fn run_inner(args: Vec<OsString>, stdout: &mut String) -> Result<(), CliError> {
    match parse_args(args)? {
        Request::Version => {
            stdout.push_str(&version_line());
            stdout.push('\n');
            Ok(())
        }
        Request::Help(text) => {
            stdout.push_str(&text);
            Ok(())
        }
        Request::Completion(shell) => {
            let shell: clap_complete::Shell = shell
                .parse()
                .map_err(|_| CliError::argument(format!("unknown shell {shell}")))?;
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cli::command(), "dp", &mut buf);
            stdout.push_str(&String::from_utf8_lossy(&buf));
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
