//! The summary a finished run prints: the verdict, the steps it lists (and
//! counts), parallel blocks by worker status, tests and failures, where the
//! files are and the commands that show more.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use testkube_core::engine::WorkerSummary;
use testkube_core::store::TestCaseStatus;

use super::Outcome;
use crate::commands::render::plural;
use crate::live::{seconds, status_word};
use crate::style::{self, paint};

/// The steps of `worker` (only the failed ones with `failed_only`), each
/// parallel block summed up under its step. `counts` gets the status of every
/// step line written, so the summary's totals are the lines it shows.
fn write_steps(
    out: &mut String,
    counts: &mut BTreeMap<&'static str, usize>,
    workers: &[WorkerSummary],
    worker: &WorkerSummary,
    indent: usize,
    failed_only: bool,
) {
    for step in worker.steps.iter().filter(|s| s.depth > 0) {
        let block = format!("{}/{}", worker.id, step.id);
        let has_workers = workers.iter().any(|w| {
            w.id.rsplit_once('/')
                .is_some_and(|(parent, _)| parent == block)
        });
        if failed_only && !step.status.is_failure() && !has_workers {
            continue;
        }
        *counts.entry(step.status.as_str()).or_default() += 1;
        let mut extra = Vec::new();
        if let Some(ms) = step.duration_ms {
            extra.push(seconds(ms));
        }
        match (&step.message, step.exit_code.filter(|code| *code != 0)) {
            (Some(message), _) if step.status.is_failure() => extra.push(message.clone()),
            (_, Some(code)) => extra.push(format!("exit {code}")),
            _ => {}
        }
        let _ = writeln!(
            out,
            "{}{} {}  {}",
            "  ".repeat(indent + step.depth - 1),
            status_word(step.status),
            style::short_name(step.name.as_deref().unwrap_or(&step.id)),
            paint(style::DIM, extra.join(", "))
        );
        if has_workers {
            write_block(out, counts, workers, &block, indent + step.depth);
        }
    }
}

