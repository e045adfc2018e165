//! `execute`: steps that run other workflows as child executions.
//!
//! The engine does not know where workflows come from nor where results
//! go, so both sit behind one plugin, [`ChildExecutions`], given to the
//! engine with [`Engine::with_children`](super::Engine::with_children):
//!
//! 1. [`find`](ChildExecutions::find) picks the workflows of an
//!    `execute.workflows[]` entry, by name or label selector;
//! 2. [`prepare`](ChildExecutions::prepare) resolves and plans one of them
//!    with the config values the entry gives it;
//! 3. [`register`](ChildExecutions::register) gives the child its identity
//!    (id, number per workflow) once the engine accepted its plan: a
//!    frontend records it as an execution of its own here;
//! 4. [`follow`](ChildExecutions::follow) gets the started child's
//!    [`RunningExecution`] and consumes its events (a frontend stores them)
//!    until its summary, whose status is the child's verdict.
//!
//! [`WorkflowSet`](super::WorkflowSet) is a ready implementation over parsed workflows and a
//! [`TemplateSet`]; it records nothing.
//!
//! Every child of an `execute` step is planned (and checked) before any
//! starts, so a typo in one name fails the step without running the
//! others. At most `parallelism` children run at once. The step passes
//! when every child passed. With `async: true` the step passes as soon
//! as the children are scheduled; they run on in the background, and the
//! parent execution ends (its [`Event::Finished`]) only after them, so a
//! frontend that stops at the parent's end leaves nothing half-run; their
//! verdicts do not change the parent's. Aborting the parent (or its
//! deadline) aborts every child, and resuming it resumes them. The
//! parent's event stream shows each child as [`Event::Child`]. The
//! parent's secrets are masked in its children's events too.

use std::sync::Arc;

use async_trait::async_trait;
use indexmap::IndexMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use super::event::{Event, ExecutionSummary};
use super::executor::{ChildRecord, ExecuteOutcome, ExecuteRequest, ExecutionInfo, WorkerId};
use super::fanout::{self, StopOnDrop};
use super::run::{ExecutionRequest, Shared};
use super::running::{Canceller, RunningExecution};
use super::worker::stopped;
use crate::plan::Plan;
use crate::status::{ExecutionStatus, Interruption, StepStatus};

/// Where `execute` steps find workflows, and how a frontend sees each
/// child run. The engine calls [`find`](Self::find) for every entry and
/// [`prepare`](Self::prepare) for every child before it starts any (so one
/// bad entry starts nothing), then [`register`](Self::register) and
/// [`follow`](Self::follow) for each child as it runs.
#[async_trait]
pub trait ChildExecutions: Send + Sync {
    /// The names of the workflows `target` picks: the named one (an error
    /// when there is none), or every workflow whose labels match the
    /// selector, sorted by name (maybe none).
    ///
    /// # Errors
    /// [`ChildError`] when a named workflow does not exist or the selector
    /// is invalid.
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError>;

    /// Resolves and plans workflow `child.workflow` with `child.config`,
    /// and says what to run it as (config, labels, secrets). Leave the
    /// request's id empty to let [`register`](Self::register) or the
    /// engine choose it.
    ///
    /// # Errors
    /// [`ChildError`] when the workflow cannot be resolved or planned.
    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError>;

    /// Gives the child its identity before it starts: `prepared.request`'s
    /// `id`, `number` and `name` (a frontend records the execution here
    /// and numbers it per workflow). An id left empty becomes
    /// `<parent id>-<step>-<n>`; an empty name `<workflow>-<number>`. The
    /// default changes nothing.
    ///
    /// # Errors
    /// [`ChildError`] when the child cannot be recorded; it does not start.
    async fn register(
        &self,
        child: &ChildRequest,
        prepared: &mut PreparedChild,
    ) -> Result<(), ChildError> {
        let _ = (child, prepared);
        Ok(())
    }

