//! One pod's life on the node: volumes, init containers one after another,
//! then the containers together, each a bubblewrap process; container and
//! pod status (states, exit codes, termination messages, phase,
//! conditions) written as they change; readiness probes; the pod's
//! `activeDeadlineSeconds`; and stopping on deletion (SIGTERM, SIGKILL
//! after the grace period) or when the node is lost (SIGKILL, no status).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::logs::ContainerLog;
use super::sandbox::{self, View};
use super::{Kubelet, Stop, config, probe};
use crate::store::{Part, now};

/// A container process that runs.
struct Running {
    pid: i32,
}

/// How a group of containers ended.
enum End {
    Exited,
    Stopped(Stop),
    Deadline,
}

pub(crate) struct PodRun {
    pub(crate) kubelet: Arc<Kubelet>,
    pub(crate) pod: Value,
    pub(crate) stop: watch::Receiver<Stop>,
    pub(crate) dir: PathBuf,
    status: Value,
    volumes: Vec<(String, PathBuf)>,
    deadline: Option<tokio::time::Instant>,
}

/// SIGTERM goes to the container's main process only (the first process
/// below bwrap, PID 1 in the sandbox), as a container runtime sends it;
/// SIGKILL to the whole process group. A container that is still starting
/// (bwrap has not run the command yet) gets it once the command runs.
fn signal(pid: i32, sig: rustix::process::Signal) {
    let Some(group) = rustix::process::Pid::from_raw(pid) else { return };
    if sig != rustix::process::Signal::TERM {
        let _ = rustix::process::kill_process_group(group, sig);
        return;
    }
    tokio::spawn(async move {
        for _ in 0..200 {
            if let Some(main) = main_process(pid).and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(main, sig);
                return;
            }
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = rustix::process::kill_process_group(group, sig);
    });
}

/// The first descendant of `pid` that is not bwrap itself.
fn main_process(pid: i32) -> Option<i32> {
    let mut current = pid;
    for _ in 0..4 {
        let children = std::fs::read_to_string(format!("/proc/{current}/task/{current}/children")).ok()?;
        let child: i32 = children.split_whitespace().next()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
        if comm.trim() != "bwrap" {
            return Some(child);
        }
        current = child;
    }
    None
}

fn exit_code(status: std::process::ExitStatus) -> i64 {
    status.code().map_or_else(|| 128 + i64::from(status.signal().unwrap_or(9)), i64::from)
}

impl PodRun {
    pub(crate) fn new(kubelet: Arc<Kubelet>, pod: Value, stop: watch::Receiver<Stop>, dir: PathBuf) -> Self {
        let status = pod["status"].clone();
        let deadline = pod["spec"]["activeDeadlineSeconds"]
            .as_u64()
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        Self { kubelet, pod, stop, dir, status, volumes: Vec::new(), deadline }
    }

    fn ns(&self) -> &str {
        self.pod["metadata"]["namespace"].as_str().unwrap_or("default")
    }

    fn name(&self) -> &str {
        self.pod["metadata"]["name"].as_str().unwrap_or("")
    }

    fn publish(&self) {
        let Some(t) = self.kubelet.store.registry().find("", "v1", "pods") else { return };
        let status = self.status.clone();
        let uid = self.pod["metadata"]["uid"].clone();
        let _ = self.kubelet.store.modify(&t, self.ns(), self.name(), Part::Status, move |o| {
            if o["metadata"]["uid"] != uid {
                return Err(crate::error::ApiError::bad_request("pod was replaced"));
            }
            o["status"] = status;
            Ok(())
        });
    }

    fn condition(&mut self, kind: &str, on: bool, reason: Option<&str>) {
        let value = if on { "True" } else { "False" };
        let list = self.status["conditions"].as_array_mut();
        let mut entry = json!({"type": kind, "status": value, "lastProbeTime": null, "lastTransitionTime": now()});
        if let Some(r) = reason {
            entry["reason"] = json!(r);
        }
        match list {
            Some(list) => match list.iter_mut().find(|c| c["type"] == kind) {
                Some(c) if c["status"] == value && c.get("reason") == entry.get("reason") => {}
                Some(c) => *c = entry,
                None => list.push(entry),
            },
            None => self.status["conditions"] = json!([entry]),
        }
    }

    fn containers(&self, list: &str) -> Vec<Value> {
        self.pod["spec"][list].as_array().cloned().unwrap_or_default()
    }

