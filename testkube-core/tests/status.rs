//! The status rules of SPEC.md ("Statuses", "Step", group results) and the
//! run-time behaviour of conditions, retries and timeouts, one test per rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use testkube_core::expr::{Expr, MapContext};
use testkube_core::plan::PlanRetry;
use testkube_core::status::{
    Attempt, ChildVerdict, CommandOutcome, ConditionError, ExecutionStatus, Interruption,
    RetryDecision, RetryPolicy, StatusContext, StepStatus, StopReason, group_status, leaf_status,
};

use StepStatus::{Aborted, Canceled, Failed, Passed, Paused, Queued, Running, Skipped, Timeout};

fn required(status: StepStatus) -> ChildVerdict {
    ChildVerdict::required(status)
}

fn optional(status: StepStatus) -> ChildVerdict {
    ChildVerdict::optional(status)
}

// ---------------------------------------------------------------- statuses

#[test]
fn execution_statuses_have_the_format_names() {
    let names: Vec<String> = ExecutionStatus::ALL
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "queued",
            "assigned",
            "starting",
            "scheduling",
            "running",
            "pausing",
            "paused",
            "resuming",
            "passed",
            "failed",
            "stopping",
            "aborted",
            "canceled"
        ]
    );
    for status in ExecutionStatus::ALL {
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{status}\""));
        assert_eq!(
            serde_json::from_str::<ExecutionStatus>(&json).unwrap(),
            status
        );
    }
}

#[test]
fn step_statuses_have_the_format_names() {
    let names: Vec<String> = StepStatus::ALL
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "queued", "running", "paused", "passed", "failed", "timeout", "skipped", "aborted",
            "canceled"
        ]
    );
    for status in StepStatus::ALL {
        assert_eq!(status.to_string().parse::<StepStatus>(), Ok(status));
    }
    assert!(serde_json::from_str::<StepStatus>("\"success\"").is_err());
}

#[test]
fn execution_is_finished_once_passed_failed_aborted_or_canceled() {
    let finished: Vec<ExecutionStatus> = ExecutionStatus::ALL
        .into_iter()
        .filter(|s| s.is_finished())
        .collect();
    assert_eq!(
        finished,
        [
            ExecutionStatus::Passed,
            ExecutionStatus::Failed,
            ExecutionStatus::Aborted,
            ExecutionStatus::Canceled
        ]
    );
    assert!(!ExecutionStatus::Stopping.is_not_passed());
    assert!(ExecutionStatus::Aborted.is_not_passed());
    assert!(!ExecutionStatus::Passed.is_not_passed());
}

#[test]
fn step_is_finished_unless_queued_running_or_paused() {
    for status in StepStatus::ALL {
        let live = matches!(status, Queued | Running | Paused);
        assert_eq!(status.is_finished(), !live, "{status}");
    }
}

#[test]
fn skipped_step_is_a_success_but_not_passed() {
    assert!(Skipped.is_success());
    assert!(!Skipped.is_passed());
    assert!(!Skipped.is_failure());
    for failure in [Failed, Timeout, Aborted, Canceled] {
        assert!(failure.is_failure(), "{failure}");
        assert!(!failure.is_success(), "{failure}");
    }
}

// ----------------------------------------------------------- group verdict

#[test]
fn group_passes_when_every_required_child_passed() {
    assert_eq!(
        group_status(false, [required(Passed), required(Passed)]),
        Passed
    );
}

#[test]
fn group_fails_when_a_required_child_failed() {
    assert_eq!(
        group_status(false, [required(Passed), required(Failed)]),
        Failed
    );
}

#[test]
fn optional_child_failure_does_not_fail_the_group() {
    assert_eq!(
        group_status(false, [required(Passed), optional(Failed)]),
        Passed
    );
    assert_eq!(group_status(false, [optional(Timeout)]), Passed);
}

