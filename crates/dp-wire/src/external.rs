//! Credential sources beyond environment variables and static profile keys: assume role (`role_arn` with
//! `source_profile` or `credential_source`), `credential_process`, SSO, web identity and IMDSv2 through aws-config,
//! and container credentials (ECS / EKS Pod Identity) through `container.rs`, chained in the SDKs' order.
//!
//! aws-config is only touched from here, and only when the cheap sources found nothing, so start-up never pays for
//! it. Its HTTP calls (STS, SSO, IMDS) go through dp-wire's own [`Transport`] and proxy rules, so dp has one
//! HTTP and TLS stack; aws-config's default HTTPS client (aws-lc-rs) is not compiled in. Nothing here logs a
//! credential or a token; aws-config wraps `credential_process` command lines as sensitive itself.

use std::sync::Arc;
use std::time::Duration;

use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use crate::error::{Error, ErrorKind};
use crate::log::DebugLog;
use crate::profile::Environment;
use crate::transport::{Proxy, Target, Transport, TransportError};

/// What the external resolution needs from the client.
pub(crate) struct ExternalContext<'a> {
    /// dp's view of the environment: it decides which sources are tried (and where the profile files are).
    pub(crate) env: &'a Environment,
    /// The profile to use, when its keys name a provider (`role_arn`, `sso_session`, …).
    pub(crate) profile: Option<&'a str>,
    /// The resolved region (STS and SSO are regional).
    pub(crate) region: &'a str,
    /// TLS settings for https credential endpoints (built lazily by the caller).
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) log: &'a DebugLog,
}

/// Resolves credentials through aws-config.
pub(crate) async fn resolve(context: ExternalContext<'_>) -> Result<Credentials, Error> {
    let http = sdk_http_client(context.tls.clone(), context.env);
    let mut config = ProviderConfig::without_region()
        .with_http_client(http)
        .with_behavior_version(Some(BehaviorVersion::latest()));
    if !context.region.is_empty() {
        config = config.with_region(Some(Region::new(context.region.to_string())));
    }
    let result = match context.profile {
        Some(profile) => {
            context.log.log("dp_wire.credentials", || {
                format!("resolving credentials of profile {profile} with aws-config")
            });
            // Only files that exist: aws-config refuses an explicitly named file it cannot read, and many set-ups
            // (SSO) have no credentials file.
            let mut files = EnvConfigFiles::builder()
                .include_default_config_file(false)
                .include_default_credentials_file(false);
            for (kind, path) in [
                (EnvConfigFileKind::Config, context.env.config_file()),
                (
                    EnvConfigFileKind::Credentials,
                    context.env.credentials_file(),
                ),
            ] {
                if path.is_file() {
                    files = files.with_file(kind, path);
                }
            }
            let files = files.build();
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&config)
                .profile_files(files)
                .profile_name(profile)
                .build()
                .provide_credentials()
                .await
        }
        None => {
            let Some(chain) =
                environment_chain(context.env, &config, context.tls.clone(), context.log)?
            else {
                return Err(Error::no_credentials());
            };
            chain.provide_credentials().await
        }
    };
    result.map_err(|error| match error {
        CredentialsError::CredentialsNotLoaded(_) => Error::no_credentials(),
        other => {
            // aws-config's messages name the source and the cause; they carry no secret.
            let mut message = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            Error::new(
                ErrorKind::Credentials,
                format!("Error when retrieving credentials: {message}"),
            )
        }
    })
}

