//! The normalized report model every parser produces.
//!
//! Producers disagree on almost everything (nesting, counters, where the file goes, how a rerun is
//! written), so the parsers fold each dialect into this one shape and the rest of the project
//! (the `report` and `split` commands) never sees a dialect.

use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::case_name::CaseName;

/// One parsed report file: every test case it records, the suites they came from, and totals
/// computed from the cases (never copied from the counters in the file's headers, which are often
/// wrong or missing).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    /// The name the caller gave the input (usually its path); used in errors and listings.
    pub name: String,
    /// The report format the input was recognised as.
    pub format: ReportFormat,
    /// Counts and summed durations over all [`cases`](Self::cases).
    pub totals: Totals,
    /// One entry per suite that directly holds test cases, in the order of their first case.
    pub suites: Vec<SuiteSummary>,
    /// Every test case in document order.
    pub cases: Vec<TestCase>,
}

impl TestReport {
    /// The cases that need attention: failed and errored ones, in document order.
    pub fn failures(&self) -> impl Iterator<Item = &TestCase> {
        self.cases
            .iter()
            .filter(|case| matches!(case.status, TestStatus::Failed | TestStatus::Errored))
    }
}

/// The formats [`parse_report`](crate::parse_report) recognises, from the root element of an XML
/// document or the shape of a JSON one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ReportFormat {
    /// JUnit XML (`<testsuites>` or `<testsuite>` root) in any of its dialects.
    #[serde(rename = "junit")]
    Junit,
    /// NUnit 2 native XML (`<test-results>` root).
    #[serde(rename = "nunit2")]
    Nunit2,
    /// NUnit 3 native XML (`<test-run>` root).
    #[serde(rename = "nunit3")]
    Nunit3,
    /// xUnit.net v2 native XML (`<assemblies>` or `<assembly>` root).
    #[serde(rename = "xunit")]
    XunitNet,
    /// Visual Studio / `dotnet test` TRX (`<TestRun>` root).
    #[serde(rename = "trx")]
    Trx,
    /// `go test -json` event stream (one JSON object per line).
    #[serde(rename = "goTestJson")]
    GoTestJson,
    /// `mocha --reporter json` output.
    #[serde(rename = "mochaJson")]
    MochaJson,
}

/// A suite that directly holds test cases, with totals over those cases only.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteSummary {
    /// The suite's name (for nested suites without a name of their own, the nearest named
    /// ancestor's).
    pub name: String,
    /// The source file, when the suite or an enclosing suite names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Totals over the cases directly inside this suite.
    pub totals: Totals,
}

/// One test case, normalized.
///
/// `suite`, `classname` and `file` repeat across the cases of a suite, so they are shared
/// (`Arc<str>`: one allocation per distinct value, not per case); they read like `&str` through
/// `&*case.suite` or `case.classname.as_deref()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    /// The innermost enclosing suite's name (empty when the case is outside any suite).
    #[serde(serialize_with = "shared_str")]
    pub suite: Arc<str>,
    /// The class (JUnit `classname`, or `class` as PHPUnit writes it), when the producer gives one.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_shared_str"
    )]
    pub classname: Option<Arc<str>>,
    /// The test's name as written by the producer (decoded and trimmed); reads like a `&str`.
    pub name: CaseName,
    /// The source file: the case's own `file` attribute, else the nearest enclosing suite's.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_shared_str"
    )]
    pub file: Option<Arc<str>>,
    /// The final outcome.
    pub status: TestStatus,
    /// Duration in seconds; `None` when the producer wrote none (or an unreadable one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// A one-line-ish reason: the failure, error or skip message; for a flaky case the first
    /// failed attempt's message. At most [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For cases that did not pass: failure text (stack trace), earlier attempts' traces, then
    /// `system-out` and `system-err`, each after a `--- name ---` header line; at most
    /// [`MAX_OUTPUT_BYTES`](crate::MAX_OUTPUT_BYTES) plus a truncation marker. Passing cases keep
    /// none (their logs are rarely read and would dominate memory on large reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// How many earlier failed attempts the report records (Surefire and nextest
    /// `flakyFailure`/`flakyError`/`rerunFailure`/`rerunError`).
    pub reruns: u32,
    /// Seconds those earlier attempts took together, when the producer times each attempt
    /// (nextest does; Surefire writes one time for the case, so `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_duration: Option<f64>,
}

impl TestCase {
    /// Seconds the case cost the run: its [`duration`](Self::duration) plus its earlier
    /// attempts' when the producer timed them; `None` without a duration.
    #[must_use]
    pub fn time_spent(&self) -> Option<f64> {
        self.duration
            .map(|seconds| seconds + self.attempts_duration.unwrap_or(0.0))
    }
}

/// The final outcome of a test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TestStatus {
    /// Ran and passed at the first attempt.
    Passed,
    /// An assertion failed (JUnit `<failure>`), including after every rerun.
    Failed,
    /// An unexpected error (JUnit `<error>`), including after every rerun.
    Errored,
    /// Not run: skipped, ignored or disabled.
    Skipped,
    /// Failed at least once, then passed on a rerun.
    Flaky,
}

/// Counts per status and the summed duration of a set of cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Number of cases.
    pub tests: u64,
    /// Cases that passed at the first attempt.
    pub passed: u64,
    /// Cases that failed.
    pub failed: u64,
    /// Cases that ended in an error.
    pub errored: u64,
    /// Cases that were not run.
    pub skipped: u64,
    /// Cases that failed, then passed on a rerun.
    pub flaky: u64,
    /// Sum of the cases' durations in seconds (cases without a duration count as zero). This is
    /// test time, not wall time: parallel runs make it larger than the run took.
    pub duration: f64,
}

impl Totals {
    /// Counts one more case.
    pub fn add(&mut self, status: TestStatus, duration: Option<f64>) {
        self.tests += 1;
        match status {
            TestStatus::Passed => self.passed += 1,
            TestStatus::Failed => self.failed += 1,
            TestStatus::Errored => self.errored += 1,
            TestStatus::Skipped => self.skipped += 1,
            TestStatus::Flaky => self.flaky += 1,
        }
        self.duration += duration.unwrap_or(0.0);
    }
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.tests += other.tests;
        self.passed += other.passed;
        self.failed += other.failed;
        self.errored += other.errored;
        self.skipped += other.skipped;
        self.flaky += other.flaky;
        self.duration += other.duration;
    }
}

// `Arc<str>` is serialized as a plain string without needing serde's `rc` feature.
fn shared_str<S: Serializer>(value: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value)
}

fn optional_shared_str<S: Serializer>(
    value: &Option<Arc<str>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_some(&**value),
        None => serializer.serialize_none(),
    }
}
