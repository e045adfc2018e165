//! The real kubectl against kube-sim (skipped with a reason when kubectl
//! is not installed), and the `kube-sim` binary's contract.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{has_bwrap, start};

fn has_kubectl() -> bool {
    let ok = std::process::Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: kubectl is not installed");
    }
    ok
}

async fn kubectl(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(args)
        .output()
        .await
        .expect("kubectl runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn ok(config: &Path, args: &[&str]) -> String {
    let (success, out, err) = kubectl(config, args).await;
    assert!(success, "kubectl {args:?} failed: {err}");
    out
}

const JOB: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo one; sleep 0.5; echo two"]
"#;

const CONFIG: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
"#;

#[tokio::test]
async fn kubectl_apply_get_logs_exec_delete() {
    if !has_kubectl() || !has_bwrap() {
        return;
    }
    let sim = start().await;
    let config = sim.dir.path().join("kubeconfig");
    sim.handle.write_kubeconfig(&config).unwrap();
    let job_file = sim.dir.path().join("job.yaml");
    std::fs::write(&job_file, JOB).unwrap();
    let cm_file = sim.dir.path().join("cm.yaml");
    std::fs::write(&cm_file, CONFIG).unwrap();

    // Client-side apply, twice (the second one patches).
    assert!(ok(&config, &["apply", "-f", cm_file.to_str().unwrap()]).await.contains("configmap/settings created"));
    std::fs::write(&cm_file, CONFIG.replace("fast", "slow")).unwrap();
    assert!(ok(&config, &["apply", "-f", cm_file.to_str().unwrap()]).await.contains("configmap/settings configured"));
    let cm: Value = serde_json::from_str(&ok(&config, &["get", "configmap", "settings", "-o", "json"]).await).unwrap();
    assert_eq!(cm["data"]["mode"], "slow");

    // Server-side apply, then logs -f until the job's pod ends.
    assert!(ok(&config, &["apply", "--server-side", "-f", job_file.to_str().unwrap()]).await.contains("job.batch/hello serverside-applied"));
    let followed = ok(&config, &["logs", "-f", "job/hello"]).await;
    assert_eq!(followed, "one\ntwo\n");
    ok(&config, &["wait", "--for=condition=complete", "job/hello", "--timeout=30s"]).await;
    let jobs: Value = serde_json::from_str(&ok(&config, &["get", "jobs", "-o", "json"]).await).unwrap();
    assert_eq!(jobs["items"][0]["status"]["succeeded"], 1);
    let table = ok(&config, &["get", "pods"]).await;
    assert!(table.starts_with("NAME") && table.contains("hello-") && table.contains("Completed"), "{table}");
    assert_eq!(ok(&config, &["logs", "job/hello"]).await, "one\ntwo\n");

    // exec into a running pod, with its exit code.
    ok(&config, &["run", "shell", "--image=busybox", "--restart=Never", "--command", "--", "sleep", "60"]).await;
    ok(&config, &["wait", "--for=condition=Ready", "pod/shell", "--timeout=30s"]).await;
    let (success, out, err) = kubectl(&config, &["exec", "shell", "--", "sh", "-c", "echo inside; exit 5"]).await;
    assert!(!success);
    assert_eq!(out, "inside\n");
    assert!(err.contains("command terminated with exit code 5"), "{err}");

    // delete: the pod's processes stop and it goes away.
    // `sleep` as PID 1 ignores SIGTERM as in a container: a short grace period.
    assert!(ok(&config, &["delete", "pod", "shell", "--grace-period=1"]).await.contains("pod \"shell\" deleted"));
    assert!(ok(&config, &["delete", "job", "hello"]).await.contains("deleted"));
    let (found, _, err) = kubectl(&config, &["get", "pod", "shell"]).await;
    assert!(!found && err.contains("NotFound"), "{err}");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn binary_prints_ready_writes_kubeconfig_and_stops_pods_on_sigterm() {
    if !has_kubectl() || !has_bwrap() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kc");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap();
    assert_eq!(first.as_deref(), Some("ready"));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("server: http://127.0.0.1:") && text.contains("namespace: default"), "{text}");
    ok(&config, &["run", "sleeper", "--image=busybox", "--restart=Never", "--command", "--", "sh", "-c", "echo $$ > /dev/termination-log; sleep 60"]).await;
    ok(&config, &["wait", "--for=condition=Ready", "pod/sleeper", "--timeout=30s"]).await;
    // The container's bwrap process is a child of kube-sim.
    let pid = child.id().unwrap();
    let mut kids: Vec<String> = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        kids.extend(children.split_whitespace().map(str::to_string));
    }
    assert!(!kids.is_empty(), "a container process runs");
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), rustix::process::Signal::TERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    for kid in kids {
        assert!(!Path::new(&format!("/proc/{kid}")).exists() || std::fs::read_to_string(format!("/proc/{kid}/stat")).unwrap_or_default().contains(") Z"), "container process {kid} outlived kube-sim");
    }
}
