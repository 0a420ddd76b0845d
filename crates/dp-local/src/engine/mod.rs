//! The service's state and rules: pipelines, definitions, instances, attempts and the task leases.
//!
//! All state sits behind one mutex; every operation is a short synchronous function over the private `State`, so requests
//! never observe a half-applied change. The only waiting happens outside the lock: a poller waits on its worker
//! group's [`Notify`], and the timer task sleeps until the next lease, retry or schedule deadline. A task (an
//! attempt) is taken from its worker group's queue under the lock, which is what makes every hand-out unique.
//! This module knows nothing of HTTP, signatures or SQL.
//!
//! This file holds the types, the [`Engine`] (one method per operation) and the lock; each part of the service
//! has its own module of `State` methods: `pipelines` (pipelines and tags), `definitions` (validation results),
//! `schedules` (activation, schedules, dependencies), `tasks` (attempts, queues, leases, reports), `status`
//! (set-status, deactivation), `objects` (describe, query, expressions). Each operation marks the rows it changed
//! (`Dirty`); `records` turns them into [`crate::store::Row`]s for the writer, and back into a `State` at start.

mod actions;
mod definitions;
mod nodes;
mod objects;
mod pipelines;
mod records;
mod resources;
mod schedules;
mod status;
mod tasks;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dp_model::IndexMap;
use dp_model::timestamp::format_utc;
use dp_model::types::*;
use tokio::sync::Notify;

use crate::clock::{self, Clock};
use crate::definition::{self, Definition, Role, ScheduleType};
use crate::error::{Error, ServiceError};
use crate::expr::{self, Context, FieldValue};
use crate::schedule::Period;
use crate::store::{Batch, Row, Store, Table, Writer};
use definitions::*;
use objects::*;
use records::Origin;
pub use resources::{ResourceCommand, SERVICE_GROUP};

type Result<T> = std::result::Result<T, ServiceError>;

/// Most instances one schedule creates in one step (a guard against huge back-fills).
pub const MAX_BACKFILL: usize = 1000;
const PAGE_SIZE: usize = 100;
const MAX_TAGS: usize = 10;

