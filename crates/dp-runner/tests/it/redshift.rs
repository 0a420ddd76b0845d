//! `RedshiftCopyActivity` end to end, with the real PostgreSQL standing in for Redshift (a `RedshiftDatabase` whose
//! connectionString is a PostgreSQL URL) and moto's S3 and DynamoDB: each insertMode, createTableSql, the
//! commandOptions, gzip, a DynamoDB table's items matched to the columns by name, and bad input (a row, an
//! attribute) that leaves the table as it was.

use std::io::Write as _;

use dp_model::types::PipelineObject;

use crate::copy::{run_with_s3, s3_node, status};
use crate::databases::{Row, Scratch};
use crate::harness::*;
use crate::s3::{Moto, block_on, put, s3};

fn redshift_db(scratch: &Scratch) -> PipelineObject {
    object(
        "Warehouse",
        vec![
            text("type", "RedshiftDatabase"),
            text("connectionString", &scratch.pg_jdbc()),
            text("username", &scratch.pg_user()),
        ],
    )
}

fn table_node(table: &str, extra: Vec<dp_model::types::Field>) -> PipelineObject {
    let mut fields = vec![
        text("type", "RedshiftDataNode"),
        text("tableName", table),
        reference("database", "Warehouse"),
    ];
    fields.extend(extra);
    object("Table", fields)
}

fn rows(values: &[(&str, Option<&str>)]) -> Vec<Row> {
    values
        .iter()
        .map(|(id, name)| vec![Some(id.to_string()), name.map(str::to_string)])
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn load(
    moto: &Moto,
    scratch: &Scratch,
    group: &str,
    key: &str,
    mode: &str,
    options: &[&str],
    table: PipelineObject,
) -> PipelineObject {
    let mut fields = vec![
        ("input", "ref:Files"),
        ("output", "ref:Table"),
        ("insertMode", mode),
    ];
    for o in options {
        fields.push(("commandOptions", o));
    }
    let (attempt, log) = run_with_s3(
        moto,
        group,
        "RedshiftCopyActivity",
        &fields,
        vec![
            s3_node("Files", "filePath", &format!("s3://bkt/{key}"), None, false),
            table,
            redshift_db(scratch),
        ],
    );
    if field(&attempt, "@status") != "FINISHED" {
        eprintln!("{group}: {}\n{log}", status(&attempt));
    }
    attempt
}

#[test]
fn each_insert_mode_against_postgres() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    let scratch = Scratch::new("redshift");
    // A header, a changed row 2, new rows 3 and 4 (4's name NULL), as CSV with a header.
    put(
        &s3,
        "load/people.csv",
        "id,name\n2,\"new, two\"\n3,three\n4,n/a\n",
    );
    let options = [
        "CSV",
        "IGNOREHEADER 1",
        "NULL AS 'n/a'",
        "TIMEFORMAT 'auto'",
    ];
    let reset = || {
        scratch.pg(
            "drop table if exists people; create table people (id int primary key, name text); \
             insert into people values (1, 'one'), (2, 'two')",
        );
    };
    let expected = [
        (
            "KEEP_EXISTING",
            rows(&[
                ("1", Some("one")),
                ("2", Some("two")),
                ("3", Some("three")),
                ("4", None),
            ]),
        ),
        (
            "OVERWRITE_EXISTING",
            rows(&[
                ("1", Some("one")),
                ("2", Some("new, two")),
                ("3", Some("three")),
                ("4", None),
            ]),
        ),
        (
            "TRUNCATE",
            rows(&[("2", Some("new, two")), ("3", Some("three")), ("4", None)]),
        ),
    ];
    for (mode, want) in expected {
        reset();
        let attempt = load(
            &moto,
            &scratch,
            &format!("wg-rs-{}", mode.to_lowercase().replace('_', "-")),
            "load/people.csv",
            mode,
            &options,
            table_node("people", vec![]),
        );
        assert_eq!(status(&attempt), "FINISHED  ", "{mode}");
        assert_eq!(field(&attempt, "rowsCopied"), "3", "{mode}");
        assert_eq!(
            scratch.pg("select id, name from people order by id"),
            want,
            "{mode}"
        );
    }

    // APPEND into a table without a primary key, created by createTableSql; the input is gzip, pipe-delimited
    // (Redshift's default) with backslash escapes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all("7|seven\\|pipe\n8|\\N\n".as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    block_on(
        s3.put_object()
            .bucket("bkt")
            .key("load/events.gz")
            .body(body.into())
            .send(),
    )
    .unwrap();
    for round in 0..2 {
        let attempt = load(
            &moto,
            &scratch,
            &format!("wg-rs-append-{round}"),
            "load/events.gz",
            "APPEND",
            &["GZIP"],
            table_node(
                "events",
                vec![text(
                    "createTableSql",
                    "create table events (id int, what text)",
                )],
            ),
        );
        assert_eq!(status(&attempt), "FINISHED  ", "round {round}");
    }
    assert_eq!(
        scratch.pg("select id, what from events order by id"),
        rows(&[
            ("7", Some("seven|pipe")),
            ("7", Some("seven|pipe")),
            ("8", None),
            ("8", None)
        ])
    );

    // OVERWRITE_EXISTING with primaryKeys on a table that has no key of its own.
    scratch.pg(
        "create table loose (id int, name text); insert into loose values (2, 'two'), (9, 'nine')",
    );
    let attempt = load(
        &moto,
        &scratch,
        "wg-rs-keys",
        "load/people.csv",
        "OVERWRITE_EXISTING",
        &options,
        table_node("loose", vec![text("primaryKeys", "id")]),
    );
    assert_eq!(status(&attempt), "FINISHED  ");
    assert_eq!(
        scratch.pg("select id, name from loose order by id"),
        rows(&[
            ("2", Some("new, two")),
            ("3", Some("three")),
            ("4", None),
            ("9", Some("nine"))
        ])
    );
    let attempt = load(
        &moto,
        &scratch,
        "wg-rs-nokeys",
        "load/people.csv",
        "KEEP_EXISTING",
        &options,
        table_node("loose", vec![]),
    );
    assert!(
        status(&attempt).starts_with("FAILED InvalidTaskObject insertMode KeepExisting compares primary keys, and loose has none"),
        "{}",
        status(&attempt)
    );
}

