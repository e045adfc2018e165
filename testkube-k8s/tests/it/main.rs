//! testkube-k8s against real parts: workflow YAML in, and a Kubernetes API
//! (kube-sim, with its bubblewrap kubelet) running `testkube-init` in pods.

mod cluster;
mod executor;
mod faults;
mod git;
mod manifests;
mod parallel;
mod samples;
mod secrets;
