//! The worker: polls for tasks of one worker group, holds at most `--tasks` at once (each in its own supervisor),
//! sends heartbeats, and shuts down as a state, never a panic.
//!
//! Shutdown has three entrances. [`Control::drain`] (the first SIGTERM/SIGINT): no new polls, held tasks get the
//! shutdown grace, then their work is stopped and they are failed so the service retries them at once.
//! [`Control::stop_now`] (a second signal): held tasks are stopped at once and the runner exits without waiting on
//! the service. A heartbeat answered `terminate: true`: no new polls, held tasks finish as they would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dp_model::ops;
use dp_model::types::{PollForTaskInput, ReportTaskRunnerHeartbeatInput};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, Failure, Outcome, Task, TaskContext};
use crate::config::RunnerConfig;
use crate::copy::CopyActivity;
use crate::logging::RunnerLog;
use crate::precondition::{Check, Precondition, RdsSqlPrecondition};
use crate::redshift_copy::RedshiftCopyActivity;
use crate::shell::ShellCommand;
use crate::sql::SqlActivity;
use crate::storage::{Location, Storage};
use crate::supervisor::{Lease, TaskEnd, retry_delay};

/// Turns the runner's shutdown states on, from a signal handler or from code. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Control {
    drain: CancellationToken,
    terminate: CancellationToken,
    force: CancellationToken,
    abort: CancellationToken,
}

impl Control {
    /// Stop polling; held tasks get the shutdown grace, then are stopped and failed (`TaskRunnerShutdown`).
    pub fn drain(&self) {
        self.drain.cancel();
    }

    /// Stop everything now: held tasks are stopped at once, undelivered outcomes are given up.
    pub fn stop_now(&self) {
        self.drain.cancel();
        self.force.cancel();
        self.abort.cancel();
    }

    /// Whether [`Control::drain`] (or more) was called.
    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled() || self.terminate.is_cancelled()
    }

    fn stopped_polling(&self) -> impl std::future::Future<Output = ()> + '_ {
        let (drain, terminate) = (self.drain.clone(), self.terminate.clone());
        async move {
            tokio::select! {
                _ = drain.cancelled() => {}
                _ = terminate.cancelled() => {}
            }
        }
    }
}

/// What a run did: counts of task ends, and the last one (for `--once`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Tasks handed to this runner.
    pub received: usize,
    /// Ends, by kind.
    pub finished: usize,
    /// `FAILED` sent.
    pub failed: usize,
    /// `FALSE` sent.
    pub false_: usize,
    /// Canceled by the service.
    pub canceled: usize,
    /// Lease lost or never acknowledged.
    pub lost: usize,
    /// Failed because the runner shut down.
    pub shutdown: usize,
    /// Outcome not delivered (stopped at once).
    pub abandoned: usize,
    /// The end of the last task.
    pub last: Option<TaskEnd>,
}

impl RunSummary {
    fn add(&mut self, end: TaskEnd) {
        match &end {
            TaskEnd::Finished => self.finished += 1,
            TaskEnd::Failed(_) => self.failed += 1,
            TaskEnd::False => self.false_ += 1,
            TaskEnd::Canceled => self.canceled += 1,
            TaskEnd::LeaseLost => self.lost += 1,
            TaskEnd::Shutdown => self.shutdown += 1,
            TaskEnd::Abandoned => self.abandoned += 1,
        }
        self.last = Some(end);
    }
}

