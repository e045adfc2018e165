//! The model over a corpus of realistic documents (`tests/data/model`):
//! every file loads without diagnostics, and every document survives a
//! round trip through JSON and through YAML unchanged.

use std::fs;
use std::path::{Path, PathBuf};

use testkube_core::model::Document;
use testkube_core::model::{
    DocumentKind, DynamicList, GitAuthType, IntOrExpr, MatchOperator, ParameterType,
    SchedulerPolicy, TestTrigger, TriggerEvent, WebhookEvent,
};
use testkube_core::validate::{LoadedFile, load_file};
use testkube_core::yaml::LoadOptions;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/model");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("corpus folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "corpus too small: {files:?}");
    files
}

fn load(name: &str, text: &str) -> LoadedFile {
    load_file(name, text.as_bytes(), &LoadOptions::default())
}

fn load_corpus_file(name: &str) -> Vec<Document> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/model")
        .join(name);
    let text = fs::read_to_string(&path).expect("read corpus file");
    let file = load(name, &text);
    assert!(file.diagnostics.is_empty(), "{:#?}", file.diagnostics);
    file.typed_documents().cloned().collect()
}

#[test]
fn corpus_loads_without_diagnostics() {
    for path in corpus() {
        let text = fs::read_to_string(&path).expect("read");
        let name = path.display().to_string();
        let file = load(&name, &text);
        let rendered: Vec<String> = file
            .diagnostics
            .iter()
            .map(|d| d.render(file.source.as_deref()))
            .collect();
        assert!(rendered.is_empty(), "{}", rendered.join("\n"));
        assert!(!file.documents.is_empty(), "{name}: no documents");
        assert!(
            file.documents.iter().all(|d| d.document.is_some()),
            "{name}: a document was not read"
        );
    }
}

#[test]
fn corpus_round_trips_through_json() {
    for path in corpus() {
        let text = fs::read_to_string(&path).expect("read");
        for document in load(&path.display().to_string(), &text).typed_documents() {
            let json = serde_json::to_string(document).expect("serialize");
            let back: Document = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(&back, document, "{}: {json}", path.display());
        }
    }
}

#[test]
fn corpus_round_trips_through_yaml() {
    for path in corpus() {
        let text = fs::read_to_string(&path).expect("read");
        let name = path.display().to_string();
        for document in load(&name, &text).typed_documents() {
            let yaml = serde_saphyr::to_string(document).expect("serialize");
            let again = load(&name, &yaml);
            assert!(
                again.diagnostics.is_empty(),
                "{name}:\n{yaml}\n{:#?}",
                again.diagnostics
            );
            let back: Vec<&Document> = again.typed_documents().collect();
            assert_eq!(back, vec![document], "{name}:\n{yaml}");
        }
    }
}

#[test]
fn serialization_is_minimal() {
    let documents = load_corpus_file("execution.yaml");
    let json = serde_json::to_value(&documents[0]).expect("serialize");
    assert_eq!(
        json,
        serde_json::json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflowExecution",
            "metadata": {"name": "k6-load-test-manual"},
            "spec": {
                "testWorkflow": {"name": "k6-load-test"},
                "executionRequest": {
                    "name": "manual-run-1",
                    "config": {"vus": 50, "target": "staging"},
                    "disableWebhooks": true,
                    "tags": {"requested-by": "ci"}
                }
            }
        })
    );
}

#[test]
fn multi_document_file_keeps_order_and_kinds() {
    let kinds: Vec<DocumentKind> = load_corpus_file("templates.yaml")
        .iter()
        .map(Document::kind)
        .collect();
    assert_eq!(
        kinds,
        [
            DocumentKind::TestWorkflowTemplate,
            DocumentKind::TestWorkflowTemplate,
            DocumentKind::TestWorkflow
        ]
    );
}

#[test]
fn typed_fields_read_as_written() {
    let documents = load_corpus_file("k6.yaml");
    let Document::TestWorkflow(k6) = &documents[0] else {
        panic!("not a workflow");
    };
    let vus = &k6.spec.config["vus"];
    assert_eq!(vus.param_type, Some(ParameterType::Integer));
    assert_eq!(vus.default, Some(serde_json::json!(10)));
    let run = k6.spec.steps[0].run.as_ref().expect("run");
    assert!(
        run.shell
            .as_deref()
            .is_some_and(|s| s.contains("{{ config.vus }}"))
    );
    let limits = &k6
        .spec
        .container
        .as_ref()
        .expect("container")
        .resources
        .as_ref()
        .expect("resources")
        .limits;
    assert_eq!(limits["cpu"].0, "2");

    let documents = load_corpus_file("matrix-browsers.yaml");
    let Document::TestWorkflow(matrix) = &documents[0] else {
        panic!("not a workflow");
    };
    let parallel = matrix.spec.steps[0].parallel.as_ref().expect("parallel");
    let keys: Vec<&str> = parallel.matrix.keys().map(String::as_str).collect();
    assert_eq!(keys, ["browser", "size"], "matrix keeps the YAML key order");
    assert_eq!(
        parallel.matrix["browser"],
        DynamicList::Static(vec!["chrome".into(), "firefox".into(), "edge".into()])
    );
    assert_eq!(parallel.parallelism, Some(IntOrExpr::Int(3)));

    let documents = load_corpus_file("playwright-sharded.yaml");
    let Document::TestWorkflow(playwright) = &documents[0] else {
        panic!("not a workflow");
    };
    let parallel = playwright.spec.steps[1]
        .parallel
        .as_ref()
        .expect("parallel");
    assert_eq!(
        parallel.count,
        Some(IntOrExpr::Expr("config.workers".into()))
    );
    assert_eq!(parallel.worker_spec().container, parallel.container);
}

