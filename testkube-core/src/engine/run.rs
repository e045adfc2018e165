//! The [`Engine`]: runs a plan's root worker through an [`Executor`], fans
//! out `parallel` blocks when a worker asks, applies the whole-run deadline
//! and aborts, and publishes everything as [`Event`]s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::children::{self, ChildExecutions};
use super::event::{Event, ExecutionSummary, SummaryBuilder, SummaryHeader};
use super::executor::{
    ExecuteOutcome, ExecuteRequest, ExecutionInfo, Executor, Orchestrator, ParallelOutcome,
    ParallelRequest, Unsupported, WorkerControl, WorkerEvent, WorkerFiles, WorkerId, WorkerSpec,
};
use super::fanout::{self, StartBarrier};
use super::mask::{MaskerError, SecretMasker};
use super::mask_events::EventMasker;
use super::support::unsupported_features;
use super::translate::{step_index, translate};
use crate::model::EnvVar;
use crate::plan::{Plan, PlanStep};
use crate::status::{ExecutionStatus, Interruption, StepStatus};

/// How many events may wait for a slow consumer before workers wait too.
/// A log event carries at most [`MAX_LOG_CHUNK`](crate::store::MAX_LOG_CHUNK) bytes, so this also
/// bounds the log bytes each of the engine's two queues holds (8 MiB):
/// a step printing faster than the store keeps up waits, whatever it prints.
const EVENT_BUFFER: usize = 128;

/// How deep child executions may nest: deeper is a workflow that
/// (indirectly) executes itself.
const MAX_CHILD_DEPTH: usize = 16;

/// Runs plans: one [`Engine`] serves any number of executions.
///
/// ```no_run
/// # async fn demo(executor: std::sync::Arc<dyn testkube_core::engine::Executor>, plan: testkube_core::Plan) {
/// use testkube_core::engine::{Engine, Event, ExecutionRequest};
/// let engine = Engine::new(executor);
/// let mut run = engine.start(plan, ExecutionRequest::new("exec-1")).unwrap();
/// while let Some(event) = run.next_event().await {
///     if let Event::Finished(summary) = event {
///         println!("{}", summary.status);
///     }
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Engine {
    executor: Arc<dyn Executor>,
    children: Option<Arc<dyn ChildExecutions>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("executor", &self.executor.name())
            .field("children", &self.children.is_some())
            .finish()
    }
}

/// What to run a plan as: its identity and the values its expressions see.
#[derive(Debug, Clone, Default)]
pub struct ExecutionRequest {
    /// The execution id (unique; also names its folders).
    pub id: String,
    /// The number of the execution for its workflow (1 for the first).
    pub number: u64,
    /// The display name; `<workflow>-<number>` when empty.
    pub name: String,
    /// The resolved config values (`config.*`).
    pub config: BTreeMap<String, Value>,
    /// Tags (`execution.tags`).
    pub tags: BTreeMap<String, String>,
    /// The workflow's labels (`workflow.labels`).
    pub labels: BTreeMap<String, String>,
    /// Values to mask in every event (sensitive config values, values of
    /// `secret(name, key)`); see [`SecretMasker`] for which are ignored.
    pub secrets: Vec<String>,
}

impl ExecutionRequest {
    /// The expression variables every worker of the execution sees:
    /// `config`, `execution` and `workflow`.
    #[must_use]
    pub fn variables(&self, execution: &ExecutionInfo) -> BTreeMap<String, Value> {
        base_variables(execution, self)
    }

    /// A request with id `id`, number 1 and nothing else.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        ExecutionRequest {
            id: id.into(),
            number: 1,
            ..ExecutionRequest::default()
        }
    }
}

/// Why a plan could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The plan uses features that cannot run yet.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unsupported(Vec<Unsupported>),
    /// No tokio runtime is running.
    #[error("the engine needs a tokio runtime")]
    NoRuntime,
    /// The request's secrets cannot be searched for.
    #[error(transparent)]
    Masker(#[from] MaskerError),
}

