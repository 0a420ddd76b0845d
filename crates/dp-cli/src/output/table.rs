//! `--output table`: a port of `awscli/table.py` (`MultiTable`, `Section`) and of `TableFormatter`'s section
//! building in `awscli/formatter.py`.
//!
//! Byte-identical to the reference, quirks included: East-Asian *ambiguous* characters count two columns
//! (quirk 20), column scaling rounds half to even and over-long cells overflow (quirk 21), the vertical switch
//! happens once. Colour is the one deliberate difference: clean SGR sequences without colorama's extra
//! `ESC[0m` after every write (quirk 22). This module knows nothing of terminals: the caller passes the width.

use super::error::RenderError;
use super::pyfmt::{class_name, is_truthy, py_str};
use super::width::text_width;
use serde_json::{Map, Value};

const BRIGHT_BLUE: &str = "\x1b[1m\x1b[34m";
const DIM_YELLOW: &str = "\x1b[2m\x1b[33m";
const RESET: &str = "\x1b[0m";

#[derive(Debug, Default, Clone)]
struct Section {
    /// `None` for Python's `new_section(None)`: measured as the four characters of "None", never drawn.
    title: Option<String>,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    indent_level: usize,
    num_cols: Option<usize>,
    max_widths: Vec<usize>,
}

impl Section {
    fn calculate_column_widths(&self, padding: usize, max_width: Option<usize>) -> Vec<usize> {
        let unscaled: Vec<usize> = self.max_widths.iter().map(|w| w + padding).collect();
        let Some(max_width) = max_width else {
            return unscaled;
        };
        if unscaled.is_empty() {
            return unscaled;
        }
        let total: usize = unscaled.iter().sum();
        let scale = max_width as f64 / total as f64;
        // Python's round() rounds half to even; so does f64::round_ties_even.
        let mut scaled: Vec<i64> = unscaled
            .iter()
            .map(|&w| (scale * w as f64).round_ties_even() as i64)
            .collect();
        let mut off_by: i64 = scaled.iter().sum::<i64>() - max_width as i64;
        while off_by != 0 {
            let order: Vec<usize> = if off_by < 0 {
                (0..scaled.len()).rev().collect()
            } else {
                (0..scaled.len()).collect()
            };
            for i in order {
                if off_by > 0 {
                    scaled[i] -= 1;
                    off_by -= 1;
                } else {
                    scaled[i] += 1;
                    off_by += 1;
                }
                if off_by == 0 {
                    break;
                }
            }
        }
        scaled.into_iter().map(|w| w.max(0) as usize).collect()
    }

    fn total_width(&self, padding: usize, with_border: bool, outer_padding: usize) -> usize {
        let border_padding = 2;
        let mut total: usize = self
            .calculate_column_widths(0, None)
            .iter()
            .map(|w| w + padding)
            .sum();
        if with_border {
            total += border_padding;
        }
        total += 2 * outer_padding;
        (self.title.as_deref().map_or(4, text_width) + border_padding + 2 * outer_padding)
            .max(total)
    }

    fn add_header(&mut self, headers: Vec<String>) {
        self.update_max_widths(&headers);
        if self.num_cols.is_none() {
            self.num_cols = Some(headers.len());
        }
        self.headers = headers;
    }

    fn add_row(&mut self, row: Vec<String>) -> Result<(), RenderError> {
        let num_cols = *self.num_cols.get_or_insert(row.len());
        if row.len() != num_cols {
            return Err(RenderError::Shape(format!(
                "Row should have {num_cols} elements, instead it has {}",
                row.len()
            )));
        }
        self.update_max_widths(&row);
        self.rows.push(row);
        Ok(())
    }

    fn update_max_widths(&mut self, row: &[String]) {
        if self.max_widths.is_empty() {
            self.max_widths = row.iter().map(|el| text_width(el)).collect();
        } else {
            for (i, el) in row.iter().enumerate() {
                if let Some(w) = self.max_widths.get_mut(i) {
                    *w = (*w).max(text_width(el));
                }
            }
        }
    }
}

/// The sections of one table, built like `TableFormatter._build_table`.
#[derive(Debug, Default)]
struct MultiTable {
    sections: Vec<Section>,
}

impl MultiTable {
    fn current(&mut self) -> Result<&mut Section, RenderError> {
        // Python would fail with AttributeError on `None.add_row`; the builder never gets here without a
        // section because the top level always opens one.
        self.sections
            .last_mut()
            .ok_or_else(|| RenderError::Shape("table row without a section".to_string()))
    }

    fn new_section(&mut self, title: Option<&str>, indent_level: usize) {
        self.sections.push(Section {
            title: title.map(str::to_string),
            indent_level,
            ..Section::default()
        });
    }

