//! `@=`: `file://` gives the file's text, `fileb://` its bytes; a plain `=` never loads; the flag follows the
//! reference's one-flag semantics (the last key read decides, at whatever nesting level).

use dp_shorthand::{
    FileContents, FileKind, FileRef, Value, load_file, parse, parse_with_files, read_file,
};

use crate::support::{outcome, tree};

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("dp-shorthand-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("val.txt"), "from-file\n").unwrap();
    std::fs::write(dir.join("crlf.txt"), "a\r\nb\r").unwrap();
    std::fs::write(dir.join("bin.dat"), [0xff, 0x00, b'x']).unwrap();
    Dir(dir)
}

#[track_caller]
fn check(dir: &Dir, input: &str, expected: &str) {
    let input = input.replace("$D", dir.0.to_str().unwrap());
    let expected = expected.replace("$D", dir.0.to_str().unwrap());
    let got = outcome(&parse_with_files(&input, &mut load_file));
    assert_eq!(got, expected, "input {input:?}");
}

#[test]
fn loads_files_after_at_equals() {
    let d = temp_dir("load");
    check(&d, "a@=file://$D/val.txt", r#"{"a":"from-file\n"}"#);
    check(&d, "a@=fileb://$D/val.txt", r#"{"a":b"from-file\n"}"#);
    check(&d, "a=file://$D/val.txt", r#"{"a":"file://$D/val.txt"}"#);
    check(&d, "a@=literal", r#"{"a":"literal"}"#);
    check(
        &d,
        "a@=[file://$D/val.txt,x]",
        r#"{"a":["from-file\n","x"]}"#,
    );
    check(
        &d,
        "a@=x,'file://$D/val.txt'",
        r#"{"a":["x","from-file\n"]}"#,
    );
    check(
        &d,
        "a={b@=file://$D/val.txt}",
        r#"{"a":{"b":"from-file\n"}}"#,
    );
    check(&d, "a@=file://$D/crlf.txt", r#"{"a":"a\nb\n"}"#);
    check(&d, "a@=fileb://$D/bin.dat", "{\"a\":b\"\u{fffd}\\u0000x\"}");
    // One flag for the whole parse: a nested key without `@` switches loading off for the rest of the outer list,
    // and a nested key with `@` switches it on.
    check(
        &d,
        "a@=[{b=c},file://$D/val.txt]",
        r#"{"a":[{"b":"c"},"file://$D/val.txt"]}"#,
    );
    check(
        &d,
        "a=[{b@=c},file://$D/val.txt]",
        r#"{"a":[{"b":"c"},"from-file\n"]}"#,
    );
}

#[test]
fn load_errors_use_the_reference_wording() {
    let d = temp_dir("errors");
    check(
        &d,
        "a@=file://$D/missing.txt",
        "file Unable to load paramfile file://$D/missing.txt: [Errno 2] No such file or directory: '$D/missing.txt'",
    );
    check(
        &d,
        "a@=file://$D/bin.dat",
        "file Unable to load paramfile ($D/bin.dat), text contents could not be decoded.  If this is a binary file, \
         please use the fileb:// prefix instead of the file:// prefix.",
    );
    // The reference reads the file as soon as it parses the value, even one that backtracking then discards
    // (the `=` ends the second value and sends the parser back to the comma).
    check(
        &d,
        "a@=x,file://$D/missing.txt=y",
        "file Unable to load paramfile file://$D/missing.txt: [Errno 2] No such file or directory: '$D/missing.txt'",
    );
}

#[test]
fn pure_parse_keeps_references_and_loaders_see_them() {
    assert_eq!(
        tree(&parse("a@=fileb://x").unwrap()),
        r#"{"a":"fileb://x"}"#
    );
    let mut seen = Vec::new();
    let mut loader = |f: &FileRef<'_>| {
        seen.push((f.kind, f.path.to_owned(), f.reference.to_owned()));
        Ok(Value::from("loaded"))
    };
    let value = parse_with_files("a@=[file://p,fileb://q,http://r]", &mut loader).unwrap();
    assert_eq!(tree(&value), r#"{"a":["loaded","loaded","http://r"]}"#);
    assert_eq!(
        seen,
        [
            (FileKind::Text, "p".to_owned(), "file://p".to_owned()),
            (FileKind::Binary, "q".to_owned(), "fileb://q".to_owned())
        ]
    );
}

/// The reader that dp-cli uses for whole option values: the same expansion, newline handling and wording.
#[test]
fn read_file_expands_the_path_and_quotes_it_expanded() {
    let d = temp_dir("read");
    let dir = d.0.to_str().unwrap();
    let home = std::env::var("HOME").expect("HOME is set where tests run");
    let read = |value: &str| read_file(&FileRef::from_value(value).expect("a file reference"));
    assert_eq!(
        read(&format!("file://{dir}/crlf.txt")),
        Ok(FileContents::Text("a\nb\n".into()))
    );
    assert_eq!(
        read(&format!("fileb://{dir}/crlf.txt")),
        Ok(FileContents::Bytes(b"a\r\nb\r".to_vec()))
    );
    for (value, path) in [
        (
            "file://~/dp-surely-missing.txt",
            format!("{home}/dp-surely-missing.txt"),
        ),
        (
            "file://$HOME/dp-surely-missing.txt",
            format!("{home}/dp-surely-missing.txt"),
        ),
        (
            "file://${HOME}/dp-surely-missing.txt",
            format!("{home}/dp-surely-missing.txt"),
        ),
        (
            "fileb://$DP_SURELY_UNSET/x",
            "$DP_SURELY_UNSET/x".to_owned(),
        ),
    ] {
        assert_eq!(
            read(value),
            Err(format!(
                "Unable to load paramfile {value}: [Errno 2] No such file or directory: '{path}'"
            )),
            "{value}"
        );
    }
    assert_eq!(
        read(&format!("file://{dir}")),
        Err(format!(
            "Unable to load paramfile file://{dir}: [Errno 21] Is a directory: '{dir}'"
        ))
    );
}
