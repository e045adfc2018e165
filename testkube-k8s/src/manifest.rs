//! The Kubernetes objects of one worker: a Secret holding its task and a
//! Job whose one pod runs it.
//!
//! The pod, in order:
//! 1. init container `testkube-init` (the init image) copies the runner to
//!    the shared tools volume ([`INIT_BINARY`]);
//! 2. the worker's steps, with that runner: consecutive steps with the same
//!    container settings (image, pull policy, resources, security context,
//!    volume mounts, `envFrom`) share a container; each change of settings
//!    starts the next one. One group is the container `worker`; several are
//!    `worker-1`, `worker-2`, ... in order, all but the last as init
//!    containers, so Kubernetes runs them one after the other (see
//!    `testkube_executors::runner::relay` for how the runner carries on).
//!    The image is the steps' `container.image`
//!    ([`ManifestOptions::default_image`] when none is set); the env
//!    Kubernetes must resolve (`valueFrom`, `envFrom`) goes on the
//!    container.
//!
//! `/data`, `/tmp` and `/testkube` are emptyDir volumes; the workflow's
//! `pod` settings are applied as the pod spec fields of the same names (all
//! of them: they are Kubernetes' own), `job` settings to the Job. Without a
//! `serviceAccountName`, no API token is mounted: test pods need none.
//!
//! A step `retry` around steps of different containers cannot be run (a
//! container cannot run again once the next has started) and is refused
//! ([`ManifestError::RetryAcrossContainers`]).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvFromSource, EnvVar as KubeEnvVar, EnvVarSource, KeyToPath,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, Secret, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::model::{ContainerConfig, ImagePullPolicy, JobConfig, PodConfig};
use testkube_core::plan::{Operation, PlanStep};

use crate::labels;

/// Where `testkube-init` is in the init image.
pub const INIT_IMAGE_BINARY: &str = "/testkube-init";
/// Where the init container copies `testkube-init` for the other containers.
pub const INIT_BINARY: &str = "/.testkube/bin/testkube-init";
/// The folder of [`INIT_BINARY`] (a shared emptyDir).
const TOOLS_DIR: &str = "/.testkube/bin";
/// Where the task Secret is mounted.
const TASK_DIR: &str = "/.testkube/task";
/// The task's file name in the Secret and the mount.
pub const TASK_KEY: &str = "task.json";
/// The group owning the pod's volumes unless the workflow says otherwise
/// (Testkube's default, so that non-root images can write `/data`).
pub(crate) const DEFAULT_FS_GROUP: i64 = 1001;
/// The longest Job name: its pods add a suffix, and `job-name` labels
/// must stay within 63 characters.
const MAX_JOB_NAME: usize = 52;

/// Settings of the objects that no workflow decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// The namespace (a workflow's `job.namespace` wins).
    pub namespace: String,
    /// The image that carries `testkube-init` at [`INIT_IMAGE_BINARY`].
    pub init_image: String,
    /// The image of steps that name none.
    pub default_image: String,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            namespace: "default".to_owned(),
            init_image: format!(
                "ghcr.io/testkube-rs/testkube-init:{}",
                env!("CARGO_PKG_VERSION")
            ),
            default_image: "busybox:1.37".to_owned(),
        }
    }
}

/// The objects of one worker, in the order to create them.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerObjects {
    /// The worker's task (`task.json`).
    pub secret: Secret,
    /// The Job running the worker.
    pub job: Job,
}

/// Why a worker's objects cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A step with `retry` holds steps that run in different containers.
    #[error(
        "worker {worker}: step `{step}` has `retry`, but its steps run in different containers \
         ({what}); a pod cannot run an earlier container again: give those steps the same image \
         and container settings, or move `retry` to the steps themselves"
    )]
    RetryAcrossContainers {
        /// The worker's path.
        worker: String,
        /// The step with `retry`.
        step: String,
        /// Why its steps need different containers.
        what: String,
    },
    /// A setting is not a valid Kubernetes value (an expression left for
    /// run time, where Kubernetes needs a number).
    #[error("worker {worker}: {field}: {message}")]
    Invalid {
        /// The worker's path.
        worker: String,
        /// The field (`pod.securityContext`).
        field: String,
        /// Why.
        message: String,
    },
}

