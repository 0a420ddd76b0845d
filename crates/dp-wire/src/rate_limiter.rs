//! The client-side rate limiter of the "adaptive" retry mode: a token bucket whose refill rate follows CUBIC, backing
//! off by a factor of 0.7 on each throttling response and growing back along a cubic curve after it.
//!
//! This is the algorithm the AWS SDKs share (botocore `retries/adaptive.py`, `throttling.py`, `bucket.py`; Go v2
//! `adaptive_ratelimit.go`). It is pure: every method takes the time in seconds, so the published step tables test
//! it exactly; the call loop in `client/call.rs` passes the wall clock and sleeps for the delays it returns.

use std::sync::Mutex;
use std::time::Duration;

const MIN_FILL_RATE: f64 = 0.5;
const MIN_CAPACITY: f64 = 1.0;
const SMOOTH: f64 = 0.8;
/// How much the rate is cut on a throttling response.
const BETA: f64 = 0.7;
/// How fast the rate grows back after a throttling response.
const SCALE_CONSTANT: f64 = 0.4;

/// The limiter's state. Disabled (no waiting at all) until the first throttling response.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimiterState {
    /// Tokens added per second.
    pub fill_rate: f64,
    /// Bucket size.
    pub max_capacity: f64,
    /// Tokens in the bucket.
    pub current_capacity: f64,
    /// When the bucket was last refilled, if ever.
    pub last_refill: Option<f64>,
    /// Whether throttling has been seen (the bucket is only enforced after that).
    pub enabled: bool,
    /// Smoothed measured sending rate (requests per second).
    pub measured_rate: f64,
    /// Start of the current half-second measuring bucket.
    pub last_rate_bucket: f64,
    /// Requests counted in the current measuring bucket.
    pub request_count: u64,
    /// The rate in force at the last throttle.
    pub last_max_rate: f64,
    /// When the last throttle happened.
    pub last_throttle: f64,
    /// CUBIC's time window: how long after a throttle the curve reaches `last_max_rate` again.
    pub time_window: f64,
}

impl Default for RateLimiterState {
    fn default() -> Self {
        RateLimiterState {
            fill_rate: 0.0,
            max_capacity: MIN_CAPACITY,
            current_capacity: 0.0,
            last_refill: None,
            enabled: false,
            measured_rate: 0.0,
            last_rate_bucket: 0.0,
            request_count: 0,
            last_max_rate: 0.0,
            last_throttle: 0.0,
            time_window: 0.0,
        }
    }
}

/// The rate after a throttle: the rate in force, cut by a factor of 0.7.
pub fn cubic_throttle(rate: f64) -> f64 {
    rate * BETA
}

impl RateLimiterState {
    /// Recomputes CUBIC's time window from the last maximum rate.
    pub fn calculate_time_window(&mut self) {
        self.time_window = (self.last_max_rate * (1.0 - BETA) / SCALE_CONSTANT).cbrt();
    }

    /// The rate CUBIC allows at time `now` after a success.
    pub fn cubic_success(&self, now: f64) -> f64 {
        SCALE_CONSTANT * (now - self.last_throttle - self.time_window).powi(3) + self.last_max_rate
    }

    fn refill(&mut self, now: f64) {
        if let Some(last) = self.last_refill {
            let added = (now - last) * self.fill_rate;
            self.current_capacity = (self.current_capacity + added).min(self.max_capacity);
        }
        self.last_refill = Some(now);
    }

    fn update_refill_rate(&mut self, now: f64, rate: f64) {
        self.refill(now);
        self.fill_rate = rate.max(MIN_FILL_RATE);
        self.max_capacity = rate.max(MIN_CAPACITY);
        self.current_capacity = self.current_capacity.min(self.max_capacity);
    }

    fn update_measured_rate(&mut self, now: f64) {
        let bucket = (now * 2.0).floor() / 2.0;
        self.request_count += 1;
        if bucket > self.last_rate_bucket {
            let current = self.request_count as f64 / (bucket - self.last_rate_bucket);
            self.measured_rate = current * SMOOTH + self.measured_rate * (1.0 - SMOOTH);
            self.request_count = 0;
            self.last_rate_bucket = bucket;
        }
    }

    /// Records a response received at `now`; `throttled` for a throttling error.
    pub fn update(&mut self, now: f64, throttled: bool) {
        self.update_measured_rate(now);
        let calculated = if throttled {
            let rate = if self.enabled {
                self.measured_rate.min(self.fill_rate)
            } else {
                self.measured_rate
            };
            self.last_max_rate = rate;
            self.calculate_time_window();
            self.last_throttle = now;
            self.enabled = true;
            cubic_throttle(rate)
        } else {
            self.calculate_time_window();
            self.cubic_success(now)
        };
        let new_rate = calculated.min(2.0 * self.measured_rate);
        self.update_refill_rate(now, new_rate);
    }

