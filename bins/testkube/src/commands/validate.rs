//! `testkube validate`: every document of every file, every error reported;
//! the files' templates and the built-ins are the catalog `use` is checked
//! against.

use std::process::ExitCode;

use serde::Serialize;
use testkube_core::diagnostic::{Diagnostic, Severity};
use testkube_core::resolve::TemplateSet;
use testkube_core::validate::{LoadedFile, check_catalog, load_file};
use testkube_core::yaml::LoadOptions;

use super::{CliError, print_json};
use crate::cli::{TextOutput, ValidateArgs};
use crate::input::{self, Found};
use crate::style::{self, paint};

pub(crate) fn run(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let found = input::find_workflow_files(&args.paths);
    if found.is_empty() {
        let searched: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::input(format!(
            "no *.yaml or *.yml files in {}",
            searched.join(", ")
        ))
        .with_hint("pass workflow files, or folders that hold them"));
    }
    let options = LoadOptions::default();
    let mut loaded = Vec::with_capacity(found.len());
    for entry in found {
        let (path, read) = match entry {
            Found::File(path) => {
                let read = input::read_workflow(&path, &options);
                (path, read)
            }
            Found::Unreadable(path, reason) => (path, Err(reason)),
        };
        let name = path.display().to_string();
        let loaded_file = match read {
            Ok(bytes) => load_file(&name, &bytes, &options),
            Err(reason) => LoadedFile {
                name: name.clone(),
                source: None,
                documents: Vec::new(),
                diagnostics: vec![
                    Diagnostic::error("io", format!("cannot read the file: {reason}"))
                        .with_file(&name)
                        .with_hint(
                            "check the path; workflow files are regular files of at most 16 MiB",
                        ),
                ],
            },
        };
        loaded.push(loaded_file);
    }
    // The files given together (or found in one folder) are one catalog:
    // a template defined in one serves the workflows of the others.
    let builtins = TemplateSet::with_builtins()
        .map_err(|err| CliError::input(format!("internal error: {err}")))?;
    check_catalog(&mut loaded, builtins);
    let errors = loaded
        .iter()
        .flat_map(|file| &file.diagnostics)
        .filter(|diag| is_error(diag))
        .count();

    match args.output {
        TextOutput::Json => print_json(&Summary::new(&loaded, errors))?,
        TextOutput::Pretty => print_pretty(&loaded, errors),
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn is_error(diag: &Diagnostic) -> bool {
    matches!(diag.severity(), Severity::Error)
}

fn print_pretty(files: &[LoadedFile], errors: usize) {
    for file in files {
        for diag in &file.diagnostics {
            anstream::eprintln!("{}", colorize(&diag.render(file.source.as_deref())));
        }
    }
    let documents: usize = files.iter().map(|file| file.documents.len()).sum();
    let counts = format!(
        "{} {}, {} {}",
        files.len(),
        plural(files.len(), "file", "files"),
        documents,
        plural(documents, "document", "documents"),
    );
    if errors == 0 {
        anstream::eprintln!("{} {counts}", paint(style::OK, "valid:"));
    } else {
        anstream::eprintln!(
            "{} {errors} {} in {counts}",
            paint(style::ERROR, "invalid:"),
            plural(errors, "error", "errors")
        );
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

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The `-o json` shape: stable field names scripts rely on.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    valid: bool,
    error_count: usize,
    files: Vec<FileSummary<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileSummary<'a> {
    file: &'a str,
    valid: bool,
    documents: Vec<DocumentSummary>,
    diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentSummary {
    index: usize,
    kind: Option<String>,
    name: Option<String>,
}

impl<'a> Summary<'a> {
    fn new(files: &'a [LoadedFile], errors: usize) -> Self {
        Self {
            valid: errors == 0,
            error_count: errors,
            files: files
                .iter()
                .map(|file| FileSummary {
                    file: &file.name,
                    valid: !file.diagnostics.iter().any(is_error),
                    documents: file
                        .documents
                        .iter()
                        .map(|doc| DocumentSummary {
                            index: doc.index,
                            kind: doc.document.as_ref().map(|d| d.kind().to_string()),
                            name: doc
                                .document
                                .as_ref()
                                .and_then(|d| d.name().map(str::to_string)),
                        })
                        .collect(),
                    diagnostics: &file.diagnostics,
                })
                .collect(),
        }
    }
}
