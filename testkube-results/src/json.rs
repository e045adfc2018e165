//! JSON report formats: `go test -json` (one event object per line) and `mocha --reporter json`
//! (one object with `stats`, `tests`, `pending`, `failures`, `passes`).
//!
//! The format is recognised from the first object's keys: `Action` means a go test event,
//! `stats` plus `tests` means mocha.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::MAX_OUTPUT_BYTES;
use crate::builder::{CaseBuilder, ReportBuilder, SectionKind};
use crate::model::{ReportFormat, TestReport, TestStatus};
use crate::{ReportError, text};

/// Which keys the first JSON object has, to pick the format without building a DOM.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Action")]
    action: Option<IgnoredAny>,
    stats: Option<IgnoredAny>,
    tests: Option<IgnoredAny>,
}

/// Parses a JSON report, detecting its format.
pub(crate) fn parse_json(bytes: &[u8], file: &str) -> Result<TestReport, ReportError> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Probe>();
    let probe = match values.next() {
        Some(Ok(probe)) => probe,
        Some(Err(error)) if error.is_data() => {
            return Err(not_a_report(file));
        }
        Some(Err(error)) => return Err(ReportError::json(file, &error)),
        None => {
            return Err(ReportError::Empty {
                file: file.to_owned(),
            });
        }
    };
    if probe.action.is_some() {
        parse_go_test(bytes, file)
    } else if probe.stats.is_some() && probe.tests.is_some() {
        parse_mocha(bytes, file)
    } else {
        Err(not_a_report(file))
    }
}

fn not_a_report(file: &str) -> ReportError {
    ReportError::NotAReport {
        file: file.to_owned(),
        detail: "JSON that is neither `go test -json` output nor `mocha --reporter json` output"
            .to_owned(),
    }
}

/// One `go test -json` (test2json) event.
#[derive(Deserialize)]
struct GoEvent<'a> {
    #[serde(rename = "Action", borrow)]
    action: Cow<'a, str>,
    #[serde(rename = "Package", borrow, default)]
    package: Cow<'a, str>,
    #[serde(rename = "Test", borrow)]
    test: Option<Cow<'a, str>>,
    #[serde(rename = "Elapsed")]
    elapsed: Option<f64>,
    #[serde(rename = "Output", borrow)]
    output: Option<Cow<'a, str>>,
}

/// A go test being followed: output so far and, once ended, its status.
struct GoTest {
    package: Arc<str>,
    name: String,
    output: text::BoundedText,
    status: Option<TestStatus>,
    elapsed: Option<f64>,
}

/// `go test -json`: a case per test (subtests included, as go-junit-report does), in the order
/// tests start; output lines become the case output, the first line that is not go test's own
/// `=== RUN`/`--- FAIL` framing becomes the message. A test that never ends (the binary
/// crashed or timed out) is errored.
fn parse_go_test(bytes: &[u8], file: &str) -> Result<TestReport, ReportError> {
    let mut tests: Vec<GoTest> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut packages: HashSet<Arc<str>> = HashSet::new();
    for event in serde_json::Deserializer::from_slice(bytes).into_iter::<GoEvent<'_>>() {
        let event = event.map_err(|e| ReportError::json(file, &e))?;
        let Some(test) = event.test else {
            continue;
        };
        let key = (
            event.package.clone().into_owned(),
            test.clone().into_owned(),
        );
        let position = match index.get(&key) {
            Some(&position) => position,
            None => {
                let package = match packages.get(event.package.as_ref()) {
                    Some(package) => Arc::clone(package),
                    None => {
                        let package: Arc<str> = Arc::from(event.package.as_ref());
                        packages.insert(Arc::clone(&package));
                        package
                    }
                };
                tests.push(GoTest {
                    package,
                    name: test.into_owned(),
                    output: text::BoundedText::default(),
                    status: None,
                    elapsed: None,
                });
                index.insert(key, tests.len() - 1);
                tests.len() - 1
            }
        };
        let Some(current) = tests.get_mut(position) else {
            continue;
        };
        match event.action.as_ref() {
            "output" => {
                if let Some(output) = event.output {
                    current.output.push(&output, MAX_OUTPUT_BYTES);
                }
            }
            "pass" => current.status = Some(TestStatus::Passed),
            "fail" => current.status = Some(TestStatus::Failed),
            "skip" => current.status = Some(TestStatus::Skipped),
            _ => {}
        }
        if matches!(event.action.as_ref(), "pass" | "fail" | "skip") {
            current.elapsed = event.elapsed;
        }
    }
    let mut report = ReportBuilder::new(ReportFormat::GoTestJson, tests.len());
    let mut summaries: HashMap<Arc<str>, usize> = HashMap::new();
    let mut case = CaseBuilder::default();
    for mut test in tests {
        case.reset(Arc::clone(&test.package), test.name);
        case.classname = Some(Arc::clone(&test.package));
        case.duration = test.elapsed.filter(|e| e.is_finite() && *e >= 0.0);
        let status = test.status.unwrap_or(TestStatus::Errored);
        let output = test.output.take().unwrap_or_default();
        if status != TestStatus::Passed {
            let message = output
                .lines()
                .map(str::trim)
                .find(|line| {
                    !line.is_empty() && !line.starts_with("=== ") && !line.starts_with("--- ")
                })
                .map(str::to_owned)
                .or_else(|| {
                    (status == TestStatus::Errored).then(|| "the test never finished".to_owned())
                });
            case.set_outcome(status, message);
            case.begin_section(SectionKind::Log, "output");
            case.push_text(&output);
        }
        let summary = *summaries
            .entry(Arc::clone(&test.package))
            .or_insert_with(|| report.add_suite(&test.package, None));
        report.push(case.finish(), summary);
    }
    Ok(report.finish(file))
}

