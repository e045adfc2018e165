//! What `testkube run` shows while a run goes: the engine's events turned
//! into text.
//!
//! Two views, because people and CI logs need different things:
//!
//! - [`View::live`], in a terminal: finished steps scroll up as one line each
//!   (status, name, time), the running steps stay at the bottom with a
//!   spinner, their elapsed time and the last lines they printed; each
//!   `parallel` block is one progress bar (workers done / total, failures)
//!   rather than hundreds of lines. Workers that fail get a line of their
//!   own. Built on indicatif, like cargo and nextest.
//! - [`View::lines`], everywhere else (pipes, CI, tests, `-o json`): one
//!   plain line per status change, nothing redrawn, so logs read top to
//!   bottom and diff cleanly.
//!
//! With `--logs` both print every line the steps write, prefixed by the
//! worker, instead of the tail.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use testkube_core::engine::{Event, StepDetail, StepRef, WorkerId};
use testkube_core::plan::{Operation, Plan, PlanStep};
use testkube_core::status::StepStatus;

use crate::style::{self, paint};

mod lines;

use lines::{child_line, failed_initialization, log_lines, worker_line};
pub(crate) use lines::{initialization_line, seconds, status_word, step_line};

/// How many of a running step's last lines the live view shows.
const TAIL_LINES: usize = 3;

/// The longest tail line shown (longer lines are cut, so the live area
/// never wraps and redraws cleanly).
const TAIL_WIDTH: usize = 110;

/// How much of an unfinished output line is kept for the tail.
const PARTIAL_LIMIT: usize = 4096;

/// The progress display of one run.
pub(crate) struct View {
    inner: Inner,
    /// Notices already shown: workers repeat the same ones (e.g. that
    /// images are not pulled); the user needs each once.
    noticed: std::collections::HashSet<String>,
}

enum Inner {
    Lines(Lines),
    Live(Box<Live>),
}

impl View {
    /// Plain lines, on stdout, or on stderr when stdout carries JSON.
    pub(crate) fn lines(logs: bool, to_stderr: bool) -> Self {
        View {
            inner: Inner::Lines(Lines {
                logs,
                to_stderr,
                started: HashMap::new(),
            }),
            noticed: std::collections::HashSet::new(),
        }
    }

    /// The redrawn terminal view of a run of `plan`.
    pub(crate) fn live(logs: bool, plan: &Plan) -> Self {
        View {
            inner: Inner::Live(Box::new(Live::new(logs, plan))),
            noticed: std::collections::HashSet::new(),
        }
    }

    /// Shows what `event` says.
    pub(crate) fn show(&mut self, event: &Event) {
        if let Event::Notice { message, .. } = event
            && !self.noticed.insert(message.clone())
        {
            return;
        }
        match &mut self.inner {
            Inner::Lines(lines) => lines.show(event),
            Inner::Live(live) => live.show(event),
        }
    }

    /// Prints a line of its own (a notice of the CLI itself).
    pub(crate) fn note(&self, text: &str) {
        match &self.inner {
            Inner::Lines(lines) => lines.line(text),
            Inner::Live(live) => live.println(text),
        }
    }

    /// Removes what is still drawn; call before printing the summary.
    pub(crate) fn finish(&mut self) {
        if let Inner::Live(live) = &mut self.inner {
            live.clear();
        }
    }
}

/// One quiet line per step status change, notices, and logs on request.
struct Lines {
    logs: bool,
    to_stderr: bool,
    /// When each step of each worker first started.
    started: HashMap<(String, String), Instant>,
}

impl Lines {
    fn show(&mut self, event: &Event) {
        match event {
            Event::Step {
                worker,
                step,
                status,
                detail,
                ..
            } if step.depth > 0 => {
                let key = (worker.path.clone(), step.id.clone());
                if *status == StepStatus::Running {
                    self.started.entry(key.clone()).or_insert_with(Instant::now);
                }
                let elapsed = self.started.get(&key).map(Instant::elapsed);
                self.line(&step_line(worker, step, *status, detail, elapsed));
            }
            Event::Worker {
                worker,
                status,
                description,
            } if worker.number > 0 => {
                self.line(&worker_line(worker, *status, description.as_deref()));
            }
            Event::Notice { message, .. } => {
                self.line(&format!("{} {message}", paint(style::DIM, "note:")));
            }
            Event::Initialization { .. } => {
                if let Some(line) = failed_initialization(event) {
                    self.line(&line);
                }
            }
            Event::Child { child, .. } => self.line(&child_line(child)),
            Event::Log { worker, chunk, .. } if self.logs => {
                self.write(&log_lines(worker, chunk));
            }
            _ => {}
        }
    }

    fn line(&self, text: &str) {
        self.write(&format!("{text}\n"));
    }

    fn write(&self, text: &str) {
        if self.to_stderr {
            anstream::eprint!("{text}");
        } else {
            style::out(text);
        }
    }
}

