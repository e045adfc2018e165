//! The garbage collector, run after every write under the store's lock (so
//! it is deterministic): background cascade through ownerReferences,
//! foreground deletion (`foregroundDeletion` finalizer), orphaning
//! (`orphan` finalizer) and namespace termination.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::store::{DeleteOptions, EventType, Inner, Propagation};

type Id = (String, String, String);

fn deleting(o: &Value) -> bool {
    o["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"].as_array().is_some_and(|a| a.iter().any(|x| x == f))
}

fn owner_uids(o: &Value) -> Vec<String> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["uid"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn all(inner: &Inner) -> Vec<(Id, Value)> {
    let mut out = Vec::new();
    for (key, map) in &inner.objects {
        for ((ns, name), o) in map {
            out.push(((key.clone(), ns.clone(), name.clone()), o.clone()));
        }
    }
    out
}

fn drop_finalizer(inner: &mut Inner, id: &Id, f: &str) {
    let Some(mut o) = inner.get(&id.0, &id.1, &id.2).cloned() else { return };
    if let Some(list) = o["metadata"]["finalizers"].as_array_mut() {
        list.retain(|x| x != f);
    }
    inner.put(&id.0, &id.1, o, EventType::Modified);
    inner.remove_if_released(&id.0, &id.1, &id.2);
}

fn delete_dependent(inner: &mut Inner, id: &Id) {
    if let Some(t) = inner.registry.by_key(&id.0) {
        let opts = DeleteOptions { propagation: Some(Propagation::Background), ..DeleteOptions::default() };
        let _ = inner.delete(&t, &id.1, &id.2, &opts);
    }
}

/// Runs until nothing changes.
pub(crate) fn collect(inner: &mut Inner) {
    for _ in 0..64 {
        if !pass(inner) {
            return;
        }
    }
}

fn pass(inner: &mut Inner) -> bool {
    let objects = all(inner);
    let uids: HashSet<String> =
        objects.iter().filter_map(|(_, o)| o["metadata"]["uid"].as_str().map(str::to_string)).collect();
    let mut changed = false;
    // Dependents whose owners are all gone (background cascade).
    for (id, o) in &objects {
        let owners = owner_uids(o);
        if !owners.is_empty() && !deleting(o) && owners.iter().all(|u| !uids.contains(u)) {
            delete_dependent(inner, id);
            changed = true;
        }
    }
    for (id, o) in &objects {
        if !deleting(o) {
            continue;
        }
        let uid = o["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let dependents: Vec<&(Id, Value)> =
            objects.iter().filter(|(_, d)| owner_uids(d).contains(&uid)).collect();
        if has_finalizer(o, "orphan") {
            for (did, _) in &dependents {
                if let Some(mut d) = inner.get(&did.0, &did.1, &did.2).cloned() {
                    if let Some(refs) = d["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                    }
                    inner.put(&did.0, &did.1, d, EventType::Modified);
                }
            }
            drop_finalizer(inner, id, "orphan");
            changed = true;
        } else if has_finalizer(o, "foregroundDeletion") {
            if dependents.is_empty() {
                drop_finalizer(inner, id, "foregroundDeletion");
                changed = true;
            } else {
                for (did, d) in dependents {
                    if !deleting(d) {
                        delete_dependent(inner, did);
                        changed = true;
                    }
                }
            }
        }
        if id.0 == "/namespaces" {
            let name = &id.2;
            let content: Vec<&(Id, Value)> = objects.iter().filter(|(cid, _)| &cid.1 == name).collect();
            if content.is_empty() {
                if inner.get(&id.0, &id.1, &id.2).is_some() {
                    let mut n = inner.get(&id.0, &id.1, &id.2).cloned().unwrap_or(Value::Null);
                    if n["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
                        n["spec"]["finalizers"] = json!([]);
                        inner.put(&id.0, &id.1, n, EventType::Modified);
                    }
                    changed |= inner.remove_if_released(&id.0, &id.1, &id.2);
                }
            } else {
                for (cid, c) in content {
                    if !deleting(c) {
                        delete_dependent(inner, cid);
                        changed = true;
                    }
                }
            }
        }
    }
    changed
}
