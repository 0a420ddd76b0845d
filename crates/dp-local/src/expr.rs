//! The expression subset of pipeline definitions: `#{...}` inside field values and evaluate-expression.
//!
//! Supported: references (`#{myParam}`, `#{@scheduledStartTime}`, `#{node.@id}`, `#{input.directoryPath}`, which
//! follow `refValue` fields and evaluate the referenced field in its own object), string and integer literals, and
//! the functions `format(time, 'pattern')` (Joda letters `yyyy`/`YYYY`, `MM`, `dd`, `HH`, `mm`, `ss`),
//! `plus`/`minus` + `Minutes`/`Hours`/`Days`/`Weeks`/`Months`/`Years` (time, n), and `year`, `month`, `day`,
//! `hour`, `minute` (time). Anything else is an error naming what was not understood. The evaluator is pure: it
//! sees the pipeline only through the [`Context`] it is given.

use std::fmt;

use dp_model::timestamp;

use crate::schedule::Period;

/// The value of a field as the evaluator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A `stringValue`.
    Text(String),
    /// A `refValue`: the id of another object.
    Ref(String),
}

/// What an expression can look up.
pub trait Context {
    /// The first value of field `key` of object `object` (with inheritance already applied).
    fn field(&self, object: &str, key: &str) -> Option<FieldValue>;
    /// The value of parameter `id`.
    fn parameter(&self, id: &str) -> Option<String>;
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// A sentence naming the problem.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        message: message.into(),
    })
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Int(i64),
    Time(i64),
}

impl Val {
    fn render(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Int(n) => n.to_string(),
            Val::Time(t) => timestamp::format_utc(*t),
        }
    }

    fn time(&self, function: &str) -> Result<i64, ExprError> {
        match self {
            Val::Time(t) => Ok(*t),
            Val::Str(s) => timestamp::parse(s).ok_or_else(|| ExprError {
                message: format!("{function}: {s:?} is not a date and time"),
            }),
            Val::Int(n) => err(format!("{function}: {n} is not a date and time")),
        }
    }

    fn int(&self, function: &str) -> Result<i64, ExprError> {
        match self {
            Val::Int(n) => Ok(*n),
            Val::Str(s) => s.trim().parse().map_err(|_| ExprError {
                message: format!("{function}: {s:?} is not an integer"),
            }),
            Val::Time(_) => err(format!(
                "{function}: expected an integer, got a date and time"
            )),
        }
    }
}

const MAX_DEPTH: usize = 16;

/// Replaces every `#{...}` in `template` by its value, evaluated on object `current`.
pub fn evaluate_template(
    template: &str,
    current: &str,
    ctx: &dyn Context,
) -> Result<String, ExprError> {
    template_at(template, current, ctx, 0)
}

