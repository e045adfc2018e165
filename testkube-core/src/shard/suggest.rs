//! How many shards a suite needs to finish within a target wall time.

use std::num::NonZeroUsize;

use super::ShardError;
use super::balance::{DefaultDuration, Item, ShardPlan, Weighted};

/// The answer of [`suggest_shard_count`], with the plan at the suggested count.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ShardCountSuggestion {
    /// `shards` shards meet the target, and fewer do not.
    Meets {
        /// The suggested shard count.
        shards: NonZeroUsize,
        /// The balanced plan with that many shards.
        plan: ShardPlan,
    },
    /// One item alone takes longer than the target, so no shard count can
    /// meet it. `shards` is the smallest count that gets the makespan down to
    /// that item's own duration (the best possible), or `max_shards` when even
    /// that many do not.
    ItemLongerThanTarget {
        /// The input position of the longest item.
        item: usize,
        /// The shard count that does best.
        shards: NonZeroUsize,
        /// The balanced plan with that many shards.
        plan: ShardPlan,
    },
    /// Even `max_shards` shards do not meet the target.
    ShardLimitTooLow {
        /// `max_shards`.
        shards: NonZeroUsize,
        /// The balanced plan with that many shards.
        plan: ShardPlan,
    },
}

impl ShardCountSuggestion {
    /// The suggested shard count.
    pub fn shards(&self) -> NonZeroUsize {
        match self {
            Self::Meets { shards, .. }
            | Self::ItemLongerThanTarget { shards, .. }
            | Self::ShardLimitTooLow { shards, .. } => *shards,
        }
    }

    /// The balanced plan at the suggested count.
    pub fn plan(&self) -> &ShardPlan {
        match self {
            Self::Meets { plan, .. }
            | Self::ItemLongerThanTarget { plan, .. }
            | Self::ShardLimitTooLow { plan, .. } => plan,
        }
    }

    /// `true` when the suggested count meets the target.
    pub fn meets_target(&self) -> bool {
        matches!(self, Self::Meets { .. })
    }
}

/// Suggests the smallest shard count, at most `max_shards`, whose balanced
/// makespan ([`super::balance`]) is at most `target_seconds`.
///
/// The search starts at the lower bound `⌈total / target⌉` and tries counts
/// one by one for a few steps, then bisects. Balanced makespans fall with
/// the shard count almost always but not strictly (a heuristic can do
/// slightly worse with one more shard), so after the first steps the count
/// found may in rare cases not be the very smallest; it always meets the
/// target.
///
/// # Errors
/// [`ShardError::InvalidTarget`] when `target_seconds` is not a positive,
/// finite number.
pub fn suggest_shard_count(
    items: &[Item],
    target_seconds: f64,
    max_shards: NonZeroUsize,
    default: &DefaultDuration,
) -> Result<ShardCountSuggestion, ShardError> {
    if !(target_seconds.is_finite() && target_seconds > 0.0) {
        return Err(ShardError::InvalidTarget(target_seconds));
    }
    let weighted = Weighted::new(items, default);
    if let Some((item, longest)) = weighted.longest()
        && longest > target_seconds
    {
        let (shards, plan) = smallest_meeting(&weighted, longest, max_shards)
            .unwrap_or_else(|| (max_shards, weighted.plan(max_shards)));
        return Ok(ShardCountSuggestion::ItemLongerThanTarget { item, shards, plan });
    }
    Ok(
        match smallest_meeting(&weighted, target_seconds, max_shards) {
            Some((shards, plan)) => ShardCountSuggestion::Meets { shards, plan },
            None => ShardCountSuggestion::ShardLimitTooLow {
                shards: max_shards,
                plan: weighted.plan(max_shards),
            },
        },
    )
}

/// Counts tried one by one from the lower bound before bisecting.
const LINEAR_STEPS: usize = 8;

