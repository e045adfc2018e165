//! One shared watch over the pods a run creates, per namespace.
//!
//! Why shared: a worker must see its pod change (scheduled, containers
//! starting and ending, deleted) without asking the API server again and
//! again. One watch per namespace over `app.kubernetes.io/managed-by` serves
//! every worker of every run; each worker subscribes to its pod by the
//! `testkube.io/execution` and `testkube.io/worker` labels. The watch
//! survives expired watches (`410 Gone`: a relist), and a pod that vanished
//! while the watch was down is reported gone after the relist.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use crate::labels;

/// What a worker knows of its pod.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodView {
    /// The pod as last seen; `None` before it exists.
    pub(crate) pod: Option<Pod>,
    /// The pod was deleted (for good: its finalizers are gone).
    pub(crate) gone: bool,
}

type Key = (String, String);

/// The shared pod watches of one executor.
#[derive(Clone)]
pub(crate) struct PodWatches {
    client: kube::Client,
    namespaces: Arc<Mutex<HashMap<String, Arc<Subscribers>>>>,
}

#[derive(Default)]
struct Subscribers {
    by_key: Mutex<HashMap<Key, watch::Sender<PodView>>>,
}

impl PodWatches {
    pub(crate) fn new(client: kube::Client) -> Self {
        PodWatches {
            client,
            namespaces: Arc::default(),
        }
    }

    /// Follows the pod of worker `worker` (its number; a service pod's
    /// name) of execution `execution` (label values) in `namespace`.
    /// Starts the namespace's watch on first use.
    pub(crate) fn subscribe(
        &self,
        namespace: &str,
        execution: &str,
        worker: &str,
    ) -> watch::Receiver<PodView> {
        let subscribers = {
            let mut namespaces = self
                .namespaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(namespaces.entry(namespace.to_owned()).or_insert_with(|| {
                let subscribers = Arc::new(Subscribers::default());
                tokio::spawn(run_watch(
                    Api::namespaced(self.client.clone(), namespace),
                    Arc::clone(&subscribers),
                ));
                subscribers
            }))
        };
        let mut by_key = subscribers
            .by_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        by_key
            .entry((execution.to_owned(), worker.to_owned()))
            .or_insert_with(|| watch::channel(PodView::default()).0)
            .subscribe()
    }

    /// Stops following a worker's pod.
    pub(crate) fn unsubscribe(&self, namespace: &str, execution: &str, worker: &str) {
        let namespaces = self
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = namespaces.get(namespace) {
            subscribers
                .by_key
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(execution.to_owned(), worker.to_owned()));
        }
    }
}

/// A worker's pod is followed by its worker's number; a service
/// instance's pod (several per worker, each created by name) by its name.
fn key_of(pod: &Pod) -> Option<Key> {
    let labels = pod.metadata.labels.as_ref()?;
    let execution = labels.get(labels::EXECUTION)?.clone();
    if labels.get(labels::RESOURCE).map(String::as_str) == Some(labels::SERVICE_RESOURCE) {
        return Some((execution, pod.metadata.name.clone()?));
    }
    Some((execution, labels.get(labels::WORKER)?.clone()))
}

async fn run_watch(api: Api<Pod>, subscribers: Arc<Subscribers>) {
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    let stream =
        watcher::watcher(api, watcher::Config::default().labels(&selector)).default_backoff();
    futures_util::pin_mut!(stream);
    let mut relisted: Option<BTreeSet<Key>> = None;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!("pod watch: {err}; retrying");
                continue;
            }
        };
        let by_key = || {
            subscribers
                .by_key
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        match event {
            Event::Init => relisted = Some(BTreeSet::new()),
            Event::InitApply(pod) | Event::Apply(pod) => {
                let pod = slim(pod);
                let Some(key) = key_of(&pod) else { continue };
                if let Some(seen) = &mut relisted {
                    seen.insert(key.clone());
                }
                if let Some(sender) = by_key().get(&key) {
                    sender.send_replace(PodView {
                        pod: Some(pod),
                        gone: false,
                    });
                }
            }
            Event::Delete(pod) => {
                let pod = slim(pod);
                let Some(key) = key_of(&pod) else { continue };
                if let Some(sender) = by_key().get(&key) {
                    sender.send_replace(PodView {
                        pod: Some(pod),
                        gone: true,
                    });
                }
            }
            Event::InitDone => {
                // A pod the relist did not return was deleted meanwhile.
                if let Some(seen) = relisted.take() {
                    for (key, sender) in by_key().iter() {
                        let known = sender.borrow().pod.is_some();
                        if known && !seen.contains(key) {
                            sender.send_modify(|view| view.gone = true);
                        }
                    }
                }
            }
        }
    }
}

/// The parts of a pod its followers read (metadata without
/// `managedFields`, status, the restart policy): a thousand workers keep a
/// thousand pods, and a pod's spec and field history are most of it.
fn slim(mut pod: Pod) -> Pod {
    pod.metadata.managed_fields = None;
    pod.spec = pod.spec.map(|spec| PodSpec {
        restart_policy: spec.restart_policy,
        ..PodSpec::default()
    });
    pod
}

/// Removes the finalizer `testkube.io/results` from pod `name` (`latest`:
/// the pod as last seen, if known), once what it kept has been read.
pub(crate) async fn remove_finalizer(api: &Api<Pod>, name: &str, mut latest: Option<Pod>) {
    for _ in 0..5 {
        let Some(current) = latest.take() else { break };
        let finalizers = current.metadata.finalizers.clone().unwrap_or_default();
        let Some(index) = finalizers.iter().position(|f| f == labels::FINALIZER) else {
            break;
        };
        // Removes exactly ours, whatever else changed in the pod
        // meanwhile (a merge patch would race the kubelet's status).
        let path = format!("/metadata/finalizers/{index}");
        let patch: Result<json_patch::Patch, _> = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": path, "value": labels::FINALIZER},
            {"op": "remove", "path": path},
        ]));
        let Ok(patch) = patch else { break };
        match api
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 => break,
            Err(_) => latest = api.get(name).await.ok(),
        }
    }
}
