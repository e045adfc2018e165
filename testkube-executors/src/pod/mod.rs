//! The in-pod side of the Kubernetes executor: runs a [`WorkerTask`] with
//! the same [`StepRunner`] as local workers and reports through the
//! [worker protocol](testkube_core::engine::protocol) on its standard
//! output, the only channel a test pod has (it gets no network path to the
//! engine and no API permission).
//!
//! - Events become the protocol's byte stream ([`LineEncoder`]): each
//!   step's output as written, frames on lines of their own.
//! - The [`Orchestrator`] calls a worker makes (`parallel`, `execute`,
//!   `paused`, the start barrier), and starting and stopping a step's
//!   `services` ([`ServicePods`]: each instance is a pod the engine
//!   creates), become [`Frame::Request`]s; the engine
//!   answers by writing the [`Reply`] into `<control dir>/<id>.json`
//!   (`testkube-init reply ID`, run through the API's `pods/exec`), which
//!   the waiting call picks up. When a waiting call is dropped (its step
//!   timed out), a [`Frame::Cancel`] tells the engine to stop that work.
//! - At the end, the statuses of the steps it finished go to the
//!   container's termination message ([`TerminationMessage`]), which
//!   Kubernetes keeps even when the log cannot be read.
//!
//! - Artifacts and `transfer`/`fetch` archives go to the object store
//!   through the signed URLs of the task ([`storage`]).
//!
//! The folders are the pod's own: `/data`, `/tmp` and `/testkube` are
//! emptyDir volumes shared by the pod's containers, so paths mean what
//! they say and steps run as plain processes (the container is the
//! sandbox).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use testkube_core::engine::protocol::{
    Frame, LineEncoder, PROTOCOL_VERSION, Reply, Request, ServicesOutcome, ServicesRequest,
    StopServicesRequest, TerminationMessage, WorkerTask,
};
use testkube_core::engine::{
    ExecuteOutcome, ExecuteRequest, Orchestrator, ParallelOutcome, ParallelRequest, WorkerEvent,
};
use testkube_core::status::{Interruption, StepStatus};
use tokio::sync::{mpsc, watch};

use crate::local::host::HostLauncher;
use crate::runner::services::ServicePods;
use crate::runner::{ArtifactStorage, Relay, RunnerConfig, StepRunner, WorkerPaths};

mod storage;

use storage::{Links, SignedArchives, SignedUploads};

/// How often a waiting call looks for its reply file. Local file system
/// only: no API request is made while waiting.
const REPLY_POLL: Duration = Duration::from_millis(50);

/// Where the pieces of a pod worker are.
#[derive(Debug, Clone)]
pub struct PodLayout {
    /// The pod's root folder for `/data`, `/tmp` and `/testkube` (`/` in a
    /// pod; a temporary folder in tests).
    pub root: PathBuf,
    /// Where the engine writes replies (`/testkube/.control` in a pod).
    pub control_dir: PathBuf,
    /// The container's termination message file (`/dev/termination-log`).
    pub termination_log: PathBuf,
    /// Where a container leaves the runner's state for the next one (in
    /// the shared `/testkube` volume).
    pub relay_state: PathBuf,
}

impl PodLayout {
    /// The layout in a pod.
    #[must_use]
    pub fn in_pod() -> Self {
        PodLayout {
            root: PathBuf::from("/"),
            control_dir: PathBuf::from(CONTROL_DIR),
            termination_log: PathBuf::from("/dev/termination-log"),
            relay_state: PathBuf::from("/testkube/.state/relay.json"),
        }
    }
}

/// The folder replies are written to in a pod.
pub const CONTROL_DIR: &str = "/testkube/.control";

/// Where the worker's task is mounted in a pod (from a ConfigMap).
pub const TASK_FILE: &str = "/.testkube/task/task.json";

/// Where `testkube-init` is copied for the pod's containers.
pub const INIT_BINARY: &str = "/.testkube/bin/testkube-init";

/// The file that holds the reply to request `id`.
#[must_use]
pub fn reply_file(control_dir: &Path, id: u64) -> PathBuf {
    control_dir.join(format!("{id}.json"))
}

/// Writes `reply` for request `id` so that the waiting worker sees it whole
/// (written aside, then renamed).
///
/// # Errors
/// The I/O error that prevented it.
pub fn write_reply(control_dir: &Path, id: u64, reply: &Reply) -> std::io::Result<()> {
    std::fs::create_dir_all(control_dir)?;
    let scratch = control_dir.join(format!(".{id}.json.part"));
    std::fs::write(&scratch, reply.to_json())?;
    std::fs::rename(&scratch, reply_file(control_dir, id))
}

