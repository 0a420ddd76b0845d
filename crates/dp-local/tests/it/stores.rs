//! The store conformance suite: the same tests against the SQLite file and a PostgreSQL database (rows round trip
//! through `Store`, a restart of dp-local shows clients the same state, databases that are not dp-local's or of a
//! newer schema are refused untouched), the PostgreSQL store's own refusals (wrong URL, no server, no database),
//! and export/import moving a state SQLite -> PostgreSQL -> SQLite.
//!
//! PostgreSQL is the real server at `DP_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test makes a database of its own and drops it, also when the test fails. A missing server fails the test
//! with a message naming it.

use std::path::{Path, PathBuf};

use dp_local::store::{Row, Table};
use serde_json::{Value, json};

use crate::process::run;
use crate::state::{TempDir, busy_state, durable_server, view};
use crate::support::*;

/// The server the tests use when `DP_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The administrative URL of the test server.
pub fn admin_url() -> String {
    std::env::var("DP_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// Runs `statements` on `url` (on a thread of its own, so it works inside and outside a runtime) and returns the
/// rows of the last result as text.
pub fn try_sql(url: &str, statements: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let url = url.to_string();
    let statements = statements.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| {
                    format!(
                        "the PostgreSQL server for the tests at {url} (DP_TEST_POSTGRES_URL) cannot be used: {e}"
                    )
                })?;
            tokio::spawn(connection);
            let messages = client
                .simple_query(&statements)
                .await
                .map_err(|e| format!("{statements}: {e}"))?;
            let mut rows = Vec::new();
            for message in messages {
                match message {
                    tokio_postgres::SimpleQueryMessage::Row(r) => rows
                        .push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                    tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {}
                    _ => {}
                }
            }
            Ok(rows)
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_string())?
}

/// [`try_sql`], failing the test on an error.
pub fn sql(url: &str, statements: &str) -> Vec<Vec<Option<String>>> {
    try_sql(url, statements).unwrap_or_else(|e| panic!("{e}"))
}

/// A database made for one test, dropped (with its connections) on drop.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn new(label: &str) -> PgDatabase {
        let admin = admin_url();
        let name = format!("dpl_{label}_{}_{}", std::process::id(), fastrand::u32(..));
        sql(&admin, &format!("CREATE DATABASE {name}"));
        PgDatabase {
            url: with_database(&admin, &name),
            name,
        }
    }

    /// The URL as a `--state` location.
    pub fn location(&self) -> PathBuf {
        PathBuf::from(&self.url)
    }

    /// The database's tables, schema-version rows and every dp-local row, to show that nothing was written.
    pub fn snapshot(&self) -> Vec<Vec<Option<String>>> {
        let mut out = sql(
            &self.url,
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        );
        let tables: Vec<String> = out.iter().filter_map(|r| r[0].clone()).collect();
        for table in tables {
            out.extend(sql(
                &self.url,
                &format!("SELECT '{table}', t::text FROM {table} t ORDER BY 2"),
            ));
        }
        out
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = try_sql(
            &admin_url(),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_end = head
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| head[start..].find('/').map(|j| start + j))
        .unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..authority_end])
}

/// Where a conformance test keeps its state.
pub enum Place {
    Sqlite(TempDir),
    Postgres(PgDatabase),
}

impl Place {
    pub fn new(kind: Kind, label: &str) -> Place {
        match kind {
            Kind::Sqlite => Place::Sqlite(TempDir::new(label)),
            Kind::Postgres => Place::Postgres(PgDatabase::new(label)),
        }
    }

    /// The `--state` value.
    pub fn location(&self) -> PathBuf {
        match self {
            Place::Sqlite(dir) => dir.path("state.db"),
            Place::Postgres(db) => db.location(),
        }
    }

    /// What a refused start must leave unchanged.
    fn snapshot(&self) -> Vec<Vec<Option<String>>> {
        match self {
            Place::Sqlite(dir) => {
                let bytes = std::fs::read(dir.path("state.db")).ok();
                vec![vec![bytes.map(|b| format!("{b:?}"))]]
            }
            Place::Postgres(db) => db.snapshot(),
        }
    }

