//! Recorded durations for `split --timings`, `plan --timings` and the
//! result store's history in `run` and `plan` ([`History`]): one place that
//! decides which report entry an item (a file, a class, a test name) is.
//!
//! Reports rarely spell items the way the user's item list does: `./tests/a.py`
//! against `tests/a.py`, absolute paths from the CI machine, pytest naming
//! classes `tests.test_api.TestX` for the file `tests/test_api.py`. The rules
//! are tried in order, and a rule that matches ambiguously matches nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use testkube_core::model::TestWorkflow;
use testkube_core::plan::PlanOptions;
use testkube_core::store::{ItemDuration, ResultStore, StoreError};
use testkube_results::store::SqliteStore;
use testkube_results::{TimingKey, read_timings_by};

use crate::commands::CliError;
use crate::input;
use crate::style::{self, paint};

/// The keys `plan` and `run` look items up by, in order.
pub(crate) const PLAN_KEYS: [TimingKey; 3] =
    [TimingKey::File, TimingKey::Name, TimingKey::Classname];

/// What `--timings` folders are searched for: the report formats
/// [`read_timings_by`] reads (JUnit and NUnit/xUnit XML, TRX, JSON).
pub(crate) const TIMINGS_EXTENSIONS: [&str; 3] = ["xml", "json", "trx"];

/// Durations read from reports, by item, for one or more test-case fields.
pub(crate) struct ItemTimings {
    /// One map per field, in the order they are consulted; keys normalized.
    maps: Vec<(TimingKey, BTreeMap<String, f64>)>,
    /// The files read (folders expanded), in the order given.
    files: Vec<PathBuf>,
}

impl ItemTimings {
    /// Reads `paths` (JUnit XML and friends, or JSON maps `{"item": seconds}`;
    /// folders are searched for [`TIMINGS_EXTENSIONS`]) keyed by each of
    /// `keys`; `None` when no path is given.
    pub(crate) fn load(paths: &[PathBuf], keys: &[TimingKey]) -> Result<Option<Self>, CliError> {
        if paths.is_empty() {
            return Ok(None);
        }
        let files = timing_files(paths)?;
        let mut inputs = Vec::with_capacity(files.len());
        for path in &files {
            inputs.push((path.display().to_string(), input::read_file(path)?));
        }
        // Each report is parsed once for all the keys.
        let read = read_timings_by(inputs.iter().map(|(name, bytes)| (name, bytes)), keys)
            .map_err(|err| {
                CliError::input(err.to_string()).with_hint(
                    "--timings takes test reports (JUnit XML and friends) or a JSON map {\"item\": seconds}",
                )
            })?;
        let mut maps = Vec::with_capacity(keys.len());
        for (&key, map) in keys.iter().zip(read) {
            let mut normalized = BTreeMap::new();
            for (item, seconds) in map {
                *normalized.entry(normalize(&item)).or_insert(0.0) += seconds;
            }
            maps.push((key, normalized));
        }
        Ok(Some(Self { maps, files }))
    }

    /// The files the durations were read from (folders expanded).
    pub(crate) fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The durations the result store recorded for a workflow's test
    /// items, keyed like `plan --timings` (file, then name, then class).
    pub(crate) fn from_records(items: &[ItemDuration]) -> Self {
        let mut maps: Vec<(TimingKey, BTreeMap<String, f64>)> = PLAN_KEYS
            .iter()
            .map(|&key| (key, BTreeMap::new()))
            .collect();
        for item in items.iter().filter(|item| item.duration_secs.is_finite()) {
            for (key, map) in &mut maps {
                let field = match key {
                    TimingKey::File => item.file.as_deref(),
                    TimingKey::Name => Some(item.name.as_str()),
                    TimingKey::Classname => item.class.as_deref(),
                };
                if let Some(field) = field {
                    *map.entry(normalize(field)).or_insert(0.0) += item.duration_secs.max(0.0);
                }
            }
        }
        Self {
            maps,
            files: Vec::new(),
        }
    }

    /// Every item with its seconds, for blocks whose items are only known
    /// at run time (earlier keys win, as in [`ItemTimings::seconds`]).
    pub(crate) fn flat(&self) -> BTreeMap<String, f64> {
        let mut flat = BTreeMap::new();
        for (_, map) in self.maps.iter().rev() {
            flat.extend(map.iter().map(|(item, seconds)| (item.clone(), *seconds)));
        }
        flat
    }

    /// Whether any duration was read at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.maps.iter().all(|(_, map)| map.is_empty())
    }

    /// The recorded seconds of `item`, if a report names it unambiguously.
    pub(crate) fn seconds(&self, item: &str) -> Option<f64> {
        let item = normalize(item);
        for (key, map) in &self.maps {
            if let Some(seconds) = map.get(&item) {
                return Some(*seconds);
            }
            if let Some(seconds) = unique_path_suffix(map, &item) {
                return Some(seconds);
            }
            if *key == TimingKey::Classname
                && let Some(seconds) = python_module_classes(map, &item)
            {
                return Some(seconds);
            }
        }
        None
    }
}

/// The durations the result store recorded for a workflow's test items:
/// what `run` balances `balance: {by: duration}` blocks by, and what `plan`
/// previews them with, so the preview is the split that runs.
pub(crate) struct History {
    timings: ItemTimings,
    /// How many test items have a recorded duration.
    recorded: usize,
    /// The executions those durations come from, oldest first.
    executions: Vec<String>,
}

impl History {
    /// No recorded durations: blocks keep the format's contiguous split.
    pub(crate) fn empty() -> Self {
        Self::from_records(&[])
    }

