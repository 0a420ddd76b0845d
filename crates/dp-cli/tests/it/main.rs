//! Integration tests of dp-cli, one module per area.

mod cli;
mod definition;
mod help;
mod output;
mod snapshot;
