//! `--debug` logging, redacted by construction.
//!
//! Every line dp-wire logs goes through `DebugLog`, and every header or body goes through the redaction
//! functions here first: the `Authorization` signature and the session token are never printed, the access key id
//! only masked, and the values of pipeline fields whose key starts with `*` (Data Pipeline's encrypted fields, such
//! as `*password`) are replaced in body dumps. The secret key is never handed to this module at all.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Where debug lines go: stderr for the CLI, any function for embedders and tests.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The debug logger of a client; disabled unless `--debug` or a sink was given.
#[derive(Clone, Default)]
pub(crate) struct DebugLog {
    sink: Option<LogSink>,
}

impl DebugLog {
    pub(crate) fn stderr() -> DebugLog {
        DebugLog {
            sink: Some(Arc::new(|line: &str| eprintln!("{line}"))),
        }
    }

    pub(crate) fn to_sink(sink: LogSink) -> DebugLog {
        DebugLog { sink: Some(sink) }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Logs one message, formatted only when enabled.
    pub(crate) fn log(&self, component: &str, message: impl FnOnce() -> String) {
        if let Some(sink) = &self.sink {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let stamp = dp_model::timestamp::format_utc(now.as_secs() as i64).replace('T', " ");
            sink(&format!(
                "{stamp},{:03} - {component} - DEBUG - {}",
                now.subsec_millis(),
                message()
            ));
        }
    }
}

const REDACTED: &str = "** redacted **";

/// The access key id with only its first and last four characters shown (`AKID…MPLE`).
pub fn mask_access_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A header value as it may be logged: `authorization` keeps its scope and signed-header list with the key id masked
/// and the signature removed; the session token and other credential-bearing headers are replaced by their length.
pub fn redact_header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "authorization" => redact_authorization(value),
        "x-amz-security-token"
        | "proxy-authorization"
        | "cookie"
        | "set-cookie"
        | "x-amz-server-side-encryption-customer-key" => {
            format!("** redacted (length={}) **", value.len())
        }
        _ => value.to_string(),
    }
}

fn redact_authorization(value: &str) -> String {
    let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return format!("** redacted (length={}) **", value.len());
    };
    let parts: Vec<String> = rest
        .split(", ")
        .map(|part| {
            if let Some(credential) = part.strip_prefix("Credential=") {
                let (id, scope) = credential.split_once('/').unwrap_or((credential, ""));
                format!("Credential={}/{scope}", mask_access_key_id(id))
            } else if part.starts_with("SignedHeaders=") {
                part.to_string()
            } else {
                let name = part.split('=').next().unwrap_or("");
                format!("{name}={REDACTED}")
            }
        })
        .collect();
    format!("AWS4-HMAC-SHA256 {}", parts.join(", "))
}

/// A body as it may be logged: JSON with the values of `*`-keyed fields masked; anything else summarised.
pub fn redact_body(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            mask_secret_fields(&mut value);
            value.to_string()
        }
        Err(_) => {
            // Not JSON: the text is shown (bodies dp sends are always JSON; this is what a server sent), cut short.
            let text = String::from_utf8_lossy(body);
            let mut shown: String = text.chars().take(2000).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            format!("(not JSON, {} bytes) {shown}", body.len())
        }
    }
}

/// Replaces, anywhere in `value`, the `stringValue` / `refValue` of an object whose `key` or `id` starts with `*`,
/// and every other occurrence of those values in the same document (a task object can carry a secret's value under
/// another name too, such as a `scriptArgument` holding `#{*password}`). Values shorter than 4 characters are only
/// masked in their own field.
pub fn mask_secret_fields(value: &mut Value) {
    let mut secrets = Vec::new();
    mask_fields(value, &mut secrets);
    secrets.retain(|s| s.chars().count() >= 4);
    if secrets.is_empty() {
        return;
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    mask_values(value, &secrets);
}

fn mask_fields(value: &mut Value, secrets: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let secret = ["key", "id"].iter().any(|k| {
                map.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with('*'))
            });
            for (k, v) in map.iter_mut() {
                if secret && (k == "stringValue" || k == "refValue") {
                    if let Value::String(s) = v {
                        secrets.push(std::mem::take(s));
                    }
                    *v = Value::String(REDACTED.to_string());
                } else {
                    mask_fields(v, secrets);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_fields(v, secrets)),
        _ => {}
    }
}

fn mask_values(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), REDACTED);
                }
            }
        }
        Value::Object(map) => map.values_mut().for_each(|v| mask_values(v, secrets)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_values(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_wherever_they_appear_in_the_document() {
        let mut v = serde_json::json!({"objects": [
            {"key": "*password", "stringValue": "hunter2-pw"},
            {"key": "scriptArgument", "stringValue": "hunter2-pw"},
            {"key": "command", "stringValue": "login --pass hunter2-pw now"},
            {"key": "*pin", "stringValue": "12"},
            {"key": "other", "stringValue": "12 stays"}
        ]});
        mask_secret_fields(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2-pw"), "{text}");
        assert!(
            text.contains(&format!("login --pass {REDACTED} now")),
            "{text}"
        );
        assert!(
            text.contains("12 stays"),
            "short values are masked only in their own field: {text}"
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask_access_key_id("AKIDEXAMPLE"), "AKID…MPLE");
        assert_eq!(mask_access_key_id("SHORT"), "****");
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/datapipeline/aws4_request, \
                    SignedHeaders=content-type;host, Signature=57443c20a6";
        assert_eq!(
            redact_header("Authorization", auth),
            "AWS4-HMAC-SHA256 Credential=AKID…MPLE/20261129/us-east-1/datapipeline/aws4_request, \
             SignedHeaders=content-type;host, Signature=** redacted **"
        );
        assert_eq!(
            redact_header("X-Amz-Security-Token", "abc"),
            "** redacted (length=3) **"
        );
        let body = br#"{"fields":[{"key":"*password","stringValue":"hunter2"},{"key":"a","stringValue":"b"}]}"#;
        assert_eq!(
            redact_body(body),
            r#"{"fields":[{"key":"*password","stringValue":"** redacted **"},{"key":"a","stringValue":"b"}]}"#
        );
    }
}
