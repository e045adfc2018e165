//! Checks of a `TestTrigger`: what Testkube's CRD schema and its
//! `TestTriggerSpec.Validate` refuse (`api/testtriggers/v1/validation.go`),
//! plus settings Testkube accepts but that never fire (reported as warnings).

use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use regex::Regex;

use super::enum_name;
use super::parts::{check_git_credentials, check_optional_duration};
use super::report::Report;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{
    FieldMatch, GitPullRequest, GitWatch, TriggerEvent, TriggerExecution, TriggerSelector,
    TriggerSpec,
};
use crate::yaml::FieldPath;

/// A trigger watches a resource (or Git content) for one event and runs
/// workflows.
pub(crate) fn check_trigger(report: &mut Report<'_>, spec: &TriggerSpec) {
    let path = FieldPath::new().child("spec");
    check_watched_resource(report, &path, spec);
    check_required_fields(report, &path, spec);
    check_test_selector(report, &path, spec);
    if let Some(selector) = &spec.resource_selector {
        check_selector_regexes(report, &path.child("resourceSelector"), selector);
    }
    if spec.watches_content() {
        check_content_trigger(report, &path, spec);
    } else {
        check_resource_trigger(report, &path, spec);
    }
    if let Some(git) = spec.content_selector.as_ref().and_then(|c| c.git.as_ref()) {
        check_git_watch(
            report,
            &path.child("contentSelector").child("git"),
            git,
            spec.event,
        );
    }
    for (index, condition) in spec.match_conditions.iter().enumerate() {
        check_match(
            report,
            &path.child("match").child(index),
            condition,
            spec.event,
        );
    }
    check_wait_seconds(report, &path, spec);
    check_optional_duration(report, &path.child("delay"), spec.delay.as_ref());
}

/// What to watch: `resource`, `resourceRef`, or the event labels of
/// `selector` alone (`testkube.io/resource-kind: Deployment`, ...).
fn check_watched_resource(report: &mut Report<'_>, path: &FieldPath, spec: &TriggerSpec) {
    let selects_events = spec
        .selector
        .as_ref()
        .is_some_and(|s| !selector_is_empty(s));
    match (&spec.resource, &spec.resource_ref) {
        (None, None) if !selects_events => report.at(
            &path.child("resource"),
            Diagnostic::error(
                "missing-field",
                "a TestTrigger needs `resource`, `resourceRef` or `selector` to choose what to watch",
            )
            .with_hint(
                "e.g. `resource: deployment`, `resourceRef: {group: apps, version: v1, kind: Deployment}` \
                 or `selector: {matchLabels: {testkube.io/resource-kind: Deployment}}`",
            ),
        ),
        (Some(_), Some(_)) => report.at_key(
            &path.child("resourceRef"),
            Diagnostic::error(
                "conflicting-fields",
                "`resource` and `resourceRef` are mutually exclusive",
            )
            .with_hint("keep one of them"),
        ),
        _ => {}
    }
}

/// `event`, `action` and `execution` are required by the CRD; only
/// `testworkflow` executions exist here.
fn check_required_fields(report: &mut Report<'_>, path: &FieldPath, spec: &TriggerSpec) {
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
}

fn check_test_selector(report: &mut Report<'_>, path: &FieldPath, spec: &TriggerSpec) {
    let selector_path = path.child("testSelector");
    match &spec.test_selector {
        None => report.at(
            &selector_path,
            Diagnostic::error("missing-field", "a TestTrigger needs `testSelector` to choose the workflows to run")
                .with_hint("e.g. `testSelector: {name: my-workflow}` or `{labelSelector: {matchLabels: {team: web}}}`"),
        ),
        Some(selector) => {
            if selector.name.is_none()
                && selector.name_regex.is_none()
                && selector.label_selector.is_none()
            {
                report.at(
                    &selector_path,
                    Diagnostic::error("missing-field", "`testSelector` selects nothing")
                        .with_hint("set `name`, `nameRegex` or `labelSelector`"),
                );
            }
            check_selector_regexes(report, &selector_path, selector);
        }
    }
}

