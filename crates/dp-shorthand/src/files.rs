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

/// Reads the file a [`FileRef`] names: `file://` as text (`\r\n` and lone `\r` become `\n`, as in Python's
/// text mode) in the encoding `AWS_CLI_FILE_ENCODING` names (see [`decode`]; UTF-8 when it is unset, as the
/// CLI v2 does in a UTF-8 or C locale), `fileb://` as bytes. `~` and `$VAR` / `${VAR}` in the path are expanded first
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
        FileKind::Text => {
            let encoding = std::env::var("AWS_CLI_FILE_ENCODING")
                .ok()
                .filter(|e| !e.is_empty());
            match decode(bytes, encoding.as_deref().unwrap_or("utf-8")) {
                Ok(text) => Ok(FileContents::Text(universal_newlines(text))),
                Err(DecodeError::Malformed) => Err(format!(
                    "Unable to load paramfile ({path}), text contents could not be decoded.  If this is a binary \
                     file, please use the fileb:// prefix instead of the file:// prefix."
                )),
                Err(DecodeError::UnknownEncoding) => Err(format!(
                    "Unable to load paramfile {}: unknown encoding: {} (from AWS_CLI_FILE_ENCODING)",
                    file.reference,
                    encoding.unwrap_or_default()
                )),
            }
        }
    }
}

/// Why bytes could not be read as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not valid in the encoding.
    Malformed,
    /// dp knows no encoding of that name.
    UnknownEncoding,
}

/// Decodes `bytes` as Python's `open(path, encoding=name).read()` does (before newline translation), strictly: a
/// byte sequence that is not valid in the encoding is an error, never a replacement character.
///
/// Names are Python's codec names and aliases, in any case, with `-` or `_`: the Unicode ones (`utf-8`, `utf8`,
/// `utf-8-sig` which drops a leading byte-order mark, `utf-16`/`utf-32` which need one, as Python's stream
/// decoder does, and their `-le`/`-be` forms, which keep it as a character), `ascii`, `latin-1` (`iso-8859-1`, `l1`: every byte is its code point),
/// and every other encoding the WHATWG Encoding Standard names (`cp1252`, `iso-8859-15`, `shift_jis`, `euc-jp`,
/// `gbk`, `gb18030`, `big5`, `euc-kr`, `koi8-r`, …), decoded by `encoding_rs` (one difference: WHATWG's
/// windows-1252 reads the five bytes Python's `cp1252` leaves undefined as C1 control characters).
pub fn decode(bytes: Vec<u8>, name: &str) -> Result<String, DecodeError> {
    let name = name.trim().to_ascii_lowercase().replace('_', "-");
    let utf8 = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| DecodeError::Malformed);
    match name.as_str() {
        "utf-8" | "utf8" | "u8" | "utf" | "cp65001" => utf8(bytes),
        "utf-8-sig" | "utf8-sig" => {
            let body = bytes
                .strip_prefix(b"\xEF\xBB\xBF")
                .unwrap_or(&bytes)
                .to_vec();
            utf8(body)
        }
        "ascii" | "us-ascii" | "646" | "us" => {
            if bytes.is_ascii() {
                utf8(bytes)
            } else {
                Err(DecodeError::Malformed)
            }
        }
        "latin-1" | "latin1" | "latin" | "l1" | "iso-8859-1" | "iso8859-1" | "8859" | "cp819"
        | "iso-ir-100" => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        "utf-16" | "utf16" => match bytes.get(..2) {
            Some([0xFE, 0xFF]) => utf16(&bytes[2..], true),
            Some([0xFF, 0xFE]) => utf16(&bytes[2..], false),
            // Python's stream decoder (the one `open()` uses) wants the mark; an empty file is empty.
            None if bytes.is_empty() => Ok(String::new()),
            _ => Err(DecodeError::Malformed),
        },
        "utf-16-le" | "utf-16le" => utf16(&bytes, false),
        "utf-16-be" | "utf-16be" => utf16(&bytes, true),
        "utf-32" | "utf32" => match bytes.get(..4) {
            Some([0, 0, 0xFE, 0xFF]) => utf32(&bytes[4..], true),
            Some([0xFF, 0xFE, 0, 0]) => utf32(&bytes[4..], false),
            None if bytes.is_empty() => Ok(String::new()),
            _ => Err(DecodeError::Malformed),
        },
        "utf-32-le" | "utf-32le" => utf32(&bytes, false),
        "utf-32-be" | "utf-32be" => utf32(&bytes, true),
        // The WHATWG labels that name another encoding than Python's codec of that name are handled above
        // (latin-1 and ascii are windows-1252 there; utf-16 is little endian without a mark).
        label => {
            let encoding = encoding_rs::Encoding::for_label_no_replacement(label.as_bytes())
                .ok_or(DecodeError::UnknownEncoding)?;
            encoding
                .decode_without_bom_handling_and_without_replacement(&bytes)
                .map(|text| text.into_owned())
                .ok_or(DecodeError::Malformed)
        }
    }
}

fn utf16(bytes: &[u8], big_endian: bool) -> Result<String, DecodeError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(DecodeError::Malformed);
    }
    let units = bytes.chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| DecodeError::Malformed)
}

fn utf32(bytes: &[u8], big_endian: bool) -> Result<String, DecodeError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(DecodeError::Malformed);
    }
    bytes
        .chunks_exact(4)
        .map(|c| {
            let array = [c[0], c[1], c[2], c[3]];
            let unit = if big_endian {
                u32::from_be_bytes(array)
            } else {
                u32::from_le_bytes(array)
            };
            char::from_u32(unit).ok_or(DecodeError::Malformed)
        })
        .collect()
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
