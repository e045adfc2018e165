//! The non-JUnit formats, detected from the content: NUnit 2 and 3, xUnit.net v2, TRX,
//! `go test -json` and mocha JSON (real samples, see tests/data/SOURCES.md).

use std::path::Path;

use testkube_results::{ReportError, ReportFormat, TestCase, TestReport, TestStatus, parse_report};

fn parse(path: &str) -> TestReport {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    let report = parse_report(&bytes, path).unwrap_or_else(|e| panic!("{e}"));
    let streamed =
        testkube_results::parse_reader(std::io::BufReader::with_capacity(100, &bytes[..]), path)
            .unwrap_or_else(|e| panic!("streamed: {e}"));
    assert_eq!(report, streamed);
    report
}

fn case<'r>(report: &'r TestReport, name: &str) -> &'r TestCase {
    report
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case named {name:?}"))
}

fn counts(report: &TestReport) -> [u64; 6] {
    let t = report.totals;
    [t.tests, t.passed, t.failed, t.errored, t.skipped, t.flaky]
}

#[test]
fn nunit3_failed_with_error_label_is_errored() {
    let report = parse("native/nunit3-test-run-150-bom.xml");
    assert_eq!(report.format, ReportFormat::Nunit3);
    // The header says passed="6" failed="144"; 143 of those are exceptions (label="Error").
    assert_eq!(counts(&report), [150, 6, 1, 143, 0, 0]);
    let timed_out = &report.cases[0];
    assert_eq!(timed_out.status, TestStatus::Errored);
    assert_eq!(timed_out.duration, Some(31.060108));
    assert_eq!(
        timed_out.classname.as_deref(),
        Some("MyCompanyUiSettings.Tl.My_Tasks._My_Requests.Grid.GridValidation")
    );
    assert_eq!(
        timed_out.message.as_deref(),
        Some("OpenQA.Selenium.WebDriverTimeoutException : Timed out after 30 seconds")
    );
    assert!(
        timed_out
            .output
            .as_deref()
            .unwrap_or("")
            .contains("--- stack-trace ---\n")
    );
}

#[test]
fn nunit2_nested_namespaces_and_fixtures() {
    let report = parse("native/nunit2-test-results-218.xml");
    assert_eq!(report.format, ReportFormat::Nunit2);
    assert_eq!(counts(&report), [218, 218, 0, 0, 0, 0]);
    let first = case(
        &report,
        "imG.Approx.Tests.Components.BuildingBlocks.AmountTests+Clone.should_return_different_object",
    );
    assert_eq!(&*first.suite, "AmountTests+Clone");
    assert_eq!(
        first.classname.as_deref(),
        Some("imG.Approx.Tests.Components.BuildingBlocks.AmountTests+Clone")
    );
    assert_eq!(first.duration, Some(0.012));
}

#[test]
fn xunit_net_v2_fail_skip_pass() {
    let report = parse("native/xunitnet-v2-assemblies-fail-skip.xml");
    assert_eq!(report.format, ReportFormat::XunitNet);
    assert_eq!(counts(&report), [3, 1, 1, 0, 1, 0]);
    let failed = case(&report, "MyProject.Tests.SampleFact.FailedTest");
    assert_eq!(failed.message.as_deref(), Some("Assert.True() Failure"));
    assert_eq!(
        failed.classname.as_deref(),
        Some("MyProject.Tests.SampleFact")
    );
    assert_eq!(
        &*failed.suite,
        "Test collection for MyProject.Tests.SampleFact"
    );
    assert!(failed.output.as_deref().unwrap_or("").starts_with(
        "Assert.True() Failure\n--- stack-trace ---\nat MyProject.Tests.SampleFact.FailedTest()"
    ));
    let skipped = case(&report, "MyProject.Tests.SampleFact.SkippedTest");
    assert_eq!(skipped.message.as_deref(), Some("On Purpose"));
}

#[test]
fn trx_results_joined_with_their_class_definitions() {
    let report = parse("native/mstest-trx-xunit.trx");
    assert_eq!(report.format, ReportFormat::Trx);
    assert_eq!(counts(&report), [11, 5, 5, 0, 1, 0]);
    let theory = case(&report, "Should be even number(i: 3)");
    assert_eq!(theory.status, TestStatus::Failed);
    assert_eq!(theory.duration, Some(0.0006537));
    assert_eq!(
        theory.classname.as_deref(),
        Some("DotnetTests.XUnitTests.CalculatorTests")
    );
    // `&#xD;` followed by a newline is one line end.
    assert!(theory.output.as_deref().unwrap_or("").starts_with(
        "Assert.True() Failure\nExpected: True\nActual:   False\n--- StackTrace ---\n"
    ));
    assert_eq!(
        case(
            &report,
            "DotnetTests.XUnitTests.CalculatorTests.Skipped_Test"
        )
        .status,
        TestStatus::Skipped
    );
}

