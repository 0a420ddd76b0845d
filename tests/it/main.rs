//! End-to-end tests: several crates at once, and dp against the installed AWS CLI.

mod differential;
mod harness;
