//! testkube-k8s against real parts: workflow YAML in, and a Kubernetes API
//! (kube-sim, with its bubblewrap kubelet) running `testkube-init` in pods.

mod artifacts;
mod cluster;
mod controller;
mod crds;
mod executor;
mod faults;
mod git;
mod manifests;
mod parallel;
#[path = "../../../testkube-results/tests/support/s3.rs"]
mod s3server;
mod samples;
mod secrets;
mod services;
