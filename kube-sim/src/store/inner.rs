//! Writes under the store's lock: storing a version, removing, the delete
//! rules (finalizers, graceful pod deletion, propagation) and updates
//! (resourceVersion preconditions, status separation, generation).

use serde_json::{Value, json};

use std::sync::Arc;

use super::{Change, DeleteOptions, EventType, HISTORY, Inner, Part, Propagation, name_of, now};
use crate::error::{ApiError, success_status};
use crate::registry::ResourceType;

impl Inner {
    pub(crate) fn emit(
        &mut self,
        key: &str,
        namespace: &str,
        kind: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            key: key.into(),
            namespace: namespace.into(),
            kind,
            object,
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.oldest = old.rv;
            }
        }
        self.pending.push(change);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub(crate) fn get(&self, key: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// Stores `object` as a new version and emits `kind`.
    pub(crate) fn put(&mut self, key: &str, ns: &str, mut object: Value, kind: EventType) -> Value {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let name = name_of(&object).to_string();
        let previous = self
            .objects
            .entry(key.into())
            .or_default()
            .insert((ns.to_string(), name), object.clone());
        let previous = if kind == EventType::Modified {
            previous
        } else {
            None
        };
        self.emit(key, ns, kind, object.clone(), previous);
        object
    }

    /// Removes an object for good and emits `DELETED`.
    pub(crate) fn remove(&mut self, key: &str, ns: &str, name: &str) -> Option<Value> {
        self.gc_needed = true;
        let mut object = self
            .objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if key == "apiextensions.k8s.io/customresourcedefinitions" {
            let group = object["spec"]["group"].as_str().unwrap_or("").to_string();
            let plural = object["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or("")
                .to_string();
            self.registry.unregister_crd(&group, &plural);
            let data_key = format!("{group}/{plural}");
            let names: Vec<(String, String)> = self
                .objects
                .get(&data_key)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, n) in names {
                self.remove(&data_key, &ns, &n);
            }
        }
        self.emit(key, ns, EventType::Deleted, object.clone(), None);
        Some(object)
    }

    /// Removes the object when it is being deleted and nothing holds it.
    pub(crate) fn remove_if_released(&mut self, key: &str, ns: &str, name: &str) -> bool {
        let Some(o) = self.get(key, ns, name) else {
            return false;
        };
        let meta = &o["metadata"];
        let deleting = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
        let held = meta["finalizers"].as_array().is_some_and(|f| !f.is_empty())
            || o["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
                && key == "/namespaces";
        let graceful = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) > 0;
        if deleting && !held && !graceful {
            self.remove(key, ns, name);
            return true;
        }
        false
    }

    /// Starts deleting an object: removes it now, or marks it with
    /// deletionTimestamp while finalizers or a running pod hold it.
    pub(crate) fn delete(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let key = t.key();
        let Some(current) = self.get(&key, ns, name).cloned() else {
            return Err(ApiError::not_found(t, name));
        };
        let meta = &current["metadata"];
        let uid = meta["uid"].as_str().unwrap_or("").to_string();
        if let Some(want) = &opts.uid
            && want != &uid
        {
            return Err(ApiError::conflict(
                t,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        if let Some(want) = &opts.resource_version
            && Some(want.as_str()) != meta["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(
                t,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    meta["resourceVersion"].as_str().unwrap_or("")
                ),
            ));
        }
        let propagation = opts.propagation.unwrap_or(if key == "batch/jobs" {
            Propagation::Orphan
        } else {
            Propagation::Background
        });
        let mut object = current.clone();
        let already = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
        let mut finalizers: Vec<Value> = meta["finalizers"].as_array().cloned().unwrap_or_default();
        let extra = match propagation {
            Propagation::Foreground => Some("foregroundDeletion"),
            Propagation::Orphan => Some("orphan"),
            Propagation::Background => None,
        };
        if let Some(f) = extra
            && !already
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(json!(f));
        }
        let grace = if key == "/pods" {
            let running = current["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
                && !matches!(
                    current["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                );
            let default = current["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            if running {
                opts.grace.unwrap_or(default).max(0)
            } else {
                0
            }
        } else {
            0
        };
        // A namespace always waits for the garbage collector to empty it.
        if finalizers.is_empty() && grace == 0 && key != "/namespaces" {
            let removed = self.remove(&key, ns, name).unwrap_or(current);
            let _ = removed;
            return Ok(success_status(t, name, &uid));
        }
        if already {
            // A second delete may only shorten the grace period.
            let old = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
            if grace < old {
                object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                let stored = self.put(&key, ns, object, EventType::Modified);
                if self.remove_if_released(&key, ns, name) {
                    return Ok(success_status(t, name, &uid));
                }
                return Ok(stored);
            }
            return Ok(current);
        }
        self.gc_needed = true;
        object["metadata"]["deletionTimestamp"] = json!(now());
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        object["metadata"]["finalizers"] = json!(finalizers);
        if key == "/namespaces" {
            object["status"]["phase"] = json!("Terminating");
        }
        Ok(self.put(&key, ns, object, EventType::Modified))
    }
}

pub(crate) fn update_locked(
    inner: &mut Inner,
    t: &ResourceType,
    ns: &str,
    name: &str,
    mut object: Value,
    part: Part,
    check_rv: bool,
) -> Result<Value, ApiError> {
    let key = t.key();
    let current = inner
        .get(&key, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(t, name))?;
    if let Err((field, message)) = super::names::check_shape(&object) {
        return Err(ApiError::invalid(
            t,
            name,
            &field,
            "FieldValueInvalid",
            &message,
        ));
    }
    if let Some(n) = object["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if check_rv
        && let Some(rv) = object["metadata"]["resourceVersion"]
            .as_str()
            .filter(|r| !r.is_empty())
        && Some(rv) != current["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::modified(t, name));
    }
    let mut next = match part {
        Part::Status => {
            let mut next = current.clone();
            next["status"] = object.get("status").cloned().unwrap_or(Value::Null);
            next
        }
        Part::Main | Part::All => {
            if part == Part::Main && t.status {
                match current.get("status") {
                    Some(s) => object["status"] = s.clone(),
                    None => {
                        if let Some(o) = object.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            // Fields the server owns.
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                match current["metadata"].get(field) {
                    Some(v) => object["metadata"][field] = v.clone(),
                    None => {
                        if let Some(m) = object["metadata"].as_object_mut() {
                            m.remove(field);
                        }
                    }
                }
            }
            object["metadata"]["name"] = json!(name);
            object["apiVersion"] = current["apiVersion"].clone();
            object["kind"] = current["kind"].clone();
            object
        }
    };
    if let Some(m) = next["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    // A deleting object may not gain finalizers back once they are gone.
    if spec_of(&next) != spec_of(&current)
        && let Some(g) = current["metadata"]["generation"].as_i64()
    {
        next["metadata"]["generation"] = json!(g + 1);
    }
    let mut probe = next.clone();
    probe["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    if probe == current {
        return Ok(current);
    }
    if key == "apiextensions.k8s.io/customresourcedefinitions" && part != Part::Status {
        inner
            .registry
            .register_crd(&next)
            .map_err(|msg| ApiError::invalid(t, name, "spec", "FieldValueRequired", &msg))?;
    }
    let stored = inner.put(&key, ns, next, EventType::Modified);
    if inner.remove_if_released(&key, ns, name) {
        let mut gone = stored;
        gone["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        return Ok(gone);
    }
    Ok(stored)
}

/// What a generation bump compares: everything but metadata and status.
fn spec_of(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}
