//! The Kubernetes executor: each worker is one Job, followed through the
//! API server alone.
//!
//! Starting a worker creates its task Secret and its Job
//! ([`worker_objects`]). Then, per step container of the pod, in order, the
//! executor waits (on the [shared pod watch](crate::pods)) until the
//! container starts and follows its log to its end ([`crate::follow`]),
//! decoding the [worker protocol](testkube_core::engine::protocol) into
//! worker events as the lines arrive. A worker's requests (`parallel`,
//! `execute`, `paused`, the start barrier) go to the engine's
//! [`Orchestrator`]; the reply goes back into the pod through `pods/exec`
//! (`testkube-init reply ID`).
//!
//! The pod carries the finalizer `testkube.io/results`: whatever ends it
//! (the run's end, an abort, an eviction, `activeDeadlineSeconds`), the pod
//! and its log stay until the executor has read them. Only then does it
//! remove the finalizer and delete the Job and the Secret.
//!
//! An abort deletes the Job: the pod gets SIGTERM, its runner ends the
//! running step `aborted` and reports the rest, and the log is read to the
//! end as always. A worker whose pod ends without reporting its end (its
//! log cannot be read, the container was killed) ends with the status its
//! termination message gives, else `aborted` (or `failed` when Kubernetes
//! says why, e.g. `OOMKilled`), and its open steps with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{AttachParams, DeleteParams, Patch, PatchParams, PostParams};
use testkube_core::engine::protocol::{
    Decoded, Frame, LineDecoder, Reply, Request, TerminationMessage, WorkerTask,
};
use testkube_core::engine::{
    Executor, ExecutorError, Orchestrator, StepDetail, Unsupported, WorkerControl, WorkerEvent,
    WorkerHandle, WorkerSpec,
};
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::{Interruption, StepStatus};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::follow::{FollowError, Line, container_state, follow_container};
use crate::labels;
use crate::manifest::{INIT_BINARY, ManifestOptions, worker_objects};
use crate::pods::{PodView, PodWatches};

/// The most output bytes one log event carries (the store's chunk size).
const MAX_LOG_EVENT: usize = testkube_core::store::MAX_LOG_CHUNK;

/// Waiting reasons after which a container never starts on its own.
const STUCK: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Runs workers as Kubernetes Jobs. Cheap to clone.
#[derive(Clone)]
pub struct KubernetesExecutor {
    client: kube::Client,
    options: ManifestOptions,
    watches: PodWatches,
}

impl std::fmt::Debug for KubernetesExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesExecutor")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl KubernetesExecutor {
    /// An executor creating its objects through `client`, in
    /// `options.namespace` unless a workflow's `job.namespace` says
    /// otherwise.
    #[must_use]
    pub fn new(client: kube::Client, options: ManifestOptions) -> Self {
        KubernetesExecutor {
            watches: PodWatches::new(client.clone()),
            client,
            options,
        }
    }
}

#[async_trait]
impl Executor for KubernetesExecutor {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn unsupported(&self, step: &PlanStep) -> Vec<Unsupported> {
        let mut found = Vec::new();
        unsupported_in(step, &mut found);
        found
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        let task = WorkerTask::from_spec(&spec);
        let objects = worker_objects(&task, spec.pod.as_ref(), spec.job.as_ref(), &self.options)
            .map_err(|err| ExecutorError::new(&spec.worker, err.to_string()))?;
        let namespace = objects
            .job
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| self.options.namespace.clone());
        let execution = labels::label_value(&spec.execution.id);
        let worker = spec.worker.number.to_string();
        // Subscribed before the Job exists, so that no change is missed.
        let view = self.watches.subscribe(&namespace, &execution, &worker);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let job_name = objects.job.metadata.name.clone().unwrap_or_default();
        let secret_name = objects.secret.metadata.name.clone().unwrap_or_default();
        let created = async {
            secrets
                .create(&PostParams::default(), &objects.secret)
                .await
                .map_err(|err| format!("cannot create Secret {namespace}/{secret_name}: {err}"))?;
            if let Err(err) = jobs.create(&PostParams::default(), &objects.job).await {
                let _ = secrets.delete(&secret_name, &DeleteParams::default()).await;
                return Err(format!("cannot create Job {namespace}/{job_name}: {err}"));
            }
            Ok(())
        };
        if let Err(message) = created.await {
            self.watches.unsubscribe(&namespace, &execution, &worker);
            return Err(ExecutorError::new(&spec.worker, message));
        }
        let containers = step_containers(&objects.job);
        let (events, receiver) = mpsc::channel(256);
        let (interrupt, interrupted) = watch::channel(None);
        let run = WorkerRun {
            pods: Api::namespaced(self.client.clone(), &namespace),
            jobs,
            secrets,
            watches: self.watches.clone(),
            namespace,
            execution,
            worker,
            job_name,
            secret_name,
            containers,
            orchestrator: Arc::clone(&spec.orchestrator),
            events,
        };
        tokio::spawn(run.run(view, interrupted));
        Ok(WorkerHandle {
            events: Box::pin(ReceiverStream::new(receiver)),
            control: Arc::new(Control { interrupt }),
        })
    }
}

