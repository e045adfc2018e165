//! `testkube run`: runs a workflow on this machine with the engine and the
//! local executor, prints one line per step status change (the same in a
//! terminal and in CI logs), the steps' output with `--logs`, and a final
//! summary (or the summary as JSON with `-o json`). Ctrl-C aborts the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use testkube_core::engine::mask::SecretMasker;
use testkube_core::engine::{
    Engine, EngineError, Event, ExecutionRequest, ExecutionSummary, StepDetail, StepRef, WorkerId,
};
use testkube_core::plan::{PlanOptions, plan_workflow};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{NewExecution, ResultStore, StoreError};
use testkube_executors::LocalExecutor;
use testkube_results::store::{EventRecorder, SqliteStore};

use super::render::{Sensitive, resolve};
use super::{CliError, print_json};
use crate::cli::{RunArgs, TextOutput};
use crate::style::{self, paint};

pub(crate) fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let resolved = resolve(&args.workflow, Sensitive::Used)?;
    let plan = plan_workflow(resolved.workflow(), &PlanOptions::new()).map_err(|err| {
        for diagnostic in &err.diagnostics {
            let diagnostic = diagnostic
                .clone()
                .with_file(args.workflow.file.display().to_string());
            anstream::eprintln!("{}", diagnostic.render(None));
        }
        CliError::usage(format!("cannot plan workflow `{}`", plan_name(&resolved)))
            .with_hint("fix the problems above")
    })?;
    let request = ExecutionRequest {
        id: execution_id(&plan.workflow),
        config: resolved
            .config()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        // The real values of sensitive parameters: masked in every event.
        secrets: testkube_core::engine::mask::sensitive_config_values(
            &resolved.workflow().spec.config,
            crate::input::key_values(&args.workflow.config, "--config")?,
        ),
        ..ExecutionRequest::new("")
    };
    let stored = StoredRun::new(resolved.workflow(), &request);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?;
    let summary = runtime.block_on(execute(plan, request, stored, &args))?;
    if args.output == TextOutput::Json {
        print_json(&summary)?;
    } else {
        print_summary(&summary);
    }
    Ok(if summary.status.is_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plan_name(resolved: &testkube_core::ResolvedWorkflow) -> String {
    resolved
        .workflow()
        .metadata
        .name
        .clone()
        .unwrap_or_default()
}

/// A unique, sortable id: `<workflow>-<unix millis>-<pid>`.
fn execution_id(workflow: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let name = if workflow.is_empty() { "run" } else { workflow };
    format!("{name}-{millis}-{}", std::process::id())
}

async fn execute(
    plan: testkube_core::Plan,
    mut request: ExecutionRequest,
    stored: StoredRun,
    args: &RunArgs,
) -> Result<ExecutionSummary, CliError> {
    // The record comes first: it gives the run its number and name (`WF-N`).
    let mut recorder = stored.start(&plan.workflow, &mut request).await;
    let executor = LocalExecutor::new(crate::home::runs());
    let engine = Engine::new(Arc::new(executor));
    let started = engine.start(plan, request);
    if let (Err(err), Some(recorder)) = (&started, &recorder)
        && let Err(err) = recorder
            .finish(ExecutionStatus::Failed, Some(err.to_string()))
            .await
    {
        store_warning(&err);
    }
    let mut running = started.map_err(|err| match err {
        EngineError::Unsupported(features) => {
            let list: Vec<String> = features.iter().map(ToString::to_string).collect();
            CliError::usage(list.join("\n"))
                .with_hint("this feature does not run locally yet; see `testkube plan FILE`")
        }
        other => CliError::input(format!("cannot start the run: {other}")),
    })?;
    let canceller = running.canceller();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            anstream::eprintln!("{}", paint(style::WARN, "aborting (Ctrl-C)..."));
            canceller.abort();
        }
    });
    // Progress goes where it does not mix with JSON.
    let progress = Progress {
        to_stderr: args.output == TextOutput::Json,
        logs: args.logs,
    };
    while let Some(event) = running.next_event().await {
        if let Some(active) = recorder.as_mut()
            && let Err(err) = active.record(&event).await
        {
            store_warning(&err);
            recorder = None;
        }
        match event {
            Event::Finished(summary) => return Ok(*summary),
            event => progress.show(&event),
        }
    }
    Err(CliError::input("the run ended without a result"))
}

/// What the result store keeps about a run besides its events: the resolved
/// workflow and config, with secrets masked (the store is a plain file).
struct StoredRun {
    snapshot: serde_json::Value,
    config: BTreeMap<String, serde_json::Value>,
}

