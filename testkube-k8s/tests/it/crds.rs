//! The CRDs against documents: every example workflow and real Testkube
//! documents validate against their kind's schema, wrong types do not, and
//! kube-sim serves the CRDs and stores a workflow created through them.
//!
//! Validation applies the CRD's OpenAPI v3 schema the way the API server
//! does with strict field validation (`kubectl apply` default): it honours
//! the Kubernetes extensions a generic JSON-schema validator does not know
//! (`x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
//! `nullable`) and refuses unknown fields. Structural schemas use a small
//! subset of JSON schema, so this needs no validator crate.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

fn schema_of(kind: &str) -> Value {
    // Generating them takes a while in a debug build: once per test binary.
    static CRDS: std::sync::OnceLock<Vec<CustomResourceDefinition>> = std::sync::OnceLock::new();
    let crd = CRDS
        .get_or_init(testkube_k8s::crds)
        .iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"));
    serde_json::to_value(&crd.spec.versions[0].schema).expect("serializes")["openAPIV3Schema"]
        .clone()
}

/// Problems of `value` against `schema`, each with its path.
fn violations(schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != true && schema["x-kubernetes-preserve-unknown-fields"] != true {
            found.push(format!("{path}: null"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            found.push(format!(
                "{path}: {value} is neither an integer nor a string"
            ));
        }
        return;
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    let type_ok = match schema["type"].as_str() {
        None => preserve,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => {
            found.push(format!("{path}: schema type {other}"));
            return;
        }
    };
    if !type_ok {
        found.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        found.push(format!("{path}: {value} is not one of {options:?}"));
    }
    match value {
        Value::Object(fields) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                if let Some(name) = required.as_str()
                    && !fields.contains_key(name)
                {
                    found.push(format!("{path}: `{name}` is required"));
                }
            }
            for (name, field) in fields {
                let at = format!("{path}.{name}");
                if let Some(property) = schema["properties"].get(name) {
                    violations(property, field, &at, found);
                } else if schema["additionalProperties"].is_object() {
                    violations(&schema["additionalProperties"], field, &at, found);
                } else if !preserve {
                    found.push(format!("{at}: unknown field"));
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (index, item) in items.iter().enumerate() {
                violations(&schema["items"], item, &format!("{path}[{index}]"), found);
            }
        }
        _ => {}
    }
}

/// Problems of one whole document against its kind's CRD schema.
fn check(document: &Value) -> Vec<String> {
    let kind = document["kind"].as_str().unwrap_or_default();
    let mut schema = schema_of(kind);
    // `metadata` is the API server's (ObjectMeta), not the CRD's to describe.
    schema["properties"]["metadata"] = json!({"x-kubernetes-preserve-unknown-fields": true});
    let mut found = Vec::new();
    violations(&schema, document, "", &mut found);
    found
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("folder readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn example_workflows_and_real_testkube_documents_validate() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut count = 0;
    for dir in [
        repo().join("examples/workflows"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/testkube"),
    ] {
        for file in yaml_files(&dir) {
            for document in documents(&file) {
                let found = check(&document);
                assert!(found.is_empty(), "{}: {found:#?}", file.display());
                // Our loader reads it too: the schema is not wider than the model.
                serde_json::from_value::<testkube_core::Document>(document.clone())
                    .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
                kinds.insert(document["kind"].as_str().unwrap_or_default().to_owned());
                count += 1;
            }
        }
    }
    assert!(count >= 40, "only {count} documents");
    // Every kind but WebhookTemplate (see tests/data/testkube/SOURCES.md).
    assert_eq!(kinds.len(), 5, "kinds with a fixture: {kinds:?}");
}

#[test]
fn stale_testkube_samples_are_refused_as_testkube_refuses_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/testkube/refused");
    let files = yaml_files(&dir);
    assert_eq!(files.len(), 2);
    for file in files {
        for document in documents(&file) {
            let found = check(&document);
            assert!(
                found
                    .iter()
                    .any(|problem| problem.starts_with(".spec.events[1]: \"end-test\"")),
                "{}: {found:#?}",
                file.display()
            );
        }
    }
}

#[test]
fn wrong_types_are_refused_with_their_path() {
    let workflow = |spec: Value| {
        json!({"apiVersion": "testworkflows.testkube.io/v1", "kind": "TestWorkflow",
               "metadata": {"name": "bad"}, "spec": spec})
    };
    let cases = [
        (
            workflow(json!({"steps": 5})),
            ".spec.steps: 5 is not of type",
        ),
        (
            workflow(json!({"steps": [{"parallel": {"count": [1]}}]})),
            ".spec.steps[0].parallel.count: [1] is neither an integer nor a string",
        ),
        (
            workflow(json!({"steps": [{"shell": "x", "sehll": "y"}]})),
            ".spec.steps[0].sehll: unknown field",
        ),
        (
            workflow(json!({"container": {"imagePullPolicy": "Sometimes"}})),
            ".spec.container.imagePullPolicy: \"Sometimes\" is not one of",
        ),
        (
            workflow(json!({"steps": [{"retry": {"count": true}}]})),
            ".spec.steps[0].retry.count: true is neither",
        ),
        (
            json!({"apiVersion": "tests.testkube.io/v1", "kind": "TestTrigger",
                   "metadata": {"name": "t"}, "spec": {"event": "exploded"}}),
            ".spec.event: \"exploded\" is not one of",
        ),
        (
            json!({"apiVersion": "testworkflows.testkube.io/v1", "kind": "TestWorkflowExecution",
                   "metadata": {"name": "e"}, "spec": {"testWorkflow": {"name": "w"}},
                   "status": {"generation": "one"}}),
            ".status.generation: \"one\" is not of type",
        ),
    ];
    for (document, expected) in cases {
        let found = check(&document);
        assert!(
            found.iter().any(|problem| problem.starts_with(expected)),
            "expected `{expected}` in {found:#?}"
        );
    }
}

/// kube-sim serves the CRDs (status subresource included) and stores a
/// workflow created through them; with `TESTKUBE_AUDIT_OBJECTS_DIR` set
/// (CI), the CRDs are written there for `kubernetes-validate --strict`.
#[tokio::test(flavor = "multi_thread")]
async fn kube_sim_serves_the_crds_and_stores_a_workflow() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = kube_sim::KubeSim::new()
        .state_dir(dir.path().join("state"))
        .start()
        .await
        .expect("kube-sim starts");
    let client =
        kube::Client::try_from(kube::Config::new(sim.url().parse().expect("url"))).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in testkube_k8s::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", crd.spec.names.kind));
        if let Some(audit) = std::env::var_os("TESTKUBE_AUDIT_OBJECTS_DIR") {
            let audit = PathBuf::from(audit);
            let _ = std::fs::create_dir_all(&audit);
            let name = crd.metadata.name.clone().unwrap_or_default();
            let _ = std::fs::write(
                audit.join(format!("crd-{name}.json")),
                serde_json::to_string(&crd).expect("serializes"),
            );
        }
    }

    let resource = ApiResource {
        group: "testworkflows.testkube.io".into(),
        version: "v1".into(),
        api_version: "testworkflows.testkube.io/v1".into(),
        kind: "TestWorkflow".into(),
        plural: "testworkflows".into(),
    };
    let workflows: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let file = repo().join("examples/workflows/sharded-pytest.yaml");
    let document = documents(&file).remove(0);
    let object: DynamicObject = serde_json::from_value(document.clone()).expect("an object");
    workflows
        .create(&PostParams::default(), &object)
        .await
        .expect("workflow created");
    let name = document["metadata"]["name"].as_str().expect("named");
    let stored = workflows.get(name).await.expect("workflow stored");
    assert_eq!(stored.data["spec"], document["spec"]);

    // The real kubectl, as the README tells users to install the CRDs.
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
    {
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let crds_file = dir.path().join("crds.yaml");
        let mut text = String::new();
        for crd in testkube_k8s::crds() {
            text.push_str("---\n");
            text.push_str(&serde_json::to_string(&crd).expect("serializes"));
            text.push('\n');
        }
        std::fs::write(&crds_file, text).expect("write");
        for file in [crds_file.as_path(), file.as_path()] {
            let output = tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["apply", "--server-side", "-f"])
                .arg(file)
                .output()
                .await
                .expect("kubectl runs");
            assert!(
                output.status.success(),
                "kubectl apply --server-side -f {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let output = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "tw", "-o", "name"])
            .output()
            .await
            .expect("kubectl runs");
        let listed = String::from_utf8_lossy(&output.stdout);
        assert!(
            listed.contains(&format!("testworkflow.testworkflows.testkube.io/{name}")),
            "kubectl get tw: {listed} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