/// Stops a worker: its Job is deleted, its log still read to the end.
struct Control {
    interrupt: watch::Sender<Option<Interruption>>,
}

#[async_trait]
impl WorkerControl for Control {
    async fn interrupt(&self, interruption: Interruption) {
        self.interrupt.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(interruption);
            }
            first
        });
    }
}

/// The names of the containers that run steps, in the order they run.
fn step_containers(job: &Job) -> Vec<String> {
    let Some(spec) = job
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
    else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .skip(1)
        .chain(spec.containers.iter())
        .map(|container| container.name.clone())
        .collect()
}

/// Everything one running worker needs.
struct WorkerRun {
    pods: Api<Pod>,
    jobs: Api<Job>,
    secrets: Api<Secret>,
    watches: PodWatches,
    namespace: String,
    execution: String,
    worker: String,
    job_name: String,
    secret_name: String,
    containers: Vec<String>,
    orchestrator: Arc<dyn Orchestrator>,
    events: mpsc::Sender<WorkerEvent>,
}

/// How following the pod ended.
#[derive(Default)]
struct Followed {
    /// The pod's name, once it existed.
    pod: Option<String>,
    /// Why a container never started or its log could not be read.
    problem: Option<String>,
}

impl WorkerRun {
    async fn run(
        self,
        view: watch::Receiver<PodView>,
        mut interrupted: watch::Receiver<Option<Interruption>>,
    ) {
        // An interruption deletes the Job; the pod's log is still read.
        let stopper = {
            let jobs = self.jobs.clone();
            let name = self.job_name.clone();
            tokio::spawn(async move {
                if interrupted.wait_for(Option::is_some).await.is_ok() {
                    let _ = jobs.delete(&name, &DeleteParams::background()).await;
                }
            })
        };
        let (lines, received) = mpsc::channel::<Line>(1024);
        let mut translator = Translator::new(
            self.pods.clone(),
            Arc::clone(&self.orchestrator),
            self.events.clone(),
        );
        let follow = self.follow_all(view.clone(), lines);
        let translate = translator.consume(received);
        let (followed, ()) = tokio::join!(follow, translate);
        stopper.abort();
        let status = match translator.finished {
            Some(status) => status,
            None => translator.close(&view, followed.problem.as_deref()).await,
        };
        self.clean_up(&view, followed.pod.as_deref()).await;
        self.watches
            .unsubscribe(&self.namespace, &self.execution, &self.worker);
        let _ = self.events.send(WorkerEvent::Finished { status }).await;
    }

    /// Follows each step container's log, in order.
    async fn follow_all(
        &self,
        mut view: watch::Receiver<PodView>,
        lines: mpsc::Sender<Line>,
    ) -> Followed {
        let mut followed = Followed::default();
        for container in &self.containers {
            let pod = match started(&mut view, container).await {
                Ok(pod) => pod,
                Err(problem) => {
                    followed.problem = problem;
                    break;
                }
            };
            followed.pod = Some(pod.clone());
            if let Err(err) = follow_container(&self.pods, &pod, container, &mut view, &lines).await
            {
                followed.problem = Some(err.to_string());
                if matches!(err, FollowError::Gone) {
                    break;
                }
            }
        }
        followed
    }