#[test]
fn skipped_children_do_not_fail_the_group() {
    assert_eq!(
        group_status(false, [required(Passed), required(Skipped)]),
        Passed
    );
    assert_eq!(
        group_status(false, [required(Skipped), required(Skipped)]),
        Passed
    );
}

#[test]
fn group_with_no_required_children_passes() {
    assert_eq!(group_status(false, []), Passed);
    assert_eq!(
        group_status(false, [optional(Failed), optional(Passed)]),
        Passed
    );
}

#[test]
fn negative_group_with_no_required_children_fails() {
    assert_eq!(group_status(true, []), Failed);
    assert_eq!(group_status(true, [optional(Failed)]), Failed);
}

#[test]
fn negative_group_passes_when_a_required_child_failed() {
    assert_eq!(
        group_status(true, [required(Passed), required(Failed)]),
        Passed
    );
}

#[test]
fn negative_group_fails_when_every_required_child_passed() {
    assert_eq!(
        group_status(true, [required(Passed), required(Skipped)]),
        Failed
    );
}

#[test]
fn negative_group_ignores_optional_failures() {
    assert_eq!(
        group_status(true, [required(Passed), optional(Failed)]),
        Failed
    );
}

#[test]
fn timed_out_required_child_fails_its_group() {
    assert_eq!(
        group_status(false, [required(Passed), required(Timeout)]),
        Failed
    );
    assert_eq!(group_status(true, [required(Timeout)]), Passed);
}

#[test]
fn aborted_child_aborts_its_group_even_when_optional_or_negative() {
    assert_eq!(
        group_status(false, [required(Passed), optional(Aborted)]),
        Aborted
    );
    assert_eq!(group_status(true, [required(Aborted)]), Aborted);
    assert_eq!(
        group_status(false, [required(Failed), required(Aborted)]),
        Aborted
    );
}

#[test]
fn canceled_child_cancels_its_group() {
    assert_eq!(
        group_status(false, [required(Passed), required(Canceled)]),
        Canceled
    );
}

#[test]
fn execution_verdict_comes_from_the_root_group() {
    let table = [
        (Passed, ExecutionStatus::Passed),
        (Skipped, ExecutionStatus::Passed),
        (Failed, ExecutionStatus::Failed),
        (Timeout, ExecutionStatus::Failed),
        (Aborted, ExecutionStatus::Aborted),
        (Canceled, ExecutionStatus::Canceled),
        (Queued, ExecutionStatus::Queued),
        (Running, ExecutionStatus::Running),
        (Paused, ExecutionStatus::Paused),
    ];
    for (root, expected) in table {
        assert_eq!(ExecutionStatus::from_root(root), expected, "root {root}");
    }
}

// ----------------------------------------------------------- leaf verdict

#[test]
fn step_passes_on_exit_code_zero_and_fails_otherwise() {
    assert_eq!(
        leaf_status(CommandOutcome::Exited { code: 0 }, false),
        Passed
    );
    assert_eq!(
        leaf_status(CommandOutcome::Exited { code: 2 }, false),
        Failed
    );
}

#[test]
fn negative_step_passes_when_its_command_fails() {
    assert_eq!(
        leaf_status(CommandOutcome::Exited { code: 1 }, true),
        Passed
    );
    assert_eq!(
        leaf_status(CommandOutcome::Exited { code: 0 }, true),
        Failed
    );
}

#[test]
fn negative_does_not_turn_a_timeout_or_abort_into_a_pass() {
    assert_eq!(leaf_status(CommandOutcome::TimedOut, true), Timeout);
    assert_eq!(leaf_status(CommandOutcome::Aborted, true), Aborted);
    assert_eq!(leaf_status(CommandOutcome::Canceled, true), Canceled);
}

// ------------------------------------------------------- timeouts & limits

