//! `parallel` blocks: the engine starts the block's workers (at most
//! `parallelism` at once), stops the rest after the first failure with
//! `failFast`, and gives the block's verdict back to the worker that asked.
//!
//! Two things make workers of one block meet:
//! - the start barrier (`paused: true` on the block): each worker reports
//!   ready once its files are in place ([`Orchestrator::ready`]) and waits
//!   until all the workers that can run at once (`parallelism`) are ready,
//!   so load tests start together;
//! - `transfer`/`fetch`: the engine only names the archives
//!   ([`WorkerFiles`]); the parent worker packs and unpacks them, each
//!   worker unpacks and packs its own, through the executor's storage.
//!
//! A block whose workers depend on run-time data (`shards` from
//! `glob(...)`, `count` from a step output) arrives with the values its
//! worker evaluated; the engine plans its workers then with the planner's
//! own rules ([`crate::plan::decide_workers`]) and runs them like any other.
//!
//! [`Orchestrator::ready`]: super::Orchestrator::ready

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};

use super::event::Event;
use super::executor::{
    PackArchive, ParallelOutcome, ParallelRequest, UnpackArchive, WorkerFiles, WorkerId,
};
use super::run::Shared;
use super::worker::{WorkerStart, run_worker, stopped};
use crate::expr::{Expr, MapContext};
use crate::plan::{PlanParallel, PlanWorker};
use crate::status::{ChildVerdict, Interruption, StepStatus, group_status};

/// Runs one `parallel` block for worker `parent` and returns its verdict:
///
/// - every worker passed (or was skipped) → `passed`;
/// - a worker did not pass → `failed` (with `failFast`, the workers still
///   running are interrupted and end `aborted`, those not started yet are
///   reported `aborted` without running, and the block is still `failed`);
/// - the run was stopped (`stop` fired) → the interruption's status.
///
/// Dropping the returned future stops the block's workers as a timeout
/// (the only reason a worker drops it is its step's own `timeout`).
pub(crate) async fn run_parallel(
    shared: &Arc<Shared>,
    parent: &WorkerId,
    request: ParallelRequest,
    stop: watch::Receiver<Option<Interruption>>,
) -> ParallelOutcome {
    let block = match decide(request.parallel) {
        Ok(block) => block,
        Err(message) => return outcome(StepStatus::Failed, Vec::new(), Some(message)),
    };
    let parallelism = match parallelism(&block.parallelism, shared.variables()) {
        Ok(parallelism) => parallelism,
        Err(message) => return outcome(StepStatus::Failed, Vec::new(), Some(message)),
    };
    if block.workers.is_empty() {
        let note = block
            .note
            .clone()
            .unwrap_or_else(|| "the block has no workers".to_owned());
        return outcome(StepStatus::Passed, Vec::new(), Some(note));
    }

    let (block_tx, block_rx) = watch::channel(None);
    let block_tx = Arc::new(block_tx);
    let forward = {
        let block_tx = Arc::clone(&block_tx);
        let mut parent_stop = stop.clone();
        tokio::spawn(async move {
            if let Some(interruption) = stopped(&mut parent_stop).await {
                set_once(&block_tx, interruption);
            }
        })
    };
    let _guard = StopOnDrop {
        stop: Arc::clone(&block_tx),
        forward,
    };

    let at_once = parallelism.clamp(1, block.workers.len());
    let semaphore = Arc::new(Semaphore::new(at_once));
    // A resumed execution's barriers are open: its workers that passed
    // one before the restart do not report ready again.
    let barrier = block
        .barrier
        .then(|| StartBarrier::new(at_once, shared.recovered.is_some()));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let count = block.workers.len();
    for worker in &block.workers {
        let id = shared.next_worker_id(parent, &request.step, worker.index);
        let variables = worker_variables(shared.variables(), &block, worker, count);
        let start = WorkerStart {
            files: worker_files(parent, &request.step, &block, &id),
            barrier: barrier.clone(),
            pod: worker.pod.clone(),
        };
        let task = WorkerTask {
            shared: Arc::clone(shared),
            id,
            worker: worker.clone(),
            variables,
            start,
            semaphore: Arc::clone(&semaphore),
            stop: block_rx.clone(),
            done: done_tx.clone(),
        };
        tokio::spawn(task.run());
    }
    drop(done_tx);

    let mut results: Vec<(usize, WorkerId, StepStatus)> = Vec::with_capacity(count);
    let mut first_failure: Option<WorkerId> = None;
    while let Some((index, id, status)) = done_rx.recv().await {
        let stopped = block_rx.borrow().is_some();
        if !status.is_success() && !stopped && first_failure.is_none() {
            first_failure = Some(id.clone());
            if block.fail_fast {
                set_once(&block_tx, Interruption::Abort);
            }
        }
        results.push((index, id, status));
    }
    results.sort_by_key(|(index, _, _)| *index);
    let workers: Vec<(WorkerId, StepStatus)> = results
        .into_iter()
        .map(|(_, id, status)| (id, status))
        .collect();

    let interruption = *stop.borrow();
    if let Some(interruption) = interruption {
        let status = interruption.step_status(StepStatus::Running);
        return outcome(status, workers, None);
    }
    if let Some(failed) = first_failure {
        let message = if block.fail_fast {
            format!("worker {failed} did not pass; failFast stopped the others")
        } else {
            format!("worker {failed} did not pass")
        };
        return outcome(StepStatus::Failed, workers, Some(message));
    }
    let status = group_status(
        false,
        workers
            .iter()
            .map(|(_, status)| ChildVerdict::required(*status)),
    );
    outcome(status, workers, None)
}

