//! `TestWorkflowExecution`: a document whose creation starts a run.

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::workflow::Target;

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
