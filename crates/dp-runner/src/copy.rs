//! `CopyActivity`: records from the `input` data node to the `output` data node, S3DataNode → S3DataNode,
//! SqlDataNode/MySqlDataNode (`selectQuery` or `table`) → S3DataNode, and S3DataNode → SqlDataNode/MySqlDataNode
//! (`insertQuery` or `table`).
//!
//! Everything streams: records are read a chunk at a time and written as they come, so memory stays bounded
//! whatever the size of the data. A database target is written in one transaction per attempt and an S3 object
//! appears only whole (`objects.rs`), so a failed attempt leaves the target as it was. A record that does not fit
//! fails the attempt naming the file, the line and, where the server says, the column. The shared pieces (a data
//! node's files, format and database; record sources; loaders) are also used by `redshift_copy.rs`.

use dp_model::types::PipelineObject;
use futures_util::StreamExt as _;

use crate::activity::{Activity, BoxFuture, Failure, Outcome, Task, TaskContext, string_field};
use crate::database::{
    Connection, DatabaseError, Engine, QueryError, RowSink, Target, attempt_timeout, bind_row,
    placeholders, quote_literal, supervise,
};
use crate::format::{Format, Gunzip, Gzip, Parser, Record, write_copy_text};
use crate::objects::{NodeFiles, NodeLocation, ObjectReader, ObjectWriter};
use crate::sql::stopped_failure;

/// The `CopyActivity` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyActivity;

impl Activity for CopyActivity {
    fn run<'a>(&'a self, task: &'a Task, context: &'a TaskContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match run(task, context).await {
                Ok(()) => Outcome::Finished,
                Err(failure) => Outcome::Failed(failure),
            }
        })
    }
}

/// What kind of data node an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    S3,
    Sql,
}

pub(crate) fn node_kind(node: &PipelineObject) -> Result<NodeKind, Failure> {
    match string_field(node, "type").unwrap_or_default() {
        "S3DataNode" => Ok(NodeKind::S3),
        "SqlDataNode" | "MySqlDataNode" | "RedshiftDataNode" => Ok(NodeKind::Sql),
        other => Err(Failure::new(
            "UnsupportedDataNode",
            format!(
                "{} is a {other:?}: dp-task-runner copies between S3DataNode, SqlDataNode and MySqlDataNode",
                node.id
            ),
        )),
    }
}

/// The one object the attempt refers to under `key`.
pub(crate) fn one_ref<'a>(task: &'a Task, key: &str) -> Result<&'a PipelineObject, Failure> {
    match task.refs(key).as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::new(
            "InvalidTaskObject",
            format!(
                "{} has no {key} data node (or the task object does not hold it)",
                task.attempt_id
            ),
        )),
        more => Err(Failure::new(
            "InvalidTaskObject",
            format!(
                "{} has {} {key} data nodes; this activity takes one",
                task.attempt_id,
                more.len()
            ),
        )),
    }
}

/// The format of an S3 data node (`dataFormat`; CSV when it has none).
pub(crate) fn node_format(task: &Task, node: &PipelineObject) -> Result<Format, Failure> {
    match task.referenced(node, "dataFormat") {
        Some(format) => Format::from_object(format),
        None if crate::activity::ref_field(node, "dataFormat").is_some() => Err(Failure::new(
            "InvalidTaskObject",
            format!("{}: its dataFormat is not in the task object", node.id),
        )),
        None => Ok(Format::csv()),
    }
}

/// The database of a SQL data node: its `database`, or (MySqlDataNode) its own connection fields.
pub(crate) fn node_target(
    task: &Task,
    node: &PipelineObject,
    context: &TaskContext,
) -> Result<Target, Failure> {
    if crate::activity::ref_field(node, "database").is_some() {
        return Target::of(task, Some(node), context.databases());
    }
    if string_field(node, "connectionString").is_some() {
        let mut fields: Vec<_> = node
            .fields
            .iter()
            .filter(|f| f.key != "type")
            .cloned()
            .collect();
        fields.push(dp_model::types::Field {
            key: "type".into(),
            string_value: Some("JdbcDatabase".into()),
            ref_value: None,
        });
        let object = PipelineObject {
            id: node.id.clone(),
            name: node.name.clone(),
            fields,
        };
        return Target::from_object(&object, context.databases());
    }
    Target::of(task, Some(node), context.databases())
}

