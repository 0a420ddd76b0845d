//! The service's state and rules: pipelines, definitions, instances, attempts and the task leases.
//!
//! All state sits behind one mutex; every operation is a short synchronous function over the private `State`, so requests
//! never observe a half-applied change. The only waiting happens outside the lock: a poller waits on its worker
//! group's [`Notify`], and the timer task sleeps until the next lease, retry or schedule deadline. A task (an
//! attempt) is taken from its worker group's queue under the lock, which is what makes every hand-out unique.
//! This module knows nothing of HTTP or signatures.

mod records;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dp_model::IndexMap;
use dp_model::timestamp::format_utc;
use dp_model::types::*;
use tokio::sync::Notify;

use crate::clock::{self, Clock};
use crate::definition::{self, Definition, ScheduleType};
use crate::error::{Error, ServiceError};
use crate::expr::{self, Context, FieldValue};
use crate::schedule::Period;
use crate::store::{Batch, Row, Store, Table, Writer};
use records::Origin;

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
    /// Handed to a task runner.
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
    Lease { pipeline: String, attempt: String },
    Retry { pipeline: String, attempt: String },
    Schedule { pipeline: String },
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
    writer: Option<Writer>,
}

/// The meta row that keeps the time scale.
const TIME_SCALE_ROW: &str = "timeScale";

/// What an operation sees of the clock, read once per operation.
#[derive(Debug, Clone, Copy)]
struct Now {
    epoch: i64,
    instant: Instant,
    clock: Clock,
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
            writer: None,
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
            writer: Some(writer),
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

    /// The time scale in force.
    pub fn time_scale(&self) -> f64 {
        self.clock.scale()
    }

