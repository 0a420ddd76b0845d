//! Typing a parsed tree against a model shape, as the CLI's `BackCompatVisitor` does, plus early unknown-member
//! detection.
//!
//! The reference fixes up the parsed value in place: a non-list where the model wants a list is wrapped, numbers and
//! booleans are converted, and everything else is left for validation (`dp_model::validate`) to judge. This module
//! does the same and adds one check the reference only makes later: a member the structure does not have is
//! refused here, with the nearest member name as a suggestion. It must not duplicate the validator: wrong types,
//! missing members and length limits stay the validator's job, so the messages stay the reference's.

use std::fmt;

use dp_model::{Shape, ShapeKind};
use serde_json::Value as Json;

use crate::Value;

/// What went wrong while typing a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeErrorKind {
    /// A hash key that the structure does not have.
    UnknownMember {
        /// The key as written.
        name: String,
        /// The member the user probably meant.
        suggestion: Option<&'static str>,
        /// All members of the structure, in model order.
        members: Vec<&'static str>,
    },
    /// A string where the model wants an integer, not readable as one (Python's `int()` message).
    InvalidInteger {
        /// The string.
        value: String,
    },
    /// A string where the model wants a float, not readable as one (Python's `float()` message).
    InvalidFloat {
        /// The string.
        value: String,
    },
    /// A number that JSON cannot carry (an integer beyond 64 bits, infinity, not-a-number).
    Unrepresentable {
        /// The string.
        value: String,
    },
    /// File bytes (`fileb://`) where the model does not want a blob.
    UnexpectedBytes,
}

/// An error typing a tree: a kind and the parameter path (`fields[0]`) it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    kind: TypeErrorKind,
    path: String,
}

impl TypeError {
    /// What went wrong.
    pub fn kind(&self) -> &TypeErrorKind {
        &self.kind
    }

    /// The parameter path, as validation messages write it (`fields[0].stringValue`). For
    /// [`TypeErrorKind::UnknownMember`] it is the structure holding the unknown key.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.kind {
            TypeErrorKind::UnknownMember {
                name,
                suggestion: Some(s),
                ..
            } => {
                write!(
                    f,
                    "unknown member \"{name}\" in {path}, did you mean \"{s}\"?"
                )
            }
            TypeErrorKind::UnknownMember {
                name,
                suggestion: None,
                members,
            } => {
                write!(
                    f,
                    "unknown member \"{name}\" in {path}, must be one of: {}",
                    members.join(", ")
                )
            }
            TypeErrorKind::InvalidInteger { value } => {
                write!(
                    f,
                    "invalid literal for int() with base 10: {}",
                    dp_model::pyrepr::string_repr(value)
                )
            }
            TypeErrorKind::InvalidFloat { value } => {
                write!(
                    f,
                    "could not convert string to float: {}",
                    dp_model::pyrepr::string_repr(value)
                )
            }
            TypeErrorKind::Unrepresentable { value } => {
                write!(
                    f,
                    "the number {value} for parameter {path} cannot be sent as JSON"
                )
            }
            TypeErrorKind::UnexpectedBytes => {
                write!(
                    f,
                    "parameter {path} takes text, but a fileb:// file gives bytes; use file:// instead"
                )
            }
        }
    }
}

impl std::error::Error for TypeError {}

/// Types `value` against `shape` and returns the JSON to validate and send; `path` names the value in messages
/// (`fields` for the `--fields` option; list items become `fields[0]`, members `fields[0].key`).
///
/// The rules are the reference's (awscli's `BackCompatVisitor`, which runs after its shorthand parser):
/// * a non-list where the model wants a list becomes a one-element list (`values=FINISHED` gives `["FINISHED"]`);
/// * strings become integers (Python `int()`), floats (`float()`) and booleans (`true`/`false`, any case; any
///   other string stays a string for validation to refuse);
/// * timestamps stay strings, as the reference passes them on to its serializer;
/// * a value of the wrong kind (a hash where a string is wanted) is passed through for validation to report.
///
/// Two deliberate differences: unknown hash keys are refused here with a suggestion, and the element of a wrapped
/// scalar is typed too (the reference would send `["5"]` for a list of integers and fail validation). The model has
/// no document shapes, so the reference's document-type refusal has nothing to apply to.
pub fn to_json(value: &Value<'_>, shape: &'static Shape, path: &str) -> Result<Json, TypeError> {
    typed(value, shape, &Path::Root(path))
}

