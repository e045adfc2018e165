//! The TestWorkflowExecution controller: creating a `TestWorkflowExecution`
//! in a namespace starts a run of the TestWorkflow it names, once per
//! `metadata.generation`, and the run's progress is written back to the
//! document's `status` as Testkube writes it.
//!
//! How the parts meet: one watch over the namespace's
//! TestWorkflowExecutions (kube-runtime's watcher: re-lists after a `410
//! Gone`, resumes after a broken stream); each document whose
//! `metadata.generation` differs from `status.generation` is started
//! through the [`RunService`] the embedder gives (the same path `testkube
//! run` takes: numbering, history, secrets, recording), with the workflow
//! and templates read from the namespace ([`catalog`]). A run's events are
//! followed on a task of their own, and every execution status change and
//! its end patch `status.latestExecution` ([`status`]).
//!
//! Why `status.generation` is written with the first status: a controller
//! restarted (or a second replica taking over) sees the document as
//! started and does not start it again. A document that cannot start gets
//! `status.error` (what is wrong and what to do) and a `Warning` Event,
//! and is not tried again until it changes (a new generation).
//!
//! After a restart, [`ExecutionController::recover`] takes over the runs
//! the previous process left running: their workers are taken up where
//! they are, and their documents' status written on ([`recover`]).

mod catalog;
mod recover;
mod status;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use testkube_core::engine::Event as RunEvent;
use testkube_core::model::{ExecutionDocumentStatus, LatestExecution, TestWorkflowExecution};
use testkube_core::service::{RunControl, RunHandle, RunRequest, RunService};

use catalog::ClusterCatalog;
use status::StatusWriter;

