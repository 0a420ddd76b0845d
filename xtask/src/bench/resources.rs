//! `cargo xtask bench resources [RUNS]`: how long dp-local takes from an activation to the first poll of the
//! runner it launches for the activity's resource, release builds.
//!
//! Each run activates an on-demand pipeline whose one activity (`true`) `runsOn` an `Ec2Resource`; the resource
//! instance is due at activation. The clock starts when activate-pipeline has answered and stops when
//! query-objects first finds the resource `RUNNING` (its runner has polled) or already `FINISHED`. Each check is
//! one `dp` process (a few milliseconds), which bounds the resolution.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::runner::{release_binaries, start_local};

pub(super) fn run(runs: usize) -> Result<()> {
    let bin = release_binaries()?;
    let (_local, url, _console) = start_local(&bin)?;
    let dp = bin.join("dp");
    let work = std::env::temp_dir().join(format!("dp-bench-resources-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let objects = work.join("objects.json");
    std::fs::write(
        &objects,
        r#"[
  {"id": "Default", "name": "Default", "fields": [{"key": "scheduleType", "stringValue": "ondemand"}]},
  {"id": "Box", "name": "Box", "fields": [{"key": "type", "stringValue": "Ec2Resource"}]},
  {"id": "Act", "name": "Act", "fields": [
    {"key": "type", "stringValue": "ShellCommandActivity"},
    {"key": "command", "stringValue": "true"},
    {"key": "runsOn", "refValue": "Box"}]}
]"#,
    )?;
    let query = r#"{"selectors": [
        {"fieldName": "type", "operator": {"type": "EQ", "values": ["Ec2Resource"]}},
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["RUNNING", "FINISHED"]}}]}"#;
    let mut times = Vec::new();
    for i in 0..runs {
        let out = super::runner::dp(
            &dp,
            &url,
            &[
                "create-pipeline",
                "--name",
                &format!("launch-{i}"),
                "--unique-id",
                &format!("launch-{i}"),
                "--query",
                "pipelineId",
                "--output",
                "text",
            ],
        )?;
        let pipeline = out.trim().to_string();
        super::runner::dp(
            &dp,
            &url,
            &[
                "put-pipeline-definition",
                "--pipeline-id",
                &pipeline,
                "--pipeline-objects",
                &format!("file://{}", objects.display()),
            ],
        )?;
        super::runner::dp(
            &dp,
            &url,
            &["activate-pipeline", "--pipeline-id", &pipeline],
        )?;
        let start = Instant::now();
        loop {
            let found = super::runner::dp(
                &dp,
                &url,
                &[
                    "query-objects",
                    "--pipeline-id",
                    &pipeline,
                    "--sphere",
                    "INSTANCE",
                    "--objects-query",
                    query,
                    "--output",
                    "text",
                    "--query",
                    "ids",
                ],
            )?;
            if !found.trim().is_empty() && found.trim() != "None" {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the resource of run {i} was not running after 30 s");
            }
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_dir_all(&work);
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "resources: {runs} launches; activation to the runner's first poll: median {:.1} ms, p90 {:.1} ms, worst {:.1} ms (target < 200 ms)",
        at(0.5),
        at(0.9),
        at(1.0)
    );
    Ok(())
}
