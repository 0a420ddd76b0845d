//! The AWS CLI's Data Pipeline customizations: the two renamed options, the definition-file format, inline parameter
//! values, the translated `get-pipeline-definition` output and `list-runs`.
//!
//! These are the only operation-specific pieces of dp-cli, because the reference CLI has them (its
//! `awscli/customizations/datapipeline`); everything else goes through the generic path. The translation functions
//! are pure; `list-runs` is in the `list_runs` module.

use serde_json::{Map, Value};

use dp_model::{Member, Operation};

use crate::error::CliError;
use crate::invocation::RawValue;
use crate::paramfile;
use crate::pyjson;

/// A custom option: its name, whether it takes a list of tokens, and its help.
pub struct CustomOption {
    /// The option name without dashes.
    pub name: &'static str,
    /// Takes one or more tokens (`nargs='+'`).
    pub many: bool,
    /// Help text.
    pub help: &'static str,
}

const DEFINITION: CustomOption = CustomOption {
    name: "pipeline-definition",
    many: false,
    help: "The pipeline definition file, as JSON text (usually file://definition.json).",
};
const PARAMETER_OBJECTS: CustomOption = CustomOption {
    name: "parameter-objects",
    many: false,
    help: "Parameter objects in definition-file form ({\"parameters\": [...]}); replaces the definition's.",
};
const PARAMETER_VALUES_URI: CustomOption = CustomOption {
    name: "parameter-values-uri",
    many: false,
    help: "Parameter values in definition-file form ({\"values\": {...}}); replaces the definition's.",
};
const PARAMETER_VALUES: CustomOption = CustomOption {
    name: "parameter-values",
    many: true,
    help: "Parameter values as key=value tokens; repeat a key for a list (a=1 a=2).",
};

/// The option name of an input member (`--task-id`): the model's kebab-case name, except the CLI's two renames of
/// members whose names clash with global options (`--query`, `--version`).
pub fn option_name(op: &Operation, member: &Member) -> &'static str {
    match (op.name, member.name) {
        ("QueryObjects", "query") => "objects-query",
        ("GetPipelineDefinition", "version") => "pipeline-version",
        _ => member.cli_name,
    }
}

/// The custom options an operation gets, in the order the CLI applies them.
pub fn options(operation: &str) -> &'static [CustomOption] {
    match operation {
        "PutPipelineDefinition" => &[
            PARAMETER_OBJECTS,
            PARAMETER_VALUES,
            DEFINITION,
            PARAMETER_VALUES_URI,
        ],
        "ActivatePipeline" => &[PARAMETER_VALUES, PARAMETER_VALUES_URI],
        _ => &[],
    }
}

/// Whether a model member's option is replaced by a custom option of the same name.
pub fn replaces(operation: &str, member: &str) -> bool {
    matches!(
        (operation, member),
        (
            "PutPipelineDefinition",
            "parameterObjects" | "parameterValues"
        ) | ("ActivatePipeline", "parameterValues")
    )
}

/// Model members that a custom option can provide, so their own option is not required.
pub fn provided_by_custom(operation: &str, member: &str) -> Option<&'static str> {
    match (operation, member) {
        ("PutPipelineDefinition", "pipelineObjects") => Some("pipeline-definition"),
        _ => None,
    }
}

fn definition_error(message: String) -> CliError {
    // The reference ends these messages with an extra newline (quirk 29, matched).
    CliError::usage(format!("Error in pipeline definition: {message}\n"))
}

/// A definition-file option's JSON. The reference calls `json.loads` with nothing around it, so its error is
/// printed alone: `Expecting value: line 1 column 17 (char 16)`. dp's own refusals (a `NaN`, which Python reads
/// and validation then refuses) name the option.
fn parse_json(option: &str, (text, binary): (String, bool)) -> Result<Value, CliError> {
    let parsed = if binary {
        pyjson::loads_bytes(&text)
    } else {
        pyjson::loads(&text)
    };
    parsed.map_err(|e| match e.kind() {
        pyjson::ErrorKind::Python => CliError::usage(e.to_string()),
        pyjson::ErrorKind::Unsupported => CliError::usage(format!(
            "Error parsing parameter '--{option}': Invalid JSON: {e}"
        )),
    })
}

