//! JUnit XML, in the dialects real producers write.
//!
//! There is no single JUnit schema: Ant and Surefire write a bare `<testsuite>`, Jest, Playwright,
//! go-junit-report and nextest wrap suites in `<testsuites>`, PHPUnit nests suites several deep
//! with `file=` on suites and cases, Cypress (mocha-junit-reporter) puts the spec file on an
//! empty "Root Suite" before the real ones, pytest puts `file=` on cases, tst and CTest state the
//! outcome in a `status=` attribute, and Surefire/nextest record reruns as
//! `flakyFailure`/`flakyError` (then passed) or `rerunFailure`/`rerunError` (next to the final
//! `failure`). Counters in headers are ignored: totals come from the cases.

use std::sync::Arc;

use quick_xml::events::BytesStart;

use crate::builder::{CaseBuilder, ReportBuilder, SectionKind};
use crate::case_name::{CaseName, StagedName};
use crate::model::{ReportFormat, TestReport, TestStatus};
use crate::text::{parse_seconds, trim_xml_space, unescape, unescape_into};
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
    name: Arc<str>,
    file: Option<Arc<str>>,
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
    /// Where the name of the case being read is staged.
    case_name: StagedName,
    in_case: bool,
    /// The previous case's class and file, shared with the next case when they repeat.
    last_classname: Option<Arc<str>>,
    last_file: Option<Arc<str>>,
    /// Summary for cases outside any suite.
    orphan_summary: Option<usize>,
    /// A file named by an earlier empty suite (Cypress's "Root Suite"), for later suites that
    /// name none.
    default_file: Option<Arc<str>>,
    report: ReportBuilder,
}

impl JunitHandler {
    pub(crate) fn new(capacity: usize) -> Self {
        JunitHandler {
            open: Vec::with_capacity(16),
            suites: Vec::with_capacity(8),
            case: CaseBuilder::default(),
            case_name: StagedName::default(),
            in_case: false,
            last_classname: None,
            last_file: None,
            orphan_summary: None,
            default_file: None,
            report: ReportBuilder::new(ReportFormat::Junit, capacity),
        }
    }

    fn start_suite(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = None;
        let mut file = None;
        for_each_attribute(element, |key, value| match key {
            "name" => name = Some(value),
            "file" | "filepath" => file = Some(value),
            _ => {}
        })?;
        let parent = self.suites.last_mut();
        let name = match (name.map(unescape), &parent) {
            (Some(name), _) if !trim_xml_space(&name).is_empty() => {
                Arc::from(trim_xml_space(&name))
            }
            (_, Some(parent)) => Arc::clone(&parent.name),
            (_, None) => Arc::from(""),
        };
        let file = match file {
            Some(raw) => Some(shared(raw, [None, None])),
            None => parent.as_ref().and_then(|p| p.file.clone()),
        };
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
        let mut name = "";
        let mut classname = None;
        let mut file = None;
        let mut duration = None;
        let mut hint = None;
        for_each_attribute(element, |key, value| match key {
            "name" => name = value,
            "classname" => classname = Some(value),
            // PHPUnit writes both; `classname` wins.
            "class" if classname.is_none() => classname = Some(value),
            "file" | "filepath" => file = Some(value),
            "time" | "duration" => duration = parse_seconds(value),
            "status" => hint = status_hint(value).or(hint),
            "result" if matches!(value, "skipped" | "suppressed") => {
                hint = Some(TestStatus::Skipped)
            }
            _ => {}
        })?;
        if let Some(frame) = self.suites.last_mut() {
            frame.has_children = true;
        }
        let frame = self.suites.last();
        let suite = frame
            .as_ref()
            .map_or_else(|| Arc::from(""), |f| Arc::clone(&f.name));
        let classname = classname
            .map(|raw| shared(raw, [self.last_classname.as_ref(), Some(&suite)]))
            .filter(|c| !c.is_empty());
        let inherited_file = frame.as_ref().and_then(|f| f.file.as_ref());
        let file = match file {
            Some(raw) => Some(shared(raw, [self.last_file.as_ref(), inherited_file])),
            None => inherited_file.or(self.default_file.as_ref()).cloned(),
        };
        // Only when they change: cloning and dropping an `Arc` are atomic operations, and
        // consecutive cases mostly share their class and file.
        if !same_shared(&self.last_classname, &classname) {
            self.last_classname.clone_from(&classname);
        }
        if !same_shared(&self.last_file, &file) {
            self.last_file.clone_from(&file);
        }
        // The name goes to the report's shared name blocks, not to a `String` of its own.
        self.case_name = self.report.stage_name(|out| unescape_into(name, out));
        let case = &mut self.case;
        case.reset(suite, CaseName::default());
        case.classname = classname;
        case.file = file;
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
        self.report
            .push_named(self.case.finish(), summary, self.case_name);
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
            case.set_outcome(status, message);
            case.begin_section(SectionKind::Outcome, local);
            Ok(Open::Outcome)
        } else if attempt {
            let (message, seconds) = attempt_attributes(element)?;
            case.add_attempt(message, seconds);
            case.begin_section(SectionKind::Attempt, local);
            Ok(Open::Attempt)
        } else if output && case.may_not_pass() {
            // The schema puts `system-out` after `failure`/`skipped`, so a case with no outcome
            // yet is passing and its output would be dropped: skip copying it.
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

/// An earlier attempt's message and, when the producer times attempts (nextest writes `time` on
/// each `flakyFailure`/`rerunFailure`; Surefire does not), its duration.
fn attempt_attributes(element: &BytesStart<'_>) -> Result<(Option<String>, Option<f64>), String> {
    let mut message = None;
    let mut seconds = None;
    for_each_attribute(element, |key, value| match key {
        "message" => message = Some(unescape(value).into_owned()),
        "time" => seconds = parse_seconds(value),
        _ => {}
    })?;
    Ok((message, seconds))
}

/// A class or file name, decoded and trimmed, as one of the `known` shared strings when it equals
/// one (consecutive cases mostly repeat their class and file), else as a new one.
fn shared(raw: &str, known: [Option<&Arc<str>>; 2]) -> Arc<str> {
    let decoded = unescape(raw);
    let text = trim_xml_space(&decoded);
    match known.into_iter().flatten().find(|k| ***k == *text) {
        Some(existing) => Arc::clone(existing),
        None => Arc::from(text),
    }
}

/// Whether two optional shared strings are the same allocation (or both absent).
fn same_shared(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
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
