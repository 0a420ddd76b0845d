//! From an operation name and a JSON body to a JSON answer: input checks, typed decoding, the engine call.
//!
//! One generic path serves every operation: the body is checked against the operation's input shape from
//! dp-model (the constraints the service enforces), decoded into the generated input type, handed to the
//! engine, and the output is encoded once the engine's changes are durable. This module does not know HTTP or
//! signatures.

use dp_model::validate::{ProblemKind, validate};
use dp_model::{Operation, ShapeKind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::Engine;
use crate::error::ServiceError;

/// Answers one call of `operation` with `body`, once every change it made or saw is durable.
pub async fn call(
    engine: &Engine,
    operation: &'static Operation,
    body: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    crate::engine::observe(async {
        let answer = apply(engine, operation, body).await;
        // Also after a read or an error: what it reports must not be lost by a crash before the writer catches
        // up, nor come from a change that was rolled back.
        engine.durable().await?;
        answer
    })
    .await
}

async fn apply(
    engine: &Engine,
    operation: &'static Operation,
    body: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ServiceError::serialization(format!("Malformed JSON body: {e}")))?
    };
    if !value.is_object() {
        return Err(ServiceError::serialization(
            "The request body must be a JSON object",
        ));
    }
    if let Some(shape) = operation.input {
        check_input(shape, &value)?;
    }
    macro_rules! run {
        ($method:ident) => {
            encode(engine.$method(decode(value)?)?)
        };
    }
    match operation.name {
        "ActivatePipeline" => run!(activate_pipeline),
        "AddTags" => run!(add_tags),
        "CreatePipeline" => run!(create_pipeline),
        "DeactivatePipeline" => run!(deactivate_pipeline),
        "DeletePipeline" => engine
            .delete_pipeline(decode(value)?)
            .map(|()| b"{}".to_vec()),
        "DescribeObjects" => run!(describe_objects),
        "DescribePipelines" => run!(describe_pipelines),
        "EvaluateExpression" => run!(evaluate_expression),
        "GetPipelineDefinition" => run!(get_pipeline_definition),
        "ListPipelines" => run!(list_pipelines),
        "PollForTask" => encode(engine.poll_for_task(decode(value)?).await?),
        "PutPipelineDefinition" => run!(put_pipeline_definition),
        "QueryObjects" => run!(query_objects),
        "RemoveTags" => run!(remove_tags),
        "ReportTaskProgress" => run!(report_task_progress),
        "ReportTaskRunnerHeartbeat" => run!(report_task_runner_heartbeat),
        "SetStatus" => engine.set_status(decode(value)?).map(|()| b"{}".to_vec()),
        "SetTaskStatus" => run!(set_task_status),
        "ValidatePipelineDefinition" => run!(validate_pipeline_definition),
        other => Err(ServiceError::unknown_operation(format!(
            "Operation {other} is not served"
        ))),
    }
}

/// dp-local's own calls (`X-Amz-Target: DpLocal.<Name>`), signed like the service's: `StopWorkerGroup` and
/// `ResumeWorkerGroup` with `{"workerGroup": "..."}`.
pub async fn admin(engine: &Engine, name: &str, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ServiceError::serialization(format!("Malformed JSON body: {e}")))?;
    let group = value["workerGroup"]
        .as_str()
        .filter(|g| !g.is_empty())
        .ok_or_else(|| {
            ServiceError::invalid_request(
                "Value null at 'workerGroup' failed to satisfy constraint: Member must not be null",
            )
        })?;
    let stop = match name {
        "StopWorkerGroup" => true,
        "ResumeWorkerGroup" => false,
        other => {
            return Err(ServiceError::unknown_operation(format!(
                "Unknown operation DpLocal.{other}"
            )));
        }
    };
    crate::engine::observe(async {
        engine.stop_worker_group(group, stop);
        engine.durable().await?;
        Ok(b"{}".to_vec())
    })
    .await
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, ServiceError> {
    serde_json::from_value(value).map_err(|e| ServiceError::serialization(e.to_string()))
}

fn encode<T: Serialize>(output: T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(&output)
        .map_err(|e| ServiceError::internal(format!("cannot encode the response: {e}")))
}

/// Checks the input against the model. Unknown members are ignored, as the service ignores them; a value of the
/// wrong JSON type is a `SerializationException`; every constraint violation is an `InvalidRequestException`
/// worded as the service words validation failures.
fn check_input(shape: &'static dp_model::Shape, value: &Value) -> Result<(), ServiceError> {
    let Err(report) = validate(shape, value) else {
        return Ok(());
    };
    let mut messages = Vec::new();
    for problem in report.problems {
        let path = &problem.path;
        let message = match problem.kind {
            ProblemKind::UnknownMember { .. } => continue,
            ProblemKind::InvalidType { value, .. } => {
                return Err(ServiceError::serialization(format!(
                    "Unexpected value {value} for {path}: wrong JSON type"
                )));
            }
            ProblemKind::MissingRequired { name } => {
                let at = if path == "input" {
                    name
                } else {
                    format!("{path}.{name}")
                };
                format!(
                    "Value null at '{at}' failed to satisfy constraint: Member must not be null"
                )
            }
            ProblemKind::TooShort { min, .. } => {
                format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
                )
            }
            ProblemKind::TooLong { max, .. } => {
                format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
                )
            }
            ProblemKind::BelowMinimum { value, min } => format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            ),
            ProblemKind::AboveMaximum { value, max } => format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
            ),
            ProblemKind::NotInEnum { value, allowed } => format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
            ProblemKind::InvalidCharacter { .. } => {
                let pattern = pattern_of(shape, path).unwrap_or("(the model's pattern)");
                format!(
                    "Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
                )
            }
        };
        messages.push(message);
    }
    if messages.is_empty() {
        return Ok(());
    }
    let n = messages.len();
    Err(ServiceError::invalid_request(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        messages.join("; ")
    )))
}

/// The pattern source of the string shape at a validation path such as `fields[0].key`.
fn pattern_of(shape: &'static dp_model::Shape, path: &str) -> Option<&'static str> {
    let mut current = shape;
    for part in path.split('.') {
        let name = part.split(['[', ' ']).next().unwrap_or(part);
        current = current.member(name)?.shape;
        for _ in part.matches('[') {
            match current.kind {
                ShapeKind::List(inner) => current = inner,
                _ => return None,
            }
        }
    }
    current.pattern.as_ref().map(|p| p.source)
}