/// Where a value sits, written out only when an error needs it (formatting every path costs more than typing).
enum Path<'p> {
    Root(&'p str),
    Index(&'p Path<'p>, usize),
    Member(&'p Path<'p>, &'p str),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(root) => (*root).to_owned(),
            Path::Index(parent, n) => format!("{}[{n}]", parent.render()),
            Path::Member(parent, key) => {
                let parent = parent.render();
                if parent.is_empty() {
                    (*key).to_owned()
                } else {
                    format!("{parent}.{key}")
                }
            }
        }
    }
}

fn typed(value: &Value<'_>, shape: &'static Shape, path: &Path<'_>) -> Result<Json, TypeError> {
    let err = |kind| {
        Err(TypeError {
            kind,
            path: path.render(),
        })
    };
    match (&shape.kind, value) {
        (ShapeKind::List(member), Value::List(items)) => items
            .iter()
            .enumerate()
            .map(|(n, item)| typed(item, member, &Path::Index(path, n)))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        (ShapeKind::List(member), other) => Ok(Json::Array(vec![typed(
            other,
            member,
            &Path::Index(path, 0),
        )?])),
        (ShapeKind::Structure(members), Value::Map(entries)) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let Some(member) = members.iter().find(|m| m.name == key) else {
                    let names: Vec<&'static str> = members.iter().map(|m| m.name).collect();
                    return err(TypeErrorKind::UnknownMember {
                        name: key.to_string(),
                        suggestion: suggest(key, &names),
                        members: names,
                    });
                };
                object.insert(
                    key.to_string(),
                    typed(value, member.shape, &Path::Member(path, key))?,
                );
            }
            Ok(Json::Object(object))
        }
        (
            ShapeKind::Map {
                value: value_shape, ..
            },
            Value::Map(entries),
        ) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                object.insert(
                    key.to_string(),
                    typed(value, value_shape, &Path::Member(path, key))?,
                );
            }
            Ok(Json::Object(object))
        }
        (ShapeKind::Integer | ShapeKind::Long, Value::String(s)) => match python_int(s) {
            Some(Ok(n)) => Ok(n),
            Some(Err(())) => err(TypeErrorKind::Unrepresentable {
                value: s.to_string(),
            }),
            None => err(TypeErrorKind::InvalidInteger {
                value: s.to_string(),
            }),
        },
        (ShapeKind::Float | ShapeKind::Double, Value::String(s)) => match python_float(s) {
            Some(f) => match serde_json::Number::from_f64(f) {
                Some(n) => Ok(Json::Number(n)),
                None => err(TypeErrorKind::Unrepresentable {
                    value: s.to_string(),
                }),
            },
            None => err(TypeErrorKind::InvalidFloat {
                value: s.to_string(),
            }),
        },
        // Python compares `value.lower()`; the only non-ASCII character that lowercases to an ASCII letter is
        // U+212A KELVIN SIGN (to `k`), which neither word contains, so an ASCII comparison is the same.
        (ShapeKind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Json::Bool(true))
        }
        (ShapeKind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Json::Bool(false))
        }
        (ShapeKind::Blob, Value::Bytes(bytes)) => Ok(Json::String(base64(bytes))),
        (_, Value::Bytes(_)) => err(TypeErrorKind::UnexpectedBytes),
        (_, other) => Ok(plain(other)),
    }
}

/// The tree as JSON without any typing, for values the validator will judge.
fn plain(value: &Value<'_>) -> Json {
    match value {
        Value::String(s) => Json::String(s.to_string()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(items) => Json::Array(items.iter().map(plain).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), plain(v)))
                .collect(),
        ),
    }
}

/// The member nearest to `name`: the same name in another case, else one within a small edit distance.
fn suggest(name: &str, members: &[&'static str]) -> Option<&'static str> {
    if let Some(m) = members.iter().find(|m| m.eq_ignore_ascii_case(name)) {
        return Some(m);
    }
    let lower = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    members
        .iter()
        .map(|m| (edit_distance(&lower, &m.to_ascii_lowercase()), *m))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, m)| m)
}

