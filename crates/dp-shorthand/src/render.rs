//! Writing a value tree back as shorthand that parses to the same tree.
//!
//! Used to show users what dp understood and to test the parser (render, then parse, must give the tree back).
//! It must stay the inverse of the grammar: every choice here is checked by the round-trip property test.

use crate::Value;
use crate::grammar::{is_first_follow, is_start, is_unicode_space};

/// Renders a tree as shorthand. A [`Value::Map`] renders as top-level `key=value` pairs; any other value as the
/// list item it would be.
///
/// Lists always render as `[…]` and hashes as `{…}`; a string renders unquoted when the grammar allows it (with
/// `\,` for commas), else double-quoted. Parsing the result gives the tree back, with these exceptions, which
/// shorthand cannot express: keys outside `[A-Za-z0-9._#/:-]`, a repeated top-level key, an empty top-level map,
/// [`Value::Bytes`] (written as lossy UTF-8 text), and a string that needs quotes and ends with a backslash.
pub fn render(value: &Value<'_>) -> String {
    let mut out = String::new();
    match value {
        Value::Map(entries) => {
            for (n, (key, value)) in entries.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(key);
                out.push('=');
                item(value, &mut out);
            }
        }
        other => item(other, &mut out),
    }
    out
}

fn item(value: &Value<'_>, out: &mut String) {
    match value {
        Value::String(s) => scalar(s, out),
        Value::Bytes(b) => scalar(&String::from_utf8_lossy(b), out),
        Value::List(items) => {
            out.push('[');
            for (n, value) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                item(value, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (n, (key, value)) in entries.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(key);
                out.push('=');
                item(value, out);
            }
            out.push('}');
        }
    }
}

/// Whether `s` can be written as an unquoted first value, commas escaped.
fn fits_unquoted(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    // `]` and `}` may start a value, but not an item: there they close the list or hash.
    (first == ',' || (is_start(first) && first != ']' && first != '}'))
        && chars.all(|c| c == ',' || is_first_follow(c))
        && !s.ends_with(is_unicode_space)
}

fn scalar(s: &str, out: &mut String) {
    if fits_unquoted(s) {
        out.push_str(&s.replace(',', "\\,"));
        // A final backslash would join the next separator into `\,`; a space keeps them apart and is stripped.
        if s.ends_with('\\') {
            out.push(' ');
        }
    } else {
        out.push('"');
        for c in s.chars() {
            if c == '\\' || c == '"' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}
