//! The SQLite store: one file in WAL mode, opened by one process at a time, with numbered embedded migrations.
//!
//! Opening checks before it writes anything: a file that is not SQLite, belongs to another application, has a
//! newer schema, is corrupt or is held by another dp-local is refused with a one-line message and left as it was.
//! Durability: `synchronous = FULL` in WAL mode syncs the log on every commit, so a transaction that
//! [`Store::commit`] returned from survives a crash of the process and of the machine. `locking_mode = EXCLUSIVE`
//! holds the file's lock for the life of the connection, which is what refuses a second dp-local.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use super::{Row, Store, Table};
use crate::error::{Error, ErrorKind};

/// `PRAGMA application_id` of a dp-local state file ("dpLc").
pub const APPLICATION_ID: i32 = 0x6470_4c63;

/// The migrations, in order: migration N takes the file from schema version N - 1 to N.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// The schema version this dp-local writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// A state file.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Connection,
}

fn state_error(message: String) -> Error {
    Error::new(ErrorKind::State, message)
}

/// A one-line message for an SQLite failure on `path`.
fn describe(path: &Path, e: &rusqlite::Error) -> Error {
    let shown = path.display();
    let detail = e.to_string().replace('\n', " ");
    state_error(match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            format!("{shown} is not a dp-local state file (not an SQLite database)")
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "{shown} is in use by another dp-local (a state file is served by one process at a time)"
        ),
        Some(ErrorCode::DatabaseCorrupt) => format!("{shown} is corrupt: {detail}"),
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::SystemIoFailure,
        ) => format!(
            "cannot write the state file {shown} (is it or its directory read-only?): {detail}"
        ),
        Some(ErrorCode::DiskFull) => {
            format!("cannot write the state file {shown}: the disk is full")
        }
        _ => format!("state file {shown}: {detail}"),
    })
}

impl SqliteStore {
    /// Opens the state file at `path`, creating it if it does not exist and migrating it to
    /// [`CURRENT_VERSION`].
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        let shown = path.display();
        let created = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(state_error(format!(
                    "{shown} is a directory, not a state file"
                )));
            }
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| {
                        state_error(format!("cannot create the state file {shown}: {e}"))
                    })?;
                true
            }
            Err(e) => {
                return Err(state_error(format!(
                    "cannot use the state file {shown}: {e}"
                )));
            }
        };
        let opened = Self::open_file(path);
        if opened.is_err() && created {
            // Leave nothing behind for a file this call created.
            for suffix in ["", "-wal", "-journal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        opened
    }

    fn open_file(path: &Path) -> Result<SqliteStore, Error> {
        let shown = path.display();
        let fail = |e: rusqlite::Error| describe(path, &e);
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        connection.busy_timeout(Duration::ZERO).map_err(fail)?;
        // Exclusive before the first read: the lock is then held until the connection closes.
        connection
            .query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| {
                r.get::<_, String>(0)
            })
            .map_err(fail)?;
        // Everything up to the migrations only reads: a file refused here is left exactly as it was.
        let application_id: i32 = connection
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(fail)?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)?;
        let objects: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(fail)?;
        let fresh = application_id == 0 && version == 0 && objects == 0;
        if !fresh && application_id != APPLICATION_ID {
            return Err(state_error(format!(
                "{shown} is not a dp-local state file (an SQLite database of another application, application_id {application_id}, schema version {version})"
            )));
        }
        if version > i64::from(CURRENT_VERSION) {
            return Err(state_error(format!(
                "{shown} has schema version {version}, newer than this dp-local's {CURRENT_VERSION}; use a newer dp-local (or its export and this one's import)"
            )));
        }
        if !fresh {
            let check: String = connection
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(fail)?;
            if check != "ok" {
                return Err(state_error(format!(
                    "{shown} is corrupt: {}",
                    check.replace('\n', " ")
                )));
            }
        }
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(state_error(format!(
                "cannot put {shown} in WAL mode (journal mode stays {mode})"
            )));
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        let mut store = SqliteStore { connection };
        store.migrate(version as u32).map_err(fail)?;
        // Take the write lock now, so that a second dp-local is refused at start, not at its first write.
        store
            .connection
            .execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(fail)?;
        Ok(store)
    }

    fn migrate(&mut self, from: u32) -> rusqlite::Result<()> {
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let tx = self.connection.transaction()?;
            tx.execute_batch(sql)?;
            if index == 0 {
                tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            }
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version of the open file (always [`CURRENT_VERSION`] once opened).
    pub fn version(&self) -> Result<u32, Error> {
        self.connection
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v as u32)
            .map_err(|e| state_error(format!("cannot read the schema version: {e}")))
    }

    /// Whether the file holds no rows at all (a new file).
    pub fn is_empty(&mut self) -> Result<bool, Error> {
        for table in Table::ALL {
            if !self.load(table)?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn upsert_sql(table: Table) -> String {
    format!(
        "INSERT INTO {} (scope, id, body) VALUES (?1, ?2, ?3) ON CONFLICT (scope, id) DO UPDATE SET body = excluded.body",
        table.name()
    )
}

impl Store for SqliteStore {
    fn load(&mut self, table: Table) -> Result<Vec<Row>, Error> {
        let fail = |e: rusqlite::Error| {
            state_error(format!(
                "cannot read table {} of the state file: {}",
                table.name(),
                e.to_string().replace('\n', " ")
            ))
        };
        let mut statement = self
            .connection
            .prepare(&format!(
                "SELECT scope, id, body FROM {} ORDER BY rowid",
                table.name()
            ))
            .map_err(fail)?;
        let rows = statement
            .query_map([], |r| {
                Ok(Row {
                    table,
                    scope: r.get(0)?,
                    id: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<Row>>>().map_err(fail)
    }

    fn commit(&mut self, rows: &[Row]) -> Result<(), Error> {
        let fail = |e: rusqlite::Error| {
            state_error(format!(
                "cannot write the state file: {}",
                e.to_string().replace('\n', " ")
            ))
        };
        let tx = self.connection.transaction().map_err(fail)?;
        for row in rows {
            let mut statement = tx.prepare_cached(&upsert_sql(row.table)).map_err(fail)?;
            statement
                .execute(params![row.scope, row.id, row.body])
                .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability the module promises is the connection's actual configuration, not only what `open` asks.
    #[test]
    fn the_opened_connection_runs_wal_with_full_sync() {
        let dir = std::env::temp_dir().join(format!("dp-local-pragmas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        for _ in 0..2 {
            // Created, then reopened.
            let store = SqliteStore::open(&path).unwrap();
            let mode: String = store
                .connection
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let synchronous: i64 = store
                .connection
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(synchronous, 2, "synchronous = FULL");
            drop(store);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
