//! `retry {count, until}`: whether a step runs again after an attempt.
//!
//! As in Testkube's runner: `count` is the number of retries (so at most
//! `count + 1` attempts); after each attempt `until` (default `passed`) is
//! evaluated with `passed`, `failed`, `status` and `self.*` describing that
//! attempt, and the step runs again while it is false and retries are left.
//! An attempt stopped from outside (abort, cancel) or by the timeout of an
//! enclosing group is never retried; one stopped by the step's own
//! `timeout` is (it ended `timeout`, which is not `passed`).

use serde_json::Value;

use crate::expr::{Context, Expr};
use crate::plan::PlanRetry;

use super::context::{ConditionError, StatusContext};
use super::statuses::StepStatus;

/// The `until` of a `retry` that does not write one.
pub const DEFAULT_RETRY_UNTIL: &str = "passed";

/// A step's `retry`, with `count` known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most retries after the first attempt.
    pub count: u32,
    /// Stop once this holds (an expression; default `passed`).
    pub until: String,
}

impl RetryPolicy {
    /// A policy of `count` retries until `until`.
    #[must_use]
    pub fn new(count: u32, until: impl Into<String>) -> Self {
        RetryPolicy {
            count,
            until: until.into(),
        }
    }

    /// The policy of a planned step; a `count` left as an expression is
    /// evaluated in `ctx` now (a [`StatusContext`], or a context over one).
    ///
    /// # Errors
    /// [`ConditionError`] when the count expression fails or is not a whole
    /// number ≥ 0.
    pub fn from_plan(retry: &PlanRetry, ctx: &dyn Context) -> Result<Self, ConditionError> {
        let count = match &retry.count {
            Value::String(text) => {
                let expr = Expr::parse(text).map_err(|source| ConditionError::Syntax {
                    condition: text.clone(),
                    source,
                })?;
                expr.resolve(ctx)
                    .map_err(|source| ConditionError::Evaluation {
                        condition: text.clone(),
                        source,
                    })?
            }
            value => value.clone(),
        };
        let retries = whole_count(&count).ok_or_else(|| ConditionError::RetryCount {
            value: count.to_string(),
        })?;
        Ok(RetryPolicy::new(retries, retry.until.clone()))
    }
}

/// A count as a whole number ≥ 0, from a number or numeric text.
fn whole_count(value: &Value) -> Option<u32> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if number.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&number) {
        return None;
    }
    format!("{number:.0}").parse().ok()
}

/// How one attempt of a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Which attempt this was: 1 for the first run.
    pub number: u32,
    /// The status the attempt ended with (after `negative`).
    pub status: StepStatus,
    /// The timeout of an enclosing group stopped it (not the step's own).
    pub stopped_by_parent: bool,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Run the step again.
    Retry {
        /// The number of the next attempt (2 for the first retry).
        next_attempt: u32,
    },
    /// Keep this attempt's status as the step's final status.
    Stop(StopReason),
}

/// Why a step is not run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `until` holds.
    UntilMet,
    /// No retries are left.
    Exhausted,
    /// Stopped from outside or by an enclosing group's timeout.
    Interrupted,
}

impl StatusContext {
    /// Decides whether step `step_id` runs again after `attempt`. Record
    /// the attempt's outputs first ([`StatusContext::record_attempt`]) so
    /// that `until` can read them.
    ///
    /// # Errors
    /// [`ConditionError`] when `until` does not parse or cannot be decided;
    /// Testkube stops retrying then, so a runner may treat an error as
    /// [`StopReason::UntilMet`] after reporting it.
    pub fn retry_decision(
        &self,
        step_id: &str,
        policy: &RetryPolicy,
        attempt: &Attempt,
    ) -> Result<RetryDecision, ConditionError> {
        self.decide_retry(step_id, policy, attempt, None)
    }

    /// [`StatusContext::retry_decision`] where `scope` answers what the
    /// status does not (see [`StatusContext::should_run_in`]).
    ///
    /// # Errors
    /// As [`StatusContext::retry_decision`].
    pub fn retry_decision_in(
        &self,
        step_id: &str,
        policy: &RetryPolicy,
        attempt: &Attempt,
        scope: &dyn Context,
    ) -> Result<RetryDecision, ConditionError> {
        self.decide_retry(step_id, policy, attempt, Some(scope))
    }

    fn decide_retry(
        &self,
        step_id: &str,
        policy: &RetryPolicy,
        attempt: &Attempt,
        scope: Option<&dyn Context>,
    ) -> Result<RetryDecision, ConditionError> {
        let interrupted = attempt.stopped_by_parent
            || matches!(attempt.status, StepStatus::Aborted | StepStatus::Canceled);
        if interrupted {
            return Ok(RetryDecision::Stop(StopReason::Interrupted));
        }
        if attempt.number > policy.count {
            return Ok(RetryDecision::Stop(StopReason::Exhausted));
        }
        let done = self.decide_for_attempt(
            step_id,
            attempt.status,
            &policy.until,
            DEFAULT_RETRY_UNTIL,
            scope,
        )?;
        Ok(if done {
            RetryDecision::Stop(StopReason::UntilMet)
        } else {
            RetryDecision::Retry {
                next_attempt: attempt.number + 1,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_counts_accept_integers_and_numeric_text_only() {
        assert_eq!(whole_count(&json!(3)), Some(3));
        assert_eq!(whole_count(&json!("2")), Some(2));
        assert_eq!(whole_count(&json!(2.0)), Some(2));
        assert_eq!(whole_count(&json!(2.5)), None);
        assert_eq!(whole_count(&json!(-1)), None);
        assert_eq!(whole_count(&json!(true)), None);
    }
}
