//! The runner under endpoint faults: the real binary against dp-local through the fault-injecting proxy of the
//! harness (black-holed, refused, 503 and throttled calls, per operation). Each test makes one promise of
//! docs/dp-task-runner.md's fault section hold: a short outage costs nothing, no call outlives the lease, a long
//! outage stops the work on the runner's side before the service hands the task to someone else, a status that
//! cannot be delivered keeps its lease, and throttled polls are backed off and survived.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A command that records its pid, then waits until the test creates `release` (so the test decides when the
/// work ends, whatever the machine's load).
fn held_command(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let (pid, release) = (dir.join("cmd.pid"), dir.join("release"));
    let command = format!(
        "echo $$ > {pid}; while [ ! -f {release} ]; do sleep 0.05; done; echo done",
        pid = pid.display(),
        release = release.display()
    );
    (command, pid, release)
}

fn handed_out_once(endpoint: &Endpoint) -> String {
    let handed = endpoint.proxy.handed_out();
    assert_eq!(handed.len(), 1, "one hand-out: {handed:?}");
    handed[0].clone()
}

fn task_ids(calls: &[Recorded]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| c.request["taskId"].as_str().map(str::to_string))
        .collect()
}

/// An outage of every operation (black-holed connections), then a 503 storm, each shorter than the lease: the task
/// ends FINISHED once, as one attempt, handed out once.
#[test]
fn outages_shorter_than_the_lease_cost_nothing() {
    for fault in [Fault::BlackHole, Fault::Unavailable, Fault::Refuse] {
        let endpoint = Endpoint::start();
        let dir = TempDir::new("short-outage");
        let (command, pid, release) = held_command(dir.path());
        // reportProgressTimeout 6 minutes is 6 s at the test's time scale; the runner reports every 0.5 s.
        let pipeline = shell_pipeline(
            &endpoint,
            "wg-short-outage",
            &[
                ("command", &command),
                ("reportProgressTimeout", "6 minutes"),
                ("maximumRetries", "2"),
                ("retryDelay", "1 minutes"),
            ],
        );
        let mut runner = RunnerProcess::start(
            &endpoint,
            dir.path(),
            &[
                "--workerGroup=wg-short-outage",
                "--once",
                "--progress-interval=0.5",
            ],
        );
        wait_until(LIMIT, "the command", || read_pid(&pid).is_some());
        endpoint.proxy.fail("*", fault);
        wait_until(LIMIT, "two progress reports to meet the fault", || {
            endpoint.proxy.faulted("ReportTaskProgress").len() >= 2
        });
        endpoint.proxy.heal();
        let healed_at = endpoint.proxy.all_calls("ReportTaskProgress").len();
        wait_until(LIMIT, "a progress report through after the outage", || {
            endpoint.proxy.all_calls("ReportTaskProgress")[healed_at..]
                .iter()
                .any(|c| c.fault.is_none())
        });
        std::fs::write(&release, "").unwrap();
        assert_eq!(
            runner.wait(LIMIT).code(),
            Some(0),
            "{fault:?}: {}",
            runner.stderr_text()
        );
        let attempts = attempts(&endpoint, &pipeline);
        assert_eq!(attempts.len(), 1, "{fault:?}: one attempt: {attempts:?}");
        assert_eq!(field(&attempts[0], "@status"), "FINISHED", "{fault:?}");
        let task = handed_out_once(&endpoint);
        let statuses = endpoint.proxy.all_calls("SetTaskStatus");
        assert_eq!(task_ids(&statuses), vec![task], "{fault:?}: one status");
        assert_eq!(statuses[0].request["taskStatus"], "FINISHED");
    }
}

