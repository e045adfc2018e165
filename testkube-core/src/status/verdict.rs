//! Verdicts: the status a step ends with, from what happened to it (a leaf)
//! or from its children (a group), and what an interruption does to steps
//! that were still queued or running.

use super::statuses::{ExecutionStatus, StepStatus};

/// One child's part in its group's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildVerdict {
    /// The child's final status.
    pub status: StepStatus,
    /// The child is `optional`: its failure does not fail the group.
    pub optional: bool,
}

impl ChildVerdict {
    /// A required (non-optional) child.
    #[must_use]
    pub fn required(status: StepStatus) -> Self {
        ChildVerdict {
            status,
            optional: false,
        }
    }

    /// An `optional` child.
    #[must_use]
    pub fn optional(status: StepStatus) -> Self {
        ChildVerdict {
            status,
            optional: true,
        }
    }
}

/// The status of a group (a step with sub-steps, the workflow root, a
/// worker's root) from its children's statuses, in this order:
///
/// 1. any child `aborted` (optional ones too) → `aborted`: the run was
///    stopped from outside, which is not a test verdict;
/// 2. else any child `canceled` → `canceled` (same reason);
/// 3. else the format's rule: the group passes when every required
///    (non-`optional`) child succeeded (`passed` or `skipped`; `failed` and
///    `timeout` fail it, and so does a child that never finished); a
///    `negative` group is inverted and passes when some required child did
///    not succeed. A group without required children passes (fails if
///    `negative`), and so does a group whose children were all skipped.
///
/// The group's own `timeout`, when it fires, wins over this: see
/// [`Interruption`].
#[must_use]
pub fn group_status(
    negative: bool,
    children: impl IntoIterator<Item = ChildVerdict>,
) -> StepStatus {
    let mut aborted = false;
    let mut canceled = false;
    let mut required_failed = false;
    for child in children {
        match child.status {
            StepStatus::Aborted => aborted = true,
            StepStatus::Canceled => canceled = true,
            _ => {}
        }
        if !child.optional && !child.status.is_success() {
            required_failed = true;
        }
    }
    if aborted {
        StepStatus::Aborted
    } else if canceled {
        StepStatus::Canceled
    } else if required_failed == negative {
        StepStatus::Passed
    } else {
        StepStatus::Failed
    }
}

/// How one run of a leaf step's command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// The process exited (or was killed by a signal the step did not ask
    /// for, reported as a non-zero code).
    Exited {
        /// The exit code; 0 is success.
        code: i32,
    },
    /// The step's own `timeout`, or that of an enclosing group, stopped it.
    TimedOut,
    /// Stopped from outside (abort, Ctrl-C).
    Aborted,
    /// Canceled from outside.
    Canceled,
}

/// The status of a leaf step from how its command ended: exit code 0 passes,
/// anything else fails, and `negative` swaps the two. A timeout, an abort or
/// a cancel is not a verdict of the command, so `negative` does not turn
/// them into a pass.
#[must_use]
pub fn leaf_status(outcome: CommandOutcome, negative: bool) -> StepStatus {
    match outcome {
        CommandOutcome::Exited { code } => {
            if (code == 0) != negative {
                StepStatus::Passed
            } else {
                StepStatus::Failed
            }
        }
        CommandOutcome::TimedOut => StepStatus::Timeout,
        CommandOutcome::Aborted => StepStatus::Aborted,
        CommandOutcome::Canceled => StepStatus::Canceled,
    }
}

/// Something that stops steps before they finish on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interruption {
    /// A step's `timeout` fired: the step and every started step under it
    /// end `timeout`, the ones not started yet end `skipped` (Testkube's
    /// runner does exactly this). The timed-out step counts as a failure for
    /// its group like any `timeout`.
    Timeout,
    /// `job.activeDeadlineSeconds`, the whole-run limit, passed: a timeout
    /// of the root (started steps `timeout`, the rest `skipped`) and the
    /// execution ends `failed`. It is a limit the workflow set for itself,
    /// so it is a verdict, not an abort.
    Deadline,
    /// An abort from outside (API, Ctrl-C, `failFast` stopping siblings):
    /// started steps end `aborted`, the rest `skipped`; the execution ends
    /// `aborted`.
    Abort,
    /// A cancel from outside: started steps end `canceled`, the rest
    /// `skipped`; the execution ends `canceled`.
    Cancel,
}

impl Interruption {
    /// The status an unfinished step gets: a started one (`running`,
    /// `paused`) gets the interruption's status, a `queued` one `skipped`;
    /// a finished step keeps its status.
    #[must_use]
    pub fn step_status(self, current: StepStatus) -> StepStatus {
        match current {
            StepStatus::Queued => StepStatus::Skipped,
            StepStatus::Running | StepStatus::Paused => match self {
                Interruption::Timeout | Interruption::Deadline => StepStatus::Timeout,
                Interruption::Abort => StepStatus::Aborted,
                Interruption::Cancel => StepStatus::Canceled,
            },
            finished => finished,
        }
    }

    /// The status the execution ends with, for interruptions that end the
    /// whole run; `None` for a step's `timeout`, whose effect is decided by
    /// the group verdicts above it.
    #[must_use]
    pub fn execution_status(self) -> Option<ExecutionStatus> {
        match self {
            Interruption::Timeout => None,
            Interruption::Deadline => Some(ExecutionStatus::Failed),
            Interruption::Abort => Some(ExecutionStatus::Aborted),
            Interruption::Cancel => Some(ExecutionStatus::Canceled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_required_child_does_not_count_as_success() {
        let status = group_status(false, [ChildVerdict::required(StepStatus::Running)]);
        assert_eq!(status, StepStatus::Failed);
    }

    #[test]
    fn aborted_wins_over_canceled() {
        let children = [
            ChildVerdict::required(StepStatus::Canceled),
            ChildVerdict::optional(StepStatus::Aborted),
        ];
        assert_eq!(group_status(false, children), StepStatus::Aborted);
    }

    #[test]
    fn finished_steps_keep_their_status_on_interruption() {
        for interruption in [
            Interruption::Timeout,
            Interruption::Deadline,
            Interruption::Abort,
            Interruption::Cancel,
        ] {
            assert_eq!(
                interruption.step_status(StepStatus::Failed),
                StepStatus::Failed
            );
            assert_eq!(
                interruption.step_status(StepStatus::Queued),
                StepStatus::Skipped
            );
        }
    }
}
