//! A scripted loopback HTTP server that records what clients send, and runners for `dp` and `aws`.
//!
//! The server is deliberately independent of dp's crates: it parses HTTP/1.1 by hand, answers from a script and
//! verifies SigV4 signatures with its own HMAC code, so that a bug in dp-wire cannot hide itself here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn target(&self) -> &str {
        self.header("x-amz-target").unwrap_or_default()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Recomputes the SigV4 signature of a Data Pipeline request with the test secret; `Err` says which part is
    /// wrong.
    pub fn verify_signature(&self) -> Result<(), String> {
        self.verify_signature_for("datapipeline")
    }

    /// The credential scope's region of a signed request.
    pub fn signing_region(&self) -> Option<&str> {
        self.header("authorization")?
            .split("Credential=")
            .nth(1)?
            .split('/')
            .nth(2)
    }

    /// Recomputes the SigV4 signature of a request to `service` (`datapipeline`, `iam`) with the test secret.
    /// awsJson requests must sign `X-Amz-Target`; awsQuery requests have none.
    pub fn verify_signature_for(&self, service: &str) -> Result<(), String> {
        let auth = self
            .header("authorization")
            .ok_or("no Authorization header")?;
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or("not AWS4-HMAC-SHA256")?;
        let mut credential = "";
        let mut signed = "";
        let mut signature = "";
        for part in rest.split(", ") {
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = v;
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = v;
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = v;
            }
        }
        let scope: Vec<&str> = credential.split('/').collect();
        if scope.len() != 5
            || scope[0] != ACCESS_KEY
            || scope[3] != service
            || scope[4] != "aws4_request"
        {
            return Err(format!("bad credential scope {credential}"));
        }
        let date = self.header("x-amz-date").ok_or("no X-Amz-Date")?;
        let mut canonical_headers = String::new();
        for name in signed.split(';') {
            let values: Vec<String> = self
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            if values.is_empty() {
                return Err(format!("signed header {name} missing"));
            }
            canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        for required in ["host", "x-amz-date", "x-amz-target", "content-type"] {
            if required == "x-amz-target"
                && self.header(required).is_none()
                && service != "datapipeline"
            {
                continue;
            }
            if !signed.split(';').any(|h| h == required) {
                return Err(format!("{required} is not signed"));
            }
        }
        let canonical = format!(
            "{}\n{}\n\n{}\n{}\n{}",
            self.method,
            self.path,
            canonical_headers,
            signed,
            hex::encode(Sha256::digest(&self.body))
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{}/{}/{service}/aws4_request\n{}",
            scope[1],
            scope[2],
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mac = |key: &[u8], data: &str| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        };
        let k = mac(format!("AWS4{SECRET_KEY}").as_bytes(), scope[1]);
        let k = mac(&k, scope[2]);
        let k = mac(&k, service);
        let k = mac(&k, "aws4_request");
        let expected = hex::encode(mac(&k, &string_to_sign));
        if expected == signature {
            Ok(())
        } else {
            Err(format!(
                "signature mismatch for canonical request:\n{canonical}"
            ))
        }
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn ok(body: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![],
            body: body.into(),
        }
    }
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: serde_json::json!({"__type": code, "message": message}).to_string(),
        }
    }
}

type Script = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

/// The loopback server. Requests are answered by `script(request, index)`.
pub struct Server {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    pub fn start(script: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let script: Script = Arc::new(script);
        let recs = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let recs = recs.clone();
                let script = script.clone();
                thread::spawn(move || serve(stream, &recs, &script));
            }
        });
        Server { url, requests }
    }

    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn serve(stream: TcpStream, recs: &Mutex<Vec<Recorded>>, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let rec = Recorded {
            method,
            path,
            headers,
            body,
        };
        let index = {
            let mut r = recs.lock().unwrap();
            r.push(rec.clone());
            r.len() - 1
        };
        let reply = script(&rec, index);
        let reason = match reply.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Other",
        };
        // A reply that names its own Content-Type (IAM's XML) replaces the JSON one.
        let content_type = if reply
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            String::new()
        } else {
            "Content-Type: application/x-amz-json-1.1\r\n".to_string()
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\n{content_type}Content-Length: {}\r\nx-amzn-RequestId: 00000000-0000-4000-8000-000000000000\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(reply.body.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

/// What a client run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Builds the workspace's binaries once per test run, so that `cargo test -p dp-tests` never runs a stale `dp`
/// (cargo builds a package's binaries only for that package's own tests).
fn build_binaries() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "dp-cli",
                "-p",
                "dp-local",
                "-p",
                "dp-runner",
            ])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("running cargo build");
        assert!(
            status.success(),
            "building dp, dp-local and dp-task-runner failed"
        );
    });
}

/// Path of a binary built in this workspace (`dp`, `dp-local`).
pub fn workspace_bin(name: &str) -> PathBuf {
    build_binaries();
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build -p dp-cli -p dp-local` (cargo test --workspace builds it)",
        path.display()
    );
    path
}

fn client_env(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_RETRY_MODE", "standard")
        .env("AWS_MAX_ATTEMPTS", "3")
        .env("AWS_PAGER", "")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    if let Ok(p) = std::env::var("PYTHONPATH") {
        cmd.env("PYTHONPATH", p);
    }
}

/// Runs `aws datapipeline ARGS --endpoint-url URL`.
pub fn aws(url: &str, args: &[&str], dir: &std::path::Path) -> Run {
    aws_with_env(url, args, dir, &[])
}

/// Runs `dp ARGS --endpoint-url URL`.
pub fn dp(url: &str, args: &[&str], dir: &std::path::Path) -> Run {
    dp_with_env(url, args, dir, &[])
}

/// Environment changes for one run: `(name, Some(value))` sets, `(name, None)` removes.
pub type EnvChanges<'a> = &'a [(&'a str, Option<&'a str>)];

fn apply_env(cmd: &mut Command, changes: EnvChanges<'_>) {
    for (name, value) in changes {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
}

/// [`aws`] with environment changes; an empty `url` gives no `--endpoint-url`.
pub fn aws_with_env(url: &str, args: &[&str], dir: &std::path::Path, env: EnvChanges<'_>) -> Run {
    let mut cmd = Command::new("aws");
    cmd.arg("datapipeline").args(args).current_dir(dir);
    if !url.is_empty() {
        cmd.args(["--endpoint-url", url]);
    }
    client_env(&mut cmd);
    apply_env(&mut cmd, env);
    finish(cmd.output().expect("the AWS CLI must be installed"))
}

/// [`dp`] with environment changes; an empty `url` gives no `--endpoint-url`.
pub fn dp_with_env(url: &str, args: &[&str], dir: &std::path::Path, env: EnvChanges<'_>) -> Run {
    let mut cmd = Command::new(workspace_bin("dp"));
    cmd.args(args).current_dir(dir);
    if !url.is_empty() {
        cmd.args(["--endpoint-url", url]);
    }
    client_env(&mut cmd);
    apply_env(&mut cmd, env);
    finish(cmd.output().unwrap())
}