/// A failure while moving data, with where it happened.
pub(crate) fn data_failure(message: String) -> Failure {
    Failure::new("DataCopyFailed", message)
}

async fn run(task: &Task, context: &TaskContext) -> Result<(), Failure> {
    let input = one_ref(task, "input")?;
    let output = one_ref(task, "output")?;
    let deadline = attempt_timeout(task, context)?.map(|d| tokio::time::Instant::now() + d);
    let moved = match (node_kind(input)?, node_kind(output)?) {
        (NodeKind::S3, NodeKind::S3) => s3_to_s3(task, context, input, output, deadline).await?,
        (NodeKind::Sql, NodeKind::S3) => sql_to_s3(task, context, input, output, deadline).await?,
        (NodeKind::S3, NodeKind::Sql) => s3_to_sql(task, context, input, output, deadline).await?,
        (NodeKind::Sql, NodeKind::Sql) => {
            return Err(Failure::new(
                "UnsupportedCopy",
                "CopyActivity copies between S3 and a database, or S3 to S3; a database-to-database copy goes \
                 through S3 (two CopyActivity objects)",
            ));
        }
    };
    context.log().info(
        "CopyActivity finished",
        &[
            ("task", &task.task_id),
            ("input", &input.id),
            ("output", &output.id),
            ("rowsCopied", &moved.rows.to_string()),
            ("bytesRead", &moved.bytes_read.to_string()),
            ("bytesWritten", &moved.bytes_written.to_string()),
        ],
    );
    Ok(())
}

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moved {
    pub rows: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl Moved {
    pub(crate) fn report(&self, context: &TaskContext) {
        context.set_progress_field("rowsCopied", self.rows.to_string());
        context.set_progress_field("bytesRead", self.bytes_read.to_string());
        context.set_progress_field("bytesWritten", self.bytes_written.to_string());
    }
}

/// The records of a list of files, read in order, a chunk at a time.
pub(crate) struct Source {
    files: Vec<String>,
    format: Format,
    gzip: bool,
    next_file: usize,
    current: Option<OpenFile>,
    pub bytes_read: u64,
    /// Empty values are read as NULL (`EMPTYASNULL`).
    pub empty_as_null: bool,
}

struct OpenFile {
    index: usize,
    reader: ObjectReader,
    gunzip: Option<Gunzip>,
    parser: Parser,
}

impl Source {
    pub(crate) fn new(files: Vec<String>, format: Format, gzip: bool) -> Source {
        Source {
            files,
            format,
            gzip,
            next_file: 0,
            current: None,
            bytes_read: 0,
            empty_as_null: false,
        }
    }

    /// The file at `index`.
    pub(crate) fn file(&self, index: usize) -> &str {
        &self.files[index]
    }

    /// The next records and the index of the file they come from; `None` when every file is read.
    pub(crate) async fn next(
        &mut self,
        context: &TaskContext,
    ) -> Result<Option<(usize, Vec<Record>)>, Failure> {
        loop {
            if self.current.is_none() {
                if self.next_file >= self.files.len() {
                    return Ok(None);
                }
                let index = self.next_file;
                self.next_file += 1;
                let reader = ObjectReader::open(context.storage(), &self.files[index])
                    .await
                    .map_err(|e| data_failure(e.to_string()))?;
                self.current = Some(OpenFile {
                    index,
                    reader,
                    gunzip: self.gzip.then(Gunzip::default),
                    parser: Parser::new(self.format.clone()),
                });
            }
            let file = self.current.as_mut().expect("opened above");
            let name = self.files[file.index].clone();
            let chunk = file
                .reader
                .next()
                .await
                .map_err(|e| data_failure(e.to_string()))?;
            let last = chunk.is_none();
            let raw = chunk.unwrap_or_default();
            self.bytes_read += raw.len() as u64;
            let plain = match &mut file.gunzip {
                None => raw.to_vec(),
                Some(g) => {
                    let mut out = g.push(&raw).map_err(|e| {
                        data_failure(format!("{name}: not gzip data (compression: gzip): {e}"))
                    })?;
                    if last {
                        let tail = file.gunzip.take().expect("present").finish().map_err(|e| {
                            data_failure(format!("{name}: the gzip stream is cut short: {e}"))
                        })?;
                        out.extend(tail);
                    }
                    out
                }
            };
            let records = file.parser.push(&plain, last).map_err(|e| {
                Failure::new(
                    "DataFormatError",
                    format!("{name} line {}: {}", e.line, e.message),
                )
            })?;
            let index = file.index;
            if last {
                self.current = None;
            }
            let mut records = records;
            if self.empty_as_null {
                for value in records.iter_mut().flat_map(|r| r.values.iter_mut()) {
                    if value.as_deref() == Some("") {
                        *value = None;
                    }
                }
            }
            if !records.is_empty() {
                return Ok(Some((index, records)));
            }
        }
    }
}

/// An output object with its format and compression.
pub(crate) struct Sink {
    writer: ObjectWriter,
    format: Format,
    gzip: Option<Gzip>,
    buffer: Vec<u8>,
    pub rows: u64,
}

impl Sink {
    pub(crate) async fn create(
        context: &TaskContext,
        uri: &str,
        format: Format,
        gzip: bool,
    ) -> Result<Sink, Failure> {
        let writer = ObjectWriter::create(context.storage(), uri)
            .await
            .map_err(|e| data_failure(e.to_string()))?;
        Ok(Sink {
            writer,
            format,
            gzip: gzip.then(Gzip::default),
            buffer: Vec::new(),
            rows: 0,
        })
    }

    async fn drain(&mut self, force: bool) -> Result<(), Failure> {
        if self.buffer.len() < (1 << 20) && !force {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.buffer);
        let bytes = match &mut self.gzip {
            Some(g) => {
                g.write(&bytes);
                g.take()
            }
            None => bytes,
        };
        self.writer
            .write(&bytes)
            .await
            .map_err(|e| data_failure(e.to_string()))
    }

    pub(crate) async fn finish(mut self) -> Result<u64, Failure> {
        let result = async {
            self.drain(true).await?;
            if let Some(g) = self.gzip.take() {
                let tail = g.finish();
                self.writer
                    .write(&tail)
                    .await
                    .map_err(|e| data_failure(e.to_string()))?;
            }
            Ok::<_, Failure>(())
        }
        .await;
        match result {
            Ok(()) => self
                .writer
                .finish()
                .await
                .map_err(|e| data_failure(e.to_string())),
            Err(e) => {
                self.writer.abort().await;
                Err(e)
            }
        }
    }

    pub(crate) async fn abort(self) {
        self.writer.abort().await;
    }
}

impl RowSink for Sink {
    type Error = Failure;
    async fn row(&mut self, values: &[Option<&str>]) -> Result<(), Failure> {
        self.format.write(&mut self.buffer, values);
        self.rows += 1;
        self.drain(false).await
    }
}

/// The rows of PostgreSQL's `COPY … TO STDOUT` text format (tab-separated values, `\N` for NULL, backslash
/// escapes, a newline after each row), fed in chunks as they arrive; a row may span chunks.
#[derive(Default)]
struct CopyTextRows {
    /// The start of a row whose end has not arrived yet.
    carry: Vec<u8>,
    /// Decoded values (those holding an escape), reused from row to row.
    decoded: Vec<String>,
}

impl CopyTextRows {
    /// Hands every row that `chunk` completes to `row`.
    fn push(&mut self, chunk: &[u8], mut row: impl FnMut(&[Option<&str>])) -> Result<(), String> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                self.carry.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&rest[..end]);
            self.row(&line, &mut row)?;
            line.clear();
            self.carry = line;
            rest = &rest[end + 1..];
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.row(&rest[..end], &mut row)?;
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
        Ok(())
    }

    /// Checks that no row was cut short.
    fn finish(&self) -> Result<(), String> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err("the server's COPY data ended inside a row".into())
        }
    }

    fn row(&mut self, line: &[u8], out: &mut impl FnMut(&[Option<&str>])) -> Result<(), String> {
        let text = std::str::from_utf8(line).map_err(|_| "a row is not UTF-8".to_string())?;
        let fields: Vec<&str> = text.split('\t').collect();
        if self.decoded.len() < fields.len() {
            self.decoded.resize_with(fields.len(), String::new);
        }
        for (field, decoded) in fields.iter().zip(self.decoded.iter_mut()) {
            if field.contains('\\') && *field != "\\N" {
                decode_copy_text(field, decoded);
            }
        }
        let values: Vec<Option<&str>> = fields
            .iter()
            .zip(&self.decoded)
            .map(|(field, decoded)| match *field {
                "\\N" => None,
                f if f.contains('\\') => Some(decoded.as_str()),
                f => Some(f),
            })
            .collect();
        out(&values);
        Ok(())
    }
}

