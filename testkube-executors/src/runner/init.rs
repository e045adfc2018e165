//! A worker's initialization: what Testkube's init container does before
//! the first step. The worker unpacks the files its parent transferred and
//! fetches its root's own `content` (the workflow's `content`: a git
//! checkout, tarballs, files), then reports [`WorkerEvent::Initialized`],
//! which the engine keeps as the execution's `result.initialization`. A
//! failure here ends the worker before any step, with the reason.

use std::time::SystemTime;

use testkube_core::engine::WorkerEvent;
use testkube_core::model::Content;
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::StepStatus;

use super::StepRunner;

impl StepRunner {
    /// Initializes the worker and reports how it went; returns the root
    /// without its `content`, which is not fetched again by its attempt.
    pub(super) async fn initialize(&mut self, root: &PlanStep) -> Result<PlanStep, String> {
        if self.relay.as_ref().is_some_and(super::Relay::initialized) {
            // An earlier container of the pod prepared the shared workspace.
            let mut rest = root.clone();
            rest.operations
                .retain(|operation| !matches!(operation, Operation::Content { .. }));
            return Ok(rest);
        }
        let prepared = self.prepare(root).await;
        if prepared.is_ok()
            && let Some(relay) = &self.relay
        {
            relay.mark_initialized();
        }
        let (status, message) = match &prepared {
            Ok(_) => (StepStatus::Passed, None),
            Err(message) => (self.initialization_failure(), Some(message.clone())),
        };
        let event = WorkerEvent::Initialized {
            status,
            at: SystemTime::now(),
            message,
        };
        let _ = self.events.send(event).await;
        prepared
    }

    /// How a worker whose initialization did not succeed ends: stopped
    /// from outside (an abort, `failFast`) while it fetched its content, it
    /// ends as the interruption says, not `failed`.
    pub(super) fn initialization_failure(&self) -> StepStatus {
        match *self.interrupt.borrow() {
            Some(interruption) => interruption.step_status(StepStatus::Running),
            None => StepStatus::Failed,
        }
    }

    async fn prepare(&mut self, root: &PlanStep) -> Result<PlanStep, String> {
        self.unpack_given().await?;
        let mut rest = root.clone();
        let mut contents = Vec::new();
        rest.operations.retain(|operation| match operation {
            Operation::Content { content } => {
                contents.push((**content).clone());
                false
            }
            _ => true,
        });
        // The content is the root step's: its paths are evaluated in the root's scope
        // (its env, `step.results`), as the root's other fields are when it runs.
        self.enter_step(root)?;
        let fetched = self.fetch_contents(root, contents).await;
        self.leave_step();
        fetched.map(|()| rest)
    }

    async fn fetch_contents(
        &mut self,
        root: &PlanStep,
        contents: Vec<Content>,
    ) -> Result<(), String> {
        for content in contents {
            let end = self.content(root, &content).await;
            if end.status != StepStatus::Passed {
                return Err(end
                    .message
                    .unwrap_or_else(|| format!("content ended {}", end.status)));
            }
        }
        Ok(())
    }
}
