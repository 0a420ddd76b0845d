//! Error messages as the user reads them: the reference wording, then the input with a caret line under the
//! offending character.

use dp_shorthand::{ErrorKind, parse};

#[track_caller]
fn check(input: &str, expected: &str) {
    let err = parse(input).expect_err(input);
    assert_eq!(err.to_string(), expected, "message for {input:?}");
}

#[test]
fn messages() {
    check("a==b", "Expected: ',', received: '=' for input:\na==b\n  ^");
    check("a", "Expected: '=', received: 'EOF' for input:\na\n ^");
    check(
        "key=a,stringValue=b,",
        "Expected: '<second>', received: '<none>' for input:\nkey=a,stringValue=b,\n                    ^",
    );
    check(
        "a='x",
        "Expected: '<singled quoted>', received: '<none>' for input:\na='x\n  ^",
    );
    check(
        "a=\"x",
        "Expected: '<double quoted>', received: '<none>' for input:\na=\"x\n  ^",
    );
    check(
        "foo=bar,\nbar==baz",
        "Expected: ',', received: '=' for input:\nfoo=bar,\nbar==baz\n    ^",
    );
    check(
        "foo==bar,\nbar=baz",
        "Expected: ',', received: '=' for input:\nfoo==bar,\n    ^\nbar=baz",
    );
    // Columns count code points, not bytes.
    check("é=b", "Expected: '=', received: 'é' for input:\né=b\n^");
    check(
        "a=ü😀",
        "Expected: ',', received: '😀' for input:\na=ü😀\n   ^",
    );
    check(
        "key=a,key=b",
        "Second instance of key \"key\" encountered for input:\nkey=a,key=b\n      ^\nThis is often because there is a \
         preceding \",\" instead of a space.",
    );
}

#[test]
fn kind_and_offset_are_public() {
    let err = parse("a=[b").unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Syntax {
            expected: ",".into(),
            received: "EOF".into()
        }
    );
    assert_eq!(err.offset(), 4);
    assert_eq!(err.input(), "a=[b");
    assert_eq!(err.location(), "a=[b\n    ^");
    let err = parse("a=b,a=c").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::DuplicateKey { key: "a".into() });
    assert_eq!(err.offset(), 4);
}
