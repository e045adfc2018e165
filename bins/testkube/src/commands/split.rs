//! `testkube split`: CI-agnostic test splitting by recorded duration.
//!
//! Each CI job calls this with the same items and timings and its own
//! `--index`; the split is deterministic, so the jobs agree on who runs what
//! without talking to each other.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::process::ExitCode;

use serde::Serialize;
use testkube_core::shard::{DefaultDuration, Item, ShardPlan, balance};
use testkube_results::{TimingKey, read_timings};

use super::{CliError, print_json};
use crate::cli::{Output, SplitArgs, SplitBy};
use crate::input;
use crate::style::{self, paint};

pub(crate) fn run(args: SplitArgs) -> Result<ExitCode, CliError> {
    let shards = NonZeroUsize::new(args.total).ok_or_else(|| {
        CliError::usage("--total must be at least 1")
            .with_hint("pass the number of CI jobs, e.g. --total 4")
    })?;
    if let Some(index) = args.index
        && index >= args.total
    {
        return Err(CliError::usage(format!(
            "--index {index} is out of range for --total {}",
            args.total
        ))
        .with_hint(format!("indexes count from 0: use 0 to {}", args.total - 1)));
    }
    let default = match args.default_seconds {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => DefaultDuration::Fixed(seconds),
        Some(seconds) => {
            return Err(CliError::usage(format!(
                "--default-seconds must be a non-negative number, got {seconds}"
            )));
        }
        None => DefaultDuration::MeanOfKnown,
    };

    let items = dedupe(input::items_or_stdin(&args.items)?);
    let timings = load_timings(&args)?;
    let matcher = TimingMatcher::new(&timings);
    let weighted: Vec<Item> = items
        .iter()
        .map(|item| Item::new(item.clone(), matcher.seconds(item)))
        .collect();
    let known = weighted
        .iter()
        .filter(|item| item.seconds.is_some())
        .count();
    if !args.timings.is_empty() && known == 0 && !items.is_empty() {
        anstream::eprintln!(
            "{} none of the {} items matched a timing (by {}); splitting them evenly",
            paint(style::WARN, "warning:"),
            items.len(),
            by_name(args.by)
        );
    }
    let plan = balance(&weighted, shards, &default);

    match (args.all, args.index, args.output) {
        (true, _, Output::Json) => print_json(&AllShards::new(&plan, &items, known))?,
        (true, _, _) => print_all(&plan, &items),
        (false, Some(index), Output::Json) => {
            print_json(&OneShard::new(&plan, &items, index, args.total))?
        }
        (false, Some(index), _) => {
            for item in shard_items(&plan, &items, index) {
                println!("{item}");
            }
        }
        (false, None, _) => unreachable_index()?,
    }
    Ok(ExitCode::SUCCESS)
}

fn unreachable_index() -> Result<(), CliError> {
    // clap's `required_unless_present = "all"` makes this impossible; keep a
    // real error instead of a panic all the same.
    Err(CliError::usage("--index is required unless --all is given"))
}

fn by_name(by: SplitBy) -> &'static str {
    match by {
        SplitBy::Name => "name",
        SplitBy::Classname => "classname",
        SplitBy::File => "file",
    }
}

/// Keeps the first occurrence of each item: one item, one shard.
fn dedupe(items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

fn load_timings(args: &SplitArgs) -> Result<BTreeMap<String, f64>, CliError> {
    let mut inputs = Vec::with_capacity(args.timings.len());
    for path in &args.timings {
        inputs.push((path.display().to_string(), input::read_file(path)?));
    }
    let key = match args.by {
        SplitBy::Name => TimingKey::Name,
        SplitBy::Classname => TimingKey::Classname,
        SplitBy::File => TimingKey::File,
    };
    read_timings(inputs, key).map_err(|err| {
        CliError::input(err.to_string())
            .with_hint("--timings takes JUnit XML reports or a JSON map {\"item\": seconds}")
    })
}

/// Finds an item's timing: exactly, then after normalizing path spelling
/// (`./a.py`, `a\b.py`), then by a unique path suffix (reports often hold
/// absolute paths from the CI machine while items are relative, or the other
/// way round).
struct TimingMatcher<'a> {
    exact: &'a BTreeMap<String, f64>,
    normalized: BTreeMap<String, f64>,
}

impl<'a> TimingMatcher<'a> {
    fn new(timings: &'a BTreeMap<String, f64>) -> Self {
        let mut normalized = BTreeMap::new();
        for (key, seconds) in timings {
            *normalized.entry(normalize(key)).or_insert(0.0) += seconds;
        }
        Self {
            exact: timings,
            normalized,
        }
    }

