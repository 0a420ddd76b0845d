//! Python's spelling of JSON values: `str()` of scalars and `json.dumps`.
//!
//! The AWS CLI formats with Python, so numbers and strings must be spelled the way CPython spells them:
//! `True`/`False`/`None` in text and tables, `1e+16` and `1e-05` for floats (not Rust's `1e16`), and the
//! `json` module's escaping. This module only spells values; it must not decide layout. It is dp-cli's one door
//! to Python's view of values: `repr`, `str`, class names and truthiness come from `dp_model::pyrepr`, and
//! `json.dumps` (output, JMESPath `to_string`, pagination tokens) is written here, once.

use serde_json::{Number, Value};
use std::fmt::Write as _;

pub use dp_model::pyrepr::{class_name, float_repr, is_truthy};

/// Python `str()` of a JSON number (int stays int, float uses `repr`).
pub fn number_str(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_repr(n.as_f64().unwrap_or(0.0))
    }
}

/// Python `str()` of a value: `None`, `True`, `False`, numbers, strings unchanged, containers as `repr`.
pub fn py_str(v: &Value) -> String {
    dp_model::pyrepr::str(v)
}

/// Python `repr()` of a JSON value as it appears in Python error messages (`{'a': 1}`, `['x']`).
pub fn py_repr(v: &Value) -> String {
    dp_model::pyrepr::repr(v)
}

/// `json.dumps(value, indent=4, ensure_ascii=False)` — the AWS CLI's JSON output (without the final newline).
pub fn json_pretty(v: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, v, 0);
    out
}

fn write_pretty(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, level + 1);
                write_pretty(out, item, level + 1);
            }
            newline_indent(out, level);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, level + 1);
                write_json_str(out, k, false);
                out.push_str(": ");
                write_pretty(out, item, level + 1);
            }
            newline_indent(out, level);
            out.push('}');
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
        other => write_scalar_json(out, other, false),
    }
}

fn newline_indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("    ");
    }
}

/// `json.dumps(value, separators=(',', ':'))` with the default `ensure_ascii=True` (JMESPath `to_string`).
pub fn json_compact_ascii(v: &Value) -> String {
    let mut out = String::new();
    write_compact(&mut out, v);
    out
}

fn write_compact(out: &mut String, v: &Value) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k, true);
                out.push(':');
                write_compact(out, item);
            }
            out.push('}');
        }
        other => write_scalar_json(out, other, true),
    }
}

fn write_scalar_json(out: &mut String, v: &Value, ascii: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                // json.dumps spells non-finite floats like JavaScript; serde_json cannot hold them anyway.
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&float_repr(f));
                }
            } else {
                out.push_str(&number_str(n));
            }
        }
        Value::String(s) => write_json_str(out, s, ascii),
        // Containers are handled by the callers.
        Value::Array(_) | Value::Object(_) => {}
    }
}

/// A JSON string literal as Python's `json` module writes it.
pub fn write_json_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: f64, expected: &str) {
        assert_eq!(float_repr(f), expected, "repr({f:?})");
    }

    #[test]
    fn floats_are_spelled_like_cpython() {
        check(1.0, "1.0");
        check(1.5, "1.5");
        check(-0.0, "-0.0");
        check(0.0, "0.0");
        check(1e16, "1e+16");
        check(1e15, "1000000000000000.0");
        check(123456789012345680.0, "1.2345678901234568e+17");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(1.5e-7, "1.5e-07");
        check(1e100, "1e+100");
        check(0.1 + 0.2, "0.30000000000000004");
        check(12.5, "12.5");
    }
}
