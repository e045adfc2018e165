//! One worker of an execution, from the engine's side: starts it through
//! the [`Executor`](super::Executor), turns its [`WorkerEvent`]s into
//! execution events, interrupts it when the execution (or its block) stops,
//! and serves its [`Orchestrator`] calls (parallel blocks, `execute`
//! children, paused steps, the start barrier).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::watch;

use super::children;
use super::event::Event;
use super::event::StepRef;
use super::executor::{
    ExecuteOutcome, ExecuteRequest, Orchestrator, ParallelOutcome, ParallelRequest, StepDetail,
    WorkerControl, WorkerEvent, WorkerFiles, WorkerHandle, WorkerId, WorkerSpec,
};
use super::fanout::{self, StartBarrier};
use super::run::Shared;
use super::translate::{step_index, translate};
use crate::plan::PlanStep;
use crate::status::{Interruption, StepStatus};

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
    let handle = match take_up(shared, spec, &steps).await {
        Begun::Running(handle) => handle,
        Begun::Ended(status) => {
            shared.emit(finish(status)).await;
            return status;
        }
        Begun::New(spec) => {
            // Initialization spans preparing the workspace (the executor's
            // start) and the root's own `content` (the worker's, before its
            // first step).
            shared
                .emit(initialization(StepStatus::Running, shared.now(), None))
                .await;
            match shared.executor.start(*spec).await {
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
                            shared.now(),
                            Some(message),
                        ))
                        .await;
                    shared.emit(finish(StepStatus::Failed)).await;
                    return StepStatus::Failed;
                }
            }
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
                        .emit(initialization(status, shared.now(), message))
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

/// How a worker begins: started anew, or (in a resumed execution) taken
/// up again or known to have ended.
enum Begun {
    /// To be started with this spec.
    New(Box<WorkerSpec>),
    /// Taken up again: followed as if just started.
    Running(WorkerHandle),
    /// Ended before, or gone: with this status.
    Ended(StepStatus),
}

/// In a resumed execution, finds out how worker `spec.worker` stands (see
/// [`super::recover`]); otherwise it is new.
async fn take_up(
    shared: &Arc<Shared>,
    spec: WorkerSpec,
    steps: &BTreeMap<String, StepRef>,
) -> Begun {
    let Some(recovered) = &shared.recovered else {
        return Begun::New(Box::new(spec));
    };
    let worker = spec.worker.clone();
    if let Some(status) = recovered.finished(&worker.path) {
        return Begun::Ended(status);
    }
    let why = match shared.executor.attach(spec.clone()).await {
        Ok(Some(handle)) => return Begun::Running(handle),
        Ok(None) if !recovered.knows(&worker.path) => return Begun::New(Box::new(spec)),
        Ok(None) => {
            "it was gone when the engine was restarted (deleted while nobody watched)".to_owned()
        }
        Err(err) => format!("it cannot be taken up again after a restart: {err}"),
    };
    shared
        .emit(Event::Notice {
            worker: Some(worker.clone()),
            message: format!("worker {worker} ended aborted: {why}"),
        })
        .await;
    let at = shared.now();
    for step in recovered.open_steps(&worker.path) {
        let event = WorkerEvent::Step {
            step,
            status: StepStatus::Aborted,
            at,
            detail: StepDetail {
                attempt: 1,
                message: Some(why.clone()),
                ..StepDetail::default()
            },
        };
        shared.emit(translate(&worker, steps, event)).await;
    }
    Begun::Ended(StepStatus::Aborted)
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
