//! JMESPath evaluation and built-in functions, ported from jmespath.py 1.1.0 (`visitor.py`, `functions.py`).
//!
//! Values keep their object key order (serde_json's `preserve_order`), as Python dicts do, so `--query`
//! results print in the same order as the reference. Python semantics are kept where they show: `True == 1`
//! inside containers, ints staying ints (`sum`, `abs`, `ceil`), runtime arity and type errors with
//! Python's wording. This module must not parse.

use super::parse::{Comparator, Node};
use super::{QueryError, QueryErrorKind};
use crate::output::pyfmt::{class_name, is_truthy, json_compact_ascii, py_str};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

fn runtime(message: String) -> QueryError {
    QueryError {
        kind: QueryErrorKind::Runtime,
        message,
        column: None,
    }
}

/// Evaluates `node` against `value`.
pub(super) fn eval(node: &Node, value: &Value) -> Result<Value, QueryError> {
    match node {
        Node::Field(name) => Ok(match value {
            Value::Object(map) => map.get(name).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        }),
        Node::Subexpression(children) | Node::IndexExpression(children) => {
            let mut result = value.clone();
            for child in children {
                result = eval(child, &result)?;
            }
            Ok(result)
        }
        Node::Pipe(left, right) => {
            let left = eval(left, value)?;
            eval(right, &left)
        }
        Node::Index(i) => Ok(match value {
            Value::Array(items) => py_index(items.len(), *i)
                .map(|i| items[i].clone())
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }),
        Node::Slice(start, stop, step) => match value {
            Value::Array(items) => Ok(Value::Array(
                slice_indices(items.len(), *start, *stop, *step)?
                    .into_iter()
                    .map(|i| items[i].clone())
                    .collect(),
            )),
            _ => Ok(Value::Null),
        },
        Node::Identity | Node::Current => Ok(value.clone()),
        Node::Literal(v) => Ok(v.clone()),
        Node::Comparator(op, left, right) => {
            let left = eval(left, value)?;
            let right = eval(right, value)?;
            compare(*op, &left, &right)
        }
        Node::ValueProjection(left, right) => {
            let base = eval(left, value)?;
            let Value::Object(map) = base else {
                return Ok(Value::Null);
            };
            project(map.values(), right)
        }
        Node::Projection(left, right) => {
            let base = eval(left, value)?;
            let Value::Array(items) = base else {
                return Ok(Value::Null);
            };
            project(items.iter(), right)
        }
        Node::FilterProjection(left, right, condition) => {
            let base = eval(left, value)?;
            let Value::Array(items) = base else {
                return Ok(Value::Null);
            };
            let mut collected = Vec::new();
            for element in &items {
                if is_true(&eval(condition, element)?) {
                    let current = eval(right, element)?;
                    if !current.is_null() {
                        collected.push(current);
                    }
                }
            }
            Ok(Value::Array(collected))
        }
        Node::Flatten(inner) => {
            let base = eval(inner, value)?;
            let Value::Array(items) = base else {
                return Ok(Value::Null);
            };
            let mut merged = Vec::new();
            for element in items {
                match element {
                    Value::Array(inner) => merged.extend(inner),
                    other => merged.push(other),
                }
            }
            Ok(Value::Array(merged))
        }
        Node::Not(inner) => {
            let result = eval(inner, value)?;
            Ok(Value::Bool(match &result {
                // Python: a number is never "not"-ed to True (0 is true in JMESPath).
                Value::Number(_) => false,
                other => !is_truthy(other),
            }))
        }
        Node::Or(left, right) => {
            let matched = eval(left, value)?;
            if is_true(&matched) {
                Ok(matched)
            } else {
                eval(right, value)
            }
        }
        Node::And(left, right) => {
            let matched = eval(left, value)?;
            if is_true(&matched) {
                eval(right, value)
            } else {
                Ok(matched)
            }
        }
        Node::MultiSelectList(children) => {
            if value.is_null() {
                return Ok(Value::Null);
            }
            let mut collected = Vec::with_capacity(children.len());
            for child in children {
                collected.push(eval(child, value)?);
            }
            Ok(Value::Array(collected))
        }
        Node::MultiSelectDict(pairs) => {
            if value.is_null() {
                return Ok(Value::Null);
            }
            let mut collected = Map::new();
            for (key, child) in pairs {
                collected.insert(key.clone(), eval(child, value)?);
            }
            Ok(Value::Object(collected))
        }
        Node::Function(name, args) => {
            let mut resolved = Vec::with_capacity(args.len());
            for arg in args {
                resolved.push(match arg {
                    Node::Expref(inner) => Arg::Expref(inner),
                    other => Arg::Value(eval(other, value)?),
                });
            }
            call_function(name, resolved)
        }
        // jmespath.py returns an expression object here, which the formatter then fails to serialize.
        Node::Expref(_) => Err(runtime(
            "Object of type _Expression is not JSON serializable".to_string(),
        )),
    }
}

