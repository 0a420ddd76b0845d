//! `--query`: JMESPath over `serde_json::Value`, behaving like jmespath.py 1.1.0, which the AWS CLI uses.
//!
//! Why not the `jmespath` crate (0.5)? Its values are `BTreeMap`-backed, so every object that passes
//! through a query comes out with sorted keys, while the reference keeps the response's (model) order:
//! `--query 'pipelineDescriptionList[0]'` would print differently. Its error messages also differ from the
//! ones the reference prints after `Bad value for --query …`. This port keeps order, Python semantics
//! and Python's messages, and passes the JMESPath compliance suite (see `compliance/`).
//!
//! Syntax errors come from [`Query::compile`]; arity, type and unknown-function errors come from
//! [`Query::apply`], as in jmespath.py, where they surface only when the result is formatted.

mod eval;
mod parse;

use serde_json::Value;
use std::fmt;

/// A compiled JMESPath expression.
#[derive(Debug, Clone)]
pub struct Query {
    expression: String,
    ast: parse::Node,
}

/// Whether an error was found while compiling or while evaluating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The expression does not parse (lexer or parser error, or an empty expression).
    Syntax,
    /// Evaluation failed: unknown function, wrong arity, wrong argument type, invalid slice step.
    Runtime,
}

/// A JMESPath error; its `Display` is jmespath.py's `str(error)`, caret lines included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    kind: QueryErrorKind,
    message: String,
    /// The code-point column the error points at, when it points somewhere.
    column: Option<usize>,
}

impl QueryError {
    /// Syntax or runtime.
    pub fn kind(&self) -> QueryErrorKind {
        self.kind
    }

    /// The code-point column (0-based) the caret points at, for syntax errors.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The reference's message for a bad `--query` value: `Bad value for --query EXPR: <error>`.
    pub fn bad_value_message(&self, expression: &str) -> String {
        format!("Bad value for --query {expression}: {}", self.message)
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

impl Query {
    /// Compiles `expression`; a syntax error says where, as the reference does.
    pub fn compile(expression: &str) -> Result<Query, QueryError> {
        Ok(Query {
            expression: expression.to_string(),
            ast: parse::parse(expression)?,
        })
    }

    /// The source text.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Evaluates the expression against `value`.
    pub fn apply(&self, value: &Value) -> Result<Value, QueryError> {
        eval::eval(&self.ast, value)
    }
}
