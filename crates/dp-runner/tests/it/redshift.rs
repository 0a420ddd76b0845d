//! `RedshiftCopyActivity` end to end, with the real PostgreSQL standing in for Redshift (a `RedshiftDatabase` whose
//! connectionString is a PostgreSQL URL) and moto's S3: each insertMode, createTableSql, the commandOptions, gzip,
//! and a bad row that leaves the table as it was.

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
