//! `TestTrigger`: run workflows when something happens to a Kubernetes
//! resource (a deployment's image changes, a pod is created, ...) or to a
//! Git repository (a push, a tag, a pull request).
//!
//! Field for field the `tests.testkube.io/v1` types of Testkube's
//! `api/testtriggers/v1/testtrigger_types.go` (kubeshop/testkube at commit
//! `2b73b131`, 2.13.0-rc.0+73, August 2026): JSON names are the Go json tags
//! and enums hold exactly the values of their kubebuilder `Enum` markers.

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::EnvVarSource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

use super::content::GitAuthType;
use super::values::Duration;
use super::workflow::Target;

/// A `TestTrigger` document (`tests.testkube.io/v1`). A triggered run gets
/// config `WATCHER_EVENT_RESOURCE`, `..._NAME`, `..._NAMESPACE`, `..._EVENT_TYPE`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestTrigger {
    /// `tests.testkube.io/v1`.
    pub api_version: String,
    /// `TestTrigger`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to watch and what to run.
    #[serde(default)]
    pub spec: TriggerSpec,
    /// Observed state written by a controller; kept as-is, never read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `TestTrigger.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    /// Labels over the event (`testkube.io/resource-kind|name|namespace`,
    /// plus the watched object's own labels). Alone, it picks the watched
    /// resource without `resource` or `resourceRef`, as Testkube writes
    /// triggers created in its dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Kind of resource to watch (or use `resourceRef`, or `selector` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<TriggerResource>,
    /// Any resource by group/version/kind (excludes `resource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_ref: Option<ResourceRef>,
    /// Which objects of that kind to watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_selector: Option<TriggerSelector>,
    /// Which event fires the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<TriggerEvent>,
    /// Field conditions that must all hold on the changed object.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub match_conditions: Vec<FieldMatch>,
    /// Which listener agents watch for the event and fire the trigger
    /// (`match: {id: [...]}`); every agent when absent. Testkube requires
    /// it with `match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<Target>,
    /// Resource conditions to wait for before running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_spec: Option<ConditionSpec>,
    /// HTTP probes to wait for before running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_spec: Option<ProbeSpec>,
    /// Content (Git) to watch, for the `content` resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_selector: Option<ContentSelector>,
    /// What to do: `run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<TriggerAction>,
    /// Config and tags of the started run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_parameters: Option<ActionParameters>,
    /// What to run: `testworkflow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<TriggerExecution>,
    /// Which workflows to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_selector: Option<TriggerSelector>,
    /// What happens when the workflow is already running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Wait this long after the event before running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Keep the trigger but never fire it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

impl TriggerSpec {
    /// Whether the trigger watches Git content: `resource: content`, or a
    /// `resourceRef` of kind `content` (any case, as Testkube's Git informer
    /// reads it).
    pub fn watches_content(&self) -> bool {
        self.resource == Some(TriggerResource::Content)
            || self
                .resource_ref
                .as_ref()
                .is_some_and(|r| r.kind.eq_ignore_ascii_case("content"))
    }
}

/// `spec.resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TriggerResource {
    /// Pods.
    Pod,
    /// Deployments.
    Deployment,
    /// StatefulSets.
    Statefulset,
    /// DaemonSets.
    Daemonset,
    /// Services.
    Service,
    /// Ingresses.
    Ingress,
    /// Kubernetes events.
    Event,
    /// ConfigMaps.
    Configmap,
    /// Git content (see `contentSelector`).
    Content,
}

/// `spec.resourceRef`: a resource by group/version/kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// API group (empty for core resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

/// `resourceSelector` / `testSelector`: objects by name, regex, namespace or labels.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TriggerSelector {
    /// Exact name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Name regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_regex: Option<String>,
    /// Exact namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Namespace regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_regex: Option<String>,
    /// Label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// `spec.event`: which change fires the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum TriggerEvent {
    /// The resource was created.
    Created,
    /// The resource was modified.
    Modified,
    /// The resource was deleted.
    Deleted,
    /// A push to a watched branch.
    GitPush,
    /// A push of a watched tag.
    GitTagPush,
    /// A pull request was opened or updated.
    GitPullRequest,
    /// A deployment's replica count changed.
    DeploymentScaleUpdate,
    /// A deployment's image changed.
    DeploymentImageUpdate,
    /// A deployment's environment changed.
    DeploymentEnvUpdate,
    /// A deployment's containers changed.
    DeploymentContainersModified,
    /// A deployment's generation changed.
    DeploymentGenerationModified,
    /// A deployment's resources changed.
    DeploymentResourceModified,
    /// Legacy: a Test started.
    EventStartTest,
    /// Legacy: a Test passed.
    EventEndTestSuccess,
    /// Legacy: a Test failed.
    EventEndTestFailed,
    /// Legacy: a Test was aborted.
    EventEndTestAborted,
    /// Legacy: a Test timed out.
    EventEndTestTimeout,
    /// Legacy: a TestSuite started.
    EventStartTestsuite,
    /// Legacy: a TestSuite passed.
    EventEndTestsuiteSuccess,
    /// Legacy: a TestSuite failed.
    EventEndTestsuiteFailed,
    /// Legacy: a TestSuite was aborted.
    EventEndTestsuiteAborted,
    /// Legacy: a TestSuite timed out.
    EventEndTestsuiteTimeout,
    /// A workflow execution was queued.
    EventQueueTestworkflow,
    /// A workflow execution started.
    EventStartTestworkflow,
    /// A workflow execution passed.
    EventEndTestworkflowSuccess,
    /// A workflow execution failed.
    EventEndTestworkflowFailed,
    /// A workflow execution was aborted.
    EventEndTestworkflowAborted,
    /// A workflow execution was canceled.
    EventEndTestworkflowCanceled,
    /// A workflow execution did not pass.
    EventEndTestworkflowNotPassed,
    /// A Kubernetes event was created.
    EventCreated,
    /// A Kubernetes event was updated.
    EventUpdated,
    /// A Kubernetes event was deleted.
    EventDeleted,
}

