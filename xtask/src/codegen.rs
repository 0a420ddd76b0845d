//! `cargo xtask codegen`: the committed model → `crates/dp-model/src/generated.rs`, and the committed Unicode data
//! → the Unicode tables of dp-model and dp-cli (see `unicode.rs`).
//!
//! The output is deterministic (model order is BTreeMap/list order, no timestamps, no network) and formatted with
//! rustfmt, so `--check` can compare bytes. Nothing here is hand-tuned per operation: every table and type comes
//! from walking the model.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

const GENERATED: &str = "crates/dp-model/src/generated.rs";
const COMMAND: &str = "cargo xtask codegen";

pub(crate) fn run(check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for (path, contents) in outputs()? {
        let full = crate::project_root().join(path);
        let current = std::fs::read_to_string(&full).unwrap_or_default();
        if current == contents {
            eprintln!("{path} is up to date");
        } else if check {
            stale.push(path);
        } else {
            std::fs::write(&full, contents)
                .with_context(|| format!("writing {}", full.display()))?;
            eprintln!("wrote {path}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "{} stale: run `{COMMAND}` and commit the result",
            stale.join(", ")
        );
    }
    Ok(())
}

/// Every generated file and what it must contain: the model code from the committed model, and the Unicode tables
/// from the committed Unicode data (`unicode.rs`).
fn outputs() -> Result<Vec<(&'static str, String)>> {
    let model: Value = serde_json::from_str(&crate::read_to_string(&crate::model_path())?)?;
    let mut files = vec![(GENERATED, rustfmt(&generate(&model)?)?)];
    let data = crate::unicode::parse(&crate::read_to_string(
        &crate::project_root().join(crate::unicode::DATA),
    )?)?;
    for (path, source) in crate::unicode::generate(&data) {
        files.push((path, rustfmt(&source)?));
    }
    Ok(files)
}

fn rustfmt(source: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running rustfmt (install it with `rustup component add rustfmt`)")?;
    child.stdin.take().unwrap().write_all(source.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("rustfmt failed on the generated code");
    }
    Ok(String::from_utf8(out.stdout)?)
}

struct Model<'a> {
    shapes: BTreeMap<&'a str, &'a Value>,
    operations: BTreeMap<&'a str, &'a Value>,
    paginators: BTreeMap<&'a str, &'a Value>,
    metadata: &'a Value,
}