/// Web identity, container and instance-metadata providers, each only when dp's environment allows it: a web
/// identity token file and role, a container credentials URI, and IMDS unless `AWS_EC2_METADATA_DISABLED=true`.
/// `None` when no source is left, so nothing is contacted; an error for an unusable container URI.
fn environment_chain(
    env: &Environment,
    config: &ProviderConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    log: &DebugLog,
) -> Result<Option<CredentialsProviderChain>, Error> {
    let mut providers: Vec<(
        &'static str,
        aws_credential_types::provider::SharedCredentialsProvider,
    )> = Vec::new();
    if let (Some(token_file), Some(role_arn)) = (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.get("AWS_ROLE_ARN"),
    ) {
        let session_name = env
            .get("AWS_ROLE_SESSION_NAME")
            .unwrap_or("dp-session")
            .to_string();
        let provider = WebIdentityTokenCredentialsProvider::builder()
            .configure(config)
            .static_configuration(StaticConfiguration {
                web_identity_token_file: token_file.into(),
                role_arn: role_arn.to_string(),
                session_name,
            })
            .build();
        providers.push((
            "WebIdentityToken",
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        ));
    }
    match crate::container::endpoint(env) {
        None => {}
        Some(Err(message)) => return Err(Error::new(ErrorKind::Credentials, message)),
        Some(Ok(endpoint)) => {
            let provider = crate::container::ContainerProvider {
                endpoint,
                // The container agent is a local address: no proxy.
                transport: Arc::new(Transport::with_proxy(tls.clone(), None)),
            };
            providers.push((
                "EcsContainer",
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            ));
        }
    }
    let imds_disabled = env
        .get("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !imds_disabled {
        // botocore's defaults: one attempt with a one-second timeout, so a machine without IMDS learns that it has
        // no credentials quickly (`AWS_METADATA_SERVICE_TIMEOUT`, `AWS_METADATA_SERVICE_NUM_ATTEMPTS`).
        let timeout = env
            .get("AWS_METADATA_SERVICE_TIMEOUT")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(1.0);
        let attempts = env
            .get("AWS_METADATA_SERVICE_NUM_ATTEMPTS")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(1);
        let mut client = aws_config::imds::Client::builder()
            .configure(config)
            .max_attempts(attempts)
            .connect_timeout(Duration::from_secs_f64(timeout))
            .read_timeout(Duration::from_secs_f64(timeout));
        if let Some(endpoint) = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            client = client.endpoint(endpoint).map_err(|e| {
                Error::config(format!(
                    "Invalid AWS_EC2_METADATA_SERVICE_ENDPOINT {endpoint}: {e}"
                ))
            })?;
        }
        let provider = aws_config::imds::credentials::ImdsCredentialsProvider::builder()
            .configure(config)
            .imds_client(client.build())
            .build();
        providers.push((
            "Ec2InstanceMetadata",
            aws_credential_types::provider::SharedCredentialsProvider::new(ImdsOrNothing(provider)),
        ));
    }
    let names: Vec<&str> = providers.iter().map(|(n, _)| *n).collect();
    log.log("dp_wire.credentials", || {
        format!("no static credentials: trying {names:?} (aws-config)")
    });
    let mut providers = providers.into_iter();
    let Some((name, first)) = providers.next() else {
        return Ok(None);
    };
    let mut chain = CredentialsProviderChain::first_try(name, first);
    for (name, provider) in providers {
        chain = chain.or_else(name, provider);
    }
    Ok(Some(chain))
}

/// The instance-metadata provider, with every failure reported as "no credentials here": off EC2 the metadata
/// address answers with an error or not at all, and botocore then says `Unable to locate credentials`, not why the
/// last source in the chain failed. The cause is still in the `--debug` log through aws-config's own logging.
#[derive(Debug)]
struct ImdsOrNothing(aws_config::imds::credentials::ImdsCredentialsProvider);

impl ProvideCredentials for ImdsOrNothing {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            self.0.provide_credentials().await.map_err(|e| match e {
                CredentialsError::CredentialsNotLoaded(_) => e,
                other => CredentialsError::not_loaded(other),
            })
        })
    }
}

/// An HTTP client for AWS SDK clients (aws-config's providers, or a service client such as aws-sdk-s3) that sends
/// through dp-wire's transport: the same TLS settings, CA bundle and proxy rules as the Data Pipeline calls.
pub(crate) fn sdk_http_client(
    tls: Option<Arc<rustls::ClientConfig>>,
    env: &Environment,
) -> SharedHttpClient {
    SharedHttpClient::new(DpHttpClient {
        transports: Arc::new(Transports {
            tls,
            env: env.clone(),
            by_proxy: Default::default(),
        }),
    })
}

