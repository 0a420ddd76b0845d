//! `dp_cli::pyjson` against CPython's `json.loads`: a table of cases written out, and thousands of malformed
//! documents (valid JSON mutated by deleted, inserted and replaced characters) compared with the installed
//! python3 (the reference's CPython 3.11) message for message and position for position.

use std::process::Command;

use dp_cli::pyjson::{ErrorKind, loads};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

/// What Python makes of one document, as the oracle script reports it.
#[derive(Debug)]
enum Python {
    /// Read; the value re-encoded by `json.dumps`.
    Ok(Value),
    /// Read, but holding what dp does not carry (non-finite or out-of-range numbers, lone surrogates).
    Unsupported,
    /// `str(JSONDecodeError)`.
    Error(String),
}

const ORACLE: &str = r#"
import json, math, sys
def fits(v):
    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, int):
        return -2**63 <= v < 2**64
    if isinstance(v, str):
        return not any(0xd800 <= ord(c) < 0xe000 for c in v)
    if isinstance(v, list):
        return all(fits(x) for x in v)
    return all(fits(k) and fits(x) for k, x in v.items())
out = []
for doc in json.load(open(sys.argv[1], encoding='utf-8')):
    try:
        v = json.loads(doc)
    except json.JSONDecodeError as e:
        out.append({"error": str(e)})
        continue
    out.append({"ok": json.dumps(v)} if fits(v) else {"unsupported": True})
print(json.dumps(out))
"#;

/// Python's verdict on each document, from one python3 process.
fn python(docs: &[String]) -> Vec<Python> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("dp-pyjson-{}-{n}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(docs).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(ORACLE)
        .arg(&path)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .expect("python3 runs (the reference's Python is the oracle)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Value> = serde_json::from_slice(&out.stdout).expect("python prints JSON");
    verdicts
        .into_iter()
        .map(|v| {
            if let Some(text) = v.get("ok").and_then(Value::as_str) {
                // Read with dp's reader: serde_json's float parsing is not correctly rounded (`3e+84`).
                Python::Ok(loads(text).expect("json.dumps output"))
            } else if let Some(message) = v.get("error").and_then(Value::as_str) {
                Python::Error(message.to_string())
            } else {
                Python::Unsupported
            }
        })
        .collect()
}

/// Where dp and Python disagree about `doc`, if they do.
fn disagreement(doc: &str, python: &Python) -> Option<String> {
    let ours = loads(doc);
    let agree = match (&ours, python) {
        (Ok(v), Python::Ok(p)) => v == p,
        (Err(e), Python::Unsupported) => e.kind() == ErrorKind::Unsupported,
        (Err(e), Python::Error(p)) => e.kind() == ErrorKind::Python && e.to_string() == *p,
        _ => false,
    };
    (!agree).then(|| format!("{doc:?}: dp {ours:?}, python {python:?}"))
}

/// Written-out cases: the document and Python's message, or `ok:` and the value as JSON, or `unsupported`.
fn check(doc: &str, expected: &str) {
    match loads(doc) {
        Ok(v) => assert_eq!(format!("ok:{v}"), expected, "{doc:?}"),
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            assert_eq!("unsupported", expected, "{doc:?}: {e}");
        }
        Err(e) => assert_eq!(e.to_string(), expected, "{doc:?}"),
    }
}

