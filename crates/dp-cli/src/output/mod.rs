//! Rendering of results in the CLI's output formats (`json`, `text`, `table`, `yaml`, `yaml-stream`, `off`)
//! and `--query`, byte-identical to the AWS CLI.
//!
//! Everything here is a pure function from `serde_json::Value` (with `preserve_order`: object keys keep the
//! order the response gave) to the exact text to print. It must not do IO, look at the terminal or know
//! about HTTP or pagination mechanics: the caller passes the terminal width, whether to colour, and for
//! paginated operations the pages it fetched (see [`render_pages`]).
//!
//! Deliberate differences from AWS CLI v1 (the README's quirks table): no stray `None` after the `NEXTTOKEN` line with
//! `--output text --query` (quirk 16), and clean colour sequences without colorama's extra `ESC[0m`
//! (quirk 22). `yaml`, `yaml-stream` and `off` follow v2.
//!
//! Known limits: integers beyond the u64/i64 range arrive as floats (serde_json without
//! `arbitrary_precision`), where Python keeps them exact; a JMESPath expression reference evaluated outside a
//! function argument is an error here, where jmespath.py hands an object to the formatter (which then fails
//! for JSON, and prints its memory address in text).

mod error;
pub mod pyfmt;
pub mod query;
mod table;
mod text;
pub mod width;
mod yaml;

pub use error::RenderError;
pub use query::{Query, QueryError, QueryErrorKind};

use serde_json::{Map, Value};
use std::fmt;

/// An output format, as named by `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `json` (the default): `json.dumps(indent=4, ensure_ascii=False)`.
    Json,
    /// `text`: tab-separated lines.
    Text,
    /// `table`: boxed tables.
    Table,
    /// `yaml` (v2): block YAML, keys sorted.
    Yaml,
    /// `yaml-stream` (v2): one YAML list item per page.
    YamlStream,
    /// `off` (v2): nothing.
    Off,
}

impl Format {
    /// Every format with its `--output` name.
    pub const ALL: [(Format, &'static str); 6] = [
        (Format::Json, "json"),
        (Format::Text, "text"),
        (Format::Table, "table"),
        (Format::Yaml, "yaml"),
        (Format::YamlStream, "yaml-stream"),
        (Format::Off, "off"),
    ];

    /// The format named `name` (`json`, `text`, `table`, `yaml`, `yaml-stream`, `off`).
    pub fn from_name(name: &str) -> Option<Format> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// The `--output` name of the format.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("json")
    }
}

/// How to render a result.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// The output format.
    pub format: Format,
    /// The compiled `--query`, if any.
    pub query: Option<Query>,
    /// Colour table rows and borders (`--color on`, or `auto` on a terminal). Only tables are coloured.
    pub color: bool,
    /// The terminal width for the table's vertical switch: 80 when stdout is not a terminal.
    pub terminal_width: usize,
}

impl RenderOptions {
    /// Options from the CLI's settings: the `--output` name, the `--query` text and whether to colour.
    /// The terminal width starts at 80 (stdout not a terminal); set `terminal_width` when it is one.
    ///
    /// A bad query fails with the reference's `Bad value for --query EXPR: …` message.
    pub fn new(
        format: &str,
        query: Option<&str>,
        color: bool,
    ) -> Result<RenderOptions, OptionsError> {
        let format =
            Format::from_name(format).ok_or_else(|| OptionsError::Format(format.to_string()))?;
        let query = match query {
            Some(expression) => {
                Some(
                    Query::compile(expression).map_err(|error| OptionsError::Query {
                        expression: expression.to_string(),
                        error,
                    })?,
                )
            }
            None => None,
        };
        Ok(RenderOptions {
            format,
            query,
            color,
            terminal_width: 80,
        })
    }

    /// Options for `format` with no query, no colour and an 80-column terminal.
    pub fn plain(format: Format) -> RenderOptions {
        RenderOptions {
            format,
            query: None,
            color: false,
            terminal_width: 80,
        }
    }
}

/// Why [`RenderOptions::new`] refused its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsError {
    /// Not one of `json`, `text`, `table`, `yaml`, `yaml-stream`, `off`.
    Format(String),
    /// `--query` does not compile.
    Query {
        /// The expression as given.
        expression: String,
        /// The JMESPath syntax error.
        error: QueryError,
    },
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::Format(name) => write!(f, "Unknown output type: {name}"),
            OptionsError::Query { expression, error } => {
                f.write_str(&error.bad_value_message(expression))
            }
        }
    }
}

impl std::error::Error for OptionsError {}

fn apply_query(result: &Value, opts: &RenderOptions) -> Result<Value, RenderError> {
    match &opts.query {
        Some(q) => Ok(q.apply(result)?),
        None => Ok(result.clone()),
    }
}

