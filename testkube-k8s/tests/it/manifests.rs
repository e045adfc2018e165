//! The objects of a worker and of an execution, from real workflow YAML.

use k8s_openapi::api::batch::v1::Job;
use testkube_core::engine::ExecutionRequest;
use testkube_core::engine::protocol::WorkerTask;
use testkube_k8s::manifest::{INIT_BINARY, TASK_KEY};
use testkube_k8s::{ManifestError, ManifestOptions, execution_objects, labels};

use crate::cluster::plan;

fn objects(yaml: &str) -> testkube_k8s::ExecutionObjects {
    execution_objects(
        &plan(yaml),
        &ExecutionRequest::new("wf-123"),
        &ManifestOptions::default(),
    )
    .unwrap()
}

fn pod_spec(job: &Job) -> &k8s_openapi::api::core::v1::PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

#[test]
fn pod_and_job_settings_are_applied_and_test_pods_get_no_api_token() {
    let objects = objects(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  container:
    image: python:3.13-slim
    resources: {limits: {cpu: "1", memory: 512Mi}, requests: {cpu: 500m}}
    securityContext: {runAsUser: 1000, runAsNonRoot: true}
    volumeMounts: [{name: certs, mountPath: /certs}]
    envFrom: [{configMapRef: {name: settings}}]
    env:
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: creds, key: token}}
  pod:
    labels: {team: qa}
    annotations: {note: hi}
    nodeSelector: {disk: ssd}
    tolerations: [{key: dedicated, operator: Equal, value: tests, effect: NoSchedule}]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a]}]}]
    imagePullSecrets: [{name: registry}]
    volumes: [{name: certs, secret: {secretName: certs}}]
    securityContext: {runAsGroup: 3000}
    activeDeadlineSeconds: 600
    priorityClassName: low
  job:
    labels: {kind: nightly}
    annotations: {owner: qa}
    namespace: tests
    activeDeadlineSeconds: 900
  steps:
  - shell: pytest
"#,
    );
    assert_eq!(objects.workers.len(), 1);
    let job = &objects.workers[0].job;
    assert_eq!(job.metadata.namespace.as_deref(), Some("tests"));
    let job_labels = job.metadata.labels.as_ref().unwrap();
    assert_eq!(job_labels["kind"], "nightly");
    assert_eq!(job_labels[labels::EXECUTION], "wf-123");
    assert_eq!(job_labels[labels::WORKER], "0");
    assert_eq!(job.metadata.annotations.as_ref().unwrap()["owner"], "qa");
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(900));
    let template = spec.template.metadata.as_ref().unwrap();
    assert_eq!(template.labels.as_ref().unwrap()["team"], "qa");
    assert_eq!(
        template.labels.as_ref().unwrap()[labels::EXECUTION],
        "wf-123"
    );
    assert_eq!(template.annotations.as_ref().unwrap()["note"], "hi");
    assert_eq!(
        template.finalizers.as_deref(),
        Some(&[labels::FINALIZER.to_owned()][..])
    );
    let pod = pod_spec(job);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.node_selector.as_ref().unwrap()["disk"], "ssd");
    assert_eq!(
        pod.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    assert!(pod.affinity.as_ref().unwrap().node_affinity.is_some());
    assert_eq!(pod.image_pull_secrets.as_ref().unwrap()[0].name, "registry");
    assert_eq!(pod.active_deadline_seconds, Some(600));
    assert_eq!(pod.priority_class_name.as_deref(), Some("low"));
    let context = pod.security_context.as_ref().unwrap();
    assert_eq!(context.run_as_group, Some(3000));
    assert_eq!(context.fs_group, Some(1001), "Testkube's default fsGroup");
    let volumes: Vec<&str> = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert!(
        volumes.contains(&"certs") && volumes.contains(&"testkube-data"),
        "{volumes:?}"
    );

    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.command.as_ref().unwrap()[2], INIT_BINARY);
    let worker = &pod.containers[0];
    assert_eq!(worker.image.as_deref(), Some("python:3.13-slim"));
    assert_eq!(worker.command.as_ref().unwrap()[0], INIT_BINARY);
    let resources = worker.resources.as_ref().unwrap();
    assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "512Mi");
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "500m");
    let security = worker.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_user, Some(1000));
    assert_eq!(security.run_as_non_root, Some(true));
    let mounts: Vec<&str> = worker
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    for path in ["/data", "/tmp", "/testkube", "/certs"] {
        assert!(mounts.contains(&path), "{path} not in {mounts:?}");
    }
    // Kubernetes resolves what the runner cannot read: Secrets, ConfigMaps.
    let env = worker.env.as_ref().unwrap();
    assert_eq!(env[0].name, "TOKEN");
    assert!(env[0].value_from.as_ref().unwrap().secret_key_ref.is_some());
    assert!(
        worker.env_from.as_ref().unwrap()[0]
            .config_map_ref
            .is_some()
    );
}

#[test]
fn a_named_service_account_is_used_with_its_token() {
    let objects = objects(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  pod: {serviceAccountName: tester}
  steps:
  - shell: kubectl get pods
",
    );
    let pod = pod_spec(&objects.workers[0].job);
    assert_eq!(pod.service_account_name.as_deref(), Some("tester"));
    assert_eq!(pod.automount_service_account_token, None);
}

