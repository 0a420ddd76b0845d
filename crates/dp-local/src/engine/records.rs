//! The stored form of the engine's state: one JSON row per pipeline, definition, instance, attempt, task id and
//! runner, and the way back from rows to a running state.
//!
//! Instants (lease deadlines, retry times, schedule timers) are stored as wall-clock epoch milliseconds, so that
//! time spent down counts: a deadline that passed while dp-local was stopped fires as soon as it starts again.
//! Everything derivable (queues, timers, indexes by component and dependents, the `uniqueId` index) is rebuilt
//! on load rather than stored. This module decides what a row holds; the store only keeps rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dp_model::IndexMap;
use dp_model::types::{Field, ParameterObject, ParameterValue, PipelineObject, Tag};
use serde::{Deserialize, Serialize};

use super::{
    Attempt, Cursor, Dirty, ErrorInfo, Instance, Lease, Pipeline, PipelineState, Runner, State,
    Status, Timer, resources,
};
use crate::definition::Definition;
use crate::error::{Error, ErrorKind};
use crate::schedule::Period;
use crate::store::{Row, Table};

/// The meta row that lists the worker groups told to stop.
const STOPPED_GROUPS_ROW: &str = "stoppedWorkerGroups";

/// Maps the process's monotonic instants to wall-clock epoch milliseconds, from one reading of both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    instant: Instant,
    epoch_ms: i64,
}

