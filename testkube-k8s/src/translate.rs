//! A worker's log, line by line, into worker events: output gathered into
//! few large log events, frames into step events, and the worker's
//! requests run on the engine (its services by [`ServicePods`]) and
//! answered in the pod (`pods/exec`). When
//! the pod ended without reporting its end, [`Translator::close`] decides
//! from what Kubernetes says. An uploaded artifacts archive
//! ([`Frame::Uploaded`]) is filed in the [`SignedStorage`] while the log
//! goes on, and its artifacts reported before the worker's end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::AttachParams;
use testkube_core::engine::protocol::{
    Decoded, Frame, LineDecoder, ObjectLinks, Reply, Request, ServicesOutcome, TerminationMessage,
};
use testkube_core::engine::{Orchestrator, SignedStorage, StepDetail, WorkerEvent, WorkerId};
use testkube_core::status::StepStatus;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::follow::Line;
use crate::links::fetch_links;
use crate::manifest::INIT_BINARY;
use crate::pods::PodView;
use crate::services::ServicePods;

/// The most output bytes one log event carries (the store's chunk size).
const MAX_LOG_EVENT: usize = testkube_core::store::MAX_LOG_CHUNK;

/// Turns log lines into worker events and answers the worker's requests.
pub(crate) struct Translator {
    decoder: LineDecoder,
    pods: Api<Pod>,
    orchestrator: Arc<dyn Orchestrator>,
    events: mpsc::Sender<WorkerEvent>,
    /// Steps reported running and not finished, in the order they started.
    open: Vec<String>,
    pub(crate) finished: Option<StepStatus>,
    requests: HashMap<u64, JoinHandle<()>>,
    pod: Option<String>,
    /// Output not sent yet, and its step.
    pending: Vec<u8>,
    pending_step: Option<String>,
    /// Runs the worker's services.
    services: Option<Arc<ServicePods>>,
    storage: Option<Storage>,
    /// Artifacts being filed; waited for before the worker ends.
    filing: Vec<JoinHandle<()>>,
    /// The worker was taken up after a restart and its log is being read
    /// up to where it was ([`Line::caught_up`]).
    replaying: bool,
    /// Requests read while replaying that no [`Frame::Answered`] followed
    /// (yet), by container: asked once the log is caught up.
    unanswered: Vec<(String, u64, Request)>,
}

/// Where the worker's uploads are filed.
#[derive(Clone)]
struct Storage {
    signed: Arc<dyn SignedStorage>,
    execution: String,
    worker: WorkerId,
}

