//! Percent-encoding as Python's `urllib` does it, for the places dp-wire reads or writes URL-encoded text: a proxy
//! URL's user info and the policy documents in IAM's answers (decoding), IAM's form bodies (encoding). The
//! `percent-encoding` crate does the work; this module only fixes which characters are left alone.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// What Python's `quote` leaves alone: letters, digits and `_.-~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Python's `urllib.parse.unquote`: `%XX` escapes decoded as UTF-8 (invalid sequences replaced), `+` kept.
pub(crate) fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Python's `urllib.parse.quote_plus`, appended to `out`: spaces become `+`, every byte but letters, digits and
/// `_.-~` becomes `%XX`.
pub(crate) fn quote_plus(text: &str, out: &mut String) {
    for (i, piece) in text.split(' ').enumerate() {
        if i > 0 {
            out.push('+');
        }
        out.extend(percent_encoding::utf8_percent_encode(piece, UNRESERVED));
    }
}
