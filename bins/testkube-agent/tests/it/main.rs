//! The `testkube-agent` binary against kube-sim: started with a kubeconfig
//! and a home folder, it serves `/live` and `/ready`, runs a
//! TestWorkflowExecution created with kubectl's API as Jobs, writes its
//! status, records it where `testkube --home DIR` reads, and stops cleanly
//! at SIGTERM; of two replicas only the Lease holder runs executions.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;
use testkube_core::store::ResultStore;
use testkube_results::store::{DB_FILE, SqliteStore};

mod api;
mod restart;

#[path = "../../../../testkube-k8s/tests/support/sim.rs"]
mod sim;
use sim::{has_bwrap, init_binary};

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "testworkflows.testkube.io".into(),
        version: "v1".into(),
        api_version: "testworkflows.testkube.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// `GET path` on the admin server: the status code, or `None` when it
/// does not answer.
fn http_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

struct Agent {
    child: Child,
    admin: SocketAddr,
    home: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kube-sim with the CRDs and a TestWorkflow `smoke`, its kubeconfig in
/// the test's folder.
struct Setup {
    dir: tempfile::TempDir,
    #[allow(dead_code)]
    sim: kube_sim::KubeSimHandle,
    client: kube::Client,
}

impl Setup {
    async fn start() -> Setup {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let image = dir.path().join("init-image");
        std::fs::create_dir_all(&image).expect("image folder");
        std::fs::copy(init_binary(), image.join("testkube-init")).expect("copy testkube-init");
        let sim = kube_sim::KubeSim::new()
            .state_dir(dir.path().join("state"))
            .audit_log(dir.path().join("audit.log"))
            .image(testkube_k8s::ManifestOptions::default().init_image, &image)
            .start()
            .await
            .expect("kube-sim starts");
        sim.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        let client = kube::Client::try_from(kube::Config::new(sim.url().parse().expect("url")))
            .expect("client");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in testkube_k8s::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("CRD");
        }
        let setup = Setup { dir, sim, client };
        setup
            .create(
                "TestWorkflow",
                "testworkflows",
                "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: smoke}\n\
                 spec:\n  steps:\n  - name: say\n    shell: echo agent-was-here\n",
            )
            .await;
        setup
    }

