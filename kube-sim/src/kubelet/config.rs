//! What a pod takes from the API before its containers start: volumes
//! (emptyDir folders; configMap, secret and downwardAPI files with `items`
//! and `defaultMode`; hostPath binds) and container environments (`value`
//! with `$(VAR)` expansion, `valueFrom` secretKeyRef / configMapKeyRef /
//! fieldRef, `envFrom`). A missing ConfigMap or Secret that is not
//! optional is an error the caller retries, as the kubelet does.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::store::Store;

/// The string data of a ConfigMap or Secret (Secret data base64-decoded).
fn data_of(store: &Store, kind: &str, ns: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    let registry = store.registry();
    let t = registry.find("", "v1", kind)?;
    let object = store.get(&t, ns, name).ok()?;
    let mut out = BTreeMap::new();
    if kind == "secrets" {
        for (k, v) in object["data"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).unwrap_or_default();
            out.insert(k.clone(), bytes);
        }
        for (k, v) in object["stringData"].as_object().into_iter().flatten() {
            out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
        }
    } else {
        for (k, v) in object["data"].as_object().into_iter().flatten() {
            out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
        }
        for (k, v) in object["binaryData"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).unwrap_or_default();
            out.insert(k.clone(), bytes);
        }
    }
    Some(out)
}

/// A field of the pod by `fieldPath`.
pub(crate) fn field_ref(pod: &Value, path: &str) -> Option<String> {
    let meta = &pod["metadata"];
    let value = match path {
        "metadata.name" => meta["name"].as_str()?.to_string(),
        "metadata.namespace" => meta["namespace"].as_str()?.to_string(),
        "metadata.uid" => meta["uid"].as_str()?.to_string(),
        "spec.nodeName" => pod["spec"]["nodeName"].as_str()?.to_string(),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"].as_str()?.to_string(),
        "status.podIP" => pod["status"]["podIP"].as_str()?.to_string(),
        "status.hostIP" => pod["status"]["hostIP"].as_str()?.to_string(),
        "metadata.labels" | "metadata.annotations" => {
            let map = &meta[path.trim_start_matches("metadata.")];
            let mut lines: Vec<String> = map
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
                .collect();
            lines.sort();
            lines.join("\n")
        }
        other => {
            let (field, key) = other.split_once("['")?;
            let key = key.strip_suffix("']")?;
            meta[field.trim_start_matches("metadata.")][key].as_str()?.to_string()
        }
    };
    Some(value)
}

/// `$(VAR)` expansion as the kubelet does it (`$$` escapes).
pub(crate) fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("$(")
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..end + 3]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A container's environment: defaults, `envFrom`, then `env` in order.
pub(crate) fn environment(store: &Store, pod: &Value, container: &Value) -> Result<Vec<(String, String)>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOSTNAME".into(), pod["metadata"]["name"].as_str().unwrap_or("").into()),
        ("HOME".into(), "/root".into()),
    ];
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(x, _)| x != &k);
        env.push((k, v));
    };
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        let (kind, r) = if from.get("secretRef").is_some() { ("secrets", &from["secretRef"]) } else { ("configmaps", &from["configMapRef"]) };
        let name = r["name"].as_str().unwrap_or("");
        match data_of(store, kind, ns, name) {
            Some(data) => {
                for (k, v) in data {
                    set(&mut env, format!("{prefix}{k}"), String::from_utf8_lossy(&v).into_owned());
                }
            }
            None if r["optional"].as_bool() == Some(true) => {}
            None => return Err(format!("{} \"{name}\" not found", if kind == "secrets" { "secret" } else { "configmap" })),
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or("").to_string();
        let value = if let Some(v) = var["value"].as_str() {
            expand(v, &env)
        } else if let Some(from) = var.get("valueFrom") {
            let (kind, r) = if from.get("secretKeyRef").is_some() {
                ("secrets", &from["secretKeyRef"])
            } else if from.get("configMapKeyRef").is_some() {
                ("configmaps", &from["configMapKeyRef"])
            } else if let Some(f) = from["fieldRef"]["fieldPath"].as_str() {
                set(&mut env, name, field_ref(pod, f).unwrap_or_default());
                continue;
            } else {
                set(&mut env, name, "0".into());
                continue;
            };
            let source = r["name"].as_str().unwrap_or("");
            let key = r["key"].as_str().unwrap_or("");
            match data_of(store, kind, ns, source).and_then(|d| d.get(key).cloned()) {
                Some(v) => String::from_utf8_lossy(&v).into_owned(),
                None if r["optional"].as_bool() == Some(true) => continue,
                None => {
                    let what = if kind == "secrets" { "secret" } else { "configmap" };
                    return Err(format!("couldn't find key {key} in {what} {ns}/{source}"));
                }
            }
        } else {
            String::new()
        };
        set(&mut env, name, value);
    }
    Ok(env)
}

fn write_file(dir: &Path, rel: &str, bytes: &[u8], mode: u32) -> Result<(), String> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))
        .map_err(|e| format!("setting the mode of {}: {e}", path.display()))
}

/// Creates the pod's volumes under `dir`; returns (volume name, host path).
pub(crate) fn volumes(store: &Store, pod: &Value, dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut out = Vec::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let path = dir.join(&name);
        if let Some(host) = v["hostPath"]["path"].as_str() {
            out.push((name, PathBuf::from(host)));
            continue;
        }
        std::fs::create_dir_all(&path).map_err(|e| format!("creating volume {name} at {}: {e}", path.display()))?;
        let source = if v.get("configMap").is_some() {
            Some(("configmaps", &v["configMap"], v["configMap"]["name"].as_str().unwrap_or("")))
        } else if v.get("secret").is_some() {
            Some(("secrets", &v["secret"], v["secret"]["secretName"].as_str().unwrap_or("")))
        } else {
            None
        };
        if let Some((kind, spec, source_name)) = source {
            let mode = spec["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            match data_of(store, kind, ns, source_name) {
                Some(data) => match spec["items"].as_array() {
                    Some(items) => {
                        for item in items {
                            let key = item["key"].as_str().unwrap_or("");
                            let Some(bytes) = data.get(key) else {
                                if spec["optional"].as_bool() == Some(true) {
                                    continue;
                                }
                                return Err(format!("configmap/secret {source_name}: key {key} not found"));
                            };
                            let mode = item["mode"].as_u64().map_or(mode, |m| m as u32);
                            write_file(&path, item["path"].as_str().unwrap_or(key), bytes, mode)?;
                        }
                    }
                    None => {
                        for (key, bytes) in &data {
                            write_file(&path, key, bytes, mode)?;
                        }
                    }
                },
                None if spec["optional"].as_bool() == Some(true) => {}
                None => {
                    let what = if kind == "secrets" { "secret" } else { "configmap" };
                    return Err(format!("MountVolume.SetUp failed for volume \"{name}\" : {what} \"{source_name}\" not found"));
                }
            }
        } else if let Some(items) = v["downwardAPI"]["items"].as_array() {
            let mode = v["downwardAPI"]["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            for item in items {
                let value = item["fieldRef"]["fieldPath"].as_str().and_then(|f| field_ref(pod, f)).unwrap_or_default();
                write_file(&path, item["path"].as_str().unwrap_or("value"), value.as_bytes(), mode)?;
            }
        }
        out.push((name, path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y $(B) $$(A) $", &env), "x1y $(B) $(A) $");
    }
}
