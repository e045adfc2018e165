//! kube-sim: a stateful Kubernetes API stand-in for tests.
//!
//! No kube-apiserver can run on the machines this project is built on, yet
//! the Kubernetes executor must be tested against real REST semantics and
//! real processes. kube-sim serves the API that kube-rs and kubectl use
//! (discovery, CRUD, patch, watch with bookmarks and `410 Gone`,
//! selectors, status subresources, finalizers, garbage collection, CRDs),
//! writes an audit log like the real server, runs a Job controller and a
//! kubelet whose containers are bubblewrap processes, and lets tests
//! inject faults (evictions, a lost node, 5xx answers, expired watches).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::StartError> {
//! let sim = kube_sim::KubeSim::new().audit_log("audit.log").start().await?;
//! sim.write_kubeconfig("kubeconfig")?;
//! // ... point a client at sim.url() ...
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod api;
mod defaults;
mod error;
mod gc;
mod job;
mod kubelet;
mod patch;
mod registry;
mod select;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use api::FailRule;
pub use api::audit::read_audit_log;
pub use error::ApiError;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("kube-sim: cannot listen on {addr}: {source} (choose another --listen address or port 0 for any free one)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The audit log could not be opened.
    #[error("kube-sim: cannot open the audit log {path}: {source}")]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state folder could not be created.
    #[error("kube-sim: cannot create the state folder {path}: {source}")]
    StateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Builds a kube-sim server.
#[derive(Debug, Clone)]
pub struct KubeSim {
    listen: SocketAddr,
    audit_log: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    images: Vec<(String, PathBuf)>,
    bookmark_interval: Duration,
}

impl Default for KubeSim {
    fn default() -> Self {
        Self::new()
    }
}

impl KubeSim {
    /// Defaults: any free port on 127.0.0.1, no audit log, a temporary
    /// state folder, bookmarks every 5 s.
    pub fn new() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            audit_log: None,
            state_dir: None,
            images: Vec::new(),
            bookmark_interval: Duration::from_secs(5),
        }
    }

    /// The address to listen on (port 0: any free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Writes the audit log to this file (appending).
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_log = Some(path.into());
        self
    }

    /// Keeps pod folders (volumes, logs) here instead of a temporary folder.
    pub fn state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(path.into());
        self
    }

    /// Maps an image (with or without tag) to a folder whose entries are
    /// bound at `/<entry>` in its containers.
    pub fn image(mut self, image: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        self.images.push((image.into(), dir.into()));
        self
    }

    /// How often watches that allow bookmarks get one.
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// Starts serving (on the current tokio runtime).
    pub async fn start(self) -> Result<KubeSimHandle, StartError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| StartError::Bind { addr: self.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: self.listen, source })?;
        let audit = match &self.audit_log {
            Some(path) => Some(
                api::audit::AuditLog::open(path).map_err(|source| StartError::AuditLog { path: path.clone(), source })?,
            ),
            None => None,
        };
        let (temp, state_dir) = match &self.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StartError::StateDir { path: dir.clone(), source })?;
                (None, dir.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("kube-sim-")
                    .tempdir()
                    .map_err(|source| StartError::StateDir { path: std::env::temp_dir(), source })?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let store = Arc::new(store::Store::new());
        let kubelet = kubelet::Kubelet::new(store.clone(), state_dir.clone(), self.images.clone());
        let shared = Arc::new(api::Shared {
            store: store.clone(),
            audit,
            faults: api::Faults::default(),
            kubelet: kubelet.clone(),
            bookmark_interval: self.bookmark_interval,
            address: addr.to_string(),
        });
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(kubelet.clone().run()));
        tasks.push(tokio::spawn(job::run(store.clone())));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(KubeSimHandle { addr, shared, stop: Some(stop_tx), server, tasks, state_dir, _temp: temp, audit_path: self.audit_log })
    }
}

/// A running server.
pub struct KubeSimHandle {
    addr: SocketAddr,
    shared: Arc<api::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    audit_path: Option<PathBuf>,
}

impl KubeSimHandle {
    /// The server's URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where pod folders live.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The audit log file, if one is written.
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit_path.as_deref()
    }

    /// A kubeconfig for this server: plain `http://`, a dummy bearer token,
    /// context `kube-sim` with namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {}\nusers:\n- name: kube-sim\n  user:\n    token: kube-sim\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\n",
            self.url()
        )
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) to a file.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Evicts a pod: a delete that respects finalizers and the grace period.
    pub fn evict_pod(&self, namespace: &str, name: &str) -> Result<(), ApiError> {
        kubelet::evict(&self.shared.store, namespace, name).map(|_| ())
    }

    /// Loses the node: containers are killed, pods become `Unknown` with
    /// reason `NodeLost`, their logs answer 500.
    pub async fn lose_node(&self) {
        self.shared.kubelet.lose_node().await;
    }

    /// Brings the node back for new pods.
    pub fn restore_node(&self) {
        self.shared.kubelet.restore_node();
    }

    /// Fails the next matching requests with a 5xx code.
    pub fn fail_requests(&self, rule: FailRule) {
        self.shared.faults.add(rule);
    }

    /// Ends every open watch with `410 Expired` and compacts the history so
    /// only the current resourceVersion can be watched from.
    pub fn expire_watches(&self) {
        self.shared.store.expire_watches();
    }

    /// Stops serving and stops every pod's processes.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.kubelet.shutdown().await;
        for t in &self.tasks {
            t.abort();
        }
        self.server.abort();
    }
}
