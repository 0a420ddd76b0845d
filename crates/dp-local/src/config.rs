//! Settings of a dp-local server, and the two ways to make them: in code, or from the binary's arguments.
//!
//! Arguments become one [`Config`] here, in one place; the server never sees argument strings. This module reads
//! the credentials file but never prints a secret (the `Debug` of [`Credential`] redacts it).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The documented example access key id, accepted by default.
pub const EXAMPLE_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// The documented example secret access key, accepted by default.
pub const EXAMPLE_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// One access key the server accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The access key id (`AKIDEXAMPLE`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token that requests must carry in `X-Amz-Security-Token`, if any.
    pub session_token: Option<String>,
}

impl Credential {
    /// A credential without a session token.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credential {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The documented example pair.
    pub fn example() -> Self {
        Self::new(EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET_ACCESS_KEY)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Every service duration (acknowledgement window, progress timeout, retry delay, long poll) is divided by this.
    pub time_scale: f64,
    /// The access keys accepted when `auth` is on.
    pub credentials: Vec<Credential>,
    /// Verify SigV4 signatures.
    pub auth: bool,
    /// How long poll-for-task waits for a task before answering with none, in service time (90 s by default).
    pub poll_timeout: Duration,
    /// The SQLite state file, or a `postgres://` URL (see [`crate::store::is_url`]); `None` (the default) keeps the
    /// state in memory only.
    pub state: Option<PathBuf>,
    /// With `state`, use the time scale stored in the file rather than `time_scale` (the binary sets this when
    /// `--time-scale` is not given).
    pub restore_time_scale: bool,
    /// A connection that has not sent a complete request head within this time is closed (30 s by default).
    pub header_timeout: Duration,
    /// The most connections served at once; more wait in the listen queue until one closes (1024 by default).
    pub max_connections: usize,
    /// Serve the web console at `/console` (on by default; `--no-console` turns it off).
    pub console: bool,
    /// Launch a local task runner for each resource instance (`--resources local`, the default) or none
    /// (`--resources off`: activities then need a `workerGroup`).
    pub local_resources: bool,
    /// The runner binary for resources; `None` looks beside dp-local's executable, then on `PATH`.
    pub runner_bin: Option<PathBuf>,
    /// Extra arguments for every launched runner (`--runner-arg`, repeatable).
    pub runner_args: Vec<String>,
    /// The most resource runners alive at once (16 by default); later resources wait in `CREATING`.
    pub max_resources: usize,
    /// On PostgreSQL, serve alone: while another dp-local serves the database, stand by (answering 503) until it
    /// stops (`--standby`). Without it (the default) every node on the database serves, together.
    pub standby: bool,
    /// Stop (as on SIGTERM) once the process that started dp-local has ended (`--exit-with-parent`), so that a
    /// test harness or supervisor killed without warning leaves no dp-local behind.
    pub exit_with_parent: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            time_scale: 1.0,
            credentials: vec![Credential::example()],
            auth: true,
            poll_timeout: Duration::from_secs(90),
            state: None,
            restore_time_scale: false,
            header_timeout: Duration::from_secs(30),
            max_connections: 1024,
            console: true,
            local_resources: true,
            runner_bin: None,
            runner_args: Vec::new(),
            max_resources: 16,
            standby: false,
            exit_with_parent: false,
        }
    }
}

/// The binary's usage text.
pub const USAGE: &str = "\
usage: dp-local [--state PATH|URL] [--port PORT] [--time-scale N] [--poll-timeout SECONDS] [--no-auth]
                [--credentials FILE] [--header-timeout SECONDS] [--max-connections N] [--no-console]
                [--resources local|off] [--runner-bin PATH] [--runner-arg ARG]... [--max-resources N]
                [--standby] [--exit-with-parent]
       dp-local export --state PATH|URL > dump.json
       dp-local import --state PATH|URL < dump.json

