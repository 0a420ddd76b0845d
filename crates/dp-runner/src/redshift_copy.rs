//! `RedshiftCopyActivity`: the records of an `S3DataNode` loaded into a `RedshiftDataNode`'s table, with the
//! service's `insertMode` (`KEEP_EXISTING`, `OVERWRITE_EXISTING`, `TRUNCATE`, `APPEND`), `createTableSql` when the
//! table is missing, `primaryKeys`, and the `commandOptions` that make sense off AWS (`DELIMITER`, `IGNOREHEADER`,
//! `GZIP`, `NULL AS`, `CSV [QUOTE AS]`, `EMPTYASNULL`).
//!
//! Locally PostgreSQL stands in for Redshift: the rows stream in with `COPY … FROM STDIN`, straight into the table
//! or through a temporary staging table for the two modes that compare primary keys, all in one transaction. This
//! module does not issue Redshift's own `COPY … FROM 's3://…'` (a real cluster endpoint is not supported yet), and
//! it ignores, with a warning in the log, the options that only tune Redshift's loader.

use dp_model::types::PipelineObject;

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext, string_field};
use crate::copy::{
    Load, Moved, Source, begin, data_failure, finish_transaction, load, node_format, node_target,
    one_ref,
};
use crate::database::{Connection, attempt_timeout, supervise};
use crate::format::Format;
use crate::objects::NodeFiles;
use crate::sql::stopped_failure;

/// The `RedshiftCopyActivity` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedshiftCopyActivity;

impl Activity for RedshiftCopyActivity {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match run(task, context).await {
                Ok(()) => Outcome::Finished,
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

/// `insertMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    KeepExisting,
    OverwriteExisting,
    Truncate,
    Append,
}

/// What `commandOptions` ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Options {
    delimiter: Option<String>,
    ignore_header: u64,
    gzip: bool,
    null_as: Option<String>,
    csv: bool,
    empty_as_null: bool,
    ignored: Vec<String>,
}

/// Parses `commandOptions` values (each may hold several options: `CSV IGNOREHEADER 1`).
fn parse_options(values: &[&str]) -> Result<Options, String> {
    let mut options = Options::default();
    let text = values.join(" ");
    let mut words = Words::new(&text);
    while let Some(word) = words.next() {
        match word.to_ascii_uppercase().as_str() {
            "DELIMITER" => options.delimiter = Some(words.quoted_after_as("DELIMITER")?),
            "IGNOREHEADER" => {
                let n = words.after_as().ok_or("IGNOREHEADER needs a number")?;
                options.ignore_header = n
                    .parse()
                    .map_err(|_| format!("IGNOREHEADER needs a number, got {n:?}"))?;
            }
            "GZIP" => options.gzip = true,
            "NULL" => options.null_as = Some(words.quoted_after_as("NULL AS")?),
            "CSV" => options.csv = true,
            "QUOTE" => {
                let quote = words.quoted_after_as("QUOTE AS")?;
                if quote != "\"" {
                    return Err(format!(
                        "QUOTE AS {quote:?}: only the double quote is supported"
                    ));
                }
            }
            "EMPTYASNULL" => options.empty_as_null = true,
            _ => options.ignored.push(word),
        }
    }
    Ok(options)
}