impl Translator {
    pub(crate) fn new(
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
            services: None,
            storage: None,
            filing: Vec::new(),
            replaying: false,
            unanswered: Vec::new(),
        }
    }

    /// For a worker taken up after a restart: its requests are asked once
    /// the lines it wrote before are read, and only those nobody answered.
    pub(crate) fn replaying(mut self) -> Self {
        self.replaying = true;
        self
    }

    /// Files uploaded artifacts of worker `worker` of `execution` in
    /// `storage`, and signs the URLs of fetched archives there.
    pub(crate) fn with_storage(
        mut self,
        storage: Arc<dyn SignedStorage>,
        execution: String,
        worker: WorkerId,
    ) -> Self {
        self.storage = Some(Storage {
            signed: storage,
            execution,
            worker,
        });
        self
    }

    /// Answers the worker's service requests with `services`.
    pub(crate) fn with_services(mut self, services: Arc<ServicePods>) -> Self {
        self.services = Some(services);
        self
    }

    pub(crate) async fn consume(&mut self, mut lines: mpsc::Receiver<Line>) {
        let mut container = String::new();
        while let Some(first) = lines.recv().await {
            // Whatever else has arrived is taken at once, so that output
            // lines become a few large log events rather than one each.
            let mut next = Some(first);
            while let Some(line) = next {
                if line.caught_up {
                    self.caught_up();
                    next = lines.try_recv().ok();
                    continue;
                }
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
        for filing in std::mem::take(&mut self.filing) {
            let _ = filing.await;
        }
    }

    /// The log is read up to where it was when the worker was taken up: the
    /// requests nobody answered are asked now (one answered just before the
    /// restart may be asked twice; the worker ignores a second reply).
    fn caught_up(&mut self) {
        if !self.replaying {
            return;
        }
        self.replaying = false;
        for (container, id, request) in std::mem::take(&mut self.unanswered) {
            self.ask(id, request, &container);
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
            Decoded::Frame(Frame::Request { id, request }) if self.replaying => {
                self.unanswered.push((container.to_owned(), id, request));
            }
            Decoded::Frame(Frame::Request { id, request }) => self.ask(id, request, container),
            Decoded::Frame(Frame::Answered { id } | Frame::Cancel { id }) if self.replaying => {
                self.unanswered
                    .retain(|(asked_in, asked, _)| !(asked_in == container && *asked == id));
            }
            Decoded::Frame(Frame::Answered { .. }) => {}
            Decoded::Frame(Frame::Uploaded {
                step,
                files,
                compress,
            }) => self.file(step, files, compress),
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
        let storage = self.storage.clone();
        let services = self.services.clone();
        let handle = tokio::spawn(async move {
            let reply = match request {
                Request::Parallel(request) => {
                    let block = request.parallel.clone();
                    let outcome = orchestrator.run_parallel(*request).await;
                    let mut links = ObjectLinks::default();
                    if let Some(storage) = storage
                        && !block.fetch.is_empty()
                    {
                        let workers: Vec<WorkerId> =
                            outcome.workers.iter().map(|(id, _)| id.clone()).collect();
                        match fetch_links(&storage.signed, &storage.execution, &block, &workers)
                            .await
                        {
                            Ok(signed) => links = signed,
                            Err(err) => {
                                let _ = events
                                    .send(WorkerEvent::Notice {
                                        message: format!(
                                            "the fetched files cannot be read back: {err}"
                                        ),
                                    })
                                    .await;
                            }
                        }
                    }
                    Reply::Parallel { outcome, links }
                }
                Request::Execute(request) => Reply::Execute(orchestrator.execute(*request).await),
                Request::Paused { step } => Reply::Released {
                    interruption: orchestrator.paused(&step).await,
                },
                Request::Ready => Reply::Released {
                    interruption: orchestrator.ready().await,
                },
                Request::StartServices(request) => Reply::Services(match &services {
                    Some(services) => services.start(*request).await,
                    None => ServicesOutcome::failed("this executor cannot run services"),
                }),
                Request::StopServices(request) => Reply::Services(match &services {
                    Some(services) => services.stop(request).await,
                    None => ServicesOutcome::default(),
                }),
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

    /// Files the archive the worker uploaded for step `step` and reports
    /// its artifacts, while the log goes on.
    fn file(&mut self, step: String, files: u64, compress: Option<String>) {
        let Some(storage) = self.storage.clone() else {
            return;
        };
        let events = self.events.clone();
        // An archive read again after a restart was filed (and its upload
        // removed) by the engine before: nothing is missing.
        let quiet = self.replaying;
        self.filing.push(tokio::spawn(async move {
            let filed = storage
                .signed
                .file_artifacts(
                    &storage.execution,
                    &storage.worker,
                    &step,
                    compress.as_deref(),
                )
                .await;
            match filed {
                Ok(artifacts) => {
                    for artifact in artifacts {
                        let _ = events
                            .send(WorkerEvent::Artifact {
                                step: step.clone(),
                                path: artifact.path,
                                location: artifact.location,
                                size: artifact.size,
                            })
                            .await;
                    }
                }
                Err(_) if quiet => {}
                Err(err) => {
                    let _ = events
                        .send(WorkerEvent::Notice {
                            message: format!(
                                "step `{step}`: the {files} uploaded artifact file(s) were not \
                                 kept: {err}"
                            ),
                        })
                        .await;
                }
            }
        }));
    }

    /// The worker's status when its pod ended without saying: its
    /// termination message's, else why Kubernetes ended it. Open steps end
    /// with it.
    pub(crate) async fn close(
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
