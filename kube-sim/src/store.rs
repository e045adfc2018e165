//! The object store: every object as JSON under its resource's storage key,
//! namespace and name; one global resourceVersion counter; a bounded history
//! of changes for watches (older versions answer `410 Gone`); a broadcast of
//! every change to watches and controllers. All writes (REST and
//! controllers) go through here, so metadata rules live in one place:
//! uid/creationTimestamp/generation, resourceVersion preconditions, status
//! subresource separation, finalizers and deletionTimestamp, and the
//! garbage collector (`gc.rs`) run after every write.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::{ApiError, success_status};
use crate::registry::{Registry, ResourceType};
use crate::select::Selectors;
use crate::{defaults, gc};

/// How many changes watches can resume from before `410 Gone`.
const HISTORY: usize = 20_000;

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches and controllers see it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The resourceVersion the change made.
    pub(crate) rv: u64,
    /// Storage key of the resource (`/pods`, `batch/jobs`).
    pub(crate) key: String,
    /// Namespace ("" for cluster-scoped).
    pub(crate) namespace: String,
    /// Event type.
    pub(crate) kind: EventType,
    /// The object after the change (the last state for `DELETED`).
    pub(crate) object: Value,
}

/// Which part of an object a write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: status is kept as stored.
    Main,
    /// The `/status` subresource: only status changes.
    Status,
    /// Controllers: everything as given.
    All,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Dependents are deleted after the owner, in the background.
    Background,
    /// Dependents are deleted first; the owner waits with a finalizer.
    Foreground,
    /// Dependents lose their ownerReference and stay.
    Orphan,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    /// `gracePeriodSeconds` (pods only; 0 forces immediate removal).
    pub(crate) grace: Option<i64>,
    /// `propagationPolicy` (default: Orphan for batch/v1 Jobs as the real
    /// server does, Background otherwise).
    pub(crate) propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub(crate) uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub(crate) resource_version: Option<String>,
}

pub(crate) type Objects = HashMap<String, BTreeMap<(String, String), Value>>;

pub(crate) struct Inner {
    pub(crate) rv: u64,
    /// Watches may resume from any version >= this one.
    pub(crate) oldest: u64,
    pub(crate) objects: Objects,
    pub(crate) history: VecDeque<Arc<Change>>,
    pub(crate) registry: Registry,
    pending: Vec<Arc<Change>>,
}

/// The store (cheap to share behind an `Arc`).
pub(crate) struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
    expired: broadcast::Sender<()>,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

impl Inner {
    pub(crate) fn emit(&mut self, key: &str, namespace: &str, kind: EventType, object: Value) {
        let change = Arc::new(Change { rv: self.rv, key: key.into(), namespace: namespace.into(), kind, object });
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
        self.objects.get(key)?.get(&(ns.to_string(), name.to_string()))
    }

    /// Stores `object` as a new version and emits `kind`.
    pub(crate) fn put(&mut self, key: &str, ns: &str, mut object: Value, kind: EventType) -> Value {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let name = name_of(&object).to_string();
        self.objects
            .entry(key.into())
            .or_default()
            .insert((ns.to_string(), name), object.clone());
        self.emit(key, ns, kind, object.clone());
        object
    }

