//! The engine's event stream: the one source every frontend and the result
//! store consume (the CLI's live view, `-o json`, the store, webhooks).
//!
//! Events arrive in the order things happened within one worker; workers
//! interleave. The stream ends with exactly one [`Event::Finished`] holding
//! the [`ExecutionSummary`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;

use super::executor::{ChildRecord, StepDetail, WorkerId};
use crate::model::{ExecutionResult, StepResult};
use crate::status::{ExecutionStatus, StepStatus};
use crate::store::{TestCaseRecord, TestCaseStatus};

/// Something that happened in an execution.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The execution changed status (`running`, then its final status).
    Execution {
        /// The new status.
        status: ExecutionStatus,
        /// When.
        at: SystemTime,
    },
    /// A worker started (`running`) or finished (its root's status).
    Worker {
        /// The worker.
        worker: WorkerId,
        /// Its status.
        status: StepStatus,
        /// The worker's description (parallel workers), for display.
        description: Option<String>,
    },
    /// A step changed status.
    Step {
        /// The worker it runs in.
        worker: WorkerId,
        /// Where the step is.
        step: StepRef,
        /// The new status.
        status: StepStatus,
        /// When.
        at: SystemTime,
        /// Exit code, attempt and message.
        detail: StepDetail,
    },
    /// Output of a running step.
    Log {
        /// The worker.
        worker: WorkerId,
        /// The step id.
        step: String,
        /// The bytes, as written (stdout and stderr interleaved).
        chunk: Bytes,
    },
    /// A step wrote an output (`step.<id>.outputs.<key>`).
    Output {
        /// The worker.
        worker: WorkerId,
        /// The step id.
        step: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A file was collected as an artifact.
    Artifact {
        /// The worker.
        worker: WorkerId,
        /// The step id.
        step: String,
        /// Its path relative to the artifacts' working directory.
        path: String,
        /// Where it is kept.
        location: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Test results parsed from a report a step produced.
    TestCases {
        /// The worker.
        worker: WorkerId,
        /// The step id.
        step: String,
        /// The report's path, relative to the artifacts' working directory.
        report: String,
        /// The test cases (their `worker` is the worker's path).
        cases: Vec<TestCaseRecord>,
    },
    /// A child execution of an `execute` step was started (status
    /// `running`), finished (its verdict as a step status), or could not
    /// start (`failed`, with an empty id). The child's own events go to
    /// [`ChildExecutions::follow`](super::ChildExecutions::follow).
    Child {
        /// The worker whose step started it.
        worker: WorkerId,
        /// The `execute` step's id.
        step: String,
        /// The child.
        child: ChildRecord,
        /// The child's description (`execute.workflows[].description`).
        description: Option<String>,
    },
    /// A worker's initialization (its workspace and its root's own
    /// `content`) started (`running`) or ended (`passed`, `failed`). The
    /// root worker's is the execution's `result.initialization`.
    Initialization {
        /// The worker.
        worker: WorkerId,
        /// The new status.
        status: StepStatus,
        /// When.
        at: SystemTime,
        /// Why it failed.
        message: Option<String>,
    },
    /// Something the user should know (not a failure).
    Notice {
        /// The worker it is about, if any.
        worker: Option<WorkerId>,
        /// The message.
        message: String,
    },
    /// The execution is over; the last event.
    Finished(Box<ExecutionSummary>),
}

impl Event {
    /// Folds this event into the execution's initialization result (`slot`)
    /// when it is the root worker's [`Event::Initialization`], and returns
    /// the result as it now stands; every other event changes nothing.
    pub fn update_initialization<'a>(
        &self,
        slot: &'a mut Option<StepResult>,
    ) -> Option<&'a StepResult> {
        let Event::Initialization {
            worker,
            status,
            at,
            message,
        } = self
        else {
            return None;
        };
        if worker.number != 0 {
            return None;
        }
        let at = chrono::DateTime::from(*at);
        let result = slot.get_or_insert_with(|| StepResult::started(at));
        result.change(*status, at, message.clone());
        Some(result)
    }
}

/// Where a step is in its worker's tree, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    /// The step id (unique within the worker).
    pub id: String,
    /// The display name, if the step has one.
    pub name: Option<String>,
    /// Nesting depth: 0 for the worker's root, 1 for its steps...
    pub depth: usize,
}

