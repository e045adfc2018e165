//! The executor plugin boundary: what the engine hands an executor (a
//! [`WorkerSpec`]), what it gets back (a [`WorkerHandle`] streaming
//! [`WorkerEvent`]s), and the [`Orchestrator`] callback a worker uses to ask
//! the engine for work only the engine may do (fanning out `parallel`).
//!
//! # Contract for executors
//!
//! An executor runs one worker at a time per [`Executor::start`] call, and
//! only what it is given: the worker's step tree ([`WorkerSpec::root`]),
//! top-down, with conditions, retries, step timeouts and outputs, in its
//! own workspace (`/data`, `/tmp`, `/testkube`). It never decides anything
//! about other workers. In detail:
//!
//! 1. `start` returns once the worker is accepted (process spawned, pod
//!    created); failures to start are an [`ExecutorError`], after which the
//!    engine treats the worker as failed without events.
//! 2. The event stream reports, per step id of the worker's tree (ids are
//!    unique within a worker): [`WorkerEvent::Step`] on every status change
//!    (`running` when it starts, then exactly one finished status),
//!    [`WorkerEvent::Log`] chunks of its output while it runs,
//!    [`WorkerEvent::Output`] for each `/testkube/outputs/<key>` it wrote,
//!    [`WorkerEvent::Artifact`] for collected files, and free-form
//!    [`WorkerEvent::Notice`]s. The root step (`root`) is reported like any
//!    other step.
//! 3. The stream ends with exactly one [`WorkerEvent::Finished`] carrying
//!    the status of the worker's root, then closes. A stream that closes
//!    without it means the worker was lost: the engine marks it `aborted`.
//! 4. [`WorkerControl::interrupt`] stops the worker: started steps end with
//!    the [`Interruption`]'s status, the others are `skipped`, and the
//!    stream still ends with `Finished`. It is idempotent and never blocks
//!    on the worker.
//! 5. When the worker's steps contain an `Operation::Parallel`, the executor
//!    (or the runner inside the worker) calls
//!    [`WorkerSpec::orchestrator`] and waits for the verdict; it never runs
//!    sibling workers itself. Dropping that future (e.g. the step's timeout
//!    fired) stops the workers it started. Likewise `execute` goes to
//!    [`Orchestrator::execute`]: child executions are the engine's.
//! 6. A step with `paused: true` is reported `paused`, then waits for
//!    [`Orchestrator::paused`] (the execution is resumed) before it runs.
//! 7. Before the first step, the worker unpacks [`WorkerSpec::files`]'s
//!    archives and, with [`WorkerSpec::barrier`], waits for
//!    [`Orchestrator::ready`]; after the last step it packs the archives
//!    its parent fetches. The parent packs a block's `transfer` archives
//!    before [`Orchestrator::run_parallel`] and unpacks the workers'
//!    `fetch` archives after it, under the names [`WorkerFiles`] gives.
//!
//! The Kubernetes executor maps this one to one: a worker is a Job/Pod, the
//! in-pod runner streams the events (through the API), and the
//! orchestrator callback is an API call back to the engine.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_stream::Stream;

use crate::model::{DynamicList, EnvVar, JobConfig, PodConfig};
use crate::plan::{PlanExecute, PlanParallel, PlanStep};
use crate::status::{Interruption, StepStatus};
use crate::store::TestCaseRecord;

/// Runs workers: local processes, Kubernetes pods, anything that can run a
/// worker's steps and report what happens. See the [module
/// documentation](self) for the contract.
#[async_trait]
pub trait Executor: Send + Sync {
    /// A short name for messages (`local`, `kubernetes`).
    fn name(&self) -> &str;

    /// What this executor cannot run in `step` (and its sub-steps), as
    /// user-facing feature names (`content.git`, `resources.limits`). The
    /// engine refuses a plan with any, before starting anything.
    fn unsupported(&self, step: &PlanStep) -> Vec<Unsupported> {
        let _ = step;
        Vec::new()
    }

    /// Starts one worker.
    ///
    /// # Errors
    /// [`ExecutorError`] when the worker cannot be started at all.
    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError>;

    /// Takes up worker `spec.worker` that an earlier engine started for
    /// the same execution (the engine process was restarted; see
    /// [`Engine::resume`](super::Engine::resume)), as if [`Executor::start`]
    /// had just returned it. The stream reports everything the worker
    /// reported since it started, then goes on as it runs; requests the
    /// earlier engine answered are not asked again.
    ///
    /// `Ok(None)` when the worker is not there (it never started, or it
    /// is gone). The default (executors whose workers end with the engine,
    /// like local processes) never finds one.
    ///
    /// # Errors
    /// [`ExecutorError`] when it cannot be looked for.
    async fn attach(&self, spec: WorkerSpec) -> Result<Option<WorkerHandle>, ExecutorError> {
        let _ = spec;
        Ok(None)
    }
}

