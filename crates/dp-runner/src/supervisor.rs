//! One held task, from hand-out to its one outcome: the lease discipline.
//!
//! The supervisor acknowledges the task before any work starts, then reports progress from its own timer, so the
//! lease never depends on what the work prints or how long it runs; a failed report is retried well within the
//! interval. `canceled: true` or a lost lease (`TaskNotFoundException`) stops the work and sends nothing more, as
//! the API asks. Shutdown stops the work and fails the task at once, so the service retries it now rather than
//! after the lease. Otherwise the activity's outcome goes out with exactly one accepted `SetTaskStatus`, retried
//! (with the lease kept alive meanwhile) until the service takes it.
//!
//! The supervisor keeps its own clock of the lease: it lapses one `reportProgressTimeout` after the last report
//! the service accepted (counted from when that report was sent, so the runner's view never outlasts the
//! service's). No call waits longer than what is left of the lease, and when the lease has lapsed (the service
//! could not be reached for a whole timeout, so it is about to hand the task to another runner) the supervisor
//! stops the work itself and sends nothing more for that attempt. It must not let two copies of one task run at
//! once for longer than the cancel grace.

use std::sync::Arc;
use std::time::Duration;

use dp_model::ops;
use dp_model::types::{Field, ReportTaskProgressInput, SetTaskStatusInput, TaskStatus};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, CancelReason, Failure, Outcome, Task, TaskContext};
use crate::logging::RunnerLog;

/// How long the service waits for the acknowledgement of a task it handed out.
pub const ACKNOWLEDGE_WINDOW: Duration = Duration::from_secs(120);

/// The service's `reportProgressTimeout` when the task object sets none.
const DEFAULT_REPORT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How a held task ended, from the runner's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    /// `FINISHED` was accepted.
    Finished,
    /// `FAILED` was accepted (with this error id).
    Failed(String),
    /// `FALSE` was accepted.
    False,
    /// The service canceled the task; nothing was sent after the cancel.
    Canceled,
    /// The service no longer knew the task (its lease had lapsed or it was never acknowledged), or the runner could
    /// not reach it for a whole `reportProgressTimeout` and stopped the work; no status was sent.
    LeaseLost,
    /// The runner shut down: the work was stopped and `FAILED` (`TaskRunnerShutdown`) sent.
    Shutdown,
    /// The outcome could not be delivered before the runner was told to stop at once.
    Abandoned,
}

/// What every held task shares.
#[derive(Clone)]
pub(crate) struct Lease {
    pub(crate) client: Arc<dp_wire::Client>,
    pub(crate) log: RunnerLog,
    pub(crate) progress_interval: Duration,
    /// Divides the service's durations (see `RunnerConfig::time_scale`).
    pub(crate) time_scale: f64,
    /// Fires when held tasks must be stopped (the shutdown grace is over).
    pub(crate) force: CancellationToken,
    /// Fires when the runner must stop at once (a second signal): no more retries.
    pub(crate) abort: CancellationToken,
}

enum ReportError {
    NotFound,
    Other(String),
}

/// The runner's view of one task's lease: when it lapses unless a report gets through first.
struct LeaseClock {
    timeout: Duration,
    lapses_at: Instant,
}

impl LeaseClock {
    /// A report sent at `sent` was accepted: the service counts its timeout from some moment after that.
    fn renewed(&mut self, sent: Instant) {
        self.lapses_at = sent + self.timeout;
    }

    fn lapsed(&self) -> bool {
        Instant::now() >= self.lapses_at
    }

    /// How long the next call may wait for its answer: what is left of the lease, and at most `cap`.
    fn call_bound(&self, cap: Duration) -> Duration {
        self.lapses_at
            .saturating_duration_since(Instant::now())
            .min(cap)
    }
}

impl Lease {
    async fn report(&self, task_id: &str, fields: Vec<Field>) -> Result<bool, ReportError> {
        let input = ReportTaskProgressInput {
            task_id: task_id.to_string(),
            fields: (!fields.is_empty()).then_some(fields),
        };
        match self.client.call::<ops::ReportTaskProgress>(&input).await {
            Ok(output) => Ok(output.canceled),
            Err(e) if e.error().service_code() == Some("TaskNotFoundException") => {
                Err(ReportError::NotFound)
            }
            Err(e) => Err(ReportError::Other(e.to_string())),
        }
    }

