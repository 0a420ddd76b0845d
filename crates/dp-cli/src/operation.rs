//! The generic path of every model operation, one stage after the other:
//! [`Invocation`] → checks of the command line ([`check`]) → input value ([`params::input_value`]) → validated
//! ([`params::validate`]) → one or more calls ([`Session::call`], [`paginate`]) → rendered ([`output`]).
//!
//! Each stage reads only what the one before produced; everything up to validation runs before credentials or the
//! network are touched, so bad input never sends a request.

use dp_model::Operation;
use serde_json::Value;

use crate::error::CliError;
use crate::invocation::Invocation;
use crate::session::Session;
use crate::settings::GlobalSettings;
use crate::{customize, output, paginate, params};

/// What the paging options asked for, once checked.
struct Paging {
    max_items: Option<usize>,
    page_size: Option<usize>,
}

/// Runs `inv` and appends what it prints to `stdout`.
pub fn run(
    settings: &GlobalSettings,
    inv: &Invocation,
    stdout: &mut String,
) -> Result<(), CliError> {
    let op: &'static Operation = inv.operation;
    if let Some(kind @ (dp_skeleton::Kind::Input | dp_skeleton::Kind::YamlInput)) = inv.skeleton {
        stdout.push_str(&dp_skeleton::render(op, kind).unwrap_or_default());
        return Ok(());
    }
    let paging = check(settings, inv)?;
    let mut input = params::input_value(inv)?;
    params::validate(inv, &input)?;
    if let (Some(size), Some(p)) = (paging.page_size, &op.paginator)
        && let Some(limit) = p.limit_key
    {
        input[limit] = Value::from(size);
    }

    let session = Session::open(settings)?;
    let render_opts = session.render_options(settings)?;
    if inv.skeleton == Some(dp_skeleton::Kind::Output) {
        let sample = customize::after_call(
            op.name,
            dp_skeleton::output_sample(op).unwrap_or(Value::Object(Default::default())),
        );
        stdout.push_str(&output::render(op.name, &sample, &render_opts)?);
        return Ok(());
    }
    let mut call = |input: &Value| -> Result<Value, CliError> {
        Ok(customize::after_call(op.name, session.call(op, input)?))
    };

    // Setting the marker or limit option directly turns automatic pagination off, as in the CLI.
    let manual_paging = inv.values.iter().any(|given| {
        let name = given.member.name;
        op.paginator
            .as_ref()
            .is_some_and(|p| name == p.input_token || Some(name) == p.limit_key)
    });
    match &op.paginator {
        Some(p) if !settings.no_paginate && !manual_paging => {
            let (start_marker, skip) = inv
                .starting_token
                .as_deref()
                .map(paginate::decode_token)
                .unwrap_or((None, 0));
            let opts = paginate::PageOptions {
                max_items: paging.max_items,
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
        }
        _ => {
            let result = call(&input)?;
            stdout.push_str(&output::render(op.name, &result, &render_opts)?);
        }
    }
    Ok(())
}

/// The command line's own rules, before any value is parsed: required options, and the paging options (numbers,
/// and not with `--no-paginate`).
fn check(settings: &GlobalSettings, inv: &Invocation) -> Result<Paging, CliError> {
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
    Ok(Paging {
        max_items,
        page_size,
    })
}

/// The required members given neither directly nor through the CLI's custom option that provides them.
fn missing_required(inv: &Invocation) -> Vec<String> {
    let op = inv.operation;
    op.input
        .map(|s| s.members())
        .unwrap_or_default()
        .iter()
        .filter(|m| m.required && !inv.values.iter().any(|g| g.member.name == m.name))
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
