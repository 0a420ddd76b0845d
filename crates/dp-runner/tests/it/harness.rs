//! What the tests share: dp-local in-process at a fast clock, the runner as a real process (killed on drop), a
//! recording and fault-injecting HTTP proxy between them (so tests can count the calls the runner made, and make
//! any operation hang, drop its connection, answer 503 or answer ThrottlingException), temporary directories, and
//! pipelines made through dp-wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dp_model::types::{Field, PipelineObject};
use serde_json::Value;

pub const TIME_SCALE: f64 = 60.0;
pub const KEY_ID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "dp-runner-it-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// dp-local at [`TIME_SCALE`], with a recording proxy in front.
pub struct Endpoint {
    pub server: dp_local::Server,
    pub proxy: RecordingProxy,
}

impl Endpoint {
    pub fn start() -> Endpoint {
        Self::start_with(dp_local::Config {
            time_scale: TIME_SCALE,
            ..Default::default()
        })
    }

    pub fn start_with(config: dp_local::Config) -> Endpoint {
        let server = dp_local::Server::bind(config).expect("dp-local binds");
        let upstream = server
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Endpoint {
            proxy: RecordingProxy::start(upstream),
            server,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// `text` field.
pub fn text(key: &str, value: &str) -> Field {
    Field {
        key: key.into(),
        string_value: Some(value.into()),
        ref_value: None,
    }
}

/// `ref` field.
pub fn reference(key: &str, id: &str) -> Field {
    Field {
        key: key.into(),
        string_value: None,
        ref_value: Some(id.into()),
    }
}

/// An object.
pub fn object(id: &str, fields: Vec<Field>) -> PipelineObject {
    PipelineObject {
        id: id.into(),
        name: id.into(),
        fields,
    }
}

/// A `ShellCommandActivity` `Work` on `group` with `fields` in an activated on-demand pipeline.
pub fn shell_pipeline(endpoint: &Endpoint, group: &str, fields: &[(&str, &str)]) -> String {
    dp_runner::testing::one_task_pipeline(&endpoint.url(), group, "ShellCommandActivity", fields)
        .expect("pipeline made")
}

pub fn attempts(endpoint: &Endpoint, pipeline: &str) -> Vec<PipelineObject> {
    dp_runner::testing::attempts(&endpoint.url(), pipeline).expect("attempts listed")
}

pub fn instances(endpoint: &Endpoint, pipeline: &str) -> Vec<PipelineObject> {
    dp_runner::testing::instances(&endpoint.url(), pipeline).expect("instances listed")
}

pub fn field<'a>(object: &'a PipelineObject, key: &str) -> &'a str {
    dp_runner::testing::field(object, key).unwrap_or("")
}

/// Calls an operation on dp-local directly (not through the proxy).
pub fn call(endpoint: &Endpoint, operation: &str, input: Value) -> Value {
    let client = dp_wire::Client::with_environment(
        dp_wire::Settings::default(),
        dp_runner::testing::environment(&endpoint.url()),
    )
    .unwrap();
    let op = dp_model::operation(operation).expect("operation in the model");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.call_json(op, &input))
        .unwrap_or_else(|e| panic!("{operation}: {e}"))
}

