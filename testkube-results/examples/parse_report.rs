//! Parses report files and prints each one's totals (or, with `--json`, the whole normalized
//! report). With `--stream` the files are read through `parse_reader` instead of loaded first,
//! which is how peak memory is measured:
//!
//! ```text
//! cargo run --release -p testkube-results --example parse_report -- --stream big.xml
//! ```
//!
//! `--raw-scan` only reads the files' quick-xml events and drops them, the same baseline as the
//! `junit` bench's, to compare instruction counts and memory with a parse of the same file.
//!
//! `--times N` times the raw scan, `parse_report` and `parse_reader` on each file N times,
//! interleaved, and prints the fastest and the median of each: on a shared machine the fastest
//! run is the one least disturbed by other work, and interleaving exposes all three to the same
//! load.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stream = args.iter().any(|a| a == "--stream");
    let json = args.iter().any(|a| a == "--json");
    let raw_scan = args.iter().any(|a| a == "--raw-scan");
    let times = args
        .iter()
        .position(|a| a == "--times")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok());
    let is_option_value = |path: &String| times.is_some_and(|n| *path == n.to_string());
    let mut status = ExitCode::SUCCESS;
    for path in args
        .iter()
        .filter(|a| !a.starts_with("--") && !is_option_value(a))
    {
        if let Some(times) = times {
            match std::fs::read(path) {
                Ok(bytes) => time_each(path, &bytes, times),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    status = ExitCode::FAILURE;
                }
            }
            continue;
        }
        if raw_scan {
            match std::fs::read(path) {
                Ok(bytes) => println!("{path}: {} events", count_events(&bytes)),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    status = ExitCode::FAILURE;
                }
            }
            continue;
        }
        let parsed = if stream {
            std::fs::File::open(path)
                .map_err(|source| testkube_results::ReportError::Io {
                    file: path.clone(),
                    source,
                })
                .and_then(|f| testkube_results::parse_reader(std::io::BufReader::new(f), path))
        } else {
            std::fs::read(path)
                .map_err(|source| testkube_results::ReportError::Io {
                    file: path.clone(),
                    source,
                })
                .and_then(|bytes| testkube_results::parse_report(&bytes, path))
        };
        match parsed {
            Ok(report) if json => match serde_json::to_string_pretty(&report) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    status = ExitCode::FAILURE;
                }
            },
            Ok(report) => {
                let t = report.totals;
                println!(
                    "{path}: {:?} tests={} passed={} failed={} errored={} skipped={} flaky={} duration={:.3}s",
                    report.format,
                    t.tests,
                    t.passed,
                    t.failed,
                    t.errored,
                    t.skipped,
                    t.flaky,
                    t.duration
                );
            }
            Err(e) => {
                eprintln!("{e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

/// Reads every event and drops it, like the bench's baseline.
fn count_events(bytes: &[u8]) -> usize {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(event) => {
                std::hint::black_box(&event);
                events += 1;
            }
        }
    }
    events
}

/// Times the raw scan and both parses `times` times each, interleaved, and prints the fastest and
/// median run of each with its throughput and its share of the raw scan's.
fn time_each(path: &str, bytes: &[u8], times: usize) {
    use std::time::{Duration, Instant};
    let time = |run: &dyn Fn()| {
        let start = Instant::now();
        run();
        start.elapsed()
    };
    let mut runs: [Vec<Duration>; 3] = Default::default();
    for _ in 0..times.max(1) {
        runs[0].push(time(&|| {
            std::hint::black_box(count_events(bytes));
        }));
        runs[1].push(time(&|| {
            std::hint::black_box(testkube_results::parse_report(bytes, path).ok());
        }));
        runs[2].push(time(&|| {
            let reader = std::io::BufReader::with_capacity(64 * 1024, bytes);
            std::hint::black_box(testkube_results::parse_reader(reader, path).ok());
        }));
    }
    let mib = bytes.len() as f64 / (1024.0 * 1024.0);
    let mut fastest_raw = 0.0;
    for (label, durations) in ["raw scan", "parse_report", "parse_reader"]
        .iter()
        .zip(runs.iter_mut())
    {
        durations.sort();
        let fastest = durations[0].as_secs_f64();
        let median = durations[durations.len() / 2].as_secs_f64();
        if fastest_raw == 0.0 {
            fastest_raw = fastest;
        }
        println!(
            "{path}: {label:<13} fastest {:7.2} ms ({:6.0} MiB/s, {:3.0}% of raw)   median {:7.2} ms",
            fastest * 1e3,
            mib / fastest,
            100.0 * fastest_raw / fastest,
            median * 1e3
        );
    }
}
