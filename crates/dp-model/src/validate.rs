//! Validation of an input value against its shape, reporting every problem at once.
//!
//! The checks botocore's `ParamValidator` makes (types, required members, unknown members, minimum lengths and
//! values) are reported in its order and wording, because scripts match on them. dp also checks what botocore
//! leaves to the server (maximum lengths, the model's character patterns, enum membership), so that a value the
//! service would refuse is never sent; those problems use dp's own wording and are marked by
//! [`Problem::is_dp_only`].

use std::fmt;

use serde_json::Value;

use crate::{Shape, ShapeKind, pyrepr};

/// Every problem found in one input value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationReport {
    /// The problems, in botocore's traversal order.
    pub problems: Vec<Problem>,
}

/// One problem at one place of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where: `input`, `taskId`, `fields[0].stringValue`, `objects (key: x)`.
    pub path: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// The kinds of validation problem.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemKind {
    /// A required member is absent.
    MissingRequired {
        /// The member's wire name.
        name: String,
    },
    /// A member the structure does not have.
    UnknownMember {
        /// The name given.
        name: String,
        /// The structure's members, in model order.
        valid: Vec<&'static str>,
    },
    /// The value has the wrong JSON type.
    InvalidType {
        /// The value given.
        value: Value,
        /// botocore's list of accepted Python types.
        valid_types: &'static str,
    },
    /// A string, list or map shorter than its minimum.
    TooShort {
        /// The length given (code points for strings).
        length: usize,
        /// The minimum.
        min: i64,
    },
    /// A number below its minimum.
    BelowMinimum {
        /// The value given.
        value: Value,
        /// The minimum.
        min: i64,
    },
    /// dp only: a string, list or map longer than its maximum.
    TooLong {
        /// The length given (code points for strings).
        length: usize,
        /// The maximum.
        max: i64,
    },
    /// dp only: a number above its maximum.
    AboveMaximum {
        /// The value given.
        value: Value,
        /// The maximum.
        max: i64,
    },
    /// dp only: a string outside its enum.
    NotInEnum {
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: &'static [&'static str],
    },
    /// dp only: a character the shape's pattern refuses.
    InvalidCharacter {
        /// Code-point index of the character in the string.
        index: usize,
        /// The character.
        character: char,
        /// The allowed ranges, described.
        allowed: String,
    },
}