    /// What the store recorded for `workflow` (see [`history_key`]); a store
    /// that cannot be read is a warning and no history, never a failure.
    pub(crate) async fn load(store: &dyn ResultStore, workflow: &str) -> Self {
        match store.item_durations(workflow).await {
            Ok(records) => Self::from_records(&records),
            Err(err) => Self::unreadable(&err),
        }
    }

    /// What the result store in the home folder recorded for `workflow`,
    /// read without creating a store where there is none (`plan` only
    /// previews).
    pub(crate) async fn from_home(workflow: &str) -> Self {
        let path = crate::home::database();
        if !path.is_file() {
            return Self::empty();
        }
        match SqliteStore::open(&path).await {
            Ok(store) => {
                let history = Self::load(&store, workflow).await;
                store.close().await;
                history
            }
            Err(err) => Self::unreadable(&err),
        }
    }

    /// No history, with a warning: a store that cannot be read never stops
    /// a run or a preview.
    fn unreadable(err: &StoreError) -> Self {
        anstream::eprintln!(
            "{} cannot read recorded durations from {}: {err}; shards are split without \
             them (repair or remove that file, or give --timings)",
            paint(style::WARN, "warning:"),
            crate::home::database().display()
        );
        Self::empty()
    }

    fn from_records(records: &[ItemDuration]) -> Self {
        let mut executions: Vec<String> = Vec::new();
        for record in records {
            if !executions.contains(&record.execution) {
                executions.push(record.execution.clone());
            }
        }
        // Execution names end in their number: oldest first reads naturally.
        executions.sort_by_key(|name| (execution_number(name), name.clone()));
        Self {
            timings: ItemTimings::from_records(records),
            recorded: records.len(),
            executions,
        }
    }

    /// How many test items have a recorded duration.
    pub(crate) fn recorded(&self) -> usize {
        self.recorded
    }

    /// Where the durations come from, for `plan` to say: `shards balanced
    /// by durations of sharded-3 (12 test items)`.
    pub(crate) fn source(&self) -> String {
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
    /// up is added to `used` (what `run` keeps for `rerun --failed-only`).
    pub(crate) fn plan_options(self, used: &Arc<Mutex<BTreeMap<String, f64>>>) -> PlanOptions {
        if self.recorded == 0 {
            return PlanOptions::new();
        }
        let used = Arc::clone(used);
        let timings = self.timings;
        PlanOptions::new()
            .with_run_time_durations(timings.flat())
            .with_durations(move |item| {
                let seconds = timings.seconds(item);
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
/// under.
pub(crate) fn history_key(workflow: &TestWorkflow) -> String {
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

/// The files `--timings` names: files as given, folders searched for
/// reports; a folder without any is an error rather than no timings.
fn timing_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        let found = input::find_files(std::slice::from_ref(path), &TIMINGS_EXTENSIONS);
        if found.is_empty() {
            return Err(CliError::input(format!(
                "--timings {}: the folder holds no test report (*.xml, *.json, *.trx)",
                path.display()
            ))
            .with_hint("point --timings at the reports of an earlier run, or at their folder"));
        }
        for found in found {
            match found {
                input::Found::File(file) => files.push(file),
                input::Found::Unreadable(file, reason) => {
                    return Err(CliError::input(format!(
                        "cannot read {}: {reason}",
                        file.display()
                    ))
                    .with_hint(
                        "--timings takes every path up to the next flag: give the items after `--` \
                         (--timings reports/*.xml --total 4 --index 0 -- a.py b.py) or on standard input",
                    ));
                }
            }
        }
    }
    Ok(files)
}

/// The spelling items are compared in: `/` separators, no leading `./`.
pub(crate) fn normalize(key: &str) -> String {
    let key = key.trim().replace('\\', "/");
    let mut key = key.as_str();
    while let Some(rest) = key.strip_prefix("./") {
        key = rest;
    }
    key.to_string()
}

/// A report key that ends with `item` at a `/` boundary or the other way
/// round (absolute paths on the CI machine, relative ones in the item list),
/// when exactly one key does.
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
        let timings = ItemTimings::from_records(&[
            record(Some("/ci/repo/tests/test_a.py"), None, "test_one", 1.0),
            record(Some("/ci/repo/tests/test_a.py"), None, "test_two", 2.0),
            record(Some("tests/test_b.py"), Some("pkg.B"), "test_b", 0.5),
            record(None, Some("tests.test_c.TestC"), "test_c", 4.0),
        ]);
        assert_eq!(timings.seconds("tests/test_a.py"), Some(3.0));
        assert_eq!(timings.seconds("./tests/test_b.py"), Some(0.5));
        assert_eq!(timings.seconds("pkg.B"), Some(0.5));
        assert_eq!(timings.seconds("test_one"), Some(1.0));
        // pytest's class names count for their module's file.
        assert_eq!(timings.seconds("tests/test_c.py"), Some(4.0));
        assert_eq!(timings.seconds("tests/test_d.py"), None);
        let flat = timings.flat();
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

    fn timings(key: TimingKey, entries: &[(&str, f64)]) -> ItemTimings {
        let map = entries
            .iter()
            .map(|(item, seconds)| (normalize(item), *seconds))
            .collect();
        ItemTimings {
            maps: vec![(key, map)],
            files: Vec::new(),
        }
    }

    #[test]
    fn items_match_by_normalized_path_and_unique_suffix() {
        let t = timings(
            TimingKey::File,
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
        let t = timings(
            TimingKey::Classname,
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
