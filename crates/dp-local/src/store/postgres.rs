//! The PostgreSQL store: the same rows as the SQLite file, kept in a PostgreSQL database, for operators who want
//! the database's own backups, replicas and monitoring.
//!
//! It exists so that `--state postgres://…` can replace the SQLite file without the engine noticing: it implements
//! [`Store`] and nothing more. It must not interpret row bodies, and it must not write anything to a database it
//! refuses. Opening checks under a transaction-level advisory lock (so two dp-locals starting together do not both
//! migrate): a database holding tables that are not dp-local's, or whose schema (the `dp_local_schema` table) is
//! newer than this dp-local's, is refused with one line, and the transaction is rolled back. Otherwise the numbered
//! migrations in `migrations/postgres/` that are missing are applied in that same transaction.
//!
//! The connection lives on a thread of its own with a small tokio runtime, so the store can be used from any
//! thread, inside or outside another runtime (the writer thread, `Engine::open` in an async test, the binary's
//! export). Every [`Store::commit`] is one transaction; it returns only after PostgreSQL reported the commit, with
//! `synchronous_commit` at least `on` for the session. A lost connection fails the commit in hand (the writer
//! keeps the rows and retries) and is opened again for the next one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::str::FromStr;
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use super::{Row, Store, Table};
use crate::error::{Error, ErrorKind};

mod nodes;

pub use nodes::SharedPostgres;

/// The migrations, in order: migration N takes the database from schema version N - 1 to N.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_initial.sql"),
    include_str!("migrations/postgres/0002_revisions.sql"),
];

/// The schema version this dp-local writes to PostgreSQL.
pub const POSTGRES_VERSION: u32 = MIGRATIONS.len() as u32;

/// The table that records which migrations were applied.
pub const SCHEMA_TABLE: &str = "dp_local_schema";

/// The one-row table that holds the database's revision (schema version 2 on): every commit raises it and stamps
/// the rows it writes with it.
pub const REVISION_TABLE: &str = "dp_local_revision";

/// The advisory lock taken (for the length of a transaction) while the schema is checked and migrated ("dpLc").
const MIGRATION_LOCK: i64 = 0x6470_4c63;

/// The session-level advisory lock held by the dp-local that serves the database ("dpLd"): one node per
/// database. Another node waits for it as a standby; a tool (export, import) is refused while it is held.
const SERVE_LOCK: i64 = 0x6470_4c64;

/// How often a standby asks for [`SERVE_LOCK`].
const STANDBY_RETRY: Duration = Duration::from_millis(250);

/// What to do when another dp-local holds [`SERVE_LOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenServed {
    /// Refuse at once (export, import, direct use).
    Refuse,
    /// Wait as a standby until the lock is free (a serving node).
    Wait,
}

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one load or commit may take before it is reported as failed and the connection is opened again.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a `--state` value names a PostgreSQL database rather than a file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

fn db_error(message: String) -> Error {
    Error::new(ErrorKind::Database, message)
}

/// A connection target: the parsed settings and the URL as shown in messages (never with the password).
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The URL with any password replaced, for messages about a URL that did not parse.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

fn parse(url: &str) -> Result<Target, Error> {
    let redacted = redact(url);
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        db_error(format!(
            "{redacted} is not a usable PostgreSQL URL (postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]): {e}"
        ))
    })?;
    let user = config.get_user().map(str::to_string).ok_or_else(|| {
        db_error(format!(
            "{redacted} names no user (postgres://USER[:PASS]@HOST[:PORT]/DB)"
        ))
    })?;
    let dbname = config
        .get_dbname()
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            db_error(format!(
                "{redacted} names no database (postgres://USER[:PASS]@HOST[:PORT]/DB)"
            ))
        })?;
    let host = match config.get_hosts() {
        [] => "localhost".to_string(),
        [Host::Tcp(h), ..] => h.clone(),
        [Host::Unix(p), ..] => p.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("dp-local");
    Ok(Target {
        config,
        shown: format!("postgres://{user}@{host}:{port}/{dbname}"),
    })
}

