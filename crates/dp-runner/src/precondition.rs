//! The data preconditions a runner checks: `S3KeyExists`, `S3PrefixNotEmpty`, `DynamoDBTableExists` and
//! `DynamoDBDataExists`, one [`Activity`] each, registered by default.
//!
//! A check that holds ends `FINISHED`; one that does not ends `FALSE` (the service, or dp-local, retries it until
//! the precondition's `preconditionTimeout`); a check that could not be made (S3 or DynamoDB did not answer, access
//! denied, a missing field) ends `FAILED` with an errorId saying which. The same implementations serve a
//! precondition handed to this runner through a worker group and the system-managed checks dp-local gives the
//! runner it launches. This module sends nothing itself: S3 and DynamoDB calls go through [`Storage`], on the
//! runner's credentials, region, transport and endpoints.
//!
//! [`RdsSqlPrecondition`] runs a query on a database (`database.rs`) and holds when the query returns a row (with
//! `expectedResult`: when the first value of the first row equals it).
//!
//! [`Storage`]: crate::storage::Storage

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext};
use crate::storage::sdk_error_text;

/// Which check a [`Precondition`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `S3KeyExists`: the object named by `s3Key` exists.
    S3KeyExists,
    /// `S3PrefixNotEmpty`: at least one object's key starts with `s3Prefix`.
    S3PrefixNotEmpty,
    /// `DynamoDBTableExists`: the table `tableName` exists.
    DynamoDBTableExists,
    /// `DynamoDBDataExists`: the table `tableName` holds at least one item.
    DynamoDBDataExists,
}

impl Check {
    /// Every check, with the pipeline object type it runs.
    pub const ALL: [(&'static str, Check); 4] = [
        ("S3KeyExists", Check::S3KeyExists),
        ("S3PrefixNotEmpty", Check::S3PrefixNotEmpty),
        ("DynamoDBTableExists", Check::DynamoDBTableExists),
        ("DynamoDBDataExists", Check::DynamoDBDataExists),
    ];

    fn field(self) -> &'static str {
        match self {
            Check::S3KeyExists => "s3Key",
            Check::S3PrefixNotEmpty => "s3Prefix",
            Check::DynamoDBTableExists | Check::DynamoDBDataExists => "tableName",
        }
    }
}

/// A data precondition, checked once per attempt.
#[derive(Debug, Clone, Copy)]
pub struct Precondition(pub Check);

impl Activity for Precondition {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let check = self.0;
            let key = check.field();
            let Some(value) = task.field(key).map(str::trim).filter(|v| !v.is_empty()) else {
                return Outcome::Failed(Failure::new(
                    "MissingField",
                    format!(
                        "{}: {:?} needs the field {key}",
                        task.attempt_id,
                        task.activity_type().unwrap_or_default()
                    ),
                ));
            };
            let checked = tokio::select! {
                checked = run_check(check, value, context) => checked,
                // Nothing to stop: the outcome of a canceled task is not sent.
                _ = context.canceled() => return Outcome::Failed(Failure::new("Canceled", "the check was canceled")),
            };
            let outcome = match checked {
                Ok(None) => Outcome::Finished,
                Ok(Some(not_met)) => Outcome::False(not_met),
                Err(failure) => Outcome::Failed(failure),
            };
            let status = match &outcome {
                Outcome::Finished => "holds",
                Outcome::False(_) => "does not hold",
                Outcome::Failed(_) => "could not be checked",
            };
            context.log().info(
                &format!("precondition {status}"),
                &[
                    ("task", &task.task_id),
                    ("type", task.activity_type().unwrap_or_default()),
                    (key, value),
                ],
            );
            outcome
        })
    }
}

/// `Exists`: the data node the precondition guards (the task object's `node`) exists: an `S3DataNode`'s
/// `filePath` object, or some object under its `directoryPath`; a `DynamoDBDataNode`'s table. Other data nodes are
/// not checked here and fail, saying so.
#[derive(Debug, Clone, Copy)]
pub struct Exists;

