//! The step runner: runs one worker's step tree, the way Testkube's in-pod
//! runner does, and reports each step as [`WorkerEvent`]s.
//!
//! It decides (with the rules of [`testkube_core::status`]) which steps run
//! (`condition`), how often (`retry {count, until}`), when they stop (step
//! `timeout`: the step and its started sub-steps end `timeout`, the others
//! `skipped`), and what they end with (`negative`, `optional`, group
//! verdicts). It runs `shell` scripts with `sh -e -c` and `run` commands,
//! with `CI=1` and the step's env and working directory, fetches `content`
//! (files, a git checkout, tarballs), reads `/testkube/outputs/<key>` (at
//! most 4 KiB each) after each command into `step.<id>.outputs.<key>`, and
//! hands `parallel` blocks to the engine through the worker's
//! [`Orchestrator`]. It collects
//! `artifacts` into an [`ArtifactStorage`] and reports the JUnit results
//! among them ([`artifacts`]).
//!
//! Where processes run is not its business: a [`Launcher`] starts them
//! (plain processes, a sandbox, the containers of a pod), and
//! [`WorkerPaths`] says what `/data`, `/tmp` and `/testkube` are. That is
//! what lets the in-pod runner of the Kubernetes executor reuse it as is.

pub mod artifacts;
mod attempts;
mod command;
mod content;
mod control;
mod env;
mod init;
pub mod launch;
pub mod paths;
pub mod probes;
pub mod relay;
pub mod services;
pub mod transfer;
mod workspace;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::Value;
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::engine::{Orchestrator, StepDetail, WorkerEvent};
use testkube_core::expr::MapContext;
use testkube_core::model::{ContainerConfig, Duration as FormatDuration, EnvVar};
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::{
    Attempt, CommandOutcome, Interruption, RetryDecision, RetryPolicy, StatusContext, StepStatus,
    leaf_status,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use artifacts::{ArtifactStorage, ArtifactUploads};
pub use launch::{
    Background, GroupSignal, Launcher, Limits, OutOfMemory, Process, ProcessEnd, QuantityValue,
    StepOutput, Stop, StopSignal, format_bytes, parse_quantity,
};
pub use paths::WorkerPaths;
pub use relay::{Relay, RelayState};

use command::shell_argv;
use env::StepEnv;

/// The most bytes an output file may hold (`/testkube/outputs/<key>`).
pub const MAX_OUTPUT_BYTES: u64 = 4096;

/// What a [`StepRunner`] needs.
pub struct RunnerConfig {
    /// Starts the steps' processes.
    pub launcher: Arc<dyn Launcher>,
    /// The worker's workspace.
    pub paths: WorkerPaths,
    /// Where the worker's events go.
    pub events: mpsc::Sender<WorkerEvent>,
    /// Runs `parallel` blocks.
    pub orchestrator: Arc<dyn Orchestrator>,
    /// Interruptions from outside (abort, deadline).
    pub interrupt: watch::Receiver<Option<Interruption>>,
    /// Expression variables of the worker (`config`, `execution`, `index`...).
    pub variables: BTreeMap<String, Value>,
    /// Where `artifacts` are kept (`None`: steps that collect artifacts
    /// fail, saying so).
    pub artifacts: Option<ArtifactStorage>,
}

/// Runs one worker's steps. See the [module documentation](self).
pub struct StepRunner {
    launcher: Arc<dyn Launcher>,
    paths: WorkerPaths,
    events: mpsc::Sender<WorkerEvent>,
    orchestrator: Arc<dyn Orchestrator>,
    interrupt: watch::Receiver<Option<Interruption>>,
    status: StatusContext,
    /// Deadlines of the steps being run, outermost first.
    deadlines: Vec<Instant>,
    /// Whether an interruption kept a step from starting: its parents end
    /// with the interruption's status, not as if they had passed.
    stopped_steps: bool,
    artifact_storage: Option<ArtifactStorage>,
    /// The services started by the steps being run.
    services: services::Services,
    /// How the worker meets the rest of its execution (files, barrier).
    link: transfer::WorkerLink,
    /// The runner's own environment, which every process it starts gets.
    runner_env: serde_json::Map<String, Value>,
    /// The container variables of the steps being run, innermost last: a
    /// step that runs no command has those of the step around it.
    step_env: Vec<Vec<EnvVar>>,
    /// The worker's steps run across the containers of a pod (see
    /// [`relay`]); `None`: all here.
    relay: Option<Relay>,
}

/// A boxed future of a step (the step tree is recursive).
type StepFuture<'a> = Pin<Box<dyn Future<Output = StepStatus> + Send + 'a>>;

/// How one attempt of a step ended.
struct AttemptEnd {
    status: StepStatus,
    own_timeout: bool,
    exit_code: Option<i32>,
    message: Option<String>,
}

/// How one operation of a step ended, before `negative`.
struct OperationEnd {
    status: StepStatus,
    exit_code: Option<i32>,
    message: Option<String>,
}

impl OperationEnd {
    fn passed() -> Self {
        OperationEnd {
            status: StepStatus::Passed,
            exit_code: None,
            message: None,
        }
    }

    fn failed(message: impl Into<String>) -> Self {
        OperationEnd {
            status: StepStatus::Failed,
            exit_code: None,
            message: Some(message.into()),
        }
    }
}

impl StepRunner {
    /// A runner for one worker.
    #[must_use]
    pub fn new(config: RunnerConfig) -> Self {
        // Variables that are not UTF-8 cannot be read by expressions.
        let runner_env: serde_json::Map<String, Value> = std::env::vars_os()
            .filter_map(|(name, value)| {
                Some((
                    name.into_string().ok()?,
                    Value::String(value.into_string().ok()?),
                ))
            })
            .collect();
        let ci = EnvVar {
            name: "CI".to_owned(),
            value: Some("1".to_owned()),
            ..EnvVar::default()
        };
        // `env` is not among these: each step's comes from its
        // `StepEnv`, over this context.
        let parent = config
            .variables
            .into_iter()
            .fold(MapContext::new(), |ctx, (name, value)| {
                ctx.with(name, value)
            });
        let services = services::Services::default();
        let status = StatusContext::new()
            .with_parent(Arc::new(services.context(workspace::WorkspaceFiles::new(
                parent,
                config.paths.clone(),
            ))))
            .with_results_base(config.paths.results_visible());
        StepRunner {
            launcher: config.launcher,
            paths: config.paths,
            events: config.events,
            orchestrator: config.orchestrator,
            interrupt: config.interrupt,
            status,
            deadlines: Vec::new(),
            stopped_steps: false,
            artifact_storage: config.artifacts,
            services,
            link: transfer::WorkerLink::default(),
            runner_env,
            // Every container of a plan starts with `CI=1`.
            step_env: vec![vec![ci]],
            relay: None,
        }
    }

    /// Runs the steps of one container of a pod whose containers share the
    /// worker's steps (see [`relay`]).
    #[must_use]
    pub fn with_relay(mut self, relay: Relay) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Whether this container stopped at a step of a later one: from then
    /// on nothing runs and nothing is reported.
    fn handing_off(&self) -> bool {
        self.relay.as_ref().is_some_and(Relay::handed_off)
    }

    /// Runs the worker's root step to its end and returns its status.
    pub async fn run(mut self, root: &PlanStep) -> StepStatus {
        declare_ids(root, &mut self.status);
        let status = self.run_linked_root(root).await;
        self.stop_all_services().await;
        self.launcher.shutdown().await;
        status
    }

    /// Runs a child step: decides its condition, then runs it.
    fn run_step<'a>(&'a mut self, step: &'a PlanStep) -> StepFuture<'a> {
        Box::pin(async move {
            if self.handing_off() {
                return StepStatus::Skipped;
            }
            if let Some((done, attempt)) =
                self.relay.as_ref().and_then(|relay| relay.done(&step.id))
            {
                // Finished by an earlier container of the pod: restored, not run.
                self.status
                    .record_attempt(step.id.clone(), attempt.exit_code, attempt.outputs);
                self.status
                    .finish(step.id.clone(), done.status, step.optional);
                return done.status;
            }
            if let Some(stop) = self.stop_signal().check() {
                let message = match stop {
                    Stop::Deadline => "a timeout fired before it started",
                    Stop::Interrupted(_) => {
                        self.stopped_steps = true;
                        "the run was stopped before it started"
                    }
                };
                return self.not_run(step, StepStatus::Skipped, message).await;
            }
            let decided = {
                let env = self.env_of(self.env_vars(step));
                env.checked(self.status.should_run_in(&step.id, &step.condition, &env))
            };
            match decided {
                Ok(true) => {}
                Ok(false) => {
                    self.emit_step(step, StepStatus::Skipped, StepDetail::default())
                        .await;
                    self.status
                        .finish(step.id.clone(), StepStatus::Skipped, step.optional);
                    return StepStatus::Skipped;
                }
                Err(message) => {
                    return self.not_run(step, StepStatus::Failed, &message).await;
                }
            }
            let status = self.run_decided(step).await;
            self.status.finish(step.id.clone(), status, step.optional);
            status
        })
    }

    /// Runs a step that is to run (its condition held): creates its
    /// results folder, makes it the running step (for `step.results`) with
    /// its env (for `env`), and runs its attempts.
    async fn run_decided(&mut self, step: &PlanStep) -> StepStatus {
        if let Err(message) = self.enter_step(step) {
            let detail = StepDetail {
                message: Some(message),
                ..StepDetail::default()
            };
            self.emit_step(step, StepStatus::Failed, detail).await;
            return StepStatus::Failed;
        }
        let status = self.run_attempts(step).await;
        self.leave_step();
        status
    }

    /// Makes `step` the running one, so what is evaluated meanwhile is its
    /// own: its results folder (created here) is `step.results` and its env
    /// is `env`. Ends with [`StepRunner::leave_step`].
    fn enter_step(&mut self, step: &PlanStep) -> Result<(), String> {
        self.create_results_dir(step)?;
        self.status.begin_step(step.id.clone());
        self.step_env.push(self.env_vars(step).to_vec());
        Ok(())
    }

    /// Ends the step begun last with [`StepRunner::enter_step`].
    fn leave_step(&mut self) {
        self.step_env.pop();
        self.status.end_step();
    }

    /// Creates the step's results folder (`step.results`) before it runs,
    /// as Testkube does; it stays in the worker's workspace for later steps
    /// and with the execution's files.
    fn create_results_dir(&self, step: &PlanStep) -> Result<(), String> {
        let Some(dir) = self.paths.results_host(&step.id) else {
            return Ok(());
        };
        std::fs::create_dir_all(&dir).map_err(|err| {
            format!(
                "cannot create the step's results folder {}: {err}",
                dir.display()
            )
        })
    }

    async fn not_run(&mut self, step: &PlanStep, status: StepStatus, message: &str) -> StepStatus {
        let detail = StepDetail {
            message: Some(message.to_owned()),
            ..StepDetail::default()
        };
        self.emit_step(step, status, detail).await;
        self.status.finish(step.id.clone(), status, step.optional);
        status
    }

    async fn operation(&mut self, step: &PlanStep, operation: &Operation) -> OperationEnd {
        match operation {
            Operation::Delay { duration } => self.delay(duration).await,
            Operation::Content { content }
                if content.git.is_some()
                    && self.relay.as_ref().is_some_and(|relay| {
                        relay.belongs_later(&WorkerTask::git_key(&step.id))
                    }) =>
            {
                // The next container of the pod (the git image) checks it
                // out, and goes on with what follows.
                if let Some(relay) = &self.relay {
                    relay.hand_off();
                }
                OperationEnd::passed()
            }
            Operation::Content { content } => self.content(step, content).await,
            Operation::Artifacts {
                condition,
                artifacts,
            } => self.artifacts(step, condition, artifacts).await,
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    self.run_step(child).await;
                    if self.handing_off() {
                        break;
                    }
                }
                OperationEnd::passed()
            }
            Operation::Run { .. } | Operation::Shell { .. }
                if self
                    .relay
                    .as_ref()
                    .is_some_and(|relay| relay.belongs_later(&step.id)) =>
            {
                // The next container of the pod runs it (and what follows).
                if let Some(relay) = &self.relay {
                    relay.hand_off();
                }
                OperationEnd::passed()
            }
            Operation::Run { container, shell } => {
                let argv = match shell {
                    Some(script) => shell_argv(script),
                    None => {
                        let mut argv = container.command.clone().unwrap_or_default();
                        argv.extend(container.args.clone().unwrap_or_default());
                        if argv.is_empty() {
                            return OperationEnd::failed(
                                "`run` has no `command` or `shell`: images are not pulled \
                                 locally, so their default command is unknown",
                            );
                        }
                        argv
                    }
                };
                self.command(step, container, argv).await
            }
            Operation::Shell { script, container } => {
                self.command(step, container, shell_argv(script)).await
            }
            Operation::Parallel(block) => self.parallel(step, block).await,
            Operation::Execute(execute) => self.execute(step, execute).await,
            Operation::StartServices { services } => self.start_services(step, services).await,
            Operation::StopServices { services } => self.stop_services(step, services).await,
            other => OperationEnd::failed(format!("not supported yet: {}", operation_name(other))),
        }
    }

    async fn delay(&mut self, duration: &str) -> OperationEnd {
        let duration = match FormatDuration(duration.to_owned()).parse() {
            Ok(duration) => duration,
            Err(err) => return OperationEnd::failed(format!("invalid delay `{duration}`: {err}")),
        };
        let mut stop = self.stop_signal();
        tokio::select! {
            () = tokio::time::sleep(duration) => OperationEnd::passed(),
            stop = stop.fired() => stopped(stop),
        }
    }

    /// Renders a template of the running step.
    fn render(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        self.step_scope().render(text)
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadlines.iter().min().copied()
    }

    fn stop_signal(&self) -> StopSignal {
        StopSignal {
            deadline: self.deadline(),
            interrupt: self.interrupt.clone(),
        }
    }

    async fn emit_step(&self, step: &PlanStep, status: StepStatus, detail: StepDetail) {
        if let Some(relay) = &self.relay {
            if relay.handed_off() {
                return;
            }
            relay.reported(&step.id, status);
        }
        let _ = self
            .events
            .send(WorkerEvent::Step {
                step: step.id.clone(),
                status,
                at: SystemTime::now(),
                detail,
            })
            .await;
    }

    async fn notice(&self, message: String) {
        let _ = self.events.send(WorkerEvent::Notice { message }).await;
    }

    async fn log(&self, step: &str, text: String) {
        let _ = self
            .events
            .send(WorkerEvent::Log {
                step: step.to_owned(),
                chunk: Bytes::from(text),
            })
            .await;
    }
}

/// The status of an operation that a stop ended.
fn stopped(stop: Stop) -> OperationEnd {
    let (status, message) = match stop {
        Stop::Deadline => (StepStatus::Timeout, "timed out".to_owned()),
        Stop::Interrupted(interruption) => (
            interruption.step_status(StepStatus::Running),
            "stopped from outside".to_owned(),
        ),
    };
    OperationEnd {
        status,
        exit_code: None,
        message: Some(message),
    }
}

fn operation_name(operation: &Operation) -> &'static str {
    match operation {
        Operation::Execute(_) => "execute",
        _ => "this operation",
    }
}

/// Declares every step id of the worker, so conditions may name steps that
/// have not run yet.
fn declare_ids(step: &PlanStep, status: &mut StatusContext) {
    status.declare(step.id.clone());
    for operation in &step.operations {
        if let Operation::Setup { steps } | Operation::Steps { steps } = operation {
            for child in steps {
                declare_ids(child, status);
            }
        }
    }
}

fn clear_dir(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
