//! The result store plugin: where executions, their steps, logs, outputs and
//! test results are kept once the engine has produced them.
//!
//! Why a trait in the sans-IO core: the CLI keeps history in an embedded
//! SQLite file today, `testkube_results::store::PostgresStore` keeps it in
//! PostgreSQL for processes sharing one history, and embedders may wrap
//! either (e.g. to forward finished executions to a webhook). Everything that
//! reads history (`get`, `logs`, `rerun`, the shard planner's recorded
//! durations) talks to [`ResultStore`] only, so it works the same with every
//! backend. Implementations live elsewhere (`testkube_results::store`) and
//! must pass the conformance suite there.
//!
//! Times are UTC [`chrono`] values, kept to the millisecond; statuses are the format's
//! ([`ExecutionStatus`], [`StepStatus`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{ExecutionResult, StepResult};
use crate::status::{ExecutionStatus, StepStatus};

/// The most bytes one stored log chunk holds, and one log event carries: executors read a step's
/// output in pieces of at most this size, and a store splits a longer appended chunk into pieces
/// of this size (in order). So a page of `limit` chunks ([`LogFilter::limit`]) is at most
/// `limit` × this many bytes, and a reader of a 1 GB log never holds more than one page.
pub const MAX_LOG_CHUNK: usize = 64 * 1024;

/// Keeps executions and everything they produced.
///
/// Every method is safe to call from several tasks at once; writes that
/// belong together (an execution and its number, a batch of test cases) are
/// atomic.
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Records a new execution and assigns it the next number of its
    /// workflow (1 for the first), atomically, so concurrent creations never
    /// share a number. Its name is `WORKFLOW-N` unless one is given.
    async fn create_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError>;

    /// Changes an execution's status. `running` sets its start time (once);
    /// a finished status sets its finish time.
    async fn update_status(&self, id: &str, update: StatusUpdate) -> Result<(), StoreError>;

    /// Replaces the execution's tags (`PATCH .../tags` of the API; a run's
    /// tags are otherwise set when it is created).
    async fn update_tags(
        &self,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError>;

    /// Replaces the execution's `result.initialization` (preparing its
    /// workspace and the workflow's own `content`).
    async fn record_initialization(&self, id: &str, result: &StepResult) -> Result<(), StoreError>;

    /// Inserts or replaces the state of one step of one worker.
    async fn upsert_step(&self, execution: &str, step: StepRecord) -> Result<(), StoreError>;

    /// Appends a chunk of a step's output; chunks read back in the order they
    /// were appended, one longer than [`MAX_LOG_CHUNK`] as several (an empty
    /// one as none).
    async fn append_log(
        &self,
        execution: &str,
        worker: &str,
        step: &str,
        chunk: &[u8],
    ) -> Result<(), StoreError>;

    /// Appends many chunks (of any steps and workers) at once, all or none, in
    /// slice order: what a recorder batching a busy step's output calls, so
    /// that a megabyte of small writes costs one transaction, not thousands.
    /// Chunks longer than [`MAX_LOG_CHUNK`] are split as in [`append_log`](Self::append_log).
    async fn append_logs(&self, execution: &str, chunks: &[LogChunk]) -> Result<(), StoreError>;

    /// Records step outputs (a key written again replaces its value).
    async fn record_outputs(
        &self,
        execution: &str,
        outputs: &[OutputRecord],
    ) -> Result<(), StoreError>;

    /// Records test-case results parsed from reports, all or none.
    async fn record_test_cases(
        &self,
        execution: &str,
        cases: &[TestCaseRecord],
    ) -> Result<(), StoreError>;

    /// One execution by id.
    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError>;

    /// One execution by id or, when no id matches, by name (`WORKFLOW-N`, or
    /// the name it was given; the newest when several share it): what users
    /// type on the command line.
    async fn find_execution(&self, id_or_name: &str) -> Result<ExecutionRecord, StoreError>;

    /// Executions matching `filter`, newest first.
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// How many executions (of `workflow`, when given) are in each status;
    /// statuses without any are left out. What a list's totals read,
    /// without reading the executions.
    async fn count_executions(
        &self,
        workflow: Option<&str>,
    ) -> Result<BTreeMap<ExecutionStatus, u64>, StoreError>;

    /// The steps of an execution, in the order they were first recorded.
    async fn steps(&self, execution: &str) -> Result<Vec<StepRecord>, StoreError>;

    /// The log chunks of an execution in append order, optionally of one
    /// step and/or worker, after the first [`LogFilter::skip`] and at most
    /// [`LogFilter::limit`] of them. Each is at most [`MAX_LOG_CHUNK`] bytes:
    /// read a long log a page at a time (`skip` and `limit`), never whole.
    async fn logs(&self, execution: &str, filter: &LogFilter) -> Result<Vec<LogChunk>, StoreError>;

    /// The outputs of an execution.
    async fn outputs(&self, execution: &str) -> Result<Vec<OutputRecord>, StoreError>;

    /// The test cases of an execution, in the order they were recorded.
    async fn test_cases(&self, execution: &str) -> Result<Vec<TestCaseRecord>, StoreError>;

    /// Records files collected as artifacts, all or none. The same file
    /// (worker, step and path) recorded again replaces its entry.
    async fn record_artifacts(
        &self,
        execution: &str,
        artifacts: &[ArtifactRecord],
    ) -> Result<(), StoreError>;

    /// The artifacts of an execution, in the order they were first recorded.
    async fn artifacts(&self, execution: &str) -> Result<Vec<ArtifactRecord>, StoreError>;

    /// For balancing shards: the latest recorded duration of every test item
    /// (by file, class and name) seen in earlier executions of `workflow`.
    ///
    /// A case listed several times by the worker that recorded it last
    /// (parameterized cases sharing a name, reruns reported as cases of
    /// their own) is the sum of those runs: each took time. Skipped cases
    /// say nothing about how long a test takes and are left out.
    async fn item_durations(&self, workflow: &str) -> Result<Vec<ItemDuration>, StoreError>;

    /// Marks executions left `queued` or `running` (or another unfinished
    /// status) by a process that died as `aborted`, keeping everything they
    /// stored. Call it at startup, before creating executions. Returns the
    /// ids it marked.
    async fn recover_abandoned(&self) -> Result<Vec<String>, StoreError>;

    /// Takes over the unfinished executions of a process that died, for an
    /// engine that continues them (see `RunService::resume`): each becomes
    /// this process's, as if it had created it, and keeps its status.
    /// Call it at startup instead of [`recover_abandoned`](Self::recover_abandoned).
    /// Returns their ids, oldest first.
    async fn claim_abandoned(&self) -> Result<Vec<String>, StoreError>;
}

