//! Checks of the building blocks shared by workflows, steps, services and
//! workers: containers (env, resources), content, artifacts, caches and
//! readiness probes.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Probe;

use super::report::Report;
use super::rules;
use crate::diagnostic::Diagnostic;
use crate::model::{
    Artifacts, ContainerConfig, Content, Duration, EnvVar, GitAuthType, Quantity, Resources,
    Service, StepCache, StepRun, has_template,
};
use crate::yaml::FieldPath;

/// Checks a container configuration (also `run` and a service's container part).
pub(crate) fn check_container(
    report: &mut Report<'_>,
    path: &FieldPath,
    container: &ContainerConfig,
) {
    check_env(report, &path.child("env"), &container.env);
    if let Some(resources) = &container.resources {
        check_resources(report, &path.child("resources"), resources);
    }
    if let Some(image) = &container.image
        && !has_template(image)
        && (image.trim().is_empty() || image.chars().any(char::is_whitespace))
    {
        report.at(
            &path.child("image"),
            Diagnostic::error(
                "invalid-image",
                format!("invalid image reference `{image}`"),
            )
            .with_hint("an image looks like `registry/name:tag`, without spaces"),
        );
    }
}

fn check_env(report: &mut Report<'_>, path: &FieldPath, env: &[EnvVar]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, var) in env.iter().enumerate() {
        let item = path.child(index);
        if var.name.trim().is_empty() {
            report.at(
                &item.child("name"),
                Diagnostic::error("empty-value", "environment variable without a name")
                    .with_hint("set `name`"),
            );
        } else if let Some(first) = seen.insert(&var.name, index) {
            report.at(
                &item.child("name"),
                Diagnostic::warning(
                    "duplicate-env",
                    format!("environment variable `{}` is set twice", var.name),
                )
                .with_hint(format!(
                    "`{path}[{first}]` sets it first; the later value wins"
                )),
            );
        }
        if var.value.is_some() && var.value_from.is_some() {
            report.at_key(
                &item.child("valueFrom"),
                Diagnostic::error(
                    "conflicting-fields",
                    format!("`{}` has both `value` and `valueFrom`", var.name),
                )
                .with_hint("keep one of them"),
            );
        }
    }
}

fn check_resources(report: &mut Report<'_>, path: &FieldPath, resources: &Resources) {
    for (field, map) in [
        ("limits", &resources.limits),
        ("requests", &resources.requests),
    ] {
        for (name, Quantity(value)) in map {
            if has_template(value) || rules::is_quantity(value) {
                continue;
            }
            report.at(
                &path.child(field).child(name.as_str()),
                Diagnostic::error("invalid-quantity", format!("invalid quantity `{value}` for `{name}`")).with_hint(
                    "use Kubernetes units: CPU as `500m` or `2`, memory as `512Mi` or `1Gi` (not `1GB`)",
                ),
            );
        }
    }
}

