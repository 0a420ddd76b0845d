//! The protocol layer of dp: awsJson 1.1 requests to AWS Data Pipeline, signed with SigV4, with the AWS CLI's
//! credential, region, endpoint, retry, timeout and TLS rules.
//!
//! Every `dp` command that talks to the service goes through [`Client::call_json`]; Rust programs can use
//! [`Client::call`] with the typed inputs and outputs of `dp_model`. This is the only crate of the workspace that
//! opens HTTP connections and resolves credentials to sign with (its TLS configurations come from dp-tls). It does
//! not know clap or output formats, and it never prints a secret: credentials have no printable form here, and
//! `--debug` output is redacted (see [`log`]).
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
//!
//! # How a call goes
//!
//! 1. The first call resolves the configuration once (`client/config.rs`): the profile files (`profile.rs`, parsed
//!    per the SDKs' profile-file spec), the region (`--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, profile), validated as a
//!    host label, the endpoint (`--endpoint-url`, configured endpoints, then the ruleset in [`endpoint`]), the retry
//!    policy ([`retry`]), TLS (rustls, loaded only for https) and the credential plan (`credentials.rs`: environment
//!    and static profile keys directly; every other source through aws-config in `external.rs`).
//! 2. Each attempt (`client/call.rs`) is framed (`POST /`, `X-Amz-Target`, `Content-Type`), signed afresh with
//!    aws-sigv4 ([`signing`]) at the clock-skew-corrected time ([`skew`]), sent over one kept-alive connection with connect and
//!    read timeouts (`transport.rs`), and classified: success, or an error parsed by the awsJson rules ([`protocol`])
//!    that is retried with backoff, quota and, in adaptive mode, the client rate limiter ([`rate_limiter`]).
//! 3. Errors carry the AWS CLI's wording and a kind ([`Error`], [`ErrorKind`]); the exit code a kind gives is
//!    the CLI's business (dp-cli's `error` module).
//!
//! Only `client/`, `profile.rs`, `transport.rs`, `external.rs` and the log's time stamps touch the real clock,
//! environment, files or network; the rest are pure functions, tested with published vectors.

mod client;
pub mod container;
mod credentials;
pub mod endpoint;
mod error;
mod external;
pub mod iam;
pub mod log;
mod percent;
mod profile;
pub mod protocol;
mod proxy;
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
