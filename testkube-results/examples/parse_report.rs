//! Parses report files and prints each one's totals (or, with `--json`, the whole normalized
//! report). With `--stream` the files are read through `parse_reader` instead of loaded first,
//! which is how peak memory is measured:
//!
//! ```text
//! cargo run --release -p testkube-results --example parse_report -- --stream big.xml
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stream = args.iter().any(|a| a == "--stream");
    let json = args.iter().any(|a| a == "--json");
    let mut status = ExitCode::SUCCESS;
    for path in args.iter().filter(|a| !a.starts_with("--")) {
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
