//! Integration tests of dp-task-runner against dp-local.
