//! Integration tests of dp-shorthand: grammar cases, error rendering, typing, `@=` files, properties, and the
//! differential test against the installed AWS CLI's parser.

mod differential;
mod errors;
mod files;
mod grammar;
mod props;
mod support;
mod typing;
