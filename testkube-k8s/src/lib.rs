//! Runs TestWorkflow workers as Kubernetes Jobs.
//!
//! A worker is one Job (`backoffLimit: 0`, `restartPolicy: Never`) with one
//! pod. Every container of the pod runs `testkube-init`, the same step
//! runner as local runs, which a first init container copies into a shared
//! volume so that containers of any image can run it. The worker's task
//! (its steps, variables, files) travels in a Secret mounted into the pod,
//! since it may hold resolved secret values. `/data`, `/tmp` and
//! `/testkube` are emptyDir volumes shared by the pod's containers.
//!
//! Test pods get no Kubernetes API permission: unless the workflow names a
//! service account, no API token is mounted at all. Everything the engine
//! learns travels through the container log (the [worker
//! protocol](testkube_core::engine::protocol)) and termination messages.
//!
//! - [`manifest`]: the objects of a worker, built from its
//!   [`WorkerTask`](testkube_core::engine::protocol::WorkerTask) and the
//!   workflow's `pod` and `job` settings, without touching a cluster
//!   (`testkube manifests` prints them); [`execution`]: those of a whole
//!   execution.
//! - [`crds`]: the CustomResourceDefinitions of the six kinds, generated
//!   from the model (`testkube crds` prints them).
//! - [`controller`]: the TestWorkflowExecution controller the agent runs:
//!   a created `TestWorkflowExecution` starts a run, whose progress is
//!   written back to its `status`; [`LeaderElector`]: a Lease so that of
//!   several agent replicas only one runs it.
#![warn(missing_docs)]

mod containers;
pub mod controller;
mod crds;
pub mod execution;
mod executor;
mod follow;
pub mod labels;
mod lease;
mod links;
pub mod manifest;
mod pods;
mod secrets;
mod services;
mod translate;

pub use controller::{ControllerError, ExecutionController};
pub use crds::crds;
pub use execution::{ExecutionObjects, execution_objects};
pub use executor::KubernetesExecutor;
pub use lease::{LeaderElector, Leadership};
pub use manifest::{
    DEFAULT_GIT_IMAGE, ManifestError, ManifestOptions, WorkerObjects, worker_objects,
};
pub use secrets::KubernetesSecrets;
