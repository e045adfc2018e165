//! A worker's `services`, each instance a pod of its own that the engine
//! creates when the worker asks (a test pod has no API permission).
//!
//! - Start ([`ServicePods::start`]): one pod per instance ([`pod`]), all
//!   created at once, then waited for on the shared pod watch until
//!   Kubernetes says each is `Ready` (its native `readinessProbe`, or
//!   running when it has none). The answer is each instance's
//!   `status.podIP`, which the worker puts in `services.<name>.<index>.ip`.
//!   An instance that ends, cannot start (an image that cannot be pulled)
//!   or is not ready within the service's `timeout` fails the start, naming
//!   the service and instance, what Kubernetes says and its last log lines;
//!   the pods of that start are then stopped at once.
//! - Logs: with `logs: true`, an instance's container log is followed from
//!   its start into the pseudo-step `<step>.services.<name>.<index>` of the
//!   worker, as locally.
//! - Stop ([`ServicePods::stop`], and [`ServicePods::shutdown`] when the
//!   worker ends in any way, also by an abort or a lost pod): the pod is
//!   deleted (SIGTERM, then SIGKILL after its grace period), its log read to
//!   the end, then its finalizer removed, so that it goes. Stops run on
//!   tasks of their own: a worker that gives up waiting never leaves a pod
//!   half stopped, and `shutdown` waits for them.
//!
//! Every pod is known here before it is created, so that nothing a worker
//! started is left in the namespace, whatever happens to the request that
//! started it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, LogParams, PostParams};
use testkube_core::engine::WorkerEvent;
use testkube_core::engine::protocol::{
    ServiceAddress, ServiceInstanceSpec, ServicesOutcome, ServicesRequest, StopServicesRequest,
};
use testkube_core::plan::PlanService;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::follow::{Catch, Line, container_state, follow_container};
use crate::manifest::ManifestOptions;
use crate::pods::{PodView, PodWatches, remove_finalizer};

mod pod;
mod ready;

pub(crate) use pod::Owner;
use pod::{CONTAINER, pod_name, service_pod};
use ready::{is_over, not_ready, not_running, ready_ip};

/// How many of an instance's last log lines a failure message shows.
const MESSAGE_LINES: i64 = 10;

/// The most output bytes one log event of a service carries.
const MAX_LOG_EVENT: usize = testkube_core::store::MAX_LOG_CHUNK;

/// How long a stopped instance's log may take to end after its grace period
/// (a kubelet that never reports the container ended) before its finalizer
/// is removed anyway.
const LOG_END_WAIT: Duration = Duration::from_secs(30);

/// What the Kubernetes executor cannot do with `service` (to refuse a plan
/// before it starts).
pub(crate) fn unsupported(service: &PlanService) -> Vec<String> {
    let name = &service.name;
    let mut found = Vec::new();
    // A service pod shares no volume with its worker: files would need a
    // way in of their own.
    if service.content.is_some() {
        found.push(format!("services.{name}.content"));
    }
    if !service.transfer.is_empty() {
        found.push(format!("services.{name}.transfer"));
    }
    if service.decided_at_run_time.is_some() {
        found.push(format!(
            "services.{name} with instances decided at run time"
        ));
    }
    found
}

/// The service pods of one worker.
pub(crate) struct ServicePods {
    pods: Api<Pod>,
    watches: PodWatches,
    owner: Owner,
    options: ManifestOptions,
    /// The worker's events (service logs go there).
    events: mpsc::Sender<WorkerEvent>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Numbers the starts (pod names).
    starts: usize,
    /// Pods created (or being created) and not being stopped.
    running: Vec<Arc<ServicePod>>,
    /// Stops under way.
    stopping: Vec<JoinHandle<()>>,
}

/// One instance's pod.
struct ServicePod {
    step: String,
    name: String,
    index: usize,
    pod: String,
    view: watch::Receiver<PodView>,
    /// Follows its log into the worker's events (`logs: true`).
    follower: Mutex<Option<JoinHandle<()>>>,
}

