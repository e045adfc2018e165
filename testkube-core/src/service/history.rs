//! Recorded durations for the shard planner: which recorded test item a
//! planned item (a file, a class, a test name) is, and the [`History`] of a
//! workflow that `balance: {by: duration}` blocks are split by.
//!
//! Why one place decides the matching: reports rarely spell items the way
//! the user's item list does (`./tests/a.py` against `tests/a.py`, absolute
//! paths from the CI machine, pytest naming classes `tests.test_api.TestX`
//! for the file `tests/test_api.py`), and the preview (`testkube plan`), the
//! offline splitter (`split --timings`) and the run itself must agree. The
//! rules are tried in order, and a rule that matches ambiguously matches
//! nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::plan::PlanOptions;
use crate::store::{ItemDuration, ResultStore, StoreError};

/// Which field of a test case a duration map is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationField {
    /// The test file.
    File,
    /// The test's name.
    Name,
    /// The test's class (pytest: the module path, dotted).
    Class,
}

/// The fields a run looks items up by, in order.
pub const PLAN_FIELDS: [DurationField; 3] = [
    DurationField::File,
    DurationField::Name,
    DurationField::Class,
];

/// Durations (seconds) by item, for one or more test-case fields, with the
/// matching rules of this module.
#[derive(Debug, Clone, Default)]
pub struct DurationIndex {
    /// One map per field, in the order they are consulted; keys normalized.
    maps: Vec<(DurationField, BTreeMap<String, f64>)>,
}

impl DurationIndex {
    /// An index over `maps` (in the order given), whose keys are
    /// normalized here; seconds of keys that normalize alike are summed.
    #[must_use]
    pub fn new(maps: impl IntoIterator<Item = (DurationField, BTreeMap<String, f64>)>) -> Self {
        let maps = maps
            .into_iter()
            .map(|(field, map)| {
                let mut normalized = BTreeMap::new();
                for (item, seconds) in map {
                    *normalized.entry(normalize(&item)).or_insert(0.0) += seconds;
                }
                (field, normalized)
            })
            .collect();
        DurationIndex { maps }
    }

    /// The durations the result store recorded for a workflow's test
    /// items, keyed by file, then name, then class ([`PLAN_FIELDS`]).
    #[must_use]
    pub fn from_records(items: &[ItemDuration]) -> Self {
        let mut maps: Vec<(DurationField, BTreeMap<String, f64>)> = PLAN_FIELDS
            .iter()
            .map(|&field| (field, BTreeMap::new()))
            .collect();
        for item in items.iter().filter(|item| item.duration_secs.is_finite()) {
            for (field, map) in &mut maps {
                let value = match field {
                    DurationField::File => item.file.as_deref(),
                    DurationField::Name => Some(item.name.as_str()),
                    DurationField::Class => item.class.as_deref(),
                };
                if let Some(value) = value {
                    *map.entry(normalize(value)).or_insert(0.0) += item.duration_secs.max(0.0);
                }
            }
        }
        DurationIndex { maps }
    }

    /// Every item with its seconds, for blocks whose items are only known
    /// at run time (earlier fields win, as in [`DurationIndex::seconds`]).
    #[must_use]
    pub fn flat(&self) -> BTreeMap<String, f64> {
        let mut flat = BTreeMap::new();
        for (_, map) in self.maps.iter().rev() {
            flat.extend(map.iter().map(|(item, seconds)| (item.clone(), *seconds)));
        }
        flat
    }

    /// Whether it holds no duration at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.maps.iter().all(|(_, map)| map.is_empty())
    }

    /// The recorded seconds of `item`, if exactly one entry names it.
    #[must_use]
    pub fn seconds(&self, item: &str) -> Option<f64> {
        let item = normalize(item);
        for (field, map) in &self.maps {
            if let Some(seconds) = map.get(&item) {
                return Some(*seconds);
            }
            if let Some(seconds) = unique_path_suffix(map, &item) {
                return Some(seconds);
            }
            if *field == DurationField::Class
                && let Some(seconds) = python_module_classes(map, &item)
            {
                return Some(seconds);
            }
        }
        None
    }
}

