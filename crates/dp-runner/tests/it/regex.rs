//! The `RegEx` data format as an input, end to end against moto's S3 and the real PostgreSQL: an access log read
//! by `CopyActivity` into a table and re-encoded to CSV on S3, by `RedshiftCopyActivity` into a table, and the
//! failures (a line that does not match, a pattern that does not compile) that leave the table as it was.

use dp_model::types::PipelineObject;

use crate::copy::{run_with_s3, s3_node, status};
use crate::databases::{Row, Scratch, jdbc_database};
use crate::harness::*;
use crate::s3::{Moto, block_on, get, put, s3};

/// An access log: host, user, time, request, status and size (`-` when there is none: NULL).
const LOG: &str = "10.0.0.1 - alice [07/Dec/2026:01:00:00 +0000] \"GET /index.html HTTP/1.1\" 200 512\n\
                   10.0.0.2 - - [07/Dec/2026:01:00:01 +0000] \"POST /a,b \\\"q\\\" HTTP/1.1\" 404 -\n\
                   h\u{e9}te - bob [07/Dec/2026:01:00:02 +0000] \"GET /\\\\back HTTP/1.1\" 500 0\n";

/// The pattern: a group per column; the optional size group takes no part when the size is `-`.
const PATTERN: &str = r#"(\S+) - (?:-|(\S+)) \[([^\]]*)\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:-|(\d+))"#;

fn log_format(id: &str, pattern: &str) -> PipelineObject {
    object(
        id,
        vec![
            text("type", "RegEx"),
            text("inputRegEx", pattern),
            text("outputFormat", "%1$s %2$s %3$s %4$s %5$s %6$s"),
        ],
    )
}

fn expected_rows() -> Vec<Row> {
    let s = |v: &str| Some(v.to_string());
    vec![
        vec![
            s("10.0.0.1"),
            s("alice"),
            s("07/Dec/2026:01:00:00 +0000"),
            s("GET /index.html HTTP/1.1"),
            s("200"),
            s("512"),
        ],
        vec![
            s("10.0.0.2"),
            None,
            s("07/Dec/2026:01:00:01 +0000"),
            s("POST /a,b \\\"q\\\" HTTP/1.1"),
            s("404"),
            None,
        ],
        vec![
            s("h\u{e9}te"),
            s("bob"),
            s("07/Dec/2026:01:00:02 +0000"),
            s("GET /\\\\back HTTP/1.1"),
            s("500"),
            s("0"),
        ],
    ]
}

const TABLE: &str =
    "create table hits (host text, who text, at text, request text, status int, size bigint)";

fn table_node(id: &str, kind: &str, db: &str) -> PipelineObject {
    object(
        id,
        vec![
            text("type", kind),
            text("table", "hits"),
            text("tableName", "hits"),
            reference("database", db),
        ],
    )
}

