//! One HTTP/1.1 round trip with connect and read timeouts, over TCP or rustls, keeping one connection alive.
//!
//! dp makes one call at a time, so a single kept-alive connection is the whole pool. Owning the connection (instead
//! of a pooled client) lets the connect timeout cover exactly TCP + TLS set-up and the read timeout exactly the wait
//! for response bytes, as botocore's socket timeouts do. This module knows nothing of signing, retries or AWS: it
//! sends the request it is given and reports what happened in a [`TransportError`] the retry rules can classify.
//! The SDK clients dp-wire lends it to (aws-config's credential providers, aws-sdk-s3 in dp-task-runner) use
//! [`Transport::stream`], which sends their bodies as they are and leaves the response body to its reader, so an
//! S3 object passes through in chunks; when several of their calls run at once, the busy ones use fresh connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::Error;

/// Where to connect: host, port and whether to speak TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Why a round trip failed.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// DNS, refused, unreachable, TLS handshake failure.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// TCP + TLS set-up took longer than the connect timeout.
    ConnectTimeout,
    /// No response byte arrived within the read timeout.
    ReadTimeout,
    /// The connection closed or broke before a complete response.
    Closed(Box<dyn std::error::Error + Send + Sync>),
}

/// An HTTP proxy (`HTTPS_PROXY` / `HTTP_PROXY`): https targets are tunnelled with `CONNECT`, http requests are sent
/// to it in absolute form.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Basic …` from the proxy URL's user info. A secret: never logged.
    pub(crate) authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// A request's connection and the response head that came back on it.
type Sent<B> = (SendRequest<B>, http::Response<hyper::body::Incoming>);

/// The connection keeper, for requests whose body is a `B`: dp-wire's own calls send in-memory bodies
/// (`Full<Bytes>`, the default) and read whole responses ([`Transport::round_trip`]); the SDK clients dp-wire lends
/// its transport to (aws-sdk-s3 in dp-task-runner) send and receive streaming bodies ([`Transport::stream`]).
pub(crate) struct Transport<B = Full<Bytes>> {
    tls: Option<tokio_rustls::TlsConnector>,
    proxy: Option<Proxy>,
    idle: Mutex<Option<(Target, SendRequest<B>)>>,
}

impl<B> std::fmt::Debug for Transport<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> Transport<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub(crate) fn with_proxy(
        tls: Option<Arc<rustls::ClientConfig>>,
        proxy: Option<Proxy>,
    ) -> Transport<B> {
        Transport {
            tls: tls.map(tokio_rustls::TlsConnector::from),
            proxy,
            idle: Mutex::new(None),
        }
    }

    /// Sends `request` to `target` and returns the response with its body still to be read (the read timeout
    /// covers the wait for the response head). The connection goes back to be kept alive at once: it is taken
    /// again only once hyper reports it ready, that is, after this response's body has been read to its end.
    pub(crate) async fn stream(
        &self,
        target: &Target,
        request: Request<B>,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Result<http::Response<hyper::body::Incoming>, TransportError> {
        let (sender, response) = self
            .send_head(target, request, connect_timeout, read_timeout)
            .await?;
        self.keep(target, sender, response.headers());
        Ok(response)
    }

    /// Sends the request (on the kept connection when it is still usable) and waits for the response head.
    async fn send_head(
        &self,
        target: &Target,
        request: Request<B>,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Result<Sent<B>, TransportError> {
        let mut request = request;
        if let (Some(proxy), false) = (&self.proxy, target.tls) {
            // Plain http through a proxy: the request line carries the absolute URL.
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string();
            let authority = request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}:{}", target.host, target.port));
            *request.uri_mut() = format!("http://{authority}{path}")
                .parse()
                .map_err(|e: http::uri::InvalidUri| TransportError::Connect(Box::new(e)))?;
            if let Some(authorization) = &proxy.authorization {
                let value = http::HeaderValue::from_str(authorization)
                    .map_err(|e| TransportError::Connect(Box::new(e)))?;
                request
                    .headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, value);
            }
        }
        match self.take_idle(target) {
            Some(mut sender) => {
                // A kept-alive connection the server has just closed hands the unsent request back: send it again on
                // a fresh connection, without counting an attempt.
                match with_timeout(read_timeout, sender.try_send_request(request)).await {
                    None => Err(TransportError::ReadTimeout),
                    Some(Ok(response)) => Ok((sender, response)),
                    Some(Err(mut error)) => match error.take_message() {
                        Some(request) => {
                            self.send_fresh(target, request, connect_timeout, read_timeout)
                                .await
                        }
                        None => Err(TransportError::Closed(Box::new(error.into_error()))),
                    },
                }
            }
            None => {
                self.send_fresh(target, request, connect_timeout, read_timeout)
                    .await
            }
        }
    }

    /// Keeps `sender` for the next request unless the response asked to close the connection.
    fn keep(&self, target: &Target, sender: SendRequest<B>, headers: &HeaderMap) {
        let keep_alive = !headers
            .get(http::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if keep_alive && !sender.is_closed() {
            *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some((target.clone(), sender));
        }
    }

    async fn send_fresh(
        &self,
        target: &Target,
        request: Request<B>,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Result<Sent<B>, TransportError> {
        let mut sender = self.connect(target, connect_timeout).await?;
        match with_timeout(read_timeout, sender.send_request(request)).await {
            None => Err(TransportError::ReadTimeout),
            Some(Err(e)) => Err(TransportError::Closed(Box::new(e))),
            Some(Ok(response)) => Ok((sender, response)),
        }
    }

    fn take_idle(&self, target: &Target) -> Option<SendRequest<B>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle.take() {
            Some((t, sender)) if &t == target && !sender.is_closed() && sender.is_ready() => {
                Some(sender)
            }
            _ => None,
        }
    }

    async fn connect(
        &self,
        target: &Target,
        connect_timeout: Option<Duration>,
    ) -> Result<SendRequest<B>, TransportError> {
        let setup = async {
            // An IPv6 literal comes bracketed from the URL (`[::1]`).
            let host = target.host.trim_start_matches('[').trim_end_matches(']');
            let (connect_host, connect_port) = match &self.proxy {
                Some(proxy) => (
                    proxy.host.trim_start_matches('[').trim_end_matches(']'),
                    proxy.port,
                ),
                None => (host, target.port),
            };
            let mut tcp = TcpStream::connect((connect_host, connect_port))
                .await
                .map_err(|e| TransportError::Connect(Box::new(e)))?;
            let _ = tcp.set_nodelay(true);
            if target.tls {
                if let Some(proxy) = &self.proxy {
                    tunnel(&mut tcp, target, proxy).await?;
                }
                let connector = self.tls.as_ref().ok_or_else(|| {
                    TransportError::Connect("TLS is not configured for this client".into())
                })?;
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| TransportError::Connect(Box::new(e)))?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| TransportError::Connect(Box::new(e)))?;
                handshake(TokioIo::new(stream)).await
            } else {
                handshake(TokioIo::new(tcp)).await
            }
        };
        match with_timeout(connect_timeout, setup).await {
            None => Err(TransportError::ConnectTimeout),
            Some(result) => result,
        }
    }
}

