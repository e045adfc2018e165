//! A minimal OpenAPI v3 document per group/version: enough for `kubectl
//! apply` to see that the server validates fields itself (each type's
//! PATCH operation lists the `fieldValidation` query parameter, tagged
//! with `x-kubernetes-group-version-kind`), so it skips client-side schema
//! validation. No schemas are served: kube-sim does not validate fields
//! (`fieldValidation=Strict` is accepted and not enforced).

use serde_json::{Map, Value, json};

use crate::registry::Registry;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `/openapi/v3`: the index of group/version documents.
pub(super) fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, v) in registry.group_versions() {
        let p = gv_path(&g, &v);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/G/V`.
pub(super) fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let params = json!([
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ]);
    let mut any = false;
    for t in registry.all().iter().filter(|t| t.group == group && t.version == version) {
        any = true;
        let base = format!("/{}", gv_path(group, version));
        let path = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{base}/{}/{{name}}", t.plural)
        };
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        paths.insert(path, json!({
            "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch", "parameters": params, "responses": {}},
            "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put", "parameters": params, "responses": {}},
        }));
    }
    any.then(|| json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0-kube-sim"}, "paths": paths, "components": {"schemas": {}}}))
}
