//! A small signed awsJson client for the tests, plus helpers that build definitions and wait for states.
//!
//! It signs with aws-sigv4 directly (not dp-wire) so that dp-local is checked against the reference signer.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// How a request is signed.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Signed with these keys at this time.
    Keys {
        access_key_id: String,
        secret: String,
        time: SystemTime,
    },
    /// No Authorization header at all.
    None,
}

impl Signing {
    pub fn example() -> Self {
        Signing::Keys {
            access_key_id: AKID.into(),
            secret: SECRET.into(),
            time: SystemTime::now(),
        }
    }
}

/// An error answer: status, `__type`, `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[derive(Clone)]
pub struct Client {
    url: String,
    host: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(url: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Client {
            url: format!("{url}/"),
            host: url.trim_start_matches("http://").to_string(),
            http,
        }
    }

    /// Calls `operation` signed with the example keys; `Err` carries the error answer.
    pub async fn call(&self, operation: &str, input: Value) -> Result<Value, Failure> {
        self.call_with(
            operation,
            serde_json::to_vec(&input).unwrap(),
            Signing::example(),
        )
        .await
    }

    /// Calls and expects success.
    pub async fn ok(&self, operation: &str, input: Value) -> Value {
        match self.call(operation, input.clone()).await {
            Ok(v) => v,
            Err(f) => panic!("{operation} {input} failed: {f:?}"),
        }
    }

    /// Calls and expects an error with this code.
    pub async fn fails(&self, operation: &str, input: Value, code: &str) -> Failure {
        match self.call(operation, input.clone()).await {
            Ok(v) => panic!("{operation} {input} succeeded with {v}, expected {code}"),
            Err(f) => {
                assert_eq!(f.code, code, "{operation} {input}: {f:?}");
                f
            }
        }
    }

    pub async fn call_with(
        &self,
        operation: &str,
        body: Vec<u8>,
        signing: Signing,
    ) -> Result<Value, Failure> {
        self.call_tampered(operation, body.clone(), body, signing)
            .await
    }

    /// Signs `body` but sends `sent`.
    pub async fn call_tampered(
        &self,
        operation: &str,
        body: Vec<u8>,
        sent: Vec<u8>,
        signing: Signing,
    ) -> Result<Value, Failure> {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            // A name with a dot is a whole target (dp-local's own `DpLocal.StopWorkerGroup`).
            .header(
                "x-amz-target",
                if operation.contains('.') {
                    operation.to_string()
                } else {
                    format!("DataPipeline.{operation}")
                },
            )
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        if let Signing::Keys {
            access_key_id,
            secret,
            time,
        } = signing
        {
            let identity =
                aws_credential_types::Credentials::new(access_key_id, secret, None, None, "test")
                    .into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name("datapipeline")
                .time(time)
                .settings(SigningSettings::default())
                .build()
                .unwrap()
                .into();
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
                .collect();
            let signable = SignableRequest::new(
                "POST",
                self.url.clone(),
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(&body),
            )
            .unwrap();
            let (instructions, _) = sign(signable, &params).unwrap().into_parts();
            instructions.apply_to_request_http1x(&mut request);
        }
        *request.body_mut() = Full::new(Bytes::from(sent));
        self.send(request).await
    }

    /// Calls without signing; `Err` when no answer came (the server is down or the connection broke).
    pub async fn try_unsigned(
        &self,
        operation: &str,
        input: &Value,
    ) -> Result<Result<Value, Failure>, String> {
        let request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("DataPipeline.{operation}"))
            .body(Full::new(Bytes::from(serde_json::to_vec(input).unwrap())))
            .unwrap();
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {bytes:?}"));
        Ok(if status == 200 {
            Ok(value)
        } else {
            Err(Failure {
                status,
                code: value["__type"].as_str().unwrap_or("").to_string(),
                message: value["message"].as_str().unwrap_or("").to_string(),
            })
        })
    }

    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Value, Failure> {
        let response = self
            .http
            .request(request)
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/x-amz-json-1.1"),
            "content type of every answer"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {bytes:?}"));
        if status == 200 {
            Ok(value)
        } else {
            Err(Failure {
                status,
                code: value["__type"].as_str().unwrap_or("").to_string(),
                message: value["message"].as_str().unwrap_or("").to_string(),
            })
        }
    }
}

/// A string field.
pub fn s(key: &str, value: &str) -> Value {
    json!({"key": key, "stringValue": value})
}

/// A reference field.
pub fn r(key: &str, id: &str) -> Value {
    json!({"key": key, "refValue": id})
}

/// A pipeline object.
pub fn object(id: &str, fields: Vec<Value>) -> Value {
    json!({"id": id, "name": id, "fields": fields})
}