/// A feature a plan uses that cannot run (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The feature, as the user wrote it (`services`, `content.git`).
    pub feature: String,
    /// The step that uses it.
    pub step: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not supported yet: {} (step `{}`)",
            self.feature, self.step
        )
    }
}

/// Everything an executor needs to run one worker.
#[derive(Clone)]
pub struct WorkerSpec {
    /// The execution the worker belongs to.
    pub execution: ExecutionInfo,
    /// The worker's identity within the execution.
    pub worker: WorkerId,
    /// The worker's step tree; its root has id `root`.
    pub root: PlanStep,
    /// Environment variables every container of the worker gets (the
    /// workflow's `global` ones), before each step's own.
    pub env: Vec<EnvVar>,
    /// Expression variables known for the worker, by root name: `config`,
    /// `execution`, `workflow` and, for parallel workers, `index`, `count`,
    /// `matrix`, `shard`, ... Run-time ones (`env`, step results) are the
    /// runner's.
    pub variables: BTreeMap<String, Value>,
    /// How the worker asks the engine to run a `parallel` block.
    pub orchestrator: Arc<dyn Orchestrator>,
    /// Files the worker exchanges with the worker that started it
    /// (`parallel.transfer` and `parallel.fetch`); empty for most workers.
    pub files: WorkerFiles,
    /// The worker belongs to a block with a start barrier (`parallel.paused`):
    /// once its files are in place it calls [`Orchestrator::ready`] and
    /// starts its steps when that returns.
    pub barrier: bool,
    /// The Kubernetes pod settings of the worker (the workflow's `pod`, or
    /// its parallel block's); executors that run no pods ignore them.
    pub pod: Option<PodConfig>,
    /// The Kubernetes Job settings of the workflow (`job`).
    pub job: Option<JobConfig>,
}

impl fmt::Debug for WorkerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSpec")
            .field("execution", &self.execution)
            .field("worker", &self.worker)
            .field("root", &self.root.id)
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("files", &self.files)
            .field("barrier", &self.barrier)
            .finish_non_exhaustive()
    }
}

/// The execution a worker belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInfo {
    /// A unique id (also the name of its folders).
    pub id: String,
    /// The display name (`WORKFLOW-N`).
    pub name: String,
    /// The workflow's name.
    pub workflow: String,
}

/// A worker's place in the execution: `root` for the workflow's own worker,
/// `<parent>/<step id>/<index>` for a parallel worker, and a number unique
/// in the execution (0 for the root) that executors use to name folders.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerId {
    /// The path (`root`, `root/tests/2`).
    pub path: String,
    /// A number unique in the execution, in start order.
    pub number: usize,
}

impl WorkerId {
    /// The worker's folder name: its path with `-` for `/` (`root-tests-2`);
    /// step ids hold no `-`, so the name is unique within the execution.
    /// Artifacts and workspaces are kept under it.
    #[must_use]
    pub fn folder(&self) -> String {
        Self::folder_of(&self.path)
    }