/// The durations the result store recorded for a workflow's test items:
/// what a run balances `balance: {by: duration}` blocks by, and what a
/// preview shows them with, so the preview is the split that runs.
#[derive(Debug, Clone, Default)]
pub struct History {
    index: DurationIndex,
    /// How many test items have a recorded duration.
    recorded: usize,
    /// The executions those durations come from, oldest first.
    executions: Vec<String>,
}

impl History {
    /// No recorded durations: blocks keep the format's contiguous split.
    #[must_use]
    pub fn empty() -> Self {
        Self::from_records(&[])
    }

    /// What `store` recorded for `workflow` (see [`history_key`]).
    ///
    /// # Errors
    /// The store's error; callers treat it as no history (a store that
    /// cannot be read never stops a run).
    pub async fn load(store: &dyn ResultStore, workflow: &str) -> Result<Self, StoreError> {
        store
            .item_durations(workflow)
            .await
            .map(|records| Self::from_records(&records))
    }

    /// A history of `records`.
    #[must_use]
    pub fn from_records(records: &[ItemDuration]) -> Self {
        let mut executions: Vec<String> = Vec::new();
        for record in records {
            if !executions.contains(&record.execution) {
                executions.push(record.execution.clone());
            }
        }
        // Execution names end in their number: oldest first reads naturally.
        executions.sort_by_key(|name| (execution_number(name), name.clone()));
        History {
            index: DurationIndex::from_records(records),
            recorded: records.len(),
            executions,
        }
    }

    /// How many test items have a recorded duration.
    #[must_use]
    pub fn recorded(&self) -> usize {
        self.recorded
    }

    /// Where the durations come from, for a preview to say: `shards
    /// balanced by durations of sharded-3 (12 test items)`.
    #[must_use]
    pub fn source(&self) -> String {
        if self.recorded == 0 {
            return "no recorded durations: contiguous split".to_owned();
        }
        let executions = match self.executions.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [first, .., last] if self.executions.len() > 3 => {
                format!("{first} … {last} ({} executions)", self.executions.len())
            }
            several => several.join(", "),
        };
        format!(
            "shards balanced by durations of {executions} ({} test {})",
            self.recorded,
            if self.recorded == 1 { "item" } else { "items" }
        )
    }

    /// Plan options that balance by these durations; every duration looked
    /// up is added to `used` (what the run keeps for `rerun --failed-only`).
    #[must_use]
    pub fn plan_options(self, used: &Arc<Mutex<BTreeMap<String, f64>>>) -> PlanOptions {
        if self.recorded == 0 {
            return PlanOptions::new();
        }
        let used = Arc::clone(used);
        let index = self.index;
        PlanOptions::new()
            .with_run_time_durations(index.flat())
            .with_durations(move |item| {
                let seconds = index.seconds(item);
                if let Some(seconds) = seconds {
                    used.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(item.to_owned(), seconds);
                }
                seconds
            })
    }
}

/// The name the store files a workflow's executions (and their durations)
/// under: its `metadata.name`, or `run` when it has none.
#[must_use]
pub fn history_key(workflow: &crate::model::TestWorkflow) -> String {
    workflow
        .metadata
        .name
        .clone()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "run".to_owned())
}

