//! `content.git` in pods: checkouts run in a container of the git image
//! before the steps that need them. The repositories are local bare ones
//! (`file://` URLs: kube-sim's containers see this machine's root
//! read-only, except `/tmp`, which is their own, so they live under the
//! target folder).

use std::path::{Path, PathBuf};
use std::process::Command;

use testkube_core::engine::protocol::WorkerTask;
use testkube_core::engine::{Event, ExecutionRequest};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_k8s::manifest::TASK_KEY;
use testkube_k8s::{ManifestOptions, execution_objects};

use crate::cluster::{self, Cluster, logs, plan, step_status};

pub(crate) struct BareRepo {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl BareRepo {
    /// A bare repository whose `main` branch holds `files`.
    pub(crate) fn new(files: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let dir = temp.path();
        let work = dir.join("repo-work");
        let path = dir.join("repo.git");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "--quiet", "-b", "main"]);
        for (name, text) in files {
            let file = work.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        git(&work, &["add", "."]);
        git(&work, &["commit", "--quiet", "-m", "files"]);
        git(
            dir,
            &[
                "clone",
                "--quiet",
                "--bare",
                &work.display().to_string(),
                &path.display().to_string(),
            ],
        );
        BareRepo { path, _dir: temp }
    }

    pub(crate) fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

/// What container `container` of the pod of `execution` wrote, as kube-sim
/// keeps it (`STATE/pods/NS_POD_UID/containers/NAME/output.log`, kept after
/// the pod is gone).
fn container_log(cluster: &Cluster, execution: &str, container: &str) -> String {
    let pods = cluster.dir.path().join("state/pods");
    let mut text = String::new();
    for entry in std::fs::read_dir(&pods).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("default_{execution}-")) {
            let log = entry
                .path()
                .join("containers")
                .join(container)
                .join("output.log");
            text.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        }
    }
    text
}

/// The pod template of the Job created for `execution`, from the audit log.
fn created_pod_spec(cluster: &Cluster, execution: &str) -> serde_json::Value {
    cluster
        .audit()
        .into_iter()
        .find(|line| {
            line["verb"] == "create"
                && line["objectRef"]["resource"] == "jobs"
                && line["requestObject"]["metadata"]["labels"]["testkube.io/execution"] == execution
        })
        .map(|line| line["requestObject"]["spec"]["template"]["spec"].clone())
        .expect("the Job was created")
}

fn names_and_images(containers: &serde_json::Value) -> Vec<(String, String)> {
    containers
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["image"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_content_is_checked_out_by_a_container_of_the_git_image_before_the_steps() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let repo = BareRepo::new(&[("README", "hello from git\n"), ("tests/a.txt", "a\n")]);
    let token = "tk-never-shown-1234";
    let yaml = format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: git}}
spec:
  content:
    git:
      uri: '{url}'
      token: {token}
  container: {{image: "example.com/no-git:1"}}
  steps:
  - name: read
    shell: cat /data/repo/README
  - name: again
    content:
      git:
        uri: '{url}'
        mountPath: /data/second
        paths: [tests]
    shell: ls /data/second; cat /data/second/tests/a.txt
