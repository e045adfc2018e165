//! The execution plan: what a resolved workflow will do, as data.
//!
//! [`plan_workflow`] compiles a resolved [`TestWorkflow`] (templates and
//! config already applied by [`crate::resolve`]) into a [`Plan`]: the tree of
//! steps with their effective container settings, conditions, retries and
//! timeouts, the operations of each step in the order they happen, and every
//! fan-out (`parallel` workers, `services` instances, `execute` children)
//! expanded into numbered workers with their worker variables substituted.
//! The engine executes a plan; `testkube plan` prints one. Nothing here runs
//! anything, and the same workflow always gives the same plan.
//!
//! Step ids: an explicit `id` is kept; otherwise the id is derived from the
//! name as Testkube does (lower-cased, every run of other characters becomes
//! one `_`, trimmed: `Run e2e tests!` → `run_e2e_tests`); an unnamed step
//! gets `<parent id>_<position>` (1-based, among its siblings). A derived id
//! already taken in the same namespace gets `_1`, `_2`, ... appended.
//! Explicit ids are reserved first, so a derived id never takes one. The
//! workflow root is `root`; each parallel worker is its own namespace (its
//! own workflow), its root also being `root`.

mod compile;
mod fanout;
mod ids;
mod runtime;

pub(crate) use ids::derive_step_id;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::model::{
    Artifacts, ContainerConfig, Content, EnvVar, Fetch, JobConfig, Parallel, PodConfig,
    ServiceRestartPolicy, TestWorkflow, Transfer,
};

pub use compile::plan_workflow;
pub use runtime::decide_workers;

/// Looks up the recorded seconds of one `shards` item.
type DurationLookup = std::sync::Arc<dyn Fn(&str) -> Option<f64> + Send + Sync>;

/// Options for [`plan_workflow`].
#[derive(Clone, Default)]
pub struct PlanOptions {
    durations: Option<DurationLookup>,
    /// Every known duration, copied into blocks whose items are only known
    /// at run time (a lookup cannot be listed).
    run_time_durations: Option<std::sync::Arc<std::collections::BTreeMap<String, f64>>>,
}

impl std::fmt::Debug for PlanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanOptions")
            .field("durations", &self.durations.as_ref().map(|_| "<lookup>"))
            .field(
                "run_time_durations",
                &self.run_time_durations.as_ref().map(|map| map.len()),
            )
            .finish()
    }
}

impl PlanOptions {
    /// Default options: no duration history.
    #[must_use]
    pub fn new() -> Self {
        PlanOptions::default()
    }

    /// Durations of `shards` items (item text → seconds), for blocks with
    /// `balance: {by: duration}`: from previous reports, or the result store.
    #[must_use]
    pub fn with_durations(
        mut self,
        lookup: impl Fn(&str) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        self.durations = Some(std::sync::Arc::new(lookup));
        self
    }

    /// Durations from a map of item → seconds. The map also serves blocks
    /// whose items are only known at run time (see
    /// [`PlanOptions::with_run_time_durations`]).
    #[must_use]
    pub fn with_duration_map(self, map: std::collections::BTreeMap<String, f64>) -> Self {
        let shared = std::sync::Arc::new(map);
        let lookup = std::sync::Arc::clone(&shared);
        let mut options = self.with_durations(move |item| lookup.get(item).copied());
        options.run_time_durations = Some(shared);
        options
    }

    /// Durations (item → seconds) for `balance: {by: duration}` blocks
    /// whose `shards` are only known at run time (e.g. `glob(...)`): a
    /// lookup given to [`PlanOptions::with_durations`] cannot be listed, so
    /// these are copied into such blocks ([`PlanRunTime::durations`]) and
    /// used when the engine decides their workers. Without them such blocks
    /// use the format's contiguous split.
    #[must_use]
    pub fn with_run_time_durations(mut self, map: std::collections::BTreeMap<String, f64>) -> Self {
        self.run_time_durations = Some(std::sync::Arc::new(map));
        self
    }

