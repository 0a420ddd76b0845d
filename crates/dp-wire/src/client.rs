//! The [`Client`]: lazy resolution of profile, region, endpoint and credentials, and the call loop that frames,
//! signs, sends, classifies and retries one operation.
//!
//! `Client::new` does no IO. The first call reads the profile files (once), validates the region, runs the endpoint
//! rules, loads certificates only for an https endpoint, and resolves credentials; later calls reuse all of it.
//! This module must not print anything except through the redacting debug log (and the `--no-verify-ssl` warning).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

use crate::credentials::{self, CredentialPlan};
use crate::endpoint::{self, EndpointParams};
use crate::error::{CallError, Error, ErrorKind};
use crate::log::{self, DebugLog, LogSink};
use crate::profile::{Environment, ProfileSet, Section};
use crate::protocol;
use crate::retry::{Outcome, RetryMode, RetryPolicy, RetryQuota, Retryability};
use crate::signing::{self, SigningRequest, SigningScope};
use crate::skew;
use crate::transport::{self, Target, Transport, TransportError};

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
    settings: Settings,
    env: Environment,
    log: DebugLog,
    retry_override: Option<RetryPolicy>,
    backoff_base: Option<Duration>,
    profiles: OnceLock<Profiles>,
    resolved: tokio::sync::OnceCell<Resolved>,
    iam: tokio::sync::OnceCell<IamRoute>,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
    quota: RetryQuota,
    rate_limiter: crate::rate_limiter::ClientRateLimiter,
    skew: skew::ClockSkew,
}

/// The selected profile and the files it came from.
struct Profiles {
    set: ProfileSet,
    name: String,
    /// Given by `--profile` (disables environment credentials).
    explicit: bool,
    /// Named by `--profile`, `AWS_PROFILE` or `AWS_DEFAULT_PROFILE` (so it must exist).
    named: bool,
}

impl Profiles {
    fn selected(&self) -> Option<&Section> {
        self.set.profile(&self.name)
    }
}

/// What the first call resolves once.
struct Resolved {
    region: String,
    endpoint: Endpoint,
    retry: RetryPolicy,
    transport: Transport,
    credentials: Option<CredentialPlan>,
    user_agent: String,
    skew_correction: bool,
    /// The endpoint came from the ruleset (so a DNS failure may mean the service does not exist in the region).
    from_ruleset: bool,
    /// The CA bundle and whether to verify certificates, for https credential endpoints (STS, SSO).
    ca_bundle: Option<std::path::PathBuf>,
    verify_tls: bool,
    /// The TLS configuration, built on first use.
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl Resolved {
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        self.tls
            .get_or_init(|| {
                if !self.verify_tls {
                    eprintln!(
                        "warning: certificate verification is disabled (--no-verify-ssl): unverified HTTPS requests \
                         are being made to credential endpoints. Adding certificate verification is strongly advised."
                    );
                }
                transport::tls_config(self.ca_bundle.as_deref(), self.verify_tls)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::config)
    }
}

/// Where one call goes and how it is framed and signed: Data Pipeline's awsJson or IAM's awsQuery.
struct Route<'a> {
    operation: &'static str,
    endpoint: &'a Endpoint,
    transport: &'a Transport,
    /// The endpoint came from the Data Pipeline ruleset (a DNS failure may mean the service is not in the region).
    from_ruleset: bool,
    signing_region: &'a str,
    signing_name: &'a str,
    content_type: &'a str,
    /// `X-Amz-Target` (awsJson); `None` for awsQuery.
    target: Option<&'a str>,
}

/// IAM's endpoint, signing region and connection ([`Client::call_iam`]).
#[derive(Debug)]
struct IamRoute {
    endpoint: Endpoint,
    signing_region: String,
    transport: Transport,
}