/// One line for a failure talking to the database at `shown`.
fn describe(shown: &str, e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let message = db.message().replace('\n', " ");
        return if *code == SqlState::INVALID_CATALOG_NAME {
            format!("{shown}: the database does not exist ({message}); create it first (createdb)")
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            format!("{shown}: PostgreSQL refused the login: {message}")
        } else {
            format!("{shown}: PostgreSQL answered: {message} ({})", code.code())
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    format!(
        "cannot reach PostgreSQL at {shown}: {}",
        text.replace('\n', " ")
    )
}

/// What the connection thread is asked to do.
enum Job {
    Load(Table, std_mpsc::Sender<Result<Vec<Row>, Error>>),
    Commit(Vec<Row>, std_mpsc::Sender<Result<(), Error>>),
    Ping(std_mpsc::Sender<Result<(), String>>),
    /// Release the serving lock and close the connection (the store is dropped).
    Close,
}

/// A dp-local state in a PostgreSQL database.
pub struct PostgresStore {
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
    shown: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A handle that asks the store's connection for a cheap query (`SELECT 1`), for `GET /readyz`.
#[derive(Clone, Debug)]
pub struct Probe {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Load(..) => "Load",
            Job::Commit(..) => "Commit",
            Job::Ping(..) => "Ping",
            Job::Close => "Close",
        })
    }
}

impl Probe {
    /// Waits up to `limit` for the database to answer `SELECT 1`.
    pub fn check(&self, limit: Duration) -> Result<(), String> {
        let (tx, rx) = std_mpsc::channel();
        self.jobs
            .send(Job::Ping(tx))
            .map_err(|_| "the database connection has stopped".to_string())?;
        match rx.recv_timeout(limit) {
            Ok(answer) => answer,
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the database did not answer within {} ms",
                limit.as_millis()
            )),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                Err("the database connection has stopped".into())
            }
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url`, refuses it if it is not dp-local's or of a newer schema (writing
    /// nothing), and otherwise migrates it to [`POSTGRES_VERSION`].
    pub fn open(url: &str) -> Result<PostgresStore, Error> {
        Self::open_with(url, WhenServed::Refuse)
    }

    /// [`PostgresStore::open`], then takes the database's serving lock, waiting for it as a standby (with one line
    /// on stderr) while another dp-local holds it, when `when_served` says so.
    pub fn open_with(url: &str, when_served: WhenServed) -> Result<PostgresStore, Error> {
        let target = parse(url)?;
        let shown = target.shown.clone();
        let (jobs, receiver) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (opened_tx, opened_rx) = std_mpsc::channel::<Result<(), Error>>();
        let thread = std::thread::Builder::new()
            .name("dp-local-postgres".into())
            .spawn(move || connection_thread(target, when_served, receiver, opened_tx))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Runtime,
                    format!("cannot start the database thread: {e}"),
                )
            })?;
        let opened = opened_rx.recv().unwrap_or_else(|_| {
            Err(db_error(format!(
                "{shown}: the database thread stopped while opening"
            )))
        });
        let store = PostgresStore {
            jobs: Some(jobs),
            thread: Some(thread),
            shown,
        };
        opened.map(|()| store)
    }

    /// The database as shown in messages (`postgres://USER@HOST:PORT/DB`, never the password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A handle for readiness checks that stays usable while the store itself is owned by the writer.
    pub fn probe(&self) -> Option<Probe> {
        self.jobs.clone().map(|jobs| Probe { jobs })
    }

    fn ask<T>(&self, job: impl FnOnce(std_mpsc::Sender<T>) -> Job) -> Option<T> {
        let (tx, rx) = std_mpsc::channel();
        self.jobs.as_ref()?.send(job(tx)).ok()?;
        rx.recv().ok()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The lock is released before this returns, so a dp-local started right after this one (or a standby)
        // gets the database at once. Probes still held then answer that the connection has stopped.
        if let Some(jobs) = self.jobs.take() {
            let _ = jobs.send(Job::Close);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store for PostgresStore {
    fn load(&mut self, table: Table) -> Result<Vec<Row>, Error> {
        let shown = self.shown.clone();
        self.ask(|tx| Job::Load(table, tx)).unwrap_or_else(|| {
            Err(db_error(format!(
                "{shown}: the database connection has stopped"
            )))
        })
    }

    fn commit(&mut self, rows: &[Row]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let shown = self.shown.clone();
        self.ask(|tx| Job::Commit(rows.to_vec(), tx))
            .unwrap_or_else(|| {
                Err(db_error(format!(
                    "{shown}: the database connection has stopped"
                )))
            })
    }

    fn probe(&self) -> Option<super::Probe> {
        let probe = PostgresStore::probe(self)?;
        Some(std::sync::Arc::new(move |limit| probe.check(limit)))
    }
}

/// The current-thread runtime a database connection's thread runs; `None` after telling `opened` why there is
/// none.
fn database_runtime(
    opened: &std_mpsc::Sender<Result<(), Error>>,
) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            let _ = opened.send(Err(Error::new(
                ErrorKind::Runtime,
                format!("cannot start the database runtime: {e}"),
            )));
            None
        }
    }
}

