//! Hints after the reference's error messages, for the places where its wording leaves users guessing
//! (the README's quirks 3, 6, 7, 8 and 10). The reference's text stays first and unchanged, so scripts that match
//! on it keep working; a hint is one more line starting with `Hint:`.

use dp_model::validate::{ProblemKind, ValidationReport};

/// A hint for a shorthand syntax error, judged from the input and where the parser stopped.
pub fn shorthand(error: &dp_shorthand::Error) -> Option<&'static str> {
    let dp_shorthand::ErrorKind::Syntax { received, .. } = error.kind() else {
        return None;
    };
    let input = error.input();
    let chars: Vec<char> = input.chars().collect();
    let leading = chars.iter().take_while(|c| c.is_whitespace()).count();
    if leading > 0 && error.offset() <= leading {
        return Some(
            "Hint: shorthand cannot start with whitespace; remove it before the first key.",
        );
    }
    if received.chars().count() == 1 && received.chars().all(|c| c as u32 > 0xFFFF) {
        return Some(
            "Hint: characters above U+FFFF (emoji, for example) are allowed only in quoted values: key='…'.",
        );
    }
    if received == "EOF" {
        let trimmed = input.trim_end();
        if trimmed.len() < input.len() && (trimmed.ends_with(']') || trimmed.ends_with('}')) {
            return Some(
                "Hint: whitespace after a final ] or } is an error (a file:// value's last newline counts); remove it.",
            );
        }
    }
    let upto = &chars[..(error.offset() + 1).min(chars.len())];
    if upto
        .windows(2)
        .any(|w| w[0] == '=' && (w[1] == '}' || w[1] == ']'))
    {
        return Some(
            "Hint: an empty value cannot be followed by } or ]; write an empty quoted value instead: {key=''}.",
        );
    }
    None
}

/// Hints for a validation report of a value that came from shorthand or a paramfile.
pub fn validation(report: &ValidationReport, from_paramfile: bool) -> Vec<&'static str> {
    let mut hints = Vec::new();
    for problem in &report.problems {
        if let ProblemKind::InvalidType { value, valid_types } = &problem.kind {
            if value.is_array() && *valid_types == "<class 'str'>" {
                hints.push(
                    "Hint: in shorthand, an unquoted comma starts a list; quote the value (stringValue='b,c') or escape the comma (b\\,c).",
                );
            }
            if value.is_object() && valid_types.starts_with("<class 'list'>") && from_paramfile {
                hints.push(
                    "Hint: a file:// value holding shorthand is read as one structure; put a JSON list in the file, or pass the items as separate arguments.",
                );
            }
        }
    }
    hints.dedup();
    hints
}
