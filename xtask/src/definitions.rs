//! `cargo xtask run-definitions DIR [SECONDS]`: every pipeline definition file below DIR (a JSON file with an
//! `"objects"` list), submitted to a fresh dp-local the way the AWS samples' READMEs submit theirs, and its first
//! run followed to its end; one line per file, then the counts.
//!
//! Each file goes through `dp create-pipeline`, `dp put-pipeline-definition --pipeline-definition file://…` with
//! `--parameter-values` for every parameter the file declares or references without a default (a placeholder of
//! the declared type: `s3://dp-definitions/NAME` for S3 keys, `1` for numbers, `x` otherwise, the first of
//! `allowedValues`), or `--parameter-objects`/`--parameter-values-uri` when `parameters.json` and `values.json`
//! stand beside it, then `dp activate-pipeline`. dp-local runs at a time scale of 600, with resources launched
//! locally and the environment's S3 and DynamoDB endpoints (`AWS_ENDPOINT_URL_S3`…) passed on. A file is "ended"
//! when every activity's first instance has reached a terminal status within SECONDS (default 60); the task fails
//! if an accepted definition did not end.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::demo::EXAMPLE_ENVIRONMENT;

const TERMINAL: &[&str] = &[
    "FINISHED",
    "FAILED",
    "TIMEDOUT",
    "CANCELED",
    "CASCADE_FAILED",
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(dir) = args.first() else {
        bail!("usage: cargo xtask run-definitions DIR [SECONDS]");
    };
    let wait = match args.get(1) {
        Some(s) => Duration::from_secs(s.parse().context("SECONDS must be a whole number")?),
        None => Duration::from_secs(60),
    };
    let mut files = Vec::new();
    collect(Path::new(dir), &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no definition files (JSON with an \"objects\" list) below {dir}");
    }
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "-p",
            "dp-cli",
            "-p",
            "dp-local",
            "-p",
            "dp-runner",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("building dp, dp-local and dp-task-runner failed");
    }
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), Into::into)
        .join("debug");
    let mut local = Command::new(bin.join("dp-local"))
        .args(["--port", "0", "--time-scale", "600", "--no-console"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dp-local")?;
    let mut url = String::new();
    BufReader::new(local.stdout.take().context("no stdout")?).read_line(&mut url)?;
    let local = Stopped(local);
    let url = url.trim().to_string();
    let dp = |args: &[&str]| -> Result<(bool, String)> {
        let out = Command::new(bin.join("dp"))
            .args(args)
            .args(["--endpoint-url", &url])
            .envs(EXAMPLE_ENVIRONMENT)
            .output()
            .context("running dp")?;
        let text = if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        };
        Ok((out.status.success(), text))
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut not_ended = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let shown = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let name = format!("definition-{n}");
        let (_, created) = dp(&["create-pipeline", "--name", &name, "--unique-id", &name])?;
        let pipeline = serde_json::from_str::<Value>(&created)?["pipelineId"]
            .as_str()
            .context("no pipelineId")?
            .to_string();
        let mut put = vec![
            "put-pipeline-definition".to_string(),
            "--pipeline-id".into(),
            pipeline.clone(),
            "--pipeline-definition".into(),
            format!("file://{}", file.display()),
        ];
        put.extend(parameters(file)?);
        let put: Vec<&str> = put.iter().map(String::as_str).collect();
        let (ok, answer) = dp(&put)?;
        if !ok {
            println!(
                "{shown}: refused by the command line: {}",
                one_line(&answer)
            );
            *counts.entry("refused").or_default() += 1;
            continue;
        }
        let answer: Value = serde_json::from_str(&answer)?;
        if answer["errored"] == true {
            println!(
                "{shown}: refused: {}",
                one_line(&answer["validationErrors"].to_string())
            );
            *counts.entry("refused").or_default() += 1;
            continue;
        }
        let (ok, why) = dp(&["activate-pipeline", "--pipeline-id", &pipeline])?;
        if !ok {
            println!("{shown}: not activated: {}", one_line(&why));
            *counts.entry("not activated").or_default() += 1;
            not_ended.push(shown);
            continue;
        }
        let deadline = Instant::now() + wait;
        let outcome = loop {
            let firsts = first_runs(&dp, &pipeline)?;
            let ended =
                !firsts.is_empty() && firsts.values().all(|(s, _)| TERMINAL.contains(&s.as_str()));
            if ended || Instant::now() > deadline {
                break (ended, firsts);
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        let detail: Vec<String> = outcome
            .1
            .iter()
            .map(|(activity, (status, error))| match error {
                Some(e) => format!("{activity} {status} ({e})"),
                None => format!("{activity} {status}"),
            })
            .collect();
        let what = if outcome.0 { "ended" } else { "NOT ENDED" };
        println!("{shown}: {what}: {}", detail.join("; "));
        *counts
            .entry(if outcome.0 { "ended" } else { "not ended" })
            .or_default() += 1;
        if !outcome.0 {
            not_ended.push(shown);
        }
        dp(&["deactivate-pipeline", "--pipeline-id", &pipeline])?;
    }
    drop(local);
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!("{} files: {}", files.len(), summary.join(", "));
    if !not_ended.is_empty() {
        bail!("accepted but not ended: {}", not_ended.join(", "));
    }
    Ok(())
}

/// dp-local, stopped with SIGTERM (so that it stops the runners it launched) when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json")
            && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"objects\""))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The parameter options a README would give: placeholders for every parameter without a value.
