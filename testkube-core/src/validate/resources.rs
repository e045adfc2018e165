//! Checks of the non-workflow resources (webhooks, executions; triggers are
//! in `trigger`) and of `metadata`, which every resource has.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::report::Report;
use super::{enum_name, rules};
use crate::diagnostic::Diagnostic;
use crate::model::{DocumentKind, TestWorkflowExecution, WebhookSpec, has_template};
use crate::yaml::FieldPath;

/// `metadata.name` is required and a DNS-1123 name (templates may use `a/b`,
/// stored as `a--b`); `metadata.namespace` is a DNS-1123 label.
pub(crate) fn check_metadata(report: &mut Report<'_>, kind: DocumentKind, metadata: &ObjectMeta) {
    let path = FieldPath::new().child("metadata");
    match metadata.name.as_deref() {
        None | Some("") => {
            let hint = if metadata.generate_name.is_some() {
                "`generateName` is not supported in files; set `metadata.name`"
            } else {
                "add `metadata: {name: my-workflow}` (lower-case letters, digits and `-`)"
            };
            report.at(
                &path.child("name"),
                Diagnostic::error("missing-name", format!("a {kind} needs `metadata.name`"))
                    .with_hint(hint),
            );
        }
        Some(name) => {
            let stored = if kind == DocumentKind::TestWorkflowTemplate {
                name.replace('/', "--")
            } else {
                name.to_owned()
            };
            if let Err(reason) = rules::dns1123_subdomain(&stored) {
                let mut hint = format!("try `{}`", rules::suggest_dns_name(&stored));
                if kind == DocumentKind::TestWorkflowTemplate && name.contains('/') {
                    hint.push_str(&format!(" (`{name}` is stored as `{stored}`)"));
                } else if name.contains('/') {
                    hint.push_str("; only template names may contain `/`");
                }
                report.at(
                    &path.child("name"),
                    Diagnostic::error(
                        "invalid-name",
                        format!("invalid {kind} name `{name}`: {reason}"),
                    )
                    .with_hint(hint),
                );
            }
        }
    }
    if let Some(namespace) = &metadata.namespace
        && let Err(reason) = rules::dns1123_label(namespace)
    {
        report.at(
            &path.child("namespace"),
            Diagnostic::error(
                "invalid-name",
                format!("invalid namespace `{namespace}`: {reason}"),
            )
            .with_hint(format!("try `{}`", rules::suggest_dns_name(namespace))),
        );
    }
}

/// A `TestWorkflowExecution` names the workflow to run.
pub(crate) fn check_execution(report: &mut Report<'_>, execution: &TestWorkflowExecution) {
    let path = FieldPath::new().child("spec").child("testWorkflow");
    match execution
        .spec
        .test_workflow
        .as_ref()
        .map(|r| r.name.as_str())
    {
        None | Some("") => report.at(
            &path.child("name"),
            Diagnostic::error(
                "missing-field",
                "a TestWorkflowExecution needs `spec.testWorkflow.name`",
            )
            .with_hint("name the TestWorkflow to run"),
        ),
        Some(name) => {
            if let Err(reason) = rules::dns1123_subdomain(name) {
                report.at(
                    &path.child("name"),
                    Diagnostic::error(
                        "invalid-name",
                        format!("invalid workflow name `{name}`: {reason}"),
                    )
                    .with_hint(format!("try `{}`", rules::suggest_dns_name(name))),
                );
            }
        }
    }
}

/// A webhook needs a URL and events; templates cannot refer to templates.
pub(crate) fn check_webhook(report: &mut Report<'_>, kind: DocumentKind, spec: &WebhookSpec) {
    let path = FieldPath::new().child("spec");
    let from_template = spec.webhook_template_ref.is_some();
    match &spec.uri {
        None if !from_template => report.at(
            &path.child("uri"),
            Diagnostic::error("missing-field", format!("a {kind} needs `uri`"))
                .with_hint("set the URL to POST to, e.g. `https://hooks.slack.com/services/...`"),
        ),
        Some(uri) if !has_template(uri) => {
            if let Err(reason) = rules::http_url(uri) {
                report.at(
                    &path.child("uri"),
                    Diagnostic::error("invalid-url", format!("invalid webhook URL: {reason}"))
                        .with_hint("use an http(s) URL, e.g. `https://example.com/hook`"),
                );
            }
        }
        _ => {}
    }
    if spec.events.is_empty() && !from_template && kind == DocumentKind::Webhook {
        report.at(
            &path.child("events"),
            Diagnostic::error(
                "missing-field",
                format!("the {kind} has no `events`, so it never fires"),
            )
            .with_hint("e.g. `events: [end-testworkflow-failed, become-testworkflow-up]`"),
        );
    }
    for (index, event) in spec.events.iter().enumerate() {
        if event.is_legacy() {
            let name = enum_name(event);
            report.at(
                &path.child("events").child(index),
                Diagnostic::warning(
                    "unsupported",
                    format!("event `{name}` concerns legacy Tests/TestSuites and never fires"),
                )
                .with_hint("use the `*-testworkflow-*` events"),
            );
        }
    }
    if kind == DocumentKind::WebhookTemplate && from_template {
        report.at_key(
            &path.child("webhookTemplateRef"),
            Diagnostic::error(
                "template-uses-template",
                "a WebhookTemplate cannot refer to another template",
            )
            .with_hint("remove `webhookTemplateRef`"),
        );
    }
    for (name, value) in &spec.config {
        if value.value.is_some() == value.secret.is_some() {
            report.at(
                &path.child("config").child(name.as_str()),
                Diagnostic::error(
                    "invalid-config-value",
                    format!("config `{name}` needs exactly one of `value` or `secret`"),
                )
                .with_hint("use `value` for plain text, `secret: {name, key}` for credentials"),
            );
        }
    }
}
