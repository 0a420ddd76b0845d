//! Data formats: how the records of a data node's files are written and read (`CSV`, `TSV`, `Custom`, `RegEx`, and
//! the quoted CSV of `RedshiftCopyActivity`'s `CSV` option), with `gzip` compression.
//!
//! The service's own rules are kept: a column separator (`,` for CSV, a tab for TSV, `columnSeparator` for
//! Custom), a record separator (a newline, or `recordSeparator`), no quoting on output, and a backslash that escapes
//! the separators, a newline (`\n`), a carriage return (`\r`), a tab (`\t`) and itself; a NULL is written `\N`.
//! Input also accepts RFC 4180 double-quoted fields. Parsing is push-based ([`Parser::push`] takes whatever bytes
//! arrived) so a file of any size streams through a bounded buffer; this module does no IO.
//!
//! `RegEx` reads each line (up to the record separator, a newline) as one record: the whole line must match
//! `inputRegEx`, and its capture groups are the values (a group that took no part in the match, or whose text is
//! the NULL marker `\N`, is NULL). A line that does not match is an error naming its line. Written, a record is
//! `outputFormat` with `%1$s`, `%2$s`… (or `%s` in turn) replaced by the values as they are, unescaped; without
//! `outputFormat` the values are joined by single spaces.

use std::io::Write as _;

use dp_model::types::PipelineObject;

use crate::activity::{Failure, string_field};

/// A record: its values (`None` for NULL) and the line of the file where it starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line it starts on.
    pub line: u64,
    /// The values.
    pub values: Vec<Option<String>>,
}

/// How values are separated and escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// The column separator.
    pub column: String,
    /// The record separator.
    pub record: String,
    /// The escape character (`\` unless `escapeChar` says otherwise).
    pub escape: char,
    /// How NULL is written and recognized (`\N`).
    pub null: String,
    /// Fields in double quotes are read RFC 4180's way (`""` inside is one quote).
    pub quotes: bool,
    /// Lines skipped at the start of each file (`IGNOREHEADER`).
    pub skip_lines: u64,
    /// `RegEx`: lines matched by a pattern, written through a template; the separators above other than
    /// `record`, the escape and the quotes do not apply.
    pub regex: Option<RegexFormat>,
}

/// The `RegEx` data format's `inputRegEx` (compiled to match whole lines) and `outputFormat`.
#[derive(Debug, Clone)]
pub struct RegexFormat {
    /// The data format object's id, for messages.
    pub object_id: String,
    /// `inputRegEx` as written.
    pub input: Option<String>,
    /// `inputRegEx` anchored at both ends.
    pattern: Option<regex::Regex>,
    /// `outputFormat`, parsed.
    output: Option<Vec<Piece>>,
}

impl PartialEq for RegexFormat {
    fn eq(&self, other: &RegexFormat) -> bool {
        self.object_id == other.object_id
            && self.input == other.input
            && self.output == other.output
    }
}

impl Eq for RegexFormat {}

/// A piece of `outputFormat`: text, or the value at an index (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(usize),
}

impl RegexFormat {
    /// The format of a `RegEx` object: `inputRegEx` must compile and have a capture group, `outputFormat` may only
    /// use `%N$s`, `%s`, `%%` and `%n` (Java's formatter syntax for strings), at most as many values as the
    /// pattern captures.
    pub fn new(
        object_id: &str,
        input: Option<&str>,
        output: Option<&str>,
    ) -> Result<RegexFormat, String> {
        let pattern = match input {
            None => None,
            Some(text) => {
                let compiled = regex::Regex::new(&format!("^(?:{text})$")).map_err(|e| {
                    format!("the inputRegEx of the RegEx data format {object_id} is not a valid regular expression: {e}")
                })?;
                if compiled.captures_len() < 2 {
                    return Err(format!(
                        "the inputRegEx of the RegEx data format {object_id} has no capture group: each group \
                         (…) is one value of a record"
                    ));
                }
                Some(compiled)
            }
        };
        let output = match output {
            None => None,
            Some(text) => {
                let pieces = parse_output_format(text).map_err(|e| {
                    format!("the outputFormat of the RegEx data format {object_id}: {e}")
                })?;
                if let Some(p) = &pattern {
                    let groups = p.captures_len() - 1;
                    if let Some(max) = pieces
                        .iter()
                        .filter_map(|p| match p {
                            Piece::Value(i) => Some(*i + 1),
                            Piece::Text(_) => None,
                        })
                        .max()
                        .filter(|&m| m > groups)
                    {
                        return Err(format!(
                            "the outputFormat of the RegEx data format {object_id} uses value {max}, and its \
                             inputRegEx captures {groups}"
                        ));
                    }
                }
                Some(pieces)
            }
        };
        Ok(RegexFormat {
            object_id: object_id.to_string(),
            input: input.map(str::to_string),
            pattern,
            output,
        })
    }

