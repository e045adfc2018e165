//! From file bytes to typed documents plus every problem in them.
//!
//! [`load_file`] is the one entry point frontends use (the CLI's `validate`,
//! the API's validate endpoint): it decodes the bytes, loads each YAML
//! document into a spanned tree, reads the typed [`Document`] from it
//! (unknown fields and type errors become diagnostics with a position), and
//! runs the semantic checks of [`validate_document`]. It never stops at the
//! first problem: every diagnostic of every document is collected, each
//! tagged with the file name, so a user fixes a file in one pass. A type
//! error (which stops serde) is recorded, the offending entry removed from a
//! copy of the tree, and the document read again, so the errors after it
//! and the semantic checks of the rest are reported too.
//!
//! Templates are checked across files: [`check_catalog`] resolves every
//! `use`/`template` of the workflows of files validated together against
//! the templates they define and the built-ins.
//!
//! The semantic checks live in submodules by subject: `workflow` (the step
//! tree, workers), `schedule` (cron events), `parts` (containers, content, artifacts,
//! probes), `params` (`config` declarations), `resources` (metadata,
//! webhooks, executions), `trigger` (TestTriggers), `expressions` (expression syntax and
//! `config.*` references) and `rules` (single-value syntax: names, ids,
//! cron, time zones, quantities, URLs).

mod catalog;
mod expressions;
mod params;
mod parts;
mod report;
mod resources;
mod rules;
mod schedule;
mod trigger;
mod workflow;

use serde::de::DeserializeOwned;

pub use catalog::check_catalog;

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{Document, DocumentKind, KindError};
use crate::yaml::{self, LoadOptions, Node, NodeValue, Pruning, ScalarStyle};
use report::Report;

/// One YAML document of a file: its tree, and the typed document when it
/// could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    /// Position of the document in the file, from 0 (empty documents are skipped).
    pub index: usize,
    /// The spanned YAML tree, for looking up positions.
    pub node: Node,
    /// The typed document; `None` when its kind is unknown or it has type
    /// errors (the reasons are in the file's diagnostics). A document with
    /// type errors is still read past them and checked, so that every
    /// error of the file is reported, but that partial reading is not
    /// handed out.
    pub document: Option<Document>,
}

/// A loaded file: its documents and every problem found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedFile {
    /// The name diagnostics refer to (usually the path).
    pub name: String,
    /// The decoded text, for rendering snippets; `None` when the bytes are
    /// not UTF-8 or exceed the size budget.
    pub source: Option<String>,
    /// The documents, in file order.
    pub documents: Vec<LoadedDocument>,
    /// All diagnostics, errors and warnings, in file order per document.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedFile {
    /// Whether any diagnostic is an error (warnings do not count).
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity() == Severity::Error)
    }

    /// The documents that could be read.
    pub fn typed_documents(&self) -> impl Iterator<Item = &Document> {
        self.documents.iter().filter_map(|d| d.document.as_ref())
    }
}

