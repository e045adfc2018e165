//! The two status vocabularies: of a whole execution and of one step.
//!
//! Names, spelling and meaning are the format's (SPEC.md, "Statuses"); they
//! are what stores, events, webhooks and `-o json` print, so they serialize
//! exactly as users and existing tools know them (lower case).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of a whole execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Waiting to be picked up.
    Queued,
    /// Picked by a runner that has not started it yet.
    Assigned,
    /// The runner is preparing it.
    Starting,
    /// Its workers (pods, processes) are being scheduled.
    Scheduling,
    /// Steps are running.
    Running,
    /// A pause was asked for and is being applied.
    Pausing,
    /// Paused (a `paused` step, or on request).
    Paused,
    /// A resume was asked for and is being applied.
    Resuming,
    /// Finished, and the root group passed.
    Passed,
    /// Finished, and the root group did not pass.
    Failed,
    /// An abort was asked for and is being applied.
    Stopping,
    /// Stopped from outside (abort, Ctrl-C, a lost runner) before finishing.
    Aborted,
    /// Canceled before it could finish (e.g. `concurrency.cancelInProgress`).
    Canceled,
}

impl ExecutionStatus {
    /// Every execution status, in the order of the format's list.
    pub const ALL: [ExecutionStatus; 13] = [
        ExecutionStatus::Queued,
        ExecutionStatus::Assigned,
        ExecutionStatus::Starting,
        ExecutionStatus::Scheduling,
        ExecutionStatus::Running,
        ExecutionStatus::Pausing,
        ExecutionStatus::Paused,
        ExecutionStatus::Resuming,
        ExecutionStatus::Passed,
        ExecutionStatus::Failed,
        ExecutionStatus::Stopping,
        ExecutionStatus::Aborted,
        ExecutionStatus::Canceled,
    ];

    /// The name as written in the format (`passed`, `aborted`...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Assigned => "assigned",
            ExecutionStatus::Starting => "starting",
            ExecutionStatus::Scheduling => "scheduling",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Pausing => "pausing",
            ExecutionStatus::Paused => "paused",
            ExecutionStatus::Resuming => "resuming",
            ExecutionStatus::Passed => "passed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Stopping => "stopping",
            ExecutionStatus::Aborted => "aborted",
            ExecutionStatus::Canceled => "canceled",
        }
    }

    /// Whether the execution is over: `passed`, `failed`, `aborted` or
    /// `canceled`. Nothing changes a finished execution any more.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Passed
                | ExecutionStatus::Failed
                | ExecutionStatus::Aborted
                | ExecutionStatus::Canceled
        )
    }

    /// Whether the execution finished and passed (exit code 0 of `run`).
    #[must_use]
    pub fn is_passed(self) -> bool {
        self == ExecutionStatus::Passed
    }

    /// Whether the execution finished without passing (`failed`, `aborted`
    /// or `canceled`: the webhooks' "not-passed").
    #[must_use]
    pub fn is_not_passed(self) -> bool {
        self.is_finished() && !self.is_passed()
    }

    /// The execution status a run ends with, from the status of its root
    /// group: `passed` (or an all-`skipped` root) → `passed`, `aborted` →
    /// `aborted`, `canceled` → `canceled`, anything else finished (`failed`,
    /// `timeout`) → `failed`. An unfinished root gives the matching live
    /// status (`queued`, `running`, `paused`).
    #[must_use]
    pub fn from_root(root: StepStatus) -> ExecutionStatus {
        match root {
            StepStatus::Queued => ExecutionStatus::Queued,
            StepStatus::Running => ExecutionStatus::Running,
            StepStatus::Paused => ExecutionStatus::Paused,
            StepStatus::Passed | StepStatus::Skipped => ExecutionStatus::Passed,
            StepStatus::Failed | StepStatus::Timeout => ExecutionStatus::Failed,
            StepStatus::Aborted => ExecutionStatus::Aborted,
            StepStatus::Canceled => ExecutionStatus::Canceled,
        }
    }
}

/// The status of one step (a leaf or a group, a worker or a service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not started yet.
    Queued,
    /// Started and not finished.
    Running,
    /// Started and paused.
    Paused,
    /// Finished with a passing result (after `negative`).
    Passed,
    /// Finished with a failing result (after `negative`).
    Failed,
    /// Stopped by its own `timeout` or that of an enclosing group.
    Timeout,
    /// Not run: its condition was false, or an enclosing group was skipped
    /// or stopped before reaching it.
    Skipped,
    /// Stopped from outside while it ran.
    Aborted,
    /// Canceled while it ran.
    Canceled,
}

impl StepStatus {
    /// Every step status, in the order of the format's list.
    pub const ALL: [StepStatus; 9] = [
        StepStatus::Queued,
        StepStatus::Running,
        StepStatus::Paused,
        StepStatus::Passed,
        StepStatus::Failed,
        StepStatus::Timeout,
        StepStatus::Skipped,
        StepStatus::Aborted,
        StepStatus::Canceled,
    ];

    /// The name as written in the format (`passed`, `timeout`...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Queued => "queued",
            StepStatus::Running => "running",
            StepStatus::Paused => "paused",
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Timeout => "timeout",
            StepStatus::Skipped => "skipped",
            StepStatus::Aborted => "aborted",
            StepStatus::Canceled => "canceled",
        }
    }

    /// Whether the step is over (anything but `queued`, `running`, `paused`).
    #[must_use]
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            StepStatus::Queued | StepStatus::Running | StepStatus::Paused
        )
    }

    /// Whether the step passed (`passed` only): the meaning of `self.passed`
    /// and of `passed` in `retry.until`.
    #[must_use]
    pub fn is_passed(self) -> bool {
        self == StepStatus::Passed
    }

    /// Whether the step counts as a success for its group and for the
    /// `<stepId>` variable: `passed` or `skipped` (a skipped step never
    /// fails anything).
    #[must_use]
    pub fn is_success(self) -> bool {
        matches!(self, StepStatus::Passed | StepStatus::Skipped)
    }

    /// Whether the step finished without success: `failed`, `timeout`,
    /// `aborted` or `canceled`. The meaning of `self.failed`.
    #[must_use]
    pub fn is_failure(self) -> bool {
        self.is_finished() && !self.is_success()
    }
}

/// A status name that is not one of the format's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind} status (expected one of: {expected})")]
pub struct UnknownStatus {
    kind: &'static str,
    value: String,
    expected: String,
}

impl UnknownStatus {
    fn new(kind: &'static str, value: &str, names: impl Iterator<Item = &'static str>) -> Self {
        UnknownStatus {
            kind,
            value: value.to_owned(),
            expected: names.collect::<Vec<_>>().join(", "),
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                UnknownStatus::new(
                    "execution",
                    s,
                    ExecutionStatus::ALL.iter().map(|s| s.as_str()),
                )
            })
    }
}

impl FromStr for StepStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                UnknownStatus::new("step", s, StepStatus::ALL.iter().map(|s| s.as_str()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        for status in ExecutionStatus::ALL {
            assert_eq!(status.to_string().parse::<ExecutionStatus>(), Ok(status));
        }
        for status in StepStatus::ALL {
            assert_eq!(status.to_string().parse::<StepStatus>(), Ok(status));
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_list() {
        let err = "done".parse::<StepStatus>().unwrap_err();
        assert!(err.to_string().contains("queued, running"), "{err}");
        assert!("Passed".parse::<ExecutionStatus>().is_err());
    }
}