    async fn create(&self, kind: &str, plural: &str, yaml: &str) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), "default", &resource(kind, plural));
        let value: Value = serde_saphyr::from_str(yaml).expect("YAML");
        let object: DynamicObject = serde_json::from_value(value).expect("object");
        api.create(&PostParams::default(), &object)
            .await
            .expect("created");
    }

    /// Creates a TestWorkflowExecution of `smoke` called `name`.
    async fn execute(&self, name: &str) {
        let yaml = format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowExecution\n\
             metadata: {{name: {name}}}\nspec:\n  testWorkflow: {{name: smoke}}\n"
        );
        self.create("TestWorkflowExecution", "testworkflowexecutions", &yaml)
            .await;
    }

    /// Starts an agent with a home folder and admin port of its own and
    /// waits until it is ready.
    async fn agent(&self, identity: &str) -> Agent {
        let home = self.dir.path().join(format!("home-{identity}"));
        self.agent_at(identity, &home).await
    }

    /// As [`Setup::agent`], with the home folder `home`.
    async fn agent_at(&self, identity: &str, home: &std::path::Path) -> Agent {
        self.agent_with(identity, home, &[]).await
    }

    /// As [`Setup::agent_at`], with more arguments.
    async fn agent_with(&self, identity: &str, home: &std::path::Path, extra: &[&str]) -> Agent {
        let home = home.to_path_buf();
        let admin = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_testkube-agent"))
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--home")
            .arg(&home)
            .arg("--admin-addr")
            .arg(admin.to_string())
            .args(["--identity", identity, "--lease-duration", "2"])
            .args(extra)
            .env_remove("KUBECONFIG")
            .env_remove("TESTKUBE_NAMESPACE")
            .stdin(Stdio::null())
            .spawn()
            .expect("the agent starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while http_get(admin, "/ready") != Some(200) {
            assert!(
                child.try_wait().expect("status").is_none(),
                "the agent exited before it was ready"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the agent is never ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Agent { child, admin, home }
    }

    /// The status of `name` once its run passed.
    async fn passed(&self, name: &str) -> Value {
        let executions: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            "default",
            &resource("TestWorkflowExecution", "testworkflowexecutions"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = executions.get(name).await.expect("document").data["status"].clone();
            if status["latestExecution"]["result"]["status"] == "passed" {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the run never passed: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates TestWorkflow `name` with `steps` (YAML under `spec.steps`).
    async fn workflow(&self, name: &str, steps: &str) {
        let yaml = format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\n\
             metadata: {{name: {name}}}\nspec:\n  steps:\n{steps}"
        );
        self.create("TestWorkflow", "testworkflows", &yaml).await;
    }

    /// Creates TestWorkflowExecution `name` of TestWorkflow `workflow`.
    async fn run(&self, name: &str, workflow: &str) {
        let yaml = format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowExecution\n\
             metadata: {{name: {name}}}\nspec:\n  testWorkflow: {{name: {workflow}}}\n"
        );
        self.create("TestWorkflowExecution", "testworkflowexecutions", &yaml)
            .await;
    }

    /// Waits (at most 30 s) until no Job, Secret or pod of `workflow`'s runs
    /// is left.
    async fn nothing_left(&self, workflow: &str) {
        let selector =
            kube::api::ListParams::default().labels(&format!("testkube.io/workflow={workflow}"));
        let jobs: Api<k8s_openapi::api::batch::v1::Job> =
            Api::namespaced(self.client.clone(), "default");
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), "default");
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), "default");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = jobs.list(&selector).await.expect("jobs").items.len()
                + secrets.list(&selector).await.expect("secrets").items.len()
                + pods.list(&selector).await.expect("pods").items.len();
            if left == 0 {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{left} objects left");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Who holds the agents' Lease.
    async fn leader(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "default");
        leases
            .get_opt("testkube-agent")
            .await
            .expect("lease")
            .and_then(|lease| lease.spec?.holder_identity)
    }
}

/// With `TESTKUBE_AUDIT_OBJECTS_DIR` set (CI sets it), every object the
/// agents created or replaced (Leases, Events, Jobs, ...) is written there
/// for `kubernetes-validate --strict`, as testkube-k8s's tests do.
impl Drop for Setup {
    fn drop(&mut self) {
        let Some(out) = std::env::var_os("TESTKUBE_AUDIT_OBJECTS_DIR") else {
            return;
        };
        let out = PathBuf::from(out);
        let _ = std::fs::create_dir_all(&out);
        let prefix = self
            .dir
            .path()
            .file_name()
            .map(|name| name.to_string_lossy().trim_start_matches('.').to_owned())
            .unwrap_or_default();
        let audit = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        for (index, line) in audit.lines().enumerate() {
            let Ok(line) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let full = matches!(line["verb"].as_str(), Some("create" | "update"));
            let object = &line["requestObject"];
            if full && object.is_object() && line["objectRef"]["subresource"].is_null() {
                let _ = std::fs::write(
                    out.join(format!("agent-{prefix}-{index}.json")),
                    object.to_string(),
                );
            }
        }
    }
}

