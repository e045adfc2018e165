//! Test cases as the engine and the result store see them
//! ([`TestCaseRecord`]): what a step runner sends after parsing a report.

use testkube_core::store::{TestCaseRecord, TestCaseStatus};

use crate::{TestCase, TestStatus};

/// The store record of a parsed test case, produced by `worker`.
#[must_use]
pub fn test_case_record(worker: &str, case: &TestCase) -> TestCaseRecord {
    TestCaseRecord {
        worker: worker.to_owned(),
        suite: case.suite.to_string(),
        class: case.classname.as_deref().map(str::to_owned),
        name: case.name.as_str().to_owned(),
        file: case.file.as_deref().map(str::to_owned),
        status: match case.status {
            TestStatus::Passed => TestCaseStatus::Passed,
            TestStatus::Failed => TestCaseStatus::Failed,
            TestStatus::Errored => TestCaseStatus::Errored,
            TestStatus::Skipped => TestCaseStatus::Skipped,
            TestStatus::Flaky => TestCaseStatus::Flaky,
        },
        // What the case cost the run (timed earlier attempts included): what a split balances.
        duration_secs: case.time_spent(),
        message: case.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_case_keeps_its_identity_status_and_duration() {
        let xml = br#"<testsuite name="calc"><testcase classname="Calc" name="divides" file="calc.py" time="1.5"><failure message="boom"/></testcase></testsuite>"#;
        let report = crate::parse_report(xml, "r.xml").unwrap();
        let record = test_case_record("root/tests/1", &report.cases[0]);
        assert_eq!(record.worker, "root/tests/1");
        assert_eq!(record.suite, "calc");
        assert_eq!(record.class.as_deref(), Some("Calc"));
        assert_eq!(record.name, "divides");
        assert_eq!(record.file.as_deref(), Some("calc.py"));
        assert_eq!(record.status, TestCaseStatus::Failed);
        assert_eq!(record.duration_secs, Some(1.5));
        assert_eq!(record.message.as_deref(), Some("boom"));
    }
}
