//! `services`: background processes a step starts before its own work and
//! stops after it, as Testkube runs them in pods next to the step's.
//!
//! - Start: every instance (the plan has already expanded `count`,
//!   `matrix` and `shards` into instances) starts through the worker's
//!   [`Launcher::spawn`]: its `shell` with `sh -e -c`, or `command` +
//!   `args`, with its `env`, `workingDir` and `resources.limits`, after
//!   the service's `content` is fetched into the worker's workspace
//!   (which the service shares). All instances start at once and are
//!   waited for together.
//! - Ready: an instance without `readinessProbe` is ready once started;
//!   otherwise when its probe passes (see [`super::probes`] for the probe
//!   rules). The step fails, naming the service and instance, what the
//!   probe said last and the last lines of its output, when an instance
//!   exits before it is ready or is not ready within the service's
//!   `timeout` (default [`DEFAULT_READY_TIMEOUT`], so that a service that
//!   never gets ready does not hold a run until its deadline).
//! - Address: locally every service shares the machine's network, so
//!   `services.<name>` is a list of `{ip: "127.0.0.1", description}`, one
//!   per instance (`{{ services.db.0.ip }}`, `services.db.*.ip`), known to
//!   the step and its sub-steps once the services are ready (a service of
//!   an inner step hides an outer one of the same name while it runs).
//!   Unlike pods, instances share one address, so instances of a service
//!   (and the services of parallel workers) need different ports, e.g.
//!   `{{ 8000 + index }}`; probes see the instance's variables for that.
//! - Logs: each instance's output is the log of the pseudo-step
//!   `<step id>.services.<name>.<index>` (step ids never contain dots) when
//!   the service's `logs` expression is true (default false, as in the
//!   format); either way its last lines are kept for failure messages.
//! - Restart: with `restartPolicy: OnFailure` an instance that exits with
//!   a failure is started again after [`FIRST_RESTART_DELAY`], doubling up
//!   to [`MAX_RESTART_DELAY`] (Kubernetes' crash-loop back-off), each
//!   restart noted in the step's log; readiness is then bounded by the
//!   `timeout` only. Without it (`Never`, the default) a failed service
//!   stays down.
//! - Exec probes run through the same launcher as the steps (in the
//!   worker's sandbox, which has the same folders as the service's), with
//!   the service's env and working directory.
//! - Stop: at `StopServices`, and in any case when the attempt of the step
//!   that started them ends (also by failure, timeout or abort), every
//!   instance's process group gets `SIGTERM`, then `SIGKILL` after
//!   [`STOP_GRACE`]; a service never outlives its step, and dropping the
//!   runner kills whatever is left.
//!
//! Where instances run is the one thing that differs between a local worker
//! and a worker in a pod: locally they are processes of the worker's
//! [`Launcher`]; a runner given [`ServicePods`] (the in-pod runner) renders
//! each instance the same way, then asks the engine to run it as a pod of
//! its own and answers `services.<name>.<index>.ip` with the pod's IP (see
//! `pods.rs`). Readiness, logs, restarts and stopping are then the engine's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use testkube_core::engine::WorkerEvent;
use testkube_core::expr::{Context, Expr, MapContext, Template};
use testkube_core::model::{Duration as FormatDuration, ServiceRestartPolicy};
use testkube_core::plan::{PlanService, PlanServiceInstance, PlanStep};
use testkube_core::status::StepStatus;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

mod context;
mod instance;
mod pods;

pub(crate) use context::WithServices;
use context::{InstanceContext, render_with};
use testkube_core::expr::truthy;

use instance::{KeptOutput, ReadyCheck, Supervised, log_pipe, supervise, wait_ready};
pub use pods::ServicePods;

use super::probes::{Probe, ProbeAction, SERVICE_HOST, http_check, tcp_check};
use super::{
    Background, GroupSignal, Launcher, Limits, OperationEnd, Process, ProcessEnd, StepOutput,
    StepRunner, StopSignal, shell_argv, stopped,
};

