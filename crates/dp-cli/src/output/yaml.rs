//! `--output yaml` and `yaml-stream` as AWS CLI v2 prints them.
//!
//! v2 dumps with ruamel.yaml `YAML(typ='safe')`, block style, which emits through libyaml (ruamel.yaml.clib)
//! with the YAML 1.2 resolver, `allow_unicode`, width 80 and indent 2, keys sorted. No Rust crate reproduces
//! that byte for byte (serde_yaml is archived; its successors choose quoting and folding differently), so
//! this module emits YAML itself: a port of libyaml's `emitter.c` scalar analysis, style selection and
//! writers (plain, single- and double-quoted with line folding at 80 columns), driven directly by the value
//! tree. The differential test runs the same data through PyYAML's libyaml `CEmitter` with ruamel's 1.2
//! resolver and float spelling, since ruamel is not part of the installed reference. That emulation was
//! itself checked by hand against ruamel.yaml 0.18.17 with ruamel.yaml.clib 0.2.15 (`YAML(typ='safe')`,
//! `default_flow_style = False`): 3000 generated documents, including every quoting edge case listed in
//! `resolves_to` and `analyze`, came out identical.
//!
//! It must not sort anything but mapping keys, and it only handles what JSON can hold.

use super::pyfmt::{float_repr, number_str};
use serde_json::{Map, Value};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i64 = 2;

/// One YAML document for `value`, as `YAML(typ='safe').dump(value)` writes it.
pub fn dump(value: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        indents: Vec::new(),
    };
    e.node(value, false, false);
    // Document end: close the last line.
    e.write_indent();
    e.out
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: i64,
    indents: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn node(&mut self, value: &Value, mapping_context: bool, simple_key: bool) {
        match value {
            Value::Array(items) => self.sequence(items, mapping_context),
            Value::Object(map) => self.mapping(map),
            Value::Null => self.scalar("null", true, simple_key),
            Value::Bool(b) => self.scalar(if *b { "true" } else { "false" }, true, simple_key),
            Value::Number(n) => {
                let text = if n.is_f64() {
                    float_text(n.as_f64().unwrap_or(0.0))
                } else {
                    number_str(n)
                };
                let plain_implicit = resolves_to(&text) != Resolved::Str;
                self.scalar(&text, plain_implicit, simple_key)
            }
            Value::String(s) => {
                let plain_implicit = resolves_to(s) == Resolved::Str;
                self.scalar(s, plain_implicit, simple_key)
            }
        }
    }

    fn sequence(&mut self, items: &[Value], mapping_context: bool) {
        if items.is_empty() {
            self.write_indicator("[", true, true, false);
            self.increase_indent(true, false);
            self.pop_indent();
            self.write_indicator("]", false, false, false);
            return;
        }
        let indentless = mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, false, false);
        }
        self.pop_indent();
    }

    fn mapping(&mut self, map: &Map<String, Value>) {
        if map.is_empty() {
            self.write_indicator("{", true, true, false);
            self.increase_indent(true, false);
            self.pop_indent();
            self.write_indicator("}", false, false, false);
            return;
        }
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        self.increase_indent(false, false);
        for (key, value) in entries {
            self.write_indent();
            let key_value = Value::String(key.clone());
            let simple = key.len() <= 128 && !analyze(key).multiline;
            if simple {
                self.node(&key_value, true, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(&key_value, true, false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, true, false);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, text: &str, plain_implicit: bool, simple_key: bool) {
        let analysis = analyze(text);
        let mut style = Style::Plain;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (text.is_empty() && simple_key) || !plain_implicit)
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(text, allow_breaks),
            Style::Single => self.write_single_quoted(text, allow_breaks),
            Style::Double => self.write_double_quoted(text, allow_breaks),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, text: &str, allow_breaks: bool) {
        if !self.whitespace && !text.is_empty() {
            self.put(' ');
        }
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                    && !next_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if breaks {
            self.write_indent();
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_double_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let code = match c {
                    '\0' => Some('0'),
                    '\u{7}' => Some('a'),
                    '\u{8}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{b}' => Some('v'),
                    '\u{c}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1b}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{a0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match code {
                    Some(code) => self.put(code),
                    None => {
                        let v = c as u32;
                        let escaped = if v <= 0xff {
                            format!("x{v:02X}")
                        } else if v <= 0xffff {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        for e in escaped.chars() {
                            self.put(e);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }
}

/// ruamel's `represent_float` under YAML 1.2: `repr(f).lower()`, with `.inf`/`.nan` spellings.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.to_string()
    } else {
        float_repr(f).to_lowercase()
    }
}

/// libyaml's `IS_PRINTABLE`: LF, ASCII printables, and the BMP from U+00A0 except surrogates, U+FEFF,
/// U+FFFE and U+FFFF. Characters beyond the BMP are *not* printable, so they are escaped.
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0a
        || (0x20..=0x7e).contains(&v)
        || (0xa0..=0xd7ff).contains(&v)
        || ((0xe000..=0xfffd).contains(&v) && v != 0xfeff)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
    }
}

#[derive(Debug, Default)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
}

/// libyaml's `yaml_emitter_analyze_scalar`, reduced to the flags block-style emission reads.
fn analyze(text: &str) -> Analysis {
    if text.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
        };
    }
    let chars: Vec<char> = text.chars().collect();
    let mut block_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;
    if text.starts_with("---") || text.starts_with("...") {
        block_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = is_blankz(chars.get(1).copied());
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                block_indicators = true;
            }
            if (c == '?' || c == ':') && followed_by_whitespace {
                block_indicators = true;
            }
            if c == '-' && followed_by_whitespace {
                block_indicators = true;
            }
        } else {
            if c == ':' && followed_by_whitespace {
                block_indicators = true;
            }
            if c == '#' && preceded_by_whitespace {
                block_indicators = true;
            }
        }
        if !is_printable(c) {
            special_characters = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(Some(c));
        if i < last {
            followed_by_whitespace = is_blankz(chars.get(i + 2).copied());
        }
    }
    let mut block_plain_allowed = true;
    let mut single_quoted_allowed = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        block_plain_allowed = false;
    }
    if break_space {
        block_plain_allowed = false;
        single_quoted_allowed = false;
    }
    if space_break || special_characters {
        block_plain_allowed = false;
        single_quoted_allowed = false;
    }
    if line_breaks || block_indicators {
        block_plain_allowed = false;
    }
    Analysis {
        multiline: line_breaks,
        block_plain_allowed,
        single_quoted_allowed,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    Str,
    Other,
}

