//! Helpers shared by the test modules: a compact, unambiguous text form of trees and parse results.

use dp_shorthand::{ErrorKind, Value};

/// The tree as compact JSON (bytes as `b"..."` with the text lossily decoded).
pub fn tree(value: &Value<'_>) -> String {
    match value {
        Value::String(s) => serde_json::Value::String(s.to_string()).to_string(),
        Value::Bytes(b) => format!(
            "b{}",
            serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
        ),
        Value::List(items) => format!("[{}]", items.iter().map(tree).collect::<Vec<_>>().join(",")),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::Value::String(k.to_string()), tree(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A parse result as text: the tree, or `error <expected> <received> @<offset>`, or `duplicate <key> @<offset>`.
pub fn outcome(result: &Result<Value<'_>, dp_shorthand::Error>) -> String {
    match result {
        Ok(value) => tree(value),
        Err(e) => match e.kind() {
            ErrorKind::Syntax { expected, received } => {
                format!("error {expected} {received} @{}", e.offset())
            }
            ErrorKind::DuplicateKey { key } => format!("duplicate {key} @{}", e.offset()),
            ErrorKind::FileLoad { message } => format!("file {message}"),
            other => format!("{other:?}"),
        },
    }
}
