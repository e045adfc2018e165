//! The Kubernetes objects of one worker: a Secret holding its task and a
//! Job whose one pod runs it.
//!
//! The pod, in order:
//! 1. init container `testkube-init` (the init image) copies the runner to
//!    the shared tools volume ([`INIT_BINARY`]);
//! 2. the worker's steps, with that runner, in the containers
//!    [`crate::containers`] decides: consecutive steps with the same
//!    container settings share one, each change of settings starts the
//!    next, and a `content.git` checkout runs in the git image
//!    ([`ManifestOptions::git_image`]). One container is `worker`; several
//!    run in order, all but the last as init containers, so Kubernetes
//!    runs them one after the other (see
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
    Container, EmptyDirVolumeSource, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec,
    Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::model::{JobConfig, PodConfig};

use crate::containers::worker_containers;
use crate::labels;

/// Where `testkube-init` is in the init image.
pub const INIT_IMAGE_BINARY: &str = "/testkube-init";
/// Where the init container copies `testkube-init` for the other containers.
pub const INIT_BINARY: &str = "/.testkube/bin/testkube-init";
/// The folder of [`INIT_BINARY`] (a shared emptyDir).
pub(crate) const TOOLS_DIR: &str = "/.testkube/bin";
/// Where the task Secret is mounted.
pub(crate) const TASK_DIR: &str = "/.testkube/task";
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
    /// The image that runs `content.git` checkouts: it must have `git`
    /// (and `ssh` for SSH URLs) and run `testkube-init` like every image.
    pub git_image: String,
}

/// [`ManifestOptions::git_image`] unless told otherwise: pinned, so runs
/// repeat.
pub const DEFAULT_GIT_IMAGE: &str = "alpine/git:v2.47.2";

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            namespace: "default".to_owned(),
            init_image: format!(
                "ghcr.io/testkube-rs/testkube-init:{}",
                env!("CARGO_PKG_VERSION")
            ),
            default_image: "busybox:1.37".to_owned(),
            git_image: DEFAULT_GIT_IMAGE.to_owned(),
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

pub(crate) fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}
