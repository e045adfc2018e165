//! `testkube serve` and the CLI's `--server` mode, as a CI job uses them:
//! real processes, a real port, tokens, exit codes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const ADMIN: &str = "ci-admin-token-0123456789";
const READ: &str = "dashboard-token-0123456789";

/// A `testkube serve` process, stopped when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(home: &Path, args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["--color=never", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("TESTKUBE_HOME", home)
        .env("TESTKUBE_SANDBOX", "off")
        .env_remove("TESTKUBE_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Served { child, url }
}

fn remote(served: &Served, dir: &Path, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testkube"))
        .arg("--color=never")
        .args(args)
        .current_dir(dir)
        .env("TESTKUBE_SERVER", &served.url)
        .env("TESTKUBE_TOKEN", token)
        .env("TESTKUBE_HOME", dir.join("client-home"))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn server_with_tokens() -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("# CI\n{ADMIN} read,run,admin\n{READ} read\n"),
    )
    .unwrap();
    let served = serve(
        &dir.path().join("server-home"),
        &["--tokens", tokens.to_str().unwrap()],
    );
    (dir, served)
}

#[test]
fn serve_refuses_to_run_open_to_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_testkube"))
            .args(["--color=never", "serve"])
            .args(args)
            .env("TESTKUBE_HOME", dir.path())
            .env_remove("TESTKUBE_TOKENS_FILE")
            .output()
            .unwrap()
    };
    let open = run(&["--no-auth", "--listen", "0.0.0.0:0"]);
    assert_eq!(open.status.code(), Some(2), "{}", text(&open));
    assert!(
        text(&open).contains("only allowed on a loopback address"),
        "{}",
        text(&open)
    );
    let none = run(&["--listen", "127.0.0.1:0"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none).contains("give --tokens FILE"),
        "{}",
        text(&none)
    );
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "abc read\n").unwrap();
    let weak = run(&["--tokens", tokens.to_str().unwrap()]);
    assert_eq!(weak.status.code(), Some(2));
    assert!(
        text(&weak).contains("tokens:1: a token shorter than 16"),
        "{}",
        text(&weak)
    );
}

#[test]
fn ci_runs_a_file_on_the_server_and_gets_its_verdict_logs_and_junit() {
    let (dir, served) = server_with_tokens();
    let work = dir.path();
    std::fs::write(
        work.join("suite.yaml"),
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: suite}\nspec:\n  config:\n    fail: {type: string, default: 'no'}\n  steps:\n  - name: Test\n    shell: |\n      mkdir -p out\n      echo \"running with fail={{ config.fail }}\"\n      if [ {{ config.fail }} = yes ]; then r='<failure message=\"boom\"/>'; else r=''; fi\n      printf '<testsuite name=\"s\"><testcase classname=\"c\" name=\"t1\"/><testcase classname=\"c\" name=\"t2\">%s</testcase></testsuite>' \"$r\" > out/junit.xml\n      echo hello > out/note.txt\n      [ {{ config.fail }} = no ]\n    artifacts: {workingDir: out, paths: ['*']}\n",
    )
    .unwrap();

    let passed = remote(
        &served,
        work,
        ADMIN,
        &["run", "suite.yaml", "-f", "--junit", "junit.xml"],
    );
    assert_eq!(passed.status.code(), Some(0), "{}", text(&passed));
    let out = text(&passed);
    assert!(
        out.contains("running with fail=no"),
        "-f streams the logs: {out}"
    );
    assert!(out.contains("passed suite-1"), "{out}");
    let junit = std::fs::read_to_string(work.join("junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"2\"") && junit.contains("t2"),
        "{junit}"
    );

    let failed = remote(
        &served,
        work,
        ADMIN,
        &[
            "run",
            "suite",
            "--config",
            "fail=yes",
            "--junit",
            "failed.xml",
        ],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let junit = std::fs::read_to_string(work.join("failed.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("boom"),
        "{junit}"
    );

    // Reading needs only a read token.
    let list = remote(&served, work, READ, &["get", "executions", "-o", "json"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["suite-2", "suite-1"]);
    let one = remote(&served, work, READ, &["get", "execution", "suite-2"]);
    assert!(text(&one).contains("failed suite-2"), "{}", text(&one));
    assert!(
        text(&one).contains("tests: 1 passed, 1 failed"),
        "{}",
        text(&one)
    );
    let logs = remote(&served, work, READ, &["logs", "suite-2"]);
    assert!(
        text(&logs).contains("running with fail=yes"),
        "{}",
        text(&logs)
    );
    let artifacts = remote(
        &served,
        work,
        READ,
        &["artifacts", "suite-1", "--download", "got"],
    );
    assert_eq!(artifacts.status.code(), Some(0), "{}", text(&artifacts));
    assert_eq!(
        std::fs::read_to_string(work.join("got/root/note.txt")).unwrap(),
        "hello\n"
    );

    // A read token cannot run; an unknown workflow is invalid input (2).
    let refused = remote(&served, work, READ, &["run", "suite"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("lacks the `run` scope"),
        "{}",
        text(&refused)
    );
    let unknown = remote(&served, work, ADMIN, &["run", "missing"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    let invalid = remote(
        &served,
        work,
        ADMIN,
        &["run", "suite", "--config", "nope=1"],
    );
    assert_eq!(invalid.status.code(), Some(2), "{}", text(&invalid));
    assert!(text(&invalid).contains("nope"), "{}", text(&invalid));

    let rerun = remote(&served, work, ADMIN, &["rerun", "suite-1"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert!(text(&rerun).contains("passed suite-3"), "{}", text(&rerun));
}

#[test]
fn a_run_on_the_server_is_aborted_from_another_job() {
    let (dir, served) = server_with_tokens();
    let work = dir.path();
    std::fs::write(
        work.join("slow.yaml"),
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: slow}\nspec:\n  steps:\n  - shell: echo waiting; sleep 60\n",
    )
    .unwrap();
    let mut run = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["--color=never", "run", "slow.yaml", "-f"])
        .current_dir(work)
        .env("TESTKUBE_SERVER", &served.url)
        .env("TESTKUBE_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The run is under way once its log arrives.
    let mut stdout = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "waiting\n");
    let abort = remote(&served, work, ADMIN, &["abort", "slow-1"]);
    assert_eq!(abort.status.code(), Some(0), "{}", text(&abort));
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an aborted run exits 1");
    let again = remote(&served, work, ADMIN, &["abort", "slow-1"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again).contains("already finished"),
        "{}",
        text(&again)
    );
}
