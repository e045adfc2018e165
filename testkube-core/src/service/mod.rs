//! The run service: the one library path every frontend (the CLI, the
//! in-cluster agent, a REST API, cron, triggers, MCP) starts, watches,
//! reruns, resumes and aborts runs through.
//!
//! Why one path: a run is more than [`Engine::start`]. It is numbered per
//! workflow (`WORKFLOW-N`) in the store, its `balance: {by: duration}`
//! blocks are split by the durations earlier runs recorded (and those
//! durations are kept with the execution, so a failed-only rerun plans the
//! same shards), its secrets are looked up and masked everywhere, its
//! `execute` children are recorded as executions of their own, and every
//! event lands in the [`ResultStore`]. Done once here, every frontend gets
//! the same runs; a frontend only parses input and renders output.
//!
//! Why in the sans-IO core: the service only calls plugin traits
//! ([`Executor`], [`ResultStore`], [`SecretSource`], [`WorkflowCatalog`],
//! [`Clock`]) and tokio's tasks and channels; where runs execute, where
//! results go and where secrets live are the embedder's choice. The local
//! pieces (the process executor, the SQLite store, secrets from the
//! environment and a file) live in `testkube-executors` and
//! `testkube-results`.
//!
//! ```no_run
//! # async fn demo(
//! #     executor: std::sync::Arc<dyn testkube_core::engine::Executor>,
//! #     store: std::sync::Arc<dyn testkube_core::store::ResultStore>,
//! #     workflow: testkube_core::model::TestWorkflow,
//! # ) -> Result<(), testkube_core::service::ServiceError> {
//! use testkube_core::service::{RunRequest, RunService};
//! let service = RunService::new(executor).with_store(store);
//! let mut run = service.start(RunRequest::new(workflow)).await?;
//! let control = run.control(); // abort() / resume() from anywhere
//! while let Some(event) = run.next_event().await {
//!     // render it; it is in the store already
//! }
//! # drop(control);
//! # Ok(()) }
//! ```
//!
//! The steps of a run: [`RunService::prepare`] resolves secrets, reads the
//! history and plans (nothing recorded yet; a refused run uses no number),
//! [`RunService::launch`] checks the plan against the executor, records
//! the execution and starts it, returning a [`RunHandle`].
//! [`RunService::start`] does both. [`RunService::rerun_request`] builds the
//! request that runs a recorded execution again.

mod children;
mod error;
mod handle;
mod history;
mod ids;
mod recorder;
mod request;
mod rerun;
mod resume;
mod secrets;
mod util;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

pub use children::WorkflowCatalog;
pub use error::{RunWarning, ServiceError};
pub use handle::{RunControl, RunHandle};
pub use history::{DurationField, DurationIndex, History, PLAN_FIELDS, history_key, normalize};
pub use ids::{Clock, SystemClock};
pub use recorder::EventRecorder;
pub use request::{PreparedRun, RunRequest};
pub use rerun::{FailedOnly, RerunOptions, rerun_request};
pub use secrets::{FirstOf, NoSecrets, SecretError, SecretSource};
pub use util::visit_parallel;

use crate::engine::{Engine, Event, ExecutionRequest, Executor, SecretMasker};
use crate::plan::{PlanOptions, plan_workflow};
use crate::status::ExecutionStatus;
use crate::store::{NewExecution, ResultStore, StoreError};
use children::RecordedChildren;
use ids::ExecutionIds;

/// How many events may wait for a frontend that renders slowly.
const EVENT_BUFFER: usize = 128;

type WarningSink = Arc<dyn Fn(RunWarning) + Send + Sync>;

/// Starts, records, reruns and controls runs. Cheap to clone; one service
/// serves any number of runs at once.
#[derive(Clone)]
pub struct RunService {
    executor: Arc<dyn Executor>,
    store: Option<Arc<dyn ResultStore>>,
    secrets: Arc<dyn SecretSource>,
    catalog: Option<Arc<dyn WorkflowCatalog>>,
    ids: Arc<ExecutionIds>,
    warnings: WarningSink,
}

