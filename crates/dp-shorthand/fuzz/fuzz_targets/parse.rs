//! Fuzz target: any string must parse or fail cleanly; errors must point inside the input; a parsed tree must
//! render back to shorthand that parses to the same tree (unless it holds a string that shorthand cannot write);
//! typing a parsed tree against the `--fields` shape must not panic.
//!
//! Run: `cd crates/dp-shorthand/fuzz && cargo +nightly fuzz run parse -- -max_total_time=600`

#![no_main]

use dp_shorthand::{Value, parse, render, to_json};
use libfuzzer_sys::fuzz_target;

/// Whether the tree holds a string that needs quotes and ends with a backslash (see `render`'s docs).
fn has_unwritable_string(value: &Value) -> bool {
    match value {
        Value::String(s) => s.ends_with('\\'),
        Value::Bytes(_) => true,
        Value::List(items) => items.iter().any(has_unwritable_string),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_unwritable_string(v)),
    }
}

fuzz_target!(|input: &str| {
    match parse(input) {
        Ok(value) => {
            let text = render(&value);
            match parse(&text) {
                Ok(again) => assert_eq!(again, value, "render gave {text:?} for {input:?}"),
                Err(e) => assert!(
                    has_unwritable_string(&value),
                    "render gave {text:?} for {input:?}: {e}"
                ),
            }
            let fields = dp_model::operation("ReportTaskProgress")
                .and_then(|o| o.input)
                .and_then(|s| s.member("fields"));
            let _ = to_json(&Value::List(vec![value]), fields.unwrap().shape, "fields");
        }
        Err(e) => {
            assert!(
                e.offset() <= input.chars().count() + 1,
                "offset {} for {input:?}",
                e.offset()
            );
            let _ = e.to_string();
        }
    }
});
