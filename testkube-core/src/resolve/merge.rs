//! Merge rules: how a template's settings combine with the settings of the
//! workflow, step or service that uses it.
//!
//! Every function takes the template's value as `base` and the user's value as
//! `over`; the user's value wins field by field, lists are appended (the
//! template's items first) and maps are merged (the user's keys win). These
//! are Testkube's own rules (`testworkflowresolver/merge.go`), including its
//! quirks: setting `image` replaces `command` and `args` too, and environment
//! variables are de-duplicated by name keeping the last definition.

use indexmap::IndexMap;
use k8s_openapi::api::core::v1 as core;

use crate::model::{
    Concurrency, ContainerConfig, Content, EnvVar, ExecutionDefaults, JobConfig, PodConfig,
    PodSecurityContext, Resources, SecurityContext, SystemConfig, Timeouts,
};

/// `base` then `over`, the user's `Some` winning field by field.
fn merge_option<T>(base: Option<T>, over: Option<T>, merge: impl FnOnce(T, T) -> T) -> Option<T> {
    match (base, over) {
        (None, over) => over,
        (base, None) => base,
        (Some(base), Some(over)) => Some(merge(base, over)),
    }
}

fn append<T>(mut base: Vec<T>, over: Vec<T>) -> Vec<T> {
    base.extend(over);
    base
}

fn append_opt<T>(base: Option<Vec<T>>, over: Option<Vec<T>>) -> Option<Vec<T>> {
    merge_option(base, over, append)
}

/// Maps merged with the user's keys winning; the template's key order first.
pub(crate) fn merge_map<V>(
    mut base: IndexMap<String, V>,
    over: IndexMap<String, V>,
) -> IndexMap<String, V> {
    for (key, value) in over {
        base.insert(key, value);
    }
    base
}

/// Keeps the last definition of each variable name, at the position of that
/// last definition (Testkube's `DedupeEnvVars`).
pub(crate) fn dedupe_env(env: Vec<EnvVar>) -> Vec<EnvVar> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<EnvVar> = env
        .into_iter()
        .rev()
        .filter(|var| seen.insert(var.name.clone()))
        .collect();
    kept.reverse();
    kept
}

/// `container`: the template's container defaults under the user's.
pub(crate) fn merge_container(
    base: Option<ContainerConfig>,
    over: Option<ContainerConfig>,
) -> Option<ContainerConfig> {
    merge_option(base, over, |mut base, over| {
        if over.working_dir.is_some() {
            base.working_dir = over.working_dir;
        }
        if over.image_pull_policy.is_some() {
            base.image_pull_policy = over.image_pull_policy;
        }
        base.env = dedupe_env(append(base.env, over.env));
        base.env_from = append(base.env_from, over.env_from);
        base.volume_mounts = append(base.volume_mounts, over.volume_mounts);
        // A new image means the template's command was meant for another
        // image: replace command and args together.
        if over.image.is_some() {
            base.image = over.image;
            base.command = over.command;
            base.args = over.args;
        } else if over.command.is_some() {
            base.command = over.command;
            base.args = over.args;
        } else if over.args.is_some() {
            base.args = over.args;
        }
        base.resources = merge_option(base.resources, over.resources, merge_resources);
        base.security_context = merge_option(
            base.security_context,
            over.security_context,
            merge_security_context,
        );
        base
    })
}

fn merge_resources(base: Resources, over: Resources) -> Resources {
    Resources {
        limits: merge_map(base.limits, over.limits),
        requests: merge_map(base.requests, over.requests),
    }
}

