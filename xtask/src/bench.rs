//! `cargo xtask bench`: whole-process benchmarks, interleaved in one run so that machine noise hits every
//! contender alike. Figures go to stdout as a Markdown table for `docs/PERFORMANCE.md`.
//!
//! `cli` (the default) times `dp report-task-progress …` against `aws datapipeline` with the same arguments and
//! against a floor (curl: a process plus one loopback request), all answered by a loopback server in this process;
//! it also reads each one's peak RSS with GNU time. `shorthand` and `local` run those crates' criterion benches;
//! `runner` drains a pipeline through dp-local with dp-task-runner (`bench/runner.rs`); `console` times the
//! dp-local console's pages on the server and in headless Chromium (`bench/console.rs`); `copy` times
//! CopyActivity between moto's S3 and PostgreSQL against `psql \copy` and `aws s3 cp` (`bench/copy.rs`).

mod console;
mod copy;
mod resources;
mod runner;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A loopback server that answers every request with `{"canceled": false}`.
fn start_server() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply = "{\"canceled\": false}";
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if writer.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

fn command(program: &str, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(crate::demo::EXAMPLE_ENVIRONMENT)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn time_once(program: &str, args: &[String]) -> Result<Duration> {
    let start = Instant::now();
    let status = command(program, args)
        .status()
        .with_context(|| format!("running {program}"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("{program} {} failed: {status}", args.join(" "));
    }
    Ok(elapsed)
}

fn peak_rss_kib(program: &str, args: &[String]) -> Result<u64> {
    let mut full = vec!["-f".to_string(), "%M".to_string(), program.to_string()];
    full.extend(args.iter().cloned());
    let out = command("/usr/bin/time", &full)
        .stderr(Stdio::piped())
        .output()
        .context("running /usr/bin/time (GNU time)")?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no RSS figure in {text:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn cli(rounds: usize) -> Result<()> {
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "dp-cli"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("release build of dp failed");
    }
    let dp = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), Into::into)
        .join("release/dp")
        .to_string_lossy()
        .into_owned();
    let url = start_server()?;
    let args: Vec<String> = [
        "report-task-progress",
        "--task-id",
        "t-123",
        "--fields",
        "key=a,stringValue=b",
        "key=c,refValue=d",
        "--endpoint-url",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut aws_args = vec!["datapipeline".to_string()];
    aws_args.extend(args.iter().cloned());
    let floor_args: Vec<String> = [
        "-s",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-amz-json-1.1",
        "-d",
        "{}",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // Warm-up: page caches, Python's bytecode cache, the server's threads.
    for _ in 0..2 {
        time_once(&dp, &args)?;
        time_once("aws", &aws_args)?;
        time_once("curl", &floor_args)?;
    }
    let (mut t_dp, mut t_aws, mut t_floor, mut speedup, mut over_floor) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let d = time_once(&dp, &args)?.as_secs_f64();
        let a = time_once("aws", &aws_args)?.as_secs_f64();
        let f = time_once("curl", &floor_args)?.as_secs_f64();
        t_dp.push(d);
        t_aws.push(a);
        t_floor.push(f);
        speedup.push(a / d);
        over_floor.push(d / f);
    }
    let rss_dp = peak_rss_kib(&dp, &args)?;
    let rss_aws = peak_rss_kib("aws", &aws_args)?;
    let rss_floor = peak_rss_kib("curl", &floor_args)?;
    println!("| contender | median wall time | peak RSS |");
    println!("|---|---|---|");
    println!(
        "| dp (release) | {:.2} ms | {} KiB |",
        median(t_dp) * 1e3,
        rss_dp
    );
    println!(
        "| aws datapipeline (v1) | {:.2} ms | {} KiB |",
        median(t_aws) * 1e3,
        rss_aws
    );
    println!(
        "| floor: curl, one loopback POST | {:.2} ms | {} KiB |",
        median(t_floor) * 1e3,
        rss_floor
    );
    println!();
    println!(
        "rounds: {rounds}; median of per-round ratios: aws/dp = {:.1}x (target >= 150), dp/floor = {:.2}x (target <= 3); RSS aws/dp = {:.1}x (target >= 8)",
        median(speedup),
        median(over_floor),
        rss_aws as f64 / rss_dp as f64
    );
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None | Some("cli") => {
            let rounds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
            cli(rounds)
        }
        Some("console") => console::run(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000)),
        Some("runner") => runner::run(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000)),
        Some("copy") => copy::run(args.get(1).map(String::as_str)),
        Some("resources") => resources::run(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some(which @ ("shorthand" | "local" | "wire")) => {
            let package = format!("dp-{which}");
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["bench", "-p", &package])
                .current_dir(crate::project_root())
                .status()?;
            if !status.success() {
                bail!("cargo bench -p {package} failed");
            }
            Ok(())
        }
        Some(other) => {
            bail!(
                "unknown benchmark {other:?}: use cli [ROUNDS], shorthand, wire, local, runner [TASKS], resources [RUNS], copy [SIZE] or console [INSTANCES]"
            )
        }
    }
}