    /// Removes the finalizer (the log is read), then deletes the Job and
    /// the Secret.
    async fn clean_up(&self, view: &watch::Receiver<PodView>, pod: Option<&str>) {
        if let Some(pod) = pod {
            let mut latest = view.borrow().pod.clone();
            for _ in 0..5 {
                let Some(current) = latest.take() else { break };
                let finalizers = current.metadata.finalizers.clone().unwrap_or_default();
                let Some(index) = finalizers.iter().position(|f| f == labels::FINALIZER) else {
                    break;
                };
                // Removes exactly ours, whatever else changed in the pod
                // meanwhile (a merge patch would race the kubelet's status).
                let path = format!("/metadata/finalizers/{index}");
                let patch: Result<json_patch::Patch, _> =
                    serde_json::from_value(serde_json::json!([
                        {"op": "test", "path": path, "value": labels::FINALIZER},
                        {"op": "remove", "path": path},
                    ]));
                let Ok(patch) = patch else { break };
                match self
                    .pods
                    .patch(pod, &PatchParams::default(), &Patch::Json::<()>(patch))
                    .await
                {
                    Ok(_) => break,
                    Err(kube::Error::Api(status)) if status.code == 404 => break,
                    Err(_) => latest = self.pods.get(pod).await.ok(),
                }
            }
        }
        let _ = self
            .jobs
            .delete(&self.job_name, &DeleteParams::background())
            .await;
        let _ = self
            .secrets
            .delete(&self.secret_name, &DeleteParams::default())
            .await;
    }
}

/// Waits until container `container` of the worker's pod has started;
/// returns the pod's name. `Err` with why when it never will.
async fn started(
    view: &mut watch::Receiver<PodView>,
    container: &str,
) -> Result<String, Option<String>> {
    loop {
        {
            let current = view.borrow_and_update();
            if let Some(pod) = &current.pod {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if let Some(state) = container_state(pod, container) {
                    if state.running.is_some() || state.terminated.is_some() {
                        return Ok(name);
                    }
                    if let Some(waiting) = &state.waiting
                        && let Some(reason) = &waiting.reason
                        && STUCK.contains(&reason.as_str())
                    {
                        return Err(Some(format!(
                            "container `{container}` cannot start: {reason}{}",
                            waiting
                                .message
                                .as_deref()
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default()
                        )));
                    }
                }
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if matches!(phase, Some("Failed" | "Succeeded")) || current.gone {
                    // An earlier container ended the pod: this one never runs.
                    return Err(None);
                }
            } else if current.gone {
                return Err(Some("the pod was deleted before it started".to_owned()));
            }
        }
        if view.changed().await.is_err() {
            return Err(Some("the pod watch ended".to_owned()));
        }
    }
}

/// Turns log lines into worker events and answers the worker's requests.
struct Translator {
    decoder: LineDecoder,
    pods: Api<Pod>,
    orchestrator: Arc<dyn Orchestrator>,
    events: mpsc::Sender<WorkerEvent>,
    /// Steps reported running and not finished, in the order they started.
    open: Vec<String>,
    finished: Option<StepStatus>,
    requests: HashMap<u64, JoinHandle<()>>,
    pod: Option<String>,
    /// Output not sent yet, and its step.
    pending: Vec<u8>,
    pending_step: Option<String>,
}

impl Translator {
    fn new(
        pods: Api<Pod>,
        orchestrator: Arc<dyn Orchestrator>,
        events: mpsc::Sender<WorkerEvent>,
    ) -> Self {
        Translator {
            decoder: LineDecoder::new(),
            pods,
            orchestrator,
            events,
            open: Vec::new(),
            finished: None,
            requests: HashMap::new(),
            pod: None,
            pending: Vec::new(),
            pending_step: None,
        }
    }