fn connection_thread(
    target: Target,
    when_served: WhenServed,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    opened: std_mpsc::Sender<Result<(), Error>>,
) {
    let Some(runtime) = database_runtime(&opened) else {
        return;
    };
    runtime.block_on(async move {
        let mut client = match connect(&target).await {
            Ok(c) => c,
            Err(e) => {
                let _ = opened.send(Err(db_error(e)));
                return;
            }
        };
        if let Err(e) = prepare_schema(&mut client, &target.shown).await {
            let _ = opened.send(Err(e));
            return;
        }
        let mut told = false;
        loop {
            match serve_lock(&client).await {
                Ok(true) => break,
                Ok(false) if when_served == WhenServed::Wait => {
                    if !told {
                        eprintln!(
                            "dp-local: another dp-local serves {}; standing by to take over when it stops",
                            target.shown
                        );
                        told = true;
                    }
                    tokio::time::sleep(STANDBY_RETRY).await;
                }
                Ok(false) => {
                    let _ = opened.send(Err(db_error(format!(
                        "{} is served by another dp-local (one node per database); stop it first",
                        target.shown
                    ))));
                    return;
                }
                Err(e) => {
                    let _ = opened.send(Err(db_error(describe(&target.shown, &e))));
                    return;
                }
            }
        }
        if told {
            eprintln!("dp-local: took over {}", target.shown);
        }
        let _ = opened.send(Ok(()));
        let mut client = Some(client);
        // The write statements prepared in `client`'s session, by the set of tables they write.
        let mut prepared: HashMap<u8, Statement> = HashMap::new();
        // Set when a reconnection found the serving lock taken: another node took over, and this one must never
        // write again.
        let mut superseded = false;
        while let Some(job) = jobs.recv().await {
            if !superseded && client.as_ref().is_none_or(Client::is_closed) {
                prepared.clear();
                client = match connect(&target).await {
                    Ok(c) => match serve_lock(&c).await {
                        Ok(true) => Some(c),
                        Ok(false) => {
                            superseded = true;
                            eprintln!(
                                "dp-local: lost the connection to {} and another dp-local took over; this one no longer writes it",
                                target.shown
                            );
                            None
                        }
                        Err(_) => None,
                    },
                    Err(_) => None,
                };
            }
            if superseded {
                let reason = format!(
                    "{}: another dp-local took over this database after this one lost its connection; restart this one",
                    target.shown
                );
                match job {
                    Job::Load(_, answer) => drop(answer.send(Err(db_error(reason)))),
                    Job::Commit(_, answer) => drop(answer.send(Err(db_error(reason)))),
                    Job::Ping(answer) => drop(answer.send(Err(reason))),
                    Job::Close => break,
                }
                continue;
            }
            match job {
                Job::Close => {
                    if let Some(c) = client.take() {
                        let _ = c.batch_execute("SELECT pg_advisory_unlock_all()").await;
                    }
                    break;
                }
                Job::Load(table, answer) => {
                    let result = match client.as_mut() {
                        None => Err(db_error(format!(
                            "{}: cannot reconnect to the database",
                            target.shown
                        ))),
                        Some(c) => {
                            match tokio::time::timeout(JOB_TIMEOUT, load(c, table)).await {
                                Ok(Ok(rows)) => Ok(rows),
                                Ok(Err(e)) => Err(db_error(format!(
                                    "cannot read table {} from {}",
                                    table.name(),
                                    describe(&target.shown, &e)
                                        .trim_start_matches("cannot reach PostgreSQL at ")
                                ))),
                                Err(_) => {
                                    client = None;
                                    Err(db_error(format!(
                                        "{}: reading table {} took longer than {} s",
                                        target.shown,
                                        table.name(),
                                        JOB_TIMEOUT.as_secs()
                                    )))
                                }
                            }
                        }
                    };
                    let _ = answer.send(result);
                }
                Job::Commit(rows, answer) => {
                    let result = match client.as_mut() {
                        None => Err(db_error(format!(
                            "cannot save the state in {}: the database is unreachable",
                            target.shown
                        ))),
                        Some(c) => match tokio::time::timeout(JOB_TIMEOUT, commit(c, &mut prepared, &rows))
                            .await
                        {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(e)) => Err(db_error(format!(
                                "cannot save the state in {}",
                                describe(&target.shown, &e)
                                    .trim_start_matches("cannot reach PostgreSQL at ")
                            ))),
                            Err(_) => {
                                // The outcome is unknown; the writer retries the same rows, and writing a row
                                // twice leaves it as written once.
                                client = None;
                                Err(db_error(format!(
                                    "cannot save the state in {}: the commit took longer than {} s",
                                    target.shown,
                                    JOB_TIMEOUT.as_secs()
                                )))
                            }
                        },
                    };
                    let _ = answer.send(result);
                }
                Job::Ping(answer) => {
                    let result = match client.as_ref() {
                        None => Err(format!("{}: the database is unreachable", target.shown)),
                        Some(c) => c
                            .simple_query("SELECT 1")
                            .await
                            .map(|_| ())
                            .map_err(|e| describe(&target.shown, &e)),
                    };
                    let _ = answer.send(result);
                }
            }
        }
    });
}

