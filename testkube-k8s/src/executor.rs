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
//! [`Orchestrator`], its `services` to [`ServicePods`] (a pod per
//! instance, deleted at the latest when the worker ends); the reply goes
//! back into the pod through `pods/exec` (`testkube-init reply ID`).
//!
//! The pod carries the finalizer `testkube.io/results`: whatever ends it
//! (the run's end, an abort, an eviction, `activeDeadlineSeconds`), the pod
//! and its log stay until the executor has read them. Only then does it
//! remove the finalizer and delete the Job and the Secret.
//!
//! With a [`SignedStorage`] ([`KubernetesExecutor::with_storage`]) the
//! task carries signed URLs ([`crate::links`]): the pod uploads each
//! artifacts step's files as one archive, which the executor files into
//! artifacts when the pod says it is there, and `transfer`/`fetch` archives
//! go through the same store. Without one, workflows with `artifacts`,
//! `transfer` or `fetch` are refused before anything starts.
//!
//! An abort deletes the Job: the pod gets SIGTERM, its runner ends the
//! running step `aborted` and reports the rest, and the log is read to the
//! end as always. A worker whose pod ends without reporting its end (its
//! log cannot be read, the container was killed) ends with the status its
//! termination message gives, else `aborted` (or `failed` when Kubernetes
//! says why, e.g. `OOMKilled`), and its open steps with it.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::engine::{
    Executor, ExecutorError, Orchestrator, SignedStorage, Unsupported, WorkerControl, WorkerEvent,
    WorkerHandle, WorkerId, WorkerSpec,
};
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::Interruption;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::follow::{Catch, FollowError, Line, container_state, follow_container};

mod attach;
use crate::labels;
use crate::manifest::{ManifestOptions, worker_objects};
use crate::pods::{PodView, PodWatches, remove_finalizer};
use crate::services::{Owner as ServiceOwner, ServicePods};
use crate::translate::Translator;

/// Waiting reasons after which a container never starts on its own.
const STUCK: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// How many workers' objects are made and created at once. A block of a
/// thousand workers starts a thousand workers together: unbounded, each
/// holds its Job, task Secret and a connection of its own at once (the
/// agent's peak memory) in a burst the API server may throttle; a few
/// dozen keep creation as fast.
const CREATING_AT_ONCE: usize = 32;

/// Runs workers as Kubernetes Jobs. Cheap to clone.
#[derive(Clone)]
pub struct KubernetesExecutor {
    client: kube::Client,
    options: ManifestOptions,
    watches: PodWatches,
    storage: Option<Arc<dyn SignedStorage>>,
    creating: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for KubernetesExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesExecutor")
            .field("options", &self.options)
            .field("storage", &self.storage.is_some())
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
            storage: None,
            creating: Arc::new(tokio::sync::Semaphore::new(CREATING_AT_ONCE)),
        }
    }

    /// Keeps artifacts, and moves `transfer`/`fetch` archives, in `storage`,
    /// which signs the URLs pods upload to and download from.
    #[must_use]
    pub fn with_storage(mut self, storage: Arc<dyn SignedStorage>) -> Self {
        self.storage = Some(storage);
        self
    }
}

#[async_trait]
impl Executor for KubernetesExecutor {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn unsupported(&self, step: &PlanStep) -> Vec<Unsupported> {
        let mut found = Vec::new();
        unsupported_in(step, self.storage.is_some(), &mut found);
        found
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        // Held while the worker's objects exist in memory and are sent.
        let permit = self.creating.acquire().await;
        let mut task = WorkerTask::from_spec(&spec);
        if let Some(storage) = &self.storage {
            task.links = crate::links::worker_links(storage.as_ref(), &spec)
                .await
                .map_err(|err| {
                    ExecutorError::new(
                        &spec.worker,
                        format!("cannot sign the URLs its files go through: {err}"),
                    )
                })?;
        }
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
        let created = created.await;
        drop(permit);
        if let Err(message) = created {
            self.watches.unsubscribe(&namespace, &execution, &worker);
            return Err(ExecutorError::new(&spec.worker, message));
        }
        let found = Found {
            containers: step_containers(&objects.job),
            namespace,
            worker,
            job_name,
            secret_name,
        };
        Ok(self.follow(&spec, found, view, false))
    }

    async fn attach(&self, spec: WorkerSpec) -> Result<Option<WorkerHandle>, ExecutorError> {
        self.take_up(spec).await
    }
}

/// Where a worker's objects are.
struct Found {
    namespace: String,
    /// Its number, as its labels give it.
    worker: String,
    job_name: String,
    secret_name: String,
    containers: Vec<String>,
}

