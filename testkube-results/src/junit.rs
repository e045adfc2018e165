//! JUnit XML, in the dialects real producers write.
//!
//! There is no single JUnit schema: Ant and Surefire write a bare `<testsuite>`, Jest, Playwright,
//! go-junit-report and nextest wrap suites in `<testsuites>`, PHPUnit nests suites several deep
//! with `file=` on suites and cases, Cypress (mocha-junit-reporter) puts the spec file on an
//! empty "Root Suite" before the real ones, pytest puts `file=` on cases, tst and CTest state the
//! outcome in a `status=` attribute, and Surefire/nextest record reruns as
//! `flakyFailure`/`flakyError` (then passed) or `rerunFailure`/`rerunError` (next to the final
//! `failure`). Counters in headers are ignored: totals come from the cases.

use std::borrow::Cow;

use quick_xml::events::BytesStart;

use crate::builder::{CaseBuilder, ReportBuilder, SectionKind};
use crate::model::{ReportFormat, TestReport, TestStatus};
use crate::text::{parse_seconds, unescape};
use crate::xml::{XmlHandler, for_each_attribute};

/// What an open element is, as far as JUnit cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Suite,
    Case,
    /// `failure`, `error`, `skipped` directly in a case: text is kept.
    Outcome,
    /// `flakyFailure`, `rerunError`... directly in a case: direct text is kept.
    Attempt,
    /// `stackTrace` inside an attempt: text is kept.
    AttemptTrace,
    /// `system-out` / `system-err` directly in a case: text is kept.
    Output,
    /// Anything else (properties, suite-level output, unknown elements): ignored.
    Other,
}

/// An open `<testsuite>`: what its cases inherit.
struct SuiteFrame {
    name: String,
    file: Option<String>,
    /// Index of this suite's summary once it holds a case.
    summary: Option<usize>,
    /// Whether any suite or case was opened inside it.
    has_children: bool,
}

pub(crate) struct JunitHandler {
    open: Vec<Open>,
    suites: Vec<SuiteFrame>,
    /// The case being read (reused from case to case); meaningful while `in_case`.
    case: CaseBuilder,
    in_case: bool,
    /// Summary for cases outside any suite.
    orphan_summary: Option<usize>,
    /// A file named by an earlier empty suite (Cypress's "Root Suite"), for later suites that
    /// name none.
    default_file: Option<String>,
    report: ReportBuilder,
}

impl JunitHandler {
    pub(crate) fn new(capacity: usize) -> Self {
        JunitHandler {
            open: Vec::with_capacity(16),
            suites: Vec::with_capacity(8),
            case: CaseBuilder::default(),
            in_case: false,
            orphan_summary: None,
            default_file: None,
            report: ReportBuilder::new(ReportFormat::Junit, capacity),
        }
    }

    fn start_suite(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = None;
        let mut file = None;
        for_each_attribute(element, |key, value| match key {
            "name" => name = Some(identifier(value)),
            "file" | "filepath" => file = Some(identifier(value)),
            _ => {}
        })?;
        let parent = self.suites.last_mut();
        let name = match (name.filter(|n| !n.is_empty()), &parent) {
            (Some(name), _) => name,
            (None, Some(parent)) => parent.name.clone(),
            (None, None) => String::new(),
        };
        let file = file.or_else(|| parent.as_ref().and_then(|p| p.file.clone()));
        if let Some(parent) = parent {
            parent.has_children = true;
        }
        self.suites.push(SuiteFrame {
            name,
            file,
            summary: None,
            has_children: false,
        });
        Ok(Open::Suite)
    }

    fn end_suite(&mut self) {
        if let Some(frame) = self.suites.pop()
            && !frame.has_children
            && frame.file.is_some()
        {
            self.default_file = frame.file;
        }
    }

    fn start_case(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = String::new();
        let mut classname = None;
        let mut class = None;
        let mut file = None;
        let mut duration = None;
        let mut hint = None;
        for_each_attribute(element, |key, value| match key {
            "name" => name = identifier(value),
            "classname" => classname = Some(identifier(value)),
            "class" => class = Some(identifier(value)),
            "file" | "filepath" => file = Some(identifier(value)),
            "time" | "duration" => duration = parse_seconds(value),
            "status" => hint = status_hint(value).or(hint),
            "result" if matches!(value, "skipped" | "suppressed") => {
                hint = Some(TestStatus::Skipped)
            }
            _ => {}
        })?;
        let (suite, inherited_file) = match self.suites.last_mut() {
            Some(frame) => {
                frame.has_children = true;
                (frame.name.clone(), frame.file.clone())
            }
            None => (String::new(), None),
        };
        let case = &mut self.case;
        case.reset(suite, name);
        case.classname = classname.or(class).filter(|c| !c.is_empty());
        case.file = file
            .or(inherited_file)
            .or_else(|| self.default_file.clone());
        case.duration = duration;
        case.hint = hint;
        self.in_case = true;
        Ok(Open::Case)
    }