/// How long a service may take to be ready when its `timeout` is not set.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How long a service may take to exit after `SIGTERM` before `SIGKILL`.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// The first wait before a failed service restarts (`restartPolicy:
/// OnFailure`); it doubles at each restart, up to [`MAX_RESTART_DELAY`].
/// Kubernetes starts at 10 s, but most of that covers pulling and
/// scheduling, which do not happen locally.
pub const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);

/// The longest wait before a failed service restarts (as Kubernetes).
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(5 * 60);

/// How many of an instance's last output lines a failure message shows.
const MESSAGE_LINES: usize = 10;

/// How many bytes of an instance's last output are kept for messages.
const KEPT_BYTES: usize = 4096;

/// The log "step" of a service instance: `<step>.services.<name>.<index>`.
#[must_use]
pub fn log_step_id(step: &str, service: &str, index: usize) -> String {
    format!("{step}.services.{service}.{index}")
}

/// What a runner cannot do with `service` (to refuse a plan before it runs).
#[must_use]
pub fn unsupported(service: &PlanService) -> Vec<String> {
    let mut found = Vec::new();
    let name = &service.name;
    if let Some(probe) = &service.readiness_probe {
        if probe.grpc.is_some() {
            found.push(format!("services.{name}.readinessProbe.grpc"));
        }
        if let Some(scheme) = probe.http_get.as_ref().and_then(|h| h.scheme.as_deref())
            && !scheme.eq_ignore_ascii_case("http")
        {
            found.push(format!(
                "services.{name}.readinessProbe.httpGet.scheme: {scheme}"
            ));
        }
    }
    if !service.transfer.is_empty() {
        found.push(format!("services.{name}.transfer"));
    }
    if let Some(content) = &service.content {
        if content.oci.is_some() {
            found.push(format!("services.{name}.content.oci"));
        }
        if content.files.iter().any(|file| file.content_from.is_some()) {
            found.push(format!("services.{name}.content.files[].contentFrom"));
        }
    }
    found
}

/// The services a worker has started, and the `services` variable.
#[derive(Default)]
pub(crate) struct Services {
    running: Vec<Instance>,
    variables: Variables,
    /// Runs instances as pods of the engine's; `None`: local processes.
    pods: Option<Arc<dyn ServicePods>>,
}

/// The `services` variable, shared with the expression context.
type Variables = Arc<RwLock<Map<String, Value>>>;

/// One running service instance.
struct Instance {
    /// The step that started it.
    step: String,
    name: String,
    index: usize,
    /// Its `services.<name>[index]` value (`{ip, description}`).
    address: Value,
    /// Whether it counts in `services` (its start operation is done).
    ready: bool,
    running: Running,
}

/// Where a service instance runs.
enum Running {
    /// A process of the worker's launcher.
    Process {
        process: Background,
        /// Forwards its output; done once the output is closed.
        forwarder: JoinHandle<()>,
        /// Its last output.
        tail: KeptOutput,
    },
    /// A pod the engine runs (asked through [`ServicePods`]).
    Pod,
}

/// What a service's instances share, decided when its step starts it.
struct ServiceSettings {
    /// Whether its output is logged (`logs`).
    logs: bool,
    /// How long it may take to be ready.
    timeout: Duration,
    /// Its readiness probe, as written (instances render it).
    probe: Option<Value>,
}

impl Services {
    /// A context answering `services` from these services, everything else
    /// from `inner`.
    pub(crate) fn context<C: Context + Send + Sync>(&self, inner: C) -> WithServices<C> {
        WithServices {
            inner,
            services: Arc::clone(&self.variables),
        }
    }

