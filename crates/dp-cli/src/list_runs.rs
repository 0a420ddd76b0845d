//! `dp list-runs`: the AWS CLI's run listing (QueryObjects over all pages, DescribeObjects in batches of 100,
//! flattened, sorted, printed in its fixed-width layout), with the reference's crashes fixed (quirk 19): a missing
//! `@componentParent` prints empty, rows missing `@scheduledStartTime` sort first, a one-value interval is an error.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::error::CliError;
use crate::settings::GlobalSettings;

/// Statuses `--status` accepts.
pub const VALID_STATUS: &[&str] = &[
    "waiting",
    "pending",
    "cancelled",
    "running",
    "finished",
    "failed",
    "waiting_for_runner",
    "waiting_on_dependencies",
    "shutting_down",
];

/// The command's name.
pub const NAME: &str = "list-runs";

/// What `list-runs` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ListRuns {
    /// `--pipeline-id`.
    pub pipeline_id: String,
    /// `--status`, split, stripped and checked.
    pub status: Option<Vec<String>>,
    /// `--start-interval`.
    pub start_interval: Option<(String, String)>,
    /// `--schedule-interval`.
    pub schedule_interval: Option<(String, String)>,
}

fn interval(name: &str, value: Option<&str>) -> Result<Option<(String, String)>, CliError> {
    let Some(v) = value else { return Ok(None) };
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [a, b, ..] => Ok(Some((a.to_string(), b.to_string()))),
        _ => Err(CliError::usage(format!(
            "Invalid value for --{name}: {v}, expected START,END (two times separated by a comma)"
        ))),
    }
}

impl ListRuns {
    /// Checks the options as given (`--pipeline-id`, `--status`, `--start-interval`, `--schedule-interval`).
    pub fn from_options(
        pipeline_id: Option<&str>,
        status: Option<&str>,
        start_interval: Option<&str>,
        schedule_interval: Option<&str>,
    ) -> Result<ListRuns, CliError> {
        let Some(pipeline_id) = pipeline_id.map(str::to_string) else {
            return Err(CliError::argument(
                "the following arguments are required: --pipeline-id",
            ));
        };
        let status = match status {
            Some(s) => {
                let items: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
                for item in &items {
                    if !VALID_STATUS.contains(&item.as_str()) {
                        return Err(CliError::usage(format!(
                            "Invalid status: {item}, must be one of: {}",
                            VALID_STATUS.join(", ")
                        )));
                    }
                }
                Some(items)
            }
            None => None,
        };
        Ok(ListRuns {
            pipeline_id,
            status,
            start_interval: interval("start-interval", start_interval)?,
            schedule_interval: interval("schedule-interval", schedule_interval)?,
        })
    }

    /// The QueryObjects `query` the CLI builds; `now` is epoch seconds (UTC).
    pub fn query(&self, now: i64) -> Value {
        let between = |field: &str, (a, b): &(String, String)| json!({"fieldName": field, "operator": {"type": "BETWEEN", "values": [a, b]}});
        let mut selectors = Vec::new();
        if self.start_interval.is_none() && self.schedule_interval.is_none() {
            let end = dp_model::timestamp::format_utc(now);
            let start = dp_model::timestamp::format_utc(now - 4 * 86_400);
            selectors.push(between("@actualStartTime", &(start, end)));
        } else {
            if let Some(i) = &self.start_interval {
                selectors.push(between("@actualStartTime", i));
            }
            if let Some(i) = &self.schedule_interval {
                selectors.push(between("@scheduledStartTime", i));
            }
        }
        if let Some(status) = &self.status {
            let upper: Vec<String> = status.iter().map(|s| s.to_uppercase()).collect();
            selectors
                .push(json!({"fieldName": "@status", "operator": {"type": "EQ", "values": upper}}));
        }
        json!({"selectors": selectors})
    }
}

