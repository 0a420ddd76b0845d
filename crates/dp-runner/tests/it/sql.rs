//! `SqlActivity` end to end: dp-local hands the task to the real runner binary, which runs the script against the
//! real PostgreSQL and MariaDB servers (`databases.rs`).

use std::time::Duration;

use dp_model::types::PipelineObject;

use crate::databases::{Scratch, jdbc_database};
use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// Runs one `SqlActivity` `Work` with `fields` against the database object `database` through dp-local and the
/// runner binary (`--once`, plus `args`), and returns the attempt and the runner's log.
pub fn run_activity(
    group: &str,
    kind: &str,
    fields: &[(&str, &str)],
    others: Vec<PipelineObject>,
    args: &[&str],
) -> (PipelineObject, String) {
    let endpoint = Endpoint::start();
    let dir = TempDir::new(group);
    let mut work = vec![text("type", kind), text("workerGroup", group)];
    for (k, v) in fields {
        if let Some(id) = v.strip_prefix("ref:") {
            work.push(reference(k, id));
        } else {
            work.push(text(k, v));
        }
    }
    let mut objects = vec![object("Work", work)];
    objects.extend(others);
    let pipeline = dp_runner::testing::pipeline(&endpoint.url(), group, objects)
        .unwrap_or_else(|e| panic!("pipeline {group}: {e}"));
    let group_flag = format!("--workerGroup={group}");
    let mut all_args = vec![group_flag.as_str(), "--once"];
    all_args.extend(args);
    let mut runner = RunnerProcess::start(&endpoint, dir.path(), &all_args);
    runner.wait(LIMIT);
    let attempts = attempts(&endpoint, &pipeline);
    let attempt = attempts
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no attempt; runner log:\n{}", runner.log()));
    (attempt, runner.log())
}

fn sql(
    group: &str,
    database: PipelineObject,
    fields: &[(&str, &str)],
    args: &[&str],
) -> (PipelineObject, String) {
    let mut all = vec![("database", "ref:Db"), ("maximumRetries", "0")];
    all.extend_from_slice(fields);
    run_activity(group, "SqlActivity", &all, vec![database], args)
}

fn status(attempt: &PipelineObject) -> String {
    format!(
        "{} {} {}",
        field(attempt, "@status"),
        field(attempt, "errorId"),
        field(attempt, "errorMessage")
    )
}

#[test]
fn a_script_with_arguments_runs_in_one_transaction_on_postgres_and_mariadb() {
    let scratch = Scratch::new("sql");
    let script = "create table if not exists t (id int primary key, name varchar(40));\n\
                  insert into t values (?, ?); -- the first row; a ? in a comment is no placeholder\n\
                  insert into t values (?, 'it''s ?');\n";
    for (group, database, check) in [
        (
            "wg-sql-pg",
            jdbc_database(
                "Db",
                &scratch.pg_jdbc(),
                &scratch.pg_user(),
                &scratch.pg_password(),
            ),
            Box::new(|sql: &str| scratch.pg(sql)) as Box<dyn Fn(&str) -> Vec<_>>,
        ),
        (
            "wg-sql-my",
            jdbc_database(
                "Db",
                &scratch.my_jdbc(),
                &scratch.my_user(),
                &scratch.my_password(),
            ),
            Box::new(|sql: &str| scratch.my(sql)),
        ),
    ] {
        let (attempt, log) = sql(
            group,
            database,
            &[
                ("script", script),
                ("scriptArgument", "1"),
                ("scriptArgument", "O'Brien \\ ünïcödé"),
                ("scriptArgument", "2"),
            ],
            &[],
        );
        assert_eq!(status(&attempt), "FINISHED  ", "{group}: {log}");
        assert_eq!(field(&attempt, "statementsRun"), "3", "{group}");
        assert_eq!(field(&attempt, "rowsAffected"), "2", "{group}");
        assert_eq!(
            check("select id, name from t order by id"),
            vec![
                vec![Some("1".into()), Some("O'Brien \\ ünïcödé".into())],
                vec![Some("2".into()), Some("it's ?".into())],
            ],
            "{group}"
        );
    }
}

