//! The shorthand grammar, written with nom, reproducing `awscli.shorthand.ShorthandParser` decision for decision.
//!
//! The reference parser is a hand-written recursive descent over regular expressions, and some of its behaviour
//! only follows from how it is written: after a failed list element it searches *backwards in the text* for the
//! nearest `,` (which may sit inside a quoted string or be the comma of a `\,` escape), the quoted-string regex
//! backtracks to the last `\'` when the closing quote is missing, and the "resolve files" flag of `@=` is one
//! mutable flag that nested hash keys overwrite. This module copies all of that, because the differential test
//! holds it to the installed CLI on every input. Positions are byte offsets internally and become code-point
//! offsets only when an error is built.
//!
//! nom supplies the frame (`IResult`, the error type and its recoverable/fatal split, the small combinators); the
//! value scanners are written by hand because the reference's regular expressions backtrack in ways no combinator
//! reproduces, and because byte-table scanning is what makes the parser fast.
//!
//! This module must not read files itself: `@=` values go through the caller's loader, if any.

use std::borrow::Cow;

use nom::error::{ErrorKind as NomErrorKind, ParseError};
use nom::{IResult, Parser as _};

use crate::error::{Error, ErrorKind};
use crate::{FileLoader, FileRef, Value};

/// What the parser found where it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    Char(char),
    Eof,
    Nothing,
}

/// A failure inside the parser. `Syntax` is recoverable (list backtracking catches it); `Duplicate` and `File` are
/// raised as nom failures, which nothing catches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail<'a> {
    Syntax {
        expected: &'static str,
        received: Received,
        rest: &'a str,
    },
    Duplicate {
        key: String,
        byte: usize,
    },
    File {
        message: String,
        rest: &'a str,
    },
}

impl<'a> ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(input: &'a str, _kind: NomErrorKind) -> Self {
        Fail::Syntax {
            expected: "<none>",
            received: received_at(input),
            rest: input,
        }
    }

    fn append(_input: &'a str, _kind: NomErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, Fail<'a>>;

fn received_at(rest: &str) -> Received {
    rest.chars().next().map_or(Received::Eof, Received::Char)
}

fn syntax<'a, T>(expected: &'static str, received: Received, rest: &'a str) -> PResult<'a, T> {
    Err(nom::Err::Error(Fail::Syntax {
        expected,
        received,
        rest,
    }))
}

/// Python's `str.isspace`: what the value regexes call `\s` and what `rstrip()` removes.
pub(crate) const fn is_unicode_space(c: char) -> bool {
    matches!(
        c as u32,
        0x09..=0x0D | 0x1C..=0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// Python's `string.whitespace`: what the parser skips between tokens.
fn is_ascii_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Characters of a key.
pub(crate) const fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '#' | '/' | ':')
}

/// START: the first character of an unquoted value.
pub(crate) const fn is_start(c: char) -> bool {
    matches!(c as u32, 0x21 | 0x23..=0x26 | 0x28..=0x2B | 0x2D..=0x3C | 0x3E..=0x5A | 0x5C..=0x7A | 0x7C..=0xFFFF)
}

/// FIRST-FOLLOW: later characters of a first value and of list and hash items.
pub(crate) const fn is_first_follow(c: char) -> bool {
    is_unicode_space(c)
        || matches!(c as u32, 0x21 | 0x23..=0x26 | 0x28..=0x2B | 0x2D..=0x5C | 0x5E..=0x7C | 0x7E..=0xFFFF)
}

/// SECOND-FOLLOW: later characters of the second and later elements of a comma list.
pub(crate) const fn is_second_follow(c: char) -> bool {
    is_unicode_space(c)
        || matches!(c as u32, 0x21 | 0x23..=0x26 | 0x28..=0x2B | 0x2D..=0x3C | 0x3E..=0xFFFF)
}

fn skip_ws(i: &str) -> &str {
    // ASCII whitespace is one byte each, so counting bytes is exact.
    let n = i
        .bytes()
        .take_while(|&b| is_ascii_space(char::from(b)))
        .count();
    &i[n..]
}

/// The ASCII part of a character class as a table: most input is ASCII, and a lookup beats the range tests.
const fn ascii_table(class: u8) -> [bool; 128] {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8 as char;
        table[b] = match class {
            0 => is_start(c),
            1 => is_first_follow(c),
            2 => is_second_follow(c),
            _ => is_key_char(c),
        };
        b += 1;
    }
    table
}