/// A content trigger fires on Git events for one repository; the
/// Kubernetes-object settings do not apply to it (Testkube refuses them).
fn check_content_trigger(report: &mut Report<'_>, path: &FieldPath, spec: &TriggerSpec) {
    if let Some(event) = spec.event.filter(|event| !event.is_git()) {
        report.at(
            &path.child("event"),
            Diagnostic::error(
                "invalid-event",
                format!(
                    "a content trigger fires on `git-push`, `git-tag-push` or `git-pull-request`, not `{}`",
                    enum_name(&event)
                ),
            )
            .with_hint("set `event: git-push`, or watch a Kubernetes resource instead of `content`"),
        );
    }
    let has_conditions = spec
        .condition_spec
        .as_ref()
        .is_some_and(|c| !c.conditions.is_empty());
    let has_probes = spec
        .probe_spec
        .as_ref()
        .is_some_and(|p| !p.probes.is_empty());
    for (field, present) in [
        ("match", !spec.match_conditions.is_empty()),
        ("conditionSpec", has_conditions),
        ("probeSpec", has_probes),
    ] {
        if present {
            report.at_key(
                &path.child(field),
                Diagnostic::error(
                    "conflicting-fields",
                    format!("a content trigger does not support `{field}`"),
                )
                .with_hint(format!(
                    "remove `{field}`: it applies to Kubernetes objects, not to Git content"
                )),
            );
        }
    }
    let uri = spec
        .content_selector
        .as_ref()
        .and_then(|c| c.git.as_ref())
        .map(|git| git.uri.trim());
    if uri.is_none_or(str::is_empty) {
        // Without a `contentSelector` the reason is the `content` resource.
        let at = match (&spec.content_selector, &spec.resource) {
            (Some(_), _) => path.child("contentSelector").child("git").child("uri"),
            (None, Some(_)) => path.child("resource"),
            (None, None) => path.child("resourceRef").child("kind"),
        };
        report.at(
            &at,
            Diagnostic::error(
                "missing-field",
                "a content trigger needs `contentSelector.git.uri`",
            )
            .with_hint("e.g. `contentSelector: {git: {uri: https://github.com/org/repo, branches: [main]}}`"),
        );
    }
}

/// A Kubernetes-object trigger: `match` needs its listener pinned, and the
/// Git settings are never read.
fn check_resource_trigger(report: &mut Report<'_>, path: &FieldPath, spec: &TriggerSpec) {
    let pinned = spec
        .listener
        .as_ref()
        .and_then(|l| l.match_labels.get("id"))
        .is_some_and(|ids| !ids.is_empty());
    if !spec.match_conditions.is_empty() && !pinned {
        report.at_key(
            &path.child("match"),
            Diagnostic::error(
                "missing-field",
                "`match` conditions need `listener.match.id` to pin the trigger to its listener agents",
            )
            .with_hint("add `listener: {match: {id: [my-agent-id]}}` (Testkube checks `match` paths against that agent's cluster)"),
        );
    }
    if let Some(event) = spec.event.filter(|event| event.is_git()) {
        report.at(
            &path.child("event"),
            Diagnostic::warning(
                "invalid-event",
                format!(
                    "`{}` fires only for `resource: content`, so this trigger never fires",
                    enum_name(&event)
                ),
            )
            .with_hint(
                "set `resource: content` and `contentSelector.git`, or pick a Kubernetes event",
            ),
        );
    }
    if spec.content_selector.is_some() {
        report.at_key(
            &path.child("contentSelector"),
            Diagnostic::warning(
                "ignored-field",
                "`contentSelector` is read only with `resource: content`",
            )
            .with_hint("set `resource: content`, or remove `contentSelector`"),
        );
    }
}