#[test]
fn regex_input_into_postgres_and_csv() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    let scratch = Scratch::new("regex");
    put(&s3, "logs/access.log", LOG);
    scratch.pg(TABLE);

    // CopyActivity: S3 (RegEx) into a PostgreSQL table.
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-regex-copy",
        "CopyActivity",
        &[("input", "ref:Logs"), ("output", "ref:Hits")],
        vec![
            s3_node(
                "Logs",
                "filePath",
                "s3://bkt/logs/access.log",
                Some("LogFormat"),
                false,
            ),
            log_format("LogFormat", PATTERN),
            table_node("Hits", "SqlDataNode", "HitsDb"),
            jdbc_database("HitsDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(field(&attempt, "rowsCopied"), "3");
    let select = "select host, who, at, request, status, size from hits order by status";
    assert_eq!(scratch.pg(select), expected_rows());

    // CopyActivity: S3 (RegEx) re-encoded as the service's CSV (backslash escapes, \N for NULL).
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-regex-csv",
        "CopyActivity",
        &[("input", "ref:Logs"), ("output", "ref:Csv")],
        vec![
            s3_node(
                "Logs",
                "filePath",
                "s3://bkt/logs/access.log",
                Some("LogFormat"),
                false,
            ),
            log_format("LogFormat", PATTERN),
            s3_node(
                "Csv",
                "filePath",
                "s3://bkt/out/access.csv",
                Some("CsvFormat"),
                false,
            ),
            object("CsvFormat", vec![text("type", "CSV")]),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(
        get(&s3, "out/access.csv").as_deref(),
        Some(
            "10.0.0.1,alice,07/Dec/2026:01:00:00 +0000,GET /index.html HTTP/1.1,200,512\n\
             10.0.0.2,\\N,07/Dec/2026:01:00:01 +0000,POST /a\\,b \\\\\"q\\\\\" HTTP/1.1,404,\\N\n\
             h\u{e9}te,bob,07/Dec/2026:01:00:02 +0000,GET /\\\\\\\\back HTTP/1.1,500,0\n"
        )
    );

    // RedshiftCopyActivity (PostgreSQL standing in): the same log with a header line, TRUNCATE.
    put(&s3, "logs/with-header.log", &format!("# a header\n{LOG}"));
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-regex-redshift",
        "RedshiftCopyActivity",
        &[
            ("input", "ref:Logs"),
            ("output", "ref:Hits"),
            ("insertMode", "TRUNCATE"),
            ("commandOptions", "IGNOREHEADER 1"),
        ],
        vec![
            s3_node(
                "Logs",
                "filePath",
                "s3://bkt/logs/with-header.log",
                Some("LogFormat"),
                false,
            ),
            log_format("LogFormat", PATTERN),
            table_node("Hits", "RedshiftDataNode", "Warehouse"),
            object(
                "Warehouse",
                vec![
                    text("type", "RedshiftDatabase"),
                    text("connectionString", &scratch.pg_jdbc()),
                    text("username", &scratch.pg_user()),
                ],
            ),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(field(&attempt, "rowsCopied"), "3");
    assert_eq!(scratch.pg(select), expected_rows());
}

#[test]
fn regex_input_failures_leave_the_table_unchanged() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    let scratch = Scratch::new("regexbad");
    scratch.pg(TABLE);
    scratch.pg("insert into hits values ('kept', null, null, null, 200, 1)");
    // Line 3 has no status code: it does not match.
    put(
        &s3,
        "logs/bad.log",
        &format!(
            "{}h - - [t] \"GET /\" ok 1\n",
            &LOG[..LOG.find("h\u{e9}te").unwrap()]
        ),
    );
    let run = |group: &str, pattern: &str| {
        run_with_s3(
            &moto,
            group,
            "CopyActivity",
            &[("input", "ref:Logs"), ("output", "ref:Hits")],
            vec![
                s3_node(
                    "Logs",
                    "filePath",
                    "s3://bkt/logs/bad.log",
                    Some("LogFormat"),
                    false,
                ),
                log_format("LogFormat", pattern),
                table_node("Hits", "SqlDataNode", "HitsDb"),
                jdbc_database("HitsDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
            ],
        )
        .0
    };
    let got = status(&run("wg-regex-nomatch", PATTERN));
    assert!(
        got.starts_with(
            "FAILED DataFormatError s3://bkt/logs/bad.log line 3: the line does not match the inputRegEx of the \
             RegEx data format LogFormat: expected a whole line matching"
        ) && got.ends_with("(6 values), got \"h - - [t] \\\"GET /\\\" ok 1\""),
        "{got}"
    );
    let got = status(&run("wg-regex-badpattern", "(\\S+) (?<=x)(\\d+)"));
    assert!(
        got.starts_with(
            "FAILED InvalidTaskObject the inputRegEx of the RegEx data format LogFormat is not a valid regular \
             expression:"
        ) && got.contains("look-around"),
        "{got}"
    );
    assert_eq!(
        scratch.pg("select host from hits"),
        vec![vec![Some("kept".to_string())]]
    );
}