fn merge_security_context(mut base: SecurityContext, over: SecurityContext) -> SecurityContext {
    base.capabilities = merge_option(base.capabilities, over.capabilities, |base, over| {
        core::Capabilities {
            add: append_opt(base.add, over.add),
            drop: append_opt(base.drop, over.drop),
        }
    });
    if over.privileged.is_some() {
        base.privileged = over.privileged;
    }
    base.se_linux_options =
        merge_option(base.se_linux_options, over.se_linux_options, merge_se_linux);
    base.windows_options = merge_option(base.windows_options, over.windows_options, merge_windows);
    if over.run_as_user.is_some() {
        base.run_as_user = over.run_as_user;
    }
    if over.run_as_group.is_some() {
        base.run_as_group = over.run_as_group;
    }
    if over.run_as_non_root.is_some() {
        base.run_as_non_root = over.run_as_non_root;
    }
    if over.read_only_root_filesystem.is_some() {
        base.read_only_root_filesystem = over.read_only_root_filesystem;
    }
    if over.allow_privilege_escalation.is_some() {
        base.allow_privilege_escalation = over.allow_privilege_escalation;
    }
    if over.proc_mount.is_some() {
        base.proc_mount = over.proc_mount;
    }
    if over.seccomp_profile.is_some() {
        base.seccomp_profile = over.seccomp_profile;
    }
    if over.app_armor_profile.is_some() {
        base.app_armor_profile = over.app_armor_profile;
    }
    base
}

fn merge_se_linux(
    mut base: core::SELinuxOptions,
    over: core::SELinuxOptions,
) -> core::SELinuxOptions {
    base.user = over.user.or(base.user);
    base.role = over.role.or(base.role);
    base.type_ = over.type_.or(base.type_);
    base.level = over.level.or(base.level);
    base
}

fn merge_windows(
    mut base: core::WindowsSecurityContextOptions,
    over: core::WindowsSecurityContextOptions,
) -> core::WindowsSecurityContextOptions {
    base.gmsa_credential_spec_name = over
        .gmsa_credential_spec_name
        .or(base.gmsa_credential_spec_name);
    base.gmsa_credential_spec = over.gmsa_credential_spec.or(base.gmsa_credential_spec);
    base.run_as_user_name = over.run_as_user_name.or(base.run_as_user_name);
    base.host_process = over.host_process.or(base.host_process);
    base
}

/// `content`: files and tarballs appended, the user's Git or OCI source
/// replacing the template's.
pub(crate) fn merge_content(base: Option<Content>, over: Option<Content>) -> Option<Content> {
    merge_option(base, over, |base, over| Content {
        git: over.git.or(base.git),
        files: append(base.files, over.files),
        tarball: append(base.tarball, over.tarball),
        oci: over.oci.or(base.oci),
    })
}

/// `job`: labels and annotations merged, the user's scalars winning.
pub(crate) fn merge_job(base: Option<JobConfig>, over: Option<JobConfig>) -> Option<JobConfig> {
    merge_option(base, over, |base, over| JobConfig {
        labels: merge_map(base.labels, over.labels),
        annotations: merge_map(base.annotations, over.annotations),
        namespace: over.namespace.or(base.namespace),
        active_deadline_seconds: over
            .active_deadline_seconds
            .or(base.active_deadline_seconds),
    })
}

/// `pod`: maps merged, lists appended, scheduling scalars from the user.
pub(crate) fn merge_pod(base: Option<PodConfig>, over: Option<PodConfig>) -> Option<PodConfig> {
    merge_option(base, over, |mut base, over| {
        base.labels = merge_map(base.labels, over.labels);
        base.annotations = merge_map(base.annotations, over.annotations);
        base.node_selector = merge_map(base.node_selector, over.node_selector);
        base.volumes = append(base.volumes, over.volumes);
        base.image_pull_secrets = append(base.image_pull_secrets, over.image_pull_secrets);
        base.service_account_name = over.service_account_name.or(base.service_account_name);
        base.active_deadline_seconds = over
            .active_deadline_seconds
            .or(base.active_deadline_seconds);
        base.dns_policy = over.dns_policy.or(base.dns_policy);
        base.node_name = over.node_name.or(base.node_name);
        base.security_context = merge_option(
            base.security_context,
            over.security_context,
            merge_pod_security_context,
        );
        base.disable_fs_group_defaulting = over
            .disable_fs_group_defaulting
            .or(base.disable_fs_group_defaulting);
        base.hostname = over.hostname.or(base.hostname);
        base.subdomain = over.subdomain.or(base.subdomain);
        base.affinity = merge_option(base.affinity, over.affinity, merge_affinity);
        base.tolerations = append(base.tolerations, over.tolerations);
        base.host_aliases = append(base.host_aliases, over.host_aliases);
        base.priority_class_name = over.priority_class_name.or(base.priority_class_name);
        base.priority = over.priority.or(base.priority);
        base.dns_config = merge_option(base.dns_config, over.dns_config, |base, over| {
            core::PodDNSConfig {
                nameservers: append_opt(base.nameservers, over.nameservers),
                searches: append_opt(base.searches, over.searches),
                options: append_opt(base.options, over.options),
            }
        });
        base.preemption_policy = over.preemption_policy.or(base.preemption_policy);
        base.topology_spread_constraints = append(
            base.topology_spread_constraints,
            over.topology_spread_constraints,
        );
        base.scheduling_gates = append(base.scheduling_gates, over.scheduling_gates);
        // Testkube puts the user's resource claims first here (unlike every
        // other list); kept for identical pods.
        base.resource_claims = append(over.resource_claims, base.resource_claims);
        base.host_pid = over.host_pid.or(base.host_pid);
        base
    })
}

