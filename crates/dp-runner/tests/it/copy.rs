//! `CopyActivity` end to end: dp-local hands the task to the runner binary, which moves rows between the real
//! PostgreSQL and MariaDB servers and moto's S3.

use std::time::Duration;

use dp_model::types::PipelineObject;

use crate::databases::{Row, Scratch, jdbc_database};
use crate::harness::*;
use crate::s3::{Moto, block_on, get, put, s3};

const LIMIT: Duration = Duration::from_secs(120);

/// Runs one activity `Work` of `kind` with `fields` (a value `ref:ID` is a reference) and `others` through dp-local
/// and the runner binary, with S3 at moto; returns the attempt and the runner log.
pub fn run_with_s3(
    moto: &Moto,
    group: &str,
    kind: &str,
    fields: &[(&str, &str)],
    others: Vec<PipelineObject>,
) -> (PipelineObject, String) {
    let endpoint = Endpoint::start();
    let dir = TempDir::new(group);
    let mut work = vec![
        text("type", kind),
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
            ("NO_PROXY", "localhost"),
        ],
    );
    runner.wait(LIMIT);
    let attempt = attempts(&endpoint, &pipeline)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no attempt; runner log:\n{}", runner.log()));
    (attempt, runner.log())
}

pub fn status(attempt: &PipelineObject) -> String {
    format!(
        "{} {} {}",
        field(attempt, "@status"),
        field(attempt, "errorId"),
        field(attempt, "errorMessage")
    )
}

pub fn s3_node(
    id: &str,
    key: &str,
    path: &str,
    format: Option<&str>,
    gzip: bool,
) -> PipelineObject {
    let mut fields = vec![text("type", "S3DataNode"), text(key, path)];
    if let Some(f) = format {
        fields.push(reference("dataFormat", f));
    }
    if gzip {
        fields.push(text("compression", "gzip"));
    }
    object(id, fields)
}

fn sql_node(id: &str, table: &str) -> PipelineObject {
    object(
        id,
        vec![
            text("type", "SqlDataNode"),
            text("table", table),
            reference("database", &format!("{id}Db")),
        ],
    )
}

fn started_moto() -> (Moto, aws_sdk_s3::Client) {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    (moto, s3)
}

fn people() -> Vec<Row> {
    let s = |v: &str| Some(v.to_string());
    vec![
        vec![s("1"), s("plain"), None],
        vec![
            s("2"),
            s("comma, \"quote\" and 'single'"),
            s("back\\slash \\N"),
        ],
        vec![s("3"), s("new\nline and\r\nCRLF"), s("tab\there")],
        vec![s("4"), s("ünïcödé ✓ 日本"), s("")],
        vec![s("5"), s("\\N"), s("N")],
        vec![
            s("6"),
            s("\"starts with a quote"),
            s("ends with a backslash\\"),
        ],
    ]
}

