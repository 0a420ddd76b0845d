//! Shared helpers: a client pointed at a loopback server with test credentials and no profile files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dp_wire::{Client, Environment, Settings};

pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Removes the directories that earlier runs of this test binary left behind (their process is gone); the test
/// harness has no end-of-run hook, so each run cleans up after the previous ones.
fn remove_stale_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("dp-wire-it-") else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or_default();
            if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    remove_stale_dirs();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dp-wire-it-{}-{label}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An environment with the test keys and a HOME without `.aws`, plus `extra`.
pub fn env_with(extra: &[(&str, &str)]) -> Environment {
    let home = temp_dir("home");
    let mut vars: Vec<(String, String)> = vec![
        ("HOME".into(), home.display().to_string()),
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        // Never let a test fall through to the instance metadata service (a non-loopback address).
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    Environment::from_vars(vars)
}

/// Settings for a loopback endpoint in us-east-1.
pub fn settings(url: &str) -> Settings {
    Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.to_string()),
        ..Default::default()
    }
}

/// A client for `url` with a 1 ms backoff unit, so retries do not slow the tests.
pub fn client(url: &str, extra_env: &[(&str, &str)]) -> Client {
    Client::with_environment(settings(url), env_with(extra_env))
        .unwrap()
        .with_backoff_base(Duration::from_millis(1))
}

pub fn op(name: &str) -> &'static dp_model::Operation {
    dp_model::operation(name).unwrap()
}

pub fn report_task_progress() -> serde_json::Value {
    serde_json::json!({"taskId": "task-123"})
}
