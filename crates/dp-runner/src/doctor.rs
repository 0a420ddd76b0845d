//! `dp-task-runner doctor`: why tasks wait for a runner. It checks, in order, the region and endpoint, where the
//! credentials come from, whether `PollForTask` is allowed (with a worker group of its own, so no real task is
//! taken), and whether any active pipeline has an activity with exactly this worker group, naming near misses.

use std::time::Duration;

use dp_model::ops;
use dp_model::types::{
    DescribePipelinesInput, GetPipelineDefinitionInput, ListPipelinesInput, PipelineObject,
    PollForTaskInput,
};

use crate::activity::string_field;
use crate::config::RunnerConfig;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but tasks may still wait (no matching activity).
    Warn,
    /// Broken: tasks cannot reach this runner.
    Fail,
}

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The verdict.
    pub verdict: Verdict,
    /// What was checked (`credentials`).
    pub topic: &'static str,
    /// What was found.
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{mark} {:<12} {}", self.topic, self.detail)
    }
}

fn check(verdict: Verdict, topic: &'static str, detail: impl Into<String>) -> Check {
    Check {
        verdict,
        topic,
        detail: detail.into(),
    }
}

/// Runs every check for `config`'s worker group. Stops early when a check makes the next ones meaningless.
pub async fn diagnose(config: &RunnerConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    let client = match config.client() {
        Ok(c) => c,
        Err(e) => {
            checks.push(check(Verdict::Fail, "client", e.to_string()));
            return checks;
        }
    };
    match client.region().await {
        Ok(region) => checks.push(check(Verdict::Ok, "region", region)),
        Err(e) => {
            checks.push(check(Verdict::Fail, "region", e.to_string()));
            return checks;
        }
    }
    match client.endpoint_url().await {
        Ok(url) => checks.push(check(Verdict::Ok, "endpoint", url)),
        Err(e) => {
            checks.push(check(Verdict::Fail, "endpoint", e.to_string()));
            return checks;
        }
    }
    match client.credential_source().await {
        Ok(source) => checks.push(check(Verdict::Ok, "credentials", source)),
        Err(e) => {
            checks.push(check(Verdict::Fail, "credentials", e.to_string()));
            return checks;
        }
    }
    checks.push(poll_allowed(config).await);
    if checks.last().is_some_and(|c| c.verdict == Verdict::Fail) {
        return checks;
    }
    checks.extend(worker_group_users(&client, &config.worker_group).await);
    checks
}

/// PollForTask with a worker group nobody uses and a short read timeout: an answer, or a long poll still open
/// when the timeout passes, both mean the call is allowed; an error answer says why not.
async fn poll_allowed(config: &RunnerConfig) -> Check {
    let mut wire = config.wire.clone();
    wire.read_timeout = Some(Duration::from_secs(3));
    let client = match dp_wire::Client::with_environment(wire, config.env.clone()) {
        Ok(c) => c.with_retry_policy(
            dp_wire::RetryPolicy::new(dp_wire::RetryMode::Standard).with_max_attempts(1),
        ),
        Err(e) => return check(Verdict::Fail, "PollForTask", e.to_string()),
    };
    let input = PollForTaskInput {
        worker_group: format!("dp-task-runner-doctor-{}", uuid::Uuid::new_v4()),
        hostname: Some(config.hostname.clone()),
        instance_identity: None,
    };
    match client.call::<ops::PollForTask>(&input).await {
        Ok(_) => check(Verdict::Ok, "PollForTask", "allowed"),
        Err(e) if e.error().service_code().is_none() && e.to_string().contains("Read timeout") => {
            check(
                Verdict::Ok,
                "PollForTask",
                "allowed (the long poll was held open)",
            )
        }
        Err(e) => check(Verdict::Fail, "PollForTask", format!("not allowed: {e}")),
    }
}

