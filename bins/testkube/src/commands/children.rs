//! `execute` for `testkube run`: the workflows a run may start as child
//! executions come from its own file and the files and folders given with
//! `--workflows`; each child is recorded in the result store as an
//! execution of its own (numbered per workflow, `WORKFLOW-N`), so `get`,
//! `logs` and `rerun` work on children as on any run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use testkube_core::engine::{
    ChildError, ChildExecutions, ChildRequest, ChildTarget, ExecutionSummary, PreparedChild,
    StartedChild, WorkflowSet,
};
use testkube_core::model::Document;
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{NewExecution, ResultStore};
use testkube_results::store::EventRecorder;

use super::CliError;
use super::render::{add_templates, load, template_set};
use super::run::execution_id;
use crate::input;

/// The workflows `execute` may run, recorded in `store` when there is one.
pub(crate) struct StoredChildren {
    set: WorkflowSet,
    store: Option<Arc<dyn ResultStore>>,
}

impl StoredChildren {
    /// Every TestWorkflow of `files` (files or folders, searched for YAML),
    /// resolved with `templates` (the built-ins, the files' own templates and
    /// `--templates`). Invalid files are refused, as `run` refuses its own.
    pub(crate) fn load(
        files: &[PathBuf],
        templates: &[PathBuf],
        store: Option<Arc<dyn ResultStore>>,
    ) -> Result<Self, CliError> {
        let mut template_set = template_set(templates)?;
        let mut workflows = Vec::new();
        for path in input::workflow_files(files)? {
            let file = load(&path)?;
            add_templates(&mut template_set, &file);
            for document in file.documents {
                if let Some(Document::TestWorkflow(workflow)) = document.document {
                    workflows.push((path.clone(), *workflow));
                }
            }
        }
        let mut set = WorkflowSet::new(template_set);
        for (path, workflow) in workflows {
            let name = workflow.metadata.name.clone().unwrap_or_default();
            // The same workflow found twice (its file given again, or in a
            // folder given too) is one workflow.
            if set.names().any(|known| known == name) {
                continue;
            }
            set.insert(workflow).map_err(|err| {
                CliError::usage(format!("{}: {err}", path.display()))
                    .with_hint("every workflow `execute` may run needs a unique metadata.name")
            })?;
        }
        Ok(StoredChildren { set, store })
    }
}

#[async_trait]
impl ChildExecutions for StoredChildren {
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError> {
        self.set.find(target).map_err(|err| {
            ChildError::new(format!(
                "{err} (workflows known to this run come from its file and --workflows PATH)"
            ))
        })
    }

    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError> {
        self.set.prepare(child)
    }

    async fn register(
        &self,
        child: &ChildRequest,
        prepared: &mut PreparedChild,
    ) -> Result<(), ChildError> {
        let Some(store) = &self.store else {
            return self.set.register(child, prepared).await;
        };
        let request = &mut prepared.request;
        let new = NewExecution {
            id: execution_id(&child.workflow),
            workflow: child.workflow.clone(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: SystemTime::now().into(),
            snapshot: serde_json::json!({
                "parent": {"id": child.parent.id, "name": child.parent.name, "step": child.step},
            }),
            config: request.config.clone(),
            tags: request.tags.clone(),
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
                // The parent's own recorder reports store problems; a
                // child keeps running without its record.
                recording = false;
            }
            if let testkube_core::engine::Event::Finished(summary) = event {
                let _ = recorder.flush().await;
                return Some(*summary);
            }
        }
        None
    }
}
