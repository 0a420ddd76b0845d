//! Serving one database together with other dp-local nodes: the engine's side of a turn.
//!
//! The state in memory is a cache of the database, current up to a revision ([`Book`]). Operations run in turns
//! ([`crate::store::shared`]): the operation that finds no turn open opens one (takes the database's turn lock
//! and reads what other nodes committed since this node's revision), catches up and runs; every operation that
//! came meanwhile then joins the turn and runs too; the turn writes all their rows at the next revision, tells
//! the other nodes which worker groups got work, commits, and only then do they answer (group commit: one
//! round trip and one disk flush for many operations). While a turn holds changes not yet committed, reads on
//! this node wait, so that nothing unsaved is shown. When operations already wait for the next turn, or this
//! node is busy and no other node committed lately, the next turn begins in the commit's round trip.
//! Catching up rebuilds, from the rows, only the pipelines that changed (plus the task ids and runners that
//! did), with `State::restore`, so the rules have one way from rows to state; what is not stored (the
//! launcher's runners, counters) stays. A turn that cannot commit is undone the same way, from the rows as last
//! committed, and every operation that saw its changes answers an error. Other nodes' commits are heard on a
//! listening connection: they wake this node's long polls of the groups named, and make the timer task catch
//! up, so that a deadline set elsewhere fires here if its node is gone. This module knows no SQL.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use dp_model::IndexMap;

use super::{Engine, Now, State, Timer};
use crate::error::Error;
use crate::store::shared::{SharedStore, Wakeup};
use crate::store::{Row, Table};

/// How long the timer task waits after hearing another node's commit before it catches up, so that a burst of
/// commits costs one read.
const COALESCE: Duration = Duration::from_millis(10);

/// How long an operation waits for this node's turn to open on the runtime's worker itself, before it hands the
/// worker to other tasks and goes on waiting (see [`Engine::turn`]).
const WAIT_ON_WORKER: Duration = Duration::from_millis(3);

/// How long the timer task waits before trying again after a turn failed (the database is unreachable).
const FAILED_TURN_PAUSE: Duration = Duration::from_millis(200);

/// The rows as this node last saw them committed, and their revision.
#[derive(Debug, Default)]
pub(super) struct Book {
    pub(super) revision: i64,
    /// Rows by table, then scope, then id, each in the order first written.
    tables: HashMap<Table, IndexMap<String, IndexMap<String, String>>>,
    /// The definition rows, parsed, so that catching up with a pipeline does not parse its definitions again.
    parsed: HashMap<(String, String), Arc<crate::definition::Definition>>,
}

impl Book {
    /// Takes committed rows in.
    fn record(&mut self, rows: &[Row], revision: i64) {
        for row in rows {
            if row.table == Table::Definitions {
                self.parsed.remove(&(row.scope.clone(), row.id.clone()));
            }
            self.tables
                .entry(row.table)
                .or_default()
                .entry(row.scope.clone())
                .or_default()
                .insert(row.id.clone(), row.body.clone());
        }
        self.revision = self.revision.max(revision);
    }

    fn get(&self, table: Table, scope: &str, id: &str) -> Option<&String> {
        self.tables.get(&table)?.get(scope)?.get(id)
    }

