//! The format's own fan-out: `count`, `maxCount`, `matrix` and `shards` into
//! numbered workers, with the exact semantics TestWorkflow users rely on.

use std::num::NonZeroUsize;
use std::ops::Range;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::balance::{DefaultDuration, ShardPlan, balance_values};
use super::{MAX_WORKERS, ShardError, contiguous_split};

/// Evaluated `matrix` or `shards` lists, keyed in the order the YAML wrote them.
pub type ValueLists = IndexMap<String, Vec<Value>>;

/// The evaluated `count` and `maxCount` of a `parallel` or `services` block.
///
/// `None` means the field was not written. Expressions must already be
/// resolved to non-negative integers (a negative count is an error the
/// caller reports while evaluating).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParallelCounts {
    /// `count`: the number of shards asked for.
    pub count: Option<u64>,
    /// `maxCount`: the most shards wanted, capped by the shortest shard list.
    pub max_count: Option<u64>,
}

impl ParallelCounts {
    /// The shard count these fields give, given the length of the shortest
    /// non-empty `shards` list (`None` when `shards` has no non-empty list).
    ///
    /// - neither field → 1;
    /// - `count` only → `count`;
    /// - `maxCount` only → `min(maxCount, minShards)`;
    /// - both and `maxCount < count` → `maxCount`;
    /// - both and `maxCount ≥ count` → `min(maxCount, minShards)` (`count` is ignored).
    pub fn shard_count(&self, min_shards: Option<u64>) -> u64 {
        let capped = |max: u64| min_shards.map_or(max, |min| max.min(min));
        match (self.count, self.max_count) {
            (None, None) => 1,
            (Some(count), None) => count,
            (Some(count), Some(max)) if max < count => max,
            (_, Some(max)) => capped(max),
        }
    }
}

/// The workers one `parallel` or `services` block fans out into.
///
/// Worker `index` runs shard `index % shardCount` of matrix combination
/// `index / shardCount`. Build it with [`WorkerSet::plan`]; read it through
/// [`WorkerSet::workers`] (borrowed views, no copying) or
/// [`WorkerSet::assignments`] (owned, serializable records).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSet {
    shard_count: usize,
    matrix_count: usize,
    matrix: ValueLists,
    /// For each matrix key, how many combinations pass before its value
    /// changes: the product of the lengths of the keys after it.
    strides: Vec<usize>,
    shards: IndexMap<String, ShardedList>,
}

/// One `shards` list arranged so that each shard's values are contiguous.
#[derive(Debug, Clone, PartialEq)]
struct ShardedList {
    /// The values, shard by shard. For the format's own split this is the
    /// list as written; a balanced key is rearranged.
    values: Vec<Value>,
    /// `original_index[i]` is where `values[i]` stood in the list as written.
    original_index: Vec<usize>,
    /// One range of `values` per shard.
    bounds: Vec<Range<usize>>,
}

impl WorkerSet {
    /// Plans the workers for evaluated `count`/`maxCount`, `matrix` and `shards`.
    ///
    /// Empty lists are dropped from both maps, as Testkube does: they add no
    /// matrix combination, do not limit `maxCount`, and workers see no
    /// `shard.<key>` for them. Zero shards (`count: 0`, `maxCount: 0`) give an
    /// empty set, which the caller reports as a passed step with a note.
    ///
    /// # Errors
    /// [`ShardError::TooManyWorkers`] when the total is above [`MAX_WORKERS`].
    pub fn plan(
        counts: ParallelCounts,
        matrix: ValueLists,
        shards: ValueLists,
    ) -> Result<WorkerSet, ShardError> {
        let matrix: ValueLists = matrix
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .collect();
        let min_shards = shards
            .values()
            .filter(|values| !values.is_empty())
            .map(|values| u64::try_from(values.len()).unwrap_or(u64::MAX))
            .min();
        let shard_count = counts.shard_count(min_shards);
        let matrix_count = matrix.values().fold(1u64, |product, values| {
            product.saturating_mul(u64::try_from(values.len()).unwrap_or(u64::MAX))
        });
        let total = shard_count.saturating_mul(matrix_count);
        if total > MAX_WORKERS {
            return Err(ShardError::TooManyWorkers {
                requested: total,
                shard_count,
                matrix_count,
                limit: MAX_WORKERS,
            });
        }
        // Both fit in usize now unless the set is empty; an empty set never
        // reads them as indices, so saturating is harmless.
        let shard_count = usize::try_from(shard_count).unwrap_or(usize::MAX);
        let matrix_count = usize::try_from(matrix_count).unwrap_or(usize::MAX);

        let mut strides = vec![1usize; matrix.len()];
        let lengths: Vec<usize> = matrix.values().map(Vec::len).collect();
        for key in (0..lengths.len().saturating_sub(1)).rev() {
            strides[key] = strides[key + 1].saturating_mul(lengths[key + 1]);
        }

        let shards = shards
            .into_iter()
            .map(|(key, values)| {
                let bounds = if total == 0 {
                    Vec::new()
                } else {
                    contiguous_split(values.len(), shard_count)
                };
                let original_index = (0..values.len()).collect();
                let list = ShardedList {
                    values,
                    original_index,
                    bounds,
                };
                (key, list)
            })
            .collect();
        Ok(WorkerSet {
            shard_count,
            matrix_count,
            matrix,
            strides,
            shards,
        })
    }

