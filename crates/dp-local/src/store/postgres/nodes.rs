//! PostgreSQL as a [`SharedStore`]: the database several dp-local nodes serve together.
//!
//! A turn is one transaction on the node's turn connection. `begin` sends `BEGIN`, the transaction-level
//! advisory lock [`TURN_LOCK`] and the catch-up query (the revision and every row stamped after the node's) in
//! one round trip: the server runs them in order, so the rows are read once the lock is held, and they include
//! every commit of the nodes that held it before (a transaction is visible before its locks are released).
//! `commit` sends one statement that raises the revision, writes the rows stamped with it and queues the
//! `NOTIFY` for the other nodes, then [`FLUSH_AFTER`] (or, for a node that no other node contends with, a plain
//! `COMMIT` that waits for the disk itself), again in one round trip; when the engine asks, the next turn's
//! `begin` follows in that same round trip (its answer is kept until the engine begins, or given up after
//! [`CHAINED_IDLE`]). A node that dies mid-turn aborts its transaction, which frees the lock; a node that hangs in
//! one is cut off by `idle_in_transaction_session_timeout`.
//!
//! Every node holds the serving lock in shared mode for its connection's life, so a node started with
//! `--standby` (which takes it exclusively) and the export/import tools are refused while nodes serve, and the
//! other way round. The listening connection (`LISTEN dp_local`) hears other nodes' commits and hands them to the
//! engine; it reconnects by itself. This module holds no rules.

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use super::{
    JOB_TIMEOUT, REVISION_TABLE, SERVE_LOCK, Target, connect, database_runtime, db_error, describe,
    encrypt_only, in_order, parse, prepare_schema, write_params, write_sql,
};
use crate::error::{Error, ErrorKind};
use crate::store::shared::{Changes, SharedStore, Wakeup};
use crate::store::{Probe, Row, Table};

/// The transaction-level advisory lock of a turn ("dpLt"): one operation at a time across the nodes.
const TURN_LOCK: i64 = 0x6470_4c74;

/// The channel on which a commit tells the other nodes about itself.
pub(super) const CHANNEL: &str = "dp_local";

/// The longest notification payload sent (the server refuses 8000 bytes or more); a longer list of worker groups
/// is sent as "any group".
const MAX_PAYLOAD: usize = 7900;

/// How long a node may sit in a turn without a statement before the server ends its session (and the turn).
const IDLE_IN_TURN: &str = "10s";

/// How long `begin` waits for the turn lock before it fails.
const LOCK_WAIT: &str = "20s";

/// How long a turn begun ahead (in the round trip of the last one's commit) waits to be taken before it is given
/// up.
const CHAINED_IDLE: Duration = Duration::from_millis(20);

/// How long the listening connection waits before it connects again.
const LISTEN_RETRY: Duration = Duration::from_millis(250);

/// What follows the revision in a notification's payload.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    node: u64,
    groups: Option<Vec<String>>,
}

/// The catch-up query: the revision first (table 0), then every row stamped after `$1`, table by table, each in
/// the order rows were first written. One statement, so one snapshot.
fn catch_up_sql() -> String {
    let mut sql =
        format!("SELECT 0, ''::text, ''::text, ''::text, rev, 0::bigint FROM {REVISION_TABLE}");
    for (index, table) in Table::ALL.iter().enumerate() {
        sql.push_str(&format!(
            " UNION ALL SELECT {}, scope, id, body, rev, seq FROM {} WHERE rev > $1",
            index + 1,
            table.name()
        ));
    }
    sql.push_str(" ORDER BY 1, 6");
    sql
}

