//! `RedshiftCopyActivity`: the records of an `S3DataNode` or the items of a `DynamoDBDataNode` loaded into a
//! `RedshiftDataNode`'s table, with the service's `insertMode` (`KEEP_EXISTING`, `OVERWRITE_EXISTING`, `TRUNCATE`,
//! `APPEND`), `createTableSql` when the table is missing, `primaryKeys`, and the `commandOptions` that make sense off
//! AWS (`DELIMITER`, `IGNOREHEADER`, `GZIP`, `NULL AS`, `CSV [QUOTE AS]`, `EMPTYASNULL`).
//!
//! Locally PostgreSQL stands in for Redshift: the rows stream in with `COPY … FROM STDIN` (S3 records read and
//! parsed here, DynamoDB items scanned page by page with their attributes matched to the table's columns by name),
//! straight into the table or through a temporary staging table for the two modes that compare primary keys, all in
//! one transaction. Against a real Redshift endpoint (a host under `.redshift.amazonaws.com`, or any
//! `jdbc:redshift://` database with `--redshift-copy=server`) the same statements run around Redshift's own
//! `COPY table FROM 's3://…'` (or `'dynamodb://…'`) with the runner's credentials, the `commandOptions` passed as
//! written, and the cluster reading the data itself. The streamed path ignores, with a warning in the log, the
//! options that only tune Redshift's loader.

use dp_model::types::PipelineObject;

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext, string_field};
use crate::copy::{
    Load, Moved, Source, begin, data_failure, finish_transaction, load, node_format, node_target,
    one_ref,
};
use crate::database::{
    Connection, DatabaseError, Engine, Target, attempt_timeout, quote_literal, supervise,
};
use crate::format::{Format, write_copy_text};
use crate::objects::{NodeFiles, NodeLocation};
use crate::sql::stopped_failure;

/// The `RedshiftCopyActivity` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedshiftCopyActivity {
    path: CopyPath,
}

impl RedshiftCopyActivity {
    /// The activity, with `--redshift-copy`'s choice of how rows go in.
    pub fn new(path: CopyPath) -> RedshiftCopyActivity {
        RedshiftCopyActivity { path }
    }
}

/// How the rows go into the table (`--redshift-copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyPath {
    /// Redshift's own `COPY … FROM 's3://…'` when the database's host is a Redshift endpoint
    /// (`*.redshift.amazonaws.com`, `*.redshift-serverless.amazonaws.com`); streamed through `COPY … FROM STDIN`
    /// otherwise (PostgreSQL standing in).
    #[default]
    Auto,
    /// Redshift's own `COPY` also for every `jdbc:redshift://` database, whatever its host (a cluster behind a
    /// tunnel or a private name).
    Server,
}

impl CopyPath {
    /// Parses `auto` or `server`.
    pub fn parse(text: &str) -> Result<CopyPath, String> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(CopyPath::Auto),
            "server" => Ok(CopyPath::Server),
            other => Err(format!("expected auto or server, got {other:?}")),
        }
    }
}

/// Whether `target` gets Redshift's own `COPY … FROM 's3://…'` rather than streamed rows.
pub fn server_copy(target: &Target, path: CopyPath) -> bool {
    let host = target.host.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    let endpoint = [
        ".redshift.amazonaws.com",
        ".redshift.amazonaws.com.cn",
        ".redshift-serverless.amazonaws.com",
    ]
    .iter()
    .any(|suffix| host.ends_with(suffix));
    target.engine.is_postgres()
        && (endpoint || (path == CopyPath::Server && target.engine == Engine::Redshift))
}

