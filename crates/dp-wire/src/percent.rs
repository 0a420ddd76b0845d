//! Percent-decoding as Python's `urllib` does it, for the two places dp-wire reads URL-encoded text: a proxy URL's
//! user info and the policy documents in IAM's answers.

/// Python's `urllib.parse.unquote`: `%XX` escapes decoded as UTF-8 (invalid sequences replaced), `+` kept.
pub(crate) fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
