//! Durable state: the narrow interface between the service's rules and a database, and the one writer.
//!
//! The engine keeps its working state in memory and describes each change as [`Row`]s: a table, a scope (the
//! pipeline, or `""`), an id and a JSON body. A [`Store`] only loads and saves such rows; it knows nothing of
//! pipelines or leases, so another database can replace SQLite without touching the rules. [`Writer`] owns the
//! store on a thread of its own, applies batches in the order the engine made them, commits whatever queued
//! meanwhile as one transaction (group commit), and publishes the sequence number it has made durable; a
//! request is answered only after its batch is committed. This module does not interpret row bodies.

mod sqlite;

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::Error;

pub use sqlite::{CURRENT_VERSION, SqliteStore};

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
}

/// A batch of rows from one engine operation, numbered in the order the engine applied the operations.
#[derive(Debug)]
pub struct Batch {
    /// Sequence number, increasing by one per batch.
    pub seq: u64,
    /// The rows that changed.
    pub rows: Vec<Row>,
}

/// What the writer has made durable.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Every batch up to this sequence number is committed.
    pub seq: u64,
    /// Set once a commit failed; nothing after it is committed, and the server answers with errors.
    pub failed: Option<String>,
}

/// The single writer: a thread that owns the store and commits batches in order.
#[derive(Debug)]
pub struct Writer {
    sender: Option<mpsc::Sender<Batch>>,
    committed: watch::Receiver<Committed>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn start(mut store: Box<dyn Store>) -> Result<Writer, Error> {
        let (sender, receiver) = mpsc::channel::<Batch>();
        let (publish, committed) = watch::channel(Committed::default());
        let thread = std::thread::Builder::new()
            .name("dp-local-writer".into())
            .spawn(move || {
                let mut rows = Vec::new();
                while let Ok(first) = receiver.recv() {
                    // Group commit: whatever queued while the last transaction was syncing goes into this one.
                    let mut last = first.seq;
                    rows.clear();
                    rows.extend(first.rows);
                    while let Ok(more) = receiver.try_recv() {
                        last = more.seq;
                        rows.extend(more.rows);
                    }
                    if publish.borrow().failed.is_some() {
                        continue;
                    }
                    match store.commit(&rows) {
                        Ok(()) => publish.send_modify(|c| c.seq = last),
                        Err(e) => {
                            eprintln!("dp-local: {e}; changes are no longer saved");
                            publish.send_modify(|c| c.failed = Some(e.to_string()));
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
            let _ = sender.send(batch);
        }
    }

    /// Waits until batch `seq` is committed; `Err` with the reason if the store failed.
    pub async fn durable(&self, seq: u64) -> Result<(), String> {
        let mut committed = self.committed.clone();
        let state = committed
            .wait_for(|c| c.seq >= seq || c.failed.is_some())
            .await
            .map_err(|_| "the state writer has stopped".to_string())?;
        match &state.failed {
            Some(reason) if state.seq < seq => Err(reason.clone()),
            _ => Ok(()),
        }
    }
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

/// Opens (creating or migrating) the state file at `path`.
pub fn open(path: &Path) -> Result<SqliteStore, Error> {
    SqliteStore::open(path)
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
