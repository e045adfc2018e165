//! End-to-end tests of the `testkube` binary: arguments in, stdout/stderr and
//! exit codes out, exactly as scripts and CI jobs see them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "cli/manifests.rs"]
mod manifests;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/split.rs"]
mod split;

fn testkube(args: &[&str]) -> Output {
    testkube_stdin(args, None)
}

fn testkube_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    // The global flag goes first: split items after `--` take everything.
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .arg("--color=never")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the testkube binary starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("stdin accepts the items");
    }
    child
        .wait_with_output()
        .expect("the testkube binary finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is JSON ({err}): {}", stdout(output)))
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("test file is written");
    path
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

const VALID: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: smoke
spec:
  steps:
  - name: hello
    shell: echo hello
";

#[test]
fn validate_accepts_a_valid_workflow_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ok.yaml", VALID);
    let out = testkube(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("valid: 1 file, 1 document"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_reports_file_line_column_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "typo.yaml",
        &VALID.replace("shell: echo hello", "shell: echo hello\n    timout: 5m"),
    );
    let out = testkube(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let expected = format!("{}:9:5: error:", file.display());
    assert!(err.contains(&expected), "wanted `{expected}` in:\n{err}");
    assert!(
        err.contains("timeout"),
        "did-you-mean names the right field:\n{err}"
    );
}

#[test]
fn validate_json_lists_every_file_and_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", VALID);
    write(
        dir.path(),
        "b.yml",
        &VALID.replace("name: smoke", "name: Not_A_DNS_Name"),
    );
    write(dir.path(), "notes.txt", "not yaml, not searched");
    let out = testkube(&["validate", dir.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["valid"], false);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "only *.yaml and *.yml files: {report}");
    assert_eq!(files[0]["valid"], true);
    assert_eq!(files[1]["valid"], false);
    let diag = &files[1]["diagnostics"][0];
    assert_eq!(diag["line"], 4);
    assert!(
        diag["message"].as_str().unwrap().contains("Not_A_DNS_Name"),
        "{diag}"
    );
}

#[test]
fn validate_missing_path_says_so() {
    let out = testkube(&["validate", "/nonexistent/wf.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/wf.yaml: error: cannot read the file"),
        "{}",
        stderr(&out)
    );
}

const TEMPLATE: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowTemplate
metadata:
  name: greet
spec:
  config:
    who: {type: string}
  steps:
  - shell: echo hello {{ config.who }}
";

const USES_GREET: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: greeting
spec:
  steps:
  - name: hello
    template:
      name: greet
      config: {who: world}
";