#[test]
fn go_test_json_events_become_cases_with_subtests() {
    let report = parse("json/go-test-json.json");
    assert_eq!(report.format, ReportFormat::GoTestJson);
    assert_eq!(counts(&report), [12, 5, 6, 0, 1, 0]);
    let failing = case(&report, "TestFailing");
    assert_eq!(failing.duration, Some(0.89));
    assert_eq!(
        failing.message.as_deref(),
        Some("calculator_test.go:19: expected 1+1 = 3, got 2")
    );
    assert_eq!(
        failing.output.as_deref(),
        Some(
            "=== RUN   TestFailing\n    calculator_test.go:19: expected 1+1 = 3, got 2\n--- FAIL: TestFailing (0.89s)"
        )
    );
    assert_eq!(
        case(&report, "TestCases/2_+_3_=_4").status,
        TestStatus::Failed
    );
    assert_eq!(
        case(&report, "TestCases/1_+_2_=_3").status,
        TestStatus::Passed
    );
    assert_eq!(
        case(&report, "TestSkipped").message.as_deref(),
        Some("calculator_test.go:45: skipping test")
    );
    assert_eq!(
        report.cases[0].classname.as_deref(),
        Some("_/home/james_t/git/test-reporter/reports/go")
    );
}

#[test]
fn go_test_json_unfinished_test_is_errored() {
    let events = br#"{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 10m0s\n"}
{"Action":"fail","Package":"p","Elapsed":600}
"#;
    let report = parse_report(events, "go.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.cases.len(), 1);
    assert_eq!(report.cases[0].status, TestStatus::Errored);
    assert_eq!(
        report.cases[0].message.as_deref(),
        Some("the test never finished")
    );
}

#[test]
fn mocha_json_pending_tests_are_skipped() {
    let report = parse("json/mocha-json-reporter-mocha-repo.json");
    assert_eq!(report.format, ReportFormat::MochaJson);
    assert_eq!(counts(&report), [839, 833, 0, 0, 6, 0]);
    let pending = case(
        &report,
        "Mocha instance method run() should initialize the stats collector",
    );
    assert_eq!(pending.status, TestStatus::Skipped);
    assert_eq!(&*pending.suite, "Mocha instance method run()");
    assert_eq!(
        pending.file.as_deref(),
        Some("C:\\Users\\Michal\\Workspace\\dorny\\mocha\\test\\unit\\mocha.spec.js")
    );
    let first = &report.cases[0];
    assert_eq!(first.name, "Context nested should work");
    assert_eq!(first.duration, Some(0.003));
}

#[test]
fn mocha_json_failures_and_retries() {
    let json = br#"{"stats":{"tests":3},"tests":[
        {"title":"works","fullTitle":"api works","file":"t.js","duration":5,"currentRetry":0,"err":{}},
        {"title":"flaky","fullTitle":"api flaky","file":"t.js","duration":7,"currentRetry":2,"err":{}},
        {"title":"breaks","fullTitle":"api breaks","file":"t.js","duration":9,"currentRetry":1,
         "err":{"message":"expected 1 to equal 2","stack":"AssertionError: expected 1 to equal 2\n    at Context.<anonymous> (t.js:9:5)"}}
    ],"pending":[],"failures":[],"passes":[]}"#;
    let report = parse_report(json, "mocha.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts(&report), [3, 1, 1, 0, 0, 1]);
    let flaky = case(&report, "api flaky");
    assert_eq!((flaky.status, flaky.reruns), (TestStatus::Flaky, 2));
    let breaks = case(&report, "api breaks");
    assert_eq!(breaks.message.as_deref(), Some("expected 1 to equal 2"));
    assert_eq!(breaks.reruns, 1);
    assert!(
        breaks
            .output
            .as_deref()
            .unwrap_or("")
            .ends_with("(t.js:9:5)")
    );
}

#[test]
fn malformed_and_unknown_json() {
    let err = parse_report(b"{\"stats\": {\"tests\": 1}, \"tests\": [", "m.json").err();
    assert!(
        matches!(err, Some(ReportError::Json { line: 1, .. })),
        "{err:?}"
    );
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("m.json:1:34: malformed JSON: EOF while parsing a list")
    );
    let err = parse_report(b"{\"name\": \"not a report\"}", "x.json").err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some(
            "x.json: not a test report: JSON that is neither `go test -json` output nor `mocha --reporter json` output"
        )
    );
    let err = parse_report(
        b"{\"Action\":\"run\",\"Test\":\"T\"}\n{\"Action\": 3}",
        "g.json",
    )
    .err();
    assert!(
        matches!(err, Some(ReportError::Json { line: 2, .. })),
        "{err:?}"
    );
}
