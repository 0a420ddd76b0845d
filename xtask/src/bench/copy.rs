//! `cargo xtask bench copy [SIZE]`: dp-task-runner's CopyActivity against `psql \copy` (and `aws s3 cp`), release
//! builds, side by side in one run.
//!
//! A CSV file of SIZE bytes (default 1 GiB; `64M`, `512K` and plain byte counts are accepted) is generated in the
//! service's CSV (comma, no quoting, backslash escapes, `\N` for NULL) with integers, decimals, dates, NULLs,
//! non-ASCII text and values holding commas, quotes, backslashes and newlines. It is kept in the temporary
//! directory and reused by the next run of the same size. moto's S3 server is started on a free port, and a
//! PostgreSQL database of the run's own is made (`DP_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and dropped at the end. Measured:
//!
//! - load: a CopyActivity from the file in moto (`s3://…`, S3DataNode `filePath`) into a table, run by
//!   dp-task-runner through dp-local, against `psql \copy … FROM` the same file on local disk;
//! - unload: the table back out to an S3 object by a CopyActivity, against `psql \copy … TO` a file plus
//!   `aws s3 cp` of that file to the same moto;
//! - the runner's peak RSS in each (`ru_maxrss` through GNU time);
//! - `insertQuery`: a smaller file (SIZE/64, at most 8 MiB) loaded through an `insertQuery` one statement per
//!   request (the server named `jdbc:redshift://`, which has no savepoints, so the runner does not batch: the way
//!   every engine ran before batching), through a batched `insertQuery`, and through `table` (COPY), rows per
//!   second.
//!
//! Each runner run is `dp-task-runner --once`: the time runs from its start to its exit, polling included.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::runner::{Killed, release_binaries, start_local, submit};
use crate::demo::EXAMPLE_ENVIRONMENT as KEYS;

const BUCKET: &str = "dp-bench-copy";
const COLUMNS: &str = "id bigint, name text, amount numeric(12,2), note text, day date";

/// `1G`, `64M`, `512K` or a byte count.
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
        None => (t, String::new()),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("size {text:?}: expected a number with an optional K, M or G"))?;
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        other => bail!("size {text:?}: unknown unit {other:?} (K, M or G)"),
    };
    Ok(n << shift)
}

/// `value` escaped the service's CSV way: a backslash before a comma, a backslash and a leading double quote;
/// newline, carriage return and tab as `\n`, `\r`, `\t`.
fn escape(out: &mut Vec<u8>, value: &str) {
    for (i, b) in value.bytes().enumerate() {
        match b {
            b',' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'"' if i == 0 => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes rows until the file holds at least `size` bytes; returns the row count. Rows are deterministic.
fn generate(path: &Path, size: u64) -> Result<u64> {
    let names = [
        "Ada Lovelace",
        "Zoë Saldaña",
        "Łukasz Żółw",
        "山田 太郎",
        "Ørsted, Hans Christian",
        "O'Brien",
        "\"Quoted\" Name",
        "plain name",
    ];
    let notes = [
        "a short note",
        "several words, with commas, inside",
        "a backslash \\ and a path C:\\tmp\\x",
        "two lines\nof text",
        "windows line\r\nend",
        "tab\tseparated",
        "ünïcödé ✓ — 日本語のテキスト",
        "he said \"hello\", then left",
        "",
    ];
    let mut escaped_names = Vec::new();
    for n in names {
        let mut e = Vec::new();
        escape(&mut e, n);
        escaped_names.push(e);
    }
    let mut escaped_notes = Vec::new();
    for n in notes {
        let mut e = Vec::new();
        escape(&mut e, n);
        escaped_notes.push(e);
    }
    let part = path.with_extension("part");
    let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&part)?);
    let (mut written, mut rows) = (0u64, 0u64);
    let mut line = Vec::with_capacity(512);
    while written < size {
        line.clear();
        let r = rows;
        push_number(&mut line, r);
        line.push(b',');
        line.extend_from_slice(&escaped_names[(r % 8) as usize]);
        line.push(b' ');
        push_number(&mut line, r % 1000);
        line.push(b',');
        if r % 17 == 0 {
            line.extend_from_slice(b"\\N");
        } else {
            push_number(&mut line, (r * 7919) % 1_000_000);
            line.push(b'.');
            let cents = (r * 31) % 100;
            line.push(b'0' + (cents / 10) as u8);
            line.push(b'0' + (cents % 10) as u8);
        }
        line.push(b',');
        if r % 23 == 0 {
            line.extend_from_slice(b"\\N");
        } else {
            line.extend_from_slice(&escaped_notes[(r % 9) as usize]);
            line.extend_from_slice(b" #");
            push_number(&mut line, r);
        }
        line.push(b',');
        let day = r % 3650;
        let (year, month, dom) = (2016 + day / 365, 1 + (day % 365) / 31 % 12, 1 + day % 28);
        push_number(&mut line, year);
        line.push(b'-');
        line.push(b'0' + (month / 10) as u8);
        line.push(b'0' + (month % 10) as u8);
        line.push(b'-');
        line.push(b'0' + (dom / 10) as u8);
        line.push(b'0' + (dom % 10) as u8);
        line.push(b'\n');
        file.write_all(&line)?;
        written += line.len() as u64;
        rows += 1;
    }
    file.flush()?;
    drop(file);
    std::fs::rename(&part, path)?;
    Ok(rows)
}

/// The input file of `size` bytes (made now, or kept from an earlier run) and its row count.
fn input_file(dir: &Path, size: u64) -> Result<(PathBuf, u64)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("input-{size}.csv"));
    let rows_file = dir.join(format!("input-{size}.rows"));
    if path.exists()
        && let Ok(rows) = std::fs::read_to_string(&rows_file)
        && let Ok(rows) = rows.trim().parse()
    {
        return Ok((path, rows));
    }
    let start = Instant::now();
    let rows = generate(&path, size)?;
    std::fs::write(&rows_file, rows.to_string())?;
    eprintln!(
        "generated {} ({rows} rows) in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok((path, rows))
}

