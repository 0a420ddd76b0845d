//! The data preconditions (`S3KeyExists`, `S3PrefixNotEmpty`, `DynamoDBTableExists`, `DynamoDBDataExists`)
//! against moto's server: each holds, does not hold, and fails when the store cannot answer.

use std::sync::Arc;

use dp_runner::precondition::{Check, Precondition};
use dp_runner::{Outcome, Task, TaskContext};

use crate::harness::*;
use crate::s3::{Moto, block_on, put, s3, wire_client};

/// A task whose attempt is a precondition of `kind` with `fields`, as PollForTask hands it out.
fn task(kind: &str, fields: &[(&str, &str)]) -> Task {
    let mut objects = dp_model::IndexMap::new();
    let mut all = vec![text("type", kind)];
    all.extend(fields.iter().map(|(k, v)| text(k, v)));
    objects.insert(
        "@Check_Attempt=1".to_string(),
        object("@Check_Attempt=1", all),
    );
    Task::from_task_object(dp_model::types::TaskObject {
        task_id: Some("task-1".into()),
        pipeline_id: Some("df-1".into()),
        attempt_id: Some("@Check_Attempt=1".into()),
        objects: Some(objects),
    })
}

fn context(dir: &TempDir, s3_endpoint: &str, dynamodb_endpoint: &str) -> TaskContext {
    let storage =
        dp_runner::storage::Storage::new(Arc::new(wire_client()), Some(s3_endpoint.to_string()))
            .with_dynamodb_endpoint(Some(dynamodb_endpoint.to_string()));
    TaskContext::new(
        dir.path().join("logs"),
        storage,
        dp_runner::RunnerLog::stderr_only(dp_runner::LogFormat::Text, false),
    )
}

/// Runs the check of `kind` and returns the outcome as `FINISHED`, `FALSE errorId` or `FAILED errorId: message`.
fn run(context: &TaskContext, kind: &str, fields: &[(&str, &str)]) -> String {
    let check = Check::ALL
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, c)| Precondition(*c))
        .unwrap_or_else(|| panic!("{kind} is not a data precondition"));
    let task = task(kind, fields);
    match block_on(dp_runner::Activity::run(&check, &task, context)) {
        Outcome::Finished => "FINISHED".into(),
        Outcome::False(f) => format!("FALSE {}: {}", f.error_id, f.message),
        Outcome::Failed(f) => format!("FAILED {}: {}", f.error_id, f.message),
    }
}

#[test]
fn s3_preconditions_hold_or_not_against_moto() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    put(&s3, "ready/_SUCCESS", "");
    put(&s3, "data/2026/part-0.csv", "1,a\n");
    let dir = TempDir::new("preconditions-s3");
    let context = context(&dir, &moto.url, &moto.url);
    let check = |kind: &str, fields: &[(&str, &str)], expected: &str| {
        let got = run(&context, kind, fields);
        assert!(got.starts_with(expected), "{kind} {fields:?}: {got}");
    };
    check(
        "S3KeyExists",
        &[("s3Key", "s3://bkt/ready/_SUCCESS")],
        "FINISHED",
    );
    check(
        "S3KeyExists",
        &[("s3Key", "s3://bkt/ready/_MISSING")],
        "FALSE S3KeyNotFound: s3://bkt/ready/_MISSING does not exist",
    );
    // A key is not a prefix: `ready` names no object even though `ready/_SUCCESS` exists.
    check(
        "S3KeyExists",
        &[("s3Key", "s3://bkt/ready")],
        "FALSE S3KeyNotFound",
    );
    check(
        "S3PrefixNotEmpty",
        &[("s3Prefix", "s3://bkt/data/2026/")],
        "FINISHED",
    );
    check(
        "S3PrefixNotEmpty",
        &[("s3Prefix", "s3://bkt/data/2027/")],
        "FALSE S3PrefixEmpty: no object has a key under s3://bkt/data/2027/",
    );
    check(
        "S3PrefixNotEmpty",
        &[("s3Prefix", "s3://no-such-bucket/x/")],
        "FAILED S3CheckFailed: cannot list s3://no-such-bucket/x/: NoSuchBucket",
    );
    check(
        "S3KeyExists",
        &[],
        "FAILED MissingField: @Check_Attempt=1: \"S3KeyExists\" needs the field s3Key",
    );
    check(
        "S3KeyExists",
        &[("s3Key", "ftp://bkt/x")],
        "FAILED S3CheckFailed: ftp://bkt/x: the scheme ftp:// is not supported",
    );
}

