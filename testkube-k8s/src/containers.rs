//! Which containers of a worker's pod run what, in order: consecutive
//! steps with the same container settings (image, pull policy, resources,
//! security context, volume mounts, `envFrom`) share a container, and each
//! change of settings starts the next one.
//!
//! A step's `content.git` checkout is work of its own: it runs in the git
//! image ([`ManifestOptions::git_image`]) just before the step's command,
//! since the step's own image may not have `git`. Its container has the
//! settings of the command it prepares for (its env, mounts, security
//! context, resources; the workflow's `content` prepares for the first
//! command), so a template such as `{{ env.TOKEN }}` or a non-root user
//! means the same there, and only the image differs. The runner in it is
//! the same `testkube-init`, with the same credentials handling and the
//! same `/data` paths; the task records which container runs each
//! checkout ([`WorkerTask::git_key`]) and each command.
//!
//! Containers are named `worker` (one) or `worker-1`, `worker-2`, ...,
//! and those only doing checkouts `git` (one) or `git-1`, `git-2`, ....

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar as KubeEnvVar, EnvVarSource, ResourceRequirements,
    SecurityContext, VolumeMount,
};
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::model::{ContainerConfig, ImagePullPolicy};
use testkube_core::plan::{Operation, PlanStep};

use crate::manifest::{
    INIT_BINARY, ManifestError, ManifestOptions, TASK_DIR, TOOLS_DIR, convert, mount,
};

/// What one container of the pod does: its settings and its members (the
/// task keys of the commands and checkouts it runs, with the container
/// settings they come with).
struct Group<'a> {
    settings: Settings,
    members: Vec<(String, &'a ContainerConfig)>,
    /// Only checkouts: named `git`.
    git_only: bool,
}

/// A command or a checkout, in the order the runner comes to them.
struct Leaf<'a> {
    key: String,
    /// The command's settings; `None` for a checkout (those of the next
    /// command, decided once all are known).
    config: Option<&'a ContainerConfig>,
}

/// The containers running the worker's steps, in order; records in the
/// task which container runs each command and checkout when there are
/// several.
pub(crate) fn worker_containers(
    task: &mut WorkerTask,
    options: &ManifestOptions,
) -> Result<Vec<Container>, ManifestError> {
    let worker = task.worker.path.clone();
    let mut leaves = Vec::new();
    collect_leaves(&task.root, &mut leaves);
    let fallback = ContainerConfig::default();
    // A checkout prepares for the command after it.
    let mut next: &ContainerConfig = &fallback;
    let mut resolved: Vec<(String, &ContainerConfig, bool)> = Vec::with_capacity(leaves.len());
    for leaf in leaves.iter().rev() {
        match leaf.config {
            Some(config) => {
                next = config;
                resolved.push((leaf.key.clone(), config, false));
            }
            None => resolved.push((leaf.key.clone(), next, true)),
        }
    }
    resolved.reverse();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (key, config, git) in resolved {
        let mut settings = Settings::of(config, options);
        if git {
            settings.image.clone_from(&options.git_image);
            settings.pull_policy = None;
        }
        match groups.last_mut() {
            Some(group) if group.settings == settings => {
                group.git_only &= git;
                group.members.push((key, config));
            }
            _ => groups.push(Group {
                settings,
                members: vec![(key, config)],
                git_only: git,
            }),
        }
    }
    if groups.is_empty() {
        groups.push(Group {
            settings: Settings::of(&fallback, options),
            members: Vec::new(),
            git_only: false,
        });
    }
    let mut assignment = BTreeMap::new();
    if groups.len() > 1 {
        for (index, group) in groups.iter().enumerate() {
            for (key, _) in &group.members {
                assignment.insert(key.clone(), index);
            }
        }
        check_retries(&task.root, &assignment, &groups, &worker)?;
    }
    let names = container_names(&groups);
    let containers = groups
        .iter()
        .zip(names)
        .enumerate()
        .map(|(index, (group, name))| {
            let configs: Vec<&ContainerConfig> = group.members.iter().map(|(_, c)| *c).collect();
            container(name, index, &group.settings, &configs, &worker)
        })
        .collect::<Result<Vec<_>, _>>()?;
    task.containers = assignment;
    Ok(containers)
}