    /// Follows a started child to its end and returns its summary (`None`
    /// when its stream ended without one, which counts as `aborted`).
    /// Consume every event: the child waits for a slow consumer. The
    /// default drops the events.
    async fn follow(&self, child: StartedChild) -> Option<ExecutionSummary> {
        child.execution.wait().await
    }
}

/// What an `execute.workflows[]` entry picks.
#[derive(Debug, Clone, Copy)]
pub enum ChildTarget<'a> {
    /// The workflow with this name.
    Name(&'a str),
    /// Every workflow whose labels match.
    Selector(&'a LabelSelector),
}

/// One child execution to prepare.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRequest {
    /// The execution whose step asks for it.
    pub parent: ExecutionInfo,
    /// The `execute` step's id.
    pub step: String,
    /// The workflow to run.
    pub workflow: String,
    /// The config values given to it (`execute.workflows[].config`, with
    /// worker variables and the parent's templates rendered).
    pub config: IndexMap<String, Value>,
    /// Its description, if the entry has one.
    pub description: Option<String>,
}

/// A planned child, and what to run it as.
#[derive(Debug, Clone)]
pub struct PreparedChild {
    /// The child's plan.
    pub plan: Plan,
    /// Its identity and values (see [`ChildExecutions::register`]).
    pub request: ExecutionRequest,
}

/// A child that started: give its events to whoever records it.
#[derive(Debug)]
pub struct StartedChild {
    /// The parent execution.
    pub parent: ExecutionInfo,
    /// The `execute` step's id.
    pub step: String,
    /// The child's identity.
    pub child: ExecutionInfo,
    /// Its description, if the entry has one.
    pub description: Option<String>,
    /// Its events and controls.
    pub execution: RunningExecution,
}

/// Why a child cannot be found, planned or recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ChildError {
    /// What went wrong and what to do, for the user.
    pub message: String,
}

impl ChildError {
    /// An error saying `message`.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        ChildError {
            message: message.into(),
        }
    }
}

/// Runs an `execute` operation of worker `worker` (see the module
/// documentation for what it means). Dropping the future aborts the
/// children it waits for.
pub(crate) async fn run_execute(
    shared: &Arc<Shared>,
    worker: &WorkerId,
    request: ExecuteRequest,
    stop: watch::Receiver<Option<Interruption>>,
) -> ExecuteOutcome {
    let Some(catalog) = shared.children().cloned() else {
        return failed(
            Vec::new(),
            "this engine has no workflows to run as children",
        );
    };
    let depth = match shared.child_depth() {
        Ok(depth) => depth,
        Err(message) => return failed(Vec::new(), message),
    };
    let execute = request.execute;
    let parallelism = match fanout::parallelism(&execute.parallelism, shared.variables()) {
        Ok(parallelism) => parallelism,
        Err(message) => return failed(Vec::new(), message),
    };

    let mut asked = Vec::new();
    for (index, entry) in execute.workflows.iter().enumerate() {
        let target = match (&entry.name, &entry.selector) {
            (Some(name), _) => ChildTarget::Name(name),
            (None, Some(selector)) => ChildTarget::Selector(selector),
            (None, None) => {
                return failed(
                    Vec::new(),
                    format!("execute.workflows[{index}] has neither `name` nor `selector`"),
                );
            }
        };
        let names = match catalog.find(target) {
            Ok(names) => names,
            Err(err) => return failed(Vec::new(), err.message),
        };
        if names.is_empty() {
            return failed(
                Vec::new(),
                format!(
                    "execute.workflows[{index}]: no workflow matches the selector; pass the \
                     files or folders that define the workflows"
                ),
            );
        }
        for name in names {
            for child in &entry.executions {
                asked.push(ChildRequest {
                    parent: shared.execution().clone(),
                    step: request.step.clone(),
                    workflow: name.clone(),
                    config: child.config.clone(),
                    description: child.description.clone(),
                });
            }
        }
    }

    // Plan every child before starting any.
    let mut children = Vec::with_capacity(asked.len());
    let mut problems = Vec::new();
    for child in asked {
        match catalog.prepare(&child) {
            Ok(prepared) => match shared.engine().check(&prepared.plan) {
                Ok(()) => children.push((child, prepared)),
                Err(err) => problems.push(format!("workflow `{}`: {err}", child.workflow)),
            },
            Err(err) => problems.push(err.message),
        }
    }
    if !problems.is_empty() {
        return failed(Vec::new(), problems.join("; "));
    }
    if children.is_empty() {
        return ExecuteOutcome {
            status: StepStatus::Passed,
            children: Vec::new(),
            message: Some("no child executions (zero workers)".to_owned()),
        };
    }

    let scheduler = Scheduler {
        shared: Arc::clone(shared),
        worker: worker.clone(),
        step: request.step,
        catalog,
        depth,
        parallelism,
    };
    if execute.is_async {
        let count = children.len();
        let stop = shared.execution_stop();
        let task = tokio::spawn(async move {
            scheduler.run(children, stop).await;
        });
        shared.keep_in_background(task);
        return ExecuteOutcome {
            status: StepStatus::Passed,
            children: Vec::new(),
            message: Some(format!(
                "{count} child execution(s) scheduled in the background (async)"
            )),
        };
    }
    let (guard, stop) = StopOnDrop::follow(stop);
    let outcome = scheduler.run(children, stop).await;
    drop(guard);
    outcome
}

