//! `--server URL`: the commands that read and start runs (`run`, `rerun`,
//! `get`, `logs`, `artifacts`, `abort`) done by a testkube server instead
//! of on this machine, so that a CI job only calls it.
//!
//! Same flags, same exit codes as the local commands: `run` exits 0 when
//! the run passed, 1 when it failed or was aborted, 2 when the server
//! refused it (invalid workflow or config, unknown workflow). The server
//! keeps everything; this only renders what it answers.

mod client;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use testkube_core::model::Document;
use testkube_core::status::ExecutionStatus;
use testkube_core::store::TestCaseRecord;
use testkube_server::api::{Artifact, Execution, ExecutionList, RunBody};

use crate::cli::{
    AbortArgs, ArtifactsArgs, GetCommand, LogsArgs, RerunArgs, RunArgs, RunOptions, TextOutput,
};
use crate::commands::{CliError, block_on, print_json};
use crate::style::{self, outln, paint};
use client::Client;

/// Which server, and with what token.
pub(crate) struct Remote {
    client: Client,
}

impl Remote {
    pub(crate) fn new(server: &str, token: Option<String>) -> Result<Self, CliError> {
        Ok(Remote {
            client: Client::new(server, token)?,
        })
    }

    /// `run NAME|FILE`: a file's workflow (and templates) are stored on the
    /// server first, then run by name.
    pub(crate) fn run(&self, args: &RunArgs) -> Result<ExitCode, CliError> {
        let config = crate::input::key_values(&args.workflow.config, "--config")?;
        let tags = crate::input::key_values(&args.run.tags, "--tag")?;
        if let Some(path) = &args.run.junit {
            crate::junit_out::prepare(path)?;
        }
        block_on(async {
            let source = &args.workflow.file;
            let name = if source.is_file() {
                self.upload(source, args.workflow.name.as_deref()).await?
            } else {
                source.to_string_lossy().into_owned()
            };
            let body = RunBody {
                config: config
                    .into_iter()
                    .map(|(key, value)| (key, Value::String(value)))
                    .collect(),
                tags: tags.into_iter().collect(),
                running_context: Some(json!({
                    "interface": {"type": "cli"},
                    "actor": {"name": std::env::var("USER").unwrap_or_default(), "type": "user"},
                })),
                ..RunBody::default()
            };
            let request = self
                .client
                .request(
                    Method::POST,
                    &format!("/v1/test-workflows/{name}/executions"),
                )
                .json(&body);
            let execution: Execution = self.client.json(request).await.map_err(|err| {
                if err.message().starts_with("no workflow") {
                    CliError::usage(err.message().to_owned()).with_hint(
                        "give a workflow the server has (GET /v1/test-workflows), or a FILE to send",
                    )
                } else {
                    err
                }
            })?;
            self.finish(execution, &args.run).await
        })
    }

    pub(crate) fn rerun(&self, args: &RerunArgs) -> Result<ExitCode, CliError> {
        block_on(async {
            let path = format!(
                "/v1/test-workflow-executions/{}/rerun?failedOnly={}",
                args.execution, args.failed_only
            );
            let execution: Execution = self
                .client
                .json(self.client.request(Method::POST, &path))
                .await?;
            self.finish(execution, &args.run).await
        })
    }

    /// Stores the workflow of `file` (and the file's templates) on the server.
    async fn upload(&self, file: &Path, wanted: Option<&str>) -> Result<String, CliError> {
        let loaded = crate::commands::load(file)?;
        let mut workflows = Vec::new();
        for document in loaded.typed_documents() {
            match document {
                Document::TestWorkflowTemplate(template) => {
                    let name = template.metadata.name.clone().unwrap_or_default();
                    self.put("/v1/test-workflow-templates", &name, template.as_ref())
                        .await?;
                }
                Document::TestWorkflow(workflow) => workflows.push(workflow),
                _ => {}
            }
        }
        let workflow = match wanted {
            Some(wanted) => workflows
                .into_iter()
                .find(|w| w.metadata.name.as_deref() == Some(wanted))
                .ok_or_else(|| {
                    CliError::usage(format!("{} has no workflow `{wanted}`", file.display()))
                })?,
            None if workflows.len() == 1 => workflows.remove(0),
            None => {
                return Err(CliError::usage(format!(
                    "{} holds {} workflows",
                    file.display(),
                    workflows.len()
                ))
                .with_hint("pick one with --name WF"));
            }
        };
        let name = workflow.metadata.name.clone().unwrap_or_default();
        self.put("/v1/test-workflows", &name, workflow.as_ref())
            .await?;
        Ok(name)
    }

