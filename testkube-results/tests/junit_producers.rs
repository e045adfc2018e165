//! One test per JUnit producer: real reports (see tests/data/SOURCES.md) and handwritten samples
//! of dialects no real sample covers. Each asserts the totals computed from the cases and the
//! details of specific cases a user would look at.

use std::path::{Path, PathBuf};

use testkube_results::{ReportFormat, TestCase, TestReport, TestStatus, Totals, parse_reader};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// Parses a sample both ways (in memory and streamed through a small buffer) and checks they
/// agree, so every producer test also covers the streaming reader.
fn parse(path: &str) -> TestReport {
    let bytes = std::fs::read(data(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let report = testkube_results::parse_report(&bytes, path).unwrap_or_else(|e| panic!("{e}"));
    let streamed = parse_reader(std::io::BufReader::with_capacity(64, &bytes[..]), path)
        .unwrap_or_else(|e| panic!("streamed: {e}"));
    assert_eq!(report, streamed, "{path}: streamed parse differs");
    report
}

fn case<'r>(report: &'r TestReport, name: &str) -> &'r TestCase {
    report
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case named {name:?} in {}", report.name))
}

fn counts(totals: &Totals) -> [u64; 6] {
    [
        totals.tests,
        totals.passed,
        totals.failed,
        totals.errored,
        totals.skipped,
        totals.flaky,
    ]
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[test]
fn surefire_flaky_failures_then_pass_make_a_flaky_case() {
    let report = parse("junit/surefire-3.0.2-flakyFailure.xml");
    assert_eq!(report.format, ReportFormat::Junit);
    // The header says failures="2": those are the two flaky attempts, not final failures.
    assert_eq!(counts(&report.totals), [1, 0, 0, 0, 0, 1]);
    let test_app = case(&report, "testApp");
    assert_eq!(test_app.status, TestStatus::Flaky);
    assert_eq!(test_app.reruns, 2);
    assert_eq!(test_app.message.as_deref(), Some("obvious fail"));
    assert_eq!(test_app.classname.as_deref(), Some("io.olamy.FlakyTest"));
    assert_eq!(&*test_app.suite, "io.olamy.FlakyTest");
    assert_eq!(test_app.duration, Some(0.001));
    let output = test_app.output.as_deref().unwrap_or("");
    assert!(
        output.starts_with(
            "--- flakyFailure ---\njunit.framework.AssertionFailedError: obvious fail\n\tat junit.framework.Assert.fail(Assert.java:57)"
        ),
        "{output}"
    );
    assert!(output.contains("AssertionFailedError: try one more time maybe"));
    // The attempts' own system-out is not mixed into the case output.
    assert!(!output.contains("this will fail maybe"));
}

#[test]
fn surefire_rerun_failures_with_a_final_failure_are_failed() {
    let report = parse("junit/surefire-3.0.2-rerunFailure.xml");
    assert_eq!(counts(&report.totals), [1, 0, 1, 0, 0, 0]);
    let test_app = case(&report, "testApp");
    assert_eq!(test_app.status, TestStatus::Failed);
    assert_eq!(test_app.reruns, 3);
    assert_eq!(test_app.message.as_deref(), Some("built to fail"));
    let output = test_app.output.as_deref().unwrap_or("");
    assert!(output.starts_with("junit.framework.AssertionFailedError: built to fail\n"));
    assert!(output.contains("--- system-out ---\nthis will fail for real"));
    assert!(output.contains("--- system-err ---\nthis will really fail"));
    assert_eq!(output.matches("--- rerunFailure ---").count(), 3);
}

#[test]
fn nextest_quick_junit_flaky_rerun_error_and_skip() {
    let report = parse("junit/quick-junit-basic_report.xml");
    assert_eq!(counts(&report.totals), [8, 2, 3, 1, 1, 1]);
    assert!(close(
        report.totals.duration,
        4.242 + 421.580 + 661.661 + 0.156 + 0.5
    ));
    let statuses: Vec<(&str, TestStatus, u32)> = report
        .cases
        .iter()
        .map(|c| (c.name.as_str(), c.status, c.reruns))
        .collect();
    assert_eq!(
        statuses,
        [
            ("testcase0", TestStatus::Passed, 0),
            ("testcase1", TestStatus::Failed, 0),
            ("testcase2", TestStatus::Errored, 0),
            ("testcase3", TestStatus::Skipped, 0),
            ("testcase4", TestStatus::Flaky, 2),
            ("testcase5", TestStatus::Failed, 2),
            ("testcase6", TestStatus::Passed, 0),
            // Passed on the last attempt, but configured to fail when flaky: the final
            // <failure> decides.
            ("testcase7", TestStatus::Failed, 2),
        ]
    );
    let testcase1 = case(&report, "testcase1");
    assert_eq!(testcase1.message.as_deref(), Some("testcase1-message"));
    assert_eq!(
        testcase1.output.as_deref(),
        Some("this is the failure description\n--- system-err ---\nsome sort of failure output")
    );
    // No message attribute: the error text's first line is the message.
    assert_eq!(
        case(&report, "testcase2").message.as_deref(),
        Some("testcase2 error description")
    );
    assert_eq!(
        case(&report, "testcase3").message.as_deref(),
        Some("skipped message")
    );
    assert_eq!(
        case(&report, "testcase4").message.as_deref(),
        Some("this is a flaky failure description")
    );
    assert_eq!(case(&report, "testcase0").duration, None);
    assert_eq!(
        case(&report, "testcase0").output,
        None,
        "passing cases keep no output"
    );
}

#[test]
fn go_junit_report_subtests_with_cdata_and_properties() {
    let report = parse("junit/go-junit-report-v2-subtests.xml");
    assert_eq!(counts(&report.totals), [11, 6, 4, 0, 1, 0]);
    let failed = case(&report, "TestSubtests/Subtest#01");
    assert_eq!(failed.status, TestStatus::Failed);
    assert_eq!(failed.message.as_deref(), Some("Failed"));
    assert_eq!(
        failed.output.as_deref(),
        Some("subtests_test.go:10: error message")
    );
    let skipped = case(&report, "TestSubtests/Subtest#02");
    assert_eq!(skipped.status, TestStatus::Skipped);
    assert_eq!(
        skipped.output.as_deref(),
        Some("subtests_test.go:13: skip message")
    );
    assert_eq!(
        case(&report, "TestNestedSubtests/a#1/b#1/c#1").status,
        TestStatus::Passed
    );
    assert_eq!(report.suites.len(), 1);
    assert_eq!(report.suites[0].name, "package/subtests");
}

#[test]
fn gradle_junit5_bare_testsuite() {
    let report = parse("junit/gradle-junit5-CalculatorTest.xml");
    assert_eq!(counts(&report.totals), [24, 24, 0, 0, 0, 0]);
    assert!(close(report.totals.duration, 0.027));
    let first = &report.cases[0];
    assert_eq!(
        first.name,
        "adding two numbers should be a positive sum when summing two positive numbers()"
    );
    assert_eq!(first.duration, Some(0.003));
    // Parameterized names repeat across methods; each one is its own case.
    assert_eq!(
        report
            .cases
            .iter()
            .filter(|c| c.name == "[1] 1, 2, 3")
            .count(),
        1
    );
}

#[test]
fn jest_junit_failures_without_message_attribute_take_the_first_line() {
    let report = parse("junit/jest-junit-small-failures.xml");
    // The root says tests="6" failures="4" but the second suite also skips one.
    assert_eq!(counts(&report.totals), [6, 1, 4, 0, 1, 0]);
    let failing = case(&report, "Failing test");
    assert_eq!(failing.classname.as_deref(), Some("Test 1 › Test 1.1"));
    assert_eq!(
        failing.message.as_deref(),
        Some("Error: expect(received).toBeTruthy()")
    );
    let output = failing.output.as_deref().unwrap_or("");
    assert!(
        output.contains("at Object.<anonymous> (C:\\Users\\Michal"),
        "{output}"
    );
    assert_eq!(&*failing.suite, "__tests__\\main.test.js");
    assert_eq!(case(&report, "Skipped test").status, TestStatus::Skipped);
}

#[test]
fn playwright_skips_failures_and_entity_decoded_names() {
    let report = parse("junit/playwright-junit.xml");
    assert_eq!(counts(&report.totals), [60, 36, 4, 0, 20, 0]);
    assert_eq!(report.suites.len(), 7);
    let skipped = case(
        &report,
        "record \"Time to Video\" when loading directly via URL › using manual timings",
    );
    assert_eq!(skipped.status, TestStatus::Skipped);
    let failed = case(
        &report,
        "Grid › Data Entry › should open select dropdown options when pressing Spacebar in grid cell",
    );
    assert_eq!(failed.status, TestStatus::Failed);
    assert_eq!(failed.duration, Some(10.0));
    assert_eq!(
        failed.message.as_deref(),
        Some(
            "grid.spec.ts:254:9 should open select dropdown options when pressing Spacebar in grid cell"
        )
    );
    let output = failed.output.as_deref().unwrap_or("");
    assert!(
        output.starts_with("[chrome] › tests/grid.spec.ts:254:9"),
        "{output}"
    );
    assert!(output.contains("Test timeout of 10000ms exceeded."));
}

#[test]
fn pytest_legacy_file_attributes_and_skip_messages() {
    let report = parse("junit/pytest-horovod-gloo-standalone.xml");
    assert_eq!(counts(&report.totals), [97, 80, 0, 0, 17, 0]);
    let skipped = case(&report, "test_get_available_devices");
    assert_eq!(skipped.status, TestStatus::Skipped);
    assert_eq!(skipped.file.as_deref(), Some("test/test_spark.py"));
    assert_eq!(
        skipped.message.as_deref(),
        Some("get_available_devices only supported in Spark 3.0 and above")
    );
    let slow = case(&report, "test_happy_run_elastic");
    assert_eq!(slow.duration, Some(11.536));
    assert_eq!(
        slow.classname.as_deref(),
        Some("test.test_spark.SparkTests")
    );
    assert_eq!(&*slow.suite, "pytest");
}

#[test]
fn tst_status_attribute_marks_disabled_cases_skipped() {
    let report = parse("junit/tst-cpp-disabled.xml");
    assert_eq!(counts(&report.totals), [31, 6, 19, 1, 5, 0]);
    let disabled = case(&report, "disabled_test");
    assert_eq!(disabled.status, TestStatus::Skipped);
    let errored = case(&report, "test_which_throws_unknown_exception");
    assert_eq!(errored.status, TestStatus::Errored);
    assert_eq!(
        errored.message.as_deref(),
        Some("uncaught (anonymous namespace)::some_unknown_exception")
    );
    assert_eq!(
        case(&report, "check_eq").message.as_deref(),
        Some("/home/ivan/prj/tst/tests/failed/checks.cpp:15: error: check_eq(1, 2)Hello world!")
    );
    assert_eq!(
        report
            .suites
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["factorial", "failing_checks"]
    );
}

#[test]
fn large_ant_junitreport_from_shared_data() {
    // Kept out of the crate (it is large); read from the shared data set when it is there.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/reports/large/ant-junitreport-eclipse-pde-3366.xml");
    let Ok(file) = std::fs::File::open(&path) else {
        eprintln!("skipped: {} is missing", path.display());
        return;
    };
    let report = parse_reader(std::io::BufReader::new(file), "ant-junitreport.xml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts(&report.totals), [3366, 3366, 0, 0, 0, 0]);
    assert_eq!(report.suites.len(), 16);
    assert!(close(report.totals.duration, 366.025));
}

// Handwritten samples (tests/data/handwritten), for dialects no real sample covers.

#[test]
fn pytest_xunit2_skips_xfail_setup_errors_and_unicode() {
    let report = parse("handwritten/pytest-xunit2-skipped.xml");
    assert_eq!(counts(&report.totals), [6, 2, 1, 1, 2, 0]);
    let failed = case(&report, "test_create_user[admin]");
    assert_eq!(
        failed.message.as_deref(),
        Some("AssertionError: assert 500 == 201\n +  where 500 = <Response [500]>.status_code")
    );
    assert!(
        failed
            .output
            .as_deref()
            .unwrap_or("")
            .contains(">       assert resp.status_code == 201")
    );
    let setup_error = case(&report, "test_connect");
    assert_eq!(setup_error.status, TestStatus::Errored);
    assert_eq!(
        setup_error.message.as_deref(),
        Some("failed on setup with \"ConnectionRefusedError: [Errno 111] Connection refused\"")
    );
    let skipped = case(&report, "test_delete_user");
    assert_eq!(skipped.message.as_deref(), Some("requires postgres"));
    assert_eq!(
        skipped.output.as_deref(),
        Some("tests/test_api.py:20: requires postgres")
    );
    assert_eq!(case(&report, "test_known_bug").status, TestStatus::Skipped);
    assert_eq!(case(&report, "test_unicode_ünïcødé").duration, Some(1.576));
}

#[test]
fn jest_junit_file_attribute_and_trailing_space_classnames() {
    let report = parse("handwritten/jest-junit-file-attribute.xml");
    assert_eq!(counts(&report.totals), [4, 2, 1, 0, 1, 0]);
    let click = case(&report, "Button click calls onClick once");
    assert_eq!(
        click.file.as_deref(),
        Some("src/components/Button.test.tsx")
    );
    assert_eq!(click.classname.as_deref(), Some("Button click"), "trimmed");
    assert_eq!(
        click.message.as_deref(),
        Some("Error: expect(jest.fn()).toHaveBeenCalledTimes(expected)")
    );
    assert_eq!(
        case(&report, "format pads numbers").file.as_deref(),
        Some("src/utils/format.test.ts")
    );
}

#[test]
fn phpunit_nested_suites_inherit_the_file() {
    let report = parse("handwritten/phpunit-nested-suites.xml");
    assert_eq!(counts(&report.totals), [5, 2, 1, 1, 1, 0]);
    let by_zero = case(&report, "testDivide with data set \"by zero\"");
    assert_eq!(by_zero.status, TestStatus::Failed);
    assert_eq!(
        &*by_zero.suite,
        "App\\Tests\\Unit\\CalculatorTest::testDivide"
    );
    assert_eq!(
        by_zero.classname.as_deref(),
        Some("App.Tests.Unit.CalculatorTest")
    );
    assert_eq!(
        by_zero.file.as_deref(),
        Some("/app/tests/Unit/CalculatorTest.php")
    );
    assert_eq!(
        by_zero.message.as_deref(),
        Some("App\\Tests\\Unit\\CalculatorTest::testDivide with data set \"by zero\" (10, 0, 0)")
    );
    // testSend has no file= of its own: it comes from the enclosing suite.
    let send = case(&report, "testSend");
    assert_eq!(send.status, TestStatus::Errored);
    assert_eq!(send.file.as_deref(), Some("/app/tests/Unit/MailerTest.php"));
    assert!(
        send.output
            .as_deref()
            .unwrap_or("")
            .ends_with("--- system-out ---\nconnecting to smtp://localhost:25")
    );
    let suites: Vec<&str> = report.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        suites,
        [
            "App\\Tests\\Unit\\CalculatorTest",
            "App\\Tests\\Unit\\CalculatorTest::testDivide",
            "App\\Tests\\Unit\\MailerTest"
        ]
    );
}

#[test]
fn cypress_root_suite_file_applies_to_the_following_suites() {
    let report = parse("handwritten/cypress-mocha-junit-nested.xml");
    assert_eq!(counts(&report.totals), [4, 3, 1, 0, 0, 0]);
    for case in &report.cases {
        assert_eq!(
            case.file.as_deref(),
            Some("cypress/e2e/login.cy.ts"),
            "{}",
            case.name
        );
    }
    let nested = case(&report, "Login with SSO via Google redirects back");
    assert_eq!(&*nested.suite, "Login with SSO via Google");
    let failed = case(&report, "Login rejects a wrong password");
    assert_eq!(
        failed.message.as_deref(),
        Some(
            "Timed out retrying after 4000ms: Expected to find content: 'Invalid password' but never did."
        )
    );
    assert!(report.suites.iter().all(|s| s.name != "Root Suite"));
}

#[test]
fn nextest_flaky_failure_and_rerun_failure() {
    let report = parse("handwritten/nextest-flaky-retries.xml");
    assert_eq!(counts(&report.totals), [4, 2, 1, 0, 0, 1]);
    let flaky = case(&report, "tests::network_roundtrip");
    assert_eq!(flaky.status, TestStatus::Flaky);
    assert_eq!(flaky.reruns, 1);
    assert_eq!(
        flaky.message.as_deref(),
        Some("thread 'tests::network_roundtrip' panicked at src/net.rs:88:9:")
    );
    let output = flaky.output.as_deref().unwrap_or("");
    assert!(
        output.starts_with("--- flakyFailure ---\nthread"),
        "{output}"
    );
    assert!(
        output
            .ends_with("--- system-out ---\nrunning 1 test\ntest tests::network_roundtrip ... ok")
    );
    let failed = case(&report, "tests::always_fails");
    assert_eq!((failed.status, failed.reruns), (TestStatus::Failed, 1));
    assert!(close(report.totals.duration, 0.012 + 1.204 + 0.004 + 0.420));
}

#[test]
fn json_serialization_is_camel_case_and_skips_empty_fields() {
    let report = parse("handwritten/nextest-flaky-retries.xml");
    let json = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(json["format"], "junit");
    assert_eq!(json["totals"]["flaky"], 1);
    assert_eq!(json["cases"][1]["status"], "flaky");
    assert_eq!(json["cases"][1]["reruns"], 1);
    assert_eq!(json["cases"][0]["classname"], "my-crate");
    assert!(json["cases"][0].get("message").is_none());
    assert!(json["cases"][0].get("file").is_none());
}
