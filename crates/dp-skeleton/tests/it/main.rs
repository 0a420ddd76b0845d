//! dp-skeleton compared with the installed AWS CLI's `--generate-cli-skeleton`, for every operation.

use std::process::Command;

use dp_model::{Shape, ShapeKind};
use serde_json::Value;

fn aws(args: &[&str]) -> (bool, String) {
    let out = Command::new("aws")
        .arg("datapipeline")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI (`aws`) must be installed for this test");
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

/// Compares our skeleton with the CLI's, allowing the CLI's random choice at enum leaves (v1 picks at random,
/// dp takes the first value, as v2).
fn same_modulo_enums(shape: &'static Shape, ours: &Value, theirs: &Value, path: &str) {
    match (&shape.kind, ours, theirs) {
        (ShapeKind::String, Value::String(a), Value::String(b))
            if !shape.enum_values.is_empty() =>
        {
            assert_eq!(
                a, shape.enum_values[0],
                "{path}: dp must take the first enum value"
            );
            assert!(
                shape.enum_values.contains(&b.as_str()),
                "{path}: CLI printed {b}"
            );
        }
        (ShapeKind::Structure(members), Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            assert_eq!(ka, kb, "{path}: member order");
            for m in *members {
                if let (Some(x), Some(y)) = (a.get(m.name), b.get(m.name)) {
                    same_modulo_enums(m.shape, x, y, &format!("{path}.{}", m.name));
                }
            }
        }
        (ShapeKind::List(member), Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}");
            for (x, y) in a.iter().zip(b) {
                same_modulo_enums(member, x, y, &format!("{path}[]"));
            }
        }
        (ShapeKind::Map { value, .. }, Value::Object(a), Value::Object(b)) => {
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, x) in a {
                same_modulo_enums(value, x, &b[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(ours, theirs, "{path}"),
    }
}

fn has_enum(shape: &'static Shape, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    match shape.kind {
        ShapeKind::String => !shape.enum_values.is_empty(),
        ShapeKind::List(m) => has_enum(m, depth + 1),
        ShapeKind::Map { value, .. } => has_enum(value, depth + 1),
        ShapeKind::Structure(ms) => ms.iter().any(|m| has_enum(m.shape, depth + 1)),
        _ => false,
    }
}

#[test]
fn input_skeletons_match_the_cli_for_every_operation() {
    let mut byte_identical = 0;
    for op in dp_model::operations() {
        let ours = dp_skeleton::render(op, dp_skeleton::Kind::Input).unwrap();
        let (ok, theirs) = aws(&[op.cli_name, "--generate-cli-skeleton"]);
        assert!(ok, "aws failed for {}", op.cli_name);
        if op.input.is_some_and(|s| has_enum(s, 0)) {
            let a: Value = serde_json::from_str(&ours).unwrap();
            let b: Value = serde_json::from_str(&theirs).unwrap();
            same_modulo_enums(op.input.unwrap(), &a, &b, op.cli_name);
        } else {
            assert_eq!(ours, theirs, "input skeleton of {}", op.cli_name);
            byte_identical += 1;
        }
    }
    eprintln!(
        "input skeletons: {} operations, {byte_identical} byte-identical, the rest equal modulo enum leaves",
        dp_model::operations().len()
    );
    assert_eq!(dp_model::operations().len(), 19);
}

/// The required members only, each with a short valid value (the CLI validates before it stubs the call).
fn minimal_valid_input(shape: &'static Shape) -> Value {
    match shape.kind {
        ShapeKind::Structure(members) => Value::Object(
            members
                .iter()
                .filter(|m| m.required)
                .map(|m| (m.name.to_string(), minimal_valid_input(m.shape)))
                .collect(),
        ),
        ShapeKind::List(member) => Value::Array(vec![minimal_valid_input(member)]),
        ShapeKind::String => {
            Value::String(shape.enum_values.first().copied().unwrap_or("x").into())
        }
        ShapeKind::Boolean => Value::Bool(true),
        _ => Value::from(1),
    }
}

#[test]
fn output_samples_match_the_cli() {
    // The CLI's `output` mode needs the required options; `--cli-input-json` with the input skeleton lifts
    // argparse's required check. get-pipeline-definition's output passes through the CLI's definition-file
    // translation, which is the dp CLI's business, not the skeleton's.
    let mut compared = 0;
    for op in dp_model::operations() {
        if op.name == "GetPipelineDefinition" {
            continue;
        }
        let input = minimal_valid_input(op.input.unwrap()).to_string();
        let (ok, theirs) = aws(&[
            op.cli_name,
            "--cli-input-json",
            &input,
            "--generate-cli-skeleton",
            "output",
        ]);
        assert!(ok, "aws failed for {}", op.cli_name);
        let ours = match dp_skeleton::output_sample(op) {
            Some(Value::Object(m)) if m.is_empty() => String::new(),
            Some(v) => dp_skeleton::to_json_text(&v),
            None => String::new(),
        };
        assert_eq!(ours, theirs, "output sample of {}", op.cli_name);
        compared += 1;
    }
    eprintln!("output samples: {compared} operations identical");
    assert_eq!(compared, 18);
}

#[test]
fn yaml_input_names_every_member() {
    let op = dp_model::operation_by_cli_name("report-task-progress").unwrap();
    assert_eq!(
        dp_skeleton::yaml_input(op),
        "taskId: ''  # [REQUIRED] string, length 1 to 2048, XML characters\n\
         fields:  # list\n\
         - key: ''  # [REQUIRED] string, length 1 to 256, XML characters\n\
        \x20 stringValue: ''  # string, length 0 to 10240, XML characters\n\
        \x20 refValue: ''  # string, length 1 to 256, XML characters\n"
    );
}
