//! The command line as a user meets it: clap's own consistency check, exit codes and error output, run through
//! the real `dp` binary. Nothing here reaches a network: every case fails or finishes before a request.

use std::process::Command;

#[test]
fn clap_command_is_consistent() {
    dp_cli::cli::command().debug_assert();
}

/// Runs dp with no credentials and no config, so that anything that would need them fails loudly.
fn dp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dp"))
        .args(args)
        .env_clear()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn check(name: &str, args: &[&str], code: i32) {
    let (rc, stdout, stderr) = dp(args);
    assert_eq!(rc, code, "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
    crate::snapshot::check(
        &format!("cli-{name}"),
        &format!(
            "$ dp {}\n--- rc {rc}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            args.join(" ")
        ),
    );
}

#[test]
fn exit_codes_and_messages() {
    check(
        "skeleton-needs-nothing",
        &["report-task-progress", "--generate-cli-skeleton"],
        0,
    );
    check(
        "yaml-skeleton",
        &["set-task-status", "--generate-cli-skeleton", "yaml-input"],
        0,
    );
    check("missing-required", &["report-task-progress"], 252);
    check(
        "unknown-option",
        &["report-task-progress", "--task-id", "t", "--bogus", "x"],
        252,
    );
    check("typo-command", &["report-task-progresss"], 252);
    check("no-command", &[], 252);
    check(
        "shorthand-caret",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "key=a,stringValue=b,",
        ],
        252,
    );
    check(
        "shorthand-multiline",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "key=a,\nstringValue==b",
        ],
        252,
    );
    check(
        "shorthand-duplicate",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "key=a,key=b",
        ],
        252,
    );
    check(
        "shorthand-suggestion",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "key=a,stringvalue=b",
        ],
        252,
    );
    check(
        "enum",
        &["set-task-status", "--task-id", "t", "--task-status", "DONE"],
        252,
    );
    check(
        "too-long",
        &["report-task-progress", "--task-id", &"x".repeat(2049)],
        252,
    );
    check(
        "bad-json",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "[{\"key\": \"a\",}]",
        ],
        252,
    );
    check(
        "bad-cli-input",
        &[
            "report-task-progress",
            "--cli-input-json",
            "{\"taskId\": \"x\",}",
        ],
        252,
    );
    check(
        "bad-query",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--query",
            "foo[",
            "--generate-cli-skeleton",
            "output",
        ],
        252,
    );
    check(
        "no-paginate-conflict",
        &["list-pipelines", "--no-paginate", "--max-items", "1"],
        252,
    );
    check(
        "definition-missing-objects",
        &[
            "put-pipeline-definition",
            "--pipeline-id",
            "p",
            "--pipeline-definition",
            "{}",
        ],
        252,
    );
    check(
        "list-runs-bad-status",
        &["list-runs", "--pipeline-id", "p", "--status", "bogus"],
        252,
    );
    check(
        "no-credentials",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--region",
            "us-east-1",
        ],
        253,
    );
    check(
        "no-region",
        &["report-task-progress", "--task-id", "t"],
        253,
    );
    check(
        "cli-input-yaml-invalid",
        &[
            "report-task-progress",
            "--cli-input-yaml",
            "taskId: ''",
            "--generate-cli-skeleton",
            "output",
        ],
        252,
    );
    check(
        "cli-input-yaml-not-a-map",
        &[
            "report-task-progress",
            "--cli-input-yaml",
            "- a",
            "--generate-cli-skeleton",
            "output",
        ],
        252,
    );
    check(
        "cli-input-yaml-ok",
        &[
            "report-task-progress",
            "--cli-input-yaml",
            "taskId: t\nfields:\n- key: a\n  stringValue: b",
            "--generate-cli-skeleton",
            "output",
        ],
        0,
    );
}

#[test]
fn yaml_output_of_a_sample() {
    let (rc, stdout, _) = dp(&[
        "poll-for-task",
        "--worker-group",
        "w",
        "--generate-cli-skeleton",
        "output",
        "--output",
        "yaml",
    ]);
    assert_eq!(rc, 0);
    crate::snapshot::check("yaml-poll-for-task-sample", &stdout);
}

#[test]
fn completion_scripts_name_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (rc, stdout, stderr) = dp(&["completion", shell]);
        assert_eq!(rc, 0, "{shell}: {stderr}");
        for op in dp_model::operations() {
            assert!(
                stdout.contains(op.cli_name),
                "{shell} completion lacks {}",
                op.cli_name
            );
        }
        assert!(
            stdout.contains("list-runs"),
            "{shell} completion lacks list-runs"
        );
    }
}

/// Off EC2, the metadata address answers with an error; the chain then ends in "no credentials", as in botocore.
/// The metadata endpoint is pointed at a loopback server that refuses everything, so nothing leaves the machine.
#[test]
fn failing_instance_metadata_means_no_credentials() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_dp"))
        .args([
            "report-task-progress",
            "--task-id",
            "t",
            "--region",
            "us-east-1",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ])
        .env_clear()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(253), "{stderr}");
    assert_eq!(
        stderr,
        "\nUnable to locate credentials. You can configure credentials by running \"aws configure\".\n"
    );
}

#[test]
fn hints_follow_the_reference_messages() {
    check(
        "hint-leading-space",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            " key=a",
        ],
        252,
    );
    check(
        "hint-emoji",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "key=😀",
        ],
        252,
    );
    check(
        "hint-empty-before-brace",
        &[
            "validate-pipeline-definition",
            "--pipeline-id",
            "p",
            "--pipeline-objects",
            "id=a,name=a,fields=[{key=}]",
        ],
        252,
    );
    check(
        "hint-trailing-space",
        &[
            "validate-pipeline-definition",
            "--pipeline-id",
            "p",
            "--pipeline-objects",
            "id=a,name=a,fields=[] ",
        ],
        252,
    );
    check(
        "hint-comma-list",
        &[
            "report-task-progress",
            "--task-id",
            "t",
            "--fields",
            "key=a,stringValue=b,c",
        ],
        252,
    );
}

/// `--version` names the version, the platform and the commit the binary was built from: a full commit id that
/// exists in this repository when the tests run from a git checkout, `unknown` only without git.
#[test]
fn version_names_the_commit() {
    let (rc, stdout, stderr) = dp(&["--version"]);
    assert_eq!(rc, 0, "{stderr}");
    let expected_prefix = format!(
        "dp/{} (aws-cli datapipeline compatible) {}/{} commit/",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let commit = stdout
        .strip_prefix(&expected_prefix)
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected version line {stdout:?}"));
    let in_git = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git && std::env::var_os("DP_BUILD_COMMIT").is_none() {
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a commit id: {commit:?}"
        );
        let known = Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(
            known.success(),
            "{commit} is not a commit of this repository"
        );
    } else {
        assert!(
            !commit.is_empty() && !commit.contains(char::is_whitespace),
            "{commit:?}"
        );
    }
}

#[test]
fn list_runs_help_page() {
    check("list-runs-help", &["list-runs", "help"], 0);
}
