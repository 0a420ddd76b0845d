//! `--output text`: tab-separated lines, a line-for-line port of `awscli/text.py`.
//!
//! Keys are sorted by code point, identifiers upper-cased with Python's `str.upper()` (which Rust's
//! `to_uppercase` matches, including `ß` → `SS`), scalars spelled with Python's `str()`, nothing escaped
//! (quirk 23: tabs and newlines inside values go out raw). Pagination lives in `super::render_paged`; this
//! module must not know about pages or queries.

use super::error::RenderError;
use super::pyfmt::{class_name, py_str};
use serde_json::{Map, Value};

/// Formats one value as `awscli.text.format_text` does.
pub fn format_text(v: &Value, out: &mut String) -> Result<(), RenderError> {
    format_item(v, out, None, None)
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Array(_) | Value::Object(_))
}

fn format_item(
    item: &Value,
    out: &mut String,
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
) -> Result<(), RenderError> {
    match item {
        Value::Object(map) => format_dict(scalar_keys, map, identifier, out),
        Value::Array(items) => format_list(items, identifier, out),
        scalar => {
            out.push_str(&py_str(scalar));
            out.push('\n');
            Ok(())
        }
    }
}

fn format_list(
    items: &[Value],
    identifier: Option<&str>,
    out: &mut String,
) -> Result<(), RenderError> {
    if items.is_empty() {
        return Ok(());
    }
    if items.iter().any(Value::is_object) {
        let all_keys = all_scalar_keys(items)?;
        for element in items {
            format_item(element, out, identifier, Some(&all_keys))?;
        }
    } else if items.iter().any(Value::is_array) {
        let (scalars, non_scalars): (Vec<&Value>, Vec<&Value>) =
            items.iter().partition(|v| !is_container(v));
        if !scalars.is_empty() {
            format_scalar_list(&scalars, identifier, out);
        }
        for non_scalar in non_scalars {
            format_item(non_scalar, out, identifier, None)?;
        }
    } else {
        let scalars: Vec<&Value> = items.iter().collect();
        format_scalar_list(&scalars, identifier, out);
    }
    Ok(())
}

fn format_scalar_list(elements: &[&Value], identifier: Option<&str>, out: &mut String) {
    match identifier {
        Some(ident) => {
            let upper = ident.to_uppercase();
            for item in elements {
                out.push_str(&upper);
                out.push('\t');
                out.push_str(&py_str(item));
                out.push('\n');
            }
        }
        None => {
            let joined: Vec<String> = elements.iter().map(|v| py_str(v)).collect();
            out.push_str(&joined.join("\t"));
            out.push('\n');
        }
    }
}

fn format_dict(
    scalar_keys: Option<&[String]>,
    map: &Map<String, Value>,
    identifier: Option<&str>,
    out: &mut String,
) -> Result<(), RenderError> {
    let mut scalars: Vec<String> = Vec::new();
    let mut non_scalars: Vec<(&str, &Value)> = Vec::new();
    match scalar_keys {
        None => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                if is_container(v) {
                    non_scalars.push((k, v));
                } else {
                    scalars.push(py_str(v));
                }
            }
        }
        Some(keys) => {
            for k in keys {
                scalars.push(map.get(k).map(py_str).unwrap_or_default());
            }
            let mut remaining: Vec<&String> = map.keys().filter(|k| !keys.contains(k)).collect();
            remaining.sort();
            for k in remaining {
                non_scalars.push((k, &map[k.as_str()]));
            }
        }
    }
    if !scalars.is_empty() {
        if let Some(ident) = identifier {
            scalars.insert(0, ident.to_uppercase());
        }
        out.push_str(&scalars.join("\t"));
        out.push('\n');
    }
    for (key, value) in non_scalars {
        format_item(value, out, Some(key), None)?;
    }
    Ok(())
}

/// The sorted union of the scalar keys of a list of dicts. Python fails on a non-dict element
/// (`AttributeError: 'str' object has no attribute 'items'`); so do we.
fn all_scalar_keys(items: &[Value]) -> Result<Vec<String>, RenderError> {
    let mut keys: Vec<String> = Vec::new();
    for item in items {
        let Value::Object(map) = item else {
            return Err(RenderError::Shape(format!(
                "'{}' object has no attribute 'items'",
                class_name(item)
            )));
        };
        for (k, v) in map {
            if !is_container(v) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.sort();
    Ok(keys)
}
