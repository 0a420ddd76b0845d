//! JMESPath lexer and Pratt parser, ported from jmespath.py 1.1.0 (`lexer.py`, `parser.py`) so that the AST
//! shapes and every syntax error message (wording, column, caret) are the reference's.
//!
//! Positions are Python string indices (code points). This module must not evaluate anything.

use super::{QueryError, QueryErrorKind};
use crate::output::pyfmt::py_str;
use serde_json::Value;

/// Token types, named as jmespath.py names them (they appear in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dot,
    Star,
    Rbracket,
    Comma,
    Colon,
    Current,
    Lparen,
    Rparen,
    Lbrace,
    Rbrace,
    UnquotedIdentifier,
    QuotedIdentifier,
    Flatten,
    Filter,
    Lbracket,
    Literal,
    Or,
    Pipe,
    And,
    Expref,
    Number,
    Lte,
    Lt,
    Gte,
    Gt,
    Ne,
    Not,
    Eq,
    Eof,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Dot => "dot",
            Kind::Star => "star",
            Kind::Rbracket => "rbracket",
            Kind::Comma => "comma",
            Kind::Colon => "colon",
            Kind::Current => "current",
            Kind::Lparen => "lparen",
            Kind::Rparen => "rparen",
            Kind::Lbrace => "lbrace",
            Kind::Rbrace => "rbrace",
            Kind::UnquotedIdentifier => "unquoted_identifier",
            Kind::QuotedIdentifier => "quoted_identifier",
            Kind::Flatten => "flatten",
            Kind::Filter => "filter",
            Kind::Lbracket => "lbracket",
            Kind::Literal => "literal",
            Kind::Or => "or",
            Kind::Pipe => "pipe",
            Kind::And => "and",
            Kind::Expref => "expref",
            Kind::Number => "number",
            Kind::Lte => "lte",
            Kind::Lt => "lt",
            Kind::Gte => "gte",
            Kind::Gt => "gt",
            Kind::Ne => "ne",
            Kind::Not => "not",
            Kind::Eq => "eq",
            Kind::Eof => "eof",
        }
    }

    fn binding_power(self) -> u8 {
        match self {
            Kind::Pipe => 1,
            Kind::Or => 2,
            Kind::And => 3,
            Kind::Eq | Kind::Gt | Kind::Lt | Kind::Gte | Kind::Lte | Kind::Ne => 5,
            Kind::Flatten => 9,
            Kind::Star => 20,
            Kind::Filter => 21,
            Kind::Dot => 40,
            Kind::Not => 45,
            Kind::Lbrace => 50,
            Kind::Lbracket => 55,
            Kind::Lparen => 60,
            _ => 0,
        }
    }
}

/// The maximum binding power of a token that stops a projection.
const PROJECTION_STOP: u8 = 10;

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// Python `str()` of the token's value, as error messages print it.
    text: String,
    /// The token's value: identifier name, literal, or number.
    value: TokenValue,
    start: usize,
}

#[derive(Debug, Clone)]
enum TokenValue {
    None,
    Str(String),
    Json(Value),
    Int(i64),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comparator {
    Eq,
    Ne,
    Lt,
    Gt,
    Lte,
    Gte,
}

impl Comparator {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Comparator::Eq => "==",
            Comparator::Ne => "!=",
            Comparator::Lt => "<",
            Comparator::Gt => ">",
            Comparator::Lte => "<=",
            Comparator::Gte => ">=",
        }
    }
}

/// The AST, one variant per jmespath.py node type.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Field(String),
    Subexpression(Vec<Node>),
    IndexExpression(Vec<Node>),
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Identity,
    Current,
    Literal(Value),
    Comparator(Comparator, Box<Node>, Box<Node>),
    ValueProjection(Box<Node>, Box<Node>),
    Projection(Box<Node>, Box<Node>),
    FilterProjection(Box<Node>, Box<Node>, Box<Node>),
    Flatten(Box<Node>),
    Not(Box<Node>),
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Pipe(Box<Node>, Box<Node>),
    MultiSelectList(Vec<Node>),
    MultiSelectDict(Vec<(String, Node)>),
    Function(String, Vec<Node>),
    Expref(Box<Node>),
}

fn lexer_error(expression: &str, position: usize, message: String) -> QueryError {
    let underline = format!("{}^", " ".repeat(position));
    QueryError {
        kind: QueryErrorKind::Syntax,
        message: format!("Bad jmespath expression: {message}:\n{expression}\n{underline}"),
        column: Some(position),
    }
}

