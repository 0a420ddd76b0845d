//! `SqlActivity`: a SQL script (`script`, or `scriptUri` from S3 or a local path) run against the activity's
//! `database`, with `scriptArgument` values bound to the `?` placeholders in order by the server: a statement with
//! placeholders runs as a prepared statement with the values as its parameters, never quoted into the SQL text.
//!
//! The statements run one by one on one connection, inside one transaction unless the script manages its own
//! (`BEGIN`/`START TRANSACTION`/`COMMIT`/`ROLLBACK`), so a failing statement leaves nothing of the script behind.
//! Cancel and `attemptTimeout` cancel the running statement on the server. This module does not parse SQL beyond
//! statement boundaries and placeholders (`database.rs`), and never logs the script's argument values.

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext};
use crate::database::{
    Stopped, Target, attempt_timeout, manages_transactions, placeholders, split_statements,
    supervise,
};

/// The `SqlActivity` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlActivity;

impl Activity for SqlActivity {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match run(task, context).await {
                Ok(()) => Outcome::Finished,
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

async fn run(task: &Task, context: &TaskContext) -> Result<(), Failure> {
    let invalid = |message: String| Failure::new("InvalidTaskObject", message);
    let deadline = attempt_timeout(task, context)?.map(|d| tokio::time::Instant::now() + d);
    let script = match (task.field("script"), task.field("scriptUri")) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "SqlActivity {}: both script and scriptUri are set; set exactly one",
                task.attempt_id
            )));
        }
        (None, None) => {
            return Err(invalid(format!(
                "SqlActivity {}: neither script nor scriptUri is set; set exactly one",
                task.attempt_id
            )));
        }
        (Some(script), None) => script.to_string(),
        (None, Some(uri)) => {
            let path = context.log_dir().join("script.sql");
            context
                .storage()
                .download_file(uri, &path)
                .await
                .map_err(|e| Failure::new("ScriptDownloadFailed", e.to_string()))?;
            tokio::fs::read_to_string(&path).await.map_err(|e| {
                Failure::new(
                    "ScriptDownloadFailed",
                    format!("cannot read {uri} as text: {e}"),
                )
            })?
        }
    };
    let statements = split_statements(&script);
    if statements.is_empty() {
        return Err(invalid(format!(
            "SqlActivity {}: the script has no statement",
            task.attempt_id
        )));
    }
    let target = Target::of(task, None, context.databases())?;
    let arguments: Vec<String> = task
        .fields("scriptArgument")
        .into_iter()
        .map(str::to_string)
        .collect();
    let wanted: usize = statements.iter().map(|s| placeholders(s)).sum();
    if wanted != arguments.len() {
        return Err(invalid(format!(
            "SqlActivity {}: the script has {wanted} ? placeholder(s) but {} scriptArgument value(s)",
            task.attempt_id,
            arguments.len()
        )));
    }
    // Each statement with the arguments of its own placeholders.
    let mut values = arguments.iter();
    let bound: Vec<(&str, Vec<&str>)> = statements
        .iter()
        .map(|s| {
            let taken = values.by_ref().take(placeholders(s)).map(String::as_str);
            (s.as_str(), taken.collect())
        })
        .collect();
    let own_transactions = manages_transactions(&statements);

    let mut connection = match supervise(context, deadline, None, target.connect()).await {
        Ok(connected) => connected.map_err(|e| e.failure())?,
        Err(stopped) => return Err(stopped_failure(task, stopped, "connecting")),
    };
    let canceller = connection.canceller();
    let total = bound.len();
    let work = async {
        let mut rows = 0u64;
        if !own_transactions {
            connection
                .execute(if target.engine.is_postgres() {
                    "BEGIN"
                } else {
                    "START TRANSACTION"
                })
                .await
                .map_err(|e| e.failure())?;
        }
        for (i, (statement, arguments)) in bound.iter().enumerate() {
            let ran = if arguments.is_empty() {
                connection.execute(statement).await
            } else {
                let values: Vec<Option<&str>> = arguments.iter().map(|a| Some(*a)).collect();
                connection.execute_bound(statement, &values).await
            };
            match ran {
                Ok(affected) => {
                    rows += affected.rows;
                    context.set_progress_field("statementsRun", (i + 1).to_string());
                    context.set_progress_field("rowsAffected", rows.to_string());
                }
                Err(e) => {
                    if !own_transactions {
                        let _ = connection.execute("ROLLBACK").await;
                    }
                    let first_line = statements[i].lines().next().unwrap_or_default();
                    return Err(Failure::new(
                        "SqlError",
                        format!(
                            "statement {} of {total} failed on the {target}: {}",
                            i + 1,
                            e.message
                        ),
                    )
                    .with_stack_trace(format!(
                        "statement {} (placeholders shown unbound): {first_line}",
                        i + 1
                    )));
                }
            }
        }
        if !own_transactions {
            connection.execute("COMMIT").await.map_err(|e| {
                Failure::new(
                    "SqlError",
                    format!("COMMIT failed on the {target}: {}", e.message),
                )
            })?;
        }
        Ok(rows)
    };
    let rows = match supervise(context, deadline, Some(&canceller), work).await {
        Ok(done) => done?,
        Err(stopped) => return Err(stopped_failure(task, stopped, "running the script")),
    };
    context.log().info(
        "SqlActivity finished",
        &[
            ("task", &task.task_id),
            ("database", &target.object_id),
            ("statements", &total.to_string()),
            ("rowsAffected", &rows.to_string()),
        ],
    );
    Ok(())
}

/// The failure of an attempt stopped while `doing`.
pub(crate) fn stopped_failure(task: &Task, stopped: Stopped, doing: &str) -> Failure {
    match stopped {
        Stopped::Canceled => Failure::new("Canceled", format!("canceled while {doing}")),
        Stopped::TimedOut => Failure::new(
            "AttemptTimeout",
            format!(
                "the attempt ran longer than its attemptTimeout ({}) while {doing}; the running statement was \
                 canceled on the server and the transaction rolled back",
                task.field("attemptTimeout").unwrap_or_default()
            ),
        ),
    }
}
