//! The runner's settings, in one struct, and the two inputs the Java Task Runner takes for them besides flags: the
//! `--config` credentials file and the proxy options.
//!
//! Nothing here knows clap: the binary's argument module fills a [`RunnerConfig`]. Explicit keys and proxy options
//! become variables of the dp-wire [`Environment`](dp_wire::Environment) the client reads, so every credential,
//! region, endpoint and proxy rule of dp applies unchanged; without keys the usual AWS chain is used.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logging::LogFormat;

/// A bad setting: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The `--config` file of the Java Task Runner:
/// `{"access-id": "...", "private-key": "...", "endpoint": "...", "region": "...", "log-uri": "..."}`.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    /// `access-id`.
    #[serde(rename = "access-id")]
    pub access_id: Option<String>,
    /// `private-key`.
    #[serde(rename = "private-key")]
    pub private_key: Option<String>,
    /// `endpoint`.
    pub endpoint: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `log-uri`.
    #[serde(rename = "log-uri")]
    pub log_uri: Option<String>,
    /// `databases`: `{"ID": "URL"}`, the addresses of `RdsDatabase` (`rdsInstanceId`) and `RedshiftDatabase`
    /// (`clusterId`) objects, as `--database ID=URL` (dp-task-runner's own key; the Java runner has none).
    #[serde(default)]
    pub databases: std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for CredentialsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsFile")
            .field("access_id", &self.access_id.as_ref().map(|_| "****"))
            .field("private_key", &self.private_key.as_ref().map(|_| "****"))
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("log_uri", &self.log_uri)
            .field(
                "databases",
                &crate::database::DatabaseUrls::new(self.databases.clone()).ok(),
            )
            .finish()
    }
}

impl CredentialsFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<CredentialsFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!(
                "--config {}: cannot read the file: {e}",
                path.display()
            ))
        })?;
        CredentialsFile::parse(&text)
            .map_err(|e| ConfigError::new(format!("--config {}: {e}", path.display())))
    }

    /// Parses the file's text; the error names the line and column.
    pub fn parse(text: &str) -> Result<CredentialsFile, ConfigError> {
        serde_json::from_str(text).map_err(|e| {
            ConfigError::new(format!(
                "expected a JSON object with access-id, private-key, endpoint, region, log-uri, databases: {e}"
            ))
        })
    }
}

/// The Java Task Runner's proxy options.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// `--proxyHost`.
    pub host: Option<String>,
    /// `--proxyPort`.
    pub port: Option<u16>,
    /// `--proxyUsername`.
    pub username: Option<String>,
    /// `--proxyPassword`.
    pub password: Option<String>,
    /// `--proxyDomain` (NTLM; accepted, not used: dp sends Basic proxy credentials).
    pub domain: Option<String>,
    /// `--proxyWorkstation` (NTLM; accepted, not used).
    pub workstation: Option<String>,
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .finish_non_exhaustive()
    }
}

impl ProxySettings {
    /// `http://user:password@host:port`, percent-encoded, or `None` without a host.
    pub fn url(&self) -> Result<Option<String>, ConfigError> {
        let Some(host) = &self.host else {
            if self.port.is_some() || self.username.is_some() {
                return Err(ConfigError::new(
                    "--proxyPort and --proxyUsername need --proxyHost",
                ));
            }
            return Ok(None);
        };
        let port = self.port.unwrap_or(8080);
        let userinfo = match (&self.username, &self.password) {
            (Some(u), Some(p)) => format!("{}:{}@", encode(u), encode(p)),
            (Some(u), None) => format!("{}@", encode(u)),
            (None, Some(_)) => {
                return Err(ConfigError::new("--proxyPassword needs --proxyUsername"));
            }
            (None, None) => String::new(),
        };
        Ok(Some(format!("http://{userinfo}{host}:{port}")))
    }
}

/// RFC 3986's unreserved characters (letters, digits, `-._~`) stay; every other byte is percent-encoded.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, USERINFO).to_string()
}

