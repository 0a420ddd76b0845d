//! dp-task-runner as a library: a native AWS Data Pipeline task runner that holds every task's lease, runs shell
//! work, SQL and data copies (or your own activities), stops on cancel and loses no task.
//!
//! A [`Runner`] polls one worker group through dp-wire's typed client and gives each task to a supervisor that
//! acknowledges it at once, reports progress from its own timer while the [`Activity`] runs, stops the work when
//! the service answers `canceled: true`, and ends the task with exactly one `SetTaskStatus`. The built-in
//! activities, one module each: [`shell::ShellCommand`] (`ShellCommandActivity`, `ShellCommandPrecondition`),
//! [`sql::SqlActivity`], [`copy::CopyActivity`], [`redshift_copy::RedshiftCopyActivity`], [`emr::EmrActivity`]
//! (`command-runner.jar` steps run locally) and the data preconditions of [`precondition`]; databases are
//! [`database`]'s, data formats [`format`]'s, streamed objects [`objects`]'. Register your own for other object
//! types (or to replace a built-in).
//!
//! This crate does not know clap (the binary's `args.rs` turns flags into a [`RunnerConfig`]) and does not speak
//! HTTP itself: Data Pipeline calls go through `dp_wire::Client::call`, S3 and DynamoDB through aws-sdk-s3 and
//! aws-sdk-dynamodb on dp-wire's transport, databases through tokio-postgres and mysql_async.
//!
//! A custom activity, run against dp-local: the runner does not run `HiveActivity` itself, so a program that can
//! reach a Hive server can register one (here it only counts the script's statements and reports the count as a
//! progress field).
//!
//! ```
//! use dp_runner::{Activity, BoxFuture, Outcome, Runner, RunnerConfig, Task, TaskContext};
//!
//! struct CountStatements;
//!
//! impl Activity for CountStatements {
//!     fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
//!         Box::pin(async move {
//!             let script = task.field("hiveScript").unwrap_or_default();
//!             let statements = script.split(';').filter(|s| !s.trim().is_empty()).count();
//!             context.set_progress_field("statements", statements.to_string());
//!             Outcome::Finished
//!         })
//!     }
//! }
//!
//! # fn main() -> Result<(), dp_runner::testing::Error> {
//! # let server = dp_local::Server::bind(dp_local::Config { time_scale: 60.0, ..Default::default() })?;
//! # let output = tempdir();
//! # let pipeline = dp_runner::testing::one_task_pipeline(&server.url(), "hive-workers", "HiveActivity",
//! #     &[("hiveScript", "select 1; select 2;")])?;
//! let mut config = RunnerConfig::new("hive-workers");
//! # config.env = dp_runner::testing::environment(&server.url());
//! # config.output_dir = output.clone();
//! # config.log_to_stderr = false;
//! config.once = true; // take one task, run it, stop
//! let mut runner = Runner::new(config)?;
//! runner.register("HiveActivity", CountStatements);
//! let summary = tokio::runtime::Runtime::new()?.block_on(runner.run());
//! assert_eq!(summary.finished, 1);
//! # assert_eq!(dp_runner::testing::attempt_status(&server.url(), &pipeline)?, "FINISHED");
//! # let attempt = &dp_runner::testing::attempts(&server.url(), &pipeline)?[0];
//! # assert_eq!(dp_runner::testing::field(attempt, "statements"), Some("2"));
//! # std::fs::remove_dir_all(output)?;
//! # Ok(()) }
//! # fn tempdir() -> std::path::PathBuf {
//! #     let d = std::env::temp_dir().join(format!("dp-runner-doctest-{}", std::process::id()));
//! #     std::fs::create_dir_all(&d).unwrap(); d }
//! ```

pub mod activity;
pub mod config;
pub mod copy;
pub mod database;
pub mod doctor;
pub mod emr;
pub mod exec;
pub mod format;
pub mod guard;
pub mod logging;
pub mod objects;
pub mod precondition;
pub mod redshift_copy;
mod runner;
pub mod shell;
pub mod sql;
pub mod storage;
mod supervisor;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use activity::{Activity, BoxFuture, CancelReason, Failure, Outcome, Task, TaskContext};
pub use config::{ConfigError, CredentialsFile, ProxySettings, RunnerConfig};
pub use logging::{LogFormat, RunnerLog};
pub use runner::{Control, RunSummary, Runner, StartError, attempt_log_dir};
pub use supervisor::{ACKNOWLEDGE_WINDOW, TaskEnd};