impl Activity for Exists {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(node) = task.refs("node").into_iter().next() else {
                return Outcome::Failed(Failure::new(
                    "MissingField",
                    format!(
                        "{}: Exists needs the data node it guards (the task object's node)",
                        task.attempt_id
                    ),
                ));
            };
            let kind = crate::activity::string_field(node, "type").unwrap_or_default();
            let text = |key: &str| {
                crate::activity::string_field(node, key)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
            };
            let (check, value) = match (
                kind,
                text("filePath"),
                text("directoryPath"),
                text("tableName"),
            ) {
                ("S3DataNode", Some(path), _, _) => (Check::S3KeyExists, path),
                ("S3DataNode", None, Some(dir), _) => (Check::S3PrefixNotEmpty, dir),
                ("DynamoDBDataNode", _, _, Some(table)) => (Check::DynamoDBTableExists, table),
                _ => {
                    return Outcome::Failed(Failure::new(
                        "ExistsNotChecked",
                        format!(
                            "Exists cannot check the {kind} {}: dp-task-runner checks S3 data nodes (filePath or \
                             directoryPath) and DynamoDB data nodes (tableName)",
                            node.id
                        ),
                    ));
                }
            };
            let checked = tokio::select! {
                checked = run_check(check, value, context) => checked,
                _ = context.canceled() => return Outcome::Failed(Failure::new("Canceled", "the check was canceled")),
            };
            match checked {
                Ok(None) => Outcome::Finished,
                Ok(Some(not_met)) => Outcome::False(not_met),
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

/// `Ok(None)` when the check holds, `Ok(Some(why))` when it does not, `Err` when it could not be made.
async fn run_check(
    check: Check,
    value: &str,
    context: &TaskContext,
) -> Result<Option<Failure>, Failure> {
    let storage = context.storage();
    match check {
        Check::S3KeyExists => {
            let found = storage
                .exists(value)
                .await
                .map_err(|e| Failure::new("S3CheckFailed", e.to_string()))?;
            Ok((!found).then(|| Failure::new("S3KeyNotFound", format!("{value} does not exist"))))
        }
        Check::S3PrefixNotEmpty => {
            let found = storage
                .prefix_has_objects(value)
                .await
                .map_err(|e| Failure::new("S3CheckFailed", e.to_string()))?;
            Ok((!found).then(|| {
                Failure::new(
                    "S3PrefixEmpty",
                    format!("no object has a key under {value}"),
                )
            }))
        }
        Check::DynamoDBTableExists | Check::DynamoDBDataExists => {
            let failed = |e: String| Failure::new("DynamoDBCheckFailed", e);
            let dynamodb = storage
                .dynamodb()
                .await
                .map_err(|e| failed(e.to_string()))?;
            let described = dynamodb.describe_table().table_name(value).send().await;
            match described {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Ok(Some(Failure::new(
                        "DynamoDBTableNotFound",
                        format!("the DynamoDB table {value} does not exist"),
                    )));
                }
                Err(e) => {
                    return Err(failed(format!(
                        "cannot describe the DynamoDB table {value}: {}",
                        sdk_error_text(&e)
                    )));
                }
            }
            if check == Check::DynamoDBTableExists {
                return Ok(None);
            }
            // The table's item count is refreshed only every few hours; a one-item scan sees new data at once.
            let scanned = dynamodb
                .scan()
                .table_name(value)
                .limit(1)
                .send()
                .await
                .map_err(|e| {
                    failed(format!(
                        "cannot read the DynamoDB table {value}: {}",
                        sdk_error_text(&e)
                    ))
                })?;
            let has_items = scanned.count() > 0 || scanned.last_evaluated_key().is_some();
            Ok((!has_items).then(|| {
                Failure::new(
                    "DynamoDBTableEmpty",
                    format!("the DynamoDB table {value} holds no item"),
                )
            }))
        }
    }
}

/// `RdsSqlPrecondition`: `query` (or `sqlQuery`) on the precondition's `database`, or on the RDS instance its own
/// `rdsInstanceId`, `databaseName`, `username` and `*password` name (`--database ID=URL` gives the address).
/// Holds when the query returns at least one row, and with `expectedResult`, when the first value of the first
/// row is that text.
#[derive(Debug, Clone, Copy, Default)]
pub struct RdsSqlPrecondition;

impl Activity for RdsSqlPrecondition {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match rds_check(task, context).await {
                Ok(None) => Outcome::Finished,
                Ok(Some(not_met)) => Outcome::False(not_met),
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

async fn rds_check(task: &Task, context: &TaskContext) -> Result<Option<Failure>, Failure> {
    use crate::database::{QueryError, RowSink, Target, attempt_timeout, supervise};
    let Some(query) = task
        .field("query")
        .or(task.field("sqlQuery"))
        .map(|q| q.trim().trim_end_matches(';').to_string())
        .filter(|q| !q.is_empty())
    else {
        return Err(Failure::new(
            "MissingField",
            format!(
                "{}: RdsSqlPrecondition needs the field query",
                task.attempt_id
            ),
        ));
    };
    let target = if crate::activity::ref_field(
        task.attempt().expect("the task has its attempt"),
        "database",
    )
    .is_some()
    {
        Target::of(task, None, context.databases())?
    } else {
        let attempt = task.attempt().expect("the task has its attempt");
        let mut fields: Vec<_> = attempt
            .fields
            .iter()
            .filter(|f| f.key != "type")
            .cloned()
            .collect();
        fields.push(dp_model::types::Field {
            key: "type".into(),
            string_value: Some("RdsDatabase".into()),
            ref_value: None,
        });
        let object = dp_model::types::PipelineObject {
            id: attempt.id.clone(),
            name: attempt.name.clone(),
            fields,
        };
        Target::from_object(&object, context.databases())?
    };
    let deadline = attempt_timeout(task, context)?.map(|d| tokio::time::Instant::now() + d);
    let stopped = |s| crate::sql::stopped_failure(task, s, "checking");
    let mut connection = supervise(context, deadline, None, target.connect())
        .await
        .map_err(stopped)?
        .map_err(|e| e.failure())?;
    let canceller = connection.canceller();

    /// Keeps the first value of the first row.
    struct First(Option<Option<String>>);
    impl RowSink for First {
        type Error = std::convert::Infallible;
        async fn row(&mut self, values: &[Option<&str>]) -> Result<(), Self::Error> {
            if self.0.is_none() {
                self.0 = Some(values.first().copied().flatten().map(str::to_string));
            }
            Ok(())
        }
    }
    let mut first = First(None);
    let queried = supervise(
        context,
        deadline,
        Some(&canceller),
        connection.query_text(&query, &mut first),
    )
    .await
    .map_err(stopped)?;
    if let Err(e) = queried {
        let message = match e {
            QueryError::Database(e) => e.message,
            QueryError::Sink(never) => match never {},
        };
        return Err(Failure::new(
            "SqlError",
            format!("the precondition's query failed on the {target}: {message}"),
        ));
    }
    let expected = task.field("expectedResult");
    Ok(match (first.0, expected) {
        (None, _) => Some(Failure::new(
            "QueryReturnedNoRow",
            format!("the query returned no row on the {target}"),
        )),
        (Some(value), Some(expected)) if value.as_deref() != Some(expected) => Some(Failure::new(
            "UnexpectedResult",
            format!(
                "the query returned {} where {expected:?} was expected",
                value.map_or("NULL".to_string(), |v| format!("{v:?}"))
            ),
        )),
        _ => None,
    })
}