#[test]
fn validate_resolves_templates_defined_in_another_file_given_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let template = write(dir.path(), "template.yaml", TEMPLATE);
    let workflow = write(dir.path(), "workflow.yaml", USES_GREET);
    let out = testkube(&[
        "validate",
        workflow.to_str().unwrap(),
        template.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("valid: 2 files, 2 documents"),
        "{}",
        stderr(&out)
    );
    // One folder is one catalog too.
    let out = testkube(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Alone, the workflow names a template nobody defines.
    let out = testkube(&["validate", workflow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let expected = format!(
        "{}:9:13: error: unknown template `greet`",
        workflow.display()
    );
    assert!(err.contains(&expected), "wanted `{expected}` in:\n{err}");
    assert!(
        err.contains("`validate` takes it as one more path"),
        "the hint says how to load it:\n{err}"
    );
}

#[test]
fn validate_reports_a_missing_template_with_did_you_mean_and_template_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let template = write(dir.path(), "template.yaml", TEMPLATE);
    let workflow = write(
        dir.path(),
        "workflow.yaml",
        &format!(
            "{}  - name: typo\n    template: {{name: greeet, config: {{who: x}}}}\n  - name: bad-config\n    use:\n    - name: greet\n      config: {{whom: x}}\n",
            USES_GREET
        ),
    );
    let out = testkube(&[
        "validate",
        template.to_str().unwrap(),
        workflow.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = json(&out);
    assert_eq!(report["errorCount"], 3, "{report}");
    let diagnostics = report["files"][1]["diagnostics"].as_array().unwrap();
    let found: Vec<(i64, &str, &str, &str)> = diagnostics
        .iter()
        .map(|d| {
            (
                d["line"].as_i64().unwrap(),
                d["code"].as_str().unwrap(),
                d["message"].as_str().unwrap(),
                d["hint"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                12,
                "unknown-template",
                "unknown template `greeet`",
                "did you mean `greet`?"
            ),
            (
                15,
                "unknown-config",
                "template `greet` has no config parameter `whom`",
                "did you mean `who`?"
            ),
            (
                15,
                "missing-config",
                "missing required config `who` of template `greet` (string)",
                "set it in the `use` entry: `config: {who: <string>}`"
            ),
        ]
    );
}

#[test]
fn report_json_carries_the_contract_totals() {
    let report = data("timings-junit.xml");
    let out = testkube(&["report", &report, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = json(&out);
    for (field, value) in [
        ("tests", 5),
        ("passed", 2),
        ("failed", 1),
        ("errored", 0),
        ("skipped", 1),
        ("flaky", 1),
    ] {
        assert_eq!(summary[field], value, "field {field} in {summary}");
    }
    let cases = summary["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    let failed = cases.iter().find(|c| c["status"] == "failed").unwrap();
    assert_eq!(failed["message"], "expected 3 but was 4");
}

#[test]
fn report_pretty_lists_failures_and_slowest() {
    let out = testkube(&["report", &data("timings-junit.xml")]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("FAIL  io.example.Medium › adds"), "{text}");
    assert!(text.contains("expected 3 but was 4"), "{text}");
    assert!(text.contains("FLAKY io.example.Fast › retried"), "{text}");
    let slowest = text.split("Slowest").nth(1).expect("a Slowest section");
    assert!(
        slowest
            .trim_start()
            .starts_with("30.000s  io.example.Slow › crawls"),
        "{text}"
    );
    assert!(
        text.contains("FAILED  5 tests: 2 passed, 1 failed, 0 errored, 1 skipped, 1 flaky"),
        "{text}"
    );
}

#[test]
fn report_exits_one_when_a_file_cannot_be_read() {
    let out = testkube(&[
        "report",
        &data("timings-junit.xml"),
        "/nonexistent/report.xml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/report.xml"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("5 tests"),
        "readable files are still reported"
    );
}

#[test]
fn validate_reports_unreadable_paths_and_still_checks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "ok.yaml", VALID);
    let out = testkube(&[
        "validate",
        good.to_str().unwrap(),
        "/nonexistent/wf.yaml",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{report}");
    assert_eq!(files[0]["valid"], true);
    assert_eq!(files[1]["file"], "/nonexistent/wf.yaml");
    assert_eq!(files[1]["diagnostics"][0]["code"], "io");
}

#[test]
fn validate_refuses_devices_instead_of_reading_forever() {
    let out = testkube(&["validate", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn output_formats_a_command_cannot_print_are_refused() {
    let out = testkube(&["validate", "x.yaml", "-o", "yaml"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects the value");
    let out = testkube(&["report", "x.xml", "-o", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn closing_the_pipe_early_is_not_a_crash() {
    let items: String = (0..20_000)
        .map(|i| format!("tests/test_{i}.py\n"))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["split", "--total", "1", "--index", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(items.as_bytes());
    });
    // Read one line, then close the pipe like `| head -1` does.
    let mut first = [0u8; 16];
    let mut stdout = child.stdout.take().unwrap();
    std::io::Read::read(&mut stdout, &mut first).unwrap();
    drop(stdout);
    writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(101), "panicked: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn report_prints_no_summary_when_nothing_was_readable() {
    let dir = tempfile::tempdir().unwrap();
    let html = write(
        dir.path(),
        "page.html",
        "<html><body>not a report</body></html>",
    );
    let out = testkube(&["report", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "", "no `PASSED 0 tests` line");
    assert!(stderr(&out).contains("page.html"), "{}", stderr(&out));
}
