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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testkube_core::engine::mask::SecretMasker;
use testkube_core::engine::{
    Engine, EngineError, Event, ExecutionRequest, ExecutionSummary, WorkerSummary,
};
use testkube_core::expr::{Context, Template};
use testkube_core::model::TestWorkflow;
use testkube_core::plan::{Operation, PlanOptions, PlanStep, plan_workflow};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{NewExecution, ResultStore, StoreError, TestCaseRecord, TestCaseStatus};
use testkube_results::store::{EventRecorder, SqliteStore};

use super::children::StoredChildren;
use super::render::{Sensitive, plural, resolve};
use super::rerun::FailedOnly;
use super::{CliError, print_json};
use crate::cli::{RunArgs, RunOptions, TextOutput};
use crate::input::{self, SecretSource};
use crate::live::{View, seconds, status_word};
use crate::style::{self, paint};
use crate::timings::{History, history_key};

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
        let workflow_name = history_key(&runnable);
        let store = open_store().await;
        let history = match &store {
            Some(store) => History::load(store.as_ref(), &workflow_name).await,
            None => History::empty(),
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

        let executor = crate::sandbox::local_executor()?;
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
                        artifacts_dir: executor.artifacts_dir(&summary.id),
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
struct Outcome {
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

/// The workflow with every `secret(name, key)` in its `{{ }}` templates
/// replaced by the value from `source`, and the values used (to mask).
///
/// Done before planning, so the plan, the executor and the step runner see
/// plain values; the stored snapshot keeps the calls, so no secret value is
/// ever written to the store and a rerun reads them again.
fn inline_secrets(
    workflow: &TestWorkflow,
    source: &SecretSource,
) -> Result<(TestWorkflow, Vec<String>), CliError> {
    let mut value = serde_json::to_value(workflow)
        .map_err(|err| CliError::input(format!("internal error: {err}")))?;
    let lookup = SecretLookup {
        source,
        used: RefCell::new(Vec::new()),
        missing: RefCell::new(None),
    };
    let mut changed = false;
    inline_in(&mut value, &lookup, &mut changed)?;
    if !changed {
        return Ok((workflow.clone(), Vec::new()));
    }
    let workflow = serde_json::from_value(value)
        .map_err(|err| CliError::input(format!("internal error: {err}")))?;
    Ok((workflow, lookup.used.into_inner()))
}

fn inline_in(
    value: &mut Value,
    lookup: &SecretLookup<'_>,
    changed: &mut bool,
) -> Result<(), CliError> {
    match value {
        Value::String(text) if text.contains("{{") && text.contains("secret(") => {
            // Anything the templates do not parse was refused by resolution
            // already; leave it to the planner's messages.
            let Ok(template) = Template::parse(text) else {
                return Ok(());
            };
            match template.evaluate(lookup) {
                Ok(done) => {
                    let rendered = done.as_string().unwrap_or_else(|| done.to_string());
                    if rendered != *text {
                        *text = rendered;
                        *changed = true;
                    }
                    Ok(())
                }
                Err(err) => match lookup.missing.borrow_mut().take() {
                    Some((name, key)) => Err(lookup.source.missing(&name, &key)),
                    None => Err(CliError::usage(format!("cannot use a secret: {err}"))
                        .with_hint("secret() takes two texts: secret(\"name\", \"key\")")),
                },
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| inline_in(item, lookup, changed)),
        Value::Object(map) => {
            secret_refs(map, lookup, changed)?;
            map.values_mut()
                .try_for_each(|item| inline_in(item, lookup, changed))
        }
        _ => Ok(()),
    }
}

/// Kubernetes references to Secrets in a container's `env` and `envFrom`,
/// answered from the local secrets source as a pod's kubelet would:
/// `env[].valueFrom.secretKeyRef {name, key}` becomes the value, and
/// `envFrom[].secretRef {name}` one variable per key (with `prefix`).
/// Missing secrets stop the run unless the reference is `optional`.
/// References to ConfigMaps and fields stay (the executor refuses them).
fn secret_refs(
    map: &mut serde_json::Map<String, Value>,
    lookup: &SecretLookup<'_>,
    changed: &mut bool,
) -> Result<(), CliError> {
    let text =
        |value: &Value, field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    let optional = |value: &Value| value.get("optional").and_then(Value::as_bool) == Some(true);
    let mut added: Vec<Value> = Vec::new();
    if let Some(Value::Array(sources)) = map.get_mut("envFrom") {
        let mut kept = Vec::new();
        for source in sources.drain(..) {
            let Some(reference) = source.get("secretRef") else {
                kept.push(source);
                continue;
            };
            let name = text(reference, "name").unwrap_or_default();
            let prefix = text(&source, "prefix").unwrap_or_default();
            match lookup.source.keys(&name) {
                Some(keys) => {
                    for (key, value) in keys {
                        lookup.used.borrow_mut().push(value.clone());
                        added.push(
                            serde_json::json!({"name": format!("{prefix}{key}"), "value": value}),
                        );
                    }
                }
                None if optional(reference) => {}
                None => {
                    return Err(CliError::usage(format!(
                        "envFrom uses secret `{name}`, which is not set"
                    ))
                    .with_hint(format!(
                        "set variables {}KEY=VALUE or add `{name}: {{KEY: VALUE}}` to the secrets file (--secrets FILE)",
                        SecretSource::env_var(&name, "")
                    )));
                }
            }
            *changed = true;
        }
        *sources = kept;
    }
    if map
        .get("envFrom")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        map.remove("envFrom");
    }
    if !added.is_empty() {
        // Variables of `env` win over those from `envFrom`, as in a pod.
        let env = map.entry("env").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(env) = env {
            let set: Vec<String> = env.iter().filter_map(|var| text(var, "name")).collect();
            let mut merged: Vec<Value> = added
                .into_iter()
                .filter(|var| text(var, "name").is_some_and(|name| !set.contains(&name)))
                .collect();
            merged.append(env);
            *env = merged;
        }
    }
    if let Some(Value::Array(env)) = map.get_mut("env") {
        for var in env.iter_mut() {
            let Some(reference) = var
                .get("valueFrom")
                .and_then(|from| from.get("secretKeyRef"))
            else {
                continue;
            };
            let (name, key) = (
                text(reference, "name").unwrap_or_default(),
                text(reference, "key").unwrap_or_default(),
            );
            let value = match lookup.source.get(&name, &key) {
                Some(value) => value,
                None if optional(reference) => String::new(),
                None => return Err(lookup.source.missing(&name, &key)),
            };
            lookup.used.borrow_mut().push(value.clone());
            if let Some(var) = var.as_object_mut() {
                var.remove("valueFrom");
                var.insert("value".to_owned(), Value::String(value));
            }
            *changed = true;
        }
    }
    Ok(())
}

/// A context that knows secrets only: everything else stays for later.
struct SecretLookup<'a> {
    source: &'a SecretSource,
    used: RefCell<Vec<String>>,
    missing: RefCell<Option<(String, String)>>,
}

impl Context for SecretLookup<'_> {
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        match self.source.get(name, key) {
            Some(value) => {
                self.used.borrow_mut().push(value.clone());
                Some(Ok(value))
            }
            None => {
                *self.missing.borrow_mut() = Some((name.to_owned(), key.to_owned()));
                Some(Err(format!("secret {name}/{key} is not set")))
            }
        }
    }
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

