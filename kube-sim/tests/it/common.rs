//! Starting a server and a client for one test.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::{Client, Config};
use kube_sim::{KubeSim, KubeSimHandle};

pub(crate) struct Sim {
    pub(crate) handle: KubeSimHandle,
    pub(crate) client: Client,
    pub(crate) dir: tempfile::TempDir,
}

impl Sim {
    pub(crate) fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }
}

pub(crate) async fn start() -> Sim {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let handle = KubeSim::new()
        .audit_log(dir.path().join("audit.log"))
        .state_dir(dir.path().join("state"))
        .bookmark_interval(Duration::from_millis(200))
        .start()
        .await
        .expect("kube-sim starts");
    let config = Config::new(handle.url().parse().expect("url"));
    let client = Client::try_from(config).expect("client");
    Sim { handle, client, dir }
}

/// Whether bubblewrap is usable here (tests running containers skip without it).
pub(crate) fn has_bwrap() -> bool {
    let ok = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: bubblewrap (bwrap) is not usable on this machine");
    }
    ok
}

/// Waits (watching, no polling sleeps) until the pod satisfies `done`.
pub(crate) async fn wait_pod(api: &Api<Pod>, name: &str, done: impl Fn(&Pod) -> bool) -> Pod {
    let fut = async {
        loop {
            let current = api.get(name).await.expect("get pod");
            if done(&current) {
                return current;
            }
            let rv = current.metadata.resource_version.clone().unwrap_or_default();
            let wp = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(10);
            let mut stream = api.watch(&wp, &rv).await.expect("watch").boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(WatchEvent::Modified(p) | WatchEvent::Added(p)) = ev
                    && done(&p)
                {
                    return p;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), fut).await.expect("pod reached the state in time")
}

pub(crate) fn phase(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default()
}

pub(crate) fn terminal(p: &Pod) -> bool {
    matches!(phase(p).as_str(), "Succeeded" | "Failed")
}

/// A pod running `script` with `sh -c`.
pub(crate) fn shell_pod(name: &str, script: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]},
    }))
    .expect("pod")
}