#[test]
fn postgres_to_s3_csv_to_mariadb_keeps_every_value() {
    let (moto, s3) = started_moto();
    let scratch = Scratch::new("copyrt");
    scratch.pg("create table people (id int, name text, note text); create table nobody (id int, name text)");
    scratch.my(
        "create table people (id int, name text, note text); create table nobody (id int, name text)",
    );
    let rows = people();
    for row in &rows {
        let literal = |v: &Option<String>| match v {
            None => "NULL".to_string(),
            Some(v) => format!("'{}'", v.replace('\'', "''")),
        };
        scratch.pg(&format!(
            "insert into people values ({}, {}, {})",
            literal(&row[0]),
            literal(&row[1]),
            literal(&row[2])
        ));
    }
    let csv = object("Csv", vec![text("type", "CSV")]);
    for (table, gzip) in [("people", false), ("people", true), ("nobody", false)] {
        let key = format!("export/{table}-{gzip}.csv");
        let (attempt, log) = run_with_s3(
            &moto,
            &format!("wg-copy-out-{table}-{gzip}"),
            "CopyActivity",
            &[("input", "ref:Source"), ("output", "ref:Export")],
            vec![
                sql_node(
                    "Source",
                    &format!("(select * from {table} order by id) as t"),
                ),
                jdbc_database("SourceDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
                s3_node(
                    "Export",
                    "filePath",
                    &format!("s3://bkt/{key}"),
                    Some("Csv"),
                    gzip,
                ),
                csv.clone(),
            ],
        );
        assert_eq!(status(&attempt), "FINISHED  ", "{table} {gzip}: {log}");
        let expected_rows = if table == "people" { rows.len() } else { 0 };
        assert_eq!(
            field(&attempt, "rowsCopied"),
            expected_rows.to_string(),
            "{table}"
        );
        if !gzip && table == "people" {
            let text = get(&s3, &key).expect("the export exists");
            assert!(
                text.starts_with(
                    "1,plain,\\N\n2,comma\\, \"quote\" and 'single',back\\\\slash \\\\N\n"
                ),
                "{text}"
            );
        }
        let (attempt, log) = run_with_s3(
            &moto,
            &format!("wg-copy-in-{table}-{gzip}"),
            "CopyActivity",
            &[("input", "ref:Export"), ("output", "ref:Target")],
            vec![
                s3_node(
                    "Export",
                    "filePath",
                    &format!("s3://bkt/{key}"),
                    Some("Csv"),
                    gzip,
                ),
                csv.clone(),
                sql_node("Target", table),
                jdbc_database(
                    "TargetDb",
                    &scratch.my_jdbc(),
                    &scratch.my_user(),
                    &scratch.my_password(),
                ),
            ],
        );
        assert_eq!(status(&attempt), "FINISHED  ", "{table} {gzip}: {log}");
        let columns = if table == "people" {
            "id, name, note"
        } else {
            "id, name"
        };
        assert_eq!(
            scratch.my(&format!("select {columns} from {table} order by id")),
            if table == "people" {
                rows.clone()
            } else {
                vec![]
            },
            "{table} gzip={gzip}"
        );
        scratch.my(&format!("delete from {table}"));
    }
}

#[test]
fn a_bad_row_names_file_line_and_column_and_leaves_the_table_as_it_was() {
    let (moto, s3) = started_moto();
    let scratch = Scratch::new("copybad");
    scratch.pg("create table t (id int, name text); insert into t values (100, 'kept')");
    scratch.my("create table t (id int, name text); insert into t values (100, 'kept')");
    put(&s3, "in/a.csv", "1,one\n2,two\n");
    put(&s3, "in/b.csv", "3,three\nfour,4\n5,five\n");
    put(&s3, "short/a.csv", "1,one\n2\n");
    let csv = object("Csv", vec![text("type", "CSV")]);
    let copy = |group: &str, prefix: &str, database: PipelineObject| {
        run_with_s3(
            &moto,
            group,
            "CopyActivity",
            &[("input", "ref:Files"), ("output", "ref:Target")],
            vec![
                s3_node(
                    "Files",
                    "directoryPath",
                    &format!("s3://bkt/{prefix}/"),
                    Some("Csv"),
                    false,
                ),
                csv.clone(),
                sql_node("Target", "t"),
                database,
            ],
        )
    };
    let pg = || jdbc_database("TargetDb", &scratch.pg_jdbc(), &scratch.pg_user(), "");
    let my = || {
        jdbc_database(
            "TargetDb",
            &scratch.my_jdbc(),
            &scratch.my_user(),
            &scratch.my_password(),
        )
    };
    let kept = vec![vec![Some("100".to_string()), Some("kept".to_string())]];

    let (attempt, log) = copy("wg-copybad-pg", "in", pg());
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED DataLoadFailed s3://bkt/in/b.csv line 2: t refused the row:")
            && got.contains("invalid input syntax for type integer: \"four\"")
            && got.contains("column id"),
        "{got}\n{log}"
    );
    assert_eq!(scratch.pg("select * from t"), kept);

    let (attempt, log) = copy("wg-copybad-my", "in", my());
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED DataLoadFailed s3://bkt/in/b.csv line 2: t refused the row:")
            && got.contains("'four'")
            && got.contains("`id`"),
        "{got}\n{log}"
    );
    assert_eq!(scratch.my("select * from t"), kept);

    for (group, database) in [("wg-copyshort-pg", pg()), ("wg-copyshort-my", my())] {
        let (attempt, log) = copy(group, "short", database);
        assert_eq!(
            status(&attempt),
            "FAILED DataFormatError s3://bkt/short/a.csv line 2: 1 values, but t takes 2",
            "{log}"
        );
    }
    assert_eq!(scratch.pg("select * from t"), kept);
    assert_eq!(scratch.my("select * from t"), kept);
}

