//! The HTTP side: a hyper 1 server on its own tokio runtime, awsJson 1.1 framing, signature checks.
//!
//! [`Server::bind`] binds 127.0.0.1 synchronously (so the port is known when it returns), then serves from a
//! background thread until [`Server::shutdown`] or drop. Requests are `POST /` with `X-Amz-Target:
//! DataPipeline.<Operation>`; answers are JSON with `Content-Type: application/x-amz-json-1.1`, errors
//! `{"__type", "message"}`. This module holds no service rules; it hands bodies to the dispatcher.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::auth::{self, SignedRequest};
use crate::clock::Clock;
use crate::config::{Config, Credential};
use crate::engine::{Engine, Runner};
use crate::error::{Error, ErrorKind, ServiceError};
use crate::store;

/// Largest request body accepted (evaluate-expression allows 20 MiB expressions).
const MAX_BODY: usize = 64 << 20;

struct Shared {
    engine: Arc<Engine>,
    auth: bool,
    credentials: Vec<Credential>,
    header_timeout: Duration,
    max_connections: usize,
    console: Option<crate::console::Console>,
    /// `GET /metrics`, and what `handle` counts into it.
    metrics: Arc<crate::metrics::Metrics>,
    /// The store's own readiness check beside the writer (PostgreSQL), for `GET /readyz`.
    probe: Option<store::Probe>,
    /// The resource runners' launcher, with the channel its commands arrive on (taken when serving starts).
    launcher: Option<(
        crate::launcher::Launcher,
        std::sync::Mutex<Option<LaunchInbox>>,
    )>,
}

type LaunchInbox = (
    tokio::sync::mpsc::UnboundedReceiver<crate::engine::ResourceCommand>,
    Result<crate::launcher::LaunchSettings, String>,
);

/// How long a runner that dp-local stops has between SIGTERM and SIGKILL.
const RUNNER_STOP_GRACE: Duration = Duration::from_secs(10);

