//! [`EventRecorder`]: persists an execution as the engine's event stream goes by, so every
//! frontend (the CLI, embedders) stores runs the same way.
//!
//! Why log chunks are batched: a step printing a line at a time produces thousands of tiny
//! chunks a second, and one transaction per chunk (each an fsync of the write-ahead log at
//! worst) would make the store, not the step, the bottleneck. Why a background flush as well:
//! a step that prints a line and then waits must have that line in the store while it waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Event;
use crate::model::StepResult;
use crate::status::ExecutionStatus;
use crate::store::{
    ArtifactRecord, LogChunk, LogFilter, MAX_LOG_CHUNK, OutputRecord, ResultStore, StatusUpdate,
    StepRecord, StoreError,
};
use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, oneshot};

/// Writes the events of one execution (already created in the store) to a [`ResultStore`]:
/// status changes, step states, log chunks, outputs, artifacts, test results and the final
/// status.
///
/// Log chunks are batched: one transaction per batch, in the order they came, consecutive chunks
/// of one step joined up to [`MAX_LOG_CHUNK`] bytes. A batch is
/// written when it passes [`EventRecorder::BATCH_BYTES`], before any other event is stored (a
/// step's status never lands before the output it printed), on [`EventRecorder::flush`], and
/// from a background task every [`EventRecorder::FLUSH_INTERVAL`], so that a step which prints
/// a line and then waits has that line in the store (for `testkube logs -f`, and for a crash).
///
/// Call [`EventRecorder::flush`] (or record the [`Event::Finished`] event) before dropping it
/// mid-run; a dropped recorder still writes its pending chunks from its background task while
/// the runtime lives.
pub struct EventRecorder {
    store: Arc<dyn ResultStore>,
    execution: Arc<str>,
    /// First start of each `(worker, step)`: step events carry only the time of the change.
    started: HashMap<(String, String), DateTime<Utc>>,
    /// The execution's `result.initialization` so far (events carry only the change).
    initialization: Option<StepResult>,
    pending: Arc<Mutex<Pending>>,
    /// Dropping it tells the background task to write what is left and stop.
    ticker: Option<oneshot::Sender<()>>,
    /// For a resumed execution: what the store holds already, dropped from
    /// the events that repeat it.
    replayed: Replayed,
}

/// What a resumed execution's events repeat: the log bytes of each
/// `(worker, step)` and the test cases of each worker that are stored.
/// Events carry them again in the same order (a worker's reports are read
/// again from its start), so the first that many are dropped.
#[derive(Debug, Default)]
struct Replayed {
    log: HashMap<(String, String), usize>,
    cases: HashMap<String, usize>,
}

/// Log chunks not yet written.
#[derive(Default)]
struct Pending {
    chunks: Vec<LogChunk>,
    bytes: usize,
    /// The failure of a background write, returned by the next call.
    failed: Option<StoreError>,
}

impl EventRecorder {
    /// Buffered log bytes that trigger a write.
    pub const BATCH_BYTES: usize = 256 * 1024;

    /// How long a log chunk waits in memory at most (roughly) before it is written.
    pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

    /// A recorder for the execution with id `execution`.
    #[must_use]
    pub fn new(store: Arc<dyn ResultStore>, execution: impl Into<String>) -> Self {
        EventRecorder {
            store,
            execution: Arc::from(execution.into()),
            started: HashMap::new(),
            initialization: None,
            pending: Arc::new(Mutex::new(Pending::default())),
            ticker: None,
            replayed: Replayed::default(),
        }
    }