fn obj(v: &Value) -> BTreeMap<&str, &Value> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// Names used in generated Rust for a model shape's static descriptor.
fn static_name(shape: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = shape.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase()
            && i > 0
            && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit())
        {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn upper_camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn snake(name: &str) -> String {
    let s = static_name(name).to_ascii_lowercase();
    match s.as_str() {
        "type" | "ref" | "match" | "mod" | "fn" | "struct" | "enum" => format!("r#{s}"),
        _ => s,
    }
}

fn kebab(name: &str) -> String {
    snake(name).trim_start_matches("r#").replace('_', "-")
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// Parses the model's pattern dialect (a single Java character class followed by `*`) into code-point ranges.
/// Anything else is refused, so a model change that needs a real regex engine cannot slip through unnoticed.
fn pattern_ranges(pattern: &str) -> Result<Vec<(u32, u32)>> {
    let inner = pattern
        .strip_prefix('[')
        .and_then(|p| p.strip_suffix("]*"))
        .with_context(|| format!("unsupported pattern {pattern:?}: expected `[class]*`"))?;
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let atom = |i: &mut usize| -> Result<u32> {
        if chars[*i] != '\\' {
            let c = chars[*i] as u32;
            *i += 1;
            return Ok(c);
        }
        let esc = chars.get(*i + 1).copied().context("dangling backslash")?;
        match esc {
            'r' => {
                *i += 2;
                Ok(0x0D)
            }
            'n' => {
                *i += 2;
                Ok(0x0A)
            }
            't' => {
                *i += 2;
                Ok(0x09)
            }
            'u' => {
                let hex: String = chars[*i + 2..*i + 6].iter().collect();
                let unit = u32::from_str_radix(&hex, 16)?;
                *i += 6;
                if (0xD800..0xDC00).contains(&unit)
                    && chars.get(*i) == Some(&'\\')
                    && chars.get(*i + 1) == Some(&'u')
                {
                    let hex: String = chars[*i + 2..*i + 6].iter().collect();
                    let low = u32::from_str_radix(&hex, 16)?;
                    *i += 6;
                    return Ok(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
                }
                Ok(unit)
            }
            other => bail!("unsupported escape \\{other} in pattern {pattern:?}"),
        }
    };
    let mut ranges = Vec::new();
    while i < chars.len() {
        let start = atom(&mut i)?;
        if chars.get(i) == Some(&'-') && i + 1 < chars.len() {
            i += 1;
            let end = atom(&mut i)?;
            ranges.push((start, end));
        } else {
            ranges.push((start, start));
        }
    }
    ranges.sort();
    Ok(ranges)
}

fn generate(model: &Value) -> Result<String> {
    let m = Model {
        shapes: obj(&model["shapes"]),
        operations: obj(&model["operations"]),
        paginators: obj(&model["paginators"]),
        metadata: &model["metadata"],
    };
    let mut out = String::new();
    writeln!(
        out,
        "// @generated by `{COMMAND}` from crates/dp-model/model/datapipeline.json. Do not edit by hand."
    )?;
    writeln!(
        out,
        "//! Generated tables and types of the Data Pipeline service model (see `cargo xtask codegen`)."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "use crate::{{Member, Operation, Paginator, Pattern, Service, Shape, ShapeKind}};"
    )?;
    writeln!(out)?;

    let md = m.metadata;
    let s = |k: &str| md[k].as_str().unwrap_or_default().to_string();
    writeln!(
        out,
        "/// Facts about the service itself.\npub static SERVICE: Service = Service {{ api_version: {}, target_prefix: {}, signing_name: {}, endpoint_prefix: {}, service_id: {}, json_version: {}, full_name: {} }};",
        lit(&s("apiVersion")),
        lit(&s("targetPrefix")),
        lit(&s("signingName")),
        lit(&s("endpointPrefix")),
        lit(&s("serviceId")),
        lit(&s("jsonVersion")),
        lit(&s("serviceFullName")),
    )?;
    writeln!(out)?;

    // Shape descriptors.
    writeln!(
        out,
        "/// One static descriptor per model shape, named after the shape."
    )?;
    writeln!(out, "pub mod shapes {{")?;
    writeln!(out, "    use super::*;")?;
    for (name, shape) in &m.shapes {
        let ty = shape["type"].as_str().context("shape without type")?;
        let kind = match ty {
            "string" => "ShapeKind::String".to_string(),
            "integer" => "ShapeKind::Integer".to_string(),
            "long" => "ShapeKind::Long".to_string(),
            "float" => "ShapeKind::Float".to_string(),
            "double" => "ShapeKind::Double".to_string(),
            "boolean" => "ShapeKind::Boolean".to_string(),
            "timestamp" => "ShapeKind::Timestamp".to_string(),
            "blob" => "ShapeKind::Blob".to_string(),
            "list" => format!(
                "ShapeKind::List(&{})",
                static_name(shape["member"].as_str().unwrap())
            ),
            "map" => format!(
                "ShapeKind::Map {{ key: &{}, value: &{} }}",
                static_name(shape["key"].as_str().unwrap()),
                static_name(shape["value"].as_str().unwrap())
            ),
            "structure" => {
                let members = shape["members"].as_array().cloned().unwrap_or_default();
                let list: Vec<String> = members
                    .iter()
                    .map(|mem| {
                        format!(
                            "Member {{ name: {}, cli_name: {}, shape: &{}, required: {} }}",
                            lit(mem["name"].as_str().unwrap()),
                            lit(&kebab(mem["name"].as_str().unwrap())),
                            static_name(mem["shape"].as_str().unwrap()),
                            mem["required"].as_bool().unwrap_or(false)
                        )
                    })
                    .collect();
                format!("ShapeKind::Structure(&[{}])", list.join(", "))
            }
            other => bail!("shape {name} has unsupported type {other}"),
        };
        let opt_i = |k: &str| {
            shape
                .get(k)
                .and_then(Value::as_i64)
                .map_or("None".to_string(), |v| format!("Some({v})"))
        };
        let pattern = match shape.get("pattern").and_then(Value::as_str) {
            Some(p) => {
                let ranges = pattern_ranges(p)?;
                let rs: Vec<String> = ranges
                    .iter()
                    .map(|(a, b)| format!("({a:#X}, {b:#X})"))
                    .collect();
                format!(
                    "Some(Pattern {{ source: {}, ranges: &[{}] }})",
                    lit(p),
                    rs.join(", ")
                )
            }
            None => "None".into(),
        };
        let enums: Vec<String> = shape
            .get("enum")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| lit(v.as_str().unwrap())).collect())
            .unwrap_or_default();
        writeln!(
            out,
            "    /// The `{name}` shape.\n    pub static {}: Shape = Shape {{ name: {}, kind: {kind}, min: {}, max: {}, pattern: {pattern}, enum_values: &[{}], exception: {}, fault: {} }};",
            static_name(name),
            lit(name),
            opt_i("min"),
            opt_i("max"),
            enums.join(", "),
            shape
                .get("exception")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            shape.get("fault").and_then(Value::as_bool).unwrap_or(false),
        )?;
    }
    writeln!(out, "}}")?;
    writeln!(out)?;
    let all: Vec<String> = m
        .shapes
        .keys()
        .map(|n| format!("&shapes::{}", static_name(n)))
        .collect();
    writeln!(
        out,
        "/// Every shape of the model, sorted by name.\npub static SHAPES: &[&Shape] = &[{}];",
        all.join(", ")
    )?;
    writeln!(out)?;

    // Paginators and operations.
    writeln!(
        out,
        "/// Every operation of the model, sorted by name.\npub static OPERATIONS: &[Operation] = &["
    )?;
    for (name, op) in &m.operations {
        let shape_ref = |k: &str| {
            op.get(k)
                .and_then(Value::as_str)
                .map_or("None".to_string(), |s| {
                    format!("Some(&shapes::{})", static_name(s))
                })
        };
        let errors: Vec<String> = op["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("&shapes::{}", static_name(e.as_str().unwrap())))
            .collect();
        let paginator = match m.paginators.get(name) {
            Some(p) => format!(
                "Some(Paginator {{ input_token: {}, output_token: {}, more_results: {}, result_key: {}, limit_key: {} }})",
                lit(p["input_token"].as_str().unwrap()),
                lit(p["output_token"].as_str().unwrap()),
                p.get("more_results")
                    .and_then(Value::as_str)
                    .map_or("None".into(), |s| format!("Some({})", lit(s))),
                lit(p["result_key"].as_str().unwrap()),
                p.get("limit_key")
                    .and_then(Value::as_str)
                    .map_or("None".into(), |s| format!("Some({})", lit(s))),
            ),
            None => "None".into(),
        };
        writeln!(
            out,
            "    Operation {{ name: {}, cli_name: {}, input: {}, output: {}, errors: &[{}], paginator: {paginator} }},",
            lit(name),
            lit(&kebab(name)),
            shape_ref("input"),
            shape_ref("output"),
            errors.join(", ")
        )?;
    }
    writeln!(out, "];")?;
    writeln!(out)?;

    generate_types(&m, &mut out)?;
    generate_ops(&m, &mut out)?;
    Ok(out)
}

/// The Rust type that holds a value of the named shape.
fn rust_type(m: &Model<'_>, name: &str) -> String {
    let shape = m.shapes[name];
    match shape["type"].as_str().unwrap() {
        "string" if shape.get("enum").is_some() => upper_camel(name),
        "string" => "String".into(),
        "integer" => "i32".into(),
        "long" => "i64".into(),
        "float" => "f32".into(),
        "double" => "f64".into(),
        "boolean" => "bool".into(),
        "timestamp" => "crate::EpochSeconds".into(),
        "blob" => "Vec<u8>".into(),
        "list" => format!("Vec<{}>", rust_type(m, shape["member"].as_str().unwrap())),
        "map" => format!(
            "crate::IndexMap<{}, {}>",
            rust_type(m, shape["key"].as_str().unwrap()),
            rust_type(m, shape["value"].as_str().unwrap())
        ),
        "structure" => upper_camel(name),
        _ => unreachable!(),
    }
}

fn generate_types(m: &Model<'_>, out: &mut String) -> Result<()> {
    writeln!(
        out,
        "/// Serde types, one per structure and enum of the model. Wire names are kept with `rename`."
    )?;
    writeln!(out, "pub mod types {{")?;
    for (name, shape) in &m.shapes {
        match shape["type"].as_str().unwrap() {
            "string" if shape.get("enum").is_some() => {
                let values: Vec<&str> = shape["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let ty = upper_camel(name);
                writeln!(
                    out,
                    "/// Values of the `{name}` enum. Unknown values are kept, so new service values never fail a decode."
                )?;
                writeln!(
                    out,
                    "#[derive(Debug, Clone, PartialEq, Eq, Hash)]\npub enum {ty} {{"
                )?;
                for v in &values {
                    writeln!(
                        out,
                        "    /// `{v}`\n    {},",
                        upper_camel(&v.to_ascii_lowercase()).replace('_', "")
                    )?;
                }
                writeln!(
                    out,
                    "    /// A value this model does not know.\n    Unknown(String),\n}}"
                )?;
                writeln!(
                    out,
                    "impl {ty} {{\n    /// The wire spelling.\n    pub fn as_str(&self) -> &str {{ match self {{"
                )?;
                for v in &values {
                    writeln!(
                        out,
                        "        Self::{} => {},",
                        upper_camel(&v.to_ascii_lowercase()).replace('_', ""),
                        lit(v)
                    )?;
                }
                writeln!(out, "        Self::Unknown(s) => s, }} }}\n}}")?;
                writeln!(
                    out,
                    "impl From<&str> for {ty} {{\n    fn from(s: &str) -> Self {{ match s {{"
                )?;
                for v in &values {
                    writeln!(
                        out,
                        "        {} => Self::{},",
                        lit(v),
                        upper_camel(&v.to_ascii_lowercase()).replace('_', "")
                    )?;
                }
                writeln!(
                    out,
                    "        other => Self::Unknown(other.to_string()), }} }}\n}}"
                )?;
                writeln!(
                    out,
                    "impl Default for {ty} {{ fn default() -> Self {{ Self::{} }} }}",
                    upper_camel(&values[0].to_ascii_lowercase()).replace('_', "")
                )?;
                writeln!(
                    out,
                    "impl serde::Serialize for {ty} {{ fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{ s.serialize_str(self.as_str()) }} }}"
                )?;
                writeln!(
                    out,
                    "impl<'de> serde::Deserialize<'de> for {ty} {{ fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{ let s = String::deserialize(d)?; Ok(Self::from(s.as_str())) }} }}"
                )?;
            }
            "structure" => {
                let ty = upper_camel(name);
                writeln!(out, "/// The `{name}` structure.")?;
                writeln!(
                    out,
                    "#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]"
                )?;
                writeln!(out, "pub struct {ty} {{")?;
                for mem in shape["members"].as_array().cloned().unwrap_or_default() {
                    let mname = mem["name"].as_str().unwrap();
                    let target = mem["shape"].as_str().unwrap();
                    let inner = rust_type(m, target);
                    let required = mem["required"].as_bool().unwrap_or(false);
                    writeln!(
                        out,
                        "    /// Wire member `{mname}`{}.",
                        if required { " (required)" } else { "" }
                    )?;
                    if required {
                        // A response that omits a required member still decodes, as botocore's parser tolerates it.
                        writeln!(out, "    #[serde(rename = {}, default)]", lit(mname))?;
                        writeln!(out, "    pub {}: {inner},", snake(mname))?;
                    } else {
                        writeln!(
                            out,
                            "    #[serde(rename = {}, default, skip_serializing_if = \"Option::is_none\")]",
                            lit(mname)
                        )?;
                        writeln!(out, "    pub {}: Option<{inner}>,", snake(mname))?;
                    }
                }
                writeln!(out, "}}")?;
            }
            _ => {}
        }
    }
    writeln!(out, "}}")?;
    writeln!(
        out,
        "/// Decodes `value` into the typed input (or output) of `operation` and encodes it again; `None` for an"
    )?;
    writeln!(
        out,
        "/// unknown operation. Lets tests check that the typed layer agrees with the shape tables."
    )?;
    writeln!(
        out,
        "#[doc(hidden)]\npub fn reencode(operation: &str, output: bool, value: serde_json::Value) -> Option<Result<serde_json::Value, serde_json::Error>> {{"
    )?;
    writeln!(
        out,
        "    fn go<T: serde::Serialize + serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<serde_json::Value, serde_json::Error> {{ serde_json::to_value(serde_json::from_value::<T>(v)?) }}"
    )?;
    writeln!(
        out,
        "    use crate::OperationSpec;\n    Some(match (operation, output) {{"
    )?;
    for name in m.operations.keys() {
        writeln!(
            out,
            "        ({}, false) => go::<<ops::{name} as OperationSpec>::Input>(value),",
            lit(name)
        )?;
        writeln!(
            out,
            "        ({}, true) => go::<<ops::{name} as OperationSpec>::Output>(value),",
            lit(name)
        )?;
    }
    writeln!(out, "        _ => return None,\n    }})\n}}")?;
    Ok(())
}

fn generate_ops(m: &Model<'_>, out: &mut String) -> Result<()> {
    writeln!(
        out,
        "/// One marker type per operation, tying its name to its input, output and error types."
    )?;
    writeln!(out, "pub mod ops {{")?;
    for (name, op) in &m.operations {
        let input = op
            .get("input")
            .and_then(Value::as_str)
            .map_or("crate::Empty".into(), |s| {
                format!("super::types::{}", upper_camel(s))
            });
        let output = op
            .get("output")
            .and_then(Value::as_str)
            .map_or("crate::Empty".into(), |s| {
                format!("super::types::{}", upper_camel(s))
            });
        let errors: Vec<&str> = op["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let err_ty = format!("{name}Error");
        writeln!(
            out,
            "/// The `{name}` operation.\n#[derive(Debug, Clone, Copy)]\npub struct {name};"
        )?;
        writeln!(
            out,
            "/// The modeled errors of `{name}`, and any other error code the service sends."
        )?;
        writeln!(
            out,
            "#[derive(Debug, Clone, PartialEq)]\npub enum {err_ty} {{"
        )?;
        for e in &errors {
            writeln!(
                out,
                "    /// `{e}`\n    {}(super::types::{}),",
                upper_camel(e),
                upper_camel(e)
            )?;
        }
        writeln!(
            out,
            "    /// An error code this operation does not model.\n    Unhandled {{ /// The error code.\n code: String, /// The message, if any.\n message: Option<String> }},\n}}"
        )?;
        writeln!(out, "impl crate::ModeledError for {err_ty} {{")?;
        writeln!(
            out,
            "    fn from_code(code: &str, message: Option<String>) -> Self {{ match code {{"
        )?;
        for e in &errors {
            writeln!(
                out,
                "        {} => Self::{}(super::types::{} {{ message }}),",
                lit(e),
                upper_camel(e),
                upper_camel(e)
            )?;
        }
        writeln!(
            out,
            "        _ => Self::Unhandled {{ code: code.to_string(), message }}, }} }}"
        )?;
        writeln!(out, "    fn code(&self) -> &str {{ match self {{")?;
        for e in &errors {
            writeln!(out, "        Self::{}(_) => {},", upper_camel(e), lit(e))?;
        }
        writeln!(out, "        Self::Unhandled {{ code, .. }} => code, }} }}")?;
        writeln!(
            out,
            "    fn message(&self) -> Option<&str> {{ match self {{"
        )?;
        for e in &errors {
            writeln!(
                out,
                "        Self::{}(e) => e.message.as_deref(),",
                upper_camel(e)
            )?;
        }
        writeln!(
            out,
            "        Self::Unhandled {{ message, .. }} => message.as_deref(), }} }}\n}}"
        )?;
        writeln!(out, "impl crate::OperationSpec for {name} {{")?;
        writeln!(
            out,
            "    type Input = {input};\n    type Output = {output};\n    type Error = {err_ty};"
        )?;
        writeln!(out, "    const NAME: &'static str = {};", lit(name))?;
        writeln!(out, "}}")?;
    }
    writeln!(out, "}}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The committed generated files (model code and Unicode tables) must be what `cargo xtask codegen` writes
    /// today.
    #[test]
    fn generated_code_is_fresh() {
        for (path, expected) in super::outputs().unwrap() {
            let current =
                std::fs::read_to_string(crate::project_root().join(path)).unwrap_or_default();
            assert!(
                current == expected,
                "{path} is stale: run `{}` and commit the result",
                super::COMMAND
            );
        }
    }

    #[test]
    fn pattern_ranges_decode_surrogate_pairs() {
        let ranges =
            super::pattern_ranges(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*")
                .unwrap();
        assert_eq!(
            ranges,
            vec![
                (9, 9),
                (10, 10),
                (13, 13),
                (0x20, 0xD7FF),
                (0xE000, 0xFFFD),
                (0x10000, 0x10FFFF)
            ]
        );
        assert!(super::pattern_ranges("[a-z]+").is_err());
    }
}