#[test]
fn yaml11_octal_file_modes_are_read_as_octal() {
    let documents = load_corpus_file("postman.yaml");
    let Document::TestWorkflow(postman) = &documents[0] else {
        panic!("not a workflow");
    };
    let files = &postman.spec.content.as_ref().expect("content").files;
    assert_eq!(files[2].mode, Some(0o755));

    let documents = load_corpus_file("scheduled.yaml");
    let Document::TestWorkflow(scheduled) = &documents[0] else {
        panic!("not a workflow");
    };
    let volume = &scheduled.spec.pod.as_ref().expect("pod").volumes[0];
    let mode = volume.secret.as_ref().and_then(|s| s.default_mode);
    assert_eq!(mode, Some(0o644));
}

#[test]
fn triggers_and_webhooks_read_their_enums() {
    let documents = load_corpus_file("trigger.yaml");
    let Document::TestTrigger(trigger) = &documents[0] else {
        panic!("not a trigger");
    };
    assert_eq!(
        trigger.spec.event,
        Some(TriggerEvent::DeploymentImageUpdate)
    );
    assert_eq!(
        trigger.spec.match_conditions[1].operator,
        MatchOperator::Equals
    );

    let documents = load_corpus_file("webhook.yaml");
    let Document::Webhook(webhook) = &documents[1] else {
        panic!("not a webhook");
    };
    assert_eq!(
        webhook.spec.events,
        [
            WebhookEvent::EndTestworkflowFailed,
            WebhookEvent::BecomeTestworkflowDown,
            WebhookEvent::BecomeTestworkflowUp
        ]
    );
}

fn triggers(name: &str) -> Vec<TestTrigger> {
    load_corpus_file(name)
        .into_iter()
        .map(|document| match document {
            Document::TestTrigger(trigger) => *trigger,
            other => panic!("not a trigger: {other:?}"),
        })
        .collect()
}

#[test]
fn a_trigger_may_pick_its_resource_by_selector_labels_alone() {
    let triggers = triggers("trigger-selector.yaml");
    let spec = &triggers[0].spec;
    assert_eq!((spec.resource, &spec.resource_ref), (None, &None));
    let labels = spec.selector.as_ref().and_then(|s| s.match_labels.as_ref());
    assert_eq!(
        labels.and_then(|l| l.get("testkube.io/resource-kind")),
        Some(&"Deployment".to_owned())
    );
    let target = triggers[1].spec.action_parameters.as_ref();
    let target = target.and_then(|p| p.target.as_ref()).expect("target");
    assert_eq!(
        target.scheduler_policy,
        Some(SchedulerPolicy::OnlyWhenMatches)
    );
}

/// The JSON names of every `contentSelector.git` field are Testkube's Go
/// json tags, and each one written in the corpus is read (none dropped).
#[test]
fn content_triggers_keep_every_git_field_under_testkube_names() {
    let triggers = triggers("trigger-git.yaml");
    let mut names = std::collections::BTreeSet::new();
    for trigger in &triggers {
        assert!(
            trigger.spec.watches_content(),
            "{}",
            trigger.spec.event.is_some()
        );
        let json = serde_json::to_value(trigger).expect("serialize");
        let git = &json["spec"]["contentSelector"]["git"];
        names.extend(git.as_object().expect("git").keys().cloned());
    }
    let go_tags = [
        "authType",
        "branches",
        "branchesIgnore",
        "paths",
        "pathsIgnore",
        "pullRequest",
        "sshKey",
        "sshKeyFrom",
        "tags",
        "tagsIgnore",
        "token",
        "tokenFrom",
        "uri",
        "username",
        "usernameFrom",
    ];
    assert_eq!(
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        go_tags
    );

    let pull_request = &triggers[2].spec;
    assert_eq!(pull_request.event, Some(TriggerEvent::GitPullRequest));
    let git = pull_request
        .content_selector
        .as_ref()
        .and_then(|c| c.git.as_ref())
        .expect("git");
    assert_eq!(git.auth_type, Some(GitAuthType::Github));
    let filter = git.pull_request.as_ref().expect("pullRequest");
    assert_eq!(filter.types, ["opened", "synchronize", "reopened"]);
    assert_eq!(filter.branches_ignore, ["release/*"]);
    assert_eq!(
        serde_json::to_value(filter).expect("serialize"),
        serde_json::json!({
            "types": ["opened", "synchronize", "reopened"],
            "branches": ["main"],
            "branchesIgnore": ["release/*"]
        })
    );
}

#[test]
fn parameter_bounds_keep_integers_as_integers() {
    let source = "kind: TestWorkflow\napiVersion: testworkflows.testkube.io/v1\nmetadata:\n  name: bounds\nspec:\n  config:\n    workers: {type: integer, minimum: 1, maximum: 64, multipleOf: 2, default: 4}\n    ratio: {type: number, exclusiveMinimum: 0.5, exclusiveMaximum: 1}\n  steps:\n  - shell: echo\n";
    let file = load("bounds.yaml", source);
    assert!(file.diagnostics.is_empty(), "{:#?}", file.diagnostics);
    let document = file.typed_documents().next().expect("the workflow");
    let yaml = serde_saphyr::to_string(document).expect("serialize");
    for written in [
        "minimum: 1\n",
        "maximum: 64\n",
        "multipleOf: 2\n",
        "exclusiveMinimum: 0.5\n",
        "exclusiveMaximum: 1\n",
    ] {
        assert!(yaml.contains(written), "`{written}` in:\n{yaml}");
    }
    let json = serde_json::to_value(document).expect("serialize");
    assert_eq!(
        json["spec"]["config"]["workers"]["minimum"],
        serde_json::json!(1)
    );
    assert!(json["spec"]["config"]["workers"]["minimum"].is_u64());
}
