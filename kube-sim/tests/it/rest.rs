//! REST semantics through kube-rs: CRUD, conflicts, Status errors,
//! selectors, the status subresource, patches, finalizers, cascades, CRDs.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::common::start;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some(labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect());
    c.data = Some(BTreeMap::from([("k".into(), "v".into())]));
    c
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_conflicts_and_status_errors() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let created = api.create(&PostParams::default(), &cm("one", &[])).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv = created.metadata.resource_version.clone().unwrap();

    let dup = api_error(api.create(&PostParams::default(), &cm("one", &[])).await.unwrap_err());
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"one\" already exists");

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "w".into())]));
    let updated = api.replace("one", &PostParams::default(), &changed).await.unwrap();
    assert_ne!(updated.metadata.resource_version.as_deref(), Some(rv.as_str()));
    // The old resourceVersion conflicts now.
    let stale = api_error(api.replace("one", &PostParams::default(), &changed).await.unwrap_err());
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(stale.message.contains("the object has been modified"), "{}", stale.message);

    let missing = api_error(api.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"nope\" not found");

    let mut unnamed = cm("", &[]);
    unnamed.metadata.name = None;
    let invalid = api_error(api.create(&PostParams::default(), &unnamed).await.unwrap_err());
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));

    unnamed.metadata.generate_name = Some("gen-".into());
    let generated = api.create(&PostParams::default(), &unnamed).await.unwrap();
    assert!(generated.metadata.name.unwrap().starts_with("gen-"));

    let other: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "absent");
    let no_ns = api_error(other.create(&PostParams::default(), &cm("x", &[])).await.unwrap_err());
    assert_eq!(no_ns.message, "namespaces \"absent\" not found");

    api.delete("one", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(api.get("one").await.unwrap_err()).code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    for (name, labels) in [("a", vec![("app", "web"), ("tier", "front")]), ("b", vec![("app", "db")]), ("c", vec![])] {
        api.create(&PostParams::default(), &cm(name, &labels)).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.into_iter().filter_map(|c| c.metadata.name).collect()
    };
    for (selector, want) in [
        ("app=web", vec!["a"]),
        ("app==db", vec!["b"]),
        ("app!=web", vec!["b", "c"]),
        ("app in (web,db)", vec!["a", "b"]),
        ("app notin (web)", vec!["b", "c"]),
        ("tier", vec!["a"]),
        ("!tier", vec!["b", "c"]),
    ] {
        let got = names(api.list(&ListParams::default().labels(selector)).await.unwrap());
        assert_eq!(got, want, "{selector}");
    }
    let got = names(api.list(&ListParams::default().fields("metadata.name=b")).await.unwrap());
    assert_eq!(got, vec!["b"]);
    let bad = api_error(api.list(&ListParams::default().fields("data.k=v")).await.unwrap_err());
    assert_eq!((bad.code, bad.message.as_str()), (400, "field label not supported: data.k"));
    // deletecollection with a selector
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app")).await.unwrap();
    assert_eq!(names(api.list(&ListParams::default()).await.unwrap()), vec!["c"]);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn status_subresource_generation_and_patches() {
    let sim = start().await;
    let jobs: Api<Job> = Api::namespaced(sim.client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "j"},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x", "command": ["true"]}]}}},
        "status": {"active": 5},
    }))
    .unwrap();
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.status.as_ref().and_then(|s| s.active), None, "status is dropped on create");
    let labels = created.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels["job-name"], "j");
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], created.metadata.uid.clone().unwrap());

    // Status writes change only status; main writes ignore status.
    let patched = jobs
        .patch_status("j", &PatchParams::default(), &Patch::Merge(json!({"status": {"active": 2}, "metadata": {"labels": {"x": "y"}}})))
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().and_then(|s| s.active), Some(2));
    assert!(patched.metadata.labels.is_none());
    let main = jobs.patch("j", &PatchParams::default(), &Patch::Merge(json!({"status": {"active": 9}, "metadata": {"labels": {"x": "y"}}}))).await.unwrap();
    assert_eq!(main.status.as_ref().and_then(|s| s.active), Some(2));
    assert_eq!(main.metadata.generation, Some(1), "metadata changes keep the generation");
    let spec = jobs.patch("j", &PatchParams::default(), &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 100}}))).await.unwrap();
    assert_eq!(spec.metadata.generation, Some(2));

    // JSON patch, with a failing test op.
    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("p", &[])).await.unwrap();
    let p = ops(json!([{"op": "add", "path": "/data/n", "value": "1"}]));
    let after = cms.patch("p", &PatchParams::default(), &Patch::Json::<()>(p)).await.unwrap();
    assert_eq!(after.data.unwrap()["n"], "1");
    let failing = ops(json!([{"op": "test", "path": "/data/n", "value": "2"}]));
    let err = api_error(cms.patch("p", &PatchParams::default(), &Patch::Json::<()>(failing)).await.unwrap_err());
    assert_eq!(err.code, 422);

    // Server-side apply: creates, then merges.
    let applied = cms
        .patch("ssa", &PatchParams::apply("test").force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}})))
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["a"], "1");
    let applied = cms
        .patch("ssa", &PatchParams::apply("test"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"l": "1"}}, "data": {"b": "2"}})))
        .await
        .unwrap();
    let data = applied.data.unwrap();
    assert_eq!((data["a"].as_str(), data["b"].as_str()), ("1", "2"));
    sim.handle.shutdown().await;
}