fn parse_error(
    expression: &str,
    position: usize,
    token_text: &str,
    token_kind: Kind,
    msg: &str,
) -> QueryError {
    let underline = format!("{}^", " ".repeat(position + 1));
    QueryError {
        kind: QueryErrorKind::Syntax,
        message: format!(
            "{msg}: Parse error at column {position}, token \"{token_text}\" ({}), for expression:\n\"{expression}\"\n{underline}",
            token_kind.name().to_uppercase()
        ),
        column: Some(position),
    }
}

fn incomplete_error(expression: &str) -> QueryError {
    let position = expression.chars().count();
    let underline = format!("{}^", " ".repeat(position + 1));
    QueryError {
        kind: QueryErrorKind::Syntax,
        message: format!(
            "Invalid jmespath expression: Incomplete expression:\n\"{expression}\"\n{underline}"
        ),
        column: Some(position),
    }
}

struct Lexer<'a> {
    expression: &'a str,
    chars: Vec<char>,
    position: usize,
    current: Option<char>,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Option<char> {
        if self.position + 1 >= self.chars.len() {
            self.current = None;
        } else {
            self.position += 1;
            self.current = Some(self.chars[self.position]);
        }
        self.current
    }

    fn simple(kind: Kind, text: &str, start: usize) -> Token {
        Token {
            kind,
            text: text.to_string(),
            value: TokenValue::None,
            start,
        }
    }

    fn tokenize(expression: &'a str) -> Result<Vec<Token>, QueryError> {
        if expression.is_empty() {
            return Err(QueryError {
                kind: QueryErrorKind::Syntax,
                message: "Invalid JMESPath expression: cannot be empty.".to_string(),
                column: None,
            });
        }
        let chars: Vec<char> = expression.chars().collect();
        let mut lx = Lexer {
            expression,
            current: Some(chars[0]),
            chars,
            position: 0,
        };
        let mut tokens = Vec::new();
        while let Some(c) = lx.current {
            let simple = match c {
                '.' => Some(Kind::Dot),
                '*' => Some(Kind::Star),
                ']' => Some(Kind::Rbracket),
                ',' => Some(Kind::Comma),
                ':' => Some(Kind::Colon),
                '@' => Some(Kind::Current),
                '(' => Some(Kind::Lparen),
                ')' => Some(Kind::Rparen),
                '{' => Some(Kind::Lbrace),
                '}' => Some(Kind::Rbrace),
                _ => None,
            };
            if let Some(kind) = simple {
                tokens.push(Self::simple(kind, &c.to_string(), lx.position));
                lx.next();
            } else if c.is_ascii_alphabetic() || c == '_' {
                let start = lx.position;
                let mut buff = c.to_string();
                while let Some(n) = lx.next() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        buff.push(n);
                    } else {
                        break;
                    }
                }
                tokens.push(Token {
                    kind: Kind::UnquotedIdentifier,
                    text: buff.clone(),
                    value: TokenValue::Str(buff),
                    start,
                });
            } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
                lx.next();
            } else if c == '[' {
                let start = lx.position;
                match lx.next() {
                    Some(']') => {
                        lx.next();
                        tokens.push(Self::simple(Kind::Flatten, "[]", start));
                    }
                    Some('?') => {
                        lx.next();
                        tokens.push(Self::simple(Kind::Filter, "[?", start));
                    }
                    _ => tokens.push(Self::simple(Kind::Lbracket, "[", start)),
                }
            } else if c == '\'' {
                let start = lx.position;
                let lexeme = lx.consume_until('\'')?.replace("\\'", "'");
                tokens.push(Token {
                    kind: Kind::Literal,
                    text: lexeme.clone(),
                    value: TokenValue::Json(Value::String(lexeme)),
                    start,
                });
            } else if c == '|' {
                tokens.push(lx.match_or_else('|', Kind::Or, Kind::Pipe));
            } else if c == '&' {
                tokens.push(lx.match_or_else('&', Kind::And, Kind::Expref));
            } else if c == '`' {
                tokens.push(lx.consume_literal()?);
            } else if c.is_ascii_digit() || c == '-' {
                let start = lx.position;
                let buff = lx.consume_number();
                if c == '-' && buff.len() == 1 {
                    return Err(lexer_error(
                        expression,
                        start,
                        format!("Unknown token '{buff}'"),
                    ));
                }
                // Python ints are unbounded; saturating keeps index and slice results the same.
                let n = buff
                    .parse::<i64>()
                    .unwrap_or(if c == '-' { i64::MIN } else { i64::MAX });
                tokens.push(Token {
                    kind: Kind::Number,
                    text: n.to_string(),
                    value: TokenValue::Int(n),
                    start,
                });
            } else if c == '"' {
                tokens.push(lx.consume_quoted_identifier()?);
            } else if c == '<' {
                tokens.push(lx.match_or_else('=', Kind::Lte, Kind::Lt));
            } else if c == '>' {
                tokens.push(lx.match_or_else('=', Kind::Gte, Kind::Gt));
            } else if c == '!' {
                tokens.push(lx.match_or_else('=', Kind::Ne, Kind::Not));
            } else if c == '=' {
                if lx.next() == Some('=') {
                    tokens.push(Self::simple(Kind::Eq, "==", lx.position - 1));
                    lx.next();
                } else {
                    let position = if lx.current.is_none() {
                        lx.position
                    } else {
                        lx.position - 1
                    };
                    return Err(lexer_error(
                        expression,
                        position,
                        "Unknown token '='".to_string(),
                    ));
                }
            } else {
                return Err(lexer_error(
                    expression,
                    lx.position,
                    format!("Unknown token {c}"),
                ));
            }
        }
        tokens.push(Self::simple(Kind::Eof, "", lx.chars.len()));
        Ok(tokens)
    }

    fn consume_number(&mut self) -> String {
        let mut buff = self.current.map(String::from).unwrap_or_default();
        while let Some(n) = self.next() {
            if n.is_ascii_digit() {
                buff.push(n);
            } else {
                break;
            }
        }
        buff
    }

    fn consume_until(&mut self, delimiter: char) -> Result<String, QueryError> {
        let start = self.position;
        let mut buff = String::new();
        self.next();
        while self.current != Some(delimiter) {
            if self.current == Some('\\') {
                buff.push('\\');
                self.next();
            }
            let Some(c) = self.current else {
                return Err(lexer_error(
                    self.expression,
                    start,
                    format!("Unclosed {delimiter} delimiter"),
                ));
            };
            buff.push(c);
            self.next();
        }
        self.next();
        Ok(buff)
    }

    fn consume_literal(&mut self) -> Result<Token, QueryError> {
        let start = self.position;
        let lexeme = self.consume_until('`')?.replace("\\`", "`");
        let parsed = match parse_json(&lexeme) {
            Ok(v) => v,
            // JEP-12 deprecation period: an invalid JSON literal is read as a JSON string.
            Err(_) => match parse_json(&format!("\"{}\"", lexeme.trim_start())) {
                Ok(v) => v,
                Err(_) => {
                    return Err(lexer_error(
                        self.expression,
                        start,
                        format!("Bad token {lexeme}"),
                    ));
                }
            },
        };
        Ok(Token {
            kind: Kind::Literal,
            text: py_str(&parsed),
            value: TokenValue::Json(parsed),
            start,
        })
    }

    fn consume_quoted_identifier(&mut self) -> Result<Token, QueryError> {
        let start = self.position;
        let lexeme = format!("\"{}\"", self.consume_until('"')?);
        match parse_json(&lexeme) {
            Ok(Value::String(s)) => Ok(Token {
                kind: Kind::QuotedIdentifier,
                text: s.clone(),
                value: TokenValue::Str(s),
                start,
            }),
            _ => Err(lexer_error(
                self.expression,
                start,
                json_string_error(&lexeme),
            )),
        }
    }

    fn match_or_else(&mut self, expected: char, matched: Kind, otherwise: Kind) -> Token {
        let start = self.position;
        let current = self.current.unwrap_or_default();
        if self.next() == Some(expected) {
            self.next();
            Self::simple(matched, &format!("{current}{expected}"), start)
        } else {
            Self::simple(otherwise, &current.to_string(), start)
        }
    }
}

