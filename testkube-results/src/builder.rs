//! Accumulates one test case at a time while a parser streams through a report, and the report
//! those cases end up in.
//!
//! Every format has the same needs: an outcome decided from several child elements, a message,
//! output gathered from several sections under a size budget, and totals computed from the cases
//! themselves. Keeping that here lets each format parser be only about its element names.

use std::sync::Arc;

use crate::case_name::{CaseName, NameArena, StagedName};
use crate::model::{ReportFormat, SuiteSummary, TestCase, TestReport, TestStatus, Totals};
use crate::text::{BoundedText, bounded_message, first_line};
use crate::{MAX_MESSAGE_BYTES, MAX_OUTPUT_BYTES};

/// The report being built: cases in document order and per-suite totals.
pub(crate) struct ReportBuilder {
    format: ReportFormat,
    cases: Vec<TestCase>,
    suites: Vec<SuiteSummary>,
    totals: Totals,
    /// Names staged for cases (see [`push_named`](Self::push_named)) until their block is sealed.
    names: NameArena,
    /// The cases whose name is still staged: index in `cases`, and where the name is.
    staged: Vec<(usize, StagedName)>,
}

impl ReportBuilder {
    pub(crate) fn new(format: ReportFormat, capacity: usize) -> Self {
        ReportBuilder {
            format,
            cases: Vec::with_capacity(capacity),
            suites: Vec::new(),
            totals: Totals::default(),
            names: NameArena::default(),
            staged: Vec::new(),
        }
    }

    /// Registers a suite that holds cases and returns its index for [`push`](Self::push).
    pub(crate) fn add_suite(&mut self, name: &str, file: Option<&str>) -> usize {
        self.suites.push(SuiteSummary {
            name: name.to_owned(),
            file: file.map(str::to_owned),
            totals: Totals::default(),
        });
        self.suites.len() - 1
    }

    /// Adds a finished case, counting it in the report's and its suite's totals.
    pub(crate) fn push(&mut self, case: TestCase, suite: usize) {
        self.totals.add(case.status, case.duration);
        if let Some(summary) = self.suites.get_mut(suite) {
            summary.totals.add(case.status, case.duration);
        }
        self.cases.push(case);
    }

    /// Stages the name of the case being read: `write` appends it (decoded) to the names of this
    /// report, and it is kept without surrounding XML whitespace. Pass the result to
    /// [`push_named`](Self::push_named) with the case. Cheaper than a `String` per case: names
    /// share blocks, so a report of many cases makes few allocations for them.
    pub(crate) fn stage_name(&mut self, write: impl FnOnce(&mut String)) -> StagedName {
        self.names.stage_trimmed(write)
    }

    /// Adds a finished case (as [`push`](Self::push)) whose name is the staged `name`.
    pub(crate) fn push_named(&mut self, case: TestCase, suite: usize, name: StagedName) {
        self.staged.push((self.cases.len(), name));
        self.totals.add(case.status, case.duration);
        if let Some(summary) = self.suites.get_mut(suite) {
            summary.totals.add(case.status, case.duration);
        }
        self.cases.push(case);
        if self.names.is_full() {
            self.seal_names();
        }
    }

    /// Seals the staged names into one shared block and gives them to their cases, which are
    /// recent enough to still be in cache.
    fn seal_names(&mut self) {
        if self.staged.is_empty() {
            self.names.clear();
            return;
        }
        let block = self.names.seal();
        for (index, name) in self.staged.drain(..) {
            if let Some(case) = self.cases.get_mut(index) {
                case.name = name.in_block(&block);
            }
        }
    }

    pub(crate) fn finish(mut self, name: &str) -> TestReport {
        self.seal_names();
        TestReport {
            name: name.to_owned(),
            format: self.format,
            totals: self.totals,
            suites: self.suites,
            cases: self.cases,
        }
    }
}

/// A case being read: identity, the outcome so far, and captured output. One builder is reused
/// for every case of a report ([`reset`](Self::reset) / [`finish`](Self::finish)) so its output
/// buffer is allocated once.
#[derive(Debug, Default)]
pub(crate) struct CaseBuilder {
    /// The suite, moved into the case at [`finish`](Self::finish) (not cloned: reference
    /// counting is atomic, and this runs for every case).
    suite: Option<Arc<str>>,
    pub(crate) classname: Option<Arc<str>>,
    pub(crate) name: CaseName,
    pub(crate) file: Option<Arc<str>>,
    pub(crate) duration: Option<f64>,
    /// A status the producer states in an attribute (`status="disabled"`, NUnit `result=`),
    /// used when no child element decides.
    pub(crate) hint: Option<TestStatus>,
    outcome: Option<TestStatus>,
    message: Option<String>,
    attempt_message: Option<String>,
    reruns: u32,
    attempts_duration: Option<f64>,
    output: BoundedText,
    section: Option<Section>,
}

