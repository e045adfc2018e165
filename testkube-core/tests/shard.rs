//! The shard planner as users meet it: the format's worker semantics (the
//! examples of SPEC.md "parallel / services: workers") and the
//! duration-balanced split with its guarantees, checked by property tests.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use proptest::prelude::*;
use serde_json::{Value, json};
use testkube_core::shard::{
    DefaultDuration, Item, MAX_WORKERS, ParallelCounts, PlanMethod, ShardError, ShardPlan,
    ValueLists, WorkerSet, balance, balance_values, contiguous_split,
};

fn lists(pairs: Value) -> ValueLists {
    let Value::Object(map) = pairs else {
        return ValueLists::new();
    };
    map.into_iter()
        .map(|(key, value)| (key, value.as_array().cloned().unwrap_or_default()))
        .collect()
}

fn counts(count: Option<u64>, max_count: Option<u64>) -> ParallelCounts {
    ParallelCounts { count, max_count }
}

fn plan(counts: ParallelCounts, matrix: Value, shards: Value) -> WorkerSet {
    match WorkerSet::plan(counts, lists(matrix), lists(shards)) {
        Ok(set) => set,
        Err(error) => panic!("plan failed: {error}"),
    }
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

fn timed(seconds: &[f64]) -> Vec<Item> {
    seconds
        .iter()
        .enumerate()
        .map(|(index, &s)| Item::new(format!("t{index:03}"), Some(s)))
        .collect()
}

// ---- The format's worker semantics -------------------------------------

#[test]
fn no_count_no_matrix_no_shards_is_one_worker() {
    let set = plan(counts(None, None), json!({}), json!({}));
    assert_eq!(
        (set.shard_count(), set.matrix_count(), set.len()),
        (1, 1, 1)
    );
    let worker = set.assignments().remove(0);
    assert_eq!(
        serde_json::to_value(&worker).ok(),
        Some(json!({
            "index": 0, "count": 1, "shardIndex": 0, "shardCount": 1,
            "matrixIndex": 0, "matrixCount": 1, "matrix": {}, "shard": {}
        }))
    );
}

#[test]
fn matrix_combinations_keep_key_order_with_the_last_key_fastest() {
    let set = plan(
        counts(None, None),
        json!({"os": ["linux", "mac"], "node": [18, 20, 22]}),
        json!({}),
    );
    assert_eq!(set.matrix_count(), 6);
    let seen: Vec<Value> = set
        .assignments()
        .into_iter()
        .map(|worker| serde_json::to_value(worker.matrix).unwrap_or_default())
        .collect();
    assert_eq!(
        seen,
        vec![
            json!({"os": "linux", "node": 18}),
            json!({"os": "linux", "node": 20}),
            json!({"os": "linux", "node": 22}),
            json!({"os": "mac", "node": 18}),
            json!({"os": "mac", "node": 20}),
            json!({"os": "mac", "node": 22}),
        ]
    );
    // The key order of the output is the order the YAML wrote, not sorted.
    let keys: Vec<String> = set.assignments()[0].matrix.keys().cloned().collect();
    assert_eq!(keys, vec!["os", "node"]);
}

#[test]
fn empty_matrix_lists_are_dropped() {
    let set = plan(
        counts(None, None),
        json!({"browser": [], "os": ["linux", "mac"]}),
        json!({}),
    );
    assert_eq!(set.matrix_count(), 2);
    let worker = set.worker(1).map(|w| w.to_assignment());
    let matrix = worker.map(|w| serde_json::to_value(w.matrix).unwrap_or_default());
    assert_eq!(matrix, Some(json!({"os": "mac"})));
}

#[test]
fn an_all_empty_matrix_counts_as_one_combination() {
    let set = plan(counts(Some(2), None), json!({"a": [], "b": []}), json!({}));
    assert_eq!((set.matrix_count(), set.len()), (1, 2));
}

#[test]
fn shards_split_contiguously_with_the_first_shards_longer() {
    let set = plan(
        counts(Some(3), None),
        json!({}),
        json!({"files": [5, 10, 15, 20, 25]}),
    );
    let shares: Vec<Vec<Value>> = set
        .workers()
        .map(|w| w.shard("files").unwrap_or_default().to_vec())
        .collect();
    assert_eq!(
        shares,
        vec![
            vec![json!(5), json!(10)],
            vec![json!(15), json!(20)],
            vec![json!(25)]
        ]
    );
}

#[test]
fn a_count_above_the_list_length_gives_empty_shards() {
    let set = plan(
        counts(Some(5), None),
        json!({}),
        json!({"files": [5, 10, 15]}),
    );
    let shares: Vec<Value> = set
        .assignments()
        .into_iter()
        .map(|w| serde_json::to_value(w.shard).unwrap_or_default())
        .collect();
    assert_eq!(
        shares,
        vec![
            json!({"files": [5]}),
            json!({"files": [10]}),
            json!({"files": [15]}),
            json!({"files": []}),
            json!({"files": []}),
        ]
    );
}

#[test]
fn max_count_alone_is_capped_by_the_shortest_shard_list() {
    let shards = json!({"files": [1, 2, 3, 4, 5, 6], "suites": ["a", "b", "c"]});
    assert_eq!(
        plan(counts(None, Some(10)), json!({}), shards.clone()).shard_count(),
        3
    );
    assert_eq!(
        plan(counts(None, Some(2)), json!({}), shards).shard_count(),
        2
    );
}

#[test]
fn max_count_alone_without_shards_is_the_shard_count() {
    assert_eq!(
        plan(counts(None, Some(4)), json!({}), json!({})).shard_count(),
        4
    );
}

#[test]
fn both_counts_follow_the_format_rules() {
    let shards = json!({"files": [1, 2, 3, 4]});
    // maxCount < count → maxCount.
    assert_eq!(
        plan(counts(Some(5), Some(2)), json!({}), shards.clone()).shard_count(),
        2
    );
    // maxCount ≥ count → min(maxCount, minShards); count is ignored.
    assert_eq!(
        plan(counts(Some(2), Some(10)), json!({}), shards.clone()).shard_count(),
        4
    );
    assert_eq!(
        plan(counts(Some(2), Some(3)), json!({}), shards.clone()).shard_count(),
        3
    );
    assert_eq!(
        plan(counts(Some(3), Some(3)), json!({}), shards).shard_count(),
        3
    );
}

#[test]
fn empty_shard_lists_do_not_limit_max_count_and_are_not_shown() {
    let set = plan(
        counts(None, Some(3)),
        json!({}),
        json!({"empty": [], "files": [1, 2, 3, 4]}),
    );
    assert_eq!(set.shard_count(), 3);
    let worker = set.worker(0).map(|w| w.to_assignment());
    let shard = worker.map(|w| serde_json::to_value(w.shard).unwrap_or_default());
    assert_eq!(shard, Some(json!({"files": [1, 2]})));
}

#[test]
fn zero_counts_give_zero_workers() {
    for (count, max_count) in [(Some(0), None), (None, Some(0)), (Some(3), Some(0))] {
        let set = plan(
            counts(count, max_count),
            json!({"os": ["a", "b"]}),
            json!({"f": [1]}),
        );
        assert!(set.is_empty(), "{count:?} {max_count:?}");
        assert_eq!(set.workers().count(), 0);
        assert!(set.worker(0).is_none());
    }
}

#[test]
fn index_maps_to_shard_then_matrix() {
    let set = plan(
        counts(Some(2), None),
        json!({"os": ["linux", "mac", "win"]}),
        json!({"files": ["a", "b", "c"]}),
    );
    assert_eq!(set.len(), 6);
    let seen: Vec<(usize, usize, usize, Value, Value)> = set
        .workers()
        .map(|w| {
            let os = w
                .matrix()
                .map(|(_, v)| v.clone())
                .next()
                .unwrap_or_default();
            let files = Value::from(w.shard("files").unwrap_or_default().to_vec());
            (w.index(), w.shard_index(), w.matrix_index(), os, files)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, 0, 0, json!("linux"), json!(["a", "b"])),
            (1, 1, 0, json!("linux"), json!(["c"])),
            (2, 0, 1, json!("mac"), json!(["a", "b"])),
            (3, 1, 1, json!("mac"), json!(["c"])),
            (4, 0, 2, json!("win"), json!(["a", "b"])),
            (5, 1, 2, json!("win"), json!(["c"])),
        ]
    );
    assert!(
        set.workers()
            .all(|w| w.count() == 6 && w.shard_count() == 2)
    );
}