/// The steps of `worker` (only the failed ones with `failed_only`), each
/// parallel block summed up under its step. `counts` gets the status of every
/// step line written, so the summary's totals are the lines it shows.
fn write_steps(
    out: &mut String,
    counts: &mut BTreeMap<&'static str, usize>,
    workers: &[WorkerSummary],
    worker: &WorkerSummary,
    indent: usize,
    failed_only: bool,
) {
    for step in worker.steps.iter().filter(|s| s.depth > 0) {
        let block = format!("{}/{}", worker.id, step.id);
        let has_workers = workers.iter().any(|w| {
            w.id.rsplit_once('/')
                .is_some_and(|(parent, _)| parent == block)
        });
        if failed_only && !step.status.is_failure() && !has_workers {
            continue;
        }
        *counts.entry(step.status.as_str()).or_default() += 1;
        let mut extra = Vec::new();
        if let Some(ms) = step.duration_ms {
            extra.push(seconds(ms));
        }
        match (&step.message, step.exit_code.filter(|code| *code != 0)) {
            (Some(message), _) if step.status.is_failure() => extra.push(message.clone()),
            (_, Some(code)) => extra.push(format!("exit {code}")),
            _ => {}
        }
        let _ = writeln!(
            out,
            "{}{} {}  {}",
            "  ".repeat(indent + step.depth - 1),
            status_word(step.status),
            style::short_name(step.name.as_deref().unwrap_or(&step.id)),
            paint(style::DIM, extra.join(", "))
        );
        if has_workers {
            write_block(out, counts, workers, &block, indent + step.depth);
        }
    }
}