    /// Waits until every change made so far is durable, so that an answer never reports state that a crash
    /// could lose. In memory this returns at once.
    pub async fn durable(&self) -> Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let seq = self.sent.load(Ordering::Acquire);
        if seq == 0 {
            return Ok(());
        }
        writer.durable(seq).await.map_err(|reason| {
            ServiceError::internal(format!(
                "dp-local could not save its state, so this change may be lost: {reason}"
            ))
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside an operation leaves consistent-enough state for a test fake; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Now {
        Now {
            epoch: self.clock.epoch_seconds(),
            instant: self.clock.instant(),
            clock: self.clock,
        }
    }

    /// Runs `f` on the state under the lock, then wakes the pollers and the timer task it concerned.
    fn with<T>(&self, f: impl FnOnce(&mut State, Now) -> T) -> T {
        let now = self.now();
        let (out, woken, timers_changed) = {
            let mut state = self.lock();
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
            let woken: Vec<String> = state.woken.drain().collect();
            let changed = std::mem::take(&mut state.timers_changed);
            (out, woken, changed)
        };
        for group in woken {
            self.group(&group).notify_waiters();
        }
        if timers_changed {
            self.timer.notify_one();
        }
        out
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
        self.lock().runners.values().cloned().collect()
    }

    /// PollForTask: waits up to the poll timeout for a task of the worker group.
    pub async fn poll_for_task(&self, input: PollForTaskInput) -> Result<PollForTaskOutput> {
        let notify = self.group(&input.worker_group);
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
        self.with(|s, _| s.describe_pipelines(&input.pipeline_ids))
    }

    /// ListPipelines.
    pub fn list_pipelines(&self, input: ListPipelinesInput) -> Result<ListPipelinesOutput> {
        self.with(|s, _| s.list_pipelines(input.marker.as_deref()))
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
            let p = s.pipeline_mut(&input.pipeline_id)?;
            let def = Definition::new(
                input.pipeline_objects,
                input.parameter_objects.unwrap_or_default(),
                input.parameter_values.unwrap_or_default(),
            );
            let findings = definition::validate(&def);
            let errored = !findings.errors.is_empty();
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
        self.with(|s, _| s.pipeline(&input.pipeline_id).map(|_| ()))?;
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
        self.with(|s, _| {
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
        self.with(|s, _| s.describe_objects(input))
    }

    /// QueryObjects.
    pub fn query_objects(&self, input: QueryObjectsInput) -> Result<QueryObjectsOutput> {
        self.with(|s, _| s.query_objects(input))
    }

    /// EvaluateExpression.
    pub fn evaluate_expression(
        &self,
        input: EvaluateExpressionInput,
    ) -> Result<EvaluateExpressionOutput> {
        self.with(|s, _| {
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
        });
        // The service asks a runner to terminate only when it shuts down a resource it launched; dp-local launches
        // none, so runners of worker groups are never told to stop.
        Ok(ReportTaskRunnerHeartbeatOutput { terminate: false })
    }
}

fn findings_to_wire(f: definition::Findings) -> (Vec<ValidationError>, Vec<ValidationWarning>) {
    (
        f.errors
            .into_iter()
            .map(|(id, errors)| ValidationError {
                id: Some(id),
                errors: Some(errors),
            })
            .collect(),
        f.warnings
            .into_iter()
            .map(|(id, warnings)| ValidationWarning {
                id: Some(id),
                warnings: Some(warnings),
            })
            .collect(),
    )
}

fn check_tags(tags: &[Tag]) -> Result<()> {
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(ServiceError::invalid_request(format!(
            "Tag keys starting with 'aws:' are reserved: {}",
            t.key
        )));
    }
    if tags.len() > MAX_TAGS {
        return Err(ServiceError::invalid_request(format!(
            "A pipeline can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(())
}

fn period_field(def: &Definition, id: &str, key: &str, default: Duration) -> Duration {
    def.string(id, key)
        .and_then(|v| Period::parse(&v))
        .map(|p| {
            Duration::from_secs(
                p.min_seconds()
                    .clamp(0, clock::MAX_DURATION.as_secs() as i64) as u64,
            )
        })
        .unwrap_or(default)
}

impl State {
    fn pipeline(&self, id: &str) -> Result<&Pipeline> {
        match self.pipelines.get(id) {
            None => Err(ServiceError::pipeline_not_found(id)),
            Some(p) if p.deleted => Err(ServiceError::pipeline_deleted(id)),
            Some(p) => Ok(p),
        }
    }

    fn pipeline_mut(&mut self, id: &str) -> Result<&mut Pipeline> {
        match self.pipelines.get_mut(id) {
            None => Err(ServiceError::pipeline_not_found(id)),
            Some(p) if p.deleted => Err(ServiceError::pipeline_deleted(id)),
            Some(p) => Ok(p),
        }
    }

    fn add_timer(&mut self, at: Instant, timer: Timer) {
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

    fn create_pipeline(
        &mut self,
        input: CreatePipelineInput,
        now: Now,
    ) -> Result<CreatePipelineOutput> {
        let key = (input.name.clone(), input.unique_id.clone());
        if let Some(id) = self.by_unique.get(&key) {
            return Ok(CreatePipelineOutput {
                pipeline_id: id.clone(),
            });
        }
        let tags = input.tags.unwrap_or_default();
        check_tags(&tags)?;
        let id = loop {
            let id = format!("df-{}", random_id(19, UPPER_ALNUM));
            if !self.pipelines.contains_key(&id) {
                break id;
            }
        };
        self.by_unique.insert(key, id.clone());
        self.dirty.pipeline(&id);
        self.pipelines.insert(
            id.clone(),
            Pipeline {
                id: id.clone(),
                name: input.name,
                unique_id: input.unique_id,
                description: input.description,
                tags,
                created: now.epoch,
                deleted: false,
                state: PipelineState::Pending,
                latest: None,
                latest_version: 0,
                active: None,
                active_version: 0,
                activation: 0,
                first_activation: None,
                last_activation: None,
                last_deactivation: None,
                last_run: i64::MIN,
                instances: IndexMap::new(),
                attempts: IndexMap::new(),
                dependents: HashMap::new(),
                by_component: HashMap::new(),
                paused_components: HashSet::new(),
                cursors: IndexMap::new(),
                schedule_timer: None,
            },
        );
        Ok(CreatePipelineOutput { pipeline_id: id })
    }

    fn delete_pipeline(&mut self, id: &str, now: Now) -> Result<()> {
        let Some(p) = self.pipelines.get_mut(id).filter(|p| !p.deleted) else {
            return Err(ServiceError::pipeline_not_found(id));
        };
        p.deleted = true;
        self.dirty.pipeline(id);
        let key = (p.name.clone(), p.unique_id.clone());
        self.by_unique.remove(&key);
        self.cancel_running(id, now);
        Ok(())
    }

    fn describe_pipelines(&self, ids: &[String]) -> Result<DescribePipelinesOutput> {
        let mut list = Vec::with_capacity(ids.len());
        for id in ids {
            let p = self.pipeline(id)?;
            let mut fields = vec![
                text("@pipelineState", p.state_name()),
                text("@creationTime", format_utc(p.created)),
                text("@id", &p.id),
                text("@sphere", "PIPELINE"),
                text("name", &p.name),
                text("uniqueId", &p.unique_id),
            ];
            if let Some(d) = &p.description {
                fields.push(text("description", d));
            }
            if p.active.is_some() {
                fields.push(text("@version", p.active_version.to_string()));
            }
            if let Some(t) = p.first_activation {
                fields.push(text("@firstActivationTime", format_utc(t)));
            }
            if let Some(t) = p.last_activation {
                fields.push(text("@lastActivationTime", format_utc(t)));
            }
            if let Some(t) = p.last_deactivation {
                fields.push(text("@lastDeactivatedTime", format_utc(t)));
            }
            if let Some(t) = p.instances.values().filter_map(|i| i.actual_start).max() {
                fields.push(text("@latestRunTime", format_utc(t)));
            }
            let unhealthy = p.instances.values().any(|i| {
                matches!(
                    i.status,
                    Status::Failed | Status::CascadeFailed | Status::TimedOut
                )
            });
            if p.state != PipelineState::Pending {
                fields.push(text(
                    "@healthStatus",
                    if unhealthy { "ERROR" } else { "HEALTHY" },
                ));
            }
            list.push(PipelineDescription {
                pipeline_id: p.id.clone(),
                name: p.name.clone(),
                fields,
                description: p.description.clone(),
                tags: Some(p.tags.clone()),
            });
        }
        Ok(DescribePipelinesOutput {
            pipeline_description_list: list,
        })
    }

    fn list_pipelines(&self, marker: Option<&str>) -> Result<ListPipelinesOutput> {
        let start = parse_marker(marker)?;
        let live: Vec<&Pipeline> = self.pipelines.values().filter(|p| !p.deleted).collect();
        let page: Vec<PipelineIdName> = live
            .iter()
            .skip(start)
            .take(PAGE_SIZE)
            .map(|p| PipelineIdName {
                id: Some(p.id.clone()),
                name: Some(p.name.clone()),
            })
            .collect();
        let more = start + page.len() < live.len();
        Ok(ListPipelinesOutput {
            pipeline_id_list: page,
            marker: more.then(|| (start + PAGE_SIZE).to_string()),
            has_more_results: Some(more),
        })
    }

    fn add_tags(&mut self, id: &str, tags: Vec<Tag>) -> Result<()> {
        let p = self.pipeline_mut(id)?;
        let mut merged = p.tags.clone();
        for t in tags {
            match merged.iter_mut().find(|m| m.key == t.key) {
                Some(m) => m.value = t.value,
                None => merged.push(t),
            }
        }
        check_tags(&merged)?;
        p.tags = merged;
        self.dirty.pipeline(id);
        Ok(())
    }

    fn activate(&mut self, input: ActivatePipelineInput, now: Now) -> Result<()> {
        let p = self.pipeline_mut(&input.pipeline_id)?;
        let Some(latest) = p.latest.clone() else {
            return Err(ServiceError::invalid_request(format!(
                "Pipeline {} has no pipeline definition; put one before activating",
                p.id
            )));
        };
        let mut def = (*latest).clone();
        if let Some(values) = input.parameter_values {
            let ids: HashSet<&str> = values.iter().map(|v| v.id.as_str()).collect();
            def.parameter_values
                .retain(|v| !ids.contains(v.id.as_str()));
            def.parameter_values.extend(values.iter().cloned());
            def = Definition::new(def.objects, def.parameter_objects, def.parameter_values);
            let findings = definition::validate(&def);
            if let Some((id, messages)) = findings.errors.first() {
                return Err(ServiceError::invalid_request(format!(
                    "{id}: {}",
                    messages.join("; ")
                )));
            }
        }
        let missing = def.missing_parameters();
        if !missing.is_empty() {
            return Err(ServiceError::invalid_request(format!(
                "Missing value for parameter(s): {}",
                missing.join(", ")
            )));
        }
        let def = Arc::new(def);
        p.active = Some(def.clone());
        p.active_version = p.latest_version;
        p.activation += 1;
        let activation = p.activation;
        p.state = PipelineState::Scheduled;
        p.first_activation.get_or_insert(now.epoch);
        p.last_activation = Some(now.epoch);
        let start = input.start_timestamp.map(|t| t.0);
        let pid = p.id.clone();
        match def.schedule_type().unwrap_or(ScheduleType::TimeSeries) {
            ScheduleType::OnDemand => {
                let at = start.unwrap_or(now.epoch).max(p.last_run.saturating_add(1));
                p.last_run = at;
                let components = def.activities();
                let created: Vec<String> = components
                    .iter()
                    .map(|c| create_instance(p, c, at, None, &def))
                    .collect();
                self.settle_new(&pid, &created, now);
            }
            kind => {
                let activities = def.activities();
                p.cursors.retain(|name, _| activities.contains(name));
                let first_activation = p.first_activation.unwrap_or(now.epoch);
                for activity in def.activities() {
                    if p.cursors.contains_key(&activity) && start.is_none() {
                        continue;
                    }
                    let Some(FieldValue::Ref(schedule)) = def.first(&activity, "schedule") else {
                        continue;
                    };
                    let Some(period) = def
                        .string(&schedule, "period")
                        .and_then(|s| Period::parse(&s))
                    else {
                        continue;
                    };
                    let begin = match def.string(&schedule, "startDateTime") {
                        Some(s) => dp_model::timestamp::parse(&s).unwrap_or(first_activation),
                        None => first_activation,
                    };
                    let begin = start.unwrap_or(begin);
                    let end = def
                        .string(&schedule, "endDateTime")
                        .and_then(|s| dp_model::timestamp::parse(&s));
                    let remaining = def
                        .string(&schedule, "occurrences")
                        .and_then(|s| s.parse().ok());
                    p.cursors.insert(
                        activity,
                        Cursor {
                            next: begin,
                            period,
                            end,
                            remaining,
                            cron: kind == ScheduleType::Cron,
                        },
                    );
                }
                self.materialize(&pid, now);
            }
        }
        self.dirty.pipeline(&pid);
        self.dirty.definition(&pid, format!("active/{activation}"));
        self.requeue_pipeline(&pid);
        Ok(())
    }

    /// Creates the instances whose schedule time has come, and sets a timer for the next one.
    fn materialize(&mut self, pid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(def) = p.active.clone() else { return };
        if p.deleted || p.state != PipelineState::Scheduled {
            return;
        }
        let mut created = Vec::new();
        self.dirty.pipeline(pid);
        let names: Vec<String> = p.cursors.keys().cloned().collect();
        for name in &names {
            let mut made = 0;
            loop {
                let cursor = &p.cursors[name];
                if cursor.exhausted() || cursor.due() > now.epoch || made >= MAX_BACKFILL {
                    break;
                }
                let at = cursor.next;
                let Some(end) = cursor.period.advance(at, 1) else {
                    break;
                };
                created.push(create_instance(p, name, at, Some(end), &def));
                let cursor = &mut p.cursors[name];
                cursor.next = end;
                cursor.remaining = cursor.remaining.map(|r| r - 1);
                made += 1;
            }
        }
        let next_due = p
            .cursors
            .values()
            .filter(|c| !c.exhausted())
            .map(Cursor::due)
            .min();
        self.settle_new(pid, &created, now);
        if let Some(due) = next_due {
            // Schedules follow the wall clock of the data, not the service's durations, so they are not scaled.
            let at = now.instant + Duration::from_secs((due - now.epoch).max(0) as u64);
            let Some(p) = self.pipelines.get_mut(pid) else {
                return;
            };
            if p.schedule_timer.is_none_or(|t| at < t) {
                p.schedule_timer = Some(at);
                self.add_timer(
                    at,
                    Timer::Schedule {
                        pipeline: pid.to_string(),
                    },
                );
            }
        }
    }

    /// Links new instances to the instances they depend on, then starts those that are ready.
    fn settle_new(&mut self, pid: &str, created: &[String], now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        for id in created {
            self.dirty.instance(pid, id);
            let inst = &p.instances[id];
            let def = inst.definition.clone();
            let (component, at) = (inst.component.clone(), inst.scheduled_start);
            let mut deps = Vec::new();
            for field in def
                .effective_fields(&component)
                .iter()
                .filter(|f| f.key == "dependsOn")
            {
                let Some(target) = &field.ref_value else {
                    continue;
                };
                let candidates = p.by_component.get(target).map(Vec::as_slice).unwrap_or(&[]);
                let exact = candidates
                    .iter()
                    .rev()
                    .find(|c| p.instances[c.as_str()].scheduled_start == at);
                let earlier = || {
                    candidates
                        .iter()
                        .filter(|c| p.instances[c.as_str()].scheduled_start <= at)
                        .max_by_key(|c| p.instances[c.as_str()].scheduled_start)
                };
                if let Some(dep) = exact.or_else(earlier) {
                    deps.push(dep.clone());
                }
            }
            for dep in &deps {
                p.dependents
                    .entry(dep.clone())
                    .or_default()
                    .push(id.clone());
            }
            p.instances[id].depends_on = deps;
        }
        for id in created {
            self.refresh(pid, id, now);
        }
    }

    /// Re-examines an instance waiting on dependencies: starts it, cascades a failure, or leaves it waiting.
    fn refresh(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(inst) = p.instances.get(iid) else {
            return;
        };
        if inst.status != Status::WaitingOnDependencies {
            return;
        }
        let statuses: Vec<Status> = inst
            .depends_on
            .iter()
            .map(|d| p.instances[d.as_str()].status)
            .collect();
        if statuses.iter().any(|s| s.is_failure()) {
            if inst.cascade {
                self.dirty.instance(pid, iid);
                let inst = &mut p.instances[iid];
                inst.status = Status::CascadeFailed;
                inst.actual_end = Some(now.epoch);
                self.ended(pid, iid, now);
            }
        } else if statuses.iter().all(|s| *s == Status::Finished) {
            self.start_attempt(pid, iid, Duration::ZERO, now);
        }
    }

    /// Called when an instance has ended: its dependents may now run (or fail).
    fn ended(&mut self, pid: &str, iid: &str, now: Now) {
        let dependents = self
            .pipelines
            .get(pid)
            .and_then(|p| p.dependents.get(iid).cloned())
            .unwrap_or_default();
        for d in dependents {
            self.refresh(pid, &d, now);
        }
    }

    /// Gives an instance a new attempt, ready after `delay` (service time).
    fn start_attempt(&mut self, pid: &str, iid: &str, delay: Duration, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        let number = inst.attempts.len() as u32 + 1;
        let aid = format!("{iid}_Attempt={number}");
        inst.attempts.push(aid.clone());
        inst.status = Status::WaitingForRunner;
        self.dirty.instance(pid, iid);
        self.dirty.attempt(pid, &aid);
        p.attempts.insert(
            aid.clone(),
            Attempt {
                instance: iid.to_string(),
                number,
                status: Status::WaitingForRunner,
                actual_start: None,
                actual_end: None,
                hostname: None,
                task_id: None,
                lease: Lease::Free,
                timer_at: None,
                not_before: (!delay.is_zero()).then(|| now.instant + now.clock.real(delay)),
                queued: false,
                ended_by_runner: false,
                error: None,
                reported: Vec::new(),
                last_report: None,
            },
        );
        if delay.is_zero() {
            self.enqueue(pid, &aid);
        } else {
            let at = now.instant + now.clock.real(delay);
            self.add_timer(
                at,
                Timer::Retry {
                    pipeline: pid.to_string(),
                    attempt: aid,
                },
            );
        }
    }

    /// Puts an attempt in its worker group's queue if it may be handed out and is not queued already.
    fn enqueue(&mut self, pid: &str, aid: &str) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        if p.deleted || p.state != PipelineState::Scheduled {
            return;
        }
        let Some(attempt) = p.attempts.get_mut(aid) else {
            return;
        };
        let inst = &p.instances[attempt.instance.as_str()];
        if attempt.queued
            || attempt.not_before.is_some_and(|t| Instant::now() < t)
            || attempt.status != Status::WaitingForRunner
            || attempt.lease != Lease::Free
            || inst.paused
        {
            return;
        }
        let Some(group) = inst.worker_group.clone() else {
            return;
        };
        attempt.queued = true;
        self.queues
            .entry(group.clone())
            .or_default()
            .push_back((pid.to_string(), aid.to_string()));
        self.woken.insert(group);
    }

    /// Queues every waiting attempt of a pipeline (after activation or resume).
    fn requeue_pipeline(&mut self, pid: &str) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let waiting: Vec<String> = p
            .instances
            .values()
            .filter(|i| i.status == Status::WaitingForRunner)
            .filter_map(|i| i.attempts.last().cloned())
            .collect();
        for aid in waiting {
            self.enqueue(pid, &aid);
        }
    }

    /// Hands out the first ready task of `group`, if any.
    fn take_task(&mut self, group: &str, hostname: Option<&str>, now: Now) -> Option<TaskObject> {
        loop {
            let (pid, aid) = self.queues.get_mut(group)?.pop_front()?;
            let Some(p) = self.pipelines.get_mut(&pid) else {
                continue;
            };
            let Some(attempt) = p.attempts.get_mut(&aid) else {
                continue;
            };
            attempt.queued = false;
            let inst = &p.instances[attempt.instance.as_str()];
            if p.deleted
                || p.state != PipelineState::Scheduled
                || inst.paused
                || attempt.status != Status::WaitingForRunner
                || attempt.lease != Lease::Free
            {
                continue;
            }
            let task_id = loop {
                let id = random_id(40, TOKEN_CHARS);
                if !self.tasks.contains_key(&id) {
                    break id;
                }
            };
            let deadline = now.instant + now.clock.real(clock::ACKNOWLEDGE_WINDOW);
            attempt.task_id = Some(task_id.clone());
            attempt.lease = Lease::Acknowledge(deadline);
            attempt.status = Status::Running;
            attempt.actual_start = Some(now.epoch);
            attempt.hostname = hostname.map(str::to_string);
            let arm = attempt.timer_at.is_none_or(|t| deadline < t);
            if arm {
                attempt.timer_at = Some(deadline);
            }
            let iid = attempt.instance.clone();
            let inst = &mut p.instances[iid.as_str()];
            inst.status = Status::Running;
            inst.actual_start.get_or_insert(now.epoch);
            let task = task_object(p, &aid, &task_id);
            self.dirty.task(&task_id, &pid, &aid);
            self.dirty.attempt(&pid, &aid);
            self.dirty.instance(&pid, &iid);
            self.tasks.insert(task_id, (pid.clone(), aid.clone()));
            if arm {
                self.add_timer(
                    deadline,
                    Timer::Lease {
                        pipeline: pid,
                        attempt: aid,
                    },
                );
            }
            return Some(task);
        }
    }

    fn fire_timers(&mut self, now: Now) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now.instant {
                break;
            }
            let ((at, _), timer) = entry.remove_entry();
            match timer {
                Timer::Lease { pipeline, attempt } => {
                    self.lease_check(&pipeline, &attempt, at, now)
                }
                Timer::Retry { pipeline, attempt } => self.enqueue(&pipeline, &attempt),
                Timer::Schedule { pipeline } => {
                    if let Some(p) = self.pipelines.get_mut(&pipeline)
                        && p.schedule_timer == Some(at)
                    {
                        p.schedule_timer = None;
                        self.dirty.pipeline(&pipeline);
                    }
                    self.materialize(&pipeline, now)
                }
            }
        }
    }

    fn lease_check(&mut self, pid: &str, aid: &str, at: Instant, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(attempt) = p.attempts.get_mut(aid) else {
            return;
        };
        if attempt.timer_at != Some(at) {
            return;
        }
        attempt.timer_at = None;
        self.dirty.attempt(pid, aid);
        self.dirty.instance(pid, &attempt.instance);
        match attempt.lease {
            Lease::Free => {}
            Lease::Acknowledge(d) | Lease::Progress(d) if d > now.instant => {
                attempt.timer_at = Some(d);
                self.add_timer(
                    d,
                    Timer::Lease {
                        pipeline: pid.to_string(),
                        attempt: aid.to_string(),
                    },
                );
            }
            Lease::Acknowledge(_) => {
                // Never acknowledged: the same attempt goes back to the queue under a new task id.
                attempt.lease = Lease::Free;
                attempt.task_id = None;
                attempt.status = Status::WaitingForRunner;
                attempt.actual_start = None;
                attempt.hostname = None;
                let iid = attempt.instance.clone();
                let inst = &mut p.instances[iid.as_str()];
                inst.status = Status::WaitingForRunner;
                self.enqueue(pid, aid);
            }
            Lease::Progress(_) => {
                // Ownership lapsed after acknowledgement: this attempt has timed out; retry as a new attempt.
                attempt.lease = Lease::Free;
                attempt.status = Status::TimedOut;
                attempt.actual_end = Some(now.epoch);
                let iid = attempt.instance.clone();
                self.after_failed_attempt(pid, &iid, Status::TimedOut, now);
            }
        }
    }

    /// After an attempt failed or timed out: a new attempt if retries are left, else the instance ends.
    fn after_failed_attempt(&mut self, pid: &str, iid: &str, final_status: Status, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        self.dirty.instance(pid, iid);
        let inst = &mut p.instances[iid];
        if (inst.attempts.len() as u32) < inst.max_attempts {
            let delay = inst.retry_delay;
            self.start_attempt(pid, iid, delay, now);
        } else {
            inst.status = final_status;
            inst.actual_end = Some(now.epoch);
            self.ended(pid, iid, now);
        }
    }

    /// Cancels every running attempt of a pipeline (deactivation, deletion).
    fn cancel_running(&mut self, pid: &str, now: Now) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let running: Vec<String> = p
            .instances
            .values()
            .filter(|i| i.status == Status::Running)
            .map(|i| i.id.clone())
            .collect();
        for iid in running {
            self.cancel_instance(pid, &iid, now);
        }
    }

    fn cancel_instance(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        if inst.status.is_terminal() {
            return;
        }
        inst.status = Status::Canceled;
        inst.actual_end = Some(now.epoch);
        self.dirty.instance(pid, iid);
        if let Some(aid) = inst.attempts.last().cloned() {
            self.dirty.attempt(pid, &aid);
            let attempt = &mut p.attempts[aid.as_str()];
            if !attempt.status.is_terminal() {
                attempt.status = Status::Canceled;
                attempt.lease = Lease::Free;
                if attempt.actual_start.is_some() {
                    attempt.actual_end = Some(now.epoch);
                }
            }
        }
        self.ended(pid, iid, now);
    }

    fn deactivate(&mut self, pid: &str, cancel_active: bool, now: Now) -> Result<()> {
        let p = self.pipeline_mut(pid)?;
        if p.state == PipelineState::Scheduled {
            p.state = PipelineState::Paused;
            p.last_deactivation = Some(now.epoch);
            self.dirty.pipeline(pid);
        }
        if cancel_active {
            self.cancel_running(pid, now);
        }
        Ok(())
    }

    fn set_status(&mut self, input: SetStatusInput, now: Now) -> Result<()> {
        let pid = input.pipeline_id.as_str();
        let p = self.pipeline(pid)?;
        let status = input.status.as_str();
        const STATUSES: &[&str] = &[
            "PAUSE",
            "RESUME",
            "CANCEL",
            "TRY_CANCEL",
            "RERUN",
            "MARK_FINISHED",
        ];
        if !STATUSES.contains(&status) {
            return Err(ServiceError::invalid_request(format!(
                "Invalid status {status:?}: expected one of {}",
                STATUSES.join(", ")
            )));
        }
        enum Target {
            Component(String),
            Instance(String),
        }
        let mut targets = Vec::new();
        for id in &input.object_ids {
            if let Some(a) = p.attempts.get(id) {
                targets.push(Target::Instance(a.instance.clone()));
            } else if p.instances.contains_key(id) {
                targets.push(Target::Instance(id.clone()));
            } else if p.definition().is_some_and(|d| d.object(id).is_some()) {
                if !matches!(status, "PAUSE" | "RESUME") {
                    return Err(ServiceError::invalid_request(format!(
                        "Status {status} applies to instance and attempt objects; {id} is a component"
                    )));
                }
                targets.push(Target::Component(id.clone()));
            } else {
                return Err(ServiceError::invalid_request(format!(
                    "Object {id} not found in pipeline {pid}"
                )));
            }
        }
        for target in targets {
            match (status, target) {
                ("PAUSE" | "RESUME", Target::Component(c)) => {
                    let p = self.pipelines.get_mut(pid).expect("checked above");
                    let pause = status == "PAUSE";
                    if pause {
                        p.paused_components.insert(c.clone());
                    } else {
                        p.paused_components.remove(&c);
                    }
                    let ids: Vec<String> = p.by_component.get(&c).cloned().unwrap_or_default();
                    self.dirty.pipeline(pid);
                    for iid in ids {
                        p.instances[iid.as_str()].paused = pause;
                        self.dirty.instance(pid, &iid);
                    }
                }
                ("PAUSE" | "RESUME", Target::Instance(iid)) => {
                    let p = self.pipelines.get_mut(pid).expect("checked above");
                    p.instances[iid.as_str()].paused = status == "PAUSE";
                    self.dirty.instance(pid, &iid);
                }
                ("CANCEL" | "TRY_CANCEL", Target::Instance(iid)) => {
                    self.cancel_instance(pid, &iid, now)
                }
                ("RERUN", Target::Instance(iid)) => {
                    self.rerun(pid, &iid);
                    self.refresh(pid, &iid, now);
                }
                ("MARK_FINISHED", Target::Instance(iid)) => {
                    let p = self.pipelines.get_mut(pid).expect("checked above");
                    let inst = &mut p.instances[iid.as_str()];
                    if inst.status != Status::Finished {
                        let head = inst.attempts.last().cloned();
                        inst.status = Status::Finished;
                        inst.actual_end = Some(now.epoch);
                        self.dirty.instance(pid, &iid);
                        if let Some(aid) = head {
                            self.dirty.attempt(pid, &aid);
                            let a = &mut p.attempts[aid.as_str()];
                            if !a.status.is_terminal() {
                                a.status = Status::Canceled;
                                a.lease = Lease::Free;
                            }
                        }
                        self.ended(pid, &iid, now);
                    }
                }
                _ => {}
            }
        }
        if status == "RESUME" {
            self.requeue_pipeline(pid);
        }
        Ok(())
    }

    /// Resets an ended instance (and, with cascade, the dependents that failed because of it) to run again.
    fn rerun(&mut self, pid: &str, iid: &str) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        if !inst.status.is_terminal() {
            return;
        }
        let retries = inst
            .definition
            .string(&inst.component, "maximumRetries")
            .and_then(|v| v.parse().ok());
        inst.max_attempts =
            inst.attempts.len() as u32 + retries.unwrap_or(clock::DEFAULT_MAXIMUM_RETRIES) + 1;
        inst.status = Status::WaitingOnDependencies;
        inst.actual_start = None;
        inst.actual_end = None;
        inst.error = None;
        self.dirty.instance(pid, iid);
        let cascaded: Vec<String> = p
            .dependents
            .get(iid)
            .map(|ds| {
                ds.iter()
                    .filter(|d| p.instances[d.as_str()].status == Status::CascadeFailed)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for d in cascaded {
            self.rerun(pid, &d);
        }
    }

    fn report_progress(&mut self, task_id: &str, fields: Vec<Field>, now: Now) -> Result<bool> {
        let Some((pid, aid)) = self.tasks.get(task_id) else {
            return Err(ServiceError::task_not_found(format!(
                "Task {task_id} not found"
            )));
        };
        let p = &mut self.pipelines[pid.as_str()];
        if p.deleted {
            return Ok(true);
        }
        let progress_timeout =
            p.instances[p.attempts[aid.as_str()].instance.as_str()].progress_timeout;
        let attempt = &mut p.attempts[aid.as_str()];
        if attempt.task_id.as_deref() != Some(task_id) {
            // The task was handed to another runner after its acknowledgement window lapsed.
            return Ok(true);
        }
        match attempt.status {
            Status::Running => {}
            Status::Finished | Status::Failed if attempt.ended_by_runner => {
                return Err(ServiceError::task_not_found(format!(
                    "Task {task_id} has already ended"
                )));
            }
            _ => return Ok(true),
        }
        let deadline = now.instant + now.clock.real(progress_timeout);
        attempt.lease = Lease::Progress(deadline);
        self.dirty.attempt(pid, aid);
        attempt.last_report = Some(now.epoch);
        for f in fields {
            attempt.reported.retain(|r| r.key != f.key);
            attempt.reported.push(f);
        }
        if attempt.timer_at.is_none_or(|t| deadline < t) {
            attempt.timer_at = Some(deadline);
            let (pid, aid) = (pid.clone(), aid.clone());
            self.add_timer(
                deadline,
                Timer::Lease {
                    pipeline: pid,
                    attempt: aid,
                },
            );
        }
        Ok(false)
    }

    fn set_task_status(&mut self, input: SetTaskStatusInput, now: Now) -> Result<()> {
        let task_id = input.task_id.as_str();
        let Some((pid, aid)) = self.tasks.get(task_id).cloned() else {
            return Err(ServiceError::task_not_found(format!(
                "Task {task_id} not found"
            )));
        };
        if input
            .error_id
            .as_deref()
            .is_some_and(|e| e.starts_with("Service_"))
        {
            return Err(ServiceError::invalid_request(
                "errorId must not begin with \"Service_\"",
            ));
        }
        let status = input.task_status.as_str();
        if !matches!(status, "FINISHED" | "FAILED" | "FALSE") {
            return Err(ServiceError::invalid_request(format!(
                "Invalid taskStatus {status:?}: expected FINISHED, FAILED or FALSE"
            )));
        }
        let p = &mut self.pipelines[pid.as_str()];
        if p.deleted {
            return Err(ServiceError::pipeline_deleted(&pid));
        }
        let attempt = &mut p.attempts[aid.as_str()];
        if attempt.task_id.as_deref() != Some(task_id) {
            return Err(ServiceError::task_not_found(format!(
                "Task {task_id} was not acknowledged in time and has been handed out again"
            )));
        }
        match attempt.status {
            Status::Running => {}
            Status::Canceled => return Ok(()),
            Status::TimedOut => {
                return Err(ServiceError::task_not_found(format!(
                    "Task {task_id} timed out: no progress was reported within its reportProgressTimeout"
                )));
            }
            _ => {
                return Err(ServiceError::task_not_found(format!(
                    "Task {task_id} has already ended"
                )));
            }
        }
        let error = ErrorInfo {
            id: input.error_id,
            message: input.error_message,
            stack_trace: input.error_stack_trace,
        };
        let has_error =
            error.id.is_some() || error.message.is_some() || error.stack_trace.is_some();
        attempt.lease = Lease::Free;
        attempt.actual_end = Some(now.epoch);
        attempt.ended_by_runner = true;
        self.dirty.attempt(&pid, &aid);
        self.dirty.instance(&pid, &attempt.instance);
        attempt.error = has_error.then_some(error.clone());
        let iid = attempt.instance.clone();
        if status == "FINISHED" {
            attempt.status = Status::Finished;
            let inst = &mut p.instances[iid.as_str()];
            inst.status = Status::Finished;
            inst.actual_end = Some(now.epoch);
            inst.error = None;
            self.ended(&pid, &iid, now);
        } else {
            attempt.status = Status::Failed;
            p.instances[iid.as_str()].error = Some(error);
            self.after_failed_attempt(&pid, &iid, Status::Failed, now);
        }
        Ok(())
    }

    fn describe_objects(&self, input: DescribeObjectsInput) -> Result<DescribeObjectsOutput> {
        let p = self.pipeline(&input.pipeline_id)?;
        let start = parse_marker(input.marker.as_deref())?;
        let evaluate = input.evaluate_expressions.unwrap_or(false);
        let found: Vec<&String> = input
            .object_ids
            .iter()
            .filter(|id| object_exists(p, id))
            .collect();
        let page: Vec<PipelineObject> = found
            .iter()
            .skip(start)
            .take(PAGE_SIZE)
            .map(|id| {
                let mut object = render(p, id).expect("filtered to existing objects");
                if evaluate {
                    let ctx = RunContext {
                        pipeline: p,
                        current_instance: runtime_instance(p, id),
                    };
                    for f in &mut object.fields {
                        if let Some(s) = f.string_value.as_mut().filter(|s| s.contains("#{"))
                            && let Ok(v) = expr::evaluate_template(s, id, &ctx)
                        {
                            *s = v;
                        }
                    }
                }
                object
            })
            .collect();
        let more = start + page.len() < found.len();
        Ok(DescribeObjectsOutput {
            pipeline_objects: page,
            marker: more.then(|| (start + PAGE_SIZE).to_string()),
            has_more_results: Some(more),
        })
    }

    fn query_objects(&self, input: QueryObjectsInput) -> Result<QueryObjectsOutput> {
        let p = self.pipeline(&input.pipeline_id)?;
        let start = parse_marker(input.marker.as_deref())?;
        let limit = input.limit.unwrap_or(PAGE_SIZE as i32).max(1) as usize;
        let selectors = input.query.and_then(|q| q.selectors).unwrap_or_default();
        let mut checks = Vec::new();
        for s in &selectors {
            let field = s
                .field_name
                .clone()
                .ok_or_else(|| ServiceError::invalid_request("A selector needs a fieldName"))?;
            let op = s
                .operator
                .as_ref()
                .ok_or_else(|| ServiceError::invalid_request("A selector needs an operator"))?;
            let kind = op
                .r#type
                .as_ref()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| "EQ".into());
            let values = op.values.clone().unwrap_or_default();
            let needed = match kind.as_str() {
                "EQ" | "REF_EQ" => 1,
                "LE" | "GE" => 1,
                "BETWEEN" => 2,
                other => {
                    return Err(ServiceError::invalid_request(format!(
                        "Unknown operator type {other}"
                    )));
                }
            };
            if values.len() < needed {
                return Err(ServiceError::invalid_request(format!(
                    "Operator {kind} on {field} needs {needed} value(s), got {}",
                    values.len()
                )));
            }
            checks.push((field, kind, values));
        }
        let ids: Vec<String> = match input.sphere.as_str() {
            "COMPONENT" => p
                .definition()
                .map(|d| d.objects.iter().map(|o| o.id.clone()).collect())
                .unwrap_or_default(),
            "INSTANCE" => p.instances.keys().cloned().collect(),
            "ATTEMPT" => p.attempts.keys().cloned().collect(),
            other => {
                return Err(ServiceError::invalid_request(format!(
                    "Invalid sphere {other:?}: expected COMPONENT, INSTANCE or ATTEMPT"
                )));
            }
        };
        let matching: Vec<String> = if checks.is_empty() {
            ids
        } else {
            ids.into_iter()
                .filter(|id| {
                    let fields = render(p, id).map(|o| o.fields).unwrap_or_default();
                    checks
                        .iter()
                        .all(|(field, kind, values)| selector_matches(&fields, field, kind, values))
                })
                .collect()
        };
        let page: Vec<String> = matching.iter().skip(start).take(limit).cloned().collect();
        let more = start + page.len() < matching.len();
        Ok(QueryObjectsOutput {
            ids: Some(page),
            marker: more.then(|| (start + limit).to_string()),
            has_more_results: Some(more),
        })
    }
}

fn parse_marker(marker: Option<&str>) -> Result<usize> {
    match marker {
        None | Some("") => Ok(0),
        Some(m) => m
            .parse()
            .map_err(|_| ServiceError::invalid_request(format!("Invalid marker {m:?}"))),
    }
}

fn selector_matches(fields: &[Field], name: &str, kind: &str, values: &[String]) -> bool {
    let present: Vec<&str> = fields
        .iter()
        .filter(|f| f.key == name)
        .filter_map(|f| {
            if kind == "REF_EQ" {
                f.ref_value.as_deref()
            } else {
                f.string_value.as_deref().or(f.ref_value.as_deref())
            }
        })
        .collect();
    present.iter().any(|v| match kind {
        "EQ" | "REF_EQ" => values.iter().any(|w| w == v),
        "LE" => compare(v, &values[0]).is_le(),
        "GE" => compare(v, &values[0]).is_ge(),
        _ => compare(v, &values[0]).is_ge() && compare(v, &values[1]).is_le(),
    })
}

/// Compares two field values as timestamps if both are, else as numbers if both are, else as strings.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    use dp_model::timestamp::parse;
    if let (Some(x), Some(y)) = (
        parse(a).filter(|_| a.contains('-')),
        parse(b).filter(|_| b.contains('-')),
    ) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
    }
    a.cmp(b)
}

fn create_instance(
    p: &mut Pipeline,
    component: &str,
    at: i64,
    end: Option<i64>,
    def: &Arc<Definition>,
) -> String {
    let base = format!("@{component}_{}", format_utc(at));
    let mut id = base.clone();
    let mut n = 1;
    while p.instances.contains_key(&id) {
        n += 1;
        id = format!("{base}_{n}");
    }
    let retries = def
        .string(component, "maximumRetries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(clock::DEFAULT_MAXIMUM_RETRIES);
    let cascade = def
        .string(component, "failureAndRerunMode")
        .is_some_and(|m| m.eq_ignore_ascii_case("cascade"));
    let instance = Instance {
        id: id.clone(),
        component: component.to_string(),
        scheduled_start: at,
        scheduled_end: end,
        status: Status::WaitingOnDependencies,
        paused: p.paused_components.contains(component),
        actual_start: None,
        actual_end: None,
        attempts: Vec::new(),
        max_attempts: retries + 1,
        depends_on: Vec::new(),
        worker_group: def.string(component, "workerGroup"),
        progress_timeout: period_field(
            def,
            component,
            "reportProgressTimeout",
            clock::DEFAULT_PROGRESS_TIMEOUT,
        ),
        retry_delay: period_field(def, component, "retryDelay", clock::DEFAULT_RETRY_DELAY),
        cascade,
        error: None,
        definition: def.clone(),
        activation: p.activation,
    };
    p.by_component
        .entry(component.to_string())
        .or_default()
        .push(id.clone());
    p.instances.insert(id.clone(), instance);
    id
}

fn object_exists(p: &Pipeline, id: &str) -> bool {
    p.instances.contains_key(id)
        || p.attempts.contains_key(id)
        || p.definition().is_some_and(|d| d.object(id).is_some())
}

/// The instance whose runtime fields (`@scheduledStartTime`, ...) an expression on `id` sees.
fn runtime_instance<'a>(p: &'a Pipeline, id: &str) -> Option<&'a Instance> {
    p.instances.get(id).or_else(|| {
        p.attempts
            .get(id)
            .map(|a| &p.instances[a.instance.as_str()])
    })
}