/// Checks `content`: a Git source needs a URI, a file has one source.
pub(crate) fn check_content(report: &mut Report<'_>, path: &FieldPath, content: &Content) {
    if let Some(git) = &content.git {
        let git_path = path.child("git");
        match &git.uri {
            None => report.at(
                &git_path,
                Diagnostic::error("missing-field", "`content.git` needs a `uri`")
                    .with_hint("set `uri: https://github.com/org/repo`"),
            ),
            Some(uri) if uri.trim().is_empty() => report.at(
                &git_path.child("uri"),
                Diagnostic::error("empty-value", "`content.git.uri` is empty")
                    .with_hint("set the repository URL"),
            ),
            _ => {}
        }
        check_git_credentials(
            report,
            &git_path,
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
        if git.auth_type == Some(GitAuthType::Github) {
            report.at(
                &git_path.child("authType"),
                Diagnostic::warning(
                    "unsupported",
                    "`authType: github` takes a token from Testkube's GitHub App, which a local run does not have",
                )
                .with_hint("the checkout sends `username`/`token` as with `basic`; set them, or use `basic`"),
            );
        }
    }
    for (index, file) in content.files.iter().enumerate() {
        let item = path.child("files").child(index);
        if file.path.trim().is_empty() {
            report.at(
                &item.child("path"),
                Diagnostic::error("empty-value", "`content.files[].path` is empty")
                    .with_hint("set where to write the file"),
            );
        }
        if file.content.is_some() && file.content_from.is_some() {
            report.at_key(
                &item.child("contentFrom"),
                Diagnostic::error(
                    "conflicting-fields",
                    "a file has both `content` and `contentFrom`",
                )
                .with_hint("keep one of them"),
            );
        }
        if let Some(mode) = file.mode
            && !(0..=0o7777).contains(&mode)
        {
            report.at(
                &item.child("mode"),
                Diagnostic::error("invalid-file-mode", format!("file mode {mode} is out of range"))
                    .with_hint("write the mode in octal with a leading zero, e.g. `0755`, or in decimal, e.g. `493`"),
            );
        }
    }
    for (index, tarball) in content.tarball.iter().enumerate() {
        let item = path.child("tarball").child(index);
        if !has_template(&tarball.url)
            && let Err(reason) = rules::tarball_source(&tarball.url)
        {
            report.at(
                &item.child("url"),
                Diagnostic::error("invalid-url", format!("invalid tarball URL: {reason}"))
                    .with_hint(
                        "use an http(s) URL (`https://example.com/tests.tar.gz`), a `file://` URL \
                         or a path",
                    ),
            );
        }
    }
}

/// Checks `artifacts`: paths to collect, archive name.
pub(crate) fn check_artifacts(report: &mut Report<'_>, path: &FieldPath, artifacts: &Artifacts) {
    if artifacts.paths.is_empty() {
        report.at_key(
            path,
            Diagnostic::error("missing-field", "`artifacts` has no `paths` to collect")
                .with_hint("add glob patterns, e.g. `paths: ['reports/**/*.xml']`"),
        );
    }
    if let Some(compress) = &artifacts.compress
        && !has_template(&compress.name)
        && !rules::is_archive_name(&compress.name)
    {
        report.at(
            &path.child("compress").child("name"),
            Diagnostic::error(
                "invalid-archive-name",
                format!(
                    "archive name `{}` must end with `.tar.gz` or `.tgz`",
                    compress.name
                ),
            )
            .with_hint("artifacts are compressed as gzipped tar, e.g. `name: reports.tar.gz`"),
        );
    }
}

/// Checks `cache`: a key and paths.
pub(crate) fn check_cache(report: &mut Report<'_>, path: &FieldPath, cache: &StepCache) {
    if cache.key.trim().is_empty() {
        report.at(
            &path.child("key"),
            Diagnostic::error("empty-value", "`cache.key` is empty")
                .with_hint("derive the key from a lock file, e.g. `npm-{{ sha256(file(\"package-lock.json\")) }}`"),
        );
    }
    if cache.paths.is_empty() {
        report.at_key(
            path,
            Diagnostic::error("missing-field", "`cache` has no `paths`")
                .with_hint("list the directories to cache"),
        );
    }
}

/// Checks `run`: one script at most, and a script replaces the command.
pub(crate) fn check_run(
    report: &mut Report<'_>,
    run_path: &FieldPath,
    shell: Option<&str>,
    run: &StepRun,
) {
    if shell.is_some() && run.shell.is_some() {
        report.at_key(
            &run_path.child("shell"),
            Diagnostic::error(
                "conflicting-fields",
                "a step cannot have both `shell` and `run.shell`",
            )
            .with_hint("keep one script: move it to `run.shell`, or drop `run.shell`"),
        );
    }
    if run.shell.is_some() {
        for (field, present) in [
            ("command", run.command.is_some()),
            ("args", run.args.is_some()),
        ] {
            if present {
                report.at_key(
                    &run_path.child(field),
                    Diagnostic::error(
                        "conflicting-fields",
                        format!("`run.shell` cannot be combined with `run.{field}`"),
                    )
                    .with_hint(format!(
                        "`run.shell` replaces the command; remove `{field}` or `shell`"
                    )),
                );
            }
        }
    }
    check_container(report, run_path, &run.container());
}

/// Checks a service's container, script and readiness probe.
pub(crate) fn check_service(report: &mut Report<'_>, path: &FieldPath, service: &Service) {
    if service.shell.is_some() {
        for (field, present) in [
            ("command", service.command.is_some()),
            ("args", service.args.is_some()),
        ] {
            if present {
                report.at_key(
                    &path.child(field),
                    Diagnostic::error(
                        "conflicting-fields",
                        format!("a service's `shell` cannot be combined with `{field}`"),
                    )
                    .with_hint(format!(
                        "`shell` replaces the command; remove `{field}` or `shell`"
                    )),
                );
            }
        }
    }
    check_container(report, path, &service.container());
    if let Some(content) = &service.content {
        check_content(report, &path.child("content"), content);
    }
    if let Some(probe) = &service.readiness_probe {
        check_probe(report, &path.child("readinessProbe"), probe);
    }
}

fn check_probe(report: &mut Report<'_>, path: &FieldPath, probe: &Probe) {
    let handlers: Vec<&str> = [
        ("exec", probe.exec.is_some()),
        ("httpGet", probe.http_get.is_some()),
        ("tcpSocket", probe.tcp_socket.is_some()),
        ("grpc", probe.grpc.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    match handlers.as_slice() {
        [] => report.at_key(
            path,
            Diagnostic::error("invalid-probe", "the readiness probe has no check")
                .with_hint("set one of `exec`, `httpGet`, `tcpSocket` or `grpc`"),
        ),
        [_] => {}
        [_, second, ..] => report.at_key(
            &path.child(*second),
            Diagnostic::error(
                "invalid-probe",
                format!(
                    "the readiness probe has several checks: {}",
                    handlers.join(", ")
                ),
            )
            .with_hint("a probe runs exactly one check; keep one"),
        ),
    }
    for (field, value, min) in [
        ("initialDelaySeconds", probe.initial_delay_seconds, 0),
        ("periodSeconds", probe.period_seconds, 1),
        ("timeoutSeconds", probe.timeout_seconds, 1),
        ("successThreshold", probe.success_threshold, 1),
        ("failureThreshold", probe.failure_threshold, 1),
    ] {
        if let Some(value) = value
            && value < min
        {
            report.at(
                &path.child(field),
                Diagnostic::error(
                    "out-of-range",
                    format!("`{field}` must be at least {min}, found {value}"),
                )
                .with_hint(format!("set `{field}` to {min} or more, or leave it out")),
            );
        }
    }
}

/// Reports a duration that does not parse (templates are checked later).
pub(crate) fn check_duration(report: &mut Report<'_>, path: &FieldPath, duration: &Duration) {
    if duration.is_expression() {
        return;
    }
    if let Err(error) = duration.parse() {
        report.at(
            path,
            Diagnostic::error("invalid-duration", error.to_string())
                .with_hint("use a duration such as `30s`, `5m`, `1h30m` or `500ms`"),
        );
    }
}

pub(crate) fn positive_seconds(report: &mut Report<'_>, path: &FieldPath, seconds: Option<i64>) {
    if let Some(seconds) = seconds
        && seconds < 1
    {
        report.at(
            &path.child("activeDeadlineSeconds"),
            Diagnostic::error(
                "out-of-range",
                format!("`activeDeadlineSeconds` must be at least 1, found {seconds}"),
            )
            .with_hint("leave it out for no deadline"),
        );
    }
}

/// A Git credential is written in plain text (`token`) or taken from a
/// secret (`tokenFrom`), not both: each entry is `(name, plain set, from set)`.
pub(crate) fn check_git_credentials(
    report: &mut Report<'_>,
    git_path: &FieldPath,
    credentials: [(&str, bool, bool); 3],
) {
    for (secret, plain, from) in credentials {
        if plain && from {
            report.at_key(
                &git_path.child(format!("{secret}From")),
                Diagnostic::error(
                    "conflicting-fields",
                    format!("`{secret}` and `{secret}From` are both set"),
                )
                .with_hint("keep one of them (prefer the secret reference)"),
            );
        }
    }
}

/// Checks a duration field outside workflows (triggers).
pub(crate) fn check_optional_duration(
    report: &mut Report<'_>,
    path: &FieldPath,
    duration: Option<&Duration>,
) {
    if let Some(duration) = duration {
        check_duration(report, path, duration);
    }
}
