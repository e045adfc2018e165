//! Per-item durations for duration-balanced test splitting (`testkube split --timings`).
//!
//! Timings come from earlier runs' reports (any format [`parse_report`] reads) or from a plain
//! JSON map `{"item": seconds}`. The item is what the user splits: test names, class names or
//! files ([`TimingKey`]); one item usually covers several cases, so their durations are summed.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::case_name::CaseName;
use crate::input::{Syntax, prepare};
use crate::model::{TestCase, TestStatus};
use crate::{ReportError, parse_report};

/// Which field of a test case names the item being split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TimingKey {
    /// The test case's name.
    #[default]
    Name,
    /// The test case's class (`classname`).
    Classname,
    /// The test case's source file.
    File,
}

impl TimingKey {
    /// The field of `case` this key reads, if the producer wrote it.
    pub fn of<'c>(&self, case: &'c TestCase) -> Option<&'c str> {
        match self {
            TimingKey::Name => Some(case.name.as_str()),
            TimingKey::Classname => case.classname.as_deref(),
            TimingKey::File => case.file.as_deref(),
        }
    }
}

impl FromStr for TimingKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "name" => Ok(TimingKey::Name),
            "classname" => Ok(TimingKey::Classname),
            "file" => Ok(TimingKey::File),
            other => Err(format!(
                "unknown timing key {other:?}: expected name, classname or file"
            )),
        }
    }
}

impl fmt::Display for TimingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimingKey::Name => "name",
            TimingKey::Classname => "classname",
            TimingKey::File => "file",
        })
    }
}

/// Reads durations per item from several inputs, each given as `(name, bytes)`; the name is only
/// used in errors.
///
/// Each input is a test report in any format [`parse_report`] reads, or a JSON object mapping
/// item keys to seconds (`{"tests/test_a.py": 12.5}`), whose keys are used as they are whatever
/// `key` is.
///
/// # What counts as a run
///
/// - Within one report, cases that share a key are **summed** (a file's time is the sum of its
///   cases). A case listed several times ran several times, and each run took time: JUnit 5 or
///   pytest parameterized cases that share one name, Gradle's test-retry (a `<testcase>` per
///   attempt), mocha titles that repeat.
/// - Earlier attempts nested in a case (`flakyFailure`, `rerunFailure`, ...) count when the
///   producer times them (nextest writes `time` on each); Surefire writes one `time` for the case
///   and none per attempt, so only that one is known ([`TestCase::time_spent`]).
/// - The same run reported twice counts once: go's subtests (`TestX/case`, from go-junit-report
///   or `go test -json`) run inside their parent `TestX`, whose time already includes them, so a
///   case nested under another listed case of the same class adds nothing to its class or file
///   (it is still an item of its own by name).
///
/// # Precedence
///
/// - Across inputs, each test case (same suite, class, name and file), or each key of a JSON
///   map, counts **once, from the latest input that mentions it**: passing last week's and
///   yesterday's reports keeps yesterday's figures, while the reports of several shards of one
///   run (disjoint cases) add up.
/// - Skipped cases and cases without a duration are left out: they say nothing about how long
///   the item takes. Cases without the chosen field (no `file=` when splitting by file) are left
///   out too; the splitter treats such items as unknown.
///
/// The result is ordered by key, so equal inputs give equal maps.
///
/// # Errors
///
/// The first input that cannot be parsed, as a [`ReportError`] naming it; a JSON map with a
/// value that is not a non-negative number is [`ReportError::InvalidTimings`].
pub fn read_timings<I, N, B>(
    inputs: I,
    key: TimingKey,
) -> Result<BTreeMap<String, f64>, ReportError>
where
    I: IntoIterator<Item = (N, B)>,
    N: AsRef<str>,
    B: AsRef<[u8]>,
{
    let mut maps = read_timings_by(inputs, &[key])?;
    Ok(maps.pop().unwrap_or_default())
}

