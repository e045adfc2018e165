//! The [`Engine`]: runs a plan's root worker through an [`Executor`], fans
//! out `parallel` blocks when a worker asks, applies the whole-run deadline
//! and aborts, and publishes everything as [`Event`]s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::children::ChildExecutions;
use super::clock::{Clock, SystemClock};
use super::event::{Event, SummaryBuilder, SummaryHeader};
use super::executor::{ExecutionInfo, Executor, Unsupported, WorkerId};
use super::mask::{MaskerError, SecretMasker};
use super::mask_events::EventMasker;
use super::recover::Recovered;
use super::running::{Canceller, RunningExecution};
use super::support::unsupported_features;
use super::worker::{WorkerStart, run_worker, stopped};
use crate::model::EnvVar;
use crate::plan::{Plan, PlanStep};
use crate::status::{ExecutionStatus, Interruption};

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
    clock: Arc<dyn Clock>,
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
    /// `config`, `execution` (scheduled at `scheduled_at`) and `workflow`.
    #[must_use]
    pub fn variables(
        &self,
        execution: &ExecutionInfo,
        scheduled_at: SystemTime,
    ) -> BTreeMap<String, Value> {
        base_variables(execution, self, scheduled_at)
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

impl Engine {
    /// An engine that runs workers with `executor`.
    #[must_use]
    pub fn new(executor: Arc<dyn Executor>) -> Self {
        Engine {
            executor,
            children: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads event times, the summary's times and `execution.scheduledAt`
    /// from `clock` (the system clock by default). Timers (deadlines,
    /// timeouts) use tokio's clock, which tests pause instead.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
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
        self.start_at(plan, request, 0, None)
    }

    /// Continues an execution an earlier engine started and a store
    /// recorded (`recovered`), e.g. after the agent running it was
    /// restarted: `plan` and `request` must be those it started with (the
    /// same id, config and secrets). Workers are taken up again through
    /// [`Executor::attach`], workers recorded as finished are not run
    /// again, and workers never started start now; see [`Recovered`].
    ///
    /// The events repeat what the workers reported before the restart:
    /// a frontend that recorded them drops those it holds.
    ///
    /// # Errors
    /// As [`Engine::start`].
    pub fn resume(
        &self,
        plan: Plan,
        request: ExecutionRequest,
        recovered: Recovered,
    ) -> Result<RunningExecution, EngineError> {
        self.start_at(plan, request, 0, Some(recovered))
    }

    /// [`Engine::start`] for an execution nested `depth` levels deep in
    /// `execute` steps.
    pub(crate) fn start_at(
        &self,
        plan: Plan,
        request: ExecutionRequest,
        depth: usize,
        recovered: Option<Recovered>,
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
            started: recovered
                .as_ref()
                .and_then(|recovered| recovered.started_at)
                .unwrap_or_else(|| self.clock.now()),
        };
        let scheduled_at = recovered
            .as_ref()
            .map_or_else(|| self.clock.now(), |recovered| recovered.scheduled_at);
        // A resumed run's deadline counts from when it first started.
        let elapsed = recovered
            .as_ref()
            .and_then(|recovered| recovered.started_at)
            .and_then(|started| self.clock.now().duration_since(started).ok())
            .unwrap_or_default();
        runtime.spawn(publish(
            internal_rx,
            public_tx,
            header,
            masker,
            Arc::clone(&self.clock),
        ));
        let shared = Arc::new(Shared {
            engine: self.clone(),
            executor: Arc::clone(&self.executor),
            variables: base_variables(&execution, &request, scheduled_at),
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
            recovered,
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
            elapsed,
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
    pub(super) engine: Engine,
    pub(super) executor: Arc<dyn Executor>,
    pub(super) execution: ExecutionInfo,
    pub(super) variables: BTreeMap<String, Value>,
    pub(super) global_env: Vec<EnvVar>,
    /// The plan's pod and Job settings, for executors that run pods.
    pub(super) pod: Option<crate::model::PodConfig>,
    pub(super) job: Option<crate::model::JobConfig>,
    events: mpsc::Sender<Internal>,
    pub(super) next_worker: AtomicUsize,
    /// The execution's own controls (resumes reach paused steps through it).
    pub(super) control: Canceller,
    /// The values masked in its events: its children mask them too.
    pub(super) secrets: Vec<String>,
    /// The execution's stop signal (not a block's).
    pub(super) stop: watch::Receiver<Option<Interruption>>,
    /// How deep in `execute` steps this execution is (0 for a top one).
    pub(super) depth: usize,
    pub(super) next_child: AtomicUsize,
    /// How many steps are paused now.
    pub(super) paused_steps: Mutex<usize>,
    /// `async` children: the execution ends after them.
    pub(super) background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// What an earlier engine left of this execution, when it is resumed.
    pub(super) recovered: Option<Recovered>,
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
    pub(super) async fn pause(
        &self,
        mut stop: watch::Receiver<Option<Interruption>>,
    ) -> Option<Interruption> {
        let mut resumes = self.control.resumes();
        let seen = *resumes.borrow_and_update();
        if self.count_paused(1) == 1 {
            self.emit(Event::Execution {
                status: ExecutionStatus::Paused,
                at: self.now(),
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
                at: self.now(),
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

    /// The wall-clock time now, from the engine's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.engine.clock.now()
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
    clock: Arc<dyn Clock>,
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
                let at = clock.now();
                let _ = public.send(Event::Execution { status, at }).await;
                let done = masking.mask_summary(summary.finish(header, status, message, at));
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
    elapsed: Duration,
    canceller: Canceller,
    stop: watch::Receiver<Option<Interruption>>,
) {
    shared
        .emit(Event::Execution {
            status: ExecutionStatus::Running,
            at: shared.now(),
        })
        .await;
    let timer = deadline.map(|seconds| {
        let canceller = canceller.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds).saturating_sub(elapsed)).await;
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

/// `execution.*` and `workflow.*` plus `config.*`.
fn base_variables(
    execution: &ExecutionInfo,
    request: &ExecutionRequest,
    now: SystemTime,
) -> BTreeMap<String, Value> {
    let scheduled_at = chrono::DateTime::<chrono::Utc>::from(now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
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
