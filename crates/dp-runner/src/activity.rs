//! What a task runner runs: the [`Activity`] trait, the [`Task`] it is given, the [`TaskContext`] it reports
//! through, and the [`Outcome`] it ends with.
//!
//! An activity never talks to the service itself: the supervisor (`supervisor.rs`) holds the lease, sends the
//! progress fields the activity sets, and turns the outcome into exactly one `SetTaskStatus`. This module does no
//! IO.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use dp_model::IndexMap;
use dp_model::types::{Field, PipelineObject, TaskObject};
use tokio_util::sync::CancellationToken;

use crate::database::DatabaseUrls;
use crate::logging::RunnerLog;
use crate::storage::Storage;

/// The future an [`Activity`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A kind of work the runner can do, registered under a pipeline object `type` (`ShellCommandActivity`, or a type
/// of your own). `run` must return when [`TaskContext::canceled`] fires, having stopped everything it started.
pub trait Activity: Send + Sync + 'static {
    /// Does the work of `task`; the lease is held meanwhile, however long it takes.
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome>;
}

/// How a task ended, as the activity sees it. The supervisor sends it with `SetTaskStatus`, unless the task was
/// canceled (then nothing is sent, as the API asks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `FINISHED`.
    Finished,
    /// `FAILED`, with the error fields stored on the attempt.
    Failed(Failure),
    /// `FALSE`: a precondition that does not hold.
    False(Failure),
}

/// The error fields of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `errorId`: a short machine-readable cause (`ExitCode_1`). Never starts with `Service_` (that prefix is the
    /// service's own and is refused): the supervisor renames one that does.
    pub error_id: String,
    /// `errorMessage`: what a person reads first.
    pub message: String,
    /// `errorStackTrace`: details, cut to the model's 1,024 characters by the supervisor.
    pub stack_trace: Option<String>,
}

impl Failure {
    /// A failure with an id and a message.
    pub fn new(error_id: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            error_id: error_id.into(),
            message: message.into(),
            stack_trace: None,
        }
    }

    /// The same failure with `errorStackTrace`.
    pub fn with_stack_trace(mut self, trace: impl Into<String>) -> Failure {
        self.stack_trace = Some(trace.into());
        self
    }
}

/// Why a task's work is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The service answered `canceled: true` (deactivated or deleted pipeline, canceled instance).
    Service,
    /// The service no longer knows the task (`TaskNotFoundException`): the lease was lost.
    LeaseLost,
    /// The runner is shutting down and the task's shutdown grace is over.
    Shutdown,
}

/// A task as `PollForTask` handed it out: its ids and the objects (the attempt, and every object it refers to).
#[derive(Debug, Clone)]
pub struct Task {
    /// The opaque task id that report-task-progress and set-task-status take.
    pub task_id: String,
    /// The pipeline (`df-...`).
    pub pipeline_id: String,
    /// The attempt object's id (`@Activity_2026-01-01T00:00:00_Attempt=1`).
    pub attempt_id: String,
    objects: IndexMap<String, PipelineObject>,
}

impl Task {
    /// The task of a `PollForTask` answer.
    pub fn from_task_object(object: TaskObject) -> Task {
        Task {
            task_id: object.task_id.unwrap_or_default(),
            pipeline_id: object.pipeline_id.unwrap_or_default(),
            attempt_id: object.attempt_id.unwrap_or_default(),
            objects: object.objects.unwrap_or_default(),
        }
    }

    /// A task known only by its id (`dp-task-runner exec`): no objects.
    pub fn from_task_id(task_id: impl Into<String>) -> Task {
        Task {
            task_id: task_id.into(),
            pipeline_id: String::new(),
            attempt_id: String::new(),
            objects: IndexMap::new(),
        }
    }

    /// The attempt object (its runtime fields and the activity's effective fields).
    pub fn attempt(&self) -> Option<&PipelineObject> {
        self.objects.get(&self.attempt_id)
    }

    /// Any object of the task by id.
    pub fn object(&self, id: &str) -> Option<&PipelineObject> {
        self.objects.get(id)
    }

    /// Every object of the task.
    pub fn objects(&self) -> impl Iterator<Item = &PipelineObject> {
        self.objects.values()
    }

    /// The first string value of `key` on the attempt.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.attempt().and_then(|o| string_field(o, key))
    }

    /// Every string value of `key` on the attempt, in order (`scriptArgument` repeats).
    pub fn fields(&self, key: &str) -> Vec<&str> {
        self.attempt()
            .map_or_else(Vec::new, |o| string_fields(o, key))
    }

    /// The objects the attempt refers to under `key`, in order (`input`, `output`).
    pub fn refs(&self, key: &str) -> Vec<&PipelineObject> {
        let Some(attempt) = self.attempt() else {
            return Vec::new();
        };
        attempt
            .fields
            .iter()
            .filter(|f| f.key == key)
            .filter_map(|f| f.ref_value.as_deref())
            .filter_map(|id| self.objects.get(id))
            .collect()
    }

    /// The object `object` refers to under `key` (a data node's `database`, `dataFormat`), when the task holds it.
    pub fn referenced(&self, object: &PipelineObject, key: &str) -> Option<&PipelineObject> {
        ref_field(object, key).and_then(|id| self.objects.get(id))
    }

    /// The attempt's `type` (`ShellCommandActivity`).
    pub fn activity_type(&self) -> Option<&str> {
        self.field("type")
    }

    /// The component (`@componentParent`), for the log layout.
    pub fn component_id(&self) -> Option<&str> {
        self.attempt()
            .and_then(|o| ref_field(o, "@componentParent"))
    }

    /// The instance (`@instanceParent`), for the log layout.
    pub fn instance_id(&self) -> Option<&str> {
        self.attempt().and_then(|o| ref_field(o, "@instanceParent"))
    }

    /// The values of the task's secret fields (keys starting with `*`, Data Pipeline's marker), which no log may
    /// show.
    pub fn secret_values(&self) -> Vec<String> {
        self.objects
            .values()
            .flat_map(|o| o.fields.iter())
            .filter(|f| f.key.starts_with('*'))
            .filter_map(|f| f.string_value.clone())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// The first string value of `key` on `object`.
pub fn string_field<'a>(object: &'a PipelineObject, key: &str) -> Option<&'a str> {
    object
        .fields
        .iter()
        .find(|f| f.key == key && f.string_value.is_some())
        .and_then(|f| f.string_value.as_deref())
}

