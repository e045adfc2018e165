//! Expression language benchmarks: parsing, (partial) evaluation and
//! template rendering.
//!
//! Run with `cargo bench -p testkube-core --bench expr`. The corpus is the
//! kind of expressions workflows hold: conditions, image tags, matrix
//! values, list helpers; throughput is reported per byte of source (parse)
//! or per expression (evaluate).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use testkube_core::expr::{EmptyContext, Expr, MapContext, Template};

const CORPUS: &[&str] = &[
    "passed && config.enabled",
    "config.workers > 1 || config.force",
    "matrix.browser == 'firefox' ? 'ff' : matrix.browser",
    "shellquote(config.args...)",
    "join(map(config.files, \"'--spec=' + _.value\"), ' ')",
    "len(services.db) * config.workers + index",
    "filter(range(10), \"_.value % 2 == 0\")",
    "services.db.*.ip",
    "int(config.timeout) * 1000 / count",
    "trim(split(config.list, ',').0) + '-' + execution.id",
    "env.HOME + '/.cache/' + workflow.name",
    "{\"a\": [1, 2, {\"b\": \"c\"}], \"d\": config.workers}.a.2.b",
];

fn context() -> MapContext {
    MapContext::new()
        .with(
            "config",
            json!({"enabled": true, "workers": 4, "force": false, "args": ["a b", "c"],
                   "files": ["a.js", "b.js"], "timeout": "30", "list": "x, y,z"}),
        )
        .with("matrix", json!({"browser": "chrome"}))
        .with(
            "services",
            json!({"db": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}),
        )
        .with("index", json!(2))
        .with("count", json!(4))
        .with("execution", json!({"id": "abc123"}))
}

fn expr_benches(c: &mut Criterion) {
    let bytes: usize = CORPUS.iter().map(|s| s.len()).sum();
    let parsed: Vec<Expr> = CORPUS.iter().map(|s| Expr::parse(s).unwrap()).collect();
    let ctx = context();

    let mut group = c.benchmark_group("expr");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for source in CORPUS {
                black_box(Expr::parse(black_box(source)).unwrap());
            }
        })
    });
    group.throughput(Throughput::Elements(parsed.len() as u64));
    group.bench_function("evaluate-full", |b| {
        b.iter(|| {
            for e in &parsed {
                black_box(e.evaluate(&ctx).unwrap());
            }
        })
    });
    group.bench_function("evaluate-partial-empty", |b| {
        b.iter(|| {
            for e in &parsed {
                black_box(e.evaluate(&EmptyContext).unwrap());
            }
        })
    });
    group.bench_function("display", |b| {
        b.iter(|| {
            for e in &parsed {
                black_box(e.to_string());
            }
        })
    });
    group.finish();

    let source = "docker run --rm -e WORKERS={{ config.workers }} {{ shellquote(config.args...) }} \
                  node:{{ matrix.browser }}-{{ index + 1 }}/{{ count }} {{ env.HOME }}";
    let template = Template::parse(source).unwrap();
    let mut group = c.benchmark_group("template");
    group.throughput(Throughput::Bytes(source.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(Template::parse(black_box(source)).unwrap()))
    });
    group.bench_function("evaluate", |b| {
        b.iter(|| black_box(template.evaluate(&ctx).unwrap()))
    });
    group.finish();

    let big = format!(
        "[{}]",
        (0..10_000)
            .map(|i| format!("config.workers * {i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut group = c.benchmark_group("large");
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("parse-10k-items", |b| {
        b.iter(|| black_box(Expr::parse(black_box(&big)).unwrap()))
    });
    let big_expr = Expr::parse(&big).unwrap();
    group.bench_function("evaluate-10k-items", |b| {
        b.iter(|| black_box(big_expr.evaluate(&ctx).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, expr_benches);
criterion_main!(benches);