/// A value of COPY's text format with its escapes (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, and a backslash before
/// any other character) undone.
fn decode_copy_text(field: &str, out: &mut String) {
    out.clear();
    let mut pieces = field.split('\\');
    out.push_str(pieces.next().unwrap_or(""));
    let mut escaped_backslash = false;
    for piece in pieces {
        // `\\` splits into an empty piece: the backslash itself, and the next piece is plain text.
        if piece.is_empty() && !escaped_backslash {
            out.push('\\');
            escaped_backslash = true;
            continue;
        }
        if escaped_backslash {
            out.push_str(piece);
            escaped_backslash = false;
            continue;
        }
        let mut chars = piece.chars();
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => {}
        }
        out.push_str(chars.as_str());
    }
}

async fn s3_to_s3(
    task: &Task,
    context: &TaskContext,
    input: &PipelineObject,
    output: &PipelineObject,
    deadline: Option<tokio::time::Instant>,
) -> Result<Moved, Failure> {
    let from = NodeFiles::of(input)?;
    let to = NodeFiles::of(output)?;
    let (in_format, out_format) = (node_format(task, input)?, node_format(task, output)?);
    let files = supervise(context, deadline, None, from.inputs(context.storage()))
        .await
        .map_err(|s| stopped_failure(task, s, "copying"))?
        .map_err(|e| data_failure(e.to_string()))?;
    let mut moved = Moved::default();
    // Into a directory: one object per input file, named as it; into a file: every record in one object.
    let groups: Vec<(String, Vec<String>)> = if to.kind == NodeLocation::Directory {
        files
            .iter()
            .map(|f| {
                let name = f.rsplit('/').next().unwrap_or(f).to_string();
                Ok((to.output(&name)?, vec![f.clone()]))
            })
            .collect::<Result<_, Failure>>()?
    } else {
        vec![(to.output("part-00000")?, files)]
    };
    for (target, sources) in groups {
        let mut source = Source::new(sources, in_format.clone(), from.gzip);
        let mut sink = Sink::create(context, &target, out_format.clone(), to.gzip).await?;
        // The sink stays outside the supervised work, so a cancel or a timeout (which drops the work) still
        // aborts its upload.
        let work = async {
            while let Some((_, records)) = source.next(context).await? {
                for record in records {
                    let values: Vec<Option<&str>> =
                        record.values.iter().map(|v| v.as_deref()).collect();
                    sink.row(&values).await?;
                }
                moved.rows += sink.rows;
                sink.rows = 0;
                moved.bytes_read = source.bytes_read;
                moved.report(context);
            }
            Ok::<_, Failure>(())
        };
        let copied = supervise(context, deadline, None, work).await;
        match copied {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                sink.abort().await;
                return Err(e);
            }
            Err(stopped) => {
                sink.abort().await;
                return Err(stopped_failure(task, stopped, "copying"));
            }
        }
        moved.rows += sink.rows;
        moved.bytes_written += sink.finish().await?;
        moved.report(context);
    }
    Ok(moved)
}