#[test]
fn dynamodb_preconditions_hold_or_not_against_moto() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    let moto = Moto::start();
    let wire = wire_client();
    let http = block_on(wire.sdk_http_client()).unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .http_client(http)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                KEY_ID, SECRET, None, None, "test",
            ))
            .endpoint_url(&moto.url)
            .build(),
    );
    for table in ["orders", "empty"] {
        block_on(
            dynamodb
                .create_table()
                .table_name(table)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("id")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("id")
                        .key_type(KeyType::Hash)
                        .build()
                        .unwrap(),
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send(),
        )
        .unwrap_or_else(|e| panic!("create {table}: {e:?}"));
    }
    block_on(
        dynamodb
            .put_item()
            .table_name("orders")
            .item("id", AttributeValue::S("o-1".into()))
            .send(),
    )
    .expect("item put");
    let dir = TempDir::new("preconditions-dynamodb");
    let context = context(&dir, &moto.url, &moto.url);
    let check = |kind: &str, table: &str, expected: &str| {
        let got = run(&context, kind, &[("tableName", table)]);
        assert!(got.starts_with(expected), "{kind} {table}: {got}");
    };
    check("DynamoDBTableExists", "orders", "FINISHED");
    check("DynamoDBTableExists", "empty", "FINISHED");
    check(
        "DynamoDBTableExists",
        "missing",
        "FALSE DynamoDBTableNotFound: the DynamoDB table missing does not exist",
    );
    check("DynamoDBDataExists", "orders", "FINISHED");
    check(
        "DynamoDBDataExists",
        "empty",
        "FALSE DynamoDBTableEmpty: the DynamoDB table empty holds no item",
    );
    check(
        "DynamoDBDataExists",
        "missing",
        "FALSE DynamoDBTableNotFound",
    );

    // Nothing listens on port 9: the check could not be made, which is not the same as a missing table.
    let closed = context_with_closed_port(&dir);
    let got = run(&closed, "DynamoDBTableExists", &[("tableName", "orders")]);
    assert!(
        got.starts_with("FAILED DynamoDBCheckFailed: cannot describe the DynamoDB table orders:"),
        "{got}"
    );
}

fn context_with_closed_port(dir: &TempDir) -> TaskContext {
    context(dir, "http://127.0.0.1:9", "http://127.0.0.1:9")
}

/// A runner made with the defaults runs every data precondition and data activity (none falls to
/// `UnsupportedActivityType`).
#[test]
fn the_runner_registers_the_data_preconditions() {
    let endpoint = Endpoint::start();
    let mut config = dp_runner::RunnerConfig::new("wg");
    config.env = dp_runner::testing::environment(&endpoint.url());
    let dir = TempDir::new("preconditions-registered");
    config.output_dir = dir.path().to_path_buf();
    config.log_to_stderr = false;
    let runner = dp_runner::Runner::new(config).unwrap();
    let shown = format!("{runner:?}");
    let names = Check::ALL.iter().map(|(name, _)| *name).chain([
        "RdsSqlPrecondition",
        "Exists",
        "SqlActivity",
        "CopyActivity",
        "RedshiftCopyActivity",
    ]);
    for name in names {
        assert!(shown.contains(&format!("\"{name}\"")), "{name}: {shown}");
    }
}