/// A started execution: its events, and a way to stop it.
#[derive(Debug)]
pub struct RunningExecution {
    events: mpsc::Receiver<Event>,
    canceller: Canceller,
}

impl RunningExecution {
    /// The next event; `None` after [`Event::Finished`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// A handle that stops (e.g. on Ctrl-C) or resumes the execution.
    #[must_use]
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// The events as a stream (see [`tokio_stream::StreamExt`]).
    #[must_use]
    pub fn into_stream(self) -> ReceiverStream<Event> {
        ReceiverStream::new(self.events)
    }

    /// Drops every event until the end and returns the summary.
    pub async fn wait(mut self) -> Option<ExecutionSummary> {
        while let Some(event) = self.events.recv().await {
            if let Event::Finished(summary) = event {
                return Some(*summary);
            }
        }
        None
    }
}

/// Controls a running execution: stops it, or resumes its paused steps.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Canceller {
    stop: Arc<watch::Sender<Option<Interruption>>>,
    /// Counts resumes: a paused step goes on once it changes.
    resume: Arc<watch::Sender<u64>>,
}

impl Canceller {
    fn new() -> (Self, watch::Receiver<Option<Interruption>>) {
        let (stop, stopped) = watch::channel(None);
        let (resume, _) = watch::channel(0);
        let canceller = Canceller {
            stop: Arc::new(stop),
            resume: Arc::new(resume),
        };
        (canceller, stopped)
    }

    /// Aborts the execution: running steps end `aborted`, the rest
    /// `skipped`, the execution `aborted`. Later calls do nothing.
    /// Child executions of `execute` steps are aborted too.
    pub fn abort(&self) {
        self.interrupt(Interruption::Abort);
    }

    /// Resumes every step that is `paused` now (steps with `paused: true`
    /// wait before they run until this is called; the execution is
    /// reported `paused` meanwhile). Steps that pause later wait for the
    /// next call. Child executions are resumed too.
    pub fn resume(&self) {
        self.resume.send_modify(|generation| *generation += 1);
    }

    pub(crate) fn interrupt(&self, interruption: Interruption) {
        fanout::set_once(&self.stop, interruption);
    }

    /// Receives every resume.
    pub(crate) fn resumes(&self) -> watch::Receiver<u64> {
        self.resume.subscribe()
    }
}

impl Engine {
    /// An engine that runs workers with `executor`.
    #[must_use]
    pub fn new(executor: Arc<dyn Executor>) -> Self {
        Engine {
            executor,
            children: None,
        }
    }

    /// Lets the engine run `execute` steps: `children` finds the workflows
    /// they name, plans them, and sees each child run as an execution of
    /// its own (see [`ChildExecutions`]). Without it, plans that use
    /// `execute` are refused.
    #[must_use]
    pub fn with_children(mut self, children: Arc<dyn ChildExecutions>) -> Self {
        self.children = Some(children);
        self
    }

