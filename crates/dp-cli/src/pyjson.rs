//! JSON read as the reference reads it: CPython 3.11's `json.loads`, with its acceptance, its error messages and
//! its error positions.
//!
//! The reference parses every piece of JSON a user gives (`--fields '[…]'`, `--cli-input-json`, definition files)
//! with Python's `json` module and prints that module's message, so scripts and users see
//! `Expecting ',' delimiter: line 3 column 5 (char 40)` rather than serde_json's wording and its byte-based
//! columns. This module follows the C scanner of CPython's `_json` module step by step (which character each
//! error points at, the number grammar with its backtracking, the surrogate-pair lookahead) and builds a
//! [`serde_json::Value`] as it goes. Positions are counted in code points, lines only at `\n`, as Python does.
//!
//! A few documents that Python reads hold values that a `Value` cannot carry and that no Data Pipeline
//! parameter takes: `NaN`, `Infinity`, `-Infinity`, floats beyond `f64`, integers beyond 64 bits, lone
//! surrogates (`"\ud800"`), and nesting deeper than [`MAX_DEPTH`]. They give an [`ErrorKind::Unsupported`]
//! error in the same `message: line L column C (char P)` form, reported only when the document has no syntax
//! error, so a syntax error is always reported as Python reports it.
//!
//! It must stay pure: no IO, no knowledge of options or of how a caller words the error around it.

use std::fmt;

use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and objects read (serde_json's limit, which dp had before). CPython gives up
/// only at its recursion limit (about 990 levels in the reference, depending on where `json.loads` is called
/// from), but no Data Pipeline parameter nests more than a few levels, and the scanner recurses.
pub const MAX_DEPTH: usize = 128;

/// Whether an error is one Python raises too, or a document Python reads but dp does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `json.JSONDecodeError`: the message and position are Python's.
    Python,
    /// Valid for Python, but holding a value dp cannot carry (see the module documentation); dp's own message.
    Unsupported,
}

/// A JSON error at a position, displayed as Python's `JSONDecodeError` is:
/// `Expecting value: line 1 column 5 (char 4)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    kind: ErrorKind,
    message: String,
    pos: usize,
    lineno: usize,
    colno: usize,
}

impl JsonError {
    fn new(kind: ErrorKind, message: impl Into<String>, doc: &[char], pos: usize) -> Self {
        let before = &doc[..pos.min(doc.len())];
        let lineno = before.iter().filter(|&&c| c == '\n').count() + 1;
        // Python: pos - doc.rfind('\n', 0, pos), where rfind gives -1 when there is no newline.
        let colno = match before.iter().rposition(|&c| c == '\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        JsonError {
            kind,
            message: message.into(),
            pos,
            lineno,
            colno,
        }
    }

    /// Python's error or dp's own.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without its position (`Expecting value`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The position in code points from the start of the text (Python's `pos`).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The 1-based line (Python's `lineno`).
    pub fn line(&self) -> usize {
        self.lineno
    }

    /// The 1-based column in code points (Python's `colno`).
    pub fn column(&self) -> usize {
        self.colno
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: line {} column {} (char {})",
            self.message, self.lineno, self.colno, self.pos
        )
    }
}

impl std::error::Error for JsonError {}

