//! Integration tests: a real kube-sim server per test, driven by the
//! kube-rs client, raw HTTP and the real kubectl; containers are real
//! bubblewrap processes.

mod audit;
mod common;
mod faults;
mod kubectl;
mod kubelet;
mod rest;
mod watch;
