//! Files that leave pods through signed URLs (moto as the S3-compatible
//! store): artifacts and the JUnit results among them, `compress`, and
//! `parallel.transfer`/`fetch`; and the refusal without such a store.

use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use testkube_core::engine::{EngineError, Event, ExecutionRequest};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_results::artifacts::ArtifactStore;

use crate::cluster::{self, logs, plan, s3_store, step_status};

/// Every key in the store under `prefix`.
async fn keys(store: &ArtifactStore, prefix: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let prefix = ObjectPath::from(prefix);
    let store = store.object_store();
    let mut listed = store.list(Some(&prefix));
    let mut keys = Vec::new();
    while let Some(object) = listed.next().await {
        keys.push(object.unwrap().location.to_string());
    }
    keys.sort();
    keys
}

async fn object(store: &ArtifactStore, key: &str) -> Vec<u8> {
    store
        .object_store()
        .get(&ObjectPath::from(key))
        .await
        .unwrap_or_else(|err| panic!("{key}: {err}"))
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

const JUNIT: &str = r#"<?xml version="1.0"?>
<testsuite name="calc" tests="2" failures="1">
  <testcase classname="calc" name="adds" time="0.5"/>
  <testcase classname="calc" name="divides" time="0.25"><failure message="by zero"/></testcase>
</testsuite>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_and_their_test_results_leave_pods_through_signed_urls() {
    if !cluster::has_bwrap() {
        return;
    }
    let Some(store) = s3_store("artifacts_and_their_test_results_leave_pods_through_signed_urls")
    else {
        return;
    };
    let cluster = cluster::start().await;
    let yaml = format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: arts}}
spec:
  steps:
  - name: test
    shell: |
      mkdir -p /data/out/deep /data/reports
      echo one > /data/out/a.txt
      printf 'two' > /data/out/deep/b.txt
      cat > /data/reports/junit.xml <<'XML'
{junit}      XML
    artifacts:
      paths: [out/**, reports/*.xml]
  - name: bundle
    condition: always
    artifacts:
      paths: [out/**]
      compress: {{name: "bundle-{{{{ 1 + 1 }}}}.tar.gz"}}
"#,
        junit = JUNIT
            .lines()
            .map(|line| format!("      {line}\n"))
            .collect::<String>()
    );
    let executor = cluster.executor().with_storage(Arc::new(store.clone()));
    let (summary, events) = cluster.run_on(executor, plan(&yaml), "arts-1").await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{events:#?}");
    let mut artifacts: Vec<(String, String, String, u64)> = events
        .iter()
        .filter_map(|event| match event {
            Event::Artifact {
                step,
                path,
                location,
                size,
                ..
            } => Some((step.clone(), path.clone(), location.clone(), *size)),
            _ => None,
        })
        .collect();
    artifacts.sort();
    let test = step_id(&events, "test");
    let bundle = step_id(&events, "bundle");
    let paths: Vec<(&str, &str, u64)> = artifacts
        .iter()
        .map(|(step, path, _, size)| (step.as_str(), path.as_str(), *size))
        .collect();
    let mut expected = vec![
        (test.as_str(), "out/a.txt", 4),
        (test.as_str(), "out/deep/b.txt", 3),
        (test.as_str(), "reports/junit.xml", JUNIT.len() as u64),
    ];
    let archive_size = artifacts
        .iter()
        .find(|(_, path, ..)| path == "bundle-2.tar.gz")
        .map(|(.., size)| *size)
        .expect("the compressed artifact is reported");
    expected.push((bundle.as_str(), "bundle-2.tar.gz", archive_size));
    expected.sort();
    assert_eq!(paths, expected, "{artifacts:#?}");
    // Each artifact is where its location says, with the pod's bytes.
    for (_, path, location, _) in &artifacts {
        let key = location
            .strip_prefix(&store.location_base())
            .unwrap_or_else(|| panic!("{location} is in the store"));
        assert_eq!(key, format!("arts-1/root/{path}"));
    }
    assert_eq!(object(&store, "arts-1/root/out/a.txt").await, b"one\n");
    assert_eq!(object(&store, "arts-1/root/out/deep/b.txt").await, b"two");
    let bundle_bytes = object(&store, "arts-1/root/bundle-2.tar.gz").await;
    let mut names: Vec<String> =
        tar::Archive::new(flate2::read::GzDecoder::new(bundle_bytes.as_slice()))
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
    names.sort();
    assert_eq!(names, ["out/a.txt", "out/deep/b.txt"]);
    // The uploads were filed, not left beside the artifacts.
    assert_eq!(keys(&store, "arts-1/.uploads").await, Vec::<String>::new());
    // The JUnit report was read in the pod.
    let cases: Vec<(String, String)> = events
        .iter()
        .filter_map(|event| match event {
            Event::TestCases { cases, .. } => Some(cases),
            _ => None,
        })
        .flatten()
        .map(|case| (case.name.clone(), format!("{:?}", case.status)))
        .collect();
    assert_eq!(cases.len(), 2, "{cases:?}");
    assert!(cases.iter().any(|(name, _)| name.contains("divides")));
    assert!(logs(&events, &test).contains("artifacts: uploaded 3 file(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_and_fetch_move_files_between_pods_through_the_store() {
    if !cluster::has_bwrap() {
        return;
    }
    let Some(store) = s3_store("transfer_and_fetch_move_files_between_pods_through_the_store")
    else {
        return;
    };
    let cluster = cluster::start().await;
    let yaml = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: moves}
spec:
  steps:
  - name: prepare
    shell: mkdir -p /data/src && echo seed > /data/src/input.txt
  - name: fan
    parallel:
      count: 2
      transfer:
      - from: /data/src
      fetch:
      - from: /data/out
      shell: |
        mkdir -p /data/out
        echo "$(cat /data/src/input.txt)-{{ index }}" > /data/out/result-{{ index }}.txt
  - name: gather
    shell: cat /data/out/result-0.txt /data/out/result-1.txt
"#;
    let executor = cluster.executor().with_storage(Arc::new(store.clone()));
    let (summary, events) = cluster.run_on(executor, plan(yaml), "moves-1").await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{events:#?}");
    let gather = step_id(&events, "gather");
    assert_eq!(logs(&events, &gather), "seed-0\nseed-1\n");
    assert_eq!(step_status(&events, &gather), Some(StepStatus::Passed));
    // The archives lived only as long as the run.
    assert_eq!(keys(&store, "moves-1").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signing_store_files_that_must_leave_pods_are_refused_up_front() {
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let executor = testkube_k8s::KubernetesExecutor::new(client, Default::default());
    let plan = plan(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: refused}
spec:
  steps:
  - name: test
    shell: "true"
    artifacts: {paths: [out]}
"#,
    );
    let Err(EngineError::Unsupported(found)) =
        testkube_core::engine::Engine::new(Arc::new(executor))
            .start(plan, ExecutionRequest::new("refused-1"))
    else {
        panic!("the run is refused");
    };
    let message = found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(message.contains("artifacts"), "{message}");
    assert!(
        message.contains("TESTKUBE_ARTIFACTS_URL=s3://"),
        "{message}"
    );
}

/// The id of the step named `name` (ids are generated).
fn step_id(events: &[Event], name: &str) -> String {
    events
        .iter()
        .find_map(|event| match event {
            Event::Step { step, .. } if step.name.as_deref() == Some(name) => Some(step.id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a step named {name}"))
}
