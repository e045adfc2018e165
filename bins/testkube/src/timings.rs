//! Recorded durations for `split --timings` and `plan --timings` (read from
//! report files), and the result store's history for `plan` ([`History`]).
//!
//! Which report entry an item (a file, a class, a test name) is, is decided
//! in one place for every frontend: `testkube_core::service::DurationIndex`
//! (the run service splits shards with the same rules). This module only
//! reads the files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use testkube_core::service::{DurationField, DurationIndex};
use testkube_results::store::SqliteStore;
use testkube_results::{TimingKey, read_timings_by};

pub(crate) use testkube_core::service::{History, history_key, normalize};

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
    index: DurationIndex,
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
        let maps: Vec<(DurationField, BTreeMap<String, f64>)> = keys
            .iter()
            .zip(read)
            .map(|(&key, map)| (field(key), map))
            .collect();
        Ok(Some(Self {
            index: DurationIndex::new(maps),
            files,
        }))
    }

    /// The files the durations were read from (folders expanded).
    pub(crate) fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether any duration was read at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The recorded seconds of `item`, if a report names it unambiguously.
    pub(crate) fn seconds(&self, item: &str) -> Option<f64> {
        self.index.seconds(item)
    }
}

/// The test-case field a report key reads.
fn field(key: TimingKey) -> DurationField {
    match key {
        TimingKey::File => DurationField::File,
        TimingKey::Name => DurationField::Name,
        TimingKey::Classname => DurationField::Class,
    }
}

/// What the result store in the home folder recorded for `workflow`, read
/// without creating a store where there is none (`plan` only previews); a
/// store that cannot be read is a warning and no history.
pub(crate) async fn history_from_home(workflow: &str) -> History {
    let path = crate::home::database();
    if !path.is_file() {
        return History::empty();
    }
    let loaded = match SqliteStore::open(&path).await {
        Ok(store) => {
            let history = History::load(&store, workflow).await;
            store.close().await;
            history
        }
        Err(err) => Err(err),
    };
    loaded.unwrap_or_else(|err| {
        anstream::eprintln!(
            "{} cannot read recorded durations from {}: {err}; shards are split without \
             them (repair or remove that file, or give --timings)",
            paint(style::WARN, "warning:"),
            path.display()
        );
        History::empty()
    })
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
