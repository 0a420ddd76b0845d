//! From command-line tokens to the request's input value, as the AWS CLI does it.
//!
//! Order for every option: paramfile (`file://`, `fileb://`) for a single token, then shorthand or JSON for
//! complex shapes (JSON when the first token starts with `[` or `{`), scalars converted by the model, then the
//! `--cli-input-json`/`--cli-input-yaml` merge (command line wins per top-level key), then validation. Nothing here
//! sends anything; every failure is a [`CliError`] with exit code 252.

use dp_model::{Shape, ShapeKind};
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::invocation::{GivenValue, Invocation, RawValue};
use crate::paramfile;
use crate::pyjson;

/// Python's `str.lstrip()`: it strips what `str.isspace` calls space, which includes U+001C..U+001F (Rust's
/// `trim_start` does not).
fn py_lstrip(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Whether the CLI reads a value as JSON: it starts with `[` or `{` after Python's `lstrip()`.
fn looks_like_json(s: &str) -> bool {
    let t = py_lstrip(s);
    t.starts_with('[') || t.starts_with('{')
}

/// JSON read as the CLI's `json.loads` reads it, its error worded as the CLI's `ParamError`:
/// `Error parsing parameter '--fields': Invalid JSON: <Python's message and position>\nJSON received: <text>`.
/// `option` is as the CLI names it there (`--fields`, or `cli-input-json` without dashes).
fn parse_json(option: &str, text: &str) -> Result<Value, CliError> {
    pyjson::loads(text).map_err(|e| {
        CliError::usage(format!(
            "Error parsing parameter '{option}': Invalid JSON: {e}\nJSON received: {text}"
        ))
    })
}

/// Whether a member reads a `fileb://` file's bytes as the CLI does: numbers (Python's `int()` and `float()` take
/// bytes). Strings, enums and structures are refused bytes (see [`paramfile::bytes_refused`]).
fn reads_bytes(shape: &Shape) -> bool {
    matches!(
        shape.kind,
        ShapeKind::Integer | ShapeKind::Long | ShapeKind::Float | ShapeKind::Double
    )
}

fn is_complex(shape: &Shape) -> bool {
    match shape.kind {
        ShapeKind::Structure(_) | ShapeKind::Map { .. } => true,
        ShapeKind::List(m) => !m.is_scalar(),
        _ => false,
    }
}

/// A scalar token converted as the CLI's `unpack_scalar_cli_arg` does.
fn scalar(shape: &Shape, option: &str, token: &str) -> Result<Value, CliError> {
    match shape.kind {
        ShapeKind::Integer | ShapeKind::Long => token.trim().parse::<i64>().map(Value::from).map_err(|_| {
            CliError::usage(format!("Error parsing parameter '--{option}': invalid literal for int() with base 10: {}", dp_model::pyrepr::string_repr(token)))
        }),
        ShapeKind::Float | ShapeKind::Double => token.trim().parse::<f64>().map(Value::from).map_err(|_| {
            CliError::usage(format!("Error parsing parameter '--{option}': could not convert string to float: {}", dp_model::pyrepr::string_repr(token)))
        }),
        ShapeKind::Boolean => Ok(Value::Bool(!token.eq_ignore_ascii_case("false") && !token.is_empty())),
        _ => Ok(Value::String(token.to_string())),
    }
}

/// Parses and types shorthand with dp-shorthand's [`dp_shorthand::parse_option`], reading the files that `@=`
/// values name as the reference does: every argument is parsed before any is typed, as the reference parses
/// before it converts. With a list `shape` each argument is one element. A file that cannot be read is reported on
/// its own, like a paramfile; every other error after the option's name.
fn shorthand(
    option: &str,
    args: &[&str],
    shape: &'static Shape,
    path: &str,
) -> Result<Value, CliError> {
    let mut loader = |file: &dp_shorthand::FileRef<'_>| dp_shorthand::load_file(file);
    dp_shorthand::parse_option(args, shape, path, Some(&mut loader)).map_err(|e| match e {
        dp_shorthand::OptionError::Parse(e) => match e.kind() {
            dp_shorthand::ErrorKind::FileLoad { .. } => CliError::usage(e.to_string()),
            _ => CliError::usage(match crate::hints::shorthand(&e) {
                Some(hint) => format!("Error parsing parameter '--{option}': {e}\n{hint}"),
                None => format!("Error parsing parameter '--{option}': {e}"),
            }),
        },
        e => CliError::usage(format!("Error parsing parameter '--{option}': {e}")),
    })
}

/// The value of one member from its raw tokens.
pub fn member_value(given: &GivenValue) -> Result<Value, CliError> {
    let GivenValue {
        member,
        option,
        raw,
    } = given;
    let (member, option) = (*member, *option);
    let json_option = format!("--{option}");
    match raw {
        RawValue::Flag(b) => Ok(Value::Bool(*b)),
        RawValue::One(token) => {
            let loaded = paramfile::load(&json_option, token)?;
            if loaded.binary && !reads_bytes(member.shape) {
                return Err(paramfile::bytes_refused(&json_option, member.name));
            }
            let text = loaded.text;
            if is_complex(member.shape) {
                if looks_like_json(&text) {
                    parse_json(&json_option, &text)
                } else {
                    shorthand(option, &[&text], member.shape, member.name)
                }
            } else {
                scalar(member.shape, option, &text)
            }
        }
        RawValue::Many(tokens) => {
            let ShapeKind::List(item_shape) = member.shape.kind else {
                unreachable!("lists only")
            };
            // A single token is unwrapped for the paramfile step and then parsed as one value, as the CLI does.
            if tokens.len() == 1 {
                let loaded = paramfile::load(&json_option, &tokens[0])?;
                // The reference iterates a list's bytes as integers, or crashes for structures.
                if loaded.binary {
                    return Err(paramfile::bytes_refused(&json_option, member.name));
                }
                let text = loaded.text;
                if py_lstrip(&text).starts_with('[') {
                    return parse_json(&json_option, &text);
                }
                if is_complex(member.shape) {
                    if looks_like_json(&text) {
                        return Ok(Value::Array(vec![parse_json(&json_option, &text)?]));
                    }
                    // A paramfile's shorthand is one parameter: a structure where a list is wanted (quirk 10).
                    // The CLI does not wrap a top-level value into a list, so validation then reports a dict.
                    if text != tokens[0] {
                        return shorthand(option, &[&text], item_shape, member.name);
                    }
                    return shorthand(option, &[&text], member.shape, member.name);
                }
                return Ok(Value::Array(vec![scalar(item_shape, option, &text)?]));
            }
            if tokens.is_empty() {
                return Ok(Value::Array(vec![]));
            }
            if is_complex(member.shape) {
                if looks_like_json(&tokens[0]) {
                    let mut items = Vec::new();
                    for t in tokens {
                        if !looks_like_json(t) {
                            return Err(CliError::usage(format!(
                                "Error parsing parameter '{json_option}': Invalid JSON:\n{t}"
                            )));
                        }
                        items.push(parse_json(&json_option, t)?);
                    }
                    return Ok(Value::Array(items));
                }
                let args: Vec<&str> = tokens.iter().map(String::as_str).collect();
                return shorthand(option, &args, member.shape, member.name);
            }
            tokens
                .iter()
                .map(|t| scalar(item_shape, option, t))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

/// Parses `--cli-input-json`/`--cli-input-yaml` text into a map.
fn cli_input(option: &str, raw: &str) -> Result<Map<String, Value>, CliError> {
    let loaded = paramfile::load(&format!("--{option}"), raw)?;
    let text = loaded.text;
    let value: Value = if option == "cli-input-yaml" {
        serde_norway::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "Error parsing parameter '--{option}': Invalid YAML: {e}"
            ))
        })?
    } else if loaded.binary {
        // `fileb://`: Python's json.loads reads the bytes, and the error echoes them as a bytes repr.
        pyjson::loads_bytes(&text).map_err(|e| {
            CliError::usage(format!(
                "Error parsing parameter 'cli-input-json': Invalid JSON: {e}\nJSON received: {}",
                pyjson::bytes_repr(text.as_bytes())
            ))
        })?
    } else {
        parse_json("cli-input-json", &text)?
    };
    match value {
        Value::Object(m) => Ok(m),
        other => Err(CliError::usage(format!(
            "Error parsing parameter '--{option}': Invalid type: expecting map, received {}",
            dp_model::pyrepr::type_name(&other)
        ))),
    }
}