/// The status of an instance or attempt, as `@status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the instances it depends on.
    WaitingOnDependencies,
    /// Ready, waiting for a task runner to poll.
    WaitingForRunner,
    /// A resource whose local runner is being started (or waits for a free slot under `--max-resources`).
    Creating,
    /// Handed to a task runner (a resource: its runner polls for work).
    Running,
    /// Ended successfully (or marked finished).
    Finished,
    /// Ended in failure with no retries left.
    Failed,
    /// Cancelled by a user or by deactivation.
    Canceled,
    /// A dependency failed (failureAndRerunMode cascade).
    CascadeFailed,
    /// The runner stopped reporting progress.
    TimedOut,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::WaitingOnDependencies => "WAITING_ON_DEPENDENCIES",
            Status::WaitingForRunner => "WAITING_FOR_RUNNER",
            Status::Creating => "CREATING",
            Status::Running => "RUNNING",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Canceled => "CANCELED",
            Status::CascadeFailed => "CASCADE_FAILED",
            Status::TimedOut => "TIMEDOUT",
        }
    }

    /// Whether the object has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Finished
                | Status::Failed
                | Status::Canceled
                | Status::CascadeFailed
                | Status::TimedOut
        )
    }

    fn is_failure(self) -> bool {
        self.is_terminal() && self != Status::Finished
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PipelineState {
    Pending,
    Scheduled,
    Paused,
}

#[derive(Debug, Clone, Default)]
struct ErrorInfo {
    id: Option<String>,
    message: Option<String>,
    stack_trace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    Free,
    Acknowledge(Instant),
    Progress(Instant),
}

#[derive(Debug)]
struct Instance {
    id: String,
    component: String,
    scheduled_start: i64,
    scheduled_end: Option<i64>,
    status: Status,
    paused: bool,
    actual_start: Option<i64>,
    actual_end: Option<i64>,
    attempts: Vec<String>,
    max_attempts: u32,
    depends_on: Vec<String>,
    worker_group: Option<String>,
    progress_timeout: Duration,
    retry_delay: Duration,
    cascade: bool,
    error: Option<ErrorInfo>,
    definition: Arc<Definition>,
    /// Which activation's definition `definition` is (its row is `active/N`).
    activation: u32,
    /// `onSuccess`/`onFail`/`onLateAction` actions taken, as `@event` shows them.
    events: Vec<String>,
    /// When the instance is late (`lateAfterTimeout`) unless it has ended by then.
    late_at: Option<Instant>,
    /// The resource instance it runs on (`runsOn`, with local resources).
    runs_on: Option<String>,
    /// A precondition instance: the instance whose run it guards.
    owner: Option<String>,
    /// A precondition instance: when `preconditionTimeout` runs out and a check that does not hold ends it.
    give_up_at: Option<Instant>,
}

#[derive(Debug)]
struct Attempt {
    instance: String,
    number: u32,
    status: Status,
    actual_start: Option<i64>,
    actual_end: Option<i64>,
    hostname: Option<String>,
    task_id: Option<String>,
    lease: Lease,
    timer_at: Option<Instant>,
    not_before: Option<Instant>,
    queued: bool,
    ended_by_runner: bool,
    error: Option<ErrorInfo>,
    reported: Vec<Field>,
    last_report: Option<i64>,
    /// When a handed-out attempt times out under the activity's `attemptTimeout`, counted from its first hand-out.
    run_deadline: Option<Instant>,
    /// A resource attempt: the local runner that stands in for it (`local-<pid>`), once launched.
    resource_id: Option<String>,
}

#[derive(Debug)]
struct Cursor {
    next: i64,
    period: Period,
    end: Option<i64>,
    remaining: Option<u32>,
    cron: bool,
}

impl Cursor {
    fn due(&self) -> i64 {
        if self.cron {
            self.next
        } else {
            self.period.advance(self.next, 1).unwrap_or(i64::MAX)
        }
    }

    fn exhausted(&self) -> bool {
        self.remaining == Some(0)
            || self.end.is_some_and(|e| self.next >= e)
            || self.period.advance(self.next, 1).is_none()
    }
}

#[derive(Debug)]
struct Pipeline {
    id: String,
    name: String,
    unique_id: String,
    description: Option<String>,
    tags: Vec<Tag>,
    created: i64,
    deleted: bool,
    state: PipelineState,
    latest: Option<Arc<Definition>>,
    latest_version: u32,
    active: Option<Arc<Definition>>,
    active_version: u32,
    /// How many times the pipeline was activated; the active definition is stored as `active/N`.
    activation: u32,
    first_activation: Option<i64>,
    last_activation: Option<i64>,
    last_deactivation: Option<i64>,
    last_run: i64,
    instances: IndexMap<String, Instance>,
    attempts: IndexMap<String, Attempt>,
    dependents: HashMap<String, Vec<String>>,
    by_component: HashMap<String, Vec<String>>,
    paused_components: HashSet<String>,
    cursors: IndexMap<String, Cursor>,
    schedule_timer: Option<Instant>,
}

impl Pipeline {
    fn definition(&self) -> Option<&Arc<Definition>> {
        self.active.as_ref().or(self.latest.as_ref())
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            PipelineState::Pending => "PENDING",
            PipelineState::Paused => "PAUSED",
            PipelineState::Scheduled => {
                let done = !self.instances.is_empty()
                    && self.instances.values().all(|i| i.status.is_terminal())
                    && self.cursors.values().all(Cursor::exhausted);
                if done { "FINISHED" } else { "SCHEDULED" }
            }
        }
    }
}

/// A task runner that sent a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// Its `taskrunnerId`.
    pub id: String,
    /// The worker group it named, if any.
    pub worker_group: Option<String>,
    /// The host name it named, if any.
    pub hostname: Option<String>,
    /// When it last reported, epoch seconds.
    pub last_heartbeat: i64,
    /// How many heartbeats it sent.
    pub heartbeats: u64,
}

#[derive(Debug, Clone)]
enum Timer {
    Lease {
        pipeline: String,
        attempt: String,
    },
    Retry {
        pipeline: String,
        attempt: String,
    },
    Schedule {
        pipeline: String,
    },
    AttemptTimeout {
        pipeline: String,
        attempt: String,
    },
    Late {
        pipeline: String,
        instance: String,
    },
    /// A resource attempt's `terminateAfter` ran out.
    Terminate {
        pipeline: String,
        attempt: String,
    },
}

