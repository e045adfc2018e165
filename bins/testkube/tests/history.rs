//! The history commands end to end, on executions real `testkube run` processes recorded:
//! `get executions` (order, filters, limit), `get execution`, `logs` (steps, workers, `-f`, a
//! multi-megabyte log byte for byte),
//! `artifacts` (list, download; kept in a folder or in S3), and crash safety: a run killed with SIGKILL shows `aborted`,
//! keeps its logs, and leaves no step process behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "history/artifacts_s3.rs"]
mod artifacts_s3;

fn command(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_testkube"));
    command
        .args(args)
        .current_dir(home.parent().unwrap_or(home))
        .env("TESTKUBE_HOME", home)
        .env("NO_COLOR", "1");
    command
}

fn testkube(home: &Path, args: &[&str]) -> Output {
    command(home, args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `args`, expects exit 0, returns stdout parsed as JSON.
fn json(home: &Path, args: &[&str]) -> Value {
    let out = testkube(home, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes a workflow named `name` with `steps` (YAML lines under `steps:`) next to the home.
fn workflow(home: &Path, name: &str, steps: &str) -> String {
    let text = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: {name}}}\nspec:\n  steps:\n{steps}"
    );
    let path = home.parent().unwrap().join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run(home: &Path, file: &str, expected: i32) {
    let out = testkube(home, &["run", file]);
    assert_eq!(
        out.status.code(),
        Some(expected),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits for `done`, failing the test after a generous bound (never a timing assertion).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    (dir, home)
}

const JUNIT: &str = r#"<testsuite name="calc" tests="2"><testcase classname="calc.Test" name="adds" time="0.5"/><testcase classname="calc.Test" name="divides" time="0.25"><failure message="2 != 3">boom</failure></testcase></testsuite>"#;

#[test]
fn executions_are_listed_newest_first_filtered_limited_and_shown_in_detail() {
    let (_dir, home) = home();
    let ok = workflow(&home, "ok", "  - {name: Greet, shell: 'echo hi'}\n");
    let bad = workflow(
        &home,
        "bad",
        &format!(
            "  - name: Test\n    shell: |\n      mkdir -p out\n      cat > out/junit.xml <<'XML'\n      {JUNIT}\n      XML\n      exit 4\n    artifacts: {{workingDir: out, paths: ['*.xml']}}\n  - {{id: after, shell: 'true'}}\n"
        ),
    );
    run(&home, &ok, 0);
    run(&home, &bad, 1);
    run(&home, &ok, 0);

    let all = json(&home, &["get", "executions", "-o", "json"]);
    assert_eq!(names(&all), ["ok-2", "bad-1", "ok-1"]);
    let newest = &all[0];
    assert_eq!(newest["workflow"], "ok");
    assert_eq!(newest["status"], "passed");
    assert_eq!(newest["number"], 2);
    assert!(newest["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(newest["durationMs"].is_u64() && newest["startedAt"].is_string());
    let only_ok = json(
        &home,
        &["get", "executions", "--workflow", "ok", "-o", "json"],
    );
    assert_eq!(names(&only_ok), ["ok-2", "ok-1"]);
    let failed = json(
        &home,
        &["get", "executions", "--status", "failed", "-o", "json"],
    );
    assert_eq!(names(&failed), ["bad-1"]);
    let limited = json(&home, &["get", "executions", "--limit", "2", "-o", "json"]);
    assert_eq!(names(&limited), ["ok-2", "bad-1"]);
    let none = json(
        &home,
        &["get", "executions", "--workflow", "nope", "-o", "json"],
    );
    assert_eq!(none, Value::Array(Vec::new()));

    let table = testkube(&home, &["get", "executions"]);
    let text = stdout(&table);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("bad-1") && text.contains("failed"), "{text}");

    let wrong = testkube(&home, &["get", "executions", "--status", "green"]);
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("`green`") && stderr.contains("passed, failed"),
        "{stderr}"
    );

    let detail = json(&home, &["get", "execution", "bad-1", "-o", "json"]);
    assert_eq!(detail["status"], "failed");
    let root = &detail["workers"][0];
    assert_eq!(root["id"], "root");
    assert_eq!(root["status"], "failed");
    let steps = root["steps"].as_array().unwrap();
    let step = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(step("test")["status"], "failed");
    assert_eq!(step("test")["exitCode"], 4);
    assert_eq!(step("test")["name"], "Test");
    assert_eq!(step("after")["status"], "skipped");
    assert_eq!(detail["tests"]["tests"], 2);
    assert_eq!(detail["tests"]["failed"], 1);
    assert_eq!(detail["tests"]["failures"][0]["name"], "divides");
    assert_eq!(detail["artifacts"][0]["path"], "junit.xml");

    // By id as well as by name.
    let id = all[1]["id"].as_str().unwrap();
    let by_id = json(&home, &["get", "execution", id, "-o", "json"]);
    assert_eq!(by_id["name"], "bad-1");
    let pretty = stdout(&testkube(&home, &["get", "execution", "bad-1"]));
    assert!(pretty.contains("execution bad-1  failed"), "{pretty}");
    assert!(pretty.contains("failed   Test (test)"), "{pretty}");
    assert!(pretty.contains("divides"), "{pretty}");

    let unknown = testkube(&home, &["get", "execution", "bad-9"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("bad-9") && stderr.contains(" get executions`"),
        "{stderr}"
    );
}

#[test]
fn reading_history_without_a_store_exits_1_and_creates_nothing() {
    let (_dir, home) = home();
    let out = testkube(&home, &["get", "executions"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("testkube run"), "{stderr}");
    assert!(!home.exists(), "reading must not create a store");
}

#[test]
fn logs_are_printed_whole_or_by_step_and_worker() {
    let (_dir, home) = home();
    let file = workflow(
        &home,
        "multi",
        "  - {name: Greet, shell: 'echo hi; echo there'}\n  - name: Fan\n    parallel:\n      count: 2\n      shell: 'echo \"worker {{ index }}\"'\n",
    );
    run(&home, &file, 0);

    let all = stdout(&testkube(&home, &["logs", "multi-1"]));
    for line in [
        "root | hi\n",
        "root | there\n",
        "root/fan/0 | worker 0\n",
        "root/fan/1 | worker 1\n",
    ] {
        assert!(all.contains(line), "{line:?} in {all}");
    }
    assert!(all.find("root | hi") < all.find("root | there"));

    let by_name = testkube(&home, &["logs", "multi-1", "--step", "Greet"]);
    assert_eq!(by_name.status.code(), Some(0));
    assert_eq!(stdout(&by_name), "hi\nthere\n", "one worker: no prefixes");
    let by_id = stdout(&testkube(&home, &["logs", "multi-1", "--step", "greet"]));
    assert_eq!(by_id, "hi\nthere\n");
    let index = stdout(&testkube(&home, &["logs", "multi-1", "--worker", "1"]));
    assert_eq!(index, "worker 1\n");
    let path = stdout(&testkube(
        &home,
        &["logs", "multi-1", "--worker", "root/fan/0"],
    ));
    assert_eq!(path, "worker 0\n");

    let no_step = testkube(&home, &["logs", "multi-1", "--step", "nope"]);
    assert_eq!(no_step.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_step.stderr);
    assert!(
        stderr.contains("no step `nope`") && stderr.contains("greet"),
        "{stderr}"
    );
    let no_worker = testkube(&home, &["logs", "multi-1", "--worker", "7"]);
    assert_eq!(no_worker.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_worker.stderr);
    assert!(stderr.contains("root/fan/1"), "lists the workers: {stderr}");
    let unknown = testkube(&home, &["logs", "multi-9"]);
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn logs_of_a_multi_megabyte_step_are_printed_as_the_step_printed_them() {
    let (_dir, home) = home();
    // ~5 MB, many pages of stored chunks; the last line has no newline.
    let file = workflow(
        &home,
        "big",
        "  - {name: Print, shell: 'seq 1 700000; printf end'}\n",
    );
    run(&home, &file, 0);
    let mut expected: String = (1..=700_000).map(|n| format!("{n}\n")).collect();
    expected.push_str("end");
    for args in [
        &["logs", "big-1"][..],
        &["logs", "big-1", "--step", "Print"],
        &["logs", "big-1", "-f"],
    ] {
        let out = testkube(&home, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            out.stdout == expected.as_bytes(),
            "{args:?} printed {} bytes, the step {}",
            out.stdout.len(),
            expected.len()
        );
    }
}

#[test]
fn artifacts_are_listed_and_downloaded_per_worker() {
    let (dir, home) = home();
    let file = workflow(
        &home,
        "files",
        "  - name: Make\n    shell: 'mkdir -p out/sub && echo hello > out/a.txt && echo deep > out/sub/b.txt'\n    artifacts: {workingDir: out, paths: ['**/*.txt']}\n",
    );
    run(&home, &file, 0);

    let list = json(&home, &["artifacts", "files-1", "-o", "json"]);
    let mut paths: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["a.txt", "sub/b.txt"]);
    assert_eq!(list[0]["worker"], "root");
    assert_eq!(list[0]["step"], "make");
    let table = stdout(&testkube(&home, &["artifacts", "files-1"]));
    assert!(table.starts_with("PATH"), "{table}");
    assert!(table.contains("sub/b.txt"), "{table}");

    let target = dir.path().join("downloaded");
    let out = testkube(
        &home,
        &[
            "artifacts",
            "files-1",
            "--download",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(target.join("root/a.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("root/sub/b.txt")).unwrap(),
        "deep\n"
    );
}

/// Spawns `testkube run FILE` in the background, its output discarded.
fn spawn_run(home: &Path, file: &str) -> Child {
    command(home, &["run", file])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The root worker's folder of the one execution recorded in `home`.
fn root_workspace(home: &Path) -> std::path::PathBuf {
    let runs: Vec<_> = std::fs::read_dir(home.join("runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one execution folder: {runs:?}");
    runs[0].join("workers/root")
}

fn logs_of(home: &Path, name: &str) -> String {
    stdout(&testkube(home, &["logs", name]))
}

#[test]
fn logs_follow_a_running_execution_until_it_ends() {
    let (_dir, home) = home();
    // The step waits for a file the test creates in the step's own working folder (`/data`):
    // a host path would be hidden inside the sandbox when it lies under /tmp, as the
    // checkout (and so the target folder) may.
    let file = workflow(
        &home,
        "follow",
        "  - name: Wait\n    shell: 'echo first; n=0; while [ ! -e go ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done; echo second'\n",
    );
    let mut runner = spawn_run(&home, &file);
    wait_until("the first line is stored", || {
        logs_of(&home, "follow-1").contains("first")
    });
    let follower = command(&home, &["logs", "follow-1", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(root_workspace(&home).join("data/go"), "").unwrap();
    assert_eq!(runner.wait().unwrap().code(), Some(0));
    let out = follower.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "first\nsecond\n");
}

/// The processes whose command line holds `token`.
fn processes_with(token: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(token) {
            found.push(pid);
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[test]
fn a_run_killed_with_sigkill_is_aborted_keeps_its_logs_and_leaves_no_step_behind() {
    let (_dir, home) = home();
    // A unique sleep length marks the step's shell and its child `sleep` in /proc: both must
    // go when the CLI is killed, not only the process the runner started.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let token = format!("60.{}{nanos:09}", std::process::id());
    let file = workflow(
        &home,
        "crash",
        &format!("  - name: Wait\n    shell: 'echo \"pid $$\"; echo waiting-now; sleep {token}'\n"),
    );
    let mut runner = spawn_run(&home, &file);
    wait_until("the step's line is stored", || {
        logs_of(&home, "crash-1").contains("waiting-now")
    });
    let logs = logs_of(&home, "crash-1");
    let pid: u32 = logs
        .lines()
        .find_map(|line| line.strip_prefix("pid "))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid line in {logs:?}"));
    wait_until("the step runs its sleep", || {
        !processes_with(&token).is_empty()
    });
    let listed = json(&home, &["get", "executions", "-o", "json"]);
    assert_eq!(listed[0]["status"], "running", "alive runs are left alone");

    // A follower that is already following when the run dies.
    let mut follower = command(&home, &["logs", "crash-1", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let follower_out = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut text = String::new();
        for line in std::io::BufReader::new(follower_out).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            let _ = lines.send(line);
        }
        text
    });
    while !seen
        .recv()
        .unwrap_or_else(|_| panic!("`logs -f` ended before printing the step's line"))
        .contains("waiting-now")
    {}

    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap(); // reaped: no longer a live process

    // The follower notices that the run's process is gone and ends.
    wait_until("`logs -f` ends", || follower.try_wait().unwrap().is_some());
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(followed.status.code(), Some(0));
    assert!(reader.join().unwrap().contains("waiting-now"));
    let note = String::from_utf8_lossy(&followed.stderr);
    assert!(note.contains("ended aborted"), "{note}");

    let after = json(&home, &["get", "executions", "-o", "json"]);
    assert_eq!(after[0]["name"], "crash-1");
    assert_eq!(after[0]["status"], "aborted");
    assert!(after[0]["finishedAt"].is_string());
    let kept = logs_of(&home, "crash-1");
    assert!(
        kept.contains(&format!("pid {pid}")) && kept.contains("waiting-now"),
        "{kept}"
    );
    let detail = json(&home, &["get", "execution", "crash-1", "-o", "json"]);
    assert_eq!(detail["workers"][0]["steps"][0]["status"], "aborted");
    // `pid` may be a PID namespace's (sandbox) rather than the host's, so the check looks for
    // the marked command lines rather than trusting the number.
    wait_until("the step's processes are gone", || {
        processes_with(&token).is_empty()
    });
}

#[test]
fn service_logs_are_kept_per_instance_and_read_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = workflow(
        &home,
        "svc",
        "  - id: check\n    services:\n      db:\n        shell: 'echo db is up; touch ready; sleep 30'\n        readinessProbe: {exec: {command: [test, -f, ready]}, periodSeconds: 1}\n        logs: 'true'\n    shell: 'echo checking {{ services.db.0.ip }}'\n",
    );
    run(&home, &file, 0);
    let service = testkube(&home, &["logs", "svc-1", "--step", "check.services.db.0"]);
    assert_eq!(
        service.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&service.stderr)
    );
    assert!(
        stdout(&service).contains("db is up"),
        "{}",
        stdout(&service)
    );
    assert!(
        !stdout(&service).contains("checking"),
        "{}",
        stdout(&service)
    );
    let step = testkube(&home, &["logs", "svc-1", "--step", "check"]);
    assert!(
        stdout(&step).contains("checking 127.0.0.1"),
        "{}",
        stdout(&step)
    );
}

/// Workers that write JUnit reports in which `a.py`'s one parameterized test is listed three
/// times (1 s each): summed, a.py takes 3 s, more than any other file.
const REPEATED: &str = r#"
  - name: Suite
    parallel:
      count: 2
      description: 'files {{ join(shard.file, ",") }}'
      shards:
        file: [a.py, b.py, c.py, d.py]
      balance: {by: duration, key: file}
      shell: |
        mkdir -p reports
        {
          echo '<testsuite name="unit">'
          for f in {{ join(shard.file, ' ') }}; do
            case $f in
              a.py) for p in 1 2 3; do echo '<testcase classname="t" name="test_param" file="a.py" time="1.0"/>'; done;;
              b.py) echo '<testcase classname="t" name="test_b" file="b.py" time="2.0"/>';;
              *) echo "<testcase classname=\"t\" name=\"test_$f\" file=\"$f\" time=\"1.5\"/>";;
            esac
          done
          echo '</testsuite>'
        } > reports/junit.xml
      artifacts:
        workingDir: reports
        paths: ['*.xml']
"#;

/// The `description` of every worker of the plan's parallel blocks, by worker index.
fn planned_descriptions(plan: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![plan];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(workers)) = map.get("workers") {
                    for worker in workers {
                        found.push(
                            worker["description"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(values) => stack.extend(values),
            _ => {}
        }
    }
    found
}

fn run_descriptions(summary: &Value) -> Vec<String> {
    summary["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["id"] != "root")
        .map(|w| w["description"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn plan_previews_the_split_run_makes_from_recorded_history() {
    let (_dir, home) = home();
    let file = workflow(&home, "repeated", REPEATED);

    let before = testkube(&home, &["plan", &file]);
    assert_eq!(before.status.code(), Some(0));
    let said = String::from_utf8_lossy(&before.stderr);
    assert!(
        said.contains("no recorded durations: contiguous split"),
        "{said}"
    );
    assert!(!home.exists(), "a preview must not create a store");
    let first = json(&home, &["plan", &file, "-o", "json"]);
    assert_eq!(
        planned_descriptions(&first),
        ["files a.py,b.py", "files c.py,d.py"]
    );
    run(&home, &file, 0);

    let after = testkube(&home, &["plan", &file]);
    let said = String::from_utf8_lossy(&after.stderr);
    assert!(
        said.contains("shards balanced by durations of repeated-1 (4 test items)"),
        "{said}"
    );
    let predicted = planned_descriptions(&json(&home, &["plan", &file, "-o", "json"]));
    let ran = run_descriptions(&json(&home, &["run", &file, "-o", "json"]));
    assert_eq!(predicted, ran, "plan shows the split run then uses");
    // a.py ran three times (3 s): it no longer shares a worker with b.py (2 s).
    assert!(
        !ran.iter().any(|d| d.contains("a.py") && d.contains("b.py")),
        "{ran:?}"
    );

    // --timings still overrides the history, and says so.
    let timings = home.parent().unwrap().join("timings.json");
    std::fs::write(&timings, r#"{"a.py": 1, "b.py": 1, "c.py": 1, "d.py": 9}"#).unwrap();
    let timings = timings.display().to_string();
    let overridden = testkube(&home, &["plan", &file, "--timings", &timings, "-o", "json"]);
    let said = String::from_utf8_lossy(&overridden.stderr);
    assert!(said.contains(&format!("--timings {timings}")), "{said}");
    let shards = planned_descriptions(&serde_json::from_slice(&overridden.stdout).unwrap());
    assert!(shards.contains(&"files d.py".to_owned()), "{shards:?}");
}
