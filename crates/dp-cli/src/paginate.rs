//! Automatic pagination over the model's paginators, with `--max-items`, `--starting-token` and `--page-size`,
//! producing the same merged result and the same NextToken format as the AWS CLI (botocore's paginator).

use base64::Engine as _;
use dp_model::{Operation, Paginator};
use serde_json::Value;

use crate::error::CliError;

/// Where pagination starts and stops.
#[derive(Debug, Default, Clone)]
pub struct PageOptions {
    /// `--max-items`.
    pub max_items: Option<usize>,
    /// The decoded `--starting-token`: the marker to send and the items to skip on the first page.
    pub start_marker: Option<String>,
    /// Items of the first page already returned.
    pub skip: usize,
}

/// Decodes a `--starting-token` as botocore does: base64 JSON, else the legacy `marker___skip`, else the whole
/// token is the marker.
pub fn decode_token(token: &str) -> (Option<String>, usize) {
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token)
        && let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes)
    {
        let skip = map
            .get("boto_truncate_amount")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let marker = match map.get("marker") {
            Some(Value::String(s)) if s != "None" => Some(s.clone()),
            _ => None,
        };
        return (marker, skip);
    }
    let parts: Vec<&str> = token.split("___").collect();
    if parts.len() == 2
        && let Ok(skip) = parts[1].parse::<usize>()
    {
        return (Some(parts[0].to_string()).filter(|m| m != "None"), skip);
    }
    (Some(token.to_string()), 0)
}

/// Encodes a resume token as botocore does: base64 of JSON with `", "` and `": "` separators, ASCII only.
pub fn encode_token(marker: Option<&str>, truncate: Option<usize>) -> String {
    let mut text = String::from("{\"marker\": ");
    match marker {
        Some(m) => crate::output::pyfmt::write_json_str(&mut text, m, true),
        None => text.push_str("null"),
    }
    if let Some(n) = truncate {
        text.push_str(&format!(", \"boto_truncate_amount\": {n}"));
    }
    text.push('}');
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// One page of a paginated call, already trimmed as the paginator trims it.
pub type Page = Value;

/// Runs the pagination loop. `call` sends one request with the given input and returns its (shaped) output.
/// Returns the pages and the resume token, if the output was truncated.
pub fn paginate(
    op: &Operation,
    paginator: &Paginator,
    input: &Value,
    options: &PageOptions,
    mut call: impl FnMut(&Value) -> Result<Value, CliError>,
) -> Result<(Vec<Page>, Option<String>), CliError> {
    let mut input = input.clone();
    let mut next_marker: Option<String> = options.start_marker.clone();
    let mut first = true;
    let mut total = 0usize;
    let mut previous: Option<String> = None;
    let mut pages = Vec::new();
    let mut resume = None;
    loop {
        if let Some(m) = &next_marker {
            input[paginator.input_token] = Value::String(m.clone());
        }
        let mut page = call(&input)?;
        let items_of = |page: &Value| {
            page.get(paginator.result_key)
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        if first {
            if options.skip > 0
                && let Some(Value::Array(items)) = page.get_mut(paginator.result_key)
            {
                let n = options.skip.min(items.len());
                items.drain(..n);
            }
            first = false;
        }
        let count = items_of(&page);
        if let Some(max) = options.max_items
            && total + count > max
        {
            let keep = max - total;
            if let Some(Value::Array(items)) = page.get_mut(paginator.result_key) {
                items.truncate(keep);
            }
            let skip = if next_marker == options.start_marker {
                options.skip
            } else {
                0
            };
            resume = Some(encode_token(next_marker.as_deref(), Some(keep + skip)));
            pages.push(page);
            break;
        }
        total += count;
        let more = paginator
            .more_results
            .is_none_or(|k| page.get(k).and_then(Value::as_bool).unwrap_or(false));
        let token = page
            .get(paginator.output_token)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from);
        pages.push(page);
        let Some(token) = token.filter(|_| more) else {
            break;
        };
        if options.max_items == Some(total) {
            resume = Some(encode_token(Some(&token), None));
            break;
        }
        if previous.as_deref() == Some(token.as_str()) {
            return Err(CliError::other(
                format!(
                    "Error during pagination: The same next token was received twice: {{'marker': {}}}",
                    dp_model::pyrepr::string_repr(&token)
                ),
                crate::error::exit::OTHER,
            ));
        }
        previous = Some(token.clone());
        next_marker = Some(token);
    }
    let _ = op;
    Ok((pages, resume))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_botocore() {
        assert_eq!(
            encode_token(None, Some(1)),
            "eyJtYXJrZXIiOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ=="
        );
        assert_eq!(
            decode_token("eyJtYXJrZXIiOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ=="),
            (None, 1)
        );
        assert_eq!(
            decode_token(&encode_token(Some("m2"), None)),
            (Some("m2".into()), 0)
        );
        assert_eq!(decode_token("garbage"), (Some("garbage".into()), 0));
        assert_eq!(decode_token("abc___3"), (Some("abc".into()), 3));
        // Python: base64.b64encode(json.dumps({"marker": "a\bb\fc\x7f\u00e9\U0001F600\x01"}).encode())
        assert_eq!(
            encode_token(Some("a\u{8}b\u{c}c\u{7f}\u{e9}\u{1F600}\u{1}"), None),
            "eyJtYXJrZXIiOiAiYVxiYlxmY1x1MDA3Zlx1MDBlOVx1ZDgzZFx1ZGUwMFx1MDAwMSJ9"
        );
    }
}
