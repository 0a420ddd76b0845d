//! Integration tests of dp-cli, one module per area.

mod cli;
mod default_roles;
mod definition;
mod help;
mod interrupt;
mod man;
mod output;
mod pyjson;
mod snapshot;
