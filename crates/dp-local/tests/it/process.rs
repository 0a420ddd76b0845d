//! The dp-local binary as a child process that is always killed, also when a test fails.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `dp-local`; dropping it kills it (SIGKILL) and reaps it.
pub struct DpLocal {
    child: Option<Child>,
    pub url: String,
}

impl DpLocal {
    /// Starts `dp-local ARGS` and waits for the URL on its first line of stdout.
    pub fn start(args: &[&str]) -> Result<DpLocal, String> {
        Self::start_logging(args, Stdio::inherit())
    }

    /// Like [`DpLocal::start`], with its stderr (dp-local's log) going to `stderr`.
    pub fn start_logging(args: &[&str], stderr: impl Into<Stdio>) -> Result<DpLocal, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
            .args(args)
            // A test process killed before its destructors run (a signal, a timeout) leaves no dp-local behind.
            .arg("--exit-with-parent")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start dp-local: {e}"))?;
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        if read.is_err() || line.is_empty() {
            let status = child.wait().map_err(|e| e.to_string())?;
            return Err(format!(
                "dp-local exited ({:?}) without a URL (its message is on stderr)",
                status.code()
            ));
        }
        Ok(DpLocal {
            child: Some(child),
            url: line.trim_end().to_string(),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DpLocal {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `dp-local ARGS` to completion (commands that fail at start, export, import), killing it after 60 s.
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::{Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dp-local starts");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let stderr = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut guard = DpLocal {
        child: Some(child),
        url: String::new(),
    };
    let child = guard.child.as_mut().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        let _ = input.write_all(bytes);
    }
    drop(input);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dp-local {args:?} did not end within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    guard.child = None;
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