    /// Removes an object for good and emits `DELETED`.
    pub(crate) fn remove(&mut self, key: &str, ns: &str, name: &str) -> Option<Value> {
        let mut object = self.objects.get_mut(key)?.remove(&(ns.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if key == "apiextensions.k8s.io/customresourcedefinitions" {
            let group = object["spec"]["group"].as_str().unwrap_or("").to_string();
            let plural = object["spec"]["names"]["plural"].as_str().unwrap_or("").to_string();
            self.registry.unregister_crd(&group, &plural);
            let data_key = format!("{group}/{plural}");
            let names: Vec<(String, String)> =
                self.objects.get(&data_key).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            for (ns, n) in names {
                self.remove(&data_key, &ns, &n);
            }
        }
        self.emit(key, ns, EventType::Deleted, object.clone());
        Some(object)
    }

    /// Removes the object when it is being deleted and nothing holds it.
    pub(crate) fn remove_if_released(&mut self, key: &str, ns: &str, name: &str) -> bool {
        let Some(o) = self.get(key, ns, name) else { return false };
        let meta = &o["metadata"];
        let deleting = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
        let held = meta["finalizers"].as_array().is_some_and(|f| !f.is_empty())
            || o["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) && key == "/namespaces";
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
            return Err(ApiError::conflict(t, name, &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}")));
        }
        if let Some(want) = &opts.resource_version
            && Some(want.as_str()) != meta["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(t, name, &format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                meta["resourceVersion"].as_str().unwrap_or("")
            )));
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
            let running = current["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty())
                && !matches!(current["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            let default = current["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
            if running { opts.grace.unwrap_or(default).max(0) } else { 0 }
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
        object["metadata"]["deletionTimestamp"] = json!(now());
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        object["metadata"]["finalizers"] = json!(finalizers);
        if key == "/namespaces" {
            object["status"]["phase"] = json!("Terminating");
        }
        Ok(self.put(&key, ns, object, EventType::Modified))
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store with the built-in types and the usual namespaces.
    pub(crate) fn new() -> Self {
        let (changes, _) = broadcast::channel(8192);
        let (expired, _) = broadcast::channel(4);
        let store = Self {
            inner: Mutex::new(Inner {
                rv: 0,
                oldest: 0,
                objects: HashMap::new(),
                history: VecDeque::new(),
                registry: Registry::default(),
                pending: Vec::new(),
            }),
            changes,
            expired,
        };
        if let Some(t) = store.registry().find("", "v1", "namespaces") {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let _ = store.create(&t, "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
            }
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a write: then the garbage collector, then broadcasts the changes.
    fn write<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.lock();
        let result = f(&mut inner);
        gc::collect(&mut inner);
        // Sent under the lock: whoever reads the resourceVersion afterwards
        // finds every change up to it already in the channel (bookmarks).
        let pending = std::mem::take(&mut inner.pending);
        for change in pending {
            let _ = self.changes.send(change);
        }
        drop(inner);
        result
    }

    /// A copy of the type registry (built-ins and CRDs).
    pub(crate) fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// The current resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every change from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Signals every open watch to end with `410 Expired`.
    pub(crate) fn expired(&self) -> broadcast::Receiver<()> {
        self.expired.subscribe()
    }

    /// Ends every open watch with 410 and forgets the history, so only the
    /// current resourceVersion can be watched from.
    pub(crate) fn expire_watches(&self) {
        {
            let mut inner = self.lock();
            inner.history.clear();
            inner.oldest = inner.rv;
        }
        let _ = self.expired.send(());
    }

    /// One object.
    pub(crate) fn get(&self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .get(&t.key(), ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(t, name))
    }

    /// Matching objects (in one namespace or all) and the list's resourceVersion.
    pub(crate) fn list(&self, t: &ResourceType, ns: Option<&str>, sel: &Selectors) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .get(&t.key())
            .map(|m| {
                m.iter()
                    .filter(|((n, _), o)| ns.is_none_or(|ns| ns == n) && sel.matches(o))
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, inner.rv)
    }

    /// What a watch starts with: the changes after `rv` (or the current
    /// objects as `ADDED` without one) and a receiver for the rest, taken
    /// under one lock so nothing falls between them.
    pub(crate) fn watch(
        &self,
        t: &ResourceType,
        ns: Option<&str>,
        rv: Option<u64>,
        sel: &Selectors,
    ) -> Result<(Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>), ApiError> {
        let inner = self.lock();
        let key = t.key();
        let wanted = |c: &Change| c.key == key && ns.is_none_or(|n| n == c.namespace);
        let backlog = match rv {
            Some(rv) if rv > 0 => {
                if rv < inner.oldest {
                    return Err(ApiError::gone(rv, inner.oldest));
                }
                inner.history.iter().filter(|c| c.rv > rv && wanted(c)).cloned().collect()
            }
            _ => inner
                .objects
                .get(&key)
                .map(|m| {
                    m.iter()
                        .filter(|((n, _), o)| ns.is_none_or(|ns| ns == n) && sel.matches(o))
                        .map(|((n, _), o)| {
                            Arc::new(Change {
                                rv: inner.rv,
                                key: key.clone(),
                                namespace: n.clone(),
                                kind: EventType::Added,
                                object: o.clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok((backlog, self.changes.subscribe()))
    }

    /// Creates an object (name or generateName required).
    pub(crate) fn create(&self, t: &ResourceType, ns: &str, mut object: Value) -> Result<Value, ApiError> {
        self.write(|inner| {
            let key = t.key();
            if !object.is_object() || !object["metadata"].is_object() && !object["metadata"].is_null() {
                return Err(ApiError::bad_request("the request body is not a Kubernetes object"));
            }
            let mut name = name_of(&object).to_string();
            if name.is_empty() {
                let Some(prefix) = object["metadata"]["generateName"].as_str().filter(|p| !p.is_empty()) else {
                    return Err(ApiError::invalid(t, "", "metadata.name", "FieldValueRequired", "Required value: name or generateName is required"));
                };
                name = loop {
                    let candidate = format!("{prefix}{}", random_suffix());
                    if inner.get(&key, ns, &candidate).is_none() {
                        break candidate;
                    }
                };
            }
            if let Some(bad) = invalid_name(&name, t) {
                return Err(ApiError::invalid(t, &name, "metadata.name", "FieldValueInvalid", &format!("Invalid value: \"{name}\": {bad}")));
            }
            if let Some(body_ns) = object["metadata"]["namespace"].as_str().filter(|n| !n.is_empty())
                && t.namespaced
                && body_ns != ns
            {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object does not match the namespace sent on the request ({body_ns} != {ns})"
                )));
            }
            if t.namespaced {
                let ns_type = inner.registry.find("", "v1", "namespaces");
                match inner.get("/namespaces", "", ns) {
                    None => {
                        return Err(ns_type.map_or_else(|| ApiError::no_route(ns), |nt| ApiError::not_found(&nt, ns)));
                    }
                    Some(n) if n["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null()) => {
                        return Err(ApiError::forbidden(t, &name, &format!("unable to create new content in namespace {ns} because it is being terminated")));
                    }
                    Some(_) => {}
                }
            }
            if inner.get(&key, ns, &name).is_some() {
                return Err(ApiError::already_exists(t, &name));
            }
            let meta = &mut object["metadata"];
            meta["name"] = json!(name);
            if t.namespaced {
                meta["namespace"] = json!(ns);
            } else if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
            meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
            meta["creationTimestamp"] = json!(now());
            if let Some(m) = meta.as_object_mut() {
                m.remove("deletionTimestamp");
                m.remove("deletionGracePeriodSeconds");
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
            object["apiVersion"] = json!(t.api_version());
            object["kind"] = json!(t.kind);
            if object.get("spec").is_some() || t.custom {
                object["metadata"]["generation"] = json!(1);
            }
            if t.status && key != "/nodes"
                && let Some(o) = object.as_object_mut()
            {
                o.remove("status");
            }
            defaults::on_create(&key, &mut object).map_err(|(field, msg)| ApiError::invalid(t, &name, &field, "FieldValueInvalid", &msg))?;
            if key == "apiextensions.k8s.io/customresourcedefinitions" {
                inner
                    .registry
                    .register_crd(&object)
                    .map_err(|msg| ApiError::invalid(t, &name, "spec", "FieldValueRequired", &msg))?;
                defaults::crd_established(&mut object);
            }
            Ok(inner.put(&key, ns, object, EventType::Added))
        })
    }

    /// Replaces an object (PUT), or just its status.
    pub(crate) fn update(&self, t: &ResourceType, ns: &str, name: &str, object: Value, part: Part) -> Result<Value, ApiError> {
        self.write(|inner| update_locked(inner, t, ns, name, object, part, true))
    }

    /// Changes an object with `f` under the lock (patches, controllers).
    /// `create` is called instead when the object does not exist and it is given.
    pub(crate) fn modify(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        part: Part,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        self.write(|inner| {
            let mut object = inner.get(&t.key(), ns, name).cloned().ok_or_else(|| ApiError::not_found(t, name))?;
            let before_rv = object["metadata"]["resourceVersion"].clone();
            f(&mut object)?;
            // A patch that names a resourceVersion is a precondition.
            let check = object["metadata"]["resourceVersion"] != before_rv;
            update_locked(inner, t, ns, name, object, part, check)
        })
    }

    /// Deletes an object (see [`DeleteOptions`]).
    pub(crate) fn delete(&self, t: &ResourceType, ns: &str, name: &str, opts: &DeleteOptions) -> Result<Value, ApiError> {
        self.write(|inner| inner.delete(t, ns, name, opts))
    }

    /// Deletes every matching object; returns the list of what was deleted.
    pub(crate) fn delete_collection(&self, t: &ResourceType, ns: Option<&str>, sel: &Selectors, opts: &DeleteOptions) -> Vec<Value> {
        let (items, _) = self.list(t, ns, sel);
        self.write(|inner| {
            let mut out = Vec::new();
            for item in items {
                let n = item["metadata"]["namespace"].as_str().unwrap_or("").to_string();
                if inner.delete(t, &n, name_of(&item), opts).is_ok() {
                    out.push(item);
                }
            }
            out
        })
    }

    /// The kubelet's final delete of a pod whose processes are gone: the pod
    /// goes away unless finalizers hold it.
    pub(crate) fn release_pod(&self, ns: &str, name: &str) {
        self.write(|inner| {
            let Some(mut pod) = inner.get("/pods", ns, name).cloned() else { return };
            if pod["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) != 0 {
                pod["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                inner.put("/pods", ns, pod, EventType::Modified);
            }
            inner.remove_if_released("/pods", ns, name);
        });
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
    let current = inner.get(&key, ns, name).cloned().ok_or_else(|| ApiError::not_found(t, name))?;
    if !object.is_object() {
        return Err(ApiError::bad_request("the request body is not a Kubernetes object"));
    }
    if let Some(n) = object["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!("the name of the object ({n}) does not match the name on the URL ({name})")));
    }
    if check_rv
        && let Some(rv) = object["metadata"]["resourceVersion"].as_str().filter(|r| !r.is_empty())
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
            for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"] {
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

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Why a name is not a valid DNS subdomain (or, for namespaces, label).
fn invalid_name(name: &str, t: &ResourceType) -> Option<String> {
    let max = if t.plural == "namespaces" { 63 } else { 253 };
    if name.len() > max {
        return Some(format!("must be no more than {max} characters"));
    }
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok_chars && ok_ends {
        return None;
    }
    if t.custom || t.plural == "events" || t.group.starts_with("rbac") {
        // Looser rules (path segment names) for these.
        return (name.contains('/') || name == "." || name == "..").then(|| "may not contain '/'".to_string());
    }
    Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into())
}
