//! `cargo xtask test`: the one command that runs the workspace's tests on a machine that has only Rust and Python.
//!
//! The tests use real peers, never mocks: the pinned AWS CLI (the differential oracle) and moto's server, headless
//! Chromium with chromedriver (the console's browser tests), and PostgreSQL and MariaDB servers (the runner's data
//! activities). This task prepares what is missing, then runs `cargo test --workspace --locked --no-fail-fast`
//! (every test binary runs, so the count covers the whole workspace), then, when it was given no arguments, runs
//! dp-local's integration tests about behaviour a second time with `DP_LOCAL_TEST_STORE=postgres` (each server on
//! a PostgreSQL database of its own; which tests is said in `crates/dp-local/tests/it/postgres-runs.txt`), and
//! ends with the line `N passed, N failed` counting both runs:
//!
//! - the AWS CLI and moto go into a virtual environment of the project's own, `target/test-tools/venv`, whose `bin`
//!   comes first on the tests' `PATH` (so `aws`, `python3 -m moto.server` and `python3 -c 'import botocore'` all
//!   find them), whatever the machine's Python has installed;
//! - Chromium, chromedriver and the two database servers come from Debian's packages when this task may install
//!   them (it runs as root and `apt-get` exists); otherwise it prints one line per missing part saying what to
//!   install, and stops before the tests;
//! - a database server that is installed but stopped is started, and given what the tests expect: PostgreSQL on
//!   127.0.0.1:5432 with trust authentication for user `postgres`, MariaDB on 127.0.0.1:3306 with user `root` and
//!   no password, and a `test` database on each.
//!
//! It changes nothing outside `target/` unless it runs as root, and never touches a server that already answers
//! as the tests expect.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The AWS CLI the differential tests compare against (the version the committed snapshots were taken with).
const AWSCLI: &str = "awscli==1.45.11";
/// moto with its server mode, for the S3 and DynamoDB tests.
const MOTO: &str = "moto[server]>=5,<6";

/// Runs the task: `cargo xtask test [ARGS…]`, ARGS passed on to `cargo test` after `--workspace --locked
/// --no-fail-fast` (with ARGS there is no second run on PostgreSQL).
pub(crate) fn run(args: &[String]) -> Result<()> {
    let root = crate::project_root();
    let may_install = may_install();
    let mut missing = Vec::new();

    println!("== test tools");
    let venv_bin = match python_tools(&root, may_install) {
        Ok(bin) => Some(bin),
        Err(e) => {
            missing.push(format!("{e:#}"));
            None
        }
    };
    if let Err(e) = browser(may_install) {
        missing.push(format!("{e:#}"));
    }
    if let Err(e) = postgres(may_install) {
        missing.push(format!("{e:#}"));
    }
    if let Err(e) = mariadb(may_install) {
        missing.push(format!("{e:#}"));
    }
    if !missing.is_empty() {
        for line in &missing {
            eprintln!("missing: {line}");
        }
        bail!(
            "{} part(s) the tests need are missing{}",
            missing.len(),
            if may_install {
                ""
            } else {
                " (run as root on Debian to have them installed, or install them yourself)"
            }
        );
    }

    println!("== cargo test --workspace --locked --no-fail-fast");
    let venv_bin = venv_bin.expect("no missing part, so the venv exists");
    let path = match std::env::var_os("PATH") {
        Some(old) => {
            let mut parts = vec![venv_bin.clone()];
            parts.extend(std::env::split_paths(&old));
            std::env::join_paths(parts).context("joining PATH")?
        }
        None => venv_bin.clone().into_os_string(),
    };
    let cargo_test = |args: &[String], store: Option<&str>| -> Result<Counts> {
        let mut command = Command::new(cargo());
        command
            .current_dir(&root)
            .arg("test")
            .args(args)
            .env("PATH", &path)
            .env("VIRTUAL_ENV", venv_bin.parent().expect("bin has a parent"));
        match store {
            Some(store) => command.env(STORE_SWITCH, store),
            None => command.env_remove(STORE_SWITCH),
        };
        counted(command, &mut std::io::stdout())
    };
    let mut workspace_args: Vec<String> = ["--workspace", "--locked", "--no-fail-fast"]
        .map(String::from)
        .to_vec();
    workspace_args.extend(args.iter().cloned());
    let workspace = cargo_test(&workspace_args, None)?;

    // Issue 20: dp-local's behaviour tests once more, each server on a PostgreSQL database of its own.
    let postgres = if args.is_empty() {
        let list = root.join(POSTGRES_RUNS);
        let text = std::fs::read_to_string(&list)
            .with_context(|| format!("reading {}", list.display()))?;
        let runs = PostgresRuns::parse(&text).with_context(|| list.display().to_string())?;
        let args = runs.cargo_args();
        println!(
            "== {STORE_SWITCH}=postgres cargo test {} (dp-local's behaviour tests on PostgreSQL; \
             which run is said in {POSTGRES_RUNS})",
            args.join(" ")
        );
        let counts = cargo_test(&args, Some("postgres"))?;
        Some((runs, counts))
    } else {
        println!(
            "(arguments given: the second run of dp-local's behaviour tests on PostgreSQL is left out; \
             `cargo xtask test` without arguments runs it)"
        );
        None
    };

    let (mut passed, mut failed) = (workspace.passed, workspace.failed);
    let mut success = workspace.success;
    if let Some((runs, counts)) = &postgres {
        println!(
            "workspace: {} passed, {} failed; dp-local on PostgreSQL: {} passed, {} failed",
            workspace.passed, workspace.failed, counts.passed, counts.failed
        );
        for (test, why) in &runs.fails {
            let outcome = if counts
                .failed_tests
                .iter()
                .any(|t| t.contains(test.as_str()))
            {
                "failed, as known"
            } else if counts
                .passed_tests
                .iter()
                .any(|t| t.contains(test.as_str()))
            {
                "PASSED: take it off the list"
            } else {
                "did not run"
            };
            println!("known to fail on PostgreSQL: {test}: {outcome} ({why})");
        }
        passed += counts.passed;
        failed += counts.failed;
        success &= counts.success;
    }
    println!("{passed} passed, {failed} failed");
    if !success {
        bail!("cargo test failed");
    }
    Ok(())
}