    /// The folder name of the worker with path `path` (see [`Self::folder`]).
    #[must_use]
    pub fn folder_of(path: &str) -> String {
        path.replace('/', "-")
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// What an executor gives back for a started worker.
pub struct WorkerHandle {
    /// The worker's events; see the [module documentation](self).
    pub events: WorkerEvents,
    /// Stops the worker.
    pub control: Arc<dyn WorkerControl>,
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle").finish_non_exhaustive()
    }
}

/// The stream of one worker's events.
pub type WorkerEvents = Pin<Box<dyn Stream<Item = WorkerEvent> + Send>>;

/// Controls a running worker.
#[async_trait]
pub trait WorkerControl: Send + Sync {
    /// Stops the worker: started steps end with the interruption's status
    /// (`aborted`, `timeout`...), the rest `skipped`. Idempotent; returns
    /// without waiting for the worker to stop (its stream says when).
    async fn interrupt(&self, interruption: Interruption);
}

/// Something that happened in a worker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// A step changed status.
    Step {
        /// The step id (unique within the worker).
        step: String,
        /// The new status.
        status: StepStatus,
        /// When.
        at: SystemTime,
        /// Details: the exit code, why it failed or was skipped.
        detail: StepDetail,
    },
    /// Output of a running step (stdout and stderr interleaved).
    Log {
        /// The step id.
        step: String,
        /// The bytes, as written.
        chunk: Bytes,
    },
    /// A step wrote `/testkube/outputs/<key>`.
    Output {
        /// The step id.
        step: String,
        /// The key.
        key: String,
        /// The value (at most 4 KiB, trailing newline trimmed).
        value: String,
    },
    /// A file was collected as an artifact.
    Artifact {
        /// The step id.
        step: String,
        /// Its path, relative to the artifacts' working directory.
        path: String,
        /// Where the executor keeps it (a local path, an object URL).
        location: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Test results parsed from a report the step produced (a JUnit file
    /// among its artifacts).
    TestCases {
        /// The step id.
        step: String,
        /// The report's path, relative to the artifacts' working directory.
        report: String,
        /// The test cases, in report order.
        cases: Vec<TestCaseRecord>,
    },
    /// The worker's workspace and its root's own `content` are ready
    /// (`passed`) or could not be prepared (`failed`, with why), before its
    /// first step. An executor that does not report it is taken as ready
    /// when its first step changes status.
    Initialized {
        /// `passed` or `failed`.
        status: StepStatus,
        /// When.
        at: SystemTime,
        /// Why it failed.
        message: Option<String>,
    },
    /// Something the user should know that is not a failure (e.g. that
    /// images are not pulled locally).
    Notice {
        /// The message.
        message: String,
    },
    /// The worker is done; the last event.
    Finished {
        /// The status of the worker's root.
        status: StepStatus,
    },
}

/// Details of a step status change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepDetail {
    /// The exit code of the step's command, when it ran one.
    pub exit_code: Option<i32>,
    /// Which attempt this is (1 for the first run; more with `retry`).
    pub attempt: u32,
    /// Why (a condition error, a timeout, a signal), for the user.
    pub message: Option<String>,
}

/// The engine's side of a worker: what a worker asks the engine to do.
///
/// Only `run_parallel` is required; the others have defaults for
/// orchestrators that cannot do more (child executions fail, pauses and
/// barriers do not wait). The engine's own orchestrator does all of them.
#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// Runs a `parallel` block of the calling worker and returns its
    /// verdict once every worker of the block is done. Dropping the future
    /// stops the block's workers.
    async fn run_parallel(&self, request: ParallelRequest) -> ParallelOutcome;

    /// Runs an `execute` step's child executions and returns their verdict
    /// (at once with `async`, once started). Dropping the future aborts the
    /// children it started and waits for.
    async fn execute(&self, request: ExecuteRequest) -> ExecuteOutcome {
        ExecuteOutcome {
            status: StepStatus::Failed,
            children: Vec::new(),
            message: Some(format!(
                "step `{}`: this engine cannot start child executions",
                request.step
            )),
        }
    }

    /// Step `step` is `paused` (reported with status `paused`): returns
    /// `None` once the execution is resumed ([`Canceller::resume`]), or
    /// why the run was stopped meanwhile (the worker's own interrupt may
    /// arrive later: trust this answer). The default returns `None` at once.
    ///
    /// [`Canceller::resume`]: super::Canceller::resume
    async fn paused(&self, step: &str) -> Option<Interruption> {
        let _ = step;
        None
    }

    /// The worker is ready to run its steps ([`WorkerSpec::barrier`]):
    /// returns `None` once every worker of its block is ready (or gone),
    /// or why the run was stopped meanwhile. The default returns `None`
    /// at once.
    async fn ready(&self) -> Option<Interruption> {
        None
    }
}

/// A worker's request to run one of its `execute` operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    /// The id of the step (in the calling worker) that holds it.
    pub step: String,
    /// The operation, with the children's config values rendered by the
    /// worker (templates over step outputs, `env`, ...).
    pub execute: PlanExecute,
}

/// How an `execute` operation ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteOutcome {
    /// `passed` when every child passed (or, with `async`, started);
    /// `failed` when one did not or could not start; the interruption's
    /// status when the run was stopped.
    pub status: StepStatus,
    /// The children, in the order they were asked for.
    pub children: Vec<ChildRecord>,
    /// Why, when it did not pass.
    pub message: Option<String>,
}

/// One child execution of an `execute` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildRecord {
    /// The child's execution id.
    pub id: String,
    /// Its display name (`WORKFLOW-N`).
    pub name: String,
    /// Its workflow.
    pub workflow: String,
    /// Its status: the final one, or `running` for an `async` child.
    pub status: StepStatus,
}

