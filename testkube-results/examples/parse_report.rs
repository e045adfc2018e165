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

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stream = args.iter().any(|a| a == "--stream");
    let json = args.iter().any(|a| a == "--json");
    let raw_scan = args.iter().any(|a| a == "--raw-scan");
    let mut status = ExitCode::SUCCESS;
    for path in args.iter().filter(|a| !a.starts_with("--")) {
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
