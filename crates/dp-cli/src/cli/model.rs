//! The subcommands of the model's operations, built from the model: one generic subcommand per operation.
//!
//! Nothing here is written per operation. Each input member of an operation becomes an option named as the AWS
//! CLI names it (kebab case, plus the CLI's two renames, which live in `customize`); lists take zero or more values,
//! booleans are `--x`/`--no-x` pairs, a repeated option replaces its earlier value. The result is an
//! [`Invocation`] (module `invocation`): plain data, no clap types, which the rest of the crate works from.

use clap::{Arg, ArgAction, ArgMatches, Command};
use dp_model::{Member, Operation, ShapeKind};

use crate::customize::option_name;
use crate::invocation::{GivenValue, Invocation, RawValue};

fn member_help(member: &Member) -> String {
    let mut help = dp_skeleton::describe_shape(member.shape);
    if member.required {
        help.insert_str(0, "[required] ");
    }
    help
}

/// The input members an operation's subcommand has options for, each with its option name (computed here once for
/// the command tree and for reading it back; members that a custom option replaces have none).
fn member_options(op: &'static Operation) -> impl Iterator<Item = (&'static Member, &'static str)> {
    op.input
        .map(|input| input.members())
        .unwrap_or_default()
        .iter()
        .filter(move |member| !crate::customize::replaces(op.name, member.name))
        .map(move |member| (member, option_name(op, member)))
}

/// The subcommand of one operation.
pub(super) fn operation_command(op: &'static Operation) -> Command {
    let mut cmd = Command::new(op.cli_name).about(format!("Calls the {} operation.", op.name));
    for (member, name) in member_options(op) {
        match member.shape.kind {
            ShapeKind::Boolean => {
                let no = format!("no-{name}");
                cmd = cmd
                    .arg(
                        Arg::new(name)
                            .long(name)
                            .action(ArgAction::SetTrue)
                            .overrides_with(no.clone())
                            .help(member_help(member)),
                    )
                    .arg(
                        Arg::new(no.clone())
                            .long(no)
                            .action(ArgAction::SetTrue)
                            .overrides_with(name)
                            .help(format!("Sets {} to false.", member.name)),
                    );
            }
            ShapeKind::List(_) => {
                cmd = cmd.arg(
                    Arg::new(name)
                        .long(name)
                        .num_args(0..)
                        .action(ArgAction::Set)
                        .value_name("VALUE")
                        .allow_hyphen_values(false)
                        .help(member_help(member)),
                );
            }
            _ => {
                cmd = cmd.arg(
                    Arg::new(name)
                        .long(name)
                        .num_args(1)
                        .action(ArgAction::Set)
                        .value_name("VALUE")
                        .help(member_help(member)),
                );
            }
        }
    }
    for custom in crate::customize::options(op.name) {
        let arg = Arg::new(custom.name)
            .long(custom.name)
            .value_name("VALUE")
            .help(custom.help);
        cmd = cmd.arg(if custom.many {
            arg.num_args(1..).action(ArgAction::Set)
        } else {
            arg.num_args(1)
        });
    }
    cmd = cmd
        .arg(Arg::new("cli-input-json").long("cli-input-json").num_args(1).value_name("JSON").help("Read the input from JSON (inline or file://); command-line options win per top-level key."))
        .arg(Arg::new("cli-input-yaml").long("cli-input-yaml").num_args(1).value_name("YAML").help("Read the input from YAML (inline or file://)."))
        .arg(
            Arg::new("generate-cli-skeleton")
                .long("generate-cli-skeleton")
                .num_args(0..=1)
                .default_missing_value("input")
                .value_parser(["input", "output", "yaml-input"])
                .help("Print a skeleton of the input (input, yaml-input) or sample output (output) and exit."),
        );
    if let Some(p) = &op.paginator {
        cmd = cmd
            .arg(
                Arg::new("starting-token")
                    .long("starting-token")
                    .num_args(1)
                    .help("Continue from a NextToken that an earlier --max-items output printed."),
            )
            .arg(
                Arg::new("max-items")
                    .long("max-items")
                    .num_args(1)
                    .help("Print at most this many items in all (prints a NextToken to continue)."),
            );
        if p.limit_key.is_some() {
            cmd = cmd.arg(
                Arg::new("page-size")
                    .long("page-size")
                    .num_args(1)
                    .help("Ask the service for pages of this many items."),
            );
        }
    }
    cmd
}

/// Reads the invocation out of parsed arguments.
pub(super) fn invocation(op: &'static Operation, m: &ArgMatches) -> Invocation {
    let mut values = Vec::new();
    for (member, name) in member_options(op) {
        let raw = match member.shape.kind {
            ShapeKind::Boolean => {
                if m.get_flag(name) {
                    Some(RawValue::Flag(true))
                } else if m.get_flag(&format!("no-{name}")) {
                    Some(RawValue::Flag(false))
                } else {
                    None
                }
            }
            ShapeKind::List(_) => {
                if m.contains_id(name)
                    && m.value_source(name) == Some(clap::parser::ValueSource::CommandLine)
                {
                    Some(RawValue::Many(
                        m.get_many::<String>(name)
                            .map(|v| v.cloned().collect())
                            .unwrap_or_default(),
                    ))
                } else {
                    None
                }
            }
            _ => m.get_one::<String>(name).cloned().map(RawValue::One),
        };
        if let Some(raw) = raw {
            values.push(GivenValue {
                member,
                option: name,
                raw,
            });
        }
    }
    let cli_input = m
        .get_one::<String>("cli-input-json")
        .map(|v| ("cli-input-json", v.clone()))
        .or_else(|| {
            m.get_one::<String>("cli-input-yaml")
                .map(|v| ("cli-input-yaml", v.clone()))
        });
    let get = |id: &str| {
        if op.paginator.is_some() && m.try_contains_id(id).unwrap_or(false) {
            m.get_one::<String>(id).cloned()
        } else {
            None
        }
    };
    let mut custom = Vec::new();
    for option in crate::customize::options(op.name) {
        if option.many {
            if let Some(v) = m.get_many::<String>(option.name) {
                custom.push((option.name, RawValue::Many(v.cloned().collect())));
            }
        } else if let Some(v) = m.get_one::<String>(option.name) {
            custom.push((option.name, RawValue::One(v.clone())));
        }
    }
    Invocation {
        custom,
        operation: op,
        values,
        cli_input,
        skeleton: m
            .get_one::<String>("generate-cli-skeleton")
            .and_then(|k| dp_skeleton::Kind::parse(k)),
        starting_token: get("starting-token"),
        max_items: get("max-items"),
        page_size: get("page-size"),
    }
}