/// The turn connection with its prepared statements.
struct Session {
    client: Client,
    catch_up: Statement,
    /// The write statements prepared so far, by the set of tables they write ([`write_sql`]).
    commits: std::collections::HashMap<u8, Statement>,
    /// Set between `begin` and its `commit` or `release`.
    in_turn: bool,
    /// The next turn, begun in the round trip of the last commit or release: the revision it caught up from,
    /// and what it read. Its transaction is open (holding the turn lock) while it waits here.
    chained: Option<(i64, Result<Changes, Error>)>,
    /// Set when a statement did not answer in time: what the connection is doing is unknown, so it is opened
    /// anew before the next job.
    broken: std::cell::Cell<bool>,
}

/// Opens the turn connection: the serving lock in shared mode, the session's limits, the statements.
async fn open_session(target: &Target) -> Result<Session, Error> {
    let client = connect(target).await.map_err(db_error)?;
    let fail = |e: tokio_postgres::Error| db_error(describe(&target.shown, &e));
    let shared: bool = client
        .query_one("SELECT pg_try_advisory_lock_shared($1)", &[&SERVE_LOCK])
        .await
        .map_err(fail)?
        .get(0);
    if !shared {
        return Err(db_error(format!(
            "{} is served by a dp-local started with --standby (one node at a time) or is being exported or imported; stop it first",
            target.shown
        )));
    }
    client
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = '{IDLE_IN_TURN}'; SET lock_timeout = '{LOCK_WAIT}'"
        ))
        .await
        .map_err(fail)?;
    let catch_up = client.prepare(&catch_up_sql()).await.map_err(fail)?;
    Ok(Session {
        client,
        catch_up,
        commits: std::collections::HashMap::new(),
        in_turn: false,
        chained: None,
        broken: std::cell::Cell::new(false),
    })
}

/// What starts a turn: the transaction and its lock. The catch-up query follows in the same round trip.
fn begin_sql() -> String {
    format!("BEGIN; SELECT pg_advisory_xact_lock({TURN_LOCK})")
}

/// What ends a turn that wrote while other nodes contend for the lock: `COMMIT` without waiting for the disk (so
/// the turn lock is free at once), then a transaction that writes one WAL record and commits with the session's
/// own `synchronous_commit` (`on` or stronger), so that it returns once the log is flushed (and replicated, as
/// that setting asks) up to and past the turn's commit. Other nodes' turns overlap the flush. A node alone
/// commits with the session's setting directly (`COMMIT`): one transaction instead of two.
const FLUSH_AFTER: &str = "SET LOCAL synchronous_commit = off; COMMIT; BEGIN; SELECT pg_logical_emit_message(true, 'dp_local', ''); COMMIT";

/// Starts a turn on `s`: the transaction, the turn lock, and the rows committed after `since`, in one round trip.
async fn open_turn(s: &Session, since: i64, shown: &str) -> Result<Changes, Error> {
    let begun = tokio::time::timeout(
        JOB_TIMEOUT,
        in_order(
            s.client.batch_execute(&begin_sql()),
            s.client.query(&s.catch_up, &[&since]),
        ),
    )
    .await;
    match begun {
        Ok((Ok(()), Ok(rows))) => Ok(changes_of(&rows)),
        Ok((Err(e), _)) | Ok((Ok(()), Err(e))) => {
            let _ = s.client.batch_execute("ROLLBACK").await;
            Err(db_error(format!(
                "cannot start a turn on {}",
                describe(shown, &e).trim_start_matches("cannot reach PostgreSQL at ")
            )))
        }
        Err(_) => {
            s.broken.set(true);
            Err(db_error(format!(
                "{shown}: waiting for the turn took longer than {} s",
                JOB_TIMEOUT.as_secs()
            )))
        }
    }
}