/// The smallest count in `⌈total / target⌉..=max` found to meet `target`.
fn smallest_meeting(
    weighted: &Weighted,
    target: f64,
    max: NonZeroUsize,
) -> Option<(NonZeroUsize, ShardPlan)> {
    let meets = |plan: &ShardPlan| plan.makespan_seconds() <= target * (1.0 + 1e-12);
    let plan_with = |count: usize| {
        let shards = NonZeroUsize::new(count).unwrap_or(NonZeroUsize::MIN);
        (shards, weighted.plan(shards))
    };
    let needed = (weighted.total() / target).ceil();
    let lowest = if needed.is_finite() && needed < max.get() as f64 {
        (needed as usize).max(1)
    } else {
        max.get()
    };
    let linear_end = lowest.saturating_add(LINEAR_STEPS).min(max.get() + 1);
    for count in lowest..linear_end {
        let (shards, plan) = plan_with(count);
        if meets(&plan) {
            return Some((shards, plan));
        }
    }
    if linear_end > max.get() {
        return None;
    }
    // Bisect between a count known to miss and one known to meet.
    let mut found = plan_with(max.get());
    if !meets(&found.1) {
        return None;
    }
    let mut missing = linear_end - 1;
    while found.0.get() - missing > 1 {
        let middle = missing + (found.0.get() - missing) / 2;
        let candidate = plan_with(middle);
        if meets(&candidate.1) {
            found = candidate;
        } else {
            missing = middle;
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(seconds: &[f64]) -> Vec<Item> {
        seconds
            .iter()
            .enumerate()
            .map(|(index, &s)| Item::new(format!("t{index}"), Some(s)))
            .collect()
    }

    fn count(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
    }

    #[test]
    fn suggests_the_smallest_count_that_meets_the_target() {
        // 40 one-second tests: 10 s needs 4 shards.
        let suite = items(&[1.0; 40]);
        let suggestion =
            suggest_shard_count(&suite, 10.0, count(100), &DefaultDuration::MeanOfKnown);
        let suggestion = suggestion.expect("valid target");
        assert!(suggestion.meets_target());
        assert_eq!(suggestion.shards().get(), 4);
        assert_eq!(suggestion.plan().makespan_seconds(), 10.0);
    }

    #[test]
    fn bisects_past_the_linear_steps() {
        // 50 six-second tests in 10 s: the bound says 30 shards, but no two
        // tests fit together, so it takes 50.
        let suite = items(&[6.0; 50]);
        let suggestion =
            suggest_shard_count(&suite, 10.0, count(500), &DefaultDuration::MeanOfKnown);
        let suggestion = suggestion.expect("valid target");
        assert!(suggestion.meets_target());
        assert_eq!(suggestion.shards().get(), 50);
        assert_eq!(suggestion.plan().makespan_seconds(), 6.0);
    }

    #[test]
    fn an_item_longer_than_the_target_cannot_be_split() {
        let suite = items(&[30.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]);
        let suggestion =
            suggest_shard_count(&suite, 10.0, count(50), &DefaultDuration::MeanOfKnown);
        match suggestion.expect("valid target") {
            ShardCountSuggestion::ItemLongerThanTarget { item, shards, plan } => {
                assert_eq!(item, 0);
                assert_eq!(shards.get(), 2);
                assert_eq!(plan.makespan_seconds(), 30.0);
            }
            other => panic!("expected ItemLongerThanTarget, got {other:?}"),
        }
    }

    #[test]
    fn a_low_shard_limit_is_reported() {
        let suite = items(&[1.0; 40]);
        let suggestion = suggest_shard_count(&suite, 10.0, count(3), &DefaultDuration::MeanOfKnown);
        match suggestion.expect("valid target") {
            ShardCountSuggestion::ShardLimitTooLow { shards, plan } => {
                assert_eq!(shards.get(), 3);
                assert_eq!(plan.makespan_seconds(), 14.0);
            }
            other => panic!("expected ShardLimitTooLow, got {other:?}"),
        }
    }

    #[test]
    fn rejects_targets_that_are_not_positive_seconds() {
        let suite = items(&[1.0]);
        for target in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let result =
                suggest_shard_count(&suite, target, count(3), &DefaultDuration::MeanOfKnown);
            assert!(matches!(result, Err(ShardError::InvalidTarget(_))));
        }
    }
}