    async fn consume(&mut self, mut lines: mpsc::Receiver<Line>) {
        let mut container = String::new();
        while let Some(first) = lines.recv().await {
            // Whatever else has arrived is taken at once, so that output
            // lines become a few large log events rather than one each.
            let mut next = Some(first);
            while let Some(line) = next {
                if *line.container != *container {
                    // A container's last line may lack its newline.
                    for decoded in self.decoder.finish() {
                        self.handle(decoded, &container).await;
                    }
                    container = line.container.to_string();
                }
                if self.pod.as_deref() != Some(&*line.pod) {
                    self.pod = Some(line.pod.to_string());
                }
                for decoded in self.decoder.line(&line.text) {
                    self.handle(decoded, &container).await;
                }
                next = if self.pending.len() < MAX_LOG_EVENT {
                    lines.try_recv().ok()
                } else {
                    None
                };
            }
            self.flush().await;
        }
        for decoded in self.decoder.finish() {
            self.handle(decoded, &container).await;
        }
        self.flush().await;
        for (_, request) in self.requests.drain() {
            request.abort();
        }
    }

    /// Sends the output gathered so far as one log event.
    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.pending));
        let step = self
            .pending_step
            .take()
            .unwrap_or_else(|| "root".to_owned());
        let _ = self.events.send(WorkerEvent::Log { step, chunk }).await;
    }

    async fn handle(&mut self, decoded: Decoded, container: &str) {
        if !matches!(decoded, Decoded::Log { .. }) {
            self.flush().await;
        }
        match decoded {
            Decoded::Log { step, chunk } => {
                let step = step.unwrap_or_else(|| "root".to_owned());
                if self.pending_step.as_deref() != Some(step.as_str()) {
                    self.flush().await;
                    self.pending_step = Some(step);
                }
                self.pending.extend_from_slice(&chunk);
            }
            Decoded::Invalid { error, .. } => {
                self.send(WorkerEvent::Notice {
                    message: format!("a line of the worker's log was not understood: {error}"),
                })
                .await;
            }
            Decoded::Frame(Frame::Request { id, request }) => self.ask(id, request, container),
            Decoded::Frame(Frame::Cancel { id }) => {
                if let Some(request) = self.requests.remove(&id) {
                    request.abort();
                }
            }
            Decoded::Frame(frame) => {
                let Some(event) = frame.into_event() else {
                    return;
                };
                match &event {
                    WorkerEvent::Step { step, status, .. } => {
                        if *status == StepStatus::Running {
                            if !self.open.contains(step) {
                                self.open.push(step.clone());
                            }
                        } else if status.is_finished() {
                            self.open.retain(|open| open != step);
                        }
                    }
                    WorkerEvent::Finished { status } => {
                        // Sent by the executor once the pod is cleaned up.
                        self.finished = Some(*status);
                        return;
                    }
                    _ => {}
                }
                self.send(event).await;
            }
        }
    }

    /// Runs a request on the engine and delivers the reply into the pod.
    fn ask(&mut self, id: u64, request: Request, container: &str) {
        let orchestrator = Arc::clone(&self.orchestrator);
        let pods = self.pods.clone();
        let container = container.to_owned();
        let pod = self.pod.clone();
        let events = self.events.clone();
        let handle = tokio::spawn(async move {
            let reply = match request {
                Request::Parallel(request) => {
                    Reply::Parallel(orchestrator.run_parallel(*request).await)
                }
                Request::Execute(request) => Reply::Execute(orchestrator.execute(*request).await),
                Request::Paused { step } => Reply::Released {
                    interruption: orchestrator.paused(&step).await,
                },
                Request::Ready => Reply::Released {
                    interruption: orchestrator.ready().await,
                },
            };
            let Some(pod) = pod else { return };
            if let Err(message) = deliver(&pods, &pod, &container, id, &reply).await {
                let _ = events
                    .send(WorkerEvent::Notice {
                        message: format!("cannot answer the worker's request {id}: {message}"),
                    })
                    .await;
            }
        });
        self.requests.insert(id, handle);
    }

    /// The worker's status when its pod ended without saying: its
    /// termination message's, else why Kubernetes ended it. Open steps end
    /// with it.
    async fn close(
        &mut self,
        view: &watch::Receiver<PodView>,
        problem: Option<&str>,
    ) -> StepStatus {
        let (status, message) = verdict_of(&view.borrow(), problem);
        for step in std::mem::take(&mut self.open).into_iter().rev() {
            self.send(WorkerEvent::Step {
                step,
                status,
                at: SystemTime::now(),
                detail: StepDetail {
                    message: Some(message.clone()),
                    ..StepDetail::default()
                },
            })
            .await;
        }
        if let Some(problem) = problem {
            self.send(WorkerEvent::Notice {
                message: problem.to_owned(),
            })
            .await;
        }
        status
    }

    async fn send(&self, event: WorkerEvent) {
        let _ = self.events.send(event).await;
    }
}