#[test]
fn too_many_workers_is_an_error_not_an_allocation() {
    let error = WorkerSet::plan(
        counts(Some(u64::MAX), None),
        ValueLists::new(),
        ValueLists::new(),
    );
    assert!(matches!(error, Err(ShardError::TooManyWorkers { .. })));

    // 101 × 100 = 10,100 combinations, one over the limit.
    let wide = lists(json!({
        "a": (0..101).collect::<Vec<u32>>(),
        "b": (0..100).collect::<Vec<u32>>(),
    }));
    match WorkerSet::plan(counts(None, None), wide, ValueLists::new()) {
        Err(ShardError::TooManyWorkers {
            requested,
            shard_count,
            matrix_count,
            limit,
        }) => {
            assert_eq!(
                (requested, shard_count, matrix_count, limit),
                (10_100, 1, 10_100, MAX_WORKERS)
            );
        }
        other => panic!("expected TooManyWorkers, got {other:?}"),
    }

    // A matrix whose product overflows u64 saturates instead of wrapping.
    let huge: ValueLists = (0..70)
        .map(|key| (format!("k{key}"), vec![json!(0), json!(1)]))
        .collect();
    let error = WorkerSet::plan(counts(None, None), huge, ValueLists::new());
    assert!(matches!(
        error,
        Err(ShardError::TooManyWorkers {
            requested: u64::MAX,
            ..
        })
    ));
}

