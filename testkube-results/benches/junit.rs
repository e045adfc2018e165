//! Throughput of JUnit parsing on a generated ~50 MB report, beside a raw quick-xml event scan
//! of the same bytes (the ceiling any quick-xml based reader can reach).
//!
//! ```text
//! cargo bench -p testkube-results --bench junit
//! ```
//!
//! The report comes from `support/junit_report.rs`; `cargo run --release -p testkube-results
//! --example generate_junit -- FILE` writes the same bytes to a file.

use std::hint::black_box;
use std::io::BufReader;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quick_xml::Reader;
use quick_xml::events::Event;

#[path = "support/junit_report.rs"]
mod junit_report;

use junit_report::generate_report;

/// Reads every event and does nothing with it: the ceiling for a quick-xml based reader.
fn raw_scan(bytes: &[u8]) -> usize {
    let mut reader = Reader::from_reader(bytes);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(event) => {
                black_box(&event);
                events += 1;
            }
            Err(_) => break,
        }
    }
    events
}

/// The same scan through a `BufReader` into one reused buffer (`read_event_into`): the ceiling
/// for `parse_reader`, which reads that way (every event is copied into the buffer).
fn raw_scan_buffered(bytes: &[u8]) -> usize {
    let mut reader = Reader::from_reader(BufReader::with_capacity(64 * 1024, bytes));
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut events = 0usize;
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Eof) => break,
            Ok(event) => {
                black_box(&event);
                events += 1;
            }
            Err(_) => break,
        }
    }
    events
}

fn bench_junit(c: &mut Criterion) {
    let report = generate_report(50 * 1024 * 1024);
    let parsed = testkube_results::parse_report(&report, "bench.xml");
    let cases = parsed.as_ref().map_or(0, |r| r.cases.len());
    assert!(
        cases > 10_000,
        "generated report did not parse: {:?}",
        parsed.err()
    );
    eprintln!(
        "generated report: {:.1} MB, {cases} cases, {} raw events",
        report.len() as f64 / 1e6,
        raw_scan(&report)
    );

    let mut group = c.benchmark_group("junit_50mb");
    group.throughput(Throughput::Bytes(report.len() as u64));
    group.sample_size(10);
    group.bench_function("raw_quick_xml_scan", |b| {
        b.iter(|| raw_scan(black_box(&report)))
    });
    group.bench_function("raw_quick_xml_scan_bufreader", |b| {
        b.iter(|| raw_scan_buffered(black_box(&report)))
    });
    // The parses include dropping the report (criterion's `iter` drops each output inside the
    // timed loop), as a program that reads a report and exits pays for it too.
    group.bench_function("parse_report", |b| {
        b.iter(|| testkube_results::parse_report(black_box(&report), "bench.xml"))
    });
    group.bench_function("parse_reader_bufreader", |b| {
        b.iter(|| {
            testkube_results::parse_reader(
                BufReader::with_capacity(64 * 1024, black_box(&report[..])),
                "bench.xml",
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_junit);
criterion_main!(benches);