async fn sql_to_s3(
    task: &Task,
    context: &TaskContext,
    input: &PipelineObject,
    output: &PipelineObject,
    deadline: Option<tokio::time::Instant>,
) -> Result<Moved, Failure> {
    let target = node_target(task, input, context)?;
    let query = match (
        string_field(input, "selectQuery"),
        string_field(input, "table"),
    ) {
        (Some(q), _) => q.trim().trim_end_matches(';').to_string(),
        (None, Some(t)) => format!("SELECT * FROM {t}"),
        (None, None) => {
            return Err(Failure::new(
                "InvalidTaskObject",
                format!("{} has neither selectQuery nor table", input.id),
            ));
        }
    };
    let to = NodeFiles::of(output)?;
    let format = node_format(task, output)?;
    let name = if to.gzip {
        "part-00000.gz"
    } else {
        "part-00000"
    };
    let uri = to.output(name)?;
    let mut connection = supervise(context, deadline, None, target.connect())
        .await
        .map_err(|s| stopped_failure(task, s, "connecting"))?
        .map_err(|e| e.failure())?;
    let canceller = connection.canceller();
    let mut sink = Sink::create(context, &uri, format, to.gzip).await?;
    let query_failed = |e: DatabaseError| {
        Failure::new(
            "SqlError",
            format!(
                "the query of {} failed on the {target}: {}",
                input.id, e.message
            ),
        )
    };
    let work = async {
        if target.engine == Engine::Postgres {
            // The server writes the rows in COPY's text format, which is re-encoded here a chunk at a time: no
            // per-row protocol messages to parse, no per-value strings.
            let mut stream = connection
                .copy_out(&format!("COPY ({query}) TO STDOUT"))
                .await
                .map_err(query_failed)?;
            let mut rows = CopyTextRows::default();
            let mut reported = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(query_failed)?;
                let (format, buffer) = (&sink.format, &mut sink.buffer);
                let mut count = 0u64;
                rows.push(&chunk, |values| {
                    format.write(buffer, values);
                    count += 1;
                })
                .map_err(|e| data_failure(format!("the rows of {}: {e}", input.id)))?;
                sink.rows += count;
                sink.drain(false).await?;
                if sink.rows - reported >= 100_000 {
                    reported = sink.rows;
                    context.set_progress_field("rowsCopied", sink.rows.to_string());
                }
            }
            return rows
                .finish()
                .map_err(|e| data_failure(format!("the rows of {}: {e}", input.id)));
        }
        let queried = connection.query_text(&query, &mut sink).await;
        match queried {
            Ok(_) => Ok(()),
            Err(QueryError::Database(e)) => Err(query_failed(e)),
            Err(QueryError::Sink(f)) => Err(f),
        }
    };
    let result = supervise(context, deadline, Some(&canceller), work).await;
    let rows = sink.rows;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(f)) => {
            sink.abort().await;
            return Err(f);
        }
        Err(stopped) => {
            sink.abort().await;
            return Err(stopped_failure(task, stopped, "copying"));
        }
    }
    let written = sink.finish().await?;
    let moved = Moved {
        rows,
        bytes_read: 0,
        bytes_written: written,
    };
    moved.report(context);
    Ok(moved)
}