/// Everything the runner needs, with the Java Task Runner's defaults.
#[derive(Clone)]
pub struct RunnerConfig {
    /// `--workerGroup`: the exact, case-sensitive group to poll.
    pub worker_group: String,
    /// `--taskrunnerId`: sent with heartbeats.
    pub taskrunner_id: String,
    /// The hostname sent with polls and heartbeats.
    pub hostname: String,
    /// `--output`: where logs go (`OUTPUT/logs/...`).
    pub output_dir: PathBuf,
    /// `--logUri`: where attempt logs go when an attempt ends, and the runner log at each rotation and at exit.
    pub log_uri: Option<String>,
    /// `--tasks`: tasks held at once.
    pub tasks: usize,
    /// `--progress-interval`.
    pub progress_interval: Duration,
    /// `--cancel-grace`: between SIGTERM and SIGKILL.
    pub cancel_grace: Duration,
    /// `--shutdown-grace`: how long held tasks may go on after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// `--log-rotate`: how often the runner log is closed and a new one started (zero: never); with `log_uri`,
    /// each closed file is uploaded.
    pub log_rotate: Duration,
    /// `--log-keep`: how many closed runner logs stay in `OUTPUT/logs` (zero: all).
    pub log_keep: usize,
    /// How often to send report-task-runner-heartbeat (15 minutes).
    pub heartbeat_interval: Duration,
    /// The longest wait between failed polls.
    pub poll_backoff_cap: Duration,
    /// `--once`: take one task, run it, exit with its outcome.
    pub once: bool,
    /// `--exit-with-parent`: when the process that started the runner ends, stop at once (held tasks' work is
    /// killed, as on a second signal). For runners started by another program, such as dp-local's resources.
    pub exit_with_parent: bool,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--time-scale`: service durations read from task objects (`attemptTimeout`, `reportProgressTimeout`) and
    /// the acknowledgement window are divided by this, to match `dp-local --time-scale`. 1 against AWS.
    pub time_scale: f64,
    /// Echo the runner log to stderr.
    pub log_to_stderr: bool,
    /// The S3 endpoint (`--s3-endpoint-url`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), path-style.
    pub s3_endpoint: Option<String>,
    /// The addresses of `RdsDatabase`/`RedshiftDatabase` objects (`--database ID=URL`, the config file's
    /// `databases`).
    pub databases: crate::database::DatabaseUrls,
    /// `--redshift-copy`: when RedshiftCopyActivity issues Redshift's own `COPY … FROM 's3://…'`.
    pub redshift_copy: crate::redshift_copy::CopyPath,
    /// The dp-wire settings (region, endpoint, timeouts).
    pub wire: dp_wire::Settings,
    /// The environment the client reads (the process's, with explicit keys and proxies set over it).
    pub env: dp_wire::Environment,
    /// Values never to log (explicit keys).
    pub secrets: Vec<String>,
}

impl fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerConfig")
            .field("worker_group", &self.worker_group)
            .field("taskrunner_id", &self.taskrunner_id)
            .field("output_dir", &self.output_dir)
            .field("tasks", &self.tasks)
            .field("progress_interval", &self.progress_interval)
            .field("wire", &self.wire)
            .finish_non_exhaustive()
    }
}

impl RunnerConfig {
    /// Defaults for `worker_group`, reading credentials, region and endpoint from the process environment.
    pub fn new(worker_group: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            worker_group: worker_group.into(),
            taskrunner_id: uuid::Uuid::new_v4().to_string(),
            hostname: hostname(),
            output_dir: PathBuf::from("output"),
            log_uri: None,
            tasks: 2,
            progress_interval: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(60),
            log_rotate: Duration::from_secs(3600),
            log_keep: 168,
            heartbeat_interval: Duration::from_secs(15 * 60),
            poll_backoff_cap: Duration::from_secs(60),
            once: false,
            exit_with_parent: false,
            log_format: LogFormat::Text,
            time_scale: 1.0,
            log_to_stderr: true,
            s3_endpoint: None,
            databases: Default::default(),
            redshift_copy: Default::default(),
            wire: dp_wire::Settings::default(),
            env: dp_wire::Environment::from_process(),
            secrets: Vec::new(),
        }
    }

    /// Uses these keys instead of the credential chain (`--accessId`/`--secretKey`, or the config file's): they
    /// replace any keys, session token and profile of the environment.
    pub fn with_keys(mut self, access_id: &str, secret_key: &str) -> RunnerConfig {
        self.env = override_env(
            &self.env,
            &[
                ("AWS_ACCESS_KEY_ID", Some(access_id)),
                ("AWS_SECRET_ACCESS_KEY", Some(secret_key)),
                ("AWS_SESSION_TOKEN", None),
                ("AWS_SECURITY_TOKEN", None),
                ("AWS_PROFILE", None),
            ],
        );
        self.secrets.push(access_id.to_string());
        self.secrets.push(secret_key.to_string());
        self
    }

    /// Sends every request through this proxy (both http and https endpoints).
    pub fn with_proxy(mut self, proxy: &ProxySettings) -> Result<RunnerConfig, ConfigError> {
        if let Some(url) = proxy.url()? {
            self.env = override_env(
                &self.env,
                &[
                    ("HTTPS_PROXY", Some(&url)),
                    ("HTTP_PROXY", Some(&url)),
                    ("https_proxy", None),
                    ("http_proxy", None),
                ],
            );
            if let Some(password) = &proxy.password {
                self.secrets.push(password.clone());
                self.secrets.push(encode(password));
            }
        }
        Ok(self)
    }

    /// The S3 endpoint to use: the explicit one, else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
    pub fn effective_s3_endpoint(&self) -> Option<String> {
        self.s3_endpoint
            .clone()
            .or_else(|| self.env.get("AWS_ENDPOINT_URL_S3").map(str::to_string))
            .or_else(|| self.env.get("AWS_ENDPOINT_URL").map(str::to_string))
    }

    /// The DynamoDB endpoint to use: `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`.
    pub fn effective_dynamodb_endpoint(&self) -> Option<String> {
        self.env
            .get("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|| self.env.get("AWS_ENDPOINT_URL"))
            .map(str::to_string)
    }

    /// The Data Pipeline client for these settings (no IO yet).
    pub fn client(&self) -> Result<dp_wire::Client, dp_wire::Error> {
        dp_wire::Client::with_environment(self.wire.clone(), self.env.clone())
    }

    /// `OUTPUT/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.output_dir.join("logs")
    }
}