/// What Kubernetes says about a pod that ended without reporting its end.
fn verdict_of(view: &PodView, problem: Option<&str>) -> (StepStatus, String) {
    let Some(pod) = &view.pod else {
        return (
            StepStatus::Aborted,
            problem
                .unwrap_or("the worker's pod never started")
                .to_owned(),
        );
    };
    let statuses = pod.status.as_ref();
    let terminated: Vec<_> = statuses
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .filter_map(|c| Some((c.name.clone(), c.state.as_ref()?.terminated.clone()?)))
        .collect();
    if let Some(status) = terminated.iter().rev().find_map(|(_, state)| {
        TerminationMessage::decode(state.message.as_deref()?)
            .ok()?
            .finished
    }) {
        return (status, "reported in the termination message".to_owned());
    }
    if let Some((name, state)) = terminated
        .iter()
        .find(|(_, state)| state.reason.as_deref() == Some("OOMKilled"))
    {
        return (
            StepStatus::Failed,
            format!(
                "container `{name}` ran out of memory (OOMKilled, exit code {})",
                state.exit_code
            ),
        );
    }
    let reason = statuses
        .and_then(|s| s.reason.clone().or_else(|| s.message.clone()))
        .or_else(|| problem.map(str::to_owned))
        .unwrap_or_else(|| {
            if view.gone || pod.metadata.deletion_timestamp.is_some() {
                "the worker's pod was deleted".to_owned()
            } else {
                "the worker's pod ended without reporting".to_owned()
            }
        });
    (StepStatus::Aborted, reason)
}

/// Writes `reply` into the pod with `testkube-init reply ID`.
async fn deliver(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    id: u64,
    reply: &Reply,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
        }
        let params = AttachParams::default()
            .container(container)
            .stdin(true)
            .stdout(false)
            .stderr(true);
        let command = [INIT_BINARY.to_owned(), "reply".to_owned(), id.to_string()];
        let mut process = match pods.exec(pod, command, &params).await {
            Ok(process) => process,
            Err(err) => {
                last = err.to_string();
                continue;
            }
        };
        if let Some(mut stdin) = process.stdin() {
            let _ = stdin.write_all(reply.to_json().as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        let status = match process.take_status() {
            Some(status) => status.await,
            None => None,
        };
        let _ = process.join().await;
        match status {
            Some(status) if status.status.as_deref() == Some("Success") => return Ok(()),
            Some(status) => last = status.message.unwrap_or_default(),
            None => last = "no exit status".to_owned(),
        }
    }
    Err(last)
}

/// What the Kubernetes executor cannot run yet, in `step` and below (not
/// in parallel workers: the engine asks about each).
fn unsupported_in(step: &PlanStep, found: &mut Vec<Unsupported>) {
    let add = |found: &mut Vec<Unsupported>, feature: &str| {
        found.push(Unsupported {
            feature: format!("{feature} (with --on kubernetes)"),
            step: step.id.clone(),
        });
    };
    for operation in &step.operations {
        match operation {
            Operation::StartServices { .. } => add(found, "services"),
            Operation::Artifacts { .. } => add(found, "artifacts"),
            Operation::Parallel(block) => {
                if !block.transfer.is_empty() {
                    add(found, "parallel.transfer");
                }
                if !block.fetch.is_empty() {
                    add(found, "parallel.fetch");
                }
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    unsupported_in(child, found);
                }
            }
            _ => {}
        }
    }
}
