//! `execute`: a step that runs other workflows as child executions.

use indexmap::IndexMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

use super::parallel::WorkerStrategy;
use super::values::{DynamicList, IntOrExpr};
use super::workflow::Target;

/// `execute {parallelism, async, workflows}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Execute {
    /// How many children run at once (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<IntOrExpr>,
    /// Only schedule the children; do not wait for their results.
    #[serde(rename = "async", default, skip_serializing_if = "Option::is_none")]
    pub is_async: Option<bool>,
    /// Workflows to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<ExecuteWorkflow>,
}

/// `execute.workflows[]`: a workflow (by name or label selector) to run,
/// optionally fanned out by matrix/shards.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecuteWorkflow {
    /// Workflow name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Run every workflow whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Name to refer to this execution by (default: the workflow name).
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Description of the child execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One child per combination.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub matrix: IndexMap<String, DynamicList>,
    /// Fixed number of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrExpr>,
    /// Upper bound of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<IntOrExpr>,
    /// Lists split across the children.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub shards: IndexMap<String, DynamicList>,
    /// Unique execution name to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_name: Option<String>,
    /// Files packed from this workflow and served to the child, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tarball: IndexMap<String, TarballRequest>,
    /// Config values passed to the child.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, serde_json::Value>,
    /// Which runner should execute the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

impl ExecuteWorkflow {
    /// The fields that decide how many children run.
    pub fn strategy(&self) -> WorkerStrategy<'_> {
        WorkerStrategy {
            matrix: &self.matrix,
            shards: &self.shards,
            count: self.count.as_ref(),
            max_count: self.max_count.as_ref(),
        }
    }
}

/// `execute.workflows[].tarball.<name>`: files packed for a child execution.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TarballRequest {
    /// Directory to pack from.
    pub from: String,
    /// Glob patterns to pack (default: everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<DynamicList>,
}