#[test]
fn exactly_the_limit_is_allowed() {
    let set = WorkerSet::plan(
        counts(Some(MAX_WORKERS), None),
        ValueLists::new(),
        ValueLists::new(),
    );
    assert_eq!(set.map(|s| s.len()).ok(), Some(10_000));
}

// ---- parallel.balance: one shard key split by duration ------------------

#[test]
fn balancing_a_shard_key_replaces_only_its_contiguous_split() {
    let mut set = plan(
        counts(Some(2), None),
        json!({"os": ["linux", "mac"]}),
        json!({"files": ["slow", "a", "b", "c"], "other": [1, 2, 3, 4]}),
    );
    let history = BTreeMap::from([("slow", 9.0), ("a", 3.0), ("b", 3.0), ("c", 3.0)]);
    let plan = set
        .balance_shard_key(
            "files",
            |name| history.get(name).copied(),
            &DefaultDuration::MeanOfKnown,
        )
        .ok()
        .flatten();
    let plan = plan.unwrap_or_else(|| panic!("a plan for two shards"));
    assert_eq!(plan.makespan_seconds(), 9.0);
    let files: Vec<Value> = set
        .workers()
        .map(|w| Value::from(w.shard("files").unwrap_or_default().to_vec()))
        .collect();
    // Balanced per shard, repeated for every matrix combination.
    assert_eq!(
        files,
        vec![
            json!(["slow"]),
            json!(["a", "b", "c"]),
            json!(["slow"]),
            json!(["a", "b", "c"])
        ]
    );
    let other: Vec<Value> = set
        .workers()
        .map(|w| Value::from(w.shard("other").unwrap_or_default().to_vec()))
        .collect();
    assert_eq!(
        other,
        vec![json!([1, 2]), json!([3, 4]), json!([1, 2]), json!([3, 4])]
    );
}

#[test]
fn balancing_an_unknown_key_says_which_keys_exist() {
    let mut set = plan(counts(Some(2), None), json!({}), json!({"files": ["a"]}));
    let error = set.balance_shard_key("file", |_| None, &DefaultDuration::MeanOfKnown);
    assert_eq!(
        error.map_err(|e| e.to_string()),
        Err("cannot balance shard key `file`: `shards` has only `files`".to_owned())
    );
}

#[test]
fn balancing_with_no_workers_or_an_empty_list_is_a_no_op() {
    let mut none = plan(counts(Some(0), None), json!({}), json!({"files": ["a"]}));
    let result = none.balance_shard_key("files", |_| Some(1.0), &DefaultDuration::MeanOfKnown);
    assert_eq!(result, Ok(None));
    let mut empty = plan(counts(Some(2), None), json!({}), json!({"files": []}));
    let result = empty.balance_shard_key("files", |_| Some(1.0), &DefaultDuration::MeanOfKnown);
    assert_eq!(result, Ok(None));
}