/// Renders a whole result (for a paginated operation: the merged result) in `opts.format`.
///
/// `operation` is the API name, e.g. `ReportTaskProgress`: the table's title. `result` has no
/// `ResponseMetadata`. The returned text is exactly what goes to stdout (often ending in `\n`, possibly empty).
pub fn render(
    operation: &str,
    result: &Value,
    opts: &RenderOptions,
) -> Result<String, RenderError> {
    if opts.format == Format::Off {
        return Ok(String::new());
    }
    let value = apply_query(result, opts)?;
    render_value(operation, &value, opts)
}

/// Renders an already-queried value.
fn render_value(
    operation: &str,
    value: &Value,
    opts: &RenderOptions,
) -> Result<String, RenderError> {
    match opts.format {
        Format::Off => Ok(String::new()),
        Format::Json => {
            if is_empty_object(value) {
                return Ok(String::new());
            }
            let mut out = pyfmt::json_pretty(value);
            out.push('\n');
            Ok(out)
        }
        Format::Text => {
            let mut out = String::new();
            text::format_text(value, &mut out)?;
            Ok(out)
        }
        Format::Table => table::format_table(operation, value, opts.terminal_width, opts.color),
        Format::Yaml => Ok(yaml_document(value)),
        Format::YamlStream => Ok(yaml::dump(&Value::Array(vec![value.clone()]))),
    }
}

fn is_empty_object(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty())
}

/// v2's `YAMLFormatter`: `{}` prints nothing; a bare scalar prints as JSON (avoiding YAML's `...` line).
fn yaml_document(value: &Value) -> String {
    match value {
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Object(_) | Value::Array(_) => yaml::dump(value),
        scalar => {
            let mut out = pyfmt::json_pretty(scalar);
            out.push('\n');
            out
        }
    }
}

/// Renders a paginated operation's output from the pages the paginator produced.
///
/// `result_key` is the paginator's result key (`pipelineIdList`); `pages` are the responses in order, each
/// already cut to `--max-items` where that applies and without `ResponseMetadata`; `resume_token` is set
/// when `--max-items` truncated the output.
///
/// * `text`: page by page; each page is reduced to its result key (so `marker` and `hasMoreResults` never
///   print) and queried on its own, as v1 does. When truncated, a final `NEXTTOKEN\t<token>` line follows;
///   unlike v1 it is never passed through the query, so no stray `None` line appears (quirk 16, fixed).
/// * `yaml-stream`: each whole page (queried on its own) as one YAML list item, as v2 does; the resume
///   token is not printed (botocore records it on the paginator, not in a page).
/// * `off`: nothing.
/// * `json`, `table`, `yaml`: the pages merged as botocore's `build_full_result` does (result lists
///   concatenated, other keys dropped, `NextToken` added when truncated), then [`render`].
pub fn render_pages(
    operation: &str,
    result_key: &str,
    pages: &[Value],
    resume_token: Option<&str>,
    opts: &RenderOptions,
) -> Result<String, RenderError> {
    match opts.format {
        Format::Text => {
            let mut out = String::new();
            for page in pages {
                let mut current = Map::new();
                let data = page.get(result_key).cloned().unwrap_or(Value::Null);
                current.insert(result_key.to_string(), data);
                let value = apply_query(&Value::Object(current), opts)?;
                text::format_text(&value, &mut out)?;
            }
            if let Some(token) = resume_token {
                let mut inner = Map::new();
                inner.insert("NextToken".to_string(), Value::String(token.to_string()));
                let mut outer = Map::new();
                outer.insert("NextToken".to_string(), Value::Object(inner));
                text::format_text(&Value::Object(outer), &mut out)?;
            }
            Ok(out)
        }
        Format::YamlStream => {
            let mut out = String::new();
            for page in pages {
                let value = apply_query(page, opts)?;
                out.push_str(&yaml::dump(&Value::Array(vec![value])));
            }
            Ok(out)
        }
        Format::Off => Ok(String::new()),
        Format::Json | Format::Table | Format::Yaml => {
            let mut items = Vec::new();
            for page in pages {
                match page.get(result_key) {
                    Some(Value::Array(list)) => items.extend(list.iter().cloned()),
                    Some(Value::Null) | None => {}
                    Some(other) => items.push(other.clone()),
                }
            }
            let mut merged = Map::new();
            merged.insert(result_key.to_string(), Value::Array(items));
            if let Some(token) = resume_token {
                merged.insert("NextToken".to_string(), Value::String(token.to_string()));
            }
            render(operation, &Value::Object(merged), opts)
        }
    }
}
