//! `testkube manifests`: the objects one execution creates, as YAML.

use super::testkube;

/// The top-level `kind:` of each document, and each document's text.
fn documents(stdout: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(stdout);
    text.split("---\n")
        .filter_map(|doc| {
            let kind = doc.lines().find_map(|line| line.strip_prefix("kind: "))?;
            Some((kind.to_owned(), doc.to_owned()))
        })
        .collect()
}

#[test]
fn manifests_print_a_secret_and_a_job_per_worker_with_config_and_namespace() {
    let workflow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/workflows/sharded-pytest.yaml"
    );
    let output = testkube(&[
        "manifests",
        workflow,
        "--config",
        "workers=3",
        "--namespace",
        "tests",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = documents(&output.stdout);
    let kinds: Vec<&str> = docs.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Secret", "Job", "Secret", "Job", "Secret", "Job", "Secret", "Job"
        ]
    );
    for (_, doc) in &docs {
        assert!(doc.contains("\n  namespace: tests\n"), "{doc}");
        assert!(
            doc.contains("\n    testkube.io/execution: sharded-pytest-execution\n"),
            "{doc}"
        );
    }
    // Deterministic: the same input prints the same objects.
    let again = testkube(&[
        "manifests",
        workflow,
        "--config",
        "workers=3",
        "--namespace",
        "tests",
    ]);
    assert_eq!(again.stdout, output.stdout);
}

#[test]
fn manifests_refuse_what_one_pod_cannot_run_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.yaml");
    std::fs::write(
        &file,
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
    )
    .unwrap();
    let output = testkube(&["manifests", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("step `flaky` has `retry`"), "{stderr}");
}

#[test]
fn run_on_kubernetes_without_an_s3_store_refuses_files_leaving_pods_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    // A cluster that is never reached: the refusal comes before any request.
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n\
         contexts:\n- name: c\n  context: {cluster: c, user: u, namespace: default}\n\
         current-context: c\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .unwrap();
    let workflow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/workflows/sharded-pytest.yaml"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["--color=never", "run", workflow, "--on", "kubernetes"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("TESTKUBE_HOME", dir.path().join("home"))
        .env_remove("TESTKUBE_ARTIFACTS_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for feature in ["parallel.transfer", "parallel.fetch", "artifacts"] {
        assert!(stderr.contains(feature), "{stderr}");
    }
    assert!(stderr.contains("TESTKUBE_ARTIFACTS_URL=s3://"), "{stderr}");
    assert!(stderr.contains("without --on kubernetes"), "{stderr}");
}

#[test]
fn manifests_show_the_container_that_checks_out_git_content_with_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("git.yaml");
    std::fs::write(
        &workflow,
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: git}
spec:
  content:
    git: {uri: 'https://example.com/app.git', revision: main}
  container: {image: 'python:3.13-slim'}
  steps:
  - shell: pytest
"#,
    )
    .unwrap();
    let path = workflow.display().to_string();
    let output = testkube(&["manifests", &path]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    // Init containers: testkube-init's copy, then the checkout in the git
    // image; the step's container runs after them.
    let init_containers = text
        .split_once("initContainers:")
        .map(|(_, rest)| {
            rest.split_once("restartPolicy:")
                .map_or(rest, |(init, _)| init)
        })
        .expect(&text);
    let init = init_containers.find("name: testkube-init").expect(&text);
    let git = init_containers
        .find("image: alpine/git:v2.47.2")
        .expect(&text);
    assert!(init < git, "{text}");
    assert!(init_containers.contains("name: git\n"), "{text}");
    assert!(!init_containers.contains("python"), "{text}");
    assert!(text.contains("image: python:3.13-slim\n"), "{text}");
    let other = testkube(&["manifests", &path, "--git-image", "registry.local/git:2"]);
    let text = String::from_utf8_lossy(&other.stdout);
    assert!(text.contains("image: registry.local/git:2\n"), "{text}");
    assert!(!text.contains("alpine/git"), "{text}");
}
