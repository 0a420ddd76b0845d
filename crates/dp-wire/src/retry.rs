//! Which failures are retried, how long to wait, and the retry quota: the AWS SDKs' "standard" and "legacy" modes.
//!
//! Pure decisions only: the call loop in `client/call.rs` asks [`RetryPolicy::classify`] what an attempt's outcome was,
//! [`RetryQuota`] whether a retry may be paid for, and [`RetryPolicy::backoff`] how long to sleep. Nothing here
//! sleeps, sends or reads the clock, so the rules are tested as tables.
//!
//! aws-smithy-runtime has the same machinery, but it comes with its orchestrator, interceptors and HTTP client
//! abstractions; dp keeps one loop of its own (in `client/call.rs`) and these rules, which are small and tested here.

use std::sync::Mutex;
use std::time::Duration;

/// The retry modes of the AWS SDKs (`AWS_RETRY_MODE`, `retry_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// AWS CLI v1's mode: 5 attempts, uncapped exponential backoff, retries bare 429 and 509, no quota.
    Legacy,
    /// The default: 3 attempts, backoff capped at 20 s, a 500-token retry quota.
    Standard,
    /// Standard plus a client-side rate limiter that slows sending down after throttling (`rate_limiter`).
    Adaptive,
}

impl RetryMode {
    /// Parses a configured value (`legacy`, `standard`, `adaptive`).
    pub fn parse(value: &str) -> Option<RetryMode> {
        match value.trim() {
            "legacy" => Some(RetryMode::Legacy),
            "standard" => Some(RetryMode::Standard),
            "adaptive" => Some(RetryMode::Adaptive),
            _ => None,
        }
    }

    /// The configured name.
    pub fn name(self) -> &'static str {
        match self {
            RetryMode::Legacy => "legacy",
            RetryMode::Standard => "standard",
            RetryMode::Adaptive => "adaptive",
        }
    }

    /// Attempts (including the first) when none is configured.
    pub fn default_max_attempts(self) -> u32 {
        match self {
            RetryMode::Legacy => 5,
            RetryMode::Standard | RetryMode::Adaptive => 3,
        }
    }
}

/// How a call retries: the mode, the number of attempts and the backoff base.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The mode.
    pub mode: RetryMode,
    /// Total attempts, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff unit: the delay before attempt n+1 is `rand * min(base * 2^(n-1), max_backoff)`. 1 s in the SDKs;
    /// tests make it small.
    pub base_delay: Duration,
    /// The backoff ceiling (20 s in standard mode; legacy has none).
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The SDK defaults of `mode`.
    pub fn new(mode: RetryMode) -> RetryPolicy {
        RetryPolicy {
            mode,
            max_attempts: mode.default_max_attempts(),
            base_delay: Duration::from_secs(1),
            max_backoff: match mode {
                RetryMode::Legacy => Duration::MAX,
                _ => Duration::from_secs(20),
            },
        }
    }

    /// The same policy with `max_attempts` attempts (0 is taken as 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> RetryPolicy {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// The same policy with another backoff unit.
    pub fn with_base_delay(mut self, base_delay: Duration) -> RetryPolicy {
        self.base_delay = base_delay;
        self
    }

    /// The delay before the attempt after failed attempt `attempt` (1-based), given a random number in [0, 1).
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(62);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent.min(31))
            .min(self.max_backoff);
        ceiling.mul_f64(random.clamp(0.0, 1.0))
    }

    /// What kind of failure `outcome` is for this policy's mode.
    pub fn classify(&self, outcome: &Outcome<'_>) -> Retryability {
        match outcome {
            Outcome::Success => Retryability::Success,
            Outcome::Timeout => Retryability::Transient { timeout: true },
            Outcome::ConnectionError => Retryability::Transient { timeout: false },
            Outcome::Response { status, code } => {
                if code.is_some_and(|c| THROTTLING_CODES.contains(&c)) {
                    return Retryability::Throttling;
                }
                if code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
                    return Retryability::Transient { timeout: false };
                }
                let transient_statuses: &[u16] = match self.mode {
                    RetryMode::Legacy => &[429, 500, 502, 503, 504, 509],
                    _ => &[500, 502, 503, 504],
                };
                if transient_statuses.contains(status) {
                    Retryability::Transient { timeout: false }
                } else {
                    Retryability::NotRetryable
                }
            }
        }
    }
}

/// The outcome of one attempt, as far as retrying cares.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// A 2xx response.
    Success,
    /// A non-2xx response with its status and parsed error code.
    Response {
        /// HTTP status.
        status: u16,
        /// The error code, if one was found.
        code: Option<&'a str>,
    },
    /// The connection could not be made or broke before a complete response.
    ConnectionError,
    /// The connect or read timeout expired.
    Timeout,
}

/// The verdict on an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryability {
    /// Done.
    Success,
    /// A throttling error: retried.
    Throttling,
    /// A transient error (5xx, connection, timeout): retried. Timeouts cost more quota.
    Transient {
        /// The failure was a timeout.
        timeout: bool,
    },
    /// Never retried (a modeled 4xx error, for example).
    NotRetryable,
}

/// The throttling error codes (botocore `ThrottledRetryableChecker`, aws-runtime `THROTTLING_ERRORS`).
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Transient error codes of standard mode.
pub const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// The standard mode's retry quota: a bucket of tokens shared by all calls of a client.
#[derive(Debug)]
pub struct RetryQuota {
    tokens: Mutex<u32>,
}

/// Tokens in a full bucket.
pub const INITIAL_RETRY_TOKENS: u32 = 500;
/// Cost of a retry after a non-timeout failure.
pub const RETRY_COST: u32 = 5;
/// Cost of a retry after a timeout.
pub const RETRY_TIMEOUT_COST: u32 = 10;
/// Tokens a first-attempt success puts back.
pub const NO_RETRY_INCREMENT: u32 = 1;

impl Default for RetryQuota {
    fn default() -> Self {
        RetryQuota {
            tokens: Mutex::new(INITIAL_RETRY_TOKENS),
        }
    }
}

impl RetryQuota {
    /// Takes the cost of a retry; `None` when the bucket cannot pay (then the call must not retry).
    pub fn acquire(&self, timeout: bool) -> Option<u32> {
        let cost = if timeout {
            RETRY_TIMEOUT_COST
        } else {
            RETRY_COST
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if *tokens < cost {
            return None;
        }
        *tokens -= cost;
        Some(cost)
    }

    /// Gives tokens back after a success: the cost of the retry that succeeded, or the first-try increment.
    pub fn release(&self, retry_cost: Option<u32>) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        *tokens = (*tokens + retry_cost.unwrap_or(NO_RETRY_INCREMENT)).min(INITIAL_RETRY_TOKENS);
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        *self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}