/// Which pipelines use `group`, exactly or nearly.
async fn worker_group_users(client: &dp_wire::Client, group: &str) -> Vec<Check> {
    let mut ids = Vec::new();
    let mut marker = None;
    loop {
        let input = ListPipelinesInput {
            marker: marker.clone(),
        };
        match client.call::<ops::ListPipelines>(&input).await {
            Ok(out) => {
                ids.extend(out.pipeline_id_list.into_iter().filter_map(|p| p.id));
                match out.marker {
                    Some(m) if out.has_more_results == Some(true) => marker = Some(m),
                    _ => break,
                }
            }
            Err(e) => {
                return vec![check(
                    Verdict::Fail,
                    "pipelines",
                    format!("ListPipelines: {e}"),
                )];
            }
        }
    }
    let mut exact = Vec::new();
    let mut near = Vec::new();
    let mut inactive = Vec::new();
    let mut active_count = 0;
    for chunk in ids.chunks(25) {
        let input = DescribePipelinesInput {
            pipeline_ids: chunk.to_vec(),
        };
        let described = match client.call::<ops::DescribePipelines>(&input).await {
            Ok(out) => out.pipeline_description_list,
            Err(e) => {
                return vec![check(
                    Verdict::Fail,
                    "pipelines",
                    format!("DescribePipelines: {e}"),
                )];
            }
        };
        for pipeline in described {
            let state = pipeline
                .fields
                .iter()
                .find(|f| f.key == "@pipelineState")
                .and_then(|f| f.string_value.clone())
                .unwrap_or_default();
            let active = state == "SCHEDULED";
            let version = if active { "active" } else { "latest" };
            let input = GetPipelineDefinitionInput {
                pipeline_id: pipeline.pipeline_id.clone(),
                version: Some(version.to_string()),
            };
            let Ok(definition) = client.call::<ops::GetPipelineDefinition>(&input).await else {
                continue;
            };
            if active {
                active_count += 1;
            }
            let objects = definition.pipeline_objects.unwrap_or_default();
            for (object, wg) in worker_groups(&objects) {
                let place = format!(
                    "{} ({}) object {object}",
                    pipeline.name, pipeline.pipeline_id
                );
                if wg == group {
                    if active {
                        exact.push(place);
                    } else {
                        inactive.push(format!("{place} [{state}]"));
                    }
                } else if is_near(&wg, group) {
                    near.push(format!("{place} uses {wg:?}"));
                }
            }
        }
    }
    let mut checks = Vec::new();
    if exact.is_empty() {
        let mut detail = format!(
            "no active pipeline (of {active_count} active, {} in all) has an activity with workerGroup {group:?} \
             (exact and case-sensitive)",
            ids.len()
        );
        if !inactive.is_empty() {
            detail.push_str(&format!("; not active: {}", inactive.join("; ")));
        }
        checks.push(check(Verdict::Warn, "workerGroup", detail));
    } else {
        checks.push(check(
            Verdict::Ok,
            "workerGroup",
            format!(
                "{} activit{} in active pipelines: {}",
                exact.len(),
                if exact.len() == 1 { "y" } else { "ies" },
                exact.join("; ")
            ),
        ));
    }
    if !near.is_empty() {
        checks.push(check(
            Verdict::Warn,
            "near misses",
            format!("did you mean one of these? {}", near.join("; ")),
        ));
    }
    checks
}

/// `(object id, workerGroup)` of every object that names one, with `Default`'s group inherited by objects that
/// name none.
fn worker_groups(objects: &[PipelineObject]) -> Vec<(String, String)> {
    let default_group = objects
        .iter()
        .find(|o| o.id == "Default")
        .and_then(|o| string_field(o, "workerGroup"));
    objects
        .iter()
        .filter(|o| o.id != "Default")
        .filter_map(|o| {
            let own = string_field(o, "workerGroup");
            let is_activity = string_field(o, "type").is_some_and(|t| t.ends_with("Activity"));
            own.or(if is_activity { default_group } else { None })
                .map(|g| (o.id.clone(), g.to_string()))
        })
        .collect()
}

/// Equal but for case or surrounding space, or within two edits.
fn is_near(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim()) || edit_distance(a, b) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let substitution = previous + usize::from(ca != b[j]);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        assert!(is_near("WG", "wg"));
        assert!(is_near("wg ", "wg"));
        assert!(is_near("my-workers", "my_workers"));
        assert!(is_near("workers", "worker"));
        assert!(!is_near("alpha", "omega"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