/// [`read_timings`] for several keys at once, one map per key in `keys`'
/// order, reading and parsing each input only once (callers that match
/// items by file, then name, then class need all three).
///
/// # Errors
///
/// As [`read_timings`].
pub fn read_timings_by<I, N, B>(
    inputs: I,
    keys: &[TimingKey],
) -> Result<Vec<BTreeMap<String, f64>>, ReportError>
where
    I: IntoIterator<Item = (N, B)>,
    N: AsRef<str>,
    B: AsRef<[u8]>,
{
    // Ordered maps so float sums happen in one order on every run.
    let mut latest: Vec<BTreeMap<Identity, f64>> = keys.iter().map(|_| BTreeMap::new()).collect();
    for (name, bytes) in inputs {
        let (name, bytes) = (name.as_ref(), bytes.as_ref());
        let mut this_input: Vec<BTreeMap<Identity, f64>> =
            keys.iter().map(|_| BTreeMap::new()).collect();
        match timing_map(bytes, name)? {
            Some(map) => {
                for per_key in &mut this_input {
                    for (item, seconds) in &map {
                        per_key.insert(Identity::Item(item.clone()), *seconds);
                    }
                }
            }
            None => {
                let report = parse_report(bytes, name)?;
                let parents = Parents::of(&report.cases);
                for case in &report.cases {
                    if case.status == TestStatus::Skipped {
                        continue;
                    }
                    let Some(seconds) = case.time_spent() else {
                        continue;
                    };
                    let nested = parents.contain(case);
                    for (key, per_key) in keys.iter().zip(&mut this_input) {
                        if nested && *key != TimingKey::Name {
                            continue;
                        }
                        let Some(item) = key.of(case).map(str::to_owned) else {
                            continue;
                        };
                        let identity = Identity::Case {
                            suite: case.suite.to_string(),
                            classname: case.classname.as_deref().map(str::to_owned),
                            name: case.name.clone(),
                            file: case.file.as_deref().map(str::to_owned),
                            item,
                        };
                        *per_key.entry(identity).or_insert(0.0) += seconds;
                    }
                }
            }
        }
        for (all, this) in latest.iter_mut().zip(this_input) {
            all.extend(this);
        }
    }
    Ok(latest
        .into_iter()
        .map(|per_key| {
            let mut by_item = BTreeMap::new();
            for (identity, seconds) in per_key {
                let item = match identity {
                    Identity::Item(item) | Identity::Case { item, .. } => item,
                };
                *by_item.entry(item).or_insert(0.0) += seconds;
            }
            by_item
        })
        .collect())
}

/// The cases of a report that others nest under (`TestX` for `TestX/case`), by suite and class.
struct Parents<'r> {
    names: HashSet<(&'r str, Option<&'r str>, &'r str)>,
}

impl<'r> Parents<'r> {
    fn of(cases: &'r [TestCase]) -> Self {
        let nesting = cases.iter().any(|case| case.name.contains('/'));
        let names = if nesting {
            cases
                .iter()
                .map(|case| (&*case.suite, case.classname.as_deref(), case.name.as_str()))
                .collect()
        } else {
            HashSet::new()
        };
        Parents { names }
    }

    /// Whether `case` runs inside another listed case: a prefix of its name up to a `/` names
    /// a case of the same suite and class.
    fn contain(&self, case: &TestCase) -> bool {
        let name = case.name.as_str();
        !self.names.is_empty()
            && name.match_indices('/').any(|(at, _)| {
                self.names
                    .contains(&(&*case.suite, case.classname.as_deref(), &name[..at]))
            })
    }
}

/// What "the same test" means across inputs.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Identity {
    Item(String),
    Case {
        suite: String,
        classname: Option<String>,
        name: CaseName,
        file: Option<String>,
        /// The key the case contributes to (determined by the identity fields and the key).
        item: String,
    },
}

