//! The engine with the local executor, on real processes: verdicts,
//! conditions, retries, timeouts, outputs, parallel workers, failFast,
//! aborts and the whole-run deadline. Every test runs as plain processes, in
//! bubblewrap's sandbox where it is installed, and in the sandbox built with
//! user namespaces (`unshare`) where the kernel allows it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use testkube_core::engine::{Engine, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::model::Document;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::{LoadOptions, PlanOptions, ResolveOptions, TemplateSet};
use testkube_executors::{LocalExecutor, Sandbox};

mod common;
use common::{executors, plan, sandboxes, step, workflow};

async fn run(executor: &LocalExecutor, yaml: &str) -> ExecutionSummary {
    let engine = Engine::new(Arc::new(executor.clone()));
    let running = engine
        .start(plan(yaml), ExecutionRequest::new("exec"))
        .unwrap();
    running.wait().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_and_failing_steps_give_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let passed = run(
            &executor,
            &workflow(
                "  steps:\n  - {id: a, shell: 'echo hello'}\n  - {id: b, run: {command: [true]}}\n",
            ),
        )
        .await;
        assert_eq!(passed.status, ExecutionStatus::Passed, "{passed:#?}");
        assert_eq!(step(&passed, "a").status, StepStatus::Passed);
        assert_eq!(step(&passed, "b").status, StepStatus::Passed);

        let failed = run(
            &executor,
            &workflow("  steps:\n  - {id: a, shell: 'false; echo not reached'}\n  - {id: b, shell: 'true'}\n"),
        )
        .await;
        assert_eq!(failed.status, ExecutionStatus::Failed);
        assert_eq!(step(&failed, "a").status, StepStatus::Failed);
        assert_eq!(
            step(&failed, "a").exit_code,
            Some(1),
            "set -e stops the script"
        );
        assert_eq!(step(&failed, "b").status, StepStatus::Skipped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_steps_run_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - {id: a, shell: 'exit 3'}\n  - {id: b, shell: 'true'}\n  after:\n  - {id: cleanup, condition: always, shell: 'echo cleaning'}\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Failed);
        assert_eq!(step(&summary, "a").exit_code, Some(3));
        assert_eq!(step(&summary, "b").status, StepStatus::Skipped);
        assert_eq!(step(&summary, "cleanup").status, StepStatus::Passed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_and_optional_steps_do_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - {id: expected_failure, negative: true, shell: 'exit 1'}\n  - {id: flaky, optional: true, shell: 'exit 1'}\n  - {id: last, shell: 'true'}\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(
            step(&summary, "expected_failure").status,
            StepStatus::Passed
        );
        assert_eq!(step(&summary, "flaky").status, StepStatus::Failed);
        assert_eq!(step(&summary, "last").status, StepStatus::Passed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_the_step_passes() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        // Fails twice, then passes: a counter file in the workspace.
        let script =
            "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; test $n -ge 3";
        let summary = run(
            &executor,
            &workflow(&format!(
                "  steps:\n  - id: flaky\n    retry: {{count: 5}}\n    shell: '{script}'\n"
            )),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(step(&summary, "flaky").attempts, 3);

        let exhausted = run(
            &executor,
            &workflow("  steps:\n  - {id: never, retry: {count: 1}, shell: 'exit 1'}\n"),
        )
        .await;
        assert_eq!(exhausted.status, ExecutionStatus::Failed);
        assert_eq!(step(&exhausted, "never").attempts, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_kills_everything_the_step_started() {
    let dir = tempfile::tempdir().unwrap();
    for (n, executor) in executors(dir.path()).into_iter().enumerate() {
        let marker = format!("tkmarker{}x{n}", std::process::id());
        let script =
            format!("sh -c \"sleep 100 # {marker}\" & sh -c \"sleep 100 # {marker}\" & wait");
        let summary = run(
            &executor,
            &workflow(&format!(
                "  steps:\n  - id: slow\n    timeout: 1s\n    shell: '{script}'\n  - {{id: after, condition: always, shell: 'true'}}\n"
            )),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
        assert_eq!(step(&summary, "slow").status, StepStatus::Timeout);
        assert_eq!(step(&summary, "after").status, StepStatus::Passed);
        assert!(no_process_matches(&marker).await, "{marker} still runs");
    }
}

/// Whether no process's command line contains `marker` (waiting briefly
/// for killed processes to be reaped).
async fn no_process_matches(marker: &str) -> bool {
    for _ in 0..40 {
        let found = std::process::Command::new("pgrep")
            .args(["-f", marker])
            .output()
            .unwrap();
        if !found.status.success() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_reach_later_conditions_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - {id: produce, shell: 'echo 42 > \"$TESTKUBE_OUTPUTS/answer\"'}\n  - id: consume\n    condition: step.produce.outputs.answer == \"42\"\n    shell: 'test \"{{ step.produce.outputs.answer }}\" = 42'\n  - id: skipped\n    condition: step.produce.outputs.answer == \"7\"\n    shell: 'exit 1'\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(
            step(&summary, "produce")
                .outputs
                .get("answer")
                .map(String::as_str),
            Some("42")
        );
        assert_eq!(step(&summary, "consume").status, StepStatus::Passed);
        assert_eq!(step(&summary, "skipped").status, StepStatus::Skipped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_shards_run_each_worker_in_its_own_workspace() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - id: tests\n    parallel:\n      count: 3\n      shards: {item: [a, b, c, d, e]}\n      shell: 'echo {{ join(shard.item, \" \") }} > items'\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(summary.workers.len(), 4, "root and three workers");
        let items: Vec<String> = (0..3)
            .map(|index| {
                let path = executor
                    .workspace("exec", &format!("root/tests/{index}"))
                    .join("data/items");
                std::fs::read_to_string(path).unwrap().trim().to_owned()
            })
            .collect();
        assert_eq!(items, ["a b", "c d", "e"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_aborts_the_other_workers() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - id: tests\n    parallel:\n      count: 3\n      failFast: true\n      shell: 'if [ {{ index }} = 0 ]; then exit 1; fi; sleep 30'\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
        assert_eq!(step(&summary, "tests").status, StepStatus::Failed);
        let statuses: Vec<StepStatus> = summary.workers[1..].iter().map(|w| w.status).collect();
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StepStatus::Failed)
                .count(),
            1
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StepStatus::Aborted)
                .count(),
            2,
            "{summary:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_stops_the_running_step() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let yaml = workflow(
            "  steps:\n  - {id: slow, shell: 'sleep 30'}\n  - {id: next, shell: 'true'}\n",
        );
        let mut running = engine
            .start(plan(&yaml), ExecutionRequest::new("abort"))
            .unwrap();
        let canceller = running.canceller();
        let mut summary = None;
        while let Some(event) = running.next_event().await {
            match event {
                Event::Step { step, status, .. }
                    if step.id == "slow" && status == StepStatus::Running =>
                {
                    canceller.abort();
                }
                Event::Finished(done) => summary = Some(*done),
                _ => {}
            }
        }
        let summary = summary.unwrap();
        assert_eq!(summary.status, ExecutionStatus::Aborted);
        assert_eq!(step(&summary, "slow").status, StepStatus::Aborted);
        assert_eq!(step(&summary, "next").status, StepStatus::Skipped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_deadline_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  job: {activeDeadlineSeconds: 1}\n  steps:\n  - {id: slow, shell: 'sleep 30'}\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
        assert_eq!(step(&summary, "slow").status, StepStatus::Timeout);
        assert!(summary.message.unwrap().contains("activeDeadlineSeconds"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_features_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let executor = LocalExecutor::new(dir.path());
    let engine = Engine::new(Arc::new(executor));
    let marker = dir.path().join("ran");
    let yaml = workflow(&format!(
        "  steps:\n  - {{id: a, shell: 'touch {}'}}\n  - {{id: b, content: {{oci: {{image: 'registry.example/tests:1'}}}}, shell: 'true'}}\n  - {{id: c, execute: {{workflows: [{{name: other}}]}}}}\n",
        marker.display()
    ));
    let err = engine
        .start(plan(&yaml), ExecutionRequest::new("x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not supported yet: content.oci"), "{err}");
    assert!(err.contains("not supported yet: execute"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_content_files_are_written_before_the_step() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - id: a\n    content:\n      files:\n      - {path: /data/hello.sh, content: 'echo hi', mode: 493}\n    shell: './hello.sh'\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_mounts_the_workspace_and_keeps_the_host_read_only() {
    let dir = tempfile::tempdir().unwrap();
    // Bubblewrap's sandbox, and the one built without it: the same paths.
    for executor in sandboxes(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  content:\n    files: [{path: /data/in/given.txt, content: given}]\n  steps:\n  - id: probe\n    shell: 'test \"$PWD\" = /data && test \"$(cat in/given.txt)\" = given && touch /data/x /tmp/y && ! touch /usr/tkprobe 2>/dev/null && echo ok > /testkube/outputs/probe'\n  - id: nested\n    workingDir: /data/deep/er\n    shell: 'test \"$PWD\" = /data/deep/er && mkdir -p /data/out && echo done > /data/out/z'\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(
            step(&summary, "probe")
                .outputs
                .get("probe")
                .map(String::as_str),
            Some("ok")
        );
        let data = executor.workspace("exec", "root").join("data");
        assert!(data.join("x").is_file());
        assert!(data.join("out/z").is_file());
        assert!(!Path::new("/usr/tkprobe").exists());
    }
}

#[test]
fn without_bubblewrap_the_sandbox_is_built_with_user_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let executor = LocalExecutor::new(dir.path()).with_sandbox(Sandbox::Unshare);
    // Where the kernel refuses user namespaces the executor says why
    // instead of half-running workflows that write /data.
    match executor.ready() {
        Ok(()) => {
            assert!(executor.is_sandboxed());
            assert!(!executor.uses_bubblewrap());
        }
        Err(why) => assert!(why.contains("the default sandbox"), "{why}"),
    }
    let plain = LocalExecutor::new(dir.path()).with_sandbox(Sandbox::Off);
    assert_eq!(plain.ready(), Ok(()));
    assert!(!plain.is_sandboxed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_config_values_are_masked_in_logs_outputs_and_the_summary() {
    let secret = "tk-S3cr3t-value-42";
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: t}\nspec:\n  config:\n    token: {type: string, sensitive: true}\n  steps:\n  - id: produce\n    shell: |\n      echo \"token is {{ config.token }}\"\n      printf 'split tk-S3cr'; sleep 0.2; printf '3t-value-42 end\\n'\n      echo \"{{ config.token }}\" > \"$TESTKUBE_OUTPUTS/token\"\n  - id: consume\n    condition: step.produce.outputs.token == \"tk-S3cr3t-value-42\"\n    shell: 'echo \"again {{ step.produce.outputs.token }}\" >&2'\n";
    let file = testkube_core::load_file("test.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow")
    };
    let templates = TemplateSet::with_builtins().unwrap();
    let options = ResolveOptions::new().with_config("token", secret);
    let resolved = testkube_core::resolve_workflow(workflow, &templates, &options, None).unwrap();
    let secrets = testkube_core::engine::mask::sensitive_config_values(
        &resolved.workflow().spec.config,
        [("token", secret)],
    );
    assert_eq!(secrets, [secret]);
    let plan = testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let request = ExecutionRequest {
            secrets: secrets.clone(),
            ..ExecutionRequest::new("exec")
        };
        let mut running = engine.start(plan.clone(), request).unwrap();
        let mut logs = Vec::new();
        let mut seen = Vec::new();
        let mut summary = None;
        while let Some(event) = running.next_event().await {
            match &event {
                Event::Log { chunk, .. } => logs.extend_from_slice(chunk),
                Event::Finished(done) => {
                    seen.push(serde_json::to_string(done).unwrap());
                    summary = Some(done.clone());
                }
                _ => {}
            }
            seen.push(format!("{event:?}"));
        }
        let summary = summary.unwrap();
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(
            step(&summary, "consume").status,
            StepStatus::Passed,
            "the step got the real output value"
        );
        let logs = String::from_utf8_lossy(&logs);
        assert!(!logs.contains(secret), "{logs}");
        assert!(logs.contains("token is ********"), "{logs}");
        assert!(logs.contains("split ******** end"), "{logs}");
        assert!(logs.contains("again ********"), "{logs}");
        assert_eq!(step(&summary, "produce").outputs["token"], "********");
        for text in &seen {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

/// Every way a variable reaches a container: `global: true`, a template,
/// the workflow, a step override, `run.env`, a service, a parallel worker;
/// values that are templates themselves. Each step writes
/// `{{ env.X }}|$X` as output `X`.
const ENV_EVERY_WAY: &str = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowTemplate
metadata: {name: tools}
spec:
  container:
    env:
    - {name: FROM_TEMPLATE, value: template-value}
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: t}
spec:
  use: [{name: tools}]
  container:
    env:
    - {name: GLOBAL, value: global-value, global: true}
    - {name: WORKFLOW, value: 'workflow-{{ env.GLOBAL }}'}
    - {name: OVERRIDDEN, value: workflow}
  services:
    svc:
      env:
      - {name: FROM_SERVICE, value: 'service-{{ env.GLOBAL }}'}
      readinessProbe:
        exec: {command: [sh, -c, 'test "{{ env.FROM_SERVICE }}" = "$FROM_SERVICE" && test -s service-env']}
        periodSeconds: 1
      timeout: 30s
      shell: 'echo "{{ env.FROM_SERVICE }}|$FROM_SERVICE" > service-env; sleep 60'
  steps:
  - id: step
    container:
      env:
      - {name: OVERRIDDEN, value: 'step-{{ env.WORKFLOW }}'}
    shell: |
      echo "{{ env.GLOBAL }}|$GLOBAL" > "$TESTKUBE_OUTPUTS/GLOBAL"
      echo "{{ env.FROM_TEMPLATE }}|$FROM_TEMPLATE" > "$TESTKUBE_OUTPUTS/FROM_TEMPLATE"
      echo "{{ env.WORKFLOW }}|$WORKFLOW" > "$TESTKUBE_OUTPUTS/WORKFLOW"
      echo "{{ env.OVERRIDDEN }}|$OVERRIDDEN" > "$TESTKUBE_OUTPUTS/OVERRIDDEN"
      echo "{{ env.CI }}|$CI" > "$TESTKUBE_OUTPUTS/CI"
      echo "{{ env.TMPDIR == env['TMPDIR'] && env.TMPDIR }}|$TMPDIR" > "$TESTKUBE_OUTPUTS/TMPDIR"
  - id: run_env
    run:
      env:
      - {name: FROM_RUN, value: 'run-{{ env.OVERRIDDEN }}'}
      shell: 'echo "{{ env.FROM_RUN }}|$FROM_RUN" > "$TESTKUBE_OUTPUTS/FROM_RUN"'
  - id: service
    shell: 'cat service-env > "$TESTKUBE_OUTPUTS/FROM_SERVICE"'
  - id: workers
    parallel:
      count: 2
      container:
        env:
        - {name: FROM_WORKER, value: 'worker-{{ index }}'}
      shell: |
        echo "{{ env.FROM_WORKER }}|$FROM_WORKER" > "$TESTKUBE_OUTPUTS/FROM_WORKER"
        echo "{{ env.GLOBAL }}|$GLOBAL" > "$TESTKUBE_OUTPUTS/GLOBAL"
        echo "{{ env.WORKFLOW }}|$WORKFLOW" > "$TESTKUBE_OUTPUTS/WORKFLOW"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_expressions_equal_what_the_shell_sees() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(&executor, ENV_EVERY_WAY).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let output = |id: &str, key: &str| step(&summary, id).outputs[key].clone();
        let both = |value: &str| format!("{value}|{value}");
        assert_eq!(output("step", "GLOBAL"), both("global-value"));
        assert_eq!(output("step", "FROM_TEMPLATE"), both("template-value"));
        assert_eq!(output("step", "WORKFLOW"), both("workflow-global-value"));
        assert_eq!(
            output("step", "OVERRIDDEN"),
            both("step-workflow-global-value")
        );
        assert_eq!(output("step", "CI"), both("1"));
        let tmpdir = output("step", "TMPDIR");
        let (expression, shell) = tmpdir.split_once('|').unwrap();
        assert!(
            expression.ends_with("tmp") && expression == shell,
            "{tmpdir}"
        );
        assert_eq!(output("run_env", "FROM_RUN"), both("run-workflow"));
        assert_eq!(
            output("service", "FROM_SERVICE"),
            both("service-global-value")
        );
        // Workers get `global` variables only, and their own.
        let mut workers: Vec<_> = summary.workers[1..]
            .iter()
            .flat_map(|worker| &worker.steps)
            .filter(|step| step.outputs.contains_key("FROM_WORKER"))
            .map(|step| {
                (
                    step.outputs["FROM_WORKER"].clone(),
                    step.outputs["GLOBAL"].clone(),
                    step.outputs["WORKFLOW"].clone(),
                )
            })
            .collect();
        workers.sort();
        assert_eq!(
            workers,
            [0, 1].map(|index| (
                both(&format!("worker-{index}")),
                both("global-value"),
                "|".to_owned()
            ))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_values_that_fail_or_need_each_other_fail_the_step_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                "  steps:\n  - id: cycle\n    container:\n      env:\n      - {name: A, value: '{{ env.B }}'}\n      - {name: B, value: 'x{{ env.A }}'}\n    shell: 'echo never'\n  - id: judged\n    condition: always && env.BAD != \"\"\n    container:\n      env:\n      - {name: BAD, value: '{{ file(\"missing.txt\") }}'}\n    shell: 'echo never'\n",
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Failed);
        let message = step(&summary, "cycle").message.clone().unwrap_or_default();
        assert!(
            message.contains("env `A` depends on itself (A → B → A)"),
            "{message}"
        );
        // A condition that needs it fails too, instead of reading "" (and skipping).
        let judged = step(&summary, "judged");
        assert_eq!(judged.status, StepStatus::Failed);
        let message = judged.message.clone().unwrap_or_default();
        assert!(
            message.starts_with("env `BAD`: cannot evaluate"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_results_folders_exist_before_the_step_and_stay_for_later_steps() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                r#"  content:
    files:
    - {path: '{{ step.results }}/root.txt', content: 'of the root'}
  steps:
  - id: write
    shell: 'test -d "{{ step.results }}" && echo hello > "{{ step.results }}/greeting.txt"'
  - id: read
    shell: |
      test "$(cat '{{ step.write.results }}/greeting.txt')" = hello
      echo '{{ step.results }}' > "$TESTKUBE_OUTPUTS/own"
  - id: inside
    workingDir: '{{ step.results }}'
    shell: |
      pwd > "$TESTKUBE_OUTPUTS/pwd"
      echo '{{ step.results }}' > "$TESTKUBE_OUTPUTS/own"
"#,
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let own = &step(&summary, "read").outputs["own"];
        let expected = if executor.is_sandboxed() {
            "/data/.steps/read".to_owned()
        } else {
            let workspace = executor.workspace("exec", "root");
            format!(
                "{}/data/.steps/read",
                std::path::absolute(workspace).unwrap().display()
            )
        };
        assert_eq!(own, &expected);
        let inside = step(&summary, "inside");
        assert_eq!(inside.outputs["pwd"], inside.outputs["own"]);
        // Kept with the execution's files.
        let kept = executor.workspace("exec", "root").join("data/.steps");
        assert_eq!(
            std::fs::read_to_string(kept.join("write/greeting.txt")).unwrap(),
            "hello\n"
        );
        assert!(kept.join("inside").is_dir());
        assert_eq!(
            std::fs::read_to_string(kept.join("root/root.txt")).unwrap(),
            "of the root"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_and_retries_see_the_step_env() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let summary = run(
            &executor,
            &workflow(
                r#"  container:
    env:
    - {name: MODE, value: 'fast-{{ env.CI }}'}
  steps:
  - id: runs
    condition: env.MODE == "fast-1"
    shell: 'true'
  - id: skipped
    condition: env.MODE != "fast-1"
    shell: 'exit 1'
  - id: own
    optional: true
    container:
      env:
      - {name: ONLY_HERE, value: 'yes'}
    condition: env.ONLY_HERE == "yes"
    retry: {count: 2, until: 'env.ONLY_HERE == "yes"'}
    shell: 'exit 1'
"#,
            ),
        )
        .await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(step(&summary, "runs").status, StepStatus::Passed);
        assert_eq!(step(&summary, "skipped").status, StepStatus::Skipped);
        let own = step(&summary, "own");
        assert_eq!(own.status, StepStatus::Failed);
        assert_eq!(own.attempts, 1, "`until` held after the first attempt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_split_across_chunk_boundaries_are_masked() {
    // Several MiB in one burst: the runner reads them in chunks of at most MAX_LOG_CHUNK bytes,
    // and with 119-byte lines dozens of chunk boundaries fall inside a secret.
    let secret = "tk-S3cr3t-value-42";
    let filler = "x".repeat(100);
    let lines = 40_000;
    let yaml = workflow(&format!(
        "  steps:\n  - shell: \"yes '{filler}{secret}' | head -n {lines}\"\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let request = ExecutionRequest {
            secrets: vec![secret.to_owned()],
            ..ExecutionRequest::new("exec")
        };
        let mut running = engine.start(plan(&yaml), request).unwrap();
        let mut logs = Vec::new();
        let mut chunks = 0;
        while let Some(event) = running.next_event().await {
            match event {
                Event::Log { chunk, .. } => {
                    assert!(
                        chunk.len() <= 2 * testkube_core::store::MAX_LOG_CHUNK,
                        "log events come in bounded chunks, not {} bytes",
                        chunk.len()
                    );
                    logs.extend_from_slice(&chunk);
                    chunks += 1;
                }
                Event::Finished(summary) => {
                    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
                }
                _ => {}
            }
        }
        assert!(chunks > 10, "the output came in {chunks} chunks");
        let expected = format!("{filler}********\n").repeat(lines);
        assert!(
            logs == expected.as_bytes(),
            "every secret is masked and every other byte kept ({} bytes, {} expected)",
            logs.len(),
            expected.len()
        );
    }
}