    /// How many values a record read with this format has.
    pub fn groups(&self) -> Option<usize> {
        self.pattern.as_ref().map(|p| p.captures_len() - 1)
    }

    fn write(&self, out: &mut Vec<u8>, values: &[Option<&str>], null: &str) {
        let value = |i: usize| values.get(i).copied().flatten().unwrap_or(null);
        match &self.output {
            Some(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                        Piece::Value(i) => out.extend_from_slice(value(*i).as_bytes()),
                    }
                }
            }
            None => {
                for i in 0..values.len() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(value(i).as_bytes());
                }
            }
        }
    }
}

/// Parses a Java formatter template limited to strings: `%N$s`, `%s` (the next value), `%%` and `%n`.
fn parse_output_format(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut next = 0usize;
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        literal.push_str(&rest[..at]);
        let spec = &rest[at + 1..];
        let digits = spec.len() - spec.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (value, used) = if spec.starts_with('%') {
            literal.push('%');
            (None, 1)
        } else if spec.starts_with('n') {
            literal.push('\n');
            (None, 1)
        } else if spec.starts_with('s') {
            next += 1;
            (Some(next - 1), 1)
        } else if digits > 0 && spec[digits..].starts_with("$s") {
            let n: usize = spec[..digits]
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("%{}$s: values are numbered from 1", &spec[..digits]))?;
            (Some(n - 1), digits + 2)
        } else {
            let shown: String = spec.chars().take(6).collect();
            return Err(format!(
                "unsupported conversion at \"%{shown}\": expected %N$s (value N), %s, %% or %n"
            ));
        };
        if let Some(i) = value {
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Value(i));
        }
        rest = &spec[used..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

impl Default for Format {
    fn default() -> Format {
        Format::csv()
    }
}

impl Format {
    /// The service's CSV.
    pub fn csv() -> Format {
        Format {
            column: ",".into(),
            record: "\n".into(),
            escape: '\\',
            null: "\\N".into(),
            quotes: true,
            skip_lines: 0,
            regex: None,
        }
    }

    /// TSV.
    pub fn tsv() -> Format {
        Format {
            column: "\t".into(),
            ..Format::csv()
        }
    }

    /// The format of a data format object (`CSV`, `TSV`, `Custom`, `RegEx`); other types are an error naming them.
    pub fn from_object(object: &PipelineObject) -> Result<Format, Failure> {
        let kind = string_field(object, "type").unwrap_or_default();
        let mut format = match kind {
            "CSV" => Format::csv(),
            "TSV" => Format::tsv(),
            "Custom" => {
                let column = string_field(object, "columnSeparator")
                    .map(unescape_separator)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        Failure::new(
                            "InvalidTaskObject",
                            format!(
                                "the Custom data format {} has no columnSeparator",
                                object.id
                            ),
                        )
                    })?;
                Format {
                    column,
                    record: string_field(object, "recordSeparator")
                        .map(unescape_separator)
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "\n".into()),
                    quotes: false,
                    ..Format::csv()
                }
            }
            "RegEx" => {
                let regex = RegexFormat::new(
                    &object.id,
                    string_field(object, "inputRegEx"),
                    string_field(object, "outputFormat"),
                )
                .map_err(|e| Failure::new("InvalidTaskObject", e))?;
                Format {
                    quotes: false,
                    regex: Some(regex),
                    ..Format::csv()
                }
            }
            other => {
                return Err(Failure::new(
                    "UnsupportedDataFormat",
                    format!(
                        "the data format {} is a {other:?}: dp-task-runner reads and writes CSV, TSV, Custom and \
                         RegEx",
                        object.id
                    ),
                ));
            }
        };
        if let Some(escape) = string_field(object, "escapeChar").and_then(|e| e.chars().next()) {
            format.escape = escape;
        }
        Ok(format)
    }

    /// Appends `values` as one record to `out`.
    pub fn write(&self, out: &mut Vec<u8>, values: &[Option<&str>]) {
        if let Some(regex) = &self.regex {
            regex.write(out, values, &self.null);
            out.extend_from_slice(self.record.as_bytes());
            return;
        }
        let special = special_bytes(self);
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(self.column.as_bytes());
            }
            match value {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(v) => self.write_value(out, v, &special),
            }
        }
        out.extend_from_slice(self.record.as_bytes());
    }

    fn write_value(&self, out: &mut Vec<u8>, value: &str, special: &[bool; 256]) {
        if !value
            .bytes()
            .any(|b| special[b as usize] || b == b'\r' || b == b'\t')
        {
            out.extend_from_slice(value.as_bytes());
            return;
        }
        let mut buf = [0u8; 4];
        let mut rest = value;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with(self.column.as_str()) || rest.starts_with(self.record.as_str()) {
                // A separator inside a value: escaped character by character.
                let sep = if rest.starts_with(self.column.as_str()) {
                    &self.column
                } else {
                    &self.record
                };
                for c in sep.chars() {
                    self.write_escaped_char(out, c);
                }
                rest = &rest[sep.len()..];
                continue;
            }
            let leading_quote = c == '"' && self.quotes && rest.len() == value.len();
            if c == self.escape || c == '\n' || c == '\r' || c == '\t' || leading_quote {
                self.write_escaped_char(out, c);
            } else {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            rest = &rest[c.len_utf8()..];
        }
    }

    fn write_escaped_char(&self, out: &mut Vec<u8>, c: char) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(self.escape.encode_utf8(&mut buf).as_bytes());
        let shown = match c {
            '\n' => 'n',
            '\r' => 'r',
            '\t' => 't',
            other => other,
        };
        out.extend_from_slice(shown.encode_utf8(&mut buf).as_bytes());
    }
}

