//! `testkube render`: a workflow with its config and templates applied, as
//! the engine would run it (a preview; nothing runs). Sensitive config values
//! are masked.
//!
//! Also home of what `render` and `plan` share: loading the file and the
//! template folders, picking the workflow, resolving it, and printing
//! diagnostics the way `validate` does.

use std::path::Path;
use std::process::ExitCode;

use testkube_core::diagnostic::{Diagnostic, Severity};
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::resolve::{
    ResolveOptions, ResolvedWorkflow, TemplateOrigin, TemplateSet, resolve_workflow,
};
use testkube_core::validate::{LoadedFile, load_file};
use testkube_core::yaml::LoadOptions;

use super::{CliError, print_json, print_yaml};
use crate::cli::{DocumentOutput, RenderArgs, WorkflowArgs};
use crate::input;
use crate::style::{self, paint};

pub(crate) fn run(args: RenderArgs) -> Result<ExitCode, CliError> {
    let resolved = resolve(&args.workflow, Sensitive::Masked)?;
    match args.output {
        DocumentOutput::Json => print_json(resolved.workflow())?,
        DocumentOutput::Yaml => print_yaml(resolved.workflow())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// How sensitive config values are treated when resolving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sensitive {
    /// Left unresolved, for output people read (`render`, `plan`).
    Masked,
    /// Used, for running (`run`); the engine masks them in what it reports.
    Used,
}

/// Loads `args.file` and its templates, picks the workflow and resolves it
/// with the `--config` values. Problems are printed
/// on stderr as `validate` prints them; the error then only summarizes.
pub(crate) fn resolve(
    args: &WorkflowArgs,
    sensitive: Sensitive,
) -> Result<ResolvedWorkflow, CliError> {
    let file = load(&args.file)?;
    let mut templates = template_set(&args.templates)?;
    // The workflow's own file wins over the folders and the built-ins.
    add_templates(&mut templates, &file);

    let (workflow, node) = pick(&file, args.name.as_deref())?;
    let pairs = input::key_values(&args.config, "--config")?;
    let options = ResolveOptions::new()
        .with_config_pairs(pairs)
        .mask_sensitive(sensitive == Sensitive::Masked);
    let workflow_name = workflow.metadata.name.clone().unwrap_or_default();
    match resolve_workflow(workflow, &templates, &options, Some(node)) {
        Ok(resolved) => {
            print_diagnostics(&file, resolved.warnings());
            Ok(resolved)
        }
        Err(err) => {
            print_diagnostics(&file, &err.diagnostics);
            let errors = count_errors(&err.diagnostics);
            Err(CliError::usage(format!(
                "cannot resolve workflow `{workflow_name}` ({errors} {})",
                plural(errors, "error", "errors")
            ))
            .with_hint(resolve_hint(&err.diagnostics)))
        }
    }
}

/// The built-in templates and those of the `--templates` files and folders.
pub(crate) fn template_set(paths: &[std::path::PathBuf]) -> Result<TemplateSet, CliError> {
    let mut templates = TemplateSet::with_builtins()
        .map_err(|err| CliError::input(format!("internal error: {err}")))?;
    for path in input::workflow_files(paths)? {
        add_templates(&mut templates, &load(&path)?);
    }
    Ok(templates)
}

/// Adds the templates of `file` (a later file wins over earlier ones).
pub(crate) fn add_templates(templates: &mut TemplateSet, file: &LoadedFile) {
    templates.insert_documents(
        file.typed_documents(),
        &TemplateOrigin::File(file.name.clone()),
    );
}

/// What to do next, from the kind of problems found.
fn resolve_hint(diagnostics: &[Diagnostic]) -> String {
    let errors: Vec<&Diagnostic> = diagnostics
        .iter()
        .filter(|diag| matches!(diag.severity(), Severity::Error))
        .collect();
    let codes: Vec<&str> = errors.iter().map(|diag| diag.code()).collect();
    // Only the workflow's own parameters are set with --config; a template's
    // config problems are fixed in the file that uses the template.
    let workflow_config = errors.iter().any(|diag| {
        matches!(
            diag.code(),
            "missing-config" | "invalid-config" | "unknown-config"
        ) && !diag.message().contains("template")
    });
    if workflow_config {
        "pass config values with --config KEY=VALUE (see the errors above)".to_owned()
    } else if codes.contains(&"unknown-template") {
        "define the template in the same file, or load its folder with --templates PATH".to_owned()
    } else {
        "fix the errors above".to_owned()
    }
}

/// Reads and checks one file; an invalid file is printed and refused.
pub(crate) fn load(path: &Path) -> Result<LoadedFile, CliError> {
    let options = LoadOptions::default();
    let bytes = input::read_workflow(path, &options).map_err(|reason| {
        CliError::usage(format!("cannot read {}: {reason}", path.display()))
            .with_hint("check the path; workflow files are at most 16 MiB")
    })?;
    let name = path.display().to_string();
    let file = load_file(&name, &bytes, &options);
    if file.has_errors() {
        print_diagnostics(&file, &[]);
        let errors = count_errors(&file.diagnostics);
        return Err(CliError::usage(format!(
            "{name} is not valid ({errors} {})",
            plural(errors, "error", "errors")
        ))
        .with_hint("fix the errors above; `testkube validate FILE` checks a file alone"));
    }
    Ok(file)
}

/// The workflow to use: the one named by `--name`, or the only one.
fn pick<'f>(
    file: &'f LoadedFile,
    name: Option<&str>,
) -> Result<(&'f TestWorkflow, &'f testkube_core::yaml::Node), CliError> {
    let workflows: Vec<(&TestWorkflow, &testkube_core::yaml::Node)> = file
        .documents
        .iter()
        .filter_map(|doc| match &doc.document {
            Some(Document::TestWorkflow(workflow)) => Some((&**workflow, &doc.node)),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = workflows
        .iter()
        .map(|(workflow, _)| workflow.metadata.name.as_deref().unwrap_or("<unnamed>"))
        .collect();
    match (name, workflows.as_slice()) {
        (Some(wanted), _) => workflows
            .iter()
            .find(|(workflow, _)| workflow.metadata.name.as_deref() == Some(wanted))
            .copied()
            .ok_or_else(|| {
                let known = if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                };
                CliError::usage(format!("no workflow named `{wanted}` in {}", file.name))
                    .with_hint(format!("workflows in the file: {known}"))
            }),
        (None, [only]) => Ok(*only),
        (None, []) => Err(
            CliError::usage(format!("{} holds no TestWorkflow", file.name)).with_hint(
                "templates are used by workflows: pass the file of a workflow that uses them",
            ),
        ),
        (None, _) => Err(CliError::usage(format!(
            "{} holds {} workflows: {}",
            file.name,
            workflows.len(),
            names.join(", ")
        ))
        .with_hint(format!("pick one with --name, e.g. --name {}", names[0]))),
    }
}

/// Prints the file's own diagnostics and `extra` ones, with snippets.
pub(crate) fn print_diagnostics(file: &LoadedFile, extra: &[Diagnostic]) {
    let source = file.source.as_deref();
    for diagnostic in file.diagnostics.iter().chain(extra) {
        let diagnostic = if diagnostic.file().is_none() {
            diagnostic.clone().with_file(&file.name)
        } else {
            diagnostic.clone()
        };
        anstream::eprintln!("{}", colorize(&diagnostic.render(source)));
    }
}

/// Colours the `error:`/`warning:` word of a rendered diagnostic.
fn colorize(text: &str) -> String {
    text.replacen(
        ": error:",
        &format!(": {}:", paint(style::ERROR, "error")),
        1,
    )
    .replacen(
        ": warning:",
        &format!(": {}:", paint(style::WARN, "warning")),
        1,
    )
}

fn count_errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count()
}

pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