#[test]
fn a_bad_row_leaves_the_redshift_table_unchanged() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    let scratch = Scratch::new("redshiftbad");
    scratch.pg(
        "create table people (id int primary key, name text); insert into people values (1, 'one')",
    );
    put(&s3, "load/bad.txt", "2|two\n3|three\nx|bad\n");
    for mode in ["TRUNCATE", "OVERWRITE_EXISTING"] {
        let attempt = load(
            &moto,
            &scratch,
            &format!("wg-rs-bad-{}", mode.to_lowercase().replace('_', "-")),
            "load/bad.txt",
            mode,
            &[],
            table_node("people", vec![]),
        );
        let got = status(&attempt);
        assert!(
            got.starts_with(
                "FAILED DataLoadFailed s3://bkt/load/bad.txt line 3: people refused the row:"
            ) && got.contains("\"x\""),
            "{mode}: {got}"
        );
        assert_eq!(
            scratch.pg("select id, name from people order by id"),
            rows(&[("1", Some("one"))]),
            "{mode}"
        );
    }
}

/// Runs one `RedshiftCopyActivity` `Work` with `fields` and `others` through dp-local and the runner binary, with
/// S3 and DynamoDB at moto.
fn run_with_moto(
    moto: &Moto,
    group: &str,
    fields: &[(&str, &str)],
    others: Vec<PipelineObject>,
) -> (PipelineObject, String) {
    let endpoint = Endpoint::start();
    let dir = TempDir::new(group);
    let mut work = vec![
        text("type", "RedshiftCopyActivity"),
        text("workerGroup", group),
        text("maximumRetries", "0"),
    ];
    for (k, v) in fields {
        match v.strip_prefix("ref:") {
            Some(id) => work.push(reference(k, id)),
            None => work.push(text(k, v)),
        }
    }
    let mut objects = vec![object("Work", work)];
    objects.extend(others);
    let pipeline = dp_runner::testing::pipeline(&endpoint.url(), group, objects)
        .unwrap_or_else(|e| panic!("pipeline {group}: {e}"));
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &[&format!("--workerGroup={group}"), "--once"],
        &[
            ("AWS_ENDPOINT_URL_S3", &moto.url),
            ("AWS_ENDPOINT_URL_DYNAMODB", &moto.url),
            ("NO_PROXY", "localhost"),
        ],
    );
    runner.wait(std::time::Duration::from_secs(120));
    let attempt = attempts(&endpoint, &pipeline)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no attempt; runner log:\n{}", runner.log()));
    (attempt, runner.log())
}

fn dynamodb(moto: &Moto) -> aws_sdk_dynamodb::Client {
    let wire = crate::s3::wire_client();
    let http = block_on(wire.sdk_http_client()).unwrap();
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .http_client(http)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                KEY_ID, SECRET, None, None, "test",
            ))
            .endpoint_url(&moto.url)
            .build(),
    )
}

