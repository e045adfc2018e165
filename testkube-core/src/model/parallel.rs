//! `parallel`: a step that fans out to workers, each running a whole workflow
//! spec, sized by `matrix`, `shards`, `count` and `maxCount`.

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use serde::{Deserialize, Serialize};

use super::container::{ContainerConfig, JobConfig, PodConfig};
use super::content::Content;
use super::execute::Execute;
use super::params::ParameterSchema;
use super::service::Service;
use super::step::{Artifacts, Retry, Step, StepCache, StepRun};
use super::values::{Duration, DynamicList, Expression, IntOrExpr};
use super::workflow::{
    Concurrency, Event, ExecutionDefaults, NotificationsConfig, SystemConfig, TemplateRef,
    Timeouts, WorkflowSpec,
};

/// `parallel`: every workflow-spec field (what each worker runs) plus the
/// worker strategy, and step controls/operations written on the block itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Parallel {
    /// How many workers run at once (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<IntOrExpr>,
    /// Stop the remaining workers after the first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// One worker group per combination; key order is the YAML order.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub matrix: IndexMap<String, DynamicList>,
    /// Fixed number of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrExpr>,
    /// Upper bound of shards, lowered when there are fewer items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<IntOrExpr>,
    /// Lists split across the shards (`shard.<key>` in each worker).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub shards: IndexMap<String, DynamicList>,
    /// Our extension: balance `shards` by measured duration instead of the
    /// format's contiguous split. Files without it behave exactly as in
    /// Testkube.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
    /// Worker description (may use worker variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether to keep the workers' logs (expression; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Expression>,
    /// Files packed from the parent and unpacked in each worker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfer: Vec<Transfer>,
    /// Files fetched back from each worker into the parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<Fetch>,

    /// Step control: invert the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<bool>,
    /// Step control: failure does not fail the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Step control: start paused (all workers start together once ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Step control: retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Step control: maximum time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Operation: wait before starting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Operation: shell script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Operation: run a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<StepRun>,
    /// Operation: run other workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<Execute>,
    /// Operation: collect artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Artifacts>,
    /// Operation: dependency cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<StepCache>,
    /// A single template each worker runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,

    /// Worker spec: templates merged in.
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(rename = "use", default, skip_serializing_if = "Vec::is_empty")]
    pub use_templates: Vec<TemplateRef>,
    /// Worker spec: events (ignored for workers).
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Worker spec: orchestration behaviour.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemConfig>,
    /// Worker spec: parameters.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, ParameterSchema>,
    /// Worker spec: content.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Worker spec: container defaults.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerConfig>,
    /// Worker spec: Job settings.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobConfig>,
    /// Worker spec: pod settings.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodConfig>,
    /// Worker spec: deprecated, ignored.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsConfig>,
    /// Worker spec: execution defaults.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionDefaults>,
    /// Worker spec: concurrency (ignored for workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Worker spec: timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// Worker spec: services.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub services: IndexMap<String, Service>,
    /// Worker spec: setup steps.
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<Step>,
    /// Worker spec: steps.
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Worker spec: after steps.
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Step>,
    /// Worker spec: persistent volume claims.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub pvcs: IndexMap<String, PersistentVolumeClaimSpec>,
}

impl Parallel {
    /// The workflow spec each worker runs (the spec fields of the block).
    pub fn worker_spec(&self) -> WorkflowSpec {
        WorkflowSpec {
            use_templates: self.use_templates.clone(),
            config: self.config.clone(),
            content: self.content.clone(),
            container: self.container.clone(),
            job: self.job.clone(),
            pod: self.pod.clone(),
            services: self.services.clone(),
            setup: self.setup.clone(),
            steps: self.steps.clone(),
            after: self.after.clone(),
            events: self.events.clone(),
            execution: self.execution.clone(),
            concurrency: self.concurrency.clone(),
            timeouts: self.timeouts.clone(),
            pvcs: self.pvcs.clone(),
            system: self.system.clone(),
            notifications: self.notifications.clone(),
        }
    }

    /// The fields that decide how many workers run and what each one sees.
    pub fn strategy(&self) -> WorkerStrategy<'_> {
        WorkerStrategy {
            matrix: &self.matrix,
            shards: &self.shards,
            count: self.count.as_ref(),
            max_count: self.max_count.as_ref(),
        }
    }
}

/// A borrowed view of the worker-count fields shared by `parallel`,
/// `services` and `execute.workflows[]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerStrategy<'a> {
    /// `matrix`: one worker group per combination.
    pub matrix: &'a IndexMap<String, DynamicList>,
    /// `shards`: lists split across shards.
    pub shards: &'a IndexMap<String, DynamicList>,
    /// `count`: fixed number of shards.
    pub count: Option<&'a IntOrExpr>,
    /// `maxCount`: upper bound of shards.
    pub max_count: Option<&'a IntOrExpr>,
}

/// `parallel.balance` (our extension, not in Testkube): split the `shards`
/// items by their measured durations so that shards finish at about the same
/// time, instead of the contiguous split.
///
/// ```yaml
/// parallel:
///   count: 4
///   shards:
///     file: 'glob("tests/**/test_*.py")'
///   balance:
///     by: duration      # the only mode for now
///     key: file         # which `shards` key holds the items (default: the first)
///     default: 30s      # assumed duration of items with no history (default: mean of known)
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// What to balance by.
    pub by: BalanceBy,
    /// The `shards` key whose items are balanced (default: the only or first key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Duration assumed for items without history (default: mean of the known ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Duration>,
}

/// `parallel.balance.by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BalanceBy {
    /// Balance by each item's duration in previous runs.
    #[default]
    Duration,
}

/// `transfer[]`: files packed in the parent and unpacked in each worker.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// Directory in the parent to pack from.
    pub from: String,
    /// Glob patterns to pack (default: everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<DynamicList>,
    /// Where to unpack in the worker (default: same as `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Mount a fresh volume at `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<bool>,
}

/// `fetch[]`: files packed in each worker and unpacked in the parent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Fetch {
    /// Directory in the worker to pack from.
    pub from: String,
    /// Glob patterns to pack (default: everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<DynamicList>,
    /// Where to unpack in the parent (default: same as `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}