/// Where the section being captured starts in the output, to drop its header if it stays empty.
#[derive(Debug, Clone, Copy)]
struct Section {
    start: usize,
    content_start: usize,
    kind: SectionKind,
}

/// What a captured section is, which decides what its first line is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    /// The final failure, error or skip reason: its first line is the message if none was given.
    Outcome,
    /// An earlier failed attempt: its first line is the flaky message if none was given.
    Attempt,
    /// Anything else (`system-out`, `system-err`).
    Output,
    /// A log that needs no header when it comes first (go test's output), and gives no message.
    Log,
}

impl CaseBuilder {
    /// Starts a new case, forgetting everything about the previous one.
    pub(crate) fn reset(&mut self, suite: Arc<str>, name: impl Into<CaseName>) {
        self.suite = Some(suite);
        self.name = name.into();
        self.classname = None;
        self.file = None;
        self.duration = None;
        self.hint = None;
        self.outcome = None;
        self.message = None;
        self.attempt_message = None;
        self.reruns = 0;
        self.attempts_duration = None;
        self.output.take();
        self.section = None;
    }

    /// Records a final outcome from a child element; when several are present the most severe
    /// wins (errored, then failed, then skipped).
    pub(crate) fn set_outcome(&mut self, status: TestStatus, message: Option<String>) {
        self.end_section();
        let rank = |s: Option<TestStatus>| match s {
            Some(TestStatus::Errored) => 3,
            Some(TestStatus::Failed) => 2,
            Some(TestStatus::Skipped) => 1,
            _ => 0,
        };
        if rank(Some(status)) > rank(self.outcome) {
            self.outcome = Some(status);
        }
        if self.message.is_none() {
            self.message = non_empty_message(message);
        }
    }

    /// Whether anything so far says the case did not simply pass; output seen while this is
    /// `false` would be dropped at [`finish`](Self::finish) anyway.
    pub(crate) fn may_not_pass(&self) -> bool {
        self.outcome.is_some()
            || self.reruns > 0
            || self.hint.is_some_and(|hint| hint != TestStatus::Passed)
    }

    /// Records an earlier failed attempt (a rerun or flaky element), with its duration when the
    /// producer wrote one.
    pub(crate) fn add_attempt(&mut self, message: Option<String>, seconds: Option<f64>) {
        self.end_section();
        self.reruns = self.reruns.saturating_add(1);
        if let Some(seconds) = seconds {
            *self.attempts_duration.get_or_insert(0.0) += seconds;
        }
        if self.attempt_message.is_none() {
            self.attempt_message = non_empty_message(message);
        }
    }

    /// Opens a section of output under `header` (omitted when the section is the first outcome
    /// text, which needs no label).
    pub(crate) fn begin_section(&mut self, kind: SectionKind, header: &str) {
        self.end_section();
        let start = self.output.len();
        let unlabelled = matches!(kind, SectionKind::Outcome | SectionKind::Log);
        if !(unlabelled && self.output.is_empty()) {
            if !self.output.is_empty() {
                self.output.push_plain("\n", MAX_OUTPUT_BYTES);
            }
            self.output.push_plain("--- ", MAX_OUTPUT_BYTES);
            self.output.push_plain(header, MAX_OUTPUT_BYTES);
            self.output.push_plain(" ---\n", MAX_OUTPUT_BYTES);
        }
        self.section = Some(Section {
            start,
            content_start: self.output.len(),
            kind,
        });
    }

    /// Starts a new paragraph inside the open section (e.g. a stack trace after a message).
    pub(crate) fn section_break(&mut self) {
        if let Some(section) = self.section
            && self.output.len() > section.content_start
        {
            self.output.trim_end();
            self.output.push("\n", MAX_OUTPUT_BYTES);
        }
    }

    /// Appends text to the open section; leading whitespace of a section is skipped.
    pub(crate) fn push_text(&mut self, text: &str) {
        let Some(section) = self.section else {
            return;
        };
        if self.output.len() == section.content_start {
            let trimmed = text.trim_start();
            if !trimmed.is_empty() {
                self.output.push(trimmed, MAX_OUTPUT_BYTES);
            }
        } else {
            self.output.push(text, MAX_OUTPUT_BYTES);
        }
    }

    /// Closes the open section: trims it, drops it if empty, and takes a message from its first
    /// line when the producer gave none.
    pub(crate) fn end_section(&mut self) {
        let Some(section) = self.section.take() else {
            return;
        };
        self.output.trim_end();
        if self.output.len() <= section.content_start {
            self.output.truncate(section.start);
            return;
        }
        let content = self
            .output
            .as_str()
            .get(section.content_start..)
            .unwrap_or("");
        match section.kind {
            SectionKind::Outcome if self.message.is_none() => {
                self.message = first_line(content, MAX_MESSAGE_BYTES);
            }
            SectionKind::Attempt if self.attempt_message.is_none() => {
                self.attempt_message = first_line(content, MAX_MESSAGE_BYTES);
            }
            _ => {}
        }
    }

