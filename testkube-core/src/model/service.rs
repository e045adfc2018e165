//! `services`: background containers (databases, browsers, SUTs) started
//! before a step and stopped after it, exposed as `services.<name>`.

use indexmap::IndexMap;
use k8s_openapi::api::core::v1 as core;
use serde::{Deserialize, Serialize};

use super::container::{
    ContainerConfig, EnvVar, ImagePullPolicy, PodConfig, Resources, SecurityContext,
};
use super::content::Content;
use super::parallel::{Transfer, WorkerStrategy};
use super::values::{Duration, DynamicList, Expression, IntOrExpr};
use super::workflow::TemplateRef;

/// One entry of `services {name: Service}`. Instances are exposed as
/// `services.<name>` = `[{ip, description}]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Templates merged into the service.
    #[serde(rename = "use", default, skip_serializing_if = "Vec::is_empty")]
    pub use_templates: Vec<TemplateRef>,
    /// One instance group per combination.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub matrix: IndexMap<String, DynamicList>,
    /// Fixed number of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrExpr>,
    /// Upper bound of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<IntOrExpr>,
    /// Lists split across instances.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub shards: IndexMap<String, DynamicList>,
    /// Instance description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether to keep the service logs (expression; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Expression>,
    /// Maximum time until the service is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Files transferred into the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfer: Vec<Transfer>,
    /// Content fetched for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Pod settings of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Image to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Sources of environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<core::EnvFromSource>,
    /// Overrides the image ENTRYPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Overrides the image CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// CPU/memory limits and requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Container security settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// Volume mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<core::VolumeMount>,
    /// Shell script run in the container; excludes `command` and `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// What to do when the service container exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ServiceRestartPolicy>,
    /// When the service counts as started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<core::Probe>,
    /// Persistent volume claims for the service.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub pvcs: IndexMap<String, core::PersistentVolumeClaimSpec>,
}

impl Service {
    /// The container part of the service.
    pub fn container(&self) -> ContainerConfig {
        ContainerConfig {
            working_dir: self.working_dir.clone(),
            image: self.image.clone(),
            image_pull_policy: self.image_pull_policy,
            env: self.env.clone(),
            env_from: self.env_from.clone(),
            command: self.command.clone(),
            args: self.args.clone(),
            resources: self.resources.clone(),
            security_context: self.security_context.clone(),
            volume_mounts: self.volume_mounts.clone(),
        }
    }

    /// The fields that decide how many instances run.
    pub fn strategy(&self) -> WorkerStrategy<'_> {
        WorkerStrategy {
            matrix: &self.matrix,
            shards: &self.shards,
            count: self.count.as_ref(),
            max_count: self.max_count.as_ref(),
        }
    }
}

/// `services.<name>.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ServiceRestartPolicy {
    /// Restart the container when it fails.
    OnFailure,
    /// Never restart (default).
    Never,
}
