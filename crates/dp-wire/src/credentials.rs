//! Where the signing credentials come from: the environment and static profile keys are read here directly; every
//! other source (assume role, `credential_process`, SSO, web identity, container, IMDS) is resolved in
//! `external.rs`, mostly by aws-config, which is only set up when one of them is actually needed.
//!
//! This module decides the order (botocore's and aws-config's: environment unless `--profile` was given, then the
//! profile, then web identity, container and instance metadata) and never prints a credential.

use std::time::SystemTime;

use aws_credential_types::Credentials;

use crate::error::{Error, ErrorKind};
use crate::profile::{Environment, Section};

/// Profile keys that need aws-config's profile provider (anything beyond static keys).
const PROVIDER_KEYS: &[&str] = &[
    "role_arn",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "web_identity_token_file",
    "credential_source",
    "login_session",
];

/// What the resolution found.
pub(crate) enum CredentialPlan {
    /// Keys read directly, and where from (`environment`, `profile`).
    Static(Credentials, &'static str),
    /// A source aws-config must resolve: the profile provider (`Some(profile)`) or the rest of the default chain.
    External { profile: Option<String> },
}

/// Decides the credential source without any IO beyond the already loaded profile.
pub(crate) fn plan(
    env: &Environment,
    profile_name: &str,
    profile: Option<&Section>,
    profile_explicit: bool,
) -> Result<CredentialPlan, Error> {
    if !profile_explicit {
        let id = env.get("AWS_ACCESS_KEY_ID");
        let secret = env.get("AWS_SECRET_ACCESS_KEY");
        match (id, secret) {
            (Some(id), Some(secret)) => {
                let token = env
                    .get("AWS_SESSION_TOKEN")
                    .or_else(|| env.get("AWS_SECURITY_TOKEN"));
                let expiry = env.get("AWS_CREDENTIAL_EXPIRATION").and_then(parse_expiry);
                return Ok(CredentialPlan::Static(
                    Credentials::new(id, secret, token.map(str::to_string), expiry, "Environment"),
                    "environment",
                ));
            }
            (Some(_), None) => return Err(partial("env", "AWS_SECRET_ACCESS_KEY")),
            (None, Some(_)) => return Err(partial("env", "AWS_ACCESS_KEY_ID")),
            (None, None) => {}
        }
    }
    if let Some(section) = profile {
        if section.has_any(PROVIDER_KEYS) {
            return Ok(CredentialPlan::External {
                profile: Some(profile_name.to_string()),
            });
        }
        let id = section.get("aws_access_key_id").filter(|v| !v.is_empty());
        let secret = section
            .get("aws_secret_access_key")
            .filter(|v| !v.is_empty());
        match (id, secret) {
            (Some(id), Some(secret)) => {
                let token = section
                    .get("aws_session_token")
                    .or_else(|| section.get("aws_security_token"));
                return Ok(CredentialPlan::Static(
                    Credentials::new(
                        id,
                        secret,
                        token.filter(|t| !t.is_empty()).map(str::to_string),
                        None,
                        "Profile",
                    ),
                    "profile",
                ));
            }
            (Some(_), None) => {
                return Err(partial("shared-credentials-file", "aws_secret_access_key"));
            }
            (None, Some(_)) => return Err(partial("shared-credentials-file", "aws_access_key_id")),
            (None, None) => {}
        }
    }
    Ok(CredentialPlan::External { profile: None })
}

fn partial(provider: &str, missing: &str) -> Error {
    Error::new(
        ErrorKind::Credentials,
        format!("Partial credentials found in {provider}, missing: {missing}"),
    )
}

/// `AWS_CREDENTIAL_EXPIRATION` in RFC 3339 (`2026-11-29T10:00:00Z`).
fn parse_expiry(value: &str) -> Option<SystemTime> {
    let secs = dp_model::timestamp::parse(value)?;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Whether cached credentials should be replaced (they expire within five minutes).
pub(crate) fn needs_refresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_some_and(|expiry| expiry <= now + std::time::Duration::from_secs(300))
}