/// Tries to take the serving lock for this session (a session that holds it already gets it again).
async fn serve_lock(client: &Client) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&SERVE_LOCK])
        .await?
        .get(0))
}

async fn connect(target: &Target) -> Result<Client, String> {
    let client = if target.config.get_ssl_mode() == SslMode::Disable {
        let (client, connection) = target
            .config
            .connect(NoTls)
            .await
            .map_err(|e| describe(&target.shown, &e))?;
        // Ends when the connection closes; the next job sees `is_closed` and connects again.
        tokio::spawn(connection);
        client
    } else {
        let (client, connection) = target
            .config
            .connect(encrypt_only())
            .await
            .map_err(|e| describe(&target.shown, &e))?;
        tokio::spawn(connection);
        client
    };
    // "Nothing answered is lost" needs the commit flushed on the server; `on` or stronger is kept, `off` is not.
    let mode = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(|e| describe(&target.shown, &e))?;
    let mode: String = mode.get(0);
    if mode == "off" {
        client
            .batch_execute("SET synchronous_commit TO on")
            .await
            .map_err(|e| describe(&target.shown, &e))?;
    }
    Ok(client)
}

/// The TLS connector for `sslmode=prefer` and `require`, with libpq's meaning of those modes: the connection is
/// encrypted (with `prefer`, when the server offers TLS) and the handshake's signatures are checked, but the
/// certificate is not checked against a root (libpq's `verify-ca`/`verify-full` are not supported yet, and
/// tokio-postgres does not parse them).
fn encrypt_only() -> tokio_postgres_rustls::MakeRustlsConnect {
    tokio_postgres_rustls::MakeRustlsConnect::new(dp_tls::encrypt_only())
}

/// Checks the database under the migration lock and applies the missing migrations, all in one transaction: a
/// refusal rolls back and leaves the database as it was.
async fn prepare_schema(client: &mut Client, shown: &str) -> Result<(), Error> {
    let fail = |e: tokio_postgres::Error| db_error(describe(shown, &e));
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    let names: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
            &[],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ours = |n: &str| {
        n == SCHEMA_TABLE || n == REVISION_TABLE || Table::ALL.iter().any(|t| t.name() == n)
    };
    let foreign: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !ours(n))
        .collect();
    if !foreign.is_empty() {
        let mut listed = foreign
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if foreign.len() > 5 {
            listed.push_str(&format!(" and {} more", foreign.len() - 5));
        }
        return Err(db_error(format!(
            "{shown} is not a dp-local database: it holds tables that are not dp-local's ({listed}); give dp-local a database of its own"
        )));
    }
    let has_schema_table = names.iter().any(|n| n == SCHEMA_TABLE);
    if !names.is_empty() && !has_schema_table {
        return Err(db_error(format!(
            "{shown} is not a dp-local database: it holds tables named like dp-local's ({}) but no {SCHEMA_TABLE} table",
            names.join(", ")
        )));
    }
    let version: i64 = if has_schema_table {
        tx.query_one(
            &format!("SELECT coalesce(max(version), 0)::bigint FROM {SCHEMA_TABLE}"),
            &[],
        )
        .await
        .map_err(fail)?
        .get(0)
    } else {
        0
    };
    if version > i64::from(POSTGRES_VERSION) {
        return Err(db_error(format!(
            "{shown} has dp-local schema version {version}, newer than this dp-local's {POSTGRES_VERSION}; use a newer dp-local (or its export and this one's import)"
        )));
    }
    if !has_schema_table {
        tx.batch_execute(&format!(
            "CREATE TABLE {SCHEMA_TABLE} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(fail)?;
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(fail)?;
        tx.execute(
            &format!("INSERT INTO {SCHEMA_TABLE} (version) VALUES ($1)"),
            &[&(index as i32 + 1)],
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}

async fn load(client: &mut Client, table: Table) -> Result<Vec<Row>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!("SELECT scope, id, body FROM {} ORDER BY seq", table.name()),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Row {
            table,
            scope: r.get(0),
            id: r.get(1),
            body: r.get(2),
        })
        .collect())
}

