//! The `dp` command line: `aws datapipeline` in native Rust.
//!
//! [`run`] is the whole program: arguments → [`cli::Request`] (clap, built generically from the model) holding an
//! [`invocation::Invocation`] (plain data) → input value ([`params`]: paramfiles, shorthand or JSON,
//! `--cli-input-json`, validation) → one or more calls through `dp_wire` ([`paginate`]) → output ([`output`]).
//! The modules depend one way: `invocation` on nothing, `customize` (every per-operation piece: renamed and custom
//! options, definition files, `after_call`) on `invocation`, and `cli` and `params` on both; `list_runs` holds the
//! whole `list-runs` command. Anything that needs no request (skeletons, help,
//! input errors) returns before credentials or the network are touched. This crate is the only one that knows
//! clap; it composes the others and does not reimplement them.

pub mod cli;
pub mod customize;
pub mod default_roles;
pub mod error;
pub mod help;
pub mod hints;
pub mod invocation;
pub mod list_runs;
pub mod man;
pub mod output;
pub mod paginate;
pub mod paramfile;
pub mod params;
pub mod settings;

use std::ffi::OsString;
use std::io::Write as _;

use dp_model::Operation;
use serde_json::Value;

use crate::cli::Request;
use crate::error::{CliError, exit};
use crate::invocation::Invocation;
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
            Some(default_roles::NAME) => format!(
                "NAME\n    dp {}\n\nDESCRIPTION\n{}\n",
                default_roles::NAME,
                default_roles::description()
                    .lines()
                    .map(|l| if l.is_empty() {
                        String::new()
                    } else {
                        format!("    {l}")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
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
        Request::Run(settings, inv) => run_operation(&settings, &inv, stdout),
        Request::ListRuns(settings, args) => list_runs::run(&settings, &args, stdout),
        Request::CreateDefaultRoles(settings) => run_create_default_roles(&settings, stdout),
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

fn missing_required(inv: &Invocation) -> Vec<String> {
    let op = inv.operation;
    op.input
        .map(|s| s.members())
        .unwrap_or_default()
        .iter()
        .filter(|m| m.required && !inv.values.iter().any(|(g, _)| g.name == m.name))
        .filter_map(|m| match customize::provided_by_custom(op.name, m.name) {
            // dp keeps the API's own option beside the CLI's custom one: either satisfies the requirement.
            Some(custom) if inv.custom.iter().any(|(n, _)| *n == custom) => None,
            Some(custom) => Some(format!("--{custom}")),
            None => Some(format!("--{}", customize::option_name(op, m))),
        })
        .collect()
}

fn parse_count(name: &str, v: &Option<String>) -> Result<Option<usize>, CliError> {
    v.as_ref()
        .map(|s| {
            s.trim().parse::<usize>().map_err(|_| {
                CliError::argument(format!("argument --{name}: invalid int value: '{s}'"))
            })
        })
        .transpose()
}

fn run_operation(
    settings: &GlobalSettings,
    inv: &Invocation,
    stdout: &mut String,
) -> Result<(), CliError> {
    let op: &'static Operation = inv.operation;
    if let Some(kind @ (dp_skeleton::Kind::Input | dp_skeleton::Kind::YamlInput)) = inv.skeleton {
        stdout.push_str(&dp_skeleton::render(op, kind).unwrap_or_default());
        return Ok(());
    }
    if inv.cli_input.is_none() {
        let missing = missing_required(inv);
        if !missing.is_empty() {
            return Err(CliError::argument(format!(
                "the following arguments are required: {}",
                missing.join(", ")
            )));
        }
    }
    let max_items = parse_count("max-items", &inv.max_items)?;
    let page_size = parse_count("page-size", &inv.page_size)?;
    if settings.no_paginate
        && (max_items.is_some() || inv.starting_token.is_some() || page_size.is_some())
    {
        let mut given = Vec::new();
        if inv.starting_token.is_some() {
            given.push("--starting-token");
        }
        if max_items.is_some() {
            given.push("--max-items");
        }
        if page_size.is_some() {
            given.push("--page-size");
        }
        return Err(CliError::usage(format!(
            "Error during pagination: Cannot specify --no-paginate along with pagination arguments: {}",
            given.join(", ")
        )));
    }
    let mut input = params::build_input(inv)?;
    if let (Some(size), Some(p)) = (page_size, &op.paginator)
        && let Some(limit) = p.limit_key
    {
        input[limit] = Value::from(size);
    }
    let client = dp_wire::Client::new(wire_settings(settings))?;
    let format = output_format(settings, &client);
    let render_opts = render_options(&format, settings)?;

    if inv.skeleton == Some(dp_skeleton::Kind::Output) {
        let sample = customize::after_call(
            op.name,
            dp_skeleton::output_sample(op).unwrap_or(Value::Object(Default::default())),
        );
        stdout.push_str(&output::render(op.name, &sample, &render_opts)?);
        return Ok(());
    }
    let runtime = runtime()?;
    // dp-wire sends timestamps as epoch seconds and returns the output in the model's order, as the CLI prints it.
    let mut call = |input: &Value| -> Result<Value, CliError> {
        let output = runtime.block_on(client.call_json(op, input))?;
        Ok(customize::after_call(op.name, output))
    };

    // Setting the marker or limit option directly turns automatic pagination off, as in the CLI.
    let manual_paging = inv.values.iter().any(|(m, _)| {
        op.paginator
            .as_ref()
            .is_some_and(|p| m.name == p.input_token || Some(m.name) == p.limit_key)
    });
    let result = match &op.paginator {
        Some(p) if !settings.no_paginate && !manual_paging => {
            let (start_marker, skip) = inv
                .starting_token
                .as_deref()
                .map(paginate::decode_token)
                .unwrap_or((None, 0));
            let opts = paginate::PageOptions {
                max_items,
                start_marker,
                skip,
            };
            let (pages, resume) = paginate::paginate(op, p, &input, &opts, &mut call)?;
            stdout.push_str(&output::render_pages(
                op.name,
                p.result_key,
                &pages,
                resume.as_deref(),
                &render_opts,
            )?);
            return Ok(());
        }
        _ => call(&input)?,
    };
    stdout.push_str(&output::render(op.name, &result, &render_opts)?);
    Ok(())
}

fn run_create_default_roles(
    settings: &GlobalSettings,
    stdout: &mut String,
) -> Result<(), CliError> {
    let client = dp_wire::Client::new(wire_settings(settings))?;
    let format = output_format(settings, &client);
    let render_opts = render_options(&format, settings)?;
    let runtime = runtime()?;
    // The notice comes before anything can fail, as in the reference (which warns, then finds no region or
    // credentials on its first request). The blank line after it is the reference's warning framing.
    let _ = std::io::stderr()
        .write_all(format!("warning:{}\n", default_roles::DEPRECATION_NOTICE).as_bytes());
    let region = runtime.block_on(client.region())?;
    let mut iam = default_roles::WireIam {
        client: &client,
        runtime: &runtime,
    };
    let partition = dp_wire::endpoint::partition(&region).id;
    let result = default_roles::run(&mut iam, partition)?;
    stdout.push_str(&output::render("create_role", &result, &render_opts)?);
    Ok(())
}

/// The one runtime of a command: dp's calls are sequential, so a current-thread runtime is all it needs.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::other(e.to_string(), exit::OTHER))
}

pub(crate) fn wire_settings(s: &GlobalSettings) -> dp_wire::Settings {
    dp_wire::Settings {
        region: s.region.clone(),
        profile: s.profile.clone(),
        endpoint_url: s.endpoint_url.clone(),
        no_sign_request: s.no_sign_request,
        no_verify_ssl: s.no_verify_ssl,
        ca_bundle: s.ca_bundle.clone(),
        connect_timeout: s.connect_timeout,
        read_timeout: s.read_timeout,
        debug: s.debug,
    }
}

/// `--output`, then `AWS_DEFAULT_OUTPUT`, then the profile's `output`, then json.
fn output_format(s: &GlobalSettings, client: &dp_wire::Client) -> String {
    if let Some(o) = &s.output {
        return o.clone();
    }
    if let Ok(o) = std::env::var("AWS_DEFAULT_OUTPUT")
        && !o.is_empty()
    {
        return o;
    }
    client
        .profile_setting("output")
        .unwrap_or_else(|| "json".into())
}

/// Output options from the settings; tables use the terminal's width when stdout is one (80 otherwise).
pub(crate) fn render_options(
    format: &str,
    settings: &GlobalSettings,
) -> Result<output::RenderOptions, CliError> {
    let mut opts = output::RenderOptions::new(format, settings.query.as_deref(), color(settings))?;
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size_of(std::io::stdout()) {
        opts.terminal_width = usize::from(w);
    }
    Ok(opts)
}

fn color(s: &GlobalSettings) -> bool {
    use std::io::IsTerminal as _;
    match s.color.as_deref() {
        Some("on") => true,
        Some("off") => false,
        _ => std::io::stdout().is_terminal(),
    }
}
