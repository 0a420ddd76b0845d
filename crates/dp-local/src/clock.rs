//! The service's sense of time: wall-clock timestamps, and service durations shrunk by the time scale.
//!
//! Timestamps written into objects (`@actualStartTime`, ...) and the signature date check always use the real
//! wall clock; only the durations the service waits for (acknowledgement window, progress timeout, retry delay,
//! long poll) are divided by `time_scale`, so a test can watch a 15-minute lease lapse in a fraction of a second.
//! (Schedules have a clock of their own that runs `time_scale` times faster: `engine::schedules`.) Nothing here
//! sleeps.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The acknowledgement window: a task handed out must see report-task-progress within it.
pub const ACKNOWLEDGE_WINDOW: Duration = Duration::from_secs(120);
/// The default `reportProgressTimeout` of a pipeline object.
pub const DEFAULT_PROGRESS_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The default `retryDelay` of an activity.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(10 * 60);
/// The longest duration the service waits for (longer periods in a definition are cut to it).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);
/// The default `maximumRetries` of an activity.
pub const DEFAULT_MAXIMUM_RETRIES: u32 = 2;

/// Wall clock plus a time scale for service durations.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    scale: f64,
}

impl Clock {
    /// A clock that runs service durations `scale` times faster.
    pub fn new(scale: f64) -> Self {
        Clock {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
        }
    }

    /// The time scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Now, as whole epoch seconds (for timestamps).
    pub fn epoch_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// Now, as a monotonic instant (for deadlines).
    pub fn instant(&self) -> Instant {
        Instant::now()
    }

    /// The real time that a service duration takes.
    pub fn real(&self, service: Duration) -> Duration {
        Duration::try_from_secs_f64(service.as_secs_f64() / self.scale)
            .map_or(MAX_DURATION, |d| d.min(MAX_DURATION))
    }

    /// The deadline that lies `service` (in service time) from now.
    pub fn deadline(&self, service: Duration) -> Instant {
        Instant::now() + self.real(service)
    }
}