    /// Replaces the contiguous split of one `shards` key by a split balanced
    /// on measured durations (the `parallel.balance` extension).
    ///
    /// Each value is looked up in `durations` by its [`value_key`](super::value_key)
    /// (a string value as is, anything else as JSON). Other keys keep the
    /// format's contiguous split. Returns the balanced plan, whose item
    /// indices are positions in the key's list as written, or `None` when
    /// there are no workers or the key's list is empty (nothing to balance).
    ///
    /// # Errors
    /// [`ShardError::UnknownShardKey`] when `key` is not in `shards`.
    pub fn balance_shard_key(
        &mut self,
        key: &str,
        durations: impl FnMut(&str) -> Option<f64>,
        default: &DefaultDuration,
    ) -> Result<Option<ShardPlan>, ShardError> {
        let Some(list) = self.shards.get_mut(key) else {
            return Err(ShardError::UnknownShardKey {
                key: key.to_owned(),
                known: self.shards.keys().cloned().collect(),
            });
        };
        let Some(shard_count) = NonZeroUsize::new(self.shard_count) else {
            return Ok(None);
        };
        if list.values.is_empty() {
            return Ok(None);
        }
        // Balance the list as written, even if an earlier call rearranged it.
        let mut written: Vec<(usize, Value)> = std::mem::take(&mut list.original_index)
            .into_iter()
            .zip(std::mem::take(&mut list.values))
            .collect();
        written.sort_by_key(|(index, _)| *index);
        let written: Vec<Value> = written.into_iter().map(|(_, value)| value).collect();

        let balanced = balance_values(&written, durations, shard_count, default);
        // Lay the values out shard after shard so each share stays a slice.
        list.bounds.clear();
        for share in balanced.values {
            let start = list.values.len();
            list.values.extend(share);
            list.bounds.push(start..list.values.len());
        }
        for shard in balanced.plan.shards() {
            list.original_index.extend_from_slice(shard.items());
        }
        Ok(Some(balanced.plan))
    }

    /// The number of shards (`shardCount`).
    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// The number of matrix combinations (`matrixCount`; 1 with no matrix).
    pub fn matrix_count(&self) -> usize {
        self.matrix_count
    }

    /// The total number of workers (`count` as workers see it).
    pub fn len(&self) -> usize {
        self.shard_count.saturating_mul(self.matrix_count)
    }

    /// `true` when the block runs no worker at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The worker at `index`, if there is one.
    pub fn worker(&self, index: usize) -> Option<Worker<'_>> {
        (index < self.len()).then_some(Worker { set: self, index })
    }

    /// Every worker, in index order.
    pub fn workers(&self) -> impl ExactSizeIterator<Item = Worker<'_>> + '_ {
        (0..self.len()).map(move |index| Worker { set: self, index })
    }

    /// Every worker as an owned, serializable record, in index order.
    pub fn assignments(&self) -> Vec<WorkerAssignment> {
        self.workers()
            .map(|worker| worker.to_assignment())
            .collect()
    }
}

/// A borrowed view of one worker of a [`WorkerSet`].
#[derive(Debug, Clone, Copy)]
pub struct Worker<'a> {
    set: &'a WorkerSet,
    index: usize,
}

impl<'a> Worker<'a> {
    /// `index`: this worker's position, `0..count`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `count`: the total number of workers in the block.
    pub fn count(&self) -> usize {
        self.set.len()
    }

    /// `shardIndex`: `index % shardCount`.
    pub fn shard_index(&self) -> usize {
        self.index % self.set.shard_count
    }

    /// `shardCount`.
    pub fn shard_count(&self) -> usize {
        self.set.shard_count
    }

    /// `matrixIndex`: `index / shardCount`.
    pub fn matrix_index(&self) -> usize {
        self.index / self.set.shard_count
    }

    /// `matrixCount`.
    pub fn matrix_count(&self) -> usize {
        self.set.matrix_count
    }

    /// `matrix.<key>`: this worker's value for each matrix key, in key order.
    pub fn matrix(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let combination = self.matrix_index();
        let set = self.set;
        set.matrix
            .iter()
            .zip(&set.strides)
            .filter_map(move |((key, values), stride)| {
                let position = (combination / stride) % values.len();
                values.get(position).map(|value| (key.as_str(), value))
            })
    }

