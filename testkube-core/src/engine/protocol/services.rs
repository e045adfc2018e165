//! Services run by the engine: what a worker asks for when its step starts
//! `services` ([`ServicesRequest`]) or stops them ([`StopServicesRequest`]),
//! and the answer ([`ServicesOutcome`]).
//!
//! Why requests: a worker in a pod may not create pods (it has no API
//! permission), so each service instance becomes a pod the engine creates.
//! The worker still decides everything a workflow's expressions say: it
//! sends each instance with its templates rendered in its own scope
//! (`env`, step outputs, `index`, `matrix.*`), and the engine only turns
//! that into a pod, waits for it to be ready and answers its address.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{ContainerConfig, PodConfig, ServiceRestartPolicy};

/// A worker's request to start the instances of its step's `services` and
/// answer once every one is ready (or one cannot be).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicesRequest {
    /// The id of the step that starts them (in the calling worker).
    pub step: String,
    /// The instances, in the order of the step's `services` and their
    /// indexes.
    pub instances: Vec<ServiceInstanceSpec>,
}

/// One service instance, with every template rendered by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceSpec {
    /// The service's name (`services.<name>`).
    pub name: String,
    /// The instance's index (`services.<name>.<index>`).
    pub index: usize,
    /// Its container: `command`/`args` (a `shell` as `/bin/sh -e -c`),
    /// `env` values, `workingDir` and resource quantities rendered; `env`
    /// with `valueFrom` kept for Kubernetes to resolve.
    pub container: ContainerConfig,
    /// The readiness probe (Kubernetes' `Probe`), its strings rendered and
    /// ports as numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<k8s_openapi::api::core::v1::Probe>,
    /// What to do when it exits (default `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ServiceRestartPolicy>,
    /// The service's `pod` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// How long it may take to be ready, in milliseconds.
    pub timeout_ms: u64,
    /// Whether its output is the log of the pseudo-step
    /// `<step>.services.<name>.<index>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logs: bool,
}

impl ServiceInstanceSpec {
    /// How long it may take to be ready.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `service `web` instance 0`, for messages.
    #[must_use]
    pub fn label(&self) -> String {
        format!("service `{}` instance {}", self.name, self.index)
    }
}

/// A worker's request to stop services its step started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServicesRequest {
    /// The step that started them.
    pub step: String,
    /// The services to stop; all of the step's when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// The engine's answer to a [`ServicesRequest`] or a
/// [`StopServicesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicesOutcome {
    /// Each started instance's address, in the request's order (empty for
    /// a stop, and when one could not be started).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ServiceAddress>,
    /// Why the services could not all be started: the step fails with it
    /// (the engine has stopped the ones it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Lines for the step's log (`... is ready`, `... had exited`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ServicesOutcome {
    /// An outcome that fails the step with `message`.
    #[must_use]
    pub fn failed(message: impl Into<String>) -> Self {
        ServicesOutcome {
            error: Some(message.into()),
            ..ServicesOutcome::default()
        }
    }
}

/// Where one ready instance is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAddress {
    /// The service's name.
    pub name: String,
    /// The instance's index.
    pub index: usize,
    /// Its IP (a pod's `status.podIP`).
    pub ip: String,
}