/// The block with its workers: as planned, or, for a block decided at run
/// time, planned now from the values the worker put into its `strategy`
/// (see [`ParallelRequest::parallel`]).
fn decide(block: PlanParallel) -> Result<PlanParallel, String> {
    if block.decided_at_run_time.is_none() {
        return Ok(block);
    }
    crate::plan::decide_workers(&block, &block.strategy)
        .map_err(|err| format!("cannot decide the parallel workers: {}", err.summary()))
}

fn outcome(
    status: StepStatus,
    workers: Vec<(WorkerId, StepStatus)>,
    message: Option<String>,
) -> ParallelOutcome {
    ParallelOutcome {
        status,
        workers,
        message,
    }
}

/// One worker of a block, waiting for its turn.
struct WorkerTask {
    shared: Arc<Shared>,
    id: WorkerId,
    worker: PlanWorker,
    variables: BTreeMap<String, Value>,
    start: WorkerStart,
    semaphore: Arc<Semaphore>,
    stop: watch::Receiver<Option<Interruption>>,
    done: mpsc::UnboundedSender<(usize, WorkerId, StepStatus)>,
}

impl WorkerTask {
    async fn run(self) {
        let WorkerTask {
            shared,
            id,
            worker,
            variables,
            start,
            semaphore,
            mut stop,
            done,
        } = self;
        let barrier = start.barrier.clone();
        let permit = tokio::select! {
            permit = semaphore.acquire_owned() => permit.ok(),
            _ = stopped(&mut stop) => None,
        };
        let interruption = *stop.borrow();
        let status = match (permit, interruption) {
            (Some(_permit), None) => {
                run_worker(
                    &shared,
                    id.clone(),
                    worker.root,
                    variables,
                    worker.description,
                    start,
                    stop,
                )
                .await
            }
            (_, interruption) => {
                let status = never_started(interruption);
                shared
                    .emit(Event::Worker {
                        worker: id.clone(),
                        status,
                        description: worker.description,
                    })
                    .await;
                status
            }
        };
        if let Some(barrier) = barrier {
            barrier.leave(&id);
        }
        let _ = done.send((worker.index, id, status));
    }
}

/// A block's start barrier: opens once `expected` workers (those that run
/// at once) are ready, counting workers that ended without getting ready
/// (they failed to start, or were stopped) so nobody waits for them.
/// Once open, later workers pass at once.
pub(crate) struct StartBarrier {
    expected: usize,
    state: Mutex<BarrierState>,
    open: watch::Sender<bool>,
}

#[derive(Default)]
struct BarrierState {
    ready: BTreeSet<usize>,
    gone: usize,
}

impl StartBarrier {
    fn new(expected: usize, open: bool) -> Arc<Self> {
        Arc::new(StartBarrier {
            expected,
            state: Mutex::new(BarrierState::default()),
            open: watch::channel(open).0,
        })
    }

    /// Worker `worker` is ready: reports it `paused` until the barrier
    /// opens (or the block is stopped), then `running` again.
    pub(crate) async fn arrive(
        &self,
        shared: &Shared,
        worker: &WorkerId,
        mut stop: watch::Receiver<Option<Interruption>>,
    ) -> Option<Interruption> {
        if *self.open.borrow() {
            return None;
        }
        let report = |status| Event::Worker {
            worker: worker.clone(),
            status,
            description: None,
        };
        // Reported before it counts: every `paused` comes before the first
        // step that runs after the barrier opened.
        shared.emit(report(StepStatus::Paused)).await;
        self.update(|state| {
            state.ready.insert(worker.number);
        });
        let mut open = self.open.subscribe();
        tokio::select! {
            _ = open.wait_for(|open| *open) => {}
            interruption = stopped(&mut stop) => return interruption,
        }
        shared.emit(report(StepStatus::Running)).await;
        None
    }

