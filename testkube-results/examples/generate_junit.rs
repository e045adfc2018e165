//! Writes the JUnit report the `junit` bench parses to a file, so its figures can be reproduced
//! outside criterion (peak memory with `/usr/bin/time -v`, instruction counts with callgrind):
//!
//! ```text
//! cargo run --release -p testkube-results --example generate_junit -- /tmp/report.xml [MB]
//! cargo run --release -p testkube-results --example parse_report -- /tmp/report.xml
//! ```
//!
//! The size defaults to the bench's 50 MiB.

use std::process::ExitCode;

#[path = "../benches/support/junit_report.rs"]
mod junit_report;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: generate_junit FILE [MB]");
        return ExitCode::FAILURE;
    };
    let megabytes = match args.get(1).map(|mb| mb.parse::<usize>()) {
        None => 50,
        Some(Ok(mb)) => mb,
        Some(Err(e)) => {
            eprintln!("bad size: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = junit_report::generate_report(megabytes * 1024 * 1024);
    if let Err(e) = std::fs::write(path, &report) {
        eprintln!("{path}: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("{path}: {} bytes", report.len());
    ExitCode::SUCCESS
}