/// Python's `json.dumps` with its default separators, for echoing an element in an error.
fn dumps(value: &Value) -> String {
    match value {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), dumps(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(dumps).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn field_of(key: &str, value: &Value, context: &str) -> Result<Value, CliError> {
    let mut field = Map::new();
    field.insert("key".into(), Value::String(key.into()));
    match value {
        Value::Object(m) if m.len() == 1 && m.contains_key("ref") => {
            field.insert("refValue".into(), m["ref"].clone());
        }
        Value::String(_) => {
            field.insert("stringValue".into(), value.clone());
        }
        // The reference passes anything else through and lets validation fail far from the cause; dp says
        // which object and field are wrong.
        other => {
            return Err(definition_error(format!(
                "{context}, field \"{key}\": expected a string, a {{\"ref\": \"<id>\"}} object or a list of them, received {}",
                dumps(other)
            )));
        }
    }
    Ok(Value::Object(field))
}

fn fields_of(key: &str, value: &Value, context: &str) -> Result<Vec<Value>, CliError> {
    match value {
        Value::Array(items) => items.iter().map(|v| field_of(key, v, context)).collect(),
        v => Ok(vec![field_of(key, v, context)?]),
    }
}

fn sorted_entries(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Definition `objects` → API `pipelineObjects`.
pub fn definition_to_objects(definition: &Value) -> Result<Value, CliError> {
    let objects = definition
        .get("objects")
        .ok_or_else(|| definition_error("Missing \"objects\" key".into()))?;
    let Value::Array(objects) = objects else {
        return Err(definition_error(format!(
            "\"objects\" must be a list of objects, received {}",
            dumps(objects)
        )));
    };
    let mut out = Vec::new();
    for (i, element) in objects.iter().enumerate() {
        let Value::Object(map) = element else {
            return Err(definition_error(format!(
                "objects[{i}] must be an object, received {}",
                dumps(element)
            )));
        };
        let Some(id) = map.get("id") else {
            let mut rest = map.clone();
            rest.shift_remove("id");
            return Err(definition_error(format!(
                "Missing \"id\" key of element: {}",
                dumps(&Value::Object(rest))
            )));
        };
        let context = format!("object {} (objects[{i}])", dumps(id));
        let mut api = Map::new();
        api.insert("id".into(), id.clone());
        api.insert(
            "name".into(),
            map.get("name").cloned().unwrap_or_else(|| id.clone()),
        );
        let mut fields = Vec::new();
        for (k, v) in sorted_entries(map) {
            if k != "id" && k != "name" {
                fields.extend(fields_of(k, v, &context)?);
            }
        }
        api.insert("fields".into(), Value::Array(fields));
        out.push(Value::Object(api));
    }
    Ok(Value::Array(out))
}

/// Definition `parameters` → API `parameterObjects` (`None` without `parameters`).
pub fn definition_to_parameters(definition: &Value) -> Result<Option<Value>, CliError> {
    let Some(params) = definition.get("parameters") else {
        return Ok(None);
    };
    let Value::Array(params) = params else {
        return Err(definition_error(format!(
            "\"parameters\" must be a list of objects, received {}",
            dumps(params)
        )));
    };
    let mut out = Vec::new();
    for (i, element) in params.iter().enumerate() {
        let Value::Object(map) = element else {
            return Err(definition_error(format!(
                "parameters[{i}] must be an object, received {}",
                dumps(element)
            )));
        };
        let Some(id) = map.get("id") else {
            let mut rest = map.clone();
            rest.shift_remove("id");
            return Err(definition_error(format!(
                "Missing \"id\" key of parameter: {}",
                dumps(&Value::Object(rest))
            )));
        };
        let context = format!("parameter {} (parameters[{i}])", dumps(id));
        let mut attributes = Vec::new();
        for (k, v) in sorted_entries(map) {
            if k != "id" {
                for f in fields_of(k, v, &context)? {
                    // Attributes have no refValue: a {"ref"} attribute is passed on for validation to refuse.
                    attributes.push(f);
                }
            }
        }
        let mut api = Map::new();
        api.insert("id".into(), id.clone());
        api.insert("attributes".into(), Value::Array(attributes));
        out.push(Value::Object(api));
    }
    Ok(Some(Value::Array(out)))
}

/// Definition `values` → API `parameterValues` (`None` without `values`).
pub fn definition_to_values(definition: &Value) -> Result<Option<Value>, CliError> {
    let Some(values) = definition.get("values") else {
        return Ok(None);
    };
    let Value::Object(values) = values else {
        return Err(definition_error(format!(
            "\"values\" must be an object, received {}",
            dumps(values)
        )));
    };
    let mut out = Vec::new();
    for (id, v) in values {
        let items = match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for item in items {
            out.push(serde_json::json!({"id": id, "stringValue": item}));
        }
    }
    Ok(Some(Value::Array(out)))
}

/// `--parameter-values a=1 b=2 a=3` → API parameter values, grouped by key in first-occurrence order.
pub fn inline_values(tokens: &[String]) -> Result<Value, CliError> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return Err(CliError::usage(format!(
                "Error in parameter: Invalid inline parameter format: {token}\n"
            )));
        };
        match grouped.iter_mut().find(|(k, _)| k == key) {
            Some((_, vs)) => vs.push(value.to_string()),
            None => grouped.push((key.to_string(), vec![value.to_string()])),
        }
    }
    let mut out = Vec::new();
    for (key, values) in grouped {
        for v in values {
            out.push(serde_json::json!({"id": key, "stringValue": v}));
        }
    }
    Ok(Value::Array(out))
}

