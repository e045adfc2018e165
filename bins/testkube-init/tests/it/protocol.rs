use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use testkube_core::engine::protocol::{
    Decoded, Frame, LineDecoder, ObjectLinks, PROTOCOL_VERSION, Reply, Request, TerminationMessage,
    WorkerTask,
};
use testkube_core::engine::{ExecutionInfo, ParallelOutcome, WorkerFiles, WorkerId};
use testkube_core::status::StepStatus;
use testkube_core::{Document, LoadOptions, PlanOptions, ResolveOptions, TemplateSet};

const INIT: &str = env!("CARGO_BIN_EXE_testkube-init");

fn task(yaml: &str) -> WorkerTask {
    let file = testkube_core::load_file("wf.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow")
    };
    let templates = TemplateSet::with_builtins().unwrap();
    let resolved =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .unwrap();
    let plan = testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).unwrap();
    WorkerTask {
        version: PROTOCOL_VERSION,
        execution: ExecutionInfo {
            id: "exec-1".into(),
            name: "wf-1".into(),
            workflow: plan.workflow.clone(),
        },
        worker: WorkerId {
            path: "root".into(),
            number: 0,
        },
        root: plan.root,
        env: Vec::new(),
        variables: BTreeMap::new(),
        files: WorkerFiles::default(),
        barrier: false,
        containers: Default::default(),
        links: ObjectLinks::default(),
    }
}

fn write_task(dir: &Path, task: &WorkerTask) -> std::path::PathBuf {
    let path = dir.join("task.json");
    std::fs::write(&path, task.to_json()).unwrap();
    path
}

/// Everything the worker wrote, decoded: (output per step, frames).
fn decode(stdout: &[u8]) -> (BTreeMap<String, Vec<u8>>, Vec<Frame>) {
    let mut decoder = LineDecoder::new();
    let mut decoded = Vec::new();
    for line in stdout.split_inclusive(|b| *b == b'\n') {
        decoded.extend(decoder.line(line));
    }
    decoded.extend(decoder.finish());
    let mut logs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut frames = Vec::new();
    for item in decoded {
        match item {
            Decoded::Log { step, chunk } => logs
                .entry(step.unwrap_or_default())
                .or_default()
                .extend_from_slice(&chunk),
            Decoded::Frame(frame) => frames.push(frame),
            Decoded::Invalid { line, error } => panic!("invalid line {line:?}: {error}"),
        }
    }
    (logs, frames)
}

fn final_status(frames: &[Frame], id: &str) -> Option<StepStatus> {
    frames.iter().rev().find_map(|frame| match frame {
        Frame::Step { step, status, .. } if step == id && status.is_finished() => Some(*status),
        _ => None,
    })
}

#[test]
fn a_task_runs_and_reports_steps_logs_outputs_and_the_termination_message() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  steps:
  - name: greet
    shell: printf 'hello\\nno newline'; echo 42 > $TESTKUBE_OUTPUTS/answer
  - name: fail
    shell: echo broken; exit 3
  - name: after
    condition: always
    shell: echo cleanup
",
    );
    let file = write_task(dir.path(), &task);
    let root = dir.path().join("pod");
    let output = Command::new(INIT)
        .args(["run", "--task"])
        .arg(&file)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (logs, frames) = decode(&output.stdout);
    assert_eq!(logs["greet"], b"hello\nno newline");
    assert_eq!(logs["fail"], b"broken\n");
    assert_eq!(logs["after"], b"cleanup\n");
    assert_eq!(final_status(&frames, "greet"), Some(StepStatus::Passed));
    assert_eq!(final_status(&frames, "fail"), Some(StepStatus::Failed));
    assert_eq!(final_status(&frames, "after"), Some(StepStatus::Passed));
    let exit_code = frames.iter().find_map(|frame| match frame {
        Frame::Step {
            step, exit_code, ..
        } if step == "fail" => *exit_code,
        _ => None,
    });
    assert_eq!(exit_code, Some(3));
    assert!(frames.contains(&Frame::Output {
        step: "greet".into(),
        key: "answer".into(),
        value: "42".into()
    }));
    assert_eq!(
        frames.last(),
        Some(&Frame::Finished {
            status: StepStatus::Failed
        })
    );
    let message = TerminationMessage::decode(
        &std::fs::read_to_string(root.join("termination-log-0")).unwrap(),
    )
    .unwrap();
    assert_eq!(message.finished, Some(StepStatus::Failed));
    assert_eq!(message.steps.get("fail"), Some(&StepStatus::Failed));
}

#[test]
fn a_parallel_block_is_asked_of_the_engine_and_its_reply_decides_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  steps:
  - name: fan
    parallel:
      count: 2
      shell: echo worker
  - name: next
    shell: echo next
