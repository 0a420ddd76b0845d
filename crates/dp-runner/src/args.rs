//! The binary's command line: the Java Task Runner's flags (`--workerGroup=wg` and `--workerGroup wg`), dp's
//! native extras, and the `exec` and `doctor` subcommands, turned into one [`RunnerConfig`] here and nowhere else.
//! This is the only module of dp-runner that knows clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dp_runner::{CredentialsFile, LogFormat, ProxySettings, RunnerConfig};

/// What the command line asks for.
pub enum Invocation {
    /// Poll and run tasks.
    Run(RunnerConfig),
    /// Hold one task polled elsewhere while a command runs.
    Exec {
        config: RunnerConfig,
        task_id: String,
        argv: Vec<String>,
    },
    /// Explain why tasks wait.
    Doctor(RunnerConfig),
}

#[derive(Parser, Debug)]
#[command(
    name = "dp-task-runner",
    version = crate::VERSION,
    about = "A native AWS Data Pipeline task runner: polls a worker group, holds each task's lease, runs \
             ShellCommandActivity work, stops on cancel.",
    after_help = "Exit status: 0 stopped normally (--once: the task FINISHED); 1 --once: the task FAILED or \
                  FALSE, doctor: a check failed; 2 bad command line or configuration; 3 --once/exec: the task \
                  was canceled, lost its lease or was stopped by shutdown. exec exits with its command's status.",
    args_conflicts_with_subcommands = false
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Acknowledge a task you polled yourself, run CMD while reporting progress, kill it on cancel, and set
    /// FINISHED or FAILED from its exit status.
    Exec {
        /// The task id from poll-for-task.
        #[arg(long = "task-id", value_name = "TASK_ID")]
        task_id: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "CMD")]
        argv: Vec<String>,
    },
    /// Explain why tasks wait for a runner: credentials, region, endpoint, PollForTask permission, and which
    /// active pipelines use the worker group.
    Doctor,
}

