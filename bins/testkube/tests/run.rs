//! `testkube run` end to end: real processes, exit codes 0 (passed),
//! 1 (failed) and 2 (invalid input or unsupported feature), and the JSON
//! summary.

use std::path::Path;
use std::process::{Command, Output};

fn testkube(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(args)
        .current_dir(dir)
        .env("TESTKUBE_HOME", dir.join("home"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
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

    let services = dir.path().join("svc.yaml");
    std::fs::write(
        &services,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: svc}\nspec:\n  services:\n    db: {shell: 'sleep 1'}\n  steps:\n  - shell: 'true'\n",
    )
    .unwrap();
    let out = testkube(dir.path(), &["run", services.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not supported yet: services"), "{stderr}");
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
