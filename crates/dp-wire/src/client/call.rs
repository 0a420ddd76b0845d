//! The call loop: each attempt of one call is framed, signed afresh, sent, classified and, when the retry policy
//! allows, retried after its backoff.
//!
//! It works from what `config.rs` resolved and decides nothing about profiles, regions or endpoints. Each attempt is
//! one [`Attempt`] value turned into an HTTP request at the skew-corrected time.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::endpoint;
use crate::error::{Error, ErrorKind};
use crate::log;
use crate::protocol;
use crate::retry::{Outcome, RetryMode, Retryability};
use crate::signing::{self, SigningRequest, SigningScope};
use crate::skew;
use crate::transport::{self, Transport, TransportError};

use super::config::{Endpoint, Resolved};
use super::{Client, timeouts};

/// Where one call goes and how it is framed and signed: Data Pipeline's awsJson or IAM's awsQuery.
pub(super) struct Route<'a> {
    pub(super) operation: &'static str,
    pub(super) endpoint: &'a Endpoint,
    pub(super) transport: &'a Transport,
    /// The endpoint came from the Data Pipeline ruleset (a DNS failure may mean the service is not in the region).
    pub(super) from_ruleset: bool,
    pub(super) signing_region: &'a str,
    pub(super) signing_name: &'a str,
    pub(super) content_type: &'a str,
    /// `X-Amz-Target` (awsJson); `None` for awsQuery.
    pub(super) target: Option<&'a str>,
}

/// One attempt of a call: everything its HTTP request is made of.
struct Attempt<'a> {
    route: &'a Route<'a>,
    /// The endpoint's URL with the request path, as signed.
    url: &'a str,
    body: &'a Bytes,
    /// `None` for an unsigned request (`--no-sign-request`).
    credentials: Option<&'a Credentials>,
    user_agent: &'a str,
    /// `amz-sdk-invocation-id`: the same for every attempt of one call.
    invocation_id: &'a str,
    /// This attempt's number, from 1.
    number: u32,
    max_attempts: u32,
}

impl Attempt<'_> {
    /// The HTTP request of this attempt, signed (unless it has no credentials) for `signing_time`.
    fn request(&self, signing_time: SystemTime) -> Result<Request<Full<Bytes>>, Error> {
        let route = self.route;
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
        if let Some(credentials) = self.credentials {
            let signed = signing::sign_request(
                &SigningRequest {
                    method: "POST",
                    url: self.url,
                    headers: &signed_headers,
                    body: self.body,
                },
                credentials,
                &SigningScope {
                    region: route.signing_region,
                    service: route.signing_name,
                    time: signing_time,
                },
            )?;
            for (name, value) in signed.headers {
                builder = builder.header(name, value);
            }
        }
        // Added after signing, never signed: proxies may rewrite them, and they differ between attempts.
        builder = builder
            .header("user-agent", self.user_agent)
            .header("amz-sdk-invocation-id", self.invocation_id)
            .header(
                "amz-sdk-request",
                format!("attempt={}; max={}", self.number, self.max_attempts),
            )
            .header("content-length", self.body.len().to_string());
        builder.body(Full::new(self.body.clone())).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("Could not build the request: {e}"),
            )
        })
    }
}

impl Client {
    /// Sends `body` on `route` with the retry policy, signing each attempt afresh.
    pub(super) async fn send_on(
        &self,
        resolved: &Resolved,
        route: &Route<'_>,
        body: Vec<u8>,
    ) -> Result<transport::Response, Error> {
        let op_name = route.operation;
        let policy = resolved.retry;
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let (connect_timeout, read_timeout) = timeouts(&self.config.settings, op_name);
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
            let request = Attempt {
                route,
                url: &full_url,
                body: &body,
                credentials: credentials.as_ref(),
                user_agent: &resolved.user_agent,
                invocation_id: &invocation_id,
                number: attempt,
                max_attempts: policy.max_attempts,
            }
            .request(self.skew.apply(SystemTime::now()))?;
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

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
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