#[test]
fn step_timeout_ends_started_steps_timeout_and_queued_ones_skipped() {
    let t = Interruption::Timeout;
    assert_eq!(t.step_status(Running), Timeout);
    assert_eq!(t.step_status(Paused), Timeout);
    assert_eq!(t.step_status(Queued), Skipped);
    assert_eq!(t.step_status(Passed), Passed);
    assert_eq!(t.execution_status(), None);
}

#[test]
fn timed_out_step_counts_as_a_failure_for_its_group() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    ctx.finish("slow", Interruption::Timeout.step_status(Running), false);
    assert_eq!(ctx.should_run("next", "passed"), Ok(false));
    assert_eq!(ctx.leave(false), Some(Failed));
}

#[test]
fn active_deadline_ends_the_execution_failed() {
    let d = Interruption::Deadline;
    assert_eq!(d.step_status(Running), Timeout);
    assert_eq!(d.step_status(Queued), Skipped);
    assert_eq!(d.execution_status(), Some(ExecutionStatus::Failed));
    // The same verdict as the root group gives: a timed-out child fails it.
    let root = group_status(false, [required(Passed), required(d.step_status(Running))]);
    assert_eq!(ExecutionStatus::from_root(root), ExecutionStatus::Failed);
}

#[test]
fn abort_ends_running_steps_aborted_and_the_execution_aborted() {
    let a = Interruption::Abort;
    assert_eq!(a.step_status(Running), Aborted);
    assert_eq!(a.step_status(Queued), Skipped);
    assert_eq!(a.execution_status(), Some(ExecutionStatus::Aborted));
    let root = group_status(false, [required(Passed), required(a.step_status(Running))]);
    assert_eq!(ExecutionStatus::from_root(root), ExecutionStatus::Aborted);
}

#[test]
fn cancel_ends_running_steps_canceled_and_the_execution_canceled() {
    let c = Interruption::Cancel;
    assert_eq!(c.step_status(Paused), Canceled);
    assert_eq!(c.execution_status(), Some(ExecutionStatus::Canceled));
}

// -------------------------------------------------------------- conditions

#[test]
fn default_condition_runs_a_step_only_while_everything_before_passed() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    assert_eq!(ctx.should_run("a", ""), Ok(true));
    ctx.finish("a", Passed, false);
    assert_eq!(ctx.should_run("b", "passed"), Ok(true));
    ctx.finish("b", Failed, false);
    assert_eq!(ctx.should_run("c", ""), Ok(false));
}

#[test]
fn after_steps_need_condition_always_to_run_after_a_failure() {
    // setup, steps and after are one group.
    let mut ctx = StatusContext::new();
    ctx.enter();
    ctx.finish("setup_db", Passed, false);
    ctx.finish("tests", Failed, false);
    assert_eq!(ctx.should_run("report", "passed"), Ok(false));
    ctx.finish("report", Skipped, false);
    assert_eq!(ctx.should_run("cleanup", "always"), Ok(true));
    ctx.finish("cleanup", Passed, false);
    let root = ctx.leave(false);
    assert_eq!(root, Some(Failed));
}

#[test]
fn passed_is_the_status_of_the_enclosing_groups_so_far() {
    let mut ctx = StatusContext::new();
    ctx.enter(); // root
    ctx.finish("lint", Failed, false);
    ctx.enter(); // a group with `condition: always`
    // Inside, `passed` still sees the earlier failure of the root.
    assert_eq!(ctx.should_run("inner", "passed"), Ok(false));
    assert_eq!(ctx.should_run("inner", "failed"), Ok(true));
    ctx.finish("inner", Skipped, false);
    let group = ctx.leave(false).unwrap();
    assert_eq!(group, Passed);
    ctx.finish("group", group, false);
    assert_eq!(ctx.should_run("last", "passed"), Ok(false));
}