/// A plain `{"item": seconds}` map, or `None` when the input is something else (a report).
fn timing_map(bytes: &[u8], name: &str) -> Result<Option<BTreeMap<String, f64>>, ReportError> {
    let prepared = prepare(bytes, name)?;
    if !matches!(prepared.syntax, Syntax::Json) {
        return Ok(None);
    }
    // go test -json is several objects, one per line: not a single map, so a report.
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&prepared.bytes) else {
        return Ok(None);
    };
    if object.values().any(|v| !v.is_number()) && !object.is_empty() {
        // A JSON report (mocha) or garbage: let the report parser decide and explain.
        if object
            .values()
            .all(|v| v.is_number() || v.is_null() || v.is_string())
        {
            return Err(ReportError::InvalidTimings {
                file: name.to_owned(),
                message: "every value must be a number of seconds".to_owned(),
            });
        }
        return Ok(None);
    }
    let mut map = BTreeMap::new();
    for (item, value) in object {
        let seconds = value
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| ReportError::InvalidTimings {
                file: name.to_owned(),
                message: format!("{item:?}: {value} is not a non-negative number of seconds"),
            })?;
        map.insert(item, seconds);
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_keys_at_once_equal_one_key_at_a_time() {
        let inputs = [("a.xml", REPORT_A.as_bytes())];
        let keys = [TimingKey::File, TimingKey::Name, TimingKey::Classname];
        let together = read_timings_by(inputs, &keys).unwrap();
        for (key, map) in keys.iter().zip(&together) {
            assert_eq!(map, &read_timings(inputs, *key).unwrap(), "key {key}");
        }
    }

    const REPORT_A: &str = r#"<testsuite name="s">
        <testcase classname="A" name="t1" file="a.py" time="1.5"/>
        <testcase classname="A" name="t2" file="a.py" time="2"/>
        <testcase classname="B" name="t3" file="b.py" time="4"/>
        <testcase classname="B" name="t4" file="b.py" time="9"><skipped/></testcase>
        <testcase classname="C" name="t5"/>
    </testsuite>"#;

    #[test]
    fn sums_cases_per_key_within_a_report() {
        let inputs = [("a.xml", REPORT_A)];
        let by_file = read_timings(inputs, TimingKey::File).ok();
        assert_eq!(
            by_file,
            Some(BTreeMap::from([("a.py".into(), 3.5), ("b.py".into(), 4.0)]))
        );
        let by_class = read_timings(inputs, TimingKey::Classname).ok();
        assert_eq!(
            by_class,
            Some(BTreeMap::from([("A".into(), 3.5), ("B".into(), 4.0)]))
        );
    }

    /// Every way a report lists more than one run of a case, with durations that add up exactly.
    const REPEATED_RUNS: &str = r#"<testsuites>
        <testsuite name="param">
            <testcase classname="Param" name="adds" file="param.py" time="0.25"/>
            <testcase classname="Param" name="adds" file="param.py" time="0.5"/>
            <testcase classname="Param" name="adds" file="param.py" time="1.25"/>
        </testsuite>
        <testsuite name="gradle-retry">
            <testcase classname="Retried" name="flaky" file="retry.py" time="1.5"><failure/></testcase>
            <testcase classname="Retried" name="flaky" file="retry.py" time="0.5"/>
        </testsuite>
        <testsuite name="nextest">
            <testcase classname="Timed" name="net" file="net.rs" time="1">
                <flakyFailure time="0.5" message="reset"/>
                <flakyFailure time="0.25" message="reset"/>
            </testcase>
        </testsuite>
        <testsuite name="surefire">
            <testcase classname="Untimed" name="flaky" time="2"><flakyFailure message="once"/></testcase>
        </testsuite>
        <testsuite name="go">
            <testcase classname="pkg" name="TestX" time="3"/>
            <testcase classname="pkg" name="TestX/a" time="1"/>
            <testcase classname="pkg" name="TestX/a/deep" time="0.5"/>
            <testcase classname="pkg" name="TestX/b" time="2"/>
            <testcase classname="pkg" name="TestY/a" time="4"/>
        </testsuite>
    </testsuites>"#;

    #[test]
    fn every_listed_run_of_a_case_is_summed_and_nested_runs_count_once() {
        let inputs = [("runs.xml", REPEATED_RUNS)];
        let by_class = read_timings(inputs, TimingKey::Classname).ok();
        assert_eq!(
            by_class,
            Some(BTreeMap::from([
                // Three parameterized runs sharing one name.
                ("Param".into(), 2.0),
                // A retry written as a second case.
                ("Retried".into(), 2.0),
                // The final run plus the two timed attempts.
                ("Timed".into(), 1.75),
                // Surefire times the case once, not its attempts.
                ("Untimed".into(), 2.0),
                // TestX includes its subtests; TestY/a has no listed parent.
                ("pkg".into(), 7.0),
            ]))
        );
        let by_file = read_timings(inputs, TimingKey::File)
            .ok()
            .unwrap_or_default();
        assert_eq!(by_file.get("param.py"), Some(&2.0));
        assert_eq!(by_file.get("net.rs"), Some(&1.75));
        let by_name = read_timings(inputs, TimingKey::Name)
            .ok()
            .unwrap_or_default();
        assert_eq!(by_name.get("adds"), Some(&2.0));
        assert_eq!(by_name.get("TestX"), Some(&3.0));
        assert_eq!(
            by_name.get("TestX/a"),
            Some(&1.0),
            "a subtest is an item by name"
        );
    }

    #[test]
    fn later_reports_replace_the_same_cases_and_add_new_ones() {
        let newer = r#"<testsuite name="s">
            <testcase classname="A" name="t1" file="a.py" time="10"/>
            <testcase classname="D" name="t9" file="a.py" time="1"/>
        </testsuite>"#;
        let map = read_timings([("old.xml", REPORT_A), ("new.xml", newer)], TimingKey::File).ok();
        // a.py: t1 from the newer report (10) + t2 from the older (2) + t9 (1).
        assert_eq!(
            map,
            Some(BTreeMap::from([
                ("a.py".into(), 13.0),
                ("b.py".into(), 4.0)
            ]))
        );
    }

    #[test]
    fn json_maps_are_keyed_directly_and_latest_wins() {
        let map = read_timings(
            [
                ("a.json", r#"{"x": 1, "y": 2.5}"#),
                ("b.json", r#"{"x": 3}"#),
            ],
            TimingKey::Name,
        )
        .ok();
        assert_eq!(
            map,
            Some(BTreeMap::from([("x".into(), 3.0), ("y".into(), 2.5)]))
        );
    }

    #[test]
    fn json_maps_with_bad_values_are_refused() {
        for bad in [r#"{"x": -1}"#, r#"{"x": "slow"}"#] {
            let err = read_timings([("t.json", bad)], TimingKey::Name).err();
            assert!(
                matches!(err, Some(ReportError::InvalidTimings { .. })),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn keys_parse_from_cli_words() {
        assert_eq!("file".parse::<TimingKey>(), Ok(TimingKey::File));
        assert!("path".parse::<TimingKey>().is_err());
        assert_eq!(TimingKey::Classname.to_string(), "classname");
    }
}