    fn seconds(&self, item: &str) -> Option<f64> {
        if let Some(seconds) = self.exact.get(item) {
            return Some(*seconds);
        }
        let item = normalize(item);
        if let Some(seconds) = self.normalized.get(&item) {
            return Some(*seconds);
        }
        let mut matches = self
            .normalized
            .iter()
            .filter(|(key, _)| is_path_suffix(key, &item) || is_path_suffix(&item, key));
        match (matches.next(), matches.next()) {
            (Some((_, seconds)), None) => Some(*seconds),
            _ => None,
        }
    }
}

fn normalize(key: &str) -> String {
    let key = key.trim().replace('\\', "/");
    let mut key = key.as_str();
    while let Some(rest) = key.strip_prefix("./") {
        key = rest;
    }
    key.to_string()
}

/// Whether `short` is `long` or ends it at a `/` boundary.
fn is_path_suffix(long: &str, short: &str) -> bool {
    short.contains('/')
        && long.len() > short.len()
        && long.ends_with(short)
        && long.as_bytes()[long.len() - short.len() - 1] == b'/'
}

fn shard_items<'a>(plan: &ShardPlan, items: &'a [String], index: usize) -> Vec<&'a str> {
    plan.shards()
        .get(index)
        .map(|shard| shard.items().iter().map(|&i| items[i].as_str()).collect())
        .unwrap_or_default()
}

fn print_all(plan: &ShardPlan, items: &[String]) {
    for (index, shard) in plan.shards().iter().enumerate() {
        anstream::println!(
            "{} {}",
            paint(style::BOLD, format!("# shard {index}")),
            paint(
                style::DIM,
                format!("{:.1}s, {} items", shard.seconds(), shard.items().len())
            )
        );
        for &i in shard.items() {
            println!("{}", items[i]);
        }
    }
    anstream::println!(
        "{}",
        paint(
            style::DIM,
            format!(
                "# makespan {:.1}s, lower bound {:.1}s",
                plan.makespan_seconds(),
                plan.lower_bound_seconds()
            )
        )
    );
}

/// `--all -o json`: every shard with its predicted seconds.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AllShards<'a> {
    total: usize,
    items: usize,
    items_with_timings: usize,
    default_seconds: Option<f64>,
    makespan_seconds: f64,
    lower_bound_seconds: f64,
    method: testkube_core::shard::PlanMethod,
    shards: Vec<ShardJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShardJson<'a> {
    index: usize,
    predicted_seconds: f64,
    items: Vec<&'a str>,
}

impl<'a> AllShards<'a> {
    fn new(plan: &ShardPlan, items: &'a [String], known: usize) -> Self {
        Self {
            total: plan.shards().len(),
            items: items.len(),
            items_with_timings: known,
            default_seconds: plan.default_seconds(),
            makespan_seconds: plan.makespan_seconds(),
            lower_bound_seconds: plan.lower_bound_seconds(),
            method: plan.method(),
            shards: plan
                .shards()
                .iter()
                .enumerate()
                .map(|(index, shard)| ShardJson {
                    index,
                    predicted_seconds: shard.seconds(),
                    items: shard.items().iter().map(|&i| items[i].as_str()).collect(),
                })
                .collect(),
        }
    }
}

/// `--index I -o json`: one shard, with the plan's figures for context.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OneShard<'a> {
    index: usize,
    total: usize,
    predicted_seconds: f64,
    makespan_seconds: f64,
    lower_bound_seconds: f64,
    items: Vec<&'a str>,
}

impl<'a> OneShard<'a> {
    fn new(plan: &ShardPlan, items: &'a [String], index: usize, total: usize) -> Self {
        Self {
            index,
            total,
            predicted_seconds: plan
                .shards()
                .get(index)
                .map_or(0.0, |shard| shard.seconds()),
            makespan_seconds: plan.makespan_seconds(),
            lower_bound_seconds: plan.lower_bound_seconds(),
            items: shard_items(plan, items, index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_finds_items_by_normalized_path_and_unique_suffix() {
        let timings = BTreeMap::from([
            ("/ci/work/tests/test_a.py".to_string(), 3.0),
            ("./tests/test_b.py".to_string(), 2.0),
            ("x/tests/test_c.py".to_string(), 1.0),
            ("y/tests/test_c.py".to_string(), 1.5),
        ]);
        let matcher = TimingMatcher::new(&timings);
        assert_eq!(matcher.seconds("tests/test_a.py"), Some(3.0));
        assert_eq!(matcher.seconds("tests/test_b.py"), Some(2.0));
        // Ambiguous suffix: two reports' files end the same way.
        assert_eq!(matcher.seconds("tests/test_c.py"), None);
        assert_eq!(
            matcher.seconds("test_a.py"),
            None,
            "bare names need an exact match"
        );
    }

    #[test]
    fn dedupe_keeps_first_occurrence_order() {
        let items = vec!["b".into(), "a".into(), "b".into()];
        assert_eq!(dedupe(items), vec!["b".to_string(), "a".to_string()]);
    }
}
