//! The `dp-local` binary: URL on the first line of stdout, arguments, and serving until killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::pgmode::ChildState;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_its_url_first_and_serves() {
    let state = ChildState::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .args(state.args(&["--port", "0", "--time-scale", "50", "--no-auth"]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("dp-local starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim_end().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:")
            && url["http://127.0.0.1:".len()..].parse::<u16>().is_ok(),
        "{line:?}"
    );
    let client = Client::new(&url);
    let unsigned = client
        .call_with("ListPipelines", b"{}".to_vec(), Signing::None)
        .await;
    assert_eq!(
        unsigned,
        Ok(json!({"pipelineIdList": [], "hasMoreResults": false})),
        "--no-auth accepts unsigned requests"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn rejects_bad_arguments() {
    for (args, message) in [
        (vec!["--port", "x"], "--port expects a number"),
        (
            vec!["--time-scale", "0"],
            "--time-scale expects a positive number",
        ),
        (
            vec!["--credentials", "/nonexistent/creds"],
            "cannot read credentials file",
        ),
        (vec!["--frobnicate"], "unknown argument"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dp-local"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        help.status.success()
            && String::from_utf8_lossy(&help.stdout).starts_with("usage: dp-local")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_flag_replaces_the_example_keys() {
    let file = std::env::temp_dir().join(format!("dp-local-creds-{}", std::process::id()));
    std::fs::write(
        &file,
        "[ci]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = fileSecret\n",
    )
    .unwrap();
    let state = ChildState::new();
    let file_arg = file.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .args(state.args(&["--port", "0", "--credentials", file_arg]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("dp-local starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let client = Client::new(line.trim_end());
    let now = std::time::SystemTime::now();
    let from_file = Signing::Keys {
        access_key_id: "AKIDFROMFILE".into(),
        secret: "fileSecret".into(),
        time: now,
    };
    let listed = client
        .call_with("ListPipelines", b"{}".to_vec(), from_file)
        .await;
    assert!(
        listed.is_ok(),
        "keys from the file are accepted: {listed:?}"
    );
    let example = client
        .call_with("ListPipelines", b"{}".to_vec(), Signing::example())
        .await
        .unwrap_err();
    assert_eq!(
        example.code, "UnrecognizedClientException",
        "the example pair is no longer accepted"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn version_names_the_version_and_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let commit = text
        .trim()
        .strip_prefix(concat!("dp-local ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_commit(commit);
}

/// A full commit id that exists in this repository when the tests run from a git checkout (and `DP_BUILD_COMMIT`
/// does not name one), `unknown` only without git.
fn assert_commit(commit: &str) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let id = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if git(&["rev-parse", "--git-dir"]) && std::env::var_os("DP_BUILD_COMMIT").is_none() {
        assert!(id, "not a commit id in a git checkout: {commit:?}");
        assert!(
            git(&["cat-file", "-e", &format!("{commit}^{{commit}}")]),
            "{commit} is not a commit of this repository"
        );
    } else {
        assert!(commit == "unknown" || id, "{commit:?}");
    }
}

/// `--exit-with-parent`: a dp-local whose parent is killed (SIGKILL, so nothing of the parent's runs) stops by
/// itself.
#[test]
fn exit_with_parent_stops_when_the_parent_is_killed() {
    let out = std::env::temp_dir().join(format!("dp-local-orphan-{}.out", std::process::id()));
    let mut parent = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" --exit-with-parent --no-console --resources off > "$1" & echo $!; exec sleep 60"#)
        .arg(env!("CARGO_BIN_EXE_dp-local"))
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh");
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line.trim().parse().expect("the pid sh printed");
    // Gone, or a zombie nobody has reaped yet.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    // Serving (its URL printed) before its parent goes.
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&out).is_ok_and(|t| t.starts_with("http://")) {
        assert!(alive(), "dp-local ended on its own");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dp-local never printed its URL"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    parent.kill().unwrap();
    parent.wait().unwrap();
    let start = std::time::Instant::now();
    while alive() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "dp-local {pid} still runs 10 s after its parent was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&out);
}
