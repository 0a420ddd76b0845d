//! The one error type of dp-wire, and the typed error of [`crate::Client::call`].
//!
//! Its `Display` is the AWS CLI's wording, because users script against those lines; its [`ErrorKind`] says what
//! went wrong, and a program (dp-cli's exit-code table) decides what that means
//! for it. It must never carry a secret: messages are built
//! from codes, URLs and service messages only, never from credentials or signed headers.

use std::fmt;

/// What went wrong, coarsely: enough to choose an exit code and a wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid: unknown profile, bad setting, invalid region, unusable endpoint or CA bundle.
    Config,
    /// No credentials could be found, or a credential source failed.
    Credentials,
    /// No region is configured.
    Region,
    /// The service answered with an error (any non-2xx response).
    Service,
    /// The request could not be sent or its answer not received: connection refused or dropped, timeouts, TLS.
    Transport,
    /// The service answered 2xx with a body that is not a JSON object (or does not fit the output type).
    InvalidResponse,
    /// The caller stopped waiting for the call (the user pressed Ctrl-C); see [`Error::interrupted`].
    Interrupted,
}

/// A service error as the awsJson protocol reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The error code, namespace and `:` suffix removed (`TaskNotFoundException`, or the HTTP status as text).
    pub code: String,
    /// The message, if the service sent one.
    pub message: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The `x-amzn-RequestId` header, if present.
    pub request_id: Option<String>,
}

/// An error of dp-wire: a kind, the operation it happened in, and the details the CLI prints. One pointer wide.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    service: Option<ServiceError>,
    operation: Option<&'static str>,
    /// `Some(retries)` when the call gave up because it reached its maximum number of attempts.
    max_retries_reached: Option<u32>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A call its caller gave up on because the user interrupted it (SIGINT). dp-wire never makes one itself; a
    /// program that races its calls against a signal uses it so that an interrupted call is an error like others.
    pub fn interrupted() -> Error {
        Error::new(ErrorKind::Interrupted, "Interrupted")
    }

    /// An error of `kind` with a complete message.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                service: None,
                operation: None,
                max_retries_reached: None,
                source: None,
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn no_credentials() -> Error {
        Error::new(
            ErrorKind::Credentials,
            "Unable to locate credentials. You can configure credentials by running \"aws configure\".",
        )
    }

    pub(crate) fn no_region() -> Error {
        Error::new(
            ErrorKind::Region,
            "You must specify a region. You can also configure your region by running \"aws configure\".",
        )
    }

    pub(crate) fn service(operation: &'static str, service: ServiceError) -> Error {
        let mut error = Error::new(ErrorKind::Service, String::new());
        error.inner.service = Some(service);
        error.inner.operation = Some(operation);
        error
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_operation(mut self, operation: &'static str) -> Error {
        self.inner.operation = Some(operation);
        self
    }

    pub(crate) fn with_max_retries_reached(mut self, retries: u32) -> Error {
        self.inner.max_retries_reached = Some(retries);
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// For service errors: the error code.
    pub fn service_code(&self) -> Option<&str> {
        self.inner.service.as_ref().map(|s| s.code.as_str())
    }

    /// For service errors: the message.
    pub fn service_message(&self) -> Option<&str> {
        self.inner
            .service
            .as_ref()
            .and_then(|s| s.message.as_deref())
    }

    /// For service errors: everything the response said.
    pub fn service_error(&self) -> Option<&ServiceError> {
        self.inner.service.as_ref()
    }

    /// The API name of the operation the error happened in, once a call was started.
    pub fn operation(&self) -> Option<&'static str> {
        self.inner.operation
    }

    /// The number of retries made when the call gave up because it reached its maximum number of attempts.
    pub fn max_retries_reached(&self) -> Option<u32> {
        self.inner.max_retries_reached
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.service {
            Some(service) => {
                // botocore's ClientError wording, "Unknown" standing in for a missing code.
                let code = if service.code.is_empty() {
                    "Unknown"
                } else {
                    service.code.as_str()
                };
                write!(
                    f,
                    "An error occurred ({code}) when calling the {} operation",
                    self.inner.operation.unwrap_or("Unknown")
                )?;
                if let Some(retries) = self.inner.max_retries_reached {
                    write!(f, " (reached max retries: {retries})")?;
                }
                // botocore's JSON parser reads a missing message as "", so the line ends after the colon.
                write!(f, ": {}", service.message.as_deref().unwrap_or(""))
            }
            None => f.write_str(&self.inner.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.to_string());
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error of a typed call ([`crate::Client::call`]): the operation's modeled error, or anything else.
#[derive(Debug)]
pub enum CallError<E> {
    /// The service answered with an error; `error` is the operation's error enum (its `Unhandled` variant for codes
    /// the model does not list), `details` the full error.
    Service {
        /// The typed error.
        error: E,
        /// The same error with its status, request id and the CLI wording.
        details: Error,
    },
    /// Configuration, credentials, transport or response errors.
    Other(Error),
}

impl<E> CallError<E> {
    /// The underlying [`Error`], for its wording and kind.
    pub fn error(&self) -> &Error {
        match self {
            CallError::Service { details, .. } => details,
            CallError::Other(e) => e,
        }
    }
}

impl<E> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.error(), f)
    }
}

impl<E: fmt::Debug> std::error::Error for CallError<E> {}
