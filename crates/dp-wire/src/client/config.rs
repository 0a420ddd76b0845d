//! Configuration resolution: which profile, region, endpoint, retry policy, TLS set-up and credential plan a
//! [`Client`](super::Client) uses, and IAM's route for `create-default-roles`.
//!
//! Everything here is decided once, on the first call, from the settings, the environment and the profile files,
//! in the order the AWS CLI checks them. This module sends nothing and signs nothing; the call loop (`call.rs`)
//! works from the [`Resolved`] value it returns.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::credentials::{self, CredentialPlan};
use crate::endpoint::{self, EndpointParams};
use crate::error::Error;
use crate::log::{self, DebugLog};
use crate::profile::{Environment, ProfileSet, Section};
use crate::retry::{RetryMode, RetryPolicy};
use crate::transport::{self, Target, Transport};

use super::Settings;

/// The settings, environment and overrides a client was built with, and the profile files once read.
pub(super) struct Configuration {
    pub(super) settings: Settings,
    pub(super) env: Environment,
    pub(super) retry_override: Option<RetryPolicy>,
    pub(super) backoff_base: Option<Duration>,
    profiles: OnceLock<Profiles>,
}

/// How a service's endpoint can be configured outside the command line.
struct ConfiguredService {
    /// `AWS_ENDPOINT_URL_<SERVICE>`.
    env_var: &'static str,
    /// The key of the service in a profile's `services` section.
    services_key: &'static str,
}

const DATA_PIPELINE: ConfiguredService = ConfiguredService {
    env_var: "AWS_ENDPOINT_URL_DATA_PIPELINE",
    services_key: "data_pipeline",
};

const IAM: ConfiguredService = ConfiguredService {
    env_var: "AWS_ENDPOINT_URL_IAM",
    services_key: "iam",
};

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
pub(super) struct Resolved {
    pub(super) region: String,
    pub(super) endpoint: Endpoint,
    pub(super) retry: RetryPolicy,
    pub(super) transport: Transport,
    pub(super) credentials: Option<CredentialPlan>,
    pub(super) user_agent: String,
    pub(super) skew_correction: bool,
    /// The endpoint came from the ruleset (so a DNS failure may mean the service does not exist in the region).
    pub(super) from_ruleset: bool,
    /// The CA bundle and whether to verify certificates, for https credential endpoints (STS, SSO).
    pub(super) ca_bundle: Option<std::path::PathBuf>,
    pub(super) verify_tls: bool,
    /// The TLS configuration, built on first use.
    pub(super) tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl Resolved {
    pub(super) fn tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
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

/// IAM's endpoint, signing region and connection ([`Client::call_iam`]).
#[derive(Debug)]
pub(super) struct IamRoute {
    pub(super) endpoint: Endpoint,
    pub(super) signing_region: String,
    pub(super) transport: Transport,
}

/// A parsed endpoint URL.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// The URL as shown in messages (`http://127.0.0.1:1/`).
    pub(super) url: String,
    pub(super) target: Target,
    /// The `Host` header: the authority without a default port.
    pub(super) host_header: String,
    /// The request path (`/` unless the endpoint has one), sent unchanged.
    pub(super) path: String,
}

impl Configuration {
    pub(super) fn new(settings: Settings, env: Environment) -> Configuration {
        Configuration {
            settings,
            env,
            retry_override: None,
            backoff_base: None,
            profiles: OnceLock::new(),
        }
    }

    /// A setting of the selected profile in the shared config and credentials files.
    pub(super) fn profile_setting(&self, key: &str) -> Option<String> {
        self.profiles()
            .selected()
            .and_then(|s| s.get(key))
            .map(str::to_string)
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

    /// Profile, region, endpoint, retry settings, TLS and the credential plan, in the order the CLI checks them.
    pub(super) fn resolve(&self, log: &DebugLog) -> Result<Resolved, Error> {
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

        let configured = self.configured_endpoint(&DATA_PIPELINE);
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
        log.log("dp_wire.config", || {
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

    /// The endpoint configured for `service` outside the command line: its `AWS_ENDPOINT_URL_<SERVICE>`
    /// variable, `AWS_ENDPOINT_URL`, the selected profile's `services` section, the profile's `endpoint_url`;
    /// `None` when configured endpoints are ignored (`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`,
    /// `ignore_configured_endpoint_urls`).
    fn configured_endpoint(&self, service: &ConfiguredService) -> Option<String> {
        if self.flag(
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "ignore_configured_endpoint_urls",
        ) {
            return None;
        }
        if let Some(url) = self
            .env
            .get(service.env_var)
            .or_else(|| self.env.get("AWS_ENDPOINT_URL"))
        {
            return Some(url.to_string());
        }
        let profiles = self.profiles();
        let selected = profiles.selected()?;
        selected
            .get("services")
            .and_then(|name| profiles.set.services(name))
            .and_then(|services| services.sub(service.services_key, "endpoint_url"))
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

    /// IAM's endpoint, signing region and connection, resolved once per client.
    pub(super) fn iam_route(&self, resolved: &Resolved) -> Result<IamRoute, Error> {
        let configured = self.configured_endpoint(&IAM);
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
}

pub(super) fn parse_endpoint(url: &str) -> Result<Endpoint, Error> {
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
