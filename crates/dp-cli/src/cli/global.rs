//! The global options (accepted before or after the command) and their reading into [`GlobalSettings`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches};

use crate::settings::{GlobalSettings, OUTPUT_FORMATS};

/// The clap definitions of the global options (accepted before or after the command).
pub(super) fn args() -> Vec<Arg> {
    let flag = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .action(ArgAction::SetTrue)
            .global(true)
            .help(help)
    };
    let value = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .num_args(1)
            .action(ArgAction::Set)
            .global(true)
            .help(help)
    };
    vec![
        flag(
            "debug",
            "Log the request and response flow to stderr (secrets redacted).",
        ),
        value(
            "endpoint-url",
            "Send requests to this URL instead of the region's endpoint.",
        )
        .value_name("URL"),
        flag(
            "no-verify-ssl",
            "Do not verify TLS certificates (prints a warning).",
        ),
        flag(
            "no-paginate",
            "Make one request; do not follow pagination markers.",
        ),
        value("output", "Output format.")
            .value_parser(clap::builder::PossibleValuesParser::new(OUTPUT_FORMATS))
            .value_name("FORMAT"),
        value("query", "A JMESPath expression applied to the result.").value_name("JMESPATH"),
        value(
            "profile",
            "Use this profile of the shared config and credentials files.",
        )
        .value_name("NAME"),
        value("region", "The region to send requests to.").value_name("REGION"),
        flag("version", "Print dp's version and exit."),
        value(
            "color",
            "Colour table output: on, off or auto (only on a terminal).",
        )
        .value_parser(["on", "off", "auto"])
        .value_name("WHEN"),
        flag(
            "no-sign-request",
            "Send requests unsigned; credentials are not loaded.",
        ),
        value(
            "ca-bundle",
            "A PEM file of CA certificates to verify TLS with.",
        )
        .value_name("PATH"),
        value(
            "cli-read-timeout",
            "Seconds to wait for a response; 0 waits forever.",
        )
        .value_name("SECONDS"),
        value(
            "cli-connect-timeout",
            "Seconds to wait for a connection; 0 waits forever.",
        )
        .value_name("SECONDS"),
        value(
            "cli-binary-format",
            "Accepted for compatibility with CLI v2; this API has no binary values.",
        )
        .value_parser(["base64", "raw-in-base64-out"])
        .value_name("FORMAT"),
        flag(
            "no-cli-pager",
            "Accepted for compatibility with CLI v2; dp never pages.",
        ),
    ]
}

fn seconds(matches: &ArgMatches, name: &str) -> Result<Option<Duration>, String> {
    let Some(v) = matches.get_one::<String>(name) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(n) => Ok(Some(Duration::from_secs(n))),
        Err(_) => Err(format!("argument --{name}: invalid int value: '{v}'")),
    }
}

/// Reads the global options out of parsed arguments.
pub(super) fn settings(m: &ArgMatches) -> Result<GlobalSettings, String> {
    let s = |name: &str| m.get_one::<String>(name).cloned();
    Ok(GlobalSettings {
        debug: m.get_flag("debug"),
        endpoint_url: s("endpoint-url"),
        no_verify_ssl: m.get_flag("no-verify-ssl"),
        no_paginate: m.get_flag("no-paginate"),
        output: s("output"),
        query: s("query"),
        profile: s("profile"),
        region: s("region"),
        color: s("color"),
        no_sign_request: m.get_flag("no-sign-request"),
        ca_bundle: s("ca-bundle").map(PathBuf::from),
        read_timeout: seconds(m, "cli-read-timeout")?,
        connect_timeout: seconds(m, "cli-connect-timeout")?,
    })
}
