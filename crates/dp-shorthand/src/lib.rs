//! The AWS CLI shorthand syntax (`--fields key=a,stringValue=b`), parsed with nom, typed by the model.
//!
//! Shorthand is how users type structures on the command line. This crate turns one shorthand string into a plain
//! [`Value`] tree exactly as the reference parser (`awscli.shorthand.ShorthandParser`, identical in AWS CLI v1 and
//! v2) does, including its quirks, and reports errors with the reference's wording and a caret under the offending
//! character ([`Error`]). A second, separate step types a tree against a `dp_model` [`Shape`] the way the CLI's
//! `BackCompatVisitor` does, and also reports unknown members early with a suggestion ([`to_json`]);
//! [`parse_option`] does both for the arguments of one option. [`render`] writes a tree back as shorthand.
//!
//! Strings in the tree borrow from the input unless unescaping changed them, so a parse allocates little more than
//! the hashes and lists themselves.
//!
//! [`ErrorKind::FileLoad`] errors are printed by the reference on their own; every other [`Error`] is printed after
//! `Error parsing parameter '--option': `.
//!
//! The crate knows nothing of clap or HTTP. Its only IO is reading the files that `@=` values name, and only when
//! the caller asks for it: [`parse`] is pure and leaves `file://…` values as text, [`parse_with_files`] hands them
//! to a loader the caller supplies, and [`load_file`] is the loader that reads them the way the reference does.
//!
//! ```
//! use dp_shorthand::{Value, parse, render, to_json};
//!
//! let tree = parse("key=a,stringValue=b").unwrap();
//! assert_eq!(
//!     tree,
//!     Value::Map(vec![("key".into(), Value::from("a")), ("stringValue".into(), Value::from("b"))])
//! );
//! assert_eq!(render(&tree), "key=a,stringValue=b");
//!
//! // The CLI parses each argument of a list option on its own and types the list against the model.
//! let fields = dp_model::operation("ReportTaskProgress").unwrap().input.unwrap().member("fields").unwrap();
//! let items = Value::List(vec![tree, parse("key=c,refValue=d").unwrap()]);
//! let json = to_json(&items, fields.shape, "fields").unwrap();
//! assert_eq!(json.to_string(), r#"[{"key":"a","stringValue":"b"},{"key":"c","refValue":"d"}]"#);
//!
//! // Errors point at the offending character.
//! let err = parse("a==b").unwrap_err();
//! assert_eq!(err.to_string(), "Expected: ',', received: '=' for input:\na==b\n  ^");
//!
//! // Unknown members are reported with a suggestion.
//! let err = to_json(&Value::List(vec![parse("key=a,stringvalue=b").unwrap()]), fields.shape, "fields");
//! assert_eq!(
//!     err.unwrap_err().to_string(),
//!     r#"unknown member "stringvalue" in fields[0], did you mean "stringValue"?"#
//! );
//! ```

mod error;
mod files;
mod grammar;
mod render;
mod typing;

pub use error::{Error, ErrorKind};
pub use files::{DecodeError, FileContents, decode, load_file, read_file};
pub use render::render;
pub use typing::{TypeError, TypeErrorKind, to_json};

use std::borrow::Cow;

use dp_model::{Shape, ShapeKind};

/// A parsed shorthand value. Every scalar the grammar produces is a string; the model gives types later.
///
/// Strings borrow from the parsed input when they need no unescaping (most do), which keeps parsing free of
/// copies; [`Value::into_owned`] detaches a tree from its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string.
    String(Cow<'a, str>),
    /// The bytes of a `fileb://` file loaded through `@=`.
    Bytes(Vec<u8>),
    /// A list, from `a=b,c` or `a=[b,c]`.
    List(Vec<Value<'a>>),
    /// A hash, in input order. Parsed hashes never repeat a key (a repeated key inside `{…}` keeps its first
    /// place and takes the last value, as in a Python dict).
    Map(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl Value<'_> {
    /// The same tree, owning all its strings.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(b),
            Value::List(items) => Value::List(items.into_iter().map(Value::into_owned).collect()),
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::String(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::String(Cow::Owned(s))
    }
}

/// Whether a file reference asks for text or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `file://`: the file's text.
    Text,
    /// `fileb://`: the file's bytes.
    Binary,
}

/// A `file://` or `fileb://` value found after `@=`, handed to the loader of [`parse_with_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef<'a> {
    /// Text or bytes.
    pub kind: FileKind,
    /// The whole value as written (`file://~/x.txt`), used in error messages.
    pub reference: &'a str,
    /// The path after the prefix, before any `~` or `$VAR` expansion (`~/x.txt`).
    pub path: &'a str,
}