"#,
        url = repo.url()
    );
    let (summary, events) = cluster.run(plan(&yaml), "git-1").await;
    assert_eq!(
        summary.status,
        ExecutionStatus::Passed,
        "{summary:#?}\n{events:#?}"
    );
    assert_eq!(logs(&events, "read"), "hello from git\n");
    assert!(
        logs(&events, "again").ends_with("tests\na\n"),
        "the sparse checkout: {:?}",
        logs(&events, "again")
    );
    // The checkouts ran in containers of the git image, each just before
    // the steps that use it.
    let spec = created_pod_spec(&cluster, "git-1");
    let git = ManifestOptions::default().git_image;
    let step = "example.com/no-git:1".to_owned();
    let init = ManifestOptions::default().init_image;
    assert_eq!(
        names_and_images(&spec["initContainers"]),
        [
            ("testkube-init".to_owned(), init),
            ("git-1".to_owned(), git.clone()),
            ("worker-1".to_owned(), step.clone()),
            ("git-2".to_owned(), git),
        ]
    );
    assert_eq!(
        names_and_images(&spec["containers"]),
        [("worker-2".to_owned(), step)]
    );
    for (container, wanted) in [
        ("git-1", "content.git: checked out"),
        ("git-2", "content.git: checked out"),
    ] {
        let log = container_log(&cluster, "git-1", container);
        assert!(log.contains(wanted), "{container}: {log}");
    }
    for container in ["worker-1", "worker-2"] {
        let log = container_log(&cluster, "git-1", container);
        assert!(!log.is_empty(), "{container} ran");
        assert!(
            !log.contains("content.git"),
            "{container} did not run git: {log}"
        );
    }
    // The token is only in the task Secret: not in the Job, not in a log.
    for line in cluster.audit() {
        if line["objectRef"]["resource"] != "secrets" {
            assert!(
                !line.to_string().contains(token),
                "the token in a request: {line}"
            );
        }
    }
    for container in ["git-1", "worker-1", "git-2", "worker-2"] {
        assert!(!container_log(&cluster, "git-1", container).contains(token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_checkout_in_the_git_container_fails_its_step_and_the_rest_is_skipped() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let (summary, events) = cluster
        .run(
            plan(
                r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: git-missing}
spec:
  steps:
  - name: before
    shell: echo before
  - name: fetch
    content:
      git: {uri: 'file:///nowhere/repo.git'}
    shell: echo never
  - name: after
    shell: echo after
"#,
            ),
            "git-missing-1",
        )
        .await;
    assert_eq!(summary.status, ExecutionStatus::Failed, "{events:#?}");
    assert_eq!(step_status(&events, "before"), Some(StepStatus::Passed));
    assert_eq!(step_status(&events, "fetch"), Some(StepStatus::Failed));
    assert_eq!(step_status(&events, "after"), Some(StepStatus::Skipped));
    let message = events
        .iter()
        .find_map(|event| match event {
            Event::Step {
                step,
                status,
                detail,
                ..
            } if step.id == "fetch" && status.is_finished() => detail.message.clone(),
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        message.contains("content.git: cannot check out file:///nowhere/repo.git"),
        "{message}"
    );
    assert!(
        !logs(&events, "fetch").contains("never"),
        "the command never ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_retried_after_its_checkout_runs_its_command_again_not_the_checkout() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let repo = BareRepo::new(&[("README", "hello\n")]);
    let yaml = format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: git-retry}}
spec:
  steps:
  - name: flaky
    retry: {{count: 2}}
    content:
      git: {{uri: '{url}'}}
    shell: |
      echo try | tee -a /data/tries
      test "$(wc -l < /data/tries)" -ge 2
"#,
        url = repo.url()
    );
    let (summary, events) = cluster.run(plan(&yaml), "git-retry-1").await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{events:#?}");
    let checkouts = logs(&events, "flaky")
        .matches("content.git: checked out")
        .count();
    assert_eq!(checkouts, 1, "{}", logs(&events, "flaky"));
    let attempts = events
        .iter()
        .filter(|event| {
            matches!(event, Event::Step { step, status, .. }
            if step.id == "flaky" && *status == StepStatus::Running)
        })
        .count();
    assert_eq!(attempts, 2, "{events:#?}");
    assert_eq!(
        logs(&events, "flaky").matches("try\n").count(),
        2,
        "the command ran in both attempts"
    );
}

#[test]
fn a_checkout_container_has_the_settings_of_the_step_it_prepares_for_but_the_git_image() {
    let options = ManifestOptions {
        git_image: "registry.local/git:2".to_owned(),
        ..ManifestOptions::default()
    };
    let objects = execution_objects(
        &plan(
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  content:
    git:
      uri: 'https://example.com/{{ env.REPO }}.git'
      token: '{{ env.GIT_TOKEN }}'
  container:
    image: python:3.13-slim
    securityContext: {runAsUser: 1000, runAsNonRoot: true}
    volumeMounts: [{name: certs, mountPath: /certs}]
    env:
    - name: GIT_TOKEN
      valueFrom: {secretKeyRef: {name: creds, key: token}}
    - {name: REPO, value: app}
  pod:
    volumes: [{name: certs, secret: {secretName: certs}}]
  steps:
  - name: test
    shell: pytest
  - name: same
    shell: echo same container
"#,
        ),
        &ExecutionRequest::new("wf-1"),
        &options,
    )
    .unwrap();
    let worker = &objects.workers[0];
    let spec = worker
        .job
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let init = spec.init_containers.as_ref().unwrap();
    assert_eq!(init.len(), 2, "testkube-init and git");
    let (git, step) = (&init[1], &spec.containers[0]);
    assert_eq!(git.name, "git");
    assert_eq!(git.image.as_deref(), Some("registry.local/git:2"));
    assert_eq!(step.name, "worker");
    assert_eq!(step.image.as_deref(), Some("python:3.13-slim"));
    // Kubernetes resolves the token for both; the mounts and user are the step's.
    assert_eq!(git.env, step.env);
    assert!(
        git.env
            .iter()
            .flatten()
            .any(|var| var.name == "GIT_TOKEN" && var.value_from.is_some())
    );
    assert_eq!(git.security_context, step.security_context);
    assert_eq!(git.volume_mounts, step.volume_mounts);
    assert!(
        git.command
            .iter()
            .flatten()
            .all(|arg| !arg.contains("GIT_TOKEN"))
    );
    // The task says which container runs the checkout and each command.
    let task =
        WorkerTask::from_json(worker.secret.string_data.as_ref().unwrap()[TASK_KEY].as_bytes())
            .unwrap();
    assert_eq!(
        task.containers,
        std::collections::BTreeMap::from([
            (WorkerTask::git_key("root"), 0),
            ("test".to_owned(), 1),
            ("same".to_owned(), 1),
        ])
    );
}
