//! `--junit FILE`: the test results of one run as a single JUnit XML report.
//!
//! Why: CI systems (GitLab, Jenkins, GitHub test reporters) read one JUnit
//! file per job. A sharded run produces one report per worker, in folders the
//! CI does not know about; this writes them all as one file, one
//! `<testsuite>` per worker and report suite, so the CI shows every test of
//! the run. Written with quick-junit (the writer nextest uses).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};
use testkube_core::store::{TestCaseRecord, TestCaseStatus as Status};

use crate::commands::CliError;

/// Writes `cases` (all the test cases of execution `name`) to `path` as one
/// JUnit report. A run without test results gives a report with no suites.
pub(crate) fn write(
    path: &Path,
    name: &str,
    duration: Duration,
    cases: &[TestCaseRecord],
) -> Result<(), CliError> {
    let xml = render(name, duration, cases)?;
    prepare(path)?;
    std::fs::write(path, xml).map_err(|err| {
        CliError::input(format!(
            "cannot write the JUnit report {}: {err}",
            path.display()
        ))
        .with_hint("check that the folder exists and is writable")
    })
}

/// Makes sure the report can be written at `path` (its folder exists, it
/// is not a folder itself): checked before a run, so a bad `--junit` is
/// not found out only after the tests ran.
pub(crate) fn prepare(path: &Path) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(
            CliError::usage(format!("--junit {} is a folder", path.display()))
                .with_hint("give a file name, e.g. --junit reports/junit.xml"),
        );
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| {
            CliError::usage(format!(
                "--junit: cannot create the folder {}: {err}",
                parent.display()
            ))
            .with_hint("pick a path in a folder you can write to")
        })?;
    }
    Ok(())
}

/// The report as XML text.
pub(crate) fn render(
    name: &str,
    duration: Duration,
    cases: &[TestCaseRecord],
) -> Result<String, CliError> {
    let mut report = Report::new(name);
    report.set_time(duration);
    // One suite per worker and report suite, in the order first seen.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut suites: BTreeMap<(String, String), Vec<&TestCaseRecord>> = BTreeMap::new();
    for case in cases {
        let key = (case.worker.clone(), case.suite.clone());
        let entry = suites.entry(key.clone()).or_default();
        if entry.is_empty() {
            order.push(key);
        }
        entry.push(case);
    }
    for key in order {
        let members = suites.remove(&key).unwrap_or_default();
        let (worker, suite_name) = key;
        let title = match (worker.as_str(), suite_name.is_empty()) {
            ("root" | "", false) => suite_name.clone(),
            ("root" | "", true) => name.to_owned(),
            (_, false) => format!("{suite_name} ({worker})"),
            (_, true) => worker.clone(),
        };
        let mut suite = TestSuite::new(title);
        suite.add_property(("worker", worker.as_str()));
        let mut time = Duration::ZERO;
        for case in members {
            let seconds = case
                .duration_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64);
            time += seconds.unwrap_or_default();
            suite.add_test_case(test_case(case, seconds));
        }
        suite.set_time(time);
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .map_err(|err| CliError::input(format!("cannot write the JUnit report: {err}")))
}

fn test_case(case: &TestCaseRecord, time: Option<Duration>) -> TestCase {
    let non_success = |kind| {
        let mut status = TestCaseStatus::non_success(kind);
        if let Some(message) = &case.message {
            status.set_message(first_line(message));
            status.set_description(message.as_str());
        }
        status
    };
    let status = match case.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed => non_success(NonSuccessKind::Failure),
        Status::Errored => non_success(NonSuccessKind::Error),
        Status::Skipped => {
            let mut status = TestCaseStatus::skipped();
            if let Some(message) = &case.message {
                status.set_message(message.as_str());
            }
            status
        }
        Status::Flaky => {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            if let Some(message) = &case.message {
                rerun.set_message(first_line(message));
            }
            let mut status = TestCaseStatus::success();
            status.add_rerun(rerun);
            status
        }
    };
    let mut out = TestCase::new(case.name.as_str(), status);
    if let Some(class) = &case.class {
        out.set_classname(class.as_str());
    }
    if let Some(time) = time {
        out.set_time(time);
    }
    if let Some(file) = &case.file {
        out.extra.insert("file".into(), file.as_str().into());
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(worker: &str, name: &str, status: Status, message: Option<&str>) -> TestCaseRecord {
        TestCaseRecord {
            worker: worker.to_owned(),
            suite: "suite".to_owned(),
            class: Some("pkg.Class".to_owned()),
            name: name.to_owned(),
            file: Some("tests/a.py".to_owned()),
            status,
            duration_secs: Some(0.5),
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn suites_are_per_worker_and_statuses_map_to_junit_elements() {
        let cases = [
            case("root/tests/0", "ok", Status::Passed, None),
            case(
                "root/tests/0",
                "bad",
                Status::Failed,
                Some("expected 1\nfull trace"),
            ),
            case("root/tests/1", "boom", Status::Errored, Some("crash")),
            case("root/tests/1", "later", Status::Skipped, None),
            case("root/tests/1", "wobbly", Status::Flaky, Some("timeout")),
        ];
        let xml = render("wf-1", Duration::from_secs(2), &cases).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
        assert!(xml.contains(r#"name="suite (root/tests/0)""#), "{xml}");
        assert!(xml.contains(r#"<failure message="expected 1""#), "{xml}");
        assert!(xml.contains("full trace"), "{xml}");
        assert!(xml.contains(r#"<error message="crash""#), "{xml}");
        assert!(xml.contains("<skipped"), "{xml}");
        assert!(xml.contains("<flakyFailure"), "{xml}");
        assert!(xml.contains(r#"file="tests/a.py""#), "{xml}");
        assert!(xml.contains(r#"tests="5""#), "{xml}");
    }

    #[test]
    fn a_run_without_tests_gives_an_empty_report() {
        let xml = render("wf-1", Duration::ZERO, &[]).unwrap();
        assert!(xml.contains("<testsuites"), "{xml}");
        assert!(!xml.contains("<testsuite "), "{xml}");
    }
}