const TABLE: &[(&str, &str)] = &[
    (
        "[{\"key\": \"a\",}]",
        "Expecting property name enclosed in double quotes: line 1 column 14 (char 13)",
    ),
    (
        "{\"taskId\": \"x\",}",
        "Expecting property name enclosed in double quotes: line 1 column 16 (char 15)",
    ),
    (
        "{\"taskId\" \"x\"}",
        "Expecting ':' delimiter: line 1 column 11 (char 10)",
    ),
    ("[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"),
    (
        "{\"a\":1 \"b\"}",
        "Expecting ',' delimiter: line 1 column 8 (char 7)",
    ),
    ("", "Expecting value: line 1 column 1 (char 0)"),
    ("  ", "Expecting value: line 1 column 3 (char 2)"),
    ("[", "Expecting value: line 1 column 2 (char 1)"),
    ("[1,", "Expecting value: line 1 column 4 (char 3)"),
    ("[,]", "Expecting value: line 1 column 2 (char 1)"),
    ("[1,\n2,]", "Expecting value: line 2 column 3 (char 6)"),
    (
        "{",
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ),
    (
        "{\"a\"",
        "Expecting ':' delimiter: line 1 column 5 (char 4)",
    ),
    ("{\"a\":", "Expecting value: line 1 column 6 (char 5)"),
    (
        "{\"a\":1",
        "Expecting ',' delimiter: line 1 column 7 (char 6)",
    ),
    ("-", "Expecting value: line 1 column 1 (char 0)"),
    ("-Inf", "Expecting value: line 1 column 1 (char 0)"),
    ("nul", "Expecting value: line 1 column 1 (char 0)"),
    ("\u{a0}[]", "Expecting value: line 1 column 1 (char 0)"),
    // Numbers end where Python's scanner backtracks.
    ("1.", "Extra data: line 1 column 2 (char 1)"),
    ("1.e5", "Extra data: line 1 column 2 (char 1)"),
    ("1e+", "Extra data: line 1 column 2 (char 1)"),
    ("01", "Extra data: line 1 column 2 (char 1)"),
    ("1.\u{663}", "Extra data: line 1 column 2 (char 1)"),
    ("[]]", "Extra data: line 1 column 3 (char 2)"),
    ("1 2", "Extra data: line 1 column 3 (char 2)"),
    // Strings: control characters where they are, unterminated strings at the opening quote.
    (
        "{\"a\": \"line\nbreak\"}",
        "Invalid control character at: line 1 column 12 (char 11)",
    ),
    (
        "[\"\u{e9}\u{e9}\t\"]",
        "Invalid control character at: line 1 column 5 (char 4)",
    ),
    (
        "[{\"key\": \"abc}]",
        "Unterminated string starting at: line 1 column 10 (char 9)",
    ),
    (
        "\"\\",
        "Unterminated string starting at: line 1 column 1 (char 0)",
    ),
    ("\"\\x\"", "Invalid \\escape: line 1 column 2 (char 1)"),
    (
        "[{\"key\": \"a\\u12G4\"}]",
        "Invalid \\uXXXX escape: line 1 column 13 (char 12)",
    ),
    (
        "\"\\u12\"",
        "Invalid \\uXXXX escape: line 1 column 3 (char 2)",
    ),
    (
        "\"\\ud834\\udd1e",
        "Invalid \\uXXXX escape: line 1 column 9 (char 8)",
    ),
    (
        "\"\\ud834\\u",
        "Invalid \\uXXXX escape: line 1 column 9 (char 8)",
    ),
    (
        "\"\\ud834\\uzzzz\"",
        "Invalid \\uXXXX escape: line 1 column 9 (char 8)",
    ),
    (
        "\u{feff}[]",
        "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
    ),
    // Positions count code points, not bytes; columns restart after `\n` only.
    (
        "{\"\u{65e5}\u{672c}\": 1,}",
        "Expecting property name enclosed in double quotes: line 1 column 10 (char 9)",
    ),
    (
        "[1,\r\n\u{1f600}]",
        "Expecting value: line 2 column 1 (char 5)",
    ),
    // What Python reads.
    ("\"\\ud834\\udd1e\"", "ok:\"\u{1d11e}\""),
    ("\"a\u{7f}\"", "ok:\"a\u{7f}\""),
    ("-0", "ok:0"),
    ("1E2", "ok:100.0"),
    ("{\"a\": 1, \"b\": 2, \"a\": 3}", "ok:{\"a\":3,\"b\":2}"),
    (" \t\n[true, false, null] \r\n", "ok:[true,false,null]"),
    // What Python reads but dp does not carry.
    ("NaN", "unsupported"),
    ("[-Infinity]", "unsupported"),
    ("1E400", "unsupported"),
    ("123456789012345678901234567890", "unsupported"),
    ("\"\\ud800\"", "unsupported"),
];

#[test]
fn table() {
    for (doc, expected) in TABLE {
        check(doc, expected);
    }
}

#[test]
fn table_agrees_with_python() {
    let docs: Vec<String> = TABLE.iter().map(|(d, _)| d.to_string()).collect();
    let mismatches: Vec<String> = docs
        .iter()
        .zip(python(&docs))
        .filter_map(|(doc, p)| disagreement(doc, &p))
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A syntax error wins over a value dp does not carry, as Python would report it.
#[test]
fn syntax_errors_come_before_unsupported_values() {
    check("[NaN, 1,]", "Expecting value: line 1 column 9 (char 8)");
}

#[test]
fn too_deep_is_refused_with_a_position() {
    let doc = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let e = loads(&doc).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.pos(), dp_cli::pyjson::MAX_DEPTH);
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(loads(&ok).is_ok());
}

/// Valid documents to start from: realistic definitions, escapes and number forms Python has rules for.
const SEEDS: &[&str] = &[
    r#"{"objects": [{"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"}, {"id": "A", "type": "ShellCommandActivity", "command": "echo hi", "runsOn": {"ref": "R"}, "dependsOn": [{"ref": "B"}]}], "parameters": [{"id": "myP", "type": "String"}], "values": {"myP": ["a", "b"]}}"#,
    "[{\"key\": \"a\", \"stringValue\": \"b\"}, {\"key\": \"c\", \"refValue\": \"d\"}]",
    "{\"taskId\": \"x\", \"fields\": []}",
    "[\"\\ud834\\udd1e\", \"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\", \"\u{65e5}\u{672c}\u{1f600}\"]",
    "[0, -0, 1.5, -2.25e10, 1E+2, 3e-4, 10, 123456789, true, false, null]",
    "{\n  \"a\": {\n    \"b\": [\n      1,\n      2\n    ]\n  }\n}\n",
    "[NaN, Infinity, -Infinity]",
    "\"plain\"",
    "{}",
];

