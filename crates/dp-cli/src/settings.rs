//! The global options, turned into one settings struct in one place.
//!
//! Commands receive [`GlobalSettings`], never clap types (`cli` fills it in). Defaults follow the AWS CLI; where v1 and v2 differ, v2.

use std::path::PathBuf;
use std::time::Duration;

/// Output formats of `--output`.
pub const OUTPUT_FORMATS: &[&str] = &["json", "text", "table", "yaml", "yaml-stream", "off"];

/// What the global options asked for.
#[derive(Debug, Clone, Default)]
pub struct GlobalSettings {
    /// `--debug`.
    pub debug: bool,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--no-verify-ssl`.
    pub no_verify_ssl: bool,
    /// `--no-paginate`.
    pub no_paginate: bool,
    /// `--output`, if given on the command line.
    pub output: Option<String>,
    /// `--query`.
    pub query: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--color on|off|auto`.
    pub color: Option<String>,
    /// `--no-sign-request`.
    pub no_sign_request: bool,
    /// `--ca-bundle`.
    pub ca_bundle: Option<PathBuf>,
    /// `--cli-read-timeout` (0 means none).
    pub read_timeout: Option<Duration>,
    /// `--cli-connect-timeout` (0 means none).
    pub connect_timeout: Option<Duration>,
}