/// Where each loaded row came from: anchors `(first row, file, line)` wherever rows stop following line by line,
/// so a row number the server names maps back to a file and line.
#[derive(Default)]
pub(crate) struct Origins {
    anchors: Vec<(u64, usize, u64)>,
    rows: u64,
}

impl Origins {
    pub(crate) fn push(&mut self, file: usize, line: u64) {
        let follows = self
            .anchors
            .last()
            .is_some_and(|&(row, f, l)| f == file && l + (self.rows - row) == line);
        if !follows {
            self.anchors.push((self.rows, file, line));
        }
        self.rows += 1;
    }

    /// The file and line of row `row` (0-based).
    pub(crate) fn find(&self, row: u64) -> Option<(usize, u64)> {
        let i = self.anchors.partition_point(|&(r, _, _)| r <= row);
        let &(r, f, l) = self.anchors.get(i.checked_sub(1)?)?;
        Some((f, l + (row - r)))
    }
}

/// How rows go into a table.
pub(crate) enum Load {
    /// PostgreSQL `COPY table FROM STDIN`.
    Copy,
    /// MySQL multi-row `INSERT INTO table VALUES …`.
    Insert,
    /// The node's `insertQuery`, once per row.
    Query(String),
}

/// Loads every record of `source` into `table` on `connection` (inside the caller's transaction), checking each
/// record's column count against `columns`. Errors name the file and line.
pub(crate) async fn load(
    context: &TaskContext,
    connection: &mut Connection,
    source: &mut Source,
    table: &str,
    columns: usize,
    how: &Load,
    moved: &mut Moved,
) -> Result<(), Failure> {
    let engine = connection.target().engine;
    let mut origins = Origins::default();
    let check = |source: &Source, file: usize, record: &Record| -> Result<(), Failure> {
        if record.values.len() != columns {
            return Err(Failure::new(
                "DataFormatError",
                format!(
                    "{} line {}: {} values, but {table} takes {columns}",
                    source.file(file),
                    record.line,
                    record.values.len()
                ),
            ));
        }
        Ok(())
    };
    match how {
        Load::Copy => {
            // The records are read here and handed to the COPY stream chunk by chunk.
            let statement = format!("COPY {table} FROM STDIN");
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, DatabaseError>>(2);
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            let mut failure: Option<Failure> = None;
            let feed = async {
                while let Some((file, records)) = match source.next(context).await {
                    Ok(next) => next,
                    Err(f) => {
                        failure = Some(f);
                        let _ = tx
                            .send(Err(DatabaseError {
                                error_id: "DataFormatError",
                                message: "the input could not be read".into(),
                                row: None,
                            }))
                            .await;
                        return;
                    }
                } {
                    let mut chunk = Vec::new();
                    for record in &records {
                        if let Err(f) = check(source, file, record) {
                            failure = Some(f);
                            let _ = tx
                                .send(Err(DatabaseError {
                                    error_id: "DataFormatError",
                                    message: "a record does not fit the table".into(),
                                    row: None,
                                }))
                                .await;
                            return;
                        }
                        let values: Vec<Option<&str>> =
                            record.values.iter().map(|v| v.as_deref()).collect();
                        write_copy_text(&mut chunk, &values);
                        origins.push(file, record.line);
                    }
                    moved.rows += records.len() as u64;
                    moved.bytes_read = source.bytes_read;
                    moved.report(context);
                    if tx.send(Ok(chunk.into())).await.is_err() {
                        return;
                    }
                }
                drop(tx);
            };
            let (copied, ()) = tokio::join!(connection.copy_in(&statement, stream), feed);
            if let Some(f) = failure {
                return Err(f);
            }
            match copied {
                Ok(_) => Ok(()),
                Err(e) => Err(Failure::new(
                    "DataLoadFailed",
                    format!(
                        "{}: {table} refused the row: {}",
                        where_is(source, &origins, e.row.map(|r| r.saturating_sub(1))),
                        e.message
                    ),
                )),
            }
        }
        Load::Query(query) => {
            let query = query.trim().trim_end_matches(';').trim_end();
            let expected = placeholders(query);
            let mut batch = QueryBatch::default();
            while let Some((file, records)) = source.next(context).await? {
                for record in &records {
                    if record.values.len() != expected {
                        return Err(Failure::new(
                            "DataFormatError",
                            format!(
                                "{} line {}: {} values, but the insertQuery has {expected} placeholders",
                                source.file(file),
                                record.line,
                                record.values.len(),
                            ),
                        ));
                    }
                    let values: Vec<Option<&str>> =
                        record.values.iter().map(|v| v.as_deref()).collect();
                    batch.push(bind_row(query, engine, &values), file, record.line);
                    if batch.full(engine) {
                        batch.run(connection, source).await?;
                    }
                }
                moved.rows += records.len() as u64;
                moved.bytes_read = source.bytes_read;
                moved.report(context);
            }
            batch.run(connection, source).await
        }
        Load::Insert => {
            let mut batch: Vec<String> = Vec::new();
            let mut batch_first = 0u64;
            let mut bytes = 0usize;
            while let Some((file, records)) = source.next(context).await? {
                for record in &records {
                    let values: Vec<Option<&str>> =
                        record.values.iter().map(|v| v.as_deref()).collect();
                    check(source, file, record)?;
                    if batch.is_empty() {
                        batch_first = origins.rows;
                    }
                    origins.push(file, record.line);
                    let tuple = format!(
                        "({})",
                        values
                            .iter()
                            .map(|v| match v {
                                Some(v) => quote_literal(engine, v),
                                None => "NULL".into(),
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    bytes += tuple.len();
                    batch.push(tuple);
                    if batch.len() >= 1000 || bytes >= 1 << 20 {
                        insert_batch(connection, table, &mut batch, batch_first, &origins, source)
                            .await?;
                        bytes = 0;
                    }
                }
                moved.rows += records.len() as u64;
                moved.bytes_read = source.bytes_read;
                moved.report(context);
            }
            if !batch.is_empty() {
                insert_batch(connection, table, &mut batch, batch_first, &origins, source).await?;
            }
            Ok(())
        }
    }
}

/// `insertQuery` statements (one per record, values bound) sent many to a request, inside a savepoint: when a
/// request fails, the savepoint is rolled back and its statements run one by one to find the record the server
/// refuses, so the error still names its file and line.
#[derive(Default)]
struct QueryBatch {
    statements: Vec<String>,
    /// The file index and line of each statement's record.
    origins: Vec<(usize, u64)>,
    bytes: usize,
}

impl QueryBatch {
    fn push(&mut self, statement: String, file: usize, line: u64) {
        self.bytes += statement.len();
        self.statements.push(statement);
        self.origins.push((file, line));
    }

    /// Whether the batch should go now. Redshift has no savepoints, so there a statement goes alone.
    fn full(&self, engine: Engine) -> bool {
        engine == Engine::Redshift || self.statements.len() >= 1000 || self.bytes >= 1 << 20
    }

    async fn run(&mut self, connection: &mut Connection, source: &Source) -> Result<(), Failure> {
        if self.statements.is_empty() {
            return Ok(());
        }
        let refused = |i: usize, message: &str| {
            let (file, line) = self.origins[i];
            Failure::new(
                "DataLoadFailed",
                format!(
                    "{} line {line}: the insertQuery failed: {message}",
                    source.file(file)
                ),
            )
        };
        if self.statements.len() == 1 {
            connection
                .execute(&self.statements[0])
                .await
                .map_err(|e| refused(0, &e.message))?;
        } else {
            let mut request = String::with_capacity(self.bytes + 64 + 2 * self.statements.len());
            request.push_str("SAVEPOINT dp_insert_batch;\n");
            for statement in &self.statements {
                request.push_str(statement);
                request.push_str(";\n");
            }
            request.push_str("RELEASE SAVEPOINT dp_insert_batch");
            if let Err(batch_error) = connection.execute_batch(&request).await {
                connection
                    .execute("ROLLBACK TO SAVEPOINT dp_insert_batch")
                    .await
                    .map_err(|e| e.failure())?;
                for (i, statement) in self.statements.iter().enumerate() {
                    connection
                        .execute(statement)
                        .await
                        .map_err(|e| refused(i, &e.message))?;
                }
                let (first, last) = (self.origins[0], self.origins[self.origins.len() - 1]);
                return Err(Failure::new(
                    "DataLoadFailed",
                    format!(
                        "{} line {} to {} line {}: the insertQuery failed: {}",
                        source.file(first.0),
                        first.1,
                        source.file(last.0),
                        last.1,
                        batch_error.message
                    ),
                ));
            }
        }
        self.statements.clear();
        self.origins.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// Where row `row` (0-based) of a load came from, for a message.
fn where_is(source: &Source, origins: &Origins, row: Option<u64>) -> String {
    match row.and_then(|r| origins.find(r)) {
        Some((file, line)) => format!("{} line {line}", source.file(file)),
        None => "a row".to_string(),
    }
}

/// Sends one multi-row INSERT; the row MySQL names ("at row N") is mapped back to its file and line.
async fn insert_batch(
    connection: &mut Connection,
    table: &str,
    batch: &mut Vec<String>,
    first: u64,
    origins: &Origins,
    source: &Source,
) -> Result<(), Failure> {
    let statement = format!("INSERT INTO {table} VALUES {}", batch.join(","));
    batch.clear();
    connection
        .execute(&statement)
        .await
        .map(|_| ())
        .map_err(|e| {
            let row = mysql_row(&e.message).map(|r| first + r - 1);
            Failure::new(
                "DataLoadFailed",
                format!(
                    "{}: {table} refused the row: {}",
                    where_is(source, origins, row),
                    e.message
                ),
            )
        })
}

/// The row number in MySQL's "… at row N".
fn mysql_row(message: &str) -> Option<u64> {
    let rest = message.rsplit(" at row ").next()?;
    if rest.len() == message.len() {
        return None;
    }
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

async fn s3_to_sql(
    task: &Task,
    context: &TaskContext,
    input: &PipelineObject,
    output: &PipelineObject,
    deadline: Option<tokio::time::Instant>,
) -> Result<Moved, Failure> {
    let target = node_target(task, output, context)?;
    let from = NodeFiles::of(input)?;
    let format = node_format(task, input)?;
    let table = string_field(output, "table").or(string_field(output, "tableName"));
    let insert_query = string_field(output, "insertQuery");
    let files = from
        .inputs(context.storage())
        .await
        .map_err(|e| data_failure(e.to_string()))?;
    let mut source = Source::new(files, format, from.gzip);
    let mut connection = supervise(context, deadline, None, target.connect())
        .await
        .map_err(|s| stopped_failure(task, s, "connecting"))?
        .map_err(|e| e.failure())?;
    let canceller = connection.canceller();
    let mut moved = Moved::default();
    let work = async {
        let (how, table_name, columns) = match (insert_query, table) {
            (Some(q), t) => (
                Load::Query(q.to_string()),
                t.unwrap_or("the table").to_string(),
                0,
            ),
            (None, Some(t)) => {
                let columns = connection.table_columns(t).await.map_err(|e| {
                    Failure::new(
                        "SqlError",
                        format!(
                            "cannot read the columns of {t} on the {target}: {}",
                            e.message
                        ),
                    )
                })?;
                let how = if target.engine.is_postgres() {
                    Load::Copy
                } else {
                    Load::Insert
                };
                (how, t.to_string(), columns.len())
            }
            (None, None) => {
                return Err(Failure::new(
                    "InvalidTaskObject",
                    format!("{} has neither table nor insertQuery", output.id),
                ));
            }
        };
        begin(&mut connection).await?;
        let loaded = load(
            context,
            &mut connection,
            &mut source,
            &table_name,
            columns,
            &how,
            &mut moved,
        )
        .await;
        finish_transaction(&mut connection, loaded).await
    };
    supervise(context, deadline, Some(&canceller), work)
        .await
        .map_err(|s| stopped_failure(task, s, "loading"))??;
    moved.report(context);
    Ok(moved)
}

/// Starts the attempt's transaction.
pub(crate) async fn begin(connection: &mut Connection) -> Result<(), Failure> {
    let statement = match connection.target().engine {
        Engine::MySql => "START TRANSACTION",
        _ => "BEGIN",
    };
    connection
        .execute(statement)
        .await
        .map(|_| ())
        .map_err(|e| e.failure())
}

/// Commits when `outcome` is a success, rolls back otherwise.
pub(crate) async fn finish_transaction(
    connection: &mut Connection,
    outcome: Result<(), Failure>,
) -> Result<(), Failure> {
    match outcome {
        Ok(()) => connection
            .execute("COMMIT")
            .await
            .map(|_| ())
            .map_err(|e| Failure::new("SqlError", format!("COMMIT failed: {}", e.message))),
        Err(f) => {
            let _ = connection.execute("ROLLBACK").await;
            Err(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_map_rows_to_lines() {
        let mut o = Origins::default();
        for (file, line) in [(0, 1), (0, 2), (0, 4), (0, 5), (1, 2), (1, 3)] {
            o.push(file, line);
        }
        let got: Vec<_> = (0..7).map(|r| o.find(r)).collect();
        assert_eq!(
            got,
            [
                Some((0, 1)),
                Some((0, 2)),
                Some((0, 4)),
                Some((0, 5)),
                Some((1, 2)),
                Some((1, 3)),
                Some((1, 4))
            ]
        );
        assert_eq!(o.anchors.len(), 3);
        assert_eq!(
            mysql_row("Incorrect integer value: 'x' for column `n` at row 3"),
            Some(3)
        );
        assert_eq!(mysql_row("Duplicate entry"), None);
    }

    #[test]
    fn copy_text_rows_are_decoded_across_chunks() {
        // As PostgreSQL's COPY TO writes them: tab-separated, \N for NULL, escapes for \ and control characters.
        let data =
            "1\tplain\t\\N\n2\ta\\\\b\\tc\\nd\\re\\bf\\fg\\vh\tü,\"x\"\n3\t\\\\N\t\\\\\\\\n\n";
        let expected: Vec<Vec<Option<String>>> = vec![
            vec![Some("1".into()), Some("plain".into()), None],
            vec![
                Some("2".into()),
                Some("a\\b\tc\nd\re\u{8}f\u{c}g\u{b}h".into()),
                Some("ü,\"x\"".into()),
            ],
            vec![Some("3".into()), Some("\\N".into()), Some("\\\\n".into())],
        ];
        for size in [1, 3, data.len()] {
            let mut rows = CopyTextRows::default();
            let mut got = Vec::new();
            for chunk in data.as_bytes().chunks(size) {
                rows.push(chunk, |values| {
                    got.push(
                        values
                            .iter()
                            .map(|v| v.map(str::to_string))
                            .collect::<Vec<_>>(),
                    )
                })
                .unwrap();
            }
            rows.finish().unwrap();
            assert_eq!(got, expected, "chunks of {size}");
        }
        let mut cut = CopyTextRows::default();
        cut.push(b"1\tx", |_| panic!("no row is complete")).unwrap();
        assert!(cut.finish().is_err());
    }
}
