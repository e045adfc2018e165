//! Runs this server started and is still running (or finished a moment
//! ago): their controls, and their notifications for live followers.
//!
//! Why a log of notifications per run, and not a broadcast channel: a
//! follower that connects late, reads slowly or reconnects
//! (`Last-Event-ID`) must get every notification in order, from where it
//! asks. A broadcast channel drops what a slow reader missed; here one task
//! appends each notification once (an `Arc`), and every follower reads the
//! log from its own position, woken by a `watch` of its length. A hundred
//! followers cost a hundred positions, not a hundred copies.
//!
//! A finished run's log is kept for [`KEEP_FINISHED`] so that followers
//! that reconnect right after the end resume with the same `seqNo`s; later
//! its notifications are replayed from the store (numbered afresh).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use testkube_core::engine::Event;
use testkube_core::model::LatestExecutionResult;
use testkube_core::service::{RunControl, RunHandle};
use testkube_core::status::ExecutionStatus;
use tokio::sync::watch;

use crate::api::{Notification, Output, ROOT_WORKER, ResultJson, StepState};
use crate::metrics::{Metrics, RunLabels, StepClock};

/// How long a finished run's notifications stay in memory.
pub(crate) const KEEP_FINISHED: Duration = Duration::from_secs(300);

/// A notification and the worker it is about.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The worker path; results are the execution's (`None`).
    pub(crate) worker: Option<String>,
    pub(crate) notification: Notification,
}

/// One run's notifications so far.
#[derive(Debug)]
pub(crate) struct LiveRun {
    pub(crate) id: String,
    pub(crate) workflow: String,
    control: RunControl,
    running_context: Option<Value>,
    entries: RwLock<Vec<Arc<Entry>>>,
    /// The number of entries, and whether the run is over.
    progress: watch::Sender<(usize, bool)>,
}

impl LiveRun {
    /// The entries from `from` on (at most `max`), and whether the run is
    /// over and they are the last.
    pub(crate) fn read(&self, from: usize, max: usize) -> (Vec<Arc<Entry>>, bool) {
        let finished = self.progress.borrow().1;
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let end = entries.len().min(from.saturating_add(max));
        let page = entries
            .get(from..end)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        (page, finished && end >= entries.len())
    }

    /// A receiver that changes when entries are added or the run ends.
    pub(crate) fn subscribe(&self) -> watch::Receiver<(usize, bool)> {
        self.progress.subscribe()
    }

    pub(crate) fn control(&self) -> &RunControl {
        &self.control
    }

    pub(crate) fn running_context(&self) -> Option<&Value> {
        self.running_context.as_ref()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.progress.borrow().1
    }

    fn push(&self, worker: Option<String>, mut notification: Notification) {
        let len = {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            notification.seq_no = entries.len() as u64 + 1;
            entries.push(Arc::new(Entry {
                worker,
                notification,
            }));
            entries.len()
        };
        self.progress.send_modify(|progress| progress.0 = len);
    }

    fn finish(&self) {
        self.progress.send_modify(|progress| progress.1 = true);
    }
}

/// The runs this server follows.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    runs: Arc<Mutex<HashMap<String, Arc<LiveRun>>>>,
}

impl Registry {
    /// The run `id`, if this server follows it.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// The unfinished runs (of `workflow`, when given).
    pub(crate) fn running(&self, workflow: Option<&str>) -> Vec<Arc<LiveRun>> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|run| !run.is_finished())
            .filter(|run| workflow.is_none_or(|name| run.workflow == name))
            .cloned()
            .collect()
    }

    /// Follows `run` on a task of its own until it ends; returns its entry.
    pub(crate) fn follow(
        &self,
        run: RunHandle,
        scheduled_at: DateTime<Utc>,
        running_context: Option<Value>,
        metrics: (Arc<Metrics>, RunLabels),
    ) -> Arc<LiveRun> {
        let live = Arc::new(LiveRun {
            id: run.id().to_owned(),
            workflow: run.workflow().to_owned(),
            control: run.control(),
            running_context,
            entries: RwLock::new(Vec::new()),
            progress: watch::Sender::new((0, false)),
        });
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(live.id.clone(), Arc::clone(&live));
        let registry = self.clone();
        let follower = Arc::clone(&live);
        let (metrics, labels) = metrics;
        metrics.queued();
        tokio::spawn(async move {
            let mut run = run;
            let mut state = LiveResult::new(scheduled_at);
            let mut clock = StepClock::default();
            while let Some(event) = run.next_event().await {
                metrics.observe(&labels, &event, &mut clock);
                for (worker, notification) in state.notifications(&event) {
                    follower.push(worker, notification);
                }
            }
            follower.finish();
            tokio::time::sleep(KEEP_FINISHED).await;
            registry
                .runs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&follower.id);
        });
        live
    }
}