/// `12` for `sharded-12`.
fn execution_number(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

/// The spelling items are compared in: `/` separators, no leading `./`.
#[must_use]
pub fn normalize(key: &str) -> String {
    let key = key.trim().replace('\\', "/");
    let mut key = key.as_str();
    while let Some(rest) = key.strip_prefix("./") {
        key = rest;
    }
    key.to_string()
}

/// A key that ends with `item` at a `/` boundary or the other way round
/// (absolute paths on the CI machine, relative ones in the item list), when
/// exactly one key does.
fn unique_path_suffix(map: &BTreeMap<String, f64>, item: &str) -> Option<f64> {
    let mut matches = map
        .iter()
        .filter(|(key, _)| is_path_suffix(key, item) || is_path_suffix(item, key));
    match (matches.next(), matches.next()) {
        (Some((_, seconds)), None) => Some(*seconds),
        _ => None,
    }
}

/// Whether `short` is a path that ends `long` at a `/` boundary.
fn is_path_suffix(long: &str, short: &str) -> bool {
    short.contains('/')
        && long.len() > short.len()
        && long.ends_with(short)
        && long.as_bytes()[long.len() - short.len() - 1] == b'/'
}

/// pytest names the classes of `tests/test_api.py` `tests.test_api` and
/// `tests.test_api.TestX`: a `.py` item is the sum of its module's classes.
fn python_module_classes(map: &BTreeMap<String, f64>, item: &str) -> Option<f64> {
    let module = item.strip_suffix(".py")?.replace('/', ".");
    let prefix = format!("{module}.");
    let matching: Vec<f64> = map
        .iter()
        .filter(|(class, _)| **class == module || class.starts_with(&prefix))
        .map(|(_, seconds)| *seconds)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(file: Option<&str>, class: Option<&str>, name: &str, secs: f64) -> ItemDuration {
        ItemDuration {
            file: file.map(str::to_owned),
            class: class.map(str::to_owned),
            name: name.to_owned(),
            duration_secs: secs,
            execution: "e-1".to_owned(),
        }
    }

    #[test]
    fn store_records_are_looked_up_like_reports() {
        let index = DurationIndex::from_records(&[
            record(Some("/ci/repo/tests/test_a.py"), None, "test_one", 1.0),
            record(Some("/ci/repo/tests/test_a.py"), None, "test_two", 2.0),
            record(Some("tests/test_b.py"), Some("pkg.B"), "test_b", 0.5),
            record(None, Some("tests.test_c.TestC"), "test_c", 4.0),
        ]);
        assert_eq!(index.seconds("tests/test_a.py"), Some(3.0));
        assert_eq!(index.seconds("./tests/test_b.py"), Some(0.5));
        assert_eq!(index.seconds("pkg.B"), Some(0.5));
        assert_eq!(index.seconds("test_one"), Some(1.0));
        // pytest's class names count for their module's file.
        assert_eq!(index.seconds("tests/test_c.py"), Some(4.0));
        assert_eq!(index.seconds("tests/test_d.py"), None);
        let flat = index.flat();
        assert_eq!(flat.get("/ci/repo/tests/test_a.py"), Some(&3.0));
        assert_eq!(flat.get("pkg.B"), Some(&0.5));
    }

    #[test]
    fn history_says_which_executions_its_durations_come_from() {
        assert_eq!(
            History::empty().source(),
            "no recorded durations: contiguous split"
        );
        let from = |execution: &str, name: &str| ItemDuration {
            execution: execution.to_owned(),
            ..record(Some("a.py"), None, name, 1.0)
        };
        let history = History::from_records(&[
            from("suite-10", "t1"),
            from("suite-9", "t2"),
            from("suite-10", "t3"),
        ]);
        assert_eq!(history.recorded(), 3);
        assert_eq!(
            history.source(),
            "shards balanced by durations of suite-9, suite-10 (3 test items)"
        );
    }

    fn index(field: DurationField, entries: &[(&str, f64)]) -> DurationIndex {
        DurationIndex::new([(
            field,
            entries
                .iter()
                .map(|(item, seconds)| ((*item).to_owned(), *seconds))
                .collect(),
        )])
    }

    #[test]
    fn items_match_by_normalized_path_and_unique_suffix() {
        let t = index(
            DurationField::File,
            &[
                ("/ci/work/tests/test_a.py", 3.0),
                ("./tests/test_b.py", 2.0),
                ("x/tests/test_c.py", 1.0),
                ("y/tests/test_c.py", 1.5),
            ],
        );
        assert_eq!(t.seconds("tests/test_a.py"), Some(3.0));
        assert_eq!(t.seconds("tests/test_b.py"), Some(2.0));
        assert_eq!(t.seconds("./tests/test_b.py"), Some(2.0));
        assert_eq!(
            t.seconds("tests/test_c.py"),
            None,
            "two reports' files end the same way"
        );
        assert_eq!(
            t.seconds("test_a.py"),
            None,
            "bare names need an exact match"
        );
    }

    #[test]
    fn python_files_match_their_pytest_classes() {
        let t = index(
            DurationField::Class,
            &[
                ("tests.test_api", 1.0),
                ("tests.test_api.TestAuth", 2.5),
                ("tests.test_apix", 9.0),
            ],
        );
        assert_eq!(t.seconds("tests/test_api.py"), Some(3.5));
        assert_eq!(t.seconds("tests/test_other.py"), None);
    }
}