impl Activity for RedshiftCopyActivity {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match run(task, context, self.path).await {
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

/// Where the rows come from.
enum Input {
    /// The records of an `S3DataNode`'s files, parsed here.
    Files(Box<Source>),
    /// The items of a DynamoDB table, scanned here.
    DynamoDb(String),
    /// Redshift reads the data itself: the `FROM …` and options of its `COPY` (without the table).
    Server(ServerCopy),
}

async fn run(task: &Task, context: &TaskContext, path: CopyPath) -> Result<(), Failure> {
    let invalid = |m: String| Failure::new("InvalidTaskObject", m);
    let input = one_ref(task, "input")?;
    let output = one_ref(task, "output")?;
    let input_type = string_field(input, "type").unwrap_or_default();
    if input_type != "S3DataNode" && input_type != "DynamoDBDataNode" {
        return Err(Failure::new(
            "UnsupportedDataNode",
            format!(
                "{} is a {input_type:?}: dp-task-runner's RedshiftCopyActivity loads from an S3DataNode or a \
                 DynamoDBDataNode",
                input.id,
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
    let command_options = task.fields("commandOptions");
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
    let server = server_copy(&target, path);
    // Redshift reads commandOptions itself; the streamed path understands some of them.
    let options = if server {
        Options::default()
    } else {
        parse_options(&command_options).map_err(|e| invalid(format!("commandOptions: {e}")))?
    };
    let mut source = if server {
        let credentials = if has_authorization(&command_options) {
            None
        } else {
            Some(runner_credentials(context).await?)
        };
        Input::Server(ServerCopy::of(task, input, &command_options, credentials)?)
    } else if input_type == "DynamoDBDataNode" {
        let name = string_field(input, "tableName")
            .ok_or_else(|| invalid(format!("{} has no tableName", input.id)))?;
        Input::DynamoDb(name.to_string())
    } else {
        Input::Files(Box::new(s3_source(task, context, input, &options).await?))
    };
    if !server && !options.ignored.is_empty() {
        context.log().warn(
            "commandOptions that only tune Redshift's own loader are ignored here",
            &[("ignored", &options.ignored.join(" "))],
        );
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
            ("path", if server { "Redshift COPY" } else { "streamed" }),
            ("rowsCopied", &moved.rows.to_string()),
            ("bytesRead", &moved.bytes_read.to_string()),
        ],
    );
    Ok(())
}

/// The records of an `S3DataNode` as the options and its `dataFormat` say.
async fn s3_source(
    task: &Task,
    context: &TaskContext,
    input: &PipelineObject,
    options: &Options,
) -> Result<Source, Failure> {
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
    source.empty_as_null = options.empty_as_null;
    Ok(source)
}

/// The name of the staging table of the modes that compare primary keys.
const STAGE: &str = "dp_runner_stage";

#[allow(clippy::too_many_arguments)]
async fn load_table(
    context: &TaskContext,
    connection: &mut Connection,
    source: &mut Input,
    table: &str,
    mode: Mode,
    create_sql: Option<&str>,
    mut keys: Vec<String>,
    output: &PipelineObject,
    moved: &mut Moved,
) -> Result<(), Failure> {
    let sql_failure =
        |what: &str, e: DatabaseError| Failure::new("SqlError", format!("{what}: {}", e.message));
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
    let server = matches!(source, Input::Server(_));
    match mode {
        Mode::Append | Mode::Truncate => {
            if mode == Mode::Truncate {
                connection
                    .execute(&format!("DELETE FROM {table}"))
                    .await
                    .map_err(|e| sql_failure(&format!("emptying {table}"), e))?;
            }
            load_rows(context, connection, source, table, &columns, moved).await
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
            connection
                .execute(&stage_statement(table, server))
                .await
                .map_err(|e| sql_failure("creating the staging table", e))?;
            // Loading into the staging table: errors still name the target table.
            load_rows(context, connection, source, STAGE, &columns, moved)
                .await
                .map_err(|mut f| {
                    f.message = f.message.replace(STAGE, table);
                    f
                })?;
            for statement in merge_statements(mode, table, &keys, server) {
                connection
                    .execute(&statement)
                    .await
                    .map_err(|e| sql_failure(&format!("merging into {table}"), e))?;
            }
            Ok(())
        }
    }
}

/// The staging table: a temporary copy of `table`'s columns, dropped with the transaction on PostgreSQL (Redshift
/// has no `ON COMMIT`; there it goes with the session, or with the merge's last statement).
fn stage_statement(table: &str, redshift: bool) -> String {
    if redshift {
        format!("CREATE TEMPORARY TABLE {STAGE} (LIKE {table})")
    } else {
        format!("CREATE TEMPORARY TABLE {STAGE} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    }
}

/// The statements that move the staged rows into `table`.
fn merge_statements(mode: Mode, table: &str, keys: &[String], redshift: bool) -> Vec<String> {
    let matches = keys
        .iter()
        .map(|k| format!("{table}.{k} = {STAGE}.{k}", k = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut statements = if mode == Mode::KeepExisting {
        vec![format!(
            "INSERT INTO {table} SELECT * FROM {STAGE} WHERE NOT EXISTS \
             (SELECT 1 FROM {table} WHERE {matches})"
        )]
    } else {
        vec![
            format!("DELETE FROM {table} USING {STAGE} WHERE {matches}"),
            format!("INSERT INTO {table} SELECT * FROM {STAGE}"),
        ]
    };
    if redshift {
        statements.push(format!("DROP TABLE {STAGE}"));
    }
    statements
}

/// Loads `source` into `table` (whose columns are `columns`).
async fn load_rows(
    context: &TaskContext,
    connection: &mut Connection,
    source: &mut Input,
    table: &str,
    columns: &[String],
    moved: &mut Moved,
) -> Result<(), Failure> {
    match source {
        Input::Files(files) => {
            load(
                context,
                connection,
                files,
                table,
                columns.len(),
                &Load::Copy,
                moved,
            )
            .await
        }
        Input::DynamoDb(name) => {
            load_dynamodb(context, connection, name, table, columns, moved).await
        }
        Input::Server(copy) => {
            let statement = copy.sql(table);
            let done = connection.execute(&statement).await.map_err(|e| {
                Failure::new(
                    "DataLoadFailed",
                    format!(
                        "Redshift's COPY into {table} from {} failed: {} (STL_LOAD_ERRORS on the cluster has the \
                         row)",
                        copy.from, e.message
                    ),
                )
            })?;
            moved.rows += done.rows;
            moved.report(context);
            Ok(())
        }
    }
}

/// Scans the DynamoDB table `name` page by page and streams its items into `table` with `COPY … FROM STDIN`,
/// each attribute going to the column of the same name (the exact name first, else the same name in another case);
/// columns no attribute names are NULL, attributes no column names are left out. Strings, numbers, booleans and
/// nulls load; other types (binary, sets, lists, maps) fail the attempt naming the item and attribute.
async fn load_dynamodb(
    context: &TaskContext,
    connection: &mut Connection,
    name: &str,
    table: &str,
    columns: &[String],
    moved: &mut Moved,
) -> Result<(), Failure> {
    let dynamodb = context
        .storage()
        .dynamodb()
        .await
        .map_err(|e| data_failure(format!("DynamoDB table {name}: {e}")))?;
    let statement = format!("COPY {table} FROM STDIN");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, DatabaseError>>(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut failure: Option<Failure> = None;
    let feed = async {
        let mut start = None;
        let mut item_number = 0u64;
        loop {
            let page = dynamodb
                .scan()
                .table_name(name)
                .set_exclusive_start_key(start.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    failure = Some(data_failure(format!(
                        "cannot scan the DynamoDB table {name}: {}",
                        crate::storage::sdk_error_text(&e)
                    )));
                    break;
                }
            };
            let mut chunk = Vec::new();
            for item in page.items() {
                item_number += 1;
                match item_values(item, columns) {
                    Ok(values) => {
                        let values: Vec<Option<&str>> =
                            values.iter().map(|v| v.as_deref()).collect();
                        write_copy_text(&mut chunk, &values);
                    }
                    Err(why) => {
                        failure = Some(Failure::new(
                            "DataFormatError",
                            format!("DynamoDB table {name}, item {item_number} of the scan: {why}"),
                        ));
                        break;
                    }
                }
            }
            if failure.is_some() {
                break;
            }
            moved.rows += page.items().len() as u64;
            moved.report(context);
            if tx.send(Ok(chunk.into())).await.is_err() {
                return;
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        if failure.is_some() {
            let _ = tx
                .send(Err(DatabaseError {
                    error_id: "DataFormatError",
                    message: "the input could not be read".into(),
                    row: None,
                }))
                .await;
        }
        drop(tx);
    };
    let (copied, ()) = tokio::join!(connection.copy_in(&statement, stream), feed);
    if let Some(f) = failure {
        return Err(f);
    }
    copied.map(|_| ()).map_err(|e| {
        let which = e
            .row
            .map(|r| format!(", item {r} of the scan"))
            .unwrap_or_default();
        Failure::new(
            "DataLoadFailed",
            format!(
                "DynamoDB table {name}{which}: {table} refused the row: {}",
                e.message
            ),
        )
    })
}

/// The values of a DynamoDB item in the order of `columns`.
fn item_values(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    columns: &[String],
) -> Result<Vec<Option<String>>, String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut values: Vec<Option<String>> = vec![None; columns.len()];
    let mut exact = vec![false; columns.len()];
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    for name in names {
        let position = columns
            .iter()
            .position(|c| c == name)
            .map(|i| (i, true))
            .or_else(|| {
                columns
                    .iter()
                    .position(|c| c.eq_ignore_ascii_case(name))
                    .map(|i| (i, false))
            });
        let Some((i, is_exact)) = position else {
            continue;
        };
        if exact[i] && !is_exact {
            continue;
        }
        let value = match &item[name] {
            AttributeValue::S(s) => Some(s.clone()),
            AttributeValue::N(n) => Some(n.clone()),
            AttributeValue::Bool(b) => Some(b.to_string()),
            AttributeValue::Null(_) => None,
            other => {
                let kind = match other {
                    AttributeValue::B(_) => "a binary value (B)",
                    AttributeValue::Bs(_) => "a binary set (BS)",
                    AttributeValue::Ns(_) => "a number set (NS)",
                    AttributeValue::Ss(_) => "a string set (SS)",
                    AttributeValue::L(_) => "a list (L)",
                    AttributeValue::M(_) => "a map (M)",
                    _ => "of a type this runner does not know",
                };
                return Err(format!(
                    "the attribute {name:?} (column {}) is {kind}; strings, numbers, booleans and nulls load",
                    columns[i]
                ));
            }
        };
        values[i] = value;
        exact[i] = is_exact;
    }
    Ok(values)
}

/// Redshift's own `COPY`: where the cluster reads the data and with which options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCopy {
    /// `s3://…` or `dynamodb://TABLE`.
    pub from: String,
    /// The options after `FROM '…'`, in order: the credentials clause, `MANIFEST`, the format the data node
    /// implies, `GZIP`, `READRATIO`, then `commandOptions` as written.
    pub options: Vec<String>,
}

/// The runner's AWS credentials, for Redshift's `CREDENTIALS` clause.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Whether `commandOptions` already say how Redshift reaches the data (`IAM_ROLE`, `CREDENTIALS`,
/// `ACCESS_KEY_ID`), so the runner's credentials are not added.
fn has_authorization(command_options: &[&str]) -> bool {
    let text = command_options.join(" ");
    let mut words = Words::new(&text);
    while let Some(word) = words.next() {
        if matches!(
            word.to_ascii_uppercase().as_str(),
            "IAM_ROLE" | "CREDENTIALS" | "WITH" | "ACCESS_KEY_ID" | "SESSION_TOKEN"
        ) {
            return true;
        }
    }
    false
}

async fn runner_credentials(context: &TaskContext) -> Result<AwsCredentials, Failure> {
    let failed = |e: String| {
        Failure::new(
            "CredentialsUnavailable",
            format!(
                "Redshift's COPY needs AWS credentials to read the data and the runner has none: {e} (or give \
                 IAM_ROLE 'arn:…' in commandOptions)"
            ),
        )
    };
    let credentials = context
        .storage()
        .credentials()
        .await
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("requests are not signed".into()))?;
    Ok(AwsCredentials {
        access_key_id: credentials.access_key_id().to_string(),
        secret_access_key: credentials.secret_access_key().to_string(),
        session_token: credentials.session_token().map(str::to_string),
    })
}

/// Whether `command_options` hold any of `words` (case-insensitive, outside quoted strings).
fn has_word(command_options: &[&str], words: &[&str]) -> bool {
    let text = command_options.join(" ");
    let mut all = Words::new(&text);
    while let Some(word) = all.next() {
        if words.iter().any(|w| word.eq_ignore_ascii_case(w)) {
            return true;
        }
    }
    false
}

impl ServerCopy {
    /// The `COPY` of `input` (an `S3DataNode` or a `DynamoDBDataNode`) with `command_options` and `credentials`
    /// (`None`: the options carry their own authorization).
    pub fn of(
        task: &Task,
        input: &PipelineObject,
        command_options: &[&str],
        credentials: Option<AwsCredentials>,
    ) -> Result<ServerCopy, Failure> {
        let unsupported = |why: String| Failure::new("UnsupportedRedshiftCopy", why);
        let mut options = Vec::new();
        if let Some(c) = &credentials {
            let mut text = format!(
                "aws_access_key_id={};aws_secret_access_key={}",
                c.access_key_id, c.secret_access_key
            );
            if let Some(token) = &c.session_token {
                text.push_str(&format!(";token={token}"));
            }
            options.push(format!(
                "CREDENTIALS {}",
                quote_literal(Engine::Redshift, &text)
            ));
        }
        let from = if string_field(input, "type") == Some("DynamoDBDataNode") {
            let name = string_field(input, "tableName").ok_or_else(|| {
                Failure::new(
                    "InvalidTaskObject",
                    format!("{} has no tableName", input.id),
                )
            })?;
            if !has_word(command_options, &["READRATIO"]) {
                // Redshift requires it; the data node's readThroughputPercent (0.25 unless set) says how much.
                let share = string_field(input, "readThroughputPercent")
                    .map(|p| {
                        p.trim().parse::<f64>().ok().filter(|p| *p > 0.0 && *p <= 1.0).ok_or_else(|| {
                            Failure::new(
                                "InvalidTaskObject",
                                format!(
                                    "{}: readThroughputPercent {p:?} is not a number above 0 and at most 1",
                                    input.id
                                ),
                            )
                        })
                    })
                    .transpose()?
                    .unwrap_or(0.25);
                options.push(format!("READRATIO {}", (share * 100.0).round().max(1.0)));
            }
            format!("dynamodb://{name}")
        } else {
            let files = NodeFiles::of(input)?;
            if !files.location.starts_with("s3://") {
                return Err(unsupported(format!(
                    "{}: Redshift's COPY reads from S3, and the data is at {}",
                    input.id, files.location
                )));
            }
            let mut from = files.location.clone();
            match files.kind {
                NodeLocation::Manifest => options.push("MANIFEST".into()),
                NodeLocation::Directory if !from.ends_with('/') => from.push('/'),
                _ => {}
            }
            let format_given = has_word(
                command_options,
                &[
                    "CSV",
                    "DELIMITER",
                    "FORMAT",
                    "FIXEDWIDTH",
                    "JSON",
                    "AVRO",
                    "PARQUET",
                    "ORC",
                ],
            );
            if !format_given && let Some(format) = task.referenced(input, "dataFormat") {
                options.extend(format_options(format)?);
            }
            if files.gzip && !has_word(command_options, &["GZIP"]) {
                options.push("GZIP".into());
            }
            from
        };
        options.extend(
            command_options
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty()),
        );
        Ok(ServerCopy { from, options })
    }

    /// The statement that loads `table`.
    pub fn sql(&self, table: &str) -> String {
        let mut sql = format!(
            "COPY {table} FROM {}",
            quote_literal(Engine::Redshift, &self.from)
        );
        for option in &self.options {
            sql.push(' ');
            sql.push_str(option);
        }
        sql
    }
}

/// The `COPY` options that read a data node's `dataFormat` as this runner reads it.
fn format_options(format: &PipelineObject) -> Result<Vec<String>, Failure> {
    let parsed = Format::from_object(format)?;
    if parsed.regex.is_some() {
        return Err(Failure::new(
            "UnsupportedRedshiftCopy",
            format!(
                "the RegEx data format {} cannot be read by Redshift's COPY; use --redshift-copy=auto against a \
                 stand-in, or convert the files first (CopyActivity to CSV)",
                format.id
            ),
        ));
    }
    if parsed.record != "\n" {
        return Err(Failure::new(
            "UnsupportedRedshiftCopy",
            format!(
                "the data format {} separates records with {:?}; Redshift's COPY reads newline-separated records",
                format.id, parsed.record
            ),
        ));
    }
    let mut options = vec![format!(
        "DELIMITER {}",
        quote_literal(Engine::Redshift, &parsed.column)
    )];
    if parsed.escape == '\\' {
        options.push("ESCAPE".into());
    } else {
        return Err(Failure::new(
            "UnsupportedRedshiftCopy",
            format!(
                "the data format {} escapes with {:?}; Redshift's COPY escapes with a backslash",
                format.id, parsed.escape
            ),
        ));
    }
    Ok(options)
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

    fn object(id: &str, fields: &[(&str, &str)]) -> PipelineObject {
        PipelineObject {
            id: id.into(),
            name: id.into(),
            fields: fields
                .iter()
                .map(|(k, v)| match v.strip_prefix("ref:") {
                    Some(r) => dp_model::types::Field {
                        key: k.to_string(),
                        string_value: None,
                        ref_value: Some(r.into()),
                    },
                    None => dp_model::types::Field {
                        key: k.to_string(),
                        string_value: Some(v.to_string()),
                        ref_value: None,
                    },
                })
                .collect(),
        }
    }

    fn task(objects: Vec<PipelineObject>) -> Task {
        let mut map = dp_model::IndexMap::new();
        let attempt = object("@Load_1", &[("type", "RedshiftCopyActivity")]);
        map.insert(attempt.id.clone(), attempt);
        for o in objects {
            map.insert(o.id.clone(), o);
        }
        Task::from_task_object(dp_model::types::TaskObject {
            task_id: Some("t".into()),
            pipeline_id: Some("df-1".into()),
            attempt_id: Some("@Load_1".into()),
            objects: Some(map),
        })
    }

    fn target(url: &str) -> Target {
        Target::from_object(
            &object("Db", &[("type", "JdbcDatabase"), ("connectionString", url)]),
            &crate::database::DatabaseUrls::default(),
        )
        .unwrap()
    }

    #[test]
    fn redshift_endpoints_get_redshifts_own_copy() {
        let cluster = "jdbc:redshift://my-cluster.abc123.us-east-1.redshift.amazonaws.com:5439/dev";
        let serverless =
            "jdbc:redshift://wg.123456789012.us-east-1.redshift-serverless.amazonaws.com:5439/dev";
        let tunnel = "jdbc:redshift://localhost:5439/dev";
        let postgres = "jdbc:postgresql://127.0.0.1:5432/test";
        let pg_on_cluster_host = "jdbc:postgresql://c.x.eu-west-1.redshift.amazonaws.com:5439/dev";
        let mysql = "jdbc:mysql://x.redshift.amazonaws.com:3306/dev";
        for (url, auto, server) in [
            (cluster, true, true),
            (serverless, true, true),
            (pg_on_cluster_host, true, true),
            (tunnel, false, true),
            (postgres, false, false),
            (mysql, false, false),
        ] {
            assert_eq!(
                server_copy(&target(url), CopyPath::Auto),
                auto,
                "{url} auto"
            );
            assert_eq!(
                server_copy(&target(url), CopyPath::Server),
                server,
                "{url} server"
            );
        }
        assert_eq!(CopyPath::parse("SERVER"), Ok(CopyPath::Server));
        assert_eq!(CopyPath::parse("auto"), Ok(CopyPath::Auto));
        assert!(
            CopyPath::parse("stream")
                .unwrap_err()
                .contains("auto or server")
        );
    }

    #[test]
    fn redshifts_own_copy_statements() {
        let keys = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let creds = "CREDENTIALS 'aws_access_key_id=AKIDEXAMPLE;aws_secret_access_key=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'";
        // A CSV file, gzip, with the commandOptions as written after what the data node implies.
        let t = task(vec![
            object(
                "Files",
                &[
                    ("type", "S3DataNode"),
                    ("filePath", "s3://bkt/load/people.csv.gz"),
                    ("compression", "gzip"),
                    ("dataFormat", "ref:Csv"),
                ],
            ),
            object("Csv", &[("type", "CSV")]),
        ]);
        let input = t.object("Files").unwrap();
        let copy = ServerCopy::of(
            &t,
            input,
            &["IGNOREHEADER 1", "TIMEFORMAT 'auto'"],
            Some(keys.clone()),
        )
        .unwrap();
        assert_eq!(
            copy.sql("public.people"),
            format!(
                "COPY public.people FROM 's3://bkt/load/people.csv.gz' {creds} DELIMITER ',' ESCAPE GZIP \
                 IGNOREHEADER 1 TIMEFORMAT 'auto'"
            )
        );
        // A format in commandOptions wins over the data node's; an IAM role there replaces the runner's keys.
        let options = [
            "CSV QUOTE AS '\"'",
            "IAM_ROLE 'arn:aws:iam::123456789012:role/Loader'",
            "GZIP",
        ];
        assert!(has_authorization(&options));
        let copy = ServerCopy::of(&t, input, &options, None).unwrap();
        assert_eq!(
            copy.sql("people"),
            "COPY people FROM 's3://bkt/load/people.csv.gz' CSV QUOTE AS '\"' \
             IAM_ROLE 'arn:aws:iam::123456789012:role/Loader' GZIP"
        );
        // A directory is a prefix; a manifest says so; temporary credentials carry their token.
        let t = task(vec![
            object(
                "Dir",
                &[("type", "S3DataNode"), ("directoryPath", "s3://bkt/in")],
            ),
            object(
                "Listed",
                &[
                    ("type", "S3DataNode"),
                    ("manifestFilePath", "s3://bkt/m.json"),
                ],
            ),
            object(
                "Orders",
                &[("type", "DynamoDBDataNode"), ("tableName", "Orders")],
            ),
            object(
                "Slow",
                &[
                    ("type", "DynamoDBDataNode"),
                    ("tableName", "O'Hara"),
                    ("readThroughputPercent", "0.5"),
                ],
            ),
            object(
                "Local",
                &[("type", "S3DataNode"), ("filePath", "/tmp/x.csv")],
            ),
            object(
                "Logs",
                &[
                    ("type", "S3DataNode"),
                    ("filePath", "s3://bkt/x.log"),
                    ("dataFormat", "ref:Re"),
                ],
            ),
            object("Re", &[("type", "RegEx"), ("inputRegEx", "(.*)")]),
        ]);
        let token = AwsCredentials {
            session_token: Some("FwoG/z+x'y".into()),
            ..keys
        };
        let sql = |id: &str, options: &[&str], c: Option<AwsCredentials>| {
            ServerCopy::of(&t, t.object(id).unwrap(), options, c).map(|c| c.sql("t"))
        };
        assert_eq!(sql("Dir", &[], None).unwrap(), "COPY t FROM 's3://bkt/in/'");
        assert_eq!(
            sql("Listed", &["DELIMITER '|'"], Some(token.clone())).unwrap(),
            "COPY t FROM 's3://bkt/m.json' CREDENTIALS 'aws_access_key_id=AKIDEXAMPLE;aws_secret_access_key=\
             wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;token=FwoG/z+x''y' MANIFEST DELIMITER '|'"
        );
        assert_eq!(
            sql("Orders", &[], None).unwrap(),
            "COPY t FROM 'dynamodb://Orders' READRATIO 25"
        );
        assert_eq!(
            sql("Slow", &[], None).unwrap(),
            "COPY t FROM 'dynamodb://O''Hara' READRATIO 50"
        );
        assert_eq!(
            sql("Orders", &["readratio 10"], None).unwrap(),
            "COPY t FROM 'dynamodb://Orders' readratio 10"
        );
        let local = sql("Local", &[], None).unwrap_err();
        assert_eq!(
            (local.error_id.as_str(), local.message.as_str()),
            (
                "UnsupportedRedshiftCopy",
                "Local: Redshift's COPY reads from S3, and the data is at /tmp/x.csv"
            )
        );
        assert_eq!(
            sql("Logs", &[], None).unwrap_err().error_id,
            "UnsupportedRedshiftCopy"
        );
        assert!(
            sql("Logs", &["CSV"], None).is_ok(),
            "a format in commandOptions is used as written"
        );
    }

    #[test]
    fn staging_and_merge_statements() {
        let keys = vec!["id".to_string(), "Region".to_string()];
        assert_eq!(
            stage_statement("s.t", true),
            "CREATE TEMPORARY TABLE dp_runner_stage (LIKE s.t)"
        );
        assert_eq!(
            stage_statement("s.t", false),
            "CREATE TEMPORARY TABLE dp_runner_stage (LIKE s.t INCLUDING DEFAULTS) ON COMMIT DROP"
        );
        assert_eq!(
            merge_statements(Mode::OverwriteExisting, "s.t", &keys, true),
            [
                "DELETE FROM s.t USING dp_runner_stage WHERE s.t.\"id\" = dp_runner_stage.\"id\" AND \
                 s.t.\"Region\" = dp_runner_stage.\"Region\"",
                "INSERT INTO s.t SELECT * FROM dp_runner_stage",
                "DROP TABLE dp_runner_stage",
            ]
        );
        assert_eq!(
            merge_statements(Mode::KeepExisting, "t", &keys[..1], false),
            [
                "INSERT INTO t SELECT * FROM dp_runner_stage WHERE NOT EXISTS (SELECT 1 FROM t WHERE \
              t.\"id\" = dp_runner_stage.\"id\")"
            ]
        );
    }

    #[test]
    fn dynamodb_items_map_to_columns_by_name() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let columns: Vec<String> = ["id", "name", "paid", "note", "Total"]
            .map(String::from)
            .into();
        let item: std::collections::HashMap<String, AttributeValue> = [
            ("ID", AttributeValue::S("upper".into())),
            ("id", AttributeValue::S("o-1".into())),
            ("NAME", AttributeValue::S("Zoë".into())),
            ("paid", AttributeValue::Bool(true)),
            ("note", AttributeValue::Null(true)),
            ("total", AttributeValue::N("12.50".into())),
            ("extra", AttributeValue::S("left out".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            item_values(&item, &columns).unwrap(),
            [
                Some("o-1".to_string()),
                Some("Zoë".to_string()),
                Some("true".to_string()),
                None,
                Some("12.50".to_string())
            ]
        );
        let list: std::collections::HashMap<String, AttributeValue> =
            [("note".to_string(), AttributeValue::L(vec![]))]
                .into_iter()
                .collect();
        assert_eq!(
            item_values(&list, &columns).unwrap_err(),
            "the attribute \"note\" (column note) is a list (L); strings, numbers, booleans and nulls load"
        );
    }
}
