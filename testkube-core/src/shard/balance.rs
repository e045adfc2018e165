//! Duration-balanced splitting: items with measured durations into `N`
//! shards, minimizing the slowest shard (the makespan).
//!
//! The split is made in "rank space": items sorted by duration (longest
//! first), ties by name, then by input position. Every heuristic works on
//! ranks only, so the same named items in any input order land in the same
//! shards. Candidates are the longest-processing-time greedy and, on smaller
//! inputs, Karmarkar–Karp differencing, each polished by moves and swaps out
//! of the slowest shard ([`super::heuristics`]); the best one is kept, unless
//! the plain contiguous split of the input happens to be better still.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contiguous_split;
use super::heuristics::{differencing, improve, longest_first};

/// One thing to place in a shard: a test, a file, a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Its name, used to break ties between equal durations.
    pub name: String,
    /// Its measured duration in seconds; `None` when never measured.
    ///
    /// A negative, NaN or infinite value is treated as unknown.
    pub seconds: Option<f64>,
}

impl Item {
    /// An item named `name` with an optional measured duration.
    pub fn new(name: impl Into<String>, seconds: Option<f64>) -> Item {
        Item {
            name: name.into(),
            seconds,
        }
    }
}

/// The duration assumed for items that were never measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DefaultDuration {
    /// The mean of the known durations (the usual choice: a new test is
    /// assumed to be an average one).
    #[default]
    MeanOfKnown,
    /// A fixed number of seconds. A negative, NaN or infinite value falls back
    /// to [`DefaultDuration::MeanOfKnown`].
    Fixed(f64),
}

/// How a [`ShardPlan`] was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PlanMethod {
    /// Longest items first onto the least loaded shard, then improved.
    LongestFirst,
    /// Karmarkar–Karp differencing, then improved.
    Differencing,
    /// The contiguous split of the input order, which was better than both.
    Contiguous,
    /// No item had a known duration, so all weigh the same (the fixed
    /// default, or nothing): the format's contiguous split is used, which
    /// balances item counts. Predicted seconds are only as good as the
    /// default (zero with [`DefaultDuration::MeanOfKnown`]).
    ContiguousNoDurations,
}

/// A split of items into shards with predicted times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardPlan {
    shards: Vec<PlannedShard>,
    makespan_seconds: f64,
    lower_bound_seconds: f64,
    defaulted_items: usize,
    default_seconds: Option<f64>,
    method: PlanMethod,
}

/// One shard of a [`ShardPlan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedShard {
    items: Vec<usize>,
    seconds: f64,
}

impl ShardPlan {
    /// The shards, one per requested shard, some possibly empty.
    pub fn shards(&self) -> &[PlannedShard] {
        &self.shards
    }

    /// The predicted time of the slowest shard.
    pub fn makespan_seconds(&self) -> f64 {
        self.makespan_seconds
    }

    /// A time no split can beat: the largest of the longest item, the mean
    /// shard (`total / shards`), and, for each `j ≥ 1`, the `j + 1` shortest
    /// of the `j × shards + 1` longest items (some shard holds `j + 1` of
    /// them). The last one matters when items are few per shard: 25 items of
    /// about 30 s on 10 shards cannot beat ~90 s, whatever the mean says.
    pub fn lower_bound_seconds(&self) -> f64 {
        self.lower_bound_seconds
    }

    /// How many items had no usable duration and got the default.
    pub fn defaulted_items(&self) -> usize {
        self.defaulted_items
    }

    /// The duration given to those items, if one could be chosen.
    pub fn default_seconds(&self) -> Option<f64> {
        self.default_seconds
    }

    /// How the split was made.
    pub fn method(&self) -> PlanMethod {
        self.method
    }
}

impl PlannedShard {
    /// Positions of this shard's items in the input, ascending.
    pub fn items(&self) -> &[usize] {
        &self.items
    }

    /// The predicted time of this shard: the sum of its items' durations.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }
}

/// Splits `items` into `shards` shards, minimizing the predicted makespan.
///
/// Deterministic, and independent of input order for items with distinct
/// names (except in the rare case where the contiguous split of the input
/// order wins, reported as [`PlanMethod::Contiguous`]). Never worse than the
/// contiguous split of the same items. Runs in `O(n log n)` plus a bounded
/// improvement phase: 100,000 items into 100 shards take about 20–30 ms on a
/// 2-core machine (`cargo bench -p testkube-core --bench shard`).
pub fn balance(items: &[Item], shards: NonZeroUsize, default: &DefaultDuration) -> ShardPlan {
    Weighted::new(items, default).plan(shards)
}

