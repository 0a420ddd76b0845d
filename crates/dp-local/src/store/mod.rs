//! Durable state: the narrow interface between the service's rules and a database, and the one writer.
//!
//! The engine keeps its working state in memory and describes each change as [`Row`]s: a table, a scope (the
//! pipeline, or `""`), an id and a JSON body. A [`Store`] only loads and saves such rows; it knows nothing of
//! pipelines or leases, so another database can replace SQLite without touching the rules. [`Writer`] owns the
//! store on a thread of its own, applies batches in the order the engine made them, commits whatever queued
//! meanwhile as one transaction (group commit), and publishes the sequence number it has made durable; a
//! request is answered only after its batch is committed. This module does not interpret row bodies.
//!
//! A commit that fails (a full disk, a lost database connection) is rolled back: the writer gives up its rows and
//! every batch made on top of them (their requests answer an error, so nothing that was answered is lost), and
//! asks the engine to reload; the engine then takes the last committed state back from the store
//! ([`Writer::reload`]) and serves it, reads included. Later changes are committed as usual once the store takes
//! them again.

mod postgres;
pub mod shared;
mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::Error;

pub use postgres::{
    POSTGRES_VERSION, PostgresStore, REVISION_TABLE, SCHEMA_TABLE, SharedPostgres, WhenServed,
    is_url,
};
pub use sqlite::{CURRENT_VERSION, SqliteStore};

/// A readiness check of a store that works while the writer owns the store: waits up to the given time for the
/// database to answer a cheap query.
pub type Probe = std::sync::Arc<dyn Fn(Duration) -> Result<(), String> + Send + Sync>;

/// The kinds of rows, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// Settings of the state file (the time scale).
    Meta,
    /// One row per pipeline, id = pipeline id.
    Pipelines,
    /// Definitions of a pipeline: `latest`, and `active/N` for the N-th activation.
    Definitions,
    /// Instances, scope = pipeline id.
    Instances,
    /// Attempts, scope = pipeline id.
    Attempts,
    /// Task ids ever handed out, scope `""`, body `{pipeline, attempt}`.
    Tasks,
    /// Task runners that sent heartbeats.
    Runners,
}

impl Table {
    /// Every table, in the order a state is loaded.
    pub const ALL: [Table; 7] = [
        Table::Meta,
        Table::Pipelines,
        Table::Definitions,
        Table::Instances,
        Table::Attempts,
        Table::Tasks,
        Table::Runners,
    ];

    /// The table's name in the database and in an export.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Pipelines => "pipelines",
            Table::Definitions => "definitions",
            Table::Instances => "instances",
            Table::Attempts => "attempts",
            Table::Tasks => "tasks",
            Table::Runners => "runners",
        }
    }
}

/// One stored row. Writing a row with an existing (table, scope, id) replaces its body and keeps its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Which table.
    pub table: Table,
    /// The pipeline the row belongs to, or `""`.
    pub scope: String,
    /// The row's id within its scope.
    pub id: String,
    /// The row's JSON.
    pub body: String,
}

/// Where a state is kept. Implementations hold no rules: they load rows in the order they were first written,
/// and write batches atomically and durably.
pub trait Store: Send {
    /// Every row of `table`, in the order each was first written.
    fn load(&mut self, table: Table) -> Result<Vec<Row>, Error>;
    /// Writes all `rows` in one transaction and makes it durable before returning.
    fn commit(&mut self, rows: &[Row]) -> Result<(), Error>;
    /// A check of the database that can run beside the writer, if the store has one (a server connection does;
    /// an SQLite file held exclusively by the writer does not, and its health is the writer's).
    fn probe(&self) -> Option<Probe> {
        None
    }
}

/// A batch of rows from one engine operation, numbered in the order the engine applied the operations.
#[derive(Debug)]
pub struct Batch {
    /// Sequence number, increasing by one per batch.
    pub seq: u64,
    /// The rows that changed.
    pub rows: Vec<Row>,
}

