//! Checks of the non-workflow resources (triggers, webhooks, executions) and
//! of `metadata`, which every resource has.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::parts::check_optional_duration;
use super::report::Report;
use super::rules;
use crate::diagnostic::Diagnostic;
use crate::model::{
    DocumentKind, TestWorkflowExecution, TriggerExecution, TriggerSelector, TriggerSpec,
    WebhookSpec, has_template,
};
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

/// A trigger watches one kind of resource for one event and runs workflows.
pub(crate) fn check_trigger(report: &mut Report<'_>, spec: &TriggerSpec) {
    let path = FieldPath::new().child("spec");
    match (&spec.resource, &spec.resource_ref) {
        (None, None) => report.at(
            &path.child("resource"),
            Diagnostic::error("missing-field", "a TestTrigger needs `resource` or `resourceRef`")
                .with_hint("e.g. `resource: deployment`, or `resourceRef: {group: apps, version: v1, kind: Deployment}`"),
        ),
        (Some(_), Some(_)) => report.at_key(
            &path.child("resourceRef"),
            Diagnostic::error("conflicting-fields", "`resource` and `resourceRef` are mutually exclusive")
                .with_hint("keep one of them"),
        ),
        _ => {}
    }
    for (field, missing, hint) in [
        (
            "event",
            spec.event.is_none(),
            "e.g. `event: modified` or `event: deployment-image-update`",
        ),
        ("action", spec.action.is_none(), "set `action: run`"),
        (
            "execution",
            spec.execution.is_none(),
            "set `execution: testworkflow`",
        ),
    ] {
        if missing {
            report.at(
                &path.child(field),
                Diagnostic::error("missing-field", format!("a TestTrigger needs `{field}`"))
                    .with_hint(hint),
            );
        }
    }
    if let Some(execution @ (TriggerExecution::Test | TriggerExecution::Testsuite)) = spec.execution
    {
        let name = if execution == TriggerExecution::Test {
            "test"
        } else {
            "testsuite"
        };
        report.at(
            &path.child("execution"),
            Diagnostic::error(
                "unsupported",
                format!(
                    "`execution: {name}` targets legacy Testkube resources, which are not supported"
                ),
            )
            .with_hint("convert the test to a TestWorkflow and use `execution: testworkflow`"),
        );
    }
    match &spec.test_selector {
        None => report.at(
            &path.child("testSelector"),
            Diagnostic::error("missing-field", "a TestTrigger needs `testSelector` to choose the workflows to run")
                .with_hint("e.g. `testSelector: {name: my-workflow}` or `{labelSelector: {matchLabels: {team: web}}}`"),
        ),
        Some(selector) => {
            if selector_is_empty(selector) {
                report.at(
                    &path.child("testSelector"),
                    Diagnostic::error("missing-field", "`testSelector` selects nothing")
                        .with_hint("set `name`, `nameRegex` or `labelSelector`"),
                );
            }
            check_selector_regexes(report, &path.child("testSelector"), selector);
        }
    }
    if let Some(selector) = &spec.resource_selector {
        check_selector_regexes(report, &path.child("resourceSelector"), selector);
    }
    for (index, condition) in spec.match_conditions.iter().enumerate() {
        let item = path.child("match").child(index);
        let operator = serde_json::to_value(condition.operator).ok();
        let operator = operator
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        if condition.path.trim().is_empty() {
            report.at(
                &item.child("path"),
                Diagnostic::error("empty-value", "`match[].path` is empty")
                    .with_hint("point at a field of the object, e.g. `.spec.replicas`"),
            );
        }
        if condition.operator.needs_value() && condition.value.is_none() {
            report.at(
                &item,
                Diagnostic::error(
                    "missing-field",
                    format!("operator `{operator}` needs a `value`"),
                )
                .with_hint("add `value:` to compare with"),
            );
        } else if !condition.operator.needs_value() && condition.value.is_some() {
            report.at_key(
                &item.child("value"),
                Diagnostic::warning(
                    "ignored-field",
                    format!("operator `{operator}` ignores `value`"),
                )
                .with_hint("remove `value`, or use `equals`/`changed_to`"),
            );
        }
    }
    for (field, timeout, delay) in [
        (
            "conditionSpec",
            spec.condition_spec.as_ref().and_then(|c| c.timeout),
            spec.condition_spec.as_ref().and_then(|c| c.delay),
        ),
        (
            "probeSpec",
            spec.probe_spec.as_ref().and_then(|p| p.timeout),
            spec.probe_spec.as_ref().and_then(|p| p.delay),
        ),
    ] {
        for (name, value) in [("timeout", timeout), ("delay", delay)] {
            if let Some(value) = value
                && value < 0
            {
                report.at(
                    &path.child(field).child(name),
                    Diagnostic::error(
                        "out-of-range",
                        format!("`{field}.{name}` must not be negative, found {value}"),
                    )
                    .with_hint("the value is in seconds"),
                );
            }
        }
    }
    check_optional_duration(report, &path.child("delay"), spec.delay.as_ref());
}

fn selector_is_empty(selector: &TriggerSelector) -> bool {
    selector.name.is_none() && selector.name_regex.is_none() && selector.label_selector.is_none()
}

fn check_selector_regexes(report: &mut Report<'_>, path: &FieldPath, selector: &TriggerSelector) {
    for (field, regex) in [
        ("nameRegex", &selector.name_regex),
        ("namespaceRegex", &selector.namespace_regex),
    ] {
        if let Some(regex) = regex
            && let Err(error) = regex::Regex::new(regex)
        {
            let reason = error.to_string();
            let reason = reason.lines().last().unwrap_or_default().trim();
            let reason = reason.strip_prefix("error: ").unwrap_or(reason).to_owned();
            report.at(
                &path.child(field),
                Diagnostic::error(
                    "invalid-pattern",
                    format!("`{field}` is not a valid regular expression: {reason}"),
                )
                .with_hint("the pattern uses RE2 syntax (as in Go)"),
            );
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
            let name = serde_json::to_value(event).ok();
            let name = name
                .as_ref()
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
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
