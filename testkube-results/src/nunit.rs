//! NUnit's own XML formats: NUnit 2 (`<test-results>`) and NUnit 3 (`<test-run>`).
//!
//! Both nest `<test-suite>` elements (assembly, namespaces, fixtures, parameterized methods) and
//! put `<test-case>` at the leaves with the outcome in attributes (`result`, plus `label` in
//! NUnit 3 and `executed`/`success` in NUnit 2) and the details in `<failure>` or `<reason>`
//! children holding `<message>` and `<stack-trace>`, and in `<output>`.

use std::sync::Arc;

use quick_xml::events::BytesStart;

use crate::builder::{CaseBuilder, ReportBuilder, SectionKind};
use crate::model::{ReportFormat, TestReport, TestStatus};
use crate::text::{parse_seconds, trim_xml_space, unescape};
use crate::xml::{XmlHandler, for_each_attribute};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Suite,
    Case,
    /// `<failure>` or `<reason>` in a case: holds `<message>` and `<stack-trace>`.
    Details,
    /// `<message>`, `<stack-trace>` or `<output>`: text is kept.
    Text,
    Other,
}

pub(crate) struct NunitHandler {
    open: Vec<Open>,
    /// Open suites: the fixture name cases are grouped under, and its summary index.
    suites: Vec<(Arc<str>, Option<usize>)>,
    case: CaseBuilder,
    in_case: bool,
    report: ReportBuilder,
}

impl NunitHandler {
    pub(crate) fn new(format: ReportFormat, capacity: usize) -> Self {
        NunitHandler {
            open: Vec::with_capacity(32),
            suites: Vec::with_capacity(16),
            case: CaseBuilder::default(),
            in_case: false,
            report: ReportBuilder::new(format, capacity),
        }
    }

    fn start_suite(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = None;
        let mut full_name = None;
        for_each_attribute(element, |key, value| match key {
            "name" => name = Some(value),
            "fullname" => full_name = Some(value),
            _ => {}
        })?;
        let name = full_name.or(name).map(unescape).unwrap_or_default();
        self.suites.push((Arc::from(trim_xml_space(&name)), None));
        Ok(Open::Suite)
    }

    fn start_case(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = "";
        let mut full_name = None;
        let mut classname = None;
        let mut duration = None;
        let mut result = "";
        let mut label = "";
        let mut executed = true;
        for_each_attribute(element, |key, value| match key {
            "name" => name = value,
            "fullname" => full_name = Some(value),
            "classname" => classname = Some(value),
            // NUnit 3 writes `duration`, NUnit 2 `time`, both in seconds.
            "duration" | "time" => duration = parse_seconds(value),
            "result" => result = value,
            "label" => label = value,
            "executed" => executed = !value.eq_ignore_ascii_case("false"),
            _ => {}
        })?;
        let name = unescape(full_name.unwrap_or(name));
        let name = trim_xml_space(&name);
        // NUnit 2 has no classname: the full name minus the method (and its arguments).
        let classname = match classname {
            Some(raw) => Some(Arc::from(trim_xml_space(&unescape(raw)))),
            None => {
                let method_start = name.find('(').unwrap_or(name.len());
                name[..method_start]
                    .rfind('.')
                    .map(|dot| Arc::from(&name[..dot]))
            }
        };
        let suite = self
            .suites
            .last()
            .map_or_else(|| Arc::from(""), |(suite, _)| Arc::clone(suite));
        self.case.reset(suite, name.to_owned());
        self.case.classname = classname;
        self.case.duration = duration;
        if let Some(status) = nunit_status(result, label, executed) {
            self.case.set_outcome(status, None);
        }
        self.in_case = true;
        Ok(Open::Case)
    }

    fn end_case(&mut self) {
        if !std::mem::replace(&mut self.in_case, false) {
            return;
        }
        let summary = match self.suites.last_mut() {
            Some((name, summary)) => {
                *summary.get_or_insert_with(|| self.report.add_suite(name, None))
            }
            None => self.report.add_suite("", None),
        };
        self.report.push(self.case.finish(), summary);
    }
}

impl XmlHandler for NunitHandler {
    fn start(&mut self, element: &BytesStart<'_>) -> Result<(), String> {
        let local = element.local_name().into_inner();
        let open = match (self.open.last(), local) {
            (_, "test-suite") if !self.in_case => self.start_suite(element)?,
            (_, "test-case") if !self.in_case => self.start_case(element)?,
            (Some(Open::Case), "failure" | "reason") => Open::Details,
            (Some(Open::Details), "message") => {
                self.case.begin_section(SectionKind::Outcome, "message");
                Open::Text
            }
            (Some(Open::Details), "stack-trace") => {
                self.case.begin_section(SectionKind::Output, "stack-trace");
                Open::Text
            }
            (Some(Open::Case), "output") => {
                self.case.begin_section(SectionKind::Output, "output");
                Open::Text
            }
            _ => Open::Other,
        };
        self.open.push(open);
        Ok(())
    }

    fn end(&mut self) {
        match self.open.pop() {
            Some(Open::Suite) => {
                self.suites.pop();
            }
            Some(Open::Case) => self.end_case(),
            Some(Open::Text) => self.case.end_section(),
            _ => {}
        }
    }

    fn wants_text(&self) -> bool {
        self.open.last() == Some(&Open::Text)
    }

    fn text(&mut self, text: &str) {
        self.case.push_text(text);
    }

    fn finish(mut self, name: &str) -> TestReport {
        self.end_case();
        self.report.finish(name)
    }
}

/// The outcome stated by NUnit 3 (`result` + `label`) or NUnit 2 (`result`, `executed`);
/// `None` for a pass.
fn nunit_status(result: &str, label: &str, executed: bool) -> Option<TestStatus> {
    let is = |value: &str, words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
    if is(result, &["Passed", "Success"]) {
        None
    } else if is(result, &["Failed", "Failure"]) {
        // NUnit 3 marks exceptions, invalid tests and cancellations with a label.
        if is(label, &["Error", "Invalid", "Cancelled"]) {
            Some(TestStatus::Errored)
        } else {
            Some(TestStatus::Failed)
        }
    } else if is(result, &["Error", "NotRunnable", "Cancelled"]) {
        Some(TestStatus::Errored)
    } else if is(
        result,
        &["Skipped", "Ignored", "Inconclusive", "Explicit", "NotRun"],
    ) || !executed
    {
        Some(TestStatus::Skipped)
    } else {
        None
    }
}
