//! [`EventRecorder`]: persists an execution as the engine's event stream goes by, so every
//! frontend (the CLI, embedders) stores runs the same way.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use testkube_core::engine::Event;
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{OutputRecord, ResultStore, StatusUpdate, StepRecord, StoreError};

/// Writes the events of one execution (already created in the store) to a [`ResultStore`]:
/// status changes, step states, log chunks, outputs and the final status.
pub struct EventRecorder {
    store: Arc<dyn ResultStore>,
    execution: String,
    /// First start of each `(worker, step)`: step events carry only the time of the change.
    started: HashMap<(String, String), DateTime<Utc>>,
}

impl EventRecorder {
    /// A recorder for the execution with id `execution`.
    #[must_use]
    pub fn new(store: Arc<dyn ResultStore>, execution: impl Into<String>) -> Self {
        EventRecorder {
            store,
            execution: execution.into(),
            started: HashMap::new(),
        }
    }

    /// Stores what `event` says; events the store does not keep are ignored.
    ///
    /// # Errors
    ///
    /// The store's [`StoreError`]; the recorder stays usable.
    pub async fn record(&mut self, event: &Event) -> Result<(), StoreError> {
        let id = self.execution.as_str();
        match event {
            Event::Execution { status, at } => {
                let update = StatusUpdate {
                    status: *status,
                    at: DateTime::<Utc>::from(*at),
                    message: None,
                };
                self.store.update_status(id, update).await
            }
            Event::Step {
                worker,
                step,
                status,
                at,
                detail,
            } => {
                let at = DateTime::<Utc>::from(*at);
                let key = (worker.path.clone(), step.id.clone());
                let started_at = if *status == testkube_core::status::StepStatus::Running {
                    Some(*self.started.entry(key).or_insert(at))
                } else {
                    self.started.get(&key).copied()
                };
                let record = StepRecord {
                    worker: worker.path.clone(),
                    step: step.id.clone(),
                    name: step.name.clone(),
                    status: *status,
                    started_at,
                    finished_at: status.is_finished().then_some(at),
                    attempt: detail.attempt,
                    exit_code: detail.exit_code,
                    message: detail.message.clone(),
                };
                self.store.upsert_step(id, record).await
            }
            Event::Log {
                worker,
                step,
                chunk,
            } => self.store.append_log(id, &worker.path, step, chunk).await,
            Event::Output {
                worker,
                step,
                key,
                value,
            } => {
                let output = OutputRecord {
                    worker: worker.path.clone(),
                    step: step.clone(),
                    key: key.clone(),
                    value: value.clone(),
                };
                self.store.record_outputs(id, &[output]).await
            }
            Event::Finished(summary) => {
                let at = DateTime::parse_from_rfc3339(&summary.finished_at)
                    .map_or_else(|_| Utc::now(), |at| at.with_timezone(&Utc));
                let update = StatusUpdate {
                    status: summary.status,
                    at,
                    message: summary.message.clone(),
                };
                self.store.update_status(id, update).await
            }
            _ => Ok(()),
        }
    }
}

impl EventRecorder {
    /// Ends the execution with `status` when no [`Event::Finished`] will come (the engine
    /// refused to start it).
    ///
    /// # Errors
    ///
    /// The store's [`StoreError`].
    pub async fn finish(
        &self,
        status: ExecutionStatus,
        message: Option<String>,
    ) -> Result<(), StoreError> {
        let update = StatusUpdate {
            status,
            at: Utc::now(),
            message,
        };
        self.store.update_status(&self.execution, update).await
    }
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("execution", &self.execution)
            .finish_non_exhaustive()
    }
}