    /// The exit status of a refused start.
    fn refusal_code(&self) -> i32 {
        match self {
            Place::Sqlite(_) => 1,
            Place::Postgres(_) => 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Runs one async conformance test on each store.
macro_rules! conformance {
    ($name:ident, $check:path) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $check(Kind::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $check(Kind::Postgres).await;
            }
        }
    };
}

fn row(table: Table, scope: &str, id: &str, body: Value) -> Row {
    Row {
        table,
        scope: scope.into(),
        id: id.into(),
        body: body.to_string(),
    }
}

/// Rows come back in the order each was first written, with their last body; a batch may write a row twice;
/// the same id in two scopes is two rows; everything survives closing and opening again.
async fn rows_round_trip(kind: Kind) {
    let place = Place::new(kind, "rows");
    let location = place.location();
    tokio::task::spawn_blocking(move || {
        let mut store = dp_local::store::open(&location).expect("a new store opens");
        for table in Table::ALL {
            assert_eq!(store.load(table).unwrap(), vec![], "{table:?} starts empty");
        }
        store
            .commit(&[
                row(Table::Pipelines, "", "p1", json!({"v": 1})),
                row(Table::Pipelines, "", "p2", json!({"v": 1})),
                row(Table::Pipelines, "", "p1", json!({"v": 2})),
                row(Table::Instances, "p1", "i", json!({"in": "p1"})),
            ])
            .unwrap();
        store.commit(&[]).unwrap();
        store
            .commit(&[
                row(Table::Pipelines, "", "p3", json!({"v": 1})),
                row(
                    Table::Pipelines,
                    "",
                    "p1",
                    json!({"v": "three", "quote": "it's \"x\"\n"}),
                ),
                row(Table::Instances, "p2", "i", json!({"in": "p2"})),
                row(Table::Tasks, "", "t", json!(["ünïcode", null])),
            ])
            .unwrap();
        drop(store);
        let mut store = dp_local::store::open(&location).expect("reopens");
        let ids = |rows: Vec<Row>| -> Vec<(String, String, Value)> {
            rows.into_iter()
                .map(|r| (r.scope, r.id, serde_json::from_str(&r.body).unwrap()))
                .collect()
        };
        assert_eq!(
            ids(store.load(Table::Pipelines).unwrap()),
            vec![
                (
                    "".into(),
                    "p1".into(),
                    json!({"v": "three", "quote": "it's \"x\"\n"})
                ),
                ("".into(), "p2".into(), json!({"v": 1})),
                ("".into(), "p3".into(), json!({"v": 1})),
            ]
        );
        assert_eq!(
            ids(store.load(Table::Instances).unwrap()),
            vec![
                ("p1".into(), "i".into(), json!({"in": "p1"})),
                ("p2".into(), "i".into(), json!({"in": "p2"})),
            ]
        );
        assert_eq!(
            ids(store.load(Table::Tasks).unwrap()),
            vec![("".into(), "t".into(), json!(["ünïcode", null]))]
        );
        assert_eq!(store.load(Table::Runners).unwrap(), vec![]);
        let dump = dp_local::store::export(&mut *store).unwrap();
        assert_eq!(dump.tables["pipelines"].len(), 3);
    })
    .await
    .unwrap();
}
conformance!(rows, rows_round_trip);

/// dp-local stopped and started again on the same store shows every client the same state, and the task held
/// before the restart still works.
async fn restart_shows_the_same(kind: Kind) {
    let place = Place::new(kind, "restart");
    let location = place.location();
    let server = durable_server(&location, 1.0, 0.2);
    let client = Client::new(&server.url());
    let (pipelines, held) = busy_state(&client).await;
    let before = view(&client, &pipelines).await;
    let runners = server.runners();
    server.shutdown();

    let server = durable_server(&location, 1.0, 0.2);
    let client = Client::new(&server.url());
    assert_eq!(view(&client, &pipelines).await, before);
    assert_eq!(server.runners(), runners);
    let again = client
        .ok(
            "CreatePipeline",
            json!({"name": "busy-a", "uniqueId": "busy-a"}),
        )
        .await;
    assert_eq!(again["pipelineId"], json!(pipelines[0]), "idempotent");
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": held}))
            .await,
        json!({"canceled": false})
    );
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": held, "taskStatus": "FINISHED"}),
        )
        .await;
    let finished = view(&client, &pipelines).await;
    server.shutdown();
    // The change made after the first restart is kept by the second.
    let server = durable_server(&location, 1.0, 0.2);
    let client = Client::new(&server.url());
    assert_eq!(view(&client, &pipelines).await, finished);
    server.shutdown();
}
conformance!(restart, restart_shows_the_same);

