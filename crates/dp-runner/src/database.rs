//! Databases the activities talk to: a `JdbcDatabase`, `RdsDatabase` or `RedshiftDatabase` object turned into a
//! [`Target`] (engine, host, port, database, user), a [`Connection`] to it (PostgreSQL and Redshift through
//! tokio-postgres, MySQL and MariaDB through mysql_async, TLS through rustls), and a [`Canceller`] that stops a
//! running statement on the server, not just in the client.
//!
//! This module knows SQL only as far as every activity needs it: splitting a script into statements, binding `?`
//! placeholders, quoting literals, streaming a query's rows as text and loading rows. It must never put a password
//! in an error, a log line or a `Debug` output: errors name host, port and database only.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use dp_model::types::PipelineObject;
use futures_util::{SinkExt as _, StreamExt as _};

use crate::activity::{Failure, Task, string_field, string_fields};

/// How long a connection may take to open (`connectTimeout` in `jdbcProperties`, in seconds, overrides it).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which protocol a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// Amazon Redshift (the PostgreSQL protocol; locally PostgreSQL stands in for it).
    Redshift,
    /// MySQL or MariaDB.
    MySql,
}

impl Engine {
    fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Redshift => 5439,
            Engine::MySql => 3306,
        }
    }

    /// Whether the PostgreSQL protocol is spoken.
    pub fn is_postgres(self) -> bool {
        matches!(self, Engine::Postgres | Engine::Redshift)
    }
}

/// Database URLs for `RdsDatabase` (`rdsInstanceId`) and `RedshiftDatabase` (`clusterId`) objects, which carry no
/// address of their own: `dp-task-runner --database ID=URL` (repeatable) or the config file's `databases`.
#[derive(Clone, Default)]
pub struct DatabaseUrls(BTreeMap<String, String>);

impl DatabaseUrls {
    /// The URLs of `pairs` (id, URL), each checked.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<DatabaseUrls, String> {
        let mut map = BTreeMap::new();
        for (id, url) in pairs {
            parse_url(&url).map_err(|e| format!("--database {id}=…: {e}"))?;
            map.insert(id, url);
        }
        Ok(DatabaseUrls(map))
    }

    /// Parses `ID=URL` (the flag's form).
    pub fn parse_flag(text: &str) -> Result<(String, String), String> {
        match text.split_once('=') {
            Some((id, url)) if !id.trim().is_empty() && !url.trim().is_empty() => {
                Ok((id.trim().to_string(), url.trim().to_string()))
            }
            _ => Err(format!(
                "expected ID=URL (an rdsInstanceId or clusterId, then a URL such as \
                 postgres://host:5432/db or mysql://host:3306/db), got {:?}",
                redact_url(text)
            )),
        }
    }

    /// The URL for `id`.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    /// The passwords in the URLs (for the runner log's redaction).
    pub fn secrets(&self) -> Vec<String> {
        self.0
            .values()
            .filter_map(|u| parse_url(u).ok())
            .filter_map(|p| p.password)
            .collect()
    }
}

impl fmt::Debug for DatabaseUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, redact_url(v))))
            .finish()
    }
}

/// A URL with any `user:password@` password replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// The parts of a database URL (`jdbc:postgresql://host:port/db?k=v`, `postgres://user:pw@host/db`).
#[derive(Clone, PartialEq, Eq)]
struct ParsedUrl {
    engine: Engine,
    host: String,
    port: u16,
    database: Option<String>,
    user: Option<String>,
    password: Option<String>,
    properties: Vec<(String, String)>,
}

fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let text = url.trim();
    let text = text.strip_prefix("jdbc:").unwrap_or(text);
    let Some((scheme, rest)) = text.split_once("://") else {
        let scheme = text.split(':').next().unwrap_or(text);
        return Err(unsupported_scheme(scheme));
    };
    let engine = match scheme.to_ascii_lowercase().as_str() {
        "postgresql" | "postgres" => Engine::Postgres,
        "redshift" => Engine::Redshift,
        "mysql" | "mariadb" => Engine::MySql,
        other => return Err(unsupported_scheme(other)),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    // A MySQL URL may list several hosts; the first is used.
    let hostport = hostport.split(',').next().unwrap_or("");
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        let (h, p) = stripped.split_once(']').unwrap_or((stripped, ""));
        (h.to_string(), p.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    if host.is_empty() {
        return Err(format!("{}: no host", redact_url(url)));
    }
    let port = if port.is_empty() {
        engine.default_port()
    } else {
        port.parse()
            .map_err(|_| format!("{}: the port {port:?} is not a number", redact_url(url)))?
    };
    let (user, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((u, p)) => (Some(decode(u)), Some(decode(p))),
            None => (Some(decode(info)), None),
        },
        None => (None, None),
    };
    let mut properties: Vec<(String, String)> = query
        .split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let mut user = user;
    let mut password = password;
    properties.retain(|(k, v)| match k.as_str() {
        "user" => {
            user.get_or_insert_with(|| v.clone());
            false
        }
        "password" => {
            password.get_or_insert_with(|| v.clone());
            false
        }
        _ => true,
    });
    Ok(ParsedUrl {
        engine,
        host,
        port,
        database: Some(decode(path)).filter(|d| !d.is_empty()),
        user,
        password,
        properties,
    })
}

fn unsupported_scheme(scheme: &str) -> String {
    format!(
        "dp-task-runner has no driver for {scheme} databases (it connects to PostgreSQL, Redshift, MySQL and \
         MariaDB: jdbc:postgresql://, jdbc:redshift://, jdbc:mysql://, jdbc:mariadb://)"
    )
}