    /// Checks that this engine can run `plan` (what [`Engine::start`] checks
    /// first), without starting anything: frontends call it before they
    /// record an execution, so a refused plan leaves no trace.
    ///
    /// # Errors
    /// [`EngineError::Unsupported`] listing every feature that cannot run.
    pub fn check(&self, plan: &Plan) -> Result<(), EngineError> {
        let unsupported =
            unsupported_features(plan, self.executor.as_ref(), self.children.is_some());
        if unsupported.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Unsupported(unsupported))
        }
    }

    /// Checks the plan and starts it in the background (on the current
    /// tokio runtime). Consume the events: workers wait when nobody does.
    ///
    /// # Errors
    /// [`EngineError::Unsupported`] when the plan uses a feature that cannot
    /// run yet (nothing was started), [`EngineError::NoRuntime`] outside a
    /// tokio runtime.
    pub fn start(
        &self,
        plan: Plan,
        request: ExecutionRequest,
    ) -> Result<RunningExecution, EngineError> {
        self.start_at(plan, request, 0)
    }

    /// [`Engine::start`] for an execution nested `depth` levels deep in
    /// `execute` steps.
    pub(crate) fn start_at(
        &self,
        plan: Plan,
        request: ExecutionRequest,
        depth: usize,
    ) -> Result<RunningExecution, EngineError> {
        self.check(&plan)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| EngineError::NoRuntime)?;
        let masker = SecretMasker::new(&request.secrets)?;
        let (public_tx, public_rx) = mpsc::channel(EVENT_BUFFER);
        let (canceller, stop_rx) = Canceller::new();
        let name = if request.name.is_empty() {
            format!("{}-{}", plan.workflow, request.number)
        } else {
            request.name.clone()
        };
        let execution = ExecutionInfo {
            id: request.id.clone(),
            name,
            workflow: plan.workflow.clone(),
        };
        let (internal_tx, internal_rx) = mpsc::channel(EVENT_BUFFER);
        let header = SummaryHeader {
            id: execution.id.clone(),
            name: execution.name.clone(),
            workflow: execution.workflow.clone(),
            started: SystemTime::now(),
        };
        runtime.spawn(publish(internal_rx, public_tx, header, masker));
        let shared = Arc::new(Shared {
            engine: self.clone(),
            executor: Arc::clone(&self.executor),
            variables: base_variables(&execution, &request),
            execution,
            global_env: plan.global_env.clone(),
            pod: plan.pod.clone(),
            job: plan.job.clone(),
            events: internal_tx,
            next_worker: AtomicUsize::new(1),
            control: canceller.clone(),
            secrets: request.secrets.clone(),
            stop: stop_rx.clone(),
            depth,
            next_child: AtomicUsize::new(1),
            paused_steps: Mutex::new(0),
            background: Mutex::new(Vec::new()),
        });
        let deadline = plan
            .job
            .as_ref()
            .and_then(|job| job.active_deadline_seconds)
            .and_then(|seconds| u64::try_from(seconds).ok());
        runtime.spawn(run_execution(
            shared,
            plan.root,
            deadline,
            canceller.clone(),
            stop_rx,
        ));
        Ok(RunningExecution {
            events: public_rx,
            canceller,
        })
    }
}