/// One progress report that never gets an answer: the runner gives up on it within what is left of the lease
/// (here a third of it, the report interval) and reports again, so the lease holds. Before, one report could wait
/// for the 60 s read timeout, three times.
#[test]
fn a_report_that_gets_no_answer_is_abandoned_within_the_lease() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("black-hole-report");
    let (command, pid, release) = held_command(dir.path());
    // 3 s of lease at the test's time scale, with the default --progress-interval: the runner reports every 1 s.
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-black-hole",
        &[
            ("command", &command),
            ("reportProgressTimeout", "3 minutes"),
            ("retryDelay", "1 minutes"),
        ],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-black-hole", "--once"],
    );
    wait_until(LIMIT, "the command", || read_pid(&pid).is_some());
    endpoint
        .proxy
        .fail_next("ReportTaskProgress", Fault::BlackHole, 1);
    wait_until(
        LIMIT,
        "the runner to give up on the black-holed report",
        || endpoint.proxy.abandoned() == 1,
    );
    let after = endpoint.proxy.all_calls("ReportTaskProgress").len();
    wait_until(LIMIT, "the next report through", || {
        endpoint.proxy.all_calls("ReportTaskProgress")[after..]
            .iter()
            .any(|c| c.fault.is_none() && c.response["canceled"] == false)
    });
    std::fs::write(&release, "").unwrap();
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "{}",
        runner.stderr_text()
    );
    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(field(&attempts[0], "@status"), "FINISHED");
    // The runner names how long it waited: never more than the 3 s lease.
    let log = runner.log();
    let waited: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split("no answer within ").nth(1))
        .filter_map(|rest| rest.split('s').next()?.parse().ok())
        .collect();
    assert!(!waited.is_empty(), "{log}");
    assert!(waited.iter().all(|w| *w <= 3.0), "{waited:?}\n{log}");
}

/// An outage longer than the lease: once no report got through for a whole reportProgressTimeout, the runner stops
/// the work itself (SIGTERM to the group, SIGKILL after the cancel grace) and sends no status for that attempt;
/// the service times the attempt out and hands out a retry, which never overlaps the first copy.
#[test]
fn an_outage_longer_than_the_lease_stops_the_work_and_sends_no_status() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("long-outage");
    let (pid, bg, term, overlap) = (
        dir.path().join("cmd.pid"),
        dir.path().join("bg.pid"),
        dir.path().join("term.txt"),
        dir.path().join("overlap.txt"),
    );
    // First run: ignore SIGTERM (noting it), so only the SIGKILL after the grace ends it. The retry (the pid file
    // is there) notes whether the first copy is still alive (a zombie waiting for init is not), then succeeds.
    let command = format!(
        "if [ -f {pid} ]; then s=$(cut -d' ' -f3 /proc/$(cat {pid})/stat 2>/dev/null); \
         [ -n \"$s\" ] && [ \"$s\" != Z ] && echo \"overlap $s\" >> {overlap}; exit 0; fi; \
         trap 'echo term >> {term}' TERM; sleep 600 & echo $! > {bg}; echo $$ > {pid}; \
         while :; do sleep 0.05; done",
        pid = pid.display(),
        bg = bg.display(),
        term = term.display(),
        overlap = overlap.display()
    );
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-long-outage",
        &[
            ("command", &command),
            ("reportProgressTimeout", "3 minutes"),
            ("retryDelay", "2 minutes"),
            ("maximumRetries", "1"),
        ],
    );
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-long-outage",
            "--progress-interval=0.5",
            "--cancel-grace=1",
        ],
    );
    wait_until(LIMIT, "the command", || {
        read_pid(&pid).is_some() && read_pid(&bg).is_some()
    });
    let (sh, sleeper) = (read_pid(&pid).unwrap(), read_pid(&bg).unwrap());
    let _reaper = Reaper(vec![sh, sleeper]);
    let first = handed_out_once(&endpoint);
    // This attempt's reports and status never reach the service again (polls still do).
    endpoint
        .proxy
        .fail_matching("ReportTaskProgress", &first, Fault::BlackHole);
    endpoint
        .proxy
        .fail_matching("SetTaskStatus", &first, Fault::BlackHole);
    wait_until(LIMIT, "the runner to stop the first copy", || {
        !alive(sh) && !alive(sleeper)
    });
    assert!(
        std::fs::read_to_string(&term).is_ok_and(|t| t.contains("term")),
        "SIGTERM came first"
    );
    let log = runner.log();
    assert!(
        log.contains("no progress report got through for a whole reportProgressTimeout"),
        "{log}"
    );
    assert!(
        log.contains("did not stop within the cancel grace: SIGKILL"),
        "{log}"
    );
    // The service's side: the attempt times out and the retry runs on this same runner.
    wait_until(LIMIT, "the retry to finish", || {
        instances(&endpoint, &pipeline)
            .first()
            .is_some_and(|i| field(i, "@status") == "FINISHED")
    });
    runner.signal(Signal::SIGTERM);
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "{}",
        runner.stderr_text()
    );

    let attempts = attempts(&endpoint, &pipeline);
    let mut statuses: Vec<&str> = attempts.iter().map(|a| field(a, "@status")).collect();
    statuses.sort();
    assert_eq!(statuses, ["FINISHED", "TIMEDOUT"], "{attempts:?}");
    assert!(
        !task_ids(&endpoint.proxy.all_calls("SetTaskStatus")).contains(&first),
        "no status was even tried for the lapsed attempt"
    );
    assert!(
        !overlap.exists(),
        "the retry started while the first copy ran: {:?}",
        std::fs::read_to_string(&overlap)
    );
}