/// Percent-decoding of URL parts (`%40` in a password).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A database to connect to. `Debug` never shows the password.
#[derive(Clone)]
pub struct Target {
    /// The object's id (`MyDatabase`).
    pub object_id: String,
    /// The protocol.
    pub engine: Engine,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The database name.
    pub database: String,
    /// The user.
    pub user: Option<String>,
    password: Option<String>,
    /// `jdbcProperties` and URL parameters (`sslmode=require`, `useSSL=true`, `connectTimeout=10`).
    pub properties: Vec<(String, String)>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("object_id", &self.object_id)
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.engine {
            Engine::Postgres => "PostgreSQL",
            Engine::Redshift => "Redshift",
            Engine::MySql => "MySQL",
        };
        write!(
            f,
            "{kind} database {:?} at {}:{}",
            self.database, self.host, self.port
        )?;
        if let Some(user) = &self.user {
            write!(f, " as {user:?}")?;
        }
        write!(f, " ({})", self.object_id)
    }
}

impl Target {
    /// The database of a `JdbcDatabase`, `RdsDatabase` or `RedshiftDatabase` object; an unknown engine or a missing
    /// address is an error (`errorId` `MissingJdbcDriver`, `UnknownDatabase`, `InvalidTaskObject`).
    pub fn from_object(object: &PipelineObject, urls: &DatabaseUrls) -> Result<Target, Failure> {
        let kind = string_field(object, "type").unwrap_or_default();
        let invalid = |message: String| Failure::new("InvalidTaskObject", message);
        let url = match kind {
            "JdbcDatabase" => string_field(object, "connectionString")
                .map(str::to_string)
                .ok_or_else(|| {
                    invalid(format!(
                        "the JdbcDatabase {} has no connectionString",
                        object.id
                    ))
                })?,
            "RdsDatabase" | "RedshiftDatabase" => {
                let key = if kind == "RdsDatabase" {
                    "rdsInstanceId"
                } else {
                    "clusterId"
                };
                let own = (kind == "RedshiftDatabase")
                    .then(|| string_field(object, "connectionString"))
                    .flatten();
                match own {
                    Some(url) => url.to_string(),
                    None => {
                        let id = string_field(object, key).unwrap_or(&object.id);
                        urls.get(id)
                            .or_else(|| urls.get(&object.id))
                            .map(str::to_string)
                            .ok_or_else(|| {
                                Failure::new(
                                    "UnknownDatabase",
                                    format!(
                                        "the {kind} {} ({key} {id:?}) has no address here: start dp-task-runner \
                                         with --database {id}=URL (for example postgres://host:5432/db or \
                                         mysql://host:3306/db)",
                                        object.id
                                    ),
                                )
                            })?
                    }
                }
            }
            other => {
                return Err(invalid(format!(
                    "{} is a {other:?}, not a database (JdbcDatabase, RdsDatabase or RedshiftDatabase)",
                    object.id
                )));
            }
        };
        let mut parsed = parse_url(&url).map_err(|e| {
            let id = if e.starts_with("dp-task-runner has no driver") {
                "MissingJdbcDriver"
            } else {
                "InvalidTaskObject"
            };
            Failure::new(id, format!("{} {}: {e}", kind, object.id))
        })?;
        if kind == "RedshiftDatabase" && parsed.engine == Engine::Postgres {
            parsed.engine = Engine::Redshift;
        }
        for property in string_fields(object, "jdbcProperties") {
            let (k, v) = property.split_once('=').unwrap_or((property, ""));
            parsed
                .properties
                .push((k.trim().to_string(), v.trim().to_string()));
        }
        let database = string_field(object, "databaseName")
            .map(str::to_string)
            .or(parsed.database)
            .ok_or_else(|| {
                invalid(format!(
                    "{kind} {}: no database name (databaseName, or the connectionString's path)",
                    object.id
                ))
            })?;
        Ok(Target {
            object_id: object.id.clone(),
            engine: parsed.engine,
            host: parsed.host,
            port: parsed.port,
            database,
            user: string_field(object, "username")
                .map(str::to_string)
                .or(parsed.user),
            password: string_field(object, "*password")
                .map(str::to_string)
                .or(parsed.password),
            properties: parsed.properties,
        })
    }

    /// The database the attempt refers to under `database`, or the one `node` (a data node) refers to.
    pub fn of(
        task: &Task,
        node: Option<&PipelineObject>,
        urls: &DatabaseUrls,
    ) -> Result<Target, Failure> {
        let object = match node {
            Some(node) => task.referenced(node, "database"),
            None => task.refs("database").into_iter().next(),
        };
        let Some(object) = object else {
            let owner = node.map_or(task.attempt_id.as_str(), |n| n.id.as_str());
            return Err(Failure::new(
                "InvalidTaskObject",
                format!(
                    "{owner} refers to no database (its database field is missing, or the object is not in the task)"
                ),
            ));
        };
        Target::from_object(object, urls)
    }

    fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn connect_timeout(&self) -> Duration {
        // JDBC drivers take connectTimeout in seconds (PostgreSQL) or milliseconds (MySQL); both are accepted
        // here as seconds unless the number is clearly milliseconds.
        match self
            .property("connectTimeout")
            .and_then(|v| v.parse::<u64>().ok())
        {
            Some(0) | None => CONNECT_TIMEOUT,
            Some(n) if n >= 1000 => Duration::from_millis(n),
            Some(n) => Duration::from_secs(n),
        }
    }