#[test]
fn s3_to_s3_reencodes_csv_to_gzip_tsv_and_a_sql_error_fails_with_the_servers_message() {
    let (moto, s3) = started_moto();
    put(&s3, "csv/a.csv", "1,\"x, y\"\n2,\\N\n");
    put(&s3, "csv/b.csv", "3,z\n");
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-copy-s3",
        "CopyActivity",
        &[("input", "ref:In"), ("output", "ref:Out")],
        vec![
            s3_node("In", "directoryPath", "s3://bkt/csv", Some("Csv"), false),
            object("Csv", vec![text("type", "CSV")]),
            s3_node("Out", "directoryPath", "s3://bkt/tsv/", Some("Tsv"), true),
            object("Tsv", vec![text("type", "TSV")]),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(field(&attempt, "rowsCopied"), "3");
    let gunzip = |key: &str| {
        let bytes = block_on(async {
            let out = s3.get_object().bucket("bkt").key(key).send().await.unwrap();
            out.body.collect().await.unwrap().into_bytes()
        });
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .unwrap();
        text
    };
    assert_eq!(gunzip("tsv/a.csv"), "1\tx, y\n2\t\\N\n");
    assert_eq!(gunzip("tsv/b.csv"), "3\tz\n");

    let scratch = Scratch::new("copysqlerr");
    let (attempt, _) = run_with_s3(
        &moto,
        "wg-copy-sqlerr",
        "CopyActivity",
        &[("input", "ref:Source"), ("output", "ref:Out")],
        vec![
            object(
                "Source",
                vec![
                    text("type", "SqlDataNode"),
                    text("selectQuery", "select * from no_such_table"),
                    reference("database", "SourceDb"),
                ],
            ),
            jdbc_database("SourceDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
            s3_node("Out", "filePath", "s3://bkt/never.csv", None, false),
        ],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED SqlError the query of Source failed on the PostgreSQL database")
            && got.contains("relation \"no_such_table\" does not exist"),
        "{got}"
    );
    assert_eq!(
        get(&s3, "never.csv"),
        None,
        "no object appears for a failed copy"
    );
}

#[test]
fn a_manifest_and_an_insert_query_load_into_postgres() {
    let (moto, s3) = started_moto();
    let scratch = Scratch::new("copymanifest");
    scratch.pg("create table t (id int, name text, loaded boolean)");
    put(&s3, "parts/one.tsv", "1\tuno\n");
    put(&s3, "parts/two.tsv", "2\t\\N\n3\ttres\n");
    put(&s3, "parts/ignored.tsv", "9\tnot listed\n");
    put(
        &s3,
        "parts/manifest.json",
        r#"{"entries": [{"url": "s3://bkt/parts/one.tsv", "mandatory": true}, {"url": "s3://bkt/parts/two.tsv"}]}"#,
    );
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-copy-manifest",
        "CopyActivity",
        &[("input", "ref:Parts"), ("output", "ref:Target")],
        vec![
            s3_node(
                "Parts",
                "manifestFilePath",
                "s3://bkt/parts/manifest.json",
                Some("Tsv"),
                false,
            ),
            object("Tsv", vec![text("type", "TSV")]),
            object(
                "Target",
                vec![
                    text("type", "SqlDataNode"),
                    text("table", "t"),
                    text(
                        "insertQuery",
                        "insert into t (id, name, loaded) values (?, coalesce(?, 'none'), true)",
                    ),
                    reference("database", "TargetDb"),
                ],
            ),
            jdbc_database("TargetDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        scratch.pg("select id, name, loaded from t order by id"),
        vec![
            vec![s("1"), s("uno"), s("t")],
            vec![s("2"), s("none"), s("t")],
            vec![s("3"), s("tres"), s("t")],
        ]
    );
}

/// The keys of the multipart uploads moto holds in the bucket (started and neither completed nor aborted).
fn uploads(s3: &aws_sdk_s3::Client) -> Vec<String> {
    block_on(s3.list_multipart_uploads().bucket("bkt").send())
        .expect("ListMultipartUploads")
        .uploads()
        .iter()
        .filter_map(|u| u.key().map(str::to_string))
        .collect()
}

/// `rows` CSV lines of about 1 KB each (`i,xxx…`), so a few thousand fill a multipart upload's parts.
fn wide_rows(rows: usize) -> String {
    let pad = "x".repeat(1000);
    let mut text = String::with_capacity(rows * 1010);
    for i in 1..=rows {
        text.push_str(&format!("{i},{pad}\n"));
    }
    text
}

/// A copy into S3 that fails after some 20 MB (a failing query; an input record that does not parse) aborts its
/// multipart upload: no object under the key, no upload left in the bucket.
#[test]
fn a_failed_copy_into_s3_leaves_no_object_and_no_upload() {
    let (moto, s3) = started_moto();
    let scratch = Scratch::new("copyabort");
    // Table → S3: the query fails at row 30,000, after about 30 MB went out.
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-copyabort-sql",
        "CopyActivity",
        &[("input", "ref:Source"), ("output", "ref:Out")],
        vec![
            object(
                "Source",
                vec![
                    text("type", "SqlDataNode"),
                    text(
                        "selectQuery",
                        "select i, repeat('x', 1000) as pad, 1 / (30000 - i) as boom \
                         from generate_series(1, 40000) i",
                    ),
                    reference("database", "SourceDb"),
                ],
            ),
            jdbc_database("SourceDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
            s3_node("Out", "filePath", "s3://bkt/failed/sql.csv", None, false),
        ],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED SqlError the query of Source failed")
            && got.contains("division by zero"),
        "{got}\n{log}"
    );
    assert_eq!(
        get(&s3, "failed/sql.csv"),
        None,
        "no object for a failed copy"
    );
    assert_eq!(uploads(&s3), Vec::<String>::new(), "no upload left behind");

    // S3 → S3: 20 MB of good records go out as a multipart upload and appear whole.
    let good = wide_rows(20_000);
    put(&s3, "good/input.csv", &good);
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-copyabort-good",
        "CopyActivity",
        &[("input", "ref:In"), ("output", "ref:Out")],
        vec![
            s3_node("In", "filePath", "s3://bkt/good/input.csv", None, false),
            s3_node("Out", "filePath", "s3://bkt/copied/good.csv", None, false),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert!(
        get(&s3, "copied/good.csv") == Some(good),
        "the copy differs"
    );

    // S3 → S3: the input's last record opens a quote it never closes, after 20,000 good records.
    let mut input = wide_rows(20_000);
    input.push_str("20001,\"never closed\n");
    put(&s3, "bad/input.csv", &input);
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-copyabort-s3",
        "CopyActivity",
        &[("input", "ref:In"), ("output", "ref:Out")],
        vec![
            s3_node("In", "filePath", "s3://bkt/bad/input.csv", None, false),
            s3_node("Out", "filePath", "s3://bkt/failed/s3.csv", None, false),
        ],
    );
    assert_eq!(
        status(&attempt),
        "FAILED DataFormatError s3://bkt/bad/input.csv line 20001: a quoted value is not closed",
        "{log}"
    );
    assert_eq!(
        get(&s3, "failed/s3.csv"),
        None,
        "no object for a failed copy"
    );
    assert_eq!(uploads(&s3), Vec::<String>::new(), "no upload left behind");
}

/// Runs `objects` (a CopyActivity `Work` on `group` writing `out_key`) with a runner that stays up, waits until the
/// copy's multipart upload has started, deactivates the pipeline (the service cancels the task), and checks that
/// the runner aborted the upload before it logged the cancel: no object, no upload. Returns the runner, still up.
fn cancel_during_upload(
    moto: &Moto,
    s3: &aws_sdk_s3::Client,
    dir: &TempDir,
    group: &str,
    objects: Vec<PipelineObject>,
    out_key: &str,
) -> (RunnerProcess, Endpoint) {
    let endpoint = Endpoint::start();
    let pipeline = dp_runner::testing::pipeline(&endpoint.url(), group, objects)
        .unwrap_or_else(|e| panic!("pipeline {group}: {e}"));
    let runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &[
            &format!("--workerGroup={group}"),
            "--progress-interval=0.2",
            "--cancel-grace=5",
        ],
        &[
            ("AWS_ENDPOINT_URL_S3", &moto.url),
            ("NO_PROXY", "localhost"),
        ],
    );
    wait_until(LIMIT, "the copy's multipart upload to start", || {
        uploads(s3).iter().any(|k| k == out_key)
    });
    call(
        &endpoint,
        "DeactivatePipeline",
        serde_json::json!({"pipelineId": pipeline}),
    );
    wait_until(LIMIT, "the runner to log the cancel", || {
        runner
            .log()
            .contains("task canceled by the service; no status sent")
    });
    assert_eq!(uploads(s3), Vec::<String>::new(), "{}", runner.log());
    assert_eq!(get(s3, out_key), None, "no object for a canceled copy");
    (runner, endpoint)
}

fn stop((mut runner, _endpoint): (RunnerProcess, Endpoint)) {
    runner.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "{}",
        runner.stderr_text()
    );
}

/// A copy into S3 canceled by the service while its parts upload (an S3DataNode read from a pipe that stops
/// sending; a query that sleeps on the server) aborts the upload; the canceled query is gone from the server.
#[test]
fn a_canceled_copy_into_s3_leaves_no_object_and_no_upload() {
    let (moto, s3) = started_moto();

    // File → S3 (the S3-to-S3 path): 20 MB arrive through a named pipe, then nothing until the test ends.
    let dir = TempDir::new("copycancel-pipe");
    let fifo = dir.path().join("input.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let (release, held) = std::sync::mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut pipe = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("the runner opens the pipe");
            // Errors mean the reader is gone, which the test notices on its own.
            let _ = pipe.write_all(wide_rows(20_000).as_bytes());
            let _ = held.recv();
        })
    };
    let runner = cancel_during_upload(
        &moto,
        &s3,
        &dir,
        "wg-copycancel-pipe",
        vec![
            object(
                "Work",
                vec![
                    text("type", "CopyActivity"),
                    text("workerGroup", "wg-copycancel-pipe"),
                    reference("input", "In"),
                    reference("output", "Out"),
                ],
            ),
            s3_node("In", "filePath", &fifo.display().to_string(), None, false),
            s3_node("Out", "filePath", "s3://bkt/canceled/pipe.csv", None, false),
        ],
        "canceled/pipe.csv",
    );
    // The pipe ends, so the runner's abandoned read returns and the runner can stop.
    let _ = release.send(());
    writer.join().unwrap();
    stop(runner);

    // Table → S3: 20 MB of rows, then the query sleeps on the server.
    let scratch = Scratch::new("copycancel");
    let dir = TempDir::new("copycancel-sql");
    let runner = cancel_during_upload(
        &moto,
        &s3,
        &dir,
        "wg-copycancel-sql",
        vec![
            object(
                "Work",
                vec![
                    text("type", "CopyActivity"),
                    text("workerGroup", "wg-copycancel-sql"),
                    reference("input", "Source"),
                    reference("output", "Out"),
                ],
            ),
            object(
                "Source",
                vec![
                    text("type", "SqlDataNode"),
                    text(
                        "selectQuery",
                        "select i, repeat('x', 1000) as pad, \
                         case when i = 20000 then pg_sleep(300)::text end as slept \
                         from generate_series(1, 20001) i",
                    ),
                    reference("database", "SourceDb"),
                ],
            ),
            jdbc_database("SourceDb", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
            s3_node("Out", "filePath", "s3://bkt/canceled/sql.csv", None, false),
        ],
        "canceled/sql.csv",
    );
    wait_until(
        LIMIT,
        "the canceled query to be gone from the server",
        || {
            scratch.pg(&format!(
                "select count(*) from pg_stat_activity where datname = '{}' and state = 'active' \
             and query like '%pg_sleep(300)%' and pid <> pg_backend_pid()",
                scratch.name
            ))[0][0]
                .as_deref()
                == Some("0")
        },
    );
    stop(runner);
}