    fn set_state(&mut self, list: &str, index: usize, state: Value, ready: bool) {
        let key = if list == "initContainers" { "initContainerStatuses" } else { "containerStatuses" };
        let c = &self.pod["spec"][list][index];
        let name = c["name"].clone();
        let started = state.get("running").is_some();
        let entry = json!({
            "name": name, "image": c["image"], "imageID": "",
            "containerID": format!("kube-sim://{}-{}", self.pod["metadata"]["uid"].as_str().unwrap_or(""), name.as_str().unwrap_or("")),
            "ready": ready, "restartCount": 0, "started": started, "state": state, "lastState": {},
        });
        if !self.status[key].is_array() {
            self.status[key] = json!([]);
        }
        if let Some(arr) = self.status[key].as_array_mut() {
            while arr.len() <= index {
                arr.push(Value::Null);
            }
            arr[index] = entry;
        }
    }

    fn waiting_all(&mut self, list: &str, reason: &str) {
        for i in 0..self.containers(list).len() {
            self.set_state(list, i, json!({"waiting": {"reason": reason}}), false);
        }
    }

    /// The whole life; returns how it ended so the caller can release the pod.
    pub(crate) async fn run(mut self) -> Stop {
        let has_init = !self.containers("initContainers").is_empty();
        self.waiting_all("initContainers", "PodInitializing");
        self.waiting_all("containers", if has_init { "PodInitializing" } else { "ContainerCreating" });
        self.condition("Initialized", !has_init, None);
        self.condition("Ready", false, Some("ContainersNotReady"));
        self.condition("ContainersReady", false, Some("ContainersNotReady"));
        self.publish();
        // Volumes: retried while what they need is missing.
        loop {
            match config::volumes(&self.kubelet.store, &self.pod, &self.dir.join("volumes")) {
                Ok(v) => {
                    self.volumes = v;
                    break;
                }
                Err(message) => {
                    self.status["message"] = json!(message);
                    self.publish();
                }
            }
            if let Some(end) = self.pause(Duration::from_secs(1)).await {
                return self.end(end).await;
            }
        }
        if let Some(o) = self.status.as_object_mut() {
            o.remove("message");
        }
        for i in 0..self.containers("initContainers").len() {
            match self.run_group("initContainers", vec![i]).await {
                End::Exited => {}
                other => return self.end(other).await,
            }
            let code = self.status["initContainerStatuses"][i]["state"]["terminated"]["exitCode"].as_i64().unwrap_or(1);
            if code != 0 {
                self.status["phase"] = json!("Failed");
                self.waiting_all("containers", "PodInitializing");
                self.publish();
                return Stop::Run;
            }
        }
        self.condition("Initialized", true, None);
        let all: Vec<usize> = (0..self.containers("containers").len()).collect();
        let end = self.run_group("containers", all).await;
        if !matches!(end, End::Exited) {
            return self.end(end).await;
        }
        self.finish_phase(None);
        Stop::Run
    }

    fn finish_phase(&mut self, reason: Option<(&str, &str)>) {
        let statuses = self.status["containerStatuses"].as_array().cloned().unwrap_or_default();
        let ok = !statuses.is_empty() && statuses.iter().all(|c| c["state"]["terminated"]["exitCode"] == json!(0));
        self.status["phase"] = json!(if ok && reason.is_none() { "Succeeded" } else { "Failed" });
        if let Some((r, m)) = reason {
            self.status["reason"] = json!(r);
            self.status["message"] = json!(m);
        }
        self.condition("Ready", false, Some("PodCompleted"));
        self.condition("ContainersReady", false, Some("PodCompleted"));
        self.publish();
    }