/// The environment variable that runs dp-local's behaviour tests on PostgreSQL.
const STORE_SWITCH: &str = "DP_LOCAL_TEST_STORE";

/// Which of dp-local's integration tests run a second time on PostgreSQL (the format is described in the file;
/// dp-local's own test `pgmode::every_module_is_classified_for_the_postgres_run` checks it against the tests).
const POSTGRES_RUNS: &str = "crates/dp-local/tests/it/postgres-runs.txt";

/// What `postgres-runs.txt` asks of the second run.
#[derive(Debug, PartialEq)]
struct PostgresRuns {
    /// Modules whose tests run again.
    modules: Vec<String>,
    /// `module::test`s of those modules left out.
    skip: Vec<String>,
    /// `module::test`s known to fail on PostgreSQL, with the reason.
    fails: Vec<(String, String)>,
}

impl PostgresRuns {
    fn parse(text: &str) -> Result<PostgresRuns> {
        let mut runs = PostgresRuns {
            modules: Vec::new(),
            skip: Vec::new(),
            fails: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, why) = match line.split_once(" -- ") {
                Some((head, why)) => (head.trim(), why.trim().to_string()),
                None => (line, String::new()),
            };
            let (word, name) = head.split_once(' ').unwrap_or((head, ""));
            let name = name.trim().to_string();
            match word {
                "postgres" if !name.is_empty() => runs.modules.push(name),
                "once" => {}
                "skip" if !name.is_empty() => runs.skip.push(name),
                "fails" if !name.is_empty() => runs.fails.push((name, why)),
                _ => bail!(
                    "line {}: expected `postgres MODULE`, `once MODULE -- WHY`, `skip MODULE::TEST -- WHY` or \
                     `fails MODULE::TEST -- WHY`, found {line:?}",
                    n + 1
                ),
            }
        }
        if runs.modules.is_empty() {
            bail!("names no module to run on PostgreSQL");
        }
        Ok(runs)
    }

    /// `cargo test` arguments: dp-local's integration binary, the modules as filters, the skipped tests.
    fn cargo_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-p",
            "dp-local",
            "--test",
            "it",
            "--locked",
            "--no-fail-fast",
            "--",
        ]
        .map(String::from)
        .to_vec();
        args.extend(self.modules.iter().map(|m| format!("{m}::")));
        for test in &self.skip {
            args.extend(["--skip".to_string(), test.clone()]);
        }
        args
    }
}

/// What one `cargo test` printed and how it ended.
#[derive(Debug, Default)]
struct Counts {
    passed: u64,
    failed: u64,
    passed_tests: Vec<String>,
    failed_tests: Vec<String>,
    success: bool,
}