/// A task runner for one worker group.
pub struct Runner {
    config: RunnerConfig,
    client: Arc<dp_wire::Client>,
    activities: HashMap<String, Arc<dyn Activity>>,
    log: RunnerLog,
    storage: Storage,
    control: Control,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .field("activities", &self.activities.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A runner that could not start.
#[derive(Debug)]
pub enum StartError {
    /// The log directory or file could not be made.
    Log(std::io::Error),
    /// The client could not be made.
    Client(dp_wire::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Log(e) => write!(f, "cannot open the runner log: {e}"),
            StartError::Client(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl Runner {
    /// A runner with the built-in activities (`ShellCommandActivity`, `ShellCommandPrecondition`, the data
    /// preconditions of [`crate::precondition`]), logging to
    /// `OUTPUT/logs/dp-task-runner.log`.
    pub fn new(config: RunnerConfig) -> Result<Runner, StartError> {
        let log = RunnerLog::open(
            &config.logs_dir().join("dp-task-runner.log"),
            config.log_format,
            config.log_to_stderr,
        )
        .map_err(StartError::Log)?;
        log.add_secrets(config.secrets.iter().cloned());
        let mut client = config.client().map_err(StartError::Client)?;
        if config.wire.debug {
            // dp-wire redacts secrets by name; the runner also knows the values of every task's secret fields,
            // which may travel under other names (a scriptArgument holding `#{*password}`).
            let redactor = log.clone();
            client = client.with_log_sink(Arc::new(move |line: &str| {
                eprintln!("{}", redactor.redact(line));
            }));
        }
        let client = Arc::new(client);
        let storage = Storage::new(client.clone(), config.effective_s3_endpoint())
            .with_dynamodb_endpoint(config.effective_dynamodb_endpoint());
        let mut runner = Runner {
            config,
            client,
            activities: HashMap::new(),
            log,
            storage,
            control: Control::default(),
        };
        runner.register("ShellCommandActivity", ShellCommand::activity());
        runner.register("ShellCommandPrecondition", ShellCommand::precondition());
        for (type_name, check) in Check::ALL {
            runner.register(type_name, Precondition(check));
        }
        runner.register("SqlActivity", SqlActivity);
        runner.register("CopyActivity", CopyActivity);
        runner.register(
            "RedshiftCopyActivity",
            RedshiftCopyActivity::new(runner.config.redshift_copy),
        );
        runner.register("EmrActivity", crate::emr::EmrActivity);
        runner.register("RdsSqlPrecondition", RdsSqlPrecondition);
        runner.register("Exists", crate::precondition::Exists);
        Ok(runner)
    }

    /// Runs tasks whose object `type` is `type_name` with `activity` (replacing a built-in of that name).
    pub fn register(&mut self, type_name: impl Into<String>, activity: impl Activity) {
        self.activities.insert(type_name.into(), Arc::new(activity));
    }

    /// Resolves what needs no network (profile files, region, endpoint), so a runner that can never work says why
    /// before it starts polling.
    pub async fn check_configuration(&self) -> Result<(), dp_wire::Error> {
        self.client.region().await?;
        self.client.endpoint_url().await?;
        Ok(())
    }

    /// The handle that drains or stops this runner.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The runner log (for embedders that want to write to it).
    pub fn log(&self) -> &RunnerLog {
        &self.log
    }

    /// Holds one task that was polled elsewhere (`dp-task-runner exec`): acknowledges it, runs `activity` with
    /// the lease kept, and delivers its outcome. Drain and stop through [`Runner::control`] as for [`Runner::run`].
    pub async fn hold(self, task: Task, activity: impl Activity) -> TaskEnd {
        let lease = Lease {
            client: self.client.clone(),
            log: self.log.clone(),
            progress_interval: self.config.progress_interval,
            time_scale: self.config.time_scale,
            force: self.control.force.clone(),
            abort: self.control.abort.clone(),
        };
        let grace_timer = tokio::spawn({
            let (control, grace) = (self.control.clone(), self.config.shutdown_grace);
            async move {
                control.drain.cancelled().await;
                tokio::time::sleep(grace).await;
                control.force.cancel();
            }
        });
        let parent_watch = self
            .config
            .exit_with_parent
            .then(|| tokio::spawn(watch_parent(self.control.clone(), self.log.clone())));
        let context = TaskContext {
            cancel: CancellationToken::new(),
            kill_now: self.control.abort.clone(),
            reason: Default::default(),
            progress: Default::default(),
            log_dir: attempt_log_dir(&self.config.logs_dir(), &task),
            storage: self.storage.clone(),
            log: self.log.clone(),
            cancel_grace: self.config.cancel_grace,
            time_scale: self.config.time_scale,
            databases: self.config.databases.clone(),
        };
        let end = lease.hold(task, Arc::new(activity), context).await;
        grace_timer.abort();
        if let Some(watch) = parent_watch {
            watch.abort();
        }
        end
    }

    /// Polls and runs tasks until drained, stopped or terminated (or, with `once`, until one task has ended).
    pub async fn run(self) -> RunSummary {
        let Runner {
            config,
            client,
            activities,
            log,
            storage,
            control,
        } = self;
        let config = Arc::new(config);
        let activities = Arc::new(activities);
        log.info(
            "dp-task-runner started",
            &[
                ("workerGroup", &config.worker_group),
                ("taskrunnerId", &config.taskrunner_id),
                ("hostname", &config.hostname),
                ("tasks", &config.tasks.to_string()),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
        );
        let lease = Lease {
            client: client.clone(),
            log: log.clone(),
            progress_interval: config.progress_interval,
            time_scale: config.time_scale,
            force: control.force.clone(),
            abort: control.abort.clone(),
        };

        let parent_watch = config
            .exit_with_parent
            .then(|| tokio::spawn(watch_parent(control.clone(), log.clone())));
        let heartbeat = tokio::spawn(heartbeats(
            client.clone(),
            config.clone(),
            log.clone(),
            control.clone(),
        ));
        let stop_rotating = CancellationToken::new();
        let log_rotation = tokio::spawn(rotate_runner_log(
            config.clone(),
            storage.clone(),
            log.clone(),
            stop_rotating.clone(),
        ));
        // After the first signal, held tasks get the shutdown grace; then their work is stopped.
        let grace_timer = tokio::spawn({
            let (control, grace, log) = (control.clone(), config.shutdown_grace, log.clone());
            async move {
                control.drain.cancelled().await;
                log.info(
                    "shutting down: no new tasks; held tasks have the shutdown grace",
                    &[("grace_seconds", &grace.as_secs_f64().to_string())],
                );
                tokio::time::sleep(grace).await;
                control.force.cancel();
            }
        });

        let permits = Arc::new(Semaphore::new(config.tasks.max(1)));
        let mut held: JoinSet<TaskEnd> = JoinSet::new();
        let mut summary = RunSummary::default();
        let mut failures = 0u32;
        loop {
            while let Some(done) = held.try_join_next() {
                summary.add(done.unwrap_or(TaskEnd::Abandoned));
            }
            if config.once && summary.received > 0 {
                break;
            }
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = control.stopped_polling() => break,
            };
            let input = PollForTaskInput {
                worker_group: config.worker_group.clone(),
                hostname: Some(config.hostname.clone()),
                instance_identity: None,
            };
            let polled = tokio::select! {
                polled = client.call::<ops::PollForTask>(&input) => polled,
                // An abandoned long poll may have been given a task: the service hands it out again once its
                // acknowledgement window passes, so nothing is lost.
                _ = control.stopped_polling() => break,
            };
            match polled {
                Ok(output) => {
                    failures = 0;
                    let Some(object) = output.task_object else {
                        continue;
                    };
                    let task = Task::from_task_object(object);
                    summary.received += 1;
                    log.add_secrets(task.secret_values());
                    let type_name = task.activity_type().unwrap_or_default().to_string();
                    log.info(
                        "task received",
                        &[
                            ("task", &task.task_id),
                            ("pipeline", &task.pipeline_id),
                            ("attempt", &task.attempt_id),
                            ("type", &type_name),
                        ],
                    );
                    let activity = activities.get(&type_name).cloned().unwrap_or_else(|| {
                        let mut known: Vec<String> = activities.keys().cloned().collect();
                        known.sort();
                        Arc::new(Unsupported(type_name.clone(), Arc::new(known)))
                    });
                    let context = TaskContext {
                        cancel: CancellationToken::new(),
                        kill_now: control.abort.clone(),
                        reason: Default::default(),
                        progress: Default::default(),
                        log_dir: attempt_log_dir(&config.logs_dir(), &task),
                        storage: storage.clone(),
                        log: log.clone(),
                        cancel_grace: config.cancel_grace,
                        time_scale: config.time_scale,
                        databases: config.databases.clone(),
                    };
                    let (lease, config, storage) = (lease.clone(), config.clone(), storage.clone());
                    held.spawn(async move {
                        let log_dir = context.log_dir.clone();
                        let log_uri = config
                            .log_uri
                            .clone()
                            .or_else(|| task.field("pipelineLogUri").map(str::to_string));
                        let prefix = attempt_log_prefix(&task);
                        let end = lease.hold(task, activity, context).await;
                        if let Some(uri) = log_uri {
                            upload_attempt_logs(&storage, &lease.log, &log_dir, &uri, &prefix)
                                .await;
                        }
                        drop(permit);
                        end
                    });
                }
                Err(e) => {
                    failures += 1;
                    let wait = retry_delay(failures, config.poll_backoff_cap);
                    log.warn(
                        &format!(
                            "poll-for-task failed (retry in {:.1}s): {e}",
                            wait.as_secs_f64()
                        ),
                        &[],
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = control.stopped_polling() => break,
                    }
                }
            }
        }

        while let Some(done) = held.join_next().await {
            summary.add(done.unwrap_or(TaskEnd::Abandoned));
        }
        heartbeat.abort();
        grace_timer.abort();
        if let Some(watch) = parent_watch {
            watch.abort();
        }
        // A rotation under way finishes its upload (bounded), so no closed file misses --logUri.
        stop_rotating.cancel();
        if tokio::time::timeout(Duration::from_secs(30), log_rotation)
            .await
            .is_err()
        {
            log.warn(
                "the last rotated runner log's upload did not finish in 30 s",
                &[],
            );
        }
        log.info(
            "dp-task-runner stopped",
            &[
                ("received", &summary.received.to_string()),
                ("finished", &summary.finished.to_string()),
                ("failed", &summary.failed.to_string()),
                ("canceled", &summary.canceled.to_string()),
                ("shutdown", &summary.shutdown.to_string()),
                ("lost", &summary.lost.to_string()),
            ],
        );
        if let (Some(uri), Some(path)) = (&config.log_uri, log.path()) {
            upload_runner_log(&config, &storage, &log, uri, path, "dp-task-runner.log").await;
        }
        summary
    }
}

/// A type no activity is registered for: fails at once, naming the type.
struct Unsupported(String, Arc<Vec<String>>);

impl Activity for Unsupported {
    fn run<'a>(
        &'a self,
        task: &'a Task,
        _context: &'a TaskContext,
    ) -> crate::activity::BoxFuture<'a, Outcome> {
        const HADOOP: &[&str] = &[
            "HiveActivity",
            "PigActivity",
            "HadoopActivity",
            "HiveCopyActivity",
        ];
        if HADOOP.contains(&self.0.as_str()) {
            // These run on an EMR cluster's Hadoop; a local runner standing in for the cluster has none.
            let failure = Failure::new(
                format!("{}NotRunLocally", self.0),
                format!(
                    "{} needs a Hadoop cluster, and none exists locally: this runner stands in for the \
                     EmrCluster but runs no Hadoop, Hive or Pig (register an activity for {} through the \
                     dp_runner library to run it another way)",
                    self.0, self.0
                ),
            );
            return Box::pin(async move { Outcome::Failed(failure) });
        }
        let message = if self.0.is_empty() {
            format!(
                "{} has no type: dp-task-runner cannot run it",
                task.attempt_id
            )
        } else {
            format!(
                "dp-task-runner does not run {} objects (it runs {}, and types registered through the \
                 dp_runner library)",
                self.0,
                self.1.join(", ")
            )
        };
        Box::pin(async move { Outcome::Failed(Failure::new("UnsupportedActivityType", message)) })
    }
}

/// `--exit-with-parent`: looks at the parent process id every 200 ms; when it changes (the process that started
/// the runner ended and this one was handed to another), stops the runner at once, killing held tasks' work.
async fn watch_parent(control: Control, log: RunnerLog) {
    let parent = nix::unistd::getppid();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if nix::unistd::getppid() != parent {
            log.warn(
                "the process that started this runner has ended (--exit-with-parent): stopping at once",
                &[("parent", &parent.to_string())],
            );
            control.stop_now();
            return;
        }
    }
}

/// Heartbeats at start and every interval; `terminate: true` stops polling and lets held tasks finish.
async fn heartbeats(
    client: Arc<dp_wire::Client>,
    config: Arc<RunnerConfig>,
    log: RunnerLog,
    control: Control,
) {
    let input = ReportTaskRunnerHeartbeatInput {
        taskrunner_id: config.taskrunner_id.clone(),
        worker_group: Some(config.worker_group.clone()),
        hostname: Some(config.hostname.clone()),
    };
    let mut failures = 0u32;
    loop {
        let wait = match client.call::<ops::ReportTaskRunnerHeartbeat>(&input).await {
            Ok(output) if output.terminate => {
                log.info(
                    "the service asked this runner to terminate: no new tasks; held tasks finish",
                    &[],
                );
                control.terminate.cancel();
                return;
            }
            Ok(_) => {
                failures = 0;
                config.heartbeat_interval
            }
            Err(e) => {
                failures += 1;
                let wait = retry_delay(
                    failures,
                    config.heartbeat_interval.min(config.poll_backoff_cap),
                );
                log.warn(
                    &format!(
                        "heartbeat failed (retry in {:.1}s): {e}",
                        wait.as_secs_f64()
                    ),
                    &[],
                );
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// `OUTPUT/logs/<pipelineId>/<component>/<instance>/<attempt>`, the Java runner's layout.
pub fn attempt_log_dir(logs: &std::path::Path, task: &Task) -> PathBuf {
    attempt_log_prefix(task)
        .split('/')
        .fold(logs.to_path_buf(), |path, part| path.join(part))
}

/// `<pipelineId>/<component>/<instance>/<attempt>`, each part safe as a path segment.
fn attempt_log_prefix(task: &Task) -> String {
    let parts = [
        task.pipeline_id.as_str(),
        task.component_id().unwrap_or("component"),
        task.instance_id().unwrap_or("instance"),
        if task.attempt_id.is_empty() {
            task.task_id.as_str()
        } else {
            task.attempt_id.as_str()
        },
    ];
    parts
        .iter()
        .map(|p| path_segment(p))
        .collect::<Vec<_>>()
        .join("/")
}

fn path_segment(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => cleaned,
    }
}

async fn upload_attempt_logs(
    storage: &Storage,
    log: &RunnerLog,
    dir: &std::path::Path,
    uri: &str,
    prefix: &str,
) {
    let target = match Location::parse(uri) {
        Ok(location) => location.join(prefix).to_string(),
        Err(e) => {
            log.warn(&format!("log upload skipped: {e}"), &[]);
            return;
        }
    };
    let mut sent = 0;
    for name in ["StdOutput", "StdError"] {
        let file = dir.join(name);
        if file.is_file() {
            match storage
                .upload_file(&file, &format!("{target}/{name}"))
                .await
            {
                Ok(()) => sent += 1,
                Err(e) => log.warn(&format!("attempt log upload failed: {e}"), &[]),
            }
        }
    }
    if sent > 0 {
        log.info("attempt logs uploaded", &[("to", &target)]);
    }
}

/// Uploads the runner log file `path` to `URI/TaskRunner/<taskrunnerId>/<name>`.
async fn upload_runner_log(
    config: &RunnerConfig,
    storage: &Storage,
    log: &RunnerLog,
    uri: &str,
    path: &Path,
    name: &str,
) {
    let target = match Location::parse(uri) {
        Ok(location) => location
            .join(&format!("TaskRunner/{}/{name}", config.taskrunner_id))
            .to_string(),
        Err(e) => {
            log.warn(&format!("runner log upload skipped: {e}"), &[]);
            return;
        }
    };
    if let Err(e) = storage.upload_file(path, &target).await {
        log.warn(&format!("runner log upload failed: {e}"), &[]);
    }
}

/// Every `--log-rotate` seconds: closes the runner log, uploads the closed file to `--logUri` when one is set, and
/// deletes closed files beyond `--log-keep`. With rotation off, the whole log is uploaded hourly instead.
async fn rotate_runner_log(
    config: Arc<RunnerConfig>,
    storage: Storage,
    log: RunnerLog,
    stop: CancellationToken,
) {
    let Some(current) = log.path().map(Path::to_path_buf) else {
        return;
    };
    let rotating = !config.log_rotate.is_zero();
    if !rotating && config.log_uri.is_none() {
        return;
    }
    let period = if rotating {
        config.log_rotate
    } else {
        Duration::from_secs(3600)
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.cancelled() => return,
        }
        if !rotating {
            if let Some(uri) = &config.log_uri {
                upload_runner_log(&config, &storage, &log, uri, &current, "dp-task-runner.log")
                    .await;
            }
            continue;
        }
        match log.rotate() {
            Ok(Some(closed)) => {
                if let Some(uri) = &config.log_uri {
                    let name = closed
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    upload_runner_log(&config, &storage, &log, uri, &closed, &name).await;
                }
                if let Err(e) = log.prune(config.log_keep) {
                    log.warn(&format!("old runner logs not deleted: {e}"), &[]);
                }
            }
            Ok(None) => {}
            Err(e) => log.warn(&format!("runner log rotation failed: {e}"), &[]),
        }
    }
}