fn push_error_fields(fields: &mut Vec<Field>, error: &Option<ErrorInfo>) {
    if let Some(e) = error {
        if let Some(v) = &e.id {
            fields.push(text("errorId", v));
        }
        if let Some(v) = &e.message {
            fields.push(text("errorMessage", v));
        }
        if let Some(v) = &e.stack_trace {
            fields.push(text("errorStackTrace", v));
        }
    }
}

fn instance_runtime_fields(p: &Pipeline, inst: &Instance) -> Vec<Field> {
    let mut fields = vec![reference("@componentParent", &inst.component)];
    if let Some(head) = inst.attempts.last() {
        fields.push(reference("@headAttempt", head));
    }
    let status = if inst.paused && !inst.status.is_terminal() && inst.status != Status::Running {
        "PAUSED"
    } else {
        inst.status.as_str()
    };
    fields.push(text("@status", status));
    fields.push(text(
        "@scheduledStartTime",
        format_utc(inst.scheduled_start),
    ));
    if let Some(end) = inst.scheduled_end {
        fields.push(text("@scheduledEndTime", format_utc(end)));
    }
    if let Some(t) = inst.actual_start {
        fields.push(text("@actualStartTime", format_utc(t)));
    }
    if let Some(t) = inst.actual_end {
        fields.push(text("@actualEndTime", format_utc(t)));
    }
    fields.push(text("@attemptCount", inst.attempts.len().to_string()));
    fields.push(text(
        "@triesLeft",
        inst.max_attempts
            .saturating_sub(inst.attempts.len() as u32)
            .to_string(),
    ));
    push_error_fields(&mut fields, &inst.error);
    for dep in &inst.depends_on {
        fields.push(reference("@dependsOnInstance", dep));
    }
    fields.push(text("@sphere", "INSTANCE"));
    fields.push(text("@pipelineId", &p.id));
    fields
}