/// An `insertQuery` runs for every record, many statements to a request, in one transaction: a record the server
/// refuses in the middle of a batch is named by file and line, and the table is left as it was; on MariaDB too.
#[test]
fn an_insert_query_is_batched_and_a_refused_record_is_named() {
    let (moto, s3) = started_moto();
    let scratch = Scratch::new("copyquery");
    scratch.pg("create table t (id int, name text); insert into t values (0, 'kept')");
    scratch.my("create table t (id int, name text); insert into t values (0, 'kept')");
    let lines = |bad: Option<usize>| {
        let mut text = String::new();
        for i in 1..=2500 {
            if Some(i) == bad {
                text.push_str(&format!("x{i},row {i}\n"));
            } else {
                text.push_str(&format!("{i},row {i}\\, with a comma and 'quotes'\n"));
            }
        }
        text
    };
    put(&s3, "query/bad.csv", &lines(Some(1800)));
    put(&s3, "query/good.csv", &lines(None));
    let copy = |group: &str, key: &str, database: PipelineObject| {
        run_with_s3(
            &moto,
            group,
            "CopyActivity",
            &[("input", "ref:In"), ("output", "ref:Target")],
            vec![
                s3_node("In", "filePath", &format!("s3://bkt/{key}"), None, false),
                object(
                    "Target",
                    vec![
                        text("type", "SqlDataNode"),
                        text("table", "t"),
                        text("insertQuery", "insert into t (id, name) values (?, ?);"),
                        reference("database", "TargetDb"),
                    ],
                ),
                database,
            ],
        )
    };
    let pg = || jdbc_database("TargetDb", &scratch.pg_jdbc(), &scratch.pg_user(), "");
    let my = || {
        jdbc_database(
            "TargetDb",
            &scratch.my_jdbc(),
            &scratch.my_user(),
            &scratch.my_password(),
        )
    };
    let kept = vec![vec![Some("1".to_string())]];
    let (attempt, log) = copy("wg-copyquery-pg-bad", "query/bad.csv", pg());
    let got = status(&attempt);
    assert!(
        got.starts_with(
            "FAILED DataLoadFailed s3://bkt/query/bad.csv line 1800: the insertQuery failed:"
        ) && got.contains("invalid input syntax for type integer: \"x1800\""),
        "{got}\n{log}"
    );
    assert_eq!(scratch.pg("select count(*) from t"), kept);
    let (attempt, log) = copy("wg-copyquery-my-bad", "query/bad.csv", my());
    let got = status(&attempt);
    assert!(
        got.starts_with(
            "FAILED DataLoadFailed s3://bkt/query/bad.csv line 1800: the insertQuery failed:"
        ) && got.contains("'x1800'"),
        "{got}\n{log}"
    );
    assert_eq!(scratch.my("select count(*) from t"), kept);

    let s = |v: &str| Some(v.to_string());
    let expected = vec![vec![
        s("2501"),
        s("3126250"),
        s("row 2500, with a comma and 'quotes'"),
    ]];
    let (attempt, log) = copy("wg-copyquery-pg", "query/good.csv", pg());
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(field(&attempt, "rowsCopied"), "2500");
    assert_eq!(
        scratch.pg("select count(*), sum(id), max(name) filter (where id = 2500) from t"),
        expected
    );
    let (attempt, log) = copy("wg-copyquery-my", "query/good.csv", my());
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(
        scratch.my("select count(*), sum(id), max(case when id = 2500 then name end) from t"),
        expected
    );
}