fn template_at(
    template: &str,
    current: &str,
    ctx: &dyn Context,
    depth: usize,
) -> Result<String, ExprError> {
    if depth > MAX_DEPTH {
        return err("expressions nest too deeply (a reference cycle?)");
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let body = &rest[start + 2..];
        let end = closing_brace(body).ok_or_else(|| ExprError {
            message: format!("unterminated expression in {template:?}"),
        })?;
        let mut parser = Parser {
            text: &body[..end],
            pos: 0,
        };
        let value = parser.expression(current, ctx, depth)?;
        parser.skip_spaces();
        if parser.pos != parser.text.len() {
            return err(format!(
                "unexpected {:?} in expression #{{{}}}",
                &parser.text[parser.pos..],
                &body[..end]
            ));
        }
        out.push_str(&value.render());
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn closing_brace(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn skip_spaces(&mut self) {
        while self.text[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn expression(
        &mut self,
        current: &str,
        ctx: &dyn Context,
        depth: usize,
    ) -> Result<Val, ExprError> {
        self.skip_spaces();
        match self.peek() {
            None => err("empty expression"),
            Some(q @ ('\'' | '"')) => {
                let rest = &self.text[self.pos + 1..];
                let end = rest.find(q).ok_or_else(|| ExprError {
                    message: "unterminated string literal".into(),
                })?;
                self.pos += end + 2;
                Ok(Val::Str(rest[..end].to_string()))
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                self.text[start..self.pos]
                    .parse()
                    .map(Val::Int)
                    .map_err(|_| ExprError {
                        message: format!("bad number {:?}", &self.text[start..self.pos]),
                    })
            }
            Some(_) => {
                let mut path = vec![self.name()?];
                while self.peek() == Some('.') {
                    self.pos += 1;
                    path.push(self.name()?);
                }
                self.skip_spaces();
                if self.peek() == Some('(') {
                    if path.len() != 1 {
                        return err(format!("unknown function {}", path.join(".")));
                    }
                    self.pos += 1;
                    let mut args = Vec::new();
                    self.skip_spaces();
                    if self.peek() == Some(')') {
                        self.pos += 1;
                    } else {
                        loop {
                            args.push(self.expression(current, ctx, depth)?);
                            self.skip_spaces();
                            match self.peek() {
                                Some(',') => self.pos += 1,
                                Some(')') => {
                                    self.pos += 1;
                                    break;
                                }
                                _ => {
                                    return err(format!(
                                        "expected ',' or ')' in call of {}",
                                        path[0]
                                    ));
                                }
                            }
                        }
                    }
                    call(path[0], &args)
                } else {
                    resolve(&path, current, ctx, depth)
                }
            }
        }
    }

    fn name(&mut self) -> Result<&'a str, ExprError> {
        let start = self.pos;
        // `@` starts a runtime field, `*` a secret parameter (`#{*myPassword}`).
        if matches!(self.peek(), Some('@' | '*')) {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        if self.pos == start || matches!(&self.text[start..self.pos], "@" | "*") {
            return err(format!("expected a name at {:?}", &self.text[start..]));
        }
        Ok(&self.text[start..self.pos])
    }
}

fn resolve(
    path: &[&str],
    current: &str,
    ctx: &dyn Context,
    depth: usize,
) -> Result<Val, ExprError> {
    if let [name] = path
        && let Some(value) = ctx.parameter(name)
    {
        return Ok(Val::Str(value));
    }
    let mut path = path;
    if path.len() > 1 && path[0] == "node" {
        path = &path[1..];
    }
    let mut object = current.to_string();
    for (i, key) in path.iter().enumerate() {
        if *key == "@id" && i + 1 == path.len() {
            return Ok(Val::Str(object));
        }
        let value = ctx.field(&object, key).ok_or_else(|| ExprError {
            message: format!(
                "Unable to resolve {} for object: {object}",
                path[..=i].join(".")
            ),
        })?;
        match value {
            FieldValue::Ref(id) if i + 1 < path.len() => object = id,
            FieldValue::Ref(id) => return Ok(Val::Str(id)),
            FieldValue::Text(_) if i + 1 < path.len() => {
                return err(format!("{key} of object {object} is not a reference"));
            }
            FieldValue::Text(text) => {
                return if text.contains("#{") {
                    template_at(&text, &object, ctx, depth + 1).map(Val::Str)
                } else {
                    Ok(Val::Str(text))
                };
            }
        }
    }
    err("empty reference")
}

fn call(name: &str, args: &[Val]) -> Result<Val, ExprError> {
    let arity = |n: usize| -> Result<(), ExprError> {
        if args.len() == n {
            Ok(())
        } else {
            err(format!("{name} takes {n} argument(s), got {}", args.len()))
        }
    };
    let shift = |unit: &str, sign: i64| -> Result<Val, ExprError> {
        arity(2)?;
        let t = args[0].time(name)?;
        let n = args[1].int(name)? * sign;
        let period = match unit {
            "Minutes" => Period::Seconds(60),
            "Hours" => Period::Seconds(3600),
            "Days" => Period::Seconds(86_400),
            "Weeks" => Period::Seconds(7 * 86_400),
            "Months" => Period::Months(1),
            _ => Period::Months(12),
        };
        period
            .advance(t, n)
            .map(Val::Time)
            .ok_or_else(|| ExprError {
                message: format!("{name}: the result is outside the years 0001 to 9999"),
            })
    };
    for unit in ["Minutes", "Hours", "Days", "Weeks", "Months", "Years"] {
        if name.strip_prefix("plus") == Some(unit) {
            return shift(unit, 1);
        }
        if name.strip_prefix("minus") == Some(unit) {
            return shift(unit, -1);
        }
    }
    let part = |range: std::ops::Range<usize>| -> Result<Val, ExprError> {
        arity(1)?;
        let text = timestamp::format_utc(args[0].time(name)?);
        Ok(Val::Int(text[range].parse().unwrap_or(0)))
    };
    match name {
        "format" => {
            arity(2)?;
            let t = args[0].time(name)?;
            let Val::Str(pattern) = &args[1] else {
                return err("format: the pattern must be a string");
            };
            Ok(Val::Str(format_time(t, pattern)))
        }
        "year" => part(0..4),
        "month" => part(5..7),
        "day" => part(8..10),
        "hour" => part(11..13),
        "minute" => part(14..16),
        _ => err(format!("Unknown function {name}")),
    }
}

/// Formats `t` with the Joda letters the subset supports; other characters are copied.
fn format_time(t: i64, pattern: &str) -> String {
    let text = timestamp::format_utc(t);
    let tokens: [(&str, &str); 10] = [
        ("YYYY", &text[0..4]),
        ("yyyy", &text[0..4]),
        ("YY", &text[2..4]),
        ("yy", &text[2..4]),
        ("MM", &text[5..7]),
        ("dd", &text[8..10]),
        ("DD", &text[8..10]),
        ("HH", &text[11..13]),
        ("mm", &text[14..16]),
        ("ss", &text[17..19]),
    ];
    let mut out = String::new();
    let mut rest = pattern;
    'outer: while !rest.is_empty() {
        for (token, value) in tokens {
            if let Some(r) = rest.strip_prefix(token) {
                out.push_str(value);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture;

    impl Context for Fixture {
        fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
            match (object, key) {
                ("@Act_1", "@scheduledStartTime") => {
                    Some(FieldValue::Text("2024-01-31T10:20:30".into()))
                }
                ("@Act_1", "output") => Some(FieldValue::Ref("Out".into())),
                ("@Act_1", "command") => Some(FieldValue::Text("echo #{myName}".into())),
                ("Out", "directoryPath") => Some(FieldValue::Text("s3://b/#{@id}".into())),
                _ => None,
            }
        }

        fn parameter(&self, id: &str) -> Option<String> {
            (id == "myName").then(|| "world".to_string())
        }
    }

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = evaluate_template(input, "@Act_1", &Fixture);
        assert_eq!(
            got.as_deref().map_err(|e| e.message.as_str()),
            expected,
            "evaluate_template({input:?})"
        );
    }

    #[test]
    fn templates() {
        check("plain", Ok("plain"));
        check("#{myName}", Ok("world"));
        check("#{command}", Ok("echo world"));
        check("#{@scheduledStartTime}", Ok("2024-01-31T10:20:30"));
        check("#{node.@id}", Ok("@Act_1"));
        check(
            "#{format(@scheduledStartTime,'YYYY-MM-dd')}",
            Ok("2024-01-31"),
        );
        check(
            "#{format(minusDays(@scheduledStartTime, 1), 'yyyy/MM/dd HH:mm:ss')}",
            Ok("2024/01/30 10:20:30"),
        );
        check(
            "#{plusMonths(@scheduledStartTime,1)}",
            Ok("2024-02-29T10:20:30"),
        );
        check("#{hour(@scheduledStartTime)}h", Ok("10h"));
        check("#{output.directoryPath}", Ok("s3://b/Out"));
        check("#{nope}", Err("Unable to resolve nope for object: @Act_1"));
        check("#{frobnicate(1)}", Err("Unknown function frobnicate"));
        check("#{myName", Err("unterminated expression in \"#{myName\""));
    }
}