/// Loads and checks a file. Never fails: problems are in
/// [`LoadedFile::diagnostics`], each with `name` as its file.
///
/// An empty file (or one with only comments) holds no documents; that is
/// reported as a `no-documents` warning, not an error.
pub fn load_file(name: &str, bytes: &[u8], options: &LoadOptions) -> LoadedFile {
    let mut file = LoadedFile {
        name: name.to_owned(),
        source: None,
        documents: Vec::new(),
        diagnostics: Vec::new(),
    };
    let source = match yaml::decode_utf8(bytes) {
        Ok(source) => source,
        Err(diagnostic) => {
            file.diagnostics.push(diagnostic.with_file(name));
            return file;
        }
    };
    if source.len() <= options.max_bytes {
        file.source = Some(source.to_owned());
    }
    let nodes = match yaml::load_documents(source, options) {
        Ok(nodes) => nodes,
        Err(diagnostic) => {
            file.diagnostics.push(diagnostic.with_file(name));
            return file;
        }
    };
    if nodes.is_empty() {
        file.diagnostics.push(
            Diagnostic::warning("no-documents", "the file holds no YAML documents")
                .with_hint("an empty file is valid but defines nothing")
                .with_file(name),
        );
    }
    for (index, mut node) in nodes.into_iter().enumerate() {
        read_yaml11_octal_modes(&mut node);
        let Read {
            document,
            mut diagnostics,
            pruned,
        } = read_document(&node);
        let incomplete = pruned.is_some();
        match (&document, pruned) {
            (Some(document), None) => {
                diagnostics.extend(check_document(document, &node, Some(source), None));
            }
            // Type errors were removed to read the rest: the rest is
            // checked too, on the pruned tree (same spans), so one run
            // reports every error of the file.
            (Some(document), Some((tree, pruning))) => {
                diagnostics.extend(check_document(
                    document,
                    &tree,
                    Some(source),
                    Some(&pruning),
                ));
            }
            (None, _) => {}
        }
        // A document read past type errors is incomplete: it is not handed
        // out as if it were the file's.
        let document = document.filter(|_| !incomplete);
        // File order, so users read them top to bottom; stable, so several
        // problems at one place keep the order they were found in.
        diagnostics.sort_by_key(|d| d.span().map_or(usize::MAX, |span| span.offset));
        file.diagnostics
            .extend(diagnostics.into_iter().map(|d| d.with_file(name)));
        file.documents.push(LoadedDocument {
            index,
            node,
            document,
        });
    }
    file
}

/// The semantic checks of one typed document; `node` is the tree it was
/// read from, used for positions. Diagnostics carry no file name.
pub fn validate_document(document: &Document, node: &Node) -> Vec<Diagnostic> {
    check_document(document, node, None, None)
}

/// [`validate_document`], with the source text when known: positions inside
/// multi-line values (block scalars) need it.
/// `pruning` is set when `node` is a tree pruned of type errors.
fn check_document(
    document: &Document,
    node: &Node,
    source: Option<&str>,
    pruning: Option<&Pruning>,
) -> Vec<Diagnostic> {
    let mut report = Report::new(node, source);
    if let Some(pruning) = pruning {
        report = report.pruned(pruning);
    }
    let kind = document.kind();
    resources::check_metadata(&mut report, kind, document.metadata());
    match document {
        Document::TestWorkflow(workflow) => {
            let facts = workflow::check_workflow_spec(&mut report, &workflow.spec, false);
            expressions::check_expressions(&mut report, &facts);
        }
        Document::TestWorkflowTemplate(template) => {
            let facts = workflow::check_workflow_spec(&mut report, &template.spec, true);
            expressions::check_expressions(&mut report, &facts);
        }
        Document::TestWorkflowExecution(execution) => {
            resources::check_execution(&mut report, execution);
        }
        Document::TestTrigger(document) => trigger::check_trigger(&mut report, &document.spec),
        Document::Webhook(webhook) => resources::check_webhook(&mut report, kind, &webhook.spec),
        Document::WebhookTemplate(template) => {
            resources::check_webhook(&mut report, kind, &template.spec);
        }
    }
    report.into_diagnostics()
}

/// A document as read: the typed value (from a tree pruned of type errors
/// when there were some, see [`yaml::from_node_recovering`]), every problem
/// found reading it, and the pruned tree.
struct Read {
    document: Option<Document>,
    diagnostics: Vec<Diagnostic>,
    pruned: Option<(Node, Pruning)>,
}

impl Read {
    fn failed(diagnostic: Diagnostic) -> Self {
        Read {
            document: None,
            diagnostics: vec![diagnostic],
            pruned: None,
        }
    }
}

/// Reads the typed document from a loaded tree, dispatching on
/// `apiVersion` and `kind`.
fn read_document(node: &Node) -> Read {
    if !matches!(node.value, NodeValue::Map(_)) {
        let diagnostic = Diagnostic::error(
            "invalid-document",
            format!(
                "a document must be a map with `apiVersion`, `kind`, `metadata` and `spec`, found {}",
                node.kind_name()
            ),
        )
        .with_span(node.span);
        return Read::failed(diagnostic);
    }
    let text = |key: &str| node.get_key(key).and_then(Node::as_str);
    let kind = match DocumentKind::resolve(text("apiVersion"), text("kind")) {
        Ok(kind) => kind,
        Err(error) => return Read::failed(kind_diagnostic(node, &error)),
    };
    match kind {
        DocumentKind::TestWorkflow => read_as(node, Document::TestWorkflow),
        DocumentKind::TestWorkflowTemplate => read_as(node, Document::TestWorkflowTemplate),
        DocumentKind::TestWorkflowExecution => read_as(node, Document::TestWorkflowExecution),
        DocumentKind::TestTrigger => read_as(node, Document::TestTrigger),
        DocumentKind::Webhook => read_as(node, Document::Webhook),
        DocumentKind::WebhookTemplate => read_as(node, Document::WebhookTemplate),
    }
}