/// Every table's rows, as the engine loads them.
pub type Tables = HashMap<Table, Vec<Row>>;

/// What the writer has done with the batches it was sent.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Every batch up to this sequence number is settled: committed, or given up ([`Committed::lost`]).
    pub seq: u64,
    /// The most recent ranges of batches given up because a commit failed (first, last), oldest first.
    pub lost: Vec<(u64, u64)>,
    /// Why the last commit failed, while the store has not taken a commit since.
    pub failed: Option<String>,
    /// Set from a failed commit until the engine has reloaded the committed state.
    pub reload: bool,
}

/// How many lost ranges [`Committed::lost`] keeps; a request only asks about batches of its own time, so older
/// ranges no longer matter.
const LOST_KEPT: usize = 64;

enum Message {
    Batch(Batch),
    Reload {
        reply: mpsc::Sender<Result<Tables, Error>>,
    },
}

/// The single writer: a thread that owns the store and commits batches in order.
#[derive(Debug)]
pub struct Writer {
    sender: Option<mpsc::Sender<Message>>,
    committed: watch::Receiver<Committed>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Batch(b) => write!(f, "Batch({})", b.seq),
            Message::Reload { .. } => f.write_str("Reload"),
        }
    }
}

fn load_all(store: &mut dyn Store) -> Result<Tables, Error> {
    let mut tables = HashMap::new();
    for table in Table::ALL {
        tables.insert(table, store.load(table)?);
    }
    Ok(tables)
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn start(mut store: Box<dyn Store>) -> Result<Writer, Error> {
        let (sender, receiver) = mpsc::channel::<Message>();
        let (publish, committed) = watch::channel(Committed::default());
        let thread = std::thread::Builder::new()
            .name("dp-local-writer".into())
            .spawn(move || {
                let mut rows = Vec::new();
                // Set by a failed commit: later batches were made on top of the rows given up, so they are given
                // up too, until the engine reloads.
                let mut poisoned = false;
                let mut next: Option<Message> = None;
                loop {
                    let message = match next.take() {
                        Some(m) => m,
                        None => match receiver.recv() {
                            Ok(m) => m,
                            Err(_) => return,
                        },
                    };
                    match message {
                        Message::Reload { reply } => {
                            // Every batch sent before the reload was asked for has been received (one channel,
                            // in order) and settled.
                            let loaded = load_all(store.as_mut());
                            if loaded.is_ok() && poisoned {
                                poisoned = false;
                                publish.send_modify(|c| c.reload = false);
                            }
                            let _ = reply.send(loaded);
                        }
                        Message::Batch(batch) if poisoned => give_up(&publish, batch.seq, batch.seq, None),
                        Message::Batch(first) => {
                            // Group commit: whatever queued while the last transaction was syncing goes into
                            // this one.
                            let (from, mut last) = (first.seq, first.seq);
                            rows.clear();
                            rows.extend(first.rows);
                            while let Ok(more) = receiver.try_recv() {
                                match more {
                                    Message::Batch(b) => {
                                        last = b.seq;
                                        rows.extend(b.rows);
                                    }
                                    reload @ Message::Reload { .. } => {
                                        next = Some(reload);
                                        break;
                                    }
                                }
                            }
                            match store.commit(&rows) {
                                Ok(()) => {
                                    if publish.borrow().failed.is_some() {
                                        eprintln!("dp-local: the state store takes changes again");
                                    }
                                    publish.send_modify(|c| {
                                        c.seq = last;
                                        c.failed = None;
                                    });
                                }
                                Err(e) => {
                                    if publish.borrow().failed.is_none() {
                                        eprintln!(
                                            "dp-local: {e}; the changes not saved are rolled back and their \
                                             requests answer errors"
                                        );
                                    }
                                    poisoned = true;
                                    give_up(&publish, from, last, Some(e.to_string()));
                                }
                            }
                        }
                    }
                }
            })
            .map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Runtime,
                    format!("cannot start the state writer: {e}"),
                )
            })?;
        Ok(Writer {
            sender: Some(sender),
            committed,
            thread: Some(thread),
        })
    }

    /// Queues a batch; the caller sends batches in sequence order.
    pub fn send(&self, batch: Batch) {
        if let Some(sender) = &self.sender {
            // A send fails only when the thread has ended, which `committed` then reports.
            let _ = sender.send(Message::Batch(batch));
        }
    }

    /// Whether a commit failed and the engine must reload the committed state before it goes on.
    pub fn needs_reload(&self) -> bool {
        self.committed.borrow().reload
    }

    /// Every table's committed rows, read by the writer once every batch sent before this call is settled. The
    /// caller sends no batch meanwhile (it holds the engine's lock). After a success, batches are committed again.
    pub fn reload(&self) -> Result<Tables, Error> {
        let stopped = || {
            Error::new(
                crate::error::ErrorKind::Runtime,
                "the state writer has stopped",
            )
        };
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = mpsc::channel();
        sender
            .send(Message::Reload { reply })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Waits until batch `seq` is settled; `Err` with the reason if a batch from `since` to `seq` was given up
    /// (the state a request saw at `seq`, in the engine's state since its reload at `since`, was not saved).
    pub async fn durable(&self, since: u64, seq: u64) -> Result<(), String> {
        let mut committed = self.committed.clone();
        let state = committed
            .wait_for(|c| c.seq >= seq)
            .await
            .map_err(|_| "the state writer has stopped".to_string())?;
        if state
            .lost
            .iter()
            .any(|&(first, last)| first <= seq && last >= since)
        {
            return Err(state
                .failed
                .clone()
                .unwrap_or_else(|| "a commit failed".to_string()));
        }
        Ok(())
    }
}

