//! `TestWorkflowExecution`: a document whose creation starts a run.

use chrono::{DateTime, SubsecRound, Utc};
use indexmap::IndexMap;
use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::workflow::Target;
use crate::status::StepStatus;

/// A `TestWorkflowExecution` document: "run this workflow with these values".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestWorkflowExecution {
    /// `testworkflows.testkube.io/v1`.
    pub api_version: String,
    /// `TestWorkflowExecution`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Which workflow to run and how.
    #[serde(default)]
    pub spec: ExecutionSpec,
    /// Observed state written by a controller; kept as-is, never read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `TestWorkflowExecution.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSpec {
    /// The workflow to run (`{name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_workflow: Option<LocalObjectReference>,
    /// Values for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_request: Option<ExecutionRequest>,
}

/// `spec.executionRequest`: per-run values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRequest {
    /// Custom execution name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Config values, cast to the parameters' types.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, serde_json::Value>,
    /// Name of the execution document that started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_workflow_execution_name: Option<String>,
    /// Do not call webhooks for this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_webhooks: Option<bool>,
    /// Tags attached to the execution.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tags: IndexMap<String, String>,
    /// Who or what started the run; kept as-is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_context: Option<serde_json::Value>,
    /// Which runner should execute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// `TestWorkflowResult`: what an execution produced beyond its steps, in
/// Testkube's shape (JSON `result`). Only `initialization` is kept here;
/// steps, outputs and test results have records of their own.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionResult {
    /// Preparing the workspace and the workflow's own `content` (a git
    /// checkout, tarballs, files): what Testkube's init container does
    /// before the first step. A failure here explains a run that ended
    /// before any step ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<StepResult>,
}

/// `TestWorkflowStepResult`: how one phase of an execution went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    /// `running` while it runs, then `passed` or `failed`.
    pub status: StepStatus,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// When it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<DateTime<Utc>>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl StepResult {
    /// A phase that was asked for and started at `at` (times are kept to
    /// the millisecond, as every stored time).
    #[must_use]
    pub fn started(at: DateTime<Utc>) -> Self {
        let at = at.trunc_subsecs(3);
        StepResult {
            status: StepStatus::Running,
            error_message: None,
            queued_at: Some(at),
            started_at: Some(at),
            finished_at: None,
        }
    }

    /// Records a status change at `at` (a finished status ends it; a
    /// message replaces the one before).
    pub fn change(&mut self, status: StepStatus, at: DateTime<Utc>, message: Option<String>) {
        self.status = status;
        if status.is_finished() {
            self.finished_at = Some(at.trunc_subsecs(3));
        }
        if message.is_some() {
            self.error_message = message;
        }
    }

    /// How long it took, once finished.
    #[must_use]
    pub fn duration(&self) -> Option<chrono::TimeDelta> {
        Some(self.finished_at? - self.started_at?)
    }
}
