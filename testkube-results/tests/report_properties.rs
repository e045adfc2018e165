//! Property tests: reports written from random cases read back to the same cases, in memory and
//! streamed through any buffer size; arbitrary bytes never panic and both readers agree.

use std::io::BufReader;

use proptest::prelude::*;
use testkube_results::{TestStatus, parse_reader, parse_report};

#[derive(Debug, Clone)]
struct Case {
    name: String,
    millis: u32,
    status: TestStatus,
    message: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        // Names with the characters that need escaping, and non-ASCII.
        "[a-zA-Z0-9_ <>&\"'é€.\\[\\]]{1,20}",
        0u32..100_000,
        prop_oneof![
            Just(TestStatus::Passed),
            Just(TestStatus::Failed),
            Just(TestStatus::Errored),
            Just(TestStatus::Skipped),
            Just(TestStatus::Flaky),
        ],
        "[a-z<>&][a-z <>&]{0,29}",
    )
        .prop_map(|(name, millis, status, message)| Case {
            name: name.trim().to_owned(),
            millis,
            status,
            message: message.trim().to_owned(),
        })
}

fn write_report(suites: &[Vec<Case>]) -> String {
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"999\">\n");
    for (index, cases) in suites.iter().enumerate() {
        xml.push_str(&format!("  <testsuite name=\"suite {index}\">\n"));
        for case in cases {
            let time = format!("{}.{:03}", case.millis / 1000, case.millis % 1000);
            xml.push_str(&format!(
                "    <testcase classname=\"C{index}\" name=\"{}\" time=\"{time}\">",
                escape(&case.name)
            ));
            let message = escape(&case.message);
            match case.status {
                TestStatus::Passed => {}
                TestStatus::Failed => {
                    xml.push_str(&format!("<failure message=\"{message}\"><![CDATA[trace]]></failure>"))
                }
                TestStatus::Errored => xml.push_str(&format!("<error message=\"{message}\">trace</error>")),
                TestStatus::Skipped => xml.push_str(&format!("<skipped message=\"{message}\"/>")),
                TestStatus::Flaky => xml.push_str(&format!(
                    "<flakyFailure message=\"{message}\"><stackTrace>trace</stackTrace></flakyFailure>"
                )),
            }
            xml.push_str("</testcase>\n");
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn written_reports_read_back(
        suites in prop::collection::vec(prop::collection::vec(case_strategy(), 0..8), 0..5),
        buffer in 1usize..300,
    ) {
        let xml = write_report(&suites);
        let report = parse_report(xml.as_bytes(), "p.xml").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let streamed = parse_reader(BufReader::with_capacity(buffer, xml.as_bytes()), "p.xml")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&report, &streamed);

        let expected: Vec<&Case> = suites.iter().flatten().collect();
        prop_assert_eq!(report.cases.len(), expected.len());
        prop_assert_eq!(report.totals.tests as usize, expected.len());
        let count = |status| expected.iter().filter(|c| c.status == status).count() as u64;
        prop_assert_eq!(report.totals.failed, count(TestStatus::Failed));
        prop_assert_eq!(report.totals.flaky, count(TestStatus::Flaky));
        for (read, written) in report.cases.iter().zip(&expected) {
            prop_assert_eq!(&read.name, &written.name);
            prop_assert_eq!(read.status, written.status);
            prop_assert_eq!(read.duration, Some(f64::from(written.millis) / 1000.0));
            if written.status != TestStatus::Passed {
                prop_assert_eq!(read.message.as_deref(), Some(written.message.as_str()));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_both_readers_agree(
        prefix in prop_oneof![Just(""), Just("<testsuite>"), Just("<?xml version=\"1.0\"?><testsuites><testsuite name=\"s\"><testcase name=\"t\">")],
        body in prop::collection::vec(any::<u8>(), 0..200),
        buffer in 1usize..64,
    ) {
        let mut input = prefix.as_bytes().to_vec();
        input.extend_from_slice(&body);
        let in_memory = parse_report(&input, "f").map_err(|e| e.to_string());
        let streamed = parse_reader(BufReader::with_capacity(buffer, &input[..]), "f").map_err(|e| e.to_string());
        match (&in_memory, &streamed) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "readers disagree: {:?} vs {:?}", in_memory, streamed),
        }
    }
}
