//! Data formats: how the records of a data node's files are written and read (`CSV`, `TSV`, `Custom`, and the
//! quoted CSV of `RedshiftCopyActivity`'s `CSV` option), with `gzip` compression.
//!
//! The service's own rules are kept: a column separator (`,` for CSV, a tab for TSV, `columnSeparator` for
//! Custom), a record separator (a newline, or `recordSeparator`), no quoting on output, and a backslash that escapes
//! the separators, a newline (`\n`), a carriage return (`\r`), a tab (`\t`) and itself; a NULL is written `\N`.
//! Input also accepts RFC 4180 double-quoted fields. Parsing is push-based ([`Parser::push`] takes whatever bytes
//! arrived) so a file of any size streams through a bounded buffer; this module does no IO.

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
        }
    }

    /// TSV.
    pub fn tsv() -> Format {
        Format {
            column: "\t".into(),
            ..Format::csv()
        }
    }

    /// The format of a data format object (`CSV`, `TSV`, `Custom`); other types are an error naming them.
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
            other => {
                return Err(Failure::new(
                    "UnsupportedDataFormat",
                    format!(
                        "the data format {} is a {other:?}: dp-task-runner reads and writes CSV, TSV and Custom",
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