fn unescape_separator(text: &str) -> String {
    match text {
        "\\t" => "\t".into(),
        "\\n" => "\n".into(),
        "\\r\\n" => "\r\n".into(),
        "\\u0001" | "\\001" => "\u{1}".into(),
        other => other.to_string(),
    }
}

/// A record that cannot be read: the line it starts on and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line (1-based).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// A push parser of one file's records.
#[derive(Debug)]
pub struct Parser {
    format: Format,
    buffer: Vec<u8>,
    /// The line the buffer's first byte is on.
    line: u64,
    skipped: u64,
    /// Bytes that may begin a separator, an escape, a quote or a newline; every other byte is copied as it is.
    special: [bool; 256],
}

impl Parser {
    /// A parser for one file.
    pub fn new(format: Format) -> Parser {
        let special = special_bytes(&format);
        Parser {
            format,
            buffer: Vec::new(),
            line: 1,
            skipped: 0,
            special,
        }
    }

    /// Takes `bytes` and returns the records they complete (`last`: no more bytes follow, so a final record
    /// without a record separator counts).
    pub fn push(&mut self, bytes: &[u8], last: bool) -> Result<Vec<Record>, ParseError> {
        if self.format.regex.is_some() {
            return self.push_lines(bytes, last);
        }
        self.buffer.extend_from_slice(bytes);
        let mut records = Vec::new();
        let mut start = 0;
        while let Some((values, end, lines)) = self.parse_one(start, last)? {
            let line = self.line;
            self.line += lines;
            start = end;
            if self.skipped < self.format.skip_lines {
                self.skipped += 1;
                continue;
            }
            if let Some(values) = values {
                records.push(Record { line, values });
            }
        }
        self.buffer.drain(..start);
        Ok(records)
    }

