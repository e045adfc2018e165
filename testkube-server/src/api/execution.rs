//! Executions as the API shows them: the summary (lists, a started run)
//! and the full form (one execution), with Testkube's field names, built
//! from stored records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use testkube_core::model::{LatestExecutionResult, StepResult};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{
    ExecutionRecord, OutputRecord, StepRecord, TestCaseRecord, TestCaseStatus,
};

use super::ROOT_WORKER;

/// An execution: the summary in lists, and the full form (`signature`,
/// `output`, `resolvedWorkflow`, steps and test totals) for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// The execution id.
    pub id: String,
    /// Its group (the id: every execution is its own group here).
    pub group_id: String,
    /// `WORKFLOW-N`.
    pub name: String,
    /// Its number for its workflow.
    pub number: u64,
    /// When it was asked for.
    pub scheduled_at: DateTime<Utc>,
    /// When its status last changed.
    pub status_at: DateTime<Utc>,
    /// Its status and times.
    pub result: ResultJson,
    /// The workflow it ran.
    pub workflow: WorkflowRef,
    /// Its tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Who asked for it, when known (kept while the server runs it).
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_context: Option<Value>,
    /// The config values it ran with (sensitive ones masked).
    #[serde(default)]
    pub config_params: BTreeMap<String, ConfigParam>,
    /// Why it ended as it did (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The root worker's steps, in order (full form only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Vec<Signature>>,
    /// The outputs its steps wrote (full form only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Vec<Output>>,
    /// The resolved workflow it ran (full form only).
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_workflow: Option<Value>,
    /// Test totals from its reports (ours; full form only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    /// Every step of every worker (ours; full form only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_results: Option<Vec<StepJson>>,
}

/// `execution.result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultJson {
    /// The execution's status (`queued`, `running`, `passed`, `failed`, `aborted`...).
    pub status: String,
    /// The status it is expected to end with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_status: Option<String>,
    /// When it was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<DateTime<Utc>>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Time spent running, as Go prints it (`1m2.5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Time from queued to finished.
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
    /// Preparing the workspace and the workflow's `content`.
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<StepResult>,
    /// The root worker's steps by ref (full form only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<BTreeMap<String, StepState>>,
}

impl ResultJson {
    fn of(result: LatestExecutionResult, initialization: Option<StepResult>) -> Self {
        ResultJson {
            initialization,
            ..ResultJson::from(result)
        }
    }
}

impl From<LatestExecutionResult> for ResultJson {
    fn from(result: LatestExecutionResult) -> Self {
        ResultJson {
            status: result.status.as_str().to_owned(),
            predicted_status: result.predicted_status.map(|s| s.as_str().to_owned()),
            queued_at: result.queued_at,
            started_at: result.started_at,
            finished_at: result.finished_at,
            duration: result.duration,
            total_duration: result.total_duration,
            duration_ms: result.duration_ms,
            total_duration_ms: result.total_duration_ms,
            paused_ms: result.paused_ms,
            initialization: None,
            steps: None,
        }
    }
}

/// `result.steps[ref]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    /// The step's status.
    pub status: String,
    /// The exit code of its last command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it ended as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl StepState {
    fn of(step: &StepRecord) -> Self {
        StepState {
            status: step.status.as_str().to_owned(),
            exit_code: step.exit_code,
            error_message: step.message.clone(),
            started_at: step.started_at,
            finished_at: step.finished_at,
        }
    }
}

/// One step of one worker (ours: `stepResults[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepJson {
    /// The worker path (`root`, `root/tests/2`).
    pub worker: String,
    /// The step's ref.
    #[serde(rename = "ref")]
    pub step: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Its state.
    #[serde(flatten)]
    pub state: StepState,
}

/// `execution.workflow`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRef {
    /// The workflow's name.
    pub name: String,
    /// Its namespace, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `execution.configParams[key]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigParam {
    /// The value it ran with, as text.
    pub value: String,
}

/// `execution.signature[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// The step's ref.
    #[serde(rename = "ref")]
    pub step: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `execution.output[]`: an output a step wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// The step's ref.
    #[serde(rename = "ref")]
    pub step: String,
    /// The output's key.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl Output {
    /// The API form of a stored output.
    #[must_use]
    pub fn of(output: &OutputRecord) -> Self {
        Output {
            step: output.step.clone(),
            name: output.key.clone(),
            value: output.value.clone(),
        }
    }
}

/// Test totals (ours: `tests`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestCounts {
    /// Test cases in all reports.
    pub tests: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Errored.
    pub errored: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed, then passed on a rerun.
    pub flaky: u64,
}

