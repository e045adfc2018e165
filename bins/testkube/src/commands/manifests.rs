//! `testkube manifests`: every Kubernetes object one execution of a
//! workflow would create, as multi-document YAML, without a cluster. The
//! execution id is a placeholder (`<workflow>-execution`); what only the
//! run decides is said in comments at the top.

use std::process::ExitCode;

use testkube_core::engine::ExecutionRequest;
use testkube_core::plan::{PlanOptions, plan_workflow};
use testkube_k8s::{ManifestOptions, execution_objects};

use super::CliError;
use super::render::{Sensitive, resolve};
use crate::cli::ManifestsArgs;

pub(crate) fn run(args: ManifestsArgs) -> Result<ExitCode, CliError> {
    // Sensitive values stay masked: the output is for reading and diffing.
    let resolved = resolve(&args.workflow, Sensitive::Masked)?;
    let workflow = resolved.workflow();
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let plan = plan_workflow(workflow, &PlanOptions::new()).map_err(|err| {
        for diagnostic in &err.diagnostics {
            let diagnostic = diagnostic
                .clone()
                .with_file(args.workflow.file.display().to_string());
            anstream::eprintln!("{}", diagnostic.render(None));
        }
        CliError::usage(format!("cannot plan workflow `{name}`"))
            .with_hint("fix the problems above")
    })?;
    let mut request = ExecutionRequest::new(format!("{name}-execution"));
    request.config = resolved
        .config()
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    request.labels = workflow
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut options = ManifestOptions::default();
    if let Some(namespace) = &args.namespace {
        options.namespace.clone_from(namespace);
    }
    if let Some(image) = &args.git_image {
        options.git_image.clone_from(image);
    }
    let objects = execution_objects(&plan, &request, &options).map_err(|err| {
        CliError::usage(err.to_string()).with_hint(
            "`testkube run FILE` runs it on this machine, where this limit does not apply",
        )
    })?;
    let mut text = String::new();
    for note in &objects.notes {
        text.push_str(&format!("# {note}\n"));
    }
    for worker in &objects.workers {
        for document in [yaml(&worker.secret)?, yaml(&worker.job)?] {
            text.push_str("---\n");
            text.push_str(&document);
        }
    }
    crate::style::out(&text);
    Ok(ExitCode::SUCCESS)
}

fn yaml(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_saphyr::to_string(value)
        .map_err(|err| CliError::input(format!("cannot encode YAML: {err}")))
}