    fn max_width(&self) -> usize {
        self.sections
            .iter()
            .map(|s| s.total_width(4, true, s.indent_level))
            .max()
            .unwrap_or(0)
    }

    fn render(mut self, terminal_width: usize, color: bool) -> String {
        let mut max_width = self.max_width();
        if max_width > terminal_width {
            convert_to_vertical_table(&mut self.sections);
            max_width = self.max_width();
        }
        let mut out = String::new();
        out.push_str(&"-".repeat(max_width));
        out.push('\n');
        for section in &self.sections {
            render_section(section, max_width, color, &mut out);
        }
        out
    }
}

fn convert_to_vertical_table(sections: &mut [Section]) {
    for section in sections.iter_mut() {
        if section.rows.len() == 1 && !section.headers.is_empty() {
            let mut vertical = Section {
                title: section.title.clone(),
                indent_level: section.indent_level,
                ..Section::default()
            };
            for (header, element) in section.headers.iter().zip(section.rows[0].iter()) {
                // Two cells each, so the column count always agrees.
                let _ = vertical.add_row(vec![header.clone(), element.clone()]);
            }
            *section = vertical;
        }
    }
}

/// Writes lines of one section, framing each with the section's indentation bars (`IndentedStream`).
struct Lines<'a> {
    out: &'a mut String,
    indent: String,
}

impl Lines<'_> {
    fn line(&mut self, text: &str) {
        self.out.push_str(&self.indent);
        self.out.push_str(text);
        self.out.push_str(&self.indent);
        self.out.push('\n');
    }
}

fn render_section(section: &Section, max_width: usize, color: bool, out: &mut String) {
    let bar = if color {
        format!("{DIM_YELLOW}|{RESET}")
    } else {
        "|".to_string()
    };
    let mut lines = Lines {
        out,
        indent: bar.repeat(section.indent_level),
    };
    let max_width = max_width.saturating_sub(section.indent_level * 2);
    // Title.
    if let Some(title) = section.title.as_deref().filter(|t| !t.is_empty()) {
        lines.line(&center_text(title, max_width, "|", "|", text_width(title)));
        if section.headers.is_empty() && section.rows.is_empty() {
            lines.line(&format!("+{}+", "-".repeat(max_width.saturating_sub(2))));
        }
    }
    // Column titles.
    if !section.headers.is_empty() {
        let widths = section.calculate_column_widths(4, Some(max_width));
        let mut current = String::new();
        for (i, (width, header)) in widths.iter().zip(section.headers.iter()).enumerate() {
            let left = if i == 0 { "|" } else { "" };
            current.push_str(&center_text(header, *width, left, "|", text_width(header)));
        }
        lines.line(&line_break(&widths));
        lines.line(&current);
    }
    // Rows.
    if section.rows.is_empty() {
        return;
    }
    let widths = section.calculate_column_widths(4, Some(max_width));
    if widths.is_empty() {
        return;
    }
    lines.line(&line_break(&widths));
    for row in &section.rows {
        let mut current = String::new();
        for (i, (width, element)) in widths.iter().zip(row.iter()).enumerate() {
            let left = if i == 0 { "|" } else { "" };
            let styled;
            let text = if color {
                styled = format!("{BRIGHT_BLUE}{element}{RESET}");
                &styled
            } else {
                element
            };
            current.push_str(&align_left(text, *width, left, "|", text_width(element)));
        }
        lines.line(&current);
    }
    lines.line(&line_break(&widths));
}

fn line_break(widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            s.push('+');
            s.push_str(&"-".repeat(w.saturating_sub(2)));
            s.push('+');
        } else {
            s.push_str(&"-".repeat(w.saturating_sub(1)));
            s.push('+');
        }
    }
    s
}

/// `awscli.table.center_text`; negative space counts print nothing, as `' ' * -1 == ''` in Python.
fn center_text(
    text: &str,
    length: usize,
    left_edge: &str,
    right_edge: &str,
    text_length: usize,
) -> String {
    let char_start = (length / 2) as i64 - (text_length / 2) as i64 - 1;
    let mut s = String::new();
    s.push_str(left_edge);
    s.push_str(&" ".repeat(char_start.max(0) as usize));
    s.push_str(text);
    let so_far = text_width(left_edge) as i64 + char_start + text_length as i64;
    let right = length as i64 - text_width(right_edge) as i64 - so_far;
    s.push_str(&" ".repeat(right.max(0) as usize));
    s.push_str(right_edge);
    s
}

