//! The real database servers the data activities are tested against: PostgreSQL (`DP_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and MariaDB or MySQL (`DP_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`). Each [`Scratch`] creates a database of its own with a unique name on both
//! servers and drops them on drop, whether the test passed or not. A server that cannot be reached fails the test
//! with a message naming it; nothing is skipped.

use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::s3::block_on;

pub fn postgres_url() -> String {
    std::env::var("DP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("DP_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// One row as text values (`None` for NULL).
pub type Row = Vec<Option<String>>;

/// A database of this test's own on each server.
pub struct Scratch {
    pub name: String,
    postgres: tokio_postgres::Config,
    mysql: mysql_async::Opts,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "dp_it_{}_{}_{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let postgres = tokio_postgres::Config::from_str(&postgres_url())
            .unwrap_or_else(|e| panic!("DP_TEST_POSTGRES_URL {}: {e}", postgres_url()));
        let mysql = mysql_async::Opts::from_url(&mysql_url())
            .unwrap_or_else(|e| panic!("DP_TEST_MYSQL_URL {}: {e}", mysql_url()));
        let scratch = Scratch {
            name,
            postgres,
            mysql,
        };
        scratch.admin_pg(&format!("CREATE DATABASE {}", scratch.name));
        scratch.admin_my(&format!("CREATE DATABASE {}", scratch.name));
        scratch
    }

    fn admin_pg(&self, sql: &str) {
        let config = self.postgres.clone();
        block_on(async move {
            let (client, connection) =
                config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL at {} is needed by this test and cannot be reached: {e}",
                            postgres_url()
                        )
                    });
            let driver = tokio::spawn(connection);
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e:?}"));
            drop(client);
            let _ = driver.await;
        });
    }

    fn admin_my(&self, sql: &str) {
        use mysql_async::prelude::Queryable as _;
        let opts = self.mysql.clone();
        block_on(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap_or_else(|e| {
                panic!(
                    "MariaDB/MySQL at {} is needed by this test and cannot be reached: {e}",
                    mysql_url()
                )
            });
            conn.query_drop(sql)
                .await
                .unwrap_or_else(|e| panic!("MySQL: {sql}: {e}"));
            let _ = conn.disconnect().await;
        });
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = self.postgres.clone();
        config.dbname(&self.name);
        config
    }

    /// Runs `sql` (several statements allowed) in this test's PostgreSQL database and returns the rows of the
    /// last statement as text.
    pub fn pg(&self, sql: &str) -> Vec<Row> {
        let config = self.pg_config();
        block_on(async move {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL connects");
            let driver = tokio::spawn(connection);
            let messages = client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e:?}"));
            drop(client);
            let _ = driver.await;
            let mut rows = Vec::new();
            for message in messages {
                match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {}
                    _ => {}
                }
            }
            rows
        })
    }

    /// Runs `sql` (one statement, or several separated by `;` outside quotes) in this test's MySQL database and
    /// returns the rows of the last statement as text.
    pub fn my(&self, sql: &str) -> Vec<Row> {
        use mysql_async::prelude::Queryable as _;
        let opts: mysql_async::Opts = mysql_async::OptsBuilder::from_opts(self.mysql.clone())
            .db_name(Some(self.name.clone()))
            .into();
        let statements = dp_runner::database::split_statements(sql);
        block_on(async move {
            let mut conn = mysql_async::Conn::new(opts).await.expect("MySQL connects");
            let mut rows = Vec::new();
            for statement in &statements {
                let result: Vec<mysql_async::Row> = conn
                    .query(statement.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("MySQL: {statement}: {e}"));
                rows = result
                    .into_iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| match row.as_ref(i) {
                                None | Some(mysql_async::Value::NULL) => None,
                                Some(mysql_async::Value::Bytes(b)) => {
                                    Some(String::from_utf8_lossy(b).into_owned())
                                }
                                Some(v) => Some(v.as_sql(true)),
                            })
                            .collect()
                    })
                    .collect();
            }
            let _ = conn.disconnect().await;
            rows
        })
    }

    /// A `JdbcDatabase` connectionString for this test's PostgreSQL database.
    pub fn pg_jdbc(&self) -> String {
        let host = match self.postgres.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = self.postgres.get_ports().first().copied().unwrap_or(5432);
        format!("jdbc:postgresql://{host}:{port}/{}", self.name)
    }

    pub fn pg_user(&self) -> String {
        self.postgres.get_user().unwrap_or("postgres").to_string()
    }

    /// A `JdbcDatabase` connectionString for this test's MySQL database.
    pub fn my_jdbc(&self) -> String {
        format!(
            "jdbc:mysql://{}:{}/{}",
            self.mysql.ip_or_hostname(),
            self.mysql.tcp_port(),
            self.name
        )
    }

    pub fn my_user(&self) -> String {
        self.mysql.user().unwrap_or("root").to_string()
    }

    pub fn my_password(&self) -> String {
        self.mysql.pass().unwrap_or("").to_string()
    }

    pub fn pg_password(&self) -> String {
        self.postgres
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let pg = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let my = format!("DROP DATABASE IF EXISTS {}", self.name);
        let config = self.postgres.clone();
        let opts = self.mysql.clone();
        // Never panic in drop (a failing test is unwinding already): report and go on.
        block_on(async move {
            use mysql_async::prelude::Queryable as _;
            match config.connect(tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    let driver = tokio::spawn(connection);
                    if let Err(e) = client.batch_execute(&pg).await {
                        eprintln!("could not drop the PostgreSQL test database: {e}");
                    }
                    drop(client);
                    let _ = driver.await;
                }
                Err(e) => eprintln!("could not drop the PostgreSQL test database: {e}"),
            }
            match mysql_async::Conn::new(opts).await {
                Ok(mut conn) => {
                    if let Err(e) = conn.query_drop(&my).await {
                        eprintln!("could not drop the MySQL test database: {e}");
                    }
                    let _ = conn.disconnect().await;
                }
                Err(e) => eprintln!("could not drop the MySQL test database: {e}"),
            }
        });
    }
}

/// A `JdbcDatabase` object.
pub fn jdbc_database(
    id: &str,
    url: &str,
    user: &str,
    password: &str,
) -> dp_model::types::PipelineObject {
    let mut fields = vec![
        crate::harness::text("type", "JdbcDatabase"),
        crate::harness::text("connectionString", url),
        crate::harness::text("username", user),
    ];
    if !password.is_empty() {
        fields.push(crate::harness::text("*password", password));
    }
    crate::harness::object(id, fields)
}