",
    );
    let file = write_task(dir.path(), &task);
    let root = dir.path().join("pod");
    let mut child = Command::new(INIT)
        .args(["run", "--task"])
        .arg(&file)
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut decoder = LineDecoder::new();
    let mut all = Vec::new();
    // Read until the request shows up; the worker waits for the reply.
    let (id, step) = loop {
        let mut line = Vec::new();
        assert!(
            stdout.read_until(b'\n', &mut line).unwrap() > 0,
            "no request"
        );
        all.extend_from_slice(&line);
        let found = decoder.line(&line).into_iter().find_map(|d| match d {
            Decoded::Frame(Frame::Request {
                id,
                request: Request::Parallel(request),
            }) => Some((id, request.step.clone())),
            _ => None,
        });
        if let Some(found) = found {
            break found;
        }
    };
    assert_eq!(step, "fan");
    let reply = Reply::Parallel {
        outcome: ParallelOutcome {
            status: StepStatus::Failed,
            workers: Vec::new(),
            message: Some("worker 1 failed".into()),
        },
        links: ObjectLinks::default(),
    };
    let mut answer = Command::new(INIT)
        .args(["reply", &id.to_string(), "--control-dir"])
        .arg(root.join("testkube/.control"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    answer
        .stdin
        .take()
        .unwrap()
        .write_all(reply.to_json().as_bytes())
        .unwrap();
    assert!(answer.wait().unwrap().success());
    std::io::copy(&mut stdout, &mut all).unwrap();
    assert!(child.wait().unwrap().success());
    let (_, frames) = decode(&all);
    assert_eq!(final_status(&frames, "fan"), Some(StepStatus::Failed));
    // The log says the reply was read, before the step's end: an engine
    // reading it again after a restart does not ask again.
    let answered = frames
        .iter()
        .position(|frame| *frame == Frame::Answered { id });
    let fan_ended = frames.iter().position(|frame| {
        matches!(frame, Frame::Step { step, status, .. } if step == "fan" && status.is_finished())
    });
    assert!(answered.is_some() && answered < fan_ended, "{frames:#?}");
    // `next` runs only when the steps before it passed.
    assert_eq!(final_status(&frames, "next"), Some(StepStatus::Skipped));
    assert_eq!(
        frames.last(),
        Some(&Frame::Finished {
            status: StepStatus::Failed
        })
    );
}

#[test]
fn a_reply_that_is_not_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut answer = Command::new(INIT)
        .args(["reply", "1", "--control-dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    answer.stdin.take().unwrap().write_all(b"nope").unwrap();
    let output = answer.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a worker reply"));
    assert!(!dir.path().join("1.json").exists());
}

/// The id of the step named `name`.
fn id_of(step: &testkube_core::plan::PlanStep, name: &str) -> Option<String> {
    if step.name.as_deref() == Some(name) {
        return Some(step.id.clone());
    }
    step.operations
        .iter()
        .find_map(|operation| match operation {
            testkube_core::plan::Operation::Steps { steps }
            | testkube_core::plan::Operation::Setup { steps } => {
                steps.iter().find_map(|child| id_of(child, name))
            }
            _ => None,
        })
}

#[test]
fn steps_spread_over_ordered_containers_run_once_each_as_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = task(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: wf}
spec:
  steps:
  - name: produce
    shell: echo 7 > $TESTKUBE_OUTPUTS/n; echo produced
  - name: group
    steps:
    - name: zero
      shell: echo zero
    - name: one
      shell: echo one; exit 1
  - name: never
    shell: echo never
  - name: uses
    condition: always
    shell: echo "n={{ step.produce.outputs.n }}"
"#,
    );
    let id = |name: &str| id_of(&task.root, name).unwrap();
    let ids: Vec<String> = ["produce", "group", "zero", "one", "never", "uses"]
        .iter()
        .map(|name| id(name))
        .collect();
    task.containers = BTreeMap::from([
        (ids[0].clone(), 0),
        (ids[2].clone(), 0),
        (ids[3].clone(), 1),
        (ids[4].clone(), 1),
        (ids[5].clone(), 2),
    ]);
    let file = write_task(dir.path(), &task);
    let root = dir.path().join("pod");
    let mut stdout = Vec::new();
    let mut messages = Vec::new();
    for container in 0..3 {
        let output = Command::new(INIT)
            .args(["run", "--task"])
            .arg(&file)
            .args(["--container", &container.to_string(), "--root"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout.extend_from_slice(&output.stdout);
        let text = std::fs::read_to_string(root.join(format!("termination-log-{container}")));
        messages.push(TerminationMessage::decode(&text.unwrap()).unwrap());
    }
    let (logs, frames) = decode(&stdout);
    assert_eq!(logs[&ids[0]], b"produced\n");
    assert_eq!(
        logs[&ids[5]], b"n=7\n",
        "outputs of container 0 seen in container 2"
    );
    assert!(
        !logs.contains_key(&ids[4]),
        "`never` does not run after a failure"
    );
    // Every step is reported running at most once and finished exactly once.
    for step in &ids {
        let reports: Vec<StepStatus> = frames
            .iter()
            .filter_map(|frame| match frame {
                Frame::Step {
                    step: s, status, ..
                } if s == step => Some(*status),
                _ => None,
            })
            .collect();
        let finished = reports.iter().filter(|s| s.is_finished()).count();
        let running = reports
            .iter()
            .filter(|s| **s == StepStatus::Running)
            .count();
        assert_eq!(finished, 1, "{step}: {reports:?}");
        assert!(running <= 1, "{step}: {reports:?}");
    }
    assert_eq!(final_status(&frames, &ids[1]), Some(StepStatus::Failed));
    assert_eq!(final_status(&frames, &ids[4]), Some(StepStatus::Skipped));
    assert_eq!(final_status(&frames, &ids[5]), Some(StepStatus::Passed));
    let finished: Vec<&Frame> = frames
        .iter()
        .filter(|frame| matches!(frame, Frame::Finished { .. }))
        .collect();
    assert_eq!(
        finished,
        [&Frame::Finished {
            status: StepStatus::Failed
        }]
    );
    assert_eq!(messages[0].finished, None, "container 0 handed off");
    assert_eq!(messages[0].steps.get(&ids[0]), Some(&StepStatus::Passed));
    assert_eq!(messages[2].finished, Some(StepStatus::Failed));
    let initialized = frames
        .iter()
        .filter(|frame| matches!(frame, Frame::Initialized { .. }))
        .count();
    assert_eq!(initialized, 1);
}