/// What is known about an execution before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewExecution {
    /// The unique id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The display name; `WORKFLOW-N` when `None`.
    pub name: Option<String>,
    /// The initial status (usually `queued`).
    pub status: ExecutionStatus,
    /// When it was scheduled.
    pub scheduled_at: DateTime<Utc>,
    /// The resolved workflow it runs, to show and rerun it later.
    pub snapshot: serde_json::Value,
    /// The resolved config values.
    pub config: BTreeMap<String, serde_json::Value>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The recorded item durations (item → seconds) its `parallel` blocks
    /// were split into shards with: what `rerun --failed-only` plans with,
    /// so each worker index holds the same shard again. Empty when no
    /// block was balanced by history.
    #[serde(default)]
    pub shard_durations: BTreeMap<String, f64>,
}

/// A stored execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// The unique id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// Its number for the workflow (1 for the first).
    pub number: u64,
    /// The display name (`WORKFLOW-N` by default).
    pub name: String,
    /// The current status.
    pub status: ExecutionStatus,
    /// Why it ended as it did, when known.
    pub message: Option<String>,
    /// When it was scheduled.
    pub scheduled_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The resolved workflow.
    pub snapshot: serde_json::Value,
    /// The resolved config values.
    pub config: BTreeMap<String, serde_json::Value>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The item durations its shards were split with (see
    /// [`NewExecution::shard_durations`]).
    #[serde(default)]
    pub shard_durations: BTreeMap<String, f64>,
    /// What it produced beyond its steps (`result.initialization`).
    #[serde(default)]
    pub result: ExecutionResult,
}

/// A status change of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The new status.
    pub status: ExecutionStatus,
    /// When it changed.
    pub at: DateTime<Utc>,
    /// Why, when known (kept when `None`).
    pub message: Option<String>,
}