fn project<'a>(items: impl Iterator<Item = &'a Value>, right: &Node) -> Result<Value, QueryError> {
    let mut collected = Vec::new();
    for element in items {
        let current = eval(right, element)?;
        if !current.is_null() {
            collected.push(current);
        }
    }
    Ok(Value::Array(collected))
}

/// JMESPath truth: false for `""`, `[]`, `{}`, `null` and `false` (numbers, 0 included, are true).
fn is_true(v: &Value) -> bool {
    !match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        // `0 == False` in Python, but jmespath.py tests `value is False`, so numbers stay true.
        Value::Number(_) => false,
    }
}

fn py_index(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let idx = if i < 0 { i.checked_add(len)? } else { i };
    (0..len).contains(&idx).then_some(idx as usize)
}

/// The indices selected by Python's `list[start:stop:step]`.
fn slice_indices(
    len: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
) -> Result<Vec<usize>, QueryError> {
    let len = len as i64;
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(runtime("slice step cannot be zero".to_string()));
    }
    let adjust = |v: Option<i64>, default: i64| -> i64 {
        match v {
            None => default,
            Some(v) if v < 0 => {
                let v = v.saturating_add(len);
                if v < 0 {
                    if step < 0 { -1 } else { 0 }
                } else {
                    v
                }
            }
            Some(v) if v >= len => {
                if step < 0 {
                    len - 1
                } else {
                    len
                }
            }
            Some(v) => v,
        }
    };
    let start = adjust(start, if step < 0 { len - 1 } else { 0 });
    let stop = adjust(stop, if step < 0 { -1 } else { len });
    let mut out = Vec::new();
    let mut i = start;
    if step > 0 {
        while i < stop {
            out.push(i as usize);
            i = match i.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    } else {
        while i > stop {
            out.push(i as usize);
            i = match i.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    }
    Ok(out)
}

/// A number as Python sees it: an int or a float.
#[derive(Debug, Clone, Copy)]
enum PyNum {
    Int(i128),
    Float(f64),
}

fn py_num(v: &Value) -> Option<PyNum> {
    match v {
        Value::Number(n) => Some(num_of(n)),
        _ => None,
    }
}

fn num_of(n: &Number) -> PyNum {
    if let Some(i) = n.as_i64() {
        PyNum::Int(i as i128)
    } else if let Some(u) = n.as_u64() {
        PyNum::Int(u as i128)
    } else {
        PyNum::Float(n.as_f64().unwrap_or(0.0))
    }
}

fn num_value(n: PyNum) -> Value {
    match n {
        PyNum::Int(i) => {
            if let Ok(i) = i64::try_from(i) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(i) {
                Value::from(u)
            } else {
                Number::from_f64(i as f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        PyNum::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
    }
}

fn num_cmp(a: PyNum, b: PyNum) -> Option<Ordering> {
    match (a, b) {
        (PyNum::Int(a), PyNum::Int(b)) => Some(a.cmp(&b)),
        (PyNum::Int(a), PyNum::Float(b)) => (a as f64).partial_cmp(&b),
        (PyNum::Float(a), PyNum::Int(b)) => a.partial_cmp(&(b as f64)),
        (PyNum::Float(a), PyNum::Float(b)) => a.partial_cmp(&b),
    }
}

/// Python `==` between JSON values (bools equal the ints 0 and 1, dict order is ignored).
fn py_eq(a: &Value, b: &Value) -> bool {
    let as_num = |v: &Value| match v {
        Value::Bool(b) => Some(PyNum::Int(*b as i128)),
        Value::Number(n) => Some(num_of(n)),
        _ => None,
    };
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => match (as_num(a), as_num(b)) {
            (Some(p), Some(q)) => num_cmp(p, q) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// jmespath.py's `_equals`: like Python `==`, except that 0 and 1 never equal false and true.
fn jmes_equals(a: &Value, b: &Value) -> bool {
    let special = |x: &Value, y: &Value| {
        matches!(x, Value::Number(_))
            && py_num(x).is_some_and(|n| {
                matches!(num_cmp(n, PyNum::Int(0)), Some(Ordering::Equal))
                    || matches!(num_cmp(n, PyNum::Int(1)), Some(Ordering::Equal))
            })
            && y.is_boolean()
    };
    if special(a, b) || special(b, a) {
        return false;
    }
    py_eq(a, b)
}

fn compare(op: Comparator, left: &Value, right: &Value) -> Result<Value, QueryError> {
    match op {
        Comparator::Eq => return Ok(Value::Bool(jmes_equals(left, right))),
        Comparator::Ne => return Ok(Value::Bool(!jmes_equals(left, right))),
        _ => {}
    }
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => num_cmp(num_of(a), num_of(b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(_) | Value::String(_), Value::Number(_) | Value::String(_)) => {
            return Err(runtime(format!(
                "'{}' not supported between instances of '{}' and '{}'",
                op.symbol(),
                class_name(left),
                class_name(right)
            )));
        }
        _ => return Ok(Value::Null),
    };
    // NaN compares false both ways, as in Python.
    let Some(ordering) = ordering else {
        return Ok(Value::Bool(false));
    };
    Ok(Value::Bool(match op {
        Comparator::Lt => ordering == Ordering::Less,
        Comparator::Gt => ordering == Ordering::Greater,
        Comparator::Lte => ordering != Ordering::Greater,
        _ => ordering != Ordering::Less,
    }))
}

/// A resolved function argument: a value, or an expression reference (`&expr`).
enum Arg<'n> {
    Value(Value),
    Expref(&'n Node),
}

impl Arg<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Arg::Value(v) => class_name(v),
            Arg::Expref(_) => "_Expression",
        }
    }

    fn display(&self) -> String {
        match self {
            Arg::Value(v) => py_str(v),
            Arg::Expref(_) => "<jmespath.visitor._Expression object>".to_string(),
        }
    }

    fn value(&self) -> &Value {
        match self {
            Arg::Value(v) => v,
            Arg::Expref(_) => &Value::Null,
        }
    }
}

/// jmespath.py's `TYPES_MAP`.
fn jmespath_type(python_type: &str) -> &'static str {
    match python_type {
        "bool" => "boolean",
        "list" => "array",
        "dict" => "object",
        "NoneType" => "null",
        "str" => "string",
        "float" | "int" => "number",
        "_Expression" => "expref",
        _ => "unknown",
    }
}

fn python_types(jmespath: &str) -> &'static [&'static str] {
    match jmespath {
        "boolean" => &["bool"],
        "array" => &["list"],
        "object" => &["dict"],
        "null" => &["NoneType"],
        "string" => &["str"],
        "number" => &["float", "int"],
        "expref" => &["_Expression"],
        _ => &[],
    }
}

/// One parameter of a signature: its allowed types (empty = any), and whether it is variadic.
struct Param(&'static [&'static str], bool);

