//! The protocol layer of dp: awsJson 1.1 requests to AWS Data Pipeline, signed with SigV4, with the AWS CLI's
//! credential, region, endpoint, retry, timeout and TLS rules.
//!
//! Every `dp` command that talks to the service goes through [`Client::call_json`]; Rust programs can use
//! [`Client::call`] with the typed inputs and outputs of `dp_model`. This is the only crate of the workspace that
//! knows HTTP, TLS, signing and credentials. It does not know clap or output formats, and it never prints a secret:
//! credentials have no printable form here, and `--debug` output is redacted (see `log`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dp_wire::Error> {
//! // Region, credentials and endpoint come from the environment and ~/.aws, as with the AWS CLI.
//! let client = dp_wire::Client::new(dp_wire::Settings::default())?;
//! let operation = dp_model::operation("ListPipelines").expect("in the model");
//! let output = client.call_json(operation, &serde_json::json!({})).await?;
//! println!("{output}");
//! # Ok(()) }
//! ```

mod client;
mod credentials;
pub mod endpoint;
mod error;
mod external;
pub mod log;
mod profile;
pub mod protocol;
pub mod rate_limiter;
pub mod retry;
pub mod signing;
pub mod skew;
mod transport;

pub use client::{Client, DEFAULT_TIMEOUT, POLL_FOR_TASK_READ_TIMEOUT, Settings, timeouts};
pub use error::{CallError, Error, ErrorKind, ServiceError};
pub use log::LogSink;
pub use profile::Environment;
pub use retry::{RetryMode, RetryPolicy};