/// A value with quotes, backslashes, `?`, `$1` and SQL inside is stored exactly as given on both servers, even
/// with the server reading backslashes in string literals as escapes (PostgreSQL's
/// `standard_conforming_strings = off`) or not at all (MySQL's `NO_BACKSLASH_ESCAPES`): the values travel as the
/// parameters of a prepared statement, not as text quoted into the SQL.
#[test]
fn script_arguments_are_bound_by_the_server() {
    let scratch = Scratch::new("sqlbind");
    let tricky = "O'Brien \\' \\\\ \"?\" $1 ? ; -- x'); drop table b; --\t\u{fc}";
    let insert = "create table b (id int, v varchar(200));\n\
                  insert into b values (?, ?); insert into b (v, id) values ('?', ?);\n\
                  insert into b values (3, concat(?, '|', ?))";
    for (group, setting, database, check) in [
        (
            "wg-sqlbind-pg",
            "set standard_conforming_strings = off",
            jdbc_database(
                "Db",
                &scratch.pg_jdbc(),
                &scratch.pg_user(),
                &scratch.pg_password(),
            ),
            Box::new(|sql: &str| scratch.pg(sql)) as Box<dyn Fn(&str) -> Vec<_>>,
        ),
        (
            "wg-sqlbind-my",
            "set session sql_mode = 'NO_BACKSLASH_ESCAPES'",
            jdbc_database(
                "Db",
                &scratch.my_jdbc(),
                &scratch.my_user(),
                &scratch.my_password(),
            ),
            Box::new(|sql: &str| scratch.my(sql)),
        ),
    ] {
        let script = format!("{setting};\n{insert}");
        let (attempt, log) = sql(
            group,
            database,
            &[
                ("script", &script),
                ("scriptArgument", "1"),
                ("scriptArgument", tricky),
                ("scriptArgument", "2"),
                ("scriptArgument", "a\\b"),
                ("scriptArgument", "?"),
            ],
            &[],
        );
        assert_eq!(status(&attempt), "FINISHED  ", "{group}: {log}");
        assert_eq!(
            check("select id, v from b order by id"),
            vec![
                vec![Some("1".into()), Some(tricky.into())],
                vec![Some("2".into()), Some("?".into())],
                vec![Some("3".into()), Some("a\\b|?".into())],
            ],
            "{group}"
        );
        assert!(!log.contains("O'Brien"), "{group}: an argument in the log");
    }
}