    /// Sleeps, unless stopped or past the deadline first.
    async fn pause(&mut self, d: Duration) -> Option<End> {
        let deadline = self.deadline;
        tokio::select! {
            () = tokio::time::sleep(d) => None,
            _ = self.stop.changed() => Some(End::Stopped(*self.stop.borrow())),
            () = async { match deadline { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => Some(End::Deadline),
        }
    }

    async fn end(&mut self, end: End) -> Stop {
        match end {
            End::Deadline => {
                self.finish_phase(Some(("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")));
                Stop::Run
            }
            End::Stopped(Stop::Delete) => {
                self.finish_phase(None);
                Stop::Delete
            }
            End::Stopped(s) => s,
            End::Exited => Stop::Run,
        }
    }

    /// The view and environment of a container, or why it cannot start.
    fn prepare(&self, c: &Value, log_dir: &std::path::Path) -> Result<View, (bool, String)> {
        let env = config::environment(&self.kubelet.store, &self.pod, c).map_err(|m| (true, m))?;
        let Some(bwrap) = self.kubelet.bwrap.as_deref() else {
            return Err((false, "bubblewrap (bwrap) is not installed on this machine: kube-sim runs containers with it (apt-get install bubblewrap)".into()));
        };
        let image = c["image"].as_str().and_then(|i| sandbox::image_dir(&self.kubelet.images, i));
        let hostname = self.name().chars().take(63).collect::<String>();
        sandbox::view(bwrap, c, &hostname, &self.volumes, image, &log_dir.join("termination-log"), env).map_err(|m| (false, m))
    }

    /// Runs containers together until all ended, or a stop or the deadline.
    async fn run_group(&mut self, list: &str, indices: Vec<usize>) -> End {
        let containers = self.containers(list);
        let (exit_tx, mut exit_rx) = mpsc::channel::<(usize, std::process::ExitStatus)>(16);
        let (probe_tx, mut probe_rx) = mpsc::channel::<(usize, bool)>(16);
        let mut running: Vec<(usize, Running, Arc<ContainerLog>, PathBuf, Vec<tokio::task::JoinHandle<()>>)> = Vec::new();
        let mut ready = vec![false; containers.len()];
        for &i in &indices {
            let c = containers[i].clone();
            let cname = c["name"].as_str().unwrap_or("").to_string();
            let cdir = self.dir.join("containers").join(&cname);
            if let Err(e) = std::fs::create_dir_all(&cdir).and_then(|()| std::fs::write(cdir.join("termination-log"), b"")) {
                self.set_state(list, i, json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": format!("creating {}: {e}", cdir.display()), "startedAt": now(), "finishedAt": now()}}), false);
                continue;
            }
            let view = loop {
                match self.prepare(&c, &cdir) {
                    Ok(v) => break Some(v),
                    Err((true, message)) => {
                        self.set_state(list, i, json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}}), false);
                        self.publish();
                        if let Some(end) = self.pause(Duration::from_secs(1)).await {
                            self.kill_all(&running, rustix::process::Signal::KILL);
                            return end;
                        }
                    }
                    Err((false, message)) => {
                        self.set_state(list, i, json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": message, "startedAt": now(), "finishedAt": now()}}), false);
                        break None;
                    }
                }
            };
            let Some(view) = view else { continue };
            let mut argv: Vec<String> = Vec::new();
            for field in ["command", "args"] {
                for a in c[field].as_array().into_iter().flatten() {
                    argv.push(config::expand(a.as_str().unwrap_or(""), &view.env));
                }
            }
            if c["command"].as_array().is_none_or(Vec::is_empty) {
                let message = format!(
                    "kube-sim: container {cname:?} has no command: image entrypoints are unknown here (images are not pulled), so set `command`"
                );
                self.set_state(list, i, json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": message, "startedAt": now(), "finishedAt": now()}}), false);
                continue;
            }
            let log = match ContainerLog::create(cdir.join("output.log")).await {
                Ok(l) => l,
                Err(e) => {
                    self.set_state(list, i, json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": format!("creating the log file: {e}"), "startedAt": now(), "finishedAt": now()}}), false);
                    continue;
                }
            };
            let mut cmd = tokio::process::Command::new(&view.argv[0]);
            cmd.args(&view.argv[1..]).arg("--").args(&argv);
            cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            cmd.process_group(0).kill_on_drop(true);
            let started = now();
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    log.finish().await;
                    self.set_state(list, i, json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": format!("starting bwrap: {e}"), "startedAt": started, "finishedAt": now()}}), false);
                    continue;
                }
            };
            let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
            let mut pumps = Vec::new();
            if let Some(out) = child.stdout.take() {
                pumps.push(tokio::spawn(log.clone().pump(out)));
            }
            if let Some(err) = child.stderr.take() {
                pumps.push(tokio::spawn(log.clone().pump(err)));
            }
            let tx = exit_tx.clone();
            tokio::spawn(async move {
                if let Ok(status) = child.wait().await {
                    let _ = tx.send((i, status)).await;
                }
            });
            self.kubelet.started(self.ns(), self.name(), &cname, log.clone(), view.clone());
            let has_probe = list == "containers" && c.get("readinessProbe").is_some_and(Value::is_object);
            ready[i] = !has_probe;
            if has_probe {
                let ip = self.status["podIP"].as_str().unwrap_or("127.0.0.1").to_string();
                tokio::spawn(probe::run(c["readinessProbe"].clone(), c.clone(), ip, view.clone(), i, probe_tx.clone()));
            }
            self.set_state(list, i, json!({"running": {"startedAt": started}}), ready[i]);
            running.push((i, Running { pid }, log, cdir, pumps));
        }
        drop(probe_tx);
        if list == "containers" {
            self.status["phase"] = json!("Running");
            self.update_ready(&ready);
        }
        self.publish();
        let mut stop_reason: Option<End> = None;
        let mut killed_at: Option<tokio::time::Instant> = None;
        let grace = Duration::from_secs(self.pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
        let deadline = self.deadline;
        while !running.is_empty() {
            let kill_due = killed_at;
            tokio::select! {
                Some((i, status)) = exit_rx.recv() => {
                    let Some(pos) = running.iter().position(|r| r.0 == i) else { continue };
                    let (i, _, log, cdir, pumps) = running.remove(pos);
                    for p in pumps {
                        let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
                    }
                    log.finish().await;
                    let cname = containers[i]["name"].as_str().unwrap_or("");
                    self.kubelet.ended(self.ns(), self.name(), cname);
                    if matches!(stop_reason, Some(End::Stopped(Stop::Lost))) {
                        continue;
                    }
                    let code = exit_code(status);
                    let message = termination_message(&containers[i], &cdir, &log.path, code);
                    let started = self.status[if list == "initContainers" { "initContainerStatuses" } else { "containerStatuses" }][i]["state"]["running"]["startedAt"].clone();
                    let mut term = json!({"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "startedAt": started, "finishedAt": now(), "containerID": format!("kube-sim://{}-{cname}", self.pod["metadata"]["uid"].as_str().unwrap_or(""))});
                    if !message.is_empty() {
                        term["message"] = json!(message);
                    }
                    if let Some(sig) = status.signal() {
                        term["signal"] = json!(sig);
                    }
                    ready[i] = false;
                    self.set_state(list, i, json!({"terminated": term}), false);
                    if list == "containers" {
                        self.update_ready(&ready);
                    }
                    self.publish();
                }
                Some((i, r)) = probe_rx.recv() => {
                    if running.iter().any(|x| x.0 == i) {
                        ready[i] = r;
                        let state = self.status["containerStatuses"][i]["state"].clone();
                        self.set_state(list, i, state, r);
                        self.update_ready(&ready);
                        self.publish();
                    }
                }
                _ = self.stop.changed(), if stop_reason.is_none() => {
                    let s = *self.stop.borrow();
                    match s {
                        Stop::Run => {}
                        Stop::Lost => {
                            self.kill_all(&running, rustix::process::Signal::KILL);
                            stop_reason = Some(End::Stopped(Stop::Lost));
                        }
                        Stop::Delete | Stop::Shutdown => {
                            self.kill_all(&running, rustix::process::Signal::TERM);
                            killed_at = Some(tokio::time::Instant::now() + if s == Stop::Shutdown { Duration::from_secs(2) } else { grace });
                            stop_reason = Some(End::Stopped(s));
                        }
                    }
                }
                () = async { match deadline { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } }, if stop_reason.is_none() => {
                    self.kill_all(&running, rustix::process::Signal::TERM);
                    killed_at = Some(tokio::time::Instant::now() + grace);
                    stop_reason = Some(End::Deadline);
                }
                () = async { match kill_due { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                    self.kill_all(&running, rustix::process::Signal::KILL);
                    killed_at = None;
                }
            }
        }
        stop_reason.unwrap_or(End::Exited)
    }

    fn kill_all(&self, running: &[(usize, Running, Arc<ContainerLog>, PathBuf, Vec<tokio::task::JoinHandle<()>>)], sig: rustix::process::Signal) {
        for r in running {
            signal(r.1.pid, sig);
        }
    }

    fn update_ready(&mut self, ready: &[bool]) {
        let statuses = self.status["containerStatuses"].as_array().cloned().unwrap_or_default();
        let all = statuses.iter().all(|c| c["state"].get("running").is_some()) && ready.iter().all(|r| *r);
        let reason = (!all).then_some("ContainersNotReady");
        self.condition("ContainersReady", all, reason);
        self.condition("Ready", all, reason);
    }
}

/// The termination message: the file (up to 4096 bytes), or with
/// `FallbackToLogsOnError` the log's tail when the file is empty and the
/// container failed.
fn termination_message(c: &Value, dir: &std::path::Path, log: &std::path::Path, code: i64) -> String {
    let mut text = std::fs::read(dir.join("termination-log")).unwrap_or_default();
    text.truncate(4096);
    let mut message = String::from_utf8_lossy(&text).into_owned();
    if message.is_empty() && code != 0 && c["terminationMessagePolicy"] == "FallbackToLogsOnError" {
        let all = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = all.lines().map(|l| l.split_once(' ').map_or(l, |x| x.1)).collect();
        let tail = &lines[lines.len().saturating_sub(80)..];
        message = tail.join("\n");
        if message.len() > 2048 {
            let cut = message.len() - 2048;
            let cut = (cut..message.len()).find(|i| message.is_char_boundary(*i)).unwrap_or(cut);
            message = message[cut..].to_string();
        }
    }
    message
}