    /// [`Parser::push`] for `RegEx`: each line matched against the pattern.
    fn push_lines(&mut self, bytes: &[u8], last: bool) -> Result<Vec<Record>, ParseError> {
        let Parser {
            format,
            buffer,
            line,
            skipped,
            ..
        } = self;
        let regex = format.regex.as_ref().expect("a RegEx format");
        buffer.extend_from_slice(bytes);
        let separator = format.record.as_bytes();
        let mut records = Vec::new();
        let mut start = 0;
        let result = loop {
            let rest = &buffer[start..];
            let (text, next) = match find(rest, separator) {
                Some(n) => (&rest[..n], start + n + separator.len()),
                None if last && !rest.is_empty() => (rest, buffer.len()),
                None => break Ok(()),
            };
            let at = *line;
            *line += newlines(text) + newlines(separator);
            start = next;
            if *skipped < format.skip_lines {
                *skipped += 1;
                continue;
            }
            let Some(pattern) = &regex.pattern else {
                break Err(ParseError {
                    line: at,
                    message: format!(
                        "the RegEx data format {} has no inputRegEx, so its files cannot be read",
                        regex.object_id
                    ),
                });
            };
            let text = if separator == b"\n" {
                text.strip_suffix(b"\r").unwrap_or(text)
            } else {
                text
            };
            let Ok(text) = std::str::from_utf8(text) else {
                break Err(ParseError {
                    line: at,
                    message: "the line is not UTF-8".into(),
                });
            };
            let Some(captures) = pattern.captures(text) else {
                let shown: String = text.chars().take(120).collect();
                let cut = if shown.len() < text.len() { "…" } else { "" };
                break Err(ParseError {
                    line: at,
                    message: format!(
                        "the line does not match the inputRegEx of the RegEx data format {}: expected a whole \
                         line matching {:?} ({} values), got {shown:?}{cut}",
                        regex.object_id,
                        regex.input.as_deref().unwrap_or_default(),
                        captures_of(pattern)
                    ),
                });
            };
            let values = (1..captures.len())
                .map(|i| {
                    captures
                        .get(i)
                        .map(|m| m.as_str())
                        .filter(|v| *v != format.null)
                        .map(str::to_string)
                })
                .collect();
            records.push(Record { line: at, values });
        };
        buffer.drain(..start);
        result.map(|()| records)
    }