/// Characters worth inserting: structure, string and number syntax, whitespace, controls and non-ASCII.
const PALETTE: &[char] = &[
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '"',
    '\\',
    'u',
    'd',
    '8',
    'e',
    'E',
    '.',
    '-',
    '+',
    '0',
    '1',
    'a',
    'n',
    'N',
    'I',
    ' ',
    '\n',
    '\t',
    '\r',
    '\u{0}',
    '\u{1f}',
    '\u{7f}',
    '\u{a0}',
    '\u{e9}',
    '\u{663}',
    '\u{1f600}',
    '\u{feff}',
];

fn mutated() -> impl Strategy<Value = String> {
    let seed = prop::sample::select(SEEDS);
    let edit = (
        0..3u8,
        any::<prop::sample::Index>(),
        prop::sample::select(PALETTE),
    );
    (seed, prop::collection::vec(edit, 1..4)).prop_map(|(seed, edits)| {
        let mut chars: Vec<char> = seed.chars().collect();
        for (op, at, c) in edits {
            let i = at.index(chars.len() + 1);
            match op {
                0 if i < chars.len() => {
                    chars.remove(i);
                }
                1 if i < chars.len() => chars[i] = c,
                _ => chars.insert(i, c),
            }
        }
        chars.into_iter().collect()
    })
}

/// Thousands of mutated documents and short random strings, each read by dp and by python3: same value, or same
/// message and position.
#[test]
fn mutated_documents_agree_with_python() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = mutated();
    let mut docs: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    for _ in 0..5000 {
        docs.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    // And short strings of the palette alone, which reach the scanner's corners (`-`, `"\u`, `1e`) directly.
    let short = prop::collection::vec(prop::sample::select(PALETTE), 0..10)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    for _ in 0..3000 {
        docs.push(short.new_tree(&mut runner).unwrap().current());
    }
    let verdicts = python(&docs);
    assert_eq!(verdicts.len(), docs.len());
    let errors = verdicts
        .iter()
        .filter(|v| matches!(v, Python::Error(_)))
        .count();
    // The mutations must mostly break the documents, or the comparison says little about errors.
    assert!(
        errors > docs.len() / 2,
        "only {errors} of {} documents are invalid",
        docs.len()
    );
    // Every message of Python's scanner is among them, so none goes untested.
    for message in [
        "Expecting value",
        "Expecting property name enclosed in double quotes",
        "Expecting ':' delimiter",
        "Expecting ',' delimiter",
        "Invalid control character at",
        "Unterminated string starting at",
        "Invalid \\escape",
        "Invalid \\uXXXX escape",
        "Extra data",
        "Unexpected UTF-8 BOM",
    ] {
        assert!(
            verdicts
                .iter()
                .any(|v| matches!(v, Python::Error(e) if e.starts_with(message))),
            "no mutated document gives {message:?}"
        );
    }
    let mismatches: Vec<String> = docs
        .iter()
        .zip(&verdicts)
        .filter_map(|(doc, p)| disagreement(doc, p))
        .take(20)
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The seeds are valid for Python, so every error among the mutated documents comes from a mutation.
#[test]
fn seeds_are_what_python_reads() {
    let docs: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    for (doc, verdict) in docs.iter().zip(python(&docs)) {
        assert!(
            !matches!(verdict, Python::Error(_)),
            "seed {doc:?} is invalid for Python: {verdict:?}"
        );
    }
}

/// `fileb://` JSON: the byte order mark Python's `json.loads(bytes)` drops, and the bytes repr the reference
/// echoes, against python3's `repr(bytes)`.
#[test]
fn bytes_are_read_and_echoed_as_python_does() {
    check_bytes(
        "\u{feff}{\"a\": 1,}",
        "Expecting property name enclosed in double quotes: line 1 column 9 (char 8)",
    );
    assert_eq!(
        dp_cli::pyjson::loads_bytes("\u{feff}[1]").unwrap(),
        serde_json::json!([1])
    );
    let texts = [
        "{\"a\": 1}\n",
        "it's",
        "it's \"quoted\"",
        "tab\there\r\nback\\slash",
        "caf\u{e9} \u{65e5}\u{1f600}",
        "\u{feff}\u{0}\u{1f}\u{7f}~ ",
        "",
    ];
    let script = "import json, sys\nprint(json.dumps([repr(t.encode('utf-8')) for t in json.load(open(sys.argv[1], encoding='utf-8'))]))";
    let path = std::env::temp_dir().join(format!("dp-pyjson-bytes-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&texts).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reprs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    for (text, expected) in texts.iter().zip(reprs) {
        assert_eq!(
            dp_cli::pyjson::bytes_repr(text.as_bytes()),
            expected,
            "{text:?}"
        );
    }
}

fn check_bytes(doc: &str, expected: &str) {
    let e = dp_cli::pyjson::loads_bytes(doc).unwrap_err();
    assert_eq!(e.to_string(), expected, "{doc:?}");
}