/// A running dp-local endpoint.
pub struct Server {
    addr: SocketAddr,
    console_token: Option<String>,
    engine: Arc<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `127.0.0.1:config.port` and starts serving in a background thread.
    pub fn bind(config: Config) -> Result<Server, Error> {
        let listener = StdListener::bind(("127.0.0.1", config.port)).map_err(|e| {
            Error::new(
                ErrorKind::Bind,
                format!("cannot bind 127.0.0.1:{}: {e}", config.port),
            )
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::new(ErrorKind::Bind, e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Bind, e.to_string()))?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let mut probe = None;
        let engine = Arc::new(match &config.state {
            None => Engine::new(Clock::new(config.time_scale), config.poll_timeout),
            // On PostgreSQL every node serves, together (`--standby` keeps the one-node-at-a-time way).
            Some(path) if !config.standby && path.to_str().is_some_and(store::is_url) => {
                let url = path.to_str().unwrap_or_default();
                let shared = store::SharedPostgres::open(url)?;
                probe = store::shared::SharedStore::probe(&shared);
                Engine::open_shared(
                    metrics.timed_shared(Box::new(shared)),
                    config.time_scale,
                    config.restore_time_scale,
                    config.poll_timeout,
                )?
            }
            Some(path) => {
                // On a database another node serves, this waits as a standby, answering 503 meanwhile.
                let standby = path
                    .to_str()
                    .is_some_and(store::is_url)
                    .then(|| crate::standby::Responder::start(&listener))
                    .flatten();
                let store = store::open_with(path, store::WhenServed::Wait);
                if let Some(standby) = standby {
                    standby.stop();
                }
                let store = store?;
                probe = store.probe();
                Engine::open(
                    metrics.timed(store),
                    config.time_scale,
                    config.restore_time_scale,
                    config.poll_timeout,
                )?
            }
        });
        let launcher = if config.local_resources {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let data_dir = match &config.state {
                Some(path) if !path.to_str().is_some_and(store::is_url) => {
                    let mut name = path.file_name().unwrap_or_default().to_os_string();
                    name.push(".resources");
                    path.with_file_name(name)
                }
                _ => {
                    std::env::temp_dir().join(format!("dp-local-{}.resources", std::process::id()))
                }
            };
            let accepted = |key: &str| config.credentials.iter().any(|c| c.access_key_id == key);
            let inherited = std::env::var("AWS_ACCESS_KEY_ID").ok();
            let credential = match inherited {
                Some(key) if !config.auth || accepted(&key) => None,
                _ => config.credentials.first().cloned(),
            };
            let settings = crate::launcher::find_runner(config.runner_bin.as_deref()).map(|bin| {
                crate::launcher::LaunchSettings {
                    runner_bin: bin,
                    runner_args: config.runner_args.clone(),
                    data_dir,
                    endpoint: format!("http://{addr}"),
                    credential,
                    time_scale: engine.time_scale(),
                    stop_grace: RUNNER_STOP_GRACE,
                }
            });
            engine.use_resources(true, config.max_resources, Some(tx));
            Some((
                crate::launcher::Launcher::default(),
                std::sync::Mutex::new(Some((rx, settings))),
            ))
        } else {
            engine.use_resources(false, config.max_resources, None);
            None
        };
        let shared = Arc::new(Shared {
            metrics,
            probe,
            launcher,
            engine: engine.clone(),
            auth: config.auth,
            credentials: config.credentials,
            header_timeout: config.header_timeout,
            max_connections: config.max_connections.max(1),
            console: config.console.then(crate::console::Console::new),
        });
        let console_token = shared.console.as_ref().map(|c| c.token().to_string());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dp-local")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Runtime,
                    format!("cannot start the server runtime: {e}"),
                )
            })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dp-local-accept".into())
            .spawn(move || runtime.block_on(serve(listener, shared, stopped)))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Runtime,
                    format!("cannot start the server thread: {e}"),
                )
            })?;
        Ok(Server {
            addr,
            console_token,
            engine,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The web console's URL with its access token (`http://127.0.0.1:PORT/console?token=…`), unless the console
    /// is off (`Config::console`).
    pub fn console_url(&self) -> Option<String> {
        self.console_token
            .as_ref()
            .map(|token| format!("{}/console?token={token}", self.url()))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The task runners that have sent heartbeats, in order of first heartbeat.
    pub fn runners(&self) -> Vec<Runner> {
        self.engine.runners()
    }

    /// Stops serving and waits for the server thread to end.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Blocks until the server stops (which, without [`Server::shutdown`] from elsewhere, is never).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn serve(
    listener: StdListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("dp-local: cannot listen: {e}");
            return;
        }
    };
    let timers = tokio::spawn(shared.engine.clone().run_timers());
    if let Some((launcher, inbox)) = &shared.launcher
        && let Some((commands, settings)) = inbox.lock().unwrap_or_else(|e| e.into_inner()).take()
    {
        tokio::spawn(
            launcher
                .clone()
                .run(shared.engine.clone(), commands, settings),
        );
    }
    let mut connections = tokio::task::JoinSet::new();
    // At the cap, connections wait in the listen queue until one of those served closes.
    let slots = Arc::new(tokio::sync::Semaphore::new(shared.max_connections));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = accept(&listener, &slots) => {
                let Some((stream, slot)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                connections.spawn(async move {
                    let _open = shared.metrics.connection();
                    let header_timeout = shared.header_timeout;
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    // The head timeout runs while a connection waits for a request, idle keep-alive included,
                    // so a client that opens connections and sends nothing cannot hold them forever.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Launched runners go first, while their connections are still served, so that no runner outlives dp-local.
    if let Some((launcher, _)) = &shared.launcher {
        launcher.stop_all(RUNNER_STOP_GRACE).await;
    }
    timers.abort();
    connections.abort_all();
}

/// Waits for a free connection slot, then for a connection.
async fn accept(
    listener: &tokio::net::TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, slot)),
        Err(_) => {
            // Out of file descriptors or a reset before accept: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ServiceError::serialization(format!(
                "cannot read the request body: {e}"
            ))));
        }
    };
    let started = std::time::Instant::now();
    if parts.method == http::Method::GET
        && let Some(answer) = observe(&shared, parts.uri.path()).await
    {
        return Ok(answer);
    }
    if let Some(console) = &shared.console
        && (parts.uri.path() == "/console" || parts.uri.path().starts_with("/console/"))
    {
        let answer = crate::console::handle(console, &shared.engine, &parts, &body).await;
        shared
            .metrics
            .request("console", answer.status().as_u16(), started);
        return Ok(answer);
    }
    // A bug in a handler answers InternalServiceError instead of dropping the connection (in builds that unwind).
    let answer = CatchUnwind(Box::pin(respond(&shared, &parts, &body)))
        .await
        .unwrap_or_else(|_| {
            Err(ServiceError::internal(
                "dp-local failed while handling this request",
            ))
        });
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(dp_model::SERVICE.target_prefix))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(dp_model::operation)
        .map_or("unknown", |op| op.name);
    if operation == "PollForTask"
        && let Ok(bytes) = &answer
        && bytes.windows(12).any(|w| w == b"\"taskObject\"")
    {
        shared.metrics.task_handed_out();
    }
    let response = match answer {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(e) => error_response(&e),
    };
    shared
        .metrics
        .request(operation, response.status().as_u16(), started);
    Ok(response)
}

