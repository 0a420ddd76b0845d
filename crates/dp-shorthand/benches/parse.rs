//! Criterion benchmark: parsing 1, 1,000 and 10,000 `--fields` items `key=k{i},stringValue=v{i}`, each item one
//! argument as the CLI passes them. `benches/python_shorthand.py` times the reference parser on the same inputs.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

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
criterion_main!(benches);
