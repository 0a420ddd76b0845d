//! Skeletons of Data Pipeline operation inputs and outputs, as `--generate-cli-skeleton` prints them.
//!
//! Everything is derived by walking the shapes of `dp-model`; no shape is copied here. `input` skeletons match the
//! AWS CLI byte for byte except that an enum leaf takes its first value (deterministic, as CLI v2) where v1 picks
//! one at random. `output` samples use member names as string values, as the CLI's `output` mode does.
//! `yaml-input` is dp's own commented YAML (CLI v2 has the format; its comments are the model's documentation,
//! which dp does not copy, so dp's comments give the type, the constraints and whether a member is required).
//!
//! This crate does no IO; the binary prints what the library returns.
//!
//! ```
//! let op = dp_model::operation_by_cli_name("report-task-progress").unwrap();
//! let text = dp_skeleton::to_json_text(&dp_skeleton::input_skeleton(op));
//! assert!(text.starts_with("{\n    \"taskId\": \"\",\n    \"fields\": [\n"));
//! ```

use std::fmt::Write as _;

use dp_model::{Operation, Shape, ShapeKind};
use serde_json::{Map, Value};

/// Which skeleton to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input as JSON (`--generate-cli-skeleton` or `input`).
    Input,
    /// Sample output data (`output`).
    Output,
    /// The input as commented YAML (`yaml-input`).
    YamlInput,
}

impl Kind {
    /// Parses the CLI spelling (`input`, `output`, `yaml-input`).
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "input" => Some(Kind::Input),
            "output" => Some(Kind::Output),
            "yaml-input" => Some(Kind::YamlInput),
            _ => None,
        }
    }
}

/// The input skeleton of `op`: every member in model order, with placeholder values (`{}` without input).
pub fn input_skeleton(op: &Operation) -> Value {
    op.input.map_or_else(
        || Value::Object(Map::new()),
        |s| generate(s, &mut Vec::new(), "", false),
    )
}

/// Sample output data of `op` (member names as string values), or `None` if it has no output shape.
pub fn output_sample(op: &Operation) -> Option<Value> {
    op.output.map(|s| generate(s, &mut Vec::new(), "", true))
}

/// The complete text printed for `kind` (with the final newline), or `None` for an output sample of an
/// operation without output. `Output` text is the sample as JSON; the CLI formats it per `--output` instead.
pub fn render(op: &Operation, kind: Kind) -> Option<String> {
    match kind {
        Kind::Input => Some(to_json_text(&input_skeleton(op))),
        Kind::Output => output_sample(op).map(|v| to_json_text(&v)),
        Kind::YamlInput => Some(yaml_input(op)),
    }
}

/// JSON as the AWS CLI prints it: 4-space indent, `": "` separators, non-ASCII kept, then a newline.
pub fn to_json_text(value: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(value, &mut ser).expect("serializing a JSON value cannot fail");
    let mut text = String::from_utf8(buf).expect("serde_json writes UTF-8");
    text.push('\n');
    text
}

fn generate(
    shape: &'static Shape,
    stack: &mut Vec<&'static str>,
    name: &str,
    member_names: bool,
) -> Value {
    stack.push(shape.name);
    let value = match shape.kind {
        ShapeKind::Structure(members) => {
            if stack.iter().filter(|n| **n == shape.name).count() > 1 {
                Value::Object(Map::new())
            } else {
                let mut map = Map::new();
                for m in members {
                    map.insert(
                        m.name.to_string(),
                        generate(m.shape, stack, m.name, member_names),
                    );
                }
                Value::Object(map)
            }
        }
        ShapeKind::List(member) => {
            let item_name = if member_names { member.name } else { "" };
            Value::Array(vec![generate(member, stack, item_name, member_names)])
        }
        ShapeKind::Map { value, .. } => {
            let mut map = Map::new();
            map.insert("KeyName".into(), generate(value, stack, "", member_names));
            Value::Object(map)
        }
        ShapeKind::String if member_names => Value::String(name.into()),
        ShapeKind::String => Value::String(
            shape
                .enum_values
                .first()
                .copied()
                .unwrap_or_default()
                .into(),
        ),
        ShapeKind::Integer | ShapeKind::Long => Value::from(0),
        ShapeKind::Float | ShapeKind::Double => Value::from(0.0),
        ShapeKind::Boolean => Value::Bool(true),
        ShapeKind::Timestamp => Value::String("1970-01-01T00:00:00".into()),
        ShapeKind::Blob => Value::String(String::new()),
    };
    stack.pop();
    value
}