/// The parts of mocha's JSON reporter output we read.
#[derive(Deserialize)]
struct MochaReport<'a> {
    #[serde(borrow)]
    tests: Vec<MochaTest<'a>>,
    #[serde(borrow, default)]
    pending: Vec<MochaTest<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MochaTest<'a> {
    #[serde(borrow, default)]
    title: Cow<'a, str>,
    #[serde(borrow, default)]
    full_title: Cow<'a, str>,
    #[serde(borrow)]
    file: Option<Cow<'a, str>>,
    /// Milliseconds.
    duration: Option<f64>,
    #[serde(default)]
    current_retry: u32,
    #[serde(borrow, default)]
    err: MochaError<'a>,
}

#[derive(Deserialize, Default)]
struct MochaError<'a> {
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stack: Option<Cow<'a, str>>,
}

/// `mocha --reporter json`: `tests` lists every test; a non-empty `err` means failed, a test also
/// listed in `pending` is skipped, and a pass after retries (`currentRetry` > 0) is flaky. The
/// suite is the describe path (the full title minus the test's own title).
fn parse_mocha(bytes: &[u8], file: &str) -> Result<TestReport, ReportError> {
    let mocha: MochaReport<'_> =
        serde_json::from_slice(bytes).map_err(|e| ReportError::json(file, &e))?;
    let pending: HashSet<(&str, Option<&str>)> = mocha
        .pending
        .iter()
        .map(|t| (t.full_title.as_ref(), t.file.as_deref()))
        .collect();
    let mut report = ReportBuilder::new(ReportFormat::MochaJson, mocha.tests.len());
    let mut summaries: HashMap<(Arc<str>, Option<Arc<str>>), usize> = HashMap::new();
    let mut case = CaseBuilder::default();
    for test in &mocha.tests {
        let describe = test
            .full_title
            .strip_suffix(test.title.as_ref())
            .unwrap_or("")
            .trim();
        let suite: Arc<str> = Arc::from(describe);
        let file_name: Option<Arc<str>> = test.file.as_deref().map(Arc::from);
        case.reset(Arc::clone(&suite), test.full_title.trim().to_owned());
        case.file.clone_from(&file_name);
        case.duration = test
            .duration
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|ms| ms / 1000.0);
        let failed = test.err.message.is_some() || test.err.stack.is_some();
        if failed {
            for _ in 0..test.current_retry {
                case.add_attempt(None, None);
            }
            case.set_outcome(
                TestStatus::Failed,
                test.err.message.as_deref().map(str::to_owned),
            );
            if let Some(stack) = &test.err.stack {
                case.begin_section(SectionKind::Outcome, "stack");
                case.push_text(stack);
            }
        } else if pending.contains(&(test.full_title.as_ref(), test.file.as_deref())) {
            case.set_outcome(TestStatus::Skipped, None);
        } else {
            for _ in 0..test.current_retry {
                case.add_attempt(None, None);
            }
        }
        let summary = *summaries
            .entry((Arc::clone(&suite), file_name.clone()))
            .or_insert_with(|| report.add_suite(&suite, file_name.as_deref()));
        report.push(case.finish(), summary);
    }
    Ok(report.finish(file))
}
