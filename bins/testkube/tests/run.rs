//! `testkube run` and `testkube rerun` end to end: real processes, exit
//! codes 0 (passed), 1 (failed) and 2 (invalid input or unsupported
//! feature), the JSON summary, tags, `--junit`, secrets, history-balanced
//! shards, and what the result store keeps (read back with the store's own
//! API).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{
    ExecutionFilter, ExecutionRecord, ResultStore, TestCaseRecord, TestCaseStatus,
};
use testkube_results::store::SqliteStore;

fn testkube(dir: &Path, args: &[&str]) -> Output {
    testkube_with(dir, args, &[])
}

fn testkube_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_testkube"));
    command
        .args(args)
        .current_dir(dir)
        .env("TESTKUBE_HOME", dir.join("home"))
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `f` against the store of the test's home folder.
fn with_store<T>(dir: &Path, f: impl AsyncFnOnce(&SqliteStore) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&dir.join("home/results.db"))
            .await
            .unwrap();
        let out = f(&store).await;
        store.close().await;
        out
    })
}

fn executions(dir: &Path) -> Vec<ExecutionRecord> {
    if !dir.join("home/results.db").is_file() {
        return Vec::new();
    }
    with_store(dir, async |store| {
        store
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap()
    })
}

fn write(dir: &Path, name: &str, steps: &str) -> String {
    let text = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: {name}}}\nspec:\n  steps:\n{steps}"
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_passing_workflow_exits_0_and_prints_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ok", "  - {name: Greet, shell: 'echo hi'}\n");
    let out = testkube(dir.path(), &["run", &file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("running  Greet"), "{stdout}");
    assert!(stdout.contains("passed   Greet"), "{stdout}");
    assert!(stdout.contains("execution ok-1 passed"), "{stdout}");
    assert!(
        dir.path().join("home/runs").is_dir(),
        "runs are kept under TESTKUBE_HOME"
    );
}