/// The first lines of `from` up to about `size` bytes, written to `to`; returns the row count. Values hold
/// escaped newlines only, so every line is a row.
fn head(from: &Path, to: &Path, size: u64) -> Result<u64> {
    use std::io::BufRead as _;
    let reader = std::io::BufReader::new(std::fs::File::open(from)?);
    let mut out = BufWriter::new(std::fs::File::create(to)?);
    let (mut written, mut rows) = (0u64, 0u64);
    for line in reader.split(b'\n') {
        if written >= size {
            break;
        }
        let line = line?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        written += line.len() as u64 + 1;
        rows += 1;
    }
    out.flush()?;
    Ok(rows)
}

/// moto's S3 server on a free loopback port, logging to `log`.
fn start_moto(log: &Path) -> Result<(Killed, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting python3 -m moto.server (pip install 'moto[server]')")?;
    let mut moto = Killed(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = moto.0.try_wait()? {
            bail!("moto.server exited with {status}: is moto[server] installed?");
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("moto.server did not listen within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((moto, format!("http://127.0.0.1:{port}")))
}

/// Runs `aws ARGS` against moto; returns the wall time.
fn aws(moto: &str, args: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new("aws")
        .args(["--endpoint-url", moto])
        .args(args)
        .envs(KEYS)
        .stdout(Stdio::null())
        .output()
        .context("running aws")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

fn postgres_url() -> String {
    std::env::var("DP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A database of this run's own, dropped on drop.
struct Database {
    name: String,
    url: String,
}

impl Database {
    fn create() -> Result<Database> {
        let name = format!("dp_bench_copy_{}", std::process::id());
        let admin = postgres_url();
        psql(&admin, &format!("drop database if exists {name}"))?;
        psql(&admin, &format!("create database {name}"))?;
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => bail!("DP_TEST_POSTGRES_URL {admin:?} names no database"),
        };
        Ok(Database { name, url })
    }

    /// `jdbc:postgresql://host:port/name` and the user, from the URL.
    fn jdbc(&self) -> (String, String) {
        let rest = self
            .url
            .trim_start_matches("postgres://")
            .trim_start_matches("postgresql://");
        let (user, hostpath) = match rest.split_once('@') {
            Some((user, hostpath)) => (user.split(':').next().unwrap_or(user), hostpath),
            None => ("postgres", rest),
        };
        (format!("jdbc:postgresql://{hostpath}"), user.to_string())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            &postgres_url(),
            &format!("drop database if exists {} with (force)", self.name),
        );
    }
}

/// Runs `command` through `psql`; returns its output and wall time.
fn psql_timed(url: &str, command: &str) -> Result<(String, Duration)> {
    let start = Instant::now();
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            command,
        ])
        .output()
        .context("running psql")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "psql -c {command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        elapsed,
    ))
}

fn psql(url: &str, command: &str) -> Result<String> {
    psql_timed(url, command).map(|(out, _)| out)
}

/// One runner run: wall time, peak RSS (KiB), CPU seconds, and the runner's log.
struct RunnerRun {
    wall: Duration,
    peak_kib: u64,
    cpu: f64,
    log: String,
}