impl StepRef {
    /// The name, or the id when the step has no name.
    #[must_use]
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The final state of an execution, as `testkube run -o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    /// The execution id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The workflow's name.
    pub workflow: String,
    /// The final status.
    pub status: ExecutionStatus,
    /// Why it did not pass, when the engine knows (deadline, abort).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Every worker: the root first, then each parallel block's workers by
    /// index, blocks in the order they started.
    pub workers: Vec<WorkerSummary>,
    /// Test results from the reports the run produced.
    pub tests: TestTotals,
    /// How the root worker's initialization went (`result.initialization`).
    pub result: ExecutionResult,
}

/// The test results of an execution, from the reports its steps produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestTotals {
    /// Test cases in all reports.
    pub tests: u64,
    /// Passed at the first attempt.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Errored.
    pub errored: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed, then passed on a rerun.
    pub flaky: u64,
    /// The cases that failed or errored (at most [`TestTotals::MAX_LISTED`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<TestCaseRecord>,
}

impl TestTotals {
    /// How many failures the summary lists; the counts include all.
    pub const MAX_LISTED: usize = 100;

    /// Counts `cases` in.
    pub fn add(&mut self, cases: &[TestCaseRecord]) {
        for case in cases {
            self.tests += 1;
            match case.status {
                TestCaseStatus::Passed => self.passed += 1,
                TestCaseStatus::Failed => self.failed += 1,
                TestCaseStatus::Errored => self.errored += 1,
                TestCaseStatus::Skipped => self.skipped += 1,
                TestCaseStatus::Flaky => self.flaky += 1,
            }
            if matches!(
                case.status,
                TestCaseStatus::Failed | TestCaseStatus::Errored
            ) && self.failures.len() < Self::MAX_LISTED
            {
                self.failures.push(case.clone());
            }
        }
    }
}

/// One worker of an execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSummary {
    /// The worker path (`root`, `root/tests/2`).
    pub id: String,
    /// Its final status.
    pub status: StepStatus,
    /// Its description, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its steps, in the order they first changed status.
    pub steps: Vec<StepSummary>,
}

/// One step of a worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    /// The step id.
    pub id: String,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Nesting depth in the worker (0 for its root).
    pub depth: usize,
    /// Its final status.
    pub status: StepStatus,
    /// From its first start to its end, in milliseconds (not for skipped
    /// steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The exit code of its last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How many attempts ran (more than 1 with `retry`).
    pub attempts: u32,
    /// Why it ended as it did, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The outputs it wrote.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// Builds the [`ExecutionSummary`] from the events as they pass.
#[derive(Debug, Default)]
pub(crate) struct SummaryBuilder {
    /// Each worker with its number (the summary lists them by number).
    workers: Vec<(usize, WorkerSummary)>,
    tests: TestTotals,
    started: BTreeMap<(String, String), SystemTime>,
    initialization: Option<StepResult>,
}

impl SummaryBuilder {
    pub(crate) fn observe(&mut self, event: &Event) {
        match event {
            Event::Worker {
                worker,
                status,
                description,
            } => {
                let summary = self.worker(worker);
                summary.status = *status;
                if description.is_some() {
                    summary.description.clone_from(description);
                }
            }
            Event::Step {
                worker,
                step,
                status,
                at,
                detail,
            } => self.step(worker, step, *status, *at, detail),
            Event::Output {
                worker,
                step,
                key,
                value,
            } => {
                if let Some(summary) = self.worker(worker).steps.iter_mut().find(|s| s.id == *step)
                {
                    summary.outputs.insert(key.clone(), value.clone());
                }
            }
            Event::TestCases { cases, .. } => self.tests.add(cases),
            Event::Initialization { .. } => {
                event.update_initialization(&mut self.initialization);
            }
            _ => {}
        }
    }

    fn worker(&mut self, worker: &WorkerId) -> &mut WorkerSummary {
        let position = match self.workers.iter().position(|(n, _)| *n == worker.number) {
            Some(position) => position,
            None => {
                let summary = WorkerSummary {
                    id: worker.path.clone(),
                    status: StepStatus::Queued,
                    description: None,
                    steps: Vec::new(),
                };
                self.workers.push((worker.number, summary));
                self.workers.len() - 1
            }
        };
        &mut self.workers[position].1
    }

    fn step(
        &mut self,
        worker: &WorkerId,
        step: &StepRef,
        status: StepStatus,
        at: SystemTime,
        detail: &StepDetail,
    ) {
        let key = (worker.path.clone(), step.id.clone());
        if status == StepStatus::Running {
            self.started.entry(key.clone()).or_insert(at);
        }
        let started = self.started.get(&key).copied();
        let summary = self.worker(worker);
        let position = match summary.steps.iter().position(|s| s.id == step.id) {
            Some(position) => position,
            None => {
                summary.steps.push(StepSummary {
                    id: step.id.clone(),
                    name: step.name.clone(),
                    depth: step.depth,
                    status,
                    duration_ms: None,
                    exit_code: None,
                    attempts: 0,
                    message: None,
                    outputs: BTreeMap::new(),
                });
                summary.steps.len() - 1
            }
        };
        let entry = &mut summary.steps[position];
        entry.status = status;
        entry.attempts = entry.attempts.max(detail.attempt);
        if detail.exit_code.is_some() {
            entry.exit_code = detail.exit_code;
        }
        if detail.message.is_some() {
            entry.message.clone_from(&detail.message);
        }
        if status.is_finished()
            && let Some(started) = started
        {
            entry.duration_ms = Some(millis(at.duration_since(started).unwrap_or_default()));
        }
    }

    pub(crate) fn finish(
        mut self,
        header: SummaryHeader,
        status: ExecutionStatus,
        message: Option<String>,
        finished: SystemTime,
    ) -> ExecutionSummary {
        self.workers.sort_by_key(|(number, _)| *number);
        let duration = finished.duration_since(header.started).unwrap_or_default();
        ExecutionSummary {
            id: header.id,
            name: header.name,
            workflow: header.workflow,
            status,
            message,
            started_at: rfc3339(header.started),
            finished_at: rfc3339(finished),
            duration_ms: millis(duration),
            workers: self.workers.into_iter().map(|(_, w)| w).collect(),
            tests: self.tests,
            result: ExecutionResult {
                initialization: self.initialization,
            },
        }
    }
}

/// What the summary says about the execution itself.
#[derive(Debug, Clone)]
pub(crate) struct SummaryHeader {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) workflow: String,
    pub(crate) started: SystemTime,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