/// The rows of one table in a commit, each key once (its last body), in the order keys first appear.
#[derive(Default)]
struct Columns {
    scopes: Vec<String>,
    ids: Vec<String>,
    bodies: Vec<String>,
    seen: HashMap<(String, String), usize>,
}

/// Groups `rows` by table, each key once (its last body), in the order keys first appear.
fn columns_of(rows: &[Row]) -> Vec<(Table, Columns)> {
    let mut tables: Vec<(Table, Columns)> = Vec::new();
    for row in rows {
        let columns = match tables.iter().position(|(t, _)| *t == row.table) {
            Some(i) => &mut tables[i].1,
            None => {
                tables.push((row.table, Columns::default()));
                &mut tables.last_mut().expect("just pushed").1
            }
        };
        let key = (row.scope.clone(), row.id.clone());
        match columns.seen.get(&key) {
            Some(&i) => columns.bodies[i] = row.body.clone(),
            None => {
                columns.seen.insert(key, columns.ids.len());
                columns.scopes.push(row.scope.clone());
                columns.ids.push(row.id.clone());
                columns.bodies.push(row.body.clone());
            }
        }
    }
    tables
}

/// The write of a commit that touched the tables `touched` (bit N for `Table::ALL[N]`, see [`write_params`]): the
/// revision raised, each of those tables' rows (three arrays each, `$1`, `$2`, `$3` for the first, and so on)
/// stamped with it, and, with `notify`, the notification to other nodes queued (payload `REV` and the last
/// parameter); answers the new revision. One statement per set of tables, so that the server does not run an
/// empty insert for every table a commit did not touch.
fn write_sql(touched: u8, notify: bool) -> String {
    let mut sql = format!("WITH r AS (UPDATE {REVISION_TABLE} SET rev = rev + 1 RETURNING rev)");
    let mut first = 1;
    for (index, table) in Table::ALL.iter().enumerate() {
        if touched & (1 << index) == 0 {
            continue;
        }
        sql.push_str(&format!(
            ", t{index} AS (INSERT INTO {name} (scope, id, body, rev) SELECT s, i, b, (SELECT rev FROM r) \
             FROM unnest(${first}::text[], ${}::text[], ${}::text[]) WITH ORDINALITY AS x(s, i, b, n) ORDER BY n \
             ON CONFLICT (scope, id) DO UPDATE SET body = excluded.body, rev = excluded.rev)",
            first + 1,
            first + 2,
            name = table.name()
        ));
        first += 3;
    }
    if notify {
        sql.push_str(&format!(
            " SELECT rev, pg_notify('{}', rev::text || ' ' || ${first}::text) FROM r",
            nodes::CHANNEL
        ));
    } else {
        sql.push_str(" SELECT rev FROM r");
    }
    sql
}

/// The parameters of [`write_sql`] for `rows` (the last row written of each key wins): the set of tables they
/// touch, and the scopes, ids and bodies of each of those tables, in `Table::ALL` order.
fn write_params(rows: &[Row]) -> (u8, Vec<Vec<String>>) {
    let index = |table: Table| {
        Table::ALL
            .iter()
            .position(|t| *t == table)
            .expect("a table")
    };
    let mut tables = columns_of(rows);
    tables.sort_by_key(|(table, _)| index(*table));
    let mut touched = 0u8;
    let mut arrays: Vec<Vec<String>> = Vec::with_capacity(3 * tables.len());
    // The columns are moved, not copied: this runs for every commit.
    for (table, columns) in tables {
        touched |= 1 << index(table);
        arrays.extend([columns.scopes, columns.ids, columns.bodies]);
    }
    (touched, arrays)
}

