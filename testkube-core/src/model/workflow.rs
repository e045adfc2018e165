//! `TestWorkflow` and `TestWorkflowTemplate`: the workflow spec and the
//! workflow-level settings (config parameters, events, concurrency, timeouts).

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::container::{ContainerConfig, JobConfig, PodConfig};
use super::content::Content;
use super::service::Service;
use super::step::Step;
use super::values::{Duration, IntOrExpr};
use super::{API_VERSION_WORKFLOWS, ParameterSchema};

/// A `TestWorkflow` document: the definition of a test run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestWorkflow {
    /// `testworkflows.testkube.io/v1`.
    pub api_version: String,
    /// `TestWorkflow`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What to run.
    #[serde(default)]
    pub spec: WorkflowSpec,
    /// Observed state written by a controller; kept as-is, never read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl TestWorkflow {
    /// A workflow with the given name and spec, with `apiVersion` and `kind` set.
    pub fn new(name: &str, spec: WorkflowSpec) -> Self {
        TestWorkflow {
            api_version: API_VERSION_WORKFLOWS.to_owned(),
            kind: "TestWorkflow".to_owned(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            description: None,
            spec,
            status: None,
        }
    }
}

/// A `TestWorkflowTemplate` document: a reusable piece of workflow spec,
/// included with `use` or `template`. A name `a/b` is stored as `a--b`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestWorkflowTemplate {
    /// `testworkflows.testkube.io/v1`.
    pub api_version: String,
    /// `TestWorkflowTemplate`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The template's spec; its steps cannot `use` other templates.
    #[serde(default)]
    pub spec: WorkflowSpec,
    /// Observed state written by a controller; kept as-is, never read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// The spec of a workflow or template (`spec:`). Setup, steps and after run
/// in that order as one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// Templates merged into this workflow.
    #[serde(rename = "use", default, skip_serializing_if = "Vec::is_empty")]
    pub use_templates: Vec<TemplateRef>,
    /// Parameters callers may pass (`config.<name>` in expressions).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, ParameterSchema>,
    /// Content fetched for every step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Container defaults for every step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerConfig>,
    /// Kubernetes Job settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobConfig>,
    /// Kubernetes pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// Services started for the whole workflow.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub services: IndexMap<String, Service>,
    /// Steps run first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<Step>,
    /// The main steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Steps run last (use `condition: always` for cleanup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Step>,
    /// Events that start the workflow (cron schedules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Defaults for executions (tags, target, silent mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionDefaults>,
    /// Limits on concurrent executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Queue and initialization timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// Persistent volume claims created for the execution.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub pvcs: IndexMap<String, PersistentVolumeClaimSpec>,
    /// Orchestration behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemConfig>,
    /// Deprecated and ignored; accepted so older files still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsConfig>,
}

/// A reference to a template, with configuration (`use[]`, `template`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// Template name; `a/b` and `a--b` are the same template.
    pub name: String,
    /// Values for the template's `config` parameters.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, serde_json::Value>,
}

/// `events[]`: something that starts the workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// A cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cronjob: Option<CronJob>,
}

/// `events[].cronjob`: run on a schedule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CronJob {
    /// Cron line: 5 fields, 6 with seconds, or `@daily`-style nicknames.
    pub cron: String,
    /// IANA time zone of the schedule (default UTC), e.g. `Europe/Paris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Labels of the scheduled executions.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Annotations of the scheduled executions.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    /// Config values passed to the scheduled executions.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, serde_json::Value>,
    /// Which runner should execute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// Runner targeting (`target {match, not, replicate}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `OnlyWhenMatches`: create the execution only when a runner matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_policy: Option<SchedulerPolicy>,
    /// Runner labels that must match one of the values.
    #[serde(rename = "match", default, skip_serializing_if = "IndexMap::is_empty")]
    pub match_labels: IndexMap<String, Vec<String>>,
    /// Runner labels that must not match any of the values.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub not: IndexMap<String, Vec<String>>,
    /// Run once per distinct value of these labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicate: Vec<String>,
}

/// `target.schedulerPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SchedulerPolicy {
    /// Skip the execution when no runner matches the target.
    OnlyWhenMatches,
}

/// `spec.execution`: defaults for every execution of the workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDefaults {
    /// Tags attached to executions.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tags: IndexMap<String, String>,
    /// Which runner should execute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Silent mode: no webhooks, insights, health or metrics for the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
}

/// `spec.concurrency`: how many executions may run at once.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Concurrency {
    /// Group counted together instead of the workflow name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Maximum concurrent executions (0: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<IntOrExpr>,
    /// Cancel the oldest running execution when a new one is queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_in_progress: Option<bool>,
}

/// `spec.timeouts`: limits outside the steps.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// How long an execution may wait in the queue before it is aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Duration>,
    /// How long the first step may take to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Duration>,
}

/// `spec.system`: orchestration behaviour.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SystemConfig {
    /// Treat steps as pure (mergeable into one container) unless they say otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pure_by_default: Option<bool>,
    /// Never merge several operations into one container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated_containers: Option<bool>,
}

/// `spec.notifications` (deprecated upstream, ignored).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotificationsConfig {
    /// Disable webhooks for the executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_webhooks: Option<bool>,
}