    /// Stops the instances `matches` selects, all at once; notes for the
    /// step's log about those that had exited on their own. `interrupted`:
    /// the worker is being stopped, so pods are left to the engine, which
    /// deletes them when the worker ends.
    async fn stop_where(
        &mut self,
        matches: impl Fn(&Instance) -> bool,
        interrupted: bool,
    ) -> Vec<(String, String)> {
        let (stopping, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|i| matches(i));
        self.running = kept;
        self.refresh_variables();
        let (processes, in_pods): (Vec<_>, Vec<_>) = stopping
            .into_iter()
            .partition(|i| matches!(i.running, Running::Process { .. }));
        let mut notes = match &self.pods {
            Some(service_pods) if !in_pods.is_empty() && !interrupted => {
                pods::stop(service_pods.as_ref(), &in_pods).await
            }
            _ => Vec::new(),
        };
        notes.extend(stop_processes(processes).await);
        notes
    }
    /// Recomputes `services` from the ready instances: a service started by
    /// an inner step hides an outer one of the same name until it stops.
    fn refresh_variables(&self) {
        let mut by_name: BTreeMap<&str, (&str, Vec<Value>)> = BTreeMap::new();
        for instance in self.running.iter().filter(|i| i.ready) {
            let entry = by_name
                .entry(&instance.name)
                .or_insert_with(|| (&instance.step, Vec::new()));
            if entry.0 != instance.step {
                *entry = (&instance.step, Vec::new());
            }
            entry.1.push(instance.address.clone());
        }
        if let Ok(mut variables) = self.variables.write() {
            *variables = by_name
                .into_iter()
                .map(|(name, (_, addresses))| (name.to_owned(), Value::Array(addresses)))
                .collect();
        }
    }
}

