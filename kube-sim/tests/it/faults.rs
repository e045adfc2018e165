//! Fault injection: evictions, a lost node, failing requests, expired
//! watches (the latter in `watch.rs`), through the handle and the HTTP
//! endpoints.

use axum::http::Request;
use futures_util::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, EvictParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube_sim::FailRule;
use serde_json::json;

use crate::common::{has_bwrap, phase, shell_pod, start, terminal, wait_pod};

#[tokio::test]
async fn eviction_respects_finalizers_and_stops_processes() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    let mut pod = shell_pod("evicted", "trap 'echo got TERM; exit 143' TERM; echo up; while true; do sleep 0.1; done");
    pod.metadata.finalizers = Some(vec!["example.com/keep-logs".into()]);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_pod(&pods, "evicted", |p| phase(p) == "Running").await;
    // The trap is set once "up" is printed.
    let mut lines = pods.log_stream("evicted", &LogParams { follow: true, ..LogParams::default() }).await.unwrap().lines();
    assert_eq!(lines.try_next().await.unwrap().as_deref(), Some("up"));
    pods.evict("evicted", &EvictParams::default()).await.unwrap();
    // The processes are stopped with SIGTERM; the finalizer keeps the pod and its logs.
    let stopped = wait_pod(&pods, "evicted", terminal).await;
    assert!(stopped.metadata.deletion_timestamp.is_some());
    let logs = pods.logs("evicted", &LogParams::default()).await.unwrap();
    assert_eq!(logs, "up\ngot TERM\n");
    let term = stopped.status.unwrap().container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!(term.exit_code, 143);
    pods.patch("evicted", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(pods.get_opt("evicted").await.unwrap().is_none());
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn evict_endpoint_starts_a_pods_deletion() {
    let sim = start().await;
    let pods = sim.pods();
    // On another node: no kubelet here runs or releases it.
    let mut pod = shell_pod("elsewhere", "true");
    pod.spec.as_mut().unwrap().node_name = Some("other-node".into());
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let req = Request::post("/kube-sim/evict?namespace=default&name=elsewhere").body(Vec::new()).unwrap();
    sim.client.request_text(req).await.unwrap();
    let pod = pods.get("elsewhere").await.unwrap();
    assert!(pod.metadata.deletion_timestamp.is_some());
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(30));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn lost_node_marks_pods_and_hides_logs() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    pods.create(&PostParams::default(), &shell_pod("victim", "echo alive; sleep 60")).await.unwrap();
    wait_pod(&pods, "victim", |p| phase(p) == "Running").await;
    let req = Request::post("/kube-sim/lose-node").body(Vec::new()).unwrap();
    sim.client.request_text(req).await.unwrap();
    let lost = wait_pod(&pods, "victim", |p| phase(p) == "Unknown").await;
    let status = lost.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("NodeLost"));
    let ready = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("NodeLost")));
    match pods.logs("victim", &LogParams::default()).await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!(s.code, 500),
        other => panic!("expected 500, got {other:?}"),
    }
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn failing_requests_answer_5xx_then_recover() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    sim.handle.fail_requests(FailRule { verb: Some("list".into()), path: Some("/configmaps".into()), code: 500, count: 2 });
    for _ in 0..2 {
        match api.list(&ListParams::default()).await.unwrap_err() {
            kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (500, "InternalError")),
            other => panic!("expected 500, got {other:?}"),
        }
    }
    // Other verbs were never affected; the rule is used up.
    api.get_opt("none").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    // kube-rs retries 503 on its own: two 503s, then the list succeeds (three requests).
    sim.handle.fail_requests(FailRule { verb: Some("list".into()), path: None, code: 503, count: 2 });
    api.list(&ListParams::default()).await.unwrap();
    let codes: Vec<u64> = kube_sim::read_audit_log(&sim.audit_path())
        .unwrap()
        .iter()
        .filter(|e| e["verb"] == "list")
        .map(|e| e["responseStatus"]["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 200, 503, 503, 200]);
    // The same through the HTTP endpoint.
    let req = Request::post("/kube-sim/fail-requests").body(br#"{"verb": "create", "code": 500, "count": 1}"#.to_vec()).unwrap();
    sim.client.request_text(req).await.unwrap();
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    match api.create(&PostParams::default(), &cm).await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!(s.code, 500),
        other => panic!("expected 500, got {other:?}"),
    }
    api.create(&PostParams::default(), &cm).await.unwrap();
    sim.handle.shutdown().await;
}
