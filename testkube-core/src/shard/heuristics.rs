//! The makespan heuristics behind [`super::balance`].
//!
//! Everything here works on ranks: `weights` is sorted longest first and an
//! item is its position in that list. A shard is a list of ranks kept in
//! ascending order, which is also its items' weights in descending order;
//! the improvement phase relies on that to search with binary search and two
//! pointers instead of trying every pair.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Longest processing time first: each item, longest first, goes to the
/// least loaded shard (the lowest-numbered one on ties). Within
/// `4/3 − 1/(3N)` of the optimum (Graham, 1969).
pub(crate) fn longest_first(weights: &[f64], shards: usize) -> Vec<Vec<usize>> {
    let mut assignment = vec![Vec::new(); shards];
    let mut least_loaded: BinaryHeap<Reverse<Load>> = (0..shards)
        .map(|shard| {
            Reverse(Load {
                seconds: 0.0,
                shard,
            })
        })
        .collect();
    for (rank, &weight) in weights.iter().enumerate() {
        // Growing the top in place sifts it down once, instead of a pop and a push.
        let Some(mut least) = least_loaded.peek_mut() else {
            break;
        };
        assignment[least.0.shard].push(rank);
        least.0.seconds += weight;
    }
    assignment
}

/// A shard's load, ordered by seconds then shard number so heaps are
/// deterministic.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Load {
    seconds: f64,
    shard: usize,
}

impl Eq for Load {}

impl Ord for Load {
    fn cmp(&self, other: &Self) -> Ordering {
        self.seconds
            .total_cmp(&other.seconds)
            .then(self.shard.cmp(&other.shard))
    }
}