impl TriggerEvent {
    /// Whether the event comes from a Git repository (`git-push`,
    /// `git-tag-push`, `git-pull-request`), which only content triggers see.
    pub fn is_git(self) -> bool {
        matches!(
            self,
            TriggerEvent::GitPush | TriggerEvent::GitTagPush | TriggerEvent::GitPullRequest
        )
    }
}

/// `spec.match[]`: a condition on a field of the changed object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FieldMatch {
    /// Dot path into the object, e.g. `.spec.template.spec.containers.0.image`.
    pub path: String,
    /// How to compare.
    pub operator: MatchOperator,
    /// Value to compare with; required by `equals`, `not_equals`,
    /// `changed_to`, `changed_from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `spec.match[].operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchOperator {
    /// The field equals `value`.
    #[default]
    Equals,
    /// The field differs from `value`.
    NotEquals,
    /// The field is present.
    Exists,
    /// The field is absent.
    NotExists,
    /// The field changed.
    Changed,
    /// The field changed to `value`.
    ChangedTo,
    /// The field changed from `value`.
    ChangedFrom,
}

impl MatchOperator {
    /// Whether the operator compares with `value`.
    pub fn needs_value(self) -> bool {
        matches!(
            self,
            MatchOperator::Equals
                | MatchOperator::NotEquals
                | MatchOperator::ChangedTo
                | MatchOperator::ChangedFrom
        )
    }

    /// Whether the operator compares with the object before the change
    /// (`changed`, `changed_to`, `changed_from`).
    pub fn compares_with_previous(self) -> bool {
        matches!(
            self,
            MatchOperator::Changed | MatchOperator::ChangedTo | MatchOperator::ChangedFrom
        )
    }
}

/// `spec.conditionSpec`: wait for resource conditions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConditionSpec {
    /// Conditions that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ResourceCondition>,
    /// Seconds to wait for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    /// Seconds between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i32>,
}

/// `conditionSpec.conditions[]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResourceCondition {
    /// Expected status.
    pub status: ConditionStatus,
    /// Condition type, e.g. `Available`.
    #[serde(rename = "type")]
    pub condition_type: String,
    /// Expected reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds the condition stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i32>,
}

/// `conditions[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ConditionStatus {
    /// The condition holds.
    #[default]
    True,
    /// The condition does not hold.
    False,
    /// The state is unknown.
    Unknown,
}

/// `spec.probeSpec`: wait for HTTP probes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProbeSpec {
    /// Probes that must all succeed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<HttpProbe>,
    /// Seconds to wait for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    /// Seconds between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i32>,
}

/// `probeSpec.probes[]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// `http` (default) or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Host (default: the pod IP or service name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Request headers.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
}

/// `spec.contentSelector`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContentSelector {
    /// A Git repository to watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitWatch>,
}

/// `contentSelector.git`: which pushes, tags and paths fire the trigger.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct GitWatch {
    /// Repository URL.
    pub uri: String,
    /// Branch globs to watch (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    /// Branch globs to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches_ignore: Vec<String>,
    /// Path globs to watch (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Path globs to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths_ignore: Vec<String>,
    /// Tag globs to watch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Tag globs to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_ignore: Vec<String>,
    /// Plain-text user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// User name from a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_from: Option<EnvVarSource>,
    /// Plain-text token (prefer `tokenFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Token from a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<EnvVarSource>,
    /// Plain-text SSH private key (prefer `sshKeyFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// SSH private key from a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_from: Option<EnvVarSource>,
    /// How the credentials are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<GitAuthType>,
    /// Which pull requests fire a `git-pull-request` trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<GitPullRequest>,
}

/// `contentSelector.git.pullRequest`: which pull request activity fires the
/// trigger (Testkube polls the GitHub API for it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct GitPullRequest {
    /// Activity to watch: `opened`, `synchronize`, `reopened`, `closed`
    /// (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Base branch globs to watch (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    /// Base branch globs to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches_ignore: Vec<String>,
}

impl GitPullRequest {
    /// The activity types Testkube reports for a pull request.
    pub const TYPES: [&str; 4] = ["opened", "synchronize", "reopened", "closed"];
}

/// `spec.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TriggerAction {
    /// Start an execution.
    Run,
}

/// `spec.execution`: what kind of thing to run. Only `testworkflow` runs
/// here; `test` and `testsuite` (legacy Testkube resources) are accepted so
/// old files load, and reported by the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TriggerExecution {
    /// A TestWorkflow.
    Testworkflow,
    /// A legacy Test (not supported).
    Test,
    /// A legacy TestSuite (not supported).
    Testsuite,
}

/// `spec.actionParameters`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActionParameters {
    /// Config values of the started run.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, String>,
    /// Tags of the started run.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tags: IndexMap<String, String>,
    /// Which runner should execute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// `spec.concurrencyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ConcurrencyPolicy {
    /// Start another run alongside the running one (default).
    Allow,
    /// Skip the event while a run is in progress.
    Forbid,
    /// Abort the running one and start a new one.
    Replace,
}