#[test]
fn a_failing_statement_fails_the_attempt_with_the_servers_message_and_rolls_back() {
    let scratch = Scratch::new("sqlerr");
    scratch.pg("create table t (id int primary key)");
    scratch.my("create table t (id int primary key)");
    let script = "insert into t values (1); insert into t values (1)";
    let (attempt, log) = sql(
        "wg-sqlerr-pg",
        jdbc_database("Db", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        &[("script", script)],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED SqlError statement 2 of 2 failed on the PostgreSQL database")
            && got.contains("duplicate key value violates unique constraint"),
        "{got}\n{log}"
    );
    assert_eq!(
        scratch.pg("select count(*) from t"),
        vec![vec![Some("0".into())]]
    );

    let (attempt, log) = sql(
        "wg-sqlerr-my",
        jdbc_database(
            "Db",
            &scratch.my_jdbc(),
            &scratch.my_user(),
            &scratch.my_password(),
        ),
        &[("script", script)],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED SqlError statement 2 of 2 failed on the MySQL database")
            && got.contains("Duplicate entry '1'"),
        "{got}\n{log}"
    );
    assert_eq!(
        scratch.my("select count(*) from t"),
        vec![vec![Some("0".into())]]
    );
}

#[test]
fn connection_errors_name_the_server_and_never_the_password() {
    let scratch = Scratch::new("sqlconn");
    let secret = "Sentinel-Password-7781";
    let (attempt, log) = sql(
        "wg-sqlconn-my",
        jdbc_database("Db", &scratch.my_jdbc(), "nobody_here", secret),
        &[("script", "select 1")],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with(&format!(
            "FAILED DatabaseConnectionFailed cannot connect to the MySQL database \"{}\" at ",
            scratch.name
        )) && got.contains("Access denied for user 'nobody_here'"),
        "{got}"
    );
    assert!(
        !got.contains(secret) && !log.contains(secret),
        "{got}\n{log}"
    );

    // Nothing listens on port 9.
    let (attempt, _) = sql(
        "wg-sqlconn-pg",
        jdbc_database("Db", "jdbc:postgresql://127.0.0.1:9/nowhere", "u", secret),
        &[("script", "select 1")],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with(
            "FAILED DatabaseConnectionFailed cannot connect to the PostgreSQL database \"nowhere\" at 127.0.0.1:9"
        ) && !got.contains(secret),
        "{got}"
    );

    let (attempt, _) = sql(
        "wg-sqlconn-ora",
        jdbc_database("Db", "jdbc:oracle:thin:@//db:1521/x", "u", secret),
        &[("script", "select 1")],
        &[],
    );
    assert!(
        status(&attempt).starts_with(
            "FAILED MissingJdbcDriver JdbcDatabase Db: dp-task-runner has no driver for oracle databases"
        ),
        "{}",
        status(&attempt)
    );
}

#[test]
fn rds_databases_are_found_through_the_database_flag() {
    let scratch = Scratch::new("sqlrds");
    let rds = object(
        "Db",
        vec![
            text("type", "RdsDatabase"),
            text("rdsInstanceId", "orders-db"),
            text("databaseName", &scratch.name),
            text("username", &scratch.pg_user()),
        ],
    );
    let pg = crate::databases::postgres_url();
    let flag = format!("--database=orders-db={pg}");
    let (attempt, log) = sql(
        "wg-sqlrds",
        rds.clone(),
        &[("script", "create table made_here (x int)")],
        &[&flag],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert!(scratch.pg("select * from made_here").is_empty());

    let (attempt, _) = sql("wg-sqlrds-missing", rds, &[("script", "select 1")], &[]);
    assert!(
        status(&attempt).starts_with(
            "FAILED UnknownDatabase the RdsDatabase Db (rdsInstanceId \"orders-db\") has no address here: start \
             dp-task-runner with --database orders-db=URL"
        ),
        "{}",
        status(&attempt)
    );
}

#[test]
fn attempt_timeout_cancels_the_statement_on_the_server() {
    let scratch = Scratch::new("sqltimeout");
    // A minute of the service's clock is one second at the tests' time scale.
    let (attempt, log) = sql(
        "wg-sqltimeout",
        jdbc_database("Db", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        &[
            ("script", "select pg_sleep(300)"),
            ("attemptTimeout", "1 minute"),
        ],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.contains("AttemptTimeout") || got.starts_with("TIMEDOUT"),
        "{got}\n{log}"
    );
    // The runner has exited; had it only dropped its connection, pg_sleep would still run on the server.
    let running = scratch.pg(&format!(
        "select count(*) from pg_stat_activity where datname = '{}' and state = 'active' and query like '%pg_sleep(300)%' \
         and pid <> pg_backend_pid()",
        scratch.name
    ));
    assert_eq!(running, vec![vec![Some("0".into())]], "{got}\n{log}");
}

#[test]
fn attempt_timeout_kills_the_query_on_mariadb() {
    let scratch = Scratch::new("sqltimeoutmy");
    let (attempt, log) = sql(
        "wg-sqltimeout-my",
        jdbc_database(
            "Db",
            &scratch.my_jdbc(),
            &scratch.my_user(),
            &scratch.my_password(),
        ),
        &[
            ("script", "select sleep(300)"),
            ("attemptTimeout", "1 minute"),
        ],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.contains("AttemptTimeout") || got.starts_with("TIMEDOUT"),
        "{got}\n{log}"
    );
    let running = scratch.my(&format!(
        "select count(*) from information_schema.processlist where db = '{}' and info like '%sleep(300)%' \
         and id <> connection_id()",
        scratch.name
    ));
    assert_eq!(running, vec![vec![Some("0".into())]], "{got}\n{log}");
}

/// A deactivated pipeline cancels the task; the runner (still running) cancels the statement on the server.
#[test]
fn a_service_cancel_stops_the_statement_on_the_server() {
    let scratch = Scratch::new("sqlcancel");
    let endpoint = Endpoint::start();
    let dir = TempDir::new("sqlcancel");
    let pipeline = dp_runner::testing::pipeline(
        &endpoint.url(),
        "wg-sqlcancel",
        vec![
            object(
                "Work",
                vec![
                    text("type", "SqlActivity"),
                    text("workerGroup", "wg-sqlcancel"),
                    text("script", "select pg_sleep(300)"),
                    reference("database", "Db"),
                ],
            ),
            jdbc_database("Db", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        ],
    )
    .unwrap();
    let mut runner = RunnerProcess::start(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-sqlcancel",
            "--progress-interval=0.2",
            "--cancel-grace=5",
        ],
    );
    let running = || {
        scratch.pg(&format!(
            "select count(*) from pg_stat_activity where datname = '{}' and state = 'active' \
             and query like '%pg_sleep(300)%' and pid <> pg_backend_pid()",
            scratch.name
        ))[0][0]
            .clone()
    };
    wait_until(LIMIT, "the statement to run on the server", || {
        running().as_deref() == Some("1")
    });
    call(
        &endpoint,
        "DeactivatePipeline",
        serde_json::json!({"pipelineId": pipeline}),
    );
    wait_until(LIMIT, "the statement to be gone from the server", || {
        running().as_deref() == Some("0")
    });
    assert!(
        runner.child.try_wait().unwrap().is_none(),
        "the runner is still up, so the statement ended through the cancel request, not a closed connection"
    );
    wait_until(LIMIT, "the runner to log the cancel", || {
        runner
            .log()
            .contains("task canceled by the service; no status sent")
    });
    runner.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(runner.wait(LIMIT).code(), Some(0));
}

/// Debian's PostgreSQL serves TLS with a self-signed certificate: `sslmode=require` (and the default, `prefer`)
/// encrypt, `disable` does not, `verify-full` refuses the certificate.
#[test]
fn postgres_connections_use_tls_as_sslmode_says() {
    let scratch = Scratch::new("sqltls");
    let encrypted = "do $$ begin if not (select ssl from pg_stat_ssl where pid = pg_backend_pid()) then \
                     raise exception 'the connection is not encrypted'; end if; end $$";
    let with = |mode: &str| {
        jdbc_database(
            "Db",
            &format!("{}?sslmode={mode}", scratch.pg_jdbc()),
            &scratch.pg_user(),
            "",
        )
    };
    for mode in ["require", "prefer"] {
        let (attempt, log) = sql(
            &format!("wg-sqltls-{mode}"),
            with(mode),
            &[("script", encrypted)],
            &[],
        );
        assert_eq!(status(&attempt), "FINISHED  ", "{mode}: {log}");
    }
    let (attempt, _) = sql(
        "wg-sqltls-disable",
        with("disable"),
        &[("script", encrypted)],
        &[],
    );
    assert!(
        status(&attempt).contains("the connection is not encrypted"),
        "{}",
        status(&attempt)
    );
    let (attempt, _) = sql(
        "wg-sqltls-verify",
        with("verify-full"),
        &[("script", "select 1")],
        &[],
    );
    let got = status(&attempt);
    assert!(
        got.starts_with("FAILED DatabaseConnectionFailed") && got.contains("certificate"),
        "{got}"
    );
}

#[test]
fn a_script_uri_is_fetched_and_run() {
    let scratch = Scratch::new("sqluri");
    let dir = TempDir::new("sqluri-script");
    let script = dir.path().join("load.sql");
    std::fs::write(
        &script,
        "create table from_file (x int);\ninsert into from_file values (?);\n",
    )
    .unwrap();
    let (attempt, log) = sql(
        "wg-sqluri",
        jdbc_database("Db", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        &[
            ("scriptUri", &format!("file://{}", script.display())),
            ("scriptArgument", "42"),
        ],
        &[],
    );
    assert_eq!(status(&attempt), "FINISHED  ", "{log}");
    assert_eq!(
        scratch.pg("select x from from_file"),
        vec![vec![Some("42".into())]]
    );
    let (attempt, _) = sql(
        "wg-sqluri-missing",
        jdbc_database("Db", &scratch.pg_jdbc(), &scratch.pg_user(), ""),
        &[("scriptUri", "/nonexistent/load.sql")],
        &[],
    );
    assert!(
        status(&attempt).starts_with("FAILED ScriptDownloadFailed")
            && status(&attempt).contains("/nonexistent/load.sql"),
        "{}",
        status(&attempt)
    );
}