/// One line for the workers of a parallel block (by status), then each
/// worker that did not pass with its failed steps.
fn write_block(
    out: &mut String,
    counts: &mut BTreeMap<&'static str, usize>,
    workers: &[WorkerSummary],
    block: &str,
    indent: usize,
) {
    let members: Vec<&WorkerSummary> = workers
        .iter()
        .filter(|w| {
            w.id.rsplit_once('/')
                .is_some_and(|(parent, _)| parent == block)
        })
        .collect();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for member in &members {
        *by_status.entry(member.status.as_str()).or_default() += 1;
    }
    let tally: Vec<String> = by_status
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let pad = "  ".repeat(indent);
    let _ = writeln!(
        out,
        "{pad}{} {}",
        paint(
            style::DIM,
            format!("{}:", plural(members.len(), "worker", "workers"))
        ),
        tally.join(", ")
    );
    for member in members.iter().filter(|w| w.status.is_failure()) {
        let about = member
            .description
            .as_deref()
            .map(|d| format!("  {}", paint(style::DIM, d)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{pad}{} worker {}{about}",
            status_word(member.status),
            member.id
        );
        write_steps(out, counts, workers, member, indent + 1, true);
    }
}

/// Prints the final summary.
fn print_summary(outcome: &Outcome) {
    style::out(&summary_text(outcome));
}

/// The final summary: verdict, steps, tests, where the results are.
fn summary_text(outcome: &Outcome) -> String {
    let summary = &outcome.summary;
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
    let mut counts = BTreeMap::new();
    if let Some(init) = &summary.result.initialization {
        let _ = writeln!(out, "  {}", crate::live::initialization_line(init));
    }
    if let Some(root) = summary.workers.iter().find(|w| w.id == "root") {
        write_steps(&mut out, &mut counts, &summary.workers, root, 1, false);
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let _ = writeln!(
        out,
        "  {} {}",
        paint(style::BOLD, "steps:"),
        if counts.is_empty() {
            "none ran".to_owned()
        } else {
            counts.join(", ")
        }
    );
    let tests = &summary.tests;
    if tests.tests > 0 {
        let mut parts = vec![paint(style::OK, format!("{} passed", tests.passed))];
        let failed = tests.failed + tests.errored;
        if failed > 0 {
            parts.push(paint(style::ERROR, format!("{failed} failed")));
        }
        if tests.skipped > 0 {
            parts.push(format!("{} skipped", tests.skipped));
        }
        if tests.flaky > 0 {
            parts.push(paint(style::WARN, format!("{} flaky", tests.flaky)));
        }
        let _ = writeln!(
            out,
            "  {} {} ({} in total)",
            paint(style::BOLD, "tests:"),
            parts.join(", "),
            tests.tests
        );
        for case in &tests.failures {
            let name = match &case.class {
                Some(class) if !class.is_empty() => format!("{class}::{}", case.name),
                _ => case.name.clone(),
            };
            let why = case
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(|m| format!("  {}", paint(style::DIM, m)))
                .unwrap_or_default();
            let place = if case.worker == "root" || case.worker.is_empty() {
                String::new()
            } else {
                paint(style::DIM, format!(" [{}]", case.worker))
            };
            let word = if case.status == TestCaseStatus::Errored {
                "errored"
            } else {
                "failed"
            };
            let _ = writeln!(
                out,
                "    {} {name}{place}{why}",
                paint(style::ERROR, format!("{word:<8}"))
            );
        }
        let listed = tests.failures.len() as u64;
        if failed > listed {
            let _ = writeln!(out, "    ... and {} more", failed - listed);
        }
    }
    let folder = crate::home::runs().join(&summary.id);
    let _ = writeln!(
        out,
        "  {} {}",
        paint(style::BOLD, "files:"),
        folder.display()
    );
    if outcome.artifacts > 0 {
        let _ = writeln!(
            out,
            "  {} {} {} in {}  ·  {}",
            paint(style::BOLD, "artifacts:"),
            outcome.artifacts,
            plural(outcome.artifacts, "file", "files"),
            outcome.artifacts_dir.display(),
            crate::home::command(&format!("artifacts {}", summary.name))
        );
    }
    if outcome.recorded {
        let _ = writeln!(
            out,
            "  {} {}  ·  {}",
            paint(style::BOLD, "details:"),
            crate::home::command(&format!("get execution {}", summary.name)),
            crate::home::command(&format!("logs {}", summary.name)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_test_totals_failures_and_where_results_are() {
        let failure = TestCaseRecord {
            worker: "root/tests/1".to_owned(),
            suite: "suite".to_owned(),
            class: Some("pkg.Api".to_owned()),
            name: "test_login".to_owned(),
            file: None,
            status: TestCaseStatus::Failed,
            duration_secs: Some(1.0),
            message: Some("expected 200\ngot 500".to_owned()),
        };
        let tests = testkube_core::engine::TestTotals {
            tests: 12,
            passed: 9,
            failed: 1,
            errored: 0,
            skipped: 1,
            flaky: 1,
            failures: vec![failure.clone()],
        };
        let summary = ExecutionSummary {
            id: "wf-123".to_owned(),
            name: "wf-3".to_owned(),
            workflow: "wf".to_owned(),
            status: ExecutionStatus::Failed,
            message: None,
            started_at: String::new(),
            finished_at: String::new(),
            duration_ms: 2500,
            workers: Vec::new(),
            tests,
            result: testkube_core::model::ExecutionResult::default(),
        };
        let outcome = Outcome {
            summary,
            cases: vec![failure],
            artifacts: 2,
            artifacts_dir: "home/runs/wf-123/artifacts".into(),
            recorded: true,
        };
        let text = anstream::adapter::strip_str(&summary_text(&outcome)).to_string();
        assert!(text.contains("execution wf-3 failed in 2.5s"), "{text}");
        assert!(
            text.contains("tests: 9 passed, 1 failed, 1 skipped, 1 flaky (12 in total)"),
            "{text}"
        );
        assert!(
            text.contains("failed   pkg.Api::test_login [root/tests/1]  expected 200"),
            "{text}"
        );
        assert!(!text.contains("got 500"), "only the first line: {text}");
        assert!(text.contains("runs/wf-123"), "{text}");
        assert!(
            text.contains(
                "artifacts: 2 files in home/runs/wf-123/artifacts  ·  testkube artifacts wf-3"
            ),
            "{text}"
        );
        assert!(text.contains("testkube logs wf-3"), "{text}");
    }

    #[test]
    fn secrets_in_templates_are_replaced_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.yaml");
        std::fs::write(&file, "db: {password: hunter2}\n").unwrap();
        let source = SecretSource::load(Some(&file), &file).unwrap();
        let workflow: TestWorkflow = serde_json::from_value(serde_json::json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflow",
            "metadata": {"name": "s"},
            "spec": {"steps": [{"shell": "echo {{ secret('db', 'password') }} {{ env.HOME }}"}]}
        }))
        .unwrap();
        let (done, used) = inline_secrets(&workflow, &source).unwrap();
        let text = serde_json::to_string(&done).unwrap();
        assert!(text.contains("echo hunter2 {{"), "{text}");
        assert_eq!(used, vec!["hunter2".to_owned()]);

        let missing: TestWorkflow = serde_json::from_value(serde_json::json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflow",
            "metadata": {"name": "s"},
            "spec": {"steps": [{"shell": "echo {{ secret('api', 'token') }}"}]}
        }))
        .unwrap();
        let err = inline_secrets(&missing, &source).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("secret(\"api\", \"token\")"));
        assert!(
            err.hint()
                .is_some_and(|hint| hint.contains("TESTKUBE_SECRET_API_TOKEN"))
        );
    }
}
