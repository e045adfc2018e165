//! `execute` steps through the run service: the workflows a run may start
//! come from a [`WorkflowCatalog`]; each child is recorded in the store as
//! an execution of its own (numbered per workflow, `WORKFLOW-N`), with the
//! same id scheme and recording as a top-level run, so `get`, `logs` and
//! `rerun` work on children as on any run.

use std::sync::Arc;

use async_trait::async_trait;

use super::ids::ExecutionIds;
use super::recorder::EventRecorder;
use crate::engine::{
    ChildError, ChildExecutions, ChildRequest, ChildTarget, Event, ExecutionSummary, PreparedChild,
    StartedChild, WorkflowSet,
};
use crate::status::ExecutionStatus;
use crate::store::{NewExecution, ResultStore};

/// Where `execute` steps find workflows: by name or label selector, then
/// resolved and planned with the config the step gives. [`WorkflowSet`] is
/// one over parsed workflows; an agent's would read TestWorkflow objects.
pub trait WorkflowCatalog: Send + Sync {
    /// The names of the workflows `target` picks: the named one (an error
    /// when there is none), or every workflow whose labels match, sorted.
    ///
    /// # Errors
    /// [`ChildError`] when a named workflow does not exist or the selector
    /// is invalid.
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError>;

    /// Resolves and plans `child.workflow` with `child.config`.
    ///
    /// # Errors
    /// [`ChildError`] when the workflow cannot be resolved or planned.
    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError>;
}

impl WorkflowCatalog for WorkflowSet {
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError> {
        ChildExecutions::find(self, target)
    }

    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError> {
        ChildExecutions::prepare(self, child)
    }
}

/// The engine's [`ChildExecutions`] for a run of the service: finds and
/// plans through the catalog, records each child in the store.
pub(crate) struct RecordedChildren {
    pub(crate) catalog: Arc<dyn WorkflowCatalog>,
    pub(crate) store: Option<Arc<dyn ResultStore>>,
    pub(crate) ids: Arc<ExecutionIds>,
    /// Numbers per workflow when nothing is recorded (the store numbers
    /// otherwise).
    pub(crate) numbers: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

#[async_trait]
impl ChildExecutions for RecordedChildren {
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError> {
        self.catalog.find(target)
    }

    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError> {
        self.catalog.prepare(child)
    }

    async fn register(
        &self,
        child: &ChildRequest,
        prepared: &mut PreparedChild,
    ) -> Result<(), ChildError> {
        let request = &mut prepared.request;
        let Some(store) = &self.store else {
            // Not recorded: the engine's id (`<parent id>-<step>-<n>`), and
            // numbers per workflow in this run.
            let mut numbers = self
                .numbers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let number = numbers.entry(child.workflow.clone()).or_insert(0);
            *number += 1;
            request.number = *number;
            return Ok(());
        };
        request.id = self.ids.next(&child.workflow);
        let new = NewExecution {
            id: request.id.clone(),
            workflow: child.workflow.clone(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: self.ids.now().into(),
            snapshot: serde_json::json!({
                "parent": {"id": child.parent.id, "name": child.parent.name, "step": child.step},
            }),
            config: request.config.clone(),
            tags: request.tags.clone(),
            shard_durations: std::collections::BTreeMap::new(),
        };
        let record = store.create_execution(new).await.map_err(|err| {
            ChildError::new(format!("cannot record child `{}`: {err}", child.workflow))
        })?;
        request.id = record.id;
        request.number = record.number;
        request.name = record.name;
        Ok(())
    }

    async fn follow(&self, child: StartedChild) -> Option<ExecutionSummary> {
        let Some(store) = &self.store else {
            return child.execution.wait().await;
        };
        let mut recorder = EventRecorder::new(Arc::clone(store), child.child.id.clone());
        let mut running = child.execution;
        let mut recording = true;
        while let Some(event) = running.next_event().await {
            if recording && recorder.record(&event).await.is_err() {
                // The parent's own recording reports store problems; a
                // child keeps running without its record.
                recording = false;
            }
            if let Event::Finished(summary) = event {
                let _ = recorder.flush().await;
                return Some(*summary);
            }
        }
        None
    }
}
