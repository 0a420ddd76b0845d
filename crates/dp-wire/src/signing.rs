//! SigV4 header signing of one request, through the aws-sigv4 crate.
//!
//! A pure function of the request, the credentials and a time passed in: the call loop calls it once per attempt,
//! after the backoff sleep, so that every attempt carries a fresh `X-Amz-Date`. It signs exactly the headers it is
//! given (the caller passes only `content-type`, `host`, `x-amz-date`'s companions and `x-amz-target`; `user-agent`
//! and `amz-sdk-*` are added after signing) and returns the headers to add. It never logs.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use crate::error::{Error, ErrorKind};

/// What to sign: method, the full URL as sent (already percent-encoded), the headers to sign and the exact body.
#[derive(Debug, Clone, Copy)]
pub struct SigningRequest<'a> {
    /// `POST` for every Data Pipeline call.
    pub method: &'a str,
    /// The full URL.
    pub url: &'a str,
    /// Headers to sign, with their values as sent.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes.
    pub body: &'a [u8],
}

/// The scope of a signature.
#[derive(Debug, Clone, Copy)]
pub struct SigningScope<'a> {
    /// The region (`us-east-1`).
    pub region: &'a str,
    /// The signing name (`datapipeline`).
    pub service: &'a str,
    /// The signing time.
    pub time: SystemTime,
}

/// The result of signing: the headers to add to the request, and the bare signature (for tests).
pub struct Signed {
    /// `x-amz-date`, `x-amz-security-token` (with a session token) and `authorization`, lower-case names.
    pub headers: Vec<(&'static str, String)>,
    /// The hex signature.
    pub signature: String,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Signed")
            .field("headers", &names)
            .field("signature", &"** redacted **")
            .finish()
    }
}

/// Signs `request` with SigV4 in the `Authorization` header. A session token is added as a signed
/// `X-Amz-Security-Token` header. URI path normalization and double percent-encoding are on (non-S3 rules).
pub fn sign_request(
    request: &SigningRequest<'_>,
    credentials: &Credentials,
    scope: &SigningScope<'_>,
) -> Result<Signed, Error> {
    sign_request_with(request, credentials, scope, SigningSettings::default())
}

/// [`sign_request`] with explicit aws-sigv4 settings (the test vectors vary normalization and token handling).
pub fn sign_request_with(
    request: &SigningRequest<'_>,
    credentials: &Credentials,
    scope: &SigningScope<'_>,
    settings: SigningSettings,
) -> Result<Signed, Error> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(settings)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("Could not sign the request: {e}"),
            )
        })?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("Could not sign the request: {e}"),
        )
    })?;
    let (instructions, signature) = sign(signable, &params)
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("Could not sign the request: {e}"),
            )
        })?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    let headers = headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect();
    Ok(Signed { headers, signature })
}
