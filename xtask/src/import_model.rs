//! `cargo xtask import-model`: botocore's service model → the committed, normalized model file.
//!
//! Only structural facts are kept (operations, shapes, constraints, paginators). Documentation strings are dropped
//! on purpose: dp's help text is written in our own words, and the model file stays small and diffable.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

pub(crate) fn run(path: Option<PathBuf>) -> Result<()> {
    let dir = match path {
        Some(p) => p,
        None => botocore_model_dir()?,
    };
    let service = read_json_maybe_gz(&dir, "service-2.json")?;
    let paginators = read_json_maybe_gz(&dir, "paginators-1.json")?;
    let normalized = normalize(&service, &paginators)?;
    let mut text = serde_json::to_string_pretty(&normalized)?;
    text.push('\n');
    let out = crate::model_path();
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} (from {})", out.display(), dir.display());
    Ok(())
}

fn botocore_model_dir() -> Result<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import botocore, os; print(os.path.dirname(botocore.__file__))",
        ])
        .output()
        .context(
            "running python3 to locate botocore (pass the model directory as an argument instead)",
        )?;
    if !output.status.success() {
        bail!(
            "python3 could not import botocore: {}\npass the directory holding service-2.json(.gz) as an argument",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let root = String::from_utf8(output.stdout)?.trim().to_string();
    Ok(Path::new(&root).join("data/datapipeline/2012-10-29"))
}

fn read_json_maybe_gz(dir: &Path, name: &str) -> Result<Value> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let text = if plain.exists() {
        crate::read_to_string(&plain)?
    } else if gz.exists() {
        let file = std::fs::File::open(&gz).with_context(|| format!("opening {}", gz.display()))?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .with_context(|| format!("decompressing {}", gz.display()))?;
        text
    } else {
        bail!("neither {} nor {} exists", plain.display(), gz.display());
    };
    serde_json::from_str(&text).with_context(|| format!("parsing {name}"))
}

/// Copies the keys in `keys` from `from` to `to` when present.
fn copy_keys(from: &Map<String, Value>, to: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        if let Some(v) = from.get(*key) {
            to.insert((*key).to_string(), v.clone());
        }
    }
}

fn normalize(service: &Value, paginators: &Value) -> Result<Value> {
    let metadata = service["metadata"]
        .as_object()
        .context("model has no metadata")?;
    let mut meta = Map::new();
    copy_keys(
        metadata,
        &mut meta,
        &[
            "apiVersion",
            "endpointPrefix",
            "jsonVersion",
            "protocol",
            "serviceFullName",
            "serviceId",
            "signatureVersion",
            "targetPrefix",
        ],
    );
    let signing = metadata
        .get("signingName")
        .or_else(|| metadata.get("endpointPrefix"))
        .cloned()
        .unwrap_or(Value::Null);
    meta.insert("signingName".into(), signing);

    let mut operations = Map::new();
    let ops = service["operations"]
        .as_object()
        .context("model has no operations")?;
    let mut names: Vec<&String> = ops.keys().collect();
    names.sort();
    for name in names {
        let op = &ops[name];
        let mut out = Map::new();
        for key in ["input", "output"] {
            if let Some(shape) = op.get(key).and_then(|v| v.get("shape")) {
                out.insert(key.into(), shape.clone());
            }
        }
        let errors: Vec<Value> = op
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.get("shape").cloned()).collect())
            .unwrap_or_default();
        out.insert("errors".into(), Value::Array(errors));
        if let Some(http) = op.get("http") {
            out.insert("method".into(), http["method"].clone());
            out.insert("requestUri".into(), http["requestUri"].clone());
        }
        operations.insert(name.clone(), Value::Object(out));
    }

    let mut shapes = Map::new();
    let src_shapes = service["shapes"]
        .as_object()
        .context("model has no shapes")?;
    let mut names: Vec<&String> = src_shapes.keys().collect();
    names.sort();
    for name in names {
        let shape = src_shapes[name]
            .as_object()
            .context("shape is not an object")?;
        let mut out = Map::new();
        copy_keys(
            shape,
            &mut out,
            &[
                "type",
                "min",
                "max",
                "pattern",
                "enum",
                "exception",
                "fault",
                "document",
            ],
        );
        for key in ["member", "key", "value"] {
            if let Some(target) = shape.get(key).and_then(|v| v.get("shape")) {
                out.insert(key.into(), target.clone());
            }
        }
        if let Some(members) = shape.get("members").and_then(Value::as_object) {
            let required: Vec<&str> = shape
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // Member order is meaningful (skeletons, output order, "must be one of" lists), so members are a list.
            let list: Vec<Value> = members
                .iter()
                .map(|(member, target)| {
                    let mut m = json!({"name": member, "shape": target["shape"]});
                    if required.contains(&member.as_str()) {
                        m["required"] = Value::Bool(true);
                    }
                    m
                })
                .collect();
            out.insert("members".into(), Value::Array(list));
        }
        shapes.insert(name.clone(), Value::Object(out));
    }

    let pages = paginators["pagination"].clone();
    Ok(json!({
        "_comment": "Normalized from botocore's datapipeline 2012-10-29 model by `cargo xtask import-model`; structural facts only.",
        "metadata": meta,
        "operations": operations,
        "shapes": shapes,
        "paginators": pages,
    }))
}