/// A list of values split by [`balance`], for the `parallel.balance` extension.
#[derive(Debug, Clone, PartialEq)]
pub struct BalancedValues {
    /// The values of each shard, in their input order.
    pub values: Vec<Vec<Value>>,
    /// The plan behind them; item indices are positions in the input list.
    pub plan: ShardPlan,
}

/// Splits a `shards` list by duration: each value's duration is
/// `durations(value_key(value))`.
pub fn balance_values(
    values: &[Value],
    mut durations: impl FnMut(&str) -> Option<f64>,
    shards: NonZeroUsize,
    default: &DefaultDuration,
) -> BalancedValues {
    let items: Vec<Item> = values
        .iter()
        .map(|value| {
            let name = value_key(value);
            let seconds = durations(&name);
            Item::new(name, seconds)
        })
        .collect();
    let plan = balance(&items, shards, default);
    let values = plan
        .shards()
        .iter()
        .map(|shard| {
            shard
                .items()
                .iter()
                .filter_map(|&index| values.get(index).cloned())
                .collect()
        })
        .collect();
    BalancedValues { values, plan }
}

/// The name a `shards` value is known by in duration history: a string as
/// is, any other value as compact JSON (`5`, `true`, `{"a":1}`).
pub fn value_key(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}

/// Items reduced to weights, sorted into ranks.
pub(crate) struct Weighted {
    /// `order[rank]` is the input position of the item with that rank.
    order: Vec<usize>,
    /// `weights[rank]`: durations, longest first.
    weights: Vec<f64>,
    /// Durations in input order, for the contiguous split.
    by_position: Vec<f64>,
    defaulted: usize,
    default_seconds: Option<f64>,
    any_known: bool,
}

/// Above this many `items × shards`, differencing costs more than it brings:
/// with many items per shard, the greedy split is already within one small
/// item of the bound.
const DIFFERENCING_LIMIT: usize = 250_000;

impl Weighted {
    pub(crate) fn new(items: &[Item], default: &DefaultDuration) -> Weighted {
        let known = |item: &Item| item.seconds.filter(|s| s.is_finite() && *s >= 0.0);
        let mut measured: Vec<f64> = items.iter().filter_map(known).collect();
        let any_known = !measured.is_empty();
        // Summing in sorted order makes the mean independent of input order.
        measured.sort_unstable_by(f64::total_cmp);
        let mean = any_known.then(|| measured.iter().sum::<f64>() / measured.len() as f64);
        let default_seconds = match *default {
            DefaultDuration::Fixed(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                Some(seconds)
            }
            _ => mean,
        };
        let by_position: Vec<f64> = items
            .iter()
            .map(|item| known(item).or(default_seconds).unwrap_or(0.0))
            .collect();
        // Sorting (weight, position) pairs keeps the comparisons in cache;
        // names are only read to break ties. The order is total (positions
        // are unique), so an unstable sort is deterministic.
        let mut ranked: Vec<(f64, usize)> = by_position.iter().copied().zip(0..).collect();
        ranked.sort_unstable_by(|&(weight_a, a), &(weight_b, b)| {
            weight_b
                .total_cmp(&weight_a)
                .then_with(|| items[a].name.cmp(&items[b].name))
                .then(a.cmp(&b))
        });
        let (weights, order) = ranked.into_iter().unzip();
        Weighted {
            order,
            weights,
            by_position,
            defaulted: items.len() - measured.len(),
            default_seconds,
            any_known,
        }
    }

    /// The longest single item.
    pub(crate) fn longest(&self) -> Option<(usize, f64)> {
        self.order
            .first()
            .map(|&position| (position, self.weights[0]))
    }

    /// The sum of all durations, added in rank order.
    pub(crate) fn total(&self) -> f64 {
        self.weights.iter().sum()
    }