impl PartialOrd for Load {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Karmarkar–Karp differencing for `shards` ways: every item starts as a
/// partial split (itself in one shard, the others empty); the two partials
/// with the largest spread are merged, the heaviest shard of one with the
/// lightest of the other, until one split remains. Often beats the greedy
/// split when there are few items per shard. Costs `O(n · shards · log shards)`.
pub(crate) fn differencing(weights: &[f64], shards: usize) -> Vec<Vec<usize>> {
    if shards == 0 {
        return Vec::new();
    }
    let mut partials: BinaryHeap<Partial> = weights
        .iter()
        .enumerate()
        .map(|(rank, &weight)| {
            let mut subsets = vec![(0.0, Vec::new()); shards];
            subsets[0] = (weight, vec![rank]);
            Partial {
                spread: weight,
                created: rank,
                subsets,
            }
        })
        .collect();
    let mut created = weights.len();
    while partials.len() > 1 {
        let (Some(wide), Some(narrow)) = (partials.pop(), partials.pop()) else {
            break;
        };
        let mut subsets: Vec<(f64, Vec<usize>)> = wide
            .subsets
            .into_iter()
            .zip(narrow.subsets.into_iter().rev())
            .map(|((heavy, mut heavy_ranks), (light, mut light_ranks))| {
                if heavy_ranks.len() < light_ranks.len() {
                    std::mem::swap(&mut heavy_ranks, &mut light_ranks);
                }
                heavy_ranks.append(&mut light_ranks);
                (heavy + light, heavy_ranks)
            })
            .collect();
        // Stable sort: equal sums keep their order, so the result is deterministic.
        subsets.sort_by(|a, b| b.0.total_cmp(&a.0));
        let spread = subsets[0].0 - subsets[shards - 1].0;
        partials.push(Partial {
            spread,
            created,
            subsets,
        });
        created += 1;
    }
    let Some(last) = partials.pop() else {
        return vec![Vec::new(); shards];
    };
    last.subsets
        .into_iter()
        .map(|(_, mut ranks)| {
            ranks.sort_unstable();
            ranks
        })
        .collect()
}

/// A partial split of some items, its shards sorted heaviest first.
struct Partial {
    spread: f64,
    /// Creation order: on equal spreads, the older partial is merged first.
    created: usize,
    subsets: Vec<(f64, Vec<usize>)>,
}

impl PartialEq for Partial {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Partial {}

impl Ord for Partial {
    fn cmp(&self, other: &Self) -> Ordering {
        self.spread
            .total_cmp(&other.spread)
            .then(other.created.cmp(&self.created))
    }
}

impl PartialOrd for Partial {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Work allowed to [`improve`], in item visits, per item and as a floor.
/// Counting work instead of time keeps the result deterministic.
const IMPROVE_VISITS_PER_ITEM: usize = 16;
const IMPROVE_VISITS_FLOOR: usize = 200_000;

/// A gain smaller than this fraction of the makespan is rounding noise.
const NOISE: f64 = 1e-12;

/// Lowers the makespan by moving one item, or swapping two, between the
/// slowest shard and another, the lightest shards tried first; repeats until
/// the slowest shard cannot be helped this way or the work budget is spent.
/// Never raises the makespan: every step lowers the larger of the two loads
/// it touches.
pub(crate) fn improve(shards: &mut [Vec<usize>], weights: &[f64]) {
    let mut loads: Vec<f64> = shards
        .iter()
        .map(|ranks| ranks.iter().map(|&rank| weights[rank]).sum())
        .collect();
    let mut budget = weights
        .len()
        .saturating_mul(IMPROVE_VISITS_PER_ITEM)
        .saturating_add(IMPROVE_VISITS_FLOOR);
    // No split beats max(longest, total / shards): stop once there.
    let total: f64 = loads.iter().sum();
    let bound = weights
        .first()
        .copied()
        .unwrap_or(0.0)
        .max(total / shards.len().max(1) as f64);
    let mut others: Vec<usize> = Vec::with_capacity(shards.len());
    loop {
        let Some(slowest) = (0..loads.len()).max_by(|&a, &b| {
            // Ties go to the lowest shard number.
            loads[a].total_cmp(&loads[b]).then(b.cmp(&a))
        }) else {
            return;
        };
        if loads[slowest] <= bound * (1.0 + NOISE) {
            return;
        }
        others.clear();
        others.extend((0..loads.len()).filter(|&shard| shard != slowest));
        others.sort_by(|&a, &b| loads[a].total_cmp(&loads[b]).then(a.cmp(&b)));
        budget = budget.saturating_sub(others.len());
        let mut improved = false;
        for &other in &others {
            let gap = loads[slowest] - loads[other];
            if gap <= loads[slowest] * NOISE {
                break;
            }
            let cost = shards[slowest].len() + shards[other].len();
            if budget < cost {
                return;
            }
            budget -= cost;
            let Some(exchange) = best_exchange(&shards[slowest], &shards[other], weights, gap)
            else {
                continue;
            };
            if exchange.gain <= loads[slowest] * NOISE {
                continue;
            }
            let delta = exchange.apply(shards, slowest, other, weights);
            loads[slowest] -= delta;
            loads[other] += delta;
            improved = true;
            break;
        }
        if !improved {
            return;
        }
    }
}

/// Moving `give` (and taking back `take`, for a swap) from the slowest shard.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    give: usize,
    take: Option<usize>,
    gain: f64,
}

impl Exchange {
    /// Applies the exchange and returns the seconds moved off the slowest shard.
    fn apply(
        &self,
        shards: &mut [Vec<usize>],
        slowest: usize,
        other: usize,
        weights: &[f64],
    ) -> f64 {
        move_rank(shards, slowest, other, self.give);
        let mut delta = weights[self.give];
        if let Some(take) = self.take {
            move_rank(shards, other, slowest, take);
            delta -= weights[take];
        }
        delta
    }
}

fn move_rank(shards: &mut [Vec<usize>], from: usize, to: usize, rank: usize) {
    if let Ok(position) = shards[from].binary_search(&rank) {
        shards[from].remove(position);
    }
    if let Err(position) = shards[to].binary_search(&rank) {
        shards[to].insert(position, rank);
    }
}

/// The move or swap that lowers `max(slowest, other)` the most.
///
/// Moving `d` seconds off the slowest shard leaves the pair at
/// `max(slowest − d, other + d)`: the gain is `min(d, gap − d)`, best at
/// `d = gap / 2`, none outside `0 < d < gap`.
fn best_exchange(
    slowest: &[usize],
    other: &[usize],
    weights: &[f64],
    gap: f64,
) -> Option<Exchange> {
    let half = gap / 2.0;
    let gain_of = |moved: f64| (moved > 0.0 && moved < gap).then(|| moved.min(gap - moved));
    let mut best: Option<Exchange> = None;
    let mut consider = |give: usize, take: Option<usize>, moved: f64| {
        if let Some(gain) = gain_of(moved)
            && best.is_none_or(|current| gain > current.gain)
        {
            best = Some(Exchange { give, take, gain });
        }
    };

    // A move: the item closest to half the gap.
    let split = slowest.partition_point(|&rank| weights[rank] > half);
    for position in [split.checked_sub(1), Some(split)].into_iter().flatten() {
        if let Some(&give) = slowest.get(position) {
            consider(give, None, weights[give]);
        }
    }

    // A swap: for each item given (heaviest first), the taken item whose
    // weight is closest to `given − half`. That target only falls as the
    // given item gets lighter, so one pointer walks `other` once.
    let mut cursor = 0;
    for &give in slowest {
        let given = weights[give];
        if given <= 0.0 {
            break;
        }
        let target = given - half;
        while cursor < other.len() && weights[other[cursor]] > target {
            cursor += 1;
        }
        for position in [cursor.checked_sub(1), Some(cursor)].into_iter().flatten() {
            if let Some(&take) = other.get(position) {
                consider(give, Some(take), given - weights[take]);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(shards: &[Vec<usize>], weights: &[f64]) -> Vec<f64> {
        shards
            .iter()
            .map(|ranks| ranks.iter().map(|&rank| weights[rank]).sum())
            .collect()
    }

    #[test]
    fn longest_first_fills_the_least_loaded_shard() {
        let weights = [5.0, 4.0, 3.0, 3.0, 1.0];
        let shards = longest_first(&weights, 2);
        assert_eq!(shards, vec![vec![0, 3], vec![1, 2, 4]]);
    }

    #[test]
    fn a_swap_fixes_what_longest_first_misses() {
        // Greedy gives {3,2,2} = 7 and {3,2} = 5; swapping a 3 for a 2 gives 6 and 6.
        let weights = [3.0, 3.0, 2.0, 2.0, 2.0];
        let mut shards = longest_first(&weights, 2);
        assert_eq!(loads(&shards, &weights), vec![7.0, 5.0]);
        improve(&mut shards, &weights);
        assert_eq!(loads(&shards, &weights), vec![6.0, 6.0]);
        assert!(shards.iter().all(|ranks| ranks.is_sorted()));
    }

    #[test]
    fn differencing_places_every_item_once() {
        let weights = [8.0, 7.0, 6.0, 5.0, 4.0];
        let shards = differencing(&weights, 2);
        let mut seen: Vec<usize> = shards.concat();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        // Pairwise differencing: 8-7 → 1, 6-5 → 1, then 4 vs 1,1 → makespan 16 of 30.
        let max = loads(&shards, &weights).into_iter().fold(0.0, f64::max);
        assert_eq!(max, 16.0);
    }
}
