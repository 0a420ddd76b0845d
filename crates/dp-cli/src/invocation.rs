//! The plain data of a parsed command line: the operation, the raw values given for its members and for the CLI's
//! custom options, and the paging and skeleton options.
//!
//! An [`Invocation`] is what `cli` produces from argv and what everything after it reads (`params`, `customize`,
//! and the run in `operation`). It holds no clap types and does no parsing, and this module depends on nothing else in
//! the crate, so the path runs one way: argv → `cli` → [`Invocation`] → `params` (input value, validated) → call
//! → `output`.

use dp_model::{Member, Operation};

/// A wire name in kebab case, as CLI option names spell it (`pipelineId` → `pipeline-id`).
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A value as given on the command line, before any parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// A scalar or structure option: one token.
    One(String),
    /// A list option: every token after the option.
    Many(Vec<String>),
    /// A boolean flag pair.
    Flag(bool),
}

/// One input member given on the command line.
#[derive(Debug, Clone)]
pub struct GivenValue {
    /// The member.
    pub member: &'static Member,
    /// The option it was given as, without the dashes (`task-id`, or a renamed one such as `objects-query`);
    /// messages about the value name it.
    pub option: &'static str,
    /// The tokens as given.
    pub raw: RawValue,
}

/// One command to run, as plain data.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The operation.
    pub operation: &'static Operation,
    /// The members given, in model order.
    pub values: Vec<GivenValue>,
    /// `--cli-input-json` or `--cli-input-yaml`: (option name, raw value).
    pub cli_input: Option<(&'static str, String)>,
    /// `--generate-cli-skeleton` and its kind.
    pub skeleton: Option<dp_skeleton::Kind>,
    /// `--starting-token`.
    pub starting_token: Option<String>,
    /// `--max-items`.
    pub max_items: Option<String>,
    /// `--page-size`.
    pub page_size: Option<String>,
    /// The CLI's custom options of this operation (see `customize`), as given.
    pub custom: Vec<(&'static str, RawValue)>,
}
