//! Prometheus metrics (`GET /metrics`) with Testkube's names, so its
//! dashboards and alerts keep working: executions by workflow and result,
//! their durations, step durations, changes to workflows, aborts, and what
//! runs now.
//!
//! Why the counts are typed `gauge`: prometheus-client writes every counter
//! with a `_total` suffix, and Testkube's names have none
//! (`testkube_testworkflow_executions_count`). A gauge that only goes up
//! keeps the exact name, and `rate()`/`increase()` read it the same.
//! Durations are histograms (`_bucket`, `_sum`, `_count`); Testkube's are
//! summaries, whose `_sum` and `_count` series read the same.

use std::collections::BTreeMap;
use std::time::SystemTime;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use testkube_core::engine::Event;
use testkube_core::status::ExecutionStatus;

type Labels = Vec<(String, String)>;
type Count = Family<Labels, Gauge<i64, std::sync::atomic::AtomicI64>>;
type Durations = Family<Labels, Histogram, fn() -> Histogram>;

/// Milliseconds from 10 ms to about 1.5 days, doubling.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(10.0, 2.0, 24))
}

/// Every metric the server keeps.
pub(crate) struct Metrics {
    registry: Registry,
    executions: Count,
    execution_durations: Durations,
    steps: Count,
    step_durations: Durations,
    creations: Count,
    updates: Count,
    deletes: Count,
    aborts: Count,
    running_executions: Gauge<i64, std::sync::atomic::AtomicI64>,
    running_workers: Gauge<i64, std::sync::atomic::AtomicI64>,
    queued_executions: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What labels an execution's metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunLabels {
    /// The workflow's name.
    pub(crate) name: String,
    /// The workflow's labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// The execution's tags.
    pub(crate) tags: BTreeMap<String, String>,
    /// Who started it (`runningContext.interface.type`: `api`, `cli`...).
    pub(crate) triggered_by: String,
}

fn joined(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let executions = Count::default();
        registry.register(
            "testkube_testworkflow_executions_count",
            "Executions that ended, by workflow and result",
            executions.clone(),
        );
        let execution_durations = Durations::new_with_constructor(duration_buckets as fn() -> _);
        registry.register(
            "testkube_testworkflow_executions_duration_ms",
            "How long executions ran, in milliseconds",
            execution_durations.clone(),
        );
        let steps = Count::default();
        registry.register(
            "testkube_testworkflow_execution_steps_count",
            "Steps that ended, by workflow, step and result",
            steps.clone(),
        );
        let step_durations = Durations::new_with_constructor(duration_buckets as fn() -> _);
        registry.register(
            "testkube_testworkflow_execution_steps_duration_ms",
            "How long steps ran, in milliseconds",
            step_durations.clone(),
        );
        let changes = |registry: &mut Registry, name: &str, help: &str| {
            let count = Count::default();
            registry.register(name, help, count.clone());
            count
        };
        let creations = changes(
            &mut registry,
            "testkube_testworkflow_creations_count",
            "Workflows created through the API",
        );
        let updates = changes(
            &mut registry,
            "testkube_testworkflow_updates_count",
            "Workflows replaced through the API",
        );
        let deletes = changes(
            &mut registry,
            "testkube_testworkflow_deletes_count",
            "Workflows deleted through the API",
        );
        let aborts = changes(
            &mut registry,
            "testkube_testworkflow_aborts_count",
            "Executions aborted through the API",
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let running_executions = gauge(
            &mut registry,
            "testkube_testworkflow_executions_running",
            "Executions this server runs now",
        );
        let running_workers = gauge(
            &mut registry,
            "testkube_testworkflow_workers_running",
            "Workers (the main one, parallel workers, services) running now",
        );
        let queued_executions = gauge(
            &mut registry,
            "testkube_testworkflow_executions_queued",
            "Executions recorded but not started yet",
        );
        Metrics {
            registry,
            executions,
            execution_durations,
            steps,
            step_durations,
            creations,
            updates,
            deletes,
            aborts,
            running_executions,
            running_workers,
            queued_executions,
        }
    }
}

/// Which change to a workflow.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    Created,
    Updated,
    Deleted,
    Aborted,
}

impl Metrics {
    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode the metrics: {err}");
        }
        text
    }

    pub(crate) fn changed(&self, change: Change, workflow: &str) {
        let count = match change {
            Change::Created => &self.creations,
            Change::Updated => &self.updates,
            Change::Deleted => &self.deletes,
            Change::Aborted => &self.aborts,
        };
        count
            .get_or_create(&vec![("name".to_owned(), workflow.to_owned())])
            .inc();
    }

    /// A run was recorded (queued).
    pub(crate) fn queued(&self) {
        self.queued_executions.inc();
    }

    /// Counts `event` of the run `labels` describe; `steps` keeps when its
    /// steps started.
    pub(crate) fn observe(&self, labels: &RunLabels, event: &Event, steps: &mut StepClock) {
        match event {
            Event::Execution { status, .. }
                if *status == ExecutionStatus::Running && !steps.started =>
            {
                steps.started = true;
                self.queued_executions.dec();
                self.running_executions.inc();
            }
            // A worker reports `running` again after a pause and may end
            // without having started: counted once, by path.
            Event::Worker { worker, status, .. } => {
                if status.is_finished() {
                    if steps.workers.remove(&worker.path) {
                        self.running_workers.dec();
                    }
                } else if steps.workers.insert(worker.path.clone()) {
                    self.running_workers.inc();
                }
            }
            Event::Step {
                worker,
                step,
                status,
                at,
                ..
            } => {
                let key = (worker.path.clone(), step.id.clone());
                if !status.is_finished() {
                    steps.starts.entry(key).or_insert(*at);
                    return;
                }
                let Some(started) = steps.starts.remove(&key) else {
                    return;
                };
                let step_labels = vec![
                    ("name".to_owned(), labels.name.clone()),
                    ("step".to_owned(), step.label().to_owned()),
                    ("result".to_owned(), status.as_str().to_owned()),
                ];
                self.steps.get_or_create(&step_labels).inc();
                let ms = at.duration_since(started).unwrap_or_default().as_millis() as f64;
                self.step_durations.get_or_create(&step_labels).observe(ms);
            }
            Event::Finished(summary) => {
                for _ in steps.workers.drain() {
                    self.running_workers.dec();
                }
                if steps.started {
                    self.running_executions.dec();
                } else {
                    self.queued_executions.dec();
                }
                let result = summary.status.as_str().to_owned();
                self.executions
                    .get_or_create(&vec![
                        ("name".to_owned(), labels.name.clone()),
                        ("result".to_owned(), result.clone()),
                        ("labels".to_owned(), joined(&labels.labels)),
                        ("testworkflow_uri".to_owned(), String::new()),
                        ("triggered_by".to_owned(), labels.triggered_by.clone()),
                        ("tags".to_owned(), joined(&labels.tags)),
                    ])
                    .inc();
                self.execution_durations
                    .get_or_create(&vec![
                        ("name".to_owned(), labels.name.clone()),
                        ("result".to_owned(), result),
                    ])
                    .observe(summary.duration_ms as f64);
            }
            _ => {}
        }
    }
}

/// When each running step of one run started, for its duration.
#[derive(Debug, Default)]
pub(crate) struct StepClock {
    starts: std::collections::HashMap<(String, String), SystemTime>,
    /// The workers counted running.
    workers: std::collections::HashSet<String>,
    /// Whether the run has started (counted running, no longer queued).
    started: bool,
}