fn attempt_runtime_fields(p: &Pipeline, attempt: &Attempt) -> Vec<Field> {
    let inst = &p.instances[attempt.instance.as_str()];
    let mut fields = vec![
        reference("@componentParent", &inst.component),
        reference("@instanceParent", &inst.id),
        text("@status", attempt.status.as_str()),
        text("@attemptNumber", attempt.number.to_string()),
        text("@scheduledStartTime", format_utc(inst.scheduled_start)),
    ];
    if let Some(end) = inst.scheduled_end {
        fields.push(text("@scheduledEndTime", format_utc(end)));
    }
    if let Some(t) = attempt.actual_start {
        fields.push(text("@actualStartTime", format_utc(t)));
    }
    if let Some(t) = attempt.actual_end {
        fields.push(text("@actualEndTime", format_utc(t)));
    }
    if let Some(h) = &attempt.hostname {
        fields.push(text("@hostname", h));
    }
    if let Some(t) = attempt.last_report {
        fields.push(text("@reportProgressTime", format_utc(t)));
    }
    push_error_fields(&mut fields, &attempt.error);
    fields.push(text("@sphere", "ATTEMPT"));
    fields.push(text("@pipelineId", &p.id));
    fields.extend(attempt.reported.iter().cloned());
    fields
}