fn read_as<T: DeserializeOwned>(node: &Node, wrap: fn(Box<T>) -> Document) -> Read {
    let recovered = yaml::from_node_recovering::<T>(node);
    let pruned = recovered
        .pruned
        .filter(|_| !recovered.pruning.is_empty())
        .map(|tree| (tree, recovered.pruning));
    Read {
        document: recovered.value.map(|value| wrap(Box::new(value))),
        diagnostics: recovered.diagnostics,
        pruned,
    }
}

fn kind_diagnostic(node: &Node, error: &KindError) -> Diagnostic {
    let (field, hint) = match error {
        KindError::MissingKind => (
            "kind",
            "add `kind: TestWorkflow` (or another supported kind)".to_owned(),
        ),
        KindError::UnknownKind { suggestion, .. } => (
            "kind",
            match suggestion {
                Some(kind) => format!("did you mean `{kind}`?"),
                None => "check the `kind` of the document".to_owned(),
            },
        ),
        KindError::MissingApiVersion { kind } => {
            ("kind", format!("add `apiVersion: {}`", kind.api_version()))
        }
        KindError::WrongApiVersion { kind, .. } => (
            "apiVersion",
            format!("use `apiVersion: {}`", kind.api_version()),
        ),
    };
    let span = node
        .get_key(field)
        .map(|value| value.span)
        .or_else(|| match &node.value {
            NodeValue::Map(entries) => entries.first().map(|(key, _)| key.span),
            _ => None,
        })
        .unwrap_or(node.span);
    let code = match error {
        KindError::MissingKind | KindError::MissingApiVersion { .. } => "missing-field",
        KindError::UnknownKind { .. } => "unknown-kind",
        KindError::WrongApiVersion { .. } => "unknown-api-version",
    };
    Diagnostic::error(code, error.to_string())
        .with_span(span)
        .with_path(field)
        .with_hint(hint)
}

/// YAML 1.1 compatibility for file modes: Testkube reads `mode: 0755` and
/// Kubernetes reads `defaultMode: 0644` as octal (YAML 1.1), while our YAML
/// 1.2 loader reads a leading zero as decimal. A plain scalar of octal
/// digits with a leading zero under `defaultMode`, or under `mode` next to a
/// `path` (file entries, key-to-path items), is rewritten to its decimal
/// value so such files mean what their authors expect. `0o755` and decimal
/// values are unaffected.
fn read_yaml11_octal_modes(node: &mut Node) {
    let mut pending: Vec<&mut Node> = vec![node];
    while let Some(node) = pending.pop() {
        match &mut node.value {
            NodeValue::Seq(items) => pending.extend(items.iter_mut()),
            NodeValue::Map(entries) => {
                let has_path = entries.iter().any(|(key, _)| key.as_str() == Some("path"));
                for (key, value) in entries.iter_mut() {
                    let is_mode = match key.as_str() {
                        Some("defaultMode") => true,
                        Some("mode") => has_path,
                        _ => false,
                    };
                    if is_mode
                        && let NodeValue::Scalar {
                            text,
                            style: ScalarStyle::Plain,
                        } = &mut value.value
                        && text.len() > 1
                        && text.starts_with('0')
                        && text.bytes().all(|b| (b'0'..=b'7').contains(&b))
                        && let Ok(mode) = u32::from_str_radix(text, 8)
                    {
                        *text = mode.to_string();
                    }
                    pending.push(value);
                }
            }
            NodeValue::Null | NodeValue::Scalar { .. } => {}
        }
    }
}

/// The YAML name of an enum value (`deployment-image-update`), for messages.
fn enum_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