Serves the AWS Data Pipeline API on http://127.0.0.1:PORT and prints that URL as the first line of stdout,
and the web console's URL with its access token as the second (http://127.0.0.1:PORT/console?token=...).

  --state PATH               keep all state in this SQLite file (created if missing) and answer a change
                             only once it is saved; without it the state is in memory only
  --state postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]
                             keep the state in this PostgreSQL database instead (it must exist); every
                             dp-local on the same database serves it, together, as one service
  --standby                  with a PostgreSQL --state: serve alone; while another dp-local serves the
                             database, stand by (answering 503) and take over when it stops
  --port PORT                TCP port on 127.0.0.1; 0 (the default) picks a free one
  --time-scale N             run every service duration N times faster (default 1, or the one stored in
                             the --state file)
  --poll-timeout SECONDS     poll-for-task long-poll limit in service seconds (default 90)
  --no-auth                  accept requests without verifying their SigV4 signature
  --credentials FILE         accept the keys of an AWS shared-credentials file (every section with
                             aws_access_key_id and aws_secret_access_key) instead of the example pair
                             AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
  --header-timeout SECONDS   close a connection that sends no complete request head within this time
                             (default 30)
  --max-connections N        serve at most N connections at once; more wait until one closes (default 1024)
  --no-console               do not serve the web console (GET /console)
  --resources local|off      local (the default): launch a dp-task-runner for each resource instance
                             (Ec2Resource, EmrCluster) that work is ready on, polling a worker group of its
                             own; off: launch none, and hand out only activities with a workerGroup
  --runner-bin PATH          the runner to launch (default: dp-task-runner beside dp-local, else on PATH)
  --runner-arg ARG           one more argument for every launched runner (repeatable)
  --max-resources N          at most N resource runners alive at once; later ones wait in CREATING
                             (default 16)
  --exit-with-parent         stop, as on SIGTERM, once the process that started dp-local has ended
  -V, --version              print the version and the commit it was built from
  -h, --help                 print this help

export writes the state's rows as JSON to stdout; import loads such a dump into a new state file or an
empty database. A state is served by one dp-local at a time; stop it before export.
GET /healthz, /readyz and /metrics (Prometheus text) answer without a signature.
";

/// What the binary's arguments ask for.
#[derive(Debug)]
pub enum Invocation {
    /// Serve with these settings.
    Serve(Config),
    /// Print [`USAGE`].
    Help,
    /// Print the version and the commit it was built from.
    Version,
    /// Write the state file at this path as JSON to stdout.
    Export(PathBuf),
    /// Read JSON from stdin into a new state file at this path.
    Import(PathBuf),
}