/// Applies the custom options to the request parameters, in the CLI's order.
///
/// Unlike the reference, `--parameter-values-uri` overrides the definition's `values` instead of failing
/// (quirk 17); giving both value options is still an error.
pub fn add_to_params(
    operation: &str,
    given: &[(&'static str, RawValue)],
    params: &mut Map<String, Value>,
) -> Result<(), CliError> {
    let get = |name: &str| given.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    // The option's text, and whether it came from `fileb://` (bytes, which json.loads reads a little differently).
    let one = |name: &str| -> Result<Option<(String, bool)>, CliError> {
        match get(name) {
            Some(RawValue::One(v)) => {
                let loaded = paramfile::load(&format!("--{name}"), v)?;
                Ok(Some((loaded.text, loaded.binary)))
            }
            _ => Ok(None),
        }
    };
    let explicit_values =
        get("parameter-values").is_some() || get("parameter-values-uri").is_some();
    if get("parameter-values").is_some() && get("parameter-values-uri").is_some() {
        return Err(CliError::usage(
            "Only parameter-values or parameter-values-uri is allowed",
        ));
    }
    for option in options(operation) {
        match option.name {
            "parameter-objects" => {
                if let Some(text) = one("parameter-objects")? {
                    let parsed = parse_json("parameter-objects", text)?;
                    match definition_to_parameters(&parsed)? {
                        Some(p) => params.insert("parameterObjects".into(), p),
                        None => params.insert("parameterObjects".into(), Value::Null),
                    };
                }
            }
            "parameter-values" => {
                if let Some(RawValue::Many(tokens)) = get("parameter-values") {
                    params.insert("parameterValues".into(), inline_values(tokens)?);
                }
            }
            "pipeline-definition" => {
                if let Some(text) = one("pipeline-definition")? {
                    let parsed = parse_json("pipeline-definition", text)?;
                    params.insert("pipelineObjects".into(), definition_to_objects(&parsed)?);
                    if !params.contains_key("parameterObjects")
                        && let Some(p) = definition_to_parameters(&parsed)?
                    {
                        params.insert("parameterObjects".into(), p);
                    }
                    if !explicit_values
                        && !params.contains_key("parameterValues")
                        && let Some(v) = definition_to_values(&parsed)?
                    {
                        params.insert("parameterValues".into(), v);
                    }
                }
            }
            "parameter-values-uri" => {
                if let Some(text) = one("parameter-values-uri")? {
                    let parsed = parse_json("parameter-values-uri", text)?;
                    match definition_to_values(&parsed)? {
                        Some(v) => params.insert("parameterValues".into(), v),
                        None => params.insert("parameterValues".into(), Value::Null),
                    };
                }
            }
            _ => {}
        }
    }
    // A `null` from a file without the expected key is dropped, as botocore drops `None` parameters.
    params.retain(|_, v| !v.is_null());
    Ok(())
}

fn add_value(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key) {
        None => {
            map.insert(key.to_string(), value);
        }
        Some(Value::Array(list)) => list.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

/// `get-pipeline-definition`'s output in the definition-file format (the CLI's after-call translation).
pub fn api_to_definition(result: &Value) -> Value {
    let Value::Object(map) = result else {
        return result.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        if !matches!(
            k.as_str(),
            "pipelineObjects" | "parameterObjects" | "parameterValues"
        ) {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(Value::Array(objects)) = map.get("pipelineObjects") {
        let converted = objects
            .iter()
            .map(|o| {
                let mut current = Map::new();
                current.insert("id".into(), o.get("id").cloned().unwrap_or(Value::Null));
                current.insert("name".into(), o.get("name").cloned().unwrap_or(Value::Null));
                for f in o.get("fields").and_then(Value::as_array).into_iter().flatten() {
                    let key = f.get("key").and_then(Value::as_str).unwrap_or_default();
                    let value = match f.get("stringValue") {
                        Some(s) => s.clone(),
                        None => serde_json::json!({"ref": f.get("refValue").cloned().unwrap_or(Value::Null)}),
                    };
                    add_value(&mut current, key, value);
                }
                Value::Object(current)
            })
            .collect();
        out.insert("objects".into(), Value::Array(converted));
    }
    if let Some(Value::Array(params)) = map.get("parameterObjects") {
        let converted = params
            .iter()
            .map(|p| {
                let mut current = Map::new();
                current.insert("id".into(), p.get("id").cloned().unwrap_or(Value::Null));
                for a in p
                    .get("attributes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let key = a.get("key").and_then(Value::as_str).unwrap_or_default();
                    add_value(
                        &mut current,
                        key,
                        a.get("stringValue").cloned().unwrap_or(Value::Null),
                    );
                }
                Value::Object(current)
            })
            .collect();
        out.insert("parameters".into(), Value::Array(converted));
    }
    if let Some(Value::Array(values)) = map.get("parameterValues") {
        let mut current = Map::new();
        for v in values {
            let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
            add_value(
                &mut current,
                id,
                v.get("stringValue").cloned().unwrap_or(Value::Null),
            );
        }
        out.insert("values".into(), Value::Object(current));
    }
    Value::Object(out)
}

/// The output transformation of an operation, if the CLI has one.
pub fn after_call(operation: &str, result: Value) -> Value {
    match operation {
        "GetPipelineDefinition" => api_to_definition(&result),
        _ => result,
    }
}
