//! Continuing an execution an earlier engine started (a restarted agent):
//! what the store recorded of it ([`Recovered`]), and how each of its
//! workers is taken up again.
//!
//! Why the engine re-walks the run rather than restoring a snapshot of
//! itself: everything a worker did is in what it reported (for a pod, its
//! log), which the executor can read again from the start
//! ([`Executor::attach`](super::Executor::attach)). Walking the same plan
//! over the same reports rebuilds the state the killed engine had (open
//! steps, parallel blocks, requests): the same workers get the same
//! numbers, a worker whose reports the store holds to the end is not run
//! again, and one that is gone is ended. The frontend drops the events it
//! had recorded already (see `EventRecorder::resume` in the run service),
//! so nothing is lost or doubled.
//!
//! For each worker, in the order the plan reaches it:
//! - its root is recorded finished: it ended, with that status;
//! - the executor re-attaches to it: followed as if just started;
//! - it is not there but the store knows it: it vanished while no engine
//!   watched (a deleted Job), and ends `aborted` with its open steps;
//! - neither: it never started, and starts now.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::status::StepStatus;
use crate::store::StepRecord;

/// What the store holds of an execution being continued: input to
/// [`Engine::resume`](super::Engine::resume).
#[derive(Debug, Clone)]
pub struct Recovered {
    /// When it was scheduled (`execution.scheduledAt`).
    pub scheduled_at: SystemTime,
    /// When it started running, for its summary.
    pub started_at: Option<SystemTime>,
    /// The state of each step of each worker, as recorded.
    steps: BTreeMap<String, BTreeMap<String, StepStatus>>,
}

impl Recovered {
    /// What the store recorded: when the execution was scheduled and
    /// started, and its steps.
    #[must_use]
    pub fn new(
        scheduled_at: SystemTime,
        started_at: Option<SystemTime>,
        steps: impl IntoIterator<Item = StepRecord>,
    ) -> Self {
        let mut by_worker: BTreeMap<String, BTreeMap<String, StepStatus>> = BTreeMap::new();
        for step in steps {
            by_worker
                .entry(step.worker)
                .or_default()
                .insert(step.step, step.status);
        }
        Recovered {
            scheduled_at,
            started_at,
            steps: by_worker,
        }
    }

    /// The recorded status of worker `path`'s root, when it finished.
    pub(crate) fn finished(&self, path: &str) -> Option<StepStatus> {
        self.steps
            .get(path)
            .and_then(|steps| steps.get("root"))
            .copied()
            .filter(|status| status.is_finished())
    }

    /// Whether anything of worker `path` was recorded (it had started).
    pub(crate) fn knows(&self, path: &str) -> bool {
        self.steps.contains_key(path)
    }

    /// The steps of worker `path` recorded as started and not finished.
    pub(crate) fn open_steps(&self, path: &str) -> Vec<String> {
        self.steps
            .get(path)
            .into_iter()
            .flatten()
            .filter(|(_, status)| !status.is_finished() && **status != StepStatus::Queued)
            .map(|(step, _)| step.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(worker: &str, step: &str, status: StepStatus) -> StepRecord {
        StepRecord {
            worker: worker.to_owned(),
            step: step.to_owned(),
            name: None,
            status,
            started_at: None,
            finished_at: None,
            attempt: 1,
            exit_code: None,
            message: None,
        }
    }

    #[test]
    fn a_worker_is_finished_when_its_root_is() {
        let recovered = Recovered::new(
            SystemTime::UNIX_EPOCH,
            None,
            [
                step("root", "root", StepStatus::Running),
                step("root", "a", StepStatus::Passed),
                step("root", "b", StepStatus::Running),
                step("root/tests/0", "root", StepStatus::Failed),
            ],
        );
        assert_eq!(recovered.finished("root"), None);
        assert_eq!(recovered.finished("root/tests/0"), Some(StepStatus::Failed));
        assert!(recovered.knows("root"));
        assert!(!recovered.knows("root/tests/1"));
        assert_eq!(recovered.open_steps("root"), ["b", "root"]);
    }
}
