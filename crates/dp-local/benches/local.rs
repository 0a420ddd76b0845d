//! Requests per second of dp-local (with SigV4 verification), in memory and with `--state` (every change committed
//! before it is answered), and, in the same run, of moto's server.
//!
//! Run with `cargo bench -p dp-local --bench local [-- SECONDS CONNECTIONS [CASES]]`, where CASES is a comma-separated
//! subset of `memory,state,sqlite,pg1,pg2,pg3,standby,moto` (default: all; `standby` is one node
//! started with `--standby`, which serves the database alone and commits like the SQLite file). For each case the harness pre-signs
//! one request with aws-sigv4 and replays its bytes over CONNECTIONS keep-alive connections for SECONDS seconds;
//! dp-local verifies the signature of every request (the replay stays inside the 5-minute window). moto is
//! started as `python3 -m moto.server` on a free port and measured on the same operations where it implements
//! them (it has no ReportTaskProgress). Client and server share this machine's cores, so the figures are a lower
//! bound for either side. Nothing here is a test: it prints a table and asserts only that answers are 200.
//!
//! The PostgreSQL rows use the server at `DP_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! in a database made for the run and dropped after: one, two and three nodes (servers in this process, each with
//! its own runtime) serving one database, against the SQLite file in the same run, for ReportTaskProgress
//! (replayed, the connections spread over the nodes: every connection on one task, then, in the rows "RTP, a task
//! each", each connection on a task of its own in a pipeline of its own) and for PollForTask + SetTaskStatus
//! (workers spread over the nodes drain a pipeline of ready tasks; a pair per task). Without the server those rows
//! say so.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// One signed request, as bytes ready to write.
fn signed_request(host: &str, operation: &str, body: &str) -> Vec<u8> {
    let headers = [
        ("host", host.to_string()),
        ("content-type", "application/x-amz-json-1.1".to_string()),
        ("x-amz-target", format!("DataPipeline.{operation}")),
    ];
    let identity = aws_credential_types::Credentials::new(AKID, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("datapipeline")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut text = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in instructions.headers() {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

/// Creates a pipeline named `name` (also its uniqueId) at `host` and returns its id.
async fn create_pipeline(host: &str, name: &str) -> String {
    let body = format!(r#"{{"name":"{name}","uniqueId":"{name}"}}"#);
    let (_, created) = once(host, &signed_request(host, "CreatePipeline", &body)).await;
    pipeline_id(&created)
}

/// Creates a pipeline named `name` at `host` with one shell activity in worker group `name`, activates it and
/// polls its task; returns the pipeline's id and the task's id (the task stays leased to the bench).
async fn leased_task(host: &str, name: &str) -> (String, String) {
    let id = create_pipeline(host, name).await;
    let definition = serde_json::json!({"pipelineId": id, "pipelineObjects": [
        {"id": "Default", "name": "Default", "fields": [
            {"key": "scheduleType", "stringValue": "ondemand"},
            {"key": "workerGroup", "stringValue": name},
        ]},
        {"id": "Act", "name": "Act", "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"},
            {"key": "command", "stringValue": "echo bench"},
        ]},
    ]})
    .to_string();
    let activate = format!(r#"{{"pipelineId":"{id}"}}"#);
    let poll = format!(r#"{{"workerGroup":"{name}"}}"#);
    for (operation, body) in [
        ("PutPipelineDefinition", definition.as_str()),
        ("ActivatePipeline", activate.as_str()),
    ] {
        let (status, answer) = once(host, &signed_request(host, operation, body)).await;
        assert_eq!(status, 200, "{operation}: {answer}");
    }
    let (_, polled) = once(host, &signed_request(host, "PollForTask", &poll)).await;
    let polled: serde_json::Value = serde_json::from_str(&polled).unwrap();
    let task = polled["taskObject"]["taskId"]
        .as_str()
        .expect("a task")
        .to_string();
    (id, task)
}

/// The body of a ReportTaskProgress on `task`.
fn report_on(task: &str) -> String {
    format!(r#"{{"taskId":"{task}","fields":[{{"key":"progress","stringValue":"50%"}}]}}"#)
}

/// Sends one request on a fresh connection and returns (status, body).
async fn once(host: &str, request: &[u8]) -> (u16, String) {
    let mut conn = Connection::open(host).await;
    let (status, body) = conn.exchange(request).await.expect("an answer");
    (status, String::from_utf8_lossy(&body).into_owned())
}

struct Connection {
    host: String,
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(host: &str) -> Connection {
        let stream = TcpStream::connect(host).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Connection {
            host: host.to_string(),
            stream,
            buffer: Vec::with_capacity(8192),
        }
    }

    /// Writes the request and reads one response; reconnects when the server closes the connection.
    async fn exchange(&mut self, request: &[u8]) -> Option<(u16, Vec<u8>)> {
        self.stream.write_all(request).await.ok()?;
        self.buffer.clear();
        let mut chunk = [0u8; 8192];
        let header_end = loop {
            if let Some(i) = find(&self.buffer, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buffer[..header_end]).to_ascii_lowercase();
        let status: u16 = head.get(9..12)?.parse().ok()?;
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let close = head.starts_with("http/1.0") || head.contains("connection: close");
        match length {
            Some(len) => {
                while self.buffer.len() < header_end + len {
                    let n = self.stream.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    self.buffer.extend_from_slice(&chunk[..n]);
                }
            }
            None => loop {
                let n = self.stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                self.buffer.extend_from_slice(&chunk[..n]);
            },
        }
        let body = self.buffer[header_end..].to_vec();
        if close || length.is_none() {
            *self = Connection::open(&self.host.clone()).await;
        }
        Some((status, body))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Replays `request` on `connections` connections for `seconds`; returns requests per second.
async fn load(host: &str, request: Vec<u8>, connections: usize, seconds: f64) -> f64 {
    load_each(vec![(host.to_string(), request); connections], seconds).await
}

/// Replays each request on a connection of its own to its host for `seconds`; returns requests per second.
async fn load_each(connections: Vec<(String, Vec<u8>)>, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for (host, request) in connections {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Connection::open(&host).await;
            while !stop.load(Ordering::Relaxed) {
                match conn.exchange(&request).await {
                    Some((200, _)) => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.await;
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "every answer is 200");
    done.load(Ordering::Relaxed) as f64 / elapsed
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto() -> Option<(Moto, String)> {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "moto.server", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto(child);
    let host = format!("127.0.0.1:{port}");
    for _ in 0..300 {
        if TcpStream::connect(&host).await.is_ok() {
            return Some((moto, host));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn pipeline_id(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
    v["pipelineId"].as_str().expect("pipelineId").to_string()
}

/// Measures DescribePipelines and ReportTaskProgress (keep-alive), and DescribePipelines with a new connection per
/// request, against a dp-local server made from `config`.
async fn measure(
    config: dp_local::Config,
    label: &'static str,
    connections: usize,
    seconds: f64,
) -> Vec<(&'static str, String, Option<f64>)> {
    let server = dp_local::Server::bind(config).unwrap();
    let host = server.addr().to_string();
    let (id, task) = leased_task(&host, "bench").await;

    let describe = format!(r#"{{"pipelineIds":["{id}"]}}"#);
    let report = report_on(&task);
    let mut rows = Vec::new();
    for (operation, body) in [
        ("DescribePipelines", describe.clone()),
        ("ReportTaskProgress", report),
    ] {
        let request = signed_request(&host, operation, &body);
        let (status, answer) = once(&host, &request).await;
        assert_eq!(status, 200, "{operation}: {answer}");
        load(&host, request.clone(), connections, 0.5).await;
        let rate = load(&host, request, connections, seconds).await;
        rows.push((operation, label.to_string(), Some(rate)));
    }
    // moto's server closes every connection after one answer; this row pays the same connection cost.
    let mut request = signed_request(&host, "DescribePipelines", &describe);
    let at = find(&request, b"\r\n").unwrap() + 2;
    request.splice(at..at, b"connection: close\r\n".iter().copied());
    let rate = load(&host, request, connections, seconds).await;
    rows.push((
        "DescribePipelines",
        format!("{label} (conn. close)"),
        Some(rate),
    ));
    server.shutdown();
    rows
}

/// Hands out and ends `tasks` tasks with `workers` workers, worker i polling and ending through `hosts[i % n]`;
/// returns PollForTask + SetTaskStatus pairs per second.
async fn drain(hosts: &[String], tasks: usize, workers: usize) -> f64 {
    let host = &hosts[0];
    let name = format!("drain-{}", fastrand::u64(..));
    let id = create_pipeline(host, &name).await;
    let mut objects = vec![
        serde_json::json!({"id": "Default", "name": "Default", "fields": [
            {"key": "scheduleType", "stringValue": "ondemand"},
            {"key": "workerGroup", "stringValue": name},
        ]}),
    ];
    for i in 0..tasks {
        objects.push(
            serde_json::json!({"id": format!("A{i}"), "name": format!("A{i}"), "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"},
                {"key": "command", "stringValue": "true"},
            ]}),
        );
    }
    let put = serde_json::json!({"pipelineId": id, "pipelineObjects": objects}).to_string();
    let (status, answer) = once(host, &signed_request(host, "PutPipelineDefinition", &put)).await;
    assert_eq!(status, 200, "{answer}");
    let activate = format!(r#"{{"pipelineId":"{id}"}}"#);
    let (status, answer) = once(host, &signed_request(host, "ActivatePipeline", &activate)).await;
    assert_eq!(status, 200, "{answer}");
    let ended = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut running = Vec::new();
    for i in 0..workers {
        let (host, ended, group) = (hosts[i % hosts.len()].clone(), ended.clone(), name.clone());
        running.push(tokio::spawn(async move {
            let mut conn = Connection::open(&host).await;
            let poll = format!(r#"{{"workerGroup":"{group}"}}"#);
            while ended.load(Ordering::Relaxed) < tasks as u64 {
                let (status, body) = conn
                    .exchange(&signed_request(&host, "PollForTask", &poll))
                    .await
                    .expect("an answer");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let Some(task) = body["taskObject"]["taskId"].as_str() else {
                    continue;
                };
                let end = format!(r#"{{"taskId":"{task}","taskStatus":"FINISHED"}}"#);
                let (status, body) = conn
                    .exchange(&signed_request(&host, "SetTaskStatus", &end))
                    .await
                    .expect("an answer");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                ended.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in running {
        w.await.unwrap();
    }
    tasks as f64 / start.elapsed().as_secs_f64()
}

/// Runs `statement` on the PostgreSQL server at `url`.
async fn pg(url: &str, statement: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    client
        .batch_execute(statement)
        .await
        .map_err(|e| e.to_string())
}

/// ReportTaskProgress replayed over connections spread over `nodes` servers of one state (on one task, then on a
/// task per connection), and the drain.
async fn measure_nodes(
    state: std::path::PathBuf,
    nodes: usize,
    standby: bool,
    label: String,
    connections: usize,
    seconds: f64,
    tasks: usize,
) -> Vec<(&'static str, String, Option<f64>)> {
    let config = || dp_local::Config {
        state: Some(state.clone()),
        local_resources: false,
        console: false,
        poll_timeout: Duration::from_millis(200),
        standby,
        ..dp_local::Config::default()
    };
    let servers: Vec<dp_local::Server> = (0..nodes)
        .map(|_| dp_local::Server::bind(config()).unwrap())
        .collect();
    let hosts: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    // Connection i goes to node i % nodes.
    let spread = |bodies: &[String]| -> Vec<(String, Vec<u8>)> {
        (0..connections)
            .map(|i| {
                let host = &hosts[i % nodes];
                let body = &bodies[i % bodies.len()];
                (
                    host.clone(),
                    signed_request(host, "ReportTaskProgress", body),
                )
            })
            .collect()
    };
    // Every connection reports on one task, then each on a task of its own (in a pipeline of its own).
    let (_, task) = leased_task(&hosts[0], "bench").await;
    let one = spread(&[report_on(&task)]);
    load_each(one.clone(), 0.5).await;
    let rate = load_each(one, seconds).await;
    let mut own = Vec::new();
    for i in 0..connections {
        let (_, task) = leased_task(&hosts[i % nodes], &format!("bench-{i}")).await;
        own.push(report_on(&task));
    }
    let own = spread(&own);
    load_each(own.clone(), 0.5).await;
    let rate_own = load_each(own, seconds).await;
    let pairs = drain(&hosts, tasks, connections).await;
    for s in servers {
        s.shutdown();
    }
    vec![
        ("ReportTaskProgress", label.clone(), Some(rate)),
        ("RTP, a task each", label.clone(), Some(rate_own)),
        ("Poll+SetTaskStatus", label, Some(pairs)),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let connections: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(16);
    let cases: Vec<String> = args
        .get(2)
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let wanted = |case: &str| cases.is_empty() || cases.iter().any(|c| c == case);

    let mut rows = Vec::new();
    if wanted("memory") {
        rows.extend(
            measure(
                dp_local::Config::default(),
                "dp-local",
                connections,
                seconds,
            )
            .await,
        );
    }
    // The same with every change committed (fsync) to a state file before it is answered.
    let dir = std::env::temp_dir().join(format!("dp-local-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let durable = dp_local::Config {
        state: Some(dir.join("state.db")),
        ..dp_local::Config::default()
    };
    if wanted("state") {
        rows.extend(measure(durable, "dp-local --state", connections, seconds).await);
    }
    // SQLite and PostgreSQL (1, 2, 3 nodes) on the same two measures.
    let tasks = 300;
    if wanted("sqlite") {
        rows.extend(
            measure_nodes(
                dir.join("nodes.db"),
                1,
                false,
                "SQLite file".into(),
                connections,
                seconds,
                tasks,
            )
            .await,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let admin = std::env::var("DP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    for (case, nodes, standby) in [
        ("pg1", 1, false),
        ("pg2", 2, false),
        ("pg3", 3, false),
        ("standby", 1, true),
    ] {
        if !wanted(case) {
            continue;
        }
        let name = format!("dpl_bench_{}_{case}", std::process::id());
        let label = match (nodes, standby) {
            (_, true) => "PostgreSQL, --standby".to_string(),
            (1, false) => "PostgreSQL, 1 node".to_string(),
            _ => format!("PostgreSQL, {nodes} nodes"),
        };
        if let Err(e) = pg(&admin, &format!("CREATE DATABASE {name}")).await {
            println!("(no PostgreSQL rows: {admin}: {e})");
            break;
        }
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => admin.clone(),
        };
        rows.extend(
            measure_nodes(
                url.into(),
                nodes,
                standby,
                label,
                connections,
                seconds,
                tasks,
            )
            .await,
        );
        let _ = pg(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }

    if wanted("moto") {
        match start_moto().await {
            None => rows.push(("DescribePipelines", "moto".into(), None)),
            Some((_moto, moto_host)) => {
                let moto_id = create_pipeline(&moto_host, "bench").await;
                let request = signed_request(
                    &moto_host,
                    "DescribePipelines",
                    &format!(r#"{{"pipelineIds":["{moto_id}"]}}"#),
                );
                let (status, answer) = once(&moto_host, &request).await;
                assert_eq!(status, 200, "moto DescribePipelines: {answer}");
                load(&moto_host, request.clone(), connections, 0.5).await;
                let rate = load(&moto_host, request, connections, seconds).await;
                rows.push(("DescribePipelines", "moto".into(), Some(rate)));
                let probe = signed_request(&moto_host, "ReportTaskProgress", r#"{"taskId":"t"}"#);
                let (status, _) = once(&moto_host, &probe).await;
                rows.push((
                    "ReportTaskProgress",
                    if status == 200 {
                        "moto (answers)".into()
                    } else {
                        "moto (not implemented)".into()
                    },
                    None,
                ));
            }
        }
    }

    println!(
        "dp-local benchmark: {seconds} s per case, {connections} keep-alive connections, signed requests replayed"
    );
    println!("{:<20} {:<24} {:>12}", "operation", "server", "requests/s");
    for (operation, server, rate) in &rows {
        let rate = rate
            .map(|r| format!("{r:.0}"))
            .unwrap_or_else(|| "-".into());
        println!("{operation:<20} {server:<24} {rate:>12}");
    }
    let rate = |operation: &str, server: &str| {
        rows.iter()
            .find(|r| r.0 == operation && r.1 == server)
            .and_then(|r| r.2)
    };
    if let Some(moto) = rate("DescribePipelines", "moto") {
        for server in [
            "dp-local (conn. close)",
            "dp-local",
            "dp-local --state (conn. close)",
            "dp-local --state",
        ] {
            if let Some(dp) = rate("DescribePipelines", server) {
                println!("DescribePipelines: {server} / moto = {:.1}x", dp / moto);
            }
        }
    }
}