/// Stops local service processes, all at once; notes about those that had
/// exited on their own.
async fn stop_processes(stopping: Vec<Instance>) -> Vec<(String, String)> {
    let mut exited = Vec::new();
    let mut tasks = JoinSet::new();
    for instance in stopping {
        let Running::Process {
            mut process,
            forwarder,
            tail,
        } = instance.running
        else {
            continue;
        };
        if let Some(code) = process.exit_code() {
            exited.push((instance.step, instance.name, instance.index, code, tail));
        }
        tasks.spawn(async move {
            process.stop(STOP_GRACE).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), forwarder).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut notes = Vec::new();
    for (step, name, index, code, tail) in exited {
        let lines = tail.final_lines().await;
        notes.push((
            step,
            format!(
                "service `{name}` instance {index} had exited with code {code} before it \
                 was stopped{lines}\n"
            ),
        ));
    }
    notes
}

impl StepRunner {
    /// `StartServices`: starts `services` and waits until all are ready.
    pub(super) async fn start_services(
        &mut self,
        step: &PlanStep,
        services: &[PlanService],
    ) -> OperationEnd {
        if let Some(service_pods) = self.services.pods.clone() {
            return self.start_service_pods(step, services, service_pods).await;
        }
        let mut checks = Vec::new();
        let first = self.services.running.len();
        for service in services {
            if let Err(message) = self.start_service(step, service, &mut checks).await {
                return OperationEnd::failed(message);
            }
        }
        let mut waiting = JoinSet::new();
        for check in checks {
            waiting.spawn(wait_ready(check));
        }
        let mut stop = self.stop_signal();
        loop {
            tokio::select! {
                joined = waiting.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(note))) => self.log(&step.id, note).await,
                    Some(Ok(Err(message))) => return OperationEnd::failed(message),
                    Some(Err(err)) => {
                        return OperationEnd::failed(format!("waiting for services failed: {err}"));
                    }
                },
                fired = stop.fired() => return stopped(fired),
            }
        }
        for instance in &mut self.services.running[first..] {
            instance.ready = true;
        }
        self.services.refresh_variables();
        OperationEnd::passed()
    }

    /// Starts the instances of one service.
    async fn start_service(
        &mut self,
        step: &PlanStep,
        service: &PlanService,
        checks: &mut Vec<ReadyCheck>,
    ) -> Result<(), String> {
        let name = &service.name;
        let ServiceSettings {
            logs,
            timeout,
            probe,
        } = self.service_settings(service)?;
        if let Some(content) = &service.content {
            // The service shares the worker's workspace: its content is
            // fetched into it as a step's would be.
            let end = self.content(step, content).await;
            if end.status != StepStatus::Passed {
                let why = end.message.unwrap_or_else(|| end.status.to_string());
                return Err(format!("services.{name}.content: {why}"));
            }
        }
        for instance in &service.instances {
            let label = format!("service `{name}` instance {}", instance.index);
            let (process, probe) = {
                // The instance's env, for its process and its probe alike.
                let env = self.env_of(&instance.container.env);
                let process = instance_argv(instance)
                    .and_then(|argv| self.process_in(&env, &instance.container, argv))
                    .map_err(|err| format!("{label}: {err}"))?;
                // The probe is written once for all instances: instance
                // variables (`index`, `matrix.*`...) are filled in here.
                let probe = match &probe {
                    None => None,
                    Some(value) => {
                        let context = InstanceContext::new(service, instance, &env);
                        let render = |text: &str| render_with(text, &context);
                        let probe = Probe::parse(value, render);
                        Some(probe.map_err(|err| format!("{label}: {err}"))?)
                    }
                };
                (process, probe)
            };
            let log_id = log_step_id(&step.id, name, instance.index);
            let (output, tail, forwarder) = log_pipe(log_id, logs, self.events.clone());
            let background = self
                .launcher
                .spawn(process.clone(), output.clone())
                .await
                .map_err(|err| format!("cannot start {label}: {err}"))?;
            let background = if matches!(
                service.restart_policy,
                Some(ServiceRestartPolicy::OnFailure)
            ) {
                supervise(Supervised {
                    first: background,
                    launcher: Arc::clone(&self.launcher),
                    process: process.clone(),
                    output,
                    label: label.clone(),
                    step: step.id.clone(),
                    events: self.events.clone(),
                })
            } else {
                background
            };
            checks.push(ReadyCheck {
                label,
                probe,
                process: Process {
                    limits: Limits::default(),
                    ..process
                },
                exit: background.exit_watch(),
                tail: tail.clone(),
                timeout,
                step: step.id.clone(),
                events: self.events.clone(),
                launcher: Arc::clone(&self.launcher),
                stop: self.stop_signal(),
            });
            self.services.running.push(Instance {
                step: step.id.clone(),
                name: name.clone(),
                index: instance.index,
                address: address(SERVICE_HOST, instance),
                ready: false,
                running: Running::Process {
                    process: background,
                    forwarder,
                    tail,
                },
            });
        }
        Ok(())
    }

    /// What the instances of `service` share: `logs`, `timeout` and the
    /// probe as written.
    fn service_settings(&self, service: &PlanService) -> Result<ServiceSettings, String> {
        let name = &service.name;
        let logs = match &service.logs {
            None => false,
            Some(expression) => self
                .decide(expression)
                .map_err(|err| format!("services.{name}.logs: {err}"))?,
        };
        let timeout = match &service.timeout {
            None => DEFAULT_READY_TIMEOUT,
            Some(text) => FormatDuration(text.clone())
                .parse()
                .map_err(|err| format!("services.{name}.timeout `{text}`: {err}"))?,
        };
        let probe = match &service.readiness_probe {
            None => None,
            Some(probe) => Some(
                serde_json::to_value(probe)
                    .map_err(|err| format!("services.{name}.readinessProbe: {err}"))?,
            ),
        };
        Ok(ServiceSettings {
            logs,
            timeout,
            probe,
        })
    }

    /// `StopServices`: stops the named services of `step`.
    pub(super) async fn stop_services(
        &mut self,
        step: &PlanStep,
        names: &[String],
    ) -> OperationEnd {
        let interrupted = self.interrupted();
        let notes = self
            .services
            .stop_where(
                |i| i.step == step.id && names.contains(&i.name),
                interrupted,
            )
            .await;
        self.log_notes(notes).await;
        OperationEnd::passed()
    }

    /// Stops every service that `step` started (at the end of its attempt).
    pub(super) async fn stop_step_services(&mut self, step: &str) {
        if self.services.running.iter().any(|i| i.step == step) {
            let interrupted = self.interrupted();
            let notes = self
                .services
                .stop_where(|i| i.step == step, interrupted)
                .await;
            self.log_notes(notes).await;
        }
    }

    /// Stops every service (when the worker ends).
    pub(super) async fn stop_all_services(&mut self) {
        let interrupted = self.interrupted();
        let notes = self.services.stop_where(|_| true, interrupted).await;
        self.log_notes(notes).await;
    }

    /// Whether the worker is being stopped from outside.
    fn interrupted(&self) -> bool {
        self.interrupt.borrow().is_some()
    }

    async fn log_notes(&self, notes: Vec<(String, String)>) {
        for (step, note) in notes {
            self.log(&step, note).await;
        }
    }

    /// Whether an expression (like `logs`) is true now.
    fn decide(&self, expression: &str) -> Result<bool, String> {
        let scope = self.step_scope();
        let value = scope
            .checked(Expr::parse(expression).and_then(|expr| expr.resolve(&scope)))
            .map_err(|err| format!("cannot evaluate `{expression}`: {err}"))?;
        Ok(truthy(&value))
    }
}