/// The objects that run the worker of `task`, with the workflow's (or the
/// parallel block's) `pod` and `job` settings.
///
/// # Errors
/// [`ManifestError`] when the worker cannot run as one container, or a
/// setting is not a valid Kubernetes value.
pub fn worker_objects(
    task: &WorkerTask,
    pod: Option<&PodConfig>,
    job: Option<&JobConfig>,
    options: &ManifestOptions,
) -> Result<WorkerObjects, ManifestError> {
    let worker = &task.worker.path;
    let name = job_name(&task.execution.id, task.worker.number);
    let namespace = job
        .and_then(|job| job.namespace.clone())
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| options.namespace.clone());
    let ours = BTreeMap::from([
        (
            labels::EXECUTION.to_owned(),
            labels::label_value(&task.execution.id),
        ),
        (labels::WORKER.to_owned(), task.worker.number.to_string()),
        (
            labels::WORKFLOW.to_owned(),
            labels::label_value(&task.execution.workflow),
        ),
        (labels::RESOURCE.to_owned(), "worker".to_owned()),
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
    ]);
    let mut task = task.clone();
    let mut containers = worker_containers(&mut task, options)?;
    let task = &task;
    let secret_name = format!("{name}-task");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(ours.clone()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        string_data: Some(BTreeMap::from([(TASK_KEY.to_owned(), task.to_json())])),
        ..Secret::default()
    };

    let mut spec: PodSpec = match pod {
        Some(pod) => pod_spec(pod).map_err(|message| ManifestError::Invalid {
            worker: worker.clone(),
            field: "pod".to_owned(),
            message,
        })?,
        None => PodSpec::default(),
    };
    spec.restart_policy = Some("Never".to_owned());
    if spec.service_account_name.is_none() {
        spec.automount_service_account_token = Some(false);
    }
    spec.enable_service_links = Some(false);
    if pod.is_none_or(|pod| pod.disable_fs_group_defaulting != Some(true)) {
        let context = spec
            .security_context
            .get_or_insert_with(PodSecurityContext::default);
        context.fs_group.get_or_insert(DEFAULT_FS_GROUP);
    }
    let mut volumes = vec![
        empty_dir("testkube-data"),
        empty_dir("testkube-tmp"),
        empty_dir("testkube-internal"),
        empty_dir("testkube-tools"),
        Volume {
            name: "testkube-task".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name),
                items: Some(vec![KeyToPath {
                    key: TASK_KEY.to_owned(),
                    path: TASK_KEY.to_owned(),
                    ..KeyToPath::default()
                }]),
                default_mode: Some(0o444),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    volumes.extend(spec.volumes.take().unwrap_or_default());
    spec.volumes = Some(volumes);
    let main = containers.pop();
    let mut init_containers = vec![Container {
        name: "testkube-init".to_owned(),
        image: Some(options.init_image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec![
            INIT_IMAGE_BINARY.to_owned(),
            "copy".to_owned(),
            INIT_BINARY.to_owned(),
        ]),
        volume_mounts: Some(vec![mount("testkube-tools", TOOLS_DIR, false)]),
        ..Container::default()
    }];
    init_containers.extend(containers);
    spec.init_containers = Some(init_containers);
    spec.containers = main.into_iter().collect();

    let mut pod_labels: BTreeMap<String, String> = pod
        .map(|pod| pod.labels.clone().into_iter().collect())
        .unwrap_or_default();
    pod_labels.extend(ours.clone());
    let mut pod_annotations: BTreeMap<String, String> = pod
        .map(|pod| pod.annotations.clone().into_iter().collect())
        .unwrap_or_default();
    pod_annotations.insert(labels::WORKER_PATH.to_owned(), worker.clone());
    let mut job_labels: BTreeMap<String, String> = job
        .map(|job| job.labels.clone().into_iter().collect())
        .unwrap_or_default();
    job_labels.extend(ours);
    let job_annotations: BTreeMap<String, String> = job
        .map(|job| job.annotations.clone().into_iter().collect())
        .unwrap_or_default();
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(job_labels),
            annotations: Some(BTreeMap::from([(
                labels::WORKER_PATH.to_owned(),
                worker.clone(),
            )]))
            .map(|mut annotations| {
                annotations.extend(job_annotations);
                annotations
            }),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: job.and_then(|job| job.active_deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    finalizers: Some(vec![labels::FINALIZER.to_owned()]),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    };
    Ok(WorkerObjects { secret, job })
}