/// What a plain scalar would load as under ruamel's YAML 1.2 resolver: anything but a string forces quotes.
fn resolves_to(text: &str) -> Resolved {
    let is = |b: bool| if b { Resolved::Other } else { Resolved::Str };
    let Some(first) = text.chars().next() else {
        // The empty plain scalar is null.
        return Resolved::Other;
    };
    match first {
        't' | 'T' | 'f' | 'F'
            if matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE") =>
        {
            return Resolved::Other;
        }
        '~' | 'n' | 'N' if matches!(text, "~" | "null" | "Null" | "NULL") => {
            return Resolved::Other;
        }
        '<' if text == "<<" => return Resolved::Other,
        '=' if text == "=" => return Resolved::Other,
        _ => {}
    }
    if "-+0123456789.".contains(first) && (is_float_12(text) || is_int_12(text)) {
        return Resolved::Other;
    }
    if first.is_ascii_digit() && is_timestamp(text) {
        return Resolved::Other;
    }
    is(false)
}

fn strip_sign(s: &str) -> &str {
    s.strip_prefix(['-', '+']).unwrap_or(s)
}

fn all_in(s: &str, f: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(f)
}

/// `[-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?[0-9_]+ | [-+]?0x[0-9a-fA-F_]+`
fn is_int_12(text: &str) -> bool {
    let s = strip_sign(text);
    if let Some(rest) = s.strip_prefix("0b")
        && all_in(rest, |c| c == '0' || c == '1' || c == '_')
    {
        return true;
    }
    if let Some(rest) = s.strip_prefix("0o")
        && all_in(rest, |c| ('0'..='7').contains(&c) || c == '_')
    {
        return true;
    }
    if let Some(rest) = s.strip_prefix("0x")
        && all_in(rest, |c| c.is_ascii_hexdigit() || c == '_')
    {
        return true;
    }
    all_in(s, |c| c.is_ascii_digit() || c == '_')
}