impl Config {
    /// Builds the settings from the binary's arguments (without the program name).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, Error> {
        let mut config = Config::default();
        let mut args = args.into_iter().peekable();
        let command = match args.peek().map(String::as_str) {
            Some(c @ ("export" | "import")) => {
                let c = c.to_string();
                args.next();
                Some(c)
            }
            _ => None,
        };
        let mut time_scale_given = false;
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let value = |args: &mut std::iter::Peekable<I::IntoIter>| -> Result<String, Error> {
                inline.clone().or_else(|| args.next()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Usage,
                        format!("{name} expects a value\n\n{USAGE}"),
                    )
                })
            };
            match name.as_str() {
                "-h" | "--help" => return Ok(Invocation::Help),
                "-V" | "--version" => return Ok(Invocation::Version),
                "--port" => {
                    let v = value(&mut args)?;
                    config.port = v.parse().map_err(|_| {
                        Error::new(
                            ErrorKind::Usage,
                            format!("--port expects a number from 0 to 65535, got {v:?}"),
                        )
                    })?;
                }
                "--state" => config.state = Some(PathBuf::from(value(&mut args)?)),
                "--header-timeout" => {
                    let v = value(&mut args)?;
                    let secs: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::Usage,
                                format!("--header-timeout expects seconds (> 0), got {v:?}"),
                            )
                        })?;
                    config.header_timeout = Duration::from_secs_f64(secs);
                }
                "--max-connections" => {
                    let v = value(&mut args)?;
                    config.max_connections =
                        v.parse().ok().filter(|n: &usize| *n > 0).ok_or_else(|| {
                            Error::new(
                                ErrorKind::Usage,
                                format!("--max-connections expects a positive number, got {v:?}"),
                            )
                        })?;
                }
                "--time-scale" => {
                    time_scale_given = true;
                    let v = value(&mut args)?;
                    config.time_scale = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::Usage,
                                format!("--time-scale expects a positive number, got {v:?}"),
                            )
                        })?;
                }
                "--poll-timeout" => {
                    let v = value(&mut args)?;
                    let secs: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::Usage,
                                format!("--poll-timeout expects seconds (>= 0), got {v:?}"),
                            )
                        })?;
                    config.poll_timeout = Duration::from_secs_f64(secs);
                }
                "--no-auth" => config.auth = false,
                "--resources" => {
                    let v = value(&mut args)?;
                    config.local_resources = match v.as_str() {
                        "local" => true,
                        "off" => false,
                        _ => {
                            return Err(Error::new(
                                ErrorKind::Usage,
                                format!("--resources expects local or off, got {v:?}"),
                            ));
                        }
                    };
                }
                "--runner-bin" => config.runner_bin = Some(PathBuf::from(value(&mut args)?)),
                "--runner-arg" => config.runner_args.push(value(&mut args)?),
                "--max-resources" => {
                    let v = value(&mut args)?;
                    config.max_resources =
                        v.parse().ok().filter(|n: &usize| *n > 0).ok_or_else(|| {
                            Error::new(
                                ErrorKind::Usage,
                                format!("--max-resources expects a positive number, got {v:?}"),
                            )
                        })?;
                }
                "--no-console" => config.console = false,
                "--standby" => config.standby = true,
                "--exit-with-parent" => config.exit_with_parent = true,
                "--credentials" => {
                    let path = value(&mut args)?;
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        Error::new(
                            ErrorKind::Credentials,
                            format!("cannot read credentials file {path}: {e}"),
                        )
                    })?;
                    config.credentials = parse_credentials_file(&text).map_err(|m| {
                        Error::new(
                            ErrorKind::Credentials,
                            format!("credentials file {path}: {m}"),
                        )
                    })?;
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!("unknown argument {other:?}\n\n{USAGE}"),
                    ));
                }
            }
        }
        config.restore_time_scale = !time_scale_given;
        match command.as_deref() {
            None => Ok(Invocation::Serve(config)),
            Some(c) => {
                let path = config.state.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Usage,
                        format!("dp-local {c} needs --state PATH\n\n{USAGE}"),
                    )
                })?;
                Ok(if c == "export" {
                    Invocation::Export(path)
                } else {
                    Invocation::Import(path)
                })
            }
        }
    }
}

/// A `[section]` of a credentials file while it is read.
#[derive(Default)]
struct Section {
    name: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

/// Reads the keys of an AWS shared-credentials file: every `[section]` that has `aws_access_key_id` and
/// `aws_secret_access_key` (and optionally `aws_session_token`) gives one [`Credential`].
pub fn parse_credentials_file(text: &str) -> Result<Vec<Credential>, String> {
    let mut out = Vec::new();
    let mut section: Option<Section> = None;
    let mut finish = |s: Option<Section>| -> Result<(), String> {
        let Some(s) = s else { return Ok(()) };
        match (s.access_key_id, s.secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => out.push(Credential {
                access_key_id,
                secret_access_key,
                session_token: s.session_token,
            }),
            (None, None) => {}
            _ => {
                return Err(format!(
                    "section [{}] needs both aws_access_key_id and aws_secret_access_key",
                    s.name
                ));
            }
        }
        Ok(())
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            finish(section.take())?;
            section = Some(Section {
                name: name.trim().to_string(),
                ..Section::default()
            });
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected `key = value` or `[section]`",
                number + 1
            ));
        };
        let Some(current) = section.as_mut() else {
            return Err(format!(
                "line {}: a key before the first [section]",
                number + 1
            ));
        };
        let value = Some(value.trim().to_string());
        match key.trim() {
            "aws_access_key_id" => current.access_key_id = value,
            "aws_secret_access_key" => current.secret_access_key = value,
            "aws_session_token" => current.session_token = value,
            _ => {}
        }
    }
    finish(section.take())?;
    if out.is_empty() {
        return Err("no section with aws_access_key_id and aws_secret_access_key".into());
    }
    Ok(out)
}