    /// Decides the final status: a failure or error child wins, then skipped; without those,
    /// earlier failed attempts make the case flaky; then the producer's status attribute; else
    /// passed.
    pub(crate) fn finish(&mut self) -> TestCase {
        self.end_section();
        let status = match self.outcome {
            Some(status) => status,
            None if self.reruns > 0 => TestStatus::Flaky,
            None => self.hint.unwrap_or(TestStatus::Passed),
        };
        let message = match status {
            TestStatus::Flaky => self.attempt_message.take(),
            TestStatus::Passed => None,
            _ => self.message.take(),
        };
        // Passing cases keep no output: nobody reads a passing test's log in a report, and on
        // large reports it would be most of the memory.
        let output = match status {
            TestStatus::Passed => {
                self.output.clear();
                None
            }
            _ => self.output.take(),
        };
        TestCase {
            suite: self.suite.take().unwrap_or_else(|| Arc::from("")),
            classname: self.classname.take(),
            name: std::mem::take(&mut self.name),
            file: self.file.take(),
            status,
            duration: self.duration,
            message,
            output,
            reruns: self.reruns,
            attempts_duration: self.attempts_duration,
        }
    }
}

/// A producer's message, trimmed and bounded; reuses the string when it is already fine.
fn non_empty_message(message: Option<String>) -> Option<String> {
    let message = message?;
    let trimmed = message.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == message.len() && message.len() <= MAX_MESSAGE_BYTES {
        Some(message)
    } else {
        Some(bounded_message(trimmed, MAX_MESSAGE_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> CaseBuilder {
        let mut case = CaseBuilder::default();
        case.reset("suite".into(), "t");
        case
    }

    #[test]
    fn failure_after_reruns_is_failed_and_counts_attempts() {
        let mut c = case();
        c.add_attempt(Some("first".into()), None);
        c.add_attempt(None, None);
        c.set_outcome(TestStatus::Failed, Some("final".into()));
        let done = c.finish();
        assert_eq!(done.status, TestStatus::Failed);
        assert_eq!(done.reruns, 2);
        assert_eq!(done.message.as_deref(), Some("final"));
    }

    #[test]
    fn attempts_without_final_failure_are_flaky_with_the_first_attempt_message() {
        let mut c = case();
        c.add_attempt(None, None);
        c.begin_section(SectionKind::Attempt, "flakyFailure");
        c.push_text("\n   boom happened\n   at x\n  ");
        c.add_attempt(Some("second".into()), None);
        let done = c.finish();
        assert_eq!(done.status, TestStatus::Flaky);
        assert_eq!(done.message.as_deref(), Some("boom happened"));
        assert_eq!(
            done.output.as_deref(),
            Some("--- flakyFailure ---\nboom happened\n   at x")
        );
    }

    #[test]
    fn error_outranks_failure_and_skip() {
        let mut c = case();
        c.set_outcome(TestStatus::Skipped, None);
        c.set_outcome(TestStatus::Errored, Some("e".into()));
        c.set_outcome(TestStatus::Failed, Some("f".into()));
        assert_eq!(c.finish().status, TestStatus::Errored);
    }

    #[test]
    fn empty_sections_leave_no_header() {
        let mut c = case();
        c.begin_section(SectionKind::Output, "system-out");
        c.push_text("   \n ");
        c.end_section();
        c.begin_section(SectionKind::Output, "system-err");
        c.push_text("err");
        c.set_outcome(TestStatus::Skipped, None);
        let done = c.finish();
        assert_eq!(done.output.as_deref(), Some("--- system-err ---\nerr"));
        assert_eq!(done.message, None);
    }

    #[test]
    fn passing_cases_keep_no_output() {
        let mut c = case();
        c.begin_section(SectionKind::Output, "system-out");
        c.push_text("log line");
        let done = c.finish();
        assert_eq!((done.status, done.output), (TestStatus::Passed, None));
    }

    #[test]
    fn output_is_bounded_with_a_marker() {
        let mut c = case();
        c.set_outcome(TestStatus::Failed, None);
        c.begin_section(SectionKind::Output, "system-out");
        let line = "x".repeat(1000);
        for _ in 0..100 {
            c.push_text(&line);
        }
        let output = c.finish().output.unwrap_or_default();
        assert!(output.len() < MAX_OUTPUT_BYTES + 100, "{}", output.len());
        assert!(
            output.ends_with("more bytes]"),
            "{}",
            &output[output.len() - 50..]
        );
    }
}