/// What every worker task of one execution shares.
pub(crate) struct Shared {
    /// The engine, to start child executions with.
    engine: Engine,
    executor: Arc<dyn Executor>,
    execution: ExecutionInfo,
    variables: BTreeMap<String, Value>,
    global_env: Vec<EnvVar>,
    /// The plan's pod and Job settings, for executors that run pods.
    pod: Option<crate::model::PodConfig>,
    job: Option<crate::model::JobConfig>,
    events: mpsc::Sender<Internal>,
    next_worker: AtomicUsize,
    /// The execution's own controls (resumes reach paused steps through it).
    control: Canceller,
    /// The values masked in its events: its children mask them too.
    secrets: Vec<String>,
    /// The execution's stop signal (not a block's).
    stop: watch::Receiver<Option<Interruption>>,
    /// How deep in `execute` steps this execution is (0 for a top one).
    depth: usize,
    next_child: AtomicUsize,
    /// How many steps are paused now.
    paused_steps: Mutex<usize>,
    /// `async` children: the execution ends after them.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn children(&self) -> Option<&Arc<dyn ChildExecutions>> {
        self.engine.children.as_ref()
    }

    pub(crate) fn execution(&self) -> &ExecutionInfo {
        &self.execution
    }

    pub(crate) fn control(&self) -> &Canceller {
        &self.control
    }

    pub(crate) fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub(crate) fn execution_stop(&self) -> watch::Receiver<Option<Interruption>> {
        self.stop.clone()
    }

    /// The depth of this execution's children, or why they may not run.
    pub(crate) fn child_depth(&self) -> Result<usize, String> {
        if self.depth >= MAX_CHILD_DEPTH {
            Err(format!(
                "child executions nest more than {MAX_CHILD_DEPTH} levels deep: does a \
                 workflow execute itself?"
            ))
        } else {
            Ok(self.depth + 1)
        }
    }

    /// A child id unique in the execution: `<execution id>-<step>-<n>`.
    pub(crate) fn next_child_id(&self, step: &str) -> String {
        let n = self.next_child.fetch_add(1, Ordering::Relaxed);
        format!("{}-{step}-{n}", self.execution.id)
    }

    /// Keeps an `async` child's task: the execution ends after it.
    pub(crate) fn keep_in_background(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut tasks) = self.background.lock() {
            tasks.push(task);
        }
    }

    /// Waits until the execution is resumed (or `stop` fires), reporting
    /// the execution `paused` while at least one step waits.
    async fn pause(&self, mut stop: watch::Receiver<Option<Interruption>>) -> Option<Interruption> {
        let mut resumes = self.control.resumes();
        let seen = *resumes.borrow_and_update();
        if self.count_paused(1) == 1 {
            self.emit(Event::Execution {
                status: ExecutionStatus::Paused,
                at: SystemTime::now(),
            })
            .await;
        }
        tokio::select! {
            _ = resumes.wait_for(|generation| *generation != seen) => {}
            _ = stopped(&mut stop) => {}
        }
        let interruption = *stop.borrow();
        if self.count_paused(-1) == 0 && interruption.is_none() {
            self.emit(Event::Execution {
                status: ExecutionStatus::Running,
                at: SystemTime::now(),
            })
            .await;
        }
        interruption
    }

    /// Adds `change` to the paused steps; returns the new count.
    fn count_paused(&self, change: isize) -> usize {
        match self.paused_steps.lock() {
            Ok(mut count) => {
                *count = count.saturating_add_signed(change);
                *count
            }
            Err(_) => 0,
        }
    }

    pub(crate) async fn emit(&self, event: Event) {
        // A closed channel means the publisher is gone: nobody listens.
        let _ = self.events.send(Internal::Event(event)).await;
    }

    pub(crate) fn next_worker_id(&self, parent: &WorkerId, step: &str, index: usize) -> WorkerId {
        WorkerId {
            path: format!("{}/{step}/{index}", parent.path),
            number: self.next_worker.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub(crate) fn variables(&self) -> &BTreeMap<String, Value> {
        &self.variables
    }
}

/// Messages to the publisher.
enum Internal {
    Event(Event),
    Done {
        status: ExecutionStatus,
        message: Option<String>,
    },
}

/// Forwards events to the consumer, masking secrets and building the
/// summary on the way: the one place every event passes.
async fn publish(
    mut internal: mpsc::Receiver<Internal>,
    public: mpsc::Sender<Event>,
    header: SummaryHeader,
    masker: SecretMasker,
) {
    let mut summary = SummaryBuilder::default();
    let mut masking = EventMasker::new(masker);
    while let Some(message) = internal.recv().await {
        match message {
            Internal::Event(event) => {
                for event in masking.mask(event) {
                    summary.observe(&event);
                    let _ = public.send(event).await;
                }
            }
            Internal::Done { status, message } => {
                for event in masking.finish() {
                    summary.observe(&event);
                    let _ = public.send(event).await;
                }
                let at = SystemTime::now();
                let _ = public.send(Event::Execution { status, at }).await;
                let done = masking.mask_summary(summary.finish(header, status, message));
                let _ = public.send(Event::Finished(Box::new(done))).await;
                return;
            }
        }
    }
}

async fn run_execution(
    shared: Arc<Shared>,
    root: PlanStep,
    deadline: Option<u64>,
    canceller: Canceller,
    stop: watch::Receiver<Option<Interruption>>,
) {
    shared
        .emit(Event::Execution {
            status: ExecutionStatus::Running,
            at: SystemTime::now(),
        })
        .await;
    let timer = deadline.map(|seconds| {
        let canceller = canceller.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            canceller.interrupt(Interruption::Deadline);
        })
    });
    let worker = WorkerId {
        path: "root".to_owned(),
        number: 0,
    };
    let variables = shared.variables.clone();
    let root_status = run_worker(
        &shared,
        worker,
        root,
        variables,
        None,
        WorkerStart::default(),
        stop.clone(),
    )
    .await;
    // `async` children run on until they end (or the run is stopped).
    let background = shared
        .background
        .lock()
        .map(|mut tasks| std::mem::take(&mut *tasks))
        .unwrap_or_default();
    for task in background {
        let _ = task.await;
    }
    if let Some(timer) = timer {
        timer.abort();
    }
    let interruption = *stop.borrow();
    let (status, message) = match interruption.and_then(Interruption::execution_status) {
        Some(status) => (status, interruption.map(describe)),
        None => (ExecutionStatus::from_root(root_status), None),
    };
    let message = match (message, deadline) {
        (Some(text), Some(seconds)) if interruption == Some(Interruption::Deadline) => {
            Some(format!("{text} ({seconds}s)"))
        }
        (message, _) => message,
    };
    let _ = shared.events.send(Internal::Done { status, message }).await;
}