fn parameters(file: &Path) -> Result<Vec<String>> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let (objects, values) = (dir.join("parameters.json"), dir.join("values.json"));
    if objects.is_file() && values.is_file() {
        let declared: Value = serde_json::from_str(&std::fs::read_to_string(&objects)?)?;
        let mut given: Value = serde_json::from_str(&std::fs::read_to_string(&values)?)?;
        if let Some(map) = given["values"].as_object_mut() {
            for (id, value) in map.iter_mut() {
                if value == "" {
                    let kind = declared["parameters"]
                        .as_array()
                        .and_then(|ps| ps.iter().find(|p| p["id"] == id.as_str()))
                        .and_then(|p| p["type"].as_str())
                        .unwrap_or("String");
                    *value = json!(placeholder(id, kind));
                }
            }
        }
        let filled = std::env::temp_dir().join(format!("dp-values-{}.json", std::process::id()));
        std::fs::write(&filled, given.to_string())?;
        return Ok(vec![
            "--parameter-objects".into(),
            format!("file://{}", objects.display()),
            "--parameter-values-uri".into(),
            format!("file://{}", filled.display()),
        ]);
    }
    let text = std::fs::read_to_string(file)?;
    let Ok(definition) = serde_json::from_str::<Value>(&text) else {
        // Not JSON that parses: the command line will say where.
        return Ok(Vec::new());
    };
    let mut needed: BTreeMap<String, String> = BTreeMap::new();
    let mut declared = std::collections::HashSet::new();
    for p in definition["parameters"].as_array().into_iter().flatten() {
        let id = p["id"].as_str().unwrap_or_default().to_string();
        declared.insert(id.trim_start_matches('*').to_string());
        if p.get("default").is_some() || definition["values"].get(&id).is_some() {
            continue;
        }
        let value = match &p["allowedValues"] {
            Value::String(s) => s.split(',').next().unwrap_or_default().trim().to_string(),
            Value::Array(a) => a
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => placeholder(&id, p["type"].as_str().unwrap_or("String")),
        };
        needed.insert(id, value);
    }
    // References to parameters that are only given values (the samples' READMEs do that).
    let mut rest = text.as_str();
    while let Some(start) = rest.find("#{") {
        let body = &rest[start + 2..];
        let end = body.find('}').unwrap_or(body.len());
        let name = body[..end].trim().trim_start_matches('*');
        if name.starts_with("my")
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !declared.contains(name)
            && !needed.contains_key(name)
        {
            needed.insert(name.to_string(), placeholder(name, "AWS::S3::ObjectKey"));
        }
        rest = &body[end.min(body.len())..];
    }
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec!["--parameter-values".to_string()];
    out.extend(needed.into_iter().map(|(k, v)| format!("{k}={v}")));
    Ok(out)
}

fn placeholder(id: &str, kind: &str) -> String {
    match kind {
        "Integer" | "Double" => "1".into(),
        "AWS::S3::ObjectKey" => format!("s3://dp-definitions/{}", id.trim_start_matches('*')),
        _ => "x".into(),
    }
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(240).collect()
}

/// Runs `dp ARGS` against the endpoint: whether it succeeded, and its stdout (or stderr when it failed).
type DpCall<'a> = dyn Fn(&[&str]) -> Result<(bool, String)> + 'a;

/// Each activity's first instance: its status and errorId.
fn first_runs(
    dp: &DpCall<'_>,
    pipeline: &str,
) -> Result<BTreeMap<String, (String, Option<String>)>> {
    let (_, ids) = dp(&[
        "query-objects",
        "--pipeline-id",
        pipeline,
        "--sphere",
        "INSTANCE",
    ])?;
    let ids: Vec<String> = serde_json::from_str::<Value>(&ids)?["ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut firsts: BTreeMap<String, (String, String, Option<String>)> = BTreeMap::new();
    for chunk in ids.chunks(25) {
        let mut args = vec![
            "describe-objects",
            "--pipeline-id",
            pipeline,
            "--object-ids",
        ];
        args.extend(chunk.iter().map(String::as_str));
        let (_, described) = dp(&args)?;
        let described: Value = serde_json::from_str(&described)?;
        for o in described["pipelineObjects"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let get = |key: &str| {
                o["fields"].as_array().into_iter().flatten().find_map(|f| {
                    (f["key"] == key).then(|| {
                        f["stringValue"]
                            .as_str()
                            .or(f["refValue"].as_str())
                            .unwrap_or_default()
                            .to_string()
                    })
                })
            };
            if !get("type").is_some_and(|t| t.ends_with("Activity")) {
                continue;
            }
            let (Some(component), Some(start), Some(status)) = (
                get("@componentParent"),
                get("@scheduledStartTime"),
                get("@status"),
            ) else {
                continue;
            };
            let earlier = firsts.get(&component).is_some_and(|(s, _, _)| *s <= start);
            if !earlier {
                firsts.insert(component, (start, status, get("errorId")));
            }
        }
    }
    Ok(firsts
        .into_iter()
        .map(|(c, (_, s, e))| (c, (s, e)))
        .collect())
}