/// Runs `command` (a `cargo test`), echoing its output to `out` and counting libtest's summary and result lines.
fn counted(mut command: Command, out: &mut impl std::io::Write) -> Result<Counts> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        let _ = writeln!(out, "{line}");
        if let Some((p, f)) = result_counts(&line) {
            counts.passed += p;
            counts.failed += f;
        } else if let Some(rest) = line.strip_prefix("test ") {
            if let Some(name) = rest.strip_suffix(" ... ok") {
                counts.passed_tests.push(name.to_string());
            } else if let Some(name) = rest.strip_suffix(" ... FAILED") {
                counts.failed_tests.push(name.to_string());
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        eprintln!("cargo test failed ({status})");
    }
    counts.success = status.success();
    Ok(counts)
}

/// The passed and failed counts of a libtest summary line (`test result: ok. 12 passed; 0 failed; …`).
fn result_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u64> {
        let words: Vec<&str> = rest
            .split([' ', ';', '.'])
            .filter(|w| !w.is_empty())
            .collect();
        let i = words.iter().position(|w| *w == word)?;
        words.get(i.checked_sub(1)?)?.parse().ok()
    };
    Some((count("passed")?, count("failed")?))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Root with `apt-get` on the `PATH`: this task may install Debian's packages.
fn may_install() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    root && found("apt-get")
}

/// Whether `program` is on the `PATH`.
fn found(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs `program args`, printing the command line; an error names it and its exit status.
fn run_command(program: &str, args: &[&str]) -> Result<()> {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `program args` quietly; whether it succeeded.
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn apt_install(packages: &[&str]) -> Result<()> {
    // The package lists of a fresh machine are empty; one update serves every install of this run.
    static UPDATED: std::sync::Once = std::sync::Once::new();
    let mut update = Ok(());
    UPDATED.call_once(|| update = run_command("apt-get", &["update", "-qq"]));
    update?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(packages);
    println!("$ apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(&args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", packages.join(" "));
    }
    Ok(())
}

/// The venv with the pinned AWS CLI and moto; returns its `bin` directory.
fn python_tools(root: &Path, may_install: bool) -> Result<PathBuf> {
    let venv = root.join("target/test-tools/venv");
    let bin = venv.join("bin");
    let python = bin.join("python3");
    let ready = || {
        Command::new(bin.join("aws"))
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).starts_with("aws-cli/1.45.11 ")
                    || String::from_utf8_lossy(&o.stderr).starts_with("aws-cli/1.45.11 ")
            })
            && succeeds(
                &python.to_string_lossy(),
                &["-c", "import moto.server, flask, flask_cors, botocore"],
            )
    };
    if ready() {
        println!("AWS CLI 1.45.11 and moto: {}", venv.display());
        return Ok(bin);
    }
    if !found("python3") {
        bail!(
            "python3 (Python 3.9 or later, with its venv module): the AWS CLI and moto are installed into a venv"
        );
    }
    if !python.exists() {
        let venv_text = venv.to_string_lossy().into_owned();
        println!("$ python3 -m venv {venv_text}");
        if !succeeds("python3", &["-m", "venv", &venv_text]) {
            // Debian's python3 has no ensurepip until python3-venv is installed.
            if may_install {
                apt_install(&["python3-venv"])?;
            }
            let _ = std::fs::remove_dir_all(&venv);
            run_command("python3", &["-m", "venv", &venv_text]).context(
                "python3's venv module (Debian: package python3-venv): the AWS CLI and moto are installed into a venv",
            )?;
        }
    }
    run_command(
        &python.to_string_lossy(),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            AWSCLI,
            MOTO,
        ],
    )
    .with_context(|| {
        format!(
            "{AWSCLI} and {MOTO} in {} (pip could not install them)",
            venv.display()
        )
    })?;
    if !ready() {
        bail!(
            "{AWSCLI} and {MOTO}: installed into {}, but `aws --version` or `import moto.server` fails there",
            venv.display()
        );
    }
    println!(
        "AWS CLI 1.45.11 and moto: installed into {}",
        venv.display()
    );
    Ok(bin)
}

/// Chromium and chromedriver for the console's browser tests.
fn browser(may_install: bool) -> Result<()> {
    if found("chromium") && found("chromedriver") {
        println!("chromium and chromedriver: on the PATH");
        return Ok(());
    }
    if !may_install {
        bail!(
            "chromium and chromedriver (Debian: packages chromium and chromium-driver), for the console's browser tests"
        );
    }
    apt_install(&["chromium", "chromium-driver"])
}

/// Whether something accepts connections on `127.0.0.1:port`.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .is_ok()
}