/// Reads `text` as Python's `json.loads(text)` does (for a `str`): the value, or the error Python raises, or an
/// [`ErrorKind::Unsupported`] error for a valid document dp cannot carry. Duplicate keys keep their first
/// position and their last value, as a Python `dict` does.
pub fn loads(text: &str) -> Result<Value, JsonError> {
    let chars: Vec<char> = text.chars().collect();
    let mut scanner = Scanner {
        s: &chars,
        depth: 0,
        unsupported: None,
    };
    let value = scanner.decode()?;
    match scanner.unsupported {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

/// Reads the UTF-8 text of a `fileb://` file as Python's `json.loads(bytes)` does: a UTF-8 byte order mark is
/// dropped (Python decodes with `utf-8-sig` then), and positions count from after it.
pub fn loads_bytes(text: &str) -> Result<Value, JsonError> {
    loads(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Python's `repr()` of a `bytes` value holding `bytes` (`b'{"a": 1}\\n'`), as the reference echoes JSON it
/// was given as bytes.
pub fn bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = format!("b{quote}");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if b as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// Why a scan stopped: Python's `StopIteration(idx)` (no value starts at `idx`, which the caller turns into
/// `Expecting value`), or a finished error.
enum Stop {
    NoValue(usize),
    Error(JsonError),
}

impl From<JsonError> for Stop {
    fn from(e: JsonError) -> Self {
        Stop::Error(e)
    }
}

struct Scanner<'a> {
    s: &'a [char],
    depth: usize,
    /// The first value Python reads but dp cannot carry; reported only if the whole document is valid.
    unsupported: Option<JsonError>,
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl Scanner<'_> {
    fn error(&self, message: &str, pos: usize) -> JsonError {
        JsonError::new(ErrorKind::Python, message, self.s, pos)
    }

    fn unsupported(&mut self, message: String, pos: usize) {
        if self.unsupported.is_none() {
            self.unsupported = Some(JsonError::new(ErrorKind::Unsupported, message, self.s, pos));
        }
    }

    fn at(&self, idx: usize) -> Option<char> {
        self.s.get(idx).copied()
    }

    fn skip_ws(&self, mut idx: usize) -> usize {
        while self.at(idx).is_some_and(is_ws) {
            idx += 1;
        }
        idx
    }

    fn matches(&self, idx: usize, word: &str) -> bool {
        (idx..)
            .zip(word.chars())
            .all(|(i, c)| self.at(i) == Some(c))
    }

    /// `json.decoder.JSONDecoder.decode`.
    fn decode(&mut self) -> Result<Value, JsonError> {
        if self.at(0) == Some('\u{feff}') {
            return Err(self.error("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
        }
        let start = self.skip_ws(0);
        let (value, end) = match self.scan_once(start) {
            Ok(v) => v,
            Err(Stop::NoValue(idx)) => return Err(self.error("Expecting value", idx)),
            Err(Stop::Error(e)) => return Err(e),
        };
        let end = self.skip_ws(end);
        if end != self.s.len() {
            return Err(self.error("Extra data", end));
        }
        Ok(value)
    }

    /// `scan_once_unicode`: the value starting at `idx` and the index after it.
    fn scan_once(&mut self, idx: usize) -> Result<(Value, usize), Stop> {
        let Some(c) = self.at(idx) else {
            return Err(Stop::NoValue(idx));
        };
        match c {
            '"' => {
                let (s, end) = self.scanstring(idx + 1)?;
                Ok((Value::String(s), end))
            }
            '{' | '[' => {
                if self.depth >= MAX_DEPTH {
                    let what = if c == '{' { "objects" } else { "arrays" };
                    return Err(Stop::Error(JsonError::new(
                        ErrorKind::Unsupported,
                        format!(
                            "arrays and objects nested more than {MAX_DEPTH} deep are not supported (this opens {what} level {})",
                            self.depth + 1
                        ),
                        self.s,
                        idx,
                    )));
                }
                self.depth += 1;
                let result = if c == '{' {
                    self.parse_object(idx + 1)
                } else {
                    self.parse_array(idx + 1)
                };
                self.depth -= 1;
                result
            }
            'n' if self.matches(idx, "null") => Ok((Value::Null, idx + 4)),
            't' if self.matches(idx, "true") => Ok((Value::Bool(true), idx + 4)),
            'f' if self.matches(idx, "false") => Ok((Value::Bool(false), idx + 5)),
            'N' if self.matches(idx, "NaN") => {
                self.non_finite("NaN", idx);
                Ok((Value::Null, idx + 3))
            }
            'I' if self.matches(idx, "Infinity") => {
                self.non_finite("Infinity", idx);
                Ok((Value::Null, idx + 8))
            }
            '-' if self.matches(idx, "-Infinity") => {
                self.non_finite("-Infinity", idx);
                Ok((Value::Null, idx + 9))
            }
            _ => self.match_number(idx),
        }
    }

    fn non_finite(&mut self, literal: &str, idx: usize) {
        self.unsupported(
            format!(
                "{literal} is not supported (no Data Pipeline parameter takes a non-finite number)"
            ),
            idx,
        );
    }

    /// `_match_number_unicode`, with its backtracking: `1.` and `1e` end the number before the `.` or `e`.
    fn match_number(&mut self, start: usize) -> Result<(Value, usize), Stop> {
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        let len = self.s.len();
        let mut idx = start;
        if self.at(idx) == Some('-') {
            idx += 1;
            if idx >= len {
                return Err(Stop::NoValue(start));
            }
        }
        match self.at(idx) {
            Some('1'..='9') => {
                idx += 1;
                while digit(self.at(idx)) {
                    idx += 1;
                }
            }
            Some('0') => idx += 1,
            _ => return Err(Stop::NoValue(start)),
        }
        let mut is_float = false;
        // A fraction needs a digit after the point.
        if idx + 1 < len && self.at(idx) == Some('.') && digit(self.at(idx + 1)) {
            is_float = true;
            idx += 2;
            while digit(self.at(idx)) {
                idx += 1;
            }
        }
        // An exponent needs a digit, else the number ends before the `e`; a sign is taken only if a character
        // follows it.
        if idx + 1 < len && matches!(self.at(idx), Some('e' | 'E')) {
            let e_start = idx;
            idx += 1;
            if idx + 1 < len && matches!(self.at(idx), Some('-' | '+')) {
                idx += 1;
            }
            while digit(self.at(idx)) {
                idx += 1;
            }
            if digit(self.at(idx - 1)) {
                is_float = true;
            } else {
                idx = e_start;
            }
        }
        let literal: String = self.s[start..idx].iter().collect();
        let value = if is_float {
            match literal.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) if n.as_f64().is_some_and(f64::is_finite) => Value::Number(n),
                _ => {
                    self.unsupported(
                        format!("{literal} is not supported (it is beyond a 64-bit float)"),
                        start,
                    );
                    Value::Null
                }
            }
        } else if let Ok(i) = literal.parse::<i64>() {
            Value::from(i)
        } else if let Ok(u) = literal.parse::<u64>() {
            Value::from(u)
        } else {
            self.unsupported(
                format!("{literal} is not supported (it is beyond a 64-bit integer)"),
                start,
            );
            Value::Null
        };
        Ok((value, idx))
    }

    /// `scanstring_unicode`: the string whose opening quote is at `end - 1`, and the index after its closing
    /// quote.
    fn scanstring(&mut self, mut end: usize) -> Result<(String, usize), JsonError> {
        let begin = end - 1;
        let len = self.s.len();
        let mut out = String::new();
        loop {
            // Up to the closing quote or the next escape; a raw control character is an error where it is.
            let mut next = end;
            let mut found = None;
            while next < len {
                let c = self.s[next];
                if c == '"' || c == '\\' {
                    found = Some(c);
                    break;
                }
                if (c as u32) <= 0x1f {
                    return Err(self.error("Invalid control character at", next));
                }
                next += 1;
            }
            let Some(c) = found else {
                return Err(self.error("Unterminated string starting at", begin));
            };
            out.extend(&self.s[end..next]);
            next += 1;
            if c == '"' {
                return Ok((out, next));
            }
            if next == len {
                return Err(self.error("Unterminated string starting at", begin));
            }
            let c = self.s[next];
            if c != 'u' {
                end = next + 1;
                out.push(match c {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    _ => return Err(self.error("Invalid \\escape", end - 2)),
                });
                continue;
            }
            // `\uXXXX`: four hex digits, which must be followed by at least one character.
            let escape_at = next - 1;
            next += 1;
            end = next + 4;
            if end >= len {
                return Err(self.error("Invalid \\uXXXX escape", next - 1));
            }
            let Some(mut code) = self.hex4(next) else {
                return Err(self.error("Invalid \\uXXXX escape", end - 5));
            };
            // A high surrogate takes a following `\uXXXX` low surrogate, if there is room for it and one more
            // character; otherwise the scan goes on after the first escape.
            if (0xd800..0xdc00).contains(&code)
                && end + 6 < len
                && self.s[end] == '\\'
                && self.s[end + 1] == 'u'
            {
                let Some(low) = self.hex4(end + 2) else {
                    return Err(self.error("Invalid \\uXXXX escape", end + 1));
                };
                if (0xdc00..0xe000).contains(&low) {
                    code = 0x10000 + (((code - 0xd800) << 10) | (low - 0xdc00));
                    end += 6;
                }
            }
            match char::from_u32(code) {
                Some(ch) => out.push(ch),
                None => {
                    self.unsupported(
                        format!(
                            "the lone surrogate \\u{code:04x} is not supported (it is not a Unicode character)"
                        ),
                        escape_at,
                    );
                    out.push('\u{fffd}');
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut code = 0;
        for i in at..at + 4 {
            code = (code << 4) | self.at(i)?.to_digit(16)?;
        }
        Some(code)
    }

    /// `_parse_object_unicode`, after the `{` at `idx - 1`.
    fn parse_object(&mut self, idx: usize) -> Result<(Value, usize), Stop> {
        let mut map = Map::new();
        let mut idx = self.skip_ws(idx);
        if self.at(idx) == Some('}') {
            return Ok((Value::Object(map), idx + 1));
        }
        loop {
            if self.at(idx) != Some('"') {
                return Err(self
                    .error("Expecting property name enclosed in double quotes", idx)
                    .into());
            }
            let (key, next) = self.scanstring(idx + 1)?;
            idx = self.skip_ws(next);
            if self.at(idx) != Some(':') {
                return Err(self.error("Expecting ':' delimiter", idx).into());
            }
            idx = self.skip_ws(idx + 1);
            let (value, next) = self.scan_once(idx)?;
            // A Python dict keeps a repeated key where it first appeared, with the last value.
            map.insert(key, value);
            idx = self.skip_ws(next);
            match self.at(idx) {
                Some('}') => return Ok((Value::Object(map), idx + 1)),
                Some(',') => idx = self.skip_ws(idx + 1),
                _ => return Err(self.error("Expecting ',' delimiter", idx).into()),
            }
        }
    }

    /// `_parse_array_unicode`, after the `[` at `idx - 1`.
    fn parse_array(&mut self, idx: usize) -> Result<(Value, usize), Stop> {
        let mut items = Vec::new();
        let mut idx = self.skip_ws(idx);
        if self.at(idx) == Some(']') {
            return Ok((Value::Array(items), idx + 1));
        }
        loop {
            let (value, next) = self.scan_once(idx)?;
            items.push(value);
            idx = self.skip_ws(next);
            match self.at(idx) {
                Some(']') => return Ok((Value::Array(items), idx + 1)),
                Some(',') => idx = self.skip_ws(idx + 1),
                _ => return Err(self.error("Expecting ',' delimiter", idx).into()),
            }
        }
    }
}