#[test]
fn a_dynamodb_table_loads_into_postgres() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    let moto = Moto::start();
    let dynamodb = dynamodb(&moto);
    block_on(
        dynamodb
            .create_table()
            .table_name("Orders")
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
    .expect("table created");
    let put = |attributes: Vec<(&str, AttributeValue)>| {
        let mut request = dynamodb.put_item().table_name("Orders");
        for (k, v) in attributes {
            request = request.item(k, v);
        }
        block_on(request.send()).expect("item put");
    };
    let s = |v: &str| AttributeValue::S(v.into());
    // Enough items for several scan pages would take moto long; paging is the SDK's, so three kinds of item.
    put(vec![
        ("id", s("o-1")),
        ("Customer", s("O'Brien \\ \"quoted\"\nnew line")),
        ("total", AttributeValue::N("12.50".into())),
        ("paid", AttributeValue::Bool(true)),
        ("ignored", s("no such column")),
    ]);
    put(vec![
        ("id", s("o-2")),
        ("customer", s("Zoë")),
        ("total", AttributeValue::N("-3".into())),
        ("paid", AttributeValue::Null(true)),
    ]);
    put(vec![("id", s("o-3"))]);
    let scratch = Scratch::new("rsdynamo");
    let nodes = |table: &str| {
        vec![
            object(
                "Source",
                vec![text("type", "DynamoDBDataNode"), text("tableName", table)],
            ),
            table_node("orders", vec![]),
            redshift_db(&scratch),
        ]
    };
    scratch.pg(
        "create table orders (id text primary key, customer text, total numeric(10,2), paid boolean); \
         insert into orders values ('o-2', 'old', 0, false), ('o-9', 'kept', 1, true)",
    );
    let fields = [
        ("input", "ref:Source"),
        ("output", "ref:Table"),
        ("insertMode", "OVERWRITE_EXISTING"),
    ];
    let (attempt, log) = run_with_moto(&moto, "wg-rs-dynamo", &fields, nodes("Orders"));
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(field(&attempt, "rowsCopied"), "3");
    let text_of = |v: &str| Some(v.to_string());
    assert_eq!(
        scratch.pg("select id, customer, total, paid from orders order by id"),
        vec![
            vec![
                text_of("o-1"),
                text_of("O'Brien \\ \"quoted\"\nnew line"),
                text_of("12.50"),
                text_of("t")
            ],
            vec![text_of("o-2"), text_of("Zoë"), text_of("-3.00"), None],
            vec![text_of("o-3"), None, None, None],
            vec![
                text_of("o-9"),
                text_of("kept"),
                text_of("1.00"),
                text_of("t")
            ],
        ]
    );

    // An item with a list, and a missing table: FAILED, saying which, and the table as it was.
    put(vec![
        ("id", s("o-4")),
        ("customer", AttributeValue::L(vec![s("a")])),
    ]);
    let before = scratch.pg("select id, customer, total, paid from orders order by id");
    let (attempt, _) = run_with_moto(&moto, "wg-rs-dynamo-list", &fields, nodes("Orders"));
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED DataFormatError DynamoDB table Orders, item ")
            && got.ends_with(
                "of the scan: the attribute \"customer\" (column customer) is a list (L); strings, numbers, \
                 booleans and nulls load"
            ),
        "{got}"
    );
    let (attempt, _) = run_with_moto(&moto, "wg-rs-dynamo-missing", &fields, nodes("Missing"));
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED DataCopyFailed cannot scan the DynamoDB table Missing:"),
        "{got}"
    );
    assert_eq!(
        scratch.pg("select id, customer, total, paid from orders order by id"),
        before
    );
}

/// `--redshift-copy=server` with a `jdbc:redshift://` database: the runner hands the load to the server's own
/// `COPY … FROM 's3://…' CREDENTIALS …` (there is no Redshift here, so the PostgreSQL behind the URL refuses that
/// statement, which shows which path ran), the table is left as it was, and the secret key is in no log.
#[test]
fn redshift_copy_server_issues_redshifts_own_copy() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    put(&s3, "load/people.txt", "2|two\n");
    let scratch = Scratch::new("rsserver");
    scratch.pg(
        "create table people (id int primary key, name text); insert into people values (1, 'one')",
    );
    let endpoint = Endpoint::start();
    let dir = TempDir::new("rs-server");
    let url = scratch
        .pg_jdbc()
        .replace("jdbc:postgresql://", "jdbc:redshift://");
    let pipeline = dp_runner::testing::pipeline(
        &endpoint.url(),
        "wg-rs-server",
        vec![
            object(
                "Work",
                vec![
                    text("type", "RedshiftCopyActivity"),
                    text("workerGroup", "wg-rs-server"),
                    text("maximumRetries", "0"),
                    text("insertMode", "APPEND"),
                    reference("input", "Files"),
                    reference("output", "Table"),
                ],
            ),
            s3_node("Files", "filePath", "s3://bkt/load/people.txt", None, false),
            table_node("people", vec![]),
            object(
                "Warehouse",
                vec![
                    text("type", "RedshiftDatabase"),
                    text("connectionString", &url),
                    text("username", &scratch.pg_user()),
                ],
            ),
        ],
    )
    .unwrap();
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-rs-server",
            "--once",
            "--redshift-copy=server",
        ],
        &[
            ("AWS_ENDPOINT_URL_S3", &moto.url),
            ("NO_PROXY", "localhost"),
        ],
    );
    runner.wait(std::time::Duration::from_secs(120));
    let attempt = attempts(&endpoint, &pipeline).remove(0);
    let got = status(&attempt);
    assert!(
        got.starts_with(
            "FAILED DataLoadFailed Redshift's COPY into people from s3://bkt/load/people.txt failed:"
        ) && got.contains("CREDENTIALS"),
        "{got}\n{}",
        runner.log()
    );
    assert!(
        !got.contains(SECRET)
            && !runner.log().contains(SECRET)
            && !runner.stderr_text().contains(SECRET)
    );
    assert_eq!(
        scratch.pg("select id, name from people"),
        rows(&[("1", Some("one"))])
    );
}