fn describe(interruption: Interruption) -> String {
    match interruption {
        Interruption::Deadline => "the run exceeded job.activeDeadlineSeconds".to_owned(),
        Interruption::Abort => "the run was aborted".to_owned(),
        Interruption::Cancel => "the run was canceled".to_owned(),
        Interruption::Timeout => "a step timed out".to_owned(),
    }
}

/// How a parallel worker starts: the files it gets and gives, and its
/// block's start barrier.
#[derive(Default)]
pub(crate) struct WorkerStart {
    pub(crate) files: WorkerFiles,
    pub(crate) barrier: Option<Arc<StartBarrier>>,
    /// The worker's own pod settings (a parallel block's), over the plan's.
    pub(crate) pod: Option<crate::model::PodConfig>,
}

/// Runs one worker to its end and returns its root's status. Interrupts
/// it when `stop` fires, and when this future is dropped.
pub(crate) async fn run_worker(
    shared: &Arc<Shared>,
    worker: WorkerId,
    root: PlanStep,
    variables: BTreeMap<String, Value>,
    description: Option<String>,
    start: WorkerStart,
    mut stop: watch::Receiver<Option<Interruption>>,
) -> StepStatus {
    let steps = step_index(&root);
    shared
        .emit(Event::Worker {
            worker: worker.clone(),
            status: StepStatus::Running,
            description: description.clone(),
        })
        .await;
    let finish = |status: StepStatus| Event::Worker {
        worker: worker.clone(),
        status,
        description: description.clone(),
    };
    let already = *stop.borrow();
    if let Some(interruption) = already {
        let status = interruption.step_status(StepStatus::Running);
        shared.emit(finish(status)).await;
        return status;
    }
    let spec = WorkerSpec {
        execution: shared.execution.clone(),
        worker: worker.clone(),
        root,
        env: shared.global_env.clone(),
        variables,
        orchestrator: Arc::new(WorkerOrchestrator {
            shared: Arc::clone(shared),
            worker: worker.clone(),
            stop: stop.clone(),
            barrier: start.barrier.clone(),
        }),
        files: start.files,
        barrier: start.barrier.is_some(),
        pod: start.pod.or_else(|| shared.pod.clone()),
        job: shared.job.clone(),
    };
    let initialization =
        |status: StepStatus, at: SystemTime, message: Option<String>| Event::Initialization {
            worker: worker.clone(),
            status,
            at,
            message,
        };
    // Initialization spans preparing the workspace (the executor's start)
    // and the root's own `content` (the worker's, before its first step).
    shared
        .emit(initialization(StepStatus::Running, SystemTime::now(), None))
        .await;
    let handle = match shared.executor.start(spec).await {
        Ok(handle) => handle,
        Err(err) => {
            let message = err.to_string();
            shared
                .emit(Event::Notice {
                    worker: Some(worker.clone()),
                    message: message.clone(),
                })
                .await;
            shared
                .emit(initialization(
                    StepStatus::Failed,
                    SystemTime::now(),
                    Some(message),
                ))
                .await;
            shared.emit(finish(StepStatus::Failed)).await;
            return StepStatus::Failed;
        }
    };
    let mut initialized = false;
    let mut guard = InterruptOnDrop {
        control: Some(Arc::clone(&handle.control)),
    };
    let mut events = handle.events;
    let mut interrupted = false;
    let status = loop {
        let next = if interrupted {
            tokio_stream::StreamExt::next(&mut events).await
        } else {
            tokio::select! {
                next = tokio_stream::StreamExt::next(&mut events) => next,
                interruption = stopped(&mut stop) => {
                    interrupted = true;
                    if let Some(interruption) = interruption {
                        handle.control.interrupt(interruption).await;
                    }
                    continue;
                }
            }
        };
        let Some(event) = next else {
            shared
                .emit(Event::Notice {
                    worker: Some(worker.clone()),
                    message: "the worker stopped reporting before it finished".to_owned(),
                })
                .await;
            break StepStatus::Aborted;
        };
        match &event {
            WorkerEvent::Initialized { .. } => initialized = true,
            WorkerEvent::Step { at, .. } if !initialized => {
                initialized = true;
                shared
                    .emit(initialization(StepStatus::Passed, *at, None))
                    .await;
            }
            WorkerEvent::Finished { status } => {
                if !initialized {
                    let message = (!status.is_success())
                        .then(|| "the worker ended before its first step".to_owned());
                    let status = if message.is_some() {
                        StepStatus::Failed
                    } else {
                        StepStatus::Passed
                    };
                    shared
                        .emit(initialization(status, SystemTime::now(), message))
                        .await;
                }
                break *status;
            }
            _ => {}
        }
        shared.emit(translate(&worker, &steps, event)).await;
    };
    guard.control = None;
    shared.emit(finish(status)).await;
    status
}

