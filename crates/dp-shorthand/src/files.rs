//! The one paramfile reader: `file://` and `fileb://` values, read as `awscli.paramfile.get_file` reads them.
//!
//! Two callers share it, so that a file reads the same wherever it is named: `@=` values inside shorthand
//! ([`load_file`], passed to [`parse_with_files`](crate::parse_with_files)) and whole option values and
//! `--cli-input-json` (dp-cli's `params`, through [`read_file`]). This is the crate's only IO, and it runs only when
//! a caller asks for it. It must never fetch `http(s)://` (the reference's `@=` does not, and v2's options do not).

use crate::{FileKind, FileRef, Value};

/// What a paramfile holds: text for `file://`, bytes for `fileb://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContents {
    /// `file://`: UTF-8 text with newlines translated as Python's text mode does.
    Text(String),
    /// `fileb://`: the bytes as stored.
    Bytes(Vec<u8>),
}

/// Reads the file a [`FileRef`] names: `file://` as UTF-8 text (`\r\n` and lone `\r` become `\n`, as in Python's
/// text mode), `fileb://` as bytes. `~` and `$VAR` / `${VAR}` in the path are expanded first
/// (`os.path.expanduser`, then `os.path.expandvars`).
///
/// Errors carry the reference's wording, with the expanded path where Python shows it, for example
/// `Unable to load paramfile file://nonexist.txt: [Errno 2] No such file or directory: 'nonexist.txt'`.
pub fn read_file(file: &FileRef<'_>) -> Result<FileContents, String> {
    let path = expand_vars(&expand_user(file.path));
    let bytes = std::fs::read(&path).map_err(|e| {
        let text = e.to_string();
        let reason = text.split(" (os error").next().unwrap_or(&text);
        match e.raw_os_error() {
            Some(code) => format!(
                "Unable to load paramfile {}: [Errno {code}] {reason}: {}",
                file.reference,
                dp_model::pyrepr::string_repr(&path)
            ),
            None => format!("Unable to load paramfile {}: {reason}", file.reference),
        }
    })?;
    match file.kind {
        FileKind::Binary => Ok(FileContents::Bytes(bytes)),
        FileKind::Text => match String::from_utf8(bytes) {
            Ok(text) => Ok(FileContents::Text(universal_newlines(text))),
            Err(_) => Err(format!(
                "Unable to load paramfile ({path}), text contents could not be decoded.  If this is a binary file, \
                 please use the fileb:// prefix instead of the file:// prefix."
            )),
        },
    }
}

/// [`read_file`] as a shorthand value: the loader for [`parse_with_files`](crate::parse_with_files).
pub fn load_file(file: &FileRef<'_>) -> Result<Value<'static>, String> {
    Ok(match read_file(file)? {
        FileContents::Text(text) => Value::from(text),
        FileContents::Bytes(bytes) => Value::Bytes(bytes),
    })
}

/// Python's text mode turns `\r\n` and lone `\r` into `\n`.
fn universal_newlines(text: String) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    }
}

/// `os.path.expanduser` for `~` and `~/…` (other users' homes are left alone).
fn expand_user(path: &str) -> String {
    if (path == "~" || path.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        return format!("{}{}", home.to_string_lossy(), &path[1..]);
    }
    path.to_owned()
}

/// `os.path.expandvars`: `$NAME` and `${NAME}` are replaced when the variable is set, left as written otherwise.
fn expand_vars(path: &str) -> String {
    if !path.contains('$') {
        return path.to_owned();
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, written_len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let len = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..len], len)
        };
        match std::env::var(name) {
            Ok(value) if !name.is_empty() => out.push_str(&value),
            _ => out.push_str(&rest[at..at + 1 + written_len]),
        }
        rest = &rest[at + 1 + written_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{expand_vars, universal_newlines};

    #[test]
    fn expands_set_variables_only() {
        // HOME is set wherever these tests run.
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_vars("$HOME/x"), format!("{home}/x"));
        assert_eq!(expand_vars("${HOME}/x"), format!("{home}/x"));
        assert_eq!(
            expand_vars("$DP_SHORTHAND_SURELY_UNSET/x"),
            "$DP_SHORTHAND_SURELY_UNSET/x"
        );
        assert_eq!(expand_vars("a$"), "a$");
        assert_eq!(expand_vars("${unclosed"), "${unclosed");
    }

    #[test]
    fn translates_newlines() {
        assert_eq!(universal_newlines("a\r\nb\rc\n".into()), "a\nb\nc\n");
    }
}
