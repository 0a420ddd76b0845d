//! `cargo xtask bench console [INSTANCES]`: the dp-local console's pages, server side and in the browser.
//!
//! Release dp-local at 60 times speed with one pipeline of INSTANCES (default 1,000) finished instances (run by
//! dp-task-runner) and nine small ones. Server: the time from sending `GET` to the last byte of the answer, over 30
//! requests per page on a new connection each (median and worst). Browser: headless Chromium through chromedriver
//! (plain WebDriver over HTTP), the navigation's `loadEventEnd` (the page, its stylesheet and script loaded and
//! laid out), median of 5 loads per page.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::runner::{Killed, drain, release_binaries, start_local, stop, true_pipeline};

/// One HTTP/1.1 exchange on a new connection: `(status, body)`.
fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Read the head, then exactly Content-Length bytes: some servers keep the connection open anyway.
    let mut reader = std::io::BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let mut bytes = Vec::new();
    match length {
        Some(n) => {
            bytes.resize(n, 0);
            reader.read_exact(&mut bytes)?;
        }
        None => {
            reader.read_to_end(&mut bytes)?;
        }
    }
    let body = String::from_utf8_lossy(&bytes).into_owned();
    Ok((status, body))
}

/// A WebDriver session on chromedriver.
struct Browser {
    driver: String,
    session: String,
}

impl Browser {
    fn command(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let (status, text) = http(
            &self.driver,
            method,
            &format!("/session/{}{path}", self.session),
            "",
            &body.to_string(),
        )?;
        if status != 200 {
            bail!("WebDriver {method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str::<Value>(&text)?["value"].clone())
    }

    /// Loads `url` and returns its `loadEventEnd` in milliseconds.
    fn load(&self, url: &str) -> Result<f64> {
        self.command("POST", "/url", json!({"url": url}))?;
        let ms = self.command(
            "POST",
            "/execute/sync",
            json!({"script": "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;", "args": []}),
        )?;
        ms.as_f64().context("no navigation timing")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn run(instances: usize) -> Result<()> {
    let bin = release_binaries()?;
    let work = std::env::temp_dir().join(format!("dp-bench-console-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let (_local, url, console) = start_local(&bin)?;
    let token = console
        .rsplit("token=")
        .next()
        .context("no console token")?
        .to_string();
    let addr = url.trim_start_matches("http://").to_string();

    let big = true_pipeline(&bin, &url, &work, "big", instances, "big")?;
    let (mut runner, _) = drain(&bin, &url, &work, "big", instances)?;
    stop(&mut runner)?;
    for i in 0..9 {
        true_pipeline(&bin, &url, &work, &format!("small{i}"), 1, "nobody")?;
    }

    let pages = [
        ("pipelines page (10 pipelines)", "/console".to_string()),
        (
            "pipeline page (1,000 finished instances)",
            format!("/console/pipeline?id={big}"),
        ),
    ];
    let cookie = format!("Cookie: dp_console={token}\r\n");
    let mut server = Vec::new();
    for (name, path) in &pages {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..30 {
            let start = Instant::now();
            let (status, body) = http(&addr, "GET", path, &cookie, "")?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            if status != 200 {
                bail!("{path}: {status}");
            }
            size = body.len();
        }
        let worst = times.iter().copied().fold(0.0, f64::max);
        server.push((name, median(times), worst, size));
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let driver_process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver (apt-get install chromium chromium-driver)")?;
    let _driver = Killed(driver_process);
    let driver = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while TcpStream::connect(&driver).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("chromedriver did not listen");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = work.join("chromium-profile");
    let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1200", format!("--user-data-dir={}", profile.display())]
    }}}});
    let (status, text) = http(&driver, "POST", "/session", "", &capabilities.to_string())?;
    if status != 200 {
        bail!("no WebDriver session: {text}");
    }
    let session = serde_json::from_str::<Value>(&text)?["value"]["sessionId"]
        .as_str()
        .context("no sessionId")?
        .to_string();
    let browser = Browser { driver, session };
    // The first visit sets the console cookie.
    browser.load(&console)?;
    let mut rendered = Vec::new();
    for (name, path) in &pages {
        let mut times = Vec::new();
        for _ in 0..5 {
            times.push(browser.load(&format!("{url}{path}"))?);
        }
        rendered.push((name, median(times)));
    }
    let _ = browser.command("DELETE", "", json!({}));
    let _ = std::fs::remove_dir_all(&work);

    println!(
        "| page | server: median (worst of 30) | HTML size | browser: load event (median of 5) | targets |"
    );
    println!("|---|---|---|---|---|");
    for ((name, med, worst, size), (_, browser_ms)) in server.iter().zip(&rendered) {
        println!(
            "| {name} | {med:.1} ms ({worst:.1} ms) | {:.0} KB | {browser_ms:.0} ms | server < 50 ms, browser < 1 s |",
            *size as f64 / 1024.0
        );
    }
    Ok(())
}