    fn rows(&self, table: Table) -> impl Iterator<Item = Row> + '_ {
        self.tables.get(&table).into_iter().flat_map(move |scopes| {
            scopes.iter().flat_map(move |(scope, ids)| {
                ids.iter().map(move |(id, body)| Row {
                    table,
                    scope: scope.clone(),
                    id: id.clone(),
                    body: body.clone(),
                })
            })
        })
    }

    /// Every table, as the engine loads a state.
    fn all(&self) -> HashMap<Table, Vec<Row>> {
        Table::ALL
            .iter()
            .map(|t| (*t, self.rows(*t).collect()))
            .collect()
    }

    /// Makes the parts of `state` that `keys` name (their pipelines, task ids, runners, and the meta rows) what
    /// the book holds: rows another node committed are taken in this way (`caught`: `keys` are those rows, and
    /// the rest of the state is as committed), and the changes of a turn that did not commit are undone. A
    /// pipeline is rebuilt from all its rows, except, when `caught`, one whose pipeline and definition rows did
    /// not change: its changed instances and attempts are taken in one by one.
    fn rebuild(
        &mut self,
        state: &mut State,
        keys: &[Row],
        origin: super::Origin,
        caught: bool,
    ) -> Result<(), Error> {
        let mut touched: HashSet<String> = HashSet::new();
        let mut tasks: Vec<&str> = Vec::new();
        let mut runners: Vec<&str> = Vec::new();
        for row in keys {
            match row.table {
                Table::Pipelines => {
                    touched.insert(row.id.clone());
                }
                Table::Definitions | Table::Instances | Table::Attempts => {
                    touched.insert(row.scope.clone());
                }
                Table::Tasks => {
                    tasks.push(&row.id);
                    let body = self
                        .get(Table::Tasks, &row.scope, &row.id)
                        .unwrap_or(&row.body);
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
                        && let Some(p) = v["pipeline"].as_str()
                    {
                        touched.insert(p.to_string());
                    }
                }
                Table::Runners => runners.push(&row.id),
                Table::Meta => {}
            }
        }
        let of_touched = |pid: &str| touched.contains(pid);
        state.timers.retain(|_, t| !of_touched(timer_pipeline(t)));
        for queue in state.queues.values_mut() {
            queue.retain(|(pid, _)| !of_touched(pid));
        }
        // The pipelines whose rows are taken in one by one; the others are rebuilt whole.
        let mut whole = touched.clone();
        if caught {
            let mut rows_of: HashMap<&str, Vec<&Row>> = HashMap::new();
            for row in keys {
                if matches!(row.table, Table::Instances | Table::Attempts) {
                    rows_of.entry(row.scope.as_str()).or_default().push(row);
                }
            }
            let candidates: Vec<String> = touched
                .iter()
                .filter(|pid| state.pipelines.contains_key(pid.as_str()))
                .filter(|pid| {
                    !keys.iter().any(|r| {
                        (r.table == Table::Pipelines && &r.id == *pid)
                            || (r.table == Table::Definitions && &r.scope == *pid)
                    })
                })
                .cloned()
                .collect();
            for pid in candidates {
                let rows = rows_of.remove(pid.as_str()).unwrap_or_default();
                if state.apply_rows(&pid, &rows, origin)? {
                    whole.remove(&pid);
                    #[cfg(debug_assertions)]
                    self.check_applied(state, &pid, origin);
                }
            }
        }
        let touched = whole;
        let mut tables = self.pipeline_rows(&touched);
        let kept = |table: Table, ids: &[&str]| -> Vec<Row> {
            ids.iter()
                .filter_map(|id| {
                    self.get(table, "", id).map(|body| Row {
                        table,
                        scope: String::new(),
                        id: id.to_string(),
                        body: body.clone(),
                    })
                })
                .collect()
        };
        // A task of a pipeline taken in row by row is set here; the others come with their pipelines.
        let mut direct: Vec<(&str, String, String)> = Vec::new();
        let mut restored: Vec<&str> = Vec::new();
        for id in &tasks {
            let of = self
                .get(Table::Tasks, "", id)
                .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok())
                .and_then(|v| {
                    Some((
                        v["pipeline"].as_str()?.to_string(),
                        v["attempt"].as_str()?.to_string(),
                    ))
                });
            match of {
                Some((pid, aid)) if !touched.contains(&pid) => direct.push((id, pid, aid)),
                _ => restored.push(id),
            }
        }
        tables.insert(Table::Tasks, kept(Table::Tasks, &restored));
        tables.insert(Table::Runners, kept(Table::Runners, &runners));
        let mut fresh = State::restore_with(tables, origin, &mut self.parsed)?;

        let of_touched = |pid: &str| touched.contains(pid);
        state.by_unique.retain(|_, pid| !of_touched(pid));
        for pid in &touched {
            match fresh.pipelines.shift_remove(pid) {
                Some(p) => {
                    state.pipelines.insert(pid.clone(), p);
                }
                // Made by the turn being undone: it was never committed.
                None => {
                    state.pipelines.shift_remove(pid);
                }
            }
        }
        state.by_unique.extend(fresh.by_unique.drain());
        for id in restored {
            match fresh.tasks.remove(id) {
                Some(t) => state.tasks.insert(id.to_string(), t),
                None => state.tasks.remove(id),
            };
        }
        for (id, pid, aid) in direct {
            if !state
                .pipelines
                .get(&pid)
                .is_some_and(|p| p.attempts.contains_key(&aid))
            {
                return Err(Error::new(
                    crate::error::ErrorKind::State,
                    format!("the database has task {id} of an unknown attempt"),
                ));
            }
            state.tasks.insert(id.to_string(), (pid, aid));
        }
        for id in runners {
            match fresh.runners.shift_remove(id) {
                Some(r) => state.runners.insert(id.to_string(), r),
                None => state.runners.shift_remove(id),
            };
        }
        state.stopped_groups = std::mem::take(&mut fresh.stopped_groups);
        for ((at, _), timer) in std::mem::take(&mut fresh.timers) {
            state.add_timer(at, timer);
        }
        for (group, queue) in fresh.queues.drain() {
            state.queues.entry(group).or_default().extend(queue);
        }
        state.timers_changed = true;
        Ok(())
    }

    /// The meta rows, and every row of the pipelines `pids` (pipelines in the order they were first written, so
    /// that new ones join the state in that order), as [`State::restore`] takes them.
    fn pipeline_rows(&self, pids: &HashSet<String>) -> HashMap<Table, Vec<Row>> {
        let ordered: Vec<String> = self
            .tables
            .get(&Table::Pipelines)
            .and_then(|s| s.get(""))
            .map(|ids| {
                ids.keys()
                    .filter(|id| pids.contains(*id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut tables: HashMap<Table, Vec<Row>> = HashMap::new();
        tables.insert(Table::Meta, self.rows(Table::Meta).collect());
        tables.insert(
            Table::Pipelines,
            self.rows(Table::Pipelines)
                .filter(|r| pids.contains(&r.id))
                .collect(),
        );
        for table in [Table::Definitions, Table::Instances, Table::Attempts] {
            let mut rows = Vec::new();
            for pid in &ordered {
                if let Some(ids) = self.tables.get(&table).and_then(|s| s.get(pid)) {
                    rows.extend(ids.iter().map(|(id, body)| Row {
                        table,
                        scope: pid.clone(),
                        id: id.clone(),
                        body: body.clone(),
                    }));
                }
            }
            tables.insert(table, rows);
        }
        tables
    }

    /// In test builds: a pipeline whose changed rows were taken in one by one equals the one rebuilt from all
    /// its rows (instances and attempts, in order).
    #[cfg(debug_assertions)]
    fn check_applied(&mut self, state: &State, pid: &str, origin: super::Origin) {
        let tables = self.pipeline_rows(&HashSet::from([pid.to_string()]));
        let fresh = State::restore_with(tables, origin, &mut self.parsed)
            .expect("the rows taken in restore");
        let (mine, theirs) = (&state.pipelines[pid], &fresh.pipelines[pid]);
        let shown = |p: &super::Pipeline| {
            let instances: Vec<String> = p
                .instances
                .values()
                .map(|i| {
                    format!(
                        "{} {:?} {:?} {:?} {:?}",
                        i.id, i.status, i.attempts, i.actual_start, i.error
                    )
                })
                .collect();
            let attempts: Vec<String> = p
                .attempts
                .iter()
                .map(|(id, a)| {
                    format!(
                        // Deadlines are stored to the millisecond: their kind is compared, not the instant.
                        "{id} {:?} {:?} {:?} {} {:?} {:?}",
                        a.status,
                        a.task_id,
                        std::mem::discriminant(&a.lease),
                        a.timer_at.is_some(),
                        a.queued,
                        a.reported
                    )
                })
                .collect();
            (instances, attempts)
        };
        assert_eq!(
            shown(mine),
            shown(theirs),
            "pipeline {pid} taken in row by row differs from its rows"
        );
    }

    /// Catches `state` up with rows committed by other nodes.
    fn catch_up(
        &mut self,
        state: &mut State,
        changes: crate::store::shared::Changes,
        origin: super::Origin,
    ) -> Result<(), Error> {
        if changes.anew {
            self.revision = 0;
            self.tables.clear();
            self.parsed.clear();
        }
        if changes.rows.is_empty() && !changes.anew {
            self.revision = self.revision.max(changes.revision);
            return Ok(());
        }
        let whole = self.revision == 0;
        self.record(&changes.rows, changes.revision);
        if whole {
            // Everything (a node that lost track after a failed undo): the whole state anew, runtime facts kept.
            let mut fresh = State::restore(self.all(), origin)?;
            let old = std::mem::take(state);
            fresh.local_resources = old.local_resources;
            fresh.max_resources = old.max_resources;
            fresh.leases_lapsed = old.leases_lapsed;
            fresh.service_runner = old.service_runner;
            fresh.live = old.live;
            fresh.launch_queue = old.launch_queue;
            fresh.timers_changed = true;
            *state = fresh;
            return Ok(());
        }
        self.rebuild(state, &changes.rows, origin, true)
    }
}

fn timer_pipeline(timer: &Timer) -> &str {
    match timer {
        Timer::Lease { pipeline, .. }
        | Timer::Retry { pipeline, .. }
        | Timer::Schedule { pipeline }
        | Timer::AttemptTimeout { pipeline, .. }
        | Timer::Late { pipeline, .. }
        | Timer::Terminate { pipeline, .. } => pipeline,
    }
}

/// Where this node's turn is. Operations that come while a turn is open join it, and those that come while one
/// begins wait to join it; those that come while one commits wait for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Idle,
    /// Waiting for the database's turn lock (reads go on meanwhile).
    Beginning,
    /// Catching up and running the operation that opened the turn.
    CatchingUp,
    /// Operations join.
    Open,
    /// Writing what the turn's operations changed.
    Committing,
}

/// How a turn ended, once it has: why it failed, or `None`. Waited for by blocking (operations outside a
/// request) or asynchronously (a request's operations, in [`Engine::durable`]).
#[derive(Debug, Default)]
pub(super) struct Ended {
    outcome: OnceLock<Option<String>>,
    told: tokio::sync::Notify,
}

impl Ended {
    /// Waits for the turn's end; why it failed, if it did.
    pub(super) async fn wait(&self) -> Option<String> {
        loop {
            let told = self.told.notified();
            tokio::pin!(told);
            told.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return outcome.clone();
            }
            told.await;
        }
    }
}

/// This node's turn, as its operations see it (group commit).
#[derive(Debug, Default)]
struct Window {
    phase: Phase,
    /// Operations waiting for the next turn to open.
    waiting: usize,
    /// Operations of the open turn running now.
    running: usize,
    members: usize,
    /// How the current (or last) turn ended: set once, to why it failed or to `None`.
    ended: Arc<Ended>,
}

/// The engine's link to a database served with other nodes.
pub(super) struct Nodes {
    /// This node's turn, and the condition its operations wait on.
    window: Mutex<Window>,
    /// Told when the turn opens or ends: operations that wait to join, to open the next one, or to read.
    opened: Condvar,
    /// Told when the last operation of the open turn is done: the operation that opened it, which commits.
    quiet: Condvar,
    /// Told when a turn ended: its operations, for the outcome.
    done: Condvar,
    store: Box<dyn SharedStore>,
    /// When another node's commit was last heard, in milliseconds since `started`, plus one (0: never).
    other_seen: AtomicU64,
    started: Instant,
    /// How many operations wait for this node's next turn (the window's count, readable without its lock).
    queued: AtomicUsize,
    /// This node's id in notifications, so that it ignores its own.
    node: u64,
    book: Mutex<Book>,
    /// Set when another node committed since the timer task last caught up.
    heard: AtomicBool,
    /// Other nodes' commits, as the listening connection hears them, until the timer task takes them.
    inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Wakeup>>>,
    /// Why the last turn that failed did.
    failure: Mutex<String>,
}

/// Counts an operation of the open turn as running until dropped, also when the operation panics.
struct Running<'a>(&'a Nodes);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut window = self.0.window();
        window.running -= 1;
        if window.running == 0 && window.waiting == 0 {
            self.0.quiet.notify_one();
        }
    }
}

