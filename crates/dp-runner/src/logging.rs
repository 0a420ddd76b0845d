//! The runner's own log: one line per event, as text or JSON lines, to `OUTPUT/logs/dp-task-runner.log` and to
//! stderr, with every secret replaced by `****` before the line is written. [`RunnerLog::rotate`] closes the file
//! under a name that carries the time (`dp-task-runner.2026-12-03T01-00-00.000Z.log`, so names sort by age) and
//! starts a new one; [`RunnerLog::prune`] keeps the newest closed files.
//!
//! Secrets are the access key id, secret key and session token the runner was given, and the values of the
//! `*`-fields of every task it holds (Data Pipeline's marker for secret fields such as `*password`). Redaction is
//! by value, so a secret that reaches a message by any path (an evaluated command line, an error text) is still
//! hidden. This module never logs a child's output: that goes to the attempt's `StdOutput`/`StdError`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The format of the runner log (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-12-02T21:00:00.123Z INFO message key=value`.
    #[default]
    Text,
    /// One JSON object per line: `{"time":…,"level":…,"message":…,…}`.
    Json,
}

/// The level of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something went wrong and was handled (a retried call).
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// The runner log. Cheap to clone; all clones write to the same file.
#[derive(Clone)]
pub struct RunnerLog {
    inner: Arc<Inner>,
}

struct Inner {
    format: LogFormat,
    file: Mutex<Option<File>>,
    path: Option<PathBuf>,
    stderr: bool,
    secrets: Mutex<Vec<String>>,
}