impl ServicePods {
    pub(crate) fn new(
        pods: Api<Pod>,
        watches: PodWatches,
        owner: Owner,
        options: ManifestOptions,
        events: mpsc::Sender<WorkerEvent>,
    ) -> Self {
        ServicePods {
            pods,
            watches,
            owner,
            options,
            events,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the instances of `request` and answers once all are ready.
    pub(crate) async fn start(&self, request: ServicesRequest) -> ServicesOutcome {
        let start = {
            let mut state = self.state();
            state.starts += 1;
            state.starts
        };
        let mut started = Vec::new();
        let mut failure = None;
        for spec in &request.instances {
            match self.create(&request.step, spec, start).await {
                Ok(service) => started.push((service, spec)),
                Err(message) => {
                    failure = Some(message);
                    break;
                }
            }
        }
        if failure.is_none() {
            let waits = started
                .iter()
                .map(|(service, spec)| self.wait_ready(service, spec));
            let results = futures_util::future::join_all(waits).await;
            let mut outcome = ServicesOutcome::default();
            for ((service, spec), result) in started.iter().zip(results) {
                match result {
                    Ok(ip) => {
                        outcome.notes.push(format!(
                            "{} is ready (pod {}, IP {ip})",
                            spec.label(),
                            service.pod
                        ));
                        outcome.addresses.push(ServiceAddress {
                            name: spec.name.clone(),
                            index: spec.index,
                            ip,
                        });
                    }
                    Err(message) if failure.is_none() => failure = Some(message),
                    Err(_) => {}
                }
            }
            if failure.is_none() {
                return outcome;
            }
        }
        // The step fails: what this start made goes at once.
        let ours: Vec<_> = started
            .iter()
            .map(|(service, _)| service.pod.clone())
            .collect();
        let stopping = self.take(|service| ours.contains(&service.pod));
        let _ = self.stop_all(stopping).await;
        ServicesOutcome::failed(failure.unwrap_or_default())
    }

    /// Creates the pod of one instance; it is known here before it exists.
    async fn create(
        &self,
        step: &str,
        spec: &ServiceInstanceSpec,
        start: usize,
    ) -> Result<Arc<ServicePod>, String> {
        let name = pod_name(&self.owner, step, spec, start);
        let pod = service_pod(&self.owner, step, spec, &name, &self.options)?;
        let execution = crate::labels::label_value(&self.owner.execution);
        // Subscribed before the pod exists, so that no change is missed.
        let view = self
            .watches
            .subscribe(&self.owner.namespace, &execution, &name);
        let service = Arc::new(ServicePod {
            step: step.to_owned(),
            name: spec.name.clone(),
            index: spec.index,
            pod: name.clone(),
            view,
            follower: Mutex::new(None),
        });
        self.state().running.push(Arc::clone(&service));
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .map_err(|err| {
                format!(
                    "{}: cannot create pod {}/{name}: {err}",
                    spec.label(),
                    self.owner.namespace
                )
            })?;
        if spec.logs {
            let step_id = format!("{step}.services.{}.{}", spec.name, spec.index);
            let follower = tokio::spawn(follow_log(
                self.pods.clone(),
                name,
                service.view.clone(),
                self.events.clone(),
                step_id,
            ));
            *service
                .follower
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(follower);
        }
        Ok(service)
    }

    /// Waits until the instance's pod is ready: its IP, or why it is not.
    async fn wait_ready(
        &self,
        service: &ServicePod,
        spec: &ServiceInstanceSpec,
    ) -> Result<String, String> {
        let give_up = Instant::now() + spec.timeout();
        let mut view = service.view.clone();
        loop {
            let problem = {
                let current = view.borrow_and_update();
                match (&current.pod, current.gone) {
                    (_, true) => Some("its pod was deleted".to_owned()),
                    (Some(pod), false) => match ready_ip(pod) {
                        Some(ip) => return Ok(ip),
                        None => not_running(pod),
                    },
                    (None, false) => None,
                }
            };
            if let Some(problem) = problem {
                let lines = self.last_lines(&service.pod).await;
                return Err(format!("{} {problem}{lines}", spec.label()));
            }
            tokio::select! {
                changed = view.changed() => if changed.is_err() {
                    return Err(format!("{}: the pod watch ended", spec.label()));
                },
                () = tokio::time::sleep_until(give_up) => {
                    let why = not_ready(&view.borrow(), spec);
                    let lines = self.last_lines(&service.pod).await;
                    return Err(format!("{} {why}{lines}", spec.label()));
                }
            }
        }
    }

    /// The last lines of an instance's log, for a message.
    async fn last_lines(&self, pod: &str) -> String {
        let params = LogParams {
            container: Some(CONTAINER.to_owned()),
            tail_lines: Some(MESSAGE_LINES),
            ..LogParams::default()
        };
        let Ok(text) = self.pods.logs(pod, &params).await else {
            return String::new();
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return "; it printed nothing".to_owned();
        }
        let mut shown = String::from("; its last output:");
        for line in lines {
            shown.push_str("\n  ");
            shown.push_str(line);
        }
        shown
    }

    /// Stops the services of `request`.
    pub(crate) async fn stop(&self, request: StopServicesRequest) -> ServicesOutcome {
        let stopping = self.take(|service| {
            service.step == request.step
                && (request.names.is_empty() || request.names.contains(&service.name))
        });
        ServicesOutcome {
            notes: self.stop_all(stopping).await,
            ..ServicesOutcome::default()
        }
    }

    /// Stops every service pod left, and waits for stops under way (the
    /// worker has ended).
    pub(crate) async fn shutdown(&self) {
        let stopping = self.take(|_| true);
        let _ = self.stop_all(stopping).await;
        let pending = std::mem::take(&mut self.state().stopping);
        for stop in pending {
            let _ = stop.await;
        }
    }

    /// Takes the pods `matches` selects out of the running ones.
    fn take(&self, matches: impl Fn(&ServicePod) -> bool) -> Vec<Arc<ServicePod>> {
        let mut state = self.state();
        let (taken, kept) = std::mem::take(&mut state.running)
            .into_iter()
            .partition(|service| matches(service));
        state.running = kept;
        taken
    }

    /// Stops `stopping` on a task of its own (so that a caller that gives
    /// up does not leave them half stopped); notes for the step's log.
    async fn stop_all(&self, stopping: Vec<Arc<ServicePod>>) -> Vec<String> {
        if stopping.is_empty() {
            return Vec::new();
        }
        let (notes, noted) = tokio::sync::oneshot::channel();
        let pods = self.pods.clone();
        let watches = self.watches.clone();
        let namespace = self.owner.namespace.clone();
        let execution = crate::labels::label_value(&self.owner.execution);
        let task = tokio::spawn(async move {
            let mut stops = JoinSet::new();
            for service in stopping {
                let pods = pods.clone();
                stops.spawn(async move {
                    let note = stop_pod(&pods, &service).await;
                    (service, note)
                });
            }
            let mut found = Vec::new();
            while let Some(joined) = stops.join_next().await {
                if let Ok((service, note)) = joined {
                    watches.unsubscribe(&namespace, &execution, &service.pod);
                    found.extend(note);
                }
            }
            found.sort();
            let _ = notes.send(found);
        });
        self.state().stopping.push(task);
        noted.await.unwrap_or_default()
    }
}

/// Deletes an instance's pod, reads its log to the end, then removes its
/// finalizer; a note when it had exited before.
async fn stop_pod(pods: &Api<Pod>, service: &ServicePod) -> Option<String> {
    let exited = service.view.borrow().pod.as_ref().and_then(|pod| {
        let terminated = container_state(pod, CONTAINER)?.terminated.as_ref()?;
        Some(format!(
            "service `{}` instance {} had exited with code {} before it was stopped ({})",
            service.name,
            service.index,
            terminated.exit_code,
            terminated.reason.as_deref().unwrap_or("no reason given")
        ))
    });
    let _ = pods.delete(&service.pod, &DeleteParams::default()).await;
    let follower = service
        .follower
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(follower) = follower {
        let grace = Duration::from_secs(u64::try_from(pod::GRACE_SECONDS).unwrap_or(2));
        let _ = tokio::time::timeout(grace + LOG_END_WAIT, follower).await;
    }
    let latest = service.view.borrow().pod.clone();
    remove_finalizer(pods, &service.pod, latest).await;
    exited
}

/// Follows the log of an instance into the worker's events, as step
/// `step`, from its container's start to its end.
async fn follow_log(
    pods: Api<Pod>,
    pod: String,
    mut view: watch::Receiver<PodView>,
    events: mpsc::Sender<WorkerEvent>,
    step: String,
) {
    let started = view
        .wait_for(|current| {
            current.gone
                || current.pod.as_ref().is_some_and(|pod| {
                    container_state(pod, CONTAINER)
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
                        || is_over(pod)
                })
        })
        .await
        .is_ok_and(|current| {
            current.pod.as_ref().is_some_and(|pod| {
                container_state(pod, CONTAINER)
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            })
        });
    if !started {
        return;
    }
    let (lines, mut received) = mpsc::channel::<Line>(256);
    let follow = async move {
        if let Err(err) =
            follow_container(&pods, &pod, CONTAINER, &mut view, &lines, Catch::Live).await
        {
            tracing::debug!("service pod {pod}: {err}");
        }
    };
    let forward = async {
        while let Some(first) = received.recv().await {
            let mut chunk = first.text;
            while chunk.len() < MAX_LOG_EVENT {
                match received.try_recv() {
                    Ok(line) => chunk.extend_from_slice(&line.text),
                    Err(_) => break,
                }
            }
            let event = WorkerEvent::Log {
                step: step.clone(),
                chunk: Bytes::from(chunk),
            };
            let _ = events.send(event).await;
        }
    };
    tokio::join!(follow, forward);
}