    /// A recorder for an execution that goes on after a restart (see
    /// [`Engine::resume`](crate::engine::Engine::resume)): the log output
    /// and test cases its events repeat are not stored twice. Status
    /// changes, steps, outputs and artifacts are stored again as they come
    /// (the same values).
    ///
    /// # Errors
    ///
    /// The store's [`StoreError`] reading what it holds.
    pub async fn resume(
        store: Arc<dyn ResultStore>,
        execution: impl Into<String>,
    ) -> Result<Self, StoreError> {
        const PAGE: u64 = 512;
        let mut recorder = EventRecorder::new(store, execution);
        let mut filter = LogFilter {
            limit: Some(PAGE),
            ..LogFilter::default()
        };
        loop {
            let page = recorder.store.logs(&recorder.execution, &filter).await?;
            for chunk in &page {
                *recorder
                    .replayed
                    .log
                    .entry((chunk.worker.clone(), chunk.step.clone()))
                    .or_default() += chunk.data.len();
            }
            if (page.len() as u64) < PAGE {
                break;
            }
            filter.skip += PAGE;
        }
        for case in recorder.store.test_cases(&recorder.execution).await? {
            *recorder.replayed.cases.entry(case.worker).or_default() += 1;
        }
        // Its start is kept: the events only say how it changed.
        recorder.initialization = recorder
            .store
            .get_execution(&recorder.execution)
            .await?
            .result
            .initialization;
        Ok(recorder)
    }

    /// Stores what `event` says; events the store does not keep are ignored.
    ///
    /// # Errors
    ///
    /// The store's [`StoreError`] (also of an earlier batch of log chunks written in the
    /// background); a batch that failed is not retried. The recorder stays usable.
    pub async fn record(&mut self, event: &Event) -> Result<(), StoreError> {
        if let Event::Log {
            worker,
            step,
            chunk,
        } = event
        {
            let key = (worker.path.clone(), step.clone());
            let stored = self.replayed.log.get_mut(&key).map_or(0, |left| {
                let stored = (*left).min(chunk.len());
                *left -= stored;
                stored
            });
            if stored == chunk.len() {
                return Ok(());
            }
            return self.buffer(&worker.path, step, &chunk[stored..]).await;
        }
        // Everything else lands after the output printed before it.
        self.flush().await?;
        let id = &*self.execution;
        match event {
            Event::Execution { status, at } => {
                let update = StatusUpdate {
                    status: *status,
                    at: DateTime::<Utc>::from(*at),
                    message: None,
                };
                self.store.update_status(id, update).await
            }
            Event::Step {
                worker,
                step,
                status,
                at,
                detail,
            } => {
                let at = DateTime::<Utc>::from(*at);
                let key = (worker.path.clone(), step.id.clone());
                let started_at = if *status == crate::status::StepStatus::Running {
                    Some(*self.started.entry(key).or_insert(at))
                } else {
                    self.started.get(&key).copied()
                };
                let record = StepRecord {
                    worker: worker.path.clone(),
                    step: step.id.clone(),
                    name: step.name.clone(),
                    status: *status,
                    started_at,
                    finished_at: status.is_finished().then_some(at),
                    attempt: detail.attempt,
                    exit_code: detail.exit_code,
                    message: detail.message.clone(),
                };
                self.store.upsert_step(id, record).await
            }
            Event::Output {
                worker,
                step,
                key,
                value,
            } => {
                let output = OutputRecord {
                    worker: worker.path.clone(),
                    step: step.clone(),
                    key: key.clone(),
                    value: value.clone(),
                };
                self.store.record_outputs(id, &[output]).await
            }
            Event::Artifact {
                worker,
                step,
                path,
                location,
                size,
            } => {
                let artifact = ArtifactRecord {
                    worker: worker.path.clone(),
                    step: step.clone(),
                    path: path.clone(),
                    location: location.clone(),
                    size: *size,
                };
                self.store.record_artifacts(id, &[artifact]).await
            }
            Event::TestCases { worker, cases, .. } => {
                let stored = self.replayed.cases.get_mut(&worker.path).map_or(0, |left| {
                    let stored = (*left).min(cases.len());
                    *left -= stored;
                    stored
                });
                if stored == cases.len() {
                    return Ok(());
                }
                self.store.record_test_cases(id, &cases[stored..]).await
            }
            Event::Initialization { .. } => {
                match event.update_initialization(&mut self.initialization) {
                    Some(init) => self.store.record_initialization(id, init).await,
                    None => Ok(()),
                }
            }
            Event::Finished(summary) => {
                let at = DateTime::parse_from_rfc3339(&summary.finished_at)
                    .map_or_else(|_| Utc::now(), |at| at.with_timezone(&Utc));
                let update = StatusUpdate {
                    status: summary.status,
                    at,
                    message: summary.message.clone(),
                };
                self.store.update_status(id, update).await
            }
            _ => Ok(()),
        }
    }

