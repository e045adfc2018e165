//! Reruns: a recorded execution run again, as a new execution of the same
//! workflow, from what the store kept: the resolved workflow (`snapshot`),
//! its config and its tags. The file it came from is not read again;
//! secrets are (they are never stored).
//!
//! `failed_only` leaves out the `parallel` workers whose root step passed
//! (or was skipped) in the recorded execution; workers that failed, were
//! aborted, timed out or never ran are run again, and so is every step
//! outside parallel blocks (setup that the workers need, for instance).
//! Workers are matched by their place (`root/<step>/<index>`), and the plan
//! is made with the durations the original run's split used (the record's
//! [`shard_durations`](crate::store::ExecutionRecord::shard_durations)), so
//! index `i` holds the same shard as before. Blocks whose workers are only
//! known at run time run in full.

use std::collections::{BTreeMap, BTreeSet};

use super::error::ServiceError;
use super::request::RunRequest;
use super::util::plural;
use crate::model::TestWorkflow;
use crate::plan::{Operation, Plan, PlanStep};
use crate::store::{ResultStore, StoreError};

/// The snapshot key earlier versions kept the shard durations under.
const LEGACY_DURATIONS_KEY: &str = "x-testkube-durations";

/// How to rerun an execution.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RerunOptions {
    /// Run again only the `parallel` workers that did not pass.
    pub failed_only: bool,
}

impl RerunOptions {
    /// A full rerun.
    #[must_use]
    pub fn new() -> Self {
        RerunOptions::default()
    }

    /// Only the workers that did not pass run again.
    #[must_use]
    pub fn failed_only(mut self, failed_only: bool) -> Self {
        self.failed_only = failed_only;
        self
    }
}

/// What a `failed_only` rerun keeps of a plan.
#[derive(Debug, Clone)]
pub struct FailedOnly {
    /// The recorded execution's name, for messages.
    original: String,
    /// `(worker path, step id)` of every step that passed or was skipped.
    passed: BTreeSet<(String, String)>,
    /// The item durations the recorded run was planned with.
    durations: BTreeMap<String, f64>,
}

impl FailedOnly {
    /// Plans with `durations` and leaves every worker in: the plan an
    /// execution was started with, for continuing it.
    pub(super) fn keeping_all(original: &str, durations: BTreeMap<String, f64>) -> Self {
        FailedOnly {
            original: original.to_owned(),
            passed: BTreeSet::new(),
            durations,
        }
    }

    /// The durations to plan with so that workers get the shards they had.
    #[must_use]
    pub fn durations(&self) -> &BTreeMap<String, f64> {
        &self.durations
    }

    /// Removes the workers that passed from every parallel block of `plan`;
    /// returns one line per block saying what runs.
    pub(crate) fn apply(&self, plan: &mut Plan) -> Vec<String> {
        let mut notes = Vec::new();
        self.narrow(&mut plan.root, "root", &mut notes);
        notes
    }

    fn narrow(&self, step: &mut PlanStep, worker: &str, notes: &mut Vec<String>) {
        let label = step.name.clone().unwrap_or_else(|| step.id.clone());
        let id = step.id.clone();
        for operation in &mut step.operations {
            match operation {
                Operation::Setup { steps } | Operation::Steps { steps } => {
                    for child in steps {
                        self.narrow(child, worker, notes);
                    }
                }
                Operation::Parallel(block) => {
                    let key = format!("{worker}/{id}");
                    if block.decided_at_run_time.is_some() {
                        notes.push(format!(
                            "`{label}`: its workers are decided at run time, so all of them run again"
                        ));
                        continue;
                    }
                    let total = block.workers.len();
                    block.workers.retain(|planned| {
                        let path = format!("{key}/{}", planned.index);
                        !self.passed.contains(&(path, planned.root.id.clone()))
                    });
                    let kept = block.workers.len();
                    if kept == 0 {
                        block.note = Some(format!("every worker passed in {}", self.original));
                    }
                    notes.push(format!(
                        "`{label}`: {kept} of {total} {} run again (the others passed in {})",
                        plural(total, "worker", "workers"),
                        self.original
                    ));
                    for planned in &mut block.workers {
                        let path = format!("{key}/{}", planned.index);
                        self.narrow(&mut planned.root, &path, notes);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The request that runs the execution `id_or_name` of `store` again (what
/// [`RunService::rerun_request`](super::RunService::rerun_request) does,
/// for a frontend that looks the execution up before it sets up a service).
///
/// # Errors
/// [`ServiceError::NotFound`], [`ServiceError::StillRunning`],
/// [`ServiceError::UnusableSnapshot`], [`ServiceError::SensitiveConfig`], or
/// the store's error.
pub async fn rerun_request(
    store: &dyn ResultStore,
    id_or_name: &str,
    options: &RerunOptions,
) -> Result<RunRequest, ServiceError> {
    let record = store
        .find_execution(id_or_name)
        .await
        .map_err(|err| match err {
            StoreError::NotFound(_) => ServiceError::NotFound(id_or_name.to_owned()),
            other => ServiceError::Store(other),
        })?;
    // Stores written before the durations had a field of their own kept
    // them in the snapshot (the SQLite store moves them when it migrates;
    // another store may not have).
    let mut snapshot = record.snapshot.clone();
    let legacy: BTreeMap<String, f64> = snapshot
        .as_object_mut()
        .and_then(|map| map.remove(LEGACY_DURATIONS_KEY))
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default();
    if !record.status.is_finished() {
        return Err(ServiceError::StillRunning {
            name: record.name,
            status: record.status,
        });
    }
    let failed_only = if options.failed_only {
        let steps = store.steps(&record.id).await.map_err(ServiceError::Store)?;
        let passed = steps
            .iter()
            .filter(|step| step.status.is_success())
            .map(|step| (step.worker.clone(), step.step.clone()))
            .collect();
        Some(FailedOnly {
            original: record.name.clone(),
            passed,
            durations: if record.shard_durations.is_empty() {
                legacy
            } else {
                record.shard_durations.clone()
            },
        })
    } else {
        None
    };
    let workflow: TestWorkflow =
        serde_json::from_value(snapshot).map_err(|err| ServiceError::UnusableSnapshot {
            name: record.name.clone(),
            reason: err.to_string(),
        })?;
    let sensitive: Vec<String> = workflow
        .spec
        .config
        .iter()
        .filter(|(_, schema)| schema.sensitive == Some(true))
        .map(|(name, _)| name.clone())
        .collect();
    if !sensitive.is_empty() {
        return Err(ServiceError::SensitiveConfig {
            name: record.name,
            parameters: sensitive,
        });
    }
    let mut request = RunRequest::new(workflow)
        .with_config(record.config.clone())
        .with_source(format!("execution {}", record.name));
    request.tags = record.tags.clone();
    request.failed_only = failed_only;
    Ok(request)
}
