//! The process kubelet of the one node `kube-sim`: it schedules every
//! unbound pod onto the node (pod IP = a distinct loopback address,
//! 127.0.0.2, .3, ...), runs each pod (`pod.rs`) with its containers as
//! bubblewrap processes, keeps their logs (`logs.rs`), serves `pods/log`
//! and `pods/exec` (`exec.rs`), stops pods that are being deleted and
//! releases them once their processes are gone. Losing the node (fault
//! injection) kills every container, marks the pods `Unknown`/`NodeLost`
//! and makes their logs unreadable (500), as an unreachable kubelet would.
//!
//! Containers are never restarted (`restartPolicy` is read as `Never`) and
//! resource requests and limits are ignored.

mod config;
pub(crate) mod exec;
mod logs;
mod pod;
mod probe;
mod sandbox;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::api::Query;
use crate::error::ApiError;
use crate::store::{DeleteOptions, EventType, Part, Store, now};

/// What a pod's task is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Keep running.
    Run,
    /// The pod is being deleted: SIGTERM, SIGKILL after the grace period.
    Delete,
    /// The node is lost: SIGKILL, no more status.
    Lost,
    /// The server shuts down: SIGTERM, SIGKILL after 2 s.
    Shutdown,
}

type ContainerKey = (String, String, String);

/// The node agent.
pub(crate) struct Kubelet {
    pub(crate) store: Arc<Store>,
    pub(crate) bwrap: Option<PathBuf>,
    pub(crate) images: Vec<(String, PathBuf)>,
    state_dir: PathBuf,
    pods: Mutex<HashMap<String, watch::Sender<Stop>>>,
    logs: Mutex<HashMap<ContainerKey, Arc<logs::ContainerLog>>>,
    views: Mutex<HashMap<ContainerKey, sandbox::View>>,
    lost: AtomicBool,
    next_ip: AtomicU32,
    tasks: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("bwrap")).find(|p| p.is_file())
}

/// The node object the kubelet registers.
pub(crate) fn node_object(ready: bool) -> Value {
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "kube-sim", "labels": {"kubernetes.io/hostname": "kube-sim", "kubernetes.io/os": "linux", "kubernetes.io/arch": std::env::consts::ARCH}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message, "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "kube-sim"}],
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.33.0-kube-sim", "containerRuntimeVersion": "bubblewrap", "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "", "kubeProxyVersion": ""},
        },
    })
}

