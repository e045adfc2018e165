//! `testkube run`: runs a workflow on this machine with the local executor
//! through the library's run service ([`RunService`]), shows its progress
//! ([`crate::live`]) and ends with a summary (or the summary as JSON with
//! `-o json`) and the exit code: 0 passed, 1 failed or aborted, 2 invalid
//! input or unsupported. Ctrl-C aborts the run.
//!
//! The run itself (numbering, shard durations from the store's history,
//! `secret()` values and their masking, `execute` children, recording every
//! event) is the service's; this module parses the flags into a
//! [`RunRequest`], wires the local parts (the executor, the SQLite store,
//! [`LocalSecrets`], the workflow files `execute` may run) and renders the
//! event stream. It is also home of what `run` and `rerun` share
//! ([`Launch`]): `rerun` only gets its request from the service instead of
//! a file.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use testkube_core::TemplateSet;
use testkube_core::engine::{
    ChildError, ChildRequest, ChildTarget, EngineError, Event, ExecutionSummary, Executor,
    PreparedChild, WorkflowSet,
};
use testkube_core::model::Document;
use testkube_core::service::{
    FirstOf, RunRequest, RunService, RunWarning, SecretSource, ServiceError, WorkflowCatalog,
};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{ResultStore, StoreError, TestCaseRecord};
use testkube_executors::local::{LocalSecrets, SecretsFileError};
use testkube_results::store::SqliteStore;

use super::render::{Sensitive, add_templates, load, plural, resolve, template_set};
use super::{CliError, print_json};
use crate::cli::{RunArgs, RunOptions, Target, TextOutput};
use crate::input;
use crate::live::View;
use crate::style::{self, paint};

pub(crate) mod control;
mod summary;

use summary::print_summary;

pub(crate) fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let resolved = resolve(&args.workflow, Sensitive::Used)?;
    let passed = input::key_values(&args.workflow.config, "--config")?;
    let workflow = resolved.workflow().clone();
    // The real values of sensitive parameters: masked in every event.
    let sensitive =
        testkube_core::engine::mask::sensitive_config_values(&workflow.spec.config, passed);
    let config = resolved
        .config()
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let request = RunRequest::new(workflow)
        .with_config(config)
        .with_sensitive(sensitive)
        .with_source(args.workflow.file.display().to_string());
    let launch = Launch {
        request,
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
    /// What to run; `--tag` adds to its tags.
    pub(crate) request: RunRequest,
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
            self.request.tags.insert(key, value);
        }
        if let Some(path) = &options.junit {
            crate::junit_out::prepare(path)?;
        }
        let secrets = LocalSecrets::load(options.secrets.as_deref(), &default_secrets_file())
            .map_err(secrets_file_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?;
        let outcome = runtime.block_on(self.execute(secrets, options))?;
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
        secrets: LocalSecrets,
        options: &RunOptions,
    ) -> Result<Outcome, CliError> {
        // Refused first when no sandbox (or no cluster) can work: nothing
        // planned or read.
        let secrets = Arc::new(secrets);
        let mut namespace = None;
        let (executor, artifacts_dir, source): (
            Arc<dyn Executor>,
            ArtifactsDir,
            Arc<dyn SecretSource>,
        ) = match options.on {
            Target::Local => {
                let local = crate::sandbox::local_executor()?;
                let source = Arc::clone(&secrets) as Arc<dyn SecretSource>;
                (Arc::new(local.clone()), ArtifactsDir::Local(local), source)
            }
            Target::Kubernetes => {
                let cluster = crate::kubernetes::cluster(options).await?;
                namespace = Some(cluster.namespace);
                // This machine's values first, then the namespace's Secrets.
                let source = FirstOf(vec![
                    Arc::clone(&secrets) as Arc<dyn SecretSource>,
                    Arc::new(cluster.secrets),
                ]);
                (
                    Arc::new(cluster.executor),
                    ArtifactsDir::Store(cluster.artifacts),
                    Arc::new(source),
                )
            }
        };
        let mut service = RunService::new(executor)
            .with_secrets(source)
            .with_warnings(print_warning);
        if let Some(store) = open_store().await {
            service = service.with_store(store);
            recover_abandoned(&service).await;
        }
        let source = self.request.source.clone();
        let mut prepared = service.prepare(self.request).await.map_err(|err| {
            in_cluster(service_error(err, &source, &secrets), namespace.as_deref())
        })?;
        // Child workflows are only looked for (files read and parsed again)
        // when a step runs `execute`.
        if prepared.uses_execute() {
            let mut files = self.catalog.files.clone();
            files.extend(options.workflows.iter().cloned());
            let catalog = load_catalog(&files, &self.catalog.templates)?;
            prepared = prepared.with_catalog(Arc::new(FileCatalog(catalog)));
        }
        let plan = prepared.plan().clone();
        let notes = prepared.notes().to_vec();
        // Refused before anything is recorded: no number used, no record left.
        let mut run = service.launch(prepared).await.map_err(|err| {
            in_cluster(service_error(err, &source, &secrets), namespace.as_deref())
        })?;

        let live = options.output != TextOutput::Json && std::io::stdout().is_terminal();
        let mut view = if live {
            View::live(options.logs || options.follow, &plan)
        } else {
            View::lines(
                options.logs || options.follow,
                options.output == TextOutput::Json,
            )
        };
        drop(plan);
        for note in &notes {
            view.note(&format!("{} {note}", paint(style::DIM, "note:")));
        }
        let control = run.control();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                anstream::eprintln!("{}", paint(style::WARN, "aborting (Ctrl-C)..."));
                control.abort();
            }
        });
        // `testkube resume` (and abort) from another terminal reach the run here.
        let socket = control::listen(run.id(), run.control());
        let mut resumer = Resumer::default();
        let mut cases = Vec::new();
        let mut artifacts = 0usize;
        while let Some(event) = run.next_event().await {
            match event {
                Event::Finished(summary) => {
                    view.finish();
                    drop(socket);
                    return Ok(Outcome {
                        artifacts_dir: artifacts_dir.of(&summary.id),
                        summary: *summary,
                        cases,
                        artifacts,
                        recorded: run.recorded(),
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
                    resumer.start(&run);
                    if let Err(err) = &socket {
                        view.note(&format!(
                            "{} `testkube resume` cannot reach this run: {err}",
                            paint(style::WARN, "warning:"),
                        ));
                    }
                    view.note(&format!(
                        "{} a step waits (`paused: true`): {}`{}` resumes it",
                        paint(style::WARN, "paused:"),
                        if resumer.interactive {
                            "press Enter, or "
                        } else {
                            ""
                        },
                        crate::home::command(&format!("resume {}", run.name())),
                    ));
                }
                event => view.show(&event),
            }
        }
        view.finish();
        Err(CliError::input("the run ended without a result"))
    }
}