impl<'a> FileRef<'a> {
    /// The file reference that `value` makes, if it starts with `file://` or `fileb://`.
    pub fn from_value(value: &'a str) -> Option<FileRef<'a>> {
        if let Some(path) = value.strip_prefix("file://") {
            Some(FileRef {
                kind: FileKind::Text,
                reference: value,
                path,
            })
        } else {
            value.strip_prefix("fileb://").map(|path| FileRef {
                kind: FileKind::Binary,
                reference: value,
                path,
            })
        }
    }
}

/// The function that reads a `file://` / `fileb://` reference for [`parse_with_files`]: the value to use, or the
/// error message. [`load_file`] is the standard one.
pub type FileLoader<'a> = dyn FnMut(&FileRef<'_>) -> Result<Value<'static>, String> + 'a;

/// Parses one shorthand string into a tree; pure, so `@=` values are kept as written (`file://x` stays text).
///
/// The result of a successful parse is always a [`Value::Map`] with at least one entry.
pub fn parse(input: &str) -> Result<Value<'_>, Error> {
    grammar::Parser::new(input, None).run()
}

/// Parses one shorthand string, handing every `file://` / `fileb://` value found after `@=` to `loader`.
///
/// The loader returns the value to use (usually [`Value::String`] for text and [`Value::Bytes`] for bytes) or the
/// error message to report as [`ErrorKind::FileLoad`]. [`load_file`] is the loader that reads the file system as
/// the reference does. As in the reference, the loader is called at the moment the value is read, even for a
/// comma-list element that backtracking later discards.
pub fn parse_with_files<'a>(
    input: &'a str,
    loader: &mut FileLoader<'_>,
) -> Result<Value<'a>, Error> {
    grammar::Parser::new(input, Some(loader)).run()
}

/// A failure of [`parse_option`]: the shorthand did not parse, or the tree did not fit the shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// An argument is not valid shorthand.
    Parse(Error),
    /// The parsed tree does not fit the model.
    Type(TypeError),
    /// An option whose shape is not a list was given other than exactly one argument.
    ArgumentCount(usize),
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionError::Parse(e) => e.fmt(f),
            OptionError::Type(e) => e.fmt(f),
            OptionError::ArgumentCount(n) => write!(f, "expected one shorthand argument, got {n}"),
        }
    }
}

impl std::error::Error for OptionError {}

/// Parses and types the arguments of one option, as the CLI does: for a list shape each argument is parsed on its
/// own and becomes one element (`--fields key=a,stringValue=b key=c,refValue=d`); for any other shape the single
/// argument is the value. `path` names the option's member in messages (`fields`). With a `loader`, `@=` file
/// references are read through it (see [`parse_with_files`]); without one they stay text.
///
/// Whether shorthand applies at all (it never does for lists of scalars, nor for values starting with `[` or `{`,
/// which are JSON) is the caller's decision, as the reference's `ParamShorthandParser` makes it.
pub fn parse_option<'a>(
    args: &[&'a str],
    shape: &'static Shape,
    path: &str,
    mut loader: Option<&mut FileLoader<'_>>,
) -> Result<serde_json::Value, OptionError> {
    let mut parse_one = |arg: &'a str| match loader.as_deref_mut() {
        Some(loader) => parse_with_files(arg, loader),
        None => parse(arg),
    };
    let value = match (&shape.kind, args) {
        (ShapeKind::List(_), args) => Value::List(
            args.iter()
                .map(|a| parse_one(a))
                .collect::<Result<_, _>>()
                .map_err(OptionError::Parse)?,
        ),
        (_, [arg]) => parse_one(arg).map_err(OptionError::Parse)?,
        (_, args) => return Err(OptionError::ArgumentCount(args.len())),
    };
    to_json(&value, shape, path).map_err(OptionError::Type)
}