/// SIGTERM, then the exit status.
async fn stop(agent: &mut Agent) -> std::process::ExitStatus {
    let pid = agent.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = agent.child.try_wait().expect("status") {
            return exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent does not stop at SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn recorded(home: &std::path::Path) -> Vec<String> {
    if !home.join(DB_FILE).exists() {
        return Vec::new();
    }
    let store = SqliteStore::open(&home.join(DB_FILE)).await.expect("store");
    store
        .list_executions(&Default::default())
        .await
        .expect("executions")
        .into_iter()
        .map(|record| record.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_an_execution_document_records_it_and_stops_at_sigterm() {
    if !has_bwrap() {
        return;
    }
    let setup = Setup::start().await;
    let mut agent = setup.agent("solo").await;
    assert_eq!(http_get(agent.admin, "/live"), Some(200));
    setup.execute("smoke-run").await;
    let status = setup.passed("smoke-run").await;

    // SIGTERM: a clean exit, and the Lease is free for a standby.
    let exit = stop(&mut agent).await;
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(setup.leader().await, None);

    // The run is in the home folder's store, as `testkube --home` reads it.
    let store = SqliteStore::open(&agent.home.join(DB_FILE))
        .await
        .expect("store");
    let id = status["latestExecution"]["id"].as_str().expect("an id");
    let record = store.get_execution(id).await.expect("recorded");
    assert_eq!(record.name, "smoke-1");
    let logs: String = store
        .logs(id, &Default::default())
        .await
        .expect("logs")
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect();
    assert_eq!(logs, "agent-was-here\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_only_the_lease_holder_runs_executions_and_a_standby_takes_over() {
    if !has_bwrap() {
        return;
    }
    let setup = Setup::start().await;
    let mut first = setup.agent("first").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while setup.leader().await.as_deref() != Some("first") {
        assert!(
            std::time::Instant::now() < deadline,
            "the first agent never leads"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = setup.agent("second").await;
    setup.execute("one").await;
    setup.passed("one").await;
    assert_eq!(setup.leader().await.as_deref(), Some("first"));
    assert_eq!(recorded(&first.home).await, ["smoke-1"]);
    assert!(
        recorded(&second.home).await.is_empty(),
        "the standby ran nothing"
    );

    // The leader stops: the standby takes the Lease and runs what comes.
    assert!(stop(&mut first).await.success());
    setup.execute("two").await;
    let status = setup.passed("two").await;
    assert_eq!(setup.leader().await.as_deref(), Some("second"));
    assert_eq!(
        status["latestExecution"]["name"], "smoke-1",
        "numbered in its own store"
    );
    assert_eq!(recorded(&second.home).await, ["smoke-1"]);
    assert_eq!(
        recorded(&first.home).await,
        ["smoke-1"],
        "the old leader ran nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_the_lease_of_a_killed_leader_once_it_expires() {
    if !has_bwrap() {
        return;
    }
    let setup = Setup::start().await;
    let mut first = setup.agent("first").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while setup.leader().await.as_deref() != Some("first") {
        assert!(
            std::time::Instant::now() < deadline,
            "the first agent never leads"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = setup.agent("second").await;
    // A lost node: the leader neither renews nor frees its Lease.
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    setup.execute("after-the-loss").await;
    setup.passed("after-the-loss").await;
    assert_eq!(setup.leader().await.as_deref(), Some("second"));
    assert_eq!(recorded(&second.home).await, ["smoke-1"]);
    assert!(recorded(&first.home).await.is_empty());
}

/// The id of the execution whose log holds `text`, waiting (at most 60 s)
/// until the store at `home` has it.
async fn logged(home: &std::path::Path, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(id) = first_log_of(home, text).await {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`{text}` never logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id of the execution whose log holds `text`, once the store at
/// `home` has it.
async fn first_log_of(home: &std::path::Path, text: &str) -> Option<String> {
    if !home.join(DB_FILE).exists() {
        return None;
    }
    let store = SqliteStore::open(&home.join(DB_FILE)).await.ok()?;
    for record in store.list_executions(&Default::default()).await.ok()? {
        let logs = store.logs(&record.id, &Default::default()).await.ok()?;
        if logs
            .iter()
            .any(|chunk| String::from_utf8_lossy(&chunk.data).contains(text))
        {
            return Some(record.id);
        }
    }
    None
}

#[test]
fn without_a_cluster_the_agent_says_how_to_name_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_testkube-agent"))
        .arg("--kubeconfig")
        .arg(dir.path().join("missing"))
        .arg("--home")
        .arg(dir.path().join("home"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the kubeconfig"), "{stderr}");
    assert!(stderr.contains("missing"), "{stderr}");
}