impl KubernetesExecutor {
    /// Follows a created (or found) worker on a task of its own.
    fn follow(
        &self,
        spec: &WorkerSpec,
        found: Found,
        view: watch::Receiver<PodView>,
        replay: bool,
    ) -> WorkerHandle {
        let Found {
            namespace,
            worker,
            job_name,
            secret_name,
            containers,
        } = found;
        let execution = labels::label_value(&spec.execution.id);
        let (events, receiver) = mpsc::channel(256);
        let services = ServicePods::new(
            Api::namespaced(self.client.clone(), &namespace),
            self.watches.clone(),
            ServiceOwner {
                namespace: namespace.clone(),
                execution: spec.execution.id.clone(),
                workflow: spec.execution.workflow.clone(),
                worker: spec.worker.number,
                worker_path: spec.worker.path.clone(),
                job_name: job_name.clone(),
            },
            self.options.clone(),
            events.clone(),
        );
        let (interrupt, interrupted) = watch::channel(None);
        let run = WorkerRun {
            pods: Api::namespaced(self.client.clone(), &namespace),
            jobs: Api::namespaced(self.client.clone(), &namespace),
            secrets: Api::namespaced(self.client.clone(), &namespace),
            watches: self.watches.clone(),
            namespace,
            execution,
            worker,
            job_name,
            secret_name,
            containers,
            orchestrator: Arc::clone(&spec.orchestrator),
            events,
            storage: self.storage.clone(),
            execution_id: spec.execution.id.clone(),
            worker_id: spec.worker.clone(),
            services: Arc::new(services),
        };
        tokio::spawn(run.run(view, interrupted, replay));
        WorkerHandle {
            events: Box::pin(ReceiverStream::new(receiver)),
            control: Arc::new(Control { interrupt }),
        }
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
    storage: Option<Arc<dyn SignedStorage>>,
    /// The execution's id (`execution` is its label value).
    execution_id: String,
    worker_id: WorkerId,
    /// The pods of the worker's services.
    services: Arc<ServicePods>,
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
        replay: bool,
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
        )
        .with_services(Arc::clone(&self.services));
        if replay {
            translator = translator.replaying();
        }
        if let Some(storage) = &self.storage {
            translator = translator.with_storage(
                Arc::clone(storage),
                self.execution_id.clone(),
                self.worker_id.clone(),
            );
        }
        let follow = self.follow_all(view.clone(), lines, replay);
        let translate = translator.consume(received);
        let (followed, ()) = tokio::join!(follow, translate);
        stopper.abort();
        let status = match translator.finished {
            Some(status) => status,
            None => translator.close(&view, followed.problem.as_deref()).await,
        };
        // Whatever ended the worker, its services go with it.
        self.services.shutdown().await;
        self.clean_up(&view, followed.pod.as_deref()).await;
        self.watches
            .unsubscribe(&self.namespace, &self.execution, &self.worker);
        // The root worker ends last: no worker reads an archive any more.
        if self.worker_id.number == 0
            && let Some(storage) = &self.storage
            && let Err(err) = storage.remove_archives(&self.execution_id).await
        {
            let _ = self
                .events
                .send(WorkerEvent::Notice {
                    message: format!("the run's transfer archives were not removed: {err}"),
                })
                .await;
        }
        let _ = self.events.send(WorkerEvent::Finished { status }).await;
    }

    /// Follows each step container's log, in order. When the worker is
    /// taken up after a restart (`replay`), the log is read up to where it
    /// is before the rest is followed ([`Catch::Current`]): in the first
    /// container still running, else at the end.
    async fn follow_all(
        &self,
        mut view: watch::Receiver<PodView>,
        lines: mpsc::Sender<Line>,
        mut replay: bool,
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
            let ended = view
                .borrow()
                .pod
                .as_ref()
                .and_then(|pod| container_state(pod, container))
                .is_some_and(|state| state.terminated.is_some());
            let catch = if replay && !ended {
                replay = false;
                Catch::Current
            } else {
                Catch::Live
            };
            if let Err(err) =
                follow_container(&self.pods, &pod, container, &mut view, &lines, catch).await
            {
                followed.problem = Some(err.to_string());
                if matches!(err, FollowError::Gone) {
                    break;
                }
            }
        }
        if replay {
            let pod = followed.pod.clone().unwrap_or_default();
            let _ = lines.send(Line::caught_up(&pod, "")).await;
        }
        followed
    }

    /// Removes the finalizer (the log is read), then deletes the Job and
    /// the Secret.
    async fn clean_up(&self, view: &watch::Receiver<PodView>, pod: Option<&str>) {
        if let Some(pod) = pod {
            let latest = view.borrow().pod.clone();
            remove_finalizer(&self.pods, pod, latest).await;
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

/// What the Kubernetes executor cannot run yet, in `step` and below (not
/// in parallel workers: the engine asks about each). Files leave pods only
/// through signed URLs: without a store that signs them (`signs`),
/// `artifacts`, `transfer` and `fetch` cannot run.
fn unsupported_in(step: &PlanStep, signs: bool, found: &mut Vec<Unsupported>) {
    let add = |found: &mut Vec<Unsupported>, feature: &str| {
        found.push(Unsupported {
            feature: format!("{feature} (with --on kubernetes)"),
            step: step.id.clone(),
        });
    };
    let needs_store = |found: &mut Vec<Unsupported>, feature: &str| {
        found.push(Unsupported {
            feature: format!(
                "{feature} (with --on kubernetes, files leave pods only through an \
                 S3-compatible artifact store: set TESTKUBE_ARTIFACTS_URL=s3://BUCKET)"
            ),
            step: step.id.clone(),
        });
    };
    for operation in &step.operations {
        match operation {
            Operation::StartServices { services } => {
                for service in services {
                    for feature in crate::services::unsupported(service) {
                        add(found, &feature);
                    }
                }
            }
            Operation::Artifacts { .. } if !signs => needs_store(found, "artifacts"),
            Operation::Parallel(block) if !signs => {
                if !block.transfer.is_empty() {
                    needs_store(found, "parallel.transfer");
                }
                if !block.fetch.is_empty() {
                    needs_store(found, "parallel.fetch");
                }
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    unsupported_in(child, signs, found);
                }
            }
            _ => {}
        }
    }
}