#[derive(Args, Debug)]
struct Common {
    /// The credentials file: {"access-id": ..., "private-key": ..., "endpoint"?, "region"?, "log-uri"?}.
    #[arg(long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The access key id (overrides the --config file).
    #[arg(long = "accessId", value_name = "ID", global = true)]
    access_id: Option<String>,
    /// The secret access key (overrides the --config file).
    #[arg(long = "secretKey", value_name = "KEY", global = true)]
    secret_key: Option<String>,
    /// The Data Pipeline endpoint URL (also --endpoint-url; AWS_ENDPOINT_URL_DATA_PIPELINE works as in dp).
    #[arg(
        long = "endpoint",
        visible_alias = "endpoint-url",
        value_name = "URL",
        global = true
    )]
    endpoint: Option<String>,
    /// The worker group to poll: exact and case-sensitive (required, except for exec).
    #[arg(long = "workerGroup", value_name = "GROUP", global = true)]
    worker_group: Option<String>,
    /// This runner's id, sent with heartbeats (default: a fresh UUID).
    #[arg(long = "taskrunnerId", value_name = "ID", global = true)]
    taskrunner_id: Option<String>,
    /// The region (default: the AWS chain: AWS_REGION, AWS_DEFAULT_REGION, the profile).
    #[arg(long = "region", value_name = "REGION", global = true)]
    region: Option<String>,
    /// Where attempt logs go when an attempt ends, and the runner log hourly and at exit (s3://... or a path).
    #[arg(long = "logUri", value_name = "URI", global = true)]
    log_uri: Option<String>,
    /// The address of an RdsDatabase (rdsInstanceId) or RedshiftDatabase (clusterId), as ID=URL with URL
    /// postgres://, mysql://, mariadb://, redshift:// or jdbc:...; repeatable.
    #[arg(long = "database", value_name = "ID=URL", global = true)]
    database: Vec<String>,
    /// How RedshiftCopyActivity loads: auto issues Redshift's own COPY ... FROM 's3://...' when the database's
    /// host is a Redshift endpoint (*.redshift.amazonaws.com) and streams the rows otherwise; server issues it
    /// for every jdbc:redshift:// database too.
    #[arg(
        long = "redshift-copy",
        value_name = "auto|server",
        default_value = "auto",
        global = true
    )]
    redshift_copy: String,
    /// The output directory: logs go to OUTPUT/logs.
    #[arg(
        long = "output",
        value_name = "DIR",
        default_value = "output",
        global = true
    )]
    output: PathBuf,
    /// How many tasks to hold at once.
    #[arg(long = "tasks", value_name = "N", default_value_t = 2, global = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
    tasks: u32,
    /// HTTP proxy host.
    #[arg(long = "proxyHost", value_name = "HOST", global = true)]
    proxy_host: Option<String>,
    /// HTTP proxy port (default 8080).
    #[arg(long = "proxyPort", value_name = "PORT", global = true)]
    proxy_port: Option<u16>,
    /// Proxy user name (Basic authentication).
    #[arg(long = "proxyUsername", value_name = "USER", global = true)]
    proxy_username: Option<String>,
    /// Proxy password.
    #[arg(long = "proxyPassword", value_name = "PASSWORD", global = true)]
    proxy_password: Option<String>,
    /// NTLM domain: accepted for compatibility; dp sends Basic proxy credentials.
    #[arg(long = "proxyDomain", value_name = "DOMAIN", global = true)]
    proxy_domain: Option<String>,
    /// NTLM workstation: accepted for compatibility; not used.
    #[arg(long = "proxyWorkstation", value_name = "NAME", global = true)]
    proxy_workstation: Option<String>,
    /// Seconds between progress reports of a held task.
    #[arg(long = "progress-interval", value_name = "SECONDS", default_value = "60", global = true, value_parser = seconds)]
    progress_interval: Duration,
    /// Seconds between SIGTERM and SIGKILL when a task's command is stopped.
    #[arg(long = "cancel-grace", value_name = "SECONDS", default_value = "30", global = true, value_parser = seconds)]
    cancel_grace: Duration,
    /// Seconds held tasks may go on after SIGTERM/SIGINT before they are stopped and failed.
    #[arg(long = "shutdown-grace", value_name = "SECONDS", default_value = "60", global = true, value_parser = seconds)]
    shutdown_grace: Duration,
    /// Seconds between rotations of the runner log (0: never rotate); with --logUri each closed file is uploaded.
    #[arg(long = "log-rotate", value_name = "SECONDS", default_value = "3600", global = true, value_parser = seconds)]
    log_rotate: Duration,
    /// Rotated runner logs kept in OUTPUT/logs, newest first (0: keep all).
    #[arg(
        long = "log-keep",
        value_name = "COUNT",
        default_value_t = 168,
        global = true
    )]
    log_keep: usize,
    /// Seconds between heartbeats.
    #[arg(long = "heartbeat-interval", value_name = "SECONDS", default_value = "900", global = true, value_parser = seconds, hide = true)]
    heartbeat_interval: Duration,
    /// The longest wait between failed polls, in seconds.
    #[arg(long = "poll-backoff-cap", value_name = "SECONDS", default_value = "60", global = true, value_parser = seconds, hide = true)]
    poll_backoff_cap: Duration,
    /// Divide the service durations of task objects (attemptTimeout, reportProgressTimeout) by N, to match
    /// dp-local --time-scale N.
    #[arg(
        long = "time-scale",
        value_name = "N",
        default_value_t = 1.0,
        global = true
    )]
    time_scale: f64,
    /// Take one task, run it, and exit with its outcome.
    #[arg(long = "once", global = true)]
    once: bool,
    /// Stop at once (killing held tasks' work) when the process that started this runner ends.
    #[arg(long = "exit-with-parent", global = true)]
    exit_with_parent: bool,
    /// The runner log's format.
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: Format,
    /// The S3 endpoint for scriptUri, staging, stdout/stderr and log uploads (path-style; default
    /// AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS's).
    #[arg(long = "s3-endpoint-url", value_name = "URL", global = true)]
    s3_endpoint_url: Option<String>,
    /// Do not echo the runner log to stderr (it still goes to OUTPUT/logs).
    #[arg(long = "quiet", global = true)]
    quiet: bool,
    /// Log every Data Pipeline request and response to stderr, redacted (as dp --debug).
    #[arg(long = "debug", global = true)]
    debug: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Text,
    Json,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of seconds, got {text:?}"))?;
    if !value.is_finite() || !(0.0..=31_536_000.0).contains(&value) {
        return Err(format!("expected 0 to 31536000 seconds, got {text}"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A bad command line: the message (one line) and the exit code (2; 0 for --help and --version, whose text is
/// the message).
pub struct Refusal {
    pub message: String,
    pub code: i32,
}

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        code: 2,
    }
}

/// Parses `args` (without the program name's special meaning: `args[0]` is skipped as usual).
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Invocation, Refusal> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return Err(match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Refusal {
                    message: e.to_string(),
                    code: 0,
                },
                _ => refuse(one_line(&e.to_string())),
            });
        }
    };
    let c = cli.common;
    let file = match &c.config {
        Some(path) => CredentialsFile::load(path).map_err(|e| refuse(e.to_string()))?,
        None => CredentialsFile::default(),
    };
    let needs_group = !matches!(cli.command, Some(Sub::Exec { .. }));
    let worker_group = match (&c.worker_group, needs_group) {
        (Some(g), _) if g.is_empty() => {
            return Err(refuse(
                "--workerGroup: expected a worker group name, got an empty string",
            ));
        }
        (Some(g), _) => g.clone(),
        (None, true) => {
            return Err(refuse(
                "--workerGroup is required: the worker group whose tasks this runner takes (exact, case-sensitive)",
            ));
        }
        (None, false) => String::new(),
    };
    let mut config = RunnerConfig::new(worker_group);
    if let Some(id) = c.taskrunner_id {
        config.taskrunner_id = id;
    }
    let access_id = c.access_id.or(file.access_id);
    let secret_key = c.secret_key.or(file.private_key);
    match (&access_id, &secret_key) {
        (Some(id), Some(key)) => config = config.with_keys(id, key),
        (Some(_), None) => {
            return Err(refuse(
                "an access key id was given (--accessId or access-id in --config) without its secret key \
                 (--secretKey or private-key)",
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                "a secret key was given (--secretKey or private-key in --config) without its access key id \
                 (--accessId or access-id)",
            ));
        }
        (None, None) => {}
    }
    let proxy = ProxySettings {
        host: c.proxy_host,
        port: c.proxy_port,
        username: c.proxy_username,
        password: c.proxy_password,
        domain: c.proxy_domain,
        workstation: c.proxy_workstation,
    };
    config = config
        .with_proxy(&proxy)
        .map_err(|e| refuse(e.to_string()))?;
    config.wire.region = c.region.or(file.region);
    config.wire.endpoint_url = c.endpoint.or(file.endpoint).map(|e| {
        if e.contains("://") {
            e
        } else {
            format!("https://{e}")
        }
    });
    config.wire.debug = c.debug;
    config.log_uri = c.log_uri.or(file.log_uri);
    config.output_dir = c.output;
    config.tasks = c.tasks as usize;
    config.progress_interval = c.progress_interval.max(Duration::from_millis(100));
    config.cancel_grace = c.cancel_grace;
    config.shutdown_grace = c.shutdown_grace;
    config.log_rotate = c.log_rotate;
    config.log_keep = c.log_keep;
    config.heartbeat_interval = c.heartbeat_interval.max(Duration::from_secs(1));
    config.poll_backoff_cap = c.poll_backoff_cap;
    if !(c.time_scale.is_finite() && c.time_scale > 0.0) {
        return Err(refuse(format!(
            "--time-scale: expected a number above 0, got {}",
            c.time_scale
        )));
    }
    config.time_scale = c.time_scale;
    config.once = c.once;
    config.exit_with_parent = c.exit_with_parent;
    config.log_format = match c.log_format {
        Format::Text => LogFormat::Text,
        Format::Json => LogFormat::Json,
    };
    config.log_to_stderr = !c.quiet;
    config.s3_endpoint = c.s3_endpoint_url;
    let mut databases: Vec<(String, String)> = file.databases.clone().into_iter().collect();
    for flag in &c.database {
        databases.push(
            dp_runner::database::DatabaseUrls::parse_flag(flag)
                .map_err(|e| refuse(format!("--database: {e}")))?,
        );
    }
    config.databases = dp_runner::database::DatabaseUrls::new(databases).map_err(refuse)?;
    config.secrets.extend(config.databases.secrets());
    config.redshift_copy = dp_runner::redshift_copy::CopyPath::parse(&c.redshift_copy)
        .map_err(|e| refuse(format!("--redshift-copy: {e}")))?;
    Ok(match cli.command {
        None => Invocation::Run(config),
        Some(Sub::Doctor) => Invocation::Doctor(config),
        Some(Sub::Exec { task_id, argv }) => Invocation::Exec {
            config,
            task_id,
            argv,
        },
    })
}

