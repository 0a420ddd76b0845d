//! Validation compared with botocore's `ParamValidator`, plus dp's own checks as data.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::generate::{Rng, mutate, valid};

const BOTOCORE: &str = r#"
import json, sys
import botocore.session
from botocore.validate import ParamValidator
model = botocore.session.get_session().get_service_model('datapipeline')
out = []
for name, params in json.load(sys.stdin):
    report = ParamValidator().validate(params, model.operation_model(name).input_shape)
    out.append(report.generate_report() if report.has_errors() else "")
json.dump(out, sys.stdout)
"#;

fn botocore_reports(cases: &[(String, Value)]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", BOTOCORE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with botocore is needed (installed with the AWS CLI)");
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore validator failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn same_verdicts_and_messages_as_botocore() {
    let mut rng = Rng::new(2026);
    let mut cases = Vec::new();
    for round in 0..16 {
        for op in dp_model::operations() {
            let Some(shape) = op.input else { continue };
            let mut value = valid(shape, &mut rng, 0);
            if round % 4 != 0 {
                for _ in 0..1 + rng.below(2) {
                    mutate(shape, &mut value, &mut rng);
                }
            }
            cases.push((op.name.to_string(), value));
        }
    }
    let expected = botocore_reports(&cases);
    let (mut valid_count, mut invalid_count, mut dp_only) = (0, 0, 0);
    for ((name, value), botocore) in cases.iter().zip(&expected) {
        let shape = dp_model::operation(name).unwrap().input.unwrap();
        let ours: Vec<String> = match dp_model::validate::validate(shape, value) {
            Ok(()) => vec![],
            Err(report) => {
                dp_only += report.problems.iter().filter(|p| p.is_dp_only()).count();
                report
                    .problems
                    .iter()
                    .filter(|p| !p.is_dp_only())
                    .map(ToString::to_string)
                    .collect()
            }
        };
        let theirs: Vec<String> = if botocore.is_empty() {
            vec![]
        } else {
            botocore.lines().map(String::from).collect()
        };
        assert_eq!(ours, theirs, "{name} with input {value}");
        if theirs.is_empty() {
            valid_count += 1
        } else {
            invalid_count += 1
        }
    }
    eprintln!(
        "validation vs botocore: {} cases, {valid_count} valid, {invalid_count} invalid, {dp_only} dp-only problems",
        cases.len()
    );
    assert!(cases.len() >= 200 && valid_count >= 40 && invalid_count >= 100 && dp_only >= 10);
}

fn check(operation: &str, input: Value, expected: &str) {
    let shape = dp_model::operation(operation).unwrap().input.unwrap();
    let got = match dp_model::validate::validate(shape, &input) {
        Ok(()) => String::new(),
        Err(report) => report.to_string(),
    };
    assert_eq!(got, expected, "{operation} {input}");
}

#[test]
fn messages() {
    check("ReportTaskProgress", json!({"taskId": "t"}), "");
    check(
        "ReportTaskProgress",
        json!({}),
        "Parameter validation failed:\nMissing required parameter in input: \"taskId\"",
    );
    check(
        "ReportTaskProgress",
        json!({"taskId": "", "fields": [{"key": "a", "bogus": "b"}]}),
        "Parameter validation failed:\nInvalid length for parameter taskId, value: 0, valid min length: 1\nUnknown parameter in fields[0]: \"bogus\", must be one of: key, stringValue, refValue",
    );
    check(
        "ReportTaskProgress",
        json!({"taskId": "t", "fields": [{"key": "a", "stringValue": ["b", "c"]}]}),
        "Parameter validation failed:\nInvalid type for parameter fields[0].stringValue, value: ['b', 'c'], type: <class 'list'>, valid types: <class 'str'>",
    );
    check(
        "ReportTaskProgress",
        json!({"taskId": "t", "fields": {"key": "sh", "stringValue": "x"}}),
        "Parameter validation failed:\nInvalid type for parameter fields, value: {'key': 'sh', 'stringValue': 'x'}, type: <class 'dict'>, valid types: <class 'list'>, <class 'tuple'>",
    );
    check(
        "ActivatePipeline",
        json!({"pipelineId": "df-1", "startTimestamp": "notadate"}),
        "Parameter validation failed:\nInvalid type for parameter startTimestamp, value: notadate, type: <class 'str'>, valid types: <class 'datetime.datetime'>, timestamp-string",
    );
    // dp-only checks: what the reference sends and the service refuses.
    check(
        "SetTaskStatus",
        json!({"taskId": "t", "taskStatus": "DONE"}),
        "Parameter validation failed:\nInvalid value for parameter taskStatus, value: DONE, valid values: FINISHED, FAILED, FALSE",
    );
    check(
        "ReportTaskProgress",
        json!({"taskId": "x".repeat(3000)}),
        "Parameter validation failed:\nInvalid length for parameter taskId, value: 3000, valid max length: 2048",
    );
    check(
        "ReportTaskProgress",
        json!({"taskId": "a\u{1}b"}),
        "Parameter validation failed:\nInvalid character for parameter taskId at position 1: U+0001, valid characters: U+0009, U+000A, U+000D, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF",
    );
    check("ReportTaskProgress", json!({"taskId": "emoji 😀 ok"}), "");
    check(
        "AddTags",
        json!({"pipelineId": "p", "tags": (0..11).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect::<Vec<_>>()}),
        "Parameter validation failed:\nInvalid length for parameter tags, value: 11, valid max length: 10",
    );
}
