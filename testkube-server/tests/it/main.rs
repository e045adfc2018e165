//! Integration tests of the API server: a real TCP listener, reqwest as the
//! client, the local executor running real processes and the SQLite store.

mod artifacts;
mod auth;
mod definitions;
mod live;
mod runs;
mod schedules;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkube_core::service::RunService;
use testkube_executors::{LocalExecutor, Sandbox};
use testkube_results::store::SqliteStore;
use testkube_server::{Auth, FolderDefinitions, Server, Tokens};

/// Tokens of the test servers that use auth.
pub(crate) const READ: &str = "read-token-0123456789";
pub(crate) const RUN: &str = "run-token-0123456789";
pub(crate) const ADMIN: &str = "admin-token-0123456789";

/// A server on a loopback port, with its folder.
pub(crate) struct TestServer {
    pub(crate) base: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) client: reqwest::Client,
    /// The token sent by [`TestServer::call`] (when auth is on).
    pub(crate) token: Option<&'static str>,
}

impl TestServer {
    /// A server without auth.
    pub(crate) async fn open() -> Self {
        Self::start(Auth::Disabled, None, Vec::new()).await
    }

    /// A server whose tokens are READ, RUN and ADMIN; `call` sends `token`.
    pub(crate) async fn with_tokens(token: &'static str) -> Self {
        let text = format!("{READ} read\n{RUN} read,run\n{ADMIN} read,run,admin\n");
        let tokens = Tokens::parse(&text, std::path::Path::new("tokens")).unwrap();
        Self::start(Auth::Tokens(tokens), Some(token), Vec::new()).await
    }

    /// A server that also serves the definitions of `files`, read-only.
    pub(crate) async fn with_files(files: Vec<std::path::PathBuf>) -> Self {
        Self::start(Auth::Disabled, None, files).await
    }

    async fn start(
        auth: Auth,
        token: Option<&'static str>,
        files: Vec<std::path::PathBuf>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = serve(dir.path(), auth, files, false).await;
        TestServer {
            base,
            dir,
            client: reqwest::Client::new(),
            token,
        }
    }

    /// A server that runs schedules, over a folder prepared by `prepare`.
    pub(crate) async fn scheduling(prepare: impl FnOnce(&std::path::Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let files = vec![dir.path().join("workflows")];
        let base = serve(dir.path(), Auth::Disabled, files, true).await;
        TestServer {
            base,
            dir,
            client: reqwest::Client::new(),
            token: None,
        }
    }

    /// A second server over this one's store and folders (as after a
    /// restart): it runs none of the first one's runs.
    pub(crate) async fn reopened(&self) -> Reopened {
        Reopened {
            base: serve(self.dir.path(), Auth::Disabled, Vec::new(), false).await,
            client: reqwest::Client::new(),
        }
    }
}

/// Serves the API over the store and folders in `dir`; returns its URL.
async fn serve(
    dir: &std::path::Path,
    auth: Auth,
    files: Vec<std::path::PathBuf>,
    schedules: bool,
) -> String {
    let store = SqliteStore::open(&dir.join("results.db")).await.unwrap();
    let executor = LocalExecutor::new(dir.join("runs")).with_sandbox(Sandbox::Off);
    let service = RunService::new(Arc::new(executor)).with_store(Arc::new(store));
    let definitions = FolderDefinitions::new(dir.join("definitions")).with_read_only(files);
    let mut server = Server::new(service, Arc::new(definitions), auth).unwrap();
    if schedules {
        server = server.with_schedules(dir.join("schedules.json"));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve(listener, std::future::pending()));
    base
}

/// Another server over a store.
pub(crate) struct Reopened {
    base: String,
    client: reqwest::Client,
}

impl Reopened {
    pub(crate) fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with this server's token.
    pub(crate) fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub(crate) async fn get_json(&self, path: &str) -> Value {
        let response = self.call(reqwest::Method::GET, path).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Creates a workflow from YAML.
    pub(crate) async fn create_yaml(&self, yaml: &str) {
        let response = self
            .call(reqwest::Method::POST, "/v1/test-workflows")
            .header("content-type", "text/yaml")
            .body(yaml.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, StatusCode::OK, "{}", response.text().await.unwrap());
    }

    /// Starts a run of `workflow`; returns the execution.
    pub(crate) async fn run(&self, workflow: &str, body: Value) -> Value {
        let response = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/test-workflows/{workflow}/executions"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Waits for the execution to finish; returns its full form.
    pub(crate) async fn finished(&self, id: &str) -> Value {
        for _ in 0..600 {
            let execution = self
                .get_json(&format!("/v1/test-workflow-executions/{id}"))
                .await;
            let status = execution["result"]["status"].as_str().unwrap().to_owned();
            if ![
                "queued",
                "assigned",
                "starting",
                "scheduling",
                "running",
                "pausing",
                "paused",
                "resuming",
                "stopping",
            ]
            .contains(&status.as_str())
            {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("execution {id} did not finish in 30 s");
    }
}

/// A workflow named `name` whose one step runs `shell`.
pub(crate) fn workflow(name: &str, shell: &str) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\n  labels: {{team: web}}\nspec:\n  steps:\n  - name: Main\n    shell: {}\n",
        json!(shell)
    )
}