    /// `shard.<key>`: this worker's share of each non-empty `shards` list.
    pub fn shards(&self) -> impl Iterator<Item = (&'a str, &'a [Value])> + 'a {
        let shard = self.shard_index();
        self.set
            .shards
            .iter()
            .filter(|(_, list)| !list.values.is_empty())
            .map(move |(key, list)| (key.as_str(), list.share(shard)))
    }

    /// `shard.<key>` for one key; `None` for a key absent or dropped as empty.
    pub fn shard(&self, key: &str) -> Option<&'a [Value]> {
        let list = self.set.shards.get(key)?;
        (!list.values.is_empty()).then(|| list.share(self.shard_index()))
    }

    /// An owned copy of everything this worker sees.
    pub fn to_assignment(&self) -> WorkerAssignment {
        WorkerAssignment {
            index: self.index(),
            count: self.count(),
            shard_index: self.shard_index(),
            shard_count: self.shard_count(),
            matrix_index: self.matrix_index(),
            matrix_count: self.matrix_count(),
            matrix: self
                .matrix()
                .map(|(key, value)| (key.to_owned(), value.clone()))
                .collect(),
            shard: self
                .shards()
                .map(|(key, values)| (key.to_owned(), values.to_vec()))
                .collect(),
        }
    }
}

impl ShardedList {
    fn share(&self, shard: usize) -> &[Value] {
        self.bounds
            .get(shard)
            .and_then(|range| self.values.get(range.clone()))
            .unwrap_or_default()
    }
}

/// Everything one worker sees, as an owned record (the `workers` entries of
/// `testkube plan -o json`). Field names are the worker variables of the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerAssignment {
    /// `index`: position of this worker, `0..count`.
    pub index: usize,
    /// `count`: total workers in the block (`shardCount × matrixCount`).
    pub count: usize,
    /// `shardIndex`: `index % shardCount`.
    pub shard_index: usize,
    /// `shardCount`.
    pub shard_count: usize,
    /// `matrixIndex`: `index / shardCount`.
    pub matrix_index: usize,
    /// `matrixCount`.
    pub matrix_count: usize,
    /// `matrix.<key>`: one value per matrix key.
    pub matrix: IndexMap<String, Value>,
    /// `shard.<key>`: this worker's list of values per shard key.
    pub shard: IndexMap<String, Vec<Value>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lists(pairs: &[(&str, Value)]) -> ValueLists {
        pairs
            .iter()
            .map(|(key, value)| {
                let values = value.as_array().cloned().unwrap_or_default();
                ((*key).to_owned(), values)
            })
            .collect()
    }

    #[test]
    fn shard_count_follows_each_count_rule() {
        let counts = |count, max_count| ParallelCounts { count, max_count };
        assert_eq!(counts(None, None).shard_count(Some(4)), 1);
        assert_eq!(counts(Some(7), None).shard_count(Some(4)), 7);
        assert_eq!(counts(None, Some(7)).shard_count(Some(4)), 4);
        assert_eq!(counts(None, Some(3)).shard_count(Some(4)), 3);
        assert_eq!(counts(None, Some(3)).shard_count(None), 3);
        assert_eq!(counts(Some(5), Some(2)).shard_count(Some(4)), 2);
        assert_eq!(counts(Some(2), Some(9)).shard_count(Some(4)), 4);
        assert_eq!(counts(Some(2), Some(3)).shard_count(None), 3);
    }

    #[test]
    fn matrix_strides_make_the_last_key_vary_fastest() {
        let matrix = lists(&[("a", json!([1, 2])), ("b", json!(["x", "y", "z"]))]);
        let set = WorkerSet::plan(ParallelCounts::default(), matrix, ValueLists::new());
        let set = set.expect("six workers is within the limit");
        assert_eq!(set.strides, vec![3, 1]);
        let seen: Vec<(Value, Value)> = set
            .workers()
            .map(|worker| {
                let values: Vec<&Value> = worker.matrix().map(|(_, value)| value).collect();
                (values[0].clone(), values[1].clone())
            })
            .collect();
        assert_eq!(seen[1], (json!(1), json!("y")));
        assert_eq!(seen[3], (json!(2), json!("x")));
    }

    #[test]
    fn rebalancing_twice_starts_from_the_list_as_written() {
        let shards = lists(&[("files", json!(["a", "b", "c", "d"]))]);
        let counts = ParallelCounts {
            count: Some(2),
            max_count: None,
        };
        let mut set = WorkerSet::plan(counts, ValueLists::new(), shards).expect("two workers");
        let durations = |name: &str| match name {
            "a" => Some(10.0),
            _ => Some(1.0),
        };
        let first = set.balance_shard_key("files", durations, &DefaultDuration::MeanOfKnown);
        let second = set.balance_shard_key("files", durations, &DefaultDuration::MeanOfKnown);
        assert_eq!(first, second);
        let worker = set.worker(1).expect("worker 1");
        assert_eq!(
            worker.shard("files"),
            Some(&[json!("b"), json!("c"), json!("d")][..])
        );
    }
}