/// clap's error as one line: `unexpected argument '--x' found`, without the usage block.
fn one_line(text: &str) -> String {
    // The first paragraph (clap lists missing arguments on the lines after a colon).
    let paragraph: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let first = paragraph.join(" ");
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    let tip = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("tip:"))
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    format!("{first}{tip}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, Refusal> {
        parse(
            std::iter::once("dp-task-runner")
                .chain(args.iter().copied())
                .map(Into::into),
        )
    }

    fn refused(args: &[&str]) -> String {
        match run(args) {
            Err(r) => {
                assert_eq!(r.code, 2, "{args:?}");
                assert!(!r.message.contains('\n'), "one line: {}", r.message);
                r.message
            }
            Ok(_) => panic!("{args:?} was accepted"),
        }
    }

    #[test]
    fn java_style_flags_in_both_forms() {
        let Ok(Invocation::Run(c)) = run(&[
            "--workerGroup=wg-1",
            "--tasks",
            "4",
            "--taskrunnerId=r1",
            "--region=eu-west-1",
            "--endpoint",
            "datapipeline.eu-west-1.amazonaws.com",
            "--progress-interval=0.5",
            "--log-format=json",
        ]) else {
            panic!("not a run")
        };
        assert_eq!(c.worker_group, "wg-1");
        assert_eq!(c.tasks, 4);
        assert_eq!(c.taskrunner_id, "r1");
        assert_eq!(c.wire.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.wire.endpoint_url.as_deref(),
            Some("https://datapipeline.eu-west-1.amazonaws.com")
        );
        assert_eq!(c.progress_interval, Duration::from_millis(500));
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_input_is_one_line_and_exit_2() {
        assert!(refused(&[]).contains("--workerGroup is required"));
        assert!(refused(&["--workerGroup="]).contains("empty"));
        assert!(refused(&["--workerGroup=x", "--bogus"]).contains("'--bogus'"));
        assert!(refused(&["--workerGroup=x", "--tasks=0"]).contains("--tasks"));
        assert!(refused(&["--workerGroup=x", "--progress-interval=soon"]).contains("seconds"));
        assert!(refused(&["--workerGroup=x", "--accessId=A"]).contains("without its secret key"));
        assert!(
            refused(&["--workerGroup=x", "--config=/nonexistent/c.json"]).contains("cannot read")
        );
        assert!(
            refused(&["--workerGroup=x", "--proxyPassword=p", "--proxyHost=h"])
                .contains("--proxyUsername")
        );
    }

    #[test]
    fn exec_takes_the_command_after_the_separator() {
        let Ok(Invocation::Exec { task_id, argv, .. }) =
            run(&["exec", "--task-id", "T1", "--", "sh", "-c", "exit 3"])
        else {
            panic!("not exec")
        };
        assert_eq!(task_id, "T1");
        assert_eq!(argv, ["sh", "-c", "exit 3"]);
        assert!(refused(&["exec", "--task-id", "T1"]).contains("CMD"));
    }
}