    /// Opens a connection (bounded by the connect timeout); errors name host, port and database, never the
    /// password.
    pub async fn connect(&self) -> Result<Connection, DatabaseError> {
        let timeout = self.connect_timeout();
        let attempt = async {
            if self.engine.is_postgres() {
                self.connect_postgres(timeout).await
            } else {
                self.connect_mysql().await
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(connected) => connected,
            Err(_) => Err(DatabaseError::connect(
                self,
                format!("no answer within {} s", timeout.as_secs()),
            )),
        }
    }

    async fn connect_postgres(&self, timeout: Duration) -> Result<Connection, DatabaseError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .connect_timeout(timeout)
            .application_name("dp-task-runner");
        if let Some(user) = &self.user {
            config.user(user);
        }
        if let Some(password) = &self.password {
            config.password(password);
        }
        let ssl = self
            .property("sslmode")
            .map(str::to_ascii_lowercase)
            .or_else(|| {
                self.property("ssl")
                    .filter(|v| v.eq_ignore_ascii_case("true"))
                    .map(|_| "require".to_string())
            });
        let mode = match ssl.as_deref() {
            Some("disable") => tokio_postgres::config::SslMode::Disable,
            Some("require" | "verify-ca" | "verify-full") => {
                tokio_postgres::config::SslMode::Require
            }
            _ => tokio_postgres::config::SslMode::Prefer,
        };
        config.ssl_mode(mode);
        let verify = matches!(ssl.as_deref(), Some("verify-ca" | "verify-full"));
        let tls = tls_connector(verify);
        let (client, connection) = config
            .connect(tls.clone())
            .await
            .map_err(|e| DatabaseError::connect(self, postgres_error_text(&e)))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let cancel = client.cancel_token();
        Ok(Connection {
            target: self.clone(),
            inner: Inner::Postgres {
                client,
                cancel,
                tls,
                driver,
            },
        })
    }

    fn mysql_opts(&self) -> mysql_async::Opts {
        let ssl = self
            .property("useSSL")
            .or(self.property("requireSSL"))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || self.property("sslMode").is_some_and(|v| {
                matches!(
                    v.to_ascii_uppercase().as_str(),
                    "REQUIRED" | "VERIFY_CA" | "VERIFY_IDENTITY"
                )
            });
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .db_name(Some(self.database.clone()))
            .user(self.user.clone())
            .pass(self.password.clone())
            .prefer_socket(false)
            .ssl_opts(ssl.then(mysql_async::SslOpts::default))
            .into()
    }

    async fn connect_mysql(&self) -> Result<Connection, DatabaseError> {
        let opts = self.mysql_opts();
        let conn = mysql_async::Conn::new(opts.clone())
            .await
            .map_err(|e| DatabaseError::connect(self, mysql_error_text(&e)))?;
        Ok(Connection {
            target: self.clone(),
            inner: Inner::MySql { conn, opts },
        })
    }

    /// The password, for the runner log's redaction.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
}

/// The TLS connector for PostgreSQL. With `verify` (`sslmode=verify-ca`/`verify-full`) the server's certificate
/// must chain to this machine's roots and name the host; without (`prefer`, `require`: libpq's and pgjdbc's
/// meaning) the connection is encrypted and the server must hold its certificate's key, but the certificate itself
/// is not checked.
fn tls_connector(verify: bool) -> tokio_postgres_rustls::MakeRustlsConnect {
    let config = if verify {
        dp_tls::verifying(dp_tls::native_roots())
    } else {
        dp_tls::encrypt_only()
    };
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// A failed database operation: what was being done, against which database, and the server's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseError {
    /// `DatabaseConnectionFailed`, `SqlError`, `DataLoadFailed`.
    pub error_id: &'static str,
    /// One paragraph, without passwords.
    pub message: String,
    /// For a load: the 1-based number of the row the server refused, counted from the start of the load.
    pub row: Option<u64>,
}

impl DatabaseError {
    fn connect(target: &Target, why: String) -> DatabaseError {
        let mut message = format!("cannot connect to the {target}: {why}");
        if let Some(password) = target.password.as_deref().filter(|p| !p.is_empty()) {
            message = message.replace(password, "***");
        }
        DatabaseError {
            error_id: "DatabaseConnectionFailed",
            message,
            row: None,
        }
    }

    fn sql(message: String) -> DatabaseError {
        DatabaseError {
            error_id: "SqlError",
            message,
            row: None,
        }
    }