fn signature(name: &str) -> Option<&'static [Param]> {
    const ANY: &[&str] = &[];
    Some(match name {
        "abs" | "ceil" | "floor" => &[Param(&["number"], false)],
        "avg" | "sum" => &[Param(&["array-number"], false)],
        "not_null" => &[Param(ANY, true)],
        "to_array" | "to_string" | "to_number" | "type" => &[Param(ANY, false)],
        "contains" => &[Param(&["array", "string"], false), Param(ANY, false)],
        "length" => &[Param(&["string", "array", "object"], false)],
        "ends_with" | "starts_with" => &[Param(&["string"], false), Param(&["string"], false)],
        "reverse" => &[Param(&["array", "string"], false)],
        "join" => &[Param(&["string"], false), Param(&["array-string"], false)],
        "map" => &[Param(&["expref"], false), Param(&["array"], false)],
        "max" | "min" => &[Param(&["array-number", "array-string"], false)],
        "merge" => &[Param(&["object"], true)],
        "sort" => &[Param(&["array-string", "array-number"], false)],
        "keys" | "values" => &[Param(&["object"], false)],
        "sort_by" | "min_by" | "max_by" => &[Param(&["array"], false), Param(&["expref"], false)],
        _ => return None,
    })
}

fn list_repr(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|t| format!("'{t}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn type_error(function: &str, value: &str, actual: &str, expected: &[&str]) -> QueryError {
    runtime(format!(
        "In function {function}(), invalid type for value: {value}, expected one of: {}, received: \"{actual}\"",
        list_repr(expected)
    ))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "argument" } else { "arguments" }
}

