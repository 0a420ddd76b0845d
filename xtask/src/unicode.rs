//! The Unicode tables that make dp print as the reference's Python does: which characters `repr()` escapes
//! (`str.isprintable()`), and which ones `awscli.table` counts as two columns (`east_asian_width` in `WFA`).
//!
//! They must follow the Python the reference CLI runs on, not the newest Unicode, so their source is that Python's
//! `unicodedata`: `cargo xtask import-unicode` asks python3 and writes the derived ranges, with the CPython and
//! Unicode versions, to [`DATA`] (committed). `cargo xtask codegen` turns that file into the two generated tables
//! below, under the same `--check` and freshness test as the model code. Nothing here touches the network.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The committed source data, relative to the workspace root.
pub(crate) const DATA: &str = "xtask/data/python-unicode.txt";
/// The generated table of characters Python does not consider printable (dp-model).
pub(crate) const PRINTABLE_TABLE: &str = "crates/dp-model/src/printable/table.rs";
/// The generated table of characters the table formatter counts as two columns (dp-cli).
pub(crate) const WIDTH_TABLE: &str = "crates/dp-cli/src/output/width/table.rs";

/// Prints, as the data file's body, every range of each property; run by [`import`] with python3.
const PYTHON: &str = r#"
import platform, unicodedata

def ranges(name, test):
    start = None
    for cp in range(0x110001):
        inside = cp < 0x110000 and test(chr(cp))
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            print("%s %04X..%04X" % (name, start, cp - 1))
            start = None

print("python %s" % platform.python_version())
print("unicode %s" % unicodedata.unidata_version)
ranges("wide", lambda c: unicodedata.east_asian_width(c) in "WFA")
ranges("nonprintable", lambda c: not c.isprintable())
"#;

const HEADER: &str = "\
# Unicode properties as the reference CLI's Python sees them: the source of dp's generated tables
# crates/dp-model/src/printable/table.rs (nonprintable: not str.isprintable()) and
# crates/dp-cli/src/output/width/table.rs (wide: unicodedata.east_asian_width(c) in 'WFA', as awscli.table counts).
# Origin: the `python` and `unicode` lines below name the CPython release and its unicodedata.unidata_version.
# Written by `cargo xtask import-unicode [PYTHON]` (default python3, the reference CLI's interpreter); read by
# `cargo xtask codegen`. Do not edit by hand.
";

/// `cargo xtask import-unicode [PYTHON]`: writes [`DATA`] from the given Python's `unicodedata`.
pub(crate) fn import(python: Option<&str>) -> Result<()> {
    let python = python.unwrap_or("python3");
    let output = Command::new(python)
        .args(["-c", PYTHON])
        .output()
        .with_context(|| format!("running {python}"))?;
    if !output.status.success() {
        bail!(
            "{python} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let body = String::from_utf8(output.stdout)?;
    let text = format!("{HEADER}{body}");
    // Refuse to write a file that codegen could not read.
    let data = parse(&text)?;
    let path = crate::project_root().join(DATA);
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {DATA} from CPython {} (Unicode {}): {} wide and {} non-printable ranges",
        data.python,
        data.unicode,
        data.wide.len(),
        data.nonprintable.len()
    );
    Ok(())
}

/// The parsed data file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Data {
    pub(crate) python: String,
    pub(crate) unicode: String,
    pub(crate) wide: Vec<(u32, u32)>,
    pub(crate) nonprintable: Vec<(u32, u32)>,
}

pub(crate) fn parse(text: &str) -> Result<Data> {
    let mut data = Data {
        python: String::new(),
        unicode: String::new(),
        wide: Vec::new(),
        nonprintable: Vec::new(),
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let context = || format!("{DATA} line {}: {line:?}", number + 1);
        let (key, value) = line.split_once(' ').with_context(context)?;
        match key {
            "python" => data.python = value.to_owned(),
            "unicode" => data.unicode = value.to_owned(),
            "wide" | "nonprintable" => {
                let (lo, hi) = value.split_once("..").with_context(context)?;
                let lo = u32::from_str_radix(lo, 16).with_context(context)?;
                let hi = u32::from_str_radix(hi, 16).with_context(context)?;
                let ranges = if key == "wide" {
                    &mut data.wide
                } else {
                    &mut data.nonprintable
                };
                // Sorted and disjoint (and not touching), or the binary search of `in_ranges` is wrong.
                if lo > hi
                    || hi > 0x10FFFF
                    || ranges.last().is_some_and(|&(_, last)| lo <= last + 1)
                {
                    bail!(
                        "{}: ranges must be sorted, disjoint and within Unicode",
                        context()
                    );
                }
                ranges.push((lo, hi));
            }
            _ => bail!("{}: unknown key", context()),
        }
    }
    if data.python.is_empty() || data.unicode.is_empty() {
        bail!("{DATA} does not name its python and unicode versions");
    }
    Ok(data)
}

/// The two generated files, `(path, Rust source before rustfmt)`.
pub(crate) fn generate(data: &Data) -> Vec<(&'static str, String)> {
    vec![
        (
            PRINTABLE_TABLE,
            table(
                data,
                "NON_PRINTABLE",
                "Inclusive code-point ranges that Python does not consider printable: `not str.isprintable()`",
                &data.nonprintable,
            ),
        ),
        (
            WIDTH_TABLE,
            table(
                data,
                "WIDE",
                "Inclusive code-point ranges whose East-Asian width is W, F or A",
                &data.wide,
            ),
        ),
    ]
}

fn table(data: &Data, name: &str, doc: &str, ranges: &[(u32, u32)]) -> String {
    let mut out = format!(
        "// Generated by `cargo xtask codegen` from {DATA} (CPython {}, Unicode {}); do not edit.\n\n",
        data.python, data.unicode
    );
    let _ = writeln!(out, "/// {doc} (Unicode {}).", data.unicode);
    let _ = writeln!(out, "#[rustfmt::skip]");
    let _ = writeln!(out, "pub(super) const {name}: &[(u32, u32)] = &[");
    let mut line = String::from("   ");
    for &(lo, hi) in ranges {
        let item = format!(" ({lo:#X}, {hi:#X}),");
        if line.len() + item.len() > 120 {
            let _ = writeln!(out, "{line}");
            line = String::from("   ");
        }
        line.push_str(&item);
    }
    if line.trim().is_empty() {
        out.push_str("];\n");
    } else {
        let _ = writeln!(out, "{line}\n];");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_and_refuses_unsorted_ranges() {
        let data =
            super::parse("# c\npython 3.11.7\nunicode 14.0.0\nwide 00A1..00A1\nwide 00A4..00A4\n")
                .unwrap();
        assert_eq!(
            (data.wide.as_slice(), data.python.as_str()),
            (&[(0xA1, 0xA1), (0xA4, 0xA4)][..], "3.11.7")
        );
        assert!(super::parse("python 3\nunicode 14\nwide 00A4..00A4\nwide 00A1..00A1\n").is_err());
        assert!(super::parse("python 3\nunicode 14\nwide 00A1..00A2\nwide 00A3..00A4\n").is_err());
        assert!(super::parse("wide 00A1..00A1\n").is_err());
    }
}
