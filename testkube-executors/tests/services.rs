//! Services with the local executor, on real processes: readiness probes
//! (httpGet, tcpSocket, exec), `services.<name>.<i>.ip` in later steps,
//! per-instance logs, clear failures for never-ready and early-exiting
//! services, and services stopped when their step ends. Every test runs
//! as plain processes and in each sandbox this machine can build.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use testkube_core::engine::{Engine, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_executors::{LocalExecutor, Sandbox};

mod common;
use common::{executors, plan, step, workflow};

/// A run's summary and the logs of each step (of worker 0), by step id.
struct Ran {
    summary: ExecutionSummary,
    logs: BTreeMap<String, String>,
}

async fn run(executor: &LocalExecutor, yaml: &str) -> Ran {
    let engine = Engine::new(Arc::new(executor.clone()));
    let mut running = engine
        .start(plan(yaml), ExecutionRequest::new("exec"))
        .unwrap();
    let mut logs = BTreeMap::<String, String>::new();
    while let Some(event) = running.next_event().await {
        match event {
            Event::Log { step, chunk, .. } => logs
                .entry(step)
                .or_default()
                .push_str(&String::from_utf8_lossy(&chunk)),
            Event::Finished(summary) => {
                return Ran {
                    summary: *summary,
                    logs,
                };
            }
            _ => {}
        }
    }
    panic!("the run ended without a summary")
}

