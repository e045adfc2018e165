//! The Job controller: a Job gets pods from its template (labels
//! `controller-uid`, `job-name` and their `batch.kubernetes.io/` forms, an
//! ownerReference to the Job) up to `parallelism` while `completions` are
//! not reached; failed pods are replaced while `backoffLimit` allows;
//! `activeDeadlineSeconds` fails the Job. Status: `active`, `ready`,
//! `succeeded`, `failed`, `startTime`, `completionTime`, and the
//! conditions Kubernetes 1.31+ sets (`SuccessCriteriaMet` then `Complete`;
//! `FailureTarget` then `Failed` with `BackoffLimitExceeded` or
//! `DeadlineExceeded`). Pods of a finished Job that still run are deleted.
//! No `job-tracking` finalizers, no indexed completion mode, no pod
//! failure policy, no suspend.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::registry::ResourceType;
use crate::select::{LabelSelector, Selectors};
use crate::store::{DeleteOptions, Part, Propagation, Store, now};

fn condition(kind: &str, reason: &str, message: &str) -> Value {
    let t = now();
    json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastProbeTime": t, "lastTransitionTime": t})
}

fn finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

fn parse_time(t: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t.as_str()?).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Runs the controller until the store goes away.
pub(crate) async fn run(store: Arc<Store>) {
    let registry = store.registry();
    let (Some(jobs), Some(pods)) = (registry.find("batch", "v1", "jobs"), registry.find("", "v1", "pods")) else { return };
    let mut changes = store.subscribe();
    let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<(String, String)>();
    loop {
        let target = tokio::select! {
            c = changes.recv() => match c {
                Ok(c) if c.key == "batch/jobs" => Some(vec![(c.namespace.clone(), c.object["metadata"]["name"].as_str().unwrap_or("").to_string())]),
                Ok(c) if c.key == "/pods" => c.object["metadata"]["labels"]["batch.kubernetes.io/job-name"]
                    .as_str()
                    .or(c.object["metadata"]["labels"]["job-name"].as_str())
                    .map(|j| vec![(c.namespace.clone(), j.to_string())]),
                Ok(_) => None,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (all, _) = store.list(&jobs, None, &Selectors::default());
                    Some(all.iter().map(|j| (j["metadata"]["namespace"].as_str().unwrap_or("").to_string(), j["metadata"]["name"].as_str().unwrap_or("").to_string())).collect())
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some(w) = wake_rx.recv() => Some(vec![w]),
        };
        for (ns, name) in target.into_iter().flatten() {
            reconcile(&store, &jobs, &pods, &ns, &name, &wake_tx);
        }
    }
}

fn reconcile(store: &Store, jobs: &ResourceType, pods: &ResourceType, ns: &str, name: &str, wake: &mpsc::UnboundedSender<(String, String)>) {
    let Ok(job) = store.get(jobs, ns, name) else { return };
    if job["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null()) || job["spec"]["suspend"] == json!(true) {
        return;
    }
    let uid = job["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let Ok(selector) = LabelSelector::parse(&format!("batch.kubernetes.io/controller-uid={uid}")) else { return };
    let sel = Selectors { labels: selector, ..Selectors::default() };
    let (owned, _) = store.list(pods, Some(ns), &sel);
    let phase = |p: &Value| p["status"]["phase"].as_str().unwrap_or("").to_string();
    let deleting = |p: &Value| p["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let active: Vec<&Value> = owned.iter().filter(|p| !matches!(phase(p).as_str(), "Succeeded" | "Failed") && !deleting(p)).collect();
    let succeeded = owned.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
    let failed = owned.iter().filter(|p| phase(p) == "Failed" || (deleting(p) && phase(p) != "Succeeded")).count() as i64;
    let ready = active
        .iter()
        .filter(|p| p["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        .count() as i64;
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
    let backoff = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    let start = job["status"]["startTime"].clone();
    let start = if start.is_null() { json!(now()) } else { start };
    let mut status = job["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    status["startTime"] = start.clone();
    let mut ending: Option<(&str, &str, &str)> = None;
    if finished(&job) {
        // Only cleanup remains.
    } else if succeeded >= completions {
        ending = Some(("Complete", "CompletionsReached", "Reached expected number of succeeded pods"));
    } else if failed > backoff {
        ending = Some(("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"));
    } else if let Some(limit) = job["spec"]["activeDeadlineSeconds"].as_i64() {
        let elapsed = parse_time(&start).map_or(0, |s| (chrono::Utc::now() - s).num_milliseconds());
        if elapsed >= limit * 1000 {
            ending = Some(("Failed", "DeadlineExceeded", "Job was active longer than specified deadline"));
        } else {
            let (w, ns, name) = (wake.clone(), ns.to_string(), name.to_string());
            let left = Duration::from_millis(u64::try_from(limit * 1000 - elapsed).unwrap_or(0) + 10);
            tokio::spawn(async move {
                tokio::time::sleep(left).await;
                let _ = w.send((ns, name));
            });
        }
    }
    let mut active_count = active.len() as i64;
    if finished(&job) || ending.is_some() {
        for p in &active {
            let opts = DeleteOptions { propagation: Some(Propagation::Background), ..DeleteOptions::default() };
            let _ = store.delete(pods, ns, p["metadata"]["name"].as_str().unwrap_or(""), &opts);
        }
        active_count = 0;
    } else {
        let want = parallelism.min(completions - succeeded).max(0);
        for _ in active_count..want {
            if create_pod(store, pods, &job, ns).is_ok() {
                active_count += 1;
            }
        }
    }
    status["active"] = json!(active_count);
    status["ready"] = json!(if active_count == 0 { 0 } else { ready });
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(failed);
    status["terminating"] = json!(0);
    status["uncountedTerminatedPods"] = json!({});
    for key in ["active", "succeeded", "failed"] {
        if status[key] == json!(0) && key != "ready"
            && let Some(o) = status.as_object_mut()
        {
            o.remove(key);
        }
    }
    if let Some((kind, reason, message)) = ending {
        let (first, second) = if kind == "Complete" {
            (condition("SuccessCriteriaMet", reason, message), condition("Complete", reason, message))
        } else {
            (condition("FailureTarget", reason, message), condition("Failed", reason, message))
        };
        status["conditions"] = json!([first, second]);
        if kind == "Complete" {
            status["completionTime"] = json!(now());
        }
    }
    if status != job["status"] {
        let _ = store.modify(jobs, ns, name, Part::Status, |j| {
            if j["metadata"]["uid"] != uid.as_str() || finished(j) && ending.is_some() {
                return Err(crate::error::ApiError::bad_request("job changed"));
            }
            j["status"] = status;
            Ok(())
        });
    }
}


fn create_pod(store: &Store, pods: &ResourceType, job: &Value, ns: &str) -> Result<Value, crate::error::ApiError> {
    let name = job["metadata"]["name"].as_str().unwrap_or("job");
    let template = &job["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["generateName"] = json!(format!("{name}-"));
    metadata["ownerReferences"] = json!([{
        "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    }]);
    if let Some(m) = metadata.as_object_mut() {
        m.remove("name");
        m.remove("namespace");
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]});
    store.create(pods, ns, pod)
}