/// Runtime fields first, then the component's fields that they do not already name.
fn with_component_fields(mut fields: Vec<Field>, def: &Definition, component: &str) -> Vec<Field> {
    let taken: HashSet<String> = fields.iter().map(|f| f.key.clone()).collect();
    fields.extend(
        def.effective_fields(component)
            .into_iter()
            .filter(|f| !taken.contains(&f.key) && f.key != "parent"),
    );
    fields
}

/// Any object of the pipeline as describe-objects shows it.
fn render(p: &Pipeline, id: &str) -> Option<PipelineObject> {
    if let Some(inst) = p.instances.get(id) {
        let fields = with_component_fields(
            instance_runtime_fields(p, inst),
            &inst.definition,
            &inst.component,
        );
        return Some(PipelineObject {
            id: id.into(),
            name: id.into(),
            fields,
        });
    }
    if let Some(attempt) = p.attempts.get(id) {
        let inst = &p.instances[attempt.instance.as_str()];
        let fields = with_component_fields(
            attempt_runtime_fields(p, attempt),
            &inst.definition,
            &inst.component,
        );
        return Some(PipelineObject {
            id: id.into(),
            name: id.into(),
            fields,
        });
    }
    p.definition().and_then(|d| d.object(id)).cloned()
}

/// Expressions see definition objects through their effective fields, and instances and attempts through their
/// runtime fields too; a component referenced from a task borrows the task's `@` times it lacks.
struct RunContext<'a> {
    pipeline: &'a Pipeline,
    current_instance: Option<&'a Instance>,
}