impl Kubelet {
    pub(crate) fn new(store: Arc<Store>, state_dir: PathBuf, images: Vec<(String, PathBuf)>) -> Arc<Self> {
        if let Some(t) = store.registry().find("", "v1", "nodes") {
            let _ = store.create(&t, "", node_object(true));
        }
        Arc::new(Self {
            store,
            bwrap: find_bwrap(),
            images,
            state_dir,
            pods: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
            lost: AtomicBool::new(false),
            next_ip: AtomicU32::new(2),
            tasks: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    fn next_ip(&self) -> String {
        // 127.0.0.2 .. 127.0.0.254, then 127.0.1.1 .. 127.0.1.254, ...
        let k = self.next_ip.fetch_add(1, Ordering::Relaxed).saturating_sub(2);
        if k < 253 {
            return format!("127.0.0.{}", k + 2);
        }
        let k = k - 253;
        format!("127.0.{}.{}", (1 + k / 254) % 256, 1 + k % 254)
    }

    pub(crate) fn started(&self, ns: &str, pod: &str, container: &str, log: Arc<logs::ContainerLog>, view: sandbox::View) {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        lock(&self.logs).insert(key.clone(), log);
        lock(&self.views).insert(key, view);
    }

    pub(crate) fn ended(&self, ns: &str, pod: &str, container: &str) {
        lock(&self.views).remove(&(ns.to_string(), pod.to_string(), container.to_string()));
    }

    /// Watches pods and acts on them until the store goes away.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut changes = self.store.subscribe();
        let Some(t) = self.store.registry().find("", "v1", "pods") else { return };
        let (existing, _) = self.store.list(&t, None, &crate::select::Selectors::default());
        for pod in existing {
            self.on_pod(EventType::Added, pod).await;
        }
        loop {
            match changes.recv().await {
                Ok(c) if c.key == "/pods" => self.on_pod(c.kind, c.object.clone()).await,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (all, _) = self.store.list(&t, None, &crate::select::Selectors::default());
                    for pod in all {
                        self.on_pod(EventType::Modified, pod).await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn on_pod(self: &Arc<Self>, kind: EventType, pod: Value) {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let deleting = pod["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null());
        if kind == EventType::Deleted {
            if let Some(stop) = lock(&self.pods).remove(&uid) {
                let _ = stop.send(Stop::Delete);
            }
            lock(&self.logs).retain(|(n, p, _), _| !(n == &ns && p == &name));
            return;
        }
        if self.lost.load(Ordering::Relaxed) {
            return;
        }
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        if node.is_empty() {
            if !deleting {
                self.bind(&ns, &name);
            }
            return;
        }
        if node != "kube-sim" {
            return;
        }
        let known = lock(&self.pods).get(&uid).map(|s| s.send(if deleting { Stop::Delete } else { Stop::Run }));
        match known {
            Some(_) => {}
            None if deleting => self.store.release_pod(&ns, &name),
            None if matches!(pod["status"]["phase"].as_str(), Some("Pending")) => {
                let (tx, rx) = watch::channel(Stop::Run);
                lock(&self.pods).insert(uid.clone(), tx);
                let dir = self.state_dir.join("pods").join(format!("{ns}_{name}_{uid}"));
                let me = self.clone();
                let run = pod::PodRun::new(self.clone(), pod, rx, dir);
                self.tasks.lock().await.spawn(async move {
                    let end = run.run().await;
                    let still = lock(&me.pods).remove(&uid).is_some();
                    if end == Stop::Delete || !still {
                        me.store.release_pod(&ns, &name);
                    } else if end == Stop::Run {
                        // Ended on its own: a later delete finds no task and releases it.
                    }
                });
            }
            None => {}
        }
    }

    /// Schedules a pod onto the node.
    fn bind(&self, ns: &str, name: &str) {
        let Some(t) = self.store.registry().find("", "v1", "pods") else { return };
        let ip = self.next_ip();
        let _ = self.store.modify(&t, ns, name, Part::All, |pod| {
            if pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()) {
                return Err(ApiError::bad_request("already bound"));
            }
            pod["spec"]["nodeName"] = json!("kube-sim");
            let status = &mut pod["status"];
            status["phase"] = json!("Pending");
            status["hostIP"] = json!("127.0.0.1");
            status["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            status["startTime"] = json!(now());
            status["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}]);
            Ok(())
        });
    }

    /// Kills every container; pods become `Unknown` with reason `NodeLost`.
    pub(crate) async fn lose_node(&self) {
        self.lost.store(true, Ordering::Relaxed);
        let senders: Vec<watch::Sender<Stop>> = lock(&self.pods).drain().map(|(_, s)| s).collect();
        for s in &senders {
            let _ = s.send(Stop::Lost);
        }
        let registry = self.store.registry();
        if let Some(t) = registry.find("", "v1", "nodes") {
            let node = node_object(false);
            let _ = self.store.modify(&t, "", "kube-sim", Part::All, |n| {
                n["status"] = node["status"].clone();
                Ok(())
            });
        }
        let Some(t) = registry.find("", "v1", "pods") else { return };
        let (pods, _) = self.store.list(&t, None, &crate::select::Selectors::default());
        for p in pods {
            if p["spec"]["nodeName"] != "kube-sim" || matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
                continue;
            }
            let ns = p["metadata"]["namespace"].as_str().unwrap_or("");
            let name = p["metadata"]["name"].as_str().unwrap_or("");
            let _ = self.store.modify(&t, ns, name, Part::Status, |pod| {
                let status = &mut pod["status"];
                status["phase"] = json!("Unknown");
                status["reason"] = json!("NodeLost");
                status["message"] = json!(format!("Node kube-sim which was running pod {name} is unresponsive"));
                for c in status["conditions"].as_array_mut().into_iter().flatten() {
                    if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                        c["status"] = json!("False");
                        c["reason"] = json!("NodeLost");
                        c["lastTransitionTime"] = json!(now());
                    }
                }
                for list in ["containerStatuses", "initContainerStatuses"] {
                    for c in status[list].as_array_mut().into_iter().flatten() {
                        c["ready"] = json!(false);
                    }
                }
                Ok(())
            });
        }
    }

    /// The node is back: new pods are scheduled again (lost pods stay lost).
    pub(crate) fn restore_node(&self) {
        self.lost.store(false, Ordering::Relaxed);
        if let Some(t) = self.store.registry().find("", "v1", "nodes") {
            let node = node_object(true);
            let _ = self.store.modify(&t, "", "kube-sim", Part::All, |n| {
                n["status"] = node["status"].clone();
                Ok(())
            });
        }
    }

    /// `pods/log`.
    pub(crate) async fn logs(&self, ns: &str, name: &str, query: &Query) -> Result<Response, ApiError> {
        let registry = self.store.registry();
        let t = registry.find("", "v1", "pods").ok_or_else(|| ApiError::internal("pods are not registered"))?;
        let pod = self.store.get(&t, ns, name)?;
        let names: Vec<String> = ["initContainers", "containers"]
            .iter()
            .flat_map(|l| pod["spec"][*l].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        let main: Vec<String> = pod["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str().map(str::to_string)).collect();
        let container = match query.get("container") {
            Some(c) if names.iter().any(|n| n == c) => c.to_string(),
            Some(c) => return Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
            None if main.len() == 1 => main[0].clone(),
            None => return Err(ApiError::bad_request(format!("a container name must be specified for pod {name}, choose one of: [{}]", main.join(" ")))),
        };
        if self.lost.load(Ordering::Relaxed) && pod["spec"]["nodeName"] == "kube-sim" {
            return Err(ApiError::internal(format!(
                "Get \"https://127.0.0.1:10250/containerLogs/{ns}/{name}/{container}\": dial tcp 127.0.0.1:10250: connect: connection refused"
            )));
        }
        if query.flag("previous") {
            return Err(ApiError::bad_request(format!("previous terminated container \"{container}\" in pod \"{name}\" not found")));
        }
        let log = lock(&self.logs).get(&(ns.to_string(), name.to_string(), container.clone())).cloned();
        match log {
            Some(log) => logs::serve(log, query).await,
            None => {
                let reason = ["initContainerStatuses", "containerStatuses"]
                    .iter()
                    .flat_map(|l| pod["status"][*l].as_array().cloned().unwrap_or_default())
                    .find(|c| c["name"] == container.as_str())
                    .and_then(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "ContainerCreating".into());
                Err(ApiError::bad_request(format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}")))
            }
        }
    }

    /// Stops every pod (server shutdown) and waits for their processes.
    pub(crate) async fn shutdown(&self) {
        for s in lock(&self.pods).values() {
            let _ = s.send(Stop::Shutdown);
        }
        let mut tasks = self.tasks.lock().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    }
}

/// Eviction: a delete that respects finalizers and the grace period.
pub(crate) fn evict(store: &Store, ns: &str, name: &str) -> Result<Value, ApiError> {
    let t = store.registry().find("", "v1", "pods").ok_or_else(|| ApiError::internal("pods are not registered"))?;
    store.delete(&t, ns, name, &DeleteOptions::default())
}