/// Starting dp-local on `place` fails with its refusal code and one line containing `message`, and nothing
/// changed.
fn refused(place: &Place, message: &str) {
    let before = place.snapshot();
    let location = place.location();
    let out = run(&["--state", location.to_str().unwrap(), "--no-auth"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(place.refusal_code()), "{stderr}");
    assert!(out.stdout.is_empty(), "no URL is printed");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.starts_with("dp-local: ") && stderr.contains(message),
        "{stderr:?} should say {message:?}"
    );
    assert_eq!(place.snapshot(), before, "nothing was written");
}

/// A store of a newer schema and one holding another application's tables are refused, untouched.
async fn foreign_and_newer_are_refused(kind: Kind) {
    let newer = Place::new(kind, "newer");
    let location = newer.location();
    tokio::task::spawn_blocking(move || drop(dp_local::store::open(&location).unwrap()))
        .await
        .unwrap();
    match &newer {
        Place::Sqlite(dir) => rusqlite::Connection::open(dir.path("state.db"))
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap(),
        Place::Postgres(db) => {
            sql(&db.url, "INSERT INTO dp_local_schema (version) VALUES (99)");
        }
    }
    let message = match kind {
        Kind::Sqlite => "has schema version 99, newer than",
        Kind::Postgres => "has dp-local schema version 99, newer than",
    };
    tokio::task::spawn_blocking(move || refused(&newer, message))
        .await
        .unwrap();

    let foreign = Place::new(kind, "foreign");
    match &foreign {
        Place::Sqlite(dir) => rusqlite::Connection::open(dir.path("state.db"))
            .unwrap()
            .execute_batch(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (7);",
            )
            .unwrap(),
        Place::Postgres(db) => {
            sql(
                &db.url,
                "CREATE TABLE orders (id integer PRIMARY KEY); INSERT INTO orders VALUES (7);",
            );
        }
    }
    let message = match kind {
        Kind::Sqlite => "is not a dp-local state file",
        Kind::Postgres => "holds tables that are not dp-local's (orders)",
    };
    tokio::task::spawn_blocking(move || refused(&foreign, message))
        .await
        .unwrap();
}
conformance!(refusals, foreign_and_newer_are_refused);

/// A PostgreSQL database with dp-local's tables beside a foreign one is refused too, and so is one with
/// dp-local's table names but no schema table.
#[test]
fn postgres_mixed_databases_are_refused() {
    let db = Place::new(Kind::Postgres, "mixed");
    let Place::Postgres(pg) = &db else {
        unreachable!()
    };
    drop(dp_local::store::open(&pg.location()).unwrap());
    sql(&pg.url, "CREATE TABLE invoices (n integer)");
    refused(&db, "holds tables that are not dp-local's (invoices)");

    let lookalike = Place::new(Kind::Postgres, "lookalike");
    let Place::Postgres(pg) = &lookalike else {
        unreachable!()
    };
    sql(
        &pg.url,
        "CREATE TABLE pipelines (scope text, id text, body text)",
    );
    refused(&lookalike, "but no dp_local_schema table");
}

