//! `testkube split`: CI-agnostic test splitting by recorded duration.
//!
//! Each CI job calls this with the same items and timings and its own
//! `--index`; the split is deterministic, so the jobs agree on who runs what
//! without talking to each other.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use testkube_core::shard::{
    DefaultDuration, Item, MAX_WORKERS, PlanMethod, ShardCountSuggestion, ShardPlan, balance,
    suggest_shard_count,
};
use testkube_results::TimingKey;

use super::{CliError, print_json};
use crate::cli::{SplitArgs, SplitBy, TextOutput};
use crate::input;
use crate::style::{self, outln, paint};
use crate::timings::{ItemTimings, normalize};

/// The most shards `--total` accepts: the engine's worker limit.
const MAX_SHARDS: usize = MAX_WORKERS as usize;

/// The most shards `--suggest-for` considers without `--total`.
const DEFAULT_SUGGEST_LIMIT: usize = 100;

pub(crate) fn run(args: SplitArgs) -> Result<ExitCode, CliError> {
    let default = default_duration(args.default_seconds)?;
    let key = match args.by {
        SplitBy::Name => TimingKey::Name,
        SplitBy::Classname => TimingKey::Classname,
        SplitBy::File => TimingKey::File,
    };
    let timings = ItemTimings::load(&args.timings, &[key])?;
    let items = dedupe(input::items_or_stdin(&args.items)?);
    if let Some(timings) = &timings {
        refuse_timing_files_as_items(&items, timings.files())?;
    }
    let weighted = weigh(&items, timings.as_ref(), key);

    if let Some(target) = args.suggest_for {
        let limit = shard_count(args.total.unwrap_or(DEFAULT_SUGGEST_LIMIT))?;
        return suggest(&weighted, target, limit, &default, args.output);
    }
    let shards = shard_count(args.total.unwrap_or(0))?;
    if let Some(index) = args.index
        && index >= shards.get()
    {
        return Err(CliError::usage(format!(
            "--index {index} is out of range for --total {shards}"
        ))
        .with_hint(format!(
            "indexes count from 0: use 0 to {}",
            shards.get() - 1
        )));
    }
    let plan = balance(&weighted, shards, &default);
    let known = weighted
        .iter()
        .filter(|item| item.seconds.is_some())
        .count();

    match (args.all, args.index, args.output) {
        (true, _, TextOutput::Json) => print_json(&AllShards::new(&plan, &items, known))?,
        (true, _, TextOutput::Pretty) => print_all(&plan, &items),
        (false, Some(index), TextOutput::Json) => {
            print_json(&OneShard::new(&plan, &items, index, shards.get()))?
        }
        (false, Some(index), TextOutput::Pretty) => {
            for item in shard_items(&plan, &items, index) {
                outln!("{item}");
            }
        }
        // clap requires --index unless --all or --suggest-for; keep an error, not a panic.
        (false, None, _) => {
            return Err(CliError::usage("--index is required unless --all is given"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn shard_count(total: usize) -> Result<NonZeroUsize, CliError> {
    match NonZeroUsize::new(total) {
        Some(shards) if total <= MAX_SHARDS => Ok(shards),
        Some(_) => Err(CliError::usage(format!(
            "--total {total} is more than {MAX_SHARDS} shards"
        ))
        .with_hint("split across at most 10000 CI jobs")),
        None => Err(CliError::usage("--total must be at least 1")
            .with_hint("pass the number of CI jobs, e.g. --total 4")),
    }
}

fn default_duration(seconds: Option<f64>) -> Result<DefaultDuration, CliError> {
    match seconds {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Ok(DefaultDuration::Fixed(seconds))
        }
        Some(seconds) => Err(CliError::usage(format!(
            "--default-seconds must be a non-negative number, got {seconds}"
        ))),
        None => Ok(DefaultDuration::MeanOfKnown),
    }
}

/// A timings file among the items is a command line gone wrong (a glob that
/// spilled over, `ls reports/*` piped in), never something to split.
fn refuse_timing_files_as_items(items: &[String], files: &[PathBuf]) -> Result<(), CliError> {
    let same_file = |item: &str, file: &Path| {
        normalize(item) == normalize(&file.display().to_string())
            || matches!(
                (Path::new(item).canonicalize(), file.canonicalize()),
                (Ok(a), Ok(b)) if a == b
            )
    };
    let Some((item, file)) = items.iter().find_map(|item| {
        files
            .iter()
            .find(|file| same_file(item, file))
            .map(|file| (item, file))
    }) else {
        return Ok(());
    };
    Err(CliError::usage(format!(
        "item `{item}` is one of the --timings files ({})",
        file.display()
    ))
    .with_hint(
        "--timings takes every path up to the next flag; give the items after `--` \
         (testkube split --timings reports/*.xml --total 4 --index 0 -- a.py b.py) or on standard input",
    ))
}

/// Each item with its recorded seconds, warning when timings were given but
/// none of them matched (usually the wrong `--by`).
fn weigh(items: &[String], timings: Option<&ItemTimings>, key: TimingKey) -> Vec<Item> {
    let weighted: Vec<Item> = items
        .iter()
        .map(|item| {
            let seconds = timings.and_then(|t| t.seconds(item));
            Item::new(item.clone(), seconds)
        })
        .collect();
    if let Some(timings) = timings
        && !items.is_empty()
        && weighted.iter().all(|item| item.seconds.is_none())
    {
        let hint = if timings.is_empty() {
            format!("the reports have no `{key}` for their test cases; try another --by")
        } else {
            "check that --by names what the items are (name, classname or file)".to_string()
        };
        anstream::eprintln!(
            "{} none of the {} items matched a timing (by {key}) in {} {}; splitting them evenly\n  {} {hint}",
            paint(style::WARN, "warning:"),
            items.len(),
            timings.files().len(),
            if timings.files().len() == 1 {
                "file"
            } else {
                "files"
            },
            paint(style::ACCENT, "help:"),
        );
    }
    weighted
}

/// Keeps the first occurrence of each item (compared as paths are, so
/// `./a.py` and `a.py` are one item): one item, one shard, one run.
fn dedupe(items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(normalize(item)))
        .collect()
}

fn shard_items<'a>(plan: &ShardPlan, items: &'a [String], index: usize) -> Vec<&'a str> {
    plan.shards()
        .get(index)
        .map(|shard| shard.items().iter().map(|&i| items[i].as_str()).collect())
        .unwrap_or_default()
}

/// Seconds for display and JSON: never `-0`.
fn seconds(value: f64) -> f64 {
    if value == 0.0 { 0.0 } else { value }
}

fn print_all(plan: &ShardPlan, items: &[String]) {
    for (index, shard) in plan.shards().iter().enumerate() {
        let count = shard.items().len();
        outln!(
            "{} {}",
            paint(style::BOLD, format!("# shard {index}")),
            paint(
                style::DIM,
                format!(
                    "{:.1}s, {count} {}",
                    seconds(shard.seconds()),
                    if count == 1 { "item" } else { "items" }
                )
            )
        );
        for &i in shard.items() {
            outln!("{}", items[i]);
        }
    }
    outln!(
        "{}",
        paint(
            style::DIM,
            format!(
                "# makespan {:.1}s, lower bound {:.1}s",
                seconds(plan.makespan_seconds()),
                seconds(plan.lower_bound_seconds())
            )
        )
    );
}

fn suggest(
    items: &[Item],
    target: f64,
    limit: NonZeroUsize,
    default: &DefaultDuration,
    output: TextOutput,
) -> Result<ExitCode, CliError> {
    let suggestion = suggest_shard_count(items, target, limit, default).map_err(|err| {
        CliError::usage(err.to_string())
            .with_hint("pass the target wall time in seconds, e.g. --suggest-for 600")
    })?;
    let plan = suggestion.plan();
    let reason = match &suggestion {
        ShardCountSuggestion::Meets { .. } => "meets the target".to_string(),
        ShardCountSuggestion::ItemLongerThanTarget { item, .. } => format!(
            "`{}` alone takes longer than the target; this count gets as close as possible",
            items
                .get(*item)
                .map_or("an item", |item| item.name.as_str())
        ),
        ShardCountSuggestion::ShardLimitTooLow { .. } => {
            "even the most shards allowed miss the target; raise --total".to_string()
        }
        _ => "best effort".to_string(),
    };
    match output {
        TextOutput::Json => print_json(&Suggestion {
            suggested_total: suggestion.shards().get(),
            target_seconds: target,
            meets_target: suggestion.meets_target(),
            makespan_seconds: seconds(plan.makespan_seconds()),
            lower_bound_seconds: seconds(plan.lower_bound_seconds()),
            reason: &reason,
        })?,
        TextOutput::Pretty => {
            outln!("{}", suggestion.shards());
            anstream::eprintln!(
                "{} --total {}: slowest shard ~{:.1}s for a target of {target:.1}s ({reason})",
                paint(
                    if suggestion.meets_target() {
                        style::OK
                    } else {
                        style::WARN
                    },
                    "suggested:"
                ),
                suggestion.shards(),
                seconds(plan.makespan_seconds()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--suggest-for S -o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Suggestion<'a> {
    suggested_total: usize,
    target_seconds: f64,
    meets_target: bool,
    makespan_seconds: f64,
    lower_bound_seconds: f64,
    reason: &'a str,
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
    method: PlanMethod,
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
            makespan_seconds: seconds(plan.makespan_seconds()),
            lower_bound_seconds: seconds(plan.lower_bound_seconds()),
            method: plan.method(),
            shards: plan
                .shards()
                .iter()
                .enumerate()
                .map(|(index, shard)| ShardJson {
                    index,
                    predicted_seconds: seconds(shard.seconds()),
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
            predicted_seconds: seconds(
                plan.shards()
                    .get(index)
                    .map_or(0.0, |shard| shard.seconds()),
            ),
            makespan_seconds: seconds(plan.makespan_seconds()),
            lower_bound_seconds: seconds(plan.lower_bound_seconds()),
            items: shard_items(plan, items, index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_first_occurrence_and_compares_paths_normalized() {
        let items = vec!["b".into(), "./a.py".into(), "b".into(), "a.py".into()];
        assert_eq!(dedupe(items), vec!["b".to_string(), "./a.py".to_string()]);
    }

    #[test]
    fn total_is_bounded() {
        assert!(shard_count(0).is_err());
        assert!(shard_count(MAX_SHARDS + 1).is_err());
        assert_eq!(
            shard_count(MAX_SHARDS).map(NonZeroUsize::get).ok(),
            Some(MAX_SHARDS)
        );
    }
}
