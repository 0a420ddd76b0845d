//! The definition-file translation round-trips: definition → API objects → definition gives back the input.

use dp_cli::customize::{
    api_to_definition, definition_to_objects, definition_to_parameters, definition_to_values,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z*@][a-zA-Z0-9_]{0,8}".prop_filter("not id or name", |k| k != "id" && k != "name")
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[ -~é✓日]{0,12}".prop_map(Value::String),
        "[A-Za-z][A-Za-z0-9]{0,6}".prop_map(|r| json!({"ref": r})),
    ]
}

/// A field value: one scalar, or a list of two or more (a one-item list comes back as a scalar, as in the CLI).
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![3 => scalar(), 1 => prop::collection::vec(scalar(), 2..4).prop_map(Value::Array)]
}

fn object() -> impl Strategy<Value = Value> {
    (
        "[A-Za-z][A-Za-z0-9_]{0,10}",
        "[ -~]{1,10}",
        prop::collection::btree_map(key(), field_value(), 0..6),
    )
        .prop_map(|(id, name, fields)| {
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            m.insert("name".into(), json!(name));
            for (k, v) in fields {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}

fn parameter() -> impl Strategy<Value = Value> {
    (
        "my[A-Z][a-z]{0,6}",
        prop::collection::btree_map("[a-z]{1,8}", "[ -~]{0,8}", 0..4),
    )
        .prop_map(|(id, attrs)| {
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            for (k, v) in attrs {
                if k != "id" {
                    m.insert(k, json!(v));
                }
            }
            Value::Object(m)
        })
}

fn values() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "my[A-Z][a-z]{0,6}",
        prop_oneof![
            "[ -~]{0,8}".prop_map(Value::String),
            prop::collection::vec("[ -~]{0,8}".prop_map(Value::String), 2..4)
                .prop_map(Value::Array)
        ],
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn definition_round_trips(objects in prop::collection::vec(object(), 1..5), parameters in prop::collection::vec(parameter(), 0..3), values in values()) {
        let definition = json!({"objects": objects, "parameters": parameters, "values": values});
        let mut api = Map::new();
        api.insert("pipelineObjects".into(), definition_to_objects(&definition).unwrap());
        api.insert("parameterObjects".into(), definition_to_parameters(&definition).unwrap().unwrap());
        api.insert("parameterValues".into(), definition_to_values(&definition).unwrap().unwrap());
        let back = api_to_definition(&Value::Object(api));
        // Objects and maps compare without regard to key order (the API sorts fields by key).
        prop_assert_eq!(back, definition);
    }
}

#[test]
fn repeated_keys_become_lists_and_refs_objects() {
    let api = json!({"pipelineObjects": [{"id": "Act", "name": "Act", "fields": [
        {"key": "dependsOn", "refValue": "A"}, {"key": "dependsOn", "refValue": "B"}, {"key": "type", "stringValue": "ShellCommandActivity"}]}]});
    assert_eq!(
        api_to_definition(&api),
        json!({"objects": [{"id": "Act", "name": "Act", "dependsOn": [{"ref": "A"}, {"ref": "B"}], "type": "ShellCommandActivity"}]})
    );
}