/// The state of one step of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The worker path (`root`, `root/tests/2`).
    pub worker: String,
    /// The step id (unique within the worker).
    pub step: String,
    /// The display name.
    pub name: Option<String>,
    /// Its status.
    pub status: StepStatus,
    /// When it first started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// The exit code of its last command.
    pub exit_code: Option<i32>,
    /// Why it ended as it did, when known.
    pub message: Option<String>,
}

/// A piece of a step's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// The worker path.
    pub worker: String,
    /// The step id.
    pub step: String,
    /// The bytes, as written.
    pub data: Vec<u8>,
}

/// Which logs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this step id.
    pub step: Option<String>,
    /// Only this worker path.
    pub worker: Option<String>,
    /// Leaves out the first this many matching chunks: a follower (`logs -f`)
    /// reads only what was appended since its last read.
    pub skip: u64,
    /// At most this many chunks (all when `None`): with `skip`, reads a long
    /// log page by page instead of all at once.
    pub limit: Option<u64>,
}

/// One output a step wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The worker path.
    pub worker: String,
    /// The step id.
    pub step: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A file a step left behind and the run kept (`artifacts.paths`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRecord {
    /// The worker path (`root`, `root/tests/2`).
    pub worker: String,
    /// The id of the step that collected it.
    pub step: String,
    /// Its path relative to the artifacts' working directory (`reports/junit.xml`).
    pub path: String,
    /// Where the kept copy is: an absolute local path, or a URL for remote storage.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
}

/// How a test case ended (the normalized statuses of test reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestCaseStatus {
    /// Passed at the first attempt.
    Passed,
    /// An assertion failed.
    Failed,
    /// An unexpected error.
    Errored,
    /// Not run.
    Skipped,
    /// Failed, then passed on a rerun.
    Flaky,
}

impl TestCaseStatus {
    /// The lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TestCaseStatus::Passed => "passed",
            TestCaseStatus::Failed => "failed",
            TestCaseStatus::Errored => "errored",
            TestCaseStatus::Skipped => "skipped",
            TestCaseStatus::Flaky => "flaky",
        }
    }

    /// The status named `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            TestCaseStatus::Passed,
            TestCaseStatus::Failed,
            TestCaseStatus::Errored,
            TestCaseStatus::Skipped,
            TestCaseStatus::Flaky,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }
}

/// One test case result from a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCaseRecord {
    /// The worker that produced the report.
    pub worker: String,
    /// The suite.
    pub suite: String,
    /// The class, when the report names one.
    pub class: Option<String>,
    /// The test's name.
    pub name: String,
    /// The test file, when known.
    pub file: Option<String>,
    /// How it ended.
    pub status: TestCaseStatus,
    /// How long it took, in seconds.
    pub duration_secs: Option<f64>,
    /// Why it did not pass.
    pub message: Option<String>,
}

/// Which executions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only this workflow's.
    pub workflow: Option<String>,
    /// Only those in this status.
    pub status: Option<ExecutionStatus>,
    /// At most this many (the newest).
    pub limit: Option<u32>,
    /// Leaves out this many of the newest first (with `limit`: a page).
    pub skip: u64,
}

/// The latest recorded duration of one test item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDuration {
    /// The test file, when known.
    pub file: Option<String>,
    /// The class, when known.
    pub class: Option<String>,
    /// The test's name.
    pub name: String,
    /// Seconds: every run of the case listed by the newest worker (of the
    /// newest execution) that recorded it, summed.
    pub duration_secs: f64,
    /// The name of the execution the seconds come from (`WORKFLOW-N`).
    pub execution: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No execution has this id.
    #[error("no execution `{0}`")]
    NotFound(String),
    /// An execution with this id exists already.
    #[error("execution `{0}` exists already")]
    Duplicate(String),
    /// The store could not be opened, migrated or reached.
    #[error("cannot open the result store at {location}: {message}")]
    Open {
        /// Where the store is.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// The backend failed.
    #[error("result store: {0}")]
    Backend(String),
    /// Stored data could not be read back (a newer or damaged store).
    #[error("result store holds unreadable data: {0}")]
    Corrupt(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_case_status_names_round_trip() {
        for status in [
            TestCaseStatus::Passed,
            TestCaseStatus::Failed,
            TestCaseStatus::Errored,
            TestCaseStatus::Skipped,
            TestCaseStatus::Flaky,
        ] {
            assert_eq!(TestCaseStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(TestCaseStatus::from_name("PASSED"), None);
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn takes(_: Option<&dyn ResultStore>) {}
        takes(None);
    }
}
