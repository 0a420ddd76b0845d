//! Typing trees against the model as `BackCompatVisitor` does, plus the early unknown-member check.

use dp_model::{Shape, ShapeKind};
use dp_shorthand::{Value, parse, to_json};

fn member(operation: &str, name: &str) -> &'static Shape {
    dp_model::operation(operation)
        .unwrap()
        .input
        .unwrap()
        .member(name)
        .unwrap()
        .shape
}

/// Types the arguments of a list option the way the CLI does: each argument parsed on its own.
#[track_caller]
fn check_list(shape: &'static Shape, path: &str, args: &[&str], expected: &str) {
    let items = args.iter().map(|a| parse(a).unwrap()).collect();
    let got = match to_json(&Value::List(items), shape, path) {
        Ok(json) => json.to_string(),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "arguments {args:?}");
}

#[track_caller]
fn check_one(shape: &'static Shape, path: &str, arg: &str, expected: &str) {
    let got = match to_json(&parse(arg).unwrap(), shape, path) {
        Ok(json) => json.to_string(),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "argument {arg:?}");
}

#[test]
fn report_task_progress_fields() {
    let fields = member("ReportTaskProgress", "fields");
    check_list(
        fields,
        "fields",
        &["key=a,stringValue=b", "key=c,refValue=d"],
        r#"[{"key":"a","stringValue":"b"},{"key":"c","refValue":"d"}]"#,
    );
    check_list(
        fields,
        "fields",
        &["key=a,stringvalue=b"],
        r#"error: unknown member "stringvalue" in fields[0], did you mean "stringValue"?"#,
    );
    check_list(
        fields,
        "fields",
        &["key=a", "key=b,refvalu=x"],
        r#"error: unknown member "refvalu" in fields[1], did you mean "refValue"?"#,
    );
    check_list(
        fields,
        "fields",
        &["bogus=1"],
        r#"error: unknown member "bogus" in fields[0], must be one of: key, stringValue, refValue"#,
    );
    // A comma list where a string is wanted stays a list, for validation to refuse (as the reference does).
    check_list(
        fields,
        "fields",
        &["key=a,stringValue=b,c"],
        r#"[{"key":"a","stringValue":["b","c"]}]"#,
    );
    // One argument that is a hash where a list is wanted is wrapped into a list.
    check_one(fields, "fields", "key=a", r#"[{"key":"a"}]"#);
}

#[test]
fn nested_lists_wrap_scalars() {
    let query = member("QueryObjects", "query");
    check_one(
        query,
        "query",
        "selectors=[{fieldName=@status,operator={type=EQ,values=FINISHED}}]",
        r#"{"selectors":[{"fieldName":"@status","operator":{"type":"EQ","values":["FINISHED"]}}]}"#,
    );
    check_one(
        query,
        "query",
        "selectors={fieldName=x,operator={type=EQ,values=[a,b]}}",
        r#"{"selectors":[{"fieldName":"x","operator":{"type":"EQ","values":["a","b"]}}]}"#,
    );
    check_one(
        query,
        "query",
        "selectors=[{fieldName=x,operatr={}}]",
        r#"error: unknown member "operatr" in query.selectors[0], did you mean "operator"?"#,
    );
}

/// Finds a shape of the given kind in the model, so the scalar conversions are tested on real shapes.
fn model_shape(pick: fn(&ShapeKind) -> bool) -> &'static Shape {
    dp_model::SHAPES
        .iter()
        .copied()
        .find(|s| pick(&s.kind))
        .expect("the model has this kind")
}

#[test]
fn scalars_are_converted_as_the_cli_does() {
    let int = model_shape(|k| matches!(k, ShapeKind::Integer));
    let boolean = model_shape(|k| matches!(k, ShapeKind::Boolean));
    let timestamp = model_shape(|k| matches!(k, ShapeKind::Timestamp));
    let s = |v: &'static str| Value::from(v);
    let typed = |v: &Value<'_>, shape| match to_json(v, shape, "p") {
        Ok(j) => j.to_string(),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(typed(&s("42"), int), "42");
    assert_eq!(typed(&s(" -1_000 "), int), "-1000");
    assert_eq!(
        typed(&s("4.2"), int),
        "error: invalid literal for int() with base 10: '4.2'"
    );
    assert_eq!(typed(&s("TRUE"), boolean), "true");
    assert_eq!(typed(&s("False"), boolean), "false");
    assert_eq!(typed(&s("yes"), boolean), r#""yes""#);
    assert_eq!(typed(&s("2024-01-01"), timestamp), r#""2024-01-01""#);
    assert_eq!(typed(&Value::List(vec![s("1")]), int), r#"["1"]"#);
    assert_eq!(
        typed(&Value::Bytes(b"x".to_vec()), int),
        "error: parameter p takes text, but a fileb:// file gives bytes; use file:// instead"
    );
}

#[test]
fn options_parse_each_list_argument_on_its_own() {
    use dp_shorthand::{OptionError, parse_option};
    let fields = member("ReportTaskProgress", "fields");
    let json = parse_option(
        &["key=a,stringValue=b", "key=c,refValue=d"],
        fields,
        "fields",
        None,
    )
    .unwrap();
    assert_eq!(
        json.to_string(),
        r#"[{"key":"a","stringValue":"b"},{"key":"c","refValue":"d"}]"#
    );
    assert_eq!(
        parse_option(&[], fields, "fields", None)
            .unwrap()
            .to_string(),
        "[]"
    );
    let err = parse_option(&["key=a", "key=b,"], fields, "fields", None).unwrap_err();
    assert!(
        matches!(&err, OptionError::Parse(e) if e.input() == "key=b," && e.offset() == 6),
        "{err:?}"
    );
    let err = parse_option(&["key=a", "kye=b"], fields, "fields", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown member "kye" in fields[1], did you mean "key"?"#
    );

    let identity = member("PollForTask", "instanceIdentity");
    let json = parse_option(
        &["document=d,signature=s"],
        identity,
        "instanceIdentity",
        None,
    )
    .unwrap();
    assert_eq!(json.to_string(), r#"{"document":"d","signature":"s"}"#);
    let err = parse_option(
        &["document=d", "signature=s"],
        identity,
        "instanceIdentity",
        None,
    )
    .unwrap_err();
    assert_eq!(err, OptionError::ArgumentCount(2));
}
