//! Display width of text as the AWS CLI's table formatter measures it.
//!
//! `awscli/table.py` counts every character whose East-Asian width is W, F or **A** (ambiguous) as two
//! columns and everything else, control and combining characters included, as one. No crate does exactly
//! that (`unicode-width` gives zero to combining marks), so the ranges (`width/table.rs`) come from the reference's
//! own table: `cargo xtask import-unicode` derives them from the installed Python's `unicodedata` (CPython 3.11.7,
//! Unicode 14.0.0; `east_asian_width(c) in 'WFA'`) into `xtask/data/python-unicode.txt`, and `cargo xtask codegen`
//! generates the table from that file; neither is edited by hand. The differential test
//! `output::width_table_matches_python` re-checks the table against the installed Python.

mod table;

use table::WIDE;

/// Width of one character: 2 for East-Asian W, F and A, otherwise 1.
pub fn char_width(c: char) -> usize {
    if dp_model::printable::in_ranges(WIDE, c) {
        2
    } else {
        1
    }
}

/// Display length of a string as `awscli.table.get_text_length` computes it.
pub fn text_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}