/// Waits until `stop` fires and returns why (`None` when its sender is
/// gone, which never happens while the execution runs).
pub(crate) async fn stopped(
    stop: &mut watch::Receiver<Option<Interruption>>,
) -> Option<Interruption> {
    let fired = stop
        .wait_for(Option::is_some)
        .await
        .ok()
        .map(|value| *value);
    match fired {
        Some(interruption) => interruption,
        None => std::future::pending().await,
    }
}

/// Interrupts a worker whose task is dropped before it finished (its
/// parallel block was stopped by the parent step's timeout).
struct InterruptOnDrop {
    control: Option<Arc<dyn WorkerControl>>,
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(control) = self.control.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { control.interrupt(Interruption::Timeout).await });
        }
    }
}

/// `execution.*` and `workflow.*` plus `config.*`.
fn base_variables(
    execution: &ExecutionInfo,
    request: &ExecutionRequest,
) -> BTreeMap<String, Value> {
    let scheduled_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    BTreeMap::from([
        (
            "config".to_owned(),
            Value::Object(request.config.clone().into_iter().collect()),
        ),
        (
            "execution".to_owned(),
            json!({
                "id": execution.id,
                "name": execution.name,
                "number": request.number,
                "scheduledAt": scheduled_at,
                "tags": request.tags,
            }),
        ),
        (
            "workflow".to_owned(),
            json!({"name": execution.workflow, "labels": request.labels}),
        ),
    ])
}

/// The engine's side of one worker: runs its parallel blocks and child
/// executions, holds its paused steps and its block's start barrier.
struct WorkerOrchestrator {
    shared: Arc<Shared>,
    worker: WorkerId,
    stop: watch::Receiver<Option<Interruption>>,
    barrier: Option<Arc<StartBarrier>>,
}

#[async_trait::async_trait]
impl Orchestrator for WorkerOrchestrator {
    async fn run_parallel(&self, request: ParallelRequest) -> ParallelOutcome {
        fanout::run_parallel(&self.shared, &self.worker, request, self.stop.clone()).await
    }

    async fn execute(&self, request: ExecuteRequest) -> ExecuteOutcome {
        children::run_execute(&self.shared, &self.worker, request, self.stop.clone()).await
    }

    async fn paused(&self, _step: &str) -> Option<Interruption> {
        self.shared.pause(self.stop.clone()).await
    }

    async fn ready(&self) -> Option<Interruption> {
        match &self.barrier {
            Some(barrier) => {
                barrier
                    .arrive(&self.shared, &self.worker, self.stop.clone())
                    .await
            }
            None => None,
        }
    }
}
