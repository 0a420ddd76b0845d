//! Ctrl-C during a call: `dp` stops waiting and exits 130 (128 + SIGINT), as CLI v2 does, with a newline on stdout
//! and nothing on stderr. The server here accepts the request and never answers, so dp is certainly waiting on it
//! when the signal arrives. dp is started through coreutils' `env --default-signal=INT`, because a dp that inherits
//! SIGINT ignored (a test run in a background job) rightly keeps ignoring it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigint_while_waiting_for_an_answer_exits_130() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut child = Command::new("env")
        .args(["--default-signal=INT", env!("CARGO_BIN_EXE_dp")])
        .args(["list-pipelines", "--endpoint-url", &endpoint])
        .env_clear()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the whole request head: once it has arrived, dp is waiting for the answer that never comes.
    let (connection, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(&connection);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "dp closed the connection before sending its request"
        );
        if line == "\r\n" {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // A guard against a dp that ignores the signal, not a timing assertion: dp's own read timeout is 60 s.
    let deadline = Instant::now() + Duration::from_secs(50);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("dp did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    drop(connection);
}
