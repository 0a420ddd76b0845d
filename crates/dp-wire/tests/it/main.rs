//! Integration tests of dp-wire: published SigV4 vectors, the endpoint rules, and calls against a scripted loopback
//! server (retries, timeouts, broken connections, error parsing, redaction of `--debug` output).

mod cli_wording;
mod config;
mod configured_endpoints;
mod endpoints;
mod fuzz;
mod proxy;
mod responses;
mod retries;
mod secrets;
mod server;
mod sigv4;
mod support;
mod tls;
