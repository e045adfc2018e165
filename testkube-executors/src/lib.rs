//! Runs TestWorkflow workers: the step runner and the local executor.
//!
//! - [`runner`]: runs one worker's steps (conditions, retries, timeouts,
//!   outputs, `parallel` through the engine), on top of a [`runner::Launcher`]
//!   that starts processes. Reusable wherever a worker runs (locally, or
//!   inside a pod).
//! - [`local`]: the [`LocalExecutor`], an
//!   [`Executor`](testkube_core::engine::Executor) that runs each worker on
//!   this machine in its own workspace, in a bubblewrap sandbox where
//!   available.
//! - [`upload`]: sends a file to a presigned URL (how artifacts leave a pod
//!   without credentials), streaming, with retries.
//!
//! ```no_run
//! # async fn demo(plan: testkube_core::Plan) {
//! use std::sync::Arc;
//! use testkube_core::engine::{Engine, ExecutionRequest};
//! use testkube_executors::LocalExecutor;
//! let engine = Engine::new(Arc::new(LocalExecutor::new(".testkube/runs")));
//! let run = engine.start(plan, ExecutionRequest::new("run-1")).unwrap();
//! let summary = run.wait().await;
//! # }
//! ```
#![warn(missing_docs)]

pub mod local;
pub mod pod;
pub mod runner;
pub mod upload;

pub use local::{LocalExecutor, LocalSecrets, Sandbox};