/// Settles batches `first..=last` as given up; `reason` when a commit just failed.
fn give_up(publish: &watch::Sender<Committed>, first: u64, last: u64, reason: Option<String>) {
    publish.send_modify(|c| {
        match c.lost.last_mut() {
            Some(range) if range.1 + 1 == first => range.1 = last,
            _ => c.lost.push((first, last)),
        }
        if c.lost.len() > LOST_KEPT {
            c.lost.remove(0);
        }
        c.seq = last;
        if let Some(reason) = reason {
            c.failed = Some(reason);
            c.reload = true;
        }
    });
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread commit what is queued and close the database.
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens (creating or migrating) the state at `path`: a PostgreSQL database when it is a `postgres://` URL
/// ([`is_url`]), else an SQLite file.
/// A database that another dp-local serves is refused.
pub fn open(path: &Path) -> Result<Box<dyn Store>, Error> {
    open_with(path, WhenServed::Refuse)
}

/// [`open`] for a serving node: on a database that another dp-local serves, it waits as a standby until that one
/// stops (an SQLite file in use is refused either way).
pub fn open_with(path: &Path, when_served: WhenServed) -> Result<Box<dyn Store>, Error> {
    match path.to_str().filter(|p| is_url(p)) {
        Some(url) => Ok(Box::new(PostgresStore::open_with(url, when_served)?)),
        None => Ok(Box::new(SqliteStore::open(path)?)),
    }
}

/// The export format: every row of every table, bodies as JSON values.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dump {
    /// Always `dp-local-state`.
    pub format: String,
    /// The schema version of the file it was taken from.
    pub schema_version: u32,
    /// Rows by table name, each `[scope, id, body]`.
    pub tables: std::collections::BTreeMap<String, Vec<(String, String, serde_json::Value)>>,
}

/// The `format` of a [`Dump`].
pub const DUMP_FORMAT: &str = "dp-local-state";