    /// A report that gives up (as a failure) when no answer came within `bound`; on success the lease is renewed.
    async fn bounded_report(
        &self,
        task_id: &str,
        fields: Vec<Field>,
        lease: &mut LeaseClock,
        bound: Duration,
    ) -> Result<bool, ReportError> {
        let sent = Instant::now();
        let answer = match tokio::time::timeout(bound, self.report(task_id, fields)).await {
            Ok(answer) => answer,
            Err(_) => Err(ReportError::Other(format!(
                "no answer within {:.1}s",
                bound.as_secs_f64()
            ))),
        };
        if let Ok(false) = answer {
            lease.renewed(sent);
        }
        answer
    }

    /// Holds `task` while `activity` runs, and delivers its outcome.
    pub(crate) async fn hold(
        &self,
        task: Task,
        activity: Arc<dyn Activity>,
        context: TaskContext,
    ) -> TaskEnd {
        let task = Arc::new(task);
        let ids = [
            ("task", task.task_id.clone()),
            ("pipeline", task.pipeline_id.clone()),
            ("attempt", task.attempt_id.clone()),
        ];
        let log = |level: crate::logging::Level, message: &str| {
            let fields: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.log.write(level, message, &fields)
        };
        use crate::logging::Level::{Error, Info, Warn};

        let timeout = report_timeout(&task, self.time_scale);
        let interval = report_interval(self.progress_interval, &task, self.time_scale);
        // Acknowledge before anything else: the service hands an unacknowledged task out again after 2 minutes.
        // Until acknowledged, the "lease" is that window.
        let mut lease = LeaseClock {
            timeout,
            lapses_at: Instant::now() + ACKNOWLEDGE_WINDOW.div_f64(self.time_scale.max(1e-9)),
        };
        let mut tries = 0u32;
        loop {
            let bound = lease.call_bound(interval);
            match self
                .bounded_report(&task.task_id, Vec::new(), &mut lease, bound)
                .await
            {
                Ok(false) => break,
                Ok(true) => {
                    log(Info, "task canceled before it started; nothing run");
                    return TaskEnd::Canceled;
                }
                Err(ReportError::NotFound) => {
                    log(
                        Warn,
                        "task unknown to the service at acknowledgement; nothing run",
                    );
                    return TaskEnd::LeaseLost;
                }
                Err(ReportError::Other(e)) => {
                    tries += 1;
                    let wait = retry_delay(tries, Duration::from_secs(10).min(interval));
                    if Instant::now() + wait >= lease.lapses_at || self.abort.is_cancelled() {
                        log(
                            Error,
                            &format!("could not acknowledge the task: {e}; nothing run"),
                        );
                        return TaskEnd::LeaseLost;
                    }
                    log(Warn, &format!("acknowledgement failed, retrying: {e}"));
                    tokio::time::sleep(wait).await;
                }
            }
        }
        log(Info, "task acknowledged; work starts");

        let mut work = tokio::spawn({
            let (activity, task, context) = (activity.clone(), task.clone(), context.clone());
            async move { activity.run(&task, &context).await }
        });
        let mut next_report = Instant::now() + interval;
        let mut failures = 0u32;
        let mut reporting = true;
        let mut sent: Vec<Field> = Vec::new();
        let outcome = loop {
            tokio::select! {
                joined = &mut work => {
                    break match joined {
                        Ok(outcome) => outcome,
                        Err(e) => Outcome::Failed(Failure::new(
                            "ActivityPanicked",
                            format!("the activity stopped unexpectedly: {e}"),
                        )),
                    };
                }
                _ = tokio::time::sleep_until(lease.lapses_at), if reporting => {
                    log(Error, &format!(
                        "no progress report got through for a whole reportProgressTimeout ({:.1}s): the service \
                         hands the task to another runner, so its work here stops and no status is sent",
                        timeout.as_secs_f64()
                    ));
                    context.cancel(CancelReason::LeaseLost);
                    reporting = false;
                }
                _ = tokio::time::sleep_until(next_report), if reporting => {
                    let fields = context.progress_fields();
                    let bound = lease.call_bound(interval);
                    match self.bounded_report(&task.task_id, fields.clone(), &mut lease, bound).await {
                        Ok(false) => {
                            sent = fields;
                            failures = 0;
                            next_report = Instant::now() + interval;
                        }
                        Ok(true) => {
                            log(Info, "the service canceled the task: stopping its work");
                            context.cancel(CancelReason::Service);
                            reporting = false;
                        }
                        Err(ReportError::NotFound) => {
                            log(Error, "the service no longer knows the task (lease lost): stopping its work");
                            context.cancel(CancelReason::LeaseLost);
                            reporting = false;
                        }
                        Err(ReportError::Other(e)) => {
                            failures += 1;
                            let wait = retry_delay(failures, interval / 4);
                            log(Warn, &format!("progress report failed (retry in {:.1}s): {e}", wait.as_secs_f64()));
                            next_report = (Instant::now() + wait).min(lease.lapses_at);
                        }
                    }
                }
                _ = self.force.cancelled(), if !context.is_canceled() => {
                    log(Warn, "shutdown grace over: stopping the task's work");
                    context.cancel(CancelReason::Shutdown);
                }
            }
        };

        // A lease that lapsed while the work was ending: the service has timed the attempt out already.
        if context.cancel_reason().is_none() && lease.lapsed() {
            log(
                Error,
                "the lease lapsed before the outcome could be sent: no status is sent for this attempt",
            );
            context.cancel(CancelReason::LeaseLost);
        }
        // Progress fields set since the last report go out before the status, so none is lost.
        let fields = context.progress_fields();
        if context.cancel_reason().is_none() && fields != sent {
            let bound = lease.call_bound(interval);
            match self
                .bounded_report(&task.task_id, fields, &mut lease, bound)
                .await
            {
                Ok(false) | Err(ReportError::Other(_)) => {}
                Ok(true) => context.cancel(CancelReason::Service),
                Err(ReportError::NotFound) => context.cancel(CancelReason::LeaseLost),
            }
        }
        let (status, failure, end) = match context.cancel_reason() {
            Some(CancelReason::Service) => {
                log(Info, "task canceled by the service; no status sent");
                return TaskEnd::Canceled;
            }
            Some(CancelReason::LeaseLost) => return TaskEnd::LeaseLost,
            Some(CancelReason::Shutdown) => (
                TaskStatus::Failed,
                Some(Failure::new(
                    "TaskRunnerShutdown",
                    "the task runner shut down before the task ended; the work was stopped",
                )),
                TaskEnd::Shutdown,
            ),
            None => match outcome {
                Outcome::Finished => (TaskStatus::Finished, None, TaskEnd::Finished),
                Outcome::Failed(f) => {
                    let f = clean_failure(f);
                    let end = TaskEnd::Failed(f.error_id.clone());
                    (TaskStatus::Failed, Some(f), end)
                }
                Outcome::False(f) => (TaskStatus::False, Some(clean_failure(f)), TaskEnd::False),
            },
        };
        let input = SetTaskStatusInput {
            task_id: task.task_id.clone(),
            task_status: status.clone(),
            error_id: failure.as_ref().map(|f| f.error_id.clone()),
            error_message: failure.as_ref().map(|f| f.message.clone()),
            error_stack_trace: failure.as_ref().and_then(|f| f.stack_trace.clone()),
        };
        // Until the status is accepted the lease is kept alive: a report whenever one is due, and no call waits
        // past the lease. A lease that lapses here means the service has moved on: the status is given up.
        let mut tries = 0u32;
        let mut next_report = Instant::now() + interval;
        loop {
            if lease.lapsed() {
                log(
                    Error,
                    &format!(
                        "status {} not delivered within the lease; the service times the attempt out",
                        status.as_str()
                    ),
                );
                return TaskEnd::LeaseLost;
            }
            let bound = lease.call_bound(interval);
            let sent_at = Instant::now();
            let answer =
                match tokio::time::timeout(bound, self.client.call::<ops::SetTaskStatus>(&input))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.error().service_code() == Some("TaskNotFoundException") => {
                        log(
                            Error,
                            "the service no longer knows the task; its status was not recorded",
                        );
                        return TaskEnd::LeaseLost;
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {:.1}s", bound.as_secs_f64())),
                };
            let e = match answer {
                Ok(()) => {
                    let detail = match &failure {
                        Some(f) => format!(
                            "task ended {} ({}): {}",
                            status.as_str(),
                            f.error_id,
                            f.message
                        ),
                        None => format!("task ended {}", status.as_str()),
                    };
                    log(Info, &detail);
                    return end;
                }
                Err(e) => e,
            };
            tries += 1;
            if self.abort.is_cancelled() {
                log(
                    Error,
                    &format!(
                        "stopping at once: status {} not delivered: {e}",
                        status.as_str()
                    ),
                );
                return TaskEnd::Abandoned;
            }
            let wait = retry_delay(tries, Duration::from_secs(30).min(interval));
            log(
                Warn,
                &format!(
                    "set-task-status failed (retry in {:.1}s): {e}",
                    wait.as_secs_f64()
                ),
            );
            let retry_at = (sent_at.max(Instant::now()) + wait).min(lease.lapses_at);
            // Keep the lease while the status cannot be delivered.
            while next_report <= retry_at {
                tokio::select! {
                    _ = tokio::time::sleep_until(next_report) => {}
                    _ = self.abort.cancelled() => break,
                }
                let bound = lease.call_bound(interval);
                match self
                    .bounded_report(&task.task_id, Vec::new(), &mut lease, bound)
                    .await
                {
                    Ok(false) => next_report = Instant::now() + interval,
                    Ok(true) => {
                        log(
                            Info,
                            "the service canceled the task while its status was pending; no status sent",
                        );
                        return TaskEnd::Canceled;
                    }
                    Err(ReportError::NotFound) => {
                        log(
                            Error,
                            "the service no longer knows the task; its status was not recorded",
                        );
                        return TaskEnd::LeaseLost;
                    }
                    Err(ReportError::Other(e)) => {
                        log(Warn, &format!("keep-alive report failed: {e}"));
                        next_report = (Instant::now() + interval / 4).min(lease.lapses_at);
                        if lease.lapsed() {
                            break;
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(retry_at) => {}
                _ = self.abort.cancelled() => {}
            }
        }
    }
}

/// The task's `reportProgressTimeout` (15 minutes when unset) in this runner's time.
fn report_timeout(task: &Task, time_scale: f64) -> Duration {
    task.field("reportProgressTimeout")
        .and_then(crate::shell::parse_period)
        .unwrap_or(DEFAULT_REPORT_TIMEOUT)
        .div_f64(time_scale.max(1e-9))
}

/// How often to report for `task`: the configured interval, but at least three reports within the activity's
/// `reportProgressTimeout` (15 minutes by default), so a short timeout never lapses between two reports.
pub(crate) fn report_interval(configured: Duration, task: &Task, time_scale: f64) -> Duration {
    configured
        .min(report_timeout(task, time_scale) / 3)
        .max(Duration::from_millis(50))
}

/// The wait before retry `n` (1-based): 250 ms doubling, capped at `cap` (at least 100 ms), with full jitter over
/// the upper half so that many runners do not retry in step.
pub(crate) fn retry_delay(n: u32, cap: Duration) -> Duration {
    let cap = cap.max(Duration::from_millis(100));
    let base = Duration::from_millis(250).saturating_mul(1u32 << n.saturating_sub(1).min(16));
    let ceiling = base.min(cap);
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// The failure as the model accepts it: an `errorId` that does not start with `Service_` (the service's own prefix,
/// which SetTaskStatus refuses), and text without control characters (except tab and line breaks), `errorId` and
/// `errorStackTrace` within 1,024 characters, `errorMessage` within 4,096.
pub(crate) fn clean_failure(f: Failure) -> Failure {
    let mut error_id = clean_text(&f.error_id, 1024);
    if error_id.starts_with("Service_") {
        error_id = clean_text(&format!("Activity_{error_id}"), 1024);
    }
    if error_id.is_empty() {
        error_id = "ActivityFailed".into();
    }
    Failure {
        error_id,
        message: clean_text(&f.message, 4096),
        stack_trace: f.stack_trace.map(|t| clean_text(&t, 1024)),
    }
}

fn clean_text(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_fit_the_model() {
        let f = clean_failure(
            Failure::new("Service_Oops", "bad\x1bthing\nnext").with_stack_trace("é".repeat(2000)),
        );
        assert_eq!(f.error_id, "Activity_Service_Oops");
        assert_eq!(f.message, "bad thing\nnext");
        assert_eq!(f.stack_trace.unwrap().chars().count(), 1024);
        assert_eq!(
            clean_failure(Failure::new("", "m")).error_id,
            "ActivityFailed"
        );
    }

    #[test]
    fn retry_delays_grow_and_stay_capped() {
        for n in 1..40 {
            let d = retry_delay(n, Duration::from_secs(2));
            assert!(d <= Duration::from_secs(2), "{n}: {d:?}");
            assert!(d >= Duration::from_millis(50), "{n}: {d:?}");
        }
        let first = retry_delay(1, Duration::from_secs(60));
        assert!(first <= Duration::from_millis(250), "{first:?}");
        let later = retry_delay(6, Duration::from_secs(60));
        assert!(later >= Duration::from_secs(4), "{later:?}");
    }
}
