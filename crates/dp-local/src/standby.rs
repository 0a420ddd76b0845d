//! What a dp-local answers while it waits to serve a PostgreSQL database that another dp-local serves.
//!
//! One node serves a database at a time (it holds the database's serving lock); a second one started on the same
//! database binds its port and then stands by until the lock is free, answering meanwhile on that port:
//! `GET /healthz` 200 (the process lives), `GET /readyz` 503, and every other request 503
//! `ServiceUnavailableException` with a message saying why, so that a load balancer sends nothing its way and a
//! client that reaches it anyway retries. This module answers only; it reads no state and decides nothing.

use std::convert::Infallible;
use std::net::TcpListener as StdListener;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// The message of every standby answer.
pub const MESSAGE: &str = "this dp-local is a standby: another dp-local serves its database; it takes over when that one stops";

/// Answers on a copy of the listening socket until stopped.
#[derive(Debug)]
pub struct Responder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    /// Starts answering on `listener` (which stays usable by the caller once the responder stops). `None` if the
    /// socket cannot be shared; then connections simply wait in the listen queue.
    pub fn start(listener: &StdListener) -> Option<Responder> {
        let copy = listener.try_clone().ok()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dp-local-standby".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(copy) else {
                        return;
                    };
                    let mut connections = tokio::task::JoinSet::new();
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                connections.spawn(async move {
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .keep_alive(false)
                                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                                        .await;
                                });
                            }
                            Some(_) = connections.join_next(), if !connections.is_empty() => {}
                        }
                    }
                    connections.abort_all();
                });
            })
            .ok()?;
        Some(Responder {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops answering; returns once the copy of the socket is closed.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.finish();
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let get = request.method() == http::Method::GET;
    let (status, content_type, body) = match request.uri().path() {
        "/healthz" if get => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if get => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("not ready: {MESSAGE}\n"),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": "ServiceUnavailableException", "message": MESSAGE})
                .to_string(),
        ),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("connection", "close")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid"))
}