    /// Takes a token to send a request at `now`, or says how long to wait before asking again.
    pub fn acquire(&mut self, now: f64) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        self.refill(now);
        if self.current_capacity < 1.0 {
            let wait = (1.0 - self.current_capacity) / self.fill_rate;
            // A shortfall too small to express as a sleep is granted.
            if wait >= 1e-9 {
                return Some(Duration::from_secs_f64(wait));
            }
        }
        self.current_capacity = (self.current_capacity - 1.0).max(0.0);
        None
    }
}

/// A [`RateLimiterState`] shared by all calls of a client.
#[derive(Debug, Default)]
pub struct ClientRateLimiter {
    state: Mutex<RateLimiterState>,
}

impl ClientRateLimiter {
    /// See [`RateLimiterState::acquire`].
    pub fn acquire(&self, now: f64) -> Option<Duration> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acquire(now)
    }

    /// See [`RateLimiterState::update`].
    pub fn update(&self, now: f64, throttled: bool) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(now, throttled)
    }

    /// A copy of the state.
    pub fn state(&self) -> RateLimiterState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// The SDKs' shared CUBIC tables (aws-sdk-go-v2 `adaptive_ratelimit_test.go`, also in botocore and
    /// aws-smithy-runtime): rate after successes and throttles, starting from a throttle at t=5 at 10 req/s.
    #[test]
    fn cubic_tables() {
        let start = RateLimiterState {
            last_throttle: 5.0,
            last_max_rate: 10.0,
            ..Default::default()
        };
        let mut state = start.clone();
        let successes = [
            7.0,
            9.64893600966,
            10.000030849917364,
            10.453284520772092,
            13.408697022224185,
            21.26626835427364,
            36.425998516920465,
        ];
        for (i, expected) in successes.iter().enumerate() {
            state.calculate_time_window();
            let rate = state.cubic_success(5.0 + i as f64);
            assert!(
                close(rate, *expected),
                "success at t={}: {rate} vs {expected}",
                5 + i
            );
        }
        let steps = [
            (false, 7.0),
            (false, 9.64893600966),
            (true, 6.754255206761999),
            (true, 4.727978644733399),
            (false, 4.670125557970046),
            (false, 4.770870456867401),
            (false, 6.011819748005445),
            (false, 10.792973431384178),
        ];
        let mut state = start;
        let mut rate = 0.0;
        for (i, (throttled, expected)) in steps.iter().enumerate() {
            let t = 5.0 + i as f64;
            state.calculate_time_window();
            if *throttled {
                rate = cubic_throttle(rate);
                state.last_throttle = t;
                state.last_max_rate = rate;
            } else {
                rate = state.cubic_success(t);
            }
            assert!(
                close(rate, *expected),
                "step at t={t}: {rate} vs {expected}"
            );
        }
    }

    /// The SDKs' sending-rate table: a response every 200 ms, throttled at 2.0 s and 3.2 s.
    #[test]
    fn sending_rates() {
        let steps = [
            (false, 0.0, 0.5),
            (false, 0.0, 0.5),
            (false, 4.800000000000001, 0.5),
            (false, 4.800000000000001, 0.5),
            (false, 4.16, 0.5),
            (false, 4.16, 0.6912),
            (false, 4.16, 1.0975999999999997),
            (false, 5.632000000000001, 1.6384000000000005),
            (false, 5.632000000000001, 2.3328),
            (true, 4.3264, 3.0284799999999996),
            (false, 4.3264, 3.48663917347026),
            (false, 4.3264, 3.821874416040255),
            (false, 5.66528, 4.053385727709987),
            (false, 5.66528, 4.200373108479454),
            (false, 4.333056, 4.282036558348658),
            (true, 4.333056, 2.99742559084406),
            (false, 4.333056, 3.4522263943863463),
        ];
        let mut state = RateLimiterState::default();
        for (i, (throttled, measured, fill)) in steps.iter().enumerate() {
            let t = (i as f64 + 1.0) * 0.2;
            // The same float steps as summing 200 ms sleeps.
            let t = (t * 10.0).round() / 10.0;
            state.update(t, *throttled);
            assert!(
                close(state.measured_rate, *measured),
                "t={t}: measured {} vs {measured}",
                state.measured_rate
            );
            assert!(
                close(state.fill_rate, *fill),
                "t={t}: fill rate {} vs {fill}",
                state.fill_rate
            );
        }
    }

    #[test]
    fn the_bucket_waits_only_after_throttling() {
        let mut state = RateLimiterState::default();
        for i in 0..100 {
            assert_eq!(
                state.acquire(i as f64 * 0.001),
                None,
                "disabled before any throttle"
            );
        }
        state.update(1.0, true);
        assert!(state.enabled);
        // One request measured in the first second (0.8 req/s smoothed), cut by 0.7: 0.56 tokens/s into an empty
        // bucket, so a token takes 1/0.56 s.
        assert!(close(state.fill_rate, 0.56), "{}", state.fill_rate);
        let wait = state.acquire(1.0).unwrap();
        assert!((wait.as_secs_f64() - 1.0 / 0.56).abs() < 1e-6, "{wait:?}");
        assert_eq!(state.acquire(3.0), None, "refilled after the wait");
        assert!(state.current_capacity >= 0.0);
    }
}