/// Edit distance where an insertion, a deletion, a substitution or a swap of two neighbours costs one (optimal
/// string alignment), so `kye` is one edit from `key`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// Python's `int(s)`: surrounding whitespace, a sign, ASCII digits with single underscores between them.
/// `None` if Python would refuse it, `Some(Err)` if it does not fit in 64 bits.
fn python_int(s: &str) -> Option<Result<Json, ()>> {
    let t = s.trim_matches(crate::grammar::is_unicode_space);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = python_digits(digits)?;
    let magnitude: u128 = match digits.parse() {
        Ok(m) => m,
        Err(_) => return Some(Err(())),
    };
    Some(if negative {
        i64::try_from(magnitude)
            .map(|m| Json::from(-m))
            .or_else(|_| {
                if magnitude == 1 << 63 {
                    Ok(Json::from(i64::MIN))
                } else {
                    Err(())
                }
            })
    } else {
        u64::try_from(magnitude).map(Json::from).map_err(|_| ())
    })
}

/// Digits with Python's underscore rule (only between two digits), underscores removed; `None` if malformed.
fn python_digits(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes[0] == b'_' || bytes[bytes.len() - 1] == b'_' {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    for (n, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => out.push(b as char),
            b'_' if bytes[n - 1] != b'_' => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Python's `float(s)`: surrounding whitespace, decimal or exponent notation, `inf`/`infinity`/`nan` in any case,
/// underscores between digits.
fn python_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(crate::grammar::is_unicode_space);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let special = ["inf", "infinity", "nan"]
        .iter()
        .any(|w| unsigned.eq_ignore_ascii_case(w));
    if special {
        return t.to_ascii_lowercase().parse().ok();
    }
    // Rust and Python agree on the grammar of decimal floats once underscores are checked and removed.
    let mut cleaned = String::with_capacity(t.len());
    let bytes = t.as_bytes();
    for (n, &b) in bytes.iter().enumerate() {
        match b {
            b'_' => {
                let digit_before = n > 0 && bytes[n - 1].is_ascii_digit();
                let digit_after = bytes.get(n + 1).is_some_and(u8::is_ascii_digit);
                if !(digit_before && digit_after) {
                    return None;
                }
            }
            b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' => cleaned.push(b as char),
            _ => return None,
        }
    }
    cleaned.parse().ok()
}

/// Standard base64 with padding, as the awsJson protocol sends blobs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_int(input: &str, expected: Option<&str>) {
        let got =
            python_int(input).map(|r| r.map_or_else(|()| "overflow".to_owned(), |j| j.to_string()));
        assert_eq!(got.as_deref(), expected, "int({input:?})");
    }

    #[test]
    fn ints_as_python_reads_them() {
        check_int("12", Some("12"));
        check_int(" -7\n", Some("-7"));
        check_int("+1_000", Some("1000"));
        check_int("007", Some("7"));
        check_int("1__0", None);
        check_int("_1", None);
        check_int("1.5", None);
        check_int("", None);
        check_int("-", None);
        check_int("abc", None);
        check_int("-9223372036854775808", Some("-9223372036854775808"));
        check_int("99999999999999999999999", Some("overflow"));
    }

    #[track_caller]
    fn check_float(input: &str, expected: Option<f64>) {
        let got = python_float(input);
        match (got, expected) {
            (Some(g), Some(e)) if g.is_nan() && e.is_nan() => {}
            _ => assert_eq!(got, expected, "float({input:?})"),
        }
    }

    #[test]
    fn floats_as_python_reads_them() {
        check_float("1.5", Some(1.5));
        check_float(" 2e3 ", Some(2000.0));
        check_float(".5", Some(0.5));
        check_float("5.", Some(5.0));
        check_float("-Infinity", Some(f64::NEG_INFINITY));
        check_float("nan", Some(f64::NAN));
        check_float("1_0.5", Some(10.5));
        check_float("1_.5", None);
        check_float("abc", None);
        check_float("", None);
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn suggestions() {
        let members = ["key", "stringValue", "refValue"];
        assert_eq!(suggest("stringvalue", &members), Some("stringValue"));
        assert_eq!(suggest("strngValue", &members), Some("stringValue"));
        assert_eq!(suggest("refvalu", &members), Some("refValue"));
        assert_eq!(suggest("bogus", &members), None);
        assert_eq!(suggest("kye", &members), Some("key"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("kye", "key"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
