//! Integration tests of dp-model: typed round trips and validation against botocore's validator.

mod generate;
mod roundtrip;
mod validation;