static KEY_ASCII: [bool; 128] = ascii_table(3);
static START_ASCII: [bool; 128] = ascii_table(0);
static FIRST_FOLLOW_ASCII: [bool; 128] = ascii_table(1);
static SECOND_FOLLOW_ASCII: [bool; 128] = ascii_table(2);

/// A character class: its ASCII table and its full test.
type Class = (&'static [bool; 128], fn(char) -> bool);

const START: Class = (&START_ASCII, is_start);
const FIRST_FOLLOW: Class = (&FIRST_FOLLOW_ASCII, is_first_follow);
const SECOND_FOLLOW: Class = (&SECOND_FOLLOW_ASCII, is_second_follow);

/// An unquoted value: `(\\,|[START])(\\,|[FOLLOW])*`, the escaped comma preferred at every step.
/// Gives the text and whether it holds a `\\,` escape.
fn unquoted(follow: Class) -> impl Fn(&str) -> PResult<'_, (&str, bool)> {
    move |i: &str| {
        let bytes = i.as_bytes();
        let (ascii, full) = follow;
        // The first step uses START, every later one `follow`; `\\,` counts as one step in both.
        let mut pos = 0;
        let mut class = START;
        let mut escaped = false;
        while let Some(&b) = bytes.get(pos) {
            if b == b'\\' && bytes.get(pos + 1) == Some(&b',') {
                pos += 2;
                escaped = true;
            } else if b < 128 {
                if !class.0[usize::from(b)] {
                    break;
                }
                pos += 1;
            } else {
                let c = i[pos..].chars().next().unwrap_or_default();
                if !(class.1)(c) {
                    break;
                }
                pos += c.len_utf8();
            }
            class = (ascii, full);
        }
        if pos == 0 {
            return syntax("<none>", Received::Nothing, i);
        }
        Ok((&i[pos..], (&i[..pos], escaped)))
    }
}

/// A quoted string: `Q(?:\\Q|[^Q])*Q` with Python's regex backtracking.
///
/// The greedy scan takes every `\Q` as an escape. If the input ends before a closing quote, the regex gives back
/// the last escape and uses its quote as the closing one; with no escape to give back there is no match.
fn quoted(quote: char, name: &'static str) -> impl Fn(&str) -> PResult<'_, &str> {
    move |i: &str| {
        let body = match i.strip_prefix(quote) {
            Some(body) => body,
            None => return syntax(name, Received::Nothing, i),
        };
        let bytes = body.as_bytes();
        let q = quote as u8;
        let mut last_escape = None;
        let mut pos = 0;
        let end = loop {
            match bytes.get(pos) {
                None => match last_escape {
                    Some(at) => break at + 1,
                    None => return syntax(name, Received::Nothing, i),
                },
                Some(&b'\\') if bytes.get(pos + 1) == Some(&q) => {
                    last_escape = Some(pos);
                    pos += 2;
                }
                Some(&b) if b == q => break pos,
                Some(_) => pos += 1,
            }
        };
        Ok((&body[end + 1..], &body[..end]))
    }
}

/// The text of a scalar as written, before escapes are processed; turned into a `String` only when kept.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Unquoted(&'a str, bool),
    Quoted(char, &'a str),
}

impl<'a> Raw<'a> {
    /// The value: quoted text loses `\Q` and `\\` escapes (in that order); unquoted text loses `\,` escapes and
    /// trailing whitespace. Text without escapes is borrowed.
    fn text(self) -> Cow<'a, str> {
        match self {
            Raw::Unquoted(raw, escaped) => unquoted_text(raw, escaped),
            Raw::Quoted(quote, inner) if inner.contains('\\') => {
                let escaped = if quote == '\'' { "\\'" } else { "\\\"" };
                Cow::Owned(
                    inner
                        .replace(escaped, if quote == '\'' { "'" } else { "\"" })
                        .replace("\\\\", "\\"),
                )
            }
            Raw::Quoted(_, inner) => Cow::Borrowed(inner),
        }
    }
}

