//! The audit log: one audit.k8s.io/v1 Event per request.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::start;

#[tokio::test]
async fn one_event_per_request_with_request_objects() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "audited"}, "data": {"a": "1"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.get("audited").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    api.patch("audited", &PatchParams::default(), &Patch::Merge(json!({"data": {"b": "2"}}))).await.unwrap();
    let _ = api.get("missing").await;
    api.delete("audited", &DeleteParams::default()).await.unwrap();
    api.delete_collection(&DeleteParams::default(), &ListParams::default()).await.unwrap();
    let events = kube_sim::read_audit_log(&sim.audit_path()).unwrap();
    let summary: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e["verb"].as_str().unwrap().to_string(), e["responseStatus"]["code"].as_u64().unwrap()))
        .collect();
    let want: Vec<(String, u64)> = [("create", 201), ("get", 200), ("list", 200), ("patch", 200), ("get", 404), ("delete", 200), ("deletecollection", 200)]
        .iter()
        .map(|(v, c)| ((*v).to_string(), *c))
        .collect();
    assert_eq!(summary, want);
    for e in &events {
        assert_eq!((e["kind"].as_str(), e["apiVersion"].as_str(), e["stage"].as_str()), (Some("Event"), Some("audit.k8s.io/v1"), Some("ResponseComplete")));
        assert!(e["auditID"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(e["objectRef"]["resource"], "configmaps");
        assert_eq!(e["objectRef"]["namespace"], "default");
        assert_eq!(e["objectRef"]["apiVersion"], "v1");
    }
    assert_eq!(events[0]["requestObject"]["metadata"]["name"], "audited");
    assert_eq!(events[0]["requestURI"], "/api/v1/namespaces/default/configmaps?");
    assert_eq!(events[3]["requestObject"], json!({"data": {"b": "2"}}));
    assert_eq!(events[1]["objectRef"]["name"], "audited");
    assert!(events[1].get("requestObject").is_none());
    sim.handle.shutdown().await;
}