    pub(crate) fn run_time_durations(&self) -> std::collections::BTreeMap<String, f64> {
        self.run_time_durations
            .as_deref()
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn duration(&self, item: &str) -> Option<f64> {
        self.durations.as_ref().and_then(|lookup| lookup(item))
    }

    pub(crate) fn has_durations(&self) -> bool {
        self.durations.is_some()
    }
}

/// The execution plan of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The workflow's name.
    pub workflow: String,
    /// Environment variables marked `global`: passed to every container,
    /// service instance and parallel worker of the workflow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_env: Vec<EnvVar>,
    /// Kubernetes pod settings of the workflow's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// Kubernetes Job settings of the workflow's Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobConfig>,
    /// The root step: workflow content and services, then `setup`, `steps`
    /// and `after` as one group.
    pub root: PlanStep,
}

/// One step of the plan, and everything it does, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// The step id (see the module documentation for how it is derived).
    pub id: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the step runs (an expression; default `passed`).
    pub condition: String,
    /// The result is inverted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub negative: bool,
    /// A failure does not fail the parent.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// The step starts paused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Retries of the step's own operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<PlanRetry>,
    /// Maximum time, as written (`1h2m3s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What the step does, in the order it happens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
}

impl PlanStep {
    /// Whether `found` holds for an operation of this step or of any step
    /// below it: sub-steps, parallel workers and the steps of workers only
    /// decided at run time.
    pub fn any_operation(&self, found: &impl Fn(&Operation) -> bool) -> bool {
        self.operations.iter().any(|operation| {
            found(operation)
                || match operation {
                    Operation::Setup { steps } | Operation::Steps { steps } => {
                        steps.iter().any(|step| step.any_operation(found))
                    }
                    Operation::Parallel(block) => {
                        block
                            .workers
                            .iter()
                            .any(|worker| worker.root.any_operation(found))
                            || block
                                .template
                                .as_ref()
                                .is_some_and(|step| step.any_operation(found))
                    }
                    _ => false,
                }
        })
    }
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

/// `retry`: how often and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRetry {
    /// Most retries (an integer, or an expression decided at run time).
    pub count: Value,
    /// Stop retrying when this holds (default `passed`).
    pub until: String,
}

/// One thing a step does. Inside a step they happen in this order: delay,
/// content, services start, setup, run, shell, execute, parallel, steps,
/// services stop, artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Operation {
    /// Wait before anything else.
    Delay {
        /// How long, as written.
        duration: String,
    },
    /// Fetch Git, files and tarballs into the workspace.
    Content {
        /// What to fetch.
        content: Box<Content>,
    },
    /// Start background services and wait until they are ready.
    StartServices {
        /// The services, in the order written.
        services: Vec<PlanService>,
    },
    /// Run the `setup` sub-steps.
    Setup {
        /// The sub-steps.
        steps: Vec<PlanStep>,
    },
    /// Run a container (`run`), optionally with a shell script.
    Run {
        /// The effective container settings.
        container: Box<ContainerConfig>,
        /// The `run.shell` script (run with `set -e`), replacing command and args.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shell: Option<String>,
    },
    /// Run a shell script (`shell`, with `set -e`) in the step's container.
    Shell {
        /// The script.
        script: String,
        /// The effective container settings (command and args are the shell's).
        container: Box<ContainerConfig>,
    },
    /// Run other workflows as child executions.
    Execute(PlanExecute),
    /// Fan out into parallel workers.
    Parallel(Box<PlanParallel>),
    /// Run the sub-steps.
    Steps {
        /// The sub-steps.
        steps: Vec<PlanStep>,
    },
    /// Stop the services started by this step.
    StopServices {
        /// Their names.
        services: Vec<String>,
    },
    /// Collect artifacts.
    Artifacts {
        /// When to collect (default `always`, or the step's own condition).
        condition: String,
        /// What to collect.
        artifacts: Artifacts,
    },
}