impl TestCounts {
    /// The totals of `cases`.
    #[must_use]
    pub fn of(cases: &[TestCaseRecord]) -> Self {
        let mut counts = TestCounts::default();
        for case in cases {
            counts.tests += 1;
            match case.status {
                TestCaseStatus::Passed => counts.passed += 1,
                TestCaseStatus::Failed => counts.failed += 1,
                TestCaseStatus::Errored => counts.errored += 1,
                TestCaseStatus::Skipped => counts.skipped += 1,
                TestCaseStatus::Flaky => counts.flaky += 1,
            }
        }
        counts
    }
}

/// What a stored execution adds to its summary in the full form.
#[derive(Debug, Default)]
pub struct Details {
    /// Its steps, every worker's.
    pub steps: Vec<StepRecord>,
    /// Its outputs.
    pub outputs: Vec<OutputRecord>,
    /// Its test cases.
    pub cases: Vec<TestCaseRecord>,
}

impl Execution {
    /// The summary of a stored execution.
    #[must_use]
    pub fn summary(record: &ExecutionRecord) -> Self {
        let metadata = record.snapshot.get("metadata");
        let strings = |field: &str| -> BTreeMap<String, String> {
            metadata
                .and_then(|meta| meta.get(field))
                .and_then(|value| serde_json::from_value(value.clone()).ok())
                .unwrap_or_default()
        };
        let status_at = record
            .finished_at
            .or(record.started_at)
            .unwrap_or(record.scheduled_at);
        Execution {
            id: record.id.clone(),
            group_id: record.id.clone(),
            name: record.name.clone(),
            number: record.number,
            scheduled_at: record.scheduled_at,
            status_at,
            result: ResultJson::of(
                LatestExecutionResult::from_record(record),
                record.result.initialization.clone(),
            ),
            workflow: WorkflowRef {
                name: record.workflow.clone(),
                namespace: metadata
                    .and_then(|meta| meta.get("namespace"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                labels: strings("labels"),
                annotations: strings("annotations"),
            },
            tags: record.tags.clone(),
            running_context: None,
            config_params: record
                .config
                .iter()
                .map(|(key, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), ConfigParam { value: text })
                })
                .collect(),
            message: record.message.clone(),
            signature: None,
            output: None,
            resolved_workflow: None,
            tests: None,
            step_results: None,
        }
    }

    /// The full form of a stored execution.
    #[must_use]
    pub fn full(record: &ExecutionRecord, details: &Details) -> Self {
        let mut execution = Execution::summary(record);
        let root: Vec<&StepRecord> = details
            .steps
            .iter()
            // The worker's own root group is the execution, not a step.
            .filter(|step| step.worker == ROOT_WORKER && step.step != ROOT_WORKER)
            .collect();
        execution.result.steps = Some(
            root.iter()
                .map(|step| (step.step.clone(), StepState::of(step)))
                .collect(),
        );
        execution.signature = Some(
            root.iter()
                .map(|step| Signature {
                    step: step.step.clone(),
                    name: step.name.clone(),
                })
                .collect(),
        );
        execution.output = Some(details.outputs.iter().map(Output::of).collect());
        execution.resolved_workflow = Some(record.snapshot.clone());
        execution.tests = Some(TestCounts::of(&details.cases));
        execution.step_results = Some(
            details
                .steps
                .iter()
                .map(|step| StepJson {
                    worker: step.worker.clone(),
                    step: step.step.clone(),
                    name: step.name.clone(),
                    attempt: step.attempt,
                    state: StepState::of(step),
                })
                .collect(),
        );
        execution
    }
}

/// `{results, passed, failed, queued, running}` of an execution list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Every execution counted.
    pub results: u64,
    /// Passed.
    pub passed: u64,
    /// Failed (`failed`, `aborted`, `canceled`).
    pub failed: u64,
    /// Waiting to start.
    pub queued: u64,
    /// Running (or paused).
    pub running: u64,
}

impl Totals {
    /// Counts `records` in.
    #[must_use]
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ExecutionRecord>) -> Self {
        let mut totals = Totals::default();
        for record in records {
            totals.add(record.status, 1);
        }
        totals
    }

    /// The totals of counts by status (`ResultStore::count_executions`).
    #[must_use]
    pub fn of_counts<'a>(counts: impl IntoIterator<Item = (&'a ExecutionStatus, &'a u64)>) -> Self {
        let mut totals = Totals::default();
        for (status, count) in counts {
            totals.add(*status, *count);
        }
        totals
    }

    fn add(&mut self, status: ExecutionStatus, count: u64) {
        use ExecutionStatus as S;
        self.results += count;
        match status {
            S::Passed => self.passed += count,
            S::Failed | S::Aborted | S::Canceled => self.failed += count,
            S::Queued | S::Assigned => self.queued += count,
            _ => self.running += count,
        }
    }
}

/// `GET /v1/test-workflow-executions`: `{totals, filtered, results}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionList {
    /// Counts over every execution (of the workflow, under a workflow's path).
    pub totals: Totals,
    /// Counts over those the filters kept.
    pub filtered: Totals,
    /// The page asked for, newest first.
    pub results: Vec<Execution>,
}