#[test]
fn failure_inside_a_group_is_seen_after_the_group_ends() {
    let mut ctx = StatusContext::new();
    ctx.enter(); // root
    ctx.enter(); // group
    ctx.finish("x", Failed, false);
    assert_eq!(ctx.should_run("y", "passed"), Ok(false));
    ctx.finish("y", Skipped, false);
    let group = ctx.leave(false).unwrap();
    // Back in the root, the group is not finished yet: nothing failed here.
    assert!(ctx.passed());
    ctx.finish("group", group, false);
    assert!(!ctx.passed());
    assert_eq!(ctx.should_run("z", "failed"), Ok(true));
}

#[test]
fn failure_of_a_negative_group_child_is_undone_by_the_group_result() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    ctx.enter();
    ctx.finish("expected_crash", Failed, false);
    let group = ctx.leave(true).unwrap();
    assert_eq!(group, Passed);
    ctx.finish("must_fail", group, false);
    assert_eq!(ctx.should_run("next", "passed"), Ok(true));
}

#[test]
fn optional_step_failure_keeps_passed_true() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    ctx.finish("flaky", Failed, true);
    assert_eq!(ctx.should_run("next", "passed"), Ok(true));
    assert_eq!(ctx.should_run("next", "flaky"), Ok(false));
    assert_eq!(ctx.leave(false), Some(Passed));
}

#[test]
fn skipped_step_keeps_passed_true() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    ctx.finish("only_on_main", Skipped, false);
    assert_eq!(ctx.should_run("next", "passed"), Ok(true));
    assert_eq!(ctx.should_run("next", "only_on_main"), Ok(true));
}

#[test]
fn step_id_is_true_when_that_step_passed_or_was_skipped() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    for (id, status) in [
        ("p", Passed),
        ("s", Skipped),
        ("f", Failed),
        ("t", Timeout),
        ("a", Aborted),
    ] {
        ctx.finish(id, status, true);
    }
    let expected = [
        ("p", true),
        ("s", true),
        ("f", false),
        ("t", false),
        ("a", false),
    ];
    for (id, value) in expected {
        assert_eq!(ctx.should_run("x", id), Ok(value), "{id}");
    }
}

#[test]
fn step_id_of_a_step_that_has_not_run_yet_is_true() {
    let mut ctx = StatusContext::new();
    ctx.declare("later");
    assert_eq!(ctx.should_run("x", "later"), Ok(true));
}

#[test]
fn unknown_variable_in_a_condition_is_an_error_not_false() {
    let ctx = StatusContext::new();
    let err = ctx.should_run("x", "no_such_step").unwrap_err();
    assert!(matches!(err, ConditionError::Evaluation { .. }), "{err}");
    assert!(err.to_string().contains("no_such_step"), "{err}");
    let err = ctx.should_run("x", "passed &&").unwrap_err();
    assert!(matches!(err, ConditionError::Syntax { .. }), "{err}");
}

#[test]
fn status_is_passed_or_failed_at_the_current_point() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    assert_eq!(ctx.should_run("a", "status == 'passed'"), Ok(true));
    ctx.finish("a", Timeout, false);
    assert_eq!(ctx.should_run("b", "status == 'failed'"), Ok(true));
    assert_eq!(ctx.should_run("b", "error"), Ok(true));
    assert_eq!(ctx.should_run("b", "success"), Ok(false));
}

#[test]
fn outputs_of_finished_steps_are_visible_to_later_conditions() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    let outputs = BTreeMap::from([("version".to_owned(), "1.2".to_owned())]);
    ctx.record_attempt("build", Some(0), outputs);
    ctx.finish("build", Passed, false);
    assert_eq!(
        ctx.should_run("d", "step.build.outputs.version == '1.2'"),
        Ok(true)
    );
    assert_eq!(
        ctx.should_run("d", "step.build.status == 'passed'"),
        Ok(true)
    );
    assert_eq!(ctx.should_run("d", "step.build.exitCode == 0"), Ok(true));
    // Templates see the same values through the Context implementation.
    let value = Expr::parse("step.build.outputs.version")
        .unwrap()
        .resolve(&ctx);
    assert_eq!(value, Ok(json!("1.2")));
}