impl Problem {
    /// Whether botocore does not make this check (so the reference CLI would send the value).
    pub fn is_dp_only(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::TooLong { .. }
                | ProblemKind::AboveMaximum { .. }
                | ProblemKind::NotInEnum { .. }
                | ProblemKind::InvalidCharacter { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.kind {
            ProblemKind::MissingRequired { name } => {
                write!(f, "Missing required parameter in {path}: \"{name}\"")
            }
            ProblemKind::UnknownMember { name, valid } => {
                write!(
                    f,
                    "Unknown parameter in {path}: \"{name}\", must be one of: {}",
                    valid.join(", ")
                )
            }
            ProblemKind::InvalidType { value, valid_types } => write!(
                f,
                "Invalid type for parameter {path}, value: {}, type: {}, valid types: {valid_types}",
                pyrepr::str(value),
                pyrepr::type_name(value)
            ),
            ProblemKind::TooShort { length, min } => {
                write!(
                    f,
                    "Invalid length for parameter {path}, value: {length}, valid min length: {min}"
                )
            }
            ProblemKind::BelowMinimum { value, min } => {
                write!(
                    f,
                    "Invalid value for parameter {path}, value: {}, valid min value: {min}",
                    pyrepr::str(value)
                )
            }
            ProblemKind::TooLong { length, max } => {
                write!(
                    f,
                    "Invalid length for parameter {path}, value: {length}, valid max length: {max}"
                )
            }
            ProblemKind::AboveMaximum { value, max } => {
                write!(
                    f,
                    "Invalid value for parameter {path}, value: {}, valid max value: {max}",
                    pyrepr::str(value)
                )
            }
            ProblemKind::NotInEnum { value, allowed } => {
                write!(
                    f,
                    "Invalid value for parameter {path}, value: {value}, valid values: {}",
                    allowed.join(", ")
                )
            }
            ProblemKind::InvalidCharacter {
                index,
                character,
                allowed,
            } => write!(
                f,
                "Invalid character for parameter {path} at position {index}: U+{:04X}, valid characters: {allowed}",
                *character as u32
            ),
        }
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Parameter validation failed:")?;
        for p in &self.problems {
            write!(f, "\n{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationReport {}

/// Validates `value` against `shape`; `Err` lists every problem.
pub fn validate(shape: &Shape, value: &Value) -> Result<(), ValidationReport> {
    let mut problems = Vec::new();
    walk(shape, value, "", &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationReport { problems })
    }
}

fn display_path(name: &str) -> String {
    if name.is_empty() {
        "input".into()
    } else if let Some(rest) = name.strip_prefix('.') {
        rest.into()
    } else {
        name.into()
    }
}

fn push(problems: &mut Vec<Problem>, name: &str, kind: ProblemKind) {
    problems.push(Problem {
        path: display_path(name),
        kind,
    });
}

fn invalid_type(problems: &mut Vec<Problem>, name: &str, value: &Value, valid_types: &'static str) {
    push(
        problems,
        name,
        ProblemKind::InvalidType {
            value: value.clone(),
            valid_types,
        },
    );
}

fn length_checks(shape: &Shape, length: usize, name: &str, problems: &mut Vec<Problem>) {
    if let Some(min) = shape.min
        && (length as i64) < min
    {
        push(problems, name, ProblemKind::TooShort { length, min });
    }
    if let Some(max) = shape.max
        && (length as i64) > max
    {
        push(problems, name, ProblemKind::TooLong { length, max });
    }
}

fn walk(shape: &Shape, value: &Value, name: &str, problems: &mut Vec<Problem>) {
    match shape.kind {
        ShapeKind::Structure(members) => {
            let Value::Object(map) = value else {
                return invalid_type(problems, name, value, "<class 'dict'>");
            };
            for m in members.iter().filter(|m| m.required) {
                if !map.contains_key(m.name) {
                    push(
                        problems,
                        name,
                        ProblemKind::MissingRequired {
                            name: m.name.into(),
                        },
                    );
                }
            }
            let mut known = Vec::new();
            for (key, v) in map {
                match members.iter().find(|m| m.name == key) {
                    Some(m) => known.push((m, v, key)),
                    None => push(
                        problems,
                        name,
                        ProblemKind::UnknownMember {
                            name: key.clone(),
                            valid: members.iter().map(|m| m.name).collect(),
                        },
                    ),
                }
            }
            for (m, v, key) in known {
                walk(m.shape, v, &format!("{name}.{key}"), problems);
            }
        }
        ShapeKind::List(member) => {
            let Value::Array(items) = value else {
                return invalid_type(problems, name, value, "<class 'list'>, <class 'tuple'>");
            };
            length_checks(shape, items.len(), name, problems);
            for (i, item) in items.iter().enumerate() {
                walk(member, item, &format!("{name}[{i}]"), problems);
            }
        }
        ShapeKind::Map {
            key,
            value: value_shape,
        } => {
            let Value::Object(map) = value else {
                return invalid_type(problems, name, value, "<class 'dict'>");
            };
            for (k, v) in map {
                walk(
                    key,
                    &Value::String(k.clone()),
                    &format!("{name} (key: {k})"),
                    problems,
                );
                walk(value_shape, v, &format!("{name}.{k}"), problems);
            }
        }
        ShapeKind::String => {
            let Value::String(s) = value else {
                return invalid_type(problems, name, value, "<class 'str'>");
            };
            length_checks(shape, s.chars().count(), name, problems);
            if !shape.enum_values.is_empty() && !shape.enum_values.contains(&s.as_str()) {
                push(
                    problems,
                    name,
                    ProblemKind::NotInEnum {
                        value: s.clone(),
                        allowed: shape.enum_values,
                    },
                );
            }
            if let Some(pattern) = &shape.pattern
                && let Some((index, character)) = pattern.first_violation(s)
            {
                push(
                    problems,
                    name,
                    ProblemKind::InvalidCharacter {
                        index,
                        character,
                        allowed: pattern.describe(),
                    },
                );
            }
        }
        ShapeKind::Integer | ShapeKind::Long => {
            // Python's bool is an int, so botocore accepts `true` here; so does dp.
            let number = match value {
                Value::Number(n) if !n.is_f64() => n.as_f64(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => return invalid_type(problems, name, value, "<class 'int'>"),
            };
            range_checks(shape, number.unwrap_or_default(), value, name, problems);
        }
        ShapeKind::Float | ShapeKind::Double => {
            let number = match value {
                Value::Number(n) => n.as_f64().unwrap_or_default(),
                Value::Bool(b) => f64::from(u8::from(*b)),
                _ => {
                    return invalid_type(
                        problems,
                        name,
                        value,
                        "<class 'float'>, <class 'decimal.Decimal'>, <class 'int'>",
                    );
                }
            };
            range_checks(shape, number, value, name, problems);
        }
        ShapeKind::Boolean => {
            if !value.is_boolean() {
                invalid_type(problems, name, value, "<class 'bool'>");
            }
        }
        ShapeKind::Timestamp => {
            let ok = match value {
                Value::Number(_) => true,
                Value::String(s) => crate::timestamp::parse(s).is_some(),
                _ => false,
            };
            if !ok {
                invalid_type(
                    problems,
                    name,
                    value,
                    "<class 'datetime.datetime'>, timestamp-string",
                );
            }
        }
        ShapeKind::Blob => {
            if !value.is_string() {
                invalid_type(
                    problems,
                    name,
                    value,
                    "<class 'bytes'>, <class 'bytearray'>, file-like object",
                );
            }
        }
    }
}

fn range_checks(
    shape: &Shape,
    number: f64,
    value: &Value,
    name: &str,
    problems: &mut Vec<Problem>,
) {
    if let Some(min) = shape.min
        && number < min as f64
    {
        push(
            problems,
            name,
            ProblemKind::BelowMinimum {
                value: value.clone(),
                min,
            },
        );
    }
    if let Some(max) = shape.max
        && number > max as f64
    {
        push(
            problems,
            name,
            ProblemKind::AboveMaximum {
                value: value.clone(),
                max,
            },
        );
    }
}