    /// Replaces `name` under `collection`, or creates it.
    async fn put(
        &self,
        collection: &str,
        name: &str,
        document: &impl serde::Serialize,
    ) -> Result<(), CliError> {
        let yaml = serde_saphyr::to_string(document)
            .map_err(|err| CliError::input(format!("cannot encode {name}: {err}")))?;
        let replace = self
            .client
            .request(Method::PUT, &format!("{collection}/{name}"))
            .header("content-type", "text/yaml")
            .body(yaml.clone());
        match self.client.send(replace).await {
            Ok(_) => Ok(()),
            Err(err) if err.message().starts_with("no ") => {
                let create = self
                    .client
                    .request(Method::POST, collection)
                    .header("content-type", "text/yaml")
                    .body(yaml);
                self.client.send(create).await.map(drop)
            }
            Err(err) => Err(err),
        }
    }

    /// Waits for the run (printing its logs with `-f`), then reports it as
    /// `run` does: summary, `--junit`, exit code.
    async fn finish(&self, started: Execution, options: &RunOptions) -> Result<ExitCode, CliError> {
        anstream::eprintln!(
            "{} {} on {}",
            paint(style::DIM, "started"),
            started.name,
            self.client.base()
        );
        if options.follow {
            self.client
                .follow(&started.id, |notification| {
                    if let Some(log) = &notification.log {
                        style::out(log);
                    }
                })
                .await?;
        }
        let execution = loop {
            let execution = self.execution(&started.id).await?;
            if finished(&execution) {
                break execution;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if let Some(path) = &options.junit {
            let cases: Vec<TestCaseRecord> = self
                .client
                .json(self.client.request(
                    Method::GET,
                    &format!("/v1/test-workflow-executions/{}/test-cases", execution.id),
                ))
                .await?;
            let duration = Duration::from_millis(
                u64::try_from(execution.result.duration_ms.unwrap_or(0)).unwrap_or(0),
            );
            crate::junit_out::write(path, &execution.name, duration, &cases)?;
            anstream::eprintln!(
                "{} {} test results written to {}",
                paint(style::DIM, "junit:"),
                cases.len(),
                path.display()
            );
        }
        if options.output == TextOutput::Json {
            print_json(&execution)?;
        } else {
            print_execution(&execution);
        }
        Ok(if execution.result.status == "passed" {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    async fn execution(&self, id: &str) -> Result<Execution, CliError> {
        self.client
            .json(
                self.client
                    .request(Method::GET, &format!("/v1/test-workflow-executions/{id}")),
            )
            .await
    }

    pub(crate) fn get(&self, what: &GetCommand) -> Result<ExitCode, CliError> {
        block_on(async {
            match what {
                GetCommand::Executions(args) => {
                    let path = match &args.workflow {
                        Some(workflow) => format!("/v1/test-workflows/{workflow}/executions"),
                        None => "/v1/test-workflow-executions".to_owned(),
                    };
                    let mut query = vec![("pageSize", args.limit.unwrap_or(100).to_string())];
                    if let Some(status) = &args.status {
                        query.push(("status", status.clone()));
                    }
                    let list: ExecutionList = self
                        .client
                        .json(self.client.request(Method::GET, &with_query(&path, &query)))
                        .await?;
                    if args.output == TextOutput::Json {
                        print_json(&list.results)?;
                    } else if list.results.is_empty() {
                        outln!("no executions");
                    } else {
                        for execution in &list.results {
                            outln!(
                                "{:<32} {:<8} {:<26} {}",
                                execution.name,
                                execution.result.status,
                                execution.scheduled_at.to_rfc3339(),
                                execution.result.duration.as_deref().unwrap_or("-")
                            );
                        }
                    }
                }
                GetCommand::Execution(args) => {
                    let execution = self.execution(&args.id).await?;
                    if args.output == TextOutput::Json {
                        print_json(&execution)?;
                    } else {
                        print_execution(&execution);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        })
    }

    pub(crate) fn logs(&self, args: &LogsArgs) -> Result<ExitCode, CliError> {
        block_on(async {
            if args.follow {
                if args.step.is_some() || args.worker.is_some() {
                    return Err(CliError::usage(
                        "with --server, -f follows the main worker; --step and --worker work without -f",
                    ));
                }
                self.client
                    .follow(&args.id, |notification| {
                        if let Some(log) = &notification.log {
                            style::out(log);
                        }
                    })
                    .await?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut query = Vec::new();
            if let Some(step) = &args.step {
                query.push(("step", step.clone()));
            }
            if let Some(worker) = &args.worker {
                query.push(("worker", worker.clone()));
            }
            let path = format!("/v1/test-workflow-executions/{}/logs", args.id);
            let request = self.client.request(Method::GET, &with_query(&path, &query));
            let mut response = self.client.send(request).await?;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|err| CliError::input(format!("the log was cut: {err}")))?
            {
                style::out(&String::from_utf8_lossy(&chunk));
            }
            Ok(ExitCode::SUCCESS)
        })
    }

    pub(crate) fn artifacts(&self, args: &ArtifactsArgs) -> Result<ExitCode, CliError> {
        block_on(async {
            let base = format!("/v1/test-workflow-executions/{}/artifacts", args.id);
            let list: Vec<Artifact> = self
                .client
                .json(self.client.request(Method::GET, &base))
                .await?;
            let Some(dir) = &args.download else {
                if args.output == TextOutput::Json {
                    print_json(&list)?;
                } else if list.is_empty() {
                    outln!("no artifacts");
                } else {
                    for artifact in &list {
                        outln!("{:<60} {:>10}", artifact.name, artifact.size);
                    }
                }
                return Ok(ExitCode::SUCCESS);
            };
            for artifact in &list {
                // As locally: DIR/<worker path>/<path>. Both come from the
                // server: never a path out of DIR.
                let relative = Path::new(&artifact.worker).join(&artifact.path);
                if relative.is_absolute()
                    || relative
                        .components()
                        .any(|part| !matches!(part, std::path::Component::Normal(_)))
                {
                    return Err(CliError::input(format!(
                        "the server named an artifact `{}`, which is not a relative path",
                        relative.display()
                    )));
                }
                let target = dir.join(relative);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|err| {
                        CliError::input(format!("cannot create {}: {err}", parent.display()))
                    })?;
                }
                let request = self
                    .client
                    .request(Method::GET, &format!("{base}/{}", artifact.name));
                let bytes = self
                    .client
                    .send(request)
                    .await?
                    .bytes()
                    .await
                    .map_err(|err| CliError::input(format!("{}: {err}", artifact.name)))?;
                std::fs::write(&target, &bytes).map_err(|err| {
                    CliError::input(format!("cannot write {}: {err}", target.display()))
                })?;
                outln!("{}", target.display());
            }
            Ok(ExitCode::SUCCESS)
        })
    }

    pub(crate) fn abort(&self, args: &AbortArgs) -> Result<ExitCode, CliError> {
        block_on(async {
            let request = self.client.request(
                Method::POST,
                &format!("/v1/test-workflow-executions/{}/abort", args.id),
            );
            self.client.send(request).await?;
            outln!("{} {}", paint(style::WARN, "aborting"), args.id);
            Ok(ExitCode::SUCCESS)
        })
    }
}

/// `path?key=value&...`, encoded.
fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

fn finished(execution: &Execution) -> bool {
    execution
        .result
        .status
        .parse::<ExecutionStatus>()
        .is_ok_and(ExecutionStatus::is_finished)
}

/// An execution as `run` ends and `get execution` shows it.
fn print_execution(execution: &Execution) {
    let status = &execution.result.status;
    let color = if status == "passed" {
        style::OK
    } else {
        style::WARN
    };
    outln!(
        "{} {} ({}) in {}",
        paint(color, status),
        execution.name,
        execution.id,
        execution.result.duration.as_deref().unwrap_or("-")
    );
    if let Some(message) = &execution.message {
        outln!("  {message}");
    }
    // A worker's own root group is the worker, not a step.
    let steps = execution.step_results.iter().flatten();
    for step in steps.filter(|step| step.step != "root") {
        let exit = step
            .state
            .exit_code
            .map(|code| format!(" (exit {code})"))
            .unwrap_or_default();
        outln!(
            "  {:<8} {}/{}{}",
            step.state.status,
            step.worker,
            step.name.as_deref().unwrap_or(&step.step),
            exit
        );
    }
    if let Some(tests) = execution.tests.as_ref().filter(|tests| tests.tests > 0) {
        outln!(
            "  tests: {} passed, {} failed, {} errored, {} skipped, {} flaky",
            tests.passed,
            tests.failed,
            tests.errored,
            tests.skipped,
            tests.flaky
        );
    }
    let outputs: BTreeMap<_, _> = execution
        .output
        .iter()
        .flatten()
        .map(|output| {
            (
                format!("{}.{}", output.step, output.name),
                output.value.clone(),
            )
        })
        .collect();
    for (key, value) in outputs {
        outln!("  output {key} = {value}");
    }
}