/// The Job name of worker `number` of `execution`.
#[must_use]
pub fn job_name(execution: &str, number: usize) -> String {
    let suffix = format!("-w{number}");
    let base = labels::dns_label(execution, MAX_JOB_NAME - suffix.len());
    format!("{base}{suffix}")
}

/// The containers running the worker's steps, in order; records in the
/// task which container runs each command step when there are several.
fn worker_containers(
    task: &mut WorkerTask,
    options: &ManifestOptions,
) -> Result<Vec<Container>, ManifestError> {
    let worker = task.worker.path.clone();
    let mut leaves = Vec::new();
    collect_commands(&task.root, &mut leaves);
    let mut groups: Vec<(Settings, Vec<(&str, &ContainerConfig)>)> = Vec::new();
    for (step, config) in &leaves {
        let settings = Settings::of(config, options);
        match groups.last_mut() {
            Some((current, members)) if *current == settings => members.push((step, config)),
            _ => groups.push((settings, vec![(step, config)])),
        }
    }
    if groups.is_empty() {
        groups.push((
            Settings::of(&ContainerConfig::default(), options),
            Vec::new(),
        ));
    }
    let mut assignment = std::collections::BTreeMap::new();
    if groups.len() > 1 {
        for (index, (_, members)) in groups.iter().enumerate() {
            for (step, _) in members {
                assignment.insert((*step).to_owned(), index);
            }
        }
        check_retries(&task.root, &assignment, &groups, &worker)?;
    }
    let single = groups.len() == 1;
    let containers = groups
        .iter()
        .enumerate()
        .map(|(index, (settings, members))| {
            let name = if single {
                "worker".to_owned()
            } else {
                format!("worker-{}", index + 1)
            };
            let configs: Vec<&ContainerConfig> = members.iter().map(|(_, c)| *c).collect();
            container(name, index, settings, &configs, &worker)
        })
        .collect::<Result<Vec<_>, _>>()?;
    task.containers = assignment;
    Ok(containers)
}

/// Refuses a `retry` around steps of different containers.
fn check_retries(
    step: &PlanStep,
    assignment: &std::collections::BTreeMap<String, usize>,
    groups: &[(Settings, Vec<(&str, &ContainerConfig)>)],
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
                what: groups[*first].0.difference(&groups[*last].0),
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

/// The steps that run a command in this worker, in order, with their
/// container settings (not those of parallel workers or services: they
/// get pods of their own).
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

/// The workflow's `pod` settings as a pod spec: its fields are the pod
/// spec's, except labels and annotations (metadata) and Testkube's own
/// `disableFsGroupDefaulting`.
pub(crate) fn pod_spec(pod: &PodConfig) -> Result<PodSpec, String> {
    let mut value = serde_json::to_value(pod).map_err(|err| err.to_string())?;
    if let Some(map) = value.as_object_mut() {
        for key in ["labels", "annotations", "disableFsGroupDefaulting"] {
            map.remove(key);
        }
        map.insert(
            "containers".to_owned(),
            serde_json::Value::Array(Vec::new()),
        );
    }
    serde_json::from_value(value).map_err(|err| format!("not a valid pod spec: {err}"))
}

/// A workflow setting as the Kubernetes type of the same shape; fails when
/// an expression is left where Kubernetes needs a number.
pub(crate) fn convert<T: Serialize, K: DeserializeOwned>(value: &T) -> Result<K, String> {
    let json = serde_json::to_value(value).map_err(|err| err.to_string())?;
    serde_json::from_value(json).map_err(|err| {
        format!("{err} (an expression must be decided before the run, e.g. from config)")
    })
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}
