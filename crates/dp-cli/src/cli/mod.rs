//! The command line's one clap module: argv in, a [`Request`] of plain data out.
//!
//! Everything that knows clap lives under here, as ripgrep's `flags` and uv's `cli` crate keep it: the command tree
//! (built from the model in `model`, the global options in `global`, the two commands that are not model operations
//! in `commands`), the translation of clap's errors into the AWS CLI's wording, completion scripts, and the man
//! pages (`man`), which clap_mangen renders from the same tree. The rest of the crate receives [`GlobalSettings`],
//! [`Invocation`] and [`ListRuns`] and never a clap type; this module does not run commands or touch the network.

mod commands;
mod global;
pub mod man;
mod model;

use std::ffi::OsString;

use clap::{Arg, Command};

use crate::default_roles;
use crate::error::CliError;
use crate::help;
use crate::invocation::Invocation;
use crate::list_runs::{self, ListRuns};
use crate::settings::GlobalSettings;

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// `--version`.
    Version,
    /// Help text to print.
    Help(String),
    /// An operation.
    Run(GlobalSettings, Invocation),
    /// `list-runs`.
    ListRuns(GlobalSettings, ListRuns),
    /// `create-default-roles`.
    CreateDefaultRoles(GlobalSettings),
    /// A shell completion script, ready to print.
    Completion(String),
}

/// The whole command tree.
pub fn command() -> Command {
    let mut root = Command::new("dp")
        .about("dp: the AWS Data Pipeline command line, in native Rust")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_version_flag(true)
        .args_override_self(true)
        .subcommand_required(false)
        .args(global::args());
    for op in dp_model::operations() {
        root = root.subcommand(model::operation_command(op));
    }
    root = root
        .subcommand(commands::list_runs())
        .subcommand(commands::default_roles());
    root.subcommand(
        Command::new("completion")
            .about("Print a shell completion script.")
            .arg(Arg::new("shell").required(true).value_parser([
                "bash",
                "zsh",
                "fish",
                "powershell",
                "elvish",
            ])),
    )
}

/// Turns `args` (including the program name) into what they ask for, or the error to report.
pub fn parse(args: Vec<OsString>) -> Result<Request, CliError> {
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
            Some(list_runs::NAME) => commands::list_runs_help(),
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
    let matches = command()
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
    let settings = global::settings(&matches).map_err(CliError::argument)?;
    match matches.subcommand() {
        Some((list_runs::NAME, m)) => Ok(Request::ListRuns(settings, commands::list_runs_of(m)?)),
        Some((default_roles::NAME, _)) => Ok(Request::CreateDefaultRoles(settings)),
        Some(("completion", m)) => Ok(Request::Completion(completion_script(
            m.get_one::<String>("shell").map_or("", String::as_str),
        )?)),
        Some((name, m)) => {
            let op =
                dp_model::operation_by_cli_name(name).expect("every subcommand is an operation");
            Ok(Request::Run(settings, model::invocation(op, m)))
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
    let root = command();
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
            code: crate::error::exit::OK,
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

/// The completion script of `shell` for the whole command tree.
fn completion_script(shell: &str) -> Result<String, CliError> {
    let shell: clap_complete::Shell = shell
        .parse()
        .map_err(|_| CliError::argument(format!("unknown shell {shell}")))?;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut command(), "dp", &mut buf);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
