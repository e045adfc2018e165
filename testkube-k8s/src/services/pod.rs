//! The pod of one service instance, built from what its worker sent (a
//! [`ServiceInstanceSpec`], every template rendered) without touching a
//! cluster.
//!
//! One container, `service`, in the instance's image ([`ManifestOptions::
//! default_image`] when it names none) with its command, args, env
//! (`valueFrom` resolved by Kubernetes), `envFrom`, working directory,
//! resources, security context, volume mounts and the native
//! `readinessProbe`; the service's `restartPolicy` (default `Never`) and
//! its `pod` settings as the pod spec fields of the same names. Like worker
//! pods: no API token unless a service account is named, `fsGroup` 1001
//! unless set, the finalizer `testkube.io/results`, and labels naming the
//! execution, worker, service and instance. Stopping it should not take
//! Kubernetes' 30 s default: the grace period is [`GRACE_SECONDS`] unless
//! the service's `pod` sets one, as a local service gets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar as KubeEnvVar, Pod, PodSecurityContext, PodSpec, Probe,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use testkube_core::engine::protocol::ServiceInstanceSpec;
use testkube_core::model::{ImagePullPolicy, ServiceRestartPolicy};

use crate::labels;
use crate::manifest::{DEFAULT_FS_GROUP, ManifestOptions, convert, pod_spec};

/// The container of a service pod.
pub(crate) const CONTAINER: &str = "service";

/// How long a stopped service may take to exit before it is killed, unless
/// its `pod.terminationGracePeriodSeconds` says otherwise.
pub(crate) const GRACE_SECONDS: i64 = 2;

/// What a service pod belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    /// Its namespace.
    pub(crate) namespace: String,
    /// The execution id.
    pub(crate) execution: String,
    /// The workflow's name.
    pub(crate) workflow: String,
    /// The worker's number.
    pub(crate) worker: usize,
    /// The worker's path (`root/tests/2`).
    pub(crate) worker_path: String,
    /// The worker's Job name, which service pod names start with.
    pub(crate) job_name: String,
}

/// The pod's name: the worker's Job, the step, the service and the
/// instance, and `start` (a number unique in the worker) so that a step
/// that runs again never meets a pod of its last attempt still stopping.
pub(crate) fn pod_name(
    owner: &Owner,
    step: &str,
    spec: &ServiceInstanceSpec,
    start: usize,
) -> String {
    let suffix = format!("-{}-s{start}", spec.index);
    let base = labels::dns_label(
        &format!("{}-{step}-{}", owner.job_name, spec.name),
        63 - suffix.len(),
    );
    format!("{base}{suffix}")
}

/// The pod of `spec`, named `name`.
pub(crate) fn service_pod(
    owner: &Owner,
    step: &str,
    spec: &ServiceInstanceSpec,
    name: &str,
    options: &ManifestOptions,
) -> Result<Pod, String> {
    let label = spec.label();
    let invalid = |field: &str, message: String| format!("{label}: {field}: {message}");
    let mut pod_spec: PodSpec = match &spec.pod {
        Some(pod) => pod_spec(pod).map_err(|message| invalid("pod", message))?,
        None => PodSpec::default(),
    };
    pod_spec.restart_policy = Some(
        match spec.restart_policy {
            Some(ServiceRestartPolicy::OnFailure) => "OnFailure",
            Some(ServiceRestartPolicy::Never) | None => "Never",
        }
        .to_owned(),
    );
    if pod_spec.service_account_name.is_none() {
        pod_spec.automount_service_account_token = Some(false);
    }
    pod_spec.enable_service_links = Some(false);
    pod_spec
        .termination_grace_period_seconds
        .get_or_insert(GRACE_SECONDS);
    if spec
        .pod
        .as_ref()
        .is_none_or(|pod| pod.disable_fs_group_defaulting != Some(true))
    {
        let context = pod_spec
            .security_context
            .get_or_insert_with(PodSecurityContext::default);
        context.fs_group.get_or_insert(DEFAULT_FS_GROUP);
    }
    pod_spec.containers = vec![container(spec, options, &invalid)?];

    let mut pod_labels: BTreeMap<String, String> = spec
        .pod
        .as_ref()
        .map(|pod| pod.labels.clone().into_iter().collect())
        .unwrap_or_default();
    pod_labels.extend([
        (
            labels::EXECUTION.to_owned(),
            labels::label_value(&owner.execution),
        ),
        (labels::WORKER.to_owned(), owner.worker.to_string()),
        (
            labels::WORKFLOW.to_owned(),
            labels::label_value(&owner.workflow),
        ),
        (
            labels::RESOURCE.to_owned(),
            labels::SERVICE_RESOURCE.to_owned(),
        ),
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (labels::SERVICE.to_owned(), labels::label_value(&spec.name)),
        (labels::SERVICE_INDEX.to_owned(), spec.index.to_string()),
    ]);
    let mut annotations: BTreeMap<String, String> = spec
        .pod
        .as_ref()
        .map(|pod| pod.annotations.clone().into_iter().collect())
        .unwrap_or_default();
    annotations.insert(labels::WORKER_PATH.to_owned(), owner.worker_path.clone());
    annotations.insert(labels::SERVICE_STEP.to_owned(), step.to_owned());
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(owner.namespace.clone()),
            labels: Some(pod_labels),
            annotations: Some(annotations),
            finalizers: Some(vec![labels::FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    })
}