/// `contentSelector.git`: credentials and the pull request filter.
fn check_git_watch(
    report: &mut Report<'_>,
    path: &FieldPath,
    git: &GitWatch,
    event: Option<TriggerEvent>,
) {
    check_git_credentials(
        report,
        path,
        [
            ("token", git.token.is_some(), git.token_from.is_some()),
            (
                "username",
                git.username.is_some(),
                git.username_from.is_some(),
            ),
            ("sshKey", git.ssh_key.is_some(), git.ssh_key_from.is_some()),
        ],
    );
    let Some(pull_request) = &git.pull_request else {
        return;
    };
    let pull_request_path = path.child("pullRequest");
    if event.is_some_and(|event| event != TriggerEvent::GitPullRequest) {
        report.at_key(
            &pull_request_path,
            Diagnostic::warning(
                "ignored-field",
                "`pullRequest` is read only with `event: git-pull-request`",
            )
            .with_hint("set `event: git-pull-request`, or remove `pullRequest`"),
        );
    }
    for (index, kind) in pull_request.types.iter().enumerate() {
        let known = GitPullRequest::TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(kind.trim()));
        if !known {
            let hint = match did_you_mean(kind.trim(), GitPullRequest::TYPES) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "Testkube reports `{}` (a merged pull request is `closed`)",
                    GitPullRequest::TYPES.join("`, `")
                ),
            };
            report.at(
                &pull_request_path.child("types").child(index),
                Diagnostic::warning(
                    "invalid-value",
                    format!("pull request activity `{kind}` never happens, so it never fires"),
                )
                .with_hint(hint),
            );
        }
    }
}

/// One `match[]` condition, by the rules of Testkube's
/// `ValidateMatchConditions`.
fn check_match(
    report: &mut Report<'_>,
    item: &FieldPath,
    condition: &FieldMatch,
    event: Option<TriggerEvent>,
) {
    let field = &condition.path;
    if field.trim().is_empty() {
        report.at(
            &item.child("path"),
            Diagnostic::error("empty-value", "`match[].path` is empty")
                .with_hint("point at a field of the object, e.g. `.spec.replicas`"),
        );
        return;
    }
    if !MATCH_PATH.is_match(field) {
        report.at(
            &item.child("path"),
            Diagnostic::error(
                "invalid-path",
                format!("`{field}` is not a dot path into the object"),
            )
            .with_hint("start with `.` and join names of letters, digits, `_` and `-` with `.`, e.g. `.status.phase` or `.spec.template.spec.containers.0.image`"),
        );
    }
    if MATCH_PATH_INDEX.is_match(field) {
        report.at(
            &item.child("path"),
            Diagnostic::error(
                "unsupported",
                format!("`{field}` indexes an array with `[*]` or `[N]`, which Testkube does not match yet"),
            )
            .with_hint("match a scalar field; an array item is written `.containers.0.image`"),
        );
    }
    let operator = enum_name(&condition.operator);
    let has_value = condition.value.as_deref().is_some_and(|v| !v.is_empty());
    if condition.operator.needs_value() && !has_value {
        report.at(
            item,
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
    if condition.operator.compares_with_previous()
        && let Some(event) = event.filter(|e| *e != TriggerEvent::Modified)
    {
        report.at(
            &item.child("operator"),
            Diagnostic::error(
                "invalid-event",
                format!(
                    "operator `{operator}` compares with the object before the change, which only `event: modified` has, not `{}`",
                    enum_name(&event)
                ),
            )
            .with_hint("set `event: modified`, or compare the new object with `equals`/`exists`"),
        );
    }
}

/// Testkube's `MatchPathPattern` and `MatchPathBracketPattern` (with Go's
/// ASCII `\d` written `[0-9]`): dot-separated names, each optionally indexed
/// with `[*]` or `[N]`, which parses but is refused because Testkube cannot
/// match array items yet.
static MATCH_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\.[A-Za-z0-9_-]+(\[\*\]|\[[0-9]+\])?(\.[A-Za-z0-9_-]+(\[\*\]|\[[0-9]+\])?)*$")
        .expect("valid pattern")
});
static MATCH_PATH_INDEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\*\]|\[[0-9]+\]").expect("valid pattern"));

/// `conditionSpec` and `probeSpec` count seconds.
fn check_wait_seconds(report: &mut Report<'_>, path: &FieldPath, spec: &TriggerSpec) {
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
}

/// A selector with neither `matchLabels` nor `matchExpressions` selects
/// nothing in particular.
fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
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
