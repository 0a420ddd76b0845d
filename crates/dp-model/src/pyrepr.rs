//! Python's view of JSON values: `repr()`, `str()`, `type()` and truthiness, as botocore and the AWS CLI print
//! and test them.
//!
//! Scripts match on the reference CLI's messages, which embed Python renderings of the offending value
//! (`['b', 'c']`, `{'key': 'sh'}`, `True`, `<class 'str'>`). This module reproduces those renderings and is their
//! only home (dp-cli's `output::pyfmt` adds `json.dumps` on top of it); it does no IO.

use serde_json::Value;

/// Python's `repr()` of the value that `json.loads` would produce.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

/// Python's `str()`: like [`repr`], except that a top-level string is printed as is.
pub fn str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `type()` printed with `str()`: `<class 'str'>`, `<class 'dict'>`, ….
pub fn type_name(value: &Value) -> &'static str {
    python_class(value).1
}

/// The name of Python's class of the value that `json.loads` would produce: `str`, `dict`, `NoneType`, ….
pub fn class_name(value: &Value) -> &'static str {
    python_class(value).0
}

/// Python's truthiness (`bool(x)`) of the value that `json.loads` would produce.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The class's name and its `str(type(x))`, in one table so that the two cannot disagree.
fn python_class(value: &Value) -> (&'static str, &'static str) {
    match value {
        Value::Null => ("NoneType", "<class 'NoneType'>"),
        Value::Bool(_) => ("bool", "<class 'bool'>"),
        Value::Number(n) if n.is_f64() => ("float", "<class 'float'>"),
        Value::Number(_) => ("int", "<class 'int'>"),
        Value::String(_) => ("str", "<class 'str'>"),
        Value::Array(_) => ("list", "<class 'list'>"),
        Value::Object(_) => ("dict", "<class 'dict'>"),
    }
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&string_repr(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&string_repr(k));
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, fixed notation for exponents in [-4, 16), else
/// scientific with a signed, at-least-two-digit exponent.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let mant = if digits.len() == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.abs())
    }
}

/// Python's `repr(str)`.
pub fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (c as u32) > 0x7F && !crate::printable::is_printable(c) => {
                let v = c as u32;
                if v <= 0xFF {
                    out.push_str(&format!("\\x{v:02x}"));
                } else if v <= 0xFFFF {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value, expected: &str) {
        assert_eq!(repr(&value), expected, "repr of {value}");
    }

    #[test]
    fn reprs() {
        check(json!(["b", "c"]), "['b', 'c']");
        check(
            json!({"key": "sh", "stringValue": "x"}),
            "{'key': 'sh', 'stringValue': 'x'}",
        );
        check(json!("it's"), "\"it's\"");
        check(json!("a'b\"c"), "'a\\'b\"c'");
        check(json!("tab\there\u{1}"), "'tab\\there\\x01'");
        check(json!("\u{ffff}\u{ad}\u{2028}é"), "'\\uffff\\xad\\u2028é'");
        check(json!(true), "True");
        check(json!(null), "None");
        check(json!(12), "12");
        check(json!(1.5), "1.5");
        check(json!(2.0), "2.0");
        check(json!(1e16), "1e+16");
        check(json!(1.25e-5), "1.25e-05");
        check(json!(0.0001), "0.0001");
        check(json!(123456789012345.6), "123456789012345.6");
    }

    #[test]
    fn str_of_string_is_raw() {
        assert_eq!(str(&json!("notadate")), "notadate");
        assert_eq!(type_name(&json!(1.0)), "<class 'float'>");
    }

    #[test]
    fn classes_and_truthiness() {
        let cases = [
            (json!(null), "NoneType", false),
            (json!(true), "bool", true),
            (json!(false), "bool", false),
            (json!(0), "int", false),
            (json!(-3), "int", true),
            (json!(0.0), "float", false),
            (json!(0.5), "float", true),
            (json!(""), "str", false),
            (json!("0"), "str", true),
            (json!([]), "list", false),
            (json!([0]), "list", true),
            (json!({}), "dict", false),
            (json!({"a": null}), "dict", true),
        ];
        for (value, class, truthy) in cases {
            assert_eq!(class_name(&value), class, "class of {value}");
            assert_eq!(
                type_name(&value),
                format!("<class '{class}'>"),
                "type of {value}"
            );
            assert_eq!(is_truthy(&value), truthy, "bool({value})");
        }
    }
}