    /// As the attempt's error fields.
    pub fn failure(&self) -> Failure {
        Failure::new(self.error_id, self.message.clone())
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DatabaseError {}

fn postgres_error_text(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        if let Some(place) = db.where_() {
            text.push_str(&format!(" (where: {place})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn mysql_error_text(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Server(e) => format!("ERROR {} ({}): {}", e.code, e.state, e.message),
        other => other.to_string(),
    }
}

/// An open connection.
pub struct Connection {
    target: Target,
    inner: Inner,
}

// One connection per attempt: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Postgres {
        client: tokio_postgres::Client,
        cancel: tokio_postgres::CancelToken,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        driver: tokio::task::JoinHandle<()>,
    },
    MySql {
        conn: mysql_async::Conn,
        opts: mysql_async::Opts,
    },
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Inner::Postgres { driver, .. } = &self.inner {
            driver.abort();
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Stops the statement a [`Connection`] is running, on the server: PostgreSQL's cancel request, or `KILL QUERY`
/// over a second MySQL connection.
#[derive(Clone)]
pub struct Canceller {
    inner: CancellerInner,
}

#[derive(Clone)]
enum CancellerInner {
    Postgres(
        tokio_postgres::CancelToken,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
    MySql(mysql_async::Opts, u32),
}

impl Canceller {
    /// Asks the server to stop the running statement; errors are returned for the log, never retried.
    pub async fn cancel(&self) -> Result<(), String> {
        let work = async {
            match &self.inner {
                CancellerInner::Postgres(token, tls) => token
                    .cancel_query(tls.clone())
                    .await
                    .map_err(|e| postgres_error_text(&e)),
                CancellerInner::MySql(opts, id) => {
                    use mysql_async::prelude::Queryable as _;
                    let mut conn = mysql_async::Conn::new(opts.clone())
                        .await
                        .map_err(|e| mysql_error_text(&e))?;
                    let killed = conn
                        .query_drop(format!("KILL QUERY {id}"))
                        .await
                        .map_err(|e| mysql_error_text(&e));
                    let _ = conn.disconnect().await;
                    killed
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err("the cancel request got no answer".into()))
    }
}

/// What one statement did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Affected {
    /// Rows changed or returned.
    pub rows: u64,
}

impl Connection {
    /// The database.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The handle that cancels this connection's running statement on the server.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            inner: match &self.inner {
                Inner::Postgres { cancel, tls, .. } => {
                    CancellerInner::Postgres(cancel.clone(), tls.clone())
                }
                Inner::MySql { conn, opts } => CancellerInner::MySql(opts.clone(), conn.id()),
            },
        }
    }

    /// Quotes `value` as a string literal of this database (the server converts it to the column's type).
    pub fn literal(&self, value: &str) -> String {
        quote_literal(self.target.engine, value)
    }

    /// Runs one statement (no result rows kept) and returns the rows it changed or returned.
    pub async fn execute(&mut self, statement: &str) -> Result<Affected, DatabaseError> {
        match &mut self.inner {
            Inner::Postgres { client, .. } => {
                let stream = client
                    .simple_query_raw(statement)
                    .await
                    .map_err(|e| DatabaseError::sql(postgres_error_text(&e)))?;
                futures_util::pin_mut!(stream);
                let mut rows = 0;
                while let Some(message) = stream.next().await {
                    if let tokio_postgres::SimpleQueryMessage::CommandComplete(n) =
                        message.map_err(|e| DatabaseError::sql(postgres_error_text(&e)))?
                    {
                        rows += n;
                    }
                }
                Ok(Affected { rows })
            }
            Inner::MySql { conn, .. } => {
                use mysql_async::prelude::Queryable as _;
                let mut result = conn
                    .query_iter(statement)
                    .await
                    .map_err(|e| DatabaseError::sql(mysql_error_text(&e)))?;
                let mut rows = result.affected_rows();
                while result
                    .next()
                    .await
                    .map_err(|e| DatabaseError::sql(mysql_error_text(&e)))?
                    .is_some()
                {
                    rows += 1;
                }
                drop(result);
                Ok(Affected { rows })
            }
        }
    }

    /// Runs one statement whose `?` placeholders take `values` in order, bound by the server as the parameters of
    /// a prepared statement (PostgreSQL: the placeholders become `$1`, `$2`…, each value sent as text for the server
    /// to read as the parameter's type; MySQL: `?` parameters sent as strings), never quoted into the SQL text.
    pub async fn execute_bound(
        &mut self,
        statement: &str,
        values: &[Option<&str>],
    ) -> Result<Affected, DatabaseError> {
        match &mut self.inner {
            Inner::Postgres { client, .. } => {
                let numbered = numbered_placeholders(statement);
                let retry = self.target.engine == Engine::Postgres;
                let prepared = prepare_untyped(client, &numbered, values.len(), retry).await?;
                let parameters: Vec<TextParameter<'_>> =
                    values.iter().map(|v| TextParameter(*v)).collect();
                let rows = client
                    .execute_raw(&prepared, parameters.iter())
                    .await
                    .map_err(|e| DatabaseError::sql(postgres_error_text(&e)))?;
                Ok(Affected { rows })
            }
            Inner::MySql { conn, .. } => {
                use mysql_async::prelude::Queryable as _;
                let parameters: Vec<mysql_async::Value> = values
                    .iter()
                    .map(|v| match v {
                        Some(v) => mysql_async::Value::Bytes(v.as_bytes().to_vec()),
                        None => mysql_async::Value::NULL,
                    })
                    .collect();
                let mut result = conn
                    .exec_iter(statement, mysql_async::Params::Positional(parameters))
                    .await
                    .map_err(|e| DatabaseError::sql(mysql_error_text(&e)))?;
                let mut rows = result.affected_rows();
                while result
                    .next()
                    .await
                    .map_err(|e| DatabaseError::sql(mysql_error_text(&e)))?
                    .is_some()
                {
                    rows += 1;
                }
                drop(result);
                Ok(Affected { rows })
            }
        }
    }

    /// Streams the rows of `query` as text values (`None` for NULL) to `sink`, one row at a time; returns the
    /// column names (empty when the query returned no row description) and the row count. The sink failing
    /// stops the query.
    pub async fn query_text<S: RowSink>(
        &mut self,
        query: &str,
        sink: &mut S,
    ) -> Result<(Vec<String>, u64), QueryError<S::Error>> {
        let mut columns = Vec::new();
        let mut count = 0u64;
        match &mut self.inner {
            Inner::Postgres { client, .. } => {
                let stream = client.simple_query_raw(query).await.map_err(|e| {
                    QueryError::Database(DatabaseError::sql(postgres_error_text(&e)))
                })?;
                futures_util::pin_mut!(stream);
                while let Some(message) = stream.next().await {
                    match message.map_err(|e| {
                        QueryError::Database(DatabaseError::sql(postgres_error_text(&e)))
                    })? {
                        tokio_postgres::SimpleQueryMessage::RowDescription(described) => {
                            columns = described.iter().map(|c| c.name().to_string()).collect();
                        }
                        tokio_postgres::SimpleQueryMessage::Row(row) => {
                            let values: Vec<Option<&str>> =
                                (0..row.len()).map(|i| row.get(i)).collect();
                            count += 1;
                            sink.row(&values).await.map_err(QueryError::Sink)?;
                        }
                        _ => {}
                    }
                }
            }
            Inner::MySql { conn, .. } => {
                use mysql_async::prelude::Queryable as _;
                let mut result = conn
                    .query_iter(query)
                    .await
                    .map_err(|e| QueryError::Database(DatabaseError::sql(mysql_error_text(&e))))?;
                columns = result
                    .columns_ref()
                    .iter()
                    .map(|c| c.name_str().into_owned())
                    .collect();
                while let Some(row) = result
                    .next()
                    .await
                    .map_err(|e| QueryError::Database(DatabaseError::sql(mysql_error_text(&e))))?
                {
                    let texts: Vec<Option<String>> = (0..row.len())
                        .map(|i| match row.as_ref(i) {
                            None | Some(mysql_async::Value::NULL) => None,
                            Some(mysql_async::Value::Bytes(b)) => {
                                Some(String::from_utf8_lossy(b).into_owned())
                            }
                            Some(other) => Some(other.as_sql(true).trim_matches('\'').to_string()),
                        })
                        .collect();
                    let values: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
                    count += 1;
                    sink.row(&values).await.map_err(QueryError::Sink)?;
                }
            }
        }
        Ok((columns, count))
    }

    /// The column names of `table` (in order), from a query that returns no row.
    pub async fn table_columns(&mut self, table: &str) -> Result<Vec<String>, DatabaseError> {
        let (columns, _) = self
            .query_text(&format!("SELECT * FROM {table} WHERE 1 = 0"), &mut Discard)
            .await
            .map_err(|e| match e {
                QueryError::Database(e) => e,
                QueryError::Sink(never) => match never {},
            })?;
        Ok(columns)
    }

    /// Whether `table` exists (a query on it succeeds).
    pub async fn table_exists(&mut self, table: &str) -> bool {
        self.table_columns(table).await.is_ok()
    }

    /// Runs `statements` (several, separated by `;`) as one request and reads every result, so an error in any of
    /// them is returned (MySQL reports a later statement's error only when its result is read).
    pub async fn execute_batch(&mut self, statements: &str) -> Result<(), DatabaseError> {
        match &mut self.inner {
            Inner::Postgres { .. } => self.execute(statements).await.map(|_| ()),
            Inner::MySql { conn, .. } => {
                use mysql_async::prelude::Queryable as _;
                conn.query_iter(statements)
                    .await
                    .map_err(|e| DatabaseError::sql(mysql_error_text(&e)))?
                    .drop_result()
                    .await
                    .map_err(|e| DatabaseError::sql(mysql_error_text(&e)))
            }
        }
    }

    /// Streams PostgreSQL `COPY … TO STDOUT` data: `statement` is the COPY statement; the stream yields the rows in
    /// COPY's text format as the server sends them.
    pub async fn copy_out(
        &mut self,
        statement: &str,
    ) -> Result<
        std::pin::Pin<
            Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, DatabaseError>> + Send>,
        >,
        DatabaseError,
    > {
        let Inner::Postgres { client, .. } = &mut self.inner else {
            return Err(DatabaseError::sql(
                "COPY TO STDOUT needs a PostgreSQL database".into(),
            ));
        };
        let stream = client
            .copy_out(statement)
            .await
            .map_err(|e| DatabaseError::sql(postgres_error_text(&e)))?;
        Ok(Box::pin(stream.map(|chunk| {
            chunk.map_err(|e| DatabaseError::sql(postgres_error_text(&e)))
        })))
    }

    /// Streams PostgreSQL `COPY ... FROM STDIN` data: `statement` is the COPY statement, `chunks` yields the
    /// encoded rows. Returns the rows the server stored.
    pub async fn copy_in<S>(&mut self, statement: &str, chunks: S) -> Result<u64, DatabaseError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, DatabaseError>>,
    {
        let Inner::Postgres { client, .. } = &mut self.inner else {
            return Err(DatabaseError::sql(
                "COPY FROM STDIN needs a PostgreSQL or Redshift database".into(),
            ));
        };
        let sink = client
            .copy_in::<str, bytes::Bytes>(statement)
            .await
            .map_err(|e| copy_error(&e))?;
        futures_util::pin_mut!(sink);
        futures_util::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if let Err(e) = sink.send(chunk).await {
                return Err(copy_error(&e));
            }
        }
        sink.as_mut().finish().await.map_err(|e| copy_error(&e))
    }
}

/// A COPY error, with the server's line number (`COPY t, line 3, column n: "x"`) kept as the row.
fn copy_error(error: &tokio_postgres::Error) -> DatabaseError {
    let row = error
        .as_db_error()
        .and_then(|db| db.where_())
        .and_then(|w| w.split(", line ").nth(1))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        });
    DatabaseError {
        error_id: "DataLoadFailed",
        message: postgres_error_text(error),
        row,
    }
}