/// A parsed endpoint URL.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The URL as shown in messages (`http://127.0.0.1:1/`).
    url: String,
    target: Target,
    /// The `Host` header: the authority without a default port.
    host_header: String,
    /// The request path (`/` unless the endpoint has one), sent unchanged.
    path: String,
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
            settings,
            env,
            log,
            retry_override: None,
            backoff_base: None,
            profiles: OnceLock::new(),
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
        self.retry_override = Some(policy);
        self
    }

    /// Scales the backoff (1 s in the SDKs): the delay before attempt n+1 is `rand * min(base * 2^(n-1), cap)`.
    pub fn with_backoff_base(mut self, base: Duration) -> Client {
        self.backoff_base = Some(base);
        self
    }

    /// A setting of the selected profile in the shared config and credentials files (`output`, `region`, …).
    pub fn profile_setting(&self, key: &str) -> Option<String> {
        self.profiles()
            .selected()
            .and_then(|s| s.get(key))
            .map(str::to_string)
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

    fn profiles(&self) -> &Profiles {
        self.profiles.get_or_init(|| {
            let (name, explicit, named) =
                match (&self.settings.profile, self.env.get("AWS_PROFILE")) {
                    (Some(p), _) => (p.clone(), true, true),
                    (None, Some(p)) => (p.to_string(), false, true),
                    (None, None) => match self.env.get("AWS_DEFAULT_PROFILE") {
                        Some(p) => (p.to_string(), false, true),
                        None => ("default".to_string(), false, false),
                    },
                };
            Profiles {
                set: ProfileSet::load(&self.env),
                name,
                explicit,
                named,
            }
        })
    }

    /// A setting from the environment variable `var`, else the profile key `key`.
    fn setting(&self, var: &str, key: &str) -> Option<String> {
        self.env
            .get(var)
            .map(str::to_string)
            .or_else(|| self.profile_setting(key))
    }

    fn flag(&self, var: &str, key: &str) -> bool {
        self.setting(var, key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    async fn resolved(&self) -> Result<&Resolved, Error> {
        self.resolved
            .get_or_try_init(|| async { self.resolve() })
            .await
    }

    /// Profile, region, endpoint, retry settings, TLS and the credential plan, in the order the CLI checks them.
    fn resolve(&self) -> Result<Resolved, Error> {
        let started = Instant::now();
        let profiles = self.profiles();
        if let Some(error) = profiles.set.error() {
            return Err(Error::config(error));
        }
        if profiles.named && profiles.selected().is_none() {
            return Err(Error::config(format!(
                "The config profile ({}) could not be found",
                profiles.name
            )));
        }

        let region = self
            .settings
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| self.env.get("AWS_REGION").map(str::to_string))
            .or_else(|| self.env.get("AWS_DEFAULT_REGION").map(str::to_string))
            .or_else(|| self.profile_setting("region").filter(|r| !r.is_empty()));
        if let Some(region) = &region {
            endpoint::validate_region(region)?;
        }

        let configured = self.configured_endpoint();
        let explicit_endpoint = self.settings.endpoint_url.clone().or(configured);
        let region = match region {
            Some(region) => region,
            // Unsigned requests to an explicit endpoint need no region; everything else does.
            None if self.settings.no_sign_request && explicit_endpoint.is_some() => String::new(),
            None => return Err(Error::no_region()),
        };
        let from_ruleset = explicit_endpoint.is_none();
        // A custom endpoint overrides FIPS and dual-stack (botocore forces both off), so the ruleset never refuses it.
        let params = EndpointParams {
            region: Some(region.clone()),
            use_fips: explicit_endpoint.is_none()
                && self.flag("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint"),
            use_dual_stack: explicit_endpoint.is_none()
                && self.flag("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint"),
            endpoint: explicit_endpoint,
        };
        let url = endpoint::resolve_endpoint(&params).map_err(Error::config)?;
        let endpoint = parse_endpoint(&url)?;

        let retry = self.retry_policy()?;
        let verify_tls = !self.settings.no_verify_ssl;
        let ca_bundle = self.settings.ca_bundle.clone().or_else(|| {
            self.setting("AWS_CA_BUNDLE", "ca_bundle")
                .map(std::path::PathBuf::from)
        });
        // Certificates are loaded only for an https endpoint (it costs milliseconds).
        let tls_cell = OnceLock::new();
        let tls = if endpoint.target.tls {
            if !verify_tls {
                eprintln!(
                    "warning: certificate verification is disabled (--no-verify-ssl): unverified HTTPS requests are \
                     being made to host '{}'. Adding certificate verification is strongly advised.",
                    endpoint.target.host
                );
            }
            let config = Arc::new(transport::tls_config(ca_bundle.as_deref(), verify_tls)?);
            let _ = tls_cell.set(Ok(config.clone()));
            Some(config)
        } else {
            None
        };

        let proxy = crate::proxy::proxy_for(&self.env, &endpoint.target)?;
        let credentials = if self.settings.no_sign_request {
            None
        } else {
            Some(credentials::plan(
                &self.env,
                &profiles.name,
                profiles.selected(),
                profiles.explicit,
            )?)
        };
        let skew_correction = !self.flag(
            "AWS_DISABLE_CLOCK_SKEW_CORRECTION",
            "disable_clock_skew_correction",
        );
        let user_agent = format!(
            "dp/{} ua/2.1 os/{} lang/rust/{} cfg/retry-mode#{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            env!("CARGO_PKG_RUST_VERSION"),
            retry.mode.name()
        );
        self.log.log("dp_wire.config", || {
            format!(
                "profile={} region={region} endpoint={} proxy={} credentials={} retry_mode={} max_attempts={} resolved in {:?}",
                profiles.name,
                endpoint.url,
                proxy.as_ref().map_or("none".to_string(), |p| format!("{}:{}", p.host, p.port)),
                match &credentials {
                    None => "none (--no-sign-request)".to_string(),
                    Some(CredentialPlan::Static(c, source)) => {
                        format!("{} ({source})", log::mask_access_key_id(c.access_key_id()))
                    }
                    Some(CredentialPlan::External { profile: Some(p) }) => format!("profile {p} via aws-config"),
                    Some(CredentialPlan::External { profile: None }) => {
                        "web identity / container / instance metadata via aws-config".to_string()
                    }
                },
                retry.mode.name(),
                retry.max_attempts,
                started.elapsed()
            )
        });
        Ok(Resolved {
            region,
            endpoint,
            retry,
            transport: Transport::with_proxy(tls, proxy),
            credentials,
            user_agent,
            skew_correction,
            from_ruleset,
            ca_bundle,
            verify_tls,
            tls: tls_cell,
        })
    }

    /// `AWS_ENDPOINT_URL_DATA_PIPELINE`, `AWS_ENDPOINT_URL`, the profile's `services` section, the profile's
    /// `endpoint_url`, unless configured endpoints are ignored.
    fn configured_endpoint(&self) -> Option<String> {
        if self.flag(
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "ignore_configured_endpoint_urls",
        ) {
            return None;
        }
        if let Some(url) = self
            .env
            .get("AWS_ENDPOINT_URL_DATA_PIPELINE")
            .or_else(|| self.env.get("AWS_ENDPOINT_URL"))
        {
            return Some(url.to_string());
        }
        let profiles = self.profiles();
        let selected = profiles.selected()?;
        selected
            .get("services")
            .and_then(|name| profiles.set.services(name))
            .and_then(|services| services.sub("data_pipeline", "endpoint_url"))
            .or_else(|| selected.get("endpoint_url"))
            .filter(|u| !u.is_empty())
            .map(str::to_string)
    }

    fn retry_policy(&self) -> Result<RetryPolicy, Error> {
        let mut policy = match self.retry_override {
            Some(policy) => policy,
            None => {
                let mode = match self.setting("AWS_RETRY_MODE", "retry_mode") {
                    None => RetryMode::Standard,
                    Some(value) => RetryMode::parse(&value).ok_or_else(|| {
                        Error::config(format!(
                            "Invalid value provided to \"retry_mode\": {value}. Valid values are: legacy, standard, adaptive"
                        ))
                    })?,
                };
                let mut policy = RetryPolicy::new(mode);
                if let Some(value) = self.setting("AWS_MAX_ATTEMPTS", "max_attempts") {
                    match value.trim().parse::<u32>() {
                        Ok(n) if n >= 1 => policy = policy.with_max_attempts(n),
                        _ => {
                            return Err(Error::config(format!(
                                "Value provided to \"max_attempts\": {value} must be an integer greater than or equal to 1."
                            )));
                        }
                    }
                }
                policy
            }
        };
        if let Some(base) = self.backoff_base {
            policy = policy.with_base_delay(base);
        }
        Ok(policy)
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
                    env: &self.env,
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
            &self.env,
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
            .get_or_try_init(|| async { self.iam_route(resolved) })
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

    /// IAM's endpoint, signing region and connection, resolved once per client.
    fn iam_route(&self, resolved: &Resolved) -> Result<IamRoute, Error> {
        let configured = if self.flag(
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "ignore_configured_endpoint_urls",
        ) {
            None
        } else {
            self.env
                .get("AWS_ENDPOINT_URL_IAM")
                .or_else(|| self.env.get("AWS_ENDPOINT_URL"))
                .map(str::to_string)
                .or_else(|| {
                    let profiles = self.profiles();
                    let selected = profiles.selected()?;
                    selected
                        .get("services")
                        .and_then(|name| profiles.set.services(name))
                        .and_then(|services| services.sub("iam", "endpoint_url"))
                        .or_else(|| selected.get("endpoint_url"))
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                })
        };
        let (url, signing_region) = match self.settings.endpoint_url.clone().or(configured) {
            Some(url) => (url, resolved.region.clone()),
            None => {
                let global = crate::iam::global_endpoint(
                    &resolved.region,
                    self.flag("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint"),
                );
                (global.url, global.signing_region)
            }
        };
        let endpoint = parse_endpoint(&url)?;
        let tls = if endpoint.target.tls {
            Some(resolved.tls()?)
        } else {
            None
        };
        let proxy = crate::proxy::proxy_for(&self.env, &endpoint.target)?;
        Ok(IamRoute {
            endpoint,
            signing_region,
            transport: Transport::with_proxy(tls, proxy),
        })
    }

    /// Sends `body` on `route` with the retry policy, signing each attempt afresh.
    async fn send_on(
        &self,
        resolved: &Resolved,
        route: &Route<'_>,
        body: Vec<u8>,
    ) -> Result<transport::Response, Error> {
        let op_name = route.operation;
        let policy = resolved.retry;
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let (connect_timeout, read_timeout) = timeouts(&self.settings, op_name);
        let body = Bytes::from(body);
        let full_url = format!(
            "{}://{}{}",
            if route.endpoint.target.tls {
                "https"
            } else {
                "http"
            },
            route.endpoint.host_header,
            route.endpoint.path
        );
        let uses_quota = policy.mode != RetryMode::Legacy;

        let mut attempt: u32 = 1;
        let mut retry_cost: Option<u32> = None;
        loop {
            let credentials = match &resolved.credentials {
                Some(plan) => Some(
                    self.current_credentials(resolved, plan)
                        .await
                        .map_err(|e| e.with_operation(op_name))?,
                ),
                None => None,
            };
            if policy.mode == RetryMode::Adaptive {
                // The adaptive mode's token bucket: after a throttle, requests wait for their turn.
                while let Some(wait) = self.rate_limiter.acquire(epoch_seconds()) {
                    self.log.log("dp_wire.retry", || {
                        format!("adaptive rate limit: waiting {wait:?}")
                    });
                    tokio::time::sleep(wait).await;
                }
            }
            let request = self.build_request(
                resolved,
                route,
                &full_url,
                &body,
                credentials.as_ref(),
                &invocation_id,
                attempt,
                policy.max_attempts,
            )?;
            self.log_request(&request, &body, attempt, policy.max_attempts);

            let sent_at = SystemTime::now();
            let started = Instant::now();
            let result = route
                .transport
                .round_trip(
                    &route.endpoint.target,
                    request,
                    connect_timeout,
                    read_timeout,
                )
                .await;
            let received_at = SystemTime::now();
            let elapsed = started.elapsed();

            let (outcome_error, retryability) = match result {
                Ok(response) => {
                    if resolved.skew_correction {
                        self.skew.observe(&response.headers, sent_at, received_at);
                    }
                    self.log_response(&response, elapsed);
                    if response.status.is_success() {
                        if uses_quota {
                            self.quota.release(retry_cost);
                        }
                        if policy.mode == RetryMode::Adaptive {
                            self.rate_limiter.update(epoch_seconds(), false);
                        }
                        return Ok(response);
                    }
                    let service = if route.target.is_some() {
                        protocol::parse_error(&response)
                    } else {
                        crate::iam::parse_error(response.status.as_u16(), &response.body)
                    };
                    let mut verdict = policy.classify(&Outcome::Response {
                        status: service.status,
                        code: Some(service.code.as_str()),
                    });
                    if verdict == Retryability::NotRetryable
                        && resolved.skew_correction
                        && skew::is_skew_error(&service.code)
                        && self.skew.is_definite()
                    {
                        verdict = Retryability::Transient { timeout: false };
                    }
                    (Error::service(op_name, service), verdict)
                }
                Err(error) => {
                    let (error, outcome) = self.transport_error(resolved, route, error);
                    self.log.log("dp_wire.http", || {
                        format!("attempt {attempt} failed after {elapsed:?}: {error}")
                    });
                    (error.with_operation(op_name), policy.classify(&outcome))
                }
            };

            if policy.mode == RetryMode::Adaptive {
                self.rate_limiter
                    .update(epoch_seconds(), retryability == Retryability::Throttling);
            }
            let timeout = match retryability {
                Retryability::Success => unreachable!("successes return above"),
                Retryability::NotRetryable => {
                    self.log.log("dp_wire.retry", || {
                        format!("attempt {attempt}: not retryable")
                    });
                    return Err(outcome_error);
                }
                Retryability::Throttling => false,
                Retryability::Transient { timeout } => timeout,
            };
            if attempt >= policy.max_attempts {
                self.log.log("dp_wire.retry", || {
                    format!(
                        "attempt {attempt}: reached max attempts ({})",
                        policy.max_attempts
                    )
                });
                return Err(outcome_error.with_max_retries_reached(attempt - 1));
            }
            if uses_quota {
                match self.quota.acquire(timeout) {
                    Some(cost) => retry_cost = Some(cost),
                    None => {
                        self.log.log("dp_wire.retry", || {
                            format!("attempt {attempt}: retry quota exhausted, not retrying")
                        });
                        return Err(outcome_error);
                    }
                }
            }
            let delay = policy.backoff(attempt, fastrand::f64());
            self.log.log("dp_wire.retry", || {
                format!(
                    "attempt {attempt} failed ({retryability:?}: {outcome_error}); retrying in {delay:?} (quota left: {})",
                    self.quota.available()
                )
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_request(
        &self,
        resolved: &Resolved,
        route: &Route<'_>,
        full_url: &str,
        body: &Bytes,
        credentials: Option<&Credentials>,
        invocation_id: &str,
        attempt: u32,
        max_attempts: u32,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let mut signed_headers: Vec<(&str, &str)> = vec![
            ("content-type", route.content_type),
            ("host", route.endpoint.host_header.as_str()),
        ];
        if let Some(target) = route.target {
            signed_headers.push(("x-amz-target", target));
        }
        let mut builder = Request::post(route.endpoint.path.as_str());
        for &(name, value) in &signed_headers {
            builder = builder.header(name, value);
        }
        if let Some(credentials) = credentials {
            let time = self.skew.apply(SystemTime::now());
            let signed = signing::sign_request(
                &SigningRequest {
                    method: "POST",
                    url: full_url,
                    headers: &signed_headers,
                    body,
                },
                credentials,
                &SigningScope {
                    region: route.signing_region,
                    service: route.signing_name,
                    time,
                },
            )?;
            for (name, value) in signed.headers {
                builder = builder.header(name, value);
            }
        }
        // Added after signing, never signed: proxies may rewrite them, and they differ between attempts.
        builder = builder
            .header("user-agent", resolved.user_agent.as_str())
            .header("amz-sdk-invocation-id", invocation_id)
            .header(
                "amz-sdk-request",
                format!("attempt={attempt}; max={max_attempts}"),
            )
            .header("content-length", body.len().to_string());
        builder.body(Full::new(body.clone())).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("Could not build the request: {e}"),
            )
        })
    }

    fn transport_error(
        &self,
        resolved: &Resolved,
        route: &Route<'_>,
        error: TransportError,
    ) -> (Error, Outcome<'static>) {
        let url = &route.endpoint.url;
        match error {
            TransportError::ConnectTimeout => (
                Error::new(ErrorKind::Transport, format!("Connect timeout on endpoint URL: \"{url}\"")),
                Outcome::Timeout,
            ),
            TransportError::ReadTimeout => (
                Error::new(ErrorKind::Transport, format!("Read timeout on endpoint URL: \"{url}\"")),
                Outcome::Timeout,
            ),
            TransportError::Connect(source) => {
                let mut message = format!("Could not connect to the endpoint URL: \"{url}\"");
                if route.from_ruleset && !endpoint::SERVICE_REGIONS.contains(&resolved.region.as_str()) {
                    message.push_str(&format!(
                        "\nData Pipeline is not available in {} (it runs in {}).",
                        resolved.region,
                        endpoint::SERVICE_REGIONS.join(", ")
                    ));
                }
                (Error::new(ErrorKind::Transport, message).with_source(BoxedError(source)), Outcome::ConnectionError)
            }
            TransportError::Closed(source) => (
                Error::new(
                    ErrorKind::Transport,
                    format!("Connection was closed before we received a valid response from endpoint URL: \"{url}\"."),
                )
                .with_source(BoxedError(source)),
                Outcome::ConnectionError,
            ),
        }
    }

    fn log_request(&self, request: &Request<Full<Bytes>>, body: &[u8], attempt: u32, max: u32) {
        if !self.log.enabled() {
            return;
        }
        self.log.log("dp_wire.http", || {
            let mut text = format!(
                "attempt {attempt} of {max}: {} {} HTTP/1.1",
                request.method(),
                request.uri()
            );
            for (name, value) in request.headers() {
                let value = value.to_str().unwrap_or("(binary)");
                text.push_str(&format!(
                    "\n  {name}: {}",
                    log::redact_header(name.as_str(), value)
                ));
            }
            text.push_str(&format!("\n  body: {}", log::redact_body(body)));
            text
        });
    }

    fn log_response(&self, response: &transport::Response, elapsed: Duration) {
        if !self.log.enabled() {
            return;
        }
        self.log.log("dp_wire.http", || {
            let mut text = format!("response {} after {elapsed:?}", response.status);
            for (name, value) in &response.headers {
                let value = value.to_str().unwrap_or("(binary)");
                text.push_str(&format!(
                    "\n  {name}: {}",
                    log::redact_header(name.as_str(), value)
                ));
            }
            text.push_str(&format!("\n  body: {}", log::redact_body(&response.body)));
            text
        });
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Settings hold no secret; credentials are never shown.
        f.debug_struct("Client")
            .field("settings", &self.settings)
            .field("env", &self.env)
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

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `None` for a zero duration (no timeout), the default when unset.
fn timeout_or_default(value: Option<Duration>, default: Duration) -> Option<Duration> {
    match value {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None => Some(default),
    }
}

fn parse_endpoint(url: &str) -> Result<Endpoint, Error> {
    let invalid = || Error::config(format!("Invalid endpoint: {url}"));
    let uri: http::Uri = url.parse().map_err(|_| invalid())?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid()),
    };
    let authority = uri.authority().ok_or_else(invalid)?;
    let host = authority.host().to_string();
    if host.is_empty() {
        return Err(invalid());
    }
    let default_port = if tls { 443 } else { 80 };
    let port = authority.port_u16().unwrap_or(default_port);
    let host_header = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let path = match uri.path() {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(Endpoint {
        url: format!("{scheme}://{}{path}", authority.as_str()),
        target: Target { host, port, tls },
        host_header,
        path,
    })
}

/// Lets a boxed error serve as a `source`.
#[derive(Debug)]
struct BoxedError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for BoxedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BoxedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = parse_endpoint("http://127.0.0.1:1").unwrap();
        assert_eq!(
            (e.url.as_str(), e.host_header.as_str(), e.path.as_str()),
            ("http://127.0.0.1:1/", "127.0.0.1:1", "/")
        );
        let e = parse_endpoint("https://datapipeline.us-east-1.amazonaws.com:443/pre%3Dfix/a//b/")
            .unwrap();
        assert_eq!(e.host_header, "datapipeline.us-east-1.amazonaws.com");
        assert_eq!(e.path, "/pre%3Dfix/a//b/");
        assert!(parse_endpoint("ftp://x").is_err());
        assert!(parse_endpoint("no scheme").is_err());
    }
}
