//! `parallel` blocks: the engine starts the block's workers (at most
//! `parallelism` at once), stops the rest after the first failure with
//! `failFast`, and gives the block's verdict back to the worker that asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};

use super::event::Event;
use super::executor::{ParallelOutcome, ParallelRequest, WorkerId};
use super::run::{Shared, run_worker, stopped};
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
    let block = request.parallel;
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

    let semaphore = Arc::new(Semaphore::new(parallelism.clamp(1, block.workers.len())));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let count = block.workers.len();
    for worker in &block.workers {
        let id = shared.next_worker_id(parent, &request.step, worker.index);
        let variables = worker_variables(shared.variables(), &block, worker, count);
        let task = WorkerTask {
            shared: Arc::clone(shared),
            id,
            worker: worker.clone(),
            variables,
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
            semaphore,
            mut stop,
            done,
        } = self;
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
                    stop,
                )
                .await
            }
            (_, interruption) => {
                // Never started: `failFast` and aborts mark it aborted,
                // timeouts skipped.
                let status = match interruption {
                    Some(Interruption::Abort) | None => StepStatus::Aborted,
                    Some(other) => other.step_status(StepStatus::Queued),
                };
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
        let _ = done.send((worker.index, id, status));
    }
}

/// Stops the block's workers when the block's future is dropped.
struct StopOnDrop {
    stop: Arc<watch::Sender<Option<Interruption>>>,
    forward: tokio::task::JoinHandle<()>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        set_once(&self.stop, Interruption::Timeout);
        self.forward.abort();
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
fn parallelism(value: &Value, variables: &BTreeMap<String, Value>) -> Result<usize, String> {
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

/// The variables of one worker: the execution's, plus `index`, `count`,
/// `matrix*` and `shard*`.
fn worker_variables(
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
