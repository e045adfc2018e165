//! What a frontend asks the run service to run ([`RunRequest`]), and a run
//! that is planned but not started yet ([`PreparedRun`]).
//!
//! Why two steps: a frontend often wants the plan before anything is
//! recorded (the CLI draws its live view from it, an API may answer a dry
//! run), and a refused plan must leave no trace in the store and use no
//! execution number. [`RunService::prepare`](super::RunService::prepare)
//! only reads; [`RunService::launch`](super::RunService::launch) records and
//! starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::children::WorkflowCatalog;
use super::rerun::FailedOnly;
use crate::model::TestWorkflow;
use crate::plan::{Operation, Plan};

/// A run to start: a resolved workflow and the values it runs with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunRequest {
    /// The resolved workflow (templates and config applied); its
    /// `secret()` calls and secret references are still in it.
    pub workflow: TestWorkflow,
    /// The resolved config values (`config.*`).
    pub config: BTreeMap<String, Value>,
    /// Values to mask in every event and in the store (the real values of
    /// `sensitive` parameters); secret values are added by the service.
    pub sensitive: Vec<String>,
    /// Tags (`execution.tags`).
    pub tags: BTreeMap<String, String>,
    /// Where the workflow came from, for messages (a file, or `execution X`).
    pub source: String,
    /// Run only the workers that did not pass before (see
    /// [`RunService::rerun_request`](super::RunService::rerun_request)).
    pub failed_only: Option<FailedOnly>,
}

impl RunRequest {
    /// A request to run `workflow` with no config, tags or secrets.
    #[must_use]
    pub fn new(workflow: TestWorkflow) -> Self {
        RunRequest {
            source: workflow
                .metadata
                .name
                .clone()
                .unwrap_or_else(|| "workflow".to_owned()),
            workflow,
            config: BTreeMap::new(),
            sensitive: Vec::new(),
            tags: BTreeMap::new(),
            failed_only: None,
        }
    }

    /// A request to run `resolved` (a workflow resolved with the config
    /// values a user gave, `passed`): its resolved config, and the real
    /// values of its `sensitive` parameters among `passed` to mask. What
    /// every frontend that takes config as JSON (the API, the agent's
    /// TestWorkflowExecutions) starts from.
    #[must_use]
    pub fn resolved<'a>(
        resolved: &crate::ResolvedWorkflow,
        passed: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> Self {
        let passed = passed.into_iter().map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        });
        let sensitive =
            crate::engine::mask::sensitive_config_values(&resolved.workflow().spec.config, passed);
        RunRequest::new(resolved.workflow().clone())
            .with_config(
                resolved
                    .config()
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
            )
            .with_sensitive(sensitive)
    }

    /// Runs with these config values.
    #[must_use]
    pub fn with_config(mut self, config: BTreeMap<String, Value>) -> Self {
        self.config = config;
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Masks these values (real values of sensitive parameters).
    #[must_use]
    pub fn with_sensitive(mut self, values: Vec<String>) -> Self {
        self.sensitive = values;
        self
    }

    /// Says where the workflow came from, for messages.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }
}

/// A planned run, not started and not recorded: see its plan, give it the
/// workflows its `execute` steps may run, then
/// [`launch`](super::RunService::launch) it.
pub struct PreparedRun {
    pub(crate) request: RunRequest,
    /// The workflow's name in the store (`run` when it has none).
    pub(crate) workflow_name: String,
    pub(crate) plan: Plan,
    pub(crate) notes: Vec<String>,
    /// The item durations the split used (kept with the execution).
    pub(crate) durations: BTreeMap<String, f64>,
    /// Every value to mask: sensitive config and secrets.
    pub(crate) secrets: Vec<String>,
    pub(crate) catalog: Option<Arc<dyn WorkflowCatalog>>,
    /// The workflow's labels (`workflow.labels`).
    pub(crate) labels: BTreeMap<String, String>,
}

impl std::fmt::Debug for PreparedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRun")
            .field("workflow", &self.workflow_name)
            .field("source", &self.request.source)
            .field("notes", &self.notes)
            .field("durations", &self.durations.len())
            .finish_non_exhaustive()
    }
}

impl PreparedRun {
    /// The plan that will run (with `rerun --failed-only`, narrowed).
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One line per `parallel` block split by recorded durations (how it
    /// was split), or narrowed by a failed-only rerun (what runs again).
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The request it was prepared from.
    #[must_use]
    pub fn request(&self) -> &RunRequest {
        &self.request
    }

    /// The item durations its shards were split with (item → seconds).
    #[must_use]
    pub fn shard_durations(&self) -> &BTreeMap<String, f64> {
        &self.durations
    }

    /// Whether a step runs other workflows (`execute`): such a run needs a
    /// [`WorkflowCatalog`] ([`PreparedRun::with_catalog`] or the service's).
    #[must_use]
    pub fn uses_execute(&self) -> bool {
        self.plan
            .root
            .any_operation(&|operation| matches!(operation, Operation::Execute(_)))
    }

    /// `execute` steps find their workflows in `catalog` (instead of the
    /// service's own).
    #[must_use]
    pub fn with_catalog(mut self, catalog: Arc<dyn WorkflowCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }
}