/// A measured run, ignored by default (docs/PERFORMANCE.md, "Data activities"): a generated CSV file of
/// `DP_COPY_TEST_BYTES` bytes (default 1 GiB) on local disk is loaded into PostgreSQL by the runner binary
/// (CopyActivity, `filePath` → SqlDataNode `table`, COPY FROM STDIN), then by `psql \copy` from the same file, side
/// by side; then the table goes back out to a CSV file by the runner and by `psql \copy … TO`. It prints both
/// times and the runner's peak RSS (VmHWM, sampled until it exits), and fails when a row count differs or the peak
/// RSS passes 64 MB.
///
/// `cargo test -p dp-runner --test it -- --ignored --nocapture copy::large_copy_is_streamed`, with
/// `DP_TASK_RUNNER_BIN=target/release/dp-task-runner` to measure a release build.
#[test]
#[ignore = "measured: a large copy (1 GiB by default); run by hand"]
fn large_copy_is_streamed() {
    use std::io::Write as _;
    use std::time::Instant;
    let size: u64 = std::env::var("DP_COPY_TEST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let scratch = Scratch::new("copybig");
    scratch.pg("create table big (id bigint, name text, amount numeric, note text)");
    let dir = TempDir::new("copybig");
    let input = dir.path().join("big.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    let (mut written, mut rows) = (0u64, 0u64);
    while written < size {
        let line = format!(
            "{rows},name number {rows} with some text,{}.{:02},a note\\, with an escaped comma\n",
            rows % 100_000,
            rows % 100
        );
        file.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        rows += 1;
    }
    file.flush().unwrap();
    drop(file);
    eprintln!("input: {written} bytes, {rows} rows");

    let endpoint = Endpoint::start();
    let run = |group: &str, objects: Vec<PipelineObject>| -> (f64, u64) {
        let mut all = vec![object(
            "Work",
            vec![
                text("type", "CopyActivity"),
                text("workerGroup", group),
                text("maximumRetries", "0"),
                reference("input", "In"),
                reference("output", "Out"),
            ],
        )];
        all.extend(objects);
        let pipeline = dp_runner::testing::pipeline(&endpoint.url(), group, all).unwrap();
        let start = Instant::now();
        let group_flag = format!("--workerGroup={group}");
        let args = [group_flag.as_str(), "--once", "--quiet"];
        let mut runner = match std::env::var("DP_TASK_RUNNER_BIN") {
            // A release build for figures worth writing down (the tests' own binary is a debug build).
            Ok(bin) => {
                let output = dir.path().join("output");
                let stderr = dir.path().join("runner-stderr.txt");
                let child = std::process::Command::new(bin)
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("AWS_ACCESS_KEY_ID", KEY_ID)
                    .env("AWS_SECRET_ACCESS_KEY", SECRET)
                    .env("AWS_DEFAULT_REGION", "us-east-1")
                    .env("AWS_CONFIG_FILE", "/dev/null")
                    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("AWS_ENDPOINT_URL_DATA_PIPELINE", endpoint.url())
                    .arg(format!("--output={}", output.display()))
                    .arg(format!("--time-scale={TIME_SCALE}"))
                    .args(args)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::fs::File::create(&stderr).unwrap())
                    .spawn()
                    .expect("DP_TASK_RUNNER_BIN starts");
                RunnerProcess {
                    child,
                    output,
                    stderr,
                }
            }
            Err(_) => RunnerProcess::start(&endpoint, dir.path(), &args),
        };
        let pid = runner.child.id();
        let mut peak_kb = 0u64;
        loop {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                && let Some(kb) = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
            if runner.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let seconds = start.elapsed().as_secs_f64();
        let attempt = attempts(&endpoint, &pipeline).into_iter().next().unwrap();
        assert_eq!(status(&attempt), "FINISHED  ", "{}", runner.log());
        (seconds, peak_kb)
    };
    let db = || jdbc_database("Db", &scratch.pg_jdbc(), &scratch.pg_user(), "");
    let (load_s, load_peak) = run(
        "wg-big-in",
        vec![
            object(
                "In",
                vec![
                    text("type", "S3DataNode"),
                    text("filePath", &input.display().to_string()),
                ],
            ),
            object(
                "Out",
                vec![
                    text("type", "SqlDataNode"),
                    text("table", "big"),
                    reference("database", "Db"),
                ],
            ),
            db(),
        ],
    );
    assert_eq!(
        scratch.pg("select count(*) from big"),
        vec![vec![Some(rows.to_string())]]
    );
    let psql = |command: &str| -> f64 {
        let start = Instant::now();
        let status = std::process::Command::new("psql")
            .arg(crate::databases::postgres_url().replace("/test", &format!("/{}", scratch.name)))
            .args(["-q", "-c", command])
            .status()
            .expect("psql runs");
        assert!(status.success(), "psql {command}");
        start.elapsed().as_secs_f64()
    };
    scratch.pg("create table big_psql (like big)");
    let psql_load_s = psql(&format!(
        "\\copy big_psql from '{}' with (format text, delimiter ',')",
        input.display()
    ));
    let output = dir.path().join("out.csv");
    let (unload_s, unload_peak) = run(
        "wg-big-out",
        vec![
            object(
                "In",
                vec![
                    text("type", "SqlDataNode"),
                    text("table", "big"),
                    reference("database", "Db"),
                ],
            ),
            object(
                "Out",
                vec![
                    text("type", "S3DataNode"),
                    text("filePath", &output.display().to_string()),
                ],
            ),
            db(),
        ],
    );
    let psql_unload_s = psql(&format!(
        "\\copy big to '{}' with (format csv)",
        dir.path().join("psql-out.csv").display()
    ));
    let mb = written as f64 / 1e6;
    eprintln!(
        "load   {mb:.0} MB: runner {load_s:.1} s ({:.0} MB/s), psql \\copy {psql_load_s:.1} s ({:.0} MB/s); runner peak RSS {} MB",
        mb / load_s,
        mb / psql_load_s,
        load_peak / 1024
    );
    eprintln!(
        "unload {mb:.0} MB: runner {unload_s:.1} s ({:.0} MB/s), psql \\copy TO {psql_unload_s:.1} s ({:.0} MB/s); runner peak RSS {} MB",
        mb / unload_s,
        mb / psql_unload_s,
        unload_peak / 1024
    );
    assert!(
        load_peak < 64 * 1024 && unload_peak < 64 * 1024,
        "peak RSS over 64 MB"
    );
}

#[test]
fn mariadb_rows_go_to_s3_as_the_server_prints_them() {
    let (moto, s3) = started_moto();
    let scratch = Scratch::new("copymy");
    scratch.my(
        "create table m (id int, name varchar(20), amount decimal(6,2), day date); \
         insert into m values (1, 'a,b', 1.5, '2026-01-02'), (2, NULL, NULL, NULL)",
    );
    let (attempt, log) = run_with_s3(
        &moto,
        "wg-copy-my-out",
        "CopyActivity",
        &[("input", "ref:Source"), ("output", "ref:Out")],
        vec![
            object(
                "Source",
                vec![
                    text("type", "MySqlDataNode"),
                    text("selectQuery", "select * from m order by id"),
                    text("connectionString", &scratch.my_jdbc()),
                    text("username", &scratch.my_user()),
                    text("*password", &scratch.my_password()),
                ],
            ),
            s3_node("Out", "directoryPath", "s3://bkt/mysql-out", None, false),
        ],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(
        get(&s3, "mysql-out/part-00000").as_deref(),
        Some("1,a\\,b,1.50,2026-01-02\n2,\\N,\\N,\\N\n")
    );
}
