//! `read_timings` on real reports: the durations `testkube split --timings` balances shards with.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;

use testkube_core::shard::{DefaultDuration, Item, balance};
use testkube_results::{ReportError, TimingKey, read_timings};

fn sample(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rounded(map: BTreeMap<String, f64>) -> Vec<(String, f64)> {
    map.into_iter()
        .map(|(k, v)| (k, (v * 1000.0).round() / 1000.0))
        .collect()
}

#[test]
fn pytest_report_by_file_and_by_class_leaves_skipped_cases_out() {
    let report = sample("junit/pytest-horovod-gloo-standalone.xml");
    let by_file =
        read_timings([("pytest.xml", &report)], TimingKey::File).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rounded(by_file),
        [
            ("test/test_run.py".to_owned(), 3.387),
            ("test/test_spark.py".to_owned(), 194.826)
        ]
    );
    let by_class = read_timings([("pytest.xml", &report)], TimingKey::Classname)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rounded(by_class),
        [
            ("test.test_run.RunTests".to_owned(), 3.387),
            ("test.test_spark.SparkTests".to_owned(), 194.826)
        ]
    );
}

#[test]
fn reports_without_the_key_field_give_no_items() {
    // go-junit-report writes no file= attribute.
    let report = sample("junit/go-junit-report-v2-subtests.xml");
    let by_file =
        read_timings([("go.xml", &report)], TimingKey::File).unwrap_or_else(|e| panic!("{e}"));
    assert!(by_file.is_empty());
    let by_name =
        read_timings([("go.xml", &report)], TimingKey::Name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_name.len(), 10, "11 cases, one skipped");
}

#[test]
fn several_formats_and_a_json_map_together() {
    let playwright = sample("junit/playwright-junit.xml");
    let go = sample("json/go-test-json.json");
    let overrides = br#"{"TestFailing": 42, "authenticate as coachAdmin": 1.5}"#.to_vec();
    let map = read_timings(
        [
            ("playwright.xml", playwright),
            ("go.json", go),
            ("timings.json", overrides),
        ],
        TimingKey::Name,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The JSON map's keys add to the report's cases of the same name.
    assert_eq!(map.get("TestFailing"), Some(&(42.0 + 0.89)));
    assert_eq!(map.get("authenticate as coachAdmin"), Some(&(1.5 + 0.526)));
    assert_eq!(map.get("TestPassing"), Some(&0.06));
    // Deterministic: same inputs, same map.
    let again = read_timings(
        [
            ("playwright.xml", sample("junit/playwright-junit.xml")),
            ("go.json", sample("json/go-test-json.json")),
            (
                "timings.json",
                br#"{"TestFailing": 42, "authenticate as coachAdmin": 1.5}"#.to_vec(),
            ),
        ],
        TimingKey::Name,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(map, again);
}

#[test]
fn a_broken_input_names_itself() {
    let err = read_timings(
        [
            ("ok.xml", &b"<testsuite/>"[..]),
            ("cut.xml", b"<testsuite><testcase name=\"a\">"),
        ],
        TimingKey::Name,
    )
    .err();
    assert!(
        matches!(&err, Some(ReportError::Xml { file, .. }) if file == "cut.xml"),
        "{err:?}"
    );
}

/// Items with their durations as `testkube split` weighs them.
fn items(map: &BTreeMap<String, f64>) -> Vec<Item> {
    map.iter()
        .map(|(name, seconds)| Item::new(name.clone(), Some(*seconds)))
        .collect()
}

fn shards(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// A Surefire-shaped report (JUnit 5 parameterized cases all named after their method) whose
/// classes split perfectly in two: `Param` is 3 runs of 2 s, the others one run each.
const PARAMETERIZED: &str = r#"<testsuites>
  <testsuite name="io.example.Param">
    <testcase classname="io.example.Param" name="converts" time="2"/>
    <testcase classname="io.example.Param" name="converts" time="2"/>
    <testcase classname="io.example.Param" name="converts" time="2"/>
  </testsuite>
  <testsuite name="io.example.B"><testcase classname="io.example.B" name="b" time="5"/></testsuite>
  <testsuite name="io.example.C"><testcase classname="io.example.C" name="c" time="4"/></testsuite>
  <testsuite name="io.example.D"><testcase classname="io.example.D" name="d" time="3"/></testsuite>
</testsuites>"#;

#[test]
fn parameterized_runs_of_one_name_are_summed_and_the_split_reaches_the_bound() {
    let by_class = read_timings([("param.xml", PARAMETERIZED)], TimingKey::Classname)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_class.get("io.example.Param"), Some(&6.0));
    let plan = balance(&items(&by_class), shards(2), &DefaultDuration::MeanOfKnown);
    // 18 s of work: {Param, D} and {B, C} take 9 s each. Counting Param once (2 s) would put
    // it with C, and that shard would really take 10 s.
    assert_eq!(plan.lower_bound_seconds(), 9.0);
    assert_eq!(plan.makespan_seconds(), 9.0);
}

#[test]
fn a_real_report_splits_within_one_percent_of_the_lower_bound() {
    let report = sample("native/nunit3-test-run-150-bom.xml");
    for key in [TimingKey::Classname, TimingKey::Name] {
        let map = read_timings([("nunit3.xml", &report)], key).unwrap_or_else(|e| panic!("{e}"));
        let items = items(&map);
        for n in [4, 10, 25] {
            let plan = balance(&items, shards(n), &DefaultDuration::MeanOfKnown);
            let ratio = plan.makespan_seconds() / plan.lower_bound_seconds();
            assert!(
                (1.0 - 1e-12..=1.01).contains(&ratio),
                "{key} into {n}: {} s against a bound of {} s",
                plan.makespan_seconds(),
                plan.lower_bound_seconds()
            );
        }
    }
}