/// A task whose attempt is an `RdsSqlPrecondition` with `fields`, holding `others` as PollForTask would.
fn rds_task(fields: &[(&str, &str)], others: Vec<dp_model::types::PipelineObject>) -> Task {
    let mut objects = dp_model::IndexMap::new();
    let mut all = vec![text("type", "RdsSqlPrecondition")];
    for (k, v) in fields {
        match v.strip_prefix("ref:") {
            Some(id) => all.push(reference(k, id)),
            None => all.push(text(k, v)),
        }
    }
    objects.insert(
        "@Check_Attempt=1".to_string(),
        object("@Check_Attempt=1", all),
    );
    for o in others {
        objects.insert(o.id.clone(), o);
    }
    Task::from_task_object(dp_model::types::TaskObject {
        task_id: Some("task-1".into()),
        pipeline_id: Some("df-1".into()),
        attempt_id: Some("@Check_Attempt=1".into()),
        objects: Some(objects),
    })
}

#[test]
fn rds_sql_precondition_holds_when_the_query_returns_a_row() {
    use crate::databases::{Scratch, jdbc_database};
    let scratch = Scratch::new("rdspre");
    scratch.pg("create table batches (day text, done boolean); insert into batches values ('mon', true), ('tue', false)");
    scratch.my("create table batches (day text, done boolean); insert into batches values ('mon', true), ('tue', false)");
    let dir = TempDir::new("rds-precondition");
    let run = |fields: &[(&str, &str)],
               others: Vec<dp_model::types::PipelineObject>,
               urls: &[(&str, String)]| {
        let context = TaskContext::new(
            dir.path().join("logs"),
            dp_runner::storage::Storage::local_only(),
            dp_runner::RunnerLog::stderr_only(dp_runner::LogFormat::Text, false),
        )
        .with_databases(
            dp_runner::database::DatabaseUrls::new(
                urls.iter().map(|(k, v)| (k.to_string(), v.clone())),
            )
            .unwrap(),
        );
        let task = rds_task(fields, others);
        match block_on(dp_runner::Activity::run(
            &dp_runner::precondition::RdsSqlPrecondition,
            &task,
            &context,
        )) {
            Outcome::Finished => "FINISHED".to_string(),
            Outcome::False(f) => format!("FALSE {}: {}", f.error_id, f.message),
            Outcome::Failed(f) => format!("FAILED {}: {}", f.error_id, f.message),
        }
    };
    let pg = || {
        vec![jdbc_database(
            "Db",
            &scratch.pg_jdbc(),
            &scratch.pg_user(),
            "",
        )]
    };
    let my = || {
        vec![jdbc_database(
            "Db",
            &scratch.my_jdbc(),
            &scratch.my_user(),
            &scratch.my_password(),
        )]
    };
    for (name, db) in [("pg", pg()), ("my", my())] {
        let check = |query: &str, expected: Option<&str>, want: &str| {
            let mut fields = vec![("database", "ref:Db"), ("query", query)];
            if let Some(e) = expected {
                fields.push(("expectedResult", e));
            }
            let got = run(&fields, db.clone(), &[]);
            assert!(got.starts_with(want), "{name} {query}: {got}");
        };
        check(
            "select day from batches where day = 'mon' and done",
            None,
            "FINISHED",
        );
        check(
            "select day from batches where day = 'tue' and done",
            None,
            "FALSE QueryReturnedNoRow",
        );
        check("select count(*) from batches", Some("2"), "FINISHED");
        check(
            "select count(*) from batches",
            Some("3"),
            "FALSE UnexpectedResult: the query returned \"2\" where \"3\" was expected",
        );
        check(
            "select * from no_such_table",
            None,
            "FAILED SqlError: the precondition's query failed on the",
        );
    }
    // The precondition's own rdsInstanceId, found through --database.
    let got = run(
        &[
            ("rdsInstanceId", "orders-db"),
            ("databaseName", &scratch.name),
            ("username", &scratch.pg_user()),
            ("query", "select 1 from batches where done"),
        ],
        vec![],
        &[("orders-db", crate::databases::postgres_url())],
    );
    assert_eq!(got, "FINISHED");
}