/// Turns the text of an unquoted value into the value: `\,` becomes `,`, trailing whitespace goes.
fn unquoted_text(raw: &str, escaped: bool) -> Cow<'_, str> {
    if escaped {
        return Cow::Owned(
            raw.replace("\\,", ",")
                .trim_end_matches(is_unicode_space)
                .to_owned(),
        );
    }
    match raw.as_bytes().last() {
        // The usual last character is ASCII and not whitespace: nothing to strip.
        Some(&b) if b.is_ascii() && !is_unicode_space(char::from(b)) => Cow::Borrowed(raw),
        _ => Cow::Borrowed(raw.trim_end_matches(is_unicode_space)),
    }
}

/// Whether `i` starts with `key WS* [@ WS*] =`, the start of the next key-value pair.
fn starts_with_key_operator(i: &str) -> bool {
    let b = i.as_bytes();
    let mut p = b
        .iter()
        .position(|&c| !c.is_ascii() || !KEY_ASCII[usize::from(c)])
        .unwrap_or(b.len());
    let skip = |p: usize| {
        p + b[p..]
            .iter()
            .take_while(|&&c| is_ascii_space(char::from(c)))
            .count()
    };
    p = skip(p);
    if b.get(p) == Some(&b'@') {
        p = skip(p + 1);
    }
    b.get(p) == Some(&b'=')
}

/// One parse of one input.
pub(crate) struct Parser<'a, 'l> {
    full: &'a str,
    /// `_should_resolve_paramfiles`: set by the last key read, whichever nesting level it was at.
    resolve_files: bool,
    loader: Option<&'l mut FileLoader<'l>>,
}

impl<'a, 'l> Parser<'a, 'l> {
    pub(crate) fn new(full: &'a str, loader: Option<&'l mut FileLoader<'l>>) -> Self {
        Parser {
            full,
            resolve_files: false,
            loader,
        }
    }

    fn offset(&self, rest: &str) -> usize {
        self.full.len() - rest.len()
    }

