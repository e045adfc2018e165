//! Recorded durations for `split --timings` and `plan --timings`: one place
//! that decides which report entry an item (a file, a class, a test name) is.
//!
//! Reports rarely spell items the way the user's item list does: `./tests/a.py`
//! against `tests/a.py`, absolute paths from the CI machine, pytest naming
//! classes `tests.test_api.TestX` for the file `tests/test_api.py`. The rules
//! are tried in order, and a rule that matches ambiguously matches nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use testkube_results::{TimingKey, read_timings_by};

use crate::commands::CliError;
use crate::input;

/// Durations read from reports, by item, for one or more test-case fields.
pub(crate) struct ItemTimings {
    /// One map per field, in the order they are consulted; keys normalized.
    maps: Vec<(TimingKey, BTreeMap<String, f64>)>,
}

impl ItemTimings {
    /// Reads `paths` (JUnit XML and friends, or JSON maps `{"item": seconds}`)
    /// keyed by each of `keys`; `None` when no path is given.
    pub(crate) fn load(paths: &[PathBuf], keys: &[TimingKey]) -> Result<Option<Self>, CliError> {
        if paths.is_empty() {
            return Ok(None);
        }
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            inputs.push((path.display().to_string(), input::read_file(path)?));
        }
        // Each report is parsed once for all the keys.
        let read = read_timings_by(inputs.iter().map(|(name, bytes)| (name, bytes)), keys)
            .map_err(|err| {
                CliError::input(err.to_string()).with_hint(
                    "--timings takes JUnit XML reports or a JSON map {\"item\": seconds}",
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
        Ok(Some(Self { maps }))
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

    fn timings(key: TimingKey, entries: &[(&str, f64)]) -> ItemTimings {
        let map = entries
            .iter()
            .map(|(item, seconds)| (normalize(item), *seconds))
            .collect();
        ItemTimings {
            maps: vec![(key, map)],
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
