//! Macro benchmarks of local runs: what orchestration costs on top of the
//! processes a workflow starts.
//!
//! `cargo bench -p testkube --bench run` runs them all; name some to run
//! only those (`cargo bench -p testkube --bench run -- overhead fanout`):
//!
//! - `overhead`: per-step cost of the engine + local executor against
//!   starting the same `sh -e -c true` processes from a shell loop, as
//!   plain processes and in each sandbox (bubblewrap, `unshare`) this
//!   machine can build (goal: ≤ 2 ms per step);
//! - `first-step`: from `Engine::start` to the first step running, and to
//!   its first log line;
//! - `fanout`: 200 parallel workers with `parallelism: 200`;
//! - `logs`: a step printing 500 MB, through the engine (and its masking)
//!   and through the engine into the SQLite store;
//! - `store`: the result store's write rate of test-case results;
//! - `memory`: peak RSS of the `testkube run` process during a 200-worker run;
//! - `log-memory`: peak RSS of `testkube run` when a step prints 50 MB, 200 MB
//!   and 1 GB (into the SQLite store), and of `testkube logs` printing it.
//!
//! Numbers go to standard output as a table; docs/benchmarks.md keeps the
//! latest ones. Wall times on a shared 2-core machine are noisy: each
//! figure is the best of several runs.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use testkube_core::engine::{Engine, Event, ExecutionRequest};
use testkube_core::model::Document;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{NewExecution, ResultStore, TestCaseRecord, TestCaseStatus};
use testkube_core::{LoadOptions, PlanOptions, ResolveOptions, TemplateSet};
use testkube_executors::{LocalExecutor, Sandbox};
use testkube_results::store::{EventRecorder, SqliteStore};