/// Everything the service knows.
#[derive(Debug, Default)]
struct State {
    pipelines: IndexMap<String, Pipeline>,
    by_unique: HashMap<(String, String), String>,
    tasks: HashMap<String, (String, String)>,
    queues: HashMap<String, VecDeque<(String, String)>>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    timers_changed: bool,
    runners: IndexMap<String, Runner>,
    woken: HashSet<String>,
    dirty: Dirty,
    stopped_groups: std::collections::BTreeSet<String>,
    /// Resources: launch dp-task-runner processes for them (else activities need a `workerGroup`).
    local_resources: bool,
    /// The most resource runners alive at once; later ones wait in `CREATING`.
    max_resources: usize,
    /// Resource attempts waiting for a free slot, in order.
    launch_queue: VecDeque<(String, String)>,
    /// Resource attempts whose runner was asked for and not yet released.
    live: HashSet<(String, String)>,
    /// Whether dp-local's own runner (for system-managed preconditions) was launched and has not exited.
    service_runner: bool,
    /// What the launcher is to do, in order; handed to it after each operation.
    commands: Vec<ResourceCommand>,
    /// Leases that lapsed since start (not acknowledged in time, or no progress report in time), for metrics.
    leases_lapsed: u64,
}

/// The rows an operation changed, collected while it runs when the state is kept in a store.
#[derive(Debug, Default)]
struct Dirty {
    enabled: bool,
    pipelines: IndexMap<String, ()>,
    definitions: IndexMap<(String, String), ()>,
    instances: IndexMap<(String, String), ()>,
    attempts: IndexMap<(String, String), ()>,
    tasks: Vec<(String, String, String)>,
    runners: IndexMap<String, ()>,
    /// The meta rows (stopped worker groups) changed.
    meta: bool,
}

impl Dirty {
    fn pipeline(&mut self, pid: &str) {
        if self.enabled {
            self.pipelines.insert(pid.to_string(), ());
        }
    }

    fn definition(&mut self, pid: &str, name: String) {
        if self.enabled {
            self.definitions.insert((pid.to_string(), name), ());
        }
    }

    fn instance(&mut self, pid: &str, iid: &str) {
        if self.enabled {
            self.instances
                .insert((pid.to_string(), iid.to_string()), ());
        }
    }

    fn attempt(&mut self, pid: &str, aid: &str) {
        if self.enabled {
            self.attempts.insert((pid.to_string(), aid.to_string()), ());
        }
    }

    fn task(&mut self, task_id: &str, pid: &str, aid: &str) {
        if self.enabled {
            self.tasks
                .push((task_id.to_string(), pid.to_string(), aid.to_string()));
        }
    }

    fn runner(&mut self, id: &str) {
        if self.enabled {
            self.runners.insert(id.to_string(), ());
        }
    }

    fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
            && self.definitions.is_empty()
            && self.instances.is_empty()
            && self.attempts.is_empty()
            && self.tasks.is_empty()
            && self.runners.is_empty()
            && !self.meta
    }
}

/// The service: state behind a mutex, plus the wake-up machinery for pollers and the timer task, and the writer
/// of the state file when there is one.
#[derive(Debug)]
pub struct Engine {
    clock: Clock,
    poll_timeout: Duration,
    state: Mutex<State>,
    groups: Mutex<HashMap<String, Arc<Notify>>>,
    timer: Notify,
    origin: Origin,
    /// The sequence number of the last batch handed to the writer (written under the state lock).
    sent: AtomicU64,
    /// The first sequence number of the state in memory: after a failed commit the engine reloads the committed
    /// state, and batches before this one no longer concern what it serves (written under the state lock).
    since: AtomicU64,
    writer: Option<Writer>,
    launcher: Mutex<Option<tokio::sync::mpsc::UnboundedSender<ResourceCommand>>>,
    /// Set when the state is kept in a database that several nodes serve: every operation is then a turn
    /// (`nodes.rs`) instead of a batch for the writer.
    nodes: Option<nodes::Nodes>,
}

tokio::task_local! {
    /// What the request being answered saw of the state: the first `since` and the last sequence number of its
    /// operations (see [`Engine::durable`]).
    static OBSERVED: std::cell::Cell<Option<(u64, u64)>>;
}

tokio::task_local! {
    /// The turns of other nodes' database (`nodes.rs`) that the request's operations joined and did not wait
    /// for, each with whether the state the operation saw had changes of that turn: [`Engine::durable`] waits.
    static JOINED: std::cell::RefCell<Vec<(Arc<nodes::Ended>, bool)>>;
}

/// Runs `request` keeping track of the state its operations see, so that [`Engine::durable`] fails exactly when
/// that state was not saved.
pub async fn observe<T>(request: impl std::future::Future<Output = T>) -> T {
    JOINED
        .scope(
            std::cell::RefCell::new(Vec::new()),
            OBSERVED.scope(std::cell::Cell::new(None), request),
        )
        .await
}

/// Leaves the wait for a turn's end to [`Engine::durable`] when inside a request; false outside one.
fn await_turn(ended: &Arc<nodes::Ended>, saw_changes: bool) -> bool {
    JOINED
        .try_with(|j| j.borrow_mut().push((ended.clone(), saw_changes)))
        .is_ok()
}

