//! Properties: no input makes the parser panic, and every renderable tree survives render → parse.

use std::borrow::Cow;

use dp_shorthand::{Value, parse, render};
use proptest::prelude::*;

/// Characters that exercise the grammar, plus any character at all.
fn shorthand_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            'a', 'b', 'k', '=', ',', '[', ']', '{', '}', '\'', '"', '\\', ' ', '\n', '\t', '@', 'é', '😀', '\u{a0}',
            '\u{2028}', '\u{1}', '-', '#', ':', '/', '.',
        ]),
        1 => any::<char>(),
    ]
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._#/:-]{0,6}"
}

/// Strings the renderer can write faithfully: anything except one that needs quotes and ends with a backslash.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9=,\\\\ ]{0,8}",
        prop::collection::vec(shorthand_char(), 0..8).prop_map(|c| c.into_iter().collect()),
        any::<String>(),
    ]
    .prop_filter("needs quotes and ends with a backslash", |s| {
        !s.ends_with('\\')
            || !render(&Value::List(vec![Value::from(s.as_str())])).starts_with("[\"")
    })
}

fn unique_keys(entries: Vec<(String, Value<'static>)>) -> Vec<(Cow<'static, str>, Value<'static>)> {
    let mut out: Vec<(Cow<'static, str>, Value<'static>)> = Vec::new();
    for (k, v) in entries {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((Cow::Owned(k), v));
        }
    }
    out
}

fn tree() -> impl Strategy<Value = Value<'static>> {
    let leaf = text().prop_map(Value::from);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::vec((key(), inner), 0..4).prop_map(|e| Value::Map(unique_keys(e))),
        ]
    })
}

fn top_level() -> impl Strategy<Value = Value<'static>> {
    prop::collection::vec((key(), tree()), 1..4).prop_map(|e| Value::Map(unique_keys(e)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_string_parses_or_fails_cleanly(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn grammar_soup_parses_or_fails_cleanly(chars in prop::collection::vec(shorthand_char(), 0..40)) {
        let s: String = chars.into_iter().collect();
        if let Err(e) = parse(&s) {
            // The offset is a code-point index inside the input (or just past its end).
            prop_assert!(e.offset() <= s.chars().count() + 1, "offset {} for {s:?}", e.offset());
            let _ = e.to_string();
        }
    }

    #[test]
    fn render_then_parse_gives_the_tree_back(value in top_level()) {
        let text = render(&value);
        let parsed = parse(&text);
        prop_assert_eq!(parsed.as_ref().ok(), Some(&value), "rendered as {:?}: {:?}", text, parsed);
    }
}
