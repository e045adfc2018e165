//! testkube-k8s against real parts: workflow YAML in, and a Kubernetes API
//! (kube-sim, with its bubblewrap kubelet) running `testkube-init` in pods.

mod cluster;
mod executor;
mod faults;
mod manifests;
mod samples;
mod secrets;
mod services;
