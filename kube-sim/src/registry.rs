//! The resource types the server knows: built-ins and CRDs registered when
//! their definition is created. Objects are stored generically as JSON, so a
//! type is only what the REST layer needs to route, discover and name it.

use std::sync::Arc;

use serde_json::{Value, json};

/// One resource type as served under `/api/v1` or `/apis/GROUP/VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// API group, empty for the core group.
    pub(crate) group: String,
    /// API version (`v1`).
    pub(crate) version: String,
    /// Kind (`Pod`).
    pub(crate) kind: String,
    /// Plural resource name, the URL segment (`pods`).
    pub(crate) plural: String,
    /// Singular name (`pod`).
    pub(crate) singular: String,
    /// Short names for kubectl (`po`).
    pub(crate) short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub(crate) namespaced: bool,
    /// Has a `/status` subresource (main writes ignore `status`).
    pub(crate) status: bool,
    /// Defined by a CRD (removed with it).
    pub(crate) custom: bool,
}

impl ResourceType {
    /// `apiVersion` as objects carry it (`v1`, `batch/v1`).
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key shared by every version of a resource (`batch/jobs`).
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// The name used in error messages (`pods`, `jobs.batch`).
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Built-in types: (group, version, kind, plural, short names, namespaced, status).
type BuiltIn = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    bool,
);

const BUILT_IN: &[BuiltIn] = &[
    ("", "v1", "Namespace", "namespaces", &["ns"], false, true),
    ("", "v1", "Pod", "pods", &["po"], true, true),
    ("", "v1", "ConfigMap", "configmaps", &["cm"], true, false),
    ("", "v1", "Secret", "secrets", &[], true, false),
    ("", "v1", "Service", "services", &["svc"], true, true),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        &["sa"],
        true,
        false,
    ),
    ("", "v1", "Event", "events", &["ev"], true, false),
    ("", "v1", "Node", "nodes", &["no"], false, true),
    // Stored only (no volumes are provisioned): the agent's install has one.
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc"],
        true,
        true,
    ),
    ("batch", "v1", "Job", "jobs", &[], true, true),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        &[],
        true,
        false,
    ),
    (
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        &["ev"],
        true,
        false,
    ),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        &["deploy"],
        true,
        true,
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        &["sts"],
        true,
        true,
    ),
    ("apps", "v1", "DaemonSet", "daemonsets", &["ds"], true, true),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        &["ing"],
        true,
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        &[],
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        &[],
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        &[],
        false,
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        false,
        true,
    ),
];

/// Every type the server serves, looked up by group, version and plural.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = BUILT_IN
            .iter()
            .map(
                |(group, version, kind, plural, short, namespaced, status)| {
                    Arc::new(ResourceType {
                        group: (*group).into(),
                        version: (*version).into(),
                        kind: (*kind).into(),
                        plural: (*plural).into(),
                        singular: kind.to_lowercase(),
                        short_names: short.iter().map(|s| (*s).to_string()).collect(),
                        namespaced: *namespaced,
                        status: *status,
                        custom: false,
                    })
                },
            )
            .collect();
        Self { types }
    }
}

impl Registry {
    /// The type served at `group/version/plural`.
    pub(crate) fn find(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Every type with the same storage key (all versions of one resource).
    pub(crate) fn by_key(&self, key: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.key() == key).cloned()
    }

    /// All types, in registration order.
    pub(crate) fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Group/version pairs in registration order, core first.
    pub(crate) fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for t in &self.types {
            let pair = (t.group.clone(), t.version.clone());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
        out
    }

    /// Registers (or re-registers) the served versions of a CRD object.
    /// Returns an error message when the definition lacks what routing needs.
    pub(crate) fn register_crd(&mut self, crd: &Value) -> Result<(), String> {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().ok_or("spec.group: Required value")?;
        let names = &spec["names"];
        let plural = names["plural"]
            .as_str()
            .ok_or("spec.names.plural: Required value")?;
        let kind = names["kind"]
            .as_str()
            .ok_or("spec.names.kind: Required value")?;
        let singular = names["singular"]
            .as_str()
            .map_or_else(|| kind.to_lowercase(), str::to_string);
        let short_names: Vec<String> = names["shortNames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let versions = spec["versions"]
            .as_array()
            .ok_or("spec.versions: Required value")?;
        self.unregister_crd(group, plural);
        for version in versions {
            if version["served"].as_bool() == Some(false) {
                continue;
            }
            let Some(name) = version["name"].as_str() else {
                continue;
            };
            self.types.push(Arc::new(ResourceType {
                group: group.into(),
                version: name.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: singular.clone(),
                short_names: short_names.clone(),
                namespaced,
                status: version["subresources"].get("status").is_some(),
                custom: true,
            }));
        }
        Ok(())
    }

    /// Forgets a CRD's types.
    pub(crate) fn unregister_crd(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.custom && t.group == group && t.plural == plural));
    }
}

/// The `APIResourceList` of one group/version, for discovery.
pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry
        .all()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let mut resources = Vec::new();
    for t in types {
        let mut entry = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": verbs, "storageVersionHash": "",
        });
        if !t.short_names.is_empty() {
            entry["shortNames"] = json!(t.short_names);
        }
        if matches!(
            t.plural.as_str(),
            "pods" | "services" | "jobs" | "deployments" | "statefulsets" | "daemonsets"
        ) || t.custom
        {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if t.plural == "pods" && t.group.is_empty() {
            for (sub, kind, verbs) in [
                ("log", "Pod", json!(["get"])),
                ("exec", "PodExecOptions", json!(["create", "get"])),
                ("eviction", "Eviction", json!(["create"])),
            ] {
                let mut e = json!({
                    "name": format!("pods/{sub}"), "singularName": "", "namespaced": true,
                    "kind": kind, "verbs": verbs,
                });
                if sub == "eviction" {
                    e["group"] = json!("policy");
                    e["version"] = json!("v1");
                }
                resources.push(e);
            }
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version, "resources": resources,
    }))
}

/// The `APIGroup` object of one named group, for discovery.
pub(crate) fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let versions: Vec<Value> = registry
        .group_versions()
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first()?.clone();
    Some(json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": group,
        "versions": versions, "preferredVersion": preferred,
    }))
}

/// The `APIGroupList` for `/apis`.
pub(crate) fn api_group_list(registry: &Registry) -> Value {
    let mut groups: Vec<String> = Vec::new();
    for (g, _) in registry.group_versions() {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .filter_map(|g| api_group(registry, g))
        .map(|mut g| {
            if let Some(o) = g.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            g
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}
