//! dp-local: a local AWS Data Pipeline endpoint with the service's task-lease rules.
//!
//! It serves all 19 operations of the Data Pipeline API (awsJson 1.1, SigV4-verified) on loopback, with state in
//! memory or in an SQLite file ([`Config::state`], see [`store`]), so that a task runner, the `dp` CLI or the AWS
//! CLI can run a whole pipeline without an AWS account.
//! Embed it with [`Server::bind`], or run the `dp-local` binary, which prints its URL as the first line of stdout.
//!
//! ```no_run
//! let server = dp_local::Server::bind(dp_local::Config { time_scale: 100.0, ..Default::default() }).unwrap();
//! println!("{}", server.url()); // http://127.0.0.1:PORT
//! server.shutdown();
//! ```
//!
//! # Task leases
//!
//! poll-for-task hands a ready attempt of the requested worker group to exactly one poller, waiting up to the
//! poll timeout (90 s) for one. The runner must call report-task-progress within 2 minutes, or the same attempt is
//! handed out again under a new task id (the old id answers `canceled: true`). After that, each report keeps
//! ownership for the activity's `reportProgressTimeout` (15 minutes by default); when it lapses the attempt is
//! `TIMEDOUT` and a new attempt is made after `retryDelay` (10 minutes by default), up to `maximumRetries` (2 by
//! default) retries; then the instance ends `TIMEDOUT`. set-task-status `FAILED` (or `FALSE`) retries the same
//! way and finally fails the instance; `FINISHED` finishes it. report-task-progress answers `canceled: true` once
//! the pipeline is deactivated (with `cancelActive`, the default) or deleted, or the instance is cancelled. All
//! these durations are divided by [`Config::time_scale`].
//!
//! # Supported subset
//!
//! * Objects: instances are made for activities (`ShellCommandActivity`, `CopyActivity`, ... see
//!   [`definition::ACTIVITY_TYPES`]) and, per period, for the resources they run on, their data nodes and the
//!   preconditions on them. With [`Config::local_resources`] (the default) each resource instance is a local
//!   `dp-task-runner` process that dp-local launches ([`launcher`]) and that polls a worker group of its own;
//!   otherwise only activities with a `workerGroup` are handed out. Fields inherit from `parent` chains and from
//!   `Default`.
//! * Schedules: `scheduleType` `ondemand` (one run per activation, at activation time or `startTimestamp`),
//!   `cron` (an instance at the start of each period) and `timeseries` (at the end of each period, the default),
//!   with a `Schedule` of `period` (`N minutes|hours|days|weeks|months|years`, at least 15 minutes), `startDateTime`
//!   or `startAt: FIRST_ACTIVATION_DATE_TIME`, and optional `endDateTime` or `occurrences`. Past periods are
//!   back-filled, at most [`engine::MAX_BACKFILL`] per activity per step. From a pipeline's first activation on,
//!   schedule time runs [`Config::time_scale`] times faster than the wall clock.
//! * `dependsOn`: an instance waits for the instance of each referenced activity with the same scheduled start
//!   (else the latest earlier one; none means no wait). A failed dependency fails its dependents with
//!   `CASCADE_FAILED` when `failureAndRerunMode` is `cascade`; otherwise they keep waiting.
//! * Expressions: see [`expr`] (references, parameters, `format`, `plus*`/`minus*`, `year`...`minute`).
//! * Queries: spheres `COMPONENT`, `INSTANCE`, `ATTEMPT`; selectors `EQ`, `REF_EQ`, `LE`, `GE`, `BETWEEN` (values
//!   compared as timestamps, else numbers, else strings), combined with AND; `limit` and `marker` paging.
//! * set-status: `PAUSE`/`RESUME` on components or instances; `CANCEL`/`TRY_CANCEL` (identical here), `RERUN`
//!   and `MARK_FINISHED` on instances or attempts.

pub mod auth;
pub mod clock;
pub mod config;
mod console;
pub mod definition;
mod dispatch;
pub mod engine;
pub mod error;
pub mod expr;
pub mod launcher;
pub mod metrics;
mod percent;
pub mod schedule;
mod server;
mod standby;
pub mod store;

pub use config::{Config, Credential, Invocation};
pub use engine::Runner;
pub use error::{Error, ErrorKind, ServiceError};
pub use server::Server;