impl Transport<Full<Bytes>> {
    /// Sends `request` to `target` and reads the whole response, each wait for bytes bounded by the read timeout.
    pub(crate) async fn round_trip(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Result<Response, TransportError> {
        let (sender, response) = self
            .send_head(target, request, connect_timeout, read_timeout)
            .await?;
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        loop {
            match with_timeout(read_timeout, body.frame()).await {
                None => return Err(TransportError::ReadTimeout),
                Some(None) => break,
                Some(Some(Err(e))) => return Err(TransportError::Closed(Box::new(e))),
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
            }
        }
        self.keep(target, sender, &parts.headers);
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(bytes),
        })
    }
}

/// Opens a `CONNECT` tunnel to `target` through the proxy on `tcp`.
async fn tunnel(tcp: &mut TcpStream, target: &Target, proxy: &Proxy) -> Result<(), TransportError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = format!("{}:{}", target.host, target.port);
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(authorization) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| TransportError::Connect(Box::new(e)))?;
    // The proxy answers with a head and nothing after it until the TLS handshake starts.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(TransportError::Connect(
                "the proxy's CONNECT response is too long".into(),
            ));
        }
        let n = tcp
            .read(&mut byte)
            .await
            .map_err(|e| TransportError::Connect(Box::new(e)))?;
        if n == 0 {
            return Err(TransportError::Connect(
                "the proxy closed the connection during CONNECT".into(),
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or("");
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status.len() == 3 && status.starts_with('2') {
        Ok(())
    } else {
        Err(TransportError::Connect(
            format!("the proxy refused the tunnel: {status_line}").into(),
        ))
    }
}

async fn handshake<T, B>(io: T) -> Result<SendRequest<B>, TransportError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| TransportError::Connect(Box::new(e)))?;
    // The connection task ends by itself when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `None` when the timeout expired; no timeout when `limit` is `None`.
async fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    future: F,
) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}

/// The rustls configuration: verification against the CA bundle if one is given, else the system's roots; no
/// certificate check at all (dp-tls's encrypt-only mode) only for `--no-verify-ssl`.
pub(crate) fn tls_config(
    ca_bundle: Option<&std::path::Path>,
    verify: bool,
) -> Result<rustls::ClientConfig, Error> {
    if !verify {
        return Ok(dp_tls::encrypt_only());
    }
    let roots = match ca_bundle {
        Some(path) => {
            dp_tls::roots_from_pem_file(path).map_err(|e| Error::config(e.to_string()))?
        }
        None => dp_tls::native_roots(),
    };
    Ok(dp_tls::verifying(roots))
}