/// Why a pod worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The state an earlier container left cannot be read.
    #[error("{0}")]
    State(String),
    /// The workspace folders could not be made.
    #[error("cannot create the worker's folders under {path}: {source}")]
    Workspace {
        /// The root.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How a container's part of a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodEnd {
    /// The worker is done, with the status of its root.
    Finished(StepStatus),
    /// The next container of the pod goes on with the worker's steps.
    HandedOff,
}

/// Runs container `container`'s part of `task` (all of it when the task
/// names no containers), writing the protocol to `out`. `interrupt` stops
/// it (SIGTERM in a pod).
///
/// # Errors
/// [`PodError`] when the worker cannot start at all.
pub async fn run_task(
    task: WorkerTask,
    container: usize,
    layout: &PodLayout,
    out: Box<dyn Write + Send>,
    interrupt: watch::Receiver<Option<Interruption>>,
) -> Result<PodEnd, PodError> {
    let paths = WorkerPaths::new(&layout.root, layout.root == Path::new("/"));
    let relay = if task.containers.is_empty() {
        None
    } else {
        let state = Relay::load_state(&layout.relay_state).map_err(PodError::State)?;
        Some(Relay::new(container, task.containers.clone(), state))
    };
    paths.create().map_err(|source| PodError::Workspace {
        path: layout.root.clone(),
        source,
    })?;
    let writer = Arc::new(ProtocolWriter::new(out));
    let (events, mut received) = mpsc::channel::<WorkerEvent>(256);
    let forward = {
        let writer = Arc::clone(&writer);
        tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                writer.event(&event);
            }
        })
    };
    let links = Links::new(task.links.clone());
    let client = storage::client();
    let orchestrator = Arc::new(ReplyOrchestrator {
        writer: Arc::clone(&writer),
        control_dir: layout.control_dir.clone(),
        next: AtomicU64::new(1),
        links: links.clone(),
    });
    let uploads = SignedUploads {
        links: links.clone(),
        client: client.clone(),
        writer: Arc::clone(&writer),
    };
    let archives = SignedArchives {
        links,
        client,
        scratch: layout.root.join("tmp/.testkube-archives"),
    };
    // Services are pods the engine creates: a test pod may create none.
    let service_pods: Arc<dyn ServicePods> = orchestrator.clone();
    let mut runner = StepRunner::new(RunnerConfig {
        launcher: Arc::new(HostLauncher::new(Vec::new())),
        paths,
        events: events.clone(),
        orchestrator,
        interrupt,
        variables: task.variables.clone(),
        artifacts: Some(ArtifactStorage::uploads(Arc::new(uploads))),
    })
    .with_link(crate::runner::transfer::WorkerLink {
        worker: Some(task.worker.clone()),
        files: task.files.clone(),
        barrier: task.barrier,
        archives: Some(Arc::new(archives)),
    });
    if let Some(relay) = &relay {
        runner = runner.with_relay(relay.clone());
    }
    runner = runner.with_service_pods(service_pods);
    // The plan already holds the worker-wide (`global`) env in each step.
    let status = runner.run(&task.root).await;
    let end = match &relay {
        Some(relay) if relay.handed_off() => {
            relay
                .save_state(&layout.relay_state)
                .map_err(|source| PodError::Workspace {
                    path: layout.relay_state.clone(),
                    source,
                })?;
            PodEnd::HandedOff
        }
        _ => {
            let _ = events.send(WorkerEvent::Finished { status }).await;
            PodEnd::Finished(status)
        }
    };
    drop(events);
    let _ = forward.await;
    writer.finish(end, &layout.termination_log);
    Ok(end)
}

/// The container's standard output, shared by the event forwarder and the
/// waiting orchestrator calls, and what the termination message keeps.
struct ProtocolWriter {
    state: Mutex<WriterState>,
}

struct WriterState {
    out: Box<dyn Write + Send>,
    encoder: LineEncoder,
    buffer: Vec<u8>,
    finished_steps: BTreeMap<String, StepStatus>,
}

impl ProtocolWriter {
    fn new(out: Box<dyn Write + Send>) -> Self {
        ProtocolWriter {
            state: Mutex::new(WriterState {
                out,
                encoder: LineEncoder::new(),
                buffer: Vec::new(),
                finished_steps: BTreeMap::new(),
            }),
        }
    }

    fn event(&self, event: &WorkerEvent) {
        let mut state = self.lock();
        if let WorkerEvent::Step { step, status, .. } = event
            && status.is_finished()
        {
            state.finished_steps.insert(step.clone(), *status);
        }
        let WriterState {
            encoder, buffer, ..
        } = &mut *state;
        encoder.event(event, buffer);
        state.flush();
    }

    fn frame(&self, frame: &Frame) {
        let mut state = self.lock();
        let WriterState {
            encoder, buffer, ..
        } = &mut *state;
        encoder.frame(frame, buffer);
        state.flush();
    }

