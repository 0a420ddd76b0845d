//! Clock-skew correction, as aws-runtime does it: measure the server's clock from its `Date` header and sign later
//! attempts (and later calls) at server time.
//!
//! The skew is the server's `Date` minus the midpoint of send and receive; a response with an `Age` header or a
//! round trip over 15 minutes is ignored. A skew-type error (`InvalidSignatureException`, …) is retried only when
//! the measured skew exceeds 4 minutes. This module only measures and applies; the call loop decides.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// Error codes that may mean "your clock is off".
pub const SKEW_ERROR_CODES: &[&str] = &[
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "RequestTimeTooSkewed",
    "AccessDeniedException",
];

/// A skew beyond this makes a skew-type error retryable.
pub const SKEW_THRESHOLD: Duration = Duration::from_secs(4 * 60);

/// Round trips longer than this are not used to measure skew.
pub const MAX_ROUND_TRIP: Duration = Duration::from_secs(15 * 60);

/// Whether `code` is a skew-type error code.
pub fn is_skew_error(code: &str) -> bool {
    SKEW_ERROR_CODES.contains(&code)
}

/// The client's current estimate of server time minus local time, in milliseconds.
#[derive(Debug, Default)]
pub struct ClockSkew {
    millis: Mutex<i64>,
}

impl ClockSkew {
    /// Updates the estimate from a response's headers.
    pub fn observe(&self, headers: &HeaderMap, sent: SystemTime, received: SystemTime) {
        if headers.contains_key("age") {
            return;
        }
        let Some(server) = headers
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        else {
            return;
        };
        let Ok(round_trip) = received.duration_since(sent) else {
            return;
        };
        if round_trip > MAX_ROUND_TRIP {
            return;
        }
        let midpoint = sent + round_trip / 2;
        let skew = millis_since_epoch(server) - millis_since_epoch(midpoint);
        *self.millis.lock().unwrap_or_else(|e| e.into_inner()) = skew;
    }

    /// Replaces the estimate (a client starts at 0).
    pub fn set_millis(&self, millis: i64) {
        *self.millis.lock().unwrap_or_else(|e| e.into_inner()) = millis;
    }

    /// The current estimate in milliseconds.
    pub fn millis(&self) -> i64 {
        *self.millis.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the estimate exceeds [`SKEW_THRESHOLD`].
    pub fn is_definite(&self) -> bool {
        self.millis().unsigned_abs() > SKEW_THRESHOLD.as_millis() as u64
    }

    /// `now` corrected by the estimate.
    pub fn apply(&self, now: SystemTime) -> SystemTime {
        let skew = self.millis();
        if skew >= 0 {
            now + Duration::from_millis(skew as u64)
        } else {
            now - Duration::from_millis(skew.unsigned_abs())
        }
    }
}

fn millis_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Parses an IMF-fixdate (`Sun, 29 Nov 2026 07:40:59 GMT`), the only form servers must send.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let mut parts = value.split_whitespace();
    let _weekday = parts.next()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs =
        dp_model::timestamp::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(iso: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(dp_model::timestamp::parse(iso).unwrap() as u64)
    }

    /// The 10 cross-SDK cases of aws-runtime's `test-data/clock-skew-test-cases.json` (Apache-2.0), read from the
    /// cargo registry. Each attempt runs the same steps as the call loop in `client/call.rs`: sign at the corrected
    /// time, measure the response, and retry a skew-type error only when the skew is definite and attempts remain.
    #[test]
    fn aws_runtime_clock_skew_vectors() {
        let path = crate::profile::tests::registry_file(
            "aws-runtime-1.",
            "test-data/clock-skew-test-cases.json",
        );
        let suite: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let tests = suite["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 10);
        for case in tests {
            let name = case["description"].as_str().unwrap();
            let skew = ClockSkew::default();
            for (n, operation) in case["operations"].as_array().unwrap().iter().enumerate() {
                let initial = operation["initialClientSkew"].as_i64().unwrap_or(0);
                if n == 0 {
                    skew.set_millis(initial * 1000);
                }
                let carried = (skew.millis() as f64 / 1000.0).round() as i64;
                assert_eq!(carried, initial, "{name}, operation {n}: initial skew");
                let max_attempts = operation["maxAttempts"].as_u64().unwrap_or(3) as usize;
                let attempts = operation["attempts"].as_array().unwrap();
                let mut outcome = "error";
                for (i, attempt) in attempts.iter().enumerate() {
                    let send = at(attempt["clientTimeAtSend"].as_str().unwrap());
                    let receive = at(attempt["clientTimeAtReceive"].as_str().unwrap());
                    let signing = skew.apply(send);
                    let expected = at(attempt["expectedSigningTime"].as_str().unwrap());
                    assert_eq!(
                        signing, expected,
                        "{name}, operation {n}, attempt {i}: signing time"
                    );
                    let response = &attempt["response"];
                    let mut headers = HeaderMap::new();
                    for (k, v) in response["headers"].as_object().unwrap() {
                        headers.insert(
                            http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
                                .unwrap(),
                            v.as_str().unwrap().parse().unwrap(),
                        );
                    }
                    skew.observe(&headers, send, receive);
                    let status = response["statusCode"].as_u64().unwrap();
                    if (200..300).contains(&status) {
                        outcome = "success";
                        break;
                    }
                    let code = response["errorCode"].as_str().unwrap_or("");
                    let retry = is_skew_error(code) && skew.is_definite() && i + 1 < max_attempts;
                    assert_eq!(
                        retry,
                        i + 1 < attempts.len(),
                        "{name}, operation {n}, attempt {i}: retried"
                    );
                    if !retry {
                        break;
                    }
                }
                assert_eq!(
                    outcome,
                    operation["expectedOutcome"].as_str().unwrap(),
                    "{name}, operation {n}: outcome"
                );
                let expected = operation["expectedClientSkew"].as_i64().unwrap();
                assert_eq!(
                    (skew.millis() as f64 / 1000.0).round() as i64,
                    expected,
                    "{name}, operation {n}: skew"
                );
            }
        }
    }

    #[test]
    fn http_dates() {
        let t = parse_http_date("Sun, 29 Nov 2026 07:40:59 GMT").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_938_059
        );
        assert!(parse_http_date("Sun, 29 Nov 2026 07:40:59 PST").is_none());
        assert!(parse_http_date("garbage").is_none());
    }
}