/// ruamel's YAML 1.2 float pattern.
fn is_float_12(text: &str) -> bool {
    let s = strip_sign(text);
    if matches!(s, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let digits_us = |p: &str| p.chars().all(|c| c.is_ascii_digit() || c == '_');
    let exponent = |e: &str, sign_required: bool| -> bool {
        let Some(rest) = e.strip_prefix(['e', 'E']) else {
            return false;
        };
        let unsigned = rest.strip_prefix(['-', '+']);
        if sign_required && unsigned.is_none() {
            return false;
        }
        let digits = unsigned.unwrap_or(rest);
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
    };
    let split_exp = |p: &str| -> (String, Option<String>) {
        match p.find(['e', 'E']) {
            Some(i) => (p[..i].to_string(), Some(p[i..].to_string())),
            None => (p.to_string(), None),
        }
    };
    // [0-9][0-9_]*\.[0-9_]*(e)?   |   [0-9][0-9_]*(e)   |   \.[0-9_]+(e with sign)?
    let (mantissa, exp) = split_exp(s);
    if let Some((int_part, frac)) = mantissa.split_once('.') {
        if int_part.starts_with(|c: char| c.is_ascii_digit())
            && digits_us(int_part)
            && digits_us(frac)
        {
            return exp.as_deref().is_none_or(|e| exponent(e, false));
        }
        if int_part.is_empty() && !frac.is_empty() && digits_us(frac) {
            return exp.as_deref().is_none_or(|e| exponent(e, true));
        }
        return false;
    }
    if mantissa.starts_with(|c: char| c.is_ascii_digit()) && digits_us(&mantissa) {
        return exp.as_deref().is_some_and(|e| exponent(e, false));
    }
    false
}

/// The YAML timestamp pattern (date, or date and time with optional fraction and zone).
fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    // yyyy-mm-dd alone.
    if b.len() == 10
        && (0..4).all(digit)
        && b[4] == b'-'
        && digit(5)
        && digit(6)
        && b[7] == b'-'
        && digit(8)
        && digit(9)
    {
        return true;
    }
    let mut i = 0;
    if !(0..4).all(digit) || b.get(4) != Some(&b'-') {
        return false;
    }
    i += 5;
    let take_1_2 = |i: &mut usize| -> bool {
        if !digit(*i) {
            return false;
        }
        *i += 1;
        if digit(*i) {
            *i += 1;
        }
        true
    };
    if !take_1_2(&mut i) || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    if !take_1_2(&mut i) {
        return false;
    }
    // [Tt] or [ \t]+
    match b.get(i) {
        Some(b'T' | b't') => i += 1,
        Some(b' ' | b'\t') => {
            while matches!(b.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if !take_1_2(&mut i) || b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    if !(digit(i) && digit(i + 1)) || b.get(i + 2) != Some(&b':') {
        return false;
    }
    i += 3;
    if !(digit(i) && digit(i + 1)) {
        return false;
    }
    i += 2;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while digit(i) {
            i += 1;
        }
    }
    // Optional zone: [ \t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?)
    let zone_start = i;
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match b.get(i) {
        None => return i == zone_start,
        Some(b'Z') => i += 1,
        Some(b'-' | b'+') => {
            i += 1;
            if !take_1_2(&mut i) {
                return false;
            }
            if b.get(i) == Some(&b':') {
                if !(digit(i + 1) && digit(i + 2)) {
                    return false;
                }
                i += 3;
            }
        }
        _ => return false,
    }
    i == b.len()
}