/// The input value of an invocation: every member's value parsed (paramfiles, shorthand or JSON), the CLI's custom
/// options translated, and `--cli-input-json`/`--cli-input-yaml` merged under them. Timestamps stay as given;
/// dp-wire puts them in the wire form.
pub fn input_value(inv: &Invocation) -> Result<Value, CliError> {
    let op = inv.operation;
    let mut params = Map::new();
    for given in &inv.values {
        params.insert(given.member.name.to_string(), member_value(given)?);
    }
    crate::customize::add_to_params(op.name, &inv.custom, &mut params)?;
    if let Some((option, raw)) = &inv.cli_input {
        for (k, v) in cli_input(option, raw)? {
            params.entry(k).or_insert(v);
        }
    }
    Ok(Value::Object(params))
}

/// Checks `value` (from [`input_value`]) against the operation's input shape, as botocore's validator does, and
/// adds dp's hints to the report.
pub fn validate(inv: &Invocation, value: &Value) -> Result<(), CliError> {
    let Some(shape) = inv.operation.input else {
        return Ok(());
    };
    dp_model::validate::validate(shape, value).map_err(|report| {
        let from_paramfile = inv.values.iter().any(|given| match &given.raw {
            RawValue::One(t) => t.starts_with("file://"),
            RawValue::Many(ts) => ts.len() == 1 && ts[0].starts_with("file://"),
            RawValue::Flag(_) => false,
        });
        let mut message = report.to_string();
        for hint in crate::hints::validation(&report, from_paramfile) {
            message.push('\n');
            message.push_str(hint);
        }
        CliError::usage(message)
    })
}