impl std::fmt::Debug for RunService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunService")
            .field("executor", &self.executor.name())
            .field("store", &self.store.is_some())
            .field("catalog", &self.catalog.is_some())
            .finish_non_exhaustive()
    }
}

impl RunService {
    /// A service that runs workers with `executor`, records nothing, has no
    /// secrets and no workflows for `execute`, and reads the system clock;
    /// add the rest with the `with_*` methods.
    #[must_use]
    pub fn new(executor: Arc<dyn Executor>) -> Self {
        RunService {
            executor,
            store: None,
            secrets: Arc::new(NoSecrets),
            catalog: None,
            ids: Arc::new(ExecutionIds::new(
                Arc::new(SystemClock),
                std::process::id().to_string(),
            )),
            warnings: Arc::new(|_| {}),
        }
    }

    /// Records every run (and reads history from) `store`.
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn ResultStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Answers `secret()` and secret references from `secrets`.
    #[must_use]
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretSource>) -> Self {
        self.secrets = secrets;
        self
    }

    /// `execute` steps find their workflows in `catalog` (a run may bring
    /// its own: [`PreparedRun::with_catalog`]).
    #[must_use]
    pub fn with_catalog(mut self, catalog: Arc<dyn WorkflowCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Reads the time for records, events, summaries and ids from `clock`
    /// (timers use tokio's clock, which tests pause); ids end in
    /// `suffix` (the process id by default), which tells apart the runs of
    /// processes sharing a store.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>, suffix: impl Into<String>) -> Self {
        self.ids = Arc::new(ExecutionIds::new(clock, suffix.into()));
        self
    }

    /// Hands every [`RunWarning`] (recording problems, which never stop a
    /// run) to `sink`; by default they are dropped.
    #[must_use]
    pub fn with_warnings(mut self, sink: impl Fn(RunWarning) + Send + Sync + 'static) -> Self {
        self.warnings = Arc::new(sink);
        self
    }

    /// The store runs are recorded in, if any.
    #[must_use]
    pub fn store(&self) -> Option<&Arc<dyn ResultStore>> {
        self.store.as_ref()
    }

    /// Marks runs a killed process left unfinished as `aborted`; call it
    /// once at startup, before starting runs. Returns their ids (none
    /// without a store).
    ///
    /// # Errors
    /// The store's error.
    pub async fn recover_abandoned(&self) -> Result<Vec<String>, StoreError> {
        match &self.store {
            Some(store) => store.recover_abandoned().await,
            None => Ok(Vec::new()),
        }
    }

    /// Plans a run without starting or recording it: secrets resolved, the
    /// workflow's recorded durations read (a store that cannot be read is a
    /// [`RunWarning::HistoryUnreadable`], never a failure), shards split,
    /// workers that passed left out for a failed-only rerun.
    ///
    /// # Errors
    /// [`ServiceError`] for missing secrets, a secret source that fails, or
    /// a workflow that cannot be planned.
    pub async fn prepare(&self, request: RunRequest) -> Result<PreparedRun, ServiceError> {
        let (runnable, secret_values) =
            secrets::inline_secrets(&request.workflow, self.secrets.as_ref()).await?;
        let workflow_name = history_key(&runnable);
        // `failed_only` plans with the durations its first run used.
        let history = match (&self.store, &request.failed_only) {
            (Some(store), None) => History::load(store.as_ref(), &workflow_name)
                .await
                .unwrap_or_else(|err| {
                    (self.warnings)(RunWarning::HistoryUnreadable(err));
                    History::empty()
                }),
            _ => History::empty(),
        };
        let recorded = history.recorded();
        let used: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let plan_options = match &request.failed_only {
            Some(failed_only) if !failed_only.durations().is_empty() => {
                *lock(&used) = failed_only.durations().clone();
                PlanOptions::new().with_duration_map(failed_only.durations().clone())
            }
            Some(_) => PlanOptions::new(),
            None => history.plan_options(&used),
        };
        let mut plan =
            plan_workflow(&runnable, &plan_options).map_err(|err| ServiceError::Plan {
                workflow: workflow_name.clone(),
                diagnostics: err.diagnostics,
            })?;
        let notes = match &request.failed_only {
            Some(failed_only) => failed_only.apply(&mut plan),
            None => util::balance_notes(&plan.root, recorded),
        };
        drop(plan_options);
        let durations = std::mem::take(&mut *lock(&used));
        let mut secrets = request.sensitive.clone();
        secrets.extend(secret_values);
        Ok(PreparedRun {
            labels: runnable.metadata.labels.clone().unwrap_or_default(),
            request,
            workflow_name,
            plan,
            notes,
            durations,
            secrets,
            catalog: None,
        })
    }

    /// Starts a prepared run: checks that the executor can run its plan
    /// (a refused plan is not recorded and uses no number), records the
    /// execution (a store that fails is a [`RunWarning::NotRecorded`]; the
    /// run still happens), starts it and records every event.
    ///
    /// # Errors
    /// [`ServiceError::Engine`] when the plan uses what cannot run here, or
    /// the engine cannot start (no tokio runtime).
    pub async fn launch(&self, prepared: PreparedRun) -> Result<RunHandle, ServiceError> {
        let PreparedRun {
            request,
            workflow_name,
            plan,
            durations,
            secrets,
            catalog,
            labels,
            ..
        } = prepared;
        let engine = self.engine(catalog);
        engine.check(&plan)?;
        let mut execution = ExecutionRequest {
            id: self.ids.next(&plan.workflow),
            config: request.config.clone(),
            tags: request.tags.clone(),
            labels,
            secrets,
            ..ExecutionRequest::new("")
        };
        let recorder = match &self.store {
            Some(store) => {
                self.record(store, &workflow_name, &request, &mut execution, durations)
                    .await
            }
            None => None,
        };
        let id = execution.id.clone();
        let name = if execution.name.is_empty() {
            id.clone()
        } else {
            execution.name.clone()
        };
        let number = execution.number;
        let running = match engine.start(plan, execution) {
            Ok(running) => running,
            Err(err) => {
                if let Some(recorder) = &recorder
                    && let Err(store_err) = recorder
                        .finish(ExecutionStatus::Failed, Some(err.to_string()))
                        .await
                {
                    (self.warnings)(RunWarning::NotRecorded(store_err));
                }
                return Err(ServiceError::Engine(err));
            }
        };
        Ok(self.follow(running, recorder, id, name, number, workflow_name))
    }

    /// An engine on this service's executor and clock, whose `execute`
    /// steps find workflows in `catalog` (or the service's).
    fn engine(&self, catalog: Option<Arc<dyn WorkflowCatalog>>) -> Engine {
        let engine = Engine::new(Arc::clone(&self.executor)).with_clock(self.ids.clock());
        // Children are only looked for when a step runs `execute`.
        match catalog.or_else(|| self.catalog.clone()) {
            Some(catalog) => engine.with_children(Arc::new(RecordedChildren {
                catalog,
                store: self.store.clone(),
                ids: Arc::clone(&self.ids),
                numbers: Mutex::default(),
            })),
            None => engine,
        }
    }

    /// Records `running`'s events with `recorder` and hands them on.
    fn follow(
        &self,
        running: crate::engine::RunningExecution,
        recorder: Option<EventRecorder>,
        id: String,
        name: String,
        number: u64,
        workflow: String,
    ) -> RunHandle {
        let recorded = Arc::new(AtomicBool::new(recorder.is_some()));
        let control = RunControl {
            canceller: running.canceller(),
        };
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(forward(
            running,
            recorder,
            tx,
            Arc::clone(&recorded),
            Arc::clone(&self.warnings),
        ));
        RunHandle {
            id,
            name,
            number,
            workflow,
            events: rx,
            control,
            recorded,
        }
    }

    /// [`RunService::prepare`] and [`RunService::launch`] in one.
    ///
    /// # Errors
    /// As theirs.
    pub async fn start(&self, request: RunRequest) -> Result<RunHandle, ServiceError> {
        let prepared = self.prepare(request).await?;
        self.launch(prepared).await
    }

    /// The request that runs the recorded execution `id_or_name` (its id,
    /// or its name `WORKFLOW-N`) again; see [`RerunOptions`].
    ///
    /// # Errors
    /// [`ServiceError::NotFound`], [`ServiceError::StillRunning`],
    /// [`ServiceError::UnusableSnapshot`], [`ServiceError::SensitiveConfig`]
    /// (its values were never stored), [`ServiceError::NoStore`], or the
    /// store's error.
    pub async fn rerun_request(
        &self,
        id_or_name: &str,
        options: &RerunOptions,
    ) -> Result<RunRequest, ServiceError> {
        let store = self
            .store
            .as_ref()
            .ok_or(ServiceError::NoStore("reruns read recorded executions"))?;
        rerun::rerun_request(store.as_ref(), id_or_name, options).await
    }

    /// Runs a recorded execution again, as a new execution.
    ///
    /// # Errors
    /// As [`RunService::rerun_request`] and [`RunService::start`].
    pub async fn rerun(
        &self,
        id_or_name: &str,
        options: &RerunOptions,
    ) -> Result<RunHandle, ServiceError> {
        let request = self.rerun_request(id_or_name, options).await?;
        self.start(request).await
    }

    /// Records the execution (numbering it) with what a rerun needs: the
    /// resolved workflow (its secret calls, never their values), the config
    /// with sensitive values masked, the tags and the shard durations.
    async fn record(
        &self,
        store: &Arc<dyn ResultStore>,
        workflow: &str,
        request: &RunRequest,
        execution: &mut ExecutionRequest,
        durations: BTreeMap<String, f64>,
    ) -> Option<EventRecorder> {
        let mut snapshot = serde_json::to_value(&request.workflow).unwrap_or_default();
        let mut config = serde_json::Value::Object(
            execution
                .config
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        );
        if let Ok(masker) = SecretMasker::new(&execution.secrets) {
            util::mask_strings(&mut snapshot, &masker);
            util::mask_strings(&mut config, &masker);
        }
        let config = match config {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        let new = NewExecution {
            id: execution.id.clone(),
            workflow: workflow.to_owned(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: self.ids.now().into(),
            snapshot,
            config,
            tags: execution.tags.clone(),
            shard_durations: durations,
        };
        match store.create_execution(new).await {
            Ok(record) => {
                execution.number = record.number;
                execution.name = record.name;
                Some(EventRecorder::new(Arc::clone(store), record.id))
            }
            Err(err) => {
                (self.warnings)(RunWarning::NotRecorded(err));
                None
            }
        }
    }
}

/// Records every event of a run and hands it on to the frontend; the run's
/// end is handed on only once the store holds all of it.
async fn forward(
    mut running: crate::engine::RunningExecution,
    mut recorder: Option<EventRecorder>,
    events: mpsc::Sender<Event>,
    recorded: Arc<AtomicBool>,
    warnings: WarningSink,
) {
    while let Some(event) = running.next_event().await {
        if let Some(active) = recorder.as_mut()
            && let Err(err) = active.record(&event).await
        {
            warnings(RunWarning::RecordingStopped(err));
            recorder = None;
            recorded.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        let finished = matches!(event, Event::Finished(_));
        if finished
            && let Some(recorder) = &recorder
            && let Err(err) = recorder.flush().await
        {
            warnings(RunWarning::LogsNotRecorded(err));
        }
        // A frontend that stopped listening does not stop the recording.
        let _ = events.send(event).await;
        if finished {
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
