//! `secret()`, `secretKeyRef` and `envFrom.secretRef` from the cluster's
//! Secret objects, through the run service, on kube-sim.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use testkube_core::engine::{Event, MASK};
use testkube_core::service::{RunRequest, RunService, SecretSource, ServiceError};
use testkube_core::status::ExecutionStatus;
use testkube_core::{Document, LoadOptions, ResolveOptions, TemplateSet};
use testkube_k8s::{KubernetesExecutor, KubernetesSecrets, ManifestOptions};

use crate::cluster;

async fn create_secret(cluster: &cluster::Cluster, name: &str, values: &[(&str, &str)]) {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let data: BTreeMap<String, ByteString> = values
        .iter()
        .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
        .collect();
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..Secret::default()
            },
        )
        .await
        .unwrap();
}

fn workflow(yaml: &str) -> testkube_core::model::TestWorkflow {
    let file = testkube_core::load_file("wf.yaml", yaml.as_bytes(), &LoadOptions::default());
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow: {:?}", file.diagnostics)
    };
    let templates = TemplateSet::with_builtins().unwrap();
    testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
        .unwrap()
        .workflow()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_of_the_namespace_are_read_and_masked() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    create_secret(
        &cluster,
        "creds",
        &[("token", "s3cr3t-token"), ("user", "tester")],
    )
    .await;
    let source = KubernetesSecrets::new(cluster.client.clone(), "default");
    assert_eq!(
        source.get("creds", "token").await.unwrap().as_deref(),
        Some("s3cr3t-token")
    );
    assert_eq!(source.get("creds", "nope").await.unwrap(), None);
    assert_eq!(source.get("missing", "token").await.unwrap(), None);
    assert_eq!(source.keys("creds").await.unwrap().unwrap().len(), 2);

    let service = RunService::new(Arc::new(KubernetesExecutor::new(
        cluster.client.clone(),
        ManifestOptions::default(),
    )))
    .with_secrets(Arc::new(source));
    let run = service
        .start(RunRequest::new(workflow(
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: secrets}
spec:
  container:
    envFrom: [{secretRef: {name: creds}}]
    env:
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: creds, key: token}}
  steps:
  - name: use
    shell: |
      test "$TOKEN" = s3cr3t-token
      test "$user" = tester
      test "{{ secret("creds", "token") }}" = s3cr3t-token
      echo "token is $TOKEN"
"#,
        )))
        .await
        .unwrap();
    let mut run = run;
    let mut output = String::new();
    let mut status = None;
    while let Some(event) = run.next_event().await {
        match event {
            Event::Log { chunk, .. } => output.push_str(&String::from_utf8_lossy(&chunk)),
            Event::Finished(summary) => status = Some(summary.status),
            _ => {}
        }
    }
    assert_eq!(status, Some(ExecutionStatus::Passed), "{output}");
    assert_eq!(output, format!("token is {MASK}\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_missing_in_the_namespace_stops_the_run_before_it_starts() {
    let cluster = cluster::start().await;
    let service = RunService::new(Arc::new(KubernetesExecutor::new(
        cluster.client.clone(),
        ManifestOptions::default(),
    )))
    .with_secrets(Arc::new(KubernetesSecrets::new(
        cluster.client.clone(),
        "default",
    )));
    let started = service
        .start(RunRequest::new(workflow(
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: missing}
spec:
  steps:
  - shell: echo {{ secret("nowhere", "key") }}
"#,
        )))
        .await;
    let Err(err) = started else {
        panic!("a run with a missing secret starts")
    };
    assert!(matches!(err, ServiceError::MissingSecret { .. }), "{err}");
}