const STEPS: usize = 200;
const WORKERS: usize = 200;
const LOG_BYTES: u64 = 500_000_000;
const CASES: usize = 100_000;
/// The sizes (MB) of the logs whose peak memory `log-memory` measures.
const LOG_MEMORY_SIZES: [u64; 3] = [50, 200, 1000];

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut sandboxes: Vec<(&str, Sandbox)> = vec![("plain", Sandbox::Off)];
    if LocalExecutor::new(dir.path()).uses_bubblewrap() {
        sandboxes.push(("bubblewrap", Sandbox::Auto));
    } else {
        println!("note: bubblewrap is not installed; its sandbox is not measured");
    }
    let unshare = LocalExecutor::new(dir.path()).with_sandbox(Sandbox::Unshare);
    match unshare.ready() {
        Ok(()) => sandboxes.push(("unshare", Sandbox::Unshare)),
        Err(why) => println!("note: the user-namespace sandbox is not measured: {why}"),
    }
    println!("{:<44} {:>14} {:>16}", "benchmark", "result", "detail");
    if runs("overhead") {
        let baseline = best_of(5, || shell_loop(STEPS));
        for (label, sandbox) in &sandboxes {
            let executor = LocalExecutor::new(dir.path().join(label)).with_sandbox(*sandbox);
            let plan = plan(&many_steps(STEPS));
            let engine = best_of(5, || {
                runtime.block_on(run_to_end(&executor, plan.clone(), |_| {}))
            });
            let per_step = (engine.as_secs_f64() - baseline.as_secs_f64()) / STEPS as f64;
            row(
                &format!("overhead per step ({label}, {STEPS} steps)"),
                format!("{:.2} ms", per_step * 1e3),
                format!(
                    "{:.2}x the loop ({:.0} ms vs {:.0} ms)",
                    engine.as_secs_f64() / baseline.as_secs_f64(),
                    engine.as_secs_f64() * 1e3,
                    baseline.as_secs_f64() * 1e3
                ),
            );
        }
    }
    if runs("first-step") {
        for (label, sandbox) in &sandboxes {
            let executor = LocalExecutor::new(dir.path().join(label)).with_sandbox(*sandbox);
            let plan = plan(&workflow(
                "  steps:\n  - {name: hello, shell: 'echo hello'}\n",
            ));
            let mut to_running = Duration::MAX;
            let mut to_log = Duration::MAX;
            for _ in 0..10 {
                let (running, log) = runtime.block_on(first_step(&executor, plan.clone()));
                to_running = to_running.min(running);
                to_log = to_log.min(log);
            }
            row(
                &format!("time to first step ({label})"),
                format!("{:.1} ms", to_running.as_secs_f64() * 1e3),
                format!("first log line {:.1} ms", to_log.as_secs_f64() * 1e3),
            );
        }
    }
    if runs("fanout") {
        for (label, sandbox) in &sandboxes {
            let executor = LocalExecutor::new(dir.path().join(label)).with_sandbox(*sandbox);
            let plan = plan(&fan_out(WORKERS));
            let time = best_of(3, || {
                runtime.block_on(run_to_end(&executor, plan.clone(), |_| {}))
            });
            row(
                &format!("fan-out {WORKERS} workers, parallelism {WORKERS} ({label})"),
                format!("{:.2} s", time.as_secs_f64()),
                format!(
                    "{:.1} ms per worker",
                    time.as_secs_f64() * 1e3 / WORKERS as f64
                ),
            );
        }
    }
    if runs("logs") {
        let executor = LocalExecutor::new(dir.path().join("logs")).with_sandbox(Sandbox::Off);
        let script = format!("yes 'a line of log output from a chatty test' | head -c {LOG_BYTES}");
        let yaml = workflow(&format!(
            "  steps:\n  - {{name: chatty, shell: \"{script}\"}}\n"
        ));
        let plan = plan(&yaml);
        let baseline = best_of(3, || {
            let start = Instant::now();
            let status = Command::new("sh")
                .args(["-c", &format!("{script} > /dev/null")])
                .status()
                .expect("sh runs");
            assert!(status.success());
            start.elapsed()
        });
        let mut bytes = 0;
        let time = best_of(3, || {
            bytes = 0;
            runtime.block_on(run_to_end(&executor, plan.clone(), |event| {
                if let Event::Log { chunk, .. } = event {
                    bytes += chunk.len() as u64;
                }
            }))
        });
        assert_eq!(bytes, LOG_BYTES, "every byte of the log arrives");
        row(
            "log capture, 500 MB (engine)",
            format!("{:.0} MB/s", LOG_BYTES as f64 / 1e6 / time.as_secs_f64()),
            format!(
                "{:.2} s; the pipe alone {:.2} s",
                time.as_secs_f64(),
                baseline.as_secs_f64()
            ),
        );
        let stored = runtime.block_on(run_into_store(&executor, plan, &dir.path().join("logs-db")));
        row(
            "log capture, 500 MB (engine + SQLite store)",
            format!("{:.0} MB/s", LOG_BYTES as f64 / 1e6 / stored.as_secs_f64()),
            format!("{:.2} s", stored.as_secs_f64()),
        );
    }
    if runs("store") {
        let time = runtime.block_on(store_cases(&dir.path().join("cases.db")));
        row(
            &format!("store test cases ({CASES}, batches of 1,000)"),
            format!("{:.0} cases/s", CASES as f64 / time.as_secs_f64()),
            format!("{:.2} s", time.as_secs_f64()),
        );
    }
    if runs("memory") {
        let file = dir.path().join("fanout.yaml");
        std::fs::write(&file, fan_out(WORKERS)).expect("the workflow is written");
        let (peak, time) = cli_peak_rss(
            &["run".as_ref(), file.as_os_str()],
            &dir.path().join("home"),
        );
        row(
            &format!("testkube run, {WORKERS} workers: peak RSS"),
            format!("{:.1} MB", peak as f64 / 1024.0),
            format!("{:.2} s end to end", time.as_secs_f64()),
        );
    }
    if runs("log-memory") {
        for megabytes in LOG_MEMORY_SIZES {
            let bytes = megabytes * 1_000_000;
            let file = dir.path().join(format!("chatty-{megabytes}.yaml"));
            let script = format!("yes 'a line of log output from a chatty test' | head -c {bytes}");
            let yaml = workflow(&format!(
                "  steps:\n  - {{name: chatty, shell: \"{script}\"}}\n"
            ));
            std::fs::write(&file, yaml).expect("the workflow is written");
            let home = dir.path().join(format!("home-{megabytes}"));
            let (peak, time) = cli_peak_rss(&["run".as_ref(), file.as_os_str()], &home);
            row(
                &format!("testkube run, a step printing {megabytes} MB"),
                format!("{:.1} MB RSS", peak as f64 / 1024.0),
                format!(
                    "{:.2} s end to end ({:.0} MB/s into the store)",
                    time.as_secs_f64(),
                    bytes as f64 / 1e6 / time.as_secs_f64()
                ),
            );
            let (peak, time) = cli_peak_rss(&["logs".as_ref(), "bench-1".as_ref()], &home);
            row(
                &format!("testkube logs of it ({megabytes} MB)"),
                format!("{:.1} MB RSS", peak as f64 / 1024.0),
                format!("{:.2} s to /dev/null", time.as_secs_f64()),
            );
            // A gigabyte of store per size: not kept until the end.
            let _ = std::fs::remove_dir_all(&home);
        }
    }
}

fn row(name: &str, result: String, detail: String) {
    println!("{name:<44} {result:>14}   {detail}");
}

fn best_of(times: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    (0..times).map(|_| measure()).min().unwrap_or_default()
}

fn workflow(spec: &str) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: bench}}\nspec:\n{spec}"
    )
}

fn many_steps(count: usize) -> String {
    let steps: String = (0..count).map(|_| "  - shell: 'true'\n").collect();
    workflow(&format!("  steps:\n{steps}"))
}

fn fan_out(workers: usize) -> String {
    workflow(&format!(
        "  steps:\n  - name: fan-out\n    parallel:\n      count: {workers}\n      parallelism: {workers}\n      shell: 'true'\n"
    ))
}

