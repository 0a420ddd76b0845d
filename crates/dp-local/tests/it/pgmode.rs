//! The switch that runs dp-local's behaviour tests on PostgreSQL (`DP_LOCAL_TEST_STORE=postgres`).
//!
//! Without it, behaviour tests start their servers in memory (or on a state file in a temporary directory when
//! they restart one). With it, every such server keeps its state in a PostgreSQL database of its own on the
//! server at `DP_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), named
//! `dp_behave_<pid>_<n>` so that leftovers are recognisable; the database is made before the server starts and
//! dropped after it stops, also when the test fails. A PostgreSQL server that cannot be used fails the test with a
//! message naming it.
//!
//! `postgres-runs.txt` beside this file says which modules `cargo xtask test` runs a second time with the switch
//! set, which of their tests it leaves out and why, and which are known to fail on PostgreSQL.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use dp_local::{Config, Server};

use crate::state::TempDir;
use crate::stores::{PgDatabase, admin_url, try_sql, with_database};

/// The environment variable that switches the behaviour tests to PostgreSQL.
pub const SWITCH: &str = "DP_LOCAL_TEST_STORE";

/// Whether this run keeps the behaviour tests' state in PostgreSQL. Any value of the switch other than
/// `postgres` (or empty) fails the test that asks, naming the values it takes.
pub fn on_postgres() -> bool {
    static ON: OnceLock<Result<bool, String>> = OnceLock::new();
    let on = ON.get_or_init(|| match std::env::var(SWITCH) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(value) if value.is_empty() => Ok(false),
        Ok(value) if value == "postgres" => Ok(true),
        Ok(value) => Err(format!(
            "{SWITCH}={value:?}: expected `postgres` (behaviour tests on PostgreSQL) or nothing (in memory)"
        )),
        Err(e) => Err(format!("{SWITCH}: {e}")),
    });
    match on {
        Ok(on) => *on,
        Err(message) => panic!("{message}"),
    }
}

/// A new, empty database for one server of the PostgreSQL run, dropped (with its connections) when the returned
/// guard is dropped.
pub fn fresh_database() -> PgDatabase {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "dp_behave_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = admin_url();
    // A database of this name can only be left over from a run that died under the same process id.
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        if let Err(e) = try_sql(&admin, &statement) {
            panic!(
                "{SWITCH}=postgres keeps each test server's state in a database of its own, and that needs a \
                 usable PostgreSQL server: {e}"
            );
        }
    }
    PgDatabase {
        url: with_database(&admin, &name),
        name,
    }
}

/// A server started by a behaviour test. In the PostgreSQL run it owns the database it keeps its state in, which
/// is dropped after the server stops.
pub struct TestServer {
    server: Option<Server>,
    database: Option<PgDatabase>,
}

impl TestServer {
    /// Stops serving (everything queued is committed first), then drops the database, if any.
    pub fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

impl Deref for TestServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        self.server
            .as_ref()
            .expect("the server runs until shut down")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The server first: it commits and closes its connection before its database goes.
        drop(self.server.take());
        drop(self.database.take());
    }
}

/// Starts a behaviour test's server with `config`. A config without a state runs in memory, or in the PostgreSQL
/// run on a fresh database; a config with a state keeps it.
pub fn bind(mut config: Config) -> TestServer {
    let database = (on_postgres() && config.state.is_none()).then(fresh_database);
    if let Some(db) = &database {
        config.state = Some(db.location());
    }
    let server = Server::bind(config).unwrap_or_else(|e| {
        panic!(
            "dp-local did not start{}: {e}",
            database
                .as_ref()
                .map(|db| format!(" on database {}", db.name))
                .unwrap_or_default()
        )
    });
    TestServer {
        server: Some(server),
        database,
    }
}

/// Where a behaviour test that restarts dp-local keeps its state: a state file in a temporary directory, or in
/// the PostgreSQL run a database of its own. Servers started on [`Durable::location`] share that state; it is
/// removed when this is dropped.
pub enum Durable {
    File(TempDir),
    Postgres(PgDatabase),
}

impl Durable {
    pub fn new(label: &str) -> Durable {
        if on_postgres() {
            Durable::Postgres(fresh_database())
        } else {
            Durable::File(TempDir::new(label))
        }
    }

    /// The `--state` value (a path, or a PostgreSQL URL).
    pub fn location(&self) -> PathBuf {
        match self {
            Durable::File(dir) => dir.path("state.db"),
            Durable::Postgres(db) => db.location(),
        }
    }
}