/// One line for the workers of a parallel block (by status), then each
/// worker that did not pass with its failed steps.
fn write_block(
    out: &mut String,
    counts: &mut BTreeMap<&'static str, usize>,
    workers: &[WorkerSummary],
    block: &str,
    indent: usize,
) {
    let members: Vec<&WorkerSummary> = workers
        .iter()
        .filter(|w| {
            w.id.rsplit_once('/')
                .is_some_and(|(parent, _)| parent == block)
        })
        .collect();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for member in &members {
        *by_status.entry(member.status.as_str()).or_default() += 1;
    }
    let tally: Vec<String> = by_status
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let pad = "  ".repeat(indent);
    let _ = writeln!(
        out,
        "{pad}{} {}",
        paint(
            style::DIM,
            format!("{}:", plural(members.len(), "worker", "workers"))
        ),
        tally.join(", ")
    );
    for member in members.iter().filter(|w| w.status.is_failure()) {
        let about = member
            .description
            .as_deref()
            .map(|d| format!("  {}", paint(style::DIM, d)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{pad}{} worker {}{about}",
            status_word(member.status),
            member.id
        );
        write_steps(out, counts, workers, member, indent + 1, true);
    }
}

/// Prints the final summary.
pub(super) fn print_summary(outcome: &Outcome) {
    style::out(&summary_text(outcome));
}

/// The final summary: verdict, steps, tests, where the results are.
fn summary_text(outcome: &Outcome) -> String {
    let summary = &outcome.summary;
    let mut out = String::new();
    let verdict = match summary.status {
        status if status.is_passed() => paint(style::OK, status.as_str()),
        status => paint(style::ERROR, status.as_str()),
    };
    let _ = writeln!(
        out,
        "\n{} {} {verdict} in {}",
        paint(style::BOLD, "execution"),
        summary.name,
        seconds(summary.duration_ms)
    );
    if let Some(message) = &summary.message {
        let _ = writeln!(out, "  {message}");
    }
    let mut counts = BTreeMap::new();
    if let Some(init) = &summary.result.initialization {
        let _ = writeln!(out, "  {}", crate::live::initialization_line(init));
    }
    if let Some(root) = summary.workers.iter().find(|w| w.id == "root") {
        write_steps(&mut out, &mut counts, &summary.workers, root, 1, false);
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let _ = writeln!(
        out,
        "  {} {}",
        paint(style::BOLD, "steps:"),
        if counts.is_empty() {
            "none ran".to_owned()
        } else {
            counts.join(", ")
        }
    );
    let tests = &summary.tests;
    if tests.tests > 0 {
        let mut parts = vec![paint(style::OK, format!("{} passed", tests.passed))];
        let failed = tests.failed + tests.errored;
        if failed > 0 {
            parts.push(paint(style::ERROR, format!("{failed} failed")));
        }
        if tests.skipped > 0 {
            parts.push(format!("{} skipped", tests.skipped));
        }
        if tests.flaky > 0 {
            parts.push(paint(style::WARN, format!("{} flaky", tests.flaky)));
        }
        let _ = writeln!(
            out,
            "  {} {} ({} in total)",
            paint(style::BOLD, "tests:"),
            parts.join(", "),
            tests.tests
        );
        for case in &tests.failures {
            let name = match &case.class {
                Some(class) if !class.is_empty() => format!("{class}::{}", case.name),
                _ => case.name.clone(),
            };
            let why = case
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(|m| format!("  {}", paint(style::DIM, m)))
                .unwrap_or_default();
            let place = if case.worker == "root" || case.worker.is_empty() {
                String::new()
            } else {
                paint(style::DIM, format!(" [{}]", case.worker))
            };
            let word = if case.status == TestCaseStatus::Errored {
                "errored"
            } else {
                "failed"
            };
            let _ = writeln!(
                out,
                "    {} {name}{place}{why}",
                paint(style::ERROR, format!("{word:<8}"))
            );
        }
        let listed = tests.failures.len() as u64;
        if failed > listed {
            let _ = writeln!(out, "    ... and {} more", failed - listed);
        }
    }
    // Workers that ran elsewhere (`--on kubernetes`) leave no files here
    // (at most the emptied folder of the run's control socket).
    let folder = crate::home::runs().join(&summary.id);
    if std::fs::read_dir(&folder).is_ok_and(|mut entries| entries.next().is_some()) {
        let _ = writeln!(
            out,
            "  {} {}",
            paint(style::BOLD, "files:"),
            folder.display()
        );
    }
    if outcome.artifacts > 0 {
        let _ = writeln!(
            out,
            "  {} {} {} in {}  ·  {}",
            paint(style::BOLD, "artifacts:"),
            outcome.artifacts,
            plural(outcome.artifacts, "file", "files"),
            outcome.artifacts_dir,
            crate::home::command(&format!("artifacts {}", summary.name))
        );
    }
    if outcome.recorded {
        let _ = writeln!(
            out,
            "  {} {}  ·  {}",
            paint(style::BOLD, "details:"),
            crate::home::command(&format!("get execution {}", summary.name)),
            crate::home::command(&format!("logs {}", summary.name)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkube_core::engine::ExecutionSummary;
    use testkube_core::status::ExecutionStatus;
    use testkube_core::store::TestCaseRecord;

    #[test]
    fn the_summary_lists_test_totals_failures_and_where_results_are() {
        let failure = TestCaseRecord {
            worker: "root/tests/1".to_owned(),
            suite: "suite".to_owned(),
            class: Some("pkg.Api".to_owned()),
            name: "test_login".to_owned(),
            file: None,
            status: TestCaseStatus::Failed,
            duration_secs: Some(1.0),
            message: Some("expected 200\ngot 500".to_owned()),
        };
        let tests = testkube_core::engine::TestTotals {
            tests: 12,
            passed: 9,
            failed: 1,
            errored: 0,
            skipped: 1,
            flaky: 1,
            failures: vec![failure.clone()],
        };
        let summary = ExecutionSummary {
            id: "wf-123".to_owned(),
            name: "wf-3".to_owned(),
            workflow: "wf".to_owned(),
            status: ExecutionStatus::Failed,
            message: None,
            started_at: String::new(),
            finished_at: String::new(),
            duration_ms: 2500,
            workers: Vec::new(),
            tests,
            result: testkube_core::model::ExecutionResult::default(),
        };
        let outcome = Outcome {
            summary,
            cases: vec![failure],
            artifacts: 2,
            artifacts_dir: "home/runs/wf-123/artifacts".into(),
            recorded: true,
        };
        let text = anstream::adapter::strip_str(&summary_text(&outcome)).to_string();
        assert!(text.contains("execution wf-3 failed in 2.5s"), "{text}");
        assert!(
            text.contains("tests: 9 passed, 1 failed, 1 skipped, 1 flaky (12 in total)"),
            "{text}"
        );
        assert!(
            text.contains("failed   pkg.Api::test_login [root/tests/1]  expected 200"),
            "{text}"
        );
        assert!(!text.contains("got 500"), "only the first line: {text}");
        assert!(text.contains("runs/wf-123"), "{text}");
        assert!(
            text.contains(
                "artifacts: 2 files in home/runs/wf-123/artifacts  ·  testkube artifacts wf-3"
            ),
            "{text}"
        );
        assert!(text.contains("testkube logs wf-3"), "{text}");
    }
}
