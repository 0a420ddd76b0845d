//! `file://` and `fileb://` option values, read with dp-shorthand's paramfile reader (the one `@=` uses) and worded
//! as the CLI's `ParamError`. Used by `params` for member options and `--cli-input-json`, and by `customize` for
//! the definition-file options.

use crate::error::CliError;

/// Reads a `file://` or `fileb://` value for the option `option` (`--task-id`); other values are returned
/// unchanged, and `http(s)://` is never fetched (v2). The file is read by dp-shorthand's paramfile reader, the one
/// that `@=` uses, so both expand `~` and `$VAR`, translate newlines and word errors alike. A failure names the
/// option, as the CLI's `ParamError` does (`Error parsing parameter '--task-id': Unable to load paramfile …`).
pub fn paramfile_for(option: &str, value: &str) -> Result<String, CliError> {
    let Some(file) = dp_shorthand::FileRef::from_value(value) else {
        return Ok(value.to_string());
    };
    let contents = dp_shorthand::read_file(&file).map_err(|message| {
        CliError::usage(format!("Error parsing parameter '{option}': {message}"))
    })?;
    match contents {
        dp_shorthand::FileContents::Text(text) => Ok(text),
        // The model has no blob members; bytes that are text are accepted as text.
        dp_shorthand::FileContents::Bytes(bytes) => String::from_utf8(bytes).map_err(|_| {
            CliError::usage(format!(
                "Error parsing parameter '{option}': Unable to load paramfile {value}: the file is not UTF-8 text, \
                 and this API takes no binary values"
            ))
        }),
    }
}
