//! The Job controller and the bubblewrap kubelet: real processes.

use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, AttachParams, ListParams, LogParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::common::{has_bwrap, phase, shell_pod, start, terminal, wait_pod};

async fn wait_job(api: &Api<Job>, name: &str, done: impl Fn(&Job) -> bool) -> Job {
    let fut = async {
        loop {
            let job = api.get(name).await.unwrap();
            if done(&job) {
                return job;
            }
            let rv = job.metadata.resource_version.clone().unwrap();
            let mut s = api.watch(&WatchParams::default().fields(&format!("metadata.name={name}")).timeout(10), &rv).await.unwrap().boxed();
            while let Some(Ok(WatchEvent::Modified(j))) = s.next().await {
                if done(&j) {
                    return j;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), fut).await.expect("job reached the state in time")
}

fn condition(job: &Job, kind: &str) -> Option<String> {
    job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind && c.status == "True").and_then(|c| c.reason.clone())
}

#[tokio::test]
async fn failing_job_pod_reports_exit_code_and_message() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let jobs: Api<Job> = Api::namespaced(sim.client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "fails"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "busybox",
            "command": ["sh", "-c", "echo hi; echo 'went wrong' > /dev/termination-log; exit 3"],
        }]}}},
    }))
    .unwrap();
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    let done = wait_job(&jobs, "fails", |j| condition(j, "Failed").is_some()).await;
    assert_eq!(condition(&done, "Failed").as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(condition(&done, "FailureTarget").as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(done.status.as_ref().unwrap().failed, Some(1));

    let pods = sim.pods();
    let list = pods.list(&ListParams::default().labels("job-name=fails")).await.unwrap();
    assert_eq!(list.items.len(), 1, "backoffLimit 0: one pod only");
    let pod = &list.items[0];
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Job", created.metadata.uid.as_deref().unwrap(), Some(true)));
    let labels = pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["batch.kubernetes.io/job-name"], "fails");
    assert_eq!(labels["controller-uid"], created.metadata.uid.clone().unwrap());
    assert_eq!(phase(pod), "Failed");
    let state = pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].state.clone().unwrap();
    let term = state.terminated.unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref(), term.message.as_deref()), (3, Some("Error"), Some("went wrong\n")));
    assert!(pod.status.as_ref().unwrap().pod_ip.as_deref().unwrap().starts_with("127.0."));
    let logs = pods.logs(pod.metadata.name.as_deref().unwrap(), &LogParams::default()).await.unwrap();
    assert_eq!(logs, "hi\n");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn init_containers_share_an_empty_dir_in_order_and_config_reaches_containers() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(sim.client.clone(), "default");
    cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hello", "file.txt": "from-cm"}})).unwrap()).await.unwrap();
    secrets.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "sec"}, "stringData": {"token": "s3cret"}})).unwrap()).await.unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "ordered", "labels": {"team": "qa"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "work", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "file.txt", "path": "sub/f.txt"}]}},
                        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}}],
            "initContainers": [
                {"name": "first", "image": "busybox", "command": ["sh", "-c", "echo one >> /work/order"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
                {"name": "second", "image": "busybox", "command": ["sh", "-c", "echo two >> /work/order"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
            ],
            "containers": [{
                "name": "main", "image": "busybox", "workingDir": "/work",
                "command": ["sh", "-c"],
                "args": ["cat order; echo $(GREETING) $TOKEN $POD $NS; cat /cfg/sub/f.txt; echo; stat -c %a /sec/token; touch /cfg/x 2>/dev/null || echo read-only"],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                ],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "cfg", "mountPath": "/cfg", "readOnly": true}, {"name": "sec", "mountPath": "/sec"}],
            }],
        },
    }))
    .unwrap();
    let pods = sim.pods();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = wait_pod(&pods, "ordered", terminal).await;
    let logs = pods.logs("ordered", &LogParams::default()).await.unwrap();
    assert_eq!(phase(&done), "Succeeded", "logs: {logs}");
    assert_eq!(logs, "one\ntwo\nhello s3cret ordered default\nfrom-cm\n400\nread-only\n");
    let init = done.status.as_ref().unwrap().init_container_statuses.clone().unwrap();
    assert!(init.iter().all(|c| c.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code == 0));
    let first = pods.logs("ordered", &LogParams { container: Some("first".into()), ..LogParams::default() }).await.unwrap();
    assert_eq!(first, "");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn logs_follow_since_time_and_timestamps() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    pods.create(&PostParams::default(), &shell_pod("talker", "echo a; sleep 2; echo b; echo c >&2")).await.unwrap();
    wait_pod(&pods, "talker", |p| phase(p) == "Running").await;
    // Follow: streams until the container ends.
    let stream = pods.log_stream("talker", &LogParams { follow: true, ..LogParams::default() }).await.unwrap();
    let lines: Vec<String> = stream.lines().try_collect().await.unwrap();
    assert_eq!(lines, vec!["a", "b", "c"]);
    // Timestamps: RFC 3339 with nanoseconds, as the kubelet writes them.
    let stamped = pods.logs("talker", &LogParams { timestamps: true, ..LogParams::default() }).await.unwrap();
    let stamps: Vec<(&str, &str)> = stamped.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(stamps.iter().map(|s| s.1).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    let b_time: k8s_openapi::jiff::Timestamp = stamps[1].0.parse().unwrap();
    // sinceTime at b's whole second: a (2 s earlier) is left out.
    let since = k8s_openapi::jiff::Timestamp::from_second(b_time.as_second()).unwrap();
    let recent = pods.logs("talker", &LogParams { since_time: Some(since), ..LogParams::default() }).await.unwrap();
    assert_eq!(recent, "b\nc\n");
    let tail = pods.logs("talker", &LogParams { tail_lines: Some(1), ..LogParams::default() }).await.unwrap();
    assert_eq!(tail, "c\n");
    let limited = pods.logs("talker", &LogParams { limit_bytes: Some(3), ..LogParams::default() }).await.unwrap();
    assert_eq!(limited, "a\nb");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn exec_runs_in_the_containers_view() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "target"},
        "spec": {"restartPolicy": "Never", "volumes": [{"name": "data", "emptyDir": {}}], "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", "echo seen > /data/mark; sleep 60"],
            "env": [{"name": "COLOR", "value": "blue"}], "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        }]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_pod(&pods, "target", |p| phase(p) == "Running").await;
    let mut proc = pods
        .exec("target", ["sh", "-c", "while [ ! -s /data/mark ]; do sleep 0.05; done; cat /data/mark; echo $COLOR; echo oops >&2; exit 7"], &AttachParams::default().stderr(true))
        .await
        .unwrap();
    let mut out = String::new();
    proc.stdout().unwrap().read_to_string(&mut out).await.unwrap();
    let mut err = String::new();
    proc.stderr().unwrap().read_to_string(&mut err).await.unwrap();
    let status = proc.take_status().unwrap().await.unwrap();
    assert_eq!(out, "seen\nblue\n");
    assert_eq!(err, "oops\n");
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let code = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!((code.reason.as_deref(), code.message.as_deref()), (Some("ExitCode"), Some("7")));
    // stdin
    let mut proc = pods.exec("target", ["cat"], &AttachParams::default().stdin(true).stderr(false)).await.unwrap();
    let mut stdin = proc.stdin().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"ping\n").await.unwrap();
    // EOF on stdin (v5 close channel): a dropped half of kube's pipe does not end it, shutdown does.
    tokio::io::AsyncWriteExt::shutdown(&mut stdin).await.unwrap();
    let mut out = String::new();
    proc.stdout().unwrap().read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "ping\n");
    assert_eq!(proc.take_status().unwrap().await.unwrap().status.as_deref(), Some("Success"));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn readiness_probe_drives_ready() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "probed"},
        "spec": {"restartPolicy": "Never", "volumes": [{"name": "d", "emptyDir": {}}], "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 0.5; touch /d/ready; sleep 60"],
            "volumeMounts": [{"name": "d", "mountPath": "/d"}],
            "readinessProbe": {"exec": {"command": ["test", "-f", "/d/ready"]}, "periodSeconds": 1},
        }]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = wait_pod(&pods, "probed", |p| phase(p) == "Running").await;
    let ready = |p: &Pod| p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    assert!(!ready(&running) || running.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].ready);
    let p = wait_pod(&pods, "probed", ready).await;
    assert!(p.status.unwrap().container_statuses.unwrap()[0].ready);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn active_deadlines_stop_pods_and_jobs() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    let mut pod = shell_pod("slow", "sleep 60");
    pod.spec.as_mut().unwrap().active_deadline_seconds = Some(1);
    // `sleep` as PID 1 ignores SIGTERM, as in a container: SIGKILL after 1 s.
    pod.spec.as_mut().unwrap().termination_grace_period_seconds = Some(1);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = wait_pod(&pods, "slow", terminal).await;
    let status = done.status.unwrap();
    assert_eq!((status.phase.as_deref(), status.reason.as_deref()), (Some("Failed"), Some("DeadlineExceeded")));

    let jobs: Api<Job> = Api::namespaced(sim.client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "slowjob"},
        "spec": {"activeDeadlineSeconds": 1, "backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "60"]}]}}},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let failed = wait_job(&jobs, "slowjob", |j| condition(j, "Failed").is_some()).await;
    assert_eq!(condition(&failed, "Failed").as_deref(), Some("DeadlineExceeded"));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn a_container_without_command_fails_clearly() {
    if !has_bwrap() {
        return;
    }
    let sim = start().await;
    let pods = sim.pods();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "nocmd"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = wait_pod(&pods, "nocmd", terminal).await;
    let term = done.status.unwrap().container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!(term.reason.as_deref(), Some("StartError"));
    assert!(term.message.unwrap().contains("has no command"));
    sim.handle.shutdown().await;
}
