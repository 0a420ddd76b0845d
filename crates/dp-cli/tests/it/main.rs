//! Integration tests of dp-cli, one module per area.

mod output;