/// What [`OBSERVED`] holds once one of the request's turns failed (`nodes.rs`): no answer but an error.
const TURN_FAILED: (u64, u64) = (u64::MAX, u64::MAX);

/// The meta row that keeps the time scale.
const TIME_SCALE_ROW: &str = "timeScale";

/// What an operation sees of the clock, read once per operation.
#[derive(Debug, Clone, Copy)]
struct Now {
    epoch: i64,
    /// The same wall-clock moment in milliseconds (schedule time is computed from it).
    epoch_ms: i64,
    instant: Instant,
    clock: Clock,
}

impl Now {
    /// The same clock at `at`, an instant that has passed (a deadline that fell while dp-local was down, or a
    /// moment ago): the wall-clock fields go back by the time since, so what happened at the deadline is dated
    /// then and the delays that follow it (a retry's) count from then.
    fn at(self, at: Instant) -> Now {
        let since = self.instant.saturating_duration_since(at);
        let epoch_ms = self.epoch_ms - i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 2);
        Now {
            epoch: epoch_ms.div_euclid(1000),
            epoch_ms,
            instant: self.instant.min(at),
            clock: self.clock,
        }
    }
}

fn text(key: &str, value: impl Into<String>) -> Field {
    Field {
        key: key.into(),
        string_value: Some(value.into()),
        ref_value: None,
    }
}

fn reference(key: &str, id: impl Into<String>) -> Field {
    Field {
        key: key.into(),
        string_value: None,
        ref_value: Some(id.into()),
    }
}