/// The two-node CopyActivity pipeline: `input`, `output` and the other objects (`Db`, `Csv`).
fn copy_pipeline(
    bin: &Path,
    url: &str,
    work: &Path,
    name: &str,
    objects: Vec<Value>,
) -> Result<()> {
    let mut all = vec![
        json!({"id": "Default", "name": "Default",
               "fields": [{"key": "scheduleType", "stringValue": "ondemand"}]}),
        json!({"id": "Work", "name": "Work", "fields": [
            {"key": "type", "stringValue": "CopyActivity"},
            {"key": "workerGroup", "stringValue": name},
            {"key": "maximumRetries", "stringValue": "0"},
            {"key": "input", "refValue": "In"},
            {"key": "output", "refValue": "Out"}]}),
        json!({"id": "Csv", "name": "Csv", "fields": [{"key": "type", "stringValue": "CSV"}]}),
    ];
    all.extend(objects);
    submit(bin, url, work, name, &all).map(|_| ())
}

/// Runs `dp-task-runner --once` for worker group `group` under GNU time; fails unless the task FINISHED.
fn run_runner(bin: &Path, url: &str, moto: &str, work: &Path, group: &str) -> Result<RunnerRun> {
    let output = work.join(group);
    let times = work.join(format!("{group}.time"));
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M %U %S", "-o"])
        .arg(&times)
        .arg(bin.join("dp-task-runner"))
        .args([
            &format!("--workerGroup={group}"),
            "--once",
            "--quiet",
            // dp-local runs 60 times faster than real time: so must the runner's progress reports.
            "--time-scale=60",
            &format!("--output={}", output.display()),
            "--endpoint-url",
            url,
        ])
        .envs(KEYS)
        .env("AWS_ENDPOINT_URL_S3", moto)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running dp-task-runner under /usr/bin/time")?;
    let wall = start.elapsed();
    let log = std::fs::read_to_string(output.join("logs/dp-task-runner.log")).unwrap_or_default();
    if !status.success() {
        let tail = |text: &str, n: usize| {
            let lines: Vec<&str> = text.lines().rev().take(n).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        let moto_log = std::fs::read_to_string(work.join("moto.log")).unwrap_or_default();
        bail!(
            "dp-task-runner ({group}) ended {status}; its log ends:\n{}\nmoto's log ends:\n{}",
            tail(&log, 15),
            tail(&moto_log, 40)
        );
    }
    let measured = std::fs::read_to_string(&times)?;
    let fields: Vec<&str> = measured
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let [peak, user, system] = fields[..] else {
        bail!("GNU time wrote {measured:?}");
    };
    Ok(RunnerRun {
        wall,
        peak_kib: peak.parse()?,
        cpu: user.parse::<f64>()? + system.parse::<f64>()?,
        log,
    })
}

/// The `rowsCopied` the runner logged.
fn rows_copied(log: &str) -> Option<u64> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("CopyActivity finished"))?;
    let at = line.find("rowsCopied")?;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

fn jdbc_object(db: &Database) -> Value {
    jdbc_object_as(db, "postgresql")
}

/// The database as a `JdbcDatabase` whose URL names `scheme` (`redshift` makes the runner treat the same server as
/// Redshift, which has no savepoints: an `insertQuery` then runs one statement per request, as every engine did
/// before statements were batched).
fn jdbc_object_as(db: &Database, scheme: &str) -> Value {
    let (connection, user) = db.jdbc();
    let connection = connection.replace("jdbc:postgresql:", &format!("jdbc:{scheme}:"));
    json!({"id": "Db", "name": "Db", "fields": [
        {"key": "type", "stringValue": "JdbcDatabase"},
        {"key": "connectionString", "stringValue": connection},
        {"key": "username", "stringValue": user},
        {"key": "*password", "stringValue": ""}]})
}

fn s3_node(id: &str, uri: &str) -> Value {
    json!({"id": id, "name": id, "fields": [
        {"key": "type", "stringValue": "S3DataNode"},
        {"key": "filePath", "stringValue": uri},
        {"key": "dataFormat", "refValue": "Csv"}]})
}

fn table_node(id: &str, fields: &[(&str, &str)]) -> Value {
    let mut all = vec![
        json!({"key": "type", "stringValue": "SqlDataNode"}),
        json!({"key": "database", "refValue": "Db"}),
    ];
    all.extend(
        fields
            .iter()
            .map(|(k, v)| json!({"key": k, "stringValue": v})),
    );
    json!({"id": id, "name": id, "fields": all})
}

