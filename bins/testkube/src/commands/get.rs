//! `testkube get executions` and `testkube get execution ID`: the history the result store
//! keeps, as a table or JSON.
//!
//! Also the store access `logs` and `artifacts` share: open the store without creating it
//! (reading history must not leave an empty database behind), mark runs a killed process left
//! unfinished as `aborted` first (so they never show as running forever), and turn an unknown
//! execution into exit 1 with a pointer to `testkube get executions`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::str::FromStr;

use serde::Serialize;
use testkube_core::engine::TestTotals;
use testkube_core::model::ExecutionResult;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{
    ArtifactRecord, ExecutionFilter, ExecutionRecord, OutputRecord, ResultStore, StepRecord,
    StoreError,
};
use testkube_results::store::SqliteStore;

use super::{CliError, print_json};
use crate::cli::{GetArgs, GetCommand, GetExecutionArgs, GetExecutionsArgs, TextOutput};
use crate::live::{initialization_line, status_word};
use crate::style::{self, outln, paint};

/// A stored time (UTC) as RFC 3339 with milliseconds, as the store keeps it.
macro_rules! rfc3339 {
    ($at:expr) => {
        $at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    };
}

/// A stored time for people.
macro_rules! utc {
    ($at:expr) => {
        $at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
}

pub(crate) fn run(args: GetArgs) -> Result<ExitCode, CliError> {
    match args.what {
        GetCommand::Executions(args) => executions(&args),
        GetCommand::Execution(args) => execution(&args),
    }
}

fn executions(args: &GetExecutionsArgs) -> Result<ExitCode, CliError> {
    let status = args.status.as_deref().map(parse_status).transpose()?;
    let filter = ExecutionFilter {
        workflow: args.workflow.clone(),
        status,
        limit: args.limit,
        skip: 0,
    };
    let records = block_on(async {
        let store = open_store().await?;
        store.list_executions(&filter).await.map_err(store_error)
    })?;
    match args.output {
        TextOutput::Json => {
            let list: Vec<ExecutionJson<'_>> = records.iter().map(ExecutionJson::new).collect();
            print_json(&list)?;
        }
        TextOutput::Pretty if records.is_empty() => {
            anstream::eprintln!("{}", paint(style::DIM, "no executions recorded yet"));
        }
        TextOutput::Pretty => print_table(&records),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_status(text: &str) -> Result<ExecutionStatus, CliError> {
    ExecutionStatus::from_str(text).map_err(|_| {
        let valid: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
        CliError::usage(format!("unknown status `{text}`"))
            .with_hint(format!("use one of: {}", valid.join(", ")))
    })
}

fn print_table(records: &[ExecutionRecord]) {
    let rows: Vec<[String; 4]> = records
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.status.as_str().to_owned(),
                r.started_at
                    .unwrap_or(r.scheduled_at)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                duration_ms(r).map(format_millis).unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "STATUS", "STARTED (UTC)", "DURATION"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    outln!(
        "{}",
        paint(
            style::BOLD,
            format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                header[0],
                header[1],
                header[2],
                header[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        )
    );
    for (row, record) in rows.iter().zip(records) {
        // Pad before painting: escape codes must not count as width.
        let status = paint(
            execution_colour(record.status),
            format!("{:<w$}", row[1], w = widths[1]),
        );
        outln!(
            "{:<w0$}  {status}  {:<w2$}  {}",
            row[0],
            row[2],
            row[3],
            w0 = widths[0],
            w2 = widths[2]
        );
    }
}

fn execution(args: &GetExecutionArgs) -> Result<ExitCode, CliError> {
    let detail = block_on(async {
        let store = open_store().await?;
        let record = find(&store, &args.id).await?;
        let id = record.id.as_str();
        let steps = store.steps(id).await.map_err(store_error)?;
        let cases = store.test_cases(id).await.map_err(store_error)?;
        let artifacts = store.artifacts(id).await.map_err(store_error)?;
        let outputs = store.outputs(id).await.map_err(store_error)?;
        let mut tests = TestTotals::default();
        tests.add(&cases);
        Ok::<_, CliError>(Detail {
            record,
            steps,
            tests,
            artifacts,
            outputs,
        })
    })?;
    match args.output {
        TextOutput::Json => print_json(&DetailJson::new(&detail))?,
        TextOutput::Pretty => print_detail(&detail),
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything `get execution` shows.
struct Detail {
    record: ExecutionRecord,
    steps: Vec<StepRecord>,
    tests: TestTotals,
    artifacts: Vec<ArtifactRecord>,
    outputs: Vec<OutputRecord>,
}

/// The id every worker's own root step has (the worker's status).
const ROOT_STEP: &str = "root";

/// The steps grouped by worker, workers in the order they first appear.
fn by_worker(steps: &[StepRecord]) -> Vec<(&str, Vec<&StepRecord>)> {
    let mut workers: Vec<(&str, Vec<&StepRecord>)> = Vec::new();
    for step in steps {
        match workers.iter_mut().find(|(w, _)| *w == step.worker) {
            Some((_, list)) => list.push(step),
            None => workers.push((&step.worker, vec![step])),
        }
    }
    workers
}

fn print_detail(detail: &Detail) {
    let record = &detail.record;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}  {}",
        paint(style::BOLD, "execution"),
        paint(style::BOLD, &record.name),
        paint(execution_colour(record.status), record.status.as_str())
    );
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(
            out,
            "  {}  {value}",
            paint(style::DIM, format!("{name:<9}"))
        );
    };
    field(&mut out, "id", &record.id);
    field(
        &mut out,
        "workflow",
        &format!("{} (run #{})", record.workflow, record.number),
    );
    field(&mut out, "scheduled", &utc!(record.scheduled_at));
    if let Some(started) = record.started_at {
        field(&mut out, "started", &utc!(started));
    }
    if let Some(finished) = record.finished_at {
        field(&mut out, "finished", &utc!(finished));
    }
    if let Some(ms) = duration_ms(record) {
        field(&mut out, "duration", &format_millis(ms));
    }
    if let Some(message) = &record.message {
        field(&mut out, "message", message);
    }
    if !record.tags.is_empty() {
        let tags: Vec<String> = record
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        field(&mut out, "tags", &tags.join(", "));
    }

    let _ = writeln!(out, "\n{}", paint(style::BOLD, "steps"));
    if let Some(init) = &record.result.initialization {
        let _ = writeln!(out, "  {}", initialization_line(init));
    }
    if detail.steps.is_empty() {
        let _ = writeln!(out, "  {}", paint(style::DIM, "none recorded"));
    }
    for (worker, steps) in by_worker(&detail.steps) {
        let indent = if worker == "root" {
            "  "
        } else {
            let status = steps
                .iter()
                .find(|s| s.step == ROOT_STEP)
                .map_or(StepStatus::Queued, |s| s.status);
            let _ = writeln!(out, "  {} worker {worker}", status_word(status));
            "    "
        };
        for step in steps.iter().filter(|s| s.step != ROOT_STEP) {
            let mut extra = Vec::new();
            if let Some(ms) = step_millis(step) {
                extra.push(format_millis(ms));
            }
            // The message usually names the exit code already.
            if let Some(code) = step
                .exit_code
                .filter(|code| *code != 0 && step.message.is_none())
            {
                extra.push(format!("exit {code}"));
            }
            if step.attempt > 1 {
                extra.push(format!("{} attempts", step.attempt));
            }
            if let Some(message) = &step.message {
                extra.push(message.clone());
            }
            let label = match &step.name {
                Some(name) => format!(
                    "{} {}",
                    style::short_name(name),
                    paint(style::DIM, format!("({})", step.step))
                ),
                None => step.step.clone(),
            };
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!("  {}", paint(style::DIM, extra.join(", ")))
            };
            let _ = writeln!(out, "{indent}{} {label}{extra}", status_word(step.status));
        }
    }

    let tests = &detail.tests;
    if tests.tests > 0 {
        let _ = writeln!(
            out,
            "\n{}  {} tests: {} passed, {} failed, {} errored, {} skipped, {} flaky",
            paint(style::BOLD, "tests"),
            tests.tests,
            tests.passed,
            tests.failed,
            tests.errored,
            tests.skipped,
            tests.flaky
        );
        for case in &tests.failures {
            let mut title = vec![case.suite.as_str()];
            title.extend(case.class.as_deref());
            title.push(&case.name);
            let _ = writeln!(
                out,
                "  {} {}  {}",
                paint(style::ERROR, "FAIL"),
                title.join(" › "),
                paint(style::DIM, &case.worker)
            );
            if let Some(line) = case.message.as_deref().and_then(|m| m.lines().next()) {
                let _ = writeln!(out, "       {}", paint(style::DIM, line));
            }
        }
        let listed = u64::try_from(tests.failures.len()).unwrap_or(u64::MAX);
        let failing = tests.failed + tests.errored;
        if failing > listed {
            let _ = writeln!(out, "  ... and {} more", failing - listed);
        }
    }

    if !detail.artifacts.is_empty() {
        let _ = writeln!(out, "\n{}", paint(style::BOLD, "artifacts"));
        for artifact in &detail.artifacts {
            let _ = writeln!(
                out,
                "  {}  {}  {}",
                artifact.path,
                format_size(artifact.size),
                paint(
                    style::DIM,
                    format!("{} / {}", artifact.worker, artifact.step)
                )
            );
        }
    }

    if !detail.outputs.is_empty() {
        let _ = writeln!(out, "\n{}", paint(style::BOLD, "outputs"));
        for output in &detail.outputs {
            let place = if output.worker == "root" {
                String::new()
            } else {
                format!("  {}", paint(style::DIM, &output.worker))
            };
            let _ = writeln!(
                out,
                "  step.{}.outputs.{} = {}{place}",
                output.step, output.key, output.value
            );
        }
    }
    style::out(&out);
}

/// One execution in `-o json`: what scripts rely on (`id`, `name`, `workflow`, `status`...).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionJson<'a> {
    id: &'a str,
    name: &'a str,
    workflow: &'a str,
    number: u64,
    status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    scheduled_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    tags: &'a BTreeMap<String, String>,
    result: &'a ExecutionResult,
}

impl<'a> ExecutionJson<'a> {
    fn new(record: &'a ExecutionRecord) -> Self {
        ExecutionJson {
            id: &record.id,
            name: &record.name,
            workflow: &record.workflow,
            number: record.number,
            status: record.status,
            message: record.message.as_deref(),
            scheduled_at: rfc3339!(record.scheduled_at),
            started_at: record.started_at.map(|t| rfc3339!(t)),
            finished_at: record.finished_at.map(|t| rfc3339!(t)),
            duration_ms: duration_ms(record),
            tags: &record.tags,
            result: &record.result,
        }
    }
}

/// `get execution -o json`: the list entry plus config, workers with their steps, tests,
/// artifacts and outputs.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailJson<'a> {
    #[serde(flatten)]
    execution: ExecutionJson<'a>,
    config: &'a BTreeMap<String, serde_json::Value>,
    workers: Vec<WorkerJson<'a>>,
    tests: &'a TestTotals,
    artifacts: &'a [ArtifactRecord],
    outputs: &'a [OutputRecord],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkerJson<'a> {
    id: &'a str,
    status: Option<StepStatus>,
    steps: Vec<StepJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepJson<'a> {
    id: &'a str,
    name: Option<&'a str>,
    status: StepStatus,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    attempt: u32,
    exit_code: Option<i32>,
    message: Option<&'a str>,
}

impl<'a> DetailJson<'a> {
    fn new(detail: &'a Detail) -> Self {
        let workers = by_worker(&detail.steps)
            .into_iter()
            .map(|(worker, steps)| WorkerJson {
                id: worker,
                status: steps.iter().find(|s| s.step == ROOT_STEP).map(|s| s.status),
                steps: steps
                    .into_iter()
                    .filter(|s| s.step != ROOT_STEP)
                    .map(|step| StepJson {
                        id: &step.step,
                        name: step.name.as_deref(),
                        status: step.status,
                        started_at: step.started_at.map(|t| rfc3339!(t)),
                        finished_at: step.finished_at.map(|t| rfc3339!(t)),
                        duration_ms: step_millis(step),
                        attempt: step.attempt,
                        exit_code: step.exit_code,
                        message: step.message.as_deref(),
                    })
                    .collect(),
            })
            .collect();
        DetailJson {
            execution: ExecutionJson::new(&detail.record),
            config: &detail.record.config,
            workers,
            tests: &detail.tests,
            artifacts: &detail.artifacts,
            outputs: &detail.outputs,
        }
    }
}

/// Milliseconds from `start` to `end` (both Unix milliseconds), when both are known.
fn millis_between(start: Option<i64>, end: Option<i64>) -> Option<u64> {
    u64::try_from(end? - start?).ok()
}

pub(super) fn duration_ms(record: &ExecutionRecord) -> Option<u64> {
    millis_between(
        record.started_at.map(|t| t.timestamp_millis()),
        record.finished_at.map(|t| t.timestamp_millis()),
    )
}

fn step_millis(step: &StepRecord) -> Option<u64> {
    millis_between(
        step.started_at.map(|t| t.timestamp_millis()),
        step.finished_at.map(|t| t.timestamp_millis()),
    )
}

pub(super) fn format_millis(ms: u64) -> String {
    let seconds = ms as f64 / 1000.0;
    if seconds >= 3600.0 {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    } else if seconds >= 60.0 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{seconds:.1}s")
    }
}