/// The current time in epoch seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Flattens DescribeObjects results to `{"@id", "name", key: value…}` and sorts them by
/// (`@scheduledStartTime`, `name`), missing values first.
pub fn convert(objects: &[Value]) -> Vec<Value> {
    let mut rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = Map::new();
            row.insert("@id".into(), o.get("id").cloned().unwrap_or(Value::Null));
            row.insert("name".into(), o.get("name").cloned().unwrap_or(Value::Null));
            for f in o
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = f
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let value = f
                    .get("stringValue")
                    .or_else(|| f.get("refValue"))
                    .cloned()
                    .unwrap_or(Value::Null);
                row.insert(key, value);
            }
            Value::Object(row)
        })
        .collect();
    let key = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    rows.sort_by(|a, b| {
        (key(a, "@scheduledStartTime"), key(a, "name"))
            .cmp(&(key(b, "@scheduledStartTime"), key(b, "name")))
    });
    rows
}

/// Python's `%-W.Ws`: left-aligned, padded and cut to `width` characters.
fn cell(value: &str, width: usize) -> String {
    let cut: String = value.chars().take(width).collect();
    let pad = width - cut.chars().count();
    format!("{cut}{}", " ".repeat(pad))
}

fn text_of(row: &Value, key: &str) -> String {
    match row.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => crate::output::pyfmt::py_str(other),
    }
}

/// The fixed-width layout the CLI prints without `--output`.
pub fn render_fixed(rows: &[Value]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "       {}  {}  {}\n",
        cell("Name", 50),
        cell("Scheduled Start", 19),
        cell("Status", 23)
    ));
    let second = format!(
        "       {}  {}  {}",
        cell("ID", 50),
        cell("Started", 19),
        cell("Ended", 19)
    );
    out.push_str(&second);
    out.push('\n');
    out.push_str(&"-".repeat(second.chars().count()));
    out.push('\n');
    for (i, row) in rows.iter().enumerate() {
        out.push_str(&format!(
            "{:>4}.  {}  {}  {}\n",
            i + 1,
            cell(&text_of(row, "@componentParent"), 50),
            cell(&text_of(row, "@scheduledStartTime"), 19),
            cell(&text_of(row, "@status"), 23)
        ));
        out.push_str(&format!(
            "       {}  {}  {}\n\n",
            cell(&text_of(row, "@id"), 50),
            cell(&text_of(row, "@actualStartTime"), 19),
            cell(&text_of(row, "@actualEndTime"), 19)
        ));
    }
    out
}

/// Runs `list-runs`: QueryObjects (all pages) for the pipeline's instances, DescribeObjects in chunks of 100, then
/// the CLI's fixed-width table (or `--output`).
pub fn run(
    settings: &GlobalSettings,
    args: &ListRuns,
    stdout: &mut String,
) -> Result<(), CliError> {
    let query_op = dp_model::operation("QueryObjects").expect("in the model");
    let describe_op = dp_model::operation("DescribeObjects").expect("in the model");
    // Like the CLI, list-runs takes only --region, --endpoint-url and --no-verify-ssl from the globals' request
    // settings; --output and --query still shape what it prints.
    let session = crate::session::Session::open(settings)?;
    let input = serde_json::json!({"pipelineId": args.pipeline_id, "sphere": "INSTANCE", "query": args.query(now())});
    let paginator = query_op.paginator.as_ref().expect("QueryObjects pages");
    let (pages, _) = crate::paginate::paginate(
        query_op,
        paginator,
        &input,
        &crate::paginate::PageOptions::default(),
        |input| session.call(query_op, input),
    )?;
    let ids: Vec<Value> = pages
        .iter()
        .filter_map(|p| p.get("ids").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    let mut objects = Vec::new();
    for chunk in ids.chunks(100) {
        let input = serde_json::json!({"pipelineId": args.pipeline_id, "objectIds": chunk});
        let result = session.call(describe_op, &input)?;
        objects.extend(
            result
                .get("pipelineObjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
    }
    let rows = Value::Array(convert(&objects));
    match &settings.output {
        Some(format) => {
            let opts = crate::session::render_options(format, settings)?;
            stdout.push_str(&crate::output::render("list-runs", &rows, &opts)?);
        }
        None => {
            let opts = crate::output::RenderOptions::new("json", settings.query.as_deref(), false)?;
            let rows = match &opts.query {
                Some(q) => q.apply(&rows)?,
                None => rows,
            };
            let list = rows.as_array().cloned().unwrap_or_default();
            stdout.push_str(&render_fixed(&list));
        }
    }
    Ok(())
}