/// Runs `end` (which ends a turn) and, when `next` names a revision, starts the next turn from it in the same
/// round trip. `answer` gets `end`'s outcome as soon as it is known, before the next turn has its lock, and says
/// whether to keep that next turn; it is then waited for and returned, or given up (rolled back).
async fn end_and_chain<T>(
    s: &Session,
    end: impl Future<Output = Result<T, Error>>,
    next: Option<i64>,
    shown: &str,
    answer: impl FnOnce(&Result<T, Error>) -> bool,
) -> Option<Result<Changes, Error>> {
    let mut end = pin!(end);
    let mut chained = pin!(async {
        match next {
            Some(since) => Some(open_turn(s, since, shown).await),
            None => None,
        }
    });
    let mut ended = None;
    let mut begun = None;
    // Polled in this order, so the next turn's statements are sent right behind the end's.
    std::future::poll_fn(|cx| {
        if ended.is_none()
            && let Poll::Ready(v) = end.as_mut().poll(cx)
        {
            ended = Some(v);
        }
        if begun.is_none()
            && let Poll::Ready(v) = chained.as_mut().poll(cx)
        {
            begun = Some(v);
        }
        if ended.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let keep = answer(&ended.expect("ready"));
    let begun = match begun {
        Some(b) => b,
        None => chained.await,
    }?;
    if keep {
        return Some(begun);
    }
    if begun.is_ok() {
        let _ = s.client.batch_execute("ROLLBACK").await;
    }
    None
}

fn changes_of(rows: &[tokio_postgres::Row]) -> Changes {
    let mut changes = Changes::default();
    for r in rows {
        let index: i32 = r.get(0);
        if index == 0 {
            changes.revision = r.get(4);
            continue;
        }
        changes.rows.push(Row {
            table: Table::ALL[index as usize - 1],
            scope: r.get(1),
            id: r.get(2),
            body: r.get(3),
        });
    }
    changes
}

enum Job {
    Begin(i64, std_mpsc::Sender<Result<Changes, Error>>),
    Commit(
        Vec<Row>,
        String,
        Option<i64>,
        bool,
        std_mpsc::Sender<Result<i64, Error>>,
    ),
    Release(Option<i64>, std_mpsc::Sender<()>),
    Changes(i64, std_mpsc::Sender<Result<Changes, Error>>),
    Ping(std_mpsc::Sender<Result<(), String>>),
    Close,
}

/// A dp-local state in a PostgreSQL database that several nodes serve together.
pub struct SharedPostgres {
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
    target: Target,
    listeners: Mutex<Vec<(tokio::sync::watch::Sender<bool>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for SharedPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPostgres")
            .field("database", &self.target.shown)
            .finish_non_exhaustive()
    }
}

impl SharedPostgres {
    /// Connects to the database at `url`, refuses it as [`super::PostgresStore::open`] does (writing nothing),
    /// migrates it, and joins the nodes that serve it.
    pub fn open(url: &str) -> Result<SharedPostgres, Error> {
        let target = parse(url)?;
        let (jobs, receiver) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (opened_tx, opened_rx) = std_mpsc::channel::<Result<(), Error>>();
        let thread = std::thread::Builder::new()
            .name("dp-local-turns".into())
            .spawn({
                let target = target.clone();
                move || turn_thread(target, receiver, opened_tx)
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::Runtime,
                    format!("cannot start the database thread: {e}"),
                )
            })?;
        let opened = opened_rx.recv().unwrap_or_else(|_| {
            Err(db_error(format!(
                "{}: the database thread stopped while opening",
                target.shown
            )))
        });
        let store = SharedPostgres {
            jobs: Some(jobs),
            thread: Some(thread),
            target,
            listeners: Mutex::new(Vec::new()),
        };
        opened.map(|()| store)
    }

    fn ask<T>(&self, job: impl FnOnce(std_mpsc::Sender<T>) -> Job) -> Option<T> {
        let (tx, rx) = std_mpsc::channel();
        self.jobs.as_ref()?.send(job(tx)).ok()?;
        rx.recv().ok()
    }

    fn stopped(&self) -> Error {
        db_error(format!(
            "{}: the database connection has stopped",
            self.target.shown
        ))
    }
}

impl Drop for SharedPostgres {
    fn drop(&mut self) {
        for (stop, thread) in self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = stop.send(true);
            let _ = thread.join();
        }
        if let Some(jobs) = self.jobs.take() {
            let _ = jobs.send(Job::Close);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SharedStore for SharedPostgres {
    fn begin(&self, since: i64) -> Result<Changes, Error> {
        self.ask(|tx| Job::Begin(since, tx))
            .unwrap_or_else(|| Err(self.stopped()))
    }

    fn commit(
        &self,
        rows: &[Row],
        node: u64,
        groups: &[String],
        next: Option<i64>,
        alone: bool,
    ) -> Result<i64, Error> {
        let mut payload = serde_json::to_string(&Payload {
            node,
            groups: Some(groups.to_vec()),
        })
        .expect("plain data");
        if payload.len() > MAX_PAYLOAD {
            payload = serde_json::to_string(&Payload { node, groups: None }).expect("plain data");
        }
        self.ask(|tx| Job::Commit(rows.to_vec(), payload, next, alone, tx))
            .unwrap_or_else(|| Err(self.stopped()))
    }

    fn release(&self, next: Option<i64>) {
        let _ = self.ask(|tx| Job::Release(next, tx));
    }

    fn changes(&self, since: i64) -> Result<Changes, Error> {
        self.ask(|tx| Job::Changes(since, tx))
            .unwrap_or_else(|| Err(self.stopped()))
    }

    fn listen(&self, deliver: Box<dyn Fn(Wakeup) + Send + Sync>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let target = self.target.clone();
        let thread = std::thread::Builder::new()
            .name("dp-local-listen".into())
            .spawn(move || listen_thread(target, deliver, stopped));
        match thread {
            Ok(thread) => self
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((stop, thread)),
            Err(e) => eprintln!(
                "dp-local: cannot start the listening thread ({e}); long polls wake only for this node's work"
            ),
        }
    }

    fn probe(&self) -> Option<Probe> {
        let jobs = self.jobs.clone()?;
        Some(std::sync::Arc::new(move |limit: Duration| {
            let (tx, rx) = std_mpsc::channel();
            jobs.send(Job::Ping(tx))
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
        }))
    }
}

fn turn_thread(
    target: Target,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    opened: std_mpsc::Sender<Result<(), Error>>,
) {
    let Some(runtime) = database_runtime(&opened) else {
        return;
    };
    runtime.block_on(async move {
        // The schema is checked and migrated on a connection of its own, as for a single node.
        match connect(&target).await {
            Ok(mut client) => {
                if let Err(e) = prepare_schema(&mut client, &target.shown).await {
                    let _ = opened.send(Err(e));
                    return;
                }
            }
            Err(e) => {
                let _ = opened.send(Err(db_error(e)));
                return;
            }
        }
        let mut session = match open_session(&target).await {
            Ok(s) => Some(s),
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        let _ = opened.send(Ok(()));
        let shown = target.shown.clone();
        // Set when the connection was opened again: the next catch-up reads every row and says so.
        let mut anew = false;
        loop {
            // A next turn begun ahead that nobody took in time is given up, so that it does not hold the lock.
            let waiting = session.as_ref().is_some_and(|s| s.chained.is_some());
            let job = if waiting {
                match tokio::time::timeout(CHAINED_IDLE, jobs.recv()).await {
                    Ok(job) => job,
                    Err(_) => {
                        if let Some(s) = session.as_mut()
                            && let Some((_, Ok(_))) = s.chained.take()
                            && s.client.batch_execute("ROLLBACK").await.is_err()
                        {
                            session = None;
                        }
                        continue;
                    }
                }
            } else {
                jobs.recv().await
            };
            let Some(job) = job else {
                break;
            };
            if matches!(job, Job::Close) {
                if let Some(s) = session.take() {
                    let _ = s.client.batch_execute("SELECT pg_advisory_unlock_all()").await;
                }
                break;
            }
            // A lost connection is opened again for the next job; a turn it was in is over (the server aborted it).
            if session
                .as_ref()
                .is_some_and(|s| s.client.is_closed() || s.broken.get())
            {
                session = None;
            }
            let reopened = if session.is_none() && !matches!(job, Job::Commit(..) | Job::Release(..)) {
                match tokio::time::timeout(JOB_TIMEOUT, open_session(&target)).await {
                    Ok(Ok(s)) => {
                        session = Some(s);
                        // A turn's commit is seen by other nodes before it is flushed; if the server crashed,
                        // one that other nodes (or this one) read may be gone: everything is read anew.
                        anew = true;
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(db_error(format!(
                        "{shown}: connecting took longer than {} s",
                        JOB_TIMEOUT.as_secs()
                    ))),
                }
            } else {
                Ok(())
            };
            match job {
                Job::Close => unreachable!("handled above"),
                Job::Begin(since, answer) => {
                    let result = match (reopened, session.as_mut()) {
                        // Connection failures name the database already.
                        (Err(e), _) => Err(e),
                        (Ok(()), None) => Err(db_error(format!("{shown}: no connection"))),
                        (Ok(()), Some(s)) if anew => {
                            let result = open_turn(s, 0, &shown).await.map(|mut c| {
                                c.anew = true;
                                c
                            });
                            anew = result.is_err();
                            s.in_turn = result.is_ok();
                            result
                        }
                        (Ok(()), Some(s)) => {
                            let result = match s.chained.take() {
                                // Begun in the last turn's round trip, from the revision asked for.
                                Some((from, begun)) if from == since => begun,
                                other => {
                                    if matches!(other, Some((_, Ok(_)))) {
                                        let _ = s.client.batch_execute("ROLLBACK").await;
                                    }
                                    open_turn(s, since, &shown).await
                                }
                            };
                            s.in_turn = result.is_ok();
                            result
                        }
                    };
                    let _ = answer.send(result);
                }
                Job::Commit(rows, payload, next, alone, answer) => {
                    match session.as_mut() {
                        Some(s) if s.in_turn => {
                            s.in_turn = false;
                            let (touched, arrays) = write_params(&rows);
                            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                                arrays.iter().map(|a| a as _).collect();
                            params.push(&payload);
                            // Prepared on first use in this session (a round trip inside the turn, once).
                            let commit = match s.commits.get(&touched) {
                                Some(statement) => statement.clone(),
                                None => {
                                    let prepared = tokio::time::timeout(
                                        JOB_TIMEOUT,
                                        s.client.prepare(&write_sql(touched, true)),
                                    )
                                    .await;
                                    let outcome = match prepared {
                                        Ok(Ok(statement)) => {
                                            s.commits.insert(touched, statement.clone());
                                            Ok(statement)
                                        }
                                        Ok(Err(e)) => Err(format!(
                                            "cannot save the state in {}",
                                            describe(&shown, &e)
                                                .trim_start_matches("cannot reach PostgreSQL at ")
                                        )),
                                        Err(_) => {
                                            s.broken.set(true);
                                            Err(format!(
                                                "cannot save the state in {shown}: preparing the write took longer than {} s",
                                                JOB_TIMEOUT.as_secs()
                                            ))
                                        }
                                    };
                                    match outcome {
                                        Ok(statement) => statement,
                                        Err(message) => {
                                            if !s.client.is_closed() {
                                                let _ = s.client.batch_execute("ROLLBACK").await;
                                            }
                                            let _ = answer.send(Err(db_error(message)));
                                            continue;
                                        }
                                    }
                                }
                            };
                            let commit = &commit;
                            let client = &s.client;
                            let broken = &s.broken;
                            let write = async {
                                let done = tokio::time::timeout(
                                    JOB_TIMEOUT,
                                    in_order(
                                        client.query_one(commit, &params),
                                        client.batch_execute(if alone {
                                            "COMMIT"
                                        } else {
                                            FLUSH_AFTER
                                        }),
                                    ),
                                )
                                .await;
                                match done {
                                    Ok((Ok(row), Ok(()))) => Ok(row.get::<_, i64>(0)),
                                    Ok((Err(e), _)) | Ok((Ok(_), Err(e))) => {
                                        if !client.is_closed() {
                                            let _ = client.batch_execute("ROLLBACK").await;
                                        }
                                        Err(db_error(format!(
                                            "cannot save the state in {}",
                                            describe(&shown, &e)
                                                .trim_start_matches("cannot reach PostgreSQL at ")
                                        )))
                                    }
                                    Err(_) => {
                                        broken.set(true);
                                        Err(db_error(format!(
                                            "cannot save the state in {shown}: the commit took longer than {} s",
                                            JOB_TIMEOUT.as_secs()
                                        )))
                                    }
                                }
                            };
                            let begun = end_and_chain(s, write, next, &shown, |result| {
                                let _ = answer.send(match result {
                                    Ok(revision) => Ok(*revision),
                                    Err(e) => Err(db_error(e.message.clone())),
                                });
                                // The next turn caught up from the revision this one was to make.
                                matches!(result, Ok(revision) if Some(*revision) == next)
                            })
                            .await;
                            if let (Some(since), Some(begun)) = (next, begun) {
                                s.chained = Some((since, begun));
                            }
                        }
                        _ => {
                            let _ = answer.send(Err(db_error(format!(
                                "cannot save the state in {shown}: the connection was lost during the turn"
                            ))));
                        }
                    }
                }
                Job::Release(next, answer) => {
                    if let Some(s) = session.as_mut()
                        && s.in_turn
                    {
                        s.in_turn = false;
                        let client = &s.client;
                        let end = async {
                            match tokio::time::timeout(JOB_TIMEOUT, client.batch_execute("COMMIT"))
                                .await
                            {
                                Ok(Ok(())) => Ok(()),
                                _ => Err(db_error(format!("{shown}: cannot end a turn"))),
                            }
                        };
                        let mut failed = false;
                        let begun = end_and_chain(s, end, next, &shown, |result| {
                            failed = result.is_err();
                            let _ = answer.send(());
                            result.is_ok()
                        })
                        .await;
                        if failed {
                            session = None;
                        } else if let (Some(since), Some(begun)) = (next, begun) {
                            s.chained = Some((since, begun));
                        }
                    } else {
                        let _ = answer.send(());
                    }
                }
                Job::Changes(since, answer) => {
                    let result = match (reopened, session.as_mut()) {
                        // Connection failures name the database already.
                        (Err(e), _) => Err(e),
                        (Ok(()), None) => Err(db_error(format!("{shown}: no connection"))),
                        (Ok(()), Some(s)) => {
                            let since = if anew { 0 } else { since };
                            match tokio::time::timeout(
                                JOB_TIMEOUT,
                                s.client.query(&s.catch_up, &[&since]),
                            )
                            .await
                            {
                                Ok(Ok(rows)) => {
                                    let mut changes = changes_of(&rows);
                                    changes.anew = std::mem::take(&mut anew);
                                    Ok(changes)
                                }
                                Ok(Err(e)) => Err(db_error(format!(
                                    "cannot read {}",
                                    describe(&shown, &e)
                                        .trim_start_matches("cannot reach PostgreSQL at ")
                                ))),
                                Err(_) => {
                                    session = None;
                                    Err(db_error(format!(
                                        "{shown}: reading took longer than {} s",
                                        JOB_TIMEOUT.as_secs()
                                    )))
                                }
                            }
                        }
                    };
                    let _ = answer.send(result);
                }
                Job::Ping(answer) => {
                    let result = match (reopened, session.as_ref()) {
                        (Err(e), _) => Err(e.message),
                        (Ok(()), None) => Err(format!("{shown}: no connection")),
                        (Ok(()), Some(s)) => s
                            .client
                            .simple_query("SELECT 1")
                            .await
                            .map(|_| ())
                            .map_err(|e| describe(&shown, &e)),
                    };
                    let _ = answer.send(result);
                }
            }
        }
    });
}

/// Parses a notification's payload (`REV {"node":…,"groups":…}`); `None` for one this dp-local did not send.
fn wakeup(payload: &str) -> Option<Wakeup> {
    let (revision, rest) = payload.split_once(' ')?;
    let revision = revision.parse().ok()?;
    let payload: Payload = serde_json::from_str(rest).ok()?;
    Some(Wakeup {
        node: payload.node,
        revision,
        groups: payload.groups,
    })
}

fn listen_thread(
    target: Target,
    deliver: Box<dyn Fn(Wakeup) + Send + Sync>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!(
            "dp-local: cannot start the listening runtime; long polls wake only for this node's work"
        );
        return;
    };
    runtime.block_on(async move {
        let mut told = false;
        loop {
            let heard = if target.config.get_ssl_mode() == SslMode::Disable {
                match target.config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        hear(client, connection, &*deliver, &mut stopped).await
                    }
                    Err(e) => Err(describe(&target.shown, &e)),
                }
            } else {
                match target.config.connect(encrypt_only()).await {
                    Ok((client, connection)) => {
                        hear(client, connection, &*deliver, &mut stopped).await
                    }
                    Err(e) => Err(describe(&target.shown, &e)),
                }
            };
            match heard {
                Ok(true) => return,
                Ok(false) => told = false,
                Err(e) if !told => {
                    eprintln!("dp-local: the listening connection failed ({e}); connecting again");
                    told = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(LISTEN_RETRY) => {}
                _ = stopped.changed() => return,
            }
        }
    });
}

/// Listens on one connection until it ends (`Ok(false)`) or the store stops (`Ok(true)`).
async fn hear<S, T>(
    client: Client,
    mut connection: tokio_postgres::Connection<S, T>,
    deliver: &(dyn Fn(Wakeup) + Send + Sync),
    stopped: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<bool, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = tx.send(n.payload().to_string());
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    let listening = client.batch_execute(&format!("LISTEN {CHANNEL}")).await;
    if let Err(e) = listening {
        driver.abort();
        return Err(e.to_string());
    }
    // Whatever was committed while this connection was not listening is stood for by one wake-up of every group.
    deliver(Wakeup {
        node: 0,
        revision: 0,
        groups: None,
    });
    let stop = loop {
        tokio::select! {
            heard = rx.recv() => match heard {
                Some(payload) => {
                    if let Some(w) = wakeup(&payload) {
                        deliver(w);
                    }
                }
                None => break false,
            },
            _ = stopped.changed() => break true,
        }
    };
    driver.abort();
    drop(client);
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let p = serde_json::to_string(&Payload {
            node: 7,
            groups: Some(vec!["wg a".into()]),
        })
        .unwrap();
        assert_eq!(
            wakeup(&format!("12 {p}")),
            Some(Wakeup {
                node: 7,
                revision: 12,
                groups: Some(vec!["wg a".into()])
            })
        );
        assert_eq!(wakeup("x"), None);
        assert_eq!(wakeup("3 {}"), None);
        let sql = write_sql(0b111_1111, true);
        assert!(
            sql.contains("$21::text[]") && sql.contains("$22::text"),
            "{sql}"
        );
        assert!(!sql.contains("$23"), "{sql}");
        // Attempts alone (the fifth table): one insert, its three arrays, then the payload.
        let sql = write_sql(1 << 4, true);
        assert!(
            sql.contains("INSERT INTO attempts") && !sql.contains("INSERT INTO tasks"),
            "{sql}"
        );
        assert!(
            sql.contains("$3::text[]") && sql.contains("$4::text") && !sql.contains("$5"),
            "{sql}"
        );
        assert!(catch_up_sql().contains("FROM runners WHERE rev > $1"));
    }
}
