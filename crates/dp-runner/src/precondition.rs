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
