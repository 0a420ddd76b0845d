//! End-to-end tests: several crates at once, and dp against the installed AWS CLI.

mod default_roles;
mod differential;
mod harness;
mod resources;