impl Context for RunContext<'_> {
    fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
        let p = self.pipeline;
        if let Some(inst) = p.instances.get(object) {
            let fields = with_component_fields(
                instance_runtime_fields(p, inst),
                &inst.definition,
                &inst.component,
            );
            return definition::first_of(&fields, key);
        }
        if let Some(a) = p.attempts.get(object) {
            let inst = &p.instances[a.instance.as_str()];
            let fields = with_component_fields(
                attempt_runtime_fields(p, a),
                &inst.definition,
                &inst.component,
            );
            return definition::first_of(&fields, key);
        }
        let def = self
            .current_instance
            .map(|i| &*i.definition)
            .or(p.definition().map(|d| &**d))?;
        def.first(object, key).or_else(|| {
            let inst = self.current_instance.filter(|_| key.starts_with('@'))?;
            definition::first_of(&instance_runtime_fields(p, inst), key)
        })
    }

    fn parameter(&self, id: &str) -> Option<String> {
        let def = self
            .current_instance
            .map(|i| &*i.definition)
            .or(self.pipeline.definition().map(|d| &**d))?;
        def.parameter(id)
    }
}

fn evaluate_on(p: &Pipeline, object: &str, expression: &str) -> Result<String> {
    if !object_exists(p, object) {
        return Err(ServiceError::invalid_request(format!(
            "Object {object} not found in pipeline {}",
            p.id
        )));
    }
    let ctx = RunContext {
        pipeline: p,
        current_instance: runtime_instance(p, object),
    };
    expr::evaluate_template(expression, object, &ctx)
        .map_err(|e| ServiceError::invalid_request(e.message))
}