/// How many workers a fan-out has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCounts {
    /// `shardCount`.
    pub shard_count: usize,
    /// `matrixCount` (1 with no matrix).
    pub matrix_count: usize,
    /// `count`: `shardCount × matrixCount`.
    pub count: usize,
}

/// What decides the workers of a fan-out: `matrix`, `shards`, `count` and
/// `maxCount` after evaluation (lists, or expressions left for run time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStrategy {
    /// `matrix`: key → list (or an expression decided at run time).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub matrix: IndexMap<String, Value>,
    /// `shards`: key → list (or an expression decided at run time).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub shards: IndexMap<String, Value>,
    /// `count`, when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Value>,
    /// `maxCount`, when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<Value>,
}

impl PlanStrategy {
    /// Whether nothing decides the workers (one worker).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.matrix.is_empty()
            && self.shards.is_empty()
            && self.count.is_none()
            && self.max_count.is_none()
    }
}

/// A `parallel` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanParallel {
    /// How many workers run at once (default 1000).
    pub parallelism: Value,
    /// Stop the other workers after the first failure.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_fast: bool,
    /// All workers start together once every one is ready (`paused: true`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub barrier: bool,
    /// Whether worker logs are kept (expression; default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// What decides the workers.
    #[serde(default, skip_serializing_if = "PlanStrategy::is_empty")]
    pub strategy: PlanStrategy,
    /// The worker counts, when known before the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<WorkerCounts>,
    /// Duration balancing (`balance: {by: duration}`), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<PlanBalance>,
    /// Files packed here and unpacked in every worker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfer: Vec<Transfer>,
    /// Files fetched back from every worker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<Fetch>,
    /// Why the workers can only be decided at run time (e.g. `shards` from
    /// `glob(...)`); `workers` is then empty and `template` shows their steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_run_time: Option<String>,
    /// A note for the reader, e.g. that zero workers make the step pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The workers, by index.
    pub workers: Vec<PlanWorker>,
    /// The steps every worker runs, before worker variables are known (only
    /// when the workers are decided at run time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PlanStep>,
    /// What [`decide_workers`] plans the workers from once the values of
    /// `strategy` are known (only when the workers are decided at run time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_time: Option<Box<PlanRunTime>>,
}

/// A `parallel` block whose workers are decided at run time, kept as
/// written so that the engine plans its workers with the planner's own
/// rules (worker variables, `balance`) once the values are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRunTime {
    /// The block after resolution (config and templates applied).
    pub block: Parallel,
    /// Where the block is in the workflow (`spec.steps[1].parallel`), for
    /// messages.
    pub path: String,
    /// The working directory of the step that holds the block (its
    /// container's `workingDir`): relative paths of `glob()` and `file()`
    /// in the strategy are relative to it (`/data` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The workflow's `global` env variables (every worker gets them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_env: Vec<EnvVar>,
    /// Recorded seconds per item for `balance: {by: duration}` (empty
    /// without `balance` or without durations).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub durations: std::collections::BTreeMap<String, f64>,
}

/// One parallel worker: its place in the fan-out and its own steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanWorker {
    /// `index`: `0..count`.
    pub index: usize,
    /// `shardIndex`: `index % shardCount`.
    pub shard_index: usize,
    /// `matrixIndex`: `index / shardCount`.
    pub matrix_index: usize,
    /// `matrix.<key>`: one value per key.
    pub matrix: IndexMap<String, Value>,
    /// `shard.<key>`: this worker's share of each list.
    pub shard: IndexMap<String, Vec<Value>>,
    /// The worker's description, with worker variables substituted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Predicted seconds of this worker's share (balanced blocks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_seconds: Option<f64>,
    /// The worker's pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// The worker's steps, with worker variables substituted.
    pub root: PlanStep,
}

