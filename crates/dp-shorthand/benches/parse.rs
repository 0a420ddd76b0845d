//! Criterion benchmark: parsing 1, 1,000 and 10,000 `--fields` items `key=k{i},stringValue=v{i}`, each item one
//! argument as the CLI passes them, with and without typing against the model.
//!
//! After the criterion groups, the same run times the reference parser on the same inputs
//! (`benches/python_shorthand.py --json`) and prints a table of items per second at the median with the ratio; the
//! Rust side of that table is timed here the same way as the Python side (median of repeated runs). Skipped when
//! criterion runs in test mode (`cargo test --benches`) or python3 with awscli is missing.

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};

fn items(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("key=k{i},stringValue=v{i}"))
        .collect()
}

fn parse_items(c: &mut Criterion) {
    let mut group = c.benchmark_group("shorthand_parse");
    for n in [1usize, 1_000, 10_000] {
        let args = items(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &args, |b, args| {
            b.iter(|| {
                let parsed: Vec<_> = args
                    .iter()
                    .map(|a| dp_shorthand::parse(a).expect("valid item"))
                    .collect();
                std::hint::black_box(parsed)
            })
        });
    }
    group.finish();
}

fn parse_and_type_items(c: &mut Criterion) {
    let fields = dp_model::operation("ReportTaskProgress")
        .and_then(|o| o.input)
        .and_then(|s| s.member("fields"));
    let shape = fields.expect("ReportTaskProgress has fields").shape;
    let mut group = c.benchmark_group("shorthand_parse_and_type");
    for n in [1usize, 1_000, 10_000] {
        let args = items(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &args, |b, args| {
            b.iter(|| {
                let list = args
                    .iter()
                    .map(|a| dp_shorthand::parse(a).expect("valid item"))
                    .collect();
                std::hint::black_box(dp_shorthand::to_json(
                    &dp_shorthand::Value::List(list),
                    shape,
                    "fields",
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_items, parse_and_type_items);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        compare_with_python();
    }
}

/// The median wall time of one call of `f`, over `runs` samples of `reps` calls each (so that a sample is long
/// enough for the clock, even for one item).
fn median_time(runs: usize, reps: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed() / reps
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn compare_with_python() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python_shorthand.py");
    let output = match Command::new("python3").arg(script).arg("--json").output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!(
                "python comparison skipped: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("python comparison skipped: python3: {e}");
            return;
        }
    };
    let python: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let shape = dp_model::operation("ReportTaskProgress")
        .and_then(|o| o.input)
        .and_then(|s| s.member("fields"))
        .expect("ReportTaskProgress has fields")
        .shape;
    println!(
        "\nshorthand parser vs awscli.shorthand, items per second at the median of repeated runs"
    );
    println!(
        "{:<16} {:>6} {:>14} {:>14} {:>8}",
        "variant", "items", "dp", "python", "ratio"
    );
    for row in &python {
        let variant = row["variant"].as_str().unwrap_or_default();
        let n = row["items"].as_u64().unwrap_or_default() as usize;
        let python_secs = row["median_s"].as_f64().unwrap_or(f64::NAN);
        let args = items(n);
        let reps = (1_000 / n).max(1) as u32;
        let runs = (200_000 / (n * reps as usize)).clamp(20, 2_000);
        let rust = match variant {
            "parse" => median_time(runs, reps, || {
                let parsed: Vec<_> = args
                    .iter()
                    .map(|a| dp_shorthand::parse(a).expect("valid item"))
                    .collect();
                std::hint::black_box(parsed);
            }),
            _ => median_time(runs, reps, || {
                let list = args
                    .iter()
                    .map(|a| dp_shorthand::parse(a).expect("valid item"))
                    .collect();
                std::hint::black_box(dp_shorthand::to_json(
                    &dp_shorthand::Value::List(list),
                    shape,
                    "fields",
                ))
                .expect("typed");
            }),
        };
        let rust_rate = n as f64 / rust.as_secs_f64();
        let python_rate = n as f64 / python_secs;
        println!(
            "{variant:<16} {n:>6} {rust_rate:>14.0} {python_rate:>14.0} {:>7.1}x",
            rust_rate / python_rate
        );
    }
}