fn container(
    spec: &ServiceInstanceSpec,
    options: &ManifestOptions,
    invalid: &dyn Fn(&str, String) -> String,
) -> Result<Container, String> {
    let config = &spec.container;
    let env: Vec<KubeEnvVar> = config
        .env
        .iter()
        .map(|var| KubeEnvVar {
            name: var.name.clone(),
            value: if var.value_from.is_some() {
                None
            } else {
                Some(var.value.clone().unwrap_or_default())
            },
            value_from: var.value_from.clone(),
        })
        .collect();
    let readiness_probe: Option<Probe> = spec.readiness_probe.clone();
    Ok(Container {
        name: CONTAINER.to_owned(),
        image: Some(
            config
                .image
                .clone()
                .filter(|image| !image.is_empty())
                .unwrap_or_else(|| options.default_image.clone()),
        ),
        image_pull_policy: config.image_pull_policy.map(|policy| {
            match policy {
                ImagePullPolicy::Always => "Always",
                ImagePullPolicy::IfNotPresent => "IfNotPresent",
                ImagePullPolicy::Never => "Never",
            }
            .to_owned()
        }),
        command: config.command.clone().filter(|c| !c.is_empty()),
        args: config.args.clone().filter(|a| !a.is_empty()),
        working_dir: config.working_dir.clone().filter(|dir| !dir.is_empty()),
        env: (!env.is_empty()).then_some(env),
        env_from: (!config.env_from.is_empty()).then(|| config.env_from.clone()),
        resources: config
            .resources
            .as_ref()
            .map(convert)
            .transpose()
            .map_err(|message| invalid("resources", message))?,
        security_context: config
            .security_context
            .as_ref()
            .map(convert)
            .transpose()
            .map_err(|message| invalid("securityContext", message))?,
        volume_mounts: (!config.volume_mounts.is_empty()).then(|| config.volume_mounts.clone()),
        readiness_probe,
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkube_core::model::{ContainerConfig, EnvVar};

    fn owner() -> Owner {
        Owner {
            namespace: "tests".into(),
            execution: "api-7".into(),
            workflow: "api".into(),
            worker: 0,
            worker_path: "root".into(),
            job_name: "api-7-w0".into(),
        }
    }

    #[test]
    fn a_service_pod_runs_its_command_with_the_native_probe_and_no_token() {
        let spec: ServiceInstanceSpec = serde_json::from_value(serde_json::json!({
            "name": "db",
            "index": 1,
            "container": {
                "command": ["/bin/sh", "-e", "-c", "serve"],
                "env": [
                    {"name": "MODE", "value": "fast"},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                ],
                "resources": {"limits": {"memory": "64Mi"}}
            },
            "readinessProbe": {"tcpSocket": {"port": 5432}, "periodSeconds": 1},
            "restartPolicy": "OnFailure",
            "pod": {"labels": {"team": "a"}, "nodeSelector": {"disk": "ssd"}},
            "timeoutMs": 1000
        }))
        .unwrap();
        let name = pod_name(&owner(), "api", &spec, 3);
        assert_eq!(name, "api-7-w0-api-db-1-s3");
        let pod = service_pod(&owner(), "api", &spec, &name, &ManifestOptions::default()).unwrap();
        let json = serde_json::to_value(&pod).unwrap();
        let labels = &json["metadata"]["labels"];
        assert_eq!(labels["testkube.io/resource"], "service");
        assert_eq!(labels["testkube.io/service"], "db");
        assert_eq!(labels["testkube.io/service-index"], "1");
        assert_eq!(labels["testkube.io/execution"], "api-7");
        assert_eq!(labels["team"], "a");
        assert_eq!(json["metadata"]["finalizers"][0], labels::FINALIZER);
        let pod_spec = &json["spec"];
        assert_eq!(pod_spec["restartPolicy"], "OnFailure");
        assert_eq!(pod_spec["automountServiceAccountToken"], false);
        assert_eq!(pod_spec["nodeSelector"]["disk"], "ssd");
        assert_eq!(pod_spec["terminationGracePeriodSeconds"], GRACE_SECONDS);
        let container = &pod_spec["containers"][0];
        assert_eq!(container["image"], "busybox:1.37");
        assert_eq!(container["command"][3], "serve");
        assert_eq!(container["env"][0]["value"], "fast");
        assert_eq!(
            container["env"][1]["valueFrom"]["fieldRef"]["fieldPath"],
            "status.podIP"
        );
        assert_eq!(container["resources"]["limits"]["memory"], "64Mi");
        assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], 5432);
    }

    #[test]
    fn names_stay_valid_for_long_steps_and_services() {
        let spec = ServiceInstanceSpec {
            name: "Very_Long_Service_Name".repeat(4),
            index: 12,
            container: ContainerConfig {
                env: vec![EnvVar::default()],
                ..ContainerConfig::default()
            },
            readiness_probe: None,
            restart_policy: None,
            pod: None,
            timeout_ms: 0,
            logs: false,
        };
        let name = pod_name(&owner(), &"step".repeat(20), &spec, 105);
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("-12-s105"), "{name}");
        let pod = service_pod(&owner(), "s", &spec, &name, &ManifestOptions::default()).unwrap();
        let labels = pod.metadata.labels.unwrap();
        assert!(labels[labels::SERVICE].len() <= 63);
    }
}