/// Polls `done` every 50 ms until it holds; panics with `what` after `limit` (a bound on a hang, not a timing
/// assertion).
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            panic!("gave up after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A dp-task-runner process, killed (SIGKILL) on drop.
pub struct RunnerProcess {
    pub child: Child,
    pub output: PathBuf,
    pub stderr: PathBuf,
}

impl RunnerProcess {
    /// Starts `dp-task-runner ARGS` through the endpoint's proxy, with the example keys in its environment and
    /// `--output` under `dir`.
    pub fn start(endpoint: &Endpoint, dir: &Path, args: &[&str]) -> RunnerProcess {
        Self::start_with(endpoint, dir, args, &[])
    }

    pub fn start_with(
        endpoint: &Endpoint,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> RunnerProcess {
        let output = dir.join("output");
        let stderr = dir.join("runner-stderr.txt");
        let mut command = runner_command(endpoint, env);
        command
            .arg(format!("--output={}", output.display()))
            .arg(format!("--time-scale={TIME_SCALE}"))
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        RunnerProcess {
            child: command.spawn().expect("dp-task-runner starts"),
            output,
            stderr,
        }
    }

    /// Waits for the exit (bounded by `limit`).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                panic!(
                    "dp-task-runner did not exit within {limit:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.output.join("logs/dp-task-runner.log")).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dp-task-runner` with a clean environment: the example keys, a region, no profile files or instance metadata,
/// the Data Pipeline endpoint at dp-local, and the recording proxy for plain http.
pub fn runner_command(endpoint: &Endpoint, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dp-task-runner"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_DATA_PIPELINE", endpoint.url())
        .env("HTTP_PROXY", endpoint.proxy.url());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Whether `pid` is alive (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// On drop, kills what is left of these processes (their process group, unless it is the test's own), so a test
/// that fails before the runner stopped them leaves nothing running.
pub struct Reaper(pub Vec<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill, killpg};
        use nix::unistd::{Pid, getpgid, getpgrp};
        for pid in self.0.iter().copied().filter(|p| alive(*p)) {
            let pid = Pid::from_raw(pid);
            match getpgid(Some(pid)) {
                Ok(group) if group != getpgrp() => {
                    let _ = killpg(group, Signal::SIGKILL);
                }
                _ => {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
        }
    }
}

pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One request the runner sent: its operation and JSON body, the response body, and the fault it met (`None`:
/// it was passed to dp-local).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub operation: String,
    pub request: Value,
    pub response: Value,
    pub fault: Option<Fault>,
    /// The `Proxy-Authorization` header the runner sent, if any.
    pub proxy_authorization: Option<String>,
}

/// What the proxy does with a request instead of passing it on. A faulted request never reaches dp-local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, never answer, keep the connection open until the runner closes it.
    BlackHole,
    /// Close the connection without an answer.
    Refuse,
    /// Answer `503 Service Unavailable`.
    Unavailable,
    /// Answer `400` with a `ThrottlingException` body, as the service does when a caller exceeds its rate.
    Throttle,
}

/// A fault for one operation: for every call, or for the next `remaining` calls, optionally only for calls whose
/// body contains `needle` (a task id).
#[derive(Debug, Clone)]
struct FaultRule {
    operation: String,
    fault: Fault,
    remaining: Option<usize>,
    needle: Option<String>,
}

#[derive(Default)]
struct ProxyState {
    calls: Mutex<Vec<Recorded>>,
    rules: Mutex<Vec<FaultRule>>,
    terminate: std::sync::atomic::AtomicBool,
    /// Black-holed connections the runner gave up on (closed while waiting for an answer).
    abandoned: AtomicUsize,
}

impl ProxyState {
    /// The fault for this call, if a rule matches (using up one of a counted rule's calls).
    fn fault_for(&self, operation: &str, body: &[u8]) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let body = String::from_utf8_lossy(body);
        let index = rules.iter().position(|r| {
            (r.operation == operation || r.operation == "*")
                && r.remaining != Some(0)
                && r.needle.as_deref().is_none_or(|n| body.contains(n))
        })?;
        let rule = &mut rules[index];
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.fault)
    }
}

/// A plain-http forward proxy that records every Data Pipeline call passing through it and injects faults per
/// operation (by the `X-Amz-Target` header), on real loopback sockets.
pub struct RecordingProxy {
    url: String,
    state: Arc<ProxyState>,
}

impl RecordingProxy {
    pub fn start(upstream: String) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state: Arc<ProxyState> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (upstream, shared) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = relay(stream, &upstream, &shared);
                });
            }
        });
        RecordingProxy { url, state }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The calls of `operation` (`SetTaskStatus`) that reached dp-local.
    pub fn calls(&self, operation: &str) -> Vec<Recorded> {
        self.all_calls(operation)
            .into_iter()
            .filter(|c| c.fault.is_none())
            .collect()
    }

    /// The calls of `operation` that met a fault instead.
    pub fn faulted(&self, operation: &str) -> Vec<Recorded> {
        self.all_calls(operation)
            .into_iter()
            .filter(|c| c.fault.is_some())
            .collect()
    }

    /// Every call of `operation` (`""`: of every operation) the runner made, in order, faulted or not.
    pub fn all_calls(&self, operation: &str) -> Vec<Recorded> {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| operation.is_empty() || c.operation == operation)
            .cloned()
            .collect()
    }

    /// From now on every call of `operation` (`"*"`: of every operation) meets `fault`.
    pub fn fail(&self, operation: &str, fault: Fault) {
        self.add_rule(operation, fault, None, None);
    }

    /// The next `n` calls of `operation` meet `fault`.
    pub fn fail_next(&self, operation: &str, fault: Fault, n: usize) {
        self.add_rule(operation, fault, Some(n), None);
    }

    /// From now on every call of `operation` whose body contains `needle` meets `fault`.
    pub fn fail_matching(&self, operation: &str, needle: &str, fault: Fault) {
        self.add_rule(operation, fault, None, Some(needle.to_string()));
    }

    fn add_rule(
        &self,
        operation: &str,
        fault: Fault,
        remaining: Option<usize>,
        needle: Option<String>,
    ) {
        self.state.rules.lock().unwrap().push(FaultRule {
            operation: operation.to_string(),
            fault,
            remaining,
            needle,
        });
    }

    /// Every call passes again (connections already black-holed stay so until the runner closes them).
    pub fn heal(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// How many black-holed connections the runner has closed while waiting for their answer.
    pub fn abandoned(&self) -> usize {
        self.state.abandoned.load(Ordering::SeqCst)
    }

    /// The task ids the runner was handed (from the PollForTask answers that passed).
    pub fn handed_out(&self) -> Vec<String> {
        self.calls("PollForTask")
            .iter()
            .filter_map(|c| {
                c.response["taskObject"]["taskId"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }

    /// From now on, heartbeats are answered `{"terminate": true}` (as the service does for a runner it wants gone).
    pub fn answer_terminate(&self) {
        self.state.terminate.store(true, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.state.calls.lock().unwrap().len()
    }
}

/// Reads one HTTP/1.1 message head and body (Content-Length framing) from `reader`.
fn read_message(
    reader: &mut BufReader<TcpStream>,
) -> std::io::Result<Option<(Vec<String>, Vec<u8>)>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

fn relay(client: TcpStream, upstream: &str, state: &ProxyState) -> std::io::Result<()> {
    let mut client_reader = BufReader::new(client.try_clone()?);
    let mut client_writer = client;
    let mut server: Option<(BufReader<TcpStream>, TcpStream)> = None;
    while let Some((mut head, body)) = read_message(&mut client_reader)? {
        // Absolute form to origin form: `POST http://host:port/ HTTP/1.1` becomes `POST / HTTP/1.1`.
        let mut parts: Vec<String> = head[0].split(' ').map(str::to_string).collect();
        if let Some(rest) = parts[1].strip_prefix("http://") {
            parts[1] = rest
                .find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string());
        }
        head[0] = parts.join(" ");
        let target = head
            .iter()
            .find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case("x-amz-target")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or("").to_string();
        let proxy_authorization = head.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("proxy-authorization")
                .then(|| v.trim().to_string())
        });
        let fault = state.fault_for(&operation, &body);
        let record = |response: &[u8]| {
            state.calls.lock().unwrap().push(Recorded {
                operation: operation.clone(),
                request: serde_json::from_slice(&body).unwrap_or(Value::Null),
                response: serde_json::from_slice(response).unwrap_or(Value::Null),
                fault,
                proxy_authorization: proxy_authorization.clone(),
            });
        };
        let answer = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        match fault {
            Some(Fault::BlackHole) => {
                record(b"");
                // Hold the connection until the runner gives up on it.
                let mut rest = Vec::new();
                let _ = client_reader.read_to_end(&mut rest);
                state.abandoned.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Some(Fault::Refuse) => {
                record(b"");
                let _ = client_writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Some(Fault::Unavailable) => {
                let text =
                    r#"{"__type":"ServiceUnavailableException","message":"Service Unavailable"}"#;
                record(text.as_bytes());
                client_writer.write_all(answer("503 Service Unavailable", text).as_bytes())?;
                continue;
            }
            Some(Fault::Throttle) => {
                let text = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                record(text.as_bytes());
                client_writer.write_all(answer("400 Bad Request", text).as_bytes())?;
                continue;
            }
            None => {}
        }
        if server.is_none() {
            let stream = TcpStream::connect(upstream)?;
            server = Some((BufReader::new(stream.try_clone()?), stream));
        }
        let (server_reader, server_writer) = server.as_mut().expect("connected above");
        let mut request = head.join("\r\n").into_bytes();
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(&body);
        server_writer.write_all(&request)?;
        let Some((mut response_head, mut response_body)) = read_message(server_reader)? else {
            return Ok(());
        };
        if operation == "ReportTaskRunnerHeartbeat" && state.terminate.load(Ordering::SeqCst) {
            response_body = br#"{"terminate":true}"#.to_vec();
            for line in response_head.iter_mut() {
                if line.to_ascii_lowercase().starts_with("content-length:") {
                    *line = format!("content-length: {}", response_body.len());
                }
            }
        }
        record(&response_body);
        let mut response = response_head.join("\r\n").into_bytes();
        response.extend_from_slice(b"\r\n\r\n");
        response.extend_from_slice(&response_body);
        client_writer.write_all(&response)?;
    }
    Ok(())
}