impl StoredRun {
    fn new(workflow: &testkube_core::model::TestWorkflow, request: &ExecutionRequest) -> Self {
        let mut snapshot = serde_json::to_value(workflow).unwrap_or_default();
        let mut config = serde_json::Value::Object(
            request
                .config
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        );
        if let Ok(masker) = SecretMasker::new(&request.secrets) {
            mask_strings(&mut snapshot, &masker);
            mask_strings(&mut config, &masker);
        }
        let config = match config {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        StoredRun { snapshot, config }
    }

    /// Opens the store, marks runs a killed process left unfinished as
    /// aborted, and records this run (numbering it). A store that cannot be
    /// used is a warning: the run itself still happens.
    async fn start(self, workflow: &str, request: &mut ExecutionRequest) -> Option<EventRecorder> {
        let store: Arc<dyn ResultStore> = match SqliteStore::open(&crate::home::database()).await {
            Ok(store) => Arc::new(store),
            Err(err) => {
                store_warning(&err);
                return None;
            }
        };
        match store.recover_abandoned().await {
            Ok(ids) if !ids.is_empty() => anstream::eprintln!(
                "{} marked {} abandoned execution(s) as aborted: {}",
                paint(style::DIM, "note:"),
                ids.len(),
                ids.join(", ")
            ),
            Ok(_) => {}
            Err(err) => store_warning(&err),
        }
        let new = NewExecution {
            id: request.id.clone(),
            workflow: if workflow.is_empty() { "run" } else { workflow }.to_owned(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: SystemTime::now().into(),
            snapshot: self.snapshot,
            config: self.config,
            tags: request.tags.clone(),
        };
        match store.create_execution(new).await {
            Ok(record) => {
                request.number = record.number;
                request.name = record.name;
                Some(EventRecorder::new(store, record.id))
            }
            Err(err) => {
                store_warning(&err);
                None
            }
        }
    }
}

/// Replaces secrets in every string of `value`.
fn mask_strings(value: &mut serde_json::Value, masker: &SecretMasker) {
    match value {
        serde_json::Value::String(text) => *text = masker.mask_string(std::mem::take(text)),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, masker)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, masker)),
        _ => {}
    }
}

fn store_warning(err: &StoreError) {
    anstream::eprintln!(
        "{} {err}; this run is not recorded",
        paint(style::WARN, "warning:")
    );
}

/// One quiet line per step status change, notices, and logs on request.
struct Progress {
    to_stderr: bool,
    logs: bool,
}

impl Progress {
    fn show(&self, event: &Event) {
        match event {
            Event::Step {
                worker,
                step,
                status,
                detail,
                ..
            } if step.depth > 0 => self.line(&step_line(worker, step, *status, detail)),
            Event::Worker {
                worker,
                status,
                description,
            } if worker.number > 0 => {
                let about = description
                    .as_deref()
                    .map(|d| format!("  {}", paint(style::DIM, d)))
                    .unwrap_or_default();
                self.line(&format!("{} worker {worker}{about}", status_word(*status)));
            }
            Event::Notice { message, .. } => {
                self.line(&format!("{} {message}", paint(style::DIM, "note:")));
            }
            Event::Log { worker, chunk, .. } if self.logs => {
                let text = String::from_utf8_lossy(chunk);
                let prefix = paint(style::DIM, format!("{worker} |"));
                let mut out = String::new();
                for line in text.lines() {
                    let _ = writeln!(out, "{prefix} {line}");
                }
                self.write(&out);
            }
            _ => {}
        }
    }

    fn line(&self, text: &str) {
        self.write(&format!("{text}\n"));
    }

    fn write(&self, text: &str) {
        if self.to_stderr {
            anstream::eprint!("{text}");
        } else {
            style::out(text);
        }
    }
}

fn step_line(worker: &WorkerId, step: &StepRef, status: StepStatus, detail: &StepDetail) -> String {
    let place = if worker.number == 0 {
        String::new()
    } else {
        paint(style::DIM, format!("[{worker}] "))
    };
    let indent = "  ".repeat(step.depth.saturating_sub(1));
    let mut extra = Vec::new();
    if status == StepStatus::Running && detail.attempt > 1 {
        extra.push(format!("attempt {}", detail.attempt));
    }
    if status.is_finished()
        && let Some(message) = &detail.message
    {
        extra.push(message.clone());
    }
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("  {}", paint(style::DIM, extra.join(", ")))
    };
    format!(
        "{} {place}{indent}{}{extra}",
        status_word(status),
        step.label()
    )
}

/// The status as a fixed-width, coloured word.
fn status_word(status: StepStatus) -> String {
    let colour = match status {
        StepStatus::Passed => style::OK,
        StepStatus::Running => style::ACCENT,
        status if status.is_failure() => style::ERROR,
        _ => style::DIM,
    };
    paint(colour, format!("{:<8}", status.as_str()))
}

fn print_summary(summary: &ExecutionSummary) {
    let mut out = String::new();
    let verdict = match summary.status {
        status if status.is_passed() => paint(style::OK, status.as_str()),
        status => paint(style::ERROR, status.as_str()),
    };
    let _ = writeln!(
        out,
        "\n{} {} {verdict} in {}",
        paint(style::BOLD, "execution"),
        summary.name,
        seconds(summary.duration_ms)
    );
    if let Some(message) = &summary.message {
        let _ = writeln!(out, "  {message}");
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for worker in &summary.workers {
        if worker.id != "root" {
            let _ = writeln!(out, "  {} worker {}", status_word(worker.status), worker.id);
        }
        for step in worker.steps.iter().filter(|s| s.depth > 0) {
            *counts.entry(step.status.as_str()).or_default() += 1;
            let time = step.duration_ms.map(seconds).unwrap_or_default();
            let exit = match step.exit_code {
                Some(code) if code != 0 => format!("  exit {code}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {}{} {}  {}{exit}",
                "  ".repeat(step.depth),
                status_word(step.status),
                step.name.as_deref().unwrap_or(&step.id),
                paint(style::DIM, time)
            );
        }
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let _ = writeln!(out, "  steps: {}", counts.join(", "));
    style::out(&out);
}

fn seconds(millis: u64) -> String {
    format!("{:.1}s", millis as f64 / 1000.0)
}
