//! Property tests of the pure parts: no input makes the expression evaluator, the period parser, the credentials
//! reader, the signature checker or definition validation panic or loop.

use std::time::SystemTime;

use dp_local::auth::{SignedRequest, verify};
use dp_local::config::{Credential, parse_credentials_file};
use dp_local::definition::{Definition, validate};
use dp_local::expr::{Context, FieldValue, evaluate_template};
use dp_local::schedule::Period;
use dp_model::types::{Field, PipelineObject};
use proptest::prelude::*;

struct Fixture;

impl Context for Fixture {
    fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
        match key {
            "@scheduledStartTime" => Some(FieldValue::Text("2024-01-01T00:00:00".into())),
            "next" => Some(FieldValue::Ref(format!("{object}x"))),
            "loop" => Some(FieldValue::Text("#{loop}".into())),
            _ => None,
        }
    }

    fn parameter(&self, id: &str) -> Option<String> {
        (id == "myP").then(|| "v".into())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn templates_never_panic(text in "\\PC{0,40}") {
        let _ = evaluate_template(&text, "@A", &Fixture);
    }

    #[test]
    fn expressions_never_panic(inner in "[a-zA-Z@(),.' 0-9-]{0,40}") {
        let _ = evaluate_template(&format!("#{{{inner}}}"), "@A", &Fixture);
    }

    #[test]
    fn date_arithmetic_never_panics(n in any::<i64>(), unit in "(Minutes|Hours|Days|Weeks|Months|Years)", sign in "(plus|minus)") {
        let text = format!("#{{format({sign}{unit}(@scheduledStartTime, {n}), 'YYYY-MM-dd')}}");
        let _ = evaluate_template(&text, "@A", &Fixture);
    }

    #[test]
    fn periods_never_panic(text in "[0-9]{1,25} [a-zA-Z]{0,8}", t in any::<i64>(), k in any::<i64>()) {
        if let Some(period) = Period::parse(&text) {
            let _ = period.advance(t, k);
            let _ = period.min_seconds();
        }
    }

    #[test]
    fn credentials_files_never_panic(text in "\\PC{0,200}") {
        let _ = parse_credentials_file(&text);
    }

    #[test]
    fn signature_checks_never_panic(authorization in "\\PC{0,160}", date in "[0-9TZ]{0,18}", path in "[/%a-zA-Z0-9.]{0,20}", query in "[=&%a-z0-9+]{0,20}") {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = authorization.parse() {
            headers.insert("authorization", v);
        }
        if let Ok(v) = date.parse() {
            headers.insert("x-amz-date", v);
        }
        headers.insert("host", "127.0.0.1:1".parse().unwrap());
        let request = SignedRequest { method: "POST", path: &path, query: &query, headers: &headers, body: b"{}" };
        prop_assert!(verify(&request, &[Credential::example()], SystemTime::now()).is_err());
    }

    /// Random `parent` graphs (with cycles) and types: validation and inheritance always end.
    #[test]
    fn definitions_never_panic(parents in proptest::collection::vec((0..6usize, 0..7usize), 0..12), kinds in proptest::collection::vec(0..5usize, 6)) {
        let types = ["ShellCommandActivity", "Schedule", "Nonsense", "", "Ec2Resource"];
        let objects: Vec<PipelineObject> = (0..6)
            .map(|i| {
                let mut fields = Vec::new();
                if !types[kinds[i]].is_empty() {
                    fields.push(Field { key: "type".into(), string_value: Some(types[kinds[i]].into()), ref_value: None });
                }
                for (from, to) in &parents {
                    if *from == i {
                        let target = if *to == 6 { "Missing".to_string() } else { format!("O{to}") };
                        fields.push(Field { key: "parent".into(), string_value: None, ref_value: Some(target) });
                    }
                }
                PipelineObject { id: format!("O{i}"), name: format!("O{i}"), fields }
            })
            .collect();
        let def = Definition::new(objects, vec![], vec![]);
        let _ = validate(&def);
        for i in 0..6 {
            let _ = def.effective_fields(&format!("O{i}"));
        }
    }
}

#[test]
fn self_reference_is_an_error_not_a_hang() {
    let got = evaluate_template("#{loop}", "@A", &Fixture);
    assert!(got.unwrap_err().message.contains("nest too deeply"));
}