/// `parallel.balance` (our extension) as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanBalance {
    /// What is balanced on (`duration`).
    pub by: String,
    /// The `shards` key whose items are balanced.
    pub key: String,
    /// `balanced`, or `contiguous` when no duration was known (the format's
    /// own split is used then).
    pub method: String,
    /// Items with a known duration.
    pub known_items: usize,
    /// Items that got the default duration.
    pub defaulted_items: usize,
    /// The duration given to items without history, if one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_seconds: Option<f64>,
    /// Predicted seconds of the slowest shard (unknown without durations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makespan_seconds: Option<f64>,
    /// No split can finish faster: `max(longest item, total / shards)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound_seconds: Option<f64>,
    /// Predicted seconds of each shard (empty without durations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_seconds: Vec<f64>,
    /// Why the split is what it is, for the reader.
    pub note: String,
}

/// A service of a step, with its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanService {
    /// The name (`services.<name>` in expressions).
    pub name: String,
    /// The effective container settings before instance variables.
    pub container: Box<ContainerConfig>,
    /// The shell script the service runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// The readiness probe (Kubernetes `Probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<k8s_openapi::api::core::v1::Probe>,
    /// Maximum time until ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Whether logs are kept (expression; default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// What to do when the container exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ServiceRestartPolicy>,
    /// Content fetched for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Pod settings of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// Files transferred into the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfer: Vec<Transfer>,
    /// What decides the instances.
    #[serde(default, skip_serializing_if = "PlanStrategy::is_empty")]
    pub strategy: PlanStrategy,
    /// The instance counts, when known before the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<WorkerCounts>,
    /// Why the instances can only be decided at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_run_time: Option<String>,
    /// A note for the reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The instances (`services.<name>.<index>`).
    pub instances: Vec<PlanServiceInstance>,
}

/// One service instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanServiceInstance {
    /// `index`.
    pub index: usize,
    /// `shardIndex`.
    pub shard_index: usize,
    /// `matrixIndex`.
    pub matrix_index: usize,
    /// `matrix.<key>`.
    pub matrix: IndexMap<String, Value>,
    /// `shard.<key>`.
    pub shard: IndexMap<String, Vec<Value>>,
    /// The instance description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The instance's container, with instance variables substituted.
    pub container: Box<ContainerConfig>,
    /// The instance's shell script, with instance variables substituted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// An `execute` operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanExecute {
    /// How many children run at once (default 100).
    pub parallelism: Value,
    /// Only schedule the children; do not wait for them (`async`).
    #[serde(default, rename = "async", skip_serializing_if = "is_false")]
    pub is_async: bool,
    /// The workflows to run.
    pub workflows: Vec<PlanExecuteWorkflow>,
}

/// One `execute.workflows[]` entry with its child executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanExecuteWorkflow {
    /// The workflow name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The label selector, when workflows are picked by labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    /// What decides the children.
    #[serde(default, skip_serializing_if = "PlanStrategy::is_empty")]
    pub strategy: PlanStrategy,
    /// The counts, when known before the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<WorkerCounts>,
    /// Why the children can only be decided at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_run_time: Option<String>,
    /// A note for the reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Fields of the entry the plan does not carry (`tarball`, `target`,
    /// `executionName`, `as`): an engine that cannot honour them refuses
    /// the plan rather than ignore them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_planned: Vec<String>,
    /// The child executions.
    pub executions: Vec<PlanExecution>,
}

/// One child execution of `execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanExecution {
    /// `index`.
    pub index: usize,
    /// `shardIndex`.
    pub shard_index: usize,
    /// `matrixIndex`.
    pub matrix_index: usize,
    /// `matrix.<key>`.
    pub matrix: IndexMap<String, Value>,
    /// `shard.<key>`.
    pub shard: IndexMap<String, Vec<Value>>,
    /// The child's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Config passed to the child, with worker variables substituted.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, Value>,
}

/// Why a workflow could not be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the workflow cannot be planned ({} problem(s))", .diagnostics.len())]
pub struct PlanError {
    /// The problems, each with a field path.
    pub diagnostics: Vec<Diagnostic>,
}

/// Shortcut used by the compiler: a resolved workflow's display name.
pub(crate) fn workflow_name(workflow: &TestWorkflow) -> String {
    workflow.metadata.name.clone().unwrap_or_default()
}
