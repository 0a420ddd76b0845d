//! The differential test: thousands of generated inputs, valid and invalid, parsed by dp and by the installed AWS
//! CLI's `awscli.shorthand.ShorthandParser`; the outcomes must be identical (same tree, or the same error at the
//! same code-point offset, or the same file-loading message).
//!
//! Deterministic: the generator is seeded. Python runs once, with all inputs in one JSON file. If python3 or awscli
//! is missing the test fails; set `DP_SKIP_AWSCLI_DIFFERENTIAL=1` to skip it knowingly.

use std::process::Command;

use std::borrow::Cow;

use dp_shorthand::{Value, load_file, parse_with_files, render};

use crate::support::outcome;

const SEED: u64 = 0x5eed_2026;

/// Tokens that exercise every rule; `$D` becomes a directory holding `val.txt` and `bin.dat`.
const TOKENS: &[&str] = &[
    "a",
    "b",
    "k",
    "key",
    "stringValue",
    "=",
    "=",
    "=",
    ",",
    ",",
    ",",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "\\",
    "\\,",
    "\\'",
    "\\\"",
    " ",
    " ",
    "\n",
    "\t",
    "\r",
    "@",
    "@=",
    "é",
    "✓",
    "😀",
    "\u{a0}",
    "\u{2028}",
    "\u{85}",
    "\u{3000}",
    "\u{1}",
    "\u{1c}",
    "-",
    "_",
    ".",
    "#",
    ":",
    "/",
    "x=y",
    "1",
    "true",
    "(",
    ";",
    "|",
    "~",
    "\u{7f}",
    "\u{ffff}",
];

/// Tokens mixed with file references. U+FFFF is left out here: a missing file's message quotes the path with
/// Python's `repr`, which escapes non-printable characters, and `dp_model::pyrepr::string_repr` (not this crate)
/// does not yet escape U+FFFF. Everywhere else U+FFFF is generated.
const FILE_MIX: &[&str] = &[
    "a", "b", "=", "=", ",", ",", "[", "]", "{", "}", "'", "\"", "\\", "\\,", " ", "\n", "@", "é",
    "😀", "\u{a0}", "\u{1}", "#", "/", "x=y",
];

const FILE_TOKENS: &[&str] = &[
    "file://$D/val.txt",
    "fileb://$D/val.txt",
    "file://$D/bin.dat",
    "file://$D/nope",
    "@=",
];

fn soup(rng: &mut fastrand::Rng, tokens: &[&[&str]]) -> String {
    let mut s = String::new();
    if rng.u8(..4) != 0 {
        s.push_str(["a=", "key=", "a@=", "a=[", "a={", "=", "a = "][rng.usize(..7)]);
    }
    for _ in 0..rng.usize(0..14) {
        let set = tokens[rng.usize(..tokens.len())];
        s.push_str(set[rng.usize(..set.len())]);
    }
    s
}

fn random_tree(rng: &mut fastrand::Rng, depth: u32) -> Value<'static> {
    let leaf = |rng: &mut fastrand::Rng| {
        let n = rng.usize(0..5);
        Value::from(
            (0..n)
                .map(|_| TOKENS[rng.usize(..TOKENS.len())])
                .collect::<String>(),
        )
    };
    match (depth, rng.u8(..5)) {
        (0, _) | (_, 0..=2) => leaf(rng),
        (_, 3) => Value::List(
            (0..rng.usize(0..4))
                .map(|_| random_tree(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Map(entries(rng, depth - 1)),
    }
}

fn entries(rng: &mut fastrand::Rng, depth: u32) -> Vec<(Cow<'static, str>, Value<'static>)> {
    let mut out: Vec<(Cow<'static, str>, Value<'static>)> = Vec::new();
    for _ in 0..rng.usize(1..4) {
        let key: String = (0..rng.usize(0..4))
            .map(|_| ["a", "b", "K9", "-", "x.y", "#"][rng.usize(..6)])
            .collect();
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key.into(), random_tree(rng, depth)));
        }
    }
    out
}

/// Removes, duplicates or replaces one character, to turn valid input into nearly valid input.
fn mutate(rng: &mut fastrand::Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return s.to_owned();
    }
    let at = rng.usize(..chars.len());
    match rng.u8(..3) {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, chars[at]),
        _ => chars[at] = [',', '=', '[', ']', '{', '}', '\'', '"', ' ', '\\'][rng.usize(..10)],
    }
    chars.into_iter().collect()
}

fn inputs(dir: &str) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut out = Vec::new();
    for _ in 0..2000 {
        out.push(soup(&mut rng, &[TOKENS]));
    }
    for _ in 0..300 {
        out.push(soup(&mut rng, &[FILE_MIX, FILE_TOKENS]));
    }
    for _ in 0..500 {
        out.push(render(&Value::Map(entries(&mut rng, 3))));
    }
    for _ in 0..700 {
        let valid = render(&Value::Map(entries(&mut rng, 3)));
        out.push(mutate(&mut rng, &valid));
    }
    out.iter().map(|s| s.replace("$D", dir)).collect()
}

#[test]
fn dp_parses_like_the_installed_aws_cli() {
    if std::env::var_os("DP_SKIP_AWSCLI_DIFFERENTIAL").is_some() {
        eprintln!("skipped: DP_SKIP_AWSCLI_DIFFERENTIAL is set");
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("dp-shorthand-differential-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("val.txt"), "from-file\n").unwrap();
    std::fs::write(dir.join("bin.dat"), [0xff, 0x00, b'x']).unwrap();
    let inputs = inputs(dir.to_str().unwrap());
    let input_file = dir.join("inputs.json");
    std::fs::write(&input_file, serde_json::to_string(&inputs).unwrap()).unwrap();

    let oracle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle.py");
    let run = Command::new("python3")
        .arg(oracle)
        .arg(&input_file)
        .output();
    let run = run.expect("python3 must be installed (or set DP_SKIP_AWSCLI_DIFFERENTIAL=1)");
    assert!(
        run.status.success(),
        "the oracle failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected: Vec<String> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(expected.len(), inputs.len());

    let mut failures = Vec::new();
    let mut valid = 0;
    for (input, expected) in inputs.iter().zip(&expected) {
        let got = outcome(&parse_with_files(input, &mut load_file));
        if !expected.starts_with("error")
            && !expected.starts_with("duplicate")
            && !expected.starts_with("file")
        {
            valid += 1;
        }
        if got != *expected {
            failures.push(format!("input {input:?}\n  aws: {expected}\n  dp:  {got}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "differential: {} inputs, {valid} valid, {} differ",
        inputs.len(),
        failures.len()
    );
    assert!(
        valid >= 500 && inputs.len() - valid >= 500,
        "the generator must give both valid and invalid inputs"
    );
    assert!(
        failures.is_empty(),
        "{} of {} inputs differ:\n{}",
        failures.len(),
        inputs.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