#[test]
fn a_later_attempt_replaces_the_outputs_of_an_earlier_one_and_missing_outputs_are_errors() {
    let mut ctx = StatusContext::new();
    let first = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
    ctx.record_attempt("s", Some(1), first);
    ctx.record_attempt("s", Some(0), BTreeMap::new());
    let expr = Expr::parse("step.s.outputs.a").unwrap();
    assert!(expr.resolve(&ctx).is_err());
    assert_eq!(
        Expr::parse("step.s.exitCode").unwrap().resolve(&ctx),
        Ok(json!(0))
    );
}

#[test]
fn step_results_points_at_the_step_results_folder() {
    let mut ctx = StatusContext::new().with_results_base("/ws/.steps");
    ctx.declare("junit");
    assert_eq!(
        ctx.should_run("junit", "step.results == '/ws/.steps/junit'"),
        Ok(true)
    );
    assert_eq!(
        ctx.should_run("other", "step.junit.results == '/ws/.steps/junit'"),
        Ok(true)
    );
}

#[test]
fn other_variables_come_from_the_parent_context() {
    let parent = MapContext::new()
        .with("config", json!({"smoke": true}))
        .with("env.CI", json!("1"));
    let mut ctx = StatusContext::new().with_parent(Arc::new(parent));
    ctx.enter();
    assert_eq!(ctx.should_run("x", "passed && config.smoke"), Ok(true));
    assert_eq!(ctx.should_run("x", "env.CI == '1'"), Ok(true));
}

#[test]
fn conditions_table() {
    let mut ctx = StatusContext::new();
    ctx.declare("later");
    ctx.enter();
    let outputs = BTreeMap::from([("version".to_owned(), "1.2".to_owned())]);
    ctx.record_attempt("build", Some(0), outputs);
    ctx.finish("build", Passed, false);
    ctx.finish("step_a", Passed, false);
    ctx.finish("lint", Failed, true);
    ctx.finish("unit", Failed, false);
    ctx.finish("e2e", Skipped, false);

    let table = [
        ("passed", false),
        ("success", false),
        ("failed", true),
        ("error", true),
        ("always", true),
        ("never", false),
        ("", false),
        ("failed && step_a", true),
        ("failed && lint", false),
        ("passed || build", true),
        ("!unit", true),
        ("e2e", true),
        ("later", true),
        ("step.build.outputs.version == \"1.2\"", true),
        ("step.build.outputs.version == '1.3'", false),
        ("step.unit.status", true),
        ("step.lint.status == 'failed'", true),
        ("status", true),
        ("status == 'failed' ? 'yes' : ''", true),
        ("always && !never", true),
        ("0", false),
        ("'false'", false),
    ];
    for (condition, expected) in table {
        assert_eq!(
            ctx.should_run("x", condition),
            Ok(expected),
            "`{condition}`"
        );
    }
}

// ----------------------------------------------------------------- retries

fn attempt(number: u32, status: StepStatus) -> Attempt {
    Attempt {
        number,
        status,
        stopped_by_parent: false,
    }
}

#[test]
fn retry_until_defaults_to_passed() {
    let ctx = StatusContext::new();
    let policy = RetryPolicy::new(3, "");
    assert_eq!(
        ctx.retry_decision("s", &policy, &attempt(1, Passed)),
        Ok(RetryDecision::Stop(StopReason::UntilMet))
    );
    assert_eq!(
        ctx.retry_decision("s", &policy, &attempt(1, Failed)),
        Ok(RetryDecision::Retry { next_attempt: 2 })
    );
}