/// Reads every row of `store` into a dump.
pub fn export(store: &mut dyn Store) -> Result<Dump, Error> {
    let mut tables = std::collections::BTreeMap::new();
    for table in Table::ALL {
        let rows = store.load(table)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let body: serde_json::Value = serde_json::from_str(&row.body).map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::State,
                    format!(
                        "row {}/{}/{} is not JSON: {e}",
                        table.name(),
                        row.scope,
                        row.id
                    ),
                )
            })?;
            out.push((row.scope, row.id, body));
        }
        tables.insert(table.name().to_string(), out);
    }
    Ok(Dump {
        format: DUMP_FORMAT.into(),
        schema_version: CURRENT_VERSION,
        tables,
    })
}

/// Writes every row of `dump` into `store` (which should be new) in one transaction.
pub fn import(store: &mut dyn Store, dump: Dump) -> Result<usize, Error> {
    if dump.format != DUMP_FORMAT {
        return Err(Error::new(
            crate::error::ErrorKind::State,
            format!(
                "not a dp-local export (format {:?}, expected {DUMP_FORMAT:?})",
                dump.format
            ),
        ));
    }
    if dump.schema_version > CURRENT_VERSION {
        return Err(Error::new(
            crate::error::ErrorKind::State,
            format!(
                "the export is of schema version {}; this dp-local reads versions up to {CURRENT_VERSION}",
                dump.schema_version
            ),
        ));
    }
    let mut rows = Vec::new();
    for table in Table::ALL {
        for (scope, id, body) in dump.tables.get(table.name()).into_iter().flatten() {
            rows.push(Row {
                table,
                scope: scope.clone(),
                id: id.clone(),
                body: body.to_string(),
            });
        }
    }
    if let Some(unknown) = dump
        .tables
        .keys()
        .find(|name| !Table::ALL.iter().any(|t| t.name() == name.as_str()))
    {
        return Err(Error::new(
            crate::error::ErrorKind::State,
            format!("the export has a table this dp-local does not know: {unknown}"),
        ));
    }
    store.commit(&rows)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    //! The writer's promises through the real answer path (`dispatch::call`) with stores that hold or fail their
    //! commits, wrapping the real SQLite store.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex};

    use super::*;
    use crate::engine::Engine;

    fn temp_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dp-local-store-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.db")
    }

    /// Stops each commit at its start while `closed`, until the test opens the gate.
    #[derive(Default)]
    struct Gate {
        closed: Mutex<bool>,
        changed: Condvar,
        entered: AtomicBool,
    }

    /// Opens the gate when dropped, so a failing test does not leave the writer waiting (and its join hanging).
    struct Opener(Arc<Gate>);

    impl Opener {
        fn open(&self) {
            *self.0.closed.lock().unwrap() = false;
            self.0.changed.notify_all();
        }
    }

    impl Drop for Opener {
        fn drop(&mut self) {
            self.open();
        }
    }

    struct HeldStore {
        inner: SqliteStore,
        gate: Arc<Gate>,
    }

    impl Store for HeldStore {
        fn load(&mut self, table: Table) -> Result<Vec<Row>, Error> {
            self.inner.load(table)
        }
        fn commit(&mut self, rows: &[Row]) -> Result<(), Error> {
            let mut closed = self.gate.closed.lock().unwrap();
            if *closed {
                self.gate.entered.store(true, Ordering::SeqCst);
            }
            while *closed {
                closed = self.gate.changed.wait(closed).unwrap();
            }
            drop(closed);
            self.inner.commit(rows)
        }
    }

    /// Fails every commit as a full disk does while `full` is set (SQLite rolls such a transaction back).
    struct FullDiskStore {
        inner: SqliteStore,
        full: Arc<AtomicBool>,
    }

    impl Store for FullDiskStore {
        fn load(&mut self, table: Table) -> Result<Vec<Row>, Error> {
            self.inner.load(table)
        }
        fn commit(&mut self, rows: &[Row]) -> Result<(), Error> {
            if self.full.load(Ordering::SeqCst) {
                return Err(Error::new(
                    crate::error::ErrorKind::State,
                    "cannot write the state file: database or disk is full",
                ));
            }
            self.inner.commit(rows)
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    async fn call(
        engine: &Engine,
        operation: &str,
        body: &str,
    ) -> Result<Vec<u8>, crate::ServiceError> {
        let op = dp_model::operation(operation).unwrap();
        crate::dispatch::call(engine, op, body.as_bytes()).await
    }

    fn pipeline_ids(path: &Path) -> Vec<String> {
        let mut store = SqliteStore::open(path).unwrap();
        store
            .load(Table::Pipelines)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn no_answer_leaves_before_its_commit_is_released() {
        let path = temp_file("held");
        let gate = Arc::new(Gate::default());
        let store = HeldStore {
            inner: SqliteStore::open(&path).unwrap(),
            gate: gate.clone(),
        };
        let engine =
            Arc::new(Engine::open(Box::new(store), 1.0, false, Duration::from_secs(1)).unwrap());
        let rt = runtime();
        *gate.closed.lock().unwrap() = true;
        let opener = Opener(gate.clone());
        let answer = rt.spawn({
            let engine = engine.clone();
            async move {
                call(
                    &engine,
                    "CreatePipeline",
                    r#"{"name": "p", "uniqueId": "u"}"#,
                )
                .await
            }
        });
        let start = std::time::Instant::now();
        while !gate.entered.load(Ordering::SeqCst) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the commit never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Time for an answer that did not wait for the commit to come out; a correct one cannot.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!answer.is_finished(), "an answer left before its commit");
        opener.open();
        let body = rt.block_on(answer).unwrap().expect("created once released");
        let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["pipelineId"]
            .as_str()
            .unwrap()
            .to_string();
        drop(engine);
        assert_eq!(
            pipeline_ids(&path),
            vec![id],
            "the answered pipeline is in the file"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_failing_commit_answers_500_and_rolls_the_engine_back_to_the_committed_state() {
        let path = temp_file("full");
        let full = Arc::new(AtomicBool::new(false));
        let store = FullDiskStore {
            inner: SqliteStore::open(&path).unwrap(),
            full: full.clone(),
        };
        let engine = Engine::open(Box::new(store), 1.0, false, Duration::from_secs(1)).unwrap();
        let rt = runtime();
        let created = |name: &str| {
            let body = format!(r#"{{"name": "{name}", "uniqueId": "{name}"}}"#);
            rt.block_on(call(&engine, "CreatePipeline", &body))
                .map(|body| id(&body))
        };
        let listed = || {
            let body = rt
                .block_on(call(&engine, "ListPipelines", "{}"))
                .expect("reads are served");
            let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let mut ids: Vec<String> = listed["pipelineIdList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        let before = created("before").expect("saved while the disk has room");
        full.store(true, Ordering::SeqCst);
        for _ in 0..2 {
            let failure = created("during").expect_err("no answer for a change that is not saved");
            assert_eq!(
                (failure.status, failure.code),
                (500, "InternalServiceError")
            );
            assert!(
                failure.message.contains("disk is full"),
                "{}",
                failure.message
            );
            // Reads are served, from the committed state: the change that answered 500 is not there.
            assert_eq!(listed(), vec![before.clone()]);
        }
        full.store(false, Ordering::SeqCst);
        let after = created("after").expect("saved again once the disk has room");
        // The uniqueId of the change that was rolled back is free: a retry creates the pipeline once.
        let retried = created("during").expect("the client's retry succeeds");
        assert_eq!(created("during").expect("idempotent"), retried);
        let mut expected = vec![before, after, retried];
        expected.sort();
        assert_eq!(listed(), expected, "memory shows what was answered");
        drop(engine);
        let mut saved = pipeline_ids(&path);
        saved.sort();
        assert_eq!(saved, expected, "the file holds exactly what was answered");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    fn id(body: &[u8]) -> String {
        serde_json::from_slice::<serde_json::Value>(body).unwrap()["pipelineId"]
            .as_str()
            .unwrap()
            .to_string()
    }
}