fn plan(yaml: &str) -> testkube_core::Plan {
    let file = testkube_core::load_file("bench.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("the benchmark workflow is a TestWorkflow")
    };
    let templates = TemplateSet::with_builtins().expect("built-in templates");
    let resolved =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .expect("the workflow resolves");
    testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).expect("it plans")
}

/// `count` × `sh -e -c true` from one shell loop: the floor.
fn shell_loop(count: usize) -> Duration {
    let start = Instant::now();
    let status = Command::new("sh")
        .args([
            "-c",
            &format!("i=0; while [ $i -lt {count} ]; do sh -e -c true; i=$((i+1)); done"),
        ])
        .status()
        .expect("sh runs");
    assert!(status.success());
    start.elapsed()
}

async fn run_to_end(
    executor: &LocalExecutor,
    plan: testkube_core::Plan,
    mut each: impl FnMut(&Event),
) -> Duration {
    let start = Instant::now();
    let engine = Engine::new(Arc::new(executor.clone()));
    let mut running = engine
        .start(plan, ExecutionRequest::new(unique_id()))
        .expect("the run starts");
    while let Some(event) = running.next_event().await {
        each(&event);
        if let Event::Finished(summary) = event {
            assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        }
    }
    start.elapsed()
}

async fn first_step(executor: &LocalExecutor, plan: testkube_core::Plan) -> (Duration, Duration) {
    let start = Instant::now();
    let engine = Engine::new(Arc::new(executor.clone()));
    let mut running = engine
        .start(plan, ExecutionRequest::new(unique_id()))
        .expect("the run starts");
    let (mut to_running, mut to_log) = (None, None);
    while let Some(event) = running.next_event().await {
        match event {
            Event::Step { step, status, .. }
                if step.depth > 0 && status == StepStatus::Running && to_running.is_none() =>
            {
                to_running = Some(start.elapsed());
            }
            Event::Log { .. } if to_log.is_none() => to_log = Some(start.elapsed()),
            _ => {}
        }
    }
    (
        to_running.expect("the step ran"),
        to_log.expect("the step logged"),
    )
}

async fn run_into_store(
    executor: &LocalExecutor,
    plan: testkube_core::Plan,
    db: &Path,
) -> Duration {
    let store: Arc<dyn ResultStore> = Arc::new(
        SqliteStore::open(&db.join("results.db"))
            .await
            .expect("the store opens"),
    );
    let id = unique_id();
    store
        .create_execution(new_execution(&id))
        .await
        .expect("the execution is recorded");
    let mut recorder = EventRecorder::new(Arc::clone(&store), id.clone());
    let start = Instant::now();
    let engine = Engine::new(Arc::new(executor.clone()));
    let mut running = engine
        .start(plan, ExecutionRequest::new(id))
        .expect("the run starts");
    while let Some(event) = running.next_event().await {
        recorder.record(&event).await.expect("the store keeps up");
    }
    start.elapsed()
}

async fn store_cases(db: &Path) -> Duration {
    let store = SqliteStore::open(db).await.expect("the store opens");
    let id = unique_id();
    store
        .create_execution(new_execution(&id))
        .await
        .expect("the execution is recorded");
    let cases: Vec<TestCaseRecord> = (0..CASES)
        .map(|i| TestCaseRecord {
            worker: format!("root/tests/{}", i % 16),
            suite: format!("suite-{}", i % 100),
            class: Some(format!("com.example.Class{}", i % 1000)),
            name: format!("test_case_{i}"),
            file: Some(format!("src/test/Class{}.java", i % 1000)),
            status: if i % 25 == 0 {
                TestCaseStatus::Failed
            } else {
                TestCaseStatus::Passed
            },
            duration_secs: Some((i % 97) as f64 / 10.0),
            message: (i % 25 == 0).then(|| "expected 1 but was 2".to_owned()),
        })
        .collect();
    let start = Instant::now();
    for batch in cases.chunks(1000) {
        store
            .record_test_cases(&id, batch)
            .await
            .expect("the cases are stored");
    }
    start.elapsed()
}

fn new_execution(id: &str) -> NewExecution {
    NewExecution {
        id: id.to_owned(),
        workflow: "bench".to_owned(),
        name: None,
        status: ExecutionStatus::Queued,
        scheduled_at: SystemTime::now().into(),
        snapshot: serde_json::Value::Null,
        config: Default::default(),
        tags: Default::default(),
        shard_durations: Default::default(),
    }
}

fn unique_id() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "bench-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs the real CLI with `args` and samples its resident memory until it
/// exits (in KiB).
fn cli_peak_rss(args: &[&std::ffi::OsStr], home: &Path) -> (u64, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(args)
        .env("TESTKUBE_HOME", home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("testkube starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            // VmHWM is the peak so far: read it until the process is gone.
            if let Some(kib) = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "testkube {args:?} failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (peak_kib, start.elapsed())
}