#[test]
fn retry_count_is_the_number_of_retries_after_the_first_attempt() {
    let ctx = StatusContext::new();
    let policy = RetryPolicy::new(2, "passed");
    let mut attempts = 0;
    let mut number = 1;
    loop {
        attempts += 1;
        match ctx.retry_decision("s", &policy, &attempt(number, Failed)) {
            Ok(RetryDecision::Retry { next_attempt }) => number = next_attempt,
            Ok(RetryDecision::Stop(reason)) => {
                assert_eq!(reason, StopReason::Exhausted);
                break;
            }
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(attempts, 3);
}

#[test]
fn retry_until_sees_the_attempt_not_the_sequence() {
    let mut ctx = StatusContext::new();
    ctx.enter();
    ctx.finish("earlier", Failed, false);
    // The sequence has failed, but `passed` in `until` is about the attempt.
    let policy = RetryPolicy::new(5, "passed");
    assert_eq!(
        ctx.retry_decision("s", &policy, &attempt(1, Passed)),
        Ok(RetryDecision::Stop(StopReason::UntilMet))
    );
    let policy = RetryPolicy::new(5, "self.failed");
    assert_eq!(
        ctx.retry_decision("s", &policy, &attempt(1, Passed)),
        Ok(RetryDecision::Retry { next_attempt: 2 })
    );
    let policy = RetryPolicy::new(5, "status == 'timeout'");
    assert_eq!(
        ctx.retry_decision("s", &policy, &attempt(2, Timeout)),
        Ok(RetryDecision::Stop(StopReason::UntilMet))
    );
}

#[test]
fn retry_until_can_read_the_attempt_outputs() {
    let mut ctx = StatusContext::new();
    let outputs = BTreeMap::from([("ready".to_owned(), "yes".to_owned())]);
    ctx.record_attempt("poll", Some(0), outputs);
    let policy = RetryPolicy::new(10, "step.poll.outputs.ready == 'yes'");
    assert_eq!(
        ctx.retry_decision("poll", &policy, &attempt(1, Passed)),
        Ok(RetryDecision::Stop(StopReason::UntilMet))
    );
}

#[test]
fn own_timeout_is_retried_but_a_parent_timeout_is_not() {
    let ctx = StatusContext::new();
    let policy = RetryPolicy::new(2, "passed");
    assert_eq!(
        ctx.retry_decision("s", &policy, &attempt(1, Timeout)),
        Ok(RetryDecision::Retry { next_attempt: 2 })
    );
    let by_parent = Attempt {
        number: 1,
        status: Timeout,
        stopped_by_parent: true,
    };
    assert_eq!(
        ctx.retry_decision("s", &policy, &by_parent),
        Ok(RetryDecision::Stop(StopReason::Interrupted))
    );
}

#[test]
fn aborted_or_canceled_attempt_is_never_retried() {
    let ctx = StatusContext::new();
    let policy = RetryPolicy::new(5, "passed");
    for status in [Aborted, Canceled] {
        assert_eq!(
            ctx.retry_decision("s", &policy, &attempt(1, status)),
            Ok(RetryDecision::Stop(StopReason::Interrupted))
        );
    }
}

#[test]
fn retry_count_can_be_an_expression_decided_at_run_time() {
    let parent = MapContext::new().with("config", json!({"retries": 4}));
    let ctx = StatusContext::new().with_parent(Arc::new(parent));
    let plan = PlanRetry {
        count: json!("config.retries - 1"),
        until: "passed".to_owned(),
    };
    assert_eq!(
        RetryPolicy::from_plan(&plan, &ctx),
        Ok(RetryPolicy::new(3, "passed"))
    );
    let plan = PlanRetry {
        count: json!(2),
        until: "self.passed".to_owned(),
    };
    assert_eq!(
        RetryPolicy::from_plan(&plan, &ctx),
        Ok(RetryPolicy::new(2, "self.passed"))
    );
    let bad = PlanRetry {
        count: json!("1.5"),
        until: "passed".to_owned(),
    };
    assert!(matches!(
        RetryPolicy::from_plan(&bad, &ctx),
        Err(ConditionError::RetryCount { .. })
    ));
}