/// Words of an options string, with `'quoted strings'` kept whole.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Words<'a> {
        Words { rest: text }
    }

    fn next(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start();
        if self.rest.is_empty() {
            return None;
        }
        if let Some(body) = self.rest.strip_prefix('\'') {
            // A quoted string; `\'` and `''` stand for a quote.
            let mut out = String::new();
            let mut chars = body.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(match n {
                                't' => '\t',
                                'n' => '\n',
                                other => other,
                            });
                        }
                    }
                    '\'' if chars.peek().map(|&(_, n)| n) == Some('\'') => {
                        chars.next();
                        out.push('\'');
                    }
                    '\'' => {
                        self.rest = &body[i + 1..];
                        return Some(format!("'{out}"));
                    }
                    c => out.push(c),
                }
            }
            self.rest = "";
            return Some(format!("'{out}"));
        }
        let end = self
            .rest
            .find(|c: char| c.is_whitespace())
            .unwrap_or(self.rest.len());
        let word = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        Some(word)
    }

    /// The next word, skipping an `AS`.
    fn after_as(&mut self) -> Option<String> {
        let word = self.next()?;
        if word.eq_ignore_ascii_case("AS") {
            self.next()
        } else {
            Some(word)
        }
    }

    /// The quoted string after an optional `AS`.
    fn quoted_after_as(&mut self, what: &str) -> Result<String, String> {
        match self.after_as() {
            Some(q) if q.starts_with('\'') => Ok(q[1..].to_string()),
            Some(other) => Err(format!("{what} needs a quoted string, got {other}")),
            None => Err(format!("{what} needs a quoted string")),
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn run(task: &Task, context: &TaskContext) -> Result<(), Failure> {
    let invalid = |m: String| Failure::new("InvalidTaskObject", m);
    let input = one_ref(task, "input")?;
    let output = one_ref(task, "output")?;
    if string_field(input, "type") != Some("S3DataNode") {
        return Err(Failure::new(
            "UnsupportedDataNode",
            format!(
                "{} is a {:?}: dp-task-runner's RedshiftCopyActivity loads from an S3DataNode",
                input.id,
                string_field(input, "type").unwrap_or_default()
            ),
        ));
    }
    let mode = match task
        .field("insertMode")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("KEEP_EXISTING") => Mode::KeepExisting,
        Some("OVERWRITE_EXISTING") => Mode::OverwriteExisting,
        Some("TRUNCATE") => Mode::Truncate,
        Some("APPEND") => Mode::Append,
        Some(other) => {
            return Err(invalid(format!(
                "insertMode {other:?}: expected KEEP_EXISTING, OVERWRITE_EXISTING, TRUNCATE or APPEND"
            )));
        }
        None => {
            return Err(invalid(
                "RedshiftCopyActivity needs insertMode (KEEP_EXISTING, OVERWRITE_EXISTING, TRUNCATE or APPEND)"
                    .into(),
            ));
        }
    };
    let options = parse_options(&task.fields("commandOptions"))
        .map_err(|e| invalid(format!("commandOptions: {e}")))?;
    if !options.ignored.is_empty() {
        context.log().warn(
            "commandOptions that only tune Redshift's own loader are ignored here",
            &[("ignored", &options.ignored.join(" "))],
        );
    }
    let deadline = attempt_timeout(task, context)?.map(|d| tokio::time::Instant::now() + d);
    let table_name = string_field(output, "tableName")
        .or(string_field(output, "table"))
        .ok_or_else(|| invalid(format!("{} has no tableName", output.id)))?;
    let table = match string_field(output, "schemaName") {
        Some(schema) => format!("{schema}.{table_name}"),
        None => table_name.to_string(),
    };
    let target = node_target(task, output, context)?;
    if !target.engine.is_postgres() {
        return Err(Failure::new(
            "UnsupportedDatabase",
            format!(
                "RedshiftCopyActivity loads Redshift or PostgreSQL; {} is a MySQL database",
                target.object_id
            ),
        ));
    }
    let files = NodeFiles::of(input)?;
    let mut format = if options.csv {
        Format {
            column: ",".into(),
            ..Format::csv()
        }
    } else if crate::activity::ref_field(input, "dataFormat").is_some() {
        let mut f = node_format(task, input)?;
        f.quotes = false;
        f
    } else {
        // Redshift's default: pipe-delimited text with backslash escapes.
        Format {
            column: "|".into(),
            quotes: false,
            ..Format::csv()
        }
    };
    if let Some(d) = &options.delimiter {
        format.column = d.clone();
    }
    if let Some(n) = &options.null_as {
        format.null = n.clone();
    }
    format.skip_lines = options.ignore_header;
    let inputs = files
        .inputs(context.storage())
        .await
        .map_err(|e| data_failure(e.to_string()))?;
    let mut source = Source::new(inputs, format, files.gzip || options.gzip);
    if options.empty_as_null {
        source.empty_as_null = true;
    }
    let mut connection = supervise(context, deadline, None, target.connect())
        .await
        .map_err(|s| stopped_failure(task, s, "connecting"))?
        .map_err(|e| e.failure())?;
    let canceller = connection.canceller();
    let mut moved = Moved::default();
    let create_sql = string_field(output, "createTableSql");
    let keys: Vec<String> = output
        .fields
        .iter()
        .filter(|f| f.key == "primaryKeys")
        .filter_map(|f| f.string_value.clone())
        .flat_map(|v| {
            v.split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let work = async {
        begin(&mut connection).await?;
        let loaded = load_table(
            context,
            &mut connection,
            &mut source,
            &table,
            mode,
            create_sql,
            keys,
            output,
            &mut moved,
        )
        .await;
        finish_transaction(&mut connection, loaded).await
    };
    supervise(context, deadline, Some(&canceller), work)
        .await
        .map_err(|s| stopped_failure(task, s, "loading"))??;
    moved.report(context);
    context.log().info(
        "RedshiftCopyActivity finished",
        &[
            ("task", &task.task_id),
            ("table", &table),
            ("rowsCopied", &moved.rows.to_string()),
            ("bytesRead", &moved.bytes_read.to_string()),
        ],
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn load_table(
    context: &TaskContext,
    connection: &mut Connection,
    source: &mut Source,
    table: &str,
    mode: Mode,
    create_sql: Option<&str>,
    mut keys: Vec<String>,
    output: &PipelineObject,
    moved: &mut Moved,
) -> Result<(), Failure> {
    let sql_failure = |what: &str, e: crate::database::DatabaseError| {
        Failure::new("SqlError", format!("{what}: {}", e.message))
    };
    if !connection.table_exists(table).await {
        // The failed probe ended the transaction's usefulness on PostgreSQL: start again.
        let _ = connection.execute("ROLLBACK").await;
        begin(connection).await?;
        let Some(create) = create_sql else {
            return Err(Failure::new(
                "SqlError",
                format!(
                    "the table {table} does not exist and {} has no createTableSql",
                    output.id
                ),
            ));
        };
        connection
            .execute(create)
            .await
            .map_err(|e| sql_failure(&format!("createTableSql of {}", output.id), e))?;
    }
    let columns = connection
        .table_columns(table)
        .await
        .map_err(|e| sql_failure(&format!("cannot read the columns of {table}"), e))?;
    match mode {
        Mode::Append | Mode::Truncate => {
            if mode == Mode::Truncate {
                connection
                    .execute(&format!("DELETE FROM {table}"))
                    .await
                    .map_err(|e| sql_failure(&format!("emptying {table}"), e))?;
            }
            load(
                context,
                connection,
                source,
                table,
                columns.len(),
                &Load::Copy,
                moved,
            )
            .await
        }
        Mode::KeepExisting | Mode::OverwriteExisting => {
            if keys.is_empty() {
                keys = primary_key(connection, table).await?;
            }
            if keys.is_empty() {
                return Err(Failure::new(
                    "InvalidTaskObject",
                    format!(
                        "insertMode {mode:?} compares primary keys, and {table} has none: set primaryKeys on {}",
                        output.id
                    ),
                ));
            }
            let stage = "dp_runner_stage";
            connection
                .execute(&format!(
                    "CREATE TEMPORARY TABLE {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
                ))
                .await
                .map_err(|e| sql_failure("creating the staging table", e))?;
            // Loading into the staging table: errors still name the target table.
            load(
                context,
                connection,
                source,
                stage,
                columns.len(),
                &Load::Copy,
                moved,
            )
            .await
            .map_err(|mut f| {
                f.message = f.message.replace(stage, table);
                f
            })?;
            let matches = keys
                .iter()
                .map(|k| format!("t.{k} = s.{k}", k = quote_ident(k)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let statements = if mode == Mode::KeepExisting {
                vec![format!(
                    "INSERT INTO {table} SELECT s.* FROM {stage} s WHERE NOT EXISTS \
                     (SELECT 1 FROM {table} t WHERE {matches})"
                )]
            } else {
                vec![
                    format!("DELETE FROM {table} t USING {stage} s WHERE {matches}"),
                    format!("INSERT INTO {table} SELECT * FROM {stage}"),
                ]
            };
            for statement in statements {
                connection
                    .execute(&statement)
                    .await
                    .map_err(|e| sql_failure(&format!("merging into {table}"), e))?;
            }
            Ok(())
        }
    }
}

/// The primary key columns of `table`, in key order.
async fn primary_key(connection: &mut Connection, table: &str) -> Result<Vec<String>, Failure> {
    struct Names(Vec<String>);
    impl crate::database::RowSink for Names {
        type Error = std::convert::Infallible;
        async fn row(&mut self, values: &[Option<&str>]) -> Result<(), Self::Error> {
            if let Some(Some(name)) = values.first() {
                self.0.push(name.to_string());
            }
            Ok(())
        }
    }
    let query = format!(
        "SELECT a.attname FROM pg_index i \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = {}::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        connection.literal(table)
    );
    let mut names = Names(Vec::new());
    connection
        .query_text(&query, &mut names)
        .await
        .map_err(|e| match e {
            crate::database::QueryError::Database(e) => Failure::new(
                "SqlError",
                format!("cannot read the primary key of {table}: {}", e.message),
            ),
            crate::database::QueryError::Sink(never) => match never {},
        })?;
    Ok(names.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_options() {
        let parsed = parse_options(&[
            "DELIMITER AS ','",
            "IGNOREHEADER 1 GZIP",
            "NULL AS 'n/a'",
            "CSV QUOTE AS '\"'",
            "TIMEFORMAT 'auto' COMPUPDATE OFF",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            Options {
                delimiter: Some(",".into()),
                ignore_header: 1,
                gzip: true,
                null_as: Some("n/a".into()),
                csv: true,
                empty_as_null: false,
                ignored: vec![
                    "TIMEFORMAT".into(),
                    "'auto".into(),
                    "COMPUPDATE".into(),
                    "OFF".into()
                ],
            }
        );
        assert_eq!(
            parse_options(&["DELIMITER '\\t'"])
                .unwrap()
                .delimiter
                .as_deref(),
            Some("\t")
        );
        assert!(
            parse_options(&["IGNOREHEADER x"])
                .unwrap_err()
                .contains("number")
        );
        assert!(
            parse_options(&["DELIMITER"])
                .unwrap_err()
                .contains("quoted")
        );
    }
}