fn random_id(len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect()
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Engine {
    /// An empty service that keeps its state in memory.
    pub fn new(clock: Clock, poll_timeout: Duration) -> Self {
        Engine {
            clock,
            poll_timeout,
            state: Mutex::new(State::default()),
            groups: Mutex::new(HashMap::new()),
            timer: Notify::new(),
            origin: Origin::now(),
            sent: AtomicU64::new(0),
            since: AtomicU64::new(1),
            writer: None,
            launcher: Mutex::new(None),
            nodes: None,
        }
    }

    /// The service kept in `store`: its state is loaded (lease deadlines as stored instants, so time spent down
    /// counts), and every later change is written before the request that made it is answered. The time scale
    /// is `time_scale`, or the stored one when `restore_time_scale` is set and the store has one.
    pub fn open(
        mut store: Box<dyn Store>,
        time_scale: f64,
        restore_time_scale: bool,
        poll_timeout: Duration,
    ) -> std::result::Result<Engine, Error> {
        let mut tables = HashMap::new();
        for table in Table::ALL {
            tables.insert(table, store.load(table)?);
        }
        let stored_scale = tables[&Table::Meta]
            .iter()
            .find(|r| r.id == TIME_SCALE_ROW)
            .and_then(|r| r.body.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0);
        let scale = match stored_scale {
            Some(stored) if restore_time_scale => stored,
            _ => time_scale,
        };
        let clock = Clock::new(scale);
        if stored_scale != Some(clock.scale()) {
            store.commit(&[Row {
                table: Table::Meta,
                scope: String::new(),
                id: TIME_SCALE_ROW.into(),
                body: clock.scale().to_string(),
            }])?;
        }
        let origin = Origin::now();
        let state = State::restore(tables, origin)?;
        let writer = Writer::start(store)?;
        let engine = Engine {
            clock,
            poll_timeout,
            state: Mutex::new(state),
            groups: Mutex::new(HashMap::new()),
            timer: Notify::new(),
            origin,
            sent: AtomicU64::new(0),
            since: AtomicU64::new(1),
            writer: Some(writer),
            launcher: Mutex::new(None),
            nodes: None,
        };
        // Deadlines that passed while dp-local was stopped take effect before the first request is served.
        engine.with(|s, now| s.fire_timers(now));
        Ok(engine)
    }

    /// Checks that `store` holds a state this engine can load (used by import before it keeps a file).
    pub fn check(store: &mut dyn Store) -> std::result::Result<(), Error> {
        let mut tables = HashMap::new();
        for table in Table::ALL {
            tables.insert(table, store.load(table)?);
        }
        State::restore(tables, Origin::now()).map(|_| ())
    }

    /// How many task leases lapsed since this engine started (`GET /metrics`).
    pub fn leases_lapsed(&self) -> u64 {
        self.lock().leases_lapsed
    }

    /// The time scale in force.
    pub fn time_scale(&self) -> f64 {
        self.clock.scale()
    }

    /// Waits until every change made so far is durable, so that an answer never reports state that a crash
    /// could lose, and fails when the state the request saw was not saved (a failed commit, rolled back). Inside
    /// [`observe`] it asks about the state the request's own operations saw (nothing, for a request refused before
    /// it reached the state); elsewhere about all changes so far.
    /// In memory this returns at once.
    pub async fn durable(&self) -> Result<()> {
        if let Some(nodes) = &self.nodes {
            // The turns the request's operations joined and left to the answer to wait for.
            let joined = JOINED
                .try_with(|j| std::mem::take(&mut *j.borrow_mut()))
                .unwrap_or_default();
            let mut unsaved = None;
            for (ended, saw_changes) in joined {
                if let Some(reason) = ended.wait().await
                    && saw_changes
                {
                    unsaved.get_or_insert(reason);
                }
            }
            if let Some(reason) = unsaved {
                return Err(ServiceError::internal(format!(
                    "dp-local could not save its state, so this change was not made: {reason}"
                )));
            }
            // Turns an operation opened (or waited for) ended before it returned; whether one failed is noted.
            let failed = OBSERVED.try_with(|o| o.get()).ok().flatten() == Some(TURN_FAILED);
            return match failed {
                false => Ok(()),
                true => Err(ServiceError::internal(format!(
                    "dp-local could not save its state, so this change was not made: {}",
                    nodes.last_failure()
                ))),
            };
        }
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let (since, seq) = match OBSERVED.try_with(|o| o.get()) {
            Ok(Some(seen)) => seen,
            // A request refused before it reached the state saw nothing that must be saved.
            Ok(None) => return Ok(()),
            Err(_) => {
                // Outside a request (the readiness check): a pending reload is tried first, so readiness comes
                // back once the store answers again.
                if writer.needs_reload() {
                    self.with(|_, _| ());
                }
                (
                    self.since.load(Ordering::Acquire),
                    self.sent.load(Ordering::Acquire),
                )
            }
        };
        if seq == 0 {
            return Ok(());
        }
        writer.durable(since, seq).await.map_err(|reason| {
            ServiceError::internal(format!(
                "dp-local could not save its state, so this change was not made: {reason}"
            ))
        })
    }

    /// Replaces the state in memory with the committed one after a failed commit. Runtime facts that are not
    /// stored (local resources and their runners, counters) carry over; runners whose resource attempt is no
    /// longer starting or running are stopped, and resource attempts that are but have no runner are launched.
    fn reload(&self, state: &mut State, now: Now) {
        let Some(writer) = &self.writer else {
            return;
        };
        let restored = writer
            .reload()
            .and_then(|tables| State::restore(tables, self.origin));
        let mut fresh = match restored {
            Ok(fresh) => fresh,
            Err(e) => {
                // The state in memory is kept; the requests that see it answer errors until a reload succeeds.
                eprintln!("dp-local: cannot reload the saved state after a failed commit: {e}");
                return;
            }
        };
        let old = std::mem::take(state);
        fresh.local_resources = old.local_resources;
        fresh.max_resources = old.max_resources;
        fresh.leases_lapsed = old.leases_lapsed;
        fresh.service_runner = old.service_runner;
        fresh.commands = old.commands;
        fresh.woken = old.woken;
        fresh.woken.extend(old.queues.keys().cloned());
        fresh.woken.extend(fresh.queues.keys().cloned());
        fresh.timers_changed = true;
        fresh.adopt_resources(old.live, old.launch_queue, now);
        *state = fresh;
        let seq = self.sent.load(Ordering::Relaxed);
        self.since.store(seq + 1, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside an operation leaves consistent-enough state for a test fake; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Now {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Now {
            epoch: epoch_ms.div_euclid(1000),
            epoch_ms,
            instant: self.clock.instant(),
            clock: self.clock,
        }
    }

    /// Runs `f` on the state under the lock, then wakes the pollers and the timer task it concerned.
    fn with<T>(&self, f: impl FnOnce(&mut State, Now) -> T) -> T {
        if self.nodes.is_some() {
            let turned = self.turn(f);
            if turned.unsaved {
                let _ = OBSERVED.try_with(|o| o.set(Some(TURN_FAILED)));
            }
            self.after_turn(&turned.woken, turned.timers_changed);
            return turned.out;
        }
        let now = self.now();
        let (out, woken, timers_changed) = {
            let mut state = self.lock();
            if self.writer.as_ref().is_some_and(Writer::needs_reload) {
                self.reload(&mut state, now);
            }
            let out = f(&mut state, now);
            if let Some(writer) = &self.writer
                && !state.dirty.is_empty()
            {
                let rows = state.take_rows(self.origin);
                // Sent under the lock, so batches reach the writer in the order their changes were made.
                let seq = self.sent.load(Ordering::Relaxed) + 1;
                self.sent.store(seq, Ordering::Release);
                writer.send(Batch { seq, rows });
            }
            let seen = (
                self.since.load(Ordering::Relaxed),
                self.sent.load(Ordering::Relaxed),
            );
            let _ = OBSERVED.try_with(|o| {
                o.set(Some(match o.get() {
                    Some((since, _)) => (since.min(seen.0), seen.1),
                    None => seen,
                }))
            });
            let woken: Vec<String> = state.woken.drain().collect();
            let changed = std::mem::take(&mut state.timers_changed);
            self.hand_commands(&mut state);
            (out, woken, changed)
        };
        self.after_turn(&woken, timers_changed);
        out
    }

    /// Hands the launcher what the last operation decided (called under the state lock, so the launcher sees
    /// commands in the order they were decided).
    fn hand_commands(&self, state: &mut State) {
        if !state.commands.is_empty() {
            let launcher = self.launcher.lock().unwrap_or_else(|e| e.into_inner());
            match launcher.as_ref() {
                Some(tx) => {
                    for command in state.commands.drain(..) {
                        let _ = tx.send(command);
                    }
                }
                // Nobody launches: `use_resources` rebuilds what is needed when a launcher connects.
                None => state.commands.clear(),
            }
        }
    }

    /// Wakes the pollers of `woken` groups, and the timer task when the next deadline changed.
    fn after_turn(&self, woken: &[String], timers_changed: bool) {
        for group in woken {
            self.group(group).notify_waiters();
        }
        if timers_changed {
            self.timer.notify_one();
        }
    }

    fn group(&self, name: &str) -> Arc<Notify> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Fires due timers and sleeps until the next one; runs until the runtime stops.
    pub async fn run_timers(self: Arc<Self>) {
        if self.nodes.is_some() {
            return self.run_shared_timers().await;
        }
        loop {
            let next = self.with(|s, now| {
                s.fire_timers(now);
                s.timers.keys().next().map(|(at, _)| *at)
            });
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

    /// The task runners that have sent heartbeats.
    pub fn runners(&self) -> Vec<Runner> {
        self.read(|s, _| s.runners.values().cloned().collect())
    }

    /// PollForTask: waits up to the poll timeout for a task of the worker group.
    pub async fn poll_for_task(&self, input: PollForTaskInput) -> Result<PollForTaskOutput> {
        let notify = self.group(&input.worker_group);
        // A resource's runner is ready when it first polls its group.
        self.with(|s, now| s.runner_polled(&input.worker_group, now));
        let deadline = tokio::time::Instant::now() + self.clock.real(self.poll_timeout);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let task = self
                .with(|s, now| s.take_task(&input.worker_group, input.hostname.as_deref(), now));
            if let Some(task) = task {
                return Ok(PollForTaskOutput {
                    task_object: Some(task),
                });
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(PollForTaskOutput { task_object: None });
            }
        }
    }

    /// CreatePipeline.
    pub fn create_pipeline(&self, input: CreatePipelineInput) -> Result<CreatePipelineOutput> {
        self.with(|s, now| s.create_pipeline(input, now))
    }

    /// DeletePipeline.
    pub fn delete_pipeline(&self, input: DeletePipelineInput) -> Result<()> {
        self.with(|s, now| s.delete_pipeline(&input.pipeline_id, now))
    }

    /// DescribePipelines.
    pub fn describe_pipelines(
        &self,
        input: DescribePipelinesInput,
    ) -> Result<DescribePipelinesOutput> {
        self.read(|s, _| s.describe_pipelines(&input.pipeline_ids))
    }

    /// ListPipelines.
    pub fn list_pipelines(&self, input: ListPipelinesInput) -> Result<ListPipelinesOutput> {
        self.read(|s, _| s.list_pipelines(input.marker.as_deref()))
    }

    /// AddTags.
    pub fn add_tags(&self, input: AddTagsInput) -> Result<AddTagsOutput> {
        self.with(|s, _| s.add_tags(&input.pipeline_id, input.tags))
            .map(|()| AddTagsOutput {})
    }

    /// RemoveTags.
    pub fn remove_tags(&self, input: RemoveTagsInput) -> Result<RemoveTagsOutput> {
        self.with(|s, _| {
            let p = s.pipeline_mut(&input.pipeline_id)?;
            p.tags.retain(|t| !input.tag_keys.contains(&t.key));
            s.dirty.pipeline(&input.pipeline_id);
            Ok(RemoveTagsOutput {})
        })
    }

    /// PutPipelineDefinition.
    pub fn put_pipeline_definition(
        &self,
        input: PutPipelineDefinitionInput,
    ) -> Result<PutPipelineDefinitionOutput> {
        self.with(|s, _| {
            s.pipeline(&input.pipeline_id)?;
            let def = Definition::new(
                input.pipeline_objects,
                input.parameter_objects.unwrap_or_default(),
                input.parameter_values.unwrap_or_default(),
            );
            let mut findings = definition::validate(&def);
            if !s.local_resources {
                resources_off_warnings(&def, &mut findings);
            }
            let errored = !findings.errors.is_empty();
            let p = s.pipeline_mut(&input.pipeline_id)?;
            if !errored {
                p.latest = Some(Arc::new(def));
                p.latest_version += 1;
                s.dirty.pipeline(&input.pipeline_id);
                s.dirty.definition(&input.pipeline_id, "latest".into());
            }
            let (errors, warnings) = findings_to_wire(findings);
            Ok(PutPipelineDefinitionOutput {
                validation_errors: Some(errors),
                validation_warnings: Some(warnings),
                errored,
            })
        })
    }

    /// ValidatePipelineDefinition.
    pub fn validate_pipeline_definition(
        &self,
        input: ValidatePipelineDefinitionInput,
    ) -> Result<ValidatePipelineDefinitionOutput> {
        self.read(|s, _| s.pipeline(&input.pipeline_id).map(|_| ()))?;
        let def = Definition::new(
            input.pipeline_objects,
            input.parameter_objects.unwrap_or_default(),
            input.parameter_values.unwrap_or_default(),
        );
        let findings = definition::validate(&def);
        let errored = !findings.errors.is_empty();
        let (errors, warnings) = findings_to_wire(findings);
        Ok(ValidatePipelineDefinitionOutput {
            validation_errors: Some(errors),
            validation_warnings: Some(warnings),
            errored,
        })
    }

    /// GetPipelineDefinition.
    pub fn get_pipeline_definition(
        &self,
        input: GetPipelineDefinitionInput,
    ) -> Result<GetPipelineDefinitionOutput> {
        self.read(|s, _| {
            let p = s.pipeline(&input.pipeline_id)?;
            let def = match input.version.as_deref().unwrap_or("latest") {
                "latest" => p.latest.clone(),
                "active" => Some(p.active.clone().ok_or_else(|| {
                    ServiceError::invalid_request(format!(
                        "Pipeline {} has no active pipeline definition",
                        p.id
                    ))
                })?),
                other => {
                    return Err(ServiceError::invalid_request(format!(
                        "Invalid version {other:?}: expected \"latest\" or \"active\""
                    )));
                }
            };
            let def = def.unwrap_or_default();
            Ok(GetPipelineDefinitionOutput {
                pipeline_objects: Some(def.objects.clone()),
                parameter_objects: (!def.parameter_objects.is_empty())
                    .then(|| def.parameter_objects.clone()),
                parameter_values: (!def.parameter_values.is_empty())
                    .then(|| def.parameter_values.clone()),
            })
        })
    }

    /// ActivatePipeline.
    pub fn activate_pipeline(
        &self,
        input: ActivatePipelineInput,
    ) -> Result<ActivatePipelineOutput> {
        self.with(|s, now| s.activate(input, now))
            .map(|()| ActivatePipelineOutput {})
    }

    /// DeactivatePipeline.
    pub fn deactivate_pipeline(
        &self,
        input: DeactivatePipelineInput,
    ) -> Result<DeactivatePipelineOutput> {
        self.with(|s, now| {
            s.deactivate(&input.pipeline_id, input.cancel_active.unwrap_or(true), now)
        })
        .map(|()| DeactivatePipelineOutput {})
    }

    /// DescribeObjects.
    pub fn describe_objects(&self, input: DescribeObjectsInput) -> Result<DescribeObjectsOutput> {
        self.read(|s, _| s.describe_objects(input))
    }

    /// QueryObjects.
    pub fn query_objects(&self, input: QueryObjectsInput) -> Result<QueryObjectsOutput> {
        self.read(|s, _| s.query_objects(input))
    }

    /// EvaluateExpression.
    pub fn evaluate_expression(
        &self,
        input: EvaluateExpressionInput,
    ) -> Result<EvaluateExpressionOutput> {
        self.read(|s, _| {
            let p = s.pipeline(&input.pipeline_id)?;
            let evaluated = evaluate_on(p, &input.object_id, &input.expression)?;
            Ok(EvaluateExpressionOutput {
                evaluated_expression: evaluated,
            })
        })
    }

    /// SetStatus.
    pub fn set_status(&self, input: SetStatusInput) -> Result<()> {
        self.with(|s, now| s.set_status(input, now))
    }

    /// ReportTaskProgress.
    pub fn report_task_progress(
        &self,
        input: ReportTaskProgressInput,
    ) -> Result<ReportTaskProgressOutput> {
        self.with(|s, now| s.report_progress(&input.task_id, input.fields.unwrap_or_default(), now))
            .map(|canceled| ReportTaskProgressOutput { canceled })
    }

    /// SetTaskStatus.
    pub fn set_task_status(&self, input: SetTaskStatusInput) -> Result<SetTaskStatusOutput> {
        self.with(|s, now| s.set_task_status(input, now))
            .map(|()| SetTaskStatusOutput {})
    }

    /// ReportTaskRunnerHeartbeat.
    pub fn report_task_runner_heartbeat(
        &self,
        input: ReportTaskRunnerHeartbeatInput,
    ) -> Result<ReportTaskRunnerHeartbeatOutput> {
        self.with(|s, now| {
            let runner = s
                .runners
                .entry(input.taskrunner_id.clone())
                .or_insert_with(|| Runner {
                    id: input.taskrunner_id.clone(),
                    worker_group: None,
                    hostname: None,
                    last_heartbeat: now.epoch,
                    heartbeats: 0,
                });
            runner.worker_group = input.worker_group.or(runner.worker_group.take());
            runner.hostname = input.hostname.or(runner.hostname.take());
            runner.last_heartbeat = now.epoch;
            runner.heartbeats += 1;
            s.dirty.runner(&input.taskrunner_id);
            // The service asks a runner to terminate when it shuts down the resource the runner serves; dp-local
            // launches none, so it does so for worker groups an operator stopped (`DpLocal.StopWorkerGroup`).
            let terminate = runner
                .worker_group
                .as_ref()
                .is_some_and(|g| s.stopped_groups.contains(g));
            Ok(ReportTaskRunnerHeartbeatOutput { terminate })
        })
    }

    /// dp-local's own call `DpLocal.StopWorkerGroup` (`stop`) or `DpLocal.ResumeWorkerGroup`: from now on the
    /// heartbeats of the group's runners answer `terminate: true` (or `false` again). Kept in the state file.
    pub fn stop_worker_group(&self, group: &str, stop: bool) {
        self.with(|s, _| {
            let changed = if stop {
                s.stopped_groups.insert(group.to_string())
            } else {
                s.stopped_groups.remove(group)
            };
            if changed {
                s.dirty.meta = s.dirty.enabled;
            }
        });
    }

    /// The worker groups told to stop, in name order.
    pub fn stopped_worker_groups(&self) -> Vec<String> {
        self.with(|s, _| s.stopped_groups.iter().cloned().collect())
    }
}

/// With `--resources off`, an activity that has only `runsOn` is never handed out: say so when it is put.
fn resources_off_warnings(def: &Definition, findings: &mut definition::Findings) {
    for id in def.activities() {
        let fields = def.effective_fields(&id);
        let has = |key: &str| fields.iter().any(|f| f.key == key);
        if has("runsOn") && !has("workerGroup") {
            let message =
                "dp-local runs with --resources off: only activities with a 'workerGroup' are handed to task runners"
                    .to_string();
            match findings.warnings.iter_mut().find(|(i, _)| *i == id) {
                Some((_, messages)) => messages.push(message),
                None => findings.warnings.push((id, vec![message])),
            }
        }
    }
}

impl State {
    pub(super) fn pipeline(&self, id: &str) -> Result<&Pipeline> {
        match self.pipelines.get(id) {
            None => Err(ServiceError::pipeline_not_found(id)),
            Some(p) if p.deleted => Err(ServiceError::pipeline_deleted(id)),
            Some(p) => Ok(p),
        }
    }

    pub(super) fn pipeline_mut(&mut self, id: &str) -> Result<&mut Pipeline> {
        match self.pipelines.get_mut(id) {
            None => Err(ServiceError::pipeline_not_found(id)),
            Some(p) if p.deleted => Err(ServiceError::pipeline_deleted(id)),
            Some(p) => Ok(p),
        }
    }

    pub(super) fn add_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        if self
            .timers
            .keys()
            .next()
            .is_none_or(|(first, _)| at < *first)
        {
            self.timers_changed = true;
        }
        self.timers.insert((at, self.timer_seq), timer);
    }
}
