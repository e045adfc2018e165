//! Container settings shared by workflows, steps, services and workers.
//!
//! The format embeds Kubernetes container fields but widens a few of them so
//! they can hold `{{ }}` templates (resource quantities, user and group ids).
//! Kubernetes types from k8s-openapi are used unchanged wherever the format
//! does not widen them.

use indexmap::IndexMap;
use k8s_openapi::api::core::v1 as core;
use serde::{Deserialize, Serialize};

use super::values::{IntOrExpr, Quantity};

/// Container configuration: `spec.container`, `step.container`, `step.run`
/// (plus `run.shell`), services and parallel workers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContainerConfig {
    /// Working directory inside the container (empty string: the image's WORKDIR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Image to run, e.g. `grafana/k6:0.49.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Environment variables appended to the container's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Sources of environment variables (config maps, secrets).
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
    /// Volume mounts appended to the container's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<core::VolumeMount>,
}

/// Image pull policy, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ImagePullPolicy {
    /// Always pull the image.
    Always,
    /// Pull only when the image is not present locally.
    IfNotPresent,
    /// Never pull; the image must be present.
    Never,
}

/// An environment variable: the Kubernetes `EnvVar` fields plus `global`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Literal value (may contain `{{ }}` templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value taken from a secret, config map or field reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<core::EnvVarSource>,
    /// Also pass the variable to services and nested workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<bool>,
}

/// `resources {limits, requests}`; keys are resource names (`cpu`, `memory`),
/// values quantities or templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Upper bounds.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub limits: IndexMap<String, Quantity>,
    /// Amounts reserved for scheduling.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub requests: IndexMap<String, Quantity>,
}

/// Container security context; ids may be templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    /// Linux capabilities to add or drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<core::Capabilities>,
    /// Run the container privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// SELinux context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se_linux_options: Option<core::SELinuxOptions>,
    /// Windows-specific options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_options: Option<core::WindowsSecurityContextOptions>,
    /// UID to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<IntOrExpr>,
    /// GID to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<IntOrExpr>,
    /// Refuse to start as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Mount the root filesystem read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Allow gaining more privileges than the parent process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    /// `/proc` mount type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_mount: Option<String>,
    /// Seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<core::SeccompProfile>,
    /// AppArmor profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_armor_profile: Option<core::AppArmorProfile>,
}

/// Pod security context; ids may be templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    /// SELinux context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se_linux_options: Option<core::SELinuxOptions>,
    /// Windows-specific options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_options: Option<core::WindowsSecurityContextOptions>,
    /// UID to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<IntOrExpr>,
    /// GID to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<IntOrExpr>,
    /// Refuse to start as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Extra groups for the first process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplemental_groups: Vec<i64>,
    /// How supplemental groups are computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplemental_groups_policy: Option<String>,
    /// Group owning mounted volumes (default 1001 in every pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<IntOrExpr>,
    /// Namespaced sysctls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<core::Sysctl>,
    /// When volume ownership is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group_change_policy: Option<String>,
    /// Seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<core::SeccompProfile>,
    /// AppArmor profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_armor_profile: Option<core::AppArmorProfile>,
    /// How SELinux labels are applied to volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se_linux_change_policy: Option<String>,
}

/// `spec.job`: settings of the Kubernetes Job running the workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobConfig {
    /// Labels added to the Job.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Annotations added to the Job.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    /// Namespace to run in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Seconds the Job may be active before it is terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
}

/// `spec.pod`: scheduling and identity settings of the pod(s).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodConfig {
    /// Service account to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secrets used to pull images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<core::LocalObjectReference>,
    /// Node labels the pod must land on.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub node_selector: IndexMap<String, String>,
    /// Labels added to the pod.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Annotations added to the pod.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    /// Extra volumes (mount them with `container.volumeMounts`).
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<core::Volume>,
    /// Seconds the pod may be active before it is terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// DNS policy (`ClusterFirst`, `Default`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// Node to schedule onto directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Pod security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Do not default `fsGroup` to 1001.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_fs_group_defaulting: Option<bool>,
    /// Pod hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Pod subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// Scheduling affinity.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::any_object")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<core::Affinity>,
    /// Tolerations of node taints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<core::Toleration>,
    /// Extra `/etc/hosts` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_aliases: Vec<core::HostAlias>,
    /// Priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Priority value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// DNS settings merged with the DNS policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<core::PodDNSConfig>,
    /// Preemption policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<String>,
    /// How pods spread across topology domains.
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::any_list"))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<core::TopologySpreadConstraint>,
    /// Gates that block scheduling until removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduling_gates: Vec<core::PodSchedulingGate>,
    /// Dynamic resource claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_claims: Vec<core::PodResourceClaim>,
    /// Share the host's PID namespace.
    #[serde(default, rename = "hostPID", skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
}