/// Resumes paused steps when Enter is pressed in the terminal.
#[derive(Default)]
struct Resumer {
    started: bool,
    interactive: bool,
}

impl Resumer {
    /// Starts listening (once per run).
    fn start(&mut self, run: &testkube_core::service::RunHandle) {
        if self.started {
            return;
        }
        self.started = true;
        self.interactive = std::io::stdin().is_terminal();
        if self.interactive {
            let control = run.control();
            // A blocking read of the terminal; it ends with the process.
            std::thread::spawn(move || {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                    control.resume();
                    line.clear();
                }
            });
        }
    }
}

/// Where a run's artifacts are kept, for the summary.
enum ArtifactsDir {
    /// The local executor's folder (or store).
    Local(testkube_executors::LocalExecutor),
    /// The store pods upload to (`s3://bucket/prefix/`), if any.
    Store(Option<String>),
}

impl ArtifactsDir {
    fn of(&self, execution: &str) -> String {
        match self {
            ArtifactsDir::Local(executor) => executor.artifacts_location(execution),
            ArtifactsDir::Store(Some(base)) => format!("{base}{execution}/"),
            ArtifactsDir::Store(None) => "nowhere (no artifact store)".to_owned(),
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
    /// Where the executor keeps them (a folder, `s3://...`).
    artifacts_dir: String,
    /// Whether the store has the run.
    recorded: bool,
}

/// The secrets file read when `--secrets` is not given (if it exists).
fn default_secrets_file() -> std::path::PathBuf {
    crate::home::dir().join("secrets.yaml")
}

/// Opens the store; `None` (with a warning) when it cannot be used.
pub(crate) async fn open_store() -> Option<Arc<dyn ResultStore>> {
    match SqliteStore::open(&crate::home::database()).await {
        Ok(store) => Some(Arc::new(store)),
        Err(err) => {
            store_warning(&err, "this run is not recorded");
            None
        }
    }
}

/// Marks runs a killed process left unfinished as aborted, saying which.
pub(crate) async fn recover_abandoned(service: &RunService) {
    match service.recover_abandoned().await {
        Ok(ids) if !ids.is_empty() => anstream::eprintln!(
            "{} marked {} abandoned execution(s) as aborted: {}",
            paint(style::DIM, "note:"),
            ids.len(),
            ids.join(", ")
        ),
        Ok(_) => {}
        Err(err) => store_warning(&err, "abandoned runs were not checked"),
    }
}

/// The service's warnings as the CLI has always said them.
fn print_warning(warning: RunWarning) {
    match warning {
        RunWarning::HistoryUnreadable(err) => anstream::eprintln!(
            "{} cannot read recorded durations from {}: {err}; shards are split without \
             them (repair or remove that file, or give --timings)",
            paint(style::WARN, "warning:"),
            crate::home::database().display()
        ),
        RunWarning::NotRecorded(err) => store_warning(&err, "this run is not recorded"),
        RunWarning::RecordingStopped(err) => {
            store_warning(&err, "the rest of this run is not recorded");
        }
        RunWarning::LogsNotRecorded(err) => {
            store_warning(&err, "some logs of this run are not recorded");
        }
        other => anstream::eprintln!("{} {other}", paint(style::WARN, "warning:")),
    }
}

fn store_warning(err: &StoreError, consequence: &str) {
    anstream::eprintln!("{} {err}; {consequence}", paint(style::WARN, "warning:"));
}

/// The service's refusals with the flags and files that fix them.
/// With `--on kubernetes`, a missing secret may also be a Secret of the
/// namespace: the hint says so.
fn in_cluster(err: CliError, namespace: Option<&str>) -> CliError {
    match namespace {
        Some(_) if err.message().contains("(with --on kubernetes") => err.with_hint(
            "without --on kubernetes it runs on this machine; `testkube plan FILE` shows the plan",
        ),
        Some(namespace) if err.message().contains("secret") => {
            let hint = err.hint().unwrap_or_default().to_owned();
            err.with_hint(format!(
                "{hint}; or create the Secret in namespace `{namespace}` (kubectl create secret generic ...)"
            ))
        }
        _ => err,
    }
}

pub(crate) fn service_error(err: ServiceError, source: &str, secrets: &LocalSecrets) -> CliError {
    match err {
        ServiceError::MissingSecret { ref name, ref key } => {
            let file = secrets
                .file()
                .map_or_else(default_secrets_file, std::path::Path::to_path_buf);
            CliError::usage(err.to_string()).with_hint(format!(
                "set the environment variable {} or add `{name}: {{{key}: VALUE}}` to {} (or pass --secrets FILE)",
                LocalSecrets::env_var(name, key),
                file.display()
            ))
        }
        ServiceError::MissingEnvFromSecret { ref name } => CliError::usage(err.to_string())
            .with_hint(format!(
                "set variables {}KEY=VALUE or add `{name}: {{KEY: VALUE}}` to the secrets file (--secrets FILE)",
                LocalSecrets::env_var(name, "")
            )),
        ServiceError::SecretCall { .. } => CliError::usage(err.to_string())
            .with_hint("secret() takes two texts: secret(\"name\", \"key\")"),
        ServiceError::Plan {
            workflow,
            diagnostics,
        } => {
            for diagnostic in diagnostics {
                let diagnostic = diagnostic.with_file(source.to_owned());
                anstream::eprintln!("{}", diagnostic.render(None));
            }
            CliError::usage(format!("cannot plan workflow `{workflow}`"))
                .with_hint("fix the problems above")
        }
        ServiceError::Engine(EngineError::Unsupported(features)) => {
            let list: Vec<String> = features.iter().map(ToString::to_string).collect();
            CliError::usage(list.join("\n"))
                .with_hint("this feature does not run locally yet; see `testkube plan FILE`")
        }
        ServiceError::Engine(other) => CliError::input(format!("cannot start the run: {other}")),
        other => CliError::input(other.to_string()),
    }
}

fn secrets_file_error(err: SecretsFileError) -> CliError {
    let hint = match err {
        SecretsFileError::Unreadable { .. } => "pass an existing file with --secrets FILE",
        _ => "write it as YAML: `secret-name: {key: value}`, one entry per secret",
    };
    CliError::usage(err.to_string()).with_hint(hint)
}

/// The workflows of the run's files and `--workflows`, whose errors say
/// where they come from.
struct FileCatalog(WorkflowSet);

impl WorkflowCatalog for FileCatalog {
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError> {
        WorkflowCatalog::find(&self.0, target).map_err(|err| {
            ChildError::new(format!(
                "{err} (workflows known to this run come from its file and --workflows PATH)"
            ))
        })
    }

    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError> {
        WorkflowCatalog::prepare(&self.0, child)
    }
}

/// Every TestWorkflow of `files` (files or folders, searched for YAML),
/// resolved with `templates` (the built-ins, the files' own templates and
/// `--templates`): the workflows `execute` may run. Invalid files are
/// refused, as `run` refuses its own.
fn load_catalog(
    files: &[std::path::PathBuf],
    templates: &[std::path::PathBuf],
) -> Result<WorkflowSet, CliError> {
    let mut template_set: TemplateSet = template_set(templates)?;
    let mut workflows = Vec::new();
    for path in input::workflow_files(files)? {
        let file = load(&path)?;
        add_templates(&mut template_set, &file);
        for document in file.documents {
            if let Some(Document::TestWorkflow(workflow)) = document.document {
                workflows.push((path.clone(), *workflow));
            }
        }
    }
    let mut set = WorkflowSet::new(template_set);
    for (path, workflow) in workflows {
        let name = workflow.metadata.name.clone().unwrap_or_default();
        // The same workflow found twice (its file given again, or in a
        // folder given too) is one workflow.
        if set.names().any(|known| known == name) {
            continue;
        }
        set.insert(workflow).map_err(|err| {
            CliError::usage(format!("{}: {err}", path.display()))
                .with_hint("every workflow `execute` may run needs a unique metadata.name")
        })?;
    }
    Ok(set)
}
