//! The engine: runs a [`Plan`](crate::plan::Plan) through an [`Executor`]
//! and tells the world what happens as a stream of [`Event`]s.
//!
//! Why it lives in the sans-IO core: orchestration (which worker runs when,
//! what a failure stops, what the run's verdict is) must mean the same with
//! every executor, local processes today and Kubernetes pods later. The
//! engine only uses tokio's channels, timers and tasks; everything that
//! touches the world sits behind the plugin traits:
//!
//! - [`Executor`] starts one worker (a [`WorkerSpec`]: its step tree,
//!   variables, env) and streams its [`WorkerEvent`]s; the contract is in
//!   [`executor`]. The executor (or the runner inside the
//!   worker) walks the steps with the rules of [`crate::status`].
//! - [`Orchestrator`] is the callback a worker uses when it reaches a
//!   `parallel` block: the engine starts the block's workers through the
//!   same executor and returns the verdict, as Testkube's in-pod toolkit
//!   asks its API. The same callback starts `execute` children, holds
//!   `paused` steps until [`Canceller::resume`], and makes the workers of
//!   a `paused` block start together.
//! - [`ChildExecutions`] (optional, [`Engine::with_children`]) finds and
//!   plans the workflows `execute` runs and lets a frontend record each
//!   child as an execution of its own; [`WorkflowSet`] is a ready one.
//!
//! The engine itself: starts the root worker, fans out `parallel` blocks
//! (`parallelism`, `failFast`), enforces `job.activeDeadlineSeconds` (the
//! run ends `failed`), aborts on request ([`Canceller`]; the run ends
//! `aborted`), refuses plans that use what cannot run yet, and publishes
//! [`Event`]s, ending with an [`ExecutionSummary`]. The result store of a
//! later issue consumes the same stream. Every event is masked on its way
//! out ([`mask`]): the request's secrets never appear in logs, outputs,
//! messages or the summary.
//!
//! ```text
//! Engine::start(plan) ─▶ Executor::start(root worker) ─▶ WorkerEvents ─▶ Event stream
//!                              │ parallel block
//!                              └─▶ Orchestrator::run_parallel ─▶ Executor::start(worker i) ...
//! ```

mod children;
mod clock;
pub mod event;
pub mod executor;
mod fanout;
pub mod mask;
mod mask_events;
pub mod protocol;
mod recover;
mod run;
mod running;
pub mod signed;
mod support;
mod translate;
mod worker;
mod workflow_set;

pub use children::{
    ChildError, ChildExecutions, ChildRequest, ChildTarget, PreparedChild, StartedChild,
};
pub use clock::{Clock, SystemClock};
pub use event::{Event, ExecutionSummary, StepRef, StepSummary, TestTotals, WorkerSummary};
pub use executor::{
    ChildRecord, ExecuteOutcome, ExecuteRequest, ExecutionInfo, Executor, ExecutorError,
    Orchestrator, PackArchive, ParallelOutcome, ParallelRequest, StepDetail, UnpackArchive,
    Unsupported, WorkerControl, WorkerEvent, WorkerEvents, WorkerFiles, WorkerHandle, WorkerId,
    WorkerSpec,
};
pub use fanout::worker_variables;
pub use mask::{MASK, MaskerError, SecretMasker};
pub use recover::Recovered;
pub use run::{Engine, EngineError, ExecutionRequest};
pub use running::{Canceller, RunningExecution};
pub use signed::{Access, DEFAULT_URL_TTL, SignedStorage, SignedStorageError, StoredArtifact};
pub use workflow_set::{WorkflowSet, selector_matches};