/// Where [`Connection::query_text`] sends rows.
pub trait RowSink: Send {
    /// Why the sink stopped the query.
    type Error: Send;
    /// Takes one row.
    fn row(
        &mut self,
        values: &[Option<&str>],
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send;
}

/// A sink that keeps nothing.
struct Discard;

impl RowSink for Discard {
    type Error = std::convert::Infallible;
    async fn row(&mut self, _values: &[Option<&str>]) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A streamed query that failed: in the database, or in the consumer of its rows.
#[derive(Debug)]
pub enum QueryError<E> {
    /// The database refused or failed the query.
    Database(DatabaseError),
    /// The consumer stopped it.
    Sink(E),
}

/// `value` as a string literal of `engine`.
pub fn quote_literal(engine: Engine, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match (engine, c) {
            (_, '\'') => out.push_str("''"),
            (Engine::MySql, '\\') => out.push_str("\\\\"),
            (Engine::MySql, '\0') => out.push_str("\\0"),
            (_, c) => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Splits a script into statements at `;` outside quotes (`'…'`, `"…"`, `` `…` ``, `$tag$…$tag$`) and comments
/// (`-- …`, `/* … */`); empty statements are dropped.
pub fn split_statements(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    scan(script, |piece| match piece {
        Piece::Separator => {
            if !current.trim().is_empty() {
                statements.push(current.trim().to_string());
            }
            current.clear();
        }
        Piece::Text(t) | Piece::Quoted(t) | Piece::Comment(t) => current.push_str(t),
        Piece::Placeholder => current.push('?'),
    });
    if !current.trim().is_empty() && !only_comments(&current) {
        statements.push(current.trim().to_string());
    }
    statements.retain(|s| !only_comments(s));
    statements
}

fn only_comments(statement: &str) -> bool {
    let mut meaningful = false;
    scan(statement, |piece| match piece {
        Piece::Text(t) if !t.trim().is_empty() => meaningful = true,
        Piece::Quoted(_) | Piece::Placeholder => meaningful = true,
        _ => {}
    });
    !meaningful
}

/// How many `?` placeholders `statement` has (outside quotes and comments).
pub fn placeholders(statement: &str) -> usize {
    let mut n = 0;
    scan(statement, |piece| {
        if matches!(piece, Piece::Placeholder) {
            n += 1;
        }
    });
    n
}

/// `statement` with each `?` placeholder replaced by the next of `values`, quoted as a literal of `engine`; the
/// values left over are returned untouched in `values`.
pub fn bind(statement: &str, engine: Engine, values: &mut std::slice::Iter<'_, String>) -> String {
    let mut out = String::with_capacity(statement.len());
    scan(statement, |piece| match piece {
        Piece::Placeholder => match values.next() {
            Some(v) => out.push_str(&quote_literal(engine, v)),
            None => out.push('?'),
        },
        Piece::Text(t) | Piece::Quoted(t) | Piece::Comment(t) => out.push_str(t),
        Piece::Separator => out.push(';'),
    });
    out
}

/// `statement` with its `?` placeholders replaced by `values` in order (`None` as `NULL`).
pub fn bind_row(statement: &str, engine: Engine, values: &[Option<&str>]) -> String {
    let mut out = String::with_capacity(statement.len() + 16 * values.len());
    let mut next = values.iter();
    scan(statement, |piece| match piece {
        Piece::Placeholder => match next.next() {
            Some(Some(v)) => out.push_str(&quote_literal(engine, v)),
            Some(None) => out.push_str("NULL"),
            None => out.push('?'),
        },
        Piece::Text(t) | Piece::Quoted(t) | Piece::Comment(t) => out.push_str(t),
        Piece::Separator => out.push(';'),
    });
    out
}

/// `statement` with its `?` placeholders numbered PostgreSQL's way (`$1`, `$2`…).
pub fn numbered_placeholders(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() + 8);
    let mut n = 0;
    scan(statement, |piece| match piece {
        Piece::Placeholder => {
            n += 1;
            out.push_str(&format!("${n}"));
        }
        Piece::Text(t) | Piece::Quoted(t) | Piece::Comment(t) => out.push_str(t),
        Piece::Separator => out.push(';'),
    });
    out
}

/// Prepares `statement` leaving its parameters' types to the server, as it would type a quoted literal. On
/// PostgreSQL (`retry`), where the server cannot tell a parameter's type (`could not determine data type of
/// parameter $N`, as in `concat($1, …)`), that parameter is declared `text`, which is what an untyped literal there
/// becomes, and the statement prepared again; a savepoint keeps the failed attempt from aborting the transaction
/// the statement runs in (outside a transaction the savepoint is refused, and nothing needs keeping). Redshift has
/// no savepoints: there the first refusal is the error.
async fn prepare_untyped(
    client: &tokio_postgres::Client,
    statement: &str,
    parameters: usize,
    retry: bool,
) -> Result<tokio_postgres::Statement, DatabaseError> {
    use tokio_postgres::types::{Kind, Type};
    const SAVEPOINT: &str = "dp_runner_parameters";
    let failed = |e: tokio_postgres::Error| DatabaseError::sql(postgres_error_text(&e));
    // OID 0: "unspecified", the server infers the type.
    let unspecified = Type::new("unspecified".into(), 0, Kind::Pseudo, "pg_catalog".into());
    let protected = retry
        && client
            .simple_query(&format!("SAVEPOINT {SAVEPOINT}"))
            .await
            .is_ok();
    let mut types: Vec<Type> = Vec::new();
    loop {
        let e = match client.prepare_typed(statement, &types).await {
            Ok(prepared) => {
                if protected {
                    client
                        .simple_query(&format!("RELEASE SAVEPOINT {SAVEPOINT}"))
                        .await
                        .map_err(failed)?;
                }
                return Ok(prepared);
            }
            Err(e) => e,
        };
        if protected {
            client
                .simple_query(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"))
                .await
                .map_err(failed)?;
        }
        let untyped = e
            .as_db_error()
            .filter(|db| db.code() == &tokio_postgres::error::SqlState::INDETERMINATE_DATATYPE)
            .and_then(|db| db.message().rsplit_once('$'))
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .filter(|&n| n >= 1 && n <= parameters);
        match untyped {
            Some(n) if retry && types.get(n - 1) != Some(&Type::TEXT) => {
                if types.len() < n {
                    types.resize(n, unspecified.clone());
                }
                types[n - 1] = Type::TEXT;
            }
            _ => return Err(failed(e)),
        }
    }
}

/// A PostgreSQL parameter sent in the text format whatever its type, so the server parses it as it would parse a
/// literal of the parameter's type (`None` is NULL).
#[derive(Debug)]
struct TextParameter<'a>(Option<&'a str>);

impl tokio_postgres::types::ToSql for TextParameter<'_> {
    fn to_sql(
        &self,
        _ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(value) => {
                out.extend_from_slice(value.as_bytes());
                Ok(tokio_postgres::types::IsNull::No)
            }
            None => Ok(tokio_postgres::types::IsNull::Yes),
        }
    }

