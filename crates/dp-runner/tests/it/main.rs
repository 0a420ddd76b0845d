//! Integration tests of dp-task-runner: the real binary against dp-local at a fast clock, S3 against moto's server
//! mode, and the library's pieces on their own.

mod copy;
mod databases;
mod emr;
mod faults;
mod harness;
mod lifecycle;
mod precondition;
mod redshift;
mod regex;
mod s3;
mod sql;
mod usage;