fn mb_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

pub(crate) fn run(size: Option<&str>) -> Result<()> {
    let size = match size {
        Some(s) => parse_size(s)?,
        None => 1 << 30,
    };
    if size < 1024 {
        bail!("a size of at least 1K, please");
    }
    let bin = release_binaries()?;
    let cache = std::env::temp_dir().join("dp-bench-copy");
    let (input, rows) = input_file(&cache, size)?;
    let bytes = std::fs::metadata(&input)?.len();
    let work = std::env::temp_dir().join(format!("dp-bench-copy-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = measure(&bin, &work, &input, rows, bytes);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure(bin: &Path, work: &Path, input: &Path, rows: u64, bytes: u64) -> Result<()> {
    let (_moto, moto) = start_moto(&work.join("moto.log"))?;
    let (_local, url, _) = start_local(bin)?;
    let db = Database::create()?;
    for table in [
        "load_runner",
        "load_psql",
        "query_runner",
        "query_single",
        "query_copy",
    ] {
        psql(&db.url, &format!("create table {table} ({COLUMNS})"))?;
    }
    aws(&moto, &["s3", "mb", &format!("s3://{BUCKET}")])?;
    let upload_in = aws(
        &moto,
        &[
            "s3",
            "cp",
            &input.display().to_string(),
            &format!("s3://{BUCKET}/in/input.csv"),
        ],
    )?;
    eprintln!(
        "input: {bytes} bytes, {rows} rows; aws s3 cp to moto took {:.1} s",
        upload_in.as_secs_f64()
    );

    // Load: S3 CSV → PostgreSQL, then psql \copy from the local file.
    copy_pipeline(
        bin,
        &url,
        work,
        "load",
        vec![
            s3_node("In", &format!("s3://{BUCKET}/in/input.csv")),
            table_node("Out", &[("table", "load_runner")]),
            jdbc_object(&db),
        ],
    )?;
    let load = run_runner(bin, &url, &moto, work, "load")?;
    let (_, psql_load) = psql_timed(
        &db.url,
        &format!(
            "\\copy load_psql from '{}' with (format text, delimiter ',')",
            input.display()
        ),
    )?;
    for table in ["load_runner", "load_psql"] {
        let count = psql(&db.url, &format!("select count(*) from {table}"))?;
        if count != rows.to_string() {
            bail!("{table} holds {count} rows, the file {rows}");
        }
    }
    // The same rows: a sum of row hashes (one pass over each table).
    let digest = |table: &str| {
        psql(
            &db.url,
            &format!("select sum(hashtext(t::text)::bigint) from {table} t"),
        )
    };
    let (ours, theirs) = (digest("load_runner")?, digest("load_psql")?);
    if ours != theirs {
        bail!("the rows the runner loaded differ from psql's (row hash sums {ours} and {theirs})");
    }

    // Unload: PostgreSQL → S3 CSV, then psql \copy TO a file plus aws s3 cp.
    copy_pipeline(
        bin,
        &url,
        work,
        "unload",
        vec![
            table_node("In", &[("table", "load_runner")]),
            s3_node("Out", &format!("s3://{BUCKET}/out/runner.csv")),
            jdbc_object(&db),
        ],
    )?;
    let unload = run_runner(bin, &url, &moto, work, "unload")?;
    if rows_copied(&unload.log) != Some(rows) {
        bail!(
            "the unload logged rowsCopied {:?}, expected {rows}",
            rows_copied(&unload.log)
        );
    }
    let psql_file = work.join("psql-out.csv");
    let (_, psql_unload) = psql_timed(
        &db.url,
        &format!(
            "\\copy load_runner to '{}' with (format text, delimiter ',')",
            psql_file.display()
        ),
    )?;
    let aws_upload = aws(
        &moto,
        &[
            "s3",
            "cp",
            &psql_file.display().to_string(),
            &format!("s3://{BUCKET}/out/psql.csv"),
        ],
    )?;
    let _ = std::fs::remove_file(&psql_file);

    // insertQuery: a smaller file through insertQuery and through table (COPY).
    let small_size = (bytes / 64).clamp(1024, 8 << 20);
    let small = work.join("small.csv");
    let small_rows = head(input, &small, small_size)?;
    aws(
        &moto,
        &[
            "s3",
            "cp",
            &small.display().to_string(),
            &format!("s3://{BUCKET}/in/small.csv"),
        ],
    )?;
    let small_bytes = std::fs::metadata(&small)?.len();
    let mut small_runs = Vec::new();
    let query = |table: &str| {
        format!("insert into {table} (id, name, amount, note, day) values (?, ?, ?, ?, ?)")
    };
    let (batched_query, single_query) = (query("query_runner"), query("query_single"));
    for (group, table, fields, scheme) in [
        (
            "querysingle",
            "query_single",
            vec![
                ("table", "query_single"),
                ("insertQuery", single_query.as_str()),
            ],
            "redshift",
        ),
        (
            "query",
            "query_runner",
            vec![
                ("table", "query_runner"),
                ("insertQuery", batched_query.as_str()),
            ],
            "postgresql",
        ),
        (
            "querycopy",
            "query_copy",
            vec![("table", "query_copy")],
            "postgresql",
        ),
    ] {
        copy_pipeline(
            bin,
            &url,
            work,
            group,
            vec![
                s3_node("In", &format!("s3://{BUCKET}/in/small.csv")),
                table_node("Out", &fields),
                jdbc_object_as(&db, scheme),
            ],
        )?;
        let run = run_runner(bin, &url, &moto, work, group)?;
        let count = psql(&db.url, &format!("select count(*) from {table}"))?;
        if count != small_rows.to_string() {
            bail!("{table} holds {count} rows, the file {small_rows}");
        }
        small_runs.push(run);
    }

    let ratio =
        |runner: Duration, other: Duration| 100.0 * other.as_secs_f64() / runner.as_secs_f64();
    let psql_unload_total = psql_unload + aws_upload;
    println!("| measure | dp-task-runner | psql | runner / psql throughput | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| S3 CSV → PostgreSQL, {:.0} MB, {rows} rows | {:.1} s ({:.0} MB/s) | `\\copy FROM` local file {:.1} s ({:.0} MB/s) | {:.0}% | ≥ 50% |",
        bytes as f64 / 1e6,
        load.wall.as_secs_f64(),
        mb_s(bytes, load.wall),
        psql_load.as_secs_f64(),
        mb_s(bytes, psql_load),
        ratio(load.wall, psql_load)
    );
    println!(
        "| PostgreSQL → S3 CSV | {:.1} s ({:.0} MB/s) | `\\copy TO` file {:.1} s + `aws s3 cp` {:.1} s = {:.1} s ({:.0} MB/s) | {:.0}% | ≥ 50% |",
        unload.wall.as_secs_f64(),
        mb_s(bytes, unload.wall),
        psql_unload.as_secs_f64(),
        aws_upload.as_secs_f64(),
        psql_unload_total.as_secs_f64(),
        mb_s(bytes, psql_unload_total),
        ratio(unload.wall, psql_unload_total)
    );
    println!(
        "| runner peak RSS (ru_maxrss), load / unload | {:.1} MB / {:.1} MB | | | ≤ 64 MB |",
        load.peak_kib as f64 / 1024.0,
        unload.peak_kib as f64 / 1024.0
    );
    println!(
        "| runner CPU (user + system), load / unload | {:.1} s / {:.1} s | | | |",
        load.cpu, unload.cpu
    );
    let per_second = |run: &RunnerRun| small_rows as f64 / run.wall.as_secs_f64();
    let (single, batched, copy) = (&small_runs[0], &small_runs[1], &small_runs[2]);
    println!();
    println!(
        "| S3 CSV → PostgreSQL, {:.1} MB, {small_rows} rows | dp-task-runner | rows/s |",
        small_bytes as f64 / 1e6
    );
    println!("|---|---|---|");
    println!(
        "| `insertQuery`, one statement per request (before; still so on Redshift) | {:.1} s | {:.0} |",
        single.wall.as_secs_f64(),
        per_second(single)
    );
    println!(
        "| `insertQuery`, batched (1,000 statements a request, in a savepoint) | {:.1} s | {:.0} |",
        batched.wall.as_secs_f64(),
        per_second(batched)
    );
    println!(
        "| `table` (COPY FROM STDIN) | {:.1} s | {:.0} |",
        copy.wall.as_secs_f64(),
        per_second(copy)
    );
    println!();
    println!(
        "aws s3 cp of the input to moto (set-up, not compared): {:.1} s ({:.0} MB/s)",
        upload_in.as_secs_f64(),
        mb_s(bytes, upload_in)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_escapes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("1T").is_err());
        let mut out = Vec::new();
        escape(&mut out, "\"a,b\\c\nd\"");
        assert_eq!(out, b"\\\"a\\,b\\\\c\\nd\"");
        let mut n = Vec::new();
        push_number(&mut n, 0);
        push_number(&mut n, 1_234_567);
        assert_eq!(n, b"01234567");
    }
}
