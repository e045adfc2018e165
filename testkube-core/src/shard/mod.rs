//! The shard planner: who runs what when a `parallel` or `services` block fans
//! out into workers.
//!
//! Two jobs live here, both pure data in, data out:
//!
//! 1. **The format's own worker semantics** ([`WorkerSet`]): `count`,
//!    `maxCount`, `matrix` and `shards` become a numbered list of workers,
//!    each seeing `index`, `count`, `matrixIndex`, `matrixCount`, `matrix.<key>`,
//!    `shardIndex`, `shardCount` and `shard.<key>` exactly as a TestWorkflow
//!    user expects (matrix key order as written, last key fastest; shard lists
//!    split contiguously with the first `len % shardCount` shards one longer).
//! 2. **Duration-balanced splitting** ([`balance`], our extension): given test
//!    items with measured durations, split them into `N` shards minimizing the
//!    slowest shard (the makespan). It powers `testkube split`, the
//!    `parallel.balance` workflow extension ([`WorkerSet::balance_shard_key`])
//!    and [`suggest_shard_count`].
//!
//! Expressions are resolved by the caller: every list handed in here is
//! already a list of JSON values. Every function is deterministic: the same
//! input gives the same workers and the same split.

mod balance;
mod heuristics;
mod suggest;
mod workers;

use std::ops::Range;

use thiserror::Error;

pub use balance::{
    BalancedValues, DefaultDuration, Item, PlanMethod, PlannedShard, ShardPlan, balance,
    balance_values, value_key,
};
pub use suggest::{ShardCountSuggestion, suggest_shard_count};
pub use workers::{ParallelCounts, ValueLists, Worker, WorkerAssignment, WorkerSet};

/// The most workers one `parallel` or `services` block may fan out into.
///
/// Testkube's own default `parallelism` is 1,000; ten times that leaves room
/// for wide matrices while refusing a typo such as `count: 1000000` (or a
/// matrix whose product explodes) with an error instead of allocating until
/// the machine gives up.
pub const MAX_WORKERS: u64 = 10_000;

/// Why a shard plan could not be made.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ShardError {
    /// `shardCount × matrixCount` is above [`MAX_WORKERS`].
    #[error(
        "this block asks for {requested} workers ({shard_count} shards × {matrix_count} matrix \
         combinations), more than the limit of {limit}; lower `count`/`maxCount` or shrink the matrix"
    )]
    TooManyWorkers {
        /// The requested total (saturated at `u64::MAX` when the product overflows).
        requested: u64,
        /// The shard count derived from `count`, `maxCount` and `shards`.
        shard_count: u64,
        /// The number of matrix combinations (saturated at `u64::MAX`).
        matrix_count: u64,
        /// The limit, [`MAX_WORKERS`].
        limit: u64,
    },
    /// Duration balancing names a key that is not in the `shards` map.
    #[error("cannot balance shard key `{key}`: `shards` has {}", known_keys(.known))]
    UnknownShardKey {
        /// The key that was asked for.
        key: String,
        /// The keys `shards` does have, in their given order.
        known: Vec<String>,
    },
    /// A target wall time that is negative, zero, NaN or infinite.
    #[error("the target wall time must be a positive number of seconds, got {0}")]
    InvalidTarget(f64),
}

fn known_keys(known: &[String]) -> String {
    if known.is_empty() {
        "no keys".to_owned()
    } else {
        let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        format!("only {}", quoted.join(", "))
    }
}

/// Splits `len` items into `shards` contiguous ranges, the format's own rule.
///
/// The first `len % shards` ranges get one item more than the others, so
/// `[5,10,15,20,25]` over 3 is `[5,10] [15,20] [25]` and `[5,10,15]` over 5 is
/// `[5] [10] [15] [] []`. The ranges cover `0..len` in order without overlap.
/// Zero shards give no ranges.
///
/// ```
/// use testkube_core::shard::contiguous_split;
/// assert_eq!(contiguous_split(5, 3), vec![0..2, 2..4, 4..5]);
/// assert_eq!(contiguous_split(3, 5), vec![0..1, 1..2, 2..3, 3..3, 3..3]);
/// ```
pub fn contiguous_split(len: usize, shards: usize) -> Vec<Range<usize>> {
    if shards == 0 {
        return Vec::new();
    }
    let size = len / shards;
    let longer = len % shards;
    let mut start = 0;
    (0..shards)
        .map(|shard| {
            let end = start + size + usize::from(shard < longer);
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_split_gives_the_first_shards_the_extra_items() {
        assert_eq!(contiguous_split(5, 3), vec![0..2, 2..4, 4..5]);
        assert_eq!(contiguous_split(3, 5), vec![0..1, 1..2, 2..3, 3..3, 3..3]);
        assert_eq!(contiguous_split(6, 3), vec![0..2, 2..4, 4..6]);
        assert_eq!(contiguous_split(0, 2), vec![0..0, 0..0]);
        assert!(contiguous_split(4, 0).is_empty());
    }

    #[test]
    fn unknown_key_error_lists_the_keys_that_exist() {
        let err = ShardError::UnknownShardKey {
            key: "file".into(),
            known: vec!["files".into(), "suites".into()],
        };
        assert_eq!(
            err.to_string(),
            "cannot balance shard key `file`: `shards` has only `files`, `suites`"
        );
    }
}