/// Python's `json.loads` (jmespath.py reads literals and quoted identifiers with it). Documents Python reads but
/// a `Value` cannot hold (`NaN`, lone surrogates) are errors here.
pub(super) fn parse_json(text: &str) -> Result<Value, crate::pyjson::JsonError> {
    crate::pyjson::loads(text)
}

/// The first part of Python's `json.loads` error message for a bad quoted identifier (jmespath.py keeps what is
/// before the first `:`).
fn json_string_error(lexeme: &str) -> String {
    match parse_json(lexeme) {
        Err(e) => e
            .message()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string(),
        // Not reached: a lexeme that reads as a string is not an error.
        Ok(_) => "Invalid string".to_string(),
    }
}

/// Parses a whole expression.
pub(super) fn parse(expression: &str) -> Result<Node, QueryError> {
    let tokens = Lexer::tokenize(expression)?;
    let mut parser = Parser {
        expression,
        tokens,
        index: 0,
    };
    let node = parser.expression(0)?;
    if parser.current() != Kind::Eof {
        let t = parser.token(0).clone();
        return Err(parser.error_for(&t, &format!("Unexpected token: {}", t.text)));
    }
    Ok(node)
}

struct Parser<'a> {
    expression: &'a str,
    tokens: Vec<Token>,
    index: usize,
}