    fn end_case(&mut self) {
        if !std::mem::replace(&mut self.in_case, false) {
            return;
        }
        let summary = match self.suites.last_mut() {
            Some(frame) => match frame.summary {
                Some(index) => index,
                None => {
                    let file = frame.file.as_deref().or(self.default_file.as_deref());
                    let index = self.report.add_suite(&frame.name, file);
                    frame.summary = Some(index);
                    index
                }
            },
            None => *self
                .orphan_summary
                .get_or_insert_with(|| self.report.add_suite("", None)),
        };
        self.report.push(self.case.finish(), summary);
    }

    /// A child element directly inside `<testcase>`.
    fn start_in_case(&mut self, local: &str, element: &BytesStart<'_>) -> Result<Open, String> {
        let outcome = match local {
            "failure" => Some(TestStatus::Failed),
            "error" => Some(TestStatus::Errored),
            "skipped" | "ignored" | "disabled" => Some(TestStatus::Skipped),
            _ => None,
        };
        let attempt = matches!(
            local,
            "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError"
        );
        let output = matches!(local, "system-out" | "system-err");
        let case = &mut self.case;
        if let Some(status) = outcome {
            let message = message_attribute(element)?;
            case.set_outcome(status, message.as_deref());
            case.begin_section(SectionKind::Outcome, local);
            Ok(Open::Outcome)
        } else if attempt {
            let message = message_attribute(element)?;
            case.add_attempt(message.as_deref());
            case.begin_section(SectionKind::Attempt, local);
            Ok(Open::Attempt)
        } else if output {
            case.begin_section(SectionKind::Output, local);
            Ok(Open::Output)
        } else {
            Ok(Open::Other)
        }
    }
}

impl XmlHandler for JunitHandler {
    fn start(&mut self, element: &BytesStart<'_>) -> Result<(), String> {
        let local = element.local_name().into_inner();
        let parent = self.open.last().copied();
        let open = match parent {
            None | Some(Open::Suite | Open::Other) if !self.in_case => match local {
                "testsuite" => self.start_suite(element)?,
                "testcase" => self.start_case(element)?,
                _ => Open::Other,
            },
            Some(Open::Case) => self.start_in_case(local, element)?,
            Some(Open::Attempt) if local == "stackTrace" => {
                self.case.section_break();
                Open::AttemptTrace
            }
            _ => Open::Other,
        };
        self.open.push(open);
        Ok(())
    }

    fn end(&mut self) {
        match self.open.pop() {
            Some(Open::Suite) => self.end_suite(),
            Some(Open::Case) => self.end_case(),
            Some(Open::Outcome | Open::Attempt | Open::Output) => self.case.end_section(),
            Some(Open::AttemptTrace | Open::Other) | None => {}
        }
    }

    fn wants_text(&self) -> bool {
        matches!(
            self.open.last(),
            Some(Open::Outcome | Open::Attempt | Open::AttemptTrace | Open::Output)
        )
    }

    fn text(&mut self, text: &str) {
        self.case.push_text(text);
    }

    fn finish(mut self, name: &str) -> TestReport {
        // A truncated document is an error before this point; this only flushes a case left
        // open by a producer that never closes the root.
        self.end_case();
        self.report.finish(name)
    }
}

/// The `message` attribute, decoded.
fn message_attribute(element: &BytesStart<'_>) -> Result<Option<String>, String> {
    let mut message = None;
    for_each_attribute(element, |key, value| {
        if key == "message" {
            message = Some(unescape(value).into_owned());
        }
    })?;
    Ok(message)
}

/// A name, class or file: decoded and trimmed (Jest ends classnames with a space).
fn identifier(raw: &str) -> String {
    match unescape(raw) {
        Cow::Borrowed(text) => text.trim().to_owned(),
        Cow::Owned(text) if text.trim().len() == text.len() => text,
        Cow::Owned(text) => text.trim().to_owned(),
    }
}

/// Outcomes stated in a `status` attribute (tst, CTest, Google Test).
fn status_hint(value: &str) -> Option<TestStatus> {
    const SKIPPED: [&str; 7] = [
        "skipped", "skip", "disabled", "notrun", "not run", "ignored", "pending",
    ];
    const FAILED: [&str; 3] = ["failed", "fail", "failure"];
    const ERRORED: [&str; 2] = ["error", "errored"];
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
    if is(&SKIPPED) {
        Some(TestStatus::Skipped)
    } else if is(&FAILED) {
        Some(TestStatus::Failed)
    } else if is(&ERRORED) {
        Some(TestStatus::Errored)
    } else {
        None
    }
}