impl RunnerLog {
    /// A log appending to `path` (its directory is created), and echoing to stderr when `stderr` is set.
    pub fn open(path: &Path, format: LogFormat, stderr: bool) -> std::io::Result<RunnerLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RunnerLog {
            inner: Arc::new(Inner {
                format,
                file: Mutex::new(Some(file)),
                path: Some(path.to_path_buf()),
                stderr,
                secrets: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A log that writes only to stderr (or nowhere).
    pub fn stderr_only(format: LogFormat, stderr: bool) -> RunnerLog {
        RunnerLog {
            inner: Arc::new(Inner {
                format,
                file: Mutex::new(None),
                path: None,
                stderr,
                secrets: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The log file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Closes the current file under a name holding the UTC time (`dp-task-runner.<time>.log`, beside it) and
    /// starts a new, empty one; lines written meanwhile wait, so none is lost or split. Returns the closed file's
    /// path, or `None` when there is no file or nothing was written since the last rotation.
    pub fn rotate(&self) -> std::io::Result<Option<PathBuf>> {
        let Some(path) = &self.inner.path else {
            return Ok(None);
        };
        let mut file = self.inner.file.lock().unwrap_or_else(|e| e.into_inner());
        if std::fs::metadata(path)?.len() == 0 {
            return Ok(None);
        }
        let stamp = format_time(SystemTime::now()).replace(':', "-");
        let rotated = path.with_file_name(format!("{}.{stamp}.{}", stem(path), extension(path)));
        std::fs::rename(path, &rotated)?;
        *file = Some(OpenOptions::new().create(true).append(true).open(path)?);
        Ok(Some(rotated))
    }

    /// Deletes the oldest closed files beyond the newest `keep` (zero keeps all). Returns how many were deleted.
    pub fn prune(&self, keep: usize) -> std::io::Result<usize> {
        let Some(path) = &self.inner.path else {
            return Ok(0);
        };
        if keep == 0 {
            return Ok(0);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let (prefix, suffix) = (format!("{}.", stem(path)), format!(".{}", extension(path)));
        let mut closed: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p != path)
            .filter(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
            })
            .collect();
        closed.sort();
        let excess = closed.len().saturating_sub(keep);
        for old in &closed[..excess] {
            std::fs::remove_file(old)?;
        }
        Ok(excess)
    }

    /// Adds values that must never be written (empty and very short values are ignored: they would blank out
    /// ordinary words).
    pub fn add_secrets<I, S>(&self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets = self.inner.secrets.lock().unwrap_or_else(|e| e.into_inner());
        for value in values {
            let value = value.into();
            if value.chars().count() >= 4 && !secrets.contains(&value) {
                secrets.push(value);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every known secret replaced by `****`.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.inner.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "****");
            }
        }
        out
    }

    /// Writes one line. `fields` are extra key/value pairs (task id, pipeline, attempt …).
    pub fn write(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let time = format_time(SystemTime::now());
        let line = match self.inner.format {
            LogFormat::Text => {
                let mut line = format!("{time} {} {message}", level.as_str());
                for (k, v) in fields {
                    if v.contains(' ') || v.is_empty() {
                        line.push_str(&format!(" {k}={v:?}"));
                    } else {
                        line.push_str(&format!(" {k}={v}"));
                    }
                }
                line
            }
            LogFormat::Json => {
                let mut object = serde_json::Map::new();
                object.insert("time".into(), time.into());
                object.insert("level".into(), level.as_str().into());
                object.insert("message".into(), message.into());
                for (k, v) in fields {
                    object.insert((*k).to_string(), (*v).into());
                }
                serde_json::Value::Object(object).to_string()
            }
        };
        let line = self.redact(&line);
        if let Some(file) = self
            .inner
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let _ = writeln!(file, "{line}");
        }
        if self.inner.stderr {
            eprintln!("{line}");
        }
    }

    /// An `INFO` line.
    pub fn info(&self, message: &str, fields: &[(&str, &str)]) {
        self.write(Level::Info, message, fields)
    }

    /// A `WARN` line.
    pub fn warn(&self, message: &str, fields: &[(&str, &str)]) {
        self.write(Level::Warn, message, fields)
    }

    /// An `ERROR` line.
    pub fn error(&self, message: &str, fields: &[(&str, &str)]) {
        self.write(Level::Error, message, fields)
    }
}

impl std::fmt::Debug for RunnerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerLog")
            .field("path", &self.inner.path)
            .field("format", &self.inner.format)
            .finish_non_exhaustive()
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "log".into())
}

/// `2026-12-02T21:00:00.123Z` (UTC, milliseconds).
pub fn format_time(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:03}Z",
        dp_model::timestamp::format_utc(since.as_secs() as i64),
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_764_709_200_123);
        assert_eq!(format_time(t), "2025-12-02T21:00:00.123Z");
        assert_eq!(
            format_time(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn rotation_closes_the_file_and_pruning_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("dp-runner-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = RunnerLog::open(&dir.join("dp-task-runner.log"), LogFormat::Text, false).unwrap();
        assert_eq!(log.rotate().unwrap(), None, "an empty file is not rotated");
        let mut closed = Vec::new();
        for i in 0..4 {
            log.info(&format!("line {i}"), &[]);
            let rotated = log
                .rotate()
                .unwrap()
                .expect("a file with a line is rotated");
            let name = rotated.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("dp-task-runner.") && name.ends_with("Z.log"),
                "{name}"
            );
            let text = std::fs::read_to_string(&rotated).unwrap();
            assert!(text.ends_with(&format!("INFO line {i}\n")), "{text}");
            assert_eq!(text.lines().count(), 1);
            closed.push(rotated);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        log.info("after", &[]);
        let current = std::fs::read_to_string(dir.join("dp-task-runner.log")).unwrap();
        assert!(current.ends_with("INFO after\n") && current.lines().count() == 1);
        assert_eq!(log.prune(2).unwrap(), 2);
        assert!(!closed[0].exists() && !closed[1].exists());
        assert!(closed[2].exists() && closed[3].exists());
        assert!(dir.join("dp-task-runner.log").exists());
        assert_eq!(log.prune(0).unwrap(), 0, "zero keeps all");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn redaction_replaces_every_secret_longest_first() {
        let log = RunnerLog::stderr_only(LogFormat::Text, false);
        log.add_secrets(["hunter2-secret", "hunter2", "ab"]);
        assert_eq!(
            log.redact("pw=hunter2-secret and hunter2, ab stays"),
            "pw=**** and ****, ab stays"
        );
    }
}