/// `awscli.table.align_left` with its default two spaces of left padding.
fn align_left(
    text: &str,
    length: usize,
    left_edge: &str,
    right_edge: &str,
    text_length: usize,
) -> String {
    let computed = text_length + 2 + text_width(left_edge) + text_width(right_edge);
    let padding = if length >= computed { 2 } else { 0 };
    let so_far = left_edge.chars().count() + padding + text_length;
    let fill = length as i64 - so_far as i64 - right_edge.chars().count() as i64;
    let mut s = String::new();
    s.push_str(left_edge);
    s.push_str(&" ".repeat(padding));
    s.push_str(text);
    s.push_str(&" ".repeat(fill.max(0) as usize));
    s.push_str(right_edge);
    s
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Renders `value` as `TableFormatter` does, titled `title`; an empty string for a falsy value.
pub fn format_table(
    title: &str,
    value: &Value,
    terminal_width: usize,
    color: bool,
) -> Result<String, RenderError> {
    let mut table = MultiTable::default();
    if !build_table(&mut table, Some(title), value, 0)? {
        return Ok(String::new());
    }
    Ok(table.render(terminal_width, color))
}

fn build_table(
    table: &mut MultiTable,
    title: Option<&str>,
    current: &Value,
    indent_level: usize,
) -> Result<bool, RenderError> {
    if !is_truthy(current) {
        return Ok(false);
    }
    if title.is_some() {
        table.new_section(title, indent_level);
    }
    match current {
        Value::Array(items) => {
            if items[0].is_object() {
                build_sub_table_from_list(table, items, indent_level, title)?;
            } else {
                for item in items {
                    match item {
                        scalar if is_scalar(scalar) => {
                            table.current()?.add_row(vec![py_str(scalar)])?
                        }
                        Value::Array(inner) if inner.iter().all(is_scalar) => table
                            .current()?
                            .add_row(inner.iter().map(py_str).collect())?,
                        // Iterating a dict yields its keys, which are all scalars.
                        Value::Object(map) => {
                            table.current()?.add_row(map.keys().cloned().collect())?
                        }
                        other => {
                            build_table(table, None, other, 0)?;
                        }
                    }
                }
            }
        }
        Value::Object(map) => build_sub_table_from_dict(table, map, indent_level)?,
        _ => {}
    }
    Ok(true)
}

fn group_scalar_keys(map: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let mut headers = Vec::new();
    let mut more = Vec::new();
    for (k, v) in map {
        if is_scalar(v) {
            headers.push(k.clone());
        } else {
            more.push(k.clone());
        }
    }
    headers.sort();
    more.sort();
    (headers, more)
}

fn build_sub_table_from_dict(
    table: &mut MultiTable,
    map: &Map<String, Value>,
    indent_level: usize,
) -> Result<(), RenderError> {
    let (headers, more) = group_scalar_keys(map);
    if headers.len() == 1 {
        let row = vec![headers[0].clone(), py_str(&map[&headers[0]])];
        table.current()?.add_row(row)?;
    } else if !headers.is_empty() {
        let row = headers.iter().map(|k| py_str(&map[k])).collect();
        let section = table.current()?;
        section.add_header(headers);
        section.add_row(row)?;
    }
    for key in more {
        build_table(table, Some(&key), &map[&key], indent_level + 1)?;
    }
    Ok(())
}

fn build_sub_table_from_list(
    table: &mut MultiTable,
    items: &[Value],
    indent_level: usize,
    title: Option<&str>,
) -> Result<(), RenderError> {
    let mut headers: Vec<String> = Vec::new();
    let mut more: Vec<String> = Vec::new();
    let mut maps = Vec::with_capacity(items.len());
    for item in items {
        // Python iterates the element as a dict and fails on anything else.
        let Value::Object(map) = item else {
            return Err(RenderError::Shape(format!(
                "a list that starts with an object holds a {}",
                class_name(item)
            )));
        };
        let (h, m) = group_scalar_keys(map);
        for k in h {
            if !headers.contains(&k) {
                headers.push(k);
            }
        }
        for k in m {
            if !more.contains(&k) {
                more.push(k);
            }
        }
        maps.push(map);
    }
    headers.sort();
    more.sort();
    table.current()?.add_header(headers.clone());
    for (i, map) in maps.iter().enumerate() {
        if i > 0 && !more.is_empty() {
            table.new_section(title, indent_level);
            table.current()?.add_header(headers.clone());
        }
        let row = headers
            .iter()
            .map(|h| map.get(h).map(py_str).unwrap_or_default())
            .collect();
        table.current()?.add_row(row)?;
        for key in &more {
            if let Some(v) = map.get(key) {
                build_table(table, Some(key), v, indent_level + 1)?;
            }
        }
    }
    Ok(())
}
