//! The REST API over the run service: Testkube's paths and JSON shapes
//! (`/v1/test-workflows`, `/v1/test-workflow-executions`, ...), live
//! notifications as server-sent events, and bearer tokens with scopes.
//!
//! Why a library: `testkube serve` runs it on a laptop (local executor,
//! SQLite), the agent in a cluster (Kubernetes executor, PostgreSQL), and
//! embedders mount its [`axum::Router`] in their own servers. The server
//! only parses requests and renders answers; every run starts, is recorded
//! and aborted through [`RunService`], as the CLI's runs are.
//!
//! ```no_run
//! # async fn demo(
//! #     service: testkube_core::service::RunService,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use testkube_server::{Auth, FolderDefinitions, Server};
//!
//! let definitions = Arc::new(FolderDefinitions::new(".testkube/definitions"));
//! let server = Server::new(service, definitions, Auth::Disabled)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8088").await?;
//! server.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod api;
mod auth;
mod definitions;
mod error;
mod live;
mod metrics;
mod openapi;
mod routes;
mod scheduler;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use testkube_core::service::{Clock, RunService, SystemClock};
use testkube_core::store::ResultStore;
use testkube_results::artifacts::ArtifactReader;

pub use auth::{Auth, Scope, Tokens, TokensError};
#[cfg(feature = "kubernetes")]
pub use definitions::ClusterDefinitions;
pub use definitions::{Definitions, DefinitionsError, FolderDefinitions, Kind, Save, valid_name};
pub use error::{Issue, Problem};
pub use openapi::openapi_json;

/// Why a server cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The run service records nothing: the API would have nothing to show.
    #[error("the run service has no result store; give it one with RunService::with_store")]
    NoStore,
}

/// The API server: its routes over a run service, a result store and the
/// definitions it runs.
#[derive(Clone)]
pub struct Server {
    state: routes::AppState,
    schedules: Option<PathBuf>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("auth", &self.state.auth)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server that starts runs with `service` (which must record them),
    /// keeps workflows in `definitions`, and lets in what `auth` allows.
    /// Artifacts are read with the `AWS_*` settings of the environment.
    ///
    /// # Errors
    /// [`ServerError::NoStore`] when `service` has no store.
    pub fn new(
        service: RunService,
        definitions: Arc<dyn Definitions>,
        auth: Auth,
    ) -> Result<Self, ServerError> {
        let store: Arc<dyn ResultStore> = Arc::clone(service.store().ok_or(ServerError::NoStore)?);
        Ok(Server {
            state: routes::AppState {
                service,
                store,
                definitions,
                auth,
                live: live::Registry::default(),
                metrics: Arc::new(metrics::Metrics::default()),
                artifacts: Arc::new(tokio::sync::Mutex::new(ArtifactReader::from_env())),
                executor: "local".to_owned(),
            },
            schedules: None,
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads artifacts stored in S3 with `reader`'s settings.
    #[must_use]
    pub fn with_artifact_reader(mut self, reader: ArtifactReader) -> Self {
        self.state.artifacts = Arc::new(tokio::sync::Mutex::new(reader));
        self
    }

    /// Names where runs execute in `GET /v1/info` (`local` by default).
    #[must_use]
    pub fn with_executor_name(mut self, name: impl Into<String>) -> Self {
        self.state.executor = name.into();
        self
    }

    /// Also runs the workflows' schedules (`spec.events[].cronjob`) while
    /// serving, keeping the tick each ran last in `file` (JSON), so that
    /// after downtime a missed schedule runs once. Run one scheduling
    /// server per store: replicas would each start the runs.
    #[must_use]
    pub fn with_schedules(mut self, file: impl Into<PathBuf>) -> Self {
        self.schedules = Some(file.into());
        self
    }

    /// Runs the workflows' schedules, keeping ticks in `file` (see
    /// [`Server::with_schedules`]), without serving the API: for a process
    /// that schedules but does not serve (the agent without `--api-addr`).
    /// Never returns; drop or abort its task to stop it.
    pub async fn run_schedules(&self, file: impl Into<PathBuf>) {
        let state = Arc::new(self.state.clone());
        scheduler::run(state, file.into(), Arc::clone(&self.clock)).await;
    }

    /// Reads the time for schedules from `clock` (the system's by default).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The routes, to serve or to mount in another router.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::new(self.state.clone()))
    }

    /// Serves the API on `listener` until `shutdown` completes.
    ///
    /// # Errors
    /// The listener's I/O error.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let scheduler = self.schedules.clone().map(|file| {
            let state = Arc::new(self.state.clone());
            tokio::spawn(scheduler::run(state, file, Arc::clone(&self.clock)))
        });
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(scheduler) = scheduler {
            scheduler.abort();
        }
        served
    }
}