#[test]
fn hints_after_a_run_name_the_home_folder_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "hinted",
        "  - {name: Greet, shell: 'echo hi'}\n",
    );
    let home = dir.path().join("elsewhere");
    let home_arg = home.display().to_string();
    let out = testkube(dir.path(), &["--home", &home_arg, "run", &file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let hint = format!("testkube --home {home_arg} get execution hinted-1");
    assert!(stdout.contains(&hint), "{stdout}");
    assert!(
        stdout.contains(&format!("testkube --home {home_arg} logs hinted-1")),
        "{stdout}"
    );
    // and the hint works as printed
    let args: Vec<&str> = hint.split(' ').skip(1).collect();
    let shown = testkube(dir.path(), &args);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
}

#[test]
fn step_names_are_whole_in_json_and_the_summary_counts_the_steps_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("echo {}", "word ".repeat(30).trim_end());
    let file = write(
        dir.path(),
        "counted",
        &format!(
            "  - shell: '{long}'\n  - name: Fan out\n    parallel:\n      count: 3\n      shell: 'true'\n  - {{name: Last, shell: 'true'}}\n"
        ),
    );
    let out = testkube(dir.path(), &["run", &file, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = summary["workers"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&long.as_str()), "{names:?}");

    let out = testkube(dir.path(), &["run", &file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = &stdout[stdout.find("execution counted-2").unwrap()..];
    let listed = summary
        .lines()
        .filter(|line| line.trim_start().starts_with("passed ") && !line.contains("initialization"))
        .count();
    assert_eq!(listed, 3, "{summary}");
    assert!(summary.contains("steps: 3 passed"), "{summary}");
    assert!(summary.contains("workers: 3 passed"), "{summary}");
    assert!(
        summary.contains("…") && !summary.contains(&long),
        "the terminal shortens a long name: {summary}"
    );
}

#[test]
fn a_failing_workflow_exits_1_with_a_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad",
        "  - {id: fails, shell: 'exit 4'}\n  - {id: skipped, shell: 'true'}\n",
    );
    let out = testkube(dir.path(), &["run", &file, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "failed");
    let steps = &summary["workers"][0]["steps"];
    let step = |id: &str| {
        steps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(step("fails")["exitCode"], 4);
    assert_eq!(step("skipped")["status"], "skipped");
}

#[test]
fn invalid_input_and_unsupported_features_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = write(dir.path(), "cfg", "  - shell: 'echo {{ config.nope }}'\n");
    assert_eq!(
        testkube(dir.path(), &["run", &missing]).status.code(),
        Some(2)
    );

    let refused = write(dir.path(), "later", REFUSED_STEPS);
    let out = testkube(dir.path(), &["run", &refused]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not supported yet: content.oci"),
        "{stderr}"
    );

    // A --junit path that cannot be written stops the run before it starts.
    let ok = write(dir.path(), "fine", "  - shell: 'true'\n");
    let out = testkube(dir.path(), &["run", &ok, "--junit", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is a folder"), "{}", text(&out));
    assert!(executions(dir.path()).is_empty(), "nothing ran");

    // Fields the local engine cannot honour are refused, never ignored.
    let named = write(
        dir.path(),
        "named",
        "  - execute: {workflows: [{name: named, executionName: custom}]}\n",
    );
    let out = testkube(dir.path(), &["run", &named]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not supported yet: execute.workflows[].executionName"),
        "{}",
        text(&out)
    );
}

/// Content from an OCI image: the local executor refuses it before the run
/// starts.
const REFUSED_STEPS: &str =
    "  - content: {oci: {image: 'registry.example/tests:1'}}\n    shell: 'true'\n";

#[test]
fn execute_runs_children_from_the_file_and_folders_given_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("parent.yaml");
    std::fs::write(
        &parent,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: parent}\nspec:\n  steps:\n  - name: Children\n    execute:\n      workflows:\n      - {name: child, config: {who: alice}}\n      - selector: {matchLabels: {suite: smoke}}\n---\napiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: child}\nspec:\n  config:\n    who: {type: string}\n  steps:\n  - shell: echo \"hello {{ config.who }}\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(
        dir.path().join("more/smoke.yaml"),
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: smoke-a, labels: {suite: smoke}}\nspec:\n  steps:\n  - shell: 'exit 3'\n",
    )
    .unwrap();
    let parent = parent.display().to_string();
    let out = testkube(
        dir.path(),
        &["run", &parent, "--name", "parent", "--workflows", "more"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing child fails the run: {}",
        text(&out)
    );
    let all = executions(dir.path());
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    for name in ["parent-1", "child-1", "smoke-a-1"] {
        assert!(names.contains(&name), "{name} recorded: {names:?}");
    }
    let status = |name: &str| all.iter().find(|e| e.name == name).unwrap().status;
    assert_eq!(status("child-1"), ExecutionStatus::Passed);
    assert_eq!(status("smoke-a-1"), ExecutionStatus::Failed);
    assert_eq!(status("parent-1"), ExecutionStatus::Failed);
    let logs = testkube(dir.path(), &["logs", "child-1"]);
    assert!(text(&logs).contains("hello alice"), "{}", text(&logs));

    // Without the folder, the selector finds nothing and the named child
    // still runs; an unknown name fails the step with the reason.
    let missing = write(
        dir.path(),
        "lonely",
        "  - execute: {workflows: [{name: nowhere}]}\n",
    );
    let out = testkube(dir.path(), &["run", &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nowhere"), "{}", text(&out));
}

#[test]
fn the_local_smoke_example_passes() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows/local-smoke.yaml");
    let out = testkube(dir.path(), &["run", example.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn runs_are_numbered_per_workflow_and_kept_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "counted",
        "  - {name: Greet, shell: 'echo hi'}\n",
    );
    let first = testkube(dir.path(), &["run", &file]);
    assert_eq!(first.status.code(), Some(0));
    let second = testkube(dir.path(), &["run", &file]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("execution counted-2 passed"), "{stdout}");
    assert!(
        dir.path().join("home/results.db").is_file(),
        "the SQLite store lives under TESTKUBE_HOME"
    );
}

#[test]
fn a_refused_run_leaves_no_record_and_uses_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let refused = write(dir.path(), "refused", REFUSED_STEPS);
    assert_eq!(
        testkube(dir.path(), &["run", &refused]).status.code(),
        Some(2)
    );
    assert!(
        executions(dir.path()).is_empty(),
        "a refused run is not recorded"
    );

    // The same workflow name, runnable now: it is execution 1.
    let file = write(dir.path(), "refused", "  - shell: 'true'\n");
    let out = testkube(dir.path(), &["run", &file]);
    assert!(
        text(&out).contains("execution refused-1 passed"),
        "{}",
        text(&out)
    );
    assert_eq!(executions(dir.path()).len(), 1);
}

#[test]
fn tags_are_stored_and_seen_by_expressions() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "tagged",
        "  - shell: 'echo \"branch={{ execution.tags.branch }}\"'\n",
    );
    let out = testkube(
        dir.path(),
        &[
            "run",
            &file,
            "--tag",
            "branch=main",
            "--tag",
            "ci=yes",
            "--logs",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("branch=main"), "{}", text(&out));
    let stored = executions(dir.path());
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].tags.get("branch").map(String::as_str),
        Some("main")
    );
    assert_eq!(stored[0].tags.get("ci").map(String::as_str), Some("yes"));

    let bad = testkube(dir.path(), &["run", &file, "--tag", "novalue"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("--tag `novalue` is not KEY=VALUE"),
        "{}",
        text(&bad)
    );
}