impl Origin {
    /// Reads both clocks now.
    pub fn now() -> Origin {
        Origin {
            instant: Instant::now(),
            epoch_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }

    fn to_ms(self, at: Instant) -> i64 {
        if at >= self.instant {
            self.epoch_ms + (at - self.instant).as_millis() as i64
        } else {
            self.epoch_ms - (self.instant - at).as_millis() as i64
        }
    }

    fn to_instant(self, ms: i64) -> Instant {
        let delta = ms - self.epoch_ms;
        if delta >= 0 {
            self.instant + Duration::from_millis(delta as u64)
        } else {
            // A deadline in the past: anything not after now fires at once, so clamping is harmless.
            self.instant
                .checked_sub(Duration::from_millis(delta.unsigned_abs()))
                .unwrap_or(self.instant)
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PipelineRecord {
    id: String,
    name: String,
    unique_id: String,
    description: Option<String>,
    tags: Vec<Tag>,
    created: i64,
    deleted: bool,
    state: String,
    has_latest: bool,
    latest_version: u32,
    active_version: u32,
    activation: u32,
    first_activation: Option<i64>,
    last_activation: Option<i64>,
    last_deactivation: Option<i64>,
    last_run: i64,
    paused_components: Vec<String>,
    cursors: Vec<CursorRecord>,
    schedule_timer_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CursorRecord {
    activity: String,
    next: i64,
    period_seconds: Option<i64>,
    period_months: Option<i64>,
    end: Option<i64>,
    remaining: Option<u32>,
    cron: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionRecord {
    objects: Vec<PipelineObject>,
    parameter_objects: Vec<ParameterObject>,
    parameter_values: Vec<ParameterValue>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorRecord {
    id: Option<String>,
    message: Option<String>,
    stack_trace: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceRecord {
    id: String,
    component: String,
    scheduled_start: i64,
    scheduled_end: Option<i64>,
    status: String,
    paused: bool,
    actual_start: Option<i64>,
    actual_end: Option<i64>,
    attempts: Vec<String>,
    max_attempts: u32,
    depends_on: Vec<String>,
    worker_group: Option<String>,
    progress_timeout_ms: u64,
    retry_delay_ms: u64,
    cascade: bool,
    error: Option<ErrorRecord>,
    activation: u32,
    /// Added after schema version 1's first release; absent in older rows.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    late_ms: Option<i64>,
    /// Added with local resources; absent in older rows.
    #[serde(default)]
    runs_on: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    give_up_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttemptRecord {
    instance: String,
    number: u32,
    status: String,
    actual_start: Option<i64>,
    actual_end: Option<i64>,
    hostname: Option<String>,
    task_id: Option<String>,
    /// `free`, `acknowledge` or `progress`.
    lease: String,
    lease_deadline_ms: Option<i64>,
    timer_ms: Option<i64>,
    not_before_ms: Option<i64>,
    ended_by_runner: bool,
    error: Option<ErrorRecord>,
    reported: Vec<Field>,
    last_report: Option<i64>,
    /// Added after schema version 1's first release; absent in older rows.
    #[serde(default)]
    run_deadline_ms: Option<i64>,
    /// Added with local resources; absent in older rows.
    #[serde(default)]
    resource_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskRecord {
    pipeline: String,
    attempt: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunnerRecord {
    id: String,
    worker_group: Option<String>,
    hostname: Option<String>,
    last_heartbeat: i64,
    heartbeats: u64,
}

fn status_from(s: &str) -> Option<Status> {
    Some(match s {
        "WAITING_ON_DEPENDENCIES" => Status::WaitingOnDependencies,
        "WAITING_FOR_RUNNER" => Status::WaitingForRunner,
        "CREATING" => Status::Creating,
        "RUNNING" => Status::Running,
        "FINISHED" => Status::Finished,
        "FAILED" => Status::Failed,
        "CANCELED" => Status::Canceled,
        "CASCADE_FAILED" => Status::CascadeFailed,
        "TIMEDOUT" => Status::TimedOut,
        _ => return None,
    })
}

fn error_record(e: &Option<ErrorInfo>) -> Option<ErrorRecord> {
    e.as_ref().map(|e| ErrorRecord {
        id: e.id.clone(),
        message: e.message.clone(),
        stack_trace: e.stack_trace.clone(),
    })
}

fn error_info(e: Option<ErrorRecord>) -> Option<ErrorInfo> {
    e.map(|e| ErrorInfo {
        id: e.id,
        message: e.message,
        stack_trace: e.stack_trace,
    })
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records are plain data")
}

fn row(table: Table, scope: &str, id: &str, body: String) -> Row {
    Row {
        table,
        scope: scope.to_string(),
        id: id.to_string(),
        body,
    }
}

fn pipeline_record(p: &Pipeline, origin: Origin) -> PipelineRecord {
    let mut paused: Vec<String> = p.paused_components.iter().cloned().collect();
    paused.sort();
    PipelineRecord {
        id: p.id.clone(),
        name: p.name.clone(),
        unique_id: p.unique_id.clone(),
        description: p.description.clone(),
        tags: p.tags.clone(),
        created: p.created,
        deleted: p.deleted,
        state: match p.state {
            PipelineState::Pending => "PENDING",
            PipelineState::Scheduled => "SCHEDULED",
            PipelineState::Paused => "PAUSED",
        }
        .into(),
        has_latest: p.latest.is_some(),
        latest_version: p.latest_version,
        active_version: p.active_version,
        activation: p.activation,
        first_activation: p.first_activation,
        last_activation: p.last_activation,
        last_deactivation: p.last_deactivation,
        last_run: p.last_run,
        paused_components: paused,
        cursors: p
            .cursors
            .iter()
            .map(|(activity, c)| CursorRecord {
                activity: activity.clone(),
                next: c.next,
                period_seconds: match c.period {
                    Period::Seconds(s) => Some(s),
                    Period::Months(_) => None,
                },
                period_months: match c.period {
                    Period::Months(m) => Some(m),
                    Period::Seconds(_) => None,
                },
                end: c.end,
                remaining: c.remaining,
                cron: c.cron,
            })
            .collect(),
        schedule_timer_ms: p.schedule_timer.map(|t| origin.to_ms(t)),
    }
}

fn definition_record(d: &Definition) -> DefinitionRecord {
    DefinitionRecord {
        objects: d.objects.clone(),
        parameter_objects: d.parameter_objects.clone(),
        parameter_values: d.parameter_values.clone(),
    }
}

fn instance_record(i: &Instance, origin: Origin) -> InstanceRecord {
    InstanceRecord {
        id: i.id.clone(),
        component: i.component.clone(),
        scheduled_start: i.scheduled_start,
        scheduled_end: i.scheduled_end,
        status: i.status.as_str().into(),
        paused: i.paused,
        actual_start: i.actual_start,
        actual_end: i.actual_end,
        attempts: i.attempts.clone(),
        max_attempts: i.max_attempts,
        depends_on: i.depends_on.clone(),
        worker_group: i.worker_group.clone(),
        progress_timeout_ms: i.progress_timeout.as_millis() as u64,
        retry_delay_ms: i.retry_delay.as_millis() as u64,
        cascade: i.cascade,
        error: error_record(&i.error),
        activation: i.activation,
        events: i.events.clone(),
        late_ms: i.late_at.map(|t| origin.to_ms(t)),
        runs_on: i.runs_on.clone(),
        owner: i.owner.clone(),
        give_up_ms: i.give_up_at.map(|t| origin.to_ms(t)),
    }
}

fn attempt_record(a: &Attempt, origin: Origin) -> AttemptRecord {
    let (lease, deadline) = match a.lease {
        Lease::Free => ("free", None),
        Lease::Acknowledge(d) => ("acknowledge", Some(origin.to_ms(d))),
        Lease::Progress(d) => ("progress", Some(origin.to_ms(d))),
    };
    AttemptRecord {
        instance: a.instance.clone(),
        number: a.number,
        status: a.status.as_str().into(),
        actual_start: a.actual_start,
        actual_end: a.actual_end,
        hostname: a.hostname.clone(),
        task_id: a.task_id.clone(),
        lease: lease.into(),
        lease_deadline_ms: deadline,
        timer_ms: a.timer_at.map(|t| origin.to_ms(t)),
        not_before_ms: a.not_before.map(|t| origin.to_ms(t)),
        ended_by_runner: a.ended_by_runner,
        error: error_record(&a.error),
        reported: a.reported.clone(),
        last_report: a.last_report,
        run_deadline_ms: a.run_deadline.map(|t| origin.to_ms(t)),
        resource_id: a.resource_id.clone(),
    }
}

fn runner_record(r: &Runner) -> RunnerRecord {
    RunnerRecord {
        id: r.id.clone(),
        worker_group: r.worker_group.clone(),
        hostname: r.hostname.clone(),
        last_heartbeat: r.last_heartbeat,
        heartbeats: r.heartbeats,
    }
}

impl State {
    /// The rows the last operations changed (and forgets them).
    pub(super) fn take_rows(&mut self, origin: Origin) -> Vec<Row> {
        let dirty = std::mem::replace(
            &mut self.dirty,
            Dirty {
                enabled: true,
                ..Dirty::default()
            },
        );
        let mut rows = Vec::new();
        for (pid, ()) in &dirty.pipelines {
            if let Some(p) = self.pipelines.get(pid) {
                rows.push(row(
                    Table::Pipelines,
                    "",
                    pid,
                    json(&pipeline_record(p, origin)),
                ));
            }
        }
        for ((pid, name), ()) in &dirty.definitions {
            let Some(p) = self.pipelines.get(pid) else {
                continue;
            };
            let def = if name == "latest" {
                p.latest.as_ref()
            } else {
                p.active.as_ref()
            };
            if let Some(def) = def {
                rows.push(row(
                    Table::Definitions,
                    pid,
                    name,
                    json(&definition_record(def)),
                ));
            }
        }
        for ((pid, iid), ()) in &dirty.instances {
            if let Some(i) = self.pipelines.get(pid).and_then(|p| p.instances.get(iid)) {
                rows.push(row(
                    Table::Instances,
                    pid,
                    iid,
                    json(&instance_record(i, origin)),
                ));
            }
        }
        for ((pid, aid), ()) in &dirty.attempts {
            if let Some(a) = self.pipelines.get(pid).and_then(|p| p.attempts.get(aid)) {
                rows.push(row(
                    Table::Attempts,
                    pid,
                    aid,
                    json(&attempt_record(a, origin)),
                ));
            }
        }
        for (task_id, pid, aid) in &dirty.tasks {
            let body = json(&TaskRecord {
                pipeline: pid.clone(),
                attempt: aid.clone(),
            });
            rows.push(row(Table::Tasks, "", task_id, body));
        }
        if dirty.meta {
            let groups: Vec<&String> = self.stopped_groups.iter().collect();
            rows.push(row(Table::Meta, "", STOPPED_GROUPS_ROW, json(&groups)));
        }
        for (id, ()) in &dirty.runners {
            if let Some(r) = self.runners.get(id) {
                rows.push(row(Table::Runners, "", id, json(&runner_record(r))));
            }
        }
        rows
    }

    /// Rebuilds a running state from stored rows: indexes, queues and timers included.
    pub(super) fn restore(
        tables: HashMap<Table, Vec<Row>>,
        origin: Origin,
    ) -> Result<State, Error> {
        State::restore_with(tables, origin, &mut HashMap::new())
    }

    /// [`State::restore`], taking definitions already parsed from `parsed` (by pipeline and name) and adding
    /// the ones it parses: a definition row does not change once written, except `latest`, which the caller
    /// removes from `parsed` when it changes.
    pub(super) fn restore_with(
        tables: HashMap<Table, Vec<Row>>,
        origin: Origin,
        parsed: &mut HashMap<(String, String), Arc<Definition>>,
    ) -> Result<State, Error> {
        let bad = |what: String| Error::new(ErrorKind::State, format!("the state file {what}"));
        let rows = |t: Table| tables.get(&t).map(Vec::as_slice).unwrap_or(&[]);
        let mut state = State {
            dirty: Dirty {
                enabled: true,
                ..Dirty::default()
            },
            ..State::default()
        };
        let mut definitions: HashMap<(String, String), Arc<Definition>> = HashMap::new();
        for r in rows(Table::Definitions) {
            let key = (r.scope.clone(), r.id.clone());
            let definition = match parsed.get(&key) {
                Some(d) => d.clone(),
                None => {
                    let d: DefinitionRecord = parse_row(r, "the state file")?;
                    let d = Arc::new(Definition::new(
                        d.objects,
                        d.parameter_objects,
                        d.parameter_values,
                    ));
                    parsed.insert(key.clone(), d.clone());
                    d
                }
            };
            definitions.insert(key, definition);
        }
        for r in rows(Table::Pipelines) {
            let p: PipelineRecord = parse_row(r, "the state file")?;
            let state_of = match p.state.as_str() {
                "PENDING" => PipelineState::Pending,
                "SCHEDULED" => PipelineState::Scheduled,
                "PAUSED" => PipelineState::Paused,
                other => return Err(bad(format!("has a pipeline in state {other:?}"))),
            };
            let definition = |name: String| definitions.get(&(p.id.clone(), name)).cloned();
            let latest = if p.has_latest {
                Some(
                    definition("latest".into())
                        .ok_or_else(|| bad(format!("lacks the latest definition of {}", p.id)))?,
                )
            } else {
                None
            };
            let active = if p.activation > 0 {
                Some(
                    definition(format!("active/{}", p.activation))
                        .ok_or_else(|| bad(format!("lacks the active definition of {}", p.id)))?,
                )
            } else {
                None
            };
            let mut cursors = IndexMap::new();
            for c in p.cursors {
                let period = match (c.period_seconds, c.period_months) {
                    (Some(s), _) => Period::Seconds(s),
                    (None, Some(m)) => Period::Months(m),
                    (None, None) => {
                        return Err(bad(format!("has a cursor without a period in {}", p.id)));
                    }
                };
                cursors.insert(
                    c.activity,
                    Cursor {
                        next: c.next,
                        period,
                        end: c.end,
                        remaining: c.remaining,
                        cron: c.cron,
                    },
                );
            }
            if !p.deleted {
                state
                    .by_unique
                    .insert((p.name.clone(), p.unique_id.clone()), p.id.clone());
            }
            state.pipelines.insert(
                p.id.clone(),
                Pipeline {
                    id: p.id,
                    name: p.name,
                    unique_id: p.unique_id,
                    description: p.description,
                    tags: p.tags,
                    created: p.created,
                    deleted: p.deleted,
                    state: state_of,
                    latest,
                    latest_version: p.latest_version,
                    active,
                    active_version: p.active_version,
                    activation: p.activation,
                    first_activation: p.first_activation,
                    last_activation: p.last_activation,
                    last_deactivation: p.last_deactivation,
                    last_run: p.last_run,
                    instances: IndexMap::new(),
                    attempts: IndexMap::new(),
                    dependents: HashMap::new(),
                    by_component: HashMap::new(),
                    paused_components: p.paused_components.into_iter().collect(),
                    cursors,
                    schedule_timer: p.schedule_timer_ms.map(|ms| origin.to_instant(ms)),
                },
            );
        }
        for r in rows(Table::Instances) {
            let i: InstanceRecord = parse_row(r, "the state file")?;
            let Some(p) = state.pipelines.get_mut(&r.scope) else {
                return Err(bad(format!("has instance {} of an unknown pipeline", r.id)));
            };
            let definition = definitions
                .get(&(r.scope.clone(), format!("active/{}", i.activation)))
                .cloned()
                .ok_or_else(|| bad(format!("lacks the definition of instance {}", i.id)))?;
            let instance =
                instance_from(i, definition, origin).map_err(|e| bad(format!("has {e}")))?;
            put_instance(p, instance);
        }
        for r in rows(Table::Attempts) {
            let a: AttemptRecord = parse_row(r, "the state file")?;
            let Some(p) = state.pipelines.get_mut(&r.scope) else {
                return Err(bad(format!("has attempt {} of an unknown pipeline", r.id)));
            };
            if !p.instances.contains_key(&a.instance) {
                return Err(bad(format!("has attempt {} of an unknown instance", r.id)));
            }
            let attempt = attempt_from(a, &r.id, origin).map_err(|e| bad(format!("has {e}")))?;
            p.attempts.insert(r.id.clone(), attempt);
        }
        for r in rows(Table::Tasks) {
            let t: TaskRecord = parse_row(r, "the state file")?;
            if !state
                .pipelines
                .get(&t.pipeline)
                .is_some_and(|p| p.attempts.contains_key(&t.attempt))
            {
                return Err(bad(format!("has task {} of an unknown attempt", r.id)));
            }
            state.tasks.insert(r.id.clone(), (t.pipeline, t.attempt));
        }
        for r in rows(Table::Runners) {
            let x: RunnerRecord = parse_row(r, "the state file")?;
            state.runners.insert(
                x.id.clone(),
                Runner {
                    id: x.id,
                    worker_group: x.worker_group,
                    hostname: x.hostname,
                    last_heartbeat: x.last_heartbeat,
                    heartbeats: x.heartbeats,
                },
            );
        }
        if let Some(r) = rows(Table::Meta)
            .iter()
            .find(|r| r.id == STOPPED_GROUPS_ROW)
        {
            let groups: Vec<String> = parse_row(r, "the state file")?;
            state.stopped_groups = groups.into_iter().collect();
        }
        state.rearm();
        // Rebuilding made no change worth writing.
        state.dirty = Dirty {
            enabled: true,
            ..Dirty::default()
        };
        Ok(state)
    }

    /// Takes in committed instance and attempt rows of pipeline `pid`, already in the state with every other row
    /// as committed (another node's changes, caught up), without rebuilding the pipeline from all its rows: each
    /// row replaces its instance or attempt, and the pipeline's timers and queue places are made anew (the
    /// caller has removed the old ones). `Ok(false)` when the rows cannot be taken in this way (an instance of a
    /// definition the pipeline does not hold): the caller then rebuilds the pipeline from all its rows.
    pub(super) fn apply_rows(
        &mut self,
        pid: &str,
        rows: &[&Row],
        origin: Origin,
    ) -> Result<bool, Error> {
        let bad = |what: String| Error::new(ErrorKind::State, format!("the database {what}"));
        let Some(p) = self.pipelines.get_mut(pid) else {
            return Ok(false);
        };
        for r in rows.iter().filter(|r| r.table == Table::Instances) {
            let i: InstanceRecord = parse_row(r, "the database")?;
            let definition = match p.instances.get(&i.id) {
                Some(known) if known.activation == i.activation => known.definition.clone(),
                _ if p.activation == i.activation => match &p.active {
                    Some(d) => d.clone(),
                    None => return Ok(false),
                },
                _ => return Ok(false),
            };
            let instance =
                instance_from(i, definition, origin).map_err(|e| bad(format!("has {e}")))?;
            put_instance(p, instance);
        }
        for r in rows.iter().filter(|r| r.table == Table::Attempts) {
            let a: AttemptRecord = parse_row(r, "the database")?;
            if !p.instances.contains_key(&a.instance) {
                return Err(bad(format!("has attempt {} of an unknown instance", r.id)));
            }
            let attempt = attempt_from(a, &r.id, origin).map_err(|e| bad(format!("has {e}")))?;
            p.attempts.insert(r.id.clone(), attempt);
        }
        for a in p.attempts.values_mut() {
            a.queued = false;
        }
        let mut timers = Vec::new();
        let mut ready = Vec::new();
        arm(pid, p, &mut timers, &mut ready);
        for (at, timer) in timers {
            self.add_timer(at, timer);
        }
        // Places in the queues are what the rows imply; long polls are woken by the other node's notice.
        let woken = std::mem::take(&mut self.woken);
        for (pid, aid) in ready {
            self.enqueue_only(&pid, &aid);
        }
        self.woken = woken;
        Ok(true)
    }

    /// Re-creates the timers and queues that a loaded state implies: lease and retry deadlines, schedule times,
    /// and every attempt ready to be handed out.
    fn rearm(&mut self) {
        let mut timers = Vec::new();
        let mut ready = Vec::new();
        for (pid, p) in &self.pipelines {
            arm(pid, p, &mut timers, &mut ready);
        }
        for (at, timer) in timers {
            self.add_timer(at, timer);
        }
        for (pid, aid) in ready {
            // Runners for them are seen to when the launcher is connected (`Engine::use_resources`).
            self.enqueue_only(&pid, &aid);
        }
    }
}

/// The timers and queue places that a pipeline's stored state implies.
fn arm(
    pid: &str,
    p: &Pipeline,
    timers: &mut Vec<(Instant, Timer)>,
    ready: &mut Vec<(String, String)>,
) {
    if let Some(at) = p.schedule_timer {
        timers.push((
            at,
            Timer::Schedule {
                pipeline: pid.to_string(),
            },
        ));
    }
    for (iid, i) in &p.instances {
        if let Some(at) = i.late_at
            && !i.status.is_terminal()
        {
            timers.push((
                at,
                Timer::Late {
                    pipeline: pid.to_string(),
                    instance: iid.clone(),
                },
            ));
        }
    }
    for (aid, a) in &p.attempts {
        if let Some(at) = a.timer_at {
            timers.push((
                at,
                Timer::Lease {
                    pipeline: pid.to_string(),
                    attempt: aid.clone(),
                },
            ));
        }
        let resource = resources::role_of(&p.instances[a.instance.as_str()])
            == crate::definition::Role::Resource;
        if let Some(at) = a.run_deadline
            && resource
            && matches!(a.status, Status::Creating | Status::Running)
        {
            timers.push((
                at,
                Timer::Terminate {
                    pipeline: pid.to_string(),
                    attempt: aid.clone(),
                },
            ));
        } else if let Some(at) = a.run_deadline
            && a.status == Status::Running
        {
            timers.push((
                at,
                Timer::AttemptTimeout {
                    pipeline: pid.to_string(),
                    attempt: aid.clone(),
                },
            ));
        }
        if a.status == Status::WaitingForRunner && a.lease == Lease::Free {
            match a.not_before {
                Some(at) if at > Instant::now() => timers.push((
                    at,
                    Timer::Retry {
                        pipeline: pid.to_string(),
                        attempt: aid.clone(),
                    },
                )),
                _ => ready.push((pid.to_string(), aid.clone())),
            }
        }
    }
}

/// An instance from its record; the error names it.
fn instance_from(
    i: InstanceRecord,
    definition: Arc<Definition>,
    origin: Origin,
) -> Result<Instance, String> {
    let status = status_from(&i.status)
        .ok_or_else(|| format!("instance {} in status {:?}", i.id, i.status))?;
    Ok(Instance {
        id: i.id,
        component: i.component,
        scheduled_start: i.scheduled_start,
        scheduled_end: i.scheduled_end,
        status,
        paused: i.paused,
        actual_start: i.actual_start,
        actual_end: i.actual_end,
        attempts: i.attempts,
        max_attempts: i.max_attempts,
        depends_on: i.depends_on,
        worker_group: i.worker_group,
        progress_timeout: Duration::from_millis(i.progress_timeout_ms),
        retry_delay: Duration::from_millis(i.retry_delay_ms),
        cascade: i.cascade,
        error: error_info(i.error),
        definition,
        activation: i.activation,
        events: i.events,
        late_at: i.late_ms.map(|ms| origin.to_instant(ms)),
        runs_on: i.runs_on,
        owner: i.owner,
        give_up_at: i.give_up_ms.map(|ms| origin.to_instant(ms)),
    })
}

/// An attempt from its record (not queued: that is for [`arm`] to decide); the error names it.
fn attempt_from(a: AttemptRecord, id: &str, origin: Origin) -> Result<Attempt, String> {
    let status =
        status_from(&a.status).ok_or_else(|| format!("attempt {id} in status {:?}", a.status))?;
    let deadline = a.lease_deadline_ms.map(|ms| origin.to_instant(ms));
    let lease = match (a.lease.as_str(), deadline) {
        ("free", _) => Lease::Free,
        ("acknowledge", Some(d)) => Lease::Acknowledge(d),
        ("progress", Some(d)) => Lease::Progress(d),
        (other, _) => return Err(format!("attempt {id} with lease {other:?}")),
    };
    Ok(Attempt {
        instance: a.instance,
        number: a.number,
        status,
        actual_start: a.actual_start,
        actual_end: a.actual_end,
        hostname: a.hostname,
        task_id: a.task_id,
        lease,
        timer_at: a.timer_ms.map(|ms| origin.to_instant(ms)),
        not_before: a.not_before_ms.map(|ms| origin.to_instant(ms)),
        queued: false,
        ended_by_runner: a.ended_by_runner,
        error: error_info(a.error),
        reported: a.reported,
        last_report: a.last_report,
        run_deadline: a.run_deadline_ms.map(|ms| origin.to_instant(ms)),
        resource_id: a.resource_id,
    })
}

/// A stored row's body; the error names the row, in `place` ("the state file", "the database").
fn parse_row<T: for<'de> Deserialize<'de>>(row: &Row, place: &str) -> Result<T, Error> {
    serde_json::from_str(&row.body).map_err(|e| {
        Error::new(
            ErrorKind::State,
            format!(
                "{place} has a bad {} row {}/{}: {e}",
                row.table.name(),
                row.scope,
                row.id
            ),
        )
    })
}

/// Puts `instance` into its pipeline, indexed by component and by what it depends on when it is new there.
fn put_instance(p: &mut Pipeline, instance: Instance) {
    if !p.instances.contains_key(&instance.id) {
        p.by_component
            .entry(instance.component.clone())
            .or_default()
            .push(instance.id.clone());
        for dep in &instance.depends_on {
            p.dependents
                .entry(dep.clone())
                .or_default()
                .push(instance.id.clone());
        }
    }
    p.instances.insert(instance.id.clone(), instance);
}