/// A copy of `env` with `changes` applied (`None` removes a variable).
fn override_env(
    env: &dp_wire::Environment,
    changes: &[(&str, Option<&str>)],
) -> dp_wire::Environment {
    let mut vars: Vec<(String, String)> = env
        .vars()
        .filter(|(k, _)| !changes.iter().any(|(name, _)| name == k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (name, value) in changes {
        if let Some(value) = value {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    dp_wire::Environment::from_vars(vars)
}

/// This machine's host name (`localhost` when it cannot be read).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files() {
        let f = CredentialsFile::parse(
            r#"{"access-id": "AKIDEXAMPLE", "private-key": "secret", "region": "us-west-2", "log-uri": "s3://b/l"}"#,
        )
        .unwrap();
        assert_eq!(f.access_id.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(f.region.as_deref(), Some("us-west-2"));
        assert!(!format!("{f:?}").contains("secret"));
        let e = CredentialsFile::parse(r#"{"access-id": "A", "secret": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `secret`"), "{e}");
        let e = CredentialsFile::parse("{\"access-id\": ").unwrap_err();
        assert!(e.to_string().contains("line 1 column"), "{e}");
    }

    #[test]
    fn proxies() {
        let p = ProxySettings {
            host: Some("proxy.local".into()),
            port: Some(3128),
            username: Some("me".into()),
            password: Some("p@ss:word".into()),
            ..Default::default()
        };
        assert_eq!(
            p.url().unwrap().as_deref(),
            Some("http://me:p%40ss%3Aword@proxy.local:3128")
        );
        assert!(!format!("{p:?}").contains("p@ss"));
        assert_eq!(ProxySettings::default().url().unwrap(), None);
        let orphan = ProxySettings {
            port: Some(1),
            ..Default::default()
        };
        assert!(orphan.url().is_err());
    }

    #[test]
    fn keys_replace_the_environment_chain() {
        let mut config = RunnerConfig::new("wg");
        config.env = dp_wire::Environment::from_vars([
            ("AWS_ACCESS_KEY_ID", "OLD"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("AWS_PROFILE", "p"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let config = config.with_keys("AKIDNEW", "secret");
        assert_eq!(config.env.get("AWS_ACCESS_KEY_ID"), Some("AKIDNEW"));
        assert_eq!(config.env.get("AWS_SECRET_ACCESS_KEY"), Some("secret"));
        assert_eq!(config.env.get("AWS_SESSION_TOKEN"), None);
        assert_eq!(config.env.get("AWS_PROFILE"), None);
        assert_eq!(config.env.get("AWS_REGION"), Some("eu-west-1"));
    }
}