    /// Parses the record at `start`: `None` when it is not complete yet; else its values (`None` for an empty
    /// line at the end), the offset after it and how many newlines it spans.
    #[allow(clippy::type_complexity)]
    fn parse_one(
        &self,
        start: usize,
        last: bool,
    ) -> Result<Option<(Option<Vec<Option<String>>>, usize, u64)>, ParseError> {
        let b = &self.buffer[start..];
        if b.is_empty() {
            return Ok(None);
        }
        let column = self.format.column.as_bytes();
        let record = self.format.record.as_bytes();
        let mut escape = [0u8; 4];
        let escape = self
            .format
            .escape
            .encode_utf8(&mut escape)
            .as_bytes()
            .to_vec();
        let mut values: Vec<Option<String>> = Vec::new();
        let mut value: Vec<u8> = Vec::new();
        let mut raw_field_start = 0usize;
        let mut escaped_any = false;
        let mut i = 0;
        let mut lines = 0u64;
        let finish_value = |value: &mut Vec<u8>,
                            raw: &[u8],
                            escaped_any: bool,
                            values: &mut Vec<Option<String>>,
                            line: u64|
         -> Result<(), ParseError> {
            let text = String::from_utf8(std::mem::take(value)).map_err(|_| ParseError {
                line,
                message: "the value is not UTF-8".into(),
            })?;
            if raw == self.format.null.as_bytes() && !(escaped_any && self.format.null != "\\N") {
                values.push(None);
            } else {
                values.push(Some(text));
            }
            Ok(())
        };
        loop {
            if i >= b.len() {
                if !last {
                    return Ok(None);
                }
                // The last record has no record separator.
                if i == 0 {
                    return Ok(None);
                }
                let raw = &b[raw_field_start..i];
                finish_value(&mut value, raw, escaped_any, &mut values, self.line)?;
                return Ok(Some((Some(values), start + i, lines)));
            }
            if self.format.quotes && i == raw_field_start && b[i] == b'"' {
                // A quoted field: up to the closing quote; `""` is one quote.
                let mut j = i + 1;
                loop {
                    if j >= b.len() {
                        if last {
                            return Err(ParseError {
                                line: self.line,
                                message: "a quoted value is not closed".into(),
                            });
                        }
                        return Ok(None);
                    }
                    if b[j] == b'"' {
                        if b.get(j + 1) == Some(&b'"') {
                            value.push(b'"');
                            j += 2;
                            continue;
                        }
                        if j + 1 >= b.len() && !last {
                            return Ok(None);
                        }
                        j += 1;
                        break;
                    }
                    if b[j] == b'\n' {
                        lines += 1;
                    }
                    value.push(b[j]);
                    j += 1;
                }
                let after = &b[j..];
                if !(after.is_empty() || after.starts_with(column) || after.starts_with(record)) {
                    return Err(ParseError {
                        line: self.line,
                        message: format!(
                            "unexpected text after the closing quote of value {}",
                            values.len() + 1
                        ),
                    });
                }
                escaped_any = true;
                i = j;
                continue;
            }
            if b[i..].starts_with(&escape) {
                let Some(&next) = b.get(i + escape.len()) else {
                    if last {
                        value.extend_from_slice(&escape);
                        i += escape.len();
                        continue;
                    }
                    return Ok(None);
                };
                // `\N` alone is NULL: recognized from the raw bytes when the field ends.
                if next == b'N' {
                    value.push(b'N');
                    i += escape.len() + 1;
                    continue;
                }
                let decoded = match next {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    other => other,
                };
                if next == b'\n' {
                    lines += 1;
                }
                value.push(decoded);
                escaped_any = true;
                i += escape.len() + 1;
                continue;
            }
            if b[i..].starts_with(record) {
                let raw = &b[raw_field_start..i];
                let empty_line = values.is_empty() && i == 0;
                lines += record.iter().filter(|&&c| c == b'\n').count() as u64;
                if empty_line && last && start + i + record.len() == self.buffer.len() {
                    return Ok(Some((None, start + i + record.len(), lines)));
                }
                finish_value(&mut value, raw, escaped_any, &mut values, self.line)?;
                return Ok(Some((Some(values), start + i + record.len(), lines)));
            }
            if b[i..].starts_with(column) {
                let raw = &b[raw_field_start..i];
                finish_value(&mut value, raw, escaped_any, &mut values, self.line)?;
                escaped_any = false;
                i += column.len();
                raw_field_start = i;
                continue;
            }
            if b[i] == b'\n' {
                lines += 1;
            }
            // A run of ordinary bytes is copied at once.
            let run = b[i + 1..]
                .iter()
                .position(|&c| self.special[c as usize])
                .map_or(b.len(), |n| i + 1 + n);
            value.extend_from_slice(&b[i..run]);
            i = run;
        }
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [one] => haystack.iter().position(|b| b == one),
        _ => haystack.windows(needle.len()).position(|w| w == needle),
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn captures_of(pattern: &regex::Regex) -> usize {
    pattern.captures_len() - 1
}

/// The bytes that may begin something other than plain text in `format`.
fn special_bytes(format: &Format) -> [bool; 256] {
    let mut special = [false; 256];
    let mut escape = [0u8; 4];
    for first in [
        format.column.as_bytes().first(),
        format.record.as_bytes().first(),
        format.escape.encode_utf8(&mut escape).as_bytes().first(),
        Some(&b'\n'),
        Some(&b'"'),
    ]
    .into_iter()
    .flatten()
    {
        special[*first as usize] = true;
    }
    special
}

/// PostgreSQL's `COPY ... FROM STDIN` text format: tab-separated, `\N` for NULL, backslash escapes.
pub fn write_copy_text(out: &mut Vec<u8>, values: &[Option<&str>]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match value {
            None => out.extend_from_slice(b"\\N"),
            Some(v)
                if !v
                    .bytes()
                    .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) =>
            {
                out.extend_from_slice(v.as_bytes())
            }
            Some(v) => {
                for &b in v.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        other => out.push(other),
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

/// A gzip stream written into memory; the compressed bytes are taken out as they accumulate.
pub struct Gzip(flate2::write::GzEncoder<Vec<u8>>);

impl Default for Gzip {
    fn default() -> Gzip {
        Gzip(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ))
    }
}

impl Gzip {
    /// Compresses `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        self.0
            .write_all(bytes)
            .expect("writing into memory does not fail");
    }

    /// The compressed bytes so far (taken out).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.0.get_mut())
    }

    /// Ends the stream and returns the last compressed bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0.finish().expect("writing into memory does not fail")
    }
}

