//! `TestWorkflowExecution`: a document whose creation starts a run.

use chrono::{DateTime, SubsecRound, Utc};
use indexmap::IndexMap;
use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::workflow::Target;
use crate::status::{ExecutionStatus, StepStatus};

/// A `TestWorkflowExecution` document: "run this workflow with these values".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Observed state, written by the controller that runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExecutionDocumentStatus>,
}

/// `TestWorkflowExecution.status`, in Testkube's shape: the run the
/// document started last, the `metadata.generation` it was started for (a
/// controller starts one run per generation), and why it could not start.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDocumentStatus {
    /// The run started last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_execution: Option<LatestExecution>,
    /// The `metadata.generation` the latest run was started for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Why the run could not be started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `status.latestExecution`: the summary of one run, as Testkube writes it
/// (the fields its tools read; the resolved workflow and step signatures
/// stay in the result store).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LatestExecution {
    /// Execution id.
    pub id: String,
    /// Execution name (`<workflow>-<number>`).
    pub name: String,
    /// Namespace the run happened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Sequence number of the run within its workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// When the run was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When its status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_at: Option<DateTime<Utc>>,
    /// How it went so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<LatestExecutionResult>,
    /// Tags of the run.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tags: IndexMap<String, String>,
    /// Whether webhooks were skipped for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_webhooks: Option<bool>,
    /// The execution document that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_workflow_execution_name: Option<String>,
}

/// `status.latestExecution.result`: the run's status and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LatestExecutionResult {
    /// The run's status.
    pub status: ExecutionStatus,
    /// The status it is expected to end with, as far as known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_status: Option<ExecutionStatus>,
    /// When it was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<DateTime<Utc>>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Time spent running, e.g. `1m2.5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Time from queued to finished, e.g. `1m4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<String>,
    /// `duration` in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// `totalDuration` in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration_ms: Option<i64>,
    /// Time spent paused, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_ms: Option<i64>,
}

impl LatestExecutionResult {
    /// A run that was queued at `at` and is expected to pass.
    #[must_use]
    pub fn queued(at: DateTime<Utc>) -> Self {
        LatestExecutionResult {
            status: ExecutionStatus::Queued,
            predicted_status: Some(ExecutionStatus::Passed),
            queued_at: Some(at.trunc_subsecs(3)),
            started_at: None,
            finished_at: None,
            duration: None,
            total_duration: None,
            duration_ms: None,
            total_duration_ms: None,
            paused_ms: None,
        }
    }

    /// The result of a stored execution as it stands (a running one has no
    /// end and no durations yet).
    #[must_use]
    pub fn from_record(record: &crate::store::ExecutionRecord) -> Self {
        let mut result = LatestExecutionResult::queued(record.scheduled_at);
        result.status = record.status;
        result.started_at = record.started_at.map(|at| at.trunc_subsecs(3));
        if record.status.is_finished() {
            let finished_at = record.finished_at.unwrap_or(record.scheduled_at);
            let duration_ms = record
                .started_at
                .map(|started| (finished_at - started).num_milliseconds().max(0));
            result.end(record.status, record.started_at, finished_at, duration_ms);
        }
        result
    }

    /// Records the end of the run: its status, times and durations (total
    /// from when it was queued).
    pub fn end(
        &mut self,
        status: ExecutionStatus,
        started_at: Option<DateTime<Utc>>,
        finished_at: DateTime<Utc>,
        duration_ms: Option<i64>,
    ) {
        let finished_at = finished_at.trunc_subsecs(3);
        self.status = status;
        self.predicted_status = Some(status);
        self.started_at = started_at.map(|at| at.trunc_subsecs(3)).or(self.started_at);
        self.finished_at = Some(finished_at);
        if let Some(duration_ms) = duration_ms {
            self.duration_ms = Some(duration_ms);
            self.duration = Some(go_duration(duration_ms));
        }
        if let Some(queued) = self.queued_at {
            let total = (finished_at - queued).num_milliseconds().max(0);
            self.total_duration_ms = Some(total);
            self.total_duration = Some(go_duration(total));
        }
    }
}

/// A duration as Go prints it (`1m2.5s`, `350ms`), as Testkube writes them.
#[must_use]
pub fn go_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let millis = ms % 60_000;
    let seconds = if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        let text = format!("{}.{:03}", millis / 1000, millis % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// `TestWorkflowExecution.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(350), "350ms");
        assert_eq!(go_duration(1000), "1s");
        assert_eq!(go_duration(62_500), "1m2.5s");
        assert_eq!(go_duration(3_723_040), "1h2m3.04s");
    }
}