fn failed(children: Vec<ChildRecord>, message: impl Into<String>) -> ExecuteOutcome {
    ExecuteOutcome {
        status: StepStatus::Failed,
        children,
        message: Some(message.into()),
    }
}

/// Starts the children of one `execute` operation.
struct Scheduler {
    shared: Arc<Shared>,
    worker: WorkerId,
    step: String,
    catalog: Arc<dyn ChildExecutions>,
    depth: usize,
    parallelism: usize,
}

impl Scheduler {
    async fn run(
        self,
        children: Vec<(ChildRequest, PreparedChild)>,
        stop: watch::Receiver<Option<Interruption>>,
    ) -> ExecuteOutcome {
        let this = Arc::new(self);
        let semaphore = Arc::new(Semaphore::new(this.parallelism.clamp(1, children.len())));
        let tasks: Vec<_> = children
            .into_iter()
            .map(|(child, prepared)| {
                let this = Arc::clone(&this);
                let semaphore = Arc::clone(&semaphore);
                let stop = stop.clone();
                tokio::spawn(async move { this.child(child, prepared, &semaphore, stop).await })
            })
            .collect();
        let mut records = Vec::with_capacity(tasks.len());
        let mut not_passed = Vec::new();
        for task in tasks {
            let (record, message) = match task.await {
                Ok(result) => result,
                Err(err) => (
                    ChildRecord {
                        id: String::new(),
                        name: String::new(),
                        workflow: String::new(),
                        status: StepStatus::Aborted,
                    },
                    Some(format!("a child's task ended unexpectedly: {err}")),
                ),
            };
            if record.status != StepStatus::Passed {
                let label = if record.name.is_empty() {
                    format!("a child of workflow `{}`", record.workflow)
                } else {
                    format!("child {}", record.name)
                };
                let why = message.map(|m| format!(" ({m})")).unwrap_or_default();
                not_passed.push(format!("{label} ended {}{why}", record.status));
            }
            records.push(record);
        }
        let interruption = *stop.borrow();
        if let Some(interruption) = interruption {
            let status = interruption.step_status(StepStatus::Running);
            return ExecuteOutcome {
                status,
                children: records,
                message: None,
            };
        }
        if not_passed.is_empty() {
            ExecuteOutcome {
                status: StepStatus::Passed,
                children: records,
                message: None,
            }
        } else {
            failed(records, not_passed.join("; "))
        }
    }