fn merge_pod_security_context(
    mut base: PodSecurityContext,
    over: PodSecurityContext,
) -> PodSecurityContext {
    base.se_linux_options =
        merge_option(base.se_linux_options, over.se_linux_options, merge_se_linux);
    base.windows_options = merge_option(base.windows_options, over.windows_options, merge_windows);
    base.run_as_user = over.run_as_user.or(base.run_as_user);
    base.run_as_group = over.run_as_group.or(base.run_as_group);
    base.run_as_non_root = over.run_as_non_root.or(base.run_as_non_root);
    base.supplemental_groups = append(base.supplemental_groups, over.supplemental_groups);
    base.supplemental_groups_policy = over
        .supplemental_groups_policy
        .or(base.supplemental_groups_policy);
    base.fs_group = over.fs_group.or(base.fs_group);
    base.sysctls = append(base.sysctls, over.sysctls);
    base.fs_group_change_policy = over.fs_group_change_policy.or(base.fs_group_change_policy);
    base.seccomp_profile = over.seccomp_profile.or(base.seccomp_profile);
    base.app_armor_profile = over.app_armor_profile.or(base.app_armor_profile);
    base.se_linux_change_policy = over.se_linux_change_policy.or(base.se_linux_change_policy);
    base
}

fn merge_affinity(base: core::Affinity, over: core::Affinity) -> core::Affinity {
    core::Affinity {
        node_affinity: merge_option(base.node_affinity, over.node_affinity, |base, over| {
            core::NodeAffinity {
                required_during_scheduling_ignored_during_execution: merge_option(
                    base.required_during_scheduling_ignored_during_execution,
                    over.required_during_scheduling_ignored_during_execution,
                    |base, over| core::NodeSelector {
                        node_selector_terms: append(
                            base.node_selector_terms,
                            over.node_selector_terms,
                        ),
                    },
                ),
                preferred_during_scheduling_ignored_during_execution: append_opt(
                    base.preferred_during_scheduling_ignored_during_execution,
                    over.preferred_during_scheduling_ignored_during_execution,
                ),
            }
        }),
        pod_affinity: merge_option(base.pod_affinity, over.pod_affinity, |base, over| {
            core::PodAffinity {
                required_during_scheduling_ignored_during_execution: append_opt(
                    base.required_during_scheduling_ignored_during_execution,
                    over.required_during_scheduling_ignored_during_execution,
                ),
                preferred_during_scheduling_ignored_during_execution: append_opt(
                    base.preferred_during_scheduling_ignored_during_execution,
                    over.preferred_during_scheduling_ignored_during_execution,
                ),
            }
        }),
        pod_anti_affinity: merge_option(
            base.pod_anti_affinity,
            over.pod_anti_affinity,
            |base, over| core::PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: append_opt(
                    base.required_during_scheduling_ignored_during_execution,
                    over.required_during_scheduling_ignored_during_execution,
                ),
                preferred_during_scheduling_ignored_during_execution: append_opt(
                    base.preferred_during_scheduling_ignored_during_execution,
                    over.preferred_during_scheduling_ignored_during_execution,
                ),
            },
        ),
    }
}