/// Every string value of `key` on `object`, in order.
pub fn string_fields<'a>(object: &'a PipelineObject, key: &str) -> Vec<&'a str> {
    object
        .fields
        .iter()
        .filter(|f| f.key == key)
        .filter_map(|f| f.string_value.as_deref())
        .collect()
}

/// The first reference value of `key` on `object`.
pub fn ref_field<'a>(object: &'a PipelineObject, key: &str) -> Option<&'a str> {
    object
        .fields
        .iter()
        .find(|f| f.key == key && f.ref_value.is_some())
        .and_then(|f| f.ref_value.as_deref())
}

/// What an activity gets besides its task: cancellation, progress fields, its log directory, storage and the
/// runner's log. Cheap to clone.
#[derive(Clone)]
pub struct TaskContext {
    pub(crate) cancel: CancellationToken,
    /// Fires when the runner must stop at once: no cancel grace before SIGKILL.
    pub(crate) kill_now: CancellationToken,
    pub(crate) reason: Arc<Mutex<Option<CancelReason>>>,
    pub(crate) progress: Arc<Mutex<Vec<Field>>>,
    pub(crate) log_dir: PathBuf,
    pub(crate) storage: Storage,
    pub(crate) log: RunnerLog,
    pub(crate) cancel_grace: std::time::Duration,
    pub(crate) time_scale: f64,
    pub(crate) databases: DatabaseUrls,
}

impl TaskContext {
    /// A context for running an activity outside the runner (tests, embedders), never canceled unless
    /// [`TaskContext::cancel`] is called.
    pub fn new(log_dir: PathBuf, storage: Storage, log: RunnerLog) -> TaskContext {
        TaskContext {
            cancel: CancellationToken::new(),
            kill_now: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            progress: Arc::new(Mutex::new(Vec::new())),
            log_dir,
            storage,
            log,
            cancel_grace: std::time::Duration::from_secs(30),
            time_scale: 1.0,
            databases: DatabaseUrls::default(),
        }
    }

    /// The same context, with the addresses of `RdsDatabase`/`RedshiftDatabase` objects (`--database ID=URL`).
    pub fn with_databases(mut self, databases: DatabaseUrls) -> TaskContext {
        self.databases = databases;
        self
    }

    /// The addresses of `RdsDatabase`/`RedshiftDatabase` objects.
    pub fn databases(&self) -> &DatabaseUrls {
        &self.databases
    }

    /// Whether the work must stop now.
    pub fn is_canceled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the work must stop; use it in a `select!` beside the work.
    pub async fn canceled(&self) {
        self.cancel.cancelled().await
    }

    /// Why the work is stopped, once it is.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the work (the supervisor does this on `canceled: true`, a lost lease or shutdown).
    pub fn cancel(&self, reason: CancelReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.cancel.cancel();
    }

    /// Sets a progress field (`percentComplete`, anything), sent with the next progress report. Setting a key
    /// again replaces its value.
    pub fn set_progress_field(&self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let mut fields = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        fields.retain(|f| f.key != key);
        fields.push(Field {
            key,
            string_value: Some(value.into()),
            ref_value: None,
        });
    }

    /// The progress fields set so far.
    pub fn progress_fields(&self) -> Vec<Field> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The attempt's log directory (`OUTPUT/logs/<pipeline>/<component>/<instance>/<attempt>`), created.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Downloads and uploads (`s3://` or local paths).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The runner's log (redacted).
    pub fn log(&self) -> &RunnerLog {
        &self.log
    }

    /// A duration of the service's clock (a period from a task object) in this runner's time: divided by the
    /// runner's time scale (1 against AWS; `dp-local --time-scale N` runs N times faster).
    pub fn service_duration(&self, duration: std::time::Duration) -> std::time::Duration {
        duration.div_f64(self.time_scale.max(1e-9))
    }

    /// Resolves when the runner must stop at once (a second signal): stop children without a grace.
    pub async fn stopping_at_once(&self) {
        self.kill_now.cancelled().await
    }

    /// How long a canceled child gets between SIGTERM and SIGKILL.
    pub fn cancel_grace(&self) -> std::time::Duration {
        self.cancel_grace
    }
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("canceled", &self.is_canceled())
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}