    pub(crate) fn plan(&self, shards: NonZeroUsize) -> ShardPlan {
        let count = shards.get();
        let contiguous = contiguous_split(self.by_position.len(), count);
        if !self.any_known {
            return self.contiguous_plan(&contiguous, PlanMethod::ContiguousNoDurations);
        }
        let mut best = longest_first(&self.weights, count);
        improve(&mut best, &self.weights);
        let mut best_makespan = makespan(&best, &self.weights);
        let mut method = PlanMethod::LongestFirst;
        if self.weights.len().saturating_mul(count) <= DIFFERENCING_LIMIT {
            let mut candidate = differencing(&self.weights, count);
            improve(&mut candidate, &self.weights);
            let candidate_makespan = makespan(&candidate, &self.weights);
            if candidate_makespan < best_makespan {
                (best, best_makespan, method) =
                    (candidate, candidate_makespan, PlanMethod::Differencing);
            }
        }
        let contiguous_makespan = contiguous
            .iter()
            .map(|range| self.by_position[range.clone()].iter().sum::<f64>())
            .fold(0.0, f64::max);
        // Only a clear win counts: both sums are the same up to rounding
        // when the splits are equally good.
        if contiguous_makespan < best_makespan * (1.0 - 1e-12) {
            return self.contiguous_plan(&contiguous, PlanMethod::Contiguous);
        }
        let shards = best
            .into_iter()
            .map(|ranks| {
                let seconds = ranks.iter().map(|&rank| self.weights[rank]).sum();
                let mut items: Vec<usize> = ranks.iter().map(|&rank| self.order[rank]).collect();
                items.sort_unstable();
                PlannedShard { items, seconds }
            })
            .collect();
        self.finish(shards, method)
    }

    fn contiguous_plan(&self, ranges: &[std::ops::Range<usize>], method: PlanMethod) -> ShardPlan {
        let shards = ranges
            .iter()
            .map(|range| PlannedShard {
                items: range.clone().collect(),
                seconds: self.by_position[range.clone()].iter().sum(),
            })
            .collect();
        self.finish(shards, method)
    }

    fn finish(&self, shards: Vec<PlannedShard>, method: PlanMethod) -> ShardPlan {
        let makespan_seconds = shards.iter().map(PlannedShard::seconds).fold(0.0, f64::max);
        let lower_bound_seconds = self.lower_bound(shards.len().max(1));
        ShardPlan {
            makespan_seconds,
            lower_bound_seconds,
            defaulted_items: self.defaulted,
            default_seconds: self.default_seconds,
            method,
            shards,
        }
    }
}

/// How many items per shard [`Weighted::lower_bound`] looks at: past a few
/// dozen, the mean load is the bound that counts.
const CROWDED_SHARD_LIMIT: usize = 64;

impl Weighted {
    /// See [`ShardPlan::lower_bound_seconds`]; `weights` are sorted longest
    /// first, so the `j + 1` shortest of the `j × shards + 1` longest items
    /// are ranks `j × shards - j ..= j × shards`.
    fn lower_bound(&self, shards: usize) -> f64 {
        let longest = self.weights.first().copied().unwrap_or(0.0);
        let mut bound = longest.max(self.total() / shards as f64);
        for j in 1..=CROWDED_SHARD_LIMIT {
            let Some(last) = j
                .checked_mul(shards)
                .filter(|&last| last < self.weights.len())
            else {
                break;
            };
            bound = bound.max(self.weights[last - j..=last].iter().sum());
        }
        bound
    }
}

/// The slowest shard of a rank assignment, each shard summed in rank order.
fn makespan(shards: &[Vec<usize>], weights: &[f64]) -> f64 {
    shards
        .iter()
        .map(|ranks| ranks.iter().map(|&rank| weights[rank]).sum::<f64>())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
    }

    #[test]
    fn unknown_durations_get_the_mean_of_the_known_ones() {
        let items = [
            Item::new("a", Some(2.0)),
            Item::new("b", Some(4.0)),
            Item::new("c", None),
            Item::new("d", Some(f64::NAN)),
        ];
        let plan = balance(&items, shards(2), &DefaultDuration::MeanOfKnown);
        assert_eq!(plan.default_seconds(), Some(3.0));
        assert_eq!(plan.defaulted_items(), 2);
        assert_eq!(plan.makespan_seconds(), 6.0);
    }

    #[test]
    fn a_fixed_default_wins_over_the_mean() {
        let items = [Item::new("a", Some(2.0)), Item::new("b", None)];
        let plan = balance(&items, shards(1), &DefaultDuration::Fixed(10.0));
        assert_eq!(plan.default_seconds(), Some(10.0));
        assert_eq!(plan.makespan_seconds(), 12.0);
    }

    #[test]
    fn an_invalid_fixed_default_falls_back_to_the_mean() {
        let items = [Item::new("a", Some(2.0)), Item::new("b", None)];
        let plan = balance(&items, shards(1), &DefaultDuration::Fixed(-1.0));
        assert_eq!(plan.default_seconds(), Some(2.0));
    }

    #[test]
    fn value_keys_are_strings_as_is_and_json_otherwise() {
        assert_eq!(value_key(&Value::from("a b")), "a b");
        assert_eq!(value_key(&Value::from(5)), "5");
        assert_eq!(value_key(&serde_json::json!({"a": [1]})), r#"{"a":[1]}"#);
    }
}
