//! An agent killed mid-run (SIGKILL) and started again takes its runs over
//! where their Jobs are, every log line stored once; a Job deleted while it
//! was down ends its run `aborted` with what was stored; an agent stopped
//! (SIGTERM) aborts its runs before it exits.

use std::time::Duration;

use kube::api::{Api, DynamicObject};
use testkube_core::store::ResultStore;
use testkube_results::store::{DB_FILE, SqliteStore};

use super::{Setup, first_log_of, has_bwrap, logged, resource, stop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_step_and_restarted_finishes_the_run_with_every_line_once() {
    killed_and_restarted(
        concat!(
            "  - name: count\n",
            "    shell: for i in $(seq 1 40); do echo line-$i; sleep 0.1; done\n",
            "  - name: after\n",
            "    shell: echo after-the-restart\n",
        ),
        "line-5",
        &[("root", "line-", 40)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_while_a_parallel_block_runs_takes_its_workers_up_again() {
    killed_and_restarted(
        concat!(
            "  - name: before\n",
            "    shell: echo line-1\n",
            "  - name: fan\n",
            "    parallel:\n",
            "      count: 2\n",
            "      shell: for i in $(seq 1 30); do echo w{{ index }}-$i; sleep 0.1; done\n",
            "  - name: after\n",
            "    shell: echo after-the-restart\n",
        ),
        "w1-4",
        &[
            ("root", "line-", 1),
            ("root/fan/0", "w0-", 30),
            ("root/fan/1", "w1-", 30),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_while_the_agent_was_down_ends_its_run_aborted_with_what_was_stored() {
    stopped_mid_run(Stop::KillAndDeleteJob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_mid_run_aborts_the_run_before_it_exits() {
    stopped_mid_run(Stop::Term).await;
}

/// SIGKILLs the agent running a workflow with `steps` once `marker` is in
/// the store, starts it again on the same home, and checks that the run
/// passes with each worker's numbered lines (`(worker, prefix, count)`:
/// `prefix1` to `prefixN`) stored exactly once, in order.
async fn killed_and_restarted(steps: &str, marker: &str, expected: &[(&str, &str, usize)]) {
    if !has_bwrap() {
        return;
    }
    let setup = Setup::start().await;
    setup.workflow("counting", steps).await;
    let mut agent = setup.agent("victim").await;
    setup.run("counting-run", "counting").await;
    let home = agent.home.clone();
    let id = logged(&home, marker).await;
    agent.child.kill().expect("SIGKILL");
    agent.child.wait().expect("reaped");
    // The Jobs go on without an agent for a moment.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut again = setup.agent_at("victim", &home).await;
    let status = setup.passed("counting-run").await;
    assert_eq!(status["latestExecution"]["id"], id.as_str());

    let store = SqliteStore::open(&home.join(DB_FILE)).await.expect("store");
    let record = store.get_execution(&id).await.expect("recorded");
    assert_eq!(
        record.status,
        testkube_core::status::ExecutionStatus::Passed
    );
    let logs = store.logs(&id, &Default::default()).await.expect("logs");
    for (worker, prefix, count) in expected {
        let text: String = logs
            .iter()
            .filter(|chunk| chunk.worker == *worker)
            .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
            .collect();
        let numbers: Vec<usize> = text
            .lines()
            .filter_map(|line| line.strip_prefix(prefix)?.trim().parse().ok())
            .collect();
        assert_eq!(
            numbers,
            (1..=*count).collect::<Vec<_>>(),
            "worker {worker}: every line once, in order:\n{text}"
        );
    }
    let after: usize = logs
        .iter()
        .map(|chunk| {
            String::from_utf8_lossy(&chunk.data)
                .matches("after-the-restart")
                .count()
        })
        .sum();
    assert_eq!(after, 1, "the step after the restart ran once");
    let steps = store.steps(&id).await.expect("steps");
    assert!(
        steps.iter().all(|step| step.status.is_success()),
        "{steps:#?}"
    );

    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(setup.client.clone(), "default");
    let events = events
        .list(&Default::default())
        .await
        .expect("events")
        .items;
    assert!(
        events
            .iter()
            .any(|event| event.reason.as_deref() == Some("Resumed")
                && event.involved_object.name.as_deref() == Some("counting-run")),
        "{events:#?}"
    );
    setup.nothing_left("counting").await;
    assert!(stop(&mut again).await.success());
}

/// How the agent stops mid-run.
#[derive(PartialEq)]
enum Stop {
    /// SIGKILL, the run's Job deleted while it is down, started again.
    KillAndDeleteJob,
    /// SIGTERM, not started again.
    Term,
}

/// Stops the agent while a step runs (its first line stored) as `how`
/// says; the run must end `aborted` everywhere with nothing left.
async fn stopped_mid_run(how: Stop) {
    if !has_bwrap() {
        return;
    }
    let setup = Setup::start().await;
    setup
        .workflow(
            "slow",
            "  - name: wait\n    shell: echo before-the-kill; sleep 300\n",
        )
        .await;
    let mut agent = setup.agent("victim").await;
    setup.run("slow-run", "slow").await;
    // Killed once the step's first line is in the store.
    let home = agent.home.clone();
    let id = logged(&home, "before-the-kill").await;
    if how == Stop::Term {
        assert!(stop(&mut agent).await.success(), "a clean exit");
    } else {
        agent.child.kill().expect("SIGKILL");
        agent.child.wait().expect("reaped");
    }
    if how == Stop::KillAndDeleteJob {
        let jobs: Api<k8s_openapi::api::batch::v1::Job> =
            Api::namespaced(setup.client.clone(), "default");
        let selector = kube::api::ListParams::default().labels("testkube.io/workflow=slow");
        jobs.delete_collection(&kube::api::DeleteParams::background(), &selector)
            .await
            .expect("Job deleted");
    }

    // Started again on the same home (after a kill): the run, whose Job
    // is gone, ends aborted everywhere. After SIGTERM it already has.
    let again = match how {
        Stop::Term => None,
        _ => Some(setup.agent_at("victim", &home).await),
    };
    let executions: Api<DynamicObject> = Api::namespaced_with(
        setup.client.clone(),
        "default",
        &resource("TestWorkflowExecution", "testworkflowexecutions"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = executions.get("slow-run").await.expect("document").data["status"].clone();
        if status["latestExecution"]["result"]["status"] == "aborted" {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never aborted: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["latestExecution"]["id"], id.as_str());
    let store = SqliteStore::open(&home.join(DB_FILE)).await.expect("store");
    let record = store.get_execution(&id).await.expect("recorded");
    assert_eq!(
        record.status,
        testkube_core::status::ExecutionStatus::Aborted
    );
    assert_eq!(
        first_log_of(&home, "before-the-kill").await.as_deref(),
        Some(id.as_str()),
        "what was stored before the kill is kept"
    );
    let logs = store.logs(&id, &Default::default()).await.expect("logs");
    let text: String = logs
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect();
    assert_eq!(text.matches("before-the-kill").count(), 1, "{text}");
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(setup.client.clone(), "default");
    let events = events
        .list(&Default::default())
        .await
        .expect("events")
        .items;
    assert!(
        events.iter().any(|event| {
            event.reason.as_deref() == Some("Finished")
                && event.type_.as_deref() == Some("Warning")
                && event.involved_object.name.as_deref() == Some("slow-run")
        }),
        "{events:#?}"
    );
    setup.nothing_left("slow").await;
    if let Some(mut again) = again {
        assert!(stop(&mut again).await.success());
    }
}