    /// Runs one child to its end: its record and why it did not pass.
    async fn child(
        &self,
        child: ChildRequest,
        mut prepared: PreparedChild,
        semaphore: &Arc<Semaphore>,
        mut stop: watch::Receiver<Option<Interruption>>,
    ) -> (ChildRecord, Option<String>) {
        let mut record = ChildRecord {
            id: String::new(),
            name: String::new(),
            workflow: child.workflow.clone(),
            status: StepStatus::Aborted,
        };
        let permit = tokio::select! {
            permit = Arc::clone(semaphore).acquire_owned() => permit.ok(),
            _ = stopped(&mut stop) => None,
        };
        let stopped_already = stop.borrow().is_some();
        let Some(_permit) = permit.filter(|_| !stopped_already) else {
            self.report(&record, &child).await;
            return (
                record,
                Some("the run was stopped before it started".to_owned()),
            );
        };
        if let Err(err) = self.catalog.register(&child, &mut prepared).await {
            record.status = StepStatus::Failed;
            self.report(&record, &child).await;
            return (record, Some(err.message));
        }
        let request = &mut prepared.request;
        if request.id.is_empty() {
            request.id = self.shared.next_child_id(&self.step);
        }
        if request.name.is_empty() {
            request.name = format!("{}-{}", prepared.plan.workflow, request.number);
        }
        // A secret passed on in config stays a secret in the child.
        for secret in self.shared.secrets() {
            if !request.secrets.contains(secret) {
                request.secrets.push(secret.clone());
            }
        }
        record.id.clone_from(&request.id);
        record.name.clone_from(&request.name);
        record.workflow.clone_from(&prepared.plan.workflow);
        let info = ExecutionInfo {
            id: record.id.clone(),
            name: record.name.clone(),
            workflow: record.workflow.clone(),
        };
        let execution =
            match self
                .shared
                .engine()
                .start_at(prepared.plan, prepared.request, self.depth, None)
            {
                Ok(execution) => execution,
                Err(err) => {
                    record.status = StepStatus::Failed;
                    self.report(&record, &child).await;
                    return (record, Some(err.to_string()));
                }
            };
        record.status = StepStatus::Running;
        self.report(&record, &child).await;
        let link = tokio::spawn(link(
            execution.canceller(),
            stop.clone(),
            self.shared.control().resumes(),
        ));
        let summary = self
            .catalog
            .follow(StartedChild {
                parent: self.shared.execution().clone(),
                step: self.step.clone(),
                child: info,
                description: child.description.clone(),
                execution,
            })
            .await;
        link.abort();
        record.status = summary
            .as_ref()
            .map_or(StepStatus::Aborted, |summary| step_status(summary.status));
        self.report(&record, &child).await;
        (record, summary.and_then(|summary| summary.message))
    }

    async fn report(&self, record: &ChildRecord, child: &ChildRequest) {
        self.shared
            .emit(Event::Child {
                worker: self.worker.clone(),
                step: self.step.clone(),
                child: record.clone(),
                description: child.description.clone(),
            })
            .await;
    }
}

/// Passes the parent's stop and resumes on to a child, until aborted.
async fn link(
    child: Canceller,
    mut stop: watch::Receiver<Option<Interruption>>,
    mut resumes: watch::Receiver<u64>,
) {
    resumes.borrow_and_update();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => {
                child.abort();
                return;
            }
            changed = resumes.changed() => {
                if changed.is_err() {
                    stopped(&mut stop).await;
                    child.abort();
                    return;
                }
                child.resume();
            }
        }
    }
}

/// A child's verdict as the status of a step.
fn step_status(status: ExecutionStatus) -> StepStatus {
    match status {
        ExecutionStatus::Passed => StepStatus::Passed,
        ExecutionStatus::Aborted => StepStatus::Aborted,
        ExecutionStatus::Canceled => StepStatus::Canceled,
        _ => StepStatus::Failed,
    }
}