/// The character ranges of XML 1.0, the pattern most string shapes of the model carry.
const XML_CHARACTERS: &[(u32, u32)] = &[
    (0x9, 0x9),
    (0xA, 0xA),
    (0xD, 0xD),
    (0x20, 0xD7FF),
    (0xE000, 0xFFFD),
    (0x10000, 0x10FFFF),
];

/// A short description of a member's shape: type and constraints.
pub fn describe_shape(shape: &Shape) -> String {
    let mut out = String::from(shape.type_name());
    let unit = match shape.kind {
        ShapeKind::String => Some("length"),
        ShapeKind::List(_) | ShapeKind::Map { .. } => Some("items"),
        _ => None,
    };
    let range = match (shape.min, shape.max) {
        (Some(lo), Some(hi)) => Some(format!("{lo} to {hi}")),
        (Some(lo), None) => Some(format!("at least {lo}")),
        (None, Some(hi)) => Some(format!("at most {hi}")),
        (None, None) => None,
    };
    if let Some(range) = range {
        let unit = unit.unwrap_or("value");
        let _ = write!(out, ", {unit} {range}");
    }
    if let Some(p) = &shape.pattern {
        if p.ranges == XML_CHARACTERS {
            out.push_str(", XML characters");
        } else {
            let _ = write!(out, ", characters {}", p.describe());
        }
    }
    if !shape.enum_values.is_empty() {
        let _ = write!(out, ", one of: {}", shape.enum_values.join(", "));
    }
    out
}

/// The commented YAML input skeleton of `op`.
pub fn yaml_input(op: &Operation) -> String {
    let mut out = String::new();
    if let Some(shape) = op.input {
        yaml_members(shape, 0, false, &mut out, &mut vec![shape.name]);
    }
    if out.is_empty() {
        out.push_str("{}\n");
    }
    out
}

fn yaml_scalar(shape: &Shape) -> String {
    match shape.kind {
        ShapeKind::String => match shape.enum_values.first() {
            Some(v) => (*v).to_string(),
            None => "''".into(),
        },
        ShapeKind::Integer | ShapeKind::Long => "0".into(),
        ShapeKind::Float | ShapeKind::Double => "0.0".into(),
        ShapeKind::Boolean => "true".into(),
        ShapeKind::Timestamp => "'1970-01-01T00:00:00'".into(),
        _ => "''".into(),
    }
}

/// Writes the members of a structure at `indent`; `first_dash` puts `- ` before the first member (list items).
fn yaml_members(
    shape: &'static Shape,
    indent: usize,
    first_dash: bool,
    out: &mut String,
    stack: &mut Vec<&'static str>,
) {
    for (i, m) in shape.members().iter().enumerate() {
        let lead = if first_dash && i == 0 {
            format!("{}- ", " ".repeat(indent.saturating_sub(2)))
        } else {
            " ".repeat(indent)
        };
        let comment = format!(
            "{}{}",
            if m.required { "[REQUIRED] " } else { "" },
            describe_shape(m.shape)
        );
        yaml_value(m.name, m.shape, &lead, indent, &comment, out, stack);
    }
}

fn yaml_value(
    key: &str,
    shape: &'static Shape,
    lead: &str,
    indent: usize,
    comment: &str,
    out: &mut String,
    stack: &mut Vec<&'static str>,
) {
    match shape.kind {
        ShapeKind::Structure(_) => {
            if stack.contains(&shape.name) {
                let _ = writeln!(out, "{lead}{key}: {{}}  # {comment}");
                return;
            }
            let _ = writeln!(out, "{lead}{key}:  # {comment}");
            stack.push(shape.name);
            yaml_members(shape, indent + 2, false, out, stack);
            stack.pop();
        }
        ShapeKind::List(member) => {
            let _ = writeln!(out, "{lead}{key}:  # {comment}");
            match member.kind {
                ShapeKind::Structure(_) if !stack.contains(&member.name) => {
                    stack.push(member.name);
                    yaml_members(member, indent + 2, true, out, stack);
                    stack.pop();
                }
                ShapeKind::Structure(_) => {
                    let _ = writeln!(out, "{}- {{}}", " ".repeat(indent));
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "{}- {}  # {}",
                        " ".repeat(indent),
                        yaml_scalar(member),
                        describe_shape(member)
                    );
                }
            }
        }
        ShapeKind::Map { value, .. } => {
            let _ = writeln!(out, "{lead}{key}:  # {comment}");
            let inner = " ".repeat(indent + 2);
            yaml_value(
                "KeyName",
                value,
                &inner,
                indent + 2,
                &describe_shape(value),
                out,
                stack,
            );
        }
        _ => {
            let _ = writeln!(out, "{lead}{key}: {}  # {comment}", yaml_scalar(shape));
        }
    }
}
