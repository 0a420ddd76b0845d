//! Help pages: the shorthand lines the reference documents, and snapshots of every page.

use dp_cli::help;

fn check_shorthand(command: &str, option: &str, expected: Option<&str>) {
    let op = dp_model::operation_by_cli_name(command).unwrap();
    let member = op
        .input
        .unwrap()
        .members()
        .iter()
        .find(|m| dp_cli::customize::option_name(op, m) == option)
        .unwrap();
    assert_eq!(
        help::shorthand_syntax(member.shape).as_deref(),
        expected,
        "{command} --{option}"
    );
}

/// The "Shorthand Syntax" lines of the reference's help, option by option (`None` where the reference prints none,
/// as for the deeply nested `--objects-query`).
#[test]
fn shorthand_lines_match_the_reference() {
    check_shorthand("add-tags", "tags", Some("key=string,value=string ..."));
    check_shorthand(
        "create-pipeline",
        "tags",
        Some("key=string,value=string ..."),
    );
    check_shorthand(
        "poll-for-task",
        "instance-identity",
        Some("document=string,signature=string"),
    );
    check_shorthand("query-objects", "objects-query", None);
    check_shorthand(
        "report-task-progress",
        "fields",
        Some("key=string,stringValue=string,refValue=string ..."),
    );
    check_shorthand(
        "validate-pipeline-definition",
        "pipeline-objects",
        Some(
            "id=string,name=string,fields=[{key=string,stringValue=string,refValue=string},{key=string,stringValue=string,refValue=string}] ...",
        ),
    );
    check_shorthand(
        "validate-pipeline-definition",
        "parameter-objects",
        Some(
            "id=string,attributes=[{key=string,stringValue=string},{key=string,stringValue=string}] ...",
        ),
    );
    check_shorthand(
        "validate-pipeline-definition",
        "parameter-values",
        Some("id=string,stringValue=string ..."),
    );
    check_shorthand("describe-pipelines", "pipeline-ids", None);
}

#[test]
fn json_syntax_of_the_seed_option() {
    let op = dp_model::operation_by_cli_name("report-task-progress").unwrap();
    let fields = op.input.unwrap().member("fields").unwrap();
    assert_eq!(
        help::json_syntax(fields.shape),
        "[\n  {\n    \"key\": \"string\",\n    \"stringValue\": \"string\",\n    \"refValue\": \"string\"\n  }\n  ...\n]"
    );
}

#[test]
fn every_page_is_stable() {
    crate::snapshot::check("help-main", &help::main_help());
    for op in dp_model::operations() {
        let page = help::operation_help(op);
        assert!(
            !help::description(op.cli_name).is_empty(),
            "{} has no description",
            op.cli_name
        );
        crate::snapshot::check(&format!("help-{}", op.cli_name), &page);
    }
}