fn validate(name: &str, args: &[Arg<'_>], signature: &[Param]) -> Result<(), QueryError> {
    let variadic = signature.last().is_some_and(|p| p.1);
    if variadic {
        if args.len() < signature.len() {
            return Err(runtime(format!(
                "Expected at least {} {} for function {name}(), received {}",
                signature.len(),
                plural(signature.len()),
                args.len()
            )));
        }
    } else if args.len() != signature.len() {
        return Err(runtime(format!(
            "Expected {} {} for function {name}(), received {}",
            signature.len(),
            plural(signature.len()),
            args.len()
        )));
    }
    for (param, arg) in signature.iter().zip(args) {
        if param.0.is_empty() {
            continue;
        }
        let mut allowed: Vec<&str> = Vec::new();
        let mut subtypes: Vec<&[&str]> = Vec::new();
        for t in param.0 {
            match t.split_once('-') {
                Some((outer, sub)) => {
                    subtypes.push(python_types(sub));
                    allowed.extend(python_types(outer));
                }
                None => allowed.extend(python_types(t)),
            }
        }
        let actual = arg.type_name();
        if !allowed.contains(&actual) {
            return Err(type_error(
                name,
                &arg.display(),
                jmespath_type(actual),
                param.0,
            ));
        }
        if subtypes.is_empty() {
            continue;
        }
        let items: &[Value] = match arg.value() {
            Value::Array(items) => items,
            _ => &[],
        };
        if subtypes.len() == 1 {
            for element in items {
                let t = class_name(element);
                if !subtypes[0].contains(&t) {
                    return Err(type_error(name, &py_str(element), t, param.0));
                }
            }
        } else if let Some(first) = items.first() {
            let first_type = class_name(first);
            let Some(allowed_sub) = subtypes.iter().find(|s| s.contains(&first_type)) else {
                return Err(type_error(name, &py_str(first), first_type, param.0));
            };
            for element in items {
                let t = class_name(element);
                if !allowed_sub.contains(&t) {
                    return Err(type_error(name, &py_str(element), t, param.0));
                }
            }
        }
    }
    Ok(())
}

/// Python ordering of two values already known to be numbers or strings.
fn py_order(a: &Value, b: &Value, op: &str) -> Result<Ordering, QueryError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Ok(num_cmp(num_of(x), num_of(y)).unwrap_or(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(runtime(format!(
            "'{op}' not supported between instances of '{}' and '{}'",
            class_name(a),
            class_name(b)
        ))),
    }
}

fn call_function(name: &str, args: Vec<Arg<'_>>) -> Result<Value, QueryError> {
    let Some(sig) = signature(name) else {
        return Err(runtime(format!("Unknown function: {name}()")));
    };
    validate(name, &args, sig)?;
    let v = |i: usize| args[i].value();
    let expref = |i: usize| match args[i] {
        Arg::Expref(node) => node,
        Arg::Value(_) => &Node::Identity,
    };
    match name {
        "abs" => Ok(match py_num(v(0)) {
            Some(PyNum::Int(i)) => num_value(PyNum::Int(i.abs())),
            Some(PyNum::Float(f)) => num_value(PyNum::Float(f.abs())),
            None => Value::Null,
        }),
        "avg" => {
            let items = v(0).as_array().map(Vec::as_slice).unwrap_or(&[]);
            if items.is_empty() {
                return Ok(Value::Null);
            }
            let total = sum(items);
            let total = match total {
                PyNum::Int(i) => i as f64,
                PyNum::Float(f) => f,
            };
            Ok(num_value(PyNum::Float(total / items.len() as f64)))
        }
        "sum" => Ok(num_value(sum(v(0)
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])))),
        "ceil" | "floor" => Ok(match py_num(v(0)) {
            Some(PyNum::Int(i)) => num_value(PyNum::Int(i)),
            Some(PyNum::Float(f)) => {
                let r = if name == "ceil" { f.ceil() } else { f.floor() };
                if r.abs() < 9.0e18 {
                    num_value(PyNum::Int(r as i128))
                } else {
                    num_value(PyNum::Float(r))
                }
            }
            None => Value::Null,
        }),
        "not_null" => Ok(args
            .iter()
            .map(Arg::value)
            .find(|a| !a.is_null())
            .cloned()
            .unwrap_or(Value::Null)),
        "to_array" => Ok(match v(0) {
            Value::Array(_) => v(0).clone(),
            other => Value::Array(vec![other.clone()]),
        }),
        "to_string" => Ok(match v(0) {
            Value::String(_) => v(0).clone(),
            other => Value::String(json_compact_ascii(other)),
        }),
        "to_number" => Ok(match v(0) {
            Value::Number(_) => v(0).clone(),
            Value::String(s) => to_number(s),
            _ => Value::Null,
        }),
        "type" => Ok(Value::String(jmespath_type(class_name(v(0))).to_string())),
        "contains" => match v(0) {
            Value::String(subject) => match v(1) {
                Value::String(search) => Ok(Value::Bool(subject.contains(search.as_str()))),
                other => Err(runtime(format!(
                    "'in <string>' requires string as left operand, not {}",
                    class_name(other)
                ))),
            },
            Value::Array(items) => Ok(Value::Bool(items.iter().any(|item| py_eq(item, v(1))))),
            _ => Ok(Value::Null),
        },
        "length" => Ok(Value::from(match v(0) {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        })),
        "ends_with" | "starts_with" => {
            let (Value::String(subject), Value::String(affix)) = (v(0), v(1)) else {
                return Ok(Value::Null);
            };
            Ok(Value::Bool(if name == "ends_with" {
                subject.ends_with(affix.as_str())
            } else {
                subject.starts_with(affix.as_str())
            }))
        }
        "reverse" => Ok(match v(0) {
            Value::String(s) => Value::String(s.chars().rev().collect()),
            Value::Array(a) => Value::Array(a.iter().rev().cloned().collect()),
            _ => Value::Null,
        }),
        "join" => {
            let separator = v(0).as_str().unwrap_or_default();
            let parts: Vec<&str> = v(1)
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Ok(Value::String(parts.join(separator)))
        }
        "map" => {
            let node = expref(0);
            let mut out = Vec::new();
            for element in v(1).as_array().map(Vec::as_slice).unwrap_or(&[]) {
                out.push(eval(node, element)?);
            }
            Ok(Value::Array(out))
        }
        "max" | "min" => {
            let items = v(0).as_array().map(Vec::as_slice).unwrap_or(&[]);
            let mut best: Option<&Value> = None;
            for item in items {
                best = Some(match best {
                    None => item,
                    Some(b) => {
                        let ord = py_order(item, b, if name == "max" { ">" } else { "<" })?;
                        let better = if name == "max" {
                            ord == Ordering::Greater
                        } else {
                            ord == Ordering::Less
                        };
                        if better { item } else { b }
                    }
                });
            }
            Ok(best.cloned().unwrap_or(Value::Null))
        }
        "merge" => {
            // Only the first argument is type-checked (the signature has one variadic parameter); the others
            // go to Python's `dict.update`, whose errors and pair-sequence reading are reproduced here.
            let mut merged = Map::new();
            for arg in &args {
                dict_update(&mut merged, arg.value())?;
            }
            Ok(Value::Object(merged))
        }
        "sort" => {
            let mut items = v(0).as_array().cloned().unwrap_or_default();
            let mut error = None;
            items.sort_by(|a, b| {
                py_order(a, b, "<").unwrap_or_else(|e| {
                    error.get_or_insert(e);
                    Ordering::Equal
                })
            });
            match error {
                Some(e) => Err(e),
                None => Ok(Value::Array(items)),
            }
        }
        "keys" => Ok(Value::Array(
            v(0).as_object()
                .map(|m| m.keys().cloned().map(Value::String).collect())
                .unwrap_or_default(),
        )),
        "values" => Ok(Value::Array(
            v(0).as_object()
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
        )),
        "sort_by" => {
            let items = v(0).as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(Value::Array(items));
            }
            let node = expref(1);
            let first_key = eval(node, &items[0])?;
            let required = jmespath_type(class_name(&first_key));
            if required != "number" && required != "string" {
                return Err(type_error(
                    "sort_by",
                    &py_str(&items[0]),
                    required,
                    &["string", "number"],
                ));
            }
            let mut keyed = Vec::with_capacity(items.len());
            for item in items {
                let key = key_of(node, &item, &[required], "sort_by")?;
                keyed.push((key, item));
            }
            let mut error = None;
            keyed.sort_by(|a, b| {
                py_order(&a.0, &b.0, "<").unwrap_or_else(|e| {
                    error.get_or_insert(e);
                    Ordering::Equal
                })
            });
            match error {
                Some(e) => Err(e),
                None => Ok(Value::Array(
                    keyed.into_iter().map(|(_, item)| item).collect(),
                )),
            }
        }
        "min_by" | "max_by" => {
            let node = expref(1);
            let items = v(0).as_array().map(Vec::as_slice).unwrap_or(&[]);
            let mut best: Option<(Value, &Value)> = None;
            for item in items {
                let key = key_of(node, item, &["number", "string"], name)?;
                best = Some(match best {
                    None => (key, item),
                    Some((best_key, best_item)) => {
                        let ord =
                            py_order(&key, &best_key, if name == "max_by" { ">" } else { "<" })?;
                        let better = if name == "max_by" {
                            ord == Ordering::Greater
                        } else {
                            ord == Ordering::Less
                        };
                        if better {
                            (key, item)
                        } else {
                            (best_key, best_item)
                        }
                    }
                });
            }
            Ok(best.map(|(_, item)| item.clone()).unwrap_or(Value::Null))
        }
        _ => Err(runtime(format!("Unknown function: {name}()"))),
    }
}