/// `worker` / `git` for the only container of its kind, else numbered
/// within the kind.
fn container_names(groups: &[Group<'_>]) -> Vec<String> {
    let count = |git: bool| groups.iter().filter(|g| g.git_only == git).count();
    let (workers, gits) = (count(false), count(true));
    let (mut worker, mut git) = (0, 0);
    groups
        .iter()
        .map(|group| {
            let (kind, total, seen) = if group.git_only {
                ("git", gits, &mut git)
            } else {
                ("worker", workers, &mut worker)
            };
            *seen += 1;
            if total == 1 {
                kind.to_owned()
            } else {
                format!("{kind}-{seen}")
            }
        })
        .collect()
}

/// Refuses a `retry` around steps of different containers.
fn check_retries(
    step: &PlanStep,
    assignment: &BTreeMap<String, usize>,
    groups: &[Group<'_>],
    worker: &str,
) -> Result<(), ManifestError> {
    if step.retry.is_some() {
        let mut inside = Vec::new();
        collect_commands(step, &mut inside);
        let used: std::collections::BTreeSet<usize> = inside
            .iter()
            .filter_map(|(id, _)| assignment.get(*id).copied())
            .collect();
        if let (Some(first), Some(last)) = (used.first(), used.last())
            && first != last
        {
            return Err(ManifestError::RetryAcrossContainers {
                worker: worker.to_owned(),
                step: step.id.clone(),
                what: groups[*first].settings.difference(&groups[*last].settings),
            });
        }
    }
    for operation in &step.operations {
        if let Operation::Setup { steps } | Operation::Steps { steps } = operation {
            for child in steps {
                check_retries(child, assignment, groups, worker)?;
            }
        }
    }
    Ok(())
}

/// Container `index` of the pod's step containers.
fn container(
    name: String,
    index: usize,
    settings: &Settings,
    members: &[&ContainerConfig],
    worker: &str,
) -> Result<Container, ManifestError> {
    let invalid = |field: &str, message: String| ManifestError::Invalid {
        worker: worker.to_owned(),
        field: field.to_owned(),
        message,
    };
    let resources: Option<ResourceRequirements> = settings
        .resources
        .as_ref()
        .map(convert)
        .transpose()
        .map_err(|message| invalid("container.resources", message))?;
    let security_context: Option<SecurityContext> = settings
        .security_context
        .as_ref()
        .map(convert)
        .transpose()
        .map_err(|message| invalid("container.securityContext", message))?;
    // Variables Kubernetes must resolve (a Secret, a ConfigMap, a field of
    // the pod) go on the container: the runner cannot read them itself.
    let mut env: Vec<KubeEnvVar> = Vec::new();
    for config in members {
        for var in &config.env {
            let Some(source) = &var.value_from else {
                continue;
            };
            if env.iter().any(|known| known.name == var.name) {
                continue;
            }
            env.push(KubeEnvVar {
                name: var.name.clone(),
                value: None,
                value_from: Some(EnvVarSource::clone(source)),
            });
        }
    }
    let mut volume_mounts = vec![
        mount("testkube-data", "/data", false),
        mount("testkube-tmp", "/tmp", false),
        mount("testkube-internal", "/testkube", false),
        mount("testkube-tools", TOOLS_DIR, true),
        mount("testkube-task", TASK_DIR, true),
    ];
    volume_mounts.extend(settings.volume_mounts.iter().cloned());
    let mut command = vec![INIT_BINARY.to_owned(), "run".to_owned()];
    if index > 0 {
        command.extend(["--container".to_owned(), index.to_string()]);
    }
    Ok(Container {
        name,
        image: Some(settings.image.clone()),
        image_pull_policy: settings.pull_policy.map(|policy| {
            match policy {
                ImagePullPolicy::Always => "Always",
                ImagePullPolicy::IfNotPresent => "IfNotPresent",
                ImagePullPolicy::Never => "Never",
            }
            .to_owned()
        }),
        command: Some(command),
        env: (!env.is_empty()).then_some(env),
        env_from: (!settings.env_from.is_empty()).then(|| settings.env_from.clone()),
        resources,
        security_context,
        volume_mounts: Some(volume_mounts),
        termination_message_policy: Some("File".to_owned()),
        ..Container::default()
    })
}

/// The container settings that decide which container a step runs in.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    image: String,
    pull_policy: Option<ImagePullPolicy>,
    resources: Option<testkube_core::model::Resources>,
    security_context: Option<testkube_core::model::SecurityContext>,
    volume_mounts: Vec<VolumeMount>,
    env_from: Vec<EnvFromSource>,
}

impl Settings {
    fn of(config: &ContainerConfig, options: &ManifestOptions) -> Self {
        Settings {
            image: config
                .image
                .clone()
                .filter(|image| !image.is_empty())
                .unwrap_or_else(|| options.default_image.clone()),
            pull_policy: config.image_pull_policy,
            resources: config.resources.clone(),
            security_context: config.security_context.clone(),
            volume_mounts: config.volume_mounts.clone(),
            env_from: config.env_from.clone(),
        }
    }

    fn difference(&self, other: &Settings) -> String {
        if self.image != other.image {
            return format!("image `{}` and `{}`", self.image, other.image);
        }
        let fields = [
            ("imagePullPolicy", self.pull_policy != other.pull_policy),
            ("resources", self.resources != other.resources),
            (
                "securityContext",
                self.security_context != other.security_context,
            ),
            ("volumeMounts", self.volume_mounts != other.volume_mounts),
            ("envFrom", self.env_from != other.env_from),
        ];
        fields
            .iter()
            .filter(|(_, differs)| *differs)
            .map(|(field, _)| *field)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The commands and `content.git` checkouts of this worker, in the order
/// the runner comes to them (not those of parallel workers or services:
/// they get pods of their own).
fn collect_leaves<'a>(step: &'a PlanStep, found: &mut Vec<Leaf<'a>>) {
    for operation in &step.operations {
        match operation {
            Operation::Content { content } if content.git.is_some() => found.push(Leaf {
                key: WorkerTask::git_key(&step.id),
                config: None,
            }),
            Operation::Run { container, .. } | Operation::Shell { container, .. } => {
                found.push(Leaf {
                    key: step.id.clone(),
                    config: Some(container),
                });
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    collect_leaves(child, found);
                }
            }
            _ => {}
        }
    }
}

/// The steps that run a command in this worker, in order, with their
/// container settings.
fn collect_commands<'a>(step: &'a PlanStep, found: &mut Vec<(&'a str, &'a ContainerConfig)>) {
    for operation in &step.operations {
        match operation {
            Operation::Run { container, .. } | Operation::Shell { container, .. } => {
                found.push((&step.id, container));
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    collect_commands(child, found);
                }
            }
            _ => {}
        }
    }
}