/// Waits up to a minute for `check` (a server that is starting).
fn wait_for(what: &str, check: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        if Instant::now() > deadline {
            bail!("{what} did not come up within a minute");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// The PostgreSQL major versions that have a cluster configured (`/etc/postgresql/<version>`).
fn postgres_versions() -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("main").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
}

/// The installed PostgreSQL server versions (`/usr/lib/postgresql/<version>/bin/postgres`).
fn postgres_installed() -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("bin/postgres").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
}

/// What the tests connect with: `psql` as user postgres over TCP, into database `test`.
fn postgres_ready() -> bool {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "test",
            "-w",
            "-tAc",
            "select 1",
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether some `/usr/lib/postgresql/<version>/bin` has `initdb` and `pg_ctl`.
fn postgres_programs_found() -> bool {
    postgres_installed().iter().any(|version| {
        let bin = Path::new("/usr/lib/postgresql").join(version).join("bin");
        bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()
    })
}

/// The server programs `initdb` and `pg_ctl`, also when the tests' server answers from elsewhere (a container, a
/// remote host): dp-local's test that restarts and crashes a server starts one of its own with them
/// (`nodes::a_postgres_server_restarted_and_crashed_under_load_fails_changes_cleanly_and_loses_nothing`).
fn postgres_programs(may_install: bool) -> Result<()> {
    if postgres_programs_found() {
        return Ok(());
    }
    const WHAT: &str = "the PostgreSQL server programs initdb and pg_ctl in /usr/lib/postgresql/<version>/bin \
                        (Debian: package postgresql), for dp-local's test that restarts and crashes a server of its own";
    if !may_install {
        bail!("{WHAT}");
    }
    apt_install(&["postgresql"])?;
    if !postgres_programs_found() {
        bail!("{WHAT}: package postgresql installed, but they are still missing");
    }
    Ok(())
}

/// PostgreSQL on 127.0.0.1:5432: installed, started, trust authentication for 127.0.0.1, a `test` database; and
/// the server programs (`postgres_programs`).
fn postgres(may_install: bool) -> Result<()> {
    if postgres_ready() {
        println!("PostgreSQL: answers on 127.0.0.1:5432 (user postgres, database test)");
        return postgres_programs(may_install);
    }
    const WHAT: &str = "a PostgreSQL server on 127.0.0.1:5432 with trust authentication for user postgres and a \
                        database named test (Debian: package postgresql)";
    if !may_install {
        bail!("{WHAT}");
    }
    if postgres_installed().is_empty() || !found("pg_ctlcluster") {
        apt_install(&["postgresql"])?;
    }
    if postgres_versions().is_empty() {
        // The package makes a cluster named main, unless the machine was told not to; make one then.
        let version = postgres_installed().pop().context(WHAT)?;
        run_command("pg_createcluster", &[&version, "main"])?;
    }
    let version = postgres_versions().pop().context(WHAT)?;
    // Trust for TCP connections from this machine, as the tests expect (they use no password).
    let hba = PathBuf::from(format!("/etc/postgresql/{version}/main/pg_hba.conf"));
    let text =
        std::fs::read_to_string(&hba).with_context(|| format!("reading {}", hba.display()))?;
    let trust = "host all all 127.0.0.1/32 trust";
    if !text
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == trust)
    {
        println!("adding '{trust}' to {}", hba.display());
        std::fs::write(
            &hba,
            format!("# added by cargo xtask test\n{trust}\n{text}"),
        )
        .with_context(|| format!("writing {}", hba.display()))?;
    }
    if listening(5432) {
        run_command(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &version, "main", "reload"],
        )?;
    } else {
        run_command(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &version, "main", "start"],
        )?;
    }
    wait_for("PostgreSQL", || listening(5432))?;
    let exists = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-w",
            "-tAc",
        ])
        .arg("select 1 from pg_database where datname = 'test'")
        .output()
        .context("running psql")?;
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        run_command(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-w",
                "-c",
                "create database test",
            ],
        )?;
    }
    if !postgres_ready() {
        bail!(
            "{WHAT}: started and configured, but `psql -h 127.0.0.1 -U postgres -d test` still fails"
        );
    }
    println!("PostgreSQL: ready on 127.0.0.1:5432");
    postgres_programs(may_install)
}

/// What the tests connect with: root over TCP, no password, database `test`.
fn mariadb_ready() -> bool {
    let client = if found("mariadb") { "mariadb" } else { "mysql" };
    succeeds(
        client,
        &[
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            "--connect-timeout=5",
            "-D",
            "test",
            "-e",
            "select 1",
        ],
    )
}

