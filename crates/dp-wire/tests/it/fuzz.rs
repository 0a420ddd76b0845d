//! No input makes the response parsers panic, and a 2xx body is accepted only when it is a JSON object.

use dp_wire::protocol::{decode_output, parse_error_parts, sanitize_error_code};
use http::StatusCode;
use proptest::prelude::*;

fn json_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[\\{\\}\\[\\]\":,a-z0-9_#.\\- ]{0,80}".prop_map(String::into_bytes),
        ("[a-zA-Z#:._]{0,30}", "[ -~]{0,30}").prop_map(|(code, message)| {
            serde_json::json!({"__type": code, "message": message})
                .to_string()
                .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(body in json_like(), status in 100u16..600, header in proptest::option::of("[ -~]{0,40}")) {
        let status = StatusCode::from_u16(status).unwrap();
        let error = parse_error_parts(status, header.as_deref(), &body, None);
        prop_assert!(!error.code.contains(':') && !error.code.contains('#'), "sanitized: {:?}", error.code);
        match decode_output(&body) {
            Ok(value) => prop_assert!(value.is_object()),
            Err(e) => prop_assert_eq!(e.kind(), &dp_wire::ErrorKind::InvalidResponse),
        }
        let _ = sanitize_error_code(&String::from_utf8_lossy(&body));
    }
}