#[test]
fn junit_reports_are_written_for_failed_runs_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "failing", "  - shell: 'exit 3'\n");
    let report = dir.path().join("out/junit.xml");
    let out = testkube(
        dir.path(),
        &["run", &file, "--junit", report.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let xml = std::fs::read(&report).expect("the report is written when the run fails");
    // The run produced no test reports: a valid report with no tests.
    let parsed = testkube_results::parse_report(&xml, "junit.xml").unwrap();
    assert_eq!(parsed.totals.tests, 0);
    assert!(
        text(&out).contains("0 test results written to"),
        "{}",
        text(&out)
    );
}

#[test]
fn secrets_come_from_the_environment_or_a_file_and_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "secretive",
        "  - shell: |\n      echo \"token={{ secret('api', 'token') }}\"\n      echo \"db={{ secret('db-main', 'password') }}\"\n",
    );
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(&secrets, "db-main:\n  password: from-the-file-42\n").unwrap();
    let out = testkube_with(
        dir.path(),
        &[
            "run",
            &file,
            "--logs",
            "--secrets",
            secrets.to_str().unwrap(),
        ],
        &[("TESTKUBE_SECRET_API_TOKEN", "from-the-env-17")],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("token=********"), "{all}");
    assert!(all.contains("db=********"), "{all}");
    assert!(
        !all.contains("from-the-env-17") && !all.contains("from-the-file-42"),
        "{all}"
    );

    // Nothing in the store holds a value: not the logs, not the snapshot.
    let stored = executions(dir.path());
    let logs = with_store(dir.path(), async |store| {
        store
            .logs(&stored[0].id, &Default::default())
            .await
            .unwrap()
    });
    let log_text: String = logs
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect();
    assert!(log_text.contains("token=********"), "{log_text}");
    let snapshot = stored[0].snapshot.to_string();
    for value in ["from-the-env-17", "from-the-file-42"] {
        assert!(!log_text.contains(value) && !snapshot.contains(value));
    }

    // A missing secret: exit 2, naming the variable and the file to set,
    // and nothing recorded.
    let out = testkube(dir.path(), &["run", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("TESTKUBE_SECRET_API_TOKEN"), "{all}");
    assert!(all.contains("home/secrets.yaml"), "{all}");
    assert_eq!(executions(dir.path()).len(), 1);

    // The home folder's secrets.yaml is read without --secrets.
    std::fs::write(
        dir.path().join("home/secrets.yaml"),
        "api: {token: home-file-5}\ndb-main: {password: home-file-6}\n",
    )
    .unwrap();
    let out = testkube(dir.path(), &["run", &file, "--logs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("home-file-"), "{}", text(&out));
}

#[test]
fn rerun_makes_a_new_execution_with_the_same_config_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cfg.yaml");
    std::fs::write(
        &file,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: cfg}\nspec:\n  config:\n    who: {type: string}\n  steps:\n  - shell: 'echo \"hello {{ config.who }} on {{ execution.tags.env }}\"'\n",
    )
    .unwrap();
    let first = testkube(
        dir.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--config",
            "who=ann",
            "--tag",
            "env=dev",
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // The file changes; the rerun still runs what was recorded.
    std::fs::write(&file, "not a workflow any more").unwrap();

    let out = testkube(dir.path(), &["rerun", "cfg-1", "--logs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("hello ann on dev"), "{}", text(&out));
    assert!(
        text(&out).contains("execution cfg-2 passed"),
        "{}",
        text(&out)
    );
    let stored = executions(dir.path());
    assert_eq!(stored.len(), 2);
    let newest = &stored[0];
    assert_eq!(newest.name, "cfg-2");
    assert_eq!(newest.config.get("who"), Some(&serde_json::json!("ann")));
    assert_eq!(newest.tags.get("env").map(String::as_str), Some("dev"));

    let missing = testkube(dir.path(), &["rerun", "cfg-99"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("no execution `cfg-99`"),
        "{}",
        text(&missing)
    );
}

/// A sharded suite: each worker prints its shard and fails when it holds
/// `c.py` (so `--failed-only` has something to rerun).
const SHARDED: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: sharded}
spec:
  steps:
  - name: Suite
    parallel:
      count: 2
      description: 'files {{ join(shard.file, \",\") }}'
      shards:
        file: [a.py, b.py, c.py, d.py]
      balance: {by: duration, key: file}
      shell: |
        echo \"shard {{ index }}: {{ join(shard.file, ' ') }}\"
        case \"{{ join(shard.file, ' ') }}\" in *c.py*) exit 1;; esac
";

fn worker_descriptions(out: &Output) -> BTreeMap<String, String> {
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    summary["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["id"] != "root")
        .map(|w| {
            (
                w["id"].as_str().unwrap().to_owned(),
                w["description"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn shards_are_balanced_by_recorded_durations_and_failed_workers_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sharded.yaml");
    std::fs::write(&file, SHARDED).unwrap();
    let file = file.to_str().unwrap();

    // First run: no history, the format's contiguous split.
    let first = testkube(dir.path(), &["run", file, "-o", "json"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(
        text(&first).contains("no recorded durations yet"),
        "{}",
        text(&first)
    );
    let split = worker_descriptions(&first);
    assert_eq!(
        split.values().cloned().collect::<Vec<_>>(),
        ["files a.py,b.py", "files c.py,d.py"]
    );

    // History as the first run's reports would have left it: a.py is slow.
    let id = executions(dir.path())[0].id.clone();
    with_store(dir.path(), async |store| {
        let case = |file: &str, seconds: f64| TestCaseRecord {
            worker: "root".to_owned(),
            suite: "suite".to_owned(),
            class: None,
            name: format!("test_{file}"),
            file: Some(file.to_owned()),
            status: TestCaseStatus::Passed,
            duration_secs: Some(seconds),
            message: None,
        };
        let cases = [
            case("a.py", 9.0),
            case("b.py", 1.0),
            case("c.py", 1.0),
            case("d.py", 1.0),
        ];
        store.record_test_cases(&id, &cases).await.unwrap();
    });

    let second = testkube(dir.path(), &["run", file, "-o", "json"]);
    assert!(
        text(&second).contains("shards split by 4 recorded durations"),
        "{}",
        text(&second)
    );
    let balanced = worker_descriptions(&second);
    assert_ne!(balanced, split, "the second split follows the durations");
    assert!(
        balanced.values().any(|d| d == "files a.py"),
        "the slow file gets a worker of its own: {balanced:?}"
    );

    // --failed-only: only the worker that held c.py runs again, with the
    // same shard as in the run it reruns.
    let name = executions(dir.path())[0].name.clone();
    let rerun = testkube(dir.path(), &["rerun", &name, "--failed-only", "-o", "json"]);
    assert_eq!(rerun.status.code(), Some(1), "{}", text(&rerun));
    assert!(
        text(&rerun).contains("1 of 2 workers run again"),
        "{}",
        text(&rerun)
    );
    let again = worker_descriptions(&rerun);
    assert_eq!(again.len(), 1, "{again:?}");
    let (worker, description) = again.iter().next().unwrap();
    assert_eq!(balanced.get(worker), Some(description));
    assert!(description.contains("c.py"), "{description}");
    assert_eq!(executions(dir.path()).len(), 3);
}

/// Workers that write JUnit reports (a.py takes 3 s on paper, c.py fails)
/// and keep them as artifacts, from which the run takes its test results.
const REPORTING: &str = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: reporting}
spec:
  steps:
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
            case $f in a.py) t=3.0;; *) t=0.1;; esac
            if [ $f = c.py ]; then
              echo "<testcase classname=\"t\" name=\"test_$f\" file=\"$f\" time=\"$t\"><failure message=\"boom\">trace</failure></testcase>"
            else
              echo "<testcase classname=\"t\" name=\"test_$f\" file=\"$f\" time=\"$t\"/>"
            fi
          done
          echo '</testsuite>'
        } > reports/junit.xml
      artifacts:
        workingDir: reports
        paths: ['*.xml']
"#;

#[test]
fn a_second_run_balances_on_the_first_runs_reports_and_junit_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reporting.yaml");
    std::fs::write(&file, REPORTING).unwrap();
    let file = file.to_str().unwrap();
    let report = dir.path().join("junit.xml");

    let first = testkube(
        dir.path(),
        &["run", file, "--junit", report.to_str().unwrap()],
    );
    let all = text(&first);
    assert_eq!(first.status.code(), Some(0), "{all}");
    assert!(all.contains("no recorded durations yet"), "{all}");
    assert!(
        all.contains("tests: 3 passed, 1 failed (4 in total)"),
        "{all}"
    );
    assert!(
        all.contains("failed   t::test_c.py [root/suite/1]  boom"),
        "{all}"
    );
    assert!(all.contains("artifacts: 2 files in"), "{all}");

    let parsed =
        testkube_results::parse_report(&std::fs::read(&report).unwrap(), "junit.xml").unwrap();
    assert_eq!(parsed.totals.tests, 4);
    assert_eq!(parsed.totals.failed, 1);

    let second = testkube(dir.path(), &["run", file, "-o", "json"]);
    assert!(
        text(&second).contains("shards split by 4 recorded durations"),
        "{}",
        text(&second)
    );
    let split = worker_descriptions(&second);
    assert!(
        split.values().any(|d| d == "files a.py"),
        "the slow file gets a worker of its own: {split:?}"
    );
}

#[test]
fn rerun_refuses_workflows_with_sensitive_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sens.yaml");
    std::fs::write(
        &file,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: sens}\nspec:\n  config:\n    token: {type: string, sensitive: true}\n  steps:\n  - shell: 'echo \"t={{ config.token }}\"'\n",
    )
    .unwrap();
    let first = testkube(
        dir.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--config",
            "token=abc-secret-9",
            "--logs",
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(!text(&first).contains("abc-secret-9"), "{}", text(&first));
    assert!(
        !executions(dir.path())[0]
            .snapshot
            .to_string()
            .contains("abc-secret-9")
    );

    let out = testkube(dir.path(), &["rerun", "sens-1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("sensitive config (token)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        executions(dir.path()).len(),
        1,
        "a refused rerun is not recorded"
    );
}

#[test]
fn ctrl_c_aborts_the_run_kills_its_processes_and_keeps_its_logs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "interrupted",
        "  - {name: Long, shell: 'echo started; sleep 4243'}\n  - {name: Never, shell: 'echo never'}\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["run", &file, "--logs"])
        .current_dir(dir.path())
        .env("TESTKUBE_HOME", dir.path().join("home"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("started") {
            break;
        }
    }
    assert!(seen.contains("started"), "{seen}");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let output = format!("{seen}{}", rest.join("\n"));
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("aborted"), "{output}");
    assert!(!output.contains("never\n"), "{output}");

    let all = executions(dir.path());
    assert_eq!(all[0].status, ExecutionStatus::Aborted, "{all:?}");
    let logs = testkube(dir.path(), &["logs", &all[0].name]);
    assert!(text(&logs).contains("started"), "{}", text(&logs));
    // The step's processes went with the run.
    let alive = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        // The whole command, not the number alone: other processes on the
        // machine (a compiler's hashed paths) may contain "4243" too.
        .any(|cmdline| {
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains("sleep 4243")
        });
    assert!(!alive, "a step process outlived the run");
}

#[test]
fn env_references_to_secrets_come_from_the_local_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "kube-env",
        "  - container:\n      env:\n      - name: TOKEN\n        valueFrom: {secretKeyRef: {name: api, key: token}}\n      - name: MAYBE\n        valueFrom: {secretKeyRef: {name: api, key: absent, optional: true}}\n      envFrom:\n      - prefix: DB_\n        secretRef: {name: db}\n    shell: |\n      test \"$TOKEN\" = tok-31415 && test \"$DB_PASSWORD\" = pw-27182 && test \"$DB_USER\" = admin-1618\n      test -z \"$MAYBE\"\n      echo \"token=$TOKEN\"\n",
    );
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(&secrets, "db:\n  PASSWORD: pw-27182\n  USER: admin-1618\n").unwrap();
    let args = [
        "run",
        &file,
        "--logs",
        "--secrets",
        secrets.to_str().unwrap(),
    ];
    let out = testkube_with(
        dir.path(),
        &args,
        &[("TESTKUBE_SECRET_API_TOKEN", "tok-31415")],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("token=********"), "{all}");
    assert!(!all.contains("tok-31415"), "{all}");

    // A required secret that is set nowhere stops the run before it starts.
    let out = testkube(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("TESTKUBE_SECRET_API_TOKEN"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_paused_step_waits_until_testkube_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "gated",
        "  - {name: Before, shell: 'echo before'}\n  - {name: Gate, paused: true, shell: 'echo after the gate'}\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["run", &file, "--logs"])
        .current_dir(dir.path())
        .env("TESTKUBE_HOME", dir.path().join("home"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Not paused yet: nothing to resume (or no run recorded at all).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let paused = executions(dir.path())
            .first()
            .is_some_and(|e| e.status == ExecutionStatus::Paused);
        if paused {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run never paused");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended unpaused"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = testkube(dir.path(), &["resume", "gated-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let done = child.wait_with_output().unwrap();
    let all = text(&done);
    assert_eq!(done.status.code(), Some(0), "{all}");
    assert!(all.contains(" resume gated-1` resumes it"), "{all}");
    assert!(all.contains("after the gate"), "{all}");
    // A finished run is not paused any more.
    let again = testkube(dir.path(), &["resume", "gated-1"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
}

/// A paused execution whose process is not there to listen: `resume`
/// says it cannot reach the run (exit 1) rather than claiming success.
#[test]
fn resume_says_when_the_run_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    with_store(dir.path(), async |store| {
        let new = testkube_core::store::NewExecution {
            id: "gone-1-1".to_owned(),
            workflow: "gone".to_owned(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: std::time::SystemTime::now().into(),
            snapshot: serde_json::json!({}),
            config: BTreeMap::new(),
            tags: BTreeMap::new(),
            shard_durations: BTreeMap::new(),
        };
        store.create_execution(new).await.unwrap();
        let paused = testkube_core::store::StatusUpdate {
            status: ExecutionStatus::Paused,
            at: std::time::SystemTime::now().into(),
            message: None,
        };
        store.update_status("gone-1-1", paused).await.unwrap();
    });
    let out = testkube(dir.path(), &["resume", "gone-1"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("cannot reach the run of gone-1"), "{all}");
    assert!(all.contains("control.sock"), "{all}");
    assert!(!all.contains("resumed"), "{all}");
}

/// The run's control socket lives as long as the run: nothing is left in
/// its folder once it has ended.
#[test]
fn a_finished_run_leaves_no_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "brief",
        "  - shell: 'echo done'
",
    );
    let out = testkube(dir.path(), &["run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = executions(dir.path())[0].id.clone();
    let folder = dir.path().join("home/runs").join(&id);
    assert!(folder.is_dir(), "{}", folder.display());
    assert!(!folder.join("control.sock").exists());
}

#[path = "run/expressions.rs"]
mod expressions;

/// A workflow named `name` whose own `content` is `content` (YAML lines
/// under `content:`), with one step that must not run.
fn write_with_content(dir: &Path, name: &str, content: &str) -> String {
    let text = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: {name}}}\n\
         spec:\n  content:\n{content}  steps:\n  - {{name: never, shell: 'touch /data/ran'}}\n"
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn content_that_cannot_be_prepared_fails_the_initialization_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A tarball holding `../escape.txt`: `-P` keeps the `../` tar would strip.
    let inner = dir.path().join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::write(dir.path().join("escape.txt"), "x").unwrap();
    let packed = Command::new("tar")
        .args(["-P", "-czf", "../evil.tar.gz", "../escape.txt"])
        .current_dir(&inner)
        .status()
        .unwrap();
    assert!(packed.success());
    let root = dir.path().display();
    let cases = [
        (
            "clone",
            format!("    git: {{uri: 'file://{root}/missing.git'}}\n"),
            "content.git: cannot check out",
        ),
        (
            "missing",
            format!("    tarball: [{{url: 'file://{root}/missing.tar.gz', path: /data/src}}]\n"),
            "missing.tar.gz",
        ),
        (
            "traversal",
            format!("    tarball: [{{url: 'file://{root}/evil.tar.gz', path: /data/src}}]\n"),
            "entry `../escape.txt` is refused",
        ),
        (
            "outside",
            "    files: [{path: /etc/testkube-evil.txt, content: x}]\n".to_owned(),
            "outside /data, /tmp and /testkube",
        ),
    ];
    for (name, content, reason) in &cases {
        let file = write_with_content(dir.path(), name, content);
        let out = testkube(dir.path(), &["run", &file]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {shown}");
        assert!(
            shown.contains("failed   initialization") && shown.contains(reason),
            "{name}: the summary says why: {shown}"
        );
        let detail = testkube(dir.path(), &["get", "execution", &format!("{name}-1")]);
        let detail = text(&detail);
        assert!(
            detail.contains("failed   initialization") && detail.contains(reason),
            "{name}: {detail}"
        );
        let json = testkube(
            dir.path(),
            &["get", "execution", &format!("{name}-1"), "-o", "json"],
        );
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let init = &json["result"]["initialization"];
        assert_eq!(init["status"], "failed", "{name}: {json}");
        assert!(
            init["errorMessage"].as_str().unwrap().contains(reason),
            "{name}: {init}"
        );
        assert!(init["finishedAt"].is_string(), "{name}: {init}");
    }
    let stored = executions(dir.path());
    assert_eq!(stored.len(), cases.len());
    for record in &stored {
        assert_eq!(record.status, ExecutionStatus::Failed, "{record:?}");
        let init = record.result.initialization.as_ref().unwrap();
        assert_eq!(init.status, StepStatus::Failed, "{record:?}");
        assert!(init.error_message.is_some(), "{record:?}");
    }
    assert!(
        !Path::new("/etc/testkube-evil.txt").exists(),
        "nothing is written outside the workspace"
    );
}

#[test]
fn a_normal_run_records_a_passed_initialization_with_its_times() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_with_content(
        dir.path(),
        "fine",
        "    files: [{path: /data/in.txt, content: hello}]\n",
    );
    let out = testkube(dir.path(), &["run", &file, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let init = &summary["result"]["initialization"];
    assert_eq!(init["status"], "passed", "{summary}");
    assert!(init.get("errorMessage").is_none(), "{init}");
    let [record] = executions(dir.path()).try_into().unwrap();
    let init = record.result.initialization.unwrap();
    assert_eq!(init.status, StepStatus::Passed);
    assert!(init.started_at.is_some() && init.finished_at >= init.started_at);
    let detail = text(&testkube(dir.path(), &["get", "execution", "fine-1"]));
    assert!(detail.contains("passed   initialization"), "{detail}");
}

/// A workflow whose steps write `/data`, `/tmp` and `/testkube` as pods do.
fn write_pod_like(dir: &Path) -> String {
    write(
        dir,
        "podlike",
        "  - {name: write, shell: 'echo hi > /data/x && echo t > /tmp/t && echo v > /testkube/outputs/k'}\n  - {name: read, shell: 'test \"$(cat /data/x)\" = hi && test \"$PWD\" = /data'}\n",
    )
}

#[test]
fn without_bubblewrap_a_workflow_writing_data_runs_unchanged_in_user_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pod_like(dir.path());
    // `unshare`: as if bubblewrap were not installed.
    let out = testkube_with(
        dir.path(),
        &["run", &file],
        &[("TESTKUBE_SANDBOX", "unshare")],
    );
    let shown = text(&out);
    if out.status.code() == Some(2) {
        // A kernel without unprivileged user namespaces: refused up front.
        assert!(shown.contains("TESTKUBE_SANDBOX=auto"), "{shown}");
        assert!(executions(dir.path()).is_empty(), "{shown}");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("steps run in a user namespace"), "{shown}");
    assert!(shown.contains("passed   write") && shown.contains("passed   read"));
    let [record] = executions(dir.path()).try_into().unwrap();
    assert_eq!(record.status, ExecutionStatus::Passed);
}

#[test]
fn without_any_sandbox_the_run_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pod_like(dir.path());
    // No bwrap and no unshare on PATH; then an `unshare` the kernel refuses.
    let nothing = dir.path().join("bin-nothing");
    let refused = dir.path().join("bin-refused");
    std::fs::create_dir_all(&nothing).unwrap();
    std::fs::create_dir_all(&refused).unwrap();
    let fake = refused.join("unshare");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n",
    )
    .unwrap();
    let mut mode = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
    std::fs::set_permissions(&fake, mode).unwrap();
    for (path, why) in [
        (&nothing, "`unshare` (util-linux) is not installed"),
        (&refused, "Operation not permitted"),
    ] {
        let path = path.display().to_string();
        let out = testkube_with(dir.path(), &["run", &file], &[("PATH", &path)]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{shown}");
        assert!(shown.contains(why), "{shown}");
        assert!(
            shown.contains("install bubblewrap") && shown.contains("/data, /tmp and /testkube"),
            "one message saying what to do and why: {shown}"
        );
        assert!(!shown.contains("running"), "nothing started: {shown}");
        assert!(executions(dir.path()).is_empty(), "nothing recorded");
        assert!(!dir.path().join("home/runs").exists(), "no workspace made");
    }
    // Plain processes on request: a workflow that keeps to its own folder runs.
    let plain = write(
        dir.path(),
        "plain",
        "  - {name: own, shell: 'echo hi > here.txt && echo v > \"$TESTKUBE_OUTPUTS/k\"'}\n",
    );
    let nothing = nothing.display().to_string();
    let out = testkube_with(
        dir.path(),
        &["run", &plain],
        &[("PATH", &nothing), ("TESTKUBE_SANDBOX", "off")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("plain processes"), "{}", text(&out));
}
