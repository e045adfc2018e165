//! Steps: the tree a workflow runs, with their controls (condition, retry,
//! timeout) and operations (run, shell, execute, parallel, artifacts).

use indexmap::IndexMap;
use k8s_openapi::api::core::v1 as core;
use serde::{Deserialize, Serialize};

use super::container::{ContainerConfig, EnvVar, ImagePullPolicy, Resources, SecurityContext};
use super::content::Content;
use super::execute::Execute;
use super::parallel::Parallel;
use super::service::Service;
use super::values::{Duration, Expression, IntOrExpr};
use super::workflow::TemplateRef;

/// One step. Inside a step, operations happen in this order: delay, content,
/// services start, setup, run, shell, execute, parallel, steps, services
/// stop, artifacts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Stable id for expressions (`step.<id>.outputs`): lower-case letters,
    /// digits and `_`; derived from `name` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name (may contain `{{ }}` templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When to run (expression; default `passed`, `always` for artifact steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Expression>,
    /// Mark the step pure so its container may be merged with others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pure: Option<bool>,
    /// Invert the result: the step passes when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<bool>,
    /// A failure does not fail the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Start paused (a barrier on parallel workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Retry on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Maximum time the step may take, e.g. `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Templates merged into this step.
    #[serde(rename = "use", default, skip_serializing_if = "Vec::is_empty")]
    pub use_templates: Vec<TemplateRef>,
    /// Content fetched before the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Services running while the step runs.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub services: IndexMap<String, Service>,
    /// Container defaults for this step and its children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerConfig>,
    /// Working directory for this step and its children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Steps run before this step's own operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<Step>,
    /// Wait this long before starting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Shell script, run with `set -e`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Run a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<StepRun>,
    /// Run other workflows as children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<Execute>,
    /// Collect files as artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Artifacts>,
    /// Restore and save a dependency cache around the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<StepCache>,
    /// A single template run as this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
    /// Fan out to parallel workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Box<Parallel>>,
    /// Sub-steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// `retry {count, until}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Maximum number of retries (at least 1).
    pub count: IntOrExpr,
    /// Stop retrying once this is true (default `passed`; `self.passed`,
    /// `self.failed` available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Expression>,
}

/// `run`: a container to run, plus an optional `shell` script that replaces
/// `command`/`args`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepRun {
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
}

impl StepRun {
    /// The container part of `run` (everything except `shell`).
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
}

/// `artifacts {workingDir, paths, compress}`: files to keep after the step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Artifacts {
    /// Base directory the paths are relative to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Pack everything into one archive instead of separate files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<Compression>,
    /// Glob patterns of files to collect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// `artifacts.compress`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Compression {
    /// Archive file name; must end in `.tar.gz` or `.tgz`.
    pub name: String,
}

/// `cache`: directories restored before and saved after the step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepCache {
    /// Entry key, usually derived from a lock file.
    pub key: String,
    /// Key prefixes tried when the exact key misses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_keys: Vec<String>,
    /// Paths to cache, relative to the working directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Base directory of the paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Who shares the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<CacheScope>,
    /// Mount a volume at cached paths outside any volume (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<bool>,
}

/// `cache.scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Shared by executions of the same workflow (default).
    Workflow,
    /// Shared by every workflow in the environment.
    Environment,
}
