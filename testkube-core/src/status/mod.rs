//! Statuses and verdicts: the rules that decide whether a step runs, whether
//! it runs again, and how it, its groups and the execution end.
//!
//! These rules are the part of the format users feel most (a cleanup step
//! that did not run, a `negative` test that "passed", an optional flaky step
//! that failed the build), so they live here once, pure and tested, for the
//! engine and for the step runner (local or in a pod) to share. Nothing here
//! runs anything or reads a clock: the caller says what happened, these
//! functions say what it means.
//!
//! - [`ExecutionStatus`] and [`StepStatus`]: the format's status names.
//! - [`group_status`] and [`leaf_status`]: a step's verdict from its children
//!   or from how its command ended (`negative`, `optional`, skipped steps,
//!   `timeout`, aborts); [`ExecutionStatus::from_root`] the run's verdict.
//! - [`Interruption`]: what a step `timeout`, the `job.activeDeadlineSeconds`
//!   limit, an abort or a cancel does to unfinished steps and to the run.
//! - [`StatusContext`]: what the runner knows at a point of the sequence,
//!   as expression variables (`passed`, `failed`, `status`, `<stepId>`,
//!   `step.<id>.outputs.<key>`...); [`StatusContext::should_run`] decides a
//!   `condition`, [`StatusContext::retry_decision`] a `retry`.
//!
//! The semantics follow Testkube's runner (`testworkflow-init`): `passed` is
//! the status "so far" of the enclosing groups, a skipped step counts as a
//! success, `failed` in `retry.until` is about the attempt, and a timeout
//! marks started steps `timeout` and the others `skipped`.
//!
//! ```
//! use testkube_core::status::{StatusContext, StepStatus, ExecutionStatus};
//! let mut ctx = StatusContext::new();
//! ctx.enter(); // the workflow root
//! ctx.finish("build", StepStatus::Failed, false);
//! assert_eq!(ctx.should_run("test", "passed"), Ok(false));
//! ctx.finish("test", StepStatus::Skipped, false);
//! assert_eq!(ctx.should_run("cleanup", "always"), Ok(true));
//! ctx.finish("cleanup", StepStatus::Passed, false);
//! let root = ctx.leave(false).unwrap();
//! assert_eq!(ExecutionStatus::from_root(root), ExecutionStatus::Failed);
//! ```

mod context;
mod retry;
mod statuses;
mod verdict;

pub use context::{
    ConditionError, DEFAULT_ARTIFACTS_CONDITION, DEFAULT_CONDITION, DEFAULT_RESULTS_BASE,
    StatusContext,
};
pub use retry::{Attempt, DEFAULT_RETRY_UNTIL, RetryDecision, RetryPolicy, StopReason};
pub use statuses::{ExecutionStatus, StepStatus, UnknownStatus};
pub use verdict::{ChildVerdict, CommandOutcome, Interruption, group_status, leaf_status};