/// Files a worker exchanges with the worker that started its block:
/// `parallel.transfer` archives to unpack before its first step and
/// `parallel.fetch` folders to pack after its last one.
///
/// Archives are named, not placed: the engine gives names (see
/// [`WorkerFiles::transfer_archive`] and [`WorkerFiles::fetch_archive`]),
/// and the executor keeps the archives of one execution where all its
/// workers reach them (a folder locally, an object store for pods).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerFiles {
    /// Archives to unpack before the first step, in order.
    pub unpack: Vec<UnpackArchive>,
    /// Folders to pack after the last step (whatever the verdict).
    pub pack: Vec<PackArchive>,
}

/// An archive to unpack into a worker's workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpackArchive {
    /// The archive's name.
    pub archive: String,
    /// The folder to unpack it into, as the worker's steps see it
    /// (`/data/repo`, or relative to `/data`).
    pub to: String,
}

/// Files of a worker's workspace to pack into an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackArchive {
    /// The folder to pack from, as the worker's steps see it.
    pub from: String,
    /// Glob patterns relative to `from` (`**/*.xml`); everything when
    /// `None`. An expression is evaluated by the worker.
    pub files: Option<DynamicList>,
    /// The archive's name.
    pub archive: String,
}

impl WorkerFiles {
    /// Whether there is nothing to move.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.unpack.is_empty() && self.pack.is_empty()
    }

    /// The name of the archive of `transfer[index]` that worker `parent`
    /// packs for the block of its step `step`.
    #[must_use]
    pub fn transfer_archive(parent: &WorkerId, step: &str, index: usize) -> String {
        format!("{}/{step}/transfer-{index}.tar.gz", parent.number)
    }

    /// The name of the archive of `fetch[index]` that worker `worker`
    /// packs for its parent.
    #[must_use]
    pub fn fetch_archive(worker: &WorkerId, index: usize) -> String {
        format!("{}/fetch-{index}.tar.gz", worker.number)
    }
}

/// A worker's request to run one of its `parallel` blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParallelRequest {
    /// The id of the step (in the calling worker) that holds the block.
    pub step: String,
    /// The block, as planned. For a block whose workers are decided at run
    /// time (`decided_at_run_time`), the caller first replaces every
    /// expression of its `strategy` (`matrix`/`shards` lists, `count`,
    /// `maxCount`) by the value it evaluates to in the worker; the engine
    /// then plans the workers ([`crate::plan::decide_workers`]).
    pub parallel: PlanParallel,
}

/// How a `parallel` block ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParallelOutcome {
    /// The block's status: `passed` when every worker passed, `failed`
    /// when one did not (also with `failFast`), or the interruption's
    /// status when the run was stopped.
    pub status: StepStatus,
    /// Each worker and its final status, by index.
    pub workers: Vec<(WorkerId, StepStatus)>,
    /// Why, when it did not pass.
    pub message: Option<String>,
}

/// Why an executor could not start a worker.
#[derive(Debug, thiserror::Error)]
#[error("cannot start worker {worker}: {message}")]
pub struct ExecutorError {
    /// The worker.
    pub worker: String,
    /// What went wrong, for the user.
    pub message: String,
}

impl ExecutorError {
    /// An error for `worker`.
    #[must_use]
    pub fn new(worker: &WorkerId, message: impl Into<String>) -> Self {
        ExecutorError {
            worker: worker.path.clone(),
            message: message.into(),
        }
    }
}

/// Compile-time checks: everything crossing tasks is `Send`.
#[allow(dead_code)]
fn assert_send_and_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    fn start_future_is_send(executor: &dyn Executor, spec: WorkerSpec) {
        fn is_send<T: Send>(_: &T) {}
        let future = executor.start(spec);
        is_send(&future);
    }
    fn parallel_future_is_send(orchestrator: &dyn Orchestrator, request: ParallelRequest) {
        fn is_send<T: Send>(_: &T) {}
        let future = orchestrator.run_parallel(request);
        is_send(&future);
    }
    fn execute_future_is_send(orchestrator: &dyn Orchestrator, request: ExecuteRequest) {
        fn is_send<T: Send>(_: &T) {}
        let future = orchestrator.execute(request);
        is_send(&future);
    }
    let _ = (
        start_future_is_send,
        parallel_future_is_send,
        execute_future_is_send,
    );
    send::<WorkerSpec>();
    sync::<WorkerSpec>();
    send::<WorkerHandle>();
    send::<WorkerEvent>();
}