    /// Runs the parser over the whole input.
    pub(crate) fn run(mut self) -> Result<Value<'a>, Error> {
        let full = self.full;
        let code_points = |byte: usize| full[..byte].chars().count();
        match self.parameter(full) {
            Ok((_, value)) => Ok(value),
            Err(nom::Err::Error(fail) | nom::Err::Failure(fail)) => Err(match fail {
                Fail::Syntax {
                    expected,
                    received,
                    rest,
                } => {
                    let received = match received {
                        Received::Char(c) => c.to_string(),
                        Received::Eof => "EOF".to_owned(),
                        Received::Nothing => "<none>".to_owned(),
                    };
                    let kind = ErrorKind::Syntax {
                        expected: expected.to_owned(),
                        received,
                    };
                    Error::new(kind, full, code_points(self.offset(rest)))
                }
                Fail::Duplicate { key, byte } => {
                    Error::new(ErrorKind::DuplicateKey { key }, full, code_points(byte) + 1)
                }
                Fail::File { message, rest } => Error::new(
                    ErrorKind::FileLoad { message },
                    full,
                    code_points(self.offset(rest)),
                ),
            }),
            Err(nom::Err::Incomplete(_)) => {
                unreachable!("complete parsers never ask for more input")
            }
        }
    }

    /// `_expect(char, consume_whitespace)`.
    /// The expected characters are all ASCII, so one byte comparison decides.
    fn expect(&self, i: &'a str, c: u8, expected: &'static str, ws: bool) -> PResult<'a, ()> {
        let i = if ws { skip_ws(i) } else { i };
        if i.as_bytes().first() == Some(&c) {
            let rest = &i[1..];
            Ok((if ws { skip_ws(rest) } else { rest }, ()))
        } else {
            let found = i.chars().next();
            syntax(expected, found.map_or(Received::Eof, Received::Char), i)
        }
    }

    /// `parameter = keyval *("," keyval)`, the whole input, with the top-level duplicate-key check.
    fn parameter(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        let (mut i, first) = self.keyval(i)?;
        let mut params = Vec::with_capacity(4);
        params.push(first);
        let mut last = self.offset(i);
        while !i.is_empty() {
            let (rest, ()) = self.expect(i, b',', ",", true)?;
            let (rest, (key, value)) = self.keyval(rest)?;
            if params.iter().any(|(k, _)| *k == key) {
                return Err(nom::Err::Failure(Fail::Duplicate {
                    key: key.into_owned(),
                    byte: last,
                }));
            }
            params.push((key, value));
            last = self.offset(rest);
            i = rest;
        }
        Ok((i, Value::Map(params)))
    }

    /// `key`, then `@` (which arms file loading) or not, then `=`.
    fn key_and_operator(&mut self, i: &'a str) -> PResult<'a, Cow<'a, str>> {
        // Keys are ASCII, so a byte scan finds their end (nom's `take_while` decodes characters).
        let end = i
            .bytes()
            .position(|b| !b.is_ascii() || !KEY_ASCII[usize::from(b)])
            .unwrap_or(i.len());
        let (key, i) = i.split_at(end);
        // `_expect('@', consume_whitespace=True)` skips whitespace even when it fails.
        let i = skip_ws(i);
        let (i, at) = nom::combinator::opt(nom::character::complete::char('@')).parse(i)?;
        self.resolve_files = at.is_some();
        let (i, ()) = self.expect(i, b'=', "=", true)?;
        Ok((i, Cow::Borrowed(key)))
    }

    fn keyval(&mut self, i: &'a str) -> PResult<'a, (Cow<'a, str>, Value<'a>)> {
        let (i, key) = self.key_and_operator(i)?;
        let (i, value) = self.values(i)?;
        Ok((i, (key, value)))
    }

    /// `values = EOF / explicit-list / hash / csv-value`.
    fn values(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        match i.as_bytes().first() {
            None => Ok((i, Value::String(Cow::Borrowed("")))),
            Some(b'[') => self.explicit_list(i),
            Some(b'{') => self.hash(i),
            Some(_) => self.csv_value(i),
        }
    }

    /// `first-value [, second-value ...]` with the reference's backtracking to the nearest comma.
    fn csv_value(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        let (i, first) = self.first_value(i)?;
        let i = skip_ws(i);
        if !i.starts_with(',') {
            return Ok((i, first));
        }
        let mut first = Some(first);
        let (mut i, ()) = self.expect(i, b',', ",", true)?;
        // Most commas after a first value start the next key, so the list is only built once an element is kept.
        let mut list = Vec::new();
        loop {
            if !(self.resolve_files && self.loader.is_some()) && starts_with_key_operator(i) {
                // Shortcut for the usual case, `key=…` after the comma: the reference would scan it as a second
                // value, fail at the `=`, and rewind to this comma (the only one in between). Skipped when the
                // failed value could name a file, because the reference reads that file before failing.
                let at = self.offset(i);
                let before = &self.full.as_bytes()[..at];
                let comma = before
                    .iter()
                    .rposition(|&b| b == b',')
                    .expect("the comma just consumed");
                i = &self.full[comma..];
                break;
            }
            match self.second_element(i) {
                Ok((rest, (element, done))) => {
                    if let Some(first) = first.take() {
                        list.push(first);
                    }
                    list.push(element);
                    i = rest;
                    if done {
                        break;
                    }
                }
                Err(nom::Err::Error(Fail::Syntax { rest, .. })) if !rest.is_empty() => {
                    // Rewind to the nearest comma at or before the error, wherever it is.
                    let at = self.offset(rest);
                    let comma = if self.full[at..].starts_with(',') {
                        at
                    } else {
                        // A byte scan: the comma is usually a few bytes back, too close for `rfind` to pay off.
                        let before = &self.full.as_bytes()[..at];
                        before
                            .iter()
                            .rposition(|&b| b == b',')
                            .expect("a comma precedes every second element")
                    };
                    i = &self.full[comma..];
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        match first {
            Some(first) => Ok((i, first)),
            None => Ok((i, Value::List(list))),
        }
    }

    /// One second element and what follows it: end of input (`done`) or a comma.
    fn second_element(&mut self, start: &'a str) -> PResult<'a, (Value<'a>, bool)> {
        let (i, raw) = self.second_value(start)?;
        // The reference reads a file as soon as it has the value, before it looks for the comma; anything else can
        // wait until the element is known to be kept.
        let loaded = if self.resolve_files && self.loader.is_some() {
            Some(self.resolve(raw.text(), start)?)
        } else {
            None
        };
        let i = skip_ws(i);
        let (i, done) = if i.is_empty() {
            (i, true)
        } else {
            (self.expect(i, b',', ",", true)?.0, false)
        };
        let value = loaded.unwrap_or_else(|| Value::String(raw.text()));
        Ok((i, (value, done)))
    }

    /// `explicit-list = "[" *(item [","]) "]"`.
    fn explicit_list(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        let (mut i, ()) = self.expect(i, b'[', "[", true)?;
        let mut items = Vec::new();
        while !i.starts_with(']') {
            let (rest, item) = self.item(i)?;
            items.push(item);
            i = skip_ws(rest);
            if !i.starts_with(']') {
                let (rest, ()) = self.expect(i, b',', ",", false)?;
                i = skip_ws(rest);
            }
        }
        let (i, ()) = self.expect(i, b']', "]", false)?;
        Ok((i, Value::List(items)))
    }

    /// `hash = "{" *(key ["@"] "=" item [","]) "}"`; a repeated key keeps its place and takes the last value.
    fn hash(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        let (mut i, ()) = self.expect(i, b'{', "{", true)?;
        let mut entries: Vec<(Cow<'a, str>, Value<'a>)> = Vec::new();
        while !i.starts_with('}') {
            let (rest, key) = self.key_and_operator(i)?;
            let (rest, value) = self.item(rest)?;
            i = skip_ws(rest);
            if !i.starts_with('}') {
                let (rest, ()) = self.expect(i, b',', ",", false)?;
                i = skip_ws(rest);
            }
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        let (i, ()) = self.expect(i, b'}', "}", false)?;
        Ok((i, Value::Map(entries)))
    }

    /// An item of a list or hash: a nested list, a nested hash, or a first value.
    fn item(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        match i.as_bytes().first() {
            Some(b'[') => self.explicit_list(i),
            Some(b'{') => self.hash(i),
            _ => self.first_value(i),
        }
    }

    /// `first-value`: quoted, or unquoted and possibly empty.
    fn first_value(&mut self, i: &'a str) -> PResult<'a, Value<'a>> {
        let (rest, raw) = match i.as_bytes().first() {
            Some(b'\'') => quoted('\'', "<singled quoted>")
                .map(|q| Raw::Quoted('\'', q))
                .parse(i)?,
            Some(b'"') => quoted('"', "<double quoted>")
                .map(|q| Raw::Quoted('"', q))
                .parse(i)?,
            _ => match unquoted(FIRST_FOLLOW)(i) {
                Ok((rest, (raw, escaped))) => (rest, Raw::Unquoted(raw, escaped)),
                // No match is the empty value, and the empty value is never a file reference.
                Err(_) => return Ok((i, Value::String(Cow::Borrowed("")))),
            },
        };
        Ok((rest, self.resolve(raw.text(), i)?))
    }

    /// `second-value`: quoted, or unquoted and non-empty; still raw, because backtracking may discard it.
    fn second_value(&mut self, i: &'a str) -> PResult<'a, Raw<'a>> {
        match i.as_bytes().first() {
            Some(b'\'') => quoted('\'', "<singled quoted>")
                .map(|q| Raw::Quoted('\'', q))
                .parse(i),
            Some(b'"') => quoted('"', "<double quoted>")
                .map(|q| Raw::Quoted('"', q))
                .parse(i),
            _ => match unquoted(SECOND_FOLLOW)(i) {
                Ok((rest, (raw, escaped))) => Ok((rest, Raw::Unquoted(raw, escaped))),
                Err(_) => syntax("<second>", Received::Nothing, i),
            },
        }
    }

    /// `_resolve_paramfiles`: after `@=`, a value naming a local file becomes the file's content.
    #[inline]
    fn resolve(
        &mut self,
        text: Cow<'a, str>,
        at: &'a str,
    ) -> Result<Value<'a>, nom::Err<Fail<'a>>> {
        if !self.resolve_files {
            return Ok(Value::String(text));
        }
        let Some(loader) = self.loader.as_mut() else {
            return Ok(Value::String(text));
        };
        let reference = match FileRef::from_value(&text) {
            Some(reference) => reference,
            None => return Ok(Value::String(text)),
        };
        loader(&reference).map_err(|message| nom::Err::Failure(Fail::File { message, rest: at }))
    }
}
