//! The .NET formats besides NUnit: xUnit.net v2 (`<assemblies>`) and Visual Studio TRX
//! (`<TestRun>`, what `dotnet test --logger trx` writes).
//!
//! xUnit.net puts each `<test>` (with `result` Pass/Fail/Skip) in a `<collection>`; details are
//! in `<failure><message/><stack-trace/></failure>`, `<reason>` and `<output>`.
//!
//! TRX lists `<UnitTestResult>`s (outcome, duration as `hh:mm:ss.fffffff`, output) first and the
//! `<TestDefinitions>` that give each test's class afterwards, joined by `testId`; cases are
//! therefore held until the end of the document, then grouped by class.

use std::collections::HashMap;
use std::sync::Arc;

use quick_xml::events::BytesStart;

use crate::builder::{CaseBuilder, ReportBuilder, SectionKind};
use crate::model::{ReportFormat, TestCase, TestReport, TestStatus};
use crate::text::{parse_seconds, trim_xml_space, unescape};
use crate::xml::{XmlHandler, for_each_attribute};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Collection,
    Case,
    /// `<failure>` in a test (xUnit.net) or `<Output>`/`<ErrorInfo>` in a result (TRX).
    Details,
    /// Kept text: message, stack trace, skip reason, output.
    Text,
    /// A TRX `<UnitTest>` definition, whose `<TestMethod>` names the class.
    Definition,
    Other,
}

fn decoded(raw: &str) -> String {
    trim_xml_space(&unescape(raw)).to_owned()
}

/// Parser state for xUnit.net v2 XML.
pub(crate) struct XunitHandler {
    open: Vec<Open>,
    collection: Option<(Arc<str>, Option<usize>)>,
    case: CaseBuilder,
    in_case: bool,
    report: ReportBuilder,
}

impl XunitHandler {
    pub(crate) fn new(capacity: usize) -> Self {
        XunitHandler {
            open: Vec::with_capacity(16),
            collection: None,
            case: CaseBuilder::default(),
            in_case: false,
            report: ReportBuilder::new(ReportFormat::XunitNet, capacity),
        }
    }

    fn start_case(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = "";
        let mut class = None;
        let mut duration = None;
        let mut result = "";
        for_each_attribute(element, |key, value| match key {
            "name" => name = value,
            "type" => class = Some(value),
            "time" => duration = parse_seconds(value),
            "result" => result = value,
            _ => {}
        })?;
        let suite = self
            .collection
            .as_ref()
            .map_or_else(|| Arc::from(""), |(name, _)| Arc::clone(name));
        self.case.reset(suite, decoded(name));
        self.case.classname = class.map(|c| Arc::from(decoded(c)));
        self.case.duration = duration;
        let status = match result {
            "Fail" => Some(TestStatus::Failed),
            "Skip" | "NotRun" => Some(TestStatus::Skipped),
            _ => None,
        };
        if let Some(status) = status {
            self.case.set_outcome(status, None);
        }
        self.in_case = true;
        Ok(Open::Case)
    }

    fn end_case(&mut self) {
        if !std::mem::replace(&mut self.in_case, false) {
            return;
        }
        let summary = match &mut self.collection {
            Some((name, summary)) => {
                *summary.get_or_insert_with(|| self.report.add_suite(name, None))
            }
            None => self.report.add_suite("", None),
        };
        self.report.push(self.case.finish(), summary);
    }
}

impl XmlHandler for XunitHandler {
    fn start(&mut self, element: &BytesStart<'_>) -> Result<(), String> {
        let local = element.local_name().into_inner();
        let open = match (self.open.last(), local) {
            (_, "collection") if !self.in_case => {
                let mut name = "";
                for_each_attribute(element, |key, value| {
                    if key == "name" {
                        name = value;
                    }
                })?;
                self.collection = Some((Arc::from(decoded(name)), None));
                Open::Collection
            }
            (_, "test") if !self.in_case => self.start_case(element)?,
            (Some(Open::Case), "failure") => Open::Details,
            (Some(Open::Details), "message") | (Some(Open::Case), "reason") => {
                self.case.begin_section(SectionKind::Outcome, local);
                Open::Text
            }
            (Some(Open::Details), "stack-trace") | (Some(Open::Case), "output") => {
                self.case.begin_section(SectionKind::Output, local);
                Open::Text
            }
            _ => Open::Other,
        };
        self.open.push(open);
        Ok(())
    }