/// The `services.<name>[index]` value of an instance reached at `ip`.
fn address(ip: &str, instance: &PlanServiceInstance) -> Value {
    json!({
        "ip": ip,
        "description": instance.description.clone().unwrap_or_default(),
    })
}

/// The command of a service instance.
fn instance_argv(instance: &PlanServiceInstance) -> Result<Vec<String>, String> {
    if let Some(script) = &instance.shell {
        return Ok(shell_argv(script));
    }
    let container = &instance.container;
    let mut argv = container.command.clone().unwrap_or_default();
    argv.extend(container.args.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err("it has no `command` or `shell`: images are not pulled \
                    locally, so their default command is unknown"
            .to_owned());
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkube_core::status::StatusContext;

    #[test]
    fn instance_variables_hide_the_workers_own() {
        let service: PlanService = serde_json::from_value(json!({
            "name": "web",
            "container": {},
            "counts": {"shardCount": 1, "matrixCount": 2, "count": 2},
            "instances": [{
                "index": 1, "shardIndex": 0, "matrixIndex": 1,
                "matrix": {"offset": 1}, "shard": {}, "container": {}
            }]
        }))
        .unwrap();
        let worker = MapContext::new()
            .with("matrix.offset", json!(9))
            .with("config", json!({"port": 8000}));
        let status = StatusContext::new().with_parent(Arc::new(worker));
        let context = InstanceContext::new(&service, &service.instances[0], &status);
        let render = |text: &str| render_with(text, &context);
        assert_eq!(
            render("{{ config.port + matrix.offset }}").as_deref(),
            Ok("8001")
        );
        assert_eq!(render("{{ index }}/{{ count }}").as_deref(), Ok("1/2"));
    }

    #[test]
    fn services_are_a_variable_once_known() {
        let services = Services::default();
        let context = services.context(MapContext::new().with("services", json!("outer")));
        assert_eq!(context.variable("services"), Some(json!("outer")));
        if let Ok(mut known) = services.variables.write() {
            known.insert(
                "db".into(),
                json!([{"ip": SERVICE_HOST, "description": ""}]),
            );
        }
        let value = render_with("{{ services.db.0.ip }}", &context);
        assert_eq!(value.as_deref(), Ok(SERVICE_HOST));
    }

    #[test]
    fn log_steps_cannot_clash_with_step_ids() {
        assert_eq!(log_step_id("api", "db", 0), "api.services.db.0");
    }
}