/// The arguments for a `dp-local` child of a behaviour test: in the PostgreSQL run `--state URL` of a fresh
/// database, which this keeps until it is dropped (drop it after the child, so declare it before).
pub struct ChildState(Option<PgDatabase>);

impl ChildState {
    pub fn new() -> ChildState {
        ChildState(on_postgres().then(fresh_database))
    }

    /// `args` followed by `--state URL` in the PostgreSQL run.
    pub fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        if let Some(db) = &self.0 {
            all.extend(["--state", db.url.as_str()]);
        }
        all
    }
}

/// What `postgres-runs.txt` says about one module or test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The module runs again on PostgreSQL.
    Postgres(String),
    /// The module runs once only, for this reason.
    Once(String, String),
    /// `module::test` is left out of the PostgreSQL run, for this reason.
    Skip(String, String),
    /// `module::test` is known to fail on PostgreSQL, for this reason.
    Fails(String, String),
}

/// The entries of `postgres-runs.txt`; an error names the line that is not one.
pub fn entries(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, why) = match line.split_once(" -- ") {
            Some((head, why)) => (head.trim(), Some(why.trim().to_string())),
            None => (line, None),
        };
        let bad = |what: &str| format!("postgres-runs.txt line {}: {what}: {line:?}", n + 1);
        let (word, name) = head
            .split_once(' ')
            .ok_or_else(|| bad("expected `WORD NAME`"))?;
        let name = name.trim().to_string();
        let is_test = name.contains("::");
        let entry = match (word, why) {
            ("postgres", None) if !is_test => Entry::Postgres(name),
            ("once", Some(why)) if !is_test => Entry::Once(name, why),
            ("skip", Some(why)) if is_test => Entry::Skip(name, why),
            ("fails", Some(why)) if is_test => Entry::Fails(name, why),
            ("postgres" | "once" | "skip" | "fails", _) => {
                return Err(bad(
                    "`postgres MODULE`, `once MODULE -- WHY`, `skip MODULE::TEST -- WHY` or \
                     `fails MODULE::TEST -- WHY`",
                ));
            }
            _ => return Err(bad("the first word is postgres, once, skip or fails")),
        };
        out.push(entry);
    }
    Ok(out)
}

/// Every module main.rs declares is named once in `postgres-runs.txt`, every test the file names exists in a
/// module that runs on PostgreSQL, and every entry gives its reason.
#[test]
fn every_module_is_classified_for_the_postgres_run() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
    };
    let entries = entries(&read("postgres-runs.txt")).unwrap_or_else(|e| panic!("{e}"));
    let declared: Vec<String> = read("main.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect();
    assert!(
        declared.len() > 10,
        "main.rs declares its modules: {declared:?}"
    );
    let mut again = Vec::new();
    let mut classified = Vec::new();
    for entry in &entries {
        match entry {
            Entry::Postgres(m) => {
                again.push(m.clone());
                classified.push(m.clone());
            }
            Entry::Once(m, _) => classified.push(m.clone()),
            Entry::Skip(..) | Entry::Fails(..) => {}
        }
    }
    for module in &declared {
        let times = classified.iter().filter(|m| *m == module).count();
        assert_eq!(
            times, 1,
            "module {module} is named {times} times as `postgres` or `once` in postgres-runs.txt"
        );
    }
    for module in &classified {
        assert!(
            declared.contains(module),
            "postgres-runs.txt names {module}, which main.rs does not declare"
        );
    }
    for entry in &entries {
        let (Entry::Skip(test, _) | Entry::Fails(test, _)) = entry else {
            continue;
        };
        let (module, name) = test.split_once("::").unwrap();
        assert!(
            again.iter().any(|m| m == module),
            "{test}: its module does not run on PostgreSQL"
        );
        let source = read(&format!("{module}.rs"));
        assert!(
            source.contains(&format!("fn {name}(")) || source.contains(&format!("mod {name} ")),
            "postgres-runs.txt names {test}, which {module}.rs does not have"
        );
    }
}

#[test]
fn bad_lines_of_the_list_are_named() {
    assert_eq!(
        entries("# c\n\npostgres auth\nonce files -- the file\nskip state::x -- why\n"),
        Ok(vec![
            Entry::Postgres("auth".into()),
            Entry::Once("files".into(), "the file".into()),
            Entry::Skip("state::x".into(), "why".into()),
        ])
    );
    for bad in [
        "once files",
        "skip state::x",
        "skip state -- a module",
        "run auth",
        "auth",
    ] {
        let e = entries(bad).unwrap_err();
        assert!(e.starts_with("postgres-runs.txt line 1: "), "{bad}: {e}");
    }
}