    fn end(&mut self) {
        match self.open.pop() {
            Some(Open::Collection) => self.collection = None,
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

/// Parser state for TRX.
pub(crate) struct TrxHandler {
    open: Vec<Open>,
    case: CaseBuilder,
    in_case: bool,
    /// Finished results with their `testId`, waiting for the definitions.
    results: Vec<(String, TestCase)>,
    /// `testId` → class, from `<TestDefinitions>`.
    classes: HashMap<String, Arc<str>>,
    /// The definition being read: its id.
    definition: Option<String>,
    test_id: String,
}

impl TrxHandler {
    pub(crate) fn new(capacity: usize) -> Self {
        TrxHandler {
            open: Vec::with_capacity(16),
            case: CaseBuilder::default(),
            in_case: false,
            results: Vec::with_capacity(capacity),
            classes: HashMap::new(),
            definition: None,
            test_id: String::new(),
        }
    }

    fn start_result(&mut self, element: &BytesStart<'_>) -> Result<Open, String> {
        let mut name = "";
        let mut test_id = "";
        let mut duration = None;
        let mut outcome = "";
        for_each_attribute(element, |key, value| match key {
            "testName" => name = value,
            "testId" => test_id = value,
            "duration" => duration = parse_timespan(value),
            "outcome" => outcome = value,
            _ => {}
        })?;
        self.case.reset(Arc::from(""), decoded(name));
        self.case.duration = duration;
        let status = match outcome {
            "Failed" => Some(TestStatus::Failed),
            "Error" | "Timeout" | "Aborted" => Some(TestStatus::Errored),
            "NotExecuted" | "Inconclusive" | "NotRunnable" | "Pending" | "Disconnected" => {
                Some(TestStatus::Skipped)
            }
            _ => None,
        };
        if let Some(status) = status {
            self.case.set_outcome(status, None);
        }
        test_id.clone_into(&mut self.test_id);
        self.in_case = true;
        Ok(Open::Case)
    }
}

impl XmlHandler for TrxHandler {
    fn start(&mut self, element: &BytesStart<'_>) -> Result<(), String> {
        let local = element.local_name().into_inner();
        let open = match (self.open.last(), local) {
            // Data-driven tests nest `<InnerResults>`; only the outer result is counted.
            (_, "UnitTestResult") if !self.in_case => self.start_result(element)?,
            (Some(Open::Case), "Output") | (Some(Open::Details), "ErrorInfo") => Open::Details,
            (Some(Open::Details), "Message") => {
                self.case.begin_section(SectionKind::Outcome, "message");
                Open::Text
            }
            (Some(Open::Details), "StackTrace" | "StdOut" | "StdErr") => {
                self.case.begin_section(SectionKind::Output, local);
                Open::Text
            }
            (_, "UnitTest") if !self.in_case => {
                let mut id = "";
                for_each_attribute(element, |key, value| {
                    if key == "id" {
                        id = value;
                    }
                })?;
                self.definition = Some(id.to_owned());
                Open::Definition
            }
            (Some(Open::Definition), "TestMethod") => {
                let mut class = "";
                for_each_attribute(element, |key, value| {
                    if key == "className" {
                        class = value;
                    }
                })?;
                if let Some(id) = self.definition.take() {
                    self.classes.insert(id, Arc::from(decoded(class)));
                }
                Open::Other
            }
            _ => Open::Other,
        };
        self.open.push(open);
        Ok(())
    }

    fn end(&mut self) {
        match self.open.pop() {
            Some(Open::Case) if std::mem::replace(&mut self.in_case, false) => {
                let case = self.case.finish();
                self.results.push((std::mem::take(&mut self.test_id), case));
            }
            Some(Open::Text) => self.case.end_section(),
            Some(Open::Definition) => self.definition = None,
            _ => {}
        }
    }

    fn wants_text(&self) -> bool {
        self.open.last() == Some(&Open::Text)
    }

    fn text(&mut self, text: &str) {
        self.case.push_text(text);
    }

    fn finish(self, name: &str) -> TestReport {
        let mut report = ReportBuilder::new(ReportFormat::Trx, self.results.len());
        let mut summaries: HashMap<Arc<str>, usize> = HashMap::new();
        for (test_id, mut case) in self.results {
            if let Some(class) = self.classes.get(&test_id) {
                case.classname = Some(Arc::clone(class));
                case.suite = Arc::clone(class);
            }
            let summary = *summaries
                .entry(Arc::clone(&case.suite))
                .or_insert_with(|| report.add_suite(&case.suite, None));
            report.push(case, summary);
        }
        report.finish(name)
    }
}

/// A .NET TimeSpan as TRX writes it (`[d.]hh:mm:ss[.fffffff]`), in seconds.
fn parse_timespan(raw: &str) -> Option<f64> {
    let mut parts = raw.trim().rsplit(':');
    let seconds = parse_seconds(parts.next()?)?;
    let minutes = parts.next().map_or(Some(0.0), parse_seconds)?;
    let (days, hours) = match parts.next() {
        Some(hours) => match hours.split_once('.') {
            Some((days, hours)) => (parse_seconds(days)?, parse_seconds(hours)?),
            None => (0.0, parse_seconds(hours)?),
        },
        None => (0.0, 0.0),
    };
    Some(((days * 24.0 + hours) * 60.0 + minutes) * 60.0 + seconds)
}

#[cfg(test)]
mod tests {
    use super::parse_timespan;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("00:00:00.1084258"), Some(0.1084258));
        assert_eq!(parse_timespan("01:02:03.5"), Some(3723.5));
        assert_eq!(parse_timespan("1.00:00:01"), Some(86401.0));
        assert_eq!(parse_timespan("bogus"), None);
    }
}