/// MariaDB on 127.0.0.1:3306: installed, started, root without a password over TCP, a `test` database.
fn mariadb(may_install: bool) -> Result<()> {
    if mariadb_ready() {
        println!("MariaDB: answers on 127.0.0.1:3306 (user root, database test)");
        return Ok(());
    }
    const WHAT: &str = "a MariaDB (or MySQL) server on 127.0.0.1:3306 where root has no password and a database \
                        named test exists (Debian: package mariadb-server)";
    if !may_install {
        bail!("{WHAT}");
    }
    if !Path::new("/usr/sbin/mariadbd").exists() {
        apt_install(&["mariadb-server"])?;
    }
    if !listening(3306) {
        // How this machine kind starts it; `--user` lets a root shell start it.
        std::fs::create_dir_all("/run/mysqld").context("creating /run/mysqld")?;
        let _ = Command::new("chown")
            .args(["mysql:mysql", "/run/mysqld"])
            .status();
        run_command(
            "start-stop-daemon",
            &[
                "--start",
                "--oknodo",
                "--background",
                // The pid file mariadbd writes (Debian's configuration): matching by executable alone would take
                // any mariadbd the process table shows, such as one of another container or chroot.
                "--pidfile",
                "/run/mysqld/mysqld.pid",
                "--exec",
                "/usr/sbin/mariadbd",
                "--",
                "--user=mysql",
            ],
        )?;
        wait_for("MariaDB", || listening(3306))?;
    }
    // Debian's root logs in through the unix socket only; the tests come over TCP with no password. Root on
    // this machine (the socket's owner) grants that.
    let client = if found("mariadb") { "mariadb" } else { "mysql" };
    run_command(
        client,
        &[
            "-u",
            "root",
            "-e",
            "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); \
             CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
             CREATE DATABASE IF NOT EXISTS test; FLUSH PRIVILEGES;",
        ],
    )?;
    if !mariadb_ready() {
        bail!(
            "{WHAT}: started and configured, but `mariadb -h 127.0.0.1 -u root -D test` still fails"
        );
    }
    println!("MariaDB: ready on 127.0.0.1:3306");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_are_counted() {
        assert_eq!(
            result_counts(
                "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some((12, 0))
        );
        assert_eq!(
            result_counts(
                "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out"
            ),
            Some((3, 2))
        );
        assert_eq!(result_counts("running 3 tests"), None);
    }

    #[test]
    fn the_postgres_list_becomes_filters_and_skips() {
        let runs = PostgresRuns::parse(
            "# comment\n\npostgres auth\nonce files -- the file\npostgres state\n\
             skip state::full_disk -- tmpfs\nfails auth::x -- a bug\n",
        )
        .unwrap();
        assert_eq!(
            runs,
            PostgresRuns {
                modules: vec!["auth".into(), "state".into()],
                skip: vec!["state::full_disk".into()],
                fails: vec![("auth::x".into(), "a bug".into())],
            }
        );
        assert_eq!(
            runs.cargo_args().join(" "),
            "-p dp-local --test it --locked --no-fail-fast -- auth:: state:: --skip state::full_disk"
        );
        let e = PostgresRuns::parse("postgres auth\nrun x\n").unwrap_err();
        assert!(format!("{e}").starts_with("line 2: "), "{e}");
        assert!(PostgresRuns::parse("# nothing\n").is_err());
    }

    /// Summary lines are added up, and each test's outcome is kept by name.
    #[test]
    fn a_runs_output_is_counted() {
        let printed = [
            "running 2 tests",
            "test a::x ... ok",
            "test a::y ... FAILED",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
        ]
        .join("\n");
        let mut command = Command::new("sh");
        command.args(["-c", &format!("printf '%s\\n' '{printed}'; exit 101")]);
        let mut echoed = Vec::new();
        let counts = counted(command, &mut echoed).unwrap();
        assert_eq!(String::from_utf8(echoed).unwrap(), format!("{printed}\n"));
        assert_eq!((counts.passed, counts.failed), (3, 1));
        assert_eq!(counts.passed_tests, vec!["a::x".to_string()]);
        assert_eq!(counts.failed_tests, vec!["a::y".to_string()]);
        assert!(!counts.success);
    }

    /// The project's own list parses and names dp-local modules.
    #[test]
    fn the_projects_postgres_list_parses() {
        let text = std::fs::read_to_string(crate::project_root().join(POSTGRES_RUNS)).unwrap();
        let runs = PostgresRuns::parse(&text).unwrap();
        assert!(runs.modules.iter().any(|m| m == "leases"), "{runs:?}");
    }
}