/// Python's `dict.update(other)` for a JSON value.
fn dict_update(merged: &mut Map<String, Value>, other: &Value) -> Result<(), QueryError> {
    let element_error = |i: usize, len: usize| {
        runtime(format!(
            "dictionary update sequence element #{i} has length {len}; 2 is required"
        ))
    };
    match other {
        Value::Object(map) => {
            for (k, v) in map {
                merged.insert(k.clone(), v.clone());
            }
            Ok(())
        }
        Value::String(s) => match s.chars().next() {
            None => Ok(()),
            Some(_) => Err(element_error(0, 1)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let (key, value) = match item {
                    Value::Array(pair) if pair.len() == 2 => match &pair[0] {
                        Value::String(k) => (k.clone(), pair[1].clone()),
                        other => {
                            return Err(runtime(format!(
                                "dictionary keys of type '{}' cannot be printed as JSON object keys here",
                                class_name(other)
                            )));
                        }
                    },
                    Value::Array(pair) => return Err(element_error(i, pair.len())),
                    Value::String(text) => {
                        let chars: Vec<char> = text.chars().collect();
                        if chars.len() != 2 {
                            return Err(element_error(i, chars.len()));
                        }
                        (chars[0].to_string(), Value::String(chars[1].to_string()))
                    }
                    Value::Object(map) => {
                        let keys: Vec<&String> = map.keys().collect();
                        if keys.len() != 2 {
                            return Err(element_error(i, keys.len()));
                        }
                        (keys[0].clone(), Value::String(keys[1].clone()))
                    }
                    _ => {
                        return Err(runtime(format!(
                            "cannot convert dictionary update sequence element #{i} to a sequence"
                        )));
                    }
                };
                merged.insert(key, value);
            }
            Ok(())
        }
        other => Err(runtime(format!(
            "'{}' object is not iterable",
            class_name(other)
        ))),
    }
}

