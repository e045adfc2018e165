//! `testkube report`: what a set of test reports says, at a glance or as JSON.

use std::process::ExitCode;

use serde::Serialize;
use testkube_results::{ReportFormat, TestCase, TestReport, TestStatus, Totals, parse_report};

use super::{CliError, print_json};
use crate::cli::{ReportArgs, TextOutput};
use crate::input;
use crate::style::{self, outln, paint};

/// How many lines of a failure message the pretty output shows.
const MESSAGE_LINES: usize = 4;

pub(crate) fn run(args: ReportArgs) -> Result<ExitCode, CliError> {
    let mut reports = Vec::new();
    let mut unreadable = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let parsed = input::read_file(path).and_then(|bytes| {
            parse_report(&bytes, &name).map_err(|err| CliError::input(err.to_string()))
        });
        match parsed {
            Ok(report) => reports.push(report),
            Err(err) => unreadable.push(err),
        }
    }

    let totals = sum_totals(&reports);
    match args.output {
        TextOutput::Json => print_json(&ReportJson::new(&reports, &totals, &unreadable))?,
        // With nothing readable there is nothing to summarize: only the errors below.
        TextOutput::Pretty if reports.is_empty() => {}
        TextOutput::Pretty => print_pretty(&reports, &totals, args.slowest),
    }
    for err in &unreadable {
        style::print_error(err);
    }
    Ok(if unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn sum_totals(reports: &[TestReport]) -> Totals {
    let mut totals = Totals::default();
    for case in reports.iter().flat_map(|report| &report.cases) {
        totals.add(case.status, case.duration);
    }
    totals
}

fn print_pretty(reports: &[TestReport], totals: &Totals, slowest: usize) {
    for report in reports {
        outln!(
            "{}  {}",
            paint(style::BOLD, &report.name),
            paint(style::DIM, totals_line(&report.totals))
        );
    }

    let failures: Vec<_> = reports
        .iter()
        .flat_map(|report| report.failures())
        .collect();
    if !failures.is_empty() {
        outln!("\n{}", paint(style::BOLD, "Failures"));
        for case in failures {
            let label = if case.status == TestStatus::Errored {
                "ERROR"
            } else {
                "FAIL "
            };
            outln!(
                "  {} {}{}",
                paint(style::ERROR, label),
                case_title(case),
                paint(style::DIM, duration_suffix(case.duration))
            );
            if let Some(message) = case.message.as_deref().or(case.output.as_deref()) {
                for line in message
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(MESSAGE_LINES)
                {
                    outln!("        {}", paint(style::DIM, line.trim_end()));
                }
            }
        }
    }

    let flaky: Vec<_> = reports
        .iter()
        .flat_map(|report| &report.cases)
        .filter(|case| case.status == TestStatus::Flaky)
        .collect();
    if !flaky.is_empty() {
        outln!(
            "\n{}",
            paint(style::BOLD, "Flaky (failed, then passed on a rerun)")
        );
        for case in flaky {
            outln!(
                "  {} {} {}",
                paint(style::WARN, "FLAKY"),
                case_title(case),
                paint(style::DIM, format!("({} failed attempts)", case.reruns))
            );
        }
    }

    let mut timed: Vec<_> = reports
        .iter()
        .flat_map(|report| &report.cases)
        .filter(|case| case.duration.is_some_and(|d| d > 0.0))
        .collect();
    if slowest > 0 && !timed.is_empty() {
        timed.sort_by(|a, b| {
            b.duration
                .unwrap_or(0.0)
                .total_cmp(&a.duration.unwrap_or(0.0))
        });
        outln!("\n{}", paint(style::BOLD, "Slowest"));
        for case in timed.into_iter().take(slowest) {
            outln!(
                "  {:>9}  {}",
                format_seconds(case.duration.unwrap_or(0.0)),
                case_title(case)
            );
        }
    }

    let verdict = if totals.failed + totals.errored > 0 {
        paint(style::ERROR, "FAILED")
    } else {
        paint(style::OK, "PASSED")
    };
    outln!("\n{verdict}  {}", totals_line(totals));
}

fn totals_line(totals: &Totals) -> String {
    format!(
        "{} tests: {} passed, {} failed, {} errored, {} skipped, {} flaky ({})",
        totals.tests,
        totals.passed,
        totals.failed,
        totals.errored,
        totals.skipped,
        totals.flaky,
        format_seconds(totals.duration)
    )
}

fn case_title(case: &TestCase) -> String {
    let mut parts = Vec::new();
    match case.classname.as_deref() {
        Some(class) if !class.is_empty() => parts.push(class),
        _ if !case.suite.is_empty() => parts.push(&case.suite),
        _ => {}
    }
    parts.push(&case.name);
    parts.join(" › ")
}

fn duration_suffix(duration: Option<f64>) -> String {
    duration
        .map(|d| format!("  ({})", format_seconds(d)))
        .unwrap_or_default()
}

fn format_seconds(seconds: f64) -> String {
    // A producer's `time="1e308"` must not print a 300-digit number.
    if seconds >= 360_000.0 {
        format!("{:.0}h", (seconds / 3600.0).min(1e9))
    } else if seconds >= 60.0 {
        let minutes = (seconds / 60.0).floor();
        format!("{minutes:.0}m{:04.1}s", seconds - minutes * 60.0)
    } else {
        format!("{seconds:.3}s")
    }
}

/// The `-o json` shape. The totals sit at the top level under the names the
/// CLI contract gives (`tests`, `passed`, `failed`, `errored`, `skipped`, `flaky`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportJson<'a> {
    tests: u64,
    passed: u64,
    failed: u64,
    errored: u64,
    skipped: u64,
    flaky: u64,
    duration_seconds: f64,
    files: Vec<FileJson<'a>>,
    cases: Vec<CaseJson<'a>>,
    errors: Vec<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileJson<'a> {
    file: &'a str,
    format: ReportFormat,
    #[serde(flatten)]
    totals: &'a Totals,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaseJson<'a> {
    report: &'a str,
    #[serde(flatten)]
    case: &'a TestCase,
}

impl<'a> ReportJson<'a> {
    fn new(reports: &'a [TestReport], totals: &Totals, unreadable: &'a [CliError]) -> Self {
        Self {
            tests: totals.tests,
            passed: totals.passed,
            failed: totals.failed,
            errored: totals.errored,
            skipped: totals.skipped,
            flaky: totals.flaky,
            duration_seconds: totals.duration,
            files: reports
                .iter()
                .map(|report| FileJson {
                    file: &report.name,
                    format: report.format,
                    totals: &report.totals,
                })
                .collect(),
            cases: reports
                .iter()
                .flat_map(|report| {
                    report.cases.iter().map(|case| CaseJson {
                        report: &report.name,
                        case,
                    })
                })
                .collect(),
            errors: unreadable.iter().map(CliError::message).collect(),
        }
    }
}
