//! `file://` and `fileb://` option values, read with dp-shorthand's paramfile reader (the one `@=` uses) and worded
//! as the CLI's `ParamError`. Used by `params` for member options and `--cli-input-json`, and by `customize` for
//! the definition-file options.

use crate::error::CliError;

/// An option value after the paramfile step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The value: as given, a `file://` file's text, or a `fileb://` file's bytes read as UTF-8.
    pub text: String,
    /// Whether the value came from `fileb://`: bytes, which the CLI hands on as bytes. Only numbers and JSON
    /// documents accept them there (Python's `int()`, `float()` and `json.loads` read bytes); a string or a
    /// structure member refuses them.
    pub binary: bool,
}

/// Reads a `file://` or `fileb://` value for the option `option` (`--task-id`); other values are returned
/// unchanged, and `http(s)://` is never fetched (v2). The file is read by dp-shorthand's paramfile reader, the one
/// that `@=` uses, so both expand `~` and `$VAR`, honour `AWS_CLI_FILE_ENCODING`, translate newlines and word
/// errors alike. A failure names the option, as the CLI's `ParamError` does
/// (`Error parsing parameter '--task-id': Unable to load paramfile …`).
pub fn load(option: &str, value: &str) -> Result<Loaded, CliError> {
    let Some(file) = dp_shorthand::FileRef::from_value(value) else {
        return Ok(Loaded {
            text: value.to_string(),
            binary: false,
        });
    };
    let contents = dp_shorthand::read_file(&file).map_err(|message| {
        CliError::usage(format!("Error parsing parameter '{option}': {message}"))
    })?;
    match contents {
        dp_shorthand::FileContents::Text(text) => Ok(Loaded {
            text,
            binary: false,
        }),
        // The model has no blob members; bytes that are UTF-8 are kept for the members that read bytes as text.
        dp_shorthand::FileContents::Bytes(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Loaded { text, binary: true }),
            Err(_) => Err(CliError::usage(format!(
                "Error parsing parameter '{option}': Unable to load paramfile {value}: the file is not UTF-8 text, \
                 and this API takes no binary values"
            ))),
        },
    }
}

/// The error for a `fileb://` value given to a member that takes text (the reference sends Python `bytes` there
/// and fails in validation, or crashes for a structure), worded as dp-shorthand words it for `@=fileb://`.
pub fn bytes_refused(option: &str, member: &str) -> CliError {
    CliError::usage(format!(
        "Error parsing parameter '{option}': parameter {member} takes text, but a fileb:// file gives bytes; use \
         file:// instead"
    ))
}