    /// Worker `worker` ended; it counts as ready if it never got there.
    fn leave(&self, worker: &WorkerId) {
        self.update(|state| {
            if !state.ready.contains(&worker.number) {
                state.gone += 1;
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut BarrierState)) {
        let reached = match self.state.lock() {
            Ok(mut state) => {
                change(&mut state);
                state.ready.len() + state.gone >= self.expected
            }
            // A panic elsewhere poisoned the lock: never keep workers waiting.
            Err(_) => true,
        };
        if reached {
            self.open.send_replace(true);
        }
    }
}

/// What worker `id` of `parent`'s block in step `step` unpacks before its
/// steps (`transfer`) and packs after them (`fetch`).
fn worker_files(parent: &WorkerId, step: &str, block: &PlanParallel, id: &WorkerId) -> WorkerFiles {
    let unpack = block
        .transfer
        .iter()
        .enumerate()
        .map(|(index, transfer)| UnpackArchive {
            archive: WorkerFiles::transfer_archive(parent, step, index),
            to: transfer.to.clone().unwrap_or_else(|| transfer.from.clone()),
        })
        .collect();
    let pack = block
        .fetch
        .iter()
        .enumerate()
        .map(|(index, fetch)| PackArchive {
            from: fetch.from.clone(),
            files: fetch.files.clone(),
            archive: WorkerFiles::fetch_archive(id, index),
        })
        .collect();
    WorkerFiles { unpack, pack }
}

/// Stops the block's workers when the block's future is dropped.
pub(crate) struct StopOnDrop {
    stop: Arc<watch::Sender<Option<Interruption>>>,
    forward: tokio::task::JoinHandle<()>,
}

impl StopOnDrop {
    /// A stop signal that fires with `parent`, and as a timeout when the
    /// returned guard is dropped first.
    pub(crate) fn follow(
        parent: watch::Receiver<Option<Interruption>>,
    ) -> (Self, watch::Receiver<Option<Interruption>>) {
        let (tx, rx) = watch::channel(None);
        let stop = Arc::new(tx);
        let forward = {
            let stop = Arc::clone(&stop);
            let mut parent = parent;
            tokio::spawn(async move {
                if let Some(interruption) = stopped(&mut parent).await {
                    set_once(&stop, interruption);
                }
            })
        };
        (StopOnDrop { stop, forward }, rx)
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        set_once(&self.stop, Interruption::Timeout);
        self.forward.abort();
    }
}

/// The status of a worker stopped before any of its steps ran: `failFast`
/// and aborts mark it aborted, timeouts skipped.
fn never_started(interruption: Option<Interruption>) -> StepStatus {
    match interruption {
        Some(Interruption::Abort) | None => StepStatus::Aborted,
        Some(other) => other.step_status(StepStatus::Queued),
    }
}

/// Records the first interruption; later ones change nothing.
pub(crate) fn set_once(stop: &watch::Sender<Option<Interruption>>, interruption: Interruption) {
    stop.send_if_modified(|current| {
        if current.is_none() {
            *current = Some(interruption);
            true
        } else {
            false
        }
    });
}

/// `parallelism` as a number: a literal, or an expression over the
/// execution's variables.
pub(crate) fn parallelism(
    value: &Value,
    variables: &BTreeMap<String, Value>,
) -> Result<usize, String> {
    let resolved = match value {
        Value::String(text) => {
            let context = variables
                .iter()
                .fold(MapContext::new(), |ctx, (name, value)| {
                    ctx.with(name.clone(), value.clone())
                });
            Expr::parse(text)
                .and_then(|expr| expr.resolve(&context))
                .map_err(|err| format!("cannot decide parallelism `{text}`: {err}"))?
        }
        other => other.clone(),
    };
    let number = match &resolved {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    number
        .filter(|n| *n > 0)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("parallelism `{resolved}` is not a whole number above 0"))
}

/// The variables of one worker of `block`: the execution's (`base`), plus
/// `index`, `count`, `matrix*` and `shard*`.
#[must_use]
pub fn worker_variables(
    base: &BTreeMap<String, Value>,
    block: &PlanParallel,
    worker: &PlanWorker,
    count: usize,
) -> BTreeMap<String, Value> {
    let (shard_count, matrix_count) = block
        .counts
        .map_or((1, 1), |counts| (counts.shard_count, counts.matrix_count));
    let mut variables = base.clone();
    variables.insert("index".to_owned(), json!(worker.index));
    variables.insert("count".to_owned(), json!(count));
    variables.insert("shardIndex".to_owned(), json!(worker.shard_index));
    variables.insert("shardCount".to_owned(), json!(shard_count));
    variables.insert("matrixIndex".to_owned(), json!(worker.matrix_index));
    variables.insert("matrixCount".to_owned(), json!(matrix_count));
    variables.insert("matrix".to_owned(), json!(worker.matrix));
    variables.insert("shard".to_owned(), json!(worker.shard));
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallelism_accepts_numbers_text_and_expressions() {
        let vars = BTreeMap::from([("config".to_owned(), json!({"n": 3}))]);
        assert_eq!(parallelism(&json!(2), &vars), Ok(2));
        assert_eq!(parallelism(&json!("config.n + 1"), &vars), Ok(4));
        assert!(parallelism(&json!(0), &vars).is_err());
        assert!(parallelism(&json!("config.missing"), &vars).is_err());
    }
}