    /// Writes the buffered log chunks now, in one transaction.
    ///
    /// # Errors
    ///
    /// The store's [`StoreError`], also of an earlier background write; the chunks of a
    /// failed write are dropped, not retried.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let mut pending = self.pending.lock().await;
        write_pending(self.store.as_ref(), &self.execution, &mut pending).await
    }

    /// Ends the execution with `status` when no [`Event::Finished`] will come (the engine
    /// refused to start it, or the caller stops early), after writing the buffered logs.
    ///
    /// # Errors
    ///
    /// The store's [`StoreError`].
    pub async fn finish(
        &self,
        status: ExecutionStatus,
        message: Option<String>,
    ) -> Result<(), StoreError> {
        let flushed = self.flush().await;
        let update = StatusUpdate {
            status,
            at: Utc::now(),
            message,
        };
        self.store.update_status(&self.execution, update).await?;
        flushed
    }

    async fn buffer(&mut self, worker: &str, step: &str, data: &[u8]) -> Result<(), StoreError> {
        self.start_ticker();
        let mut pending = self.pending.lock().await;
        if let Some(err) = pending.failed.take() {
            return Err(err);
        }
        pending.bytes += data.len();
        // A step printing a line at a time sends a chunk per line: joined, they make fewer,
        // fuller rows (a page of a long log is then a few queries, not thousands).
        match pending.chunks.last_mut() {
            Some(last)
                if last.worker == worker
                    && last.step == step
                    && last.data.len() + data.len() <= MAX_LOG_CHUNK =>
            {
                last.data.extend_from_slice(data);
            }
            _ => pending.chunks.push(LogChunk {
                worker: worker.to_owned(),
                step: step.to_owned(),
                data: data.to_vec(),
            }),
        }
        if pending.bytes >= Self::BATCH_BYTES {
            write_pending(self.store.as_ref(), &self.execution, &mut pending).await?;
        }
        Ok(())
    }

    /// Starts the background writer at the first log chunk (inside a runtime by then).
    fn start_ticker(&mut self) {
        if self.ticker.is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (stop, mut stopped) = oneshot::channel::<()>();
        self.ticker = Some(stop);
        let store = Arc::clone(&self.store);
        let execution = Arc::clone(&self.execution);
        let pending = Arc::clone(&self.pending);
        runtime.spawn(async move {
            loop {
                // Ends (after a last write) once the recorder is dropped.
                let last = tokio::time::timeout(Self::FLUSH_INTERVAL, &mut stopped)
                    .await
                    .is_ok();
                let mut pending = pending.lock().await;
                if let Err(err) = write_pending(store.as_ref(), &execution, &mut pending).await {
                    pending.failed = Some(err);
                }
                if last {
                    break;
                }
            }
        });
    }
}

/// Writes `pending`'s chunks (holding its lock, so batches land in order) and empties it.
async fn write_pending(
    store: &dyn ResultStore,
    execution: &str,
    pending: &mut Pending,
) -> Result<(), StoreError> {
    if let Some(err) = pending.failed.take() {
        return Err(err);
    }
    if pending.chunks.is_empty() {
        return Ok(());
    }
    let chunks = std::mem::take(&mut pending.chunks);
    pending.bytes = 0;
    store.append_logs(execution, &chunks).await
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("execution", &self.execution)
            .finish_non_exhaustive()
    }
}
