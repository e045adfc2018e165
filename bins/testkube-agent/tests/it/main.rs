//! The `testkube-agent` binary against kube-sim: started with a kubeconfig
//! and a home folder, it serves `/live` and `/ready`, runs a
//! TestWorkflowExecution created with kubectl's API as Jobs, writes its
//! status, records it where `testkube --home DIR` reads, and stops cleanly
//! at SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;
use testkube_core::store::ResultStore;
use testkube_results::store::{DB_FILE, SqliteStore};

/// `testkube-init` of this build, next to the test binary's folder.
fn init_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = dir.join("testkube-init");
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p testkube-init`)",
        binary.display()
    );
    binary
}

fn has_bwrap() -> bool {
    let ok = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !ok {
        eprintln!("skipped: bubblewrap (bwrap) is not usable here; kube-sim runs pods with it");
    }
    ok
}

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

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_an_execution_document_records_it_and_stops_at_sigterm() {
    if !has_bwrap() {
        return;
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("init-image");
    std::fs::create_dir_all(&image).expect("image folder");
    std::fs::copy(init_binary(), image.join("testkube-init")).expect("copy testkube-init");
    let sim = kube_sim::KubeSim::new()
        .state_dir(dir.path().join("state"))
        .image(testkube_k8s::ManifestOptions::default().init_image, &image)
        .start()
        .await
        .expect("kube-sim starts");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client =
        kube::Client::try_from(kube::Config::new(sim.url().parse().expect("url"))).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in testkube_k8s::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD");
    }
    let create = |kind: &'static str, plural: &'static str, yaml: &'static str| {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), "default", &resource(kind, plural));
        async move {
            let value: Value = serde_saphyr::from_str(yaml).expect("YAML");
            let object: DynamicObject = serde_json::from_value(value).expect("object");
            api.create(&PostParams::default(), &object)
                .await
                .expect("created");
        }
    };
    create(
        "TestWorkflow",
        "testworkflows",
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: smoke}\n\
         spec:\n  steps:\n  - name: say\n    shell: echo agent-was-here\n",
    )
    .await;

    let home = dir.path().join("home");
    let admin = free_port();
    let mut agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_testkube-agent"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--home")
            .arg(&home)
            .arg("--admin-addr")
            .arg(admin.to_string())
            .env_remove("KUBECONFIG")
            .env_remove("TESTKUBE_NAMESPACE")
            .stdin(Stdio::null())
            .spawn()
            .expect("the agent starts"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while http_get(admin, "/ready") != Some(200) {
        assert!(
            agent.0.try_wait().expect("status").is_none(),
            "the agent exited before it was ready"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the agent is never ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(admin, "/live"), Some(200));

    create(
        "TestWorkflowExecution",
        "testworkflowexecutions",
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowExecution\n\
         metadata: {name: smoke-run}\nspec:\n  testWorkflow: {name: smoke}\n",
    )
    .await;
    let executions: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &resource("TestWorkflowExecution", "testworkflowexecutions"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = executions.get("smoke-run").await.expect("document").data["status"].clone();
        if status["latestExecution"]["result"]["status"] == "passed" {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never passed: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // SIGTERM: not ready any more, then a clean exit.
    let pid = agent.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = agent.0.try_wait().expect("status") {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent does not stop at SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");

    // The run is in the home folder's store, as `testkube --home` reads it.
    let store = SqliteStore::open(&home.join(DB_FILE)).await.expect("store");
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