impl Parser<'_> {
    fn current(&self) -> Kind {
        self.tokens[self.index.min(self.tokens.len() - 1)].kind
    }

    fn lookahead(&self, n: usize) -> Kind {
        self.tokens[(self.index + n).min(self.tokens.len() - 1)].kind
    }

    fn token(&self, n: usize) -> &Token {
        &self.tokens[(self.index + n).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) {
        self.index += 1;
    }

    fn error_for(&self, token: &Token, reason: &str) -> QueryError {
        parse_error(
            self.expression,
            token.start,
            &token.text,
            token.kind,
            reason,
        )
    }

    fn error_maybe_eof(&self, expected: &str) -> QueryError {
        let token = self.token(0);
        if token.kind == Kind::Eof {
            return incomplete_error(self.expression);
        }
        self.error_for(
            token,
            &format!("Expecting: {expected}, got: {}", token.kind.name()),
        )
    }

    fn expect(&mut self, kind: Kind) -> Result<(), QueryError> {
        if self.current() == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.error_maybe_eof(kind.name()))
        }
    }

    fn expression(&mut self, binding_power: u8) -> Result<Node, QueryError> {
        let left_token = self.token(0).clone();
        self.advance();
        let mut left = self.nud(&left_token)?;
        let mut current = self.current();
        while binding_power < current.binding_power() {
            if !matches!(
                current,
                Kind::Dot
                    | Kind::Pipe
                    | Kind::Or
                    | Kind::And
                    | Kind::Lparen
                    | Kind::Filter
                    | Kind::Eq
                    | Kind::Ne
                    | Kind::Gt
                    | Kind::Gte
                    | Kind::Lt
                    | Kind::Lte
                    | Kind::Flatten
                    | Kind::Lbracket
            ) {
                let t = self.token(0).clone();
                return Err(self.error_for(&t, "invalid token"));
            }
            self.advance();
            left = self.led(current, left)?;
            current = self.current();
        }
        Ok(left)
    }

    fn nud(&mut self, token: &Token) -> Result<Node, QueryError> {
        match token.kind {
            Kind::Literal => match &token.value {
                TokenValue::Json(v) => Ok(Node::Literal(v.clone())),
                _ => Ok(Node::Literal(Value::Null)),
            },
            Kind::UnquotedIdentifier => Ok(Node::Field(token_str(token))),
            Kind::QuotedIdentifier => {
                if self.current() == Kind::Lparen {
                    let t = self.token(0).clone();
                    return Err(parse_error(
                        self.expression,
                        0,
                        &t.text,
                        t.kind,
                        "Quoted identifier not allowed for function names.",
                    ));
                }
                Ok(Node::Field(token_str(token)))
            }
            Kind::Star => {
                let right = if self.current() == Kind::Rbracket {
                    Node::Identity
                } else {
                    self.projection_rhs(Kind::Star.binding_power())?
                };
                Ok(Node::ValueProjection(
                    Box::new(Node::Identity),
                    Box::new(right),
                ))
            }
            Kind::Filter => self.led_filter(Node::Identity),
            Kind::Lbrace => self.multi_select_hash(),
            Kind::Lparen => {
                let expression = self.expression(0)?;
                self.expect(Kind::Rparen)?;
                Ok(expression)
            }
            Kind::Flatten => {
                let right = self.projection_rhs(Kind::Flatten.binding_power())?;
                Ok(Node::Projection(
                    Box::new(Node::Flatten(Box::new(Node::Identity))),
                    Box::new(right),
                ))
            }
            Kind::Not => {
                let expr = self.expression(Kind::Not.binding_power())?;
                Ok(Node::Not(Box::new(expr)))
            }
            Kind::Lbracket => {
                if matches!(self.current(), Kind::Number | Kind::Colon) {
                    let right = self.index_expression()?;
                    self.project_if_slice(Node::Identity, right)
                } else if self.current() == Kind::Star && self.lookahead(1) == Kind::Rbracket {
                    self.advance();
                    self.advance();
                    let right = self.projection_rhs(Kind::Star.binding_power())?;
                    Ok(Node::Projection(Box::new(Node::Identity), Box::new(right)))
                } else {
                    self.multi_select_list()
                }
            }
            Kind::Current => Ok(Node::Current),
            Kind::Expref => {
                let expr = self.expression(Kind::Expref.binding_power())?;
                Ok(Node::Expref(Box::new(expr)))
            }
            Kind::Eof => Err(incomplete_error(self.expression)),
            _ => Err(self.error_for(token, "invalid token")),
        }
    }

    fn led(&mut self, kind: Kind, left: Node) -> Result<Node, QueryError> {
        match kind {
            Kind::Dot => {
                if self.current() != Kind::Star {
                    let right = self.dot_rhs(Kind::Dot.binding_power())?;
                    Ok(match left {
                        Node::Subexpression(mut children) => {
                            children.push(right);
                            Node::Subexpression(children)
                        }
                        other => Node::Subexpression(vec![other, right]),
                    })
                } else {
                    self.advance();
                    let right = self.projection_rhs(Kind::Dot.binding_power())?;
                    Ok(Node::ValueProjection(Box::new(left), Box::new(right)))
                }
            }
            Kind::Pipe => {
                let right = self.expression(Kind::Pipe.binding_power())?;
                Ok(Node::Pipe(Box::new(left), Box::new(right)))
            }
            Kind::Or => {
                let right = self.expression(Kind::Or.binding_power())?;
                Ok(Node::Or(Box::new(left), Box::new(right)))
            }
            Kind::And => {
                let right = self.expression(Kind::And.binding_power())?;
                Ok(Node::And(Box::new(left), Box::new(right)))
            }
            Kind::Lparen => {
                let Node::Field(name) = left else {
                    // The token before '(' names the "function".
                    let prev = self.tokens[self.index.saturating_sub(2)].clone();
                    return Err(
                        self.error_for(&prev, &format!("Invalid function name '{}'", prev.text))
                    );
                };
                let mut args = Vec::new();
                while self.current() != Kind::Rparen {
                    let expression = self.expression(0)?;
                    if self.current() == Kind::Comma {
                        self.expect(Kind::Comma)?;
                    }
                    args.push(expression);
                }
                self.expect(Kind::Rparen)?;
                Ok(Node::Function(name, args))
            }
            Kind::Filter => self.led_filter(left),
            Kind::Eq | Kind::Ne | Kind::Gt | Kind::Gte | Kind::Lt | Kind::Lte => {
                let comparator = match kind {
                    Kind::Eq => Comparator::Eq,
                    Kind::Ne => Comparator::Ne,
                    Kind::Gt => Comparator::Gt,
                    Kind::Gte => Comparator::Gte,
                    Kind::Lt => Comparator::Lt,
                    _ => Comparator::Lte,
                };
                let right = self.expression(kind.binding_power())?;
                Ok(Node::Comparator(
                    comparator,
                    Box::new(left),
                    Box::new(right),
                ))
            }
            Kind::Flatten => {
                let right = self.projection_rhs(Kind::Flatten.binding_power())?;
                Ok(Node::Projection(
                    Box::new(Node::Flatten(Box::new(left))),
                    Box::new(right),
                ))
            }
            Kind::Lbracket => {
                if matches!(self.current(), Kind::Number | Kind::Colon) {
                    let right = self.index_expression()?;
                    match left {
                        Node::IndexExpression(mut children) => {
                            children.push(right);
                            Ok(Node::IndexExpression(children))
                        }
                        other => self.project_if_slice(other, right),
                    }
                } else {
                    self.expect(Kind::Star)?;
                    self.expect(Kind::Rbracket)?;
                    let right = self.projection_rhs(Kind::Star.binding_power())?;
                    Ok(Node::Projection(Box::new(left), Box::new(right)))
                }
            }
            _ => {
                let t = self.token(0).clone();
                Err(self.error_for(&t, "invalid token"))
            }
        }
    }

    fn led_filter(&mut self, left: Node) -> Result<Node, QueryError> {
        let condition = self.expression(0)?;
        self.expect(Kind::Rbracket)?;
        let right = if self.current() == Kind::Flatten {
            Node::Identity
        } else {
            self.projection_rhs(Kind::Filter.binding_power())?
        };
        Ok(Node::FilterProjection(
            Box::new(left),
            Box::new(right),
            Box::new(condition),
        ))
    }

    fn index_expression(&mut self) -> Result<Node, QueryError> {
        if self.lookahead(0) == Kind::Colon || self.lookahead(1) == Kind::Colon {
            self.slice_expression()
        } else {
            let n = token_int(self.token(0));
            self.advance();
            self.expect(Kind::Rbracket)?;
            Ok(Node::Index(n))
        }
    }

    fn slice_expression(&mut self) -> Result<Node, QueryError> {
        let mut parts: [Option<i64>; 3] = [None, None, None];
        let mut index = 0;
        let mut current = self.current();
        while current != Kind::Rbracket && index < 3 {
            if current == Kind::Colon {
                index += 1;
                if index == 3 {
                    let t = self.token(0).clone();
                    return Err(self.error_for(&t, "syntax error"));
                }
                self.advance();
            } else if current == Kind::Number {
                parts[index] = Some(token_int(self.token(0)));
                self.advance();
            } else {
                let t = self.token(0).clone();
                return Err(self.error_for(&t, "syntax error"));
            }
            current = self.current();
        }
        self.expect(Kind::Rbracket)?;
        Ok(Node::Slice(parts[0], parts[1], parts[2]))
    }

    fn project_if_slice(&mut self, left: Node, right: Node) -> Result<Node, QueryError> {
        let is_slice = matches!(right, Node::Slice(..));
        let index_expr = Node::IndexExpression(vec![left, right]);
        if is_slice {
            let rhs = self.projection_rhs(Kind::Star.binding_power())?;
            Ok(Node::Projection(Box::new(index_expr), Box::new(rhs)))
        } else {
            Ok(index_expr)
        }
    }

    fn multi_select_list(&mut self) -> Result<Node, QueryError> {
        let mut expressions = Vec::new();
        loop {
            expressions.push(self.expression(0)?);
            if self.current() == Kind::Rbracket {
                break;
            }
            self.expect(Kind::Comma)?;
        }
        self.expect(Kind::Rbracket)?;
        Ok(Node::MultiSelectList(expressions))
    }

    fn multi_select_hash(&mut self) -> Result<Node, QueryError> {
        let mut pairs = Vec::new();
        loop {
            let key_token = self.token(0).clone();
            if !matches!(
                self.current(),
                Kind::QuotedIdentifier | Kind::UnquotedIdentifier
            ) {
                return Err(self.error_maybe_eof("['quoted_identifier', 'unquoted_identifier']"));
            }
            self.advance();
            self.expect(Kind::Colon)?;
            let value = self.expression(0)?;
            pairs.push((token_str(&key_token), value));
            if self.current() == Kind::Comma {
                self.expect(Kind::Comma)?;
            } else if self.current() == Kind::Rbrace {
                self.expect(Kind::Rbrace)?;
                break;
            }
        }
        Ok(Node::MultiSelectDict(pairs))
    }

    fn projection_rhs(&mut self, binding_power: u8) -> Result<Node, QueryError> {
        let current = self.current();
        if current.binding_power() < PROJECTION_STOP {
            Ok(Node::Identity)
        } else if matches!(current, Kind::Lbracket | Kind::Filter) {
            self.expression(binding_power)
        } else if current == Kind::Dot {
            self.expect(Kind::Dot)?;
            self.dot_rhs(binding_power)
        } else {
            let t = self.token(0).clone();
            Err(self.error_for(&t, "syntax error"))
        }
    }

    fn dot_rhs(&mut self, binding_power: u8) -> Result<Node, QueryError> {
        match self.current() {
            Kind::QuotedIdentifier | Kind::UnquotedIdentifier | Kind::Star => {
                self.expression(binding_power)
            }
            Kind::Lbracket => {
                self.expect(Kind::Lbracket)?;
                self.multi_select_list()
            }
            Kind::Lbrace => {
                self.expect(Kind::Lbrace)?;
                self.multi_select_hash()
            }
            other => {
                let t = self.token(0).clone();
                Err(self.error_for(
                    &t,
                    &format!(
                        "Expecting: ['quoted_identifier', 'unquoted_identifier', 'lbracket', 'lbrace'], got: {}",
                        other.name()
                    ),
                ))
            }
        }
    }
}

fn token_str(token: &Token) -> String {
    match &token.value {
        TokenValue::Str(s) => s.clone(),
        _ => token.text.clone(),
    }
}

fn token_int(token: &Token) -> i64 {
    match token.value {
        TokenValue::Int(n) => n,
        _ => 0,
    }
}