/// Why a TestWorkflowExecution could not be started (written to its
/// `status.error`), or why the controller stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// The document names no workflow.
    #[error(
        "spec.testWorkflow.name is not set: name the TestWorkflow to run (spec: {{testWorkflow: {{name: NAME}}}})"
    )]
    NoWorkflow,
    /// The named workflow is not in the namespace.
    #[error(
        "TestWorkflow `{name}` does not exist in namespace `{namespace}`: create it (kubectl apply -f WORKFLOW.yaml) or fix spec.testWorkflow.name"
    )]
    WorkflowNotFound {
        /// The name the document gave.
        name: String,
        /// Where it was looked for.
        namespace: String,
    },
    /// The workflow cannot be read or resolved.
    #[error("TestWorkflow `{name}` cannot run: {message}")]
    InvalidWorkflow {
        /// The workflow's name.
        name: String,
        /// What is wrong, with field paths.
        message: String,
    },
    /// The run service refused to start it (secrets, plan, executor).
    #[error("TestWorkflow `{name}` cannot start: {source}")]
    Start {
        /// The workflow's name.
        name: String,
        /// The service's reason.
        #[source]
        source: testkube_core::service::ServiceError,
    },
    /// A Kubernetes API request failed.
    #[error("{what}: {source}")]
    Api {
        /// What the controller was doing.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The watch of TestWorkflowExecutions ended with an error.
    #[error("watching TestWorkflowExecutions failed: {0}")]
    Watch(#[source] watcher::Error),
    /// A bug (e.g. the built-in templates do not load).
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

/// The TestWorkflowExecution a run writes its status to.
struct Document {
    object: DynamicObject,
    name: String,
    generation: i64,
}

/// Runs the TestWorkflowExecutions of one namespace. Cheap to share.
pub struct ExecutionController {
    client: Client,
    namespace: String,
    service: Arc<RunService>,
    catalog: ClusterCatalog,
    status: StatusWriter,
    executions: Api<DynamicObject>,
    /// The runs this process follows, to abort them when it stops.
    runs: Mutex<Vec<(RunControl, tokio::task::JoinHandle<()>)>>,
    /// `(uid, generation)` of the documents started by this process, so a
    /// watch event that arrives before the status patch does not start
    /// the same generation twice.
    started: Mutex<HashSet<(String, i64)>>,
}

impl std::fmt::Debug for ExecutionController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionController")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl ExecutionController {
    /// A controller for `namespace` that starts runs with `service` (whose
    /// executor should run workers in the same cluster, e.g. a
    /// [`KubernetesExecutor`](crate::KubernetesExecutor) on `client`).
    #[must_use]
    pub fn new(client: Client, namespace: &str, service: Arc<RunService>) -> Self {
        ExecutionController {
            client: client.clone(),
            namespace: namespace.to_owned(),
            service,
            catalog: ClusterCatalog::new(client.clone(), namespace),
            status: StatusWriter::new(client.clone(), namespace),
            executions: Api::namespaced_with(
                client,
                namespace,
                &catalog::resource("TestWorkflowExecution", "testworkflowexecutions"),
            ),
            runs: Mutex::new(Vec::new()),
            started: Mutex::new(HashSet::new()),
        }
    }

    /// Watches the namespace's TestWorkflowExecutions and starts each new
    /// generation, until `shutdown` completes. Runs already started go on
    /// (their Jobs do not depend on this process; their progress is
    /// written while the process lives).
    ///
    /// # Errors
    /// [`ControllerError::Watch`] when the watch cannot go on (e.g. the
    /// CRD is not installed: the error says the resource is unknown).
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ControllerError> {
        let stream = watcher(self.executions.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                next = stream.next() => match next {
                    Some(Ok(document)) => Arc::clone(&self).reconcile(document).await,
                    Some(Err(err)) => {
                        // The backoff retries; say so and go on.
                        tracing::warn!("watching TestWorkflowExecutions: {err}");
                    }
                    None => return Ok(()),
                },
            }
        }
    }

    /// Starts `document`'s run if its generation has not been started;
    /// a failure to start is written to its status and Events.
    pub async fn reconcile(self: Arc<Self>, document: DynamicObject) {
        let name = document.metadata.name.clone().unwrap_or_default();
        let generation = document.metadata.generation.unwrap_or(1);
        let uid = document
            .metadata
            .uid
            .clone()
            .unwrap_or_else(|| name.clone());
        let parsed: Result<TestWorkflowExecution, String> = catalog::from_object(&document);
        let observed = parsed
            .as_ref()
            .ok()
            .and_then(|parsed| parsed.status.as_ref())
            .and_then(|status: &ExecutionDocumentStatus| status.generation);
        if observed == Some(generation) {
            return;
        }
        {
            let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
            if !started.insert((uid, generation)) {
                return;
            }
        }
        let result = match parsed {
            Ok(parsed) => self.start(&document, generation, parsed).await,
            Err(message) => Err(ControllerError::InvalidWorkflow {
                name: name.clone(),
                message: format!("TestWorkflowExecution `{name}` is invalid: {message}"),
            }),
        };
        match result {
            Ok(()) => {
                let message = format!("started a run of generation {generation}");
                if let Err(err) = self
                    .status
                    .event(&document, false, "Started", &message)
                    .await
                {
                    tracing::warn!(execution = %name, "cannot record an Event: {err}");
                }
            }
            Err(err) => {
                let message = err.to_string();
                tracing::warn!(execution = %name, "cannot start: {message}");
                if let Err(err) = self
                    .status
                    .write(&name, generation, None, Some(&message))
                    .await
                {
                    tracing::warn!(execution = %name, "cannot write status.error: {err}");
                }
                if let Err(err) = self
                    .status
                    .event(&document, true, "FailedToStart", &message)
                    .await
                {
                    tracing::warn!(execution = %name, "cannot record an Event: {err}");
                }
            }
        }
    }

    /// Resolves, starts and follows one run.
    async fn start(
        self: &Arc<Self>,
        object: &DynamicObject,
        generation: i64,
        document: TestWorkflowExecution,
    ) -> Result<(), ControllerError> {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let workflow = document
            .spec
            .test_workflow
            .as_ref()
            .map(|reference| reference.name.clone())
            .filter(|workflow| !workflow.is_empty())
            .ok_or(ControllerError::NoWorkflow)?;
        let execution_request = document.spec.execution_request.unwrap_or_default();
        let resolved = self
            .catalog
            .resolve(&workflow, &execution_request.config)
            .await?;
        let mut request = RunRequest::resolved(&resolved, &execution_request.config)
            .with_source(format!("TestWorkflowExecution {}/{name}", self.namespace));
        for (key, value) in &execution_request.tags {
            request = request.with_tag(key.clone(), value.clone());
        }
        let scheduled_at = chrono::Utc::now();
        let refused = |source| ControllerError::Start {
            name: workflow.clone(),
            source,
        };
        let mut prepared = self.service.prepare(request).await.map_err(refused)?;
        // `execute` children are the namespace's workflows, read only when
        // a step runs some.
        if prepared.uses_execute() {
            let set = self.catalog.workflow_set().await?;
            prepared = prepared.with_catalog(Arc::new(set));
        }
        let run = self.service.launch(prepared).await.map_err(refused)?;
        let mut latest = status::started(&run, &self.namespace, name, scheduled_at);
        latest.tags = execution_request.tags.clone();
        latest.disable_webhooks = execution_request.disable_webhooks;
        if let Err(err) = self
            .status
            .write(name, generation, Some(&latest), None)
            .await
        {
            tracing::warn!(execution = %name, "cannot write status: {err}");
        }
        let control = run.control();
        let document = Document {
            object: object.clone(),
            name: name.to_owned(),
            generation,
        };
        let follower = self.follow_run(run, Some(document), latest, false);
        self.keep(control, follower);
        Ok(())
    }

    /// Follows `run` on a task of its own, writing its progress to the
    /// status of `document` (if it has one). A run taken over after a
    /// restart (`resumed`) then has whatever objects are left of it
    /// deleted: an earlier process may have made some (a service's pod)
    /// that this one never knew.
    fn follow_run(
        self: &Arc<Self>,
        mut run: RunHandle,
        document: Option<Document>,
        mut latest: LatestExecution,
        resumed: bool,
    ) -> tokio::task::JoinHandle<()> {
        let controller = Arc::clone(self);
        tokio::spawn(async move {
            let id = run.id().to_owned();
            while let Some(event) = run.next_event().await {
                let Some(Document {
                    object,
                    name,
                    generation,
                }) = &document
                else {
                    continue;
                };
                let status = &controller.status;
                match event {
                    RunEvent::Execution { status: now, at } => {
                        status::changed(&mut latest, now, chrono::DateTime::from(at));
                    }
                    RunEvent::Finished(summary) => {
                        status::finished(&mut latest, &summary);
                        // `kubectl describe` and alerting see the verdict.
                        let passed = summary.status.is_passed();
                        let mut message = format!("{} {}", summary.name, summary.status);
                        if let Some(why) = &summary.message {
                            message = format!("{message}: {why}");
                        }
                        if let Err(err) = status.event(object, !passed, "Finished", &message).await
                        {
                            tracing::warn!(execution = %name, "cannot record an Event: {err}");
                        }
                    }
                    _ => continue,
                }
                if let Err(err) = status.write(name, *generation, Some(&latest), None).await {
                    tracing::warn!(execution = %name, "cannot write status: {err}");
                }
            }
            if resumed {
                controller.delete_objects(&id).await;
            }
        })
    }

    /// Keeps a followed run, to abort it when the process stops.
    fn keep(&self, control: RunControl, follower: tokio::task::JoinHandle<()>) {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.retain(|(_, follower)| !follower.is_finished());
        runs.push((control, follower));
    }

    /// Aborts every run this process follows and waits (at most `grace`)
    /// until each has ended: logs read to the end, Jobs deleted, `status`
    /// written `aborted`. For an agent told to stop (SIGTERM): it may not
    /// come back (an uninstall), and the pods' finalizers would hold them
    /// until one does, so its runs end now rather than run unobserved. An
    /// agent that is killed instead leaves them running, and the next one
    /// takes them over ([`ExecutionController::recover`]). Returns how many
    /// were running.
    pub async fn abort_runs(&self, grace: std::time::Duration) -> usize {
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(PoisonError::into_inner));
        let running: Vec<_> = runs
            .into_iter()
            .filter(|(_, follower)| !follower.is_finished())
            .collect();
        for (control, _) in &running {
            control.abort();
        }
        let count = running.len();
        let all = futures_util::future::join_all(running.into_iter().map(|(_, follower)| follower));
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("runs still ending after {grace:?}: stopping anyway");
        }
        count
    }
}