/// The task object of poll-for-task: the attempt with its activity's fields evaluated, and the objects those
/// fields refer to.
fn task_object(p: &Pipeline, aid: &str, task_id: &str) -> TaskObject {
    let attempt = &p.attempts[aid];
    let inst = &p.instances[attempt.instance.as_str()];
    let def = &inst.definition;
    let ctx = RunContext {
        pipeline: p,
        current_instance: Some(inst),
    };
    let evaluate = |fields: Vec<Field>, current: &str| -> Vec<Field> {
        fields
            .into_iter()
            .map(|mut f| {
                if let Some(s) = f.string_value.as_mut().filter(|s| s.contains("#{"))
                    && let Ok(v) = expr::evaluate_template(s, current, &ctx)
                {
                    *s = v;
                }
                f
            })
            .collect()
    };
    let fields = with_component_fields(attempt_runtime_fields(p, attempt), def, &inst.component);
    let mut objects = IndexMap::new();
    let referenced: Vec<String> = def
        .effective_fields(&inst.component)
        .iter()
        .filter(|f| f.key != "parent" && f.key != "dependsOn")
        .filter_map(|f| f.ref_value.clone())
        .collect();
    objects.insert(
        aid.to_string(),
        PipelineObject {
            id: aid.into(),
            name: aid.into(),
            fields: evaluate(fields, aid),
        },
    );
    for r in referenced {
        if objects.contains_key(&r) {
            continue;
        }
        if let Some(o) = def.object(&r) {
            let fields = evaluate(def.effective_fields(&r), &r);
            objects.insert(
                r.clone(),
                PipelineObject {
                    id: r.clone(),
                    name: o.name.clone(),
                    fields,
                },
            );
        }
    }
    TaskObject {
        task_id: Some(task_id.into()),
        pipeline_id: Some(p.id.clone()),
        attempt_id: Some(aid.into()),
        objects: Some(objects),
    }
}
