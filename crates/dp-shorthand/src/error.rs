//! The shorthand parse error: what went wrong, at which character, and how the reference CLI words it.
//!
//! The wording is the one users script against (`awscli/shorthand.py`); the location display is the one the
//! reference prints from v1 1.45.53 on (exact caret, no leading space). This module formats; it never decides what
//! is an error.

use std::fmt;

/// What went wrong while parsing shorthand.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The parser needed `expected` and found `received`.
    ///
    /// `expected` is a character (`=` or `,` in practice) or a pattern name in angle brackets (`<second>`,
    /// `<singled quoted>`, `<double quoted>`). `received` is the offending character, `EOF` when the input ended,
    /// or `<none>` when a required pattern did not match.
    Syntax {
        /// What the parser needed.
        expected: String,
        /// What it found.
        received: String,
    },
    /// A top-level key occurred twice (`key=a,key=b`), usually a `,` where a space was meant.
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// An `@=` value named a `file://` or `fileb://` path that could not be read.
    ///
    /// The reference prints this message on its own, without the `Error parsing parameter` prefix.
    FileLoad {
        /// The full message, in the reference's wording (`Unable to load paramfile …`).
        message: String,
    },
}

/// A shorthand parse error: a kind, the input, and the code-point offset the error points at.
///
/// `Display` renders the whole message that follows `Error parsing parameter '--fields': ` in the CLI, for example
///
/// ```text
/// Expected: ',', received: '=' for input:
/// a==b
///   ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    input: String,
    offset: usize,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, input: &str, offset: usize) -> Error {
        Error {
            kind,
            input: input.to_owned(),
            offset,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The offset of the offending character, counted in Unicode code points (a Python string index).
    ///
    /// For [`ErrorKind::DuplicateKey`] it is the end of the previous key-value pair plus one, as the reference
    /// computes it. For [`ErrorKind::FileLoad`] it is where the value that named the file starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The input that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The input with a caret line under the offending character (on the right line of a multi-line input).
    ///
    /// The lines are the input up to the first newline at or after the error, a newline, spaces up to the error's
    /// column, `^`, and then the rest of the input from that newline on.
    pub fn location(&self) -> String {
        location(&self.input, self.offset)
    }
}

/// Where an error is, as the reference shows it, for code-point index `index`: the input up to the end of the
/// offending line, then a line with a caret under the offending character (counted in code points from that line's
/// start), then the rest of the input.
fn location(input: &str, index: usize) -> String {
    let split = input
        .char_indices()
        .nth(index)
        .map_or(input.len(), |(b, _)| b);
    let (before, after) = input.split_at(split);
    let column = match before.rfind('\n') {
        Some(nl) => before[nl + 1..].chars().count(),
        None => index,
    };
    let (consumed, rest) = match after.find('\n') {
        Some(nl) => input.split_at(split + nl),
        None => (input, ""),
    };
    let mut out = String::with_capacity(input.len() + column + 2);
    out.push_str(consumed);
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', column));
    out.push('^');
    out.push_str(rest);
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Syntax { expected, received } => {
                write!(
                    f,
                    "Expected: '{expected}', received: '{received}' for input:\n{}",
                    self.location()
                )
            }
            ErrorKind::DuplicateKey { key } => write!(
                f,
                "Second instance of key \"{key}\" encountered for input:\n{}\nThis is often because there is a \
                 preceding \",\" instead of a space.",
                self.location()
            ),
            ErrorKind::FileLoad { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::location;

    #[track_caller]
    fn check(input: &str, index: usize, expected: &str) {
        assert_eq!(
            location(input, index),
            expected,
            "location of {input:?} at {index}"
        );
    }

    #[test]
    fn locations() {
        check("a==b", 2, "a==b\n  ^");
        check("a", 1, "a\n ^");
        check("", 0, "\n^");
        check("foo=bar,\nbar==baz", 13, "foo=bar,\nbar==baz\n    ^");
        check("foo==bar,\nbar=baz", 4, "foo==bar,\n    ^\nbar=baz");
        check("a\nb\nc", 2, "a\nb\n^\nc");
        // The index may sit on the newline itself: the caret goes after the line.
        check("ab\ncd", 2, "ab\n  ^\ncd");
        check("é✓=😀x", 3, "é✓=😀x\n   ^");
    }
}