/// An ondemand pipeline with one ShellCommandActivity `Act` on worker group `wg`, plus extra Default fields.
pub fn ondemand(wg: &str, extra_default: Vec<Value>) -> Vec<Value> {
    let mut default = vec![s("scheduleType", "ondemand"), s("workerGroup", wg)];
    default.extend(extra_default);
    vec![
        object("Default", default),
        object(
            "Act",
            vec![s("type", "ShellCommandActivity"), s("command", "echo hi")],
        ),
    ]
}

/// Creates a pipeline, puts `objects`, activates it; returns the pipeline id.
pub async fn running_pipeline(client: &Client, name: &str, objects: Vec<Value>) -> String {
    let id = client
        .ok("CreatePipeline", json!({"name": name, "uniqueId": name}))
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let put = client
        .ok(
            "PutPipelineDefinition",
            json!({"pipelineId": id, "pipelineObjects": objects}),
        )
        .await;
    assert_eq!(put["errored"], json!(false), "definition accepted: {put}");
    client
        .ok("ActivatePipeline", json!({"pipelineId": id}))
        .await;
    id
}

/// The fields of one object as `key -> first value`.
pub async fn fields(
    client: &Client,
    pipeline: &str,
    object: &str,
) -> std::collections::HashMap<String, String> {
    let out = client
        .ok(
            "DescribeObjects",
            json!({"pipelineId": pipeline, "objectIds": [object]}),
        )
        .await;
    let objects = out["pipelineObjects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "describe-objects of {object}: {out}");
    let mut map = std::collections::HashMap::new();
    for f in objects[0]["fields"].as_array().unwrap() {
        let v = f["stringValue"]
            .as_str()
            .or(f["refValue"].as_str())
            .unwrap_or("")
            .to_string();
        map.entry(f["key"].as_str().unwrap().to_string())
            .or_insert(v);
    }
    map
}

/// Waits (up to 20 s of real time, checking every 10 ms) until `field` of `object` equals `want`.
pub async fn wait_for(client: &Client, pipeline: &str, object: &str, field: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..2000 {
        let f = fields(client, pipeline, object).await;
        last = f.get(field).cloned().unwrap_or_default();
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{object}.{field} stayed {last:?}, expected {want:?}");
}

/// Polls until a task comes (up to 20 s of real time).
pub async fn poll_until_task(client: &Client, wg: &str) -> Value {
    for _ in 0..200 {
        let out = client
            .ok(
                "PollForTask",
                json!({"workerGroup": wg, "hostname": "test-host"}),
            )
            .await;
        if out.get("taskObject").is_some() {
            return out["taskObject"].clone();
        }
    }
    panic!("no task for worker group {wg}");
}

/// A free TCP port on 127.0.0.1 (free when asked; whoever binds it next gets it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server of a test's own, for tests that stop, restart or crash the server itself (the machine's
/// shared server on 127.0.0.1:5432 serves other tests at the same time and is never touched): `initdb` into a
/// temporary directory, started with `pg_ctl` on a free port of 127.0.0.1 with trust authentication for user
/// `postgres`. The programs are those of the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout; else
/// `initdb` and `pg_ctl` on the PATH). initdb refuses to run as root, so as root every server command runs as
/// the OS user `postgres` (`runuser`), which owns the directory. Dropping it stops the server (immediate) and
/// removes the directory; a directory left by a test process that died first is cleaned up by the next start.
pub struct PgServer {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    as_postgres: bool,
    pub port: u16,
    /// More `-c name=value` settings for the server.
    settings: String,
}

/// The prefix of every [`PgServer`]'s directory in the temporary directory; the test process's id follows.
const PG_SERVER_DIR: &str = "dp-local-pgserver-";

impl PgServer {
    /// initdb and start; panics with what is missing when the server's programs or the OS user are not there.
    pub fn start() -> PgServer {
        PgServer::start_with("")
    }

    /// [`PgServer::start`] with more server settings (`-c name=value …`).
    pub fn start_with(settings: &str) -> PgServer {
        let bin = pg_server_programs(
            std::path::Path::new("/usr/lib/postgresql"),
            &std::env::var_os("PATH").unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let as_postgres = run_output("id", &["-u"]).trim() == "0";
        if as_postgres {
            let known = std::process::Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                known,
                "this test runs as root, where initdb refuses to run, and there is no OS user postgres to run the \
                 server as (Debian's package postgresql makes it)"
            );
            assert!(
                std::process::Command::new("runuser")
                    .arg("--help")
                    .output()
                    .is_ok(),
                "this test runs as root and needs runuser (util-linux) to run the server as user postgres"
            );
        }
        PgServer::clean_up_after_dead_tests(&bin, as_postgres);
        let dir = std::env::temp_dir().join(format!(
            "{PG_SERVER_DIR}{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            run_output("chown", &["postgres:postgres", dir.to_str().unwrap()]);
        }
        let server = PgServer {
            bin,
            dir,
            as_postgres,
            port: free_port(),
            settings: settings.to_string(),
        };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        server.start_again();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until the server accepts connections (after crash recovery when it crashed).
    pub fn start_again(&self) {
        let (data, log, options) = (self.data(), self.log(), self.options());
        self.run(
            "pg_ctl",
            &[
                "start", "-D", &data, "-l", &log, "-w", "-t", "120", "-o", &options,
            ],
        );
    }

    /// `pg_ctl restart -m fast`: sessions are terminated, a checkpoint is written, the server starts again.
    pub fn restart_fast(&self) {
        let (data, log, options) = (self.data(), self.log(), self.options());
        self.run(
            "pg_ctl",
            &[
                "restart", "-D", &data, "-l", &log, "-m", "fast", "-w", "-t", "120", "-o", &options,
            ],
        );
    }

    /// `pg_ctl stop -m immediate`: every server process quits at once, without a checkpoint, as in a crash; the
    /// next start recovers from the WAL.
    pub fn crash(&self) {
        let data = self.data();
        self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The server's settings: TCP on 127.0.0.1 only, its socket in its own directory.
    fn options(&self) -> String {
        format!(
            "-c listen_addresses=127.0.0.1 -c port={} -k {} -c shared_buffers=16MB {}",
            self.port,
            self.dir.display(),
            self.settings
        )
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_string()
    }

    fn log(&self) -> String {
        self.dir.join("server.log").to_str().unwrap().to_string()
    }

    /// Runs one of the server's programs (as user postgres when root); panics with its output and the server's
    /// log when it fails. The output goes to a file, not a pipe: a server that pg_ctl starts may keep pg_ctl's
    /// output open, and reading a pipe to its end would then wait for the server to stop.
    fn run(&self, program: &str, args: &[&str]) {
        let out_path = self.dir.join("command.out");
        let out = std::fs::File::create(&out_path).unwrap();
        let status = pg_command(&self.bin, self.as_postgres, program, args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            status.success(),
            "{program} {args:?} failed ({status}):\n{}\nserver log:\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            self.log_text()
        );
    }

    /// Stops the servers and removes the directories of test processes that are gone (killed before their
    /// destructors ran).
    fn clean_up_after_dead_tests(bin: &std::path::Path, as_postgres: bool) {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(PG_SERVER_DIR)
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            if std::path::Path::new("/proc").join(pid).exists() {
                continue;
            }
            let data = entry.path().join("data");
            let _ = pg_command(
                bin,
                as_postgres,
                "pg_ctl",
                &["stop", "-D", data.to_str().unwrap(), "-m", "immediate"],
            )
            .output();
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = pg_command(
            &self.bin,
            self.as_postgres,
            "pg_ctl",
            &["stop", "-D", &data, "-m", "immediate", "-w"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest `LIB/<version>/bin` that has both (LIB is
/// `/usr/lib/postgresql` for the tests), else a directory of `path` (a PATH) that has both; `Err` names what is
/// missing and where it was looked for.
pub fn pg_server_programs(
    lib: &std::path::Path,
    path: &std::ffi::OsStr,
) -> Result<std::path::PathBuf, String> {
    let has_both =
        |dir: &std::path::Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    // Versions compare as numbers, part by part (9.6 < 15 < 16).
    let mut versions: Vec<(Vec<u32>, std::path::PathBuf)> = std::fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version: Result<Vec<u32>, _> = name.split('.').map(str::parse).collect();
            Some((version.ok()?, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::split_paths(path)
        .find(|dir| has_both(dir))
        .ok_or_else(|| {
            format!(
                "the PostgreSQL server programs initdb and pg_ctl are missing: neither {}/<version>/bin nor the \
                 PATH has both (Debian: package postgresql, which `cargo xtask test` installs as root); this test \
                 starts a PostgreSQL server of its own, to restart and crash it",
                lib.display()
            )
        })
}

/// `bin/program args`, through `runuser -u postgres --` when `as_postgres`.
fn pg_command(
    bin: &std::path::Path,
    as_postgres: bool,
    program: &str,
    args: &[&str],
) -> std::process::Command {
    let program = bin.join(program);
    let mut command = if as_postgres {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        std::process::Command::new(program)
    };
    command
        .args(args)
        // pg_ctl's server keeps its stdout and stderr (the log goes to -l): nothing the test waits on.
        .stdin(std::process::Stdio::null())
        // A server started from a directory user postgres cannot read would warn; / is readable by all.
        .current_dir("/");
    command
}

/// The stdout of a command that must succeed.
fn run_output(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
