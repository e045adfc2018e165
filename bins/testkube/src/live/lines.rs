//! One line of text per event, shared by both views, the run summary and
//! `get execution`: a step's or worker's status change, a child execution,
//! the initialization, log lines prefixed by worker.

use std::fmt::Write as _;
use std::time::Duration;

use testkube_core::engine::{Event, StepDetail, StepRef, WorkerId};
use testkube_core::model::StepResult;
use testkube_core::status::StepStatus;

use crate::style::{self, paint};

/// A step's status change as one line.
pub(crate) fn step_line(
    worker: &WorkerId,
    step: &StepRef,
    status: StepStatus,
    detail: &StepDetail,
    elapsed: Option<Duration>,
) -> String {
    let place = if worker.number == 0 {
        String::new()
    } else {
        paint(style::DIM, format!("[{worker}] "))
    };
    let indent = "  ".repeat(step.depth.saturating_sub(1));
    let mut extra = Vec::new();
    if status.is_finished()
        && let Some(elapsed) = elapsed
    {
        extra.push(seconds(elapsed.as_millis() as u64));
    }
    if status == StepStatus::Running && detail.attempt > 1 {
        extra.push(format!("attempt {}", detail.attempt));
    }
    if status.is_finished()
        && let Some(message) = &detail.message
    {
        extra.push(message.clone());
    }
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("  {}", paint(style::DIM, extra.join(", ")))
    };
    format!(
        "{} {place}{indent}{}{extra}",
        status_word(status),
        style::short_name(step.label())
    )
}

pub(super) fn worker_line(
    worker: &WorkerId,
    status: StepStatus,
    description: Option<&str>,
) -> String {
    let about = description
        .map(|d| format!("  {}", paint(style::DIM, d)))
        .unwrap_or_default();
    format!("{} worker {worker}{about}", status_word(status))
}

/// Log bytes as lines prefixed by their worker.
pub(super) fn log_lines(worker: &WorkerId, chunk: &[u8]) -> String {
    let text = String::from_utf8_lossy(chunk);
    let prefix = paint(style::DIM, format!("{worker} |"));
    let mut out = String::new();
    for line in text.lines() {
        let _ = writeln!(out, "{prefix} {line}");
    }
    out
}

/// The status as a fixed-width, coloured word.
pub(crate) fn status_word(status: StepStatus) -> String {
    let colour = match status {
        StepStatus::Passed => style::OK,
        StepStatus::Running => style::ACCENT,
        status if status.is_failure() => style::ERROR,
        _ => style::DIM,
    };
    paint(colour, format!("{:<8}", status.as_str()))
}

/// How the run's initialization (workspace, the workflow's `content`) went,
/// as a step line: `failed   initialization  0.1s, cannot clone ...`.
pub(crate) fn initialization_line(init: &StepResult) -> String {
    let mut extra = Vec::new();
    if let Some(duration) = init.duration() {
        extra.push(seconds(
            u64::try_from(duration.num_milliseconds()).unwrap_or(0),
        ));
    }
    // A multi-line message (git's stderr) stays under the line it belongs to.
    extra.extend(
        init.error_message
            .as_ref()
            .map(|message| message.trim_end().replace('\n', "\n      ")),
    );
    format!(
        "{} initialization  {}",
        status_word(init.status),
        paint(style::DIM, extra.join(", "))
    )
}

/// The line of a failed initialization event (a passed one shows in the summary).
pub(super) fn failed_initialization(event: &Event) -> Option<String> {
    match event {
        Event::Initialization {
            worker,
            status,
            message,
            ..
        } if worker.number == 0 && status.is_failure() => Some(initialization_line(&StepResult {
            status: *status,
            error_message: message.clone(),
            queued_at: None,
            started_at: None,
            finished_at: None,
        })),
        _ => None,
    }
}

/// Milliseconds as seconds with one decimal (`1.5s`).
pub(crate) fn seconds(millis: u64) -> String {
    format!("{:.1}s", millis as f64 / 1000.0)
}

/// A child execution of an `execute` step started or ended.
pub(super) fn child_line(child: &testkube_core::engine::ChildRecord) -> String {
    let name = if child.name.is_empty() {
        child.workflow.as_str()
    } else {
        child.name.as_str()
    };
    let hint = if child.status.is_finished() && !child.id.is_empty() {
        paint(
            style::DIM,
            format!(
                "  {}",
                crate::home::command(&format!("get execution {name}"))
            ),
        )
    } else {
        String::new()
    };
    format!("{} child {name}{hint}", status_word(child.status))
}
