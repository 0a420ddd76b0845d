//! The errors dp-local answers with, shaped as the service shapes them.
//!
//! A [`ServiceError`] is what a handler returns; the HTTP layer turns it into a status and an awsJson error body
//! (`{"__type": code, "message": ...}`). [`Error`] is the library's own failure (binding, bad configuration,
//! an unusable state file). This module must not know about HTTP framing beyond the status number.

use std::fmt;

/// An error as the service reports it to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The error code sent as `__type` (`PipelineNotFoundException`).
    pub code: &'static str,
    /// The message sent as `message`.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
}

impl ServiceError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            status,
        }
    }

    /// `InvalidRequestException` (400).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", 400, message)
    }

    /// `PipelineNotFoundException` (400).
    pub fn pipeline_not_found(id: &str) -> Self {
        Self::new(
            "PipelineNotFoundException",
            400,
            format!("Pipeline {id} was not found"),
        )
    }

    /// `PipelineDeletedException` (400).
    pub fn pipeline_deleted(id: &str) -> Self {
        Self::new(
            "PipelineDeletedException",
            400,
            format!("Pipeline {id} has been deleted"),
        )
    }

    /// `TaskNotFoundException` (400).
    pub fn task_not_found(message: impl Into<String>) -> Self {
        Self::new("TaskNotFoundException", 400, message)
    }

    /// `InternalServiceError` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServiceError", 500, message)
    }

    /// `UnknownOperationException` (400): no or an unknown `X-Amz-Target`.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new("UnknownOperationException", 400, message)
    }

    /// `SerializationException` (400): the body is not a JSON object.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", 400, message)
    }

    /// `MissingAuthenticationTokenException` (400): no `Authorization` header.
    pub fn missing_authentication_token() -> Self {
        Self::new(
            "MissingAuthenticationTokenException",
            400,
            "Missing Authentication Token",
        )
    }

    /// `IncompleteSignatureException` (400): the `Authorization` header is malformed.
    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::new("IncompleteSignatureException", 400, message)
    }

    /// `UnrecognizedClientException` (400): the access key id is unknown.
    pub fn unrecognized_client() -> Self {
        Self::new(
            "UnrecognizedClientException",
            400,
            "The security token included in the request is invalid.",
        )
    }

    /// `InvalidSignatureException` (400): the signature does not verify, or its date is out of range.
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new("InvalidSignatureException", 400, message)
    }

    /// The awsJson error body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"__type": self.code, "message": self.message}))
            .expect("a JSON object of two strings serializes")
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

/// A failure of dp-local itself: starting the server or reading its configuration.
#[derive(Debug)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A sentence for the user.
    pub message: String,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The listening socket could not be bound.
    Bind,
    /// The credentials file could not be read or parsed.
    Credentials,
    /// A command-line argument is wrong.
    Usage,
    /// The server's runtime could not be started.
    Runtime,
    /// The state file cannot be used: not a dp-local database, a newer schema, corrupt, locked, unwritable.
    State,
    /// The PostgreSQL state cannot be used: a wrong URL, no server, no such database, a database of another
    /// application or of a newer schema.
    Database,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
