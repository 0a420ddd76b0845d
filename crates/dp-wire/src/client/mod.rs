//! The [`Client`]: its public calls, on top of two parts: `config` (lazy resolution of profile, region, endpoint,
//! retry policy, TLS and the credential plan, once per client) and `call` (the loop that frames, signs, sends,
//! classifies and retries one call). This module holds what ties them together: the client's state and the
//! credentials cache.
//!
//! `Client::new` does no IO. The first call reads the profile files (once), validates the region, runs the endpoint
//! rules, loads certificates only for an https endpoint, and resolves credentials; later calls reuse all of it.
//! This module must not print anything except through the redacting debug log (and the `--no-verify-ssl` warning).

mod call;
mod config;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use serde_json::Value;

use crate::credentials::{self, CredentialPlan};
use crate::error::{CallError, Error, ErrorKind};
use crate::log::{self, DebugLog, LogSink};
use crate::profile::Environment;
use crate::protocol;
use crate::retry::{RetryPolicy, RetryQuota};
use crate::skew;
use crate::transport;

use call::Route;
use config::{Configuration, IamRoute, Resolved};

/// Everything the CLI resolved from its arguments; all optional, defaults as the AWS CLI.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`. An explicit profile disables environment credentials, as in botocore.
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--no-sign-request`.
    pub no_sign_request: bool,
    /// `--no-verify-ssl` (a warning is printed on stderr when an https endpoint is used).
    pub no_verify_ssl: bool,
    /// `--ca-bundle`.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// `--cli-connect-timeout`. `None`: 60 s; `Some(ZERO)`: no timeout.
    pub connect_timeout: Option<Duration>,
    /// `--cli-read-timeout`. `None`: 60 s (100 s for PollForTask, which long-polls up to 90 s); `Some(ZERO)`: none.
    pub read_timeout: Option<Duration>,
    /// `--debug`: log to stderr, redacted.
    pub debug: bool,
}

/// The default connect and read timeout of the AWS CLI.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The read timeout of PollForTask when none is set: above its 90 s long poll.
pub const POLL_FOR_TASK_READ_TIMEOUT: Duration = Duration::from_secs(100);

/// A Data Pipeline client. Cheap to build: no credential, region or certificate IO happens until the first call.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use dp_model::{ops, types};
/// let client = dp_wire::Client::new(dp_wire::Settings { region: Some("us-east-1".into()), ..Default::default() })?;
/// let input = types::ListPipelinesInput::default();
/// let output = client.call::<ops::ListPipelines>(&input).await?;
/// for pipeline in output.pipeline_id_list {
///     println!("{} {}", pipeline.id.unwrap_or_default(), pipeline.name.unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
pub struct Client {
    config: Configuration,
    log: DebugLog,
    resolved: tokio::sync::OnceCell<Resolved>,
    iam: tokio::sync::OnceCell<IamRoute>,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
    quota: RetryQuota,
    rate_limiter: crate::rate_limiter::ClientRateLimiter,
    skew: skew::ClockSkew,
}

impl Client {
    /// A client for `settings`, reading the process environment when the first call needs it.
    pub fn new(settings: Settings) -> Result<Client, Error> {
        Client::with_environment(settings, Environment::from_process())
    }

    /// A client reading `env` instead of the process environment (for embedders and tests).
    pub fn with_environment(settings: Settings, env: Environment) -> Result<Client, Error> {
        let log = if settings.debug {
            DebugLog::stderr()
        } else {
            DebugLog::default()
        };
        Ok(Client {
            config: Configuration::new(settings, env),
            log,
            resolved: tokio::sync::OnceCell::new(),
            iam: tokio::sync::OnceCell::new(),
            credentials: tokio::sync::Mutex::new(None),
            quota: RetryQuota::default(),
            rate_limiter: Default::default(),
            skew: skew::ClockSkew::default(),
        })
    }

    /// Sends debug lines to `sink` instead of stderr (and turns debug logging on).
    pub fn with_log_sink(mut self, sink: LogSink) -> Client {
        self.log = DebugLog::to_sink(sink);
        self
    }

    /// Uses `policy` instead of the configured retry mode and attempts.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Client {
        self.config.retry_override = Some(policy);
        self
    }

    /// Scales the backoff (1 s in the SDKs): the delay before attempt n+1 is `rand * min(base * 2^(n-1), cap)`.
    pub fn with_backoff_base(mut self, base: Duration) -> Client {
        self.config.backoff_base = Some(base);
        self
    }

    /// A setting of the selected profile in the shared config and credentials files (`output`, `region`, …).
    pub fn profile_setting(&self, key: &str) -> Option<String> {
        self.config.profile_setting(key)
    }

    /// The endpoint URL calls go to, resolving the configuration as the first call would (profile files, region,
    /// endpoint rules, TLS set-up for https). No network IO and no credential lookup beyond static keys.
    pub async fn endpoint_url(&self) -> Result<String, Error> {
        Ok(self.resolved().await?.endpoint.url.clone())
    }

    /// The region calls are signed for, resolved as [`Client::endpoint_url`] does.
    pub async fn region(&self) -> Result<String, Error> {
        Ok(self.resolved().await?.region.clone())
    }

    /// The retry quota's tokens left (500 when full).
    pub fn retry_tokens(&self) -> u32 {
        self.quota.available()
    }

    async fn resolved(&self) -> Result<&Resolved, Error> {
        self.resolved
            .get_or_try_init(|| async { self.config.resolve(&self.log) })
            .await
    }

    async fn current_credentials(
        &self,
        resolved: &Resolved,
        plan: &CredentialPlan,
    ) -> Result<Credentials, Error> {
        match plan {
            CredentialPlan::Static(credentials, _) => Ok(credentials.clone()),
            CredentialPlan::External { profile } => {
                let mut cached = self.credentials.lock().await;
                if let Some(credentials) = cached.as_ref()
                    && !credentials::needs_refresh(credentials, SystemTime::now())
                {
                    return Ok(credentials.clone());
                }
                let context = crate::external::ExternalContext {
                    env: &self.config.env,
                    profile: profile.as_deref(),
                    region: &resolved.region,
                    tls: Some(resolved.tls()?),
                    log: &self.log,
                };
                let fresh = crate::external::resolve(context).await?;
                *cached = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// The credentials calls are signed with, resolved (and cached, refreshed) exactly as for a call; `None` with
    /// `--no-sign-request`. For embedders that call another AWS service with the same identity (dp-task-runner's
    /// S3 transfers).
    pub async fn credentials(&self) -> Result<Option<Credentials>, Error> {
        let resolved = self.resolved().await?;
        match &resolved.credentials {
            None => Ok(None),
            Some(plan) => self.current_credentials(resolved, plan).await.map(Some),
        }
    }

    /// Where the credentials come from, in words that hold no secret (`environment, key id AKID****MPLE`), for
    /// diagnostics. Resolves them as a call would.
    pub async fn credential_source(&self) -> Result<String, Error> {
        let resolved = self.resolved().await?;
        let Some(plan) = &resolved.credentials else {
            return Ok("none (requests are not signed)".to_string());
        };
        let credentials = self.current_credentials(resolved, plan).await?;
        let masked = log::mask_access_key_id(credentials.access_key_id());
        Ok(match plan {
            CredentialPlan::Static(_, source) => format!("{source}, key id {masked}"),
            CredentialPlan::External { profile: Some(p) } => {
                format!("profile {p} (resolved by aws-config), key id {masked}")
            }
            CredentialPlan::External { profile: None } => {
                format!(
                    "web identity, container or instance metadata (aws-config), key id {masked}"
                )
            }
        })
    }

    /// An HTTP client for AWS SDK service clients (aws-sdk-s3 in dp-task-runner) that sends through this client's
    /// transport: the same TLS settings, CA bundle and proxy environment. Request and response bodies are held in
    /// memory.
    pub async fn sdk_http_client(
        &self,
    ) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, Error> {
        let resolved = self.resolved().await?;
        Ok(crate::external::sdk_http_client(
            Some(resolved.tls()?),
            &self.config.env,
        ))
    }

    /// Sends one operation (with retries) and returns its output as the AWS CLI prints it: structure members in the
    /// model's order, unknown and `null` members dropped, map entries in wire order (`{}` for an empty body or an
    /// operation without output). `input` is the already validated request value (`null` counts as no members);
    /// its timestamps may be written as the CLI accepts them (`2026-01-02T03:04:05Z`, epoch seconds) and are sent as
    /// epoch seconds.
    pub async fn call_json(
        &self,
        operation: &'static dp_model::Operation,
        input: &Value,
    ) -> Result<Value, Error> {
        let body = match operation.input {
            Some(shape) => {
                let mut input = input.clone();
                protocol::serialize_timestamps(shape, &mut input);
                protocol::encode_body(&input)
            }
            None => protocol::encode_body(input),
        };
        let response = self.send(operation, body).await?;
        let output = protocol::decode_output(&response.body)
            .map_err(|e| e.with_operation(operation.name))?;
        Ok(operation
            .output
            .and_then(|shape| protocol::shape_output(shape, &output))
            .unwrap_or_else(|| Value::Object(serde_json::Map::new())))
    }

    /// Typed call for library users: serializes `input`, sends it, and decodes the output or the modeled error.
    pub async fn call<O: dp_model::OperationSpec>(
        &self,
        input: &O::Input,
    ) -> Result<O::Output, CallError<O::Error>> {
        let operation = O::operation();
        let value = serde_json::to_value(input).map_err(|e| {
            CallError::Other(Error::new(
                ErrorKind::Config,
                format!("Could not serialize the input: {e}"),
            ))
        })?;
        match self.call_json(operation, &value).await {
            Ok(output) => serde_json::from_value(output).map_err(|e| {
                CallError::Other(
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!(
                            "The {} response does not match its model: {e}",
                            operation.name
                        ),
                    )
                    .with_operation(operation.name),
                )
            }),
            Err(details) => match details.service_error() {
                Some(service) => {
                    let error = <O::Error as dp_model::ModeledError>::from_code(
                        &service.code,
                        service.message.clone(),
                    );
                    Err(CallError::Service { error, details })
                }
                None => Err(CallError::Other(details)),
            },
        }
    }

    async fn send(
        &self,
        operation: &'static dp_model::Operation,
        body: Vec<u8>,
    ) -> Result<transport::Response, Error> {
        let op_name = operation.name;
        let resolved = self
            .resolved()
            .await
            .map_err(|e| e.with_operation(op_name))?;
        let target_header = format!("{}.{op_name}", dp_model::SERVICE.target_prefix);
        let content_type = format!("application/x-amz-json-{}", dp_model::SERVICE.json_version);
        let route = Route {
            operation: op_name,
            endpoint: &resolved.endpoint,
            transport: &resolved.transport,
            from_ruleset: resolved.from_ruleset,
            signing_region: &resolved.region,
            signing_name: dp_model::SERVICE.signing_name,
            content_type: &content_type,
            target: Some(&target_header),
        };
        self.send_on(resolved, &route, body).await
    }

    /// Sends one awsQuery request to IAM (with retries) and returns its `<ActionResult>` element. `params` are
    /// sent in the order given, after `Action` and `Version`. IAM goes to `--endpoint-url` when one is given (as
    /// the AWS CLI passes it on), else to a configured IAM endpoint (`AWS_ENDPOINT_URL_IAM`, `AWS_ENDPOINT_URL`,
    /// the profile's `services` section `iam`, the profile's `endpoint_url`), else to the partition's global IAM
    /// endpoint, signed for its region ([`crate::iam::global_endpoint`]).
    pub async fn call_iam(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<crate::iam::Element, Error> {
        let resolved = self
            .resolved()
            .await
            .map_err(|e| e.with_operation(action))?;
        let iam = self
            .iam
            .get_or_try_init(|| async { self.config.iam_route(resolved) })
            .await
            .map_err(|e| e.with_operation(action))?;
        let route = Route {
            operation: action,
            endpoint: &iam.endpoint,
            transport: &iam.transport,
            from_ruleset: false,
            signing_region: &iam.signing_region,
            signing_name: crate::iam::SIGNING_NAME,
            content_type: crate::iam::CONTENT_TYPE,
            target: None,
        };
        let body = crate::iam::encode_query(action, params);
        let response = self.send_on(resolved, &route, body).await?;
        crate::iam::decode_result(action, &response.body).map_err(|e| e.with_operation(action))
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Settings hold no secret; credentials are never shown.
        f.debug_struct("Client")
            .field("settings", &self.config.settings)
            .field("env", &self.config.env)
            .field("resolved", &self.resolved.initialized())
            .finish_non_exhaustive()
    }
}

/// The connect and read timeouts of a call to `operation`: the settings, else 60 s, except that PollForTask reads
/// for up to 100 s by default, because it long-polls for up to 90 s. `None` means no timeout (a setting of 0).
pub fn timeouts(settings: &Settings, operation: &str) -> (Option<Duration>, Option<Duration>) {
    let read_default = if operation == "PollForTask" {
        POLL_FOR_TASK_READ_TIMEOUT
    } else {
        DEFAULT_TIMEOUT
    };
    (
        timeout_or_default(settings.connect_timeout, DEFAULT_TIMEOUT),
        timeout_or_default(settings.read_timeout, read_default),
    )
}

/// `None` for a zero duration (no timeout), the default when unset.
fn timeout_or_default(value: Option<Duration>, default: Duration) -> Option<Duration> {
    match value {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None => Some(default),
    }
}