/// A gzip decoder fed with compressed bytes as they arrive (members one after another are read as one stream).
pub struct Gunzip(flate2::write::MultiGzDecoder<Vec<u8>>);

impl Default for Gunzip {
    fn default() -> Gunzip {
        Gunzip(flate2::write::MultiGzDecoder::new(Vec::new()))
    }
}

impl Gunzip {
    /// Decompresses `bytes`, returning what came out.
    pub fn push(&mut self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        self.0.write_all(bytes)?;
        Ok(std::mem::take(self.0.get_mut()))
    }

    /// Checks the stream ended cleanly, returning the last bytes.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        self.0.try_finish()?;
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(format: &Format, rows: &[Vec<Option<&str>>]) {
        let mut out = Vec::new();
        for row in rows {
            format.write(&mut out, row);
        }
        // Fed a byte at a time, then all at once: the same records.
        for chunk in [1, out.len().max(1)] {
            let mut parser = Parser::new(format.clone());
            let mut got = Vec::new();
            for piece in out.chunks(chunk) {
                got.extend(parser.push(piece, false).unwrap());
            }
            got.extend(parser.push(&[], true).unwrap());
            let values: Vec<Vec<Option<&str>>> = got
                .iter()
                .map(|r| r.values.iter().map(|v| v.as_deref()).collect())
                .collect();
            assert_eq!(
                values,
                rows,
                "{format:?} chunk {chunk}: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[test]
    fn values_survive_a_round_trip() {
        let rows = vec![
            vec![Some("1"), Some("plain"), None],
            vec![Some("2"), Some("a,b\tc"), Some("")],
            vec![Some("3"), Some("line\nbreak\r\n"), Some("back\\slash")],
            vec![Some("4"), Some("\"quoted\""), Some("ünïcödé ✓")],
            vec![Some("5"), Some("\\N"), Some("N")],
        ];
        round_trip(&Format::csv(), &rows);
        round_trip(&Format::tsv(), &rows);
        let custom = Format {
            column: "|".into(),
            record: ";;\n".into(),
            quotes: false,
            ..Format::csv()
        };
        round_trip(&custom, &rows);
        round_trip(&Format::csv(), &[]);
    }

    type Values = Vec<Option<String>>;

    #[test]
    fn reading_quotes_lines_and_errors() {
        let parse = |format: Format, text: &str| -> Result<Vec<(u64, Values)>, ParseError> {
            let mut parser = Parser::new(format);
            let mut got = parser.push(text.as_bytes(), false)?;
            got.extend(parser.push(&[], true)?);
            Ok(got.into_iter().map(|r| (r.line, r.values)).collect())
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            parse(Format::csv(), "a,\"b,\"\"c\"\"\nd\"\ne,f").unwrap(),
            vec![
                (1, vec![s("a"), s("b,\"c\"\nd")]),
                (3, vec![s("e"), s("f")])
            ]
        );
        assert_eq!(
            parse(
                Format {
                    skip_lines: 1,
                    ..Format::csv()
                },
                "id,name\n1,x\n"
            )
            .unwrap(),
            vec![(2, vec![s("1"), s("x")])]
        );
        let e = parse(Format::csv(), "1,x\n2,\"open\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("not closed"), "{e:?}");
        // Quoted "\N" is the text \N, not NULL.
        assert_eq!(
            parse(Format::csv(), "\"\\N\",\\N\n").unwrap(),
            vec![(1, vec![s("\\N"), None])]
        );
    }

    fn regex(input: Option<&str>, output: Option<&str>) -> Format {
        Format {
            quotes: false,
            regex: Some(RegexFormat::new("Log", input, output).unwrap()),
            ..Format::csv()
        }
    }

    #[test]
    fn regex_lines_become_records() {
        let format = regex(
            Some(r#"(\S+) - (-|\d+) \[([^\]]*)\] "([^"]*)"(?: (\d+))?"#),
            None,
        );
        let text = "h1 - 200 [7/Dec/2026] \"GET / HTTP/1.1\" 512\r\nh2 - - [x] \"\\N\"\n";
        let s = |v: &str| Some(v.to_string());
        for chunk in [1, 5, text.len()] {
            let mut parser = Parser::new(format.clone());
            let mut got = Vec::new();
            for piece in text.as_bytes().chunks(chunk) {
                got.extend(parser.push(piece, false).unwrap());
            }
            got.extend(parser.push(&[], true).unwrap());
            assert_eq!(
                got.iter()
                    .map(|r| (r.line, r.values.clone()))
                    .collect::<Vec<_>>(),
                vec![
                    (
                        1,
                        vec![
                            s("h1"),
                            s("200"),
                            s("7/Dec/2026"),
                            s("GET / HTTP/1.1"),
                            s("512")
                        ]
                    ),
                    // A group that took no part is NULL, and so is a value that is the NULL marker.
                    (2, vec![s("h2"), s("-"), s("x"), None, None]),
                ],
                "chunk {chunk}"
            );
        }
        // Line 3 is empty and does not match: an error naming it and what was expected.
        let mut parser = Parser::new(format.clone());
        let e = parser
            .push(format!("{text}\nh3 - 1 [] \"\"\n").as_bytes(), true)
            .unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        assert!(
            e.message.starts_with(
                "the line does not match the inputRegEx of the RegEx data format Log: expected a whole line \
                 matching"
            ) && e.message.ends_with("(5 values), got \"\""),
            "{e:?}"
        );
        // Without the empty line, the last line (no newline at the end) counts; a header is skipped.
        let mut parser = Parser::new(Format {
            skip_lines: 1,
            ..format.clone()
        });
        let mut got = parser
            .push(b"header\nh3 - 1 [] \"\" 7\nh4 - 2 [] \"\"", false)
            .unwrap();
        got.extend(parser.push(&[], true).unwrap());
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(got[1].values, vec![s("h4"), s("2"), s(""), s(""), None]);
        // A partial match is not a match: the pattern covers the whole line.
        let mut parser = Parser::new(regex(Some(r"(\d+)"), None));
        let e = parser.push(b"12\n12x\n", false).unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn regex_patterns_and_templates_are_checked() {
        let bad = RegexFormat::new("Log", Some("(unclosed"), None).unwrap_err();
        assert!(
            bad.starts_with(
                "the inputRegEx of the RegEx data format Log is not a valid regular expression:"
            ),
            "{bad}"
        );
        let none = RegexFormat::new("Log", Some("a+"), None).unwrap_err();
        assert!(none.contains("has no capture group"), "{none}");
        let wide = RegexFormat::new("Log", Some("(a)(b)"), Some("%3$s")).unwrap_err();
        assert!(
            wide.ends_with("uses value 3, and its inputRegEx captures 2"),
            "{wide}"
        );
        let conversion = RegexFormat::new("Log", Some("(a)"), Some("%1$d")).unwrap_err();
        assert!(
            conversion.contains("unsupported conversion at \"%1$d\""),
            "{conversion}"
        );
        // No inputRegEx: it can be written, not read.
        let mut parser = Parser::new(regex(None, Some("%1$s")));
        let e = parser.push(b"x\n", true).unwrap_err();
        assert!(e.message.contains("has no inputRegEx"), "{e:?}");
    }

    #[test]
    fn regex_records_are_written_through_the_template() {
        let mut out = Vec::new();
        let format = regex(Some("(.*) (.*) (.*)"), Some("%2$s|%1$s %% %s,%s%n%3$s"));
        format.write(&mut out, &[Some("a"), None, Some("c,d")]);
        assert_eq!(String::from_utf8(out).unwrap(), "\\N|a % a,\\N\nc,d\n");
        let mut out = Vec::new();
        regex(Some("(.*) (.*)"), None).write(&mut out, &[Some("x"), Some("y z")]);
        assert_eq!(out, b"x y z\n");
    }

    #[test]
    fn gzip_streams_both_ways() {
        let mut gz = Gzip::default();
        let mut compressed = Vec::new();
        for i in 0..1000 {
            gz.write(format!("{i},row\n").as_bytes());
            compressed.extend(gz.take());
        }
        compressed.extend(gz.finish());
        let mut gunzip = Gunzip::default();
        let mut plain = Vec::new();
        for piece in compressed.chunks(7) {
            plain.extend(gunzip.push(piece).unwrap());
        }
        plain.extend(gunzip.finish().unwrap());
        assert!(plain.starts_with(b"0,row\n1,row\n") && plain.ends_with(b"999,row\n"));
    }
}