pub(super) fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn execution_colour(status: ExecutionStatus) -> anstyle::Style {
    match status {
        ExecutionStatus::Passed => style::OK,
        ExecutionStatus::Failed | ExecutionStatus::Aborted | ExecutionStatus::Canceled => {
            style::ERROR
        }
        status if status.is_finished() => style::DIM,
        _ => style::ACCENT,
    }
}

/// Runs `work` on a small runtime of its own (the history commands do a few queries).
pub(crate) fn block_on<T>(work: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?
        .block_on(work)
}

/// Opens the result store for reading history, after marking abandoned runs `aborted`.
pub(super) async fn open_store() -> Result<SqliteStore, CliError> {
    let path = crate::home::database();
    if !path.is_file() {
        return Err(CliError::input(format!(
            "no result store at {}: nothing has been run here yet",
            path.display()
        ))
        .with_hint(
            "run a workflow with `testkube run FILE`, or point --home (or TESTKUBE_HOME) \
             at the folder that holds results.db",
        ));
    }
    let store = SqliteStore::open(&path).await.map_err(store_error)?;
    // A store this user may only read still shows its history, as last written.
    if let Err(err) = store.recover_abandoned().await {
        anstream::eprintln!(
            "{} cannot mark runs whose process died as aborted: {err}",
            paint(style::WARN, "warning:")
        );
    }
    Ok(store)
}

/// The execution `id_or_name` names, or exit 1 saying how to find the right one.
pub(super) async fn find(
    store: &SqliteStore,
    id_or_name: &str,
) -> Result<ExecutionRecord, CliError> {
    store
        .find_execution(id_or_name)
        .await
        .map_err(|err| match err {
            StoreError::NotFound(_) => {
                CliError::input(format!("no execution has the id or name `{id_or_name}`"))
                    .with_hint(format!(
                        "list the recorded executions with `{}`",
                        crate::home::command("get executions")
                    ))
            }
            other => store_error(other),
        })
}

pub(super) fn store_error(err: StoreError) -> CliError {
    CliError::input(err.to_string()).with_hint(
        "check that the home folder (--home, TESTKUBE_HOME) holds a testkube result store",
    )
}
