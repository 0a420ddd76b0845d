//! The CLI's error type: a message, an exit code from CLI v2's documented table, and how to frame it.

use std::fmt;

/// Exit codes (CLI v2's table; dp never uses 1 or 2).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Invalid command line or input; nothing was sent.
    pub const USAGE: i32 = 252;
    /// Invalid configuration or credentials.
    pub const CONFIG: i32 = 253;
    /// The service answered with an error.
    pub const SERVICE: i32 = 254;
    /// Anything else (connection, timeout, unreadable response).
    pub const OTHER: i32 = 255;
    /// Interrupted.
    pub const INTERRUPTED: i32 = 130;
}

/// An error that ends the command.
#[derive(Debug)]
pub struct CliError {
    /// The message, without framing.
    pub message: String,
    /// The exit code.
    pub code: i32,
    /// Print the usage block before the message (argument errors).
    pub with_usage: bool,
}

impl CliError {
    /// Invalid input (252).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: exit::USAGE,
            with_usage: false,
        }
    }
    /// An argument-parsing error (252), printed after the usage block.
    pub fn argument(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: exit::USAGE,
            with_usage: true,
        }
    }
    /// Anything else, with the given code.
    pub fn other(message: impl Into<String>, code: i32) -> CliError {
        CliError {
            message: message.into(),
            code,
            with_usage: false,
        }
    }

    /// The text for stderr: the CLI frames generic errors as a blank line, the message, a newline. An interrupted
    /// command prints nothing there (CLI v2 ends the line on stdout instead; see `dp_cli::run`).
    pub fn render(&self) -> String {
        if self.code == exit::INTERRUPTED {
            String::new()
        } else if self.with_usage {
            format!("{USAGE}dp: error: {}\n", self.message)
        } else {
            format!("\n{}\n", self.message)
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `--output`/`--query` settings that do not compile are input errors (252), in the reference's wording.
impl From<crate::output::OptionsError> for CliError {
    fn from(e: crate::output::OptionsError) -> CliError {
        CliError::usage(e.to_string())
    }
}

/// A failing `--query` or a result the formatter cannot lay out: the reference reports these as 252 too.
impl From<crate::output::RenderError> for CliError {
    fn from(e: crate::output::RenderError) -> CliError {
        CliError::usage(e.to_string())
    }
}

impl From<crate::output::query::QueryError> for CliError {
    fn from(e: crate::output::query::QueryError) -> CliError {
        CliError::usage(e.to_string())
    }
}

impl From<dp_wire::Error> for CliError {
    fn from(e: dp_wire::Error) -> CliError {
        CliError::other(e.to_string(), exit_code(e.kind()))
    }
}

/// The exit code of a failed request, after CLI v2's table: 253 for configuration, credentials and region, 254 for
/// service errors, 130 for a call interrupted by Ctrl-C (128 + SIGINT, the shells' convention), 255 for everything
/// else.
pub fn exit_code(kind: &dp_wire::ErrorKind) -> i32 {
    use dp_wire::ErrorKind;
    match kind {
        ErrorKind::Config | ErrorKind::Credentials | ErrorKind::Region => exit::CONFIG,
        ErrorKind::Service => exit::SERVICE,
        ErrorKind::Interrupted => exit::INTERRUPTED,
        // Transport and invalid responses, and any kind a later dp-wire adds.
        _ => exit::OTHER,
    }
}

/// The usage block printed before argument errors.
pub const USAGE: &str = "usage: dp [options] <command> [parameters]\nTo see help text, you can run:\n\n  dp help\n  dp <command> help\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use dp_wire::ErrorKind;

    #[test]
    fn request_failures_follow_the_v2_table() {
        for (kind, code) in [
            (ErrorKind::Config, 253),
            (ErrorKind::Credentials, 253),
            (ErrorKind::Region, 253),
            (ErrorKind::Service, 254),
            (ErrorKind::Transport, 255),
            (ErrorKind::InvalidResponse, 255),
        ] {
            assert_eq!(exit_code(&kind), code, "{kind:?}");
        }
    }
}