/// aws-config's HTTP client, backed by dp-wire's transport (and its proxy rules, so STS and SSO calls go through
/// the same proxy as the service calls).
#[derive(Debug, Clone)]
struct DpHttpClient {
    transports: Arc<Transports>,
}

/// A transport that sends the SDK's bodies as they are (in memory or streaming).
type SdkTransport = Transport<SdkBody>;

/// One transport per proxy in use (`None`: direct), made on first use.
struct Transports {
    tls: Option<Arc<rustls::ClientConfig>>,
    env: Environment,
    by_proxy: std::sync::Mutex<Vec<(Option<Proxy>, Arc<SdkTransport>)>>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports").finish_non_exhaustive()
    }
}

impl Transports {
    fn for_target(&self, target: &Target) -> Result<Arc<SdkTransport>, ConnectorError> {
        let proxy = crate::proxy::proxy_for(&self.env, target)
            .map_err(|e| ConnectorError::user(e.to_string().into()))?;
        let mut by_proxy = self.by_proxy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, transport)) = by_proxy.iter().find(|(p, _)| *p == proxy) {
            return Ok(transport.clone());
        }
        let transport = Arc::new(Transport::with_proxy(self.tls.clone(), proxy.clone()));
        by_proxy.push((proxy, transport.clone()));
        Ok(transport)
    }
}

impl HttpClient for DpHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(DpConnector {
            transports: self.transports.clone(),
            connect_timeout: settings.connect_timeout().or(Some(Duration::from_secs(5))),
            read_timeout: settings.read_timeout().or(Some(Duration::from_secs(30))),
        })
    }
}

#[derive(Debug)]
struct DpConnector {
    transports: Arc<Transports>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for DpConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let transports = self.transports.clone();
        let (connect_timeout, read_timeout) = (self.connect_timeout, self.read_timeout);
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(Box::new(e)))?;
            // The body goes out as the SDK made it: in memory, or streamed from a file (an S3 upload) with the
            // length the SDK set, and the answer's body comes back streaming (an S3 download), so neither passes
            // through memory whole.
            let (parts, body) = request.into_parts();
            let uri = parts.uri.clone();
            let tls = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .ok_or_else(|| ConnectorError::user("request URI has no host".into()))?
                .to_string();
            let target = Target {
                port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
                host,
                tls,
            };
            let mut builder = http::Request::builder()
                .method(parts.method)
                .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            let has_host = parts.headers.contains_key(http::header::HOST);
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            if !has_host {
                let authority = uri
                    .authority()
                    .map(|a| a.as_str().to_string())
                    .unwrap_or_default();
                builder = builder.header(http::header::HOST, authority);
            }
            if !parts.headers.contains_key(http::header::CONTENT_LENGTH)
                && let Some(length) = body.content_length().filter(|n| *n > 0)
            {
                builder = builder.header(http::header::CONTENT_LENGTH, length);
            }
            let request = builder
                .body(body)
                .map_err(|e| ConnectorError::user(Box::new(e)))?;
            let transport = transports.for_target(&target)?;
            match transport
                .stream(&target, request, connect_timeout, read_timeout)
                .await
            {
                Ok(response) => {
                    let (parts, incoming) = response.into_parts();
                    let http_response =
                        http::Response::from_parts(parts, SdkBody::from_body_1_x(incoming));
                    aws_smithy_runtime_api::http::Response::try_from(http_response)
                        .map_err(|e| ConnectorError::other(Box::new(e), None))
                }
                Err(TransportError::ConnectTimeout) => {
                    Err(ConnectorError::timeout("connect timeout".into()))
                }
                Err(TransportError::ReadTimeout) => {
                    Err(ConnectorError::timeout("read timeout".into()))
                }
                Err(TransportError::Connect(e)) | Err(TransportError::Closed(e)) => {
                    Err(ConnectorError::io(e))
                }
            }
        })
    }
}
