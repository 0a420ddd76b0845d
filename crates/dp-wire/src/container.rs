//! Container credentials (ECS tasks, EKS Pod Identity): `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `…_FULL_URI`,
//! with the token from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
//!
//! dp implements this source itself (instead of aws-config's `EcsCredentialsProvider`) because aws-config reads
//! these variables from the process environment only, and dp resolves everything from its own [`Environment`] so
//! that what it does is testable. A plain-http full URI is allowed only to the hosts the SDKs allow (loopback, the
//! ECS and EKS link-local addresses), so credentials are never fetched from an arbitrary host in clear text. The
//! authorization token and the credentials are never logged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use bytes::Bytes;
use http_body_util::Full;

use crate::profile::Environment;
use crate::transport::{Target, Transport};

/// The ECS agent's address for relative URIs.
const ECS_HOST: &str = "169.254.170.2";

/// Where to fetch container credentials, after validation.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ContainerEndpoint {
    pub(crate) url: String,
    target: Target,
    path_and_query: String,
    host_header: String,
    authorization: Option<String>,
}

impl std::fmt::Debug for ContainerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerEndpoint")
            .field("url", &self.url)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// Whether a plain-http full URI may point at `host` (botocore and aws-config's allow-list).
pub fn is_allowed_http_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip == Ipv4Addr::new(169, 254, 170, 2)
                || ip == Ipv4Addr::new(169, 254, 170, 23)
        }
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
        Err(_) => false,
    }
}

/// The container endpoint configured in `env`, `None` when neither variable is set, an error message when the URI is
/// unusable or not allowed.
pub(crate) fn endpoint(env: &Environment) -> Option<Result<ContainerEndpoint, String>> {
    let url = if let Some(relative) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let relative = if relative.starts_with('/') {
            relative.to_string()
        } else {
            format!("/{relative}")
        };
        format!("http://{ECS_HOST}{relative}")
    } else {
        env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")?.to_string()
    };
    Some(parse(&url, env))
}

fn parse(url: &str, env: &Environment) -> Result<ContainerEndpoint, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("invalid container credentials URI: {url}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("invalid container credentials URI: {url}")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("invalid container credentials URI: {url}"))?;
    let host = authority.host().to_string();
    if !tls && !is_allowed_http_host(&host) {
        return Err(format!(
            "Unsupported host '{host}' for the container credentials full URI: plain http is only allowed to loopback \
             addresses, 169.254.170.2, 169.254.170.23 and fd00:ec2::23"
        ));
    }
    let authorization = match env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("could not read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {e}"))?
                .trim()
                .to_string(),
        ),
        None => env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .map(str::to_string),
    };
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(ContainerEndpoint {
        url: url.to_string(),
        target: Target { host, port, tls },
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        host_header: authority
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_string(),
        authorization,
    })
}

/// Container credentials as an aws-config chain link: 2 s timeouts, 3 attempts one second apart (botocore).
#[derive(Debug)]
pub(crate) struct ContainerProvider {
    pub(crate) endpoint: ContainerEndpoint,
    pub(crate) transport: Arc<Transport>,
}

impl ContainerProvider {
    async fn fetch(&self) -> provider::Result {
        let mut last_error = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut request = http::Request::get(self.endpoint.path_and_query.as_str())
                .header(http::header::HOST, &self.endpoint.host_header)
                .header(http::header::ACCEPT, "application/json");
            if let Some(token) = &self.endpoint.authorization {
                request = request.header(http::header::AUTHORIZATION, token);
            }
            let request = request
                .body(Full::new(Bytes::new()))
                .map_err(CredentialsError::invalid_configuration)?;
            let timeout = Some(Duration::from_secs(2));
            match self
                .transport
                .round_trip(&self.endpoint.target, request, timeout, timeout)
                .await
            {
                Ok(response) if response.status.is_success() => {
                    return parse_credentials(&response.body);
                }
                // A client error will not change on retry.
                Ok(response) if response.status.is_client_error() => {
                    return Err(CredentialsError::provider_error(format!(
                        "the container credentials endpoint answered {}",
                        response.status
                    )));
                }
                Ok(response) => {
                    last_error = format!(
                        "the container credentials endpoint answered {}",
                        response.status
                    )
                }
                Err(error) => {
                    last_error =
                        format!("could not reach the container credentials endpoint: {error:?}")
                }
            }
        }
        Err(CredentialsError::provider_error(last_error))
    }
}

impl ProvideCredentials for ContainerProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.fetch())
    }
}

/// The endpoint's JSON: `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` (RFC 3339).
fn parse_credentials(body: &[u8]) -> provider::Result {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        CredentialsError::provider_error(format!("invalid container credentials response: {e}"))
    })?;
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    let (Some(id), Some(secret)) = (field("AccessKeyId"), field("SecretAccessKey")) else {
        return Err(CredentialsError::provider_error(
            "the container credentials response lacks AccessKeyId or SecretAccessKey",
        ));
    };
    let expiry = field("Expiration")
        .and_then(dp_model::timestamp::parse)
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    Ok(Credentials::new(
        id,
        secret,
        field("Token").map(str::to_string),
        expiry,
        "EcsContainer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(full_uri: &str, allowed: bool) {
        let env = Environment::from_vars([("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri)]);
        assert_eq!(endpoint(&env).unwrap().is_ok(), allowed, "{full_uri}");
    }

    #[test]
    fn full_uri_allow_list() {
        check("http://127.0.0.1:8080/creds", true);
        check("http://127.0.0.2/creds", true);
        check("http://localhost/creds", true);
        check("http://[::1]:80/creds", true);
        check("http://169.254.170.2/v2/credentials", true);
        check("http://169.254.170.23/v1/credentials", true);
        check("http://[fd00:ec2::23]/v1/credentials", true);
        check("https://creds.example.com/x", true);
        check("http://169.254.169.254/latest", false);
        check("http://10.0.0.1/creds", false);
        check("http://creds.example.com/x", false);
        check("http://127.0.0.1.example.com/x", false);
        check("ftp://127.0.0.1/x", false);
        let env = Environment::from_vars([(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )]);
        assert_eq!(
            endpoint(&env).unwrap().unwrap().url,
            "http://169.254.170.2/v2/credentials/abc"
        );
        assert!(endpoint(&Environment::from_vars([("HOME", "/x")])).is_none());
    }
}