/// SetTaskStatus answered 503 for four times the lease after the work ended: the runner keeps reporting while it
/// retries, so the attempt does not time out, and the status is accepted once. (Before, reports went out only just
/// before each retry, and the retries' doubling waits passed the 3 s lease within this outage.)
#[test]
fn a_status_that_cannot_be_delivered_keeps_its_lease_until_it_is() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("status-storm");
    let (command, pid, release) = held_command(dir.path());
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-status-storm",
        &[
            ("command", &command),
            ("reportProgressTimeout", "3 minutes"),
            ("retryDelay", "1 minutes"),
            ("maximumRetries", "1"),
        ],
    );
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-status-storm", "--once"],
        // One try per call: the runner's own retries are what is tested.
        &[("AWS_MAX_ATTEMPTS", "1")],
    );
    wait_until(LIMIT, "the command", || read_pid(&pid).is_some());
    endpoint.proxy.fail("SetTaskStatus", Fault::Unavailable);
    std::fs::write(&release, "").unwrap();
    wait_until(LIMIT, "the first refused status", || {
        !endpoint.proxy.faulted("SetTaskStatus").is_empty()
    });
    // Refused for four times the lease (3 s at the test's time scale).
    let refused_from = Instant::now();
    let reports_before = endpoint.proxy.calls("ReportTaskProgress").len();
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        endpoint.proxy.faulted("SetTaskStatus").len() >= 2,
        "the status was retried"
    );
    endpoint.proxy.heal();
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "{}",
        runner.stderr_text()
    );
    assert!(refused_from.elapsed() >= Duration::from_secs(12));

    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(
        attempts.len(),
        1,
        "the attempt never timed out: {attempts:?}"
    );
    assert_eq!(field(&attempts[0], "@status"), "FINISHED");
    assert_eq!(
        endpoint.proxy.calls("SetTaskStatus").len(),
        1,
        "accepted once"
    );
    assert!(
        endpoint.proxy.calls("ReportTaskProgress").len() > reports_before,
        "the lease was kept by reports while the status was refused"
    );
}

/// PollForTask throttled: the runner stays up, backs off (growing waits), and takes the task once polls pass.
#[test]
fn throttled_polls_are_backed_off_and_the_task_is_taken_after() {
    let endpoint = Endpoint::start();
    let dir = TempDir::new("throttled");
    let pipeline = shell_pipeline(&endpoint, "wg-throttled", &[("command", "echo ok")]);
    endpoint.proxy.fail("PollForTask", Fault::Throttle);
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-throttled",
            "--once",
            "--poll-backoff-cap=2",
        ],
        // One try per poll, so each throttled answer is one failed poll in the runner's log.
        &[("AWS_MAX_ATTEMPTS", "1")],
    );
    wait_until(LIMIT, "four throttled polls", || {
        runner.log().matches("poll-for-task failed").count() >= 4
    });
    assert!(runner.child.try_wait().unwrap().is_none(), "still running");
    endpoint.proxy.heal();
    assert_eq!(
        runner.wait(LIMIT).code(),
        Some(0),
        "{}",
        runner.stderr_text()
    );
    assert_eq!(
        field(&attempts(&endpoint, &pipeline)[0], "@status"),
        "FINISHED"
    );

    let log = runner.log();
    assert!(log.contains("ThrottlingException"), "{log}");
    let waits: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("poll-for-task failed (retry in "))
        .filter_map(|l| l.split("retry in ").nth(1)?.split('s').next()?.parse().ok())
        .collect();
    // 250 ms doubling with jitter over the upper half: the fourth wait is at least 1 s, the first at most 0.25 s.
    assert!(waits.len() >= 4, "{waits:?}");
    assert!(waits[0] <= 0.3 && waits[3] >= 1.0, "{waits:?}");
    assert!(waits.iter().all(|w| *w <= 2.0), "capped: {waits:?}");
    assert!(endpoint.proxy.faulted("PollForTask").len() >= 4);
}