    fn accepts(_ty: &tokio_postgres::types::Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &tokio_postgres::types::Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

enum Piece<'a> {
    Text(&'a str),
    Quoted(&'a str),
    Comment(&'a str),
    Placeholder,
    Separator,
}

fn scan<'a>(sql: &'a str, mut out: impl FnMut(Piece<'a>)) {
    let bytes = sql.as_bytes();
    let (mut i, mut start) = (0, 0);
    let flush = |out: &mut dyn FnMut(Piece<'a>), from: usize, to: usize| {
        if to > from {
            out(Piece::Text(&sql[from..to]));
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        let end = match b {
            b'\'' | b'"' | b'`' => {
                // A doubled quote inside is part of the literal; a backslash escapes the next character (MySQL).
                let mut j = i + 1;
                loop {
                    if j >= bytes.len() {
                        break j;
                    }
                    if bytes[j] == b'\\' && b != b'`' {
                        j += 2;
                        continue;
                    }
                    if bytes[j] == b {
                        if bytes.get(j + 1) == Some(&b) {
                            j += 2;
                            continue;
                        }
                        break j + 1;
                    }
                    j += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => sql[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |n| i + 2 + n + 2),
            b'$' => {
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(t) if bytes[t] == b'$' => {
                        let tag = &sql[i..=t];
                        sql[t + 1..]
                            .find(tag)
                            .map_or(bytes.len(), |n| t + 1 + n + tag.len())
                    }
                    _ => {
                        i += 1;
                        continue;
                    }
                }
            }
            b'?' | b';' => {
                flush(&mut out, start, i);
                out(if b == b'?' {
                    Piece::Placeholder
                } else {
                    Piece::Separator
                });
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let end = end.min(bytes.len());
        flush(&mut out, start, i);
        if b == b'-' || b == b'/' {
            out(Piece::Comment(&sql[i..end]));
        } else {
            out(Piece::Quoted(&sql[i..end]));
        }
        i = end;
        start = end;
    }
    flush(&mut out, start, bytes.len());
}

/// Whether a script manages its own transactions (a `BEGIN`, `START TRANSACTION`, `COMMIT` or `ROLLBACK`
/// statement), so it is not wrapped in one.
pub fn manages_transactions(statements: &[String]) -> bool {
    statements.iter().any(|s| {
        let first: String = s
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(';')
            .to_ascii_uppercase();
        matches!(
            first.as_str(),
            "BEGIN" | "COMMIT" | "ROLLBACK" | "END" | "START"
        ) && (first != "START" || s.to_ascii_uppercase().contains("TRANSACTION"))
    })
}

/// Why [`supervise`] stopped the work before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The task was canceled (or the runner is stopping).
    Canceled,
    /// `attemptTimeout` passed.
    TimedOut,
}

/// The attempt's `attemptTimeout` in this runner's time (`None` when unset); a value that is not a period is an
/// `InvalidTaskObject` failure.
pub fn attempt_timeout(
    task: &Task,
    context: &crate::activity::TaskContext,
) -> Result<Option<Duration>, Failure> {
    match task.field("attemptTimeout") {
        None => Ok(None),
        Some(text) => crate::shell::parse_period(text)
            .map(|d| Some(context.service_duration(d)))
            .ok_or_else(|| {
                Failure::new(
                    "InvalidTaskObject",
                    format!(
                        "{}: attemptTimeout {text:?} is not a period such as \"30 minutes\"",
                        task.attempt_id
                    ),
                )
            }),
    }
}

/// Runs `work` until it ends, the task is canceled, or `deadline` passes; in the last two cases the running
/// statement is canceled on the server through `canceller` and `work` is given the cancel grace to return (the
/// server's "canceled" error), then dropped (which closes its connection, so the server rolls back).
pub async fn supervise<T>(
    context: &crate::activity::TaskContext,
    deadline: Option<tokio::time::Instant>,
    canceller: Option<&Canceller>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Stopped> {
    futures_util::pin_mut!(work);
    let timer = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let stopped = tokio::select! {
        done = &mut work => return Ok(done),
        _ = context.canceled() => Stopped::Canceled,
        _ = timer => Stopped::TimedOut,
    };
    if let Some(canceller) = canceller {
        if let Err(e) = canceller.cancel().await {
            context.log().warn(
                &format!("the running statement could not be canceled on the server: {e}"),
                &[],
            );
        }
        let _ = tokio::time::timeout(context.cancel_grace(), &mut work).await;
    }
    Err(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let check = |url: &str, expected: &str| {
            let got = match parse_url(url) {
                Ok(p) => format!(
                    "{:?} {}:{} db={:?} user={:?} pw={} props={:?}",
                    p.engine,
                    p.host,
                    p.port,
                    p.database,
                    p.user,
                    p.password.is_some(),
                    p.properties
                ),
                Err(e) => format!("error: {e}"),
            };
            assert_eq!(got, expected, "{url}");
        };
        check(
            "jdbc:postgresql://db.example:5433/sales?sslmode=require",
            "Postgres db.example:5433 db=Some(\"sales\") user=None pw=false props=[(\"sslmode\", \"require\")]",
        );
        check(
            "jdbc:mysql://h/shop",
            "MySql h:3306 db=Some(\"shop\") user=None pw=false props=[]",
        );
        check(
            "jdbc:mariadb://h:3307",
            "MySql h:3307 db=None user=None pw=false props=[]",
        );
        check(
            "jdbc:redshift://c.x.redshift.amazonaws.com/dev",
            "Redshift c.x.redshift.amazonaws.com:5439 db=Some(\"dev\") user=None pw=false props=[]",
        );
        check(
            "postgres://me:p%40ss@127.0.0.1/test",
            "Postgres 127.0.0.1:5432 db=Some(\"test\") user=Some(\"me\") pw=true props=[]",
        );
        check(
            "jdbc:mysql://h/db?user=u&password=secret&useSSL=false",
            "MySql h:3306 db=Some(\"db\") user=Some(\"u\") pw=true props=[(\"useSSL\", \"false\")]",
        );
        check(
            "jdbc:oracle:thin:@//h:1521/x",
            "error: dp-task-runner has no driver for oracle databases (it connects to PostgreSQL, Redshift, MySQL \
             and MariaDB: jdbc:postgresql://, jdbc:redshift://, jdbc:mysql://, jdbc:mariadb://)",
        );
        check(
            "jdbc:sqlserver://h:1433;databaseName=x",
            "error: dp-task-runner has no driver for sqlserver databases (it connects to PostgreSQL, Redshift, \
             MySQL and MariaDB: jdbc:postgresql://, jdbc:redshift://, jdbc:mysql://, jdbc:mariadb://)",
        );
        check("postgres://:5432/x", "error: postgres://:5432/x: no host");
        check(
            "mysql://u:pw@h:x/db",
            "error: mysql://u:***@h:x/db: the port \"x\" is not a number",
        );
        assert_eq!(
            format!(
                "{:?}",
                DatabaseUrls::new([("db-1".into(), "postgres://u:secret@h/d".into())]).unwrap()
            ),
            "{\"db-1\": \"postgres://u:***@h/d\"}"
        );
    }

    #[test]
    fn statements_and_placeholders() {
        let check = |script: &str, expected: &[&str]| {
            assert_eq!(split_statements(script), expected, "{script}");
        };
        check("select 1; select 2;", &["select 1", "select 2"]);
        check("select ';' ; select 2", &["select ';'", "select 2"]);
        check(
            "insert into t values ('it''s; fine'); -- done; really\n",
            &["insert into t values ('it''s; fine')"],
        );
        check(
            "create function f() returns int as $$ select 1; $$ language sql; select f()",
            &[
                "create function f() returns int as $$ select 1; $$ language sql",
                "select f()",
            ],
        );
        check("/* a; b */ select 1", &["/* a; b */ select 1"]);
        check("  ;; \n", &[]);
        check("select 1; -- trailing comment only", &["select 1"]);
        assert_eq!(placeholders("select ? , '?', \"?\" -- ?\n, ?"), 2);
        let args = ["O'Brien".to_string(), "a\\b".to_string()];
        let mut it = args.iter();
        assert_eq!(
            bind("select ?, '?', ?", Engine::Postgres, &mut it),
            "select 'O''Brien', '?', 'a\\b'"
        );
        let mut it = args.iter();
        assert_eq!(
            bind("select ?, ?", Engine::MySql, &mut it),
            "select 'O''Brien', 'a\\\\b'"
        );
        assert!(manages_transactions(&["BEGIN".into(), "commit".into()]));
        assert!(manages_transactions(&["start transaction".into()]));
        assert!(!manages_transactions(&[
            "select 1".into(),
            "insert into begin_log values (1)".into()
        ]));
        assert_eq!(
            numbered_placeholders("select ?, '?', \"?\", ? -- ?\n, $$?$$, ?"),
            "select $1, '?', \"?\", $2 -- ?\n, $$?$$, $3"
        );
    }
}