/// The execution's result as the events tell it, for `result` notifications.
struct LiveResult {
    result: LatestExecutionResult,
    steps: BTreeMap<String, StepState>,
}

impl LiveResult {
    fn new(scheduled_at: DateTime<Utc>) -> Self {
        LiveResult {
            result: LatestExecutionResult::queued(scheduled_at),
            steps: BTreeMap::new(),
        }
    }

    fn json(&self) -> ResultJson {
        let mut json = ResultJson::from(self.result.clone());
        json.steps = Some(self.steps.clone());
        json
    }

    /// The notifications `event` makes (none for most), each with the
    /// worker it is about (`None`: the execution's).
    fn notifications(&mut self, event: &Event) -> Vec<(Option<String>, Notification)> {
        let now = Utc::now();
        let note = |step: &str| Notification::about(step, now);
        match event {
            Event::Log {
                worker,
                step,
                chunk,
            } => vec![(
                Some(worker.path.clone()),
                Notification {
                    log: Some(String::from_utf8_lossy(chunk).into_owned()),
                    ..note(step)
                },
            )],
            Event::Output {
                worker,
                step,
                key,
                value,
            } => vec![(
                Some(worker.path.clone()),
                Notification {
                    output: Some(Output {
                        step: step.clone(),
                        name: key.clone(),
                        value: value.clone(),
                    }),
                    ..note(step)
                },
            )],
            Event::Step {
                worker,
                step,
                status,
                at,
                detail,
            } => {
                let at = DateTime::<Utc>::from(*at);
                if worker.path == ROOT_WORKER && step.id != ROOT_WORKER {
                    let state = self.steps.entry(step.id.clone()).or_insert(StepState {
                        status: status.as_str().to_owned(),
                        exit_code: None,
                        error_message: None,
                        started_at: None,
                        finished_at: None,
                    });
                    state.status = status.as_str().to_owned();
                    if state.started_at.is_none() {
                        state.started_at = Some(at);
                    }
                    if status.is_finished() {
                        state.finished_at = Some(at);
                        state.exit_code = detail.exit_code;
                        state.error_message.clone_from(&detail.message);
                    }
                    if status.is_failure() {
                        self.result.predicted_status = Some(ExecutionStatus::Failed);
                    }
                }
                let result = Notification {
                    result: Some(self.json()),
                    ..note(&step.id)
                };
                // Every worker's followers see its steps; the execution's
                // see the root's.
                let worker = (worker.path != ROOT_WORKER).then(|| worker.path.clone());
                vec![(worker, result)]
            }
            Event::Execution { status, at } => {
                let at = DateTime::<Utc>::from(*at);
                self.result.status = *status;
                if *status == ExecutionStatus::Running && self.result.started_at.is_none() {
                    self.result.started_at = Some(at);
                }
                vec![(
                    None,
                    Notification {
                        result: Some(self.json()),
                        ..note("")
                    },
                )]
            }
            Event::Finished(summary) => {
                let parse = |text: &str| {
                    DateTime::parse_from_rfc3339(text)
                        .ok()
                        .map(|at| at.with_timezone(&Utc))
                };
                self.result.end(
                    summary.status,
                    parse(&summary.started_at),
                    parse(&summary.finished_at).unwrap_or(now),
                    i64::try_from(summary.duration_ms).ok(),
                );
                vec![(
                    None,
                    Notification {
                        result: Some(self.json()),
                        ..note("")
                    },
                )]
            }
            _ => Vec::new(),
        }
    }
}