fn key_of(
    node: &Node,
    item: &Value,
    allowed: &[&str],
    function: &str,
) -> Result<Value, QueryError> {
    let key = eval(node, item)?;
    let t = jmespath_type(class_name(&key));
    if !allowed.contains(&t) {
        return Err(type_error(function, &py_str(&key), t, allowed));
    }
    Ok(key)
}

fn sum(items: &[Value]) -> PyNum {
    let mut total = PyNum::Int(0);
    for item in items {
        let Some(n) = py_num(item) else { continue };
        total = match (total, n) {
            (PyNum::Int(a), PyNum::Int(b)) => PyNum::Int(a.saturating_add(b)),
            (PyNum::Int(a), PyNum::Float(b)) => PyNum::Float(a as f64 + b),
            (PyNum::Float(a), PyNum::Int(b)) => PyNum::Float(a + b as f64),
            (PyNum::Float(a), PyNum::Float(b)) => PyNum::Float(a + b),
        };
    }
    total
}

/// Python's `int(s)`, then `float(s)`; `None` when both fail.
fn to_number(s: &str) -> Value {
    let trimmed = s.trim();
    let plain = strip_underscores(trimmed);
    if let Some(digits) = plain.as_deref() {
        let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
        if !unsigned.is_empty()
            && unsigned.chars().all(|c| c.is_ascii_digit())
            && let Ok(i) = digits.parse::<i128>()
        {
            return num_value(PyNum::Int(i));
        }
        let lower = digits.to_ascii_lowercase();
        let body = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
        if matches!(body, "inf" | "infinity" | "nan") {
            // Python returns inf/nan, which JSON cannot hold; null is the nearest printable answer.
            return Value::Null;
        }
        if body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
            && let Ok(f) = digits.parse::<f64>()
        {
            return num_value(PyNum::Float(f));
        }
    }
    Value::Null
}

/// Python number literals allow single underscores between digits.
fn strip_underscores(s: &str) -> Option<String> {
    if !s.contains('_') {
        return Some(s.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '_' {
            let before = i > 0 && chars[i - 1].is_ascii_digit();
            let after = chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
            if !before || !after {
                return None;
            }
        }
    }
    Some(s.replace('_', ""))
}