/// How long `GET /readyz` waits for the store before it answers 503.
const READY_LIMIT: Duration = Duration::from_secs(2);

/// `GET /healthz` (the process serves), `GET /readyz` (its store answers) and `GET /metrics`; `None` for other
/// paths. These need no signature: a load balancer and a scraper do not sign.
async fn observe(shared: &Shared, path: &str) -> Option<Response<Full<Bytes>>> {
    let started = std::time::Instant::now();
    let (name, status, content_type, body) = match path {
        "/healthz" => ("healthz", StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" => match ready(shared).await {
            Ok(()) => (
                "readyz",
                StatusCode::OK,
                "text/plain",
                "ready\n".to_string(),
            ),
            Err(reason) => (
                "readyz",
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {reason}\n"),
            ),
        },
        "/metrics" => {
            // Counted before encoding, so a scrape sees itself.
            shared.metrics.request("metrics", 200, started);
            let text = shared.metrics.encode(shared.engine.leases_lapsed());
            return Some(plain(StatusCode::OK, crate::metrics::CONTENT_TYPE, text));
        }
        _ => return None,
    };
    shared.metrics.request(name, status.as_u16(), started);
    Some(plain(status, content_type, body))
}

/// Ready when every change made so far is committed (the writer is not failing) and the store's own check, if
/// it has one, answers within [`READY_LIMIT`].
async fn ready(shared: &Shared) -> Result<(), String> {
    match tokio::time::timeout(READY_LIMIT, shared.engine.durable()).await {
        Err(_) => return Err("the state store has not committed for 2 s".into()),
        Ok(Err(e)) => return Err(e.message),
        Ok(Ok(())) => {}
    }
    if let Some(probe) = shared.probe.clone() {
        return tokio::task::spawn_blocking(move || probe(READY_LIMIT))
            .await
            .unwrap_or_else(|e| Err(format!("the readiness check failed: {e}")));
    }
    Ok(())
}

fn plain(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

async fn respond(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    if shared.auth {
        let request = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        };
        auth::verify(&request, &shared.credentials, SystemTime::now())?;
    }
    if parts.method != http::Method::POST {
        return Err(ServiceError::unknown_operation(format!(
            "{} is not supported; use POST",
            parts.method
        )));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(name) = target.strip_prefix("DpLocal.") {
        return crate::dispatch::admin(&shared.engine, name, body).await;
    }
    let operation = target
        .strip_prefix(dp_model::SERVICE.target_prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(dp_model::operation)
        .ok_or_else(|| {
            if target.is_empty() {
                ServiceError::unknown_operation("Missing X-Amz-Target header")
            } else {
                ServiceError::unknown_operation(format!("Unknown operation {target}"))
            }
        })?;
    crate::dispatch::call(&shared.engine, operation, body).await
}

/// Turns a panic while polling the inner future into an `Err`.
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

fn request_id() -> String {
    let n = fastrand::u128(..);
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", request_id())
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

fn error_response(e: &ServiceError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, e.body())
}
