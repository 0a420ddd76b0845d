//! Why rendering failed: the one error type of the formatters, in a module of its own so that `text` and `table`
//! need nothing from the module that dispatches to them.

use std::fmt;

use super::query::QueryError;

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// `--query` failed while evaluating (unknown function, arity, argument type, zero slice step).
    Query(QueryError),
    /// The (queried) value has a shape the text or table formatter cannot lay out; the reference fails
    /// with a Python exception here (for example a list mixing objects and strings). The text is Python's.
    Shape(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Query(e) => e.fmt(f),
            RenderError::Shape(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RenderError {}

impl From<QueryError> for RenderError {
    fn from(e: QueryError) -> Self {
        RenderError::Query(e)
    }
}