/// A wrong URL, a refused connection and a missing database: one line each, exit 2, before serving.
#[test]
fn postgres_urls_that_cannot_be_used_are_refused() {
    let admin = admin_url();
    let missing = with_database(&admin, &format!("dpl_missing_{}", fastrand::u32(..)));
    // Port 1 on loopback: nothing listens there.
    let cases = [
        (
            "postgres://dp:s3cret@127.0.0.1:notaport/x".to_string(),
            "not a usable PostgreSQL URL",
        ),
        (
            "postgres://dp@127.0.0.1:5432/".to_string(),
            "names no database",
        ),
        (
            "postgres://dp:s3cret@127.0.0.1:1/x".to_string(),
            "cannot reach PostgreSQL at postgres://dp@127.0.0.1:1/x",
        ),
        (missing.clone(), "the database does not exist"),
        (
            "postgres://dp@127.0.0.1/x?sslmode=verify-full".to_string(),
            "sslmode",
        ),
    ];
    for (url, message) in cases {
        for command in [None, Some("export"), Some("import")] {
            let mut args: Vec<&str> = command.into_iter().collect();
            args.extend(["--state", &url, "--no-auth"]);
            if command.is_some() {
                args.pop();
            }
            let out = run(
                &args,
                Some(br#"{"format": "dp-local-state", "schemaVersion": 1, "tables": {}}"#),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
            assert!(
                stderr.contains(message),
                "{args:?}: {stderr:?} should say {message:?}"
            );
            assert!(
                !stderr.contains("s3cret"),
                "the password is never shown: {stderr}"
            );
            assert!(out.stdout.is_empty());
        }
    }
    let name = missing.rsplit('/').next().unwrap().to_string();
    let exists = sql(
        &admin,
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    );
    assert_eq!(
        exists,
        vec![vec![Some("0".to_string())]],
        "no database was created"
    );
}

fn dp_local(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A state moves from an SQLite file to PostgreSQL and back with export/import, unchanged at each step, and a
/// dp-local on each copy shows clients the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_moves_a_state_sqlite_to_postgres_and_back() {
    let dir = TempDir::new("move");
    let first = dir.path("first.db");
    let server = durable_server(&first, 1.0, 0.2);
    let client = Client::new(&server.url());
    let (pipelines, held) = busy_state(&client).await;
    let before = view(&client, &pipelines).await;
    server.shutdown();

    let db = PgDatabase::new("move");
    let url = db.url.clone();
    let back = dir.path("back.db");
    let (from_sqlite, from_postgres, from_back) = {
        let (first, url, back) = (first.clone(), url.clone(), back.clone());
        tokio::task::spawn_blocking(move || {
            let first = first.to_str().unwrap();
            let back = back.to_str().unwrap();
            let from_sqlite = dp_local(&["export", "--state", first], None);
            dp_local(&["import", "--state", &url], Some(&from_sqlite));
            // A second import into a database that holds a state is refused, exit 2, and changes nothing.
            let again = run(&["import", "--state", &url], Some(&from_sqlite));
            let stderr = String::from_utf8_lossy(&again.stderr);
            assert_eq!(again.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains("already holds a dp-local state"),
                "{stderr}"
            );
            let from_postgres = dp_local(&["export", "--state", &url], None);
            dp_local(&["import", "--state", back], Some(&from_postgres));
            let from_back = dp_local(&["export", "--state", back], None);
            (from_sqlite, from_postgres, from_back)
        })
        .await
        .unwrap()
    };
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
    assert_eq!(
        parse(&from_postgres),
        parse(&from_sqlite),
        "SQLite -> PostgreSQL"
    );
    assert_eq!(
        parse(&from_back),
        parse(&from_sqlite),
        "PostgreSQL -> SQLite"
    );

    for location in [Path::new(&url).to_path_buf(), back] {
        let server = durable_server(&location, 1.0, 0.2);
        let client = Client::new(&server.url());
        assert_eq!(view(&client, &pipelines).await, before, "{location:?}");
        assert_eq!(
            client
                .ok("ReportTaskProgress", json!({"taskId": held}))
                .await,
            json!({"canceled": false}),
            "{location:?}"
        );
        server.shutdown();
    }
}

/// An import into PostgreSQL that does not load writes nothing (its rows are checked before the transaction).
#[test]
fn a_bad_import_leaves_the_database_empty() {
    let db = PgDatabase::new("badimport");
    let dump = json!({"format": "dp-local-state", "schemaVersion": 1, "tables": {
        "pipelines": [["", "df-1", {"not": "a pipeline"}]]
    }});
    let out = run(
        &["import", "--state", &db.url],
        Some(dump.to_string().as_bytes()),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = sql(&db.url, "SELECT count(*) FROM pipelines");
    assert_eq!(rows, vec![vec![Some("0".to_string())]]);
}

/// `sslmode=require` connects with TLS (the server's `pg_stat_ssl` says so) and `disable` without; both serve.
/// Every connection of dp-local's is checked (a node serving with others has a turn and a listening connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmode_require_encrypts_the_connection() {
    let db = PgDatabase::new("tls");
    let query = format!(
        "SELECT DISTINCT s.ssl::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = '{}' AND a.application_name = 'dp-local'",
        db.name
    );
    for (mode, encrypted) in [("require", "true"), ("disable", "false")] {
        let separator = if db.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}sslmode={mode}", db.url);
        let server = durable_server(Path::new(&url), 1.0, 0.2);
        let client = Client::new(&server.url());
        client
            .ok("CreatePipeline", json!({"name": mode, "uniqueId": mode}))
            .await;
        let seen = tokio::task::spawn_blocking({
            let query = query.clone();
            move || sql(&admin_url(), &query)
        })
        .await
        .unwrap();
        assert_eq!(
            seen,
            vec![vec![Some(encrypted.to_string())]],
            "sslmode={mode}: dp-local's connections"
        );
        server.shutdown();
    }
}
