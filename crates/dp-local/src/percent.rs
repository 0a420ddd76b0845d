//! Percent-encoding for the two places dp-local reads or writes URL-encoded text: SigV4's canonical request
//! (`auth`) and the console's forms and links. The `percent-encoding` crate does the work; this module only fixes
//! the character set both use, so that they cannot drift apart.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986's unreserved characters (letters, digits, `-._~`) stay; every other byte is encoded, as SigV4 asks.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `bytes` with every byte but the unreserved ones written as `%XX` (upper-case hex).
pub(crate) fn encode(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, UNRESERVED).to_string()
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is.
pub(crate) fn decode_bytes(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

/// [`decode_bytes`] read as UTF-8, invalid sequences replaced.
pub(crate) fn decode(text: &str) -> String {
    String::from_utf8_lossy(&decode_bytes(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leaves_bad_escapes() {
        assert_eq!(encode("a b/ü~-._".as_bytes()), "a%20b%2F%C3%BC~-._");
        assert_eq!(decode("a%20b%2F%C3%BC~"), "a b/ü~");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode_bytes("%FF"), vec![0xFF]);
    }
}