/// Ends the turn of an operation that opened it and panicked: the database's turn is given up, the state is read
/// anew from the database by the next turn, and the operations that joined answer an error.
struct Leading<'a> {
    nodes: &'a Nodes,
    begun: bool,
    /// `None` once the turn ended normally.
    ended: Option<Arc<Ended>>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let Some(ended) = self.ended.take() else {
            return;
        };
        if self.begun {
            self.nodes.store.release(None);
        }
        {
            let mut book = self.nodes.book.lock().unwrap_or_else(|e| e.into_inner());
            book.revision = 0;
            book.tables.clear();
        }
        self.nodes
            .end_turn(&ended, Some("an operation failed inside dp-local".into()));
    }
}

impl Nodes {
    /// Tells the operations of the turn how it ended, and lets the next one open.
    fn end_turn(&self, ended: &Ended, failed: Option<String>) {
        let _ = ended.outcome.set(failed);
        ended.told.notify_waiters();
        let mut window = self.window();
        window.phase = Phase::Idle;
        self.done.notify_all();
        self.opened.notify_all();
    }

    /// Waits, counted as waiting for the next turn, until this node's turn opens or ends (at most `limit`).
    fn wait_for_opening<'a>(
        &self,
        mut window: MutexGuard<'a, Window>,
        limit: Option<Duration>,
    ) -> MutexGuard<'a, Window> {
        let opening = |w: &mut Window| {
            matches!(
                w.phase,
                Phase::Beginning | Phase::CatchingUp | Phase::Committing
            )
        };
        window.waiting += 1;
        self.queued.fetch_add(1, Ordering::Relaxed);
        window = match limit {
            Some(limit) => {
                self.opened
                    .wait_timeout_while(window, limit, opening)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self
                .opened
                .wait_while(window, opening)
                .unwrap_or_else(|e| e.into_inner()),
        };
        window.waiting -= 1;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        window
    }

    /// Whether no other node committed in the last second.
    fn alone(&self) -> bool {
        let seen = self.other_seen.load(Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64 + 1;
        seen == 0 || now.saturating_sub(seen) > 1000
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the last turn that failed did.
    pub(super) fn last_failure(&self) -> String {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Runs `f`, which blocks on the database, without stalling the other tasks of a multi-threaded runtime.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// What a turn did besides the operation's own result.
pub(super) struct Turned<T> {
    pub(super) out: T,
    /// Why the turn failed (the database could not be reached, or would not take its rows).
    pub(super) failed: Option<String>,
    /// The turn made changes and they were not saved: its request answers an error. A turn that changed nothing
    /// answers from the state as last committed even when the database is away (a read during an outage).
    pub(super) unsaved: bool,
    pub(super) woken: Vec<String>,
    pub(super) timers_changed: bool,
}

impl Engine {
    /// The service kept in a database that other nodes serve too: the whole state is read in one turn (which
    /// also stores the time scale when it is new), and every later operation is a turn of its own.
    pub fn open_shared(
        store: Box<dyn SharedStore>,
        time_scale: f64,
        restore_time_scale: bool,
        poll_timeout: Duration,
    ) -> Result<Engine, Error> {
        let changes = store.begin(0)?;
        let mut book = Book::default();
        book.record(&changes.rows, changes.revision);
        let tables = book.all();
        let stored_scale = tables[&Table::Meta]
            .iter()
            .find(|r| r.id == super::TIME_SCALE_ROW)
            .and_then(|r| r.body.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0);
        let scale = match stored_scale {
            Some(stored) if restore_time_scale => stored,
            _ => time_scale,
        };
        let clock = crate::clock::Clock::new(scale);
        let node = fastrand::u64(1..);
        if stored_scale != Some(clock.scale()) {
            let row = Row {
                table: Table::Meta,
                scope: String::new(),
                id: super::TIME_SCALE_ROW.into(),
                body: clock.scale().to_string(),
            };
            let revision = store.commit(std::slice::from_ref(&row), node, &[], None, false)?;
            book.record(&[row], revision);
        } else {
            store.release(None);
        }
        let origin = super::Origin::now();
        let state = State::restore(book.all(), origin)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        store.listen(Box::new(move |w| {
            let _ = tx.send(w);
        }));
        let mut engine = Engine::new(clock, poll_timeout);
        engine.origin = origin;
        *engine.state.get_mut().unwrap_or_else(|e| e.into_inner()) = state;
        engine.nodes = Some(Nodes {
            window: Mutex::new(Window::default()),
            opened: Condvar::new(),
            quiet: Condvar::new(),
            done: Condvar::new(),
            queued: AtomicUsize::new(0),
            other_seen: AtomicU64::new(0),
            started: Instant::now(),
            store,
            node,
            book: Mutex::new(book),
            heard: AtomicBool::new(false),
            inbox: Mutex::new(Some(rx)),
            failure: Mutex::new(String::new()),
        });
        // Deadlines that passed while no node served take effect before the first request is served.
        engine.with(|s, now| s.fire_timers(now));
        Ok(engine)
    }

    /// Whether this engine serves a database together with other nodes.
    pub fn is_shared(&self) -> bool {
        self.nodes.is_some()
    }

    /// One operation in a turn: `f` joins the turn this node has open, if any, or opens one. The turn commits
    /// (or undoes) the rows of every operation that joined it, and each answers after that.
    pub(super) fn turn<T>(&self, f: impl FnOnce(&mut State, Now) -> T) -> Turned<T> {
        let nodes = self.nodes.as_ref().expect("only for shared engines");
        // Joining an open turn takes two short locks, and a turn opens within a round trip or two: both are
        // done on the calling thread. Leading a turn, and a longer wait (the database is slow or away), leave
        // the runtime's worker to other tasks first.
        let mut window = nodes.window();
        let mut waited = Duration::ZERO;
        loop {
            match window.phase {
                Phase::Open => return self.join(nodes, window, f),
                Phase::Idle => break,
                _ if waited < WAIT_ON_WORKER => {
                    let started = Instant::now();
                    window = nodes.wait_for_opening(window, Some(WAIT_ON_WORKER - waited));
                    waited += started.elapsed();
                }
                _ => break,
            }
        }
        drop(window);
        blocking(|| {
            let mut window = nodes.window();
            loop {
                match window.phase {
                    Phase::Open => return self.join(nodes, window, f),
                    Phase::Idle => return self.lead(nodes, window, f),
                    _ => window = nodes.wait_for_opening(window, None),
                }
            }
        })
    }

    /// Runs `f` in the turn another operation opened, then waits for that turn's end.
    fn join<T>(
        &self,
        nodes: &Nodes,
        mut window: MutexGuard<'_, Window>,
        f: impl FnOnce(&mut State, Now) -> T,
    ) -> Turned<T> {
        window.running += 1;
        window.members += 1;
        let ended = window.ended.clone();
        drop(window);
        let running = Running(nodes);
        let (out, saw_changes) = {
            let mut state = self.lock();
            // Read after the lock is held, so that time never runs backwards from one operation to the next.
            let now = self.now();
            let out = f(&mut state, now);
            (out, !state.dirty.is_empty())
        };
        drop(running);
        // Inside a request, its answer waits for the turn's end (`Engine::durable`), without holding a thread.
        if super::await_turn(&ended, saw_changes) {
            return Turned {
                out,
                failed: None,
                unsaved: false,
                woken: Vec::new(),
                timers_changed: false,
            };
        }
        let failed = blocking(|| {
            let window = nodes.window();
            let window = nodes
                .done
                .wait_while(window, |_| ended.outcome.get().is_none())
                .unwrap_or_else(|e| e.into_inner());
            drop(window);
            ended.outcome.get().cloned().flatten()
        });
        Turned {
            out,
            unsaved: failed.is_some() && saw_changes,
            failed,
            woken: Vec::new(),
            timers_changed: false,
        }
    }

    /// Opens a turn: takes the database's turn lock and catches up, runs `f`, lets every operation that waits
    /// join, then commits all their rows at once (group commit), or undoes them.
    fn lead<T>(
        &self,
        nodes: &Nodes,
        mut window: MutexGuard<'_, Window>,
        f: impl FnOnce(&mut State, Now) -> T,
    ) -> Turned<T> {
        window.phase = Phase::Beginning;
        window.members = 1;
        let ended = Arc::new(Ended::default());
        window.ended = ended.clone();
        drop(window);
        let mut leading = Leading {
            nodes,
            begun: false,
            ended: Some(ended.clone()),
        };
        // The database's lock is waited for without the state lock, so that reads go on meanwhile.
        let since = nodes
            .book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .revision;
        let begun = nodes.store.begin(since);
        let begun_ok = begun.is_ok();
        leading.begun = begun_ok;
        // From here until the turn ends, the state may hold changes not committed yet: reads wait.
        nodes.window().phase = Phase::CatchingUp;
        let mut failed = None;
        let (out, saw_changes) = {
            let mut state = self.lock();
            let mut book = nodes.book.lock().unwrap_or_else(|e| e.into_inner());
            match begun {
                Ok(changes) => {
                    if let Err(e) = book.catch_up(&mut state, changes, self.origin) {
                        failed = Some(e.message);
                    }
                }
                Err(e) => failed = Some(e.message),
            }
            let now = self.now();
            let out = f(&mut state, now);
            (out, !state.dirty.is_empty())
        };
        let mut window = nodes.window();
        window.phase = Phase::Open;
        nodes.opened.notify_all();
        window = nodes
            .quiet
            .wait_while(window, |w| w.waiting > 0 || w.running > 0)
            .unwrap_or_else(|e| e.into_inner());
        window.phase = Phase::Committing;
        let members = window.members;
        drop(window);

        let (woken, timers_changed) = {
            let mut state = self.lock();
            let mut book = nodes.book.lock().unwrap_or_else(|e| e.into_inner());
            let rows = if state.dirty.is_empty() {
                Vec::new()
            } else {
                state.take_rows(self.origin)
            };
            let mut woken: Vec<String> = state.woken.drain().collect();
            woken.sort();
            // The next turn begins in this one's round trip when operations already wait for it, or when this
            // node is busy and no other node was heard of lately (the lock it then holds ahead keeps nobody
            // waiting, and the store gives it up if no operation comes soon).
            let busy = members > 1 && nodes.alone();
            let next = |revision: i64| {
                (busy || (nodes.queued.load(Ordering::Relaxed) > 0)).then_some(revision)
            };
            if begun_ok {
                if failed.is_some() || rows.is_empty() {
                    nodes
                        .store
                        .release(next(book.revision).filter(|_| failed.is_none()));
                } else {
                    match nodes.store.commit(
                        &rows,
                        nodes.node,
                        &woken,
                        next(book.revision + 1),
                        nodes.alone(),
                    ) {
                        Ok(revision) => book.record(&rows, revision),
                        Err(e) => failed = Some(e.message),
                    }
                }
            }
            if let Some(reason) = &failed {
                *nodes.failure.lock().unwrap_or_else(|e| e.into_inner()) = reason.clone();
                // Decided on a state that is not saved: undone, and nothing of it reaches the launcher or pollers.
                if !rows.is_empty()
                    && let Err(e) = book.rebuild(&mut state, &rows, self.origin, false)
                {
                    eprintln!(
                        "dp-local: cannot undo a change that was not saved ({e}); reading the whole state again"
                    );
                    book.revision = 0;
                    book.tables.clear();
                }
                state.commands.clear();
                woken.clear();
            }
            self.hand_commands(&mut state);
            (woken, std::mem::take(&mut state.timers_changed))
        };
        leading.ended = None;
        nodes.end_turn(&ended, failed.clone());
        Turned {
            out,
            unsaved: failed.is_some() && saw_changes,
            failed,
            woken,
            timers_changed,
        }
    }

    /// The state lock, taken while no turn of this node has changes that are not committed yet, so that what
    /// is read was saved.
    fn settled(&self, nodes: &Nodes) -> MutexGuard<'_, State> {
        let window = nodes.window();
        let window = nodes
            .opened
            .wait_while(window, |w| {
                matches!(w.phase, Phase::CatchingUp | Phase::Open | Phase::Committing)
            })
            .unwrap_or_else(|e| e.into_inner());
        // Taken before the window's lock is let go, so that no turn opens in between.
        let state = self.lock();
        drop(window);
        state
    }

    /// Runs `f`, which only reads, on the state: with other nodes, after catching up from one snapshot of the
    /// database (one round trip, no turn lock, so reads do not wait for other nodes' changes); when the database
    /// cannot be read, on the state as last committed.
    pub(super) fn read<T>(&self, f: impl FnOnce(&mut State, Now) -> T) -> T {
        let Some(nodes) = &self.nodes else {
            return self.with(f);
        };
        blocking(|| {
            let mut state = self.settled(nodes);
            let mut book = nodes.book.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(changes) = nodes.store.changes(book.revision) {
                // A catch-up that fails leaves the state as it was; the next turn tries again.
                let _ = book.catch_up(&mut state, changes, self.origin);
            }
            let now = self.now();
            let out = f(&mut state, now);
            if !state.dirty.is_empty() {
                // A read changes nothing; if one did, memory goes back to what the database holds.
                let rows = state.take_rows(self.origin);
                if book.rebuild(&mut state, &rows, self.origin, false).is_err() {
                    book.revision = 0;
                    book.tables.clear();
                }
            }
            state.woken.clear();
            state.commands.clear();
            out
        })
    }

    /// Catches up with what other nodes committed, without a turn.
    fn refresh(&self) -> Result<(), Error> {
        let Some(nodes) = &self.nodes else {
            return Ok(());
        };
        blocking(|| {
            let mut state = self.settled(nodes);
            let mut book = nodes.book.lock().unwrap_or_else(|e| e.into_inner());
            let caught = nodes
                .store
                .changes(book.revision)
                .and_then(|changes| book.catch_up(&mut state, changes, self.origin));
            if caught.is_err() {
                // Tried again later; a turn meanwhile catches up by itself (or fails and says so).
                nodes.heard.store(true, Ordering::Relaxed);
            }
            std::mem::take(&mut state.timers_changed);
            caught
        })
    }

    /// Another node's commit: wake the long polls of the groups that got work, and let the timer task catch up.
    fn heard(&self, wakeup: Wakeup) {
        let Some(nodes) = &self.nodes else {
            return;
        };
        if wakeup.node == nodes.node {
            return;
        }
        let waiting: Vec<Arc<tokio::sync::Notify>> = {
            let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            match &wakeup.groups {
                Some(names) => names
                    .iter()
                    .filter_map(|g| groups.get(g).cloned())
                    .collect(),
                None => groups.values().cloned().collect(),
            }
        };
        for notify in waiting {
            notify.notify_waiters();
        }
        if wakeup.node != 0 {
            let ms = nodes.started.elapsed().as_millis() as u64 + 1;
            nodes.other_seen.store(ms, Ordering::Relaxed);
        }
        nodes.heard.store(true, Ordering::Relaxed);
        self.timer.notify_one();
    }

    /// The timer task of a shared engine: fires due deadlines in turns (after catching up, so that a deadline
    /// another node already acted on is gone), and catches up when other nodes commit, so that it knows their
    /// deadlines too. Also hands other nodes' wake-ups to this node's long polls.
    pub(super) async fn run_shared_timers(self: Arc<Self>) {
        let nodes = self.nodes.as_ref().expect("only for shared engines");
        if let Some(mut inbox) = nodes.inbox.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let engine = Arc::downgrade(&self);
            tokio::spawn(async move {
                while let Some(wakeup) = inbox.recv().await {
                    match engine.upgrade() {
                        Some(engine) => engine.heard(wakeup),
                        None => break,
                    }
                }
            });
        }
        // Whether a failure to reach the database was said, so that an outage is one line, not one per try.
        let mut told = false;
        loop {
            if nodes.heard.swap(false, Ordering::Relaxed) {
                tokio::time::sleep(COALESCE).await;
                nodes.heard.store(false, Ordering::Relaxed);
                match self.refresh() {
                    Ok(()) => told = false,
                    Err(e) => {
                        if !told {
                            eprintln!(
                                "dp-local: cannot read other nodes' changes ({e}); trying again"
                            );
                            told = true;
                        }
                        tokio::time::sleep(FAILED_TURN_PAUSE).await;
                    }
                }
            }
            let next = self.lock().timers.keys().next().map(|(at, _)| *at);
            if next.is_some_and(|at| at <= Instant::now()) {
                let turned = self.turn(|s, now| s.fire_timers(now));
                self.after_turn(&turned.woken, turned.timers_changed);
                if let Some(reason) = turned.failed {
                    if !told {
                        eprintln!("dp-local: deadlines wait for the database: {reason}");
                        told = true;
                    }
                    tokio::time::sleep(FAILED_TURN_PAUSE).await;
                } else {
                    told = false;
                }
                continue;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = self.timer.notified() => {}
                    }
                }
                None => self.timer.notified().await,
            }
        }
    }
}