fn message(summary: &ExecutionSummary, id: &str) -> String {
    step(summary, id).message.clone().unwrap_or_default()
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A step that fails unless `http://{{ services.web.0.ip }}:PORT/health` answers `ok`.
fn fetch_health(port: u16) -> String {
    format!(
        "python3 -c \"import urllib.request as u; b = u.urlopen('http://{{{{ services.web.0.ip }}}}:{port}/health', timeout=5).read(); assert b == b'ok', b; print('answered', b.decode())\""
    )
}

/// A step that fails while something listens on 127.0.0.1:PORT.
fn port_closed(port: u16) -> String {
    format!(
        "python3 -c \"import socket; s = socket.socket(); r = s.connect_ex(('127.0.0.1', {port})); assert r != 0, 'the service still listens'\""
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probe_waits_then_later_steps_reach_the_service() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  content:
    files:
    - {{path: /data/www/health, content: "ok"}}
  steps:
  - id: api
    services:
      web:
        workingDir: /data/www
        shell: sleep 1; exec python3 -m http.server {port} --bind 127.0.0.1
        readinessProbe:
          httpGet: {{path: /health, port: {port}}}
          periodSeconds: 1
        timeout: 60s
        logs: always
    steps:
    - id: check
      shell: {check:?}
  - id: after
    shell: {closed:?}
"#,
                check = fetch_health(port),
                closed = port_closed(port),
            )),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(
            summary.status,
            ExecutionStatus::Passed,
            "{summary:#?}\n{:#?}",
            ran.logs
        );
        assert_eq!(step(summary, "check").status, StepStatus::Passed);
        assert!(ran.logs["check"].contains("answered ok"), "{:#?}", ran.logs);
        let service_log = &ran.logs["api.services.web.0"];
        assert!(service_log.contains("GET /health"), "{service_log}");
        assert!(
            ran.logs["api"].contains("service `web` instance 0 is ready"),
            "{:#?}",
            ran.logs
        );
        assert_eq!(
            step(summary, "after").status,
            StepStatus::Passed,
            "stopped with its step"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_exec_probes_and_instances() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  steps:
  - id: use
    services:
      db:
        count: 2
        shell: exec python3 -m http.server {{{{ {port} + index }}}} --bind 127.0.0.1
        readinessProbe:
          tcpSocket: {{port: "{{{{ {port} + index }}}}"}}
          periodSeconds: 1
      flag:
        shell: sleep 1; touch "$TMPDIR/flag-ready"; exec sleep 300
        readinessProbe:
          exec: {{command: [sh, -c, 'test -f "$TMPDIR/flag-ready"']}}
          periodSeconds: 1
    shell: |
      test "{{{{ services.db.1.ip }}}}" = 127.0.0.1
      test "{{{{ len(services.db) }}}}" = 2
      test -f "$TMPDIR/flag-ready"
      python3 -c "import socket; socket.create_connection(('127.0.0.1', {second}), 5)"
"#,
                second = port + 1,
            )),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(
            summary.status,
            ExecutionStatus::Passed,
            "{summary:#?}\n{:#?}",
            ran.logs
        );
        assert!(
            !ran.logs.contains_key("use.services.db.0"),
            "logs are off by default: {:#?}",
            ran.logs.keys()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ready_service_fails_its_step_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  steps:
  - id: use
    services:
      db:
        shell: echo starting the db; exec sleep 300
        readinessProbe:
          tcpSocket: {{port: {port}}}
          periodSeconds: 1
          failureThreshold: 1
        timeout: 2s
    shell: echo must not run
  - id: next
    shell: 'true'
"#
            )),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(summary.status, ExecutionStatus::Failed);
        assert_eq!(step(summary, "use").status, StepStatus::Failed);
        let text = message(summary, "use");
        assert!(
            text.contains("service `db` instance 0 was not ready within 2s"),
            "{text}"
        );
        assert!(
            text.contains(&format!("tcpSocket 127.0.0.1:{port}")),
            "{text}"
        );
        assert!(text.contains("cannot connect"), "{text}");
        assert!(text.contains("starting the db"), "the last output: {text}");
        assert!(
            !ran.logs
                .get("use")
                .is_some_and(|l| l.contains("must not run"))
        );
        assert!(
            ran.logs["use"].contains("is not ready yet"),
            "failureThreshold reached is noted: {:#?}",
            ran.logs
        );
        assert_eq!(step(summary, "next").status, StepStatus::Skipped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_exits_early_fails_its_step() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  steps:
  - id: use
    services:
      api:
        command: [sh, -c, 'echo cannot bind >&2; exit 3']
        readinessProbe:
          httpGet: {{port: {port}}}
          periodSeconds: 1
        timeout: 60s
    shell: echo must not run
"#
            )),
        )
        .await;
        let text = message(&ran.summary, "use");
        assert_eq!(
            step(&ran.summary, "use").status,
            StepStatus::Failed,
            "{text}"
        );
        assert!(
            text.contains("service `api` instance 0 exited with code 3 before it was ready"),
            "{text}"
        );
        assert!(text.contains("cannot bind"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_stop_when_their_step_fails() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  steps:
  - id: use
    services:
      web:
        shell: exec python3 -m http.server {port} --bind 127.0.0.1
        readinessProbe:
          tcpSocket: {{port: {port}}}
          periodSeconds: 1
    shell: exit 7
  - id: crash
    condition: always
    services:
      dies:
        shell: echo going down; exit 5
    shell: sleep 1
  - id: check
    condition: always
    shell: {closed:?}
"#,
                closed = port_closed(port),
            )),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(step(summary, "use").exit_code, Some(7), "{summary:#?}");
        assert!(
            ran.logs["crash"].contains(
                "service `dies` instance 0 had exited with code 5 before it was stopped; \
                 its last output:\n  going down"
            ),
            "{:#?}",
            ran.logs
        );
        assert_eq!(
            step(summary, "check").status,
            StepStatus::Passed,
            "{summary:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_service_settings_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let executor = LocalExecutor::new(dir.path()).with_sandbox(Sandbox::Off);
    let engine = Engine::new(Arc::new(executor));
    let plan = plan(&workflow(
        r#"  steps:
  - id: use
    services:
      db:
        shell: sleep 300
        readinessProbe:
          grpc: {port: 50051}
    shell: 'true'
"#,
    ));
    let err = engine.check(&plan).expect_err("refused").to_string();
    assert!(err.contains("services.db.readinessProbe.grpc"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_services_restart_until_ready() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  steps:
  - id: use
    services:
      flaky:
        restartPolicy: OnFailure
        shell: |
          if [ ! -f "$TMPDIR/tried" ]; then touch "$TMPDIR/tried"; echo first try fails; exit 4; fi
          exec python3 -m http.server {port} --bind 127.0.0.1
        readinessProbe:
          tcpSocket: {{port: {port}}}
          periodSeconds: 1
        timeout: 60s
    shell: python3 -c "import socket; socket.create_connection(('127.0.0.1', {port}), 5)"
"#
            )),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(
            summary.status,
            ExecutionStatus::Passed,
            "{summary:#?}\n{:#?}",
            ran.logs
        );
        assert!(
            ran.logs["use"].contains("exited with code 4: restarting in 1s"),
            "{:#?}",
            ran.logs
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_services_serve_every_step_and_matrix_instances_are_described() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let port = free_port();
        let ran = run(
            &executor,
            &workflow(&format!(
                r#"  services:
    web:
      matrix:
        offset: [0, 1]
      description: "web on {{{{ {port} + matrix.offset }}}}"
      shell: exec python3 -m http.server {{{{ {port} + matrix.offset }}}} --bind 127.0.0.1
      readinessProbe:
        tcpSocket: {{port: "{{{{ {port} + matrix.offset }}}}"}}
        periodSeconds: 1
  steps:
  - id: first
    shell: python3 -c "import socket; socket.create_connection(('{{{{ services.web.0.ip }}}}', {port}), 5)"
  - id: second
    shell: |
      test "{{{{ services.web.1.description }}}}" = "web on {second}"
      python3 -c "import socket; socket.create_connection(('{{{{ services.web.1.ip }}}}', {second}), 5)"
"#,
                second = port + 1,
            )),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(
            summary.status,
            ExecutionStatus::Passed,
            "{summary:#?}\n{:#?}",
            ran.logs
        );
        assert_eq!(step(summary, "second").status, StepStatus::Passed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inner_service_hides_an_outer_one_of_the_same_name_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let ran = run(
            &executor,
            &workflow(
                r#"  services:
    box:
      description: outer
      shell: exec sleep 300
  steps:
  - id: inner
    services:
      box:
        description: inner
        shell: exec sleep 300
    shell: test "{{ services.box.0.description }}" = inner
  - id: again
    shell: test "{{ services.box.0.description }}" = outer
"#,
            ),
        )
        .await;
        let summary = &ran.summary;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(step(summary, "again").status, StepStatus::Passed);
    }
}

/// `path` relative to the current directory (through `/`).
fn relative(path: &Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count().saturating_sub(1));
    Path::new(&up).join(path.strip_prefix("/").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_start_with_a_relative_runs_folder() {
    // The CLI keeps its runs under `.testkube/runs`, a relative path.
    let dir = tempfile::tempdir().unwrap();
    let runs = relative(dir.path());
    assert!(runs.is_relative());
    let plain = LocalExecutor::new(runs.join("plain")).with_sandbox(Sandbox::Off);
    let auto = LocalExecutor::new(runs.join("sandboxed"));
    for executor in [plain, auto] {
        let ran = run(
            &executor,
            &workflow(
                r#"  steps:
  - id: use
    services:
      box:
        shell: touch "$TMPDIR/up"; exec sleep 300
        readinessProbe:
          exec: {command: [sh, -c, 'test -f "$TMPDIR/up"']}
          periodSeconds: 1
    shell: test '{{ services.box.0.ip }}' = 127.0.0.1
"#,
            ),
        )
        .await;
        assert_eq!(
            ran.summary.status,
            ExecutionStatus::Passed,
            "{:#?}",
            ran.summary
        );
    }
}
