//! `testkube run`: runs a workflow on this machine with the engine and the
//! local executor, records it in the result store, shows its progress
//! ([`crate::live`]) and ends with a summary (or the summary as JSON with
//! `-o json`) and the exit code: 0 passed, 1 failed or aborted, 2 invalid
//! input or unsupported. Ctrl-C aborts the run.
//!
//! Also home of what `run` and `rerun` share ([`Launch`]): `rerun` only
//! finds the workflow, config and tags in the store instead of a file.
//!
//! Before anything is recorded the run is checked (`Engine::check`), so a
//! refused workflow uses no execution number. The planner gets the
//! durations the store recorded for the workflow's test items, so
//! `balance: {by: duration}` blocks split by history. `secret(name, key)`
//! is answered from the environment or a secrets file (see
//! [`crate::input::SecretSource`]) and every value is masked.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testkube_core::engine::mask::SecretMasker;
use testkube_core::engine::{Engine, EngineError, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::model::TestWorkflow;
use testkube_core::plan::{Operation, PlanOptions, PlanStep, plan_workflow};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{NewExecution, ResultStore, StoreError, TestCaseRecord};
use testkube_results::store::{EventRecorder, SqliteStore};

use super::children::StoredChildren;
use super::render::{Sensitive, plural, resolve};
use super::rerun::FailedOnly;
use super::{CliError, print_json};
use crate::cli::{RunArgs, RunOptions, TextOutput};
use crate::input::{self, SecretSource};
use crate::live::View;
use crate::style::{self, paint};
use crate::timings::{History, history_key};

mod secrets;
mod summary;

use secrets::inline_secrets;
use summary::print_summary;

pub(crate) fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let resolved = resolve(&args.workflow, Sensitive::Used)?;
    let passed = input::key_values(&args.workflow.config, "--config")?;
    let workflow = resolved.workflow().clone();
    let launch = Launch {
        // The real values of sensitive parameters: masked in every event.
        secrets: testkube_core::engine::mask::sensitive_config_values(
            &workflow.spec.config,
            passed,
        ),
        config: resolved
            .config()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        tags: BTreeMap::new(),
        source: args.workflow.file.display().to_string(),
        workflow,
        failed_only: None,
        catalog: Catalog {
            files: vec![args.workflow.file.clone()],
            templates: args.workflow.templates.clone(),
        },
    };
    launch.run(&args.run)
}

/// A resolved workflow about to run, from a file (`run`) or from a stored
/// execution (`rerun`).
pub(crate) struct Launch {
    /// The resolved workflow; `secret()` calls are still in it.
    pub(crate) workflow: TestWorkflow,
    /// Where it came from, for messages (a file, or `execution X`).
    pub(crate) source: String,
    /// The resolved config values (`config.*`).
    pub(crate) config: BTreeMap<String, Value>,
    /// Values to mask (sensitive config values).
    pub(crate) secrets: Vec<String>,
    /// Tags; `--tag` adds to them.
    pub(crate) tags: BTreeMap<String, String>,
    /// Leave out the parallel workers that passed before (`rerun --failed-only`).
    pub(crate) failed_only: Option<FailedOnly>,
    /// Where `execute` steps find workflows (besides `--workflows`).
    pub(crate) catalog: Catalog,
}

/// Files and folders whose workflows `execute` steps may run, and the
/// templates to resolve them with.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub(crate) files: Vec<std::path::PathBuf>,
    pub(crate) templates: Vec<std::path::PathBuf>,
}