/// Runs `first` and `second` on one connection in one round trip: `first` is polled (and so sent) before
/// `second`, and both are awaited.
async fn in_order<A: Future, B: Future>(first: A, second: B) -> (A::Output, B::Output) {
    let mut first = pin!(first);
    let mut second = pin!(second);
    let mut a = None;
    let mut b = None;
    std::future::poll_fn(|cx| {
        if a.is_none()
            && let Poll::Ready(v) = first.as_mut().poll(cx)
        {
            a = Some(v);
        }
        if b.is_none()
            && let Poll::Ready(v) = second.as_mut().poll(cx)
        {
            b = Some(v);
        }
        if a.is_some() && b.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (a.expect("ready"), b.expect("ready"))
}

/// Writes `rows` in one transaction, in one round trip: `BEGIN`, the write statement ([`write_sql`], prepared on
/// first use for its set of tables and kept in `prepared`, which belongs to `client`'s session) and `COMMIT`. A
/// write that fails aborts the transaction, and the `COMMIT` sent behind it then rolls it back.
async fn commit(
    client: &Client,
    prepared: &mut HashMap<u8, Statement>,
    rows: &[Row],
) -> Result<(), tokio_postgres::Error> {
    let (touched, arrays) = write_params(rows);
    let statement = match prepared.get(&touched) {
        Some(statement) => statement.clone(),
        None => {
            let statement = client.prepare(&write_sql(touched, false)).await?;
            prepared.insert(touched, statement.clone());
            statement
        }
    };
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        arrays.iter().map(|a| a as _).collect();
    let (begun, (written, committed)) = in_order(
        client.batch_execute("BEGIN"),
        in_order(
            client.query_one(&statement, &params),
            client.batch_execute("COMMIT"),
        ),
    )
    .await;
    begun?;
    written?;
    committed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_without_notification_takes_only_the_arrays() {
        // Attempts and tasks (the fifth and sixth tables), as one store commit of a task's end writes them.
        let sql = write_sql(0b11_0000, false);
        assert!(
            sql.contains("INSERT INTO attempts") && sql.contains("INSERT INTO tasks"),
            "{sql}"
        );
        assert!(sql.contains("$6::text[]") && !sql.contains("$7"), "{sql}");
        assert!(!sql.contains("pg_notify"), "{sql}");
        let row = |table, id: &str, body: &str| Row {
            table,
            scope: "p".into(),
            id: id.into(),
            body: body.into(),
        };
        let (touched, arrays) = write_params(&[
            row(Table::Tasks, "t", "1"),
            row(Table::Attempts, "a", "1"),
            row(Table::Tasks, "t", "2"),
        ]);
        assert_eq!(touched, 0b11_0000);
        // In table order (attempts before tasks), the last body of a key written.
        assert_eq!(
            arrays,
            [
                vec!["p".to_string()],
                vec!["a".to_string()],
                vec!["1".to_string()],
                vec!["p".to_string()],
                vec!["t".to_string()],
                vec!["2".to_string()],
            ]
        );
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgres://dp:secret@db.example:5433/state?sslmode=disable"),
            "postgres://dp@db.example:5433/state?sslmode=disable"
        );
        let target = parse("postgresql://dp:secret@db.example/state").unwrap();
        assert_eq!(target.shown, "postgres://dp@db.example:5432/state");
        let e = parse("postgres://dp:secret@db.example:notaport/state").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert!(
            e.message.contains("not a usable PostgreSQL URL"),
            "{}",
            e.message
        );
        let e = parse("postgres://dp:secret@db.example:5432/").unwrap_err();
        assert!(e.message.contains("names no database"), "{}", e.message);
        let e = parse("postgres://dp@db.example/x?sslmode=verify-full").unwrap_err();
        assert!(e.message.contains("sslmode"), "{}", e.message);
        assert!(parse("postgres://dp@db.example/x?sslmode=require").is_ok());
        assert!(is_url("postgres://a@b/c") && is_url("postgresql://a@b/c"));
        assert!(!is_url("/tmp/state.db"));
    }
}
