//! Integration tests of dp-local: every operation over HTTP, the lease rules with a fast clock, concurrency,
//! authentication, the binary, and the installed AWS CLI as a second client.

mod auth;
mod awscli;
mod binary;
mod concurrency;
mod connections;
mod console;
mod crash;
mod differences;
mod files;
mod leases;
mod nodes;
mod observe;
mod operations;
mod pgmode;
mod process;
mod properties;
mod runs;
mod schedules;
mod state;
mod stores;
mod support;
mod wire;

use std::time::Duration;

use dp_local::Config;
use pgmode::TestServer;

/// A server with the given time scale and a long poll of `poll_secs` service seconds: in memory, or with
/// `DP_LOCAL_TEST_STORE=postgres` on a PostgreSQL database of its own (see `pgmode`).
pub fn server(time_scale: f64, poll_secs: f64) -> TestServer {
    pgmode::bind(Config {
        time_scale,
        poll_timeout: Duration::from_secs_f64(poll_secs),
        ..Config::default()
    })
}