fn ops(v: serde_json::Value) -> json_patch::Patch {
    serde_json::from_value(v).expect("json patch")
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let mut c = cm("held", &[]);
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    let deleting = api.delete("held", &DeleteParams::default()).await.unwrap();
    let object = deleting.left().expect("the object comes back while finalizers hold it");
    assert!(object.metadata.deletion_timestamp.is_some());
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(api.get("held").await.unwrap_err()).code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn owner_references_cascade() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let owner = api.create(&PostParams::default(), &cm("owner", &[])).await.unwrap();
    let owned = |name: &str| {
        let mut c = cm(name, &[]);
        c.metadata.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.metadata.uid.clone().unwrap(),
            ..Default::default()
        }]);
        c
    };
    api.create(&PostParams::default(), &owned("child")).await.unwrap();
    // Background (the default for most types): the dependent goes too.
    api.delete("owner", &DeleteParams::background()).await.unwrap();
    assert_eq!(api_error(api.get("child").await.unwrap_err()).code, 404);

    // Orphan: the dependent stays, without the reference.
    let owner = api.create(&PostParams::default(), &cm("owner", &[])).await.unwrap();
    let mut c = owned("orphan");
    c.metadata.owner_references.as_mut().unwrap()[0].uid = owner.metadata.uid.clone().unwrap();
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    let orphan = api.get("orphan").await.unwrap();
    assert!(orphan.metadata.owner_references.unwrap_or_default().is_empty());

    // Foreground: the owner waits for a dependent held by a finalizer.
    let owner = api.create(&PostParams::default(), &cm("owner", &[])).await.unwrap();
    let mut c = owned("held-child");
    c.metadata.owner_references.as_mut().unwrap()[0].uid = owner.metadata.uid.clone().unwrap();
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..DeleteParams::default() };
    api.delete("owner", &dp).await.unwrap();
    let waiting = api.get("owner").await.unwrap();
    assert!(waiting.metadata.finalizers.unwrap().contains(&"foregroundDeletion".to_string()));
    assert!(api.get("held-child").await.unwrap().metadata.deletion_timestamp.is_some());
    api.patch("held-child", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(api.get("owner").await.unwrap_err()).code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn namespaces_delete_their_content() {
    let sim = start().await;
    let nss: Api<Namespace> = Api::all(sim.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "scratch"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "scratch");
    api.create(&PostParams::default(), &cm("in-ns", &[])).await.unwrap();
    nss.delete("scratch", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(api.get("in-ns").await.unwrap_err()).code, 404);
    assert_eq!(api_error(nss.get("scratch").await.unwrap_err()).code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn crds_serve_their_objects() {
    let sim = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = created.status.unwrap().conditions.unwrap().iter().any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(sim.client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}, "status": {"x": 1},
    }))
    .unwrap();
    let stored = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(stored.data["spec"]["size"], 3);
    assert!(stored.data.get("status").is_none(), "status subresource: status dropped on create");
    let status = widgets.patch_status("w1", &PatchParams::default(), &Patch::Merge(json!({"status": {"ready": true}}))).await.unwrap();
    assert_eq!(status.data["status"]["ready"], true);
    assert_eq!(widgets.list(&ListParams::default()).await.unwrap().items.len(), 1);
    // Deleting the CRD removes its objects and its route.
    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(widgets.get("w1").await.unwrap_err()).code, 404);
    let _unused: Option<Pod> = None;
    sim.handle.shutdown().await;
}