#[test]
fn the_task_secret_holds_the_worker_task() {
    let objects = objects(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  config: {greeting: {type: string, default: hi}}
  steps:
  - shell: echo {{ config.greeting }}
",
    );
    let worker = &objects.workers[0];
    let text = &worker.secret.string_data.as_ref().unwrap()[TASK_KEY];
    let task = WorkerTask::from_json(text.as_bytes()).unwrap();
    assert_eq!(task.execution.id, "wf-123");
    assert_eq!(task.worker.path, "root");
    assert_eq!(task.variables["execution"]["id"], "wf-123");
    assert_eq!(task.variables["workflow"]["name"], "wf");
    let volume = pod_spec(&worker.job)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "testkube-task")
        .unwrap();
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name,
        worker.secret.metadata.name
    );
    assert_eq!(
        worker.secret.metadata.labels.as_ref().unwrap()[labels::EXECUTION],
        "wf-123"
    );
}

#[test]
fn planned_parallel_workers_get_jobs_and_run_time_ones_a_note() {
    let objects = objects(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  steps:
  - name: browsers
    parallel:
      matrix: {browser: [chrome, firefox]}
      shell: echo {{ matrix.browser }}
  - name: later
    parallel:
      count: 'len(glob("tests/*.py"))'
      shell: echo hi
"#,
    );
    assert_eq!(objects.workers.len(), 3, "root and two matrix workers");
    let paths: Vec<String> = objects
        .workers
        .iter()
        .map(|w| w.job.metadata.annotations.as_ref().unwrap()[labels::WORKER_PATH].clone())
        .collect();
    assert_eq!(paths, ["root", "root/browsers/0", "root/browsers/1"]);
    let task: WorkerTask = WorkerTask::from_json(
        objects.workers[2].secret.string_data.as_ref().unwrap()[TASK_KEY].as_bytes(),
    )
    .unwrap();
    assert_eq!(task.variables["matrix"]["browser"], "firefox");
    assert_eq!(
        objects.workers[2].job.metadata.name.as_deref(),
        Some("wf-123-w2")
    );
    assert!(
        objects
            .notes
            .iter()
            .any(|n| n.contains("`later`") && n.contains("run time")),
        "{:?}",
        objects.notes
    );
}

#[test]
fn service_pods_are_named_in_the_notes_not_printed() {
    let objects = objects(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  steps:
  - name: api
    services:
      db: {shell: sleep 60}
      cache: {shell: sleep 60}
    shell: echo hi
"#,
    );
    assert_eq!(objects.workers.len(), 1);
    assert!(
        objects
            .notes
            .iter()
            .any(|n| n.contains("`api` starts services (db, cache)") && n.contains("pod")),
        "{:?}",
        objects.notes
    );
}

#[test]
fn steps_with_other_images_run_in_ordered_containers_of_one_pod() {
    let objects = objects(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  container: {image: alpine:3}
  steps:
  - name: one
    shell: echo one
  - name: two
    shell: echo two
  - name: three
    run: {image: python:3.13, shell: echo three}
  - name: four
    shell: echo four
",
    );
    let worker = &objects.workers[0];
    let pod = pod_spec(&worker.job);
    let init: Vec<(&str, &str)> = pod
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap()))
        .collect();
    assert_eq!(
        init,
        [
            ("testkube-init", "ghcr.io/testkube-rs/testkube-init:0.1.0"),
            ("worker-1", "alpine:3"),
            ("worker-2", "python:3.13"),
        ]
    );
    let main = &pod.containers[0];
    assert_eq!(
        (main.name.as_str(), main.image.as_deref()),
        ("worker-3", Some("alpine:3"))
    );
    assert_eq!(
        main.command.as_ref().unwrap()[1..],
        ["run".to_owned(), "--container".to_owned(), "2".to_owned()]
    );
    let task =
        WorkerTask::from_json(worker.secret.string_data.as_ref().unwrap()[TASK_KEY].as_bytes())
            .unwrap();
    let containers: Vec<usize> = task.containers.values().copied().collect();
    assert_eq!(task.containers.len(), 4);
    assert_eq!(containers.iter().filter(|c| **c == 0).count(), 2);
    assert_eq!(containers.iter().filter(|c| **c == 2).count(), 1);
}

#[test]
fn a_retry_around_steps_of_different_containers_is_refused() {
    let err = execution_objects(
        &plan(
            "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  steps:
  - name: flaky
    retry: {count: 2}
    steps:
    - run: {image: alpine:3, shell: echo one}
    - run: {image: python:3.13, shell: echo two}
",
        ),
        &ExecutionRequest::new("wf-1"),
        &ManifestOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ManifestError::RetryAcrossContainers { .. }));
    let text = err.to_string();
    assert!(
        text.contains("`flaky`") && text.contains("alpine:3"),
        "{text}"
    );
}

#[test]
fn long_names_still_make_valid_object_names_and_labels() {
    let name = "a-very-long-workflow-name-that-goes-on-and-on-and-on-and-on-forever";
    let id = format!("{name}-1765000000000-4242");
    let plan = plan(&format!(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: {name}}}
spec:
  steps:
  - shell: echo hi
"
    ));
    let objects = execution_objects(
        &plan,
        &ExecutionRequest::new(&id),
        &ManifestOptions::default(),
    )
    .unwrap();
    let job = &objects.workers[0].job;
    let job_name = job.metadata.name.as_deref().unwrap();
    assert!(job_name.len() <= 52, "{job_name}");
    for value in job.metadata.labels.as_ref().unwrap().values() {
        assert!(value.len() <= 63, "{value}");
    }
    // Two executions never share names.
    let other = execution_objects(
        &plan,
        &ExecutionRequest::new(format!("{id}9")),
        &ManifestOptions::default(),
    )
    .unwrap();
    assert_ne!(
        other.workers[0].job.metadata.name.as_deref(),
        Some(job_name)
    );
}