    fn finish(&self, end: PodEnd, termination_log: &Path) {
        let state = self.lock();
        let message = TerminationMessage {
            version: PROTOCOL_VERSION,
            finished: match end {
                PodEnd::Finished(status) => Some(status),
                PodEnd::HandedOff => None,
            },
            steps: state.finished_steps.clone(),
        };
        // Best effort: outside a pod the file may not be writable, and the
        // log already says everything.
        let _ = std::fs::write(termination_log, message.encode());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl WriterState {
    fn flush(&mut self) {
        // A container whose output cannot be written has lost its only
        // channel; the engine sees the worker end without `finished`.
        let _ = self.out.write_all(&self.buffer);
        let _ = self.out.flush();
        self.buffer.clear();
    }
}

/// The worker's [`Orchestrator`]: each call is a request frame and a wait
/// for the engine's reply file.
struct ReplyOrchestrator {
    writer: Arc<ProtocolWriter>,
    control_dir: PathBuf,
    next: AtomicU64,
    /// Where the URLs of a block's fetch archives go.
    links: Links,
}

impl ReplyOrchestrator {
    async fn ask(&self, request: Request) -> Result<Reply, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.writer.frame(&Frame::Request { id, request });
        let mut pending = Pending {
            id,
            writer: Arc::clone(&self.writer),
            answered: false,
        };
        let file = reply_file(&self.control_dir, id);
        loop {
            match tokio::fs::read(&file).await {
                Ok(bytes) => {
                    pending.answered = true;
                    let _ = tokio::fs::remove_file(&file).await;
                    self.writer.frame(&Frame::Answered { id });
                    return Reply::from_json(&bytes).map_err(|err| err.to_string());
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(REPLY_POLL).await;
                }
                Err(err) => {
                    return Err(format!(
                        "cannot read the engine's reply {}: {err}",
                        file.display()
                    ));
                }
            }
        }
    }
}

/// Tells the engine that a request's caller gave up (dropped its future).
struct Pending {
    id: u64,
    writer: Arc<ProtocolWriter>,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered {
            self.writer.frame(&Frame::Cancel { id: self.id });
        }
    }
}

#[async_trait]
impl Orchestrator for ReplyOrchestrator {
    async fn run_parallel(&self, request: ParallelRequest) -> ParallelOutcome {
        let step = request.step.clone();
        match self.ask(Request::Parallel(Box::new(request))).await {
            Ok(Reply::Parallel { outcome, links }) => {
                self.links.add(links);
                outcome
            }
            Ok(other) => ParallelOutcome {
                status: StepStatus::Failed,
                workers: Vec::new(),
                message: Some(format!("step `{step}`: unexpected reply {other:?}")),
            },
            Err(message) => ParallelOutcome {
                status: StepStatus::Failed,
                workers: Vec::new(),
                message: Some(format!("step `{step}`: {message}")),
            },
        }
    }

    async fn execute(&self, request: ExecuteRequest) -> ExecuteOutcome {
        let step = request.step.clone();
        match self.ask(Request::Execute(Box::new(request))).await {
            Ok(Reply::Execute(outcome)) => outcome,
            Ok(other) => ExecuteOutcome {
                status: StepStatus::Failed,
                children: Vec::new(),
                message: Some(format!("step `{step}`: unexpected reply {other:?}")),
            },
            Err(message) => ExecuteOutcome {
                status: StepStatus::Failed,
                children: Vec::new(),
                message: Some(format!("step `{step}`: {message}")),
            },
        }
    }

    async fn paused(&self, step: &str) -> Option<Interruption> {
        released(
            self.ask(Request::Paused {
                step: step.to_owned(),
            })
            .await,
        )
    }

    async fn ready(&self) -> Option<Interruption> {
        released(self.ask(Request::Ready).await)
    }
}

/// A step's `services`: each instance is a pod the engine creates.
#[async_trait]
impl ServicePods for ReplyOrchestrator {
    async fn start(&self, request: ServicesRequest) -> ServicesOutcome {
        let step = request.step.clone();
        services_reply(
            &step,
            self.ask(Request::StartServices(Box::new(request))).await,
        )
    }

    async fn stop(&self, request: StopServicesRequest) -> ServicesOutcome {
        let step = request.step.clone();
        services_reply(&step, self.ask(Request::StopServices(request)).await)
    }
}

fn services_reply(step: &str, reply: Result<Reply, String>) -> ServicesOutcome {
    match reply {
        Ok(Reply::Services(outcome)) => outcome,
        Ok(other) => ServicesOutcome::failed(format!("step `{step}`: unexpected reply {other:?}")),
        Err(message) => ServicesOutcome::failed(format!("step `{step}`: {message}")),
    }
}

/// A wait that ends badly stops the worker as an abort: it cannot go on
/// without the engine.
fn released(reply: Result<Reply, String>) -> Option<Interruption> {
    match reply {
        Ok(Reply::Released { interruption }) => interruption,
        _ => Some(Interruption::Abort),
    }
}
