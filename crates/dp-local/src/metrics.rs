//! What an operator puts behind a load balancer and a scraper: the numbers of `GET /metrics`, and the store wrapper
//! that times commits.
//!
//! The metrics are kept with `prometheus-client` and written in its text format (OpenMetrics text, which
//! Prometheus reads): requests by operation and status, request latency by operation, tasks handed out, leases
//! lapsed, store commit latency and open connections. This module only counts; it decides nothing, and it holds
//! no label whose values a client chooses freely (an operation label is a modeled operation name or one of a few
//! fixed words), so a scraper's series stay bounded.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Error;
use crate::store::{Probe, Row, Store, Table};

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: String,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    tasks_handed_out: Counter,
    leases_lapsed: Counter,
    commit_latency: Histogram,
    open_connections: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `dp_local_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dp_local");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by operation (or healthz, readyz, metrics, console, unknown) and HTTP status",
            requests.clone(),
        );
        let latency = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's body being read to its answer, by operation",
            latency.clone(),
        );
        let tasks_handed_out = Counter::default();
        registry.register(
            "tasks_handed_out",
            "Tasks handed to pollers by PollForTask",
            tasks_handed_out.clone(),
        );
        let leases_lapsed = Counter::default();
        registry.register(
            "leases_lapsed",
            "Task leases that lapsed (not acknowledged, or no progress report in time)",
            leases_lapsed.clone(),
        );
        let commit_latency = latency_histogram();
        registry.register(
            "store_commit_duration_seconds",
            "Time one store transaction took to commit (SQLite or PostgreSQL)",
            commit_latency.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "HTTP connections open now",
            open_connections.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            tasks_handed_out,
            leases_lapsed,
            commit_latency,
            open_connections,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, operation: &str, status: u16, started: Instant) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts a task handed out.
    pub fn task_handed_out(&self) {
        self.tasks_handed_out.inc();
    }

    /// A connection opened; the gauge goes down when the returned guard is dropped.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.open_connections.inc();
        ConnectionGuard(self.clone())
    }

    /// Wraps `store` so that each commit's duration is observed.
    pub fn timed(self: &Arc<Self>, store: Box<dyn Store>) -> Box<dyn Store> {
        Box::new(TimedStore {
            inner: store,
            histogram: self.commit_latency.clone(),
        })
    }

    /// Wraps a store shared by several nodes so that each turn's commit is observed the same way.
    pub fn timed_shared(
        self: &Arc<Self>,
        store: Box<dyn crate::store::shared::SharedStore>,
    ) -> Box<dyn crate::store::shared::SharedStore> {
        Box::new(TimedShared {
            inner: store,
            histogram: self.commit_latency.clone(),
        })
    }

    /// The text of `GET /metrics`; `leases_lapsed` is the engine's count, brought up to date first.
    pub fn encode(&self, leases_lapsed: u64) -> String {
        let seen = self.leases_lapsed.get();
        if leases_lapsed > seen {
            self.leases_lapsed.inc_by(leases_lapsed - seen);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps a connection counted as open while it lives.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}

/// A store whose commits are timed.
struct TimedStore {
    inner: Box<dyn Store>,
    histogram: Histogram,
}

impl Store for TimedStore {
    fn load(&mut self, table: Table) -> Result<Vec<Row>, Error> {
        self.inner.load(table)
    }

    fn commit(&mut self, rows: &[Row]) -> Result<(), Error> {
        let started = Instant::now();
        let result = self.inner.commit(rows);
        self.histogram.observe(started.elapsed().as_secs_f64());
        result
    }

    fn probe(&self) -> Option<Probe> {
        self.inner.probe()
    }
}

/// A shared store whose commits are timed.
struct TimedShared {
    inner: Box<dyn crate::store::shared::SharedStore>,
    histogram: Histogram,
}

impl crate::store::shared::SharedStore for TimedShared {
    fn begin(&self, since: i64) -> Result<crate::store::shared::Changes, Error> {
        self.inner.begin(since)
    }

    fn commit(
        &self,
        rows: &[Row],
        node: u64,
        groups: &[String],
        next: Option<i64>,
        alone: bool,
    ) -> Result<i64, Error> {
        let started = Instant::now();
        let result = self.inner.commit(rows, node, groups, next, alone);
        self.histogram.observe(started.elapsed().as_secs_f64());
        result
    }

    fn release(&self, next: Option<i64>) {
        self.inner.release(next);
    }

    fn changes(&self, since: i64) -> Result<crate::store::shared::Changes, Error> {
        self.inner.changes(since)
    }

    fn listen(&self, deliver: Box<dyn Fn(crate::store::shared::Wakeup) + Send + Sync>) {
        self.inner.listen(deliver);
    }

    fn probe(&self) -> Option<Probe> {
        self.inner.probe()
    }
}