impl Launch {
    /// Runs it to the end: record, progress, summary, `--junit`, exit code.
    pub(crate) fn run(mut self, options: &RunOptions) -> Result<ExitCode, CliError> {
        for (key, value) in input::key_values(&options.tags, "--tag")? {
            self.tags.insert(key, value);
        }
        if let Some(path) = &options.junit {
            crate::junit_out::prepare(path)?;
        }
        let source = SecretSource::load(
            options.secrets.as_deref(),
            &crate::home::dir().join("secrets.yaml"),
        )?;
        let (runnable, secret_values) = inline_secrets(&self.workflow, &source)?;
        self.secrets.extend(secret_values);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?;
        let outcome = runtime.block_on(self.execute(runnable, options))?;
        let summary = &outcome.summary;
        let junit = options.junit.as_ref().map(|path| {
            let duration = Duration::from_millis(summary.duration_ms);
            crate::junit_out::write(path, &summary.name, duration, &outcome.cases).map(|()| path)
        });
        if options.output == TextOutput::Json {
            print_json(summary)?;
        } else {
            print_summary(&outcome);
        }
        if let Some(junit) = junit {
            let path = junit?;
            let text = format!(
                "{} {} test {} written to {}",
                paint(style::DIM, "junit:"),
                outcome.cases.len(),
                plural(outcome.cases.len(), "result", "results"),
                path.display()
            );
            if options.output == TextOutput::Json {
                anstream::eprintln!("{text}");
            } else {
                style::outln!("{text}");
            }
        }
        Ok(if summary.status.is_passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    async fn execute(
        self,
        runnable: TestWorkflow,
        options: &RunOptions,
    ) -> Result<Outcome, CliError> {
        // Refused first when no sandbox can work here: nothing planned or read.
        let executor = crate::sandbox::local_executor()?;
        let workflow_name = history_key(&runnable);
        let store = open_store().await;
        // `--failed-only` plans with the durations its first run used.
        let history = match (&store, &self.failed_only) {
            (Some(store), None) => History::load(store.as_ref(), &workflow_name).await,
            _ => History::empty(),
        };
        let recorded = history.recorded();
        // The durations the split uses are kept with the run, so that
        // `rerun --failed-only` plans the same shards.
        let used: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let plan_options = match &self.failed_only {
            Some(failed_only) if !failed_only.durations().is_empty() => {
                *lock(&used) = failed_only.durations().clone();
                PlanOptions::new().with_duration_map(failed_only.durations().clone())
            }
            Some(_) => PlanOptions::new(),
            None => history.plan_options(&used),
        };
        let mut plan = plan_workflow(&runnable, &plan_options).map_err(|err| {
            for diagnostic in &err.diagnostics {
                let diagnostic = diagnostic.clone().with_file(self.source.clone());
                anstream::eprintln!("{}", diagnostic.render(None));
            }
            CliError::usage(format!("cannot plan workflow `{workflow_name}`"))
                .with_hint("fix the problems above")
        })?;
        let notes = match &self.failed_only {
            Some(failed_only) => failed_only.apply(&mut plan),
            None => balance_notes(&plan.root, recorded),
        };
        drop(plan_options);
        let used = std::mem::take(&mut *lock(&used));

        let mut engine = Engine::new(Arc::new(executor.clone()));
        // Child workflows are only looked for (files read and parsed again)
        // when a step runs `execute`.
        if plan
            .root
            .any_operation(&|operation| matches!(operation, Operation::Execute(_)))
        {
            let mut files = self.catalog.files.clone();
            files.extend(options.workflows.iter().cloned());
            let children = StoredChildren::load(&files, &self.catalog.templates, store.clone())?;
            engine = engine.with_children(Arc::new(children));
        }
        // Refused before anything is recorded: no number used, no record left.
        engine.check(&plan).map_err(engine_error)?;

        let mut request = ExecutionRequest {
            id: execution_id(&plan.workflow),
            config: self.config.clone(),
            tags: self.tags.clone(),
            labels: runnable.metadata.labels.clone().unwrap_or_default(),
            secrets: self.secrets.clone(),
            ..ExecutionRequest::new("")
        };
        let mut recorder = match store {
            Some(store) => self.record(store, &plan.workflow, &mut request, used).await,
            None => None,
        };
        let live = options.output != TextOutput::Json && std::io::stdout().is_terminal();
        let mut view = if live {
            View::live(options.logs, &plan)
        } else {
            View::lines(options.logs, options.output == TextOutput::Json)
        };
        for note in &notes {
            view.note(&format!("{} {note}", paint(style::DIM, "note:")));
        }
        let execution_id = request.id.clone();
        let execution_name = if request.name.is_empty() {
            execution_id.clone()
        } else {
            request.name.clone()
        };
        let mut running = match engine.start(plan, request) {
            Ok(running) => running,
            Err(err) => {
                if let Some(recorder) = &recorder
                    && let Err(store_err) = recorder
                        .finish(ExecutionStatus::Failed, Some(err.to_string()))
                        .await
                {
                    store_warning(&store_err, "this run is not recorded");
                }
                return Err(engine_error(err));
            }
        };
        let canceller = running.canceller();
        let mut resumer = Resumer::default();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                anstream::eprintln!("{}", paint(style::WARN, "aborting (Ctrl-C)..."));
                canceller.abort();
            }
        });
        let mut cases = Vec::new();
        let mut artifacts = 0usize;
        while let Some(event) = running.next_event().await {
            if let Some(active) = recorder.as_mut()
                && let Err(err) = active.record(&event).await
            {
                store_warning(&err, "the rest of this run is not recorded");
                recorder = None;
            }
            match event {
                Event::Finished(summary) => {
                    view.finish();
                    if let Some(recorder) = &recorder
                        && let Err(err) = recorder.flush().await
                    {
                        store_warning(&err, "some logs of this run are not recorded");
                    }
                    return Ok(Outcome {
                        artifacts_dir: executor.artifacts_location(&summary.id).into(),
                        summary: *summary,
                        cases,
                        artifacts,
                        recorded: recorder.is_some(),
                    });
                }
                Event::TestCases {
                    cases: ref found, ..
                } => {
                    cases.extend(found.iter().cloned());
                    view.show(&event);
                }
                Event::Artifact { .. } => {
                    artifacts += 1;
                    view.show(&event);
                }
                Event::Execution {
                    status: ExecutionStatus::Paused,
                    ..
                } => {
                    view.show(&event);
                    resumer.start(running.canceller(), &execution_id);
                    view.note(&format!(
                        "{} a step waits (`paused: true`): {}`{}` resumes it",
                        paint(style::WARN, "paused:"),
                        if resumer.interactive {
                            "press Enter, or "
                        } else {
                            ""
                        },
                        crate::home::command(&format!("resume {execution_name}")),
                    ));
                }
                event => view.show(&event),
            }
        }
        view.finish();
        Err(CliError::input("the run ended without a result"))
    }

    /// Records the execution (numbering it) with what a rerun needs: the
    /// resolved workflow and config, secrets masked (the store is a plain
    /// file). A store that fails is a warning: the run itself still happens.
    async fn record(
        &self,
        store: Arc<dyn ResultStore>,
        workflow: &str,
        request: &mut ExecutionRequest,
        durations: BTreeMap<String, f64>,
    ) -> Option<EventRecorder> {
        let mut snapshot = serde_json::to_value(&self.workflow).unwrap_or_default();
        if !durations.is_empty()
            && let Some(map) = snapshot.as_object_mut()
        {
            map.insert(DURATIONS_KEY.to_owned(), serde_json::json!(durations));
        }
        let mut config = Value::Object(
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
            Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        let new = NewExecution {
            id: request.id.clone(),
            workflow: workflow.to_owned(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: SystemTime::now().into(),
            snapshot,
            config,
            tags: request.tags.clone(),
        };
        match store.create_execution(new).await {
            Ok(record) => {
                request.number = record.number;
                request.name = record.name;
                Some(EventRecorder::new(store, record.id))
            }
            Err(err) => {
                store_warning(&err, "this run is not recorded");
                None
            }
        }
    }
}

/// The key of the stored snapshot that holds the item durations the run's
/// shards were split with (item → seconds); not part of the workflow.
pub(crate) const DURATIONS_KEY: &str = "x-testkube-durations";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resumes paused steps on request: Enter in the terminal, or
/// `testkube resume ID` from elsewhere (it leaves a file this watches).
#[derive(Default)]
struct Resumer {
    started: bool,
    interactive: bool,
}

impl Resumer {
    /// Starts listening (once per run).
    fn start(&mut self, canceller: testkube_core::engine::Canceller, execution_id: &str) {
        if self.started {
            return;
        }
        self.started = true;
        self.interactive = std::io::stdin().is_terminal();
        let file = super::resume::resume_file(execution_id);
        let by_file = canceller.clone();
        tokio::spawn(async move {
            loop {
                if std::fs::remove_file(&file).is_ok() {
                    by_file.resume();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        if self.interactive {
            // A blocking read of the terminal; it ends with the process.
            std::thread::spawn(move || {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                    canceller.resume();
                    line.clear();
                }
            });
        }
    }
}

/// What a finished run leaves for the summary and `--junit`.
pub(super) struct Outcome {
    summary: ExecutionSummary,
    /// Every test case the run's reports held.
    cases: Vec<TestCaseRecord>,
    /// How many files were kept as artifacts.
    artifacts: usize,
    /// Where the executor keeps them.
    artifacts_dir: std::path::PathBuf,
    /// Whether the store has the run.
    recorded: bool,
}

/// Opens the store and marks runs a killed process left unfinished as
/// aborted; `None` (with a warning) when it cannot be used.
pub(crate) async fn open_store() -> Option<Arc<dyn ResultStore>> {
    let store: Arc<dyn ResultStore> = match SqliteStore::open(&crate::home::database()).await {
        Ok(store) => Arc::new(store),
        Err(err) => {
            store_warning(&err, "this run is not recorded");
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
        Err(err) => store_warning(&err, "abandoned runs were not checked"),
    }
    Some(store)
}

fn engine_error(err: EngineError) -> CliError {
    match err {
        EngineError::Unsupported(features) => {
            let list: Vec<String> = features.iter().map(ToString::to_string).collect();
            CliError::usage(list.join("\n"))
                .with_hint("this feature does not run locally yet; see `testkube plan FILE`")
        }
        other => CliError::input(format!("cannot start the run: {other}")),
    }
}

/// A unique, sortable id: `<workflow>-<unix millis>-<pid>`.
pub(crate) fn execution_id(workflow: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let name = if workflow.is_empty() { "run" } else { workflow };
    format!("{name}-{millis}-{}", std::process::id())
}

/// Replaces secrets in every string of `value`.
fn mask_strings(value: &mut Value, masker: &SecretMasker) {
    match value {
        Value::String(text) => *text = masker.mask_string(std::mem::take(text)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, masker)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, masker)),
        _ => {}
    }
}

fn store_warning(err: &StoreError, consequence: &str) {
    anstream::eprintln!("{} {err}; {consequence}", paint(style::WARN, "warning:"));
}

/// One line per `balance: {by: duration}` block: how its shards were split.
fn balance_notes(step: &PlanStep, recorded: usize) -> Vec<String> {
    let mut notes = Vec::new();
    visit_parallel(step, &mut |step, block| {
        let Some(balance) = &block.balance else {
            return;
        };
        let label = step.name.as_deref().unwrap_or(&step.id);
        if balance.method == "balanced" {
            notes.push(format!(
                "`{label}`: shards split by {} recorded {} ({} {} without history; {} in the store)",
                balance.known_items,
                plural(balance.known_items, "duration", "durations"),
                balance.defaulted_items,
                plural(balance.defaulted_items, "item", "items"),
                recorded
            ));
        } else if recorded == 0 {
            notes.push(format!(
                "`{label}`: no recorded durations yet, shards split evenly; the next run balances on this run's test reports"
            ));
        } else {
            notes.push(format!(
                "`{label}`: none of the {recorded} recorded durations matches a `{}` item, shards split evenly",
                balance.key
            ));
        }
    });
    notes
}

/// Calls `f` for every parallel block under `step` (workers included).
pub(crate) fn visit_parallel(
    step: &PlanStep,
    f: &mut dyn FnMut(&PlanStep, &testkube_core::plan::PlanParallel),
) {
    for operation in &step.operations {
        match operation {
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    visit_parallel(child, f);
                }
            }
            Operation::Parallel(block) => {
                f(step, block);
                for worker in &block.workers {
                    visit_parallel(&worker.root, f);
                }
            }
            _ => {}
        }
    }
}