/// The terminal view.
struct Live {
    multi: MultiProgress,
    logs: bool,
    colors: bool,
    spinner: ProgressStyle,
    group_style: ProgressStyle,
    /// Running steps of the root worker: their spinner and output tail.
    running: HashMap<String, RunningStep>,
    /// When each step of each worker first started.
    started: HashMap<(String, String), Instant>,
    /// Step labels by (worker path, step id), to name parallel blocks.
    labels: HashMap<(String, String), String>,
    /// The parallel blocks of the plan, by `<worker path>/<step id>`.
    totals: BTreeMap<String, Block>,
    /// Parallel blocks being shown, by the same key.
    groups: HashMap<String, Group>,
}

/// A parallel block's label and, when known before the run, its worker count.
type Block = (String, Option<usize>);

struct RunningStep {
    bar: ProgressBar,
    label: String,
    tail: VecDeque<String>,
    partial: String,
}

struct Group {
    bar: ProgressBar,
    done: u64,
    failed: u64,
    running: u64,
    known_total: bool,
}

impl Live {
    fn new(logs: bool, plan: &Plan) -> Self {
        let colors = !matches!(
            anstream::AutoStream::choice(&std::io::stdout()),
            anstream::ColorChoice::Never
        );
        let spinner = ProgressStyle::with_template("{spinner} {prefix} {elapsed}{msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        let group_style =
            ProgressStyle::with_template("{spinner} {prefix} [{bar:24}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        let mut totals = BTreeMap::new();
        block_totals(&plan.root, "root", &mut totals);
        Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            logs,
            colors,
            spinner,
            group_style,
            running: HashMap::new(),
            started: HashMap::new(),
            labels: HashMap::new(),
            totals,
            groups: HashMap::new(),
        }
    }

    /// `text` with its colours when the terminal shows them.
    fn text(&self, text: String) -> String {
        if self.colors {
            text
        } else {
            anstream::adapter::strip_str(&text).to_string()
        }
    }

    fn println(&self, text: &str) {
        let text = self.text(text.to_owned());
        if self.multi.println(&text).is_err() {
            style::out(&format!("{text}\n"));
        }
    }

    fn show(&mut self, event: &Event) {
        match event {
            Event::Step {
                worker,
                step,
                status,
                detail,
                ..
            } => self.step(worker, step, *status, detail),
            Event::Worker {
                worker,
                status,
                description,
            } if worker.number > 0 => self.worker(worker, *status, description.as_deref()),
            Event::Notice { message, .. } => {
                self.println(&format!("{} {message}", paint(style::DIM, "note:")));
            }
            Event::Initialization { .. } => {
                if let Some(line) = failed_initialization(event) {
                    self.println(&line);
                }
            }
            Event::Child { child, .. } => self.println(&child_line(child)),
            Event::Log {
                worker,
                step,
                chunk,
            } => {
                if self.logs {
                    let lines = log_lines(worker, chunk);
                    self.println(lines.trim_end_matches('\n'));
                } else if worker.number == 0 {
                    self.tail(step, chunk);
                }
            }
            _ => {}
        }
    }

    fn step(&mut self, worker: &WorkerId, step: &StepRef, status: StepStatus, detail: &StepDetail) {
        let key = (worker.path.clone(), step.id.clone());
        self.labels
            .entry(key.clone())
            .or_insert_with(|| step.label().to_owned());
        if status == StepStatus::Running {
            self.started.entry(key.clone()).or_insert_with(Instant::now);
        }
        // Parallel workers' steps are summed up by their block's bar.
        if worker.number > 0 || step.depth == 0 {
            return;
        }
        if status == StepStatus::Running {
            if let Some(running) = self.running.get(&step.id) {
                if detail.attempt > 1 {
                    running
                        .bar
                        .set_prefix(format!("{} (attempt {})", running.label, detail.attempt));
                }
                return;
            }
            let indent = "  ".repeat(step.depth.saturating_sub(1));
            let label = format!("{indent}{}", step.label());
            let bar = ProgressBar::new_spinner()
                .with_style(self.spinner.clone())
                .with_prefix(label.clone());
            // Above its parallel block's bar when the workers came first.
            let bar = match self.groups.get(&format!("root/{}", step.id)) {
                Some(group) => self.multi.insert_before(&group.bar, bar),
                None => self.multi.add(bar),
            };
            bar.enable_steady_tick(Duration::from_millis(120));
            self.running.insert(
                step.id.clone(),
                RunningStep {
                    bar,
                    label,
                    tail: VecDeque::new(),
                    partial: String::new(),
                },
            );
            return;
        }
        if !status.is_finished() {
            return;
        }
        if let Some(running) = self.running.remove(&step.id) {
            running.bar.finish_and_clear();
            self.multi.remove(&running.bar);
        }
        let elapsed = self.started.get(&key).map(Instant::elapsed);
        self.println(&step_line(worker, step, status, detail, elapsed));
    }

    fn worker(&mut self, worker: &WorkerId, status: StepStatus, description: Option<&str>) {
        let Some((parent, _index)) = worker.path.rsplit_once('/') else {
            return;
        };
        let key = parent.to_owned();
        if !self.groups.contains_key(&key) {
            let (label, total) = self.totals.get(&key).cloned().unwrap_or_else(|| {
                let label = parent
                    .rsplit_once('/')
                    .and_then(|(path, step)| self.labels.get(&(path.to_owned(), step.to_owned())))
                    .cloned()
                    .unwrap_or_else(|| key.clone());
                (label, None)
            });
            let bar = ProgressBar::new(total.unwrap_or(0) as u64)
                .with_style(self.group_style.clone())
                .with_prefix(format!("{label}: workers"));
            // Under the step that holds the block, when it is shown.
            let holder = parent
                .strip_prefix("root/")
                .filter(|step| !step.contains('/'))
                .and_then(|step| self.running.get(step));
            let bar = match holder {
                Some(holder) => self.multi.insert_after(&holder.bar, bar),
                None => self.multi.add(bar),
            };
            bar.enable_steady_tick(Duration::from_millis(120));
            self.groups.insert(
                key.clone(),
                Group {
                    bar,
                    done: 0,
                    failed: 0,
                    running: 0,
                    known_total: total.is_some(),
                },
            );
        }
        let line = (status.is_finished() && !status.is_success())
            .then(|| worker_line(worker, status, description));
        let Some(group) = self.groups.get_mut(&key) else {
            return;
        };
        if status == StepStatus::Running {
            group.running += 1;
            if !group.known_total {
                group.bar.inc_length(1);
            }
        } else if status.is_finished() {
            group.running = group.running.saturating_sub(1);
            group.done += 1;
            if !status.is_success() {
                group.failed += 1;
            }
            group.bar.set_position(group.done);
        }
        let mut message = format!("{} running", group.running);
        if group.failed > 0 {
            let _ = write!(message, ", {} failed", group.failed);
        }
        group.bar.set_message(message);
        let complete = group.bar.length().is_some_and(|len| group.done >= len);
        if complete && let Some(group) = self.groups.remove(&key) {
            group.bar.finish_and_clear();
            self.multi.remove(&group.bar);
        }
        if let Some(line) = line {
            self.println(&line);
        }
    }

    /// Keeps the last lines a running root step printed, under its spinner.
    fn tail(&mut self, step: &str, chunk: &[u8]) {
        let Some(running) = self.running.get_mut(step) else {
            return;
        };
        running.partial.push_str(&String::from_utf8_lossy(chunk));
        let mut complete: Vec<String> = running.partial.split('\n').map(str::to_owned).collect();
        running.partial = complete.pop().unwrap_or_default();
        // A step that prints without newlines must not grow this forever:
        // only the end of an unfinished line can ever be shown.
        if running.partial.len() > PARTIAL_LIMIT {
            let mut cut = running.partial.len() - PARTIAL_LIMIT;
            while !running.partial.is_char_boundary(cut) {
                cut += 1;
            }
            running.partial.drain(..cut);
        }
        for line in complete {
            let line = clean_line(&line);
            if line.trim().is_empty() {
                continue;
            }
            running.tail.push_back(line);
            while running.tail.len() > TAIL_LINES {
                running.tail.pop_front();
            }
        }
        let mut message = String::new();
        for line in &running.tail {
            let _ = write!(message, "\n    {}", paint(style::DIM, format!("│ {line}")));
        }
        let message = if self.colors {
            message
        } else {
            anstream::adapter::strip_str(&message).to_string()
        };
        running.bar.set_message(message);
    }

    fn clear(&mut self) {
        for (_, running) in self.running.drain() {
            running.bar.finish_and_clear();
        }
        for (_, group) in self.groups.drain() {
            group.bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// A line of output without control characters (a stray `\r` or escape
/// would break the redrawn area), cut to [`TAIL_WIDTH`].
fn clean_line(line: &str) -> String {
    let line = line
        .rsplit('\r')
        .find(|part| !part.is_empty())
        .unwrap_or("");
    let plain = anstream::adapter::strip_str(line).to_string();
    let mut out: String = plain
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .take(TAIL_WIDTH)
        .collect();
    if plain.chars().count() > TAIL_WIDTH {
        out.push('…');
    }
    out
}

/// The label and worker count (when decided before the run) of every
/// parallel block, keyed as the engine names their workers
/// (`<worker path>/<step id>/<index>`).
fn block_totals(step: &PlanStep, worker: &str, out: &mut BTreeMap<String, Block>) {
    for operation in &step.operations {
        match operation {
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    block_totals(child, worker, out);
                }
            }
            Operation::Parallel(block) => {
                let key = format!("{worker}/{}", step.id);
                let label = step.name.clone().unwrap_or_else(|| step.id.clone());
                let total = block
                    .decided_at_run_time
                    .is_none()
                    .then_some(block.workers.len());
                out.insert(key.clone(), (label, total));
                for planned in &block.workers {
                    block_totals(&planned.root, &format!("{key}/{}", planned.index), out);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_lines_lose_control_characters_and_are_cut() {
        assert_eq!(clean_line("progress 10%\rprogress 90%"), "progress 90%");
        assert_eq!(clean_line("\u{1b}[31mred\u{1b}[0m\tx"), "red x");
        let long = "x".repeat(TAIL_WIDTH + 10);
        assert_eq!(clean_line(&long).chars().count(), TAIL_WIDTH + 1);
    }
}