/// `execution`: tags merged, the user's other settings winning.
pub(crate) fn merge_execution(
    base: Option<ExecutionDefaults>,
    over: Option<ExecutionDefaults>,
) -> Option<ExecutionDefaults> {
    merge_option(base, over, |base, over| ExecutionDefaults {
        tags: merge_map(base.tags, over.tags),
        target: over.target.or(base.target),
        silent: over.silent.or(base.silent),
    })
}

/// `concurrency`: the user's policy replaces the template's.
pub(crate) fn merge_concurrency(
    base: Option<Concurrency>,
    over: Option<Concurrency>,
) -> Option<Concurrency> {
    merge_option(base, over, |_, over| over)
}

/// `system`: field by field.
pub(crate) fn merge_system(
    base: Option<SystemConfig>,
    over: Option<SystemConfig>,
) -> Option<SystemConfig> {
    merge_option(base, over, |base, over| SystemConfig {
        pure_by_default: over.pure_by_default.or(base.pure_by_default),
        isolated_containers: over.isolated_containers.or(base.isolated_containers),
    })
}

/// `timeouts`: field by field.
pub(crate) fn merge_timeouts(base: Option<Timeouts>, over: Option<Timeouts>) -> Option<Timeouts> {
    merge_option(base, over, |base, over| Timeouts {
        queue: over.queue.or(base.queue),
        initialization: over.initialization.or(base.initialization),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..EnvVar::default()
        }
    }

    #[test]
    fn user_image_replaces_template_command_and_args() {
        let template = ContainerConfig {
            image: Some("node:20".into()),
            command: Some(vec!["npm".into()]),
            args: Some(vec!["test".into()]),
            env: vec![env("A", "template"), env("B", "template")],
            working_dir: Some("/data/repo".into()),
            ..ContainerConfig::default()
        };
        let user = ContainerConfig {
            image: Some("node:22".into()),
            env: vec![env("A", "user")],
            ..ContainerConfig::default()
        };
        let merged = merge_container(Some(template.clone()), Some(user)).unwrap_or_default();
        assert_eq!(merged.image.as_deref(), Some("node:22"));
        assert_eq!(merged.command, None);
        assert_eq!(merged.args, None);
        assert_eq!(merged.working_dir.as_deref(), Some("/data/repo"));
        assert_eq!(merged.env, vec![env("B", "template"), env("A", "user")]);

        let args_only = ContainerConfig {
            args: Some(vec!["run".into(), "e2e".into()]),
            ..ContainerConfig::default()
        };
        let merged = merge_container(Some(template), Some(args_only)).unwrap_or_default();
        assert_eq!(merged.command, Some(vec!["npm".into()]));
        assert_eq!(merged.args, Some(vec!["run".into(), "e2e".into()]));
    }

    #[test]
    fn content_appends_files_and_user_git_wins() {
        let file = |path: &str| crate::model::ContentFile {
            path: path.into(),
            ..Default::default()
        };
        let template = Content {
            files: vec![file("/a")],
            git: Some(crate::model::GitContent {
                uri: Some("https://t".into()),
                ..Default::default()
            }),
            ..Content::default()
        };
        let user = Content {
            files: vec![file("/b")],
            ..Content::default()
        };
        let merged = merge_content(Some(template), Some(user)).unwrap_or_default();
        let paths: Vec<&str> = merged.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/a", "/b"]);
        assert_eq!(merged.git.and_then(|g| g.uri).as_deref(), Some("https://t"));
    }

    #[test]
    fn pod_maps_merge_and_lists_append() {
        let mut template = PodConfig::default();
        template.labels.insert("a".into(), "1".into());
        template.labels.insert("b".into(), "1".into());
        template.service_account_name = Some("template".into());
        let mut user = PodConfig::default();
        user.labels.insert("b".into(), "2".into());
        let merged = merge_pod(Some(template), Some(user)).unwrap_or_default();
        assert_eq!(merged.labels.get("a").map(String::as_str), Some("1"));
        assert_eq!(merged.labels.get("b").map(String::as_str), Some("2"));
        assert_eq!(merged.service_account_name.as_deref(), Some("template"));
    }
}
