//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch and server-side apply.
//!
//! Strategic merge patch is a merge patch except that the well-known lists
//! of named objects (`containers`, `volumes`, `env`, `volumeMounts`, ...)
//! are merged item by item on their merge key, `$patch: delete` removes an
//! item and `$setElementOrder/...`/`$retainKeys` directives are dropped.
//! Server-side apply merges the applied configuration into the live object
//! the same way (create when absent); it tracks no field ownership, so
//! fields a manager stops applying are kept and conflicts never occur
//! (`force` has nothing to override).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch kinds, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (or `+cbor` is refused).
    Apply,
}

impl PatchKind {
    /// The kind for a content type.
    pub(crate) fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        Ok(match base {
            "application/merge-patch+json" => Self::Merge,
            "application/json-patch+json" => Self::Json,
            "application/strategic-merge-patch+json" => Self::Strategic,
            "application/apply-patch+yaml" => Self::Apply,
            other => return Err(ApiError::unsupported_media_type(other)),
        })
    }
}

/// Parses a patch body: JSON, or YAML for apply.
pub(crate) fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    if kind == PatchKind::Apply {
        if let Ok(v) = serde_json::from_slice(body) {
            return Ok(v);
        }
        let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(format!("apply body is not UTF-8: {e}")))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Applies a parsed patch to `target`.
pub(crate) fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match kind {
        PatchKind::Merge => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("the server rejected our request due to an error in our request: {e}")))?;
            json_patch::patch(target, &ops).map_err(|e| {
                ApiError::new_invalid_patch(format!("the server rejected our request due to an error in our request: {e}"))
            })
        }
        PatchKind::Strategic | PatchKind::Apply => {
            strategic_merge(target, patch, "");
            Ok(())
        }
    }
}

impl ApiError {
    /// 422 for a JSON patch that does not apply (a failed `test` op, a
    /// missing path), as the real server answers it.
    fn new_invalid_patch(message: String) -> Self {
        Self { code: 422, reason: "Invalid".into(), message, details: None }
    }
}

/// The merge key of a list field, for strategic merge.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets"
        | "hostAliases" => match field {
            "hostAliases" => "ip",
            _ => "name",
        },
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        _ => return None,
    })
}

fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        *target = Value::Object(replaced);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(gone)) = (map.get_mut(list), value) {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Array(items) => match (merge_key(key), map.get_mut(key)) {
                (Some(mk), Some(Value::Array(current))) if items.iter().all(Value::is_object) => {
                    merge_list(current, items, mk);
                }
                _ => {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                        .cloned()
                        .collect();
                    map.insert(key.clone(), Value::Array(cleaned));
                }
            },
            Value::Object(_) => {
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, value, key);
            }
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
    let _ = field;
}

fn merge_list(current: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key).cloned();
        let pos = current.iter().position(|c| id.is_some() && c.get(key) == id.as_ref());
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                current.remove(i);
            }
            (Some(i), false) => strategic_merge(&mut current[i], item, key),
            (None, true) => {}
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item, key);
                current.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strategic_merges_named_lists() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "z", "env": [{"name": "B", "value": "2"}]}, {"name": "b", "$patch": "delete"}]
        }});
        apply(PatchKind::Strategic, &mut pod, &patch).unwrap();
        assert_eq!(pod, json!({"spec": {"containers": [
            {"name": "a", "image": "z", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
        ]}}));
    }

    #[test]
    fn json_patch_test_failure_is_invalid() {
        let mut v = json!({"a": 1});
        let err = apply(PatchKind::Json, &mut v, &json!([{"op": "test", "path": "/a", "value": 2}])).unwrap_err();
        assert_eq!(err.code, 422);
        apply(PatchKind::Json, &mut v, &json!([{"op": "replace", "path": "/a", "value": 2}])).unwrap();
        assert_eq!(v, json!({"a": 2}));
    }

    #[test]
    fn apply_body_may_be_yaml() {
        let v = parse_body(PatchKind::Apply, b"metadata:\n  name: x\ndata:\n  k: v\n").unwrap();
        assert_eq!(v, json!({"metadata": {"name": "x"}, "data": {"k": "v"}}));
    }
}