#[test]
fn values_are_looked_up_by_their_string_form() {
    let values = [json!("x"), json!(7), json!({"suite": "y"})];
    let mut asked = Vec::new();
    let lookup = |name: &str| {
        asked.push(name.to_owned());
        Some(1.0)
    };
    let balanced = balance_values(&values, lookup, nz(2), &DefaultDuration::MeanOfKnown);
    assert_eq!(asked, vec!["x", "7", r#"{"suite":"y"}"#]);
    assert_eq!(balanced.values.concat().len(), 3);
}

// ---- Duration-balanced splits --------------------------------------------

#[test]
fn balance_reports_times_the_bound_and_the_defaults() {
    let mut items = timed(&[8.0, 7.0, 6.0, 5.0, 4.0]);
    items.push(Item::new("new", None));
    let plan = balance(&items, nz(2), &DefaultDuration::MeanOfKnown);
    // The unknown test gets the mean, 6 s: 36 s in total, 18 s per shard is optimal.
    assert_eq!(plan.default_seconds(), Some(6.0));
    assert_eq!(plan.defaulted_items(), 1);
    assert_eq!(plan.lower_bound_seconds(), 18.0);
    assert_eq!(plan.makespan_seconds(), 18.0);
    let seconds: Vec<f64> = plan.shards().iter().map(|s| s.seconds()).collect();
    assert_eq!(seconds, vec![18.0, 18.0]);
    // Items within a shard are listed in input order.
    assert!(plan.shards().iter().all(|s| s.items().is_sorted()));
}

#[test]
fn no_known_durations_fall_back_to_the_contiguous_split() {
    let items: Vec<Item> = (0..5).map(|i| Item::new(format!("t{i}"), None)).collect();
    let plan = balance(&items, nz(3), &DefaultDuration::MeanOfKnown);
    assert_eq!(plan.method(), PlanMethod::ContiguousNoDurations);
    let split: Vec<&[usize]> = plan.shards().iter().map(|s| s.items()).collect();
    assert_eq!(split, vec![&[0, 1][..], &[2, 3], &[4]]);
    assert_eq!(plan.default_seconds(), None);
    assert_eq!(plan.makespan_seconds(), 0.0);

    let with_default = balance(&items, nz(3), &DefaultDuration::Fixed(2.0));
    assert_eq!(with_default.method(), PlanMethod::ContiguousNoDurations);
    assert_eq!(with_default.makespan_seconds(), 4.0);
}

#[test]
fn more_shards_than_items_leaves_shards_empty() {
    let plan = balance(&timed(&[3.0, 1.0]), nz(4), &DefaultDuration::MeanOfKnown);
    assert_eq!(plan.shards().len(), 4);
    assert_eq!(
        plan.shards()
            .iter()
            .filter(|s| s.items().is_empty())
            .count(),
        2
    );
    assert_eq!(plan.makespan_seconds(), 3.0);
}

#[test]
fn no_items_gives_empty_shards() {
    let plan = balance(&[], nz(3), &DefaultDuration::MeanOfKnown);
    assert_eq!(plan.shards().len(), 3);
    assert_eq!(
        (plan.makespan_seconds(), plan.lower_bound_seconds()),
        (0.0, 0.0)
    );
}

#[test]
fn a_shard_that_must_hold_several_long_items_raises_the_lower_bound() {
    // Four equal tests on three shards: some shard must run two, so the
    // optimum is 2 s while max(longest, total / N) is only 4/3 s. The bound
    // counts that crowded shard and meets the optimum.
    let plan = balance(&timed(&[1.0; 4]), nz(3), &DefaultDuration::MeanOfKnown);
    assert_eq!(plan.makespan_seconds(), 2.0);
    assert_eq!(plan.lower_bound_seconds(), 2.0);
    // 25 tests of about 30 s on 10 shards (a real NUnit report's shape):
    // some shard runs three of them, whatever total / N says.
    let mut durations = vec![30.0; 25];
    durations.extend([5.0; 12]);
    let plan = balance(&timed(&durations), nz(10), &DefaultDuration::MeanOfKnown);
    assert_eq!(plan.lower_bound_seconds(), 90.0);
    assert_eq!(plan.makespan_seconds(), 90.0);
}

#[test]
fn plans_serialize_for_machines() {
    let plan = balance(&timed(&[2.0, 1.0]), nz(2), &DefaultDuration::MeanOfKnown);
    assert_eq!(
        serde_json::to_value(&plan).ok(),
        Some(json!({
            "shards": [{"items": [0], "seconds": 2.0}, {"items": [1], "seconds": 1.0}],
            "makespanSeconds": 2.0,
            "lowerBoundSeconds": 2.0,
            "defaultedItems": 0,
            "defaultSeconds": 1.5,
            "method": "longest-first"
        }))
    );
}

#[test]
fn contiguous_split_matches_the_spec_examples() {
    assert_eq!(contiguous_split(5, 3), vec![0..2, 2..4, 4..5]);
    assert_eq!(contiguous_split(3, 5), vec![0..1, 1..2, 2..3, 3..3, 3..3]);
}

// ---- Properties ------------------------------------------------------------

/// Relative slack for comparing sums of the same numbers added in different orders.
const ROUNDING: f64 = 1e-9;

fn durations() -> impl Strategy<Value = Vec<Option<f64>>> {
    let duration = prop_oneof![
        8 => (0.0f64..100.0).prop_map(Some),
        1 => (0u32..20).prop_map(|s| Some(f64::from(s))), // many exact ties
        1 => Just(None),
    ];
    prop::collection::vec(duration, 0..60)
}

fn items_from(durations: &[Option<f64>]) -> Vec<Item> {
    durations
        .iter()
        .enumerate()
        .map(|(index, &seconds)| Item::new(format!("test-{index:03}"), seconds))
        .collect()
}

/// The duration each item was planned with (the default for unknown ones).
fn planned_weights(items: &[Item], plan: &ShardPlan) -> Vec<f64> {
    let default = plan.default_seconds().unwrap_or(0.0);
    items
        .iter()
        .map(|item| item.seconds.unwrap_or(default))
        .collect()
}

fn contiguous_makespan(weights: &[f64], shards: usize) -> f64 {
    contiguous_split(weights.len(), shards)
        .into_iter()
        .map(|range| weights[range].iter().sum::<f64>())
        .fold(0.0, f64::max)
}

/// The optimal makespan by exhaustive search (small inputs only): items
/// longest first, each tried on every shard, pruned by the best so far.
fn optimal_makespan(weights: &[f64], shards: usize) -> f64 {
    fn place(weights: &[f64], next: usize, loads: &mut [f64], best: &mut f64) {
        let current = loads.iter().copied().fold(0.0, f64::max);
        if current >= *best {
            return;
        }
        let Some(&weight) = weights.get(next) else {
            *best = current;
            return;
        };
        for shard in 0..loads.len() {
            // Empty shards are interchangeable: trying one is enough.
            if loads[shard] == 0.0 && loads[..shard].contains(&0.0) {
                continue;
            }
            loads[shard] += weight;
            place(weights, next + 1, loads, best);
            loads[shard] -= weight;
        }
    }
    let mut sorted = weights.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut best = f64::INFINITY;
    place(&sorted, 0, &mut vec![0.0; shards], &mut best);
    if best.is_finite() { best } else { 0.0 }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_item_is_assigned_exactly_once(durations in durations(), shards in 1usize..12) {
        let items = items_from(&durations);
        let plan = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        prop_assert_eq!(plan.shards().len(), shards);
        let mut seen: Vec<usize> = plan.shards().iter().flat_map(|s| s.items().to_vec()).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..items.len()).collect::<Vec<_>>());
    }

    #[test]
    fn shard_times_add_up_and_the_makespan_is_the_slowest(
        durations in durations(),
        shards in 1usize..12,
    ) {
        let items = items_from(&durations);
        let plan = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        let weights = planned_weights(&items, &plan);
        for shard in plan.shards() {
            let sum: f64 = shard.items().iter().map(|&i| weights[i]).sum();
            prop_assert!((sum - shard.seconds()).abs() <= ROUNDING * sum.max(1.0));
        }
        let slowest = plan.shards().iter().map(|s| s.seconds()).fold(0.0, f64::max);
        prop_assert_eq!(slowest, plan.makespan_seconds());
        prop_assert!(plan.makespan_seconds() >= plan.lower_bound_seconds() * (1.0 - ROUNDING));
    }

    #[test]
    fn never_worse_than_the_contiguous_split(durations in durations(), shards in 1usize..12) {
        let items = items_from(&durations);
        let plan = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        let contiguous = contiguous_makespan(&planned_weights(&items, &plan), shards);
        prop_assert!(plan.makespan_seconds() <= contiguous * (1.0 + ROUNDING));
    }

    /// The guarantee users read as "within 4/3": LPT is within
    /// `4/3 − 1/(3N)` of the *optimum* (Graham 1969), and every later step
    /// only lowers the makespan. Against the lower bound max(longest,
    /// total/N) no such factor exists for few items per shard (see
    /// `the_four_thirds_bound_holds_against_the_optimum_not_the_lower_bound`),
    /// so the optimum is computed exhaustively here, on small inputs.
    #[test]
    fn within_four_thirds_of_the_optimum(
        durations in prop::collection::vec(prop_oneof![
            4 => 0.0f64..100.0,
            1 => (1u32..10).prop_map(f64::from),
        ], 0..11),
        shards in 1usize..5,
    ) {
        let items: Vec<Item> = durations.iter().enumerate()
            .map(|(i, &s)| Item::new(format!("t{i:02}"), Some(s)))
            .collect();
        let plan = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        let optimum = optimal_makespan(&durations, shards);
        let factor = 4.0 / 3.0 - 1.0 / (3.0 * shards as f64);
        prop_assert!(
            plan.makespan_seconds() <= optimum * factor * (1.0 + ROUNDING),
            "makespan {} optimum {}", plan.makespan_seconds(), optimum
        );
    }

    /// What does hold against the lower bound for any input: the greedy's
    /// critical item is at most total/(N+1) when shards hold several items,
    /// which gives makespan ≤ 2N/(N+1) × max(longest, total/N).
    #[test]
    fn within_two_n_over_n_plus_one_of_the_lower_bound(
        durations in durations(),
        shards in 1usize..12,
    ) {
        let items = items_from(&durations);
        let plan = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        let n = shards as f64;
        let bound = plan.lower_bound_seconds() * 2.0 * n / (n + 1.0);
        prop_assert!(plan.makespan_seconds() <= bound * (1.0 + ROUNDING) + 1e-12);
    }

    #[test]
    fn the_same_input_gives_the_same_plan(durations in durations(), shards in 1usize..12) {
        let items = items_from(&durations);
        let first = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        let second = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        prop_assert_eq!(first, second);
    }

    /// Plans work on items sorted by duration then name, so shuffling the
    /// input moves no named item to another shard. The exception is the
    /// rare plan where the contiguous split of the input order wins; it is
    /// input-order dependent by definition and reported as such.
    #[test]
    fn input_order_does_not_change_who_goes_where(
        (durations, permutation) in durations().prop_flat_map(|d| {
            let len = d.len();
            (Just(d), Just((0..len).collect::<Vec<usize>>()).prop_shuffle())
        }),
        shards in 1usize..12,
    ) {
        let items = items_from(&durations);
        let shuffled: Vec<Item> = permutation.iter().map(|&i| items[i].clone()).collect();
        let plan = balance(&items, nz(shards), &DefaultDuration::MeanOfKnown);
        let shuffled_plan = balance(&shuffled, nz(shards), &DefaultDuration::MeanOfKnown);
        let order_dependent = [PlanMethod::Contiguous, PlanMethod::ContiguousNoDurations];
        prop_assume!(!order_dependent.contains(&plan.method()));
        prop_assume!(!order_dependent.contains(&shuffled_plan.method()));
        let shard_by_name = |items: &[Item], plan: &ShardPlan| {
            let mut map = BTreeMap::new();
            for (shard, planned) in plan.shards().iter().enumerate() {
                for &i in planned.items() {
                    map.insert(items[i].name.clone(), shard);
                }
            }
            map
        };
        prop_assert_eq!(shard_by_name(&items, &plan), shard_by_name(&shuffled, &shuffled_plan));
        prop_assert_eq!(plan.makespan_seconds(), shuffled_plan.makespan_seconds());
    }

    #[test]
    fn worker_shares_cover_each_shard_list_in_order(
        len in 0usize..40,
        count in 0u64..12,
        matrix_len in 0usize..4,
    ) {
        let values: Vec<Value> = (0..len).map(|i| json!(i)).collect();
        let shards: ValueLists = [("files".to_owned(), values.clone())].into_iter().collect();
        let matrix: ValueLists =
            [("m".to_owned(), (0..matrix_len).map(|i| json!(i)).collect())].into_iter().collect();
        let set = WorkerSet::plan(counts(Some(count), None), matrix, shards);
        let set = set.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(set.len() as u64, count * matrix_len.max(1) as u64);
        for combination in 0..set.matrix_count() {
            let shares: Vec<Value> = set
                .workers()
                .filter(|w| w.matrix_index() == combination)
                .flat_map(|w| w.shard("files").unwrap_or_default().to_vec())
                .collect();
            let expected = if len == 0 || count == 0 { Vec::new() } else { values.clone() };
            prop_assert_eq!(shares, expected);
        }
    }
}
