//! `testkube plan`: the execution plan of a workflow: steps with their
//! conditions, retries and timeouts, services, and parallel blocks with
//! their workers. `balance: {by: duration}` blocks are split by the
//! durations `run` would use (the result store's history), or by the
//! reports given with `--timings`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::Value;
use testkube_core::model::TestWorkflow;
use testkube_core::plan::{
    Operation, Plan, PlanExecute, PlanOptions, PlanParallel, PlanService, PlanStep, PlanWorker,
    plan_workflow,
};

use super::get;
use super::render::{Sensitive, plural, resolve};
use super::{CliError, print_json, print_yaml};
use crate::cli::{Output, PlanArgs};
use crate::style::{self, paint};
use crate::timings::{ItemTimings, PLAN_KEYS, history_from_home, history_key};
use testkube_core::service::visit_parallel;

pub(crate) fn run(args: PlanArgs) -> Result<ExitCode, CliError> {
    let resolved = resolve(&args.workflow, Sensitive::Masked)?;
    let (options, source) = durations(&args.timings, resolved.workflow())?;
    let plan = match plan_workflow(resolved.workflow(), &options) {
        Ok(plan) => plan,
        Err(err) => {
            for diagnostic in &err.diagnostics {
                let diagnostic = diagnostic
                    .clone()
                    .with_file(args.workflow.file.display().to_string());
                anstream::eprintln!("{}", diagnostic.render(None));
            }
            return Err(CliError::usage(format!(
                "cannot plan workflow `{}`",
                resolved
                    .workflow()
                    .metadata
                    .name
                    .as_deref()
                    .unwrap_or_default()
            ))
            .with_hint("fix the problems above"));
        }
    };
    let balanced = has_balance_blocks(&plan);
    match args.output {
        Output::Json => print_json(&plan)?,
        Output::Yaml => print_yaml(&plan)?,
        Output::Pretty => crate::style::out(&pretty(&plan)),
    }
    // Said last, so it is the line a reader sees under the tree (and never
    // in the JSON or YAML on stdout).
    if balanced {
        anstream::eprintln!("{} {source}", paint(style::DIM, "durations:"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The durations `balance: {by: duration}` blocks are split by, and where
/// they come from: `--timings` when given, else what `run` would use.
fn durations(
    timings: &[PathBuf],
    workflow: &TestWorkflow,
) -> Result<(PlanOptions, String), CliError> {
    if let Some(loaded) = ItemTimings::load(timings, &PLAN_KEYS)? {
        let files: Vec<String> = timings
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        return Ok((
            PlanOptions::new().with_durations(move |item| loaded.seconds(item)),
            format!("shards balanced by --timings {}", files.join(" ")),
        ));
    }
    let history = get::block_on(async { Ok(history_from_home(&history_key(workflow)).await) })?;
    let source = history.source();
    Ok((history.plan_options(&Arc::default()), source))
}

fn has_balance_blocks(plan: &Plan) -> bool {
    let mut found = false;
    visit_parallel(&plan.root, &mut |_, block| found |= block.balance.is_some());
    found
}

/// The plan as a readable tree.
fn pretty(plan: &Plan) -> String {
    let mut out = String::new();
    let mut totals = Totals::default();
    let _ = writeln!(
        out,
        "{} {}",
        paint(style::BOLD, "workflow"),
        paint(style::ACCENT, &plan.workflow)
    );
    if !plan.global_env.is_empty() {
        let names: Vec<&str> = plan
            .global_env
            .iter()
            .map(|var| var.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  {} {}",
            paint(style::DIM, "global env:"),
            names.join(", ")
        );
    }
    write_operations(&mut out, &plan.root, 1, &mut totals);
    let _ = writeln!(
        out,
        "{} {} {}, {} parallel {}, {} {}",
        paint(style::DIM, "total:"),
        totals.steps,
        plural(totals.steps, "step", "steps"),
        totals.parallel,
        plural(totals.parallel, "block", "blocks"),
        totals.workers,
        plural(totals.workers, "worker", "workers"),
    );
    out
}

#[derive(Default)]
struct Totals {
    steps: usize,
    parallel: usize,
    workers: usize,
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

fn write_step(out: &mut String, step: &PlanStep, depth: usize, totals: &mut Totals) {
    totals.steps += 1;
    let title = match &step.name {
        Some(name) => format!(
            "{} {}",
            paint(style::BOLD, name),
            paint(style::DIM, format!("[{}]", step.id))
        ),
        None => paint(style::BOLD, format!("[{}]", step.id)),
    };
    let mut flags = Vec::new();
    if step.condition != "passed" {
        flags.push(paint(style::WARN, format!("if {}", step.condition)));
    }
    if let Some(timeout) = &step.timeout {
        flags.push(format!("timeout {timeout}"));
    }
    if let Some(retry) = &step.retry {
        let until = if retry.until == "passed" {
            String::new()
        } else {
            format!(" until {}", retry.until)
        };
        flags.push(format!("retry {}{until}", plain(&retry.count)));
    }
    for (set, word) in [
        (step.negative, "negative"),
        (step.optional, "optional"),
        (step.paused, "paused"),
    ] {
        if set {
            flags.push(paint(style::ACCENT, word));
        }
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!("  {}", flags.join("  "))
    };
    let _ = writeln!(out, "{}- {title}{flags}", indent(depth));
    write_operations(out, step, depth + 1, totals);
}

fn write_operations(out: &mut String, step: &PlanStep, depth: usize, totals: &mut Totals) {
    let pad = indent(depth);
    for operation in &step.operations {
        match operation {
            Operation::Delay { duration } => {
                let _ = writeln!(out, "{pad}{} {duration}", paint(style::DIM, "delay"));
            }
            Operation::Content { content } => {
                let mut parts = Vec::new();
                if let Some(git) = &content.git {
                    let uri = git.uri.as_deref().unwrap_or("?");
                    let revision = git
                        .revision
                        .as_deref()
                        .map(|r| format!("@{r}"))
                        .unwrap_or_default();
                    parts.push(format!("git {uri}{revision}"));
                }
                if !content.files.is_empty() {
                    let paths: Vec<&str> = content.files.iter().map(|f| f.path.as_str()).collect();
                    parts.push(format!("files {}", paths.join(", ")));
                }
                for tarball in &content.tarball {
                    parts.push(format!("tarball {} -> {}", tarball.url, tarball.path));
                }
                let _ = writeln!(
                    out,
                    "{pad}{} {}",
                    paint(style::DIM, "content:"),
                    parts.join("; ")
                );
            }
            Operation::StartServices { services } => {
                for service in services {
                    write_service(out, service, depth);
                }
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    write_step(out, child, depth, totals);
                }
            }
            Operation::Run { container, shell } => {
                let image = container.image.as_deref().unwrap_or("(default image)");
                let what = match (shell, &container.command, &container.args) {
                    (Some(script), _, _) => format!("$ {}", first_line(script)),
                    (None, command, args) => command
                        .iter()
                        .chain(args)
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                let _ = writeln!(out, "{pad}{} {image}  {what}", paint(style::ACCENT, "run"));
            }
            Operation::Shell { script, container } => {
                let image = container
                    .image
                    .as_deref()
                    .map(|image| format!("  {}", paint(style::DIM, format!("in {image}"))))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{pad}{} {}{image}",
                    paint(style::ACCENT, "$"),
                    first_line(script)
                );
            }
            Operation::Execute(execute) => write_execute(out, execute, depth),
            Operation::Parallel(parallel) => write_parallel(out, parallel, depth, totals),
            Operation::StopServices { .. } => {}
            Operation::Artifacts {
                condition,
                artifacts,
            } => {
                let when = if condition == "always" {
                    String::new()
                } else {
                    format!("  {}", paint(style::WARN, format!("if {condition}")))
                };
                let place = artifacts
                    .working_dir
                    .as_deref()
                    .map(|dir| format!(" in {dir}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{pad}{} {}{place}{when}",
                    paint(style::DIM, "artifacts:"),
                    artifacts.paths.join(", ")
                );
            }
            _ => {}
        }
    }
}

fn write_service(out: &mut String, service: &PlanService, depth: usize) {
    let pad = indent(depth);
    let image = service
        .container
        .image
        .as_deref()
        .unwrap_or("(default image)");
    let count = service
        .counts
        .map(|counts| format!("×{}", counts.count))
        .unwrap_or_else(|| "×?".to_owned());
    let ready = service
        .readiness_probe
        .as_ref()
        .map(|probe| format!("  ready when {}", describe_probe(probe)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{pad}{} {} {count}  {image}{ready}",
        paint(style::DIM, "service"),
        paint(style::BOLD, &service.name)
    );
    let varies = service.instances.len() > 1
        || service
            .instances
            .iter()
            .any(|i| !i.matrix.is_empty() || !i.shard.is_empty());
    for instance in service.instances.iter().filter(|_| varies) {
        let mut line = format!("#{}", instance.index);
        if !instance.matrix.is_empty() {
            let matrix = inline_map(instance.matrix.iter().map(|(k, v)| (k.as_str(), plain(v))));
            let _ = write!(line, "  matrix {matrix}");
        }
        if let Some(image) = &instance.container.image {
            let _ = write!(line, "  {image}");
        }
        if let Some(description) = &instance.description {
            let _ = write!(line, "  {}", paint(style::DIM, description));
        }
        let _ = writeln!(out, "{pad}  {line}");
    }
    if let Some(reason) = &service.decided_at_run_time {
        let _ = writeln!(out, "{pad}  instances decided at run time: {reason}");
    }
}

/// `GET :8000/health answers`, `port 6379 accepts connections`, `pg_isready succeeds`.
fn describe_probe(probe: &k8s_openapi::api::core::v1::Probe) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let port = |port: &IntOrString| match port {
        IntOrString::Int(number) => number.to_string(),
        IntOrString::String(name) => name.clone(),
    };
    if let Some(http) = &probe.http_get {
        format!(
            "GET :{}{} answers",
            port(&http.port),
            http.path.as_deref().unwrap_or("/")
        )
    } else if let Some(tcp) = &probe.tcp_socket {
        format!("port {} accepts connections", port(&tcp.port))
    } else if let Some(exec) = &probe.exec {
        let command = exec
            .command
            .as_ref()
            .map(|c| c.join(" "))
            .unwrap_or_default();
        format!("`{command}` succeeds")
    } else if let Some(grpc) = &probe.grpc {
        format!("gRPC health on port {} is serving", grpc.port)
    } else {
        "its probe passes".to_owned()
    }
}

fn write_execute(out: &mut String, execute: &PlanExecute, depth: usize) {
    let pad = indent(depth);
    let mode = if execute.is_async { ", async" } else { "" };
    let _ = writeln!(
        out,
        "{pad}{} (parallelism {}{mode})",
        paint(style::ACCENT, "execute"),
        plain(&execute.parallelism)
    );
    for workflow in &execute.workflows {
        let name = workflow
            .name
            .clone()
            .unwrap_or_else(|| "workflows matching the selector".to_owned());
        let count = workflow
            .counts
            .map(|counts| format!("×{}", counts.count))
            .unwrap_or_else(|| "×? (decided at run time)".to_owned());
        let _ = writeln!(out, "{pad}  {} {count}", paint(style::BOLD, name));
        for execution in &workflow.executions {
            if execution.config.is_empty() && execution.matrix.is_empty() {
                continue;
            }
            let config = inline_map(execution.config.iter().map(|(k, v)| (k.as_str(), plain(v))));
            let _ = writeln!(out, "{pad}    #{}  config {config}", execution.index);
        }
    }
}

fn write_parallel(out: &mut String, parallel: &PlanParallel, depth: usize, totals: &mut Totals) {
    totals.parallel += 1;
    totals.workers += parallel.workers.len();
    let pad = indent(depth);
    let count = parallel
        .counts
        .map(|counts| {
            let shards = format!(
                "{} {}",
                counts.shard_count,
                plural(counts.shard_count, "shard", "shards")
            );
            match counts.matrix_count {
                1 => format!("×{} ({shards})", counts.count),
                combos => format!(
                    "×{} ({shards} × {combos} matrix combinations)",
                    counts.count
                ),
            }
        })
        .unwrap_or_else(|| "×?".to_owned());
    let mut flags = vec![format!("parallelism {}", plain(&parallel.parallelism))];
    if parallel.fail_fast {
        flags.push("fail fast".to_owned());
    }
    if parallel.barrier {
        flags.push("start together".to_owned());
    }
    let _ = writeln!(
        out,
        "{pad}{} {count}  {}",
        paint(style::ACCENT, "parallel"),
        flags.join(", ")
    );
    if let Some(reason) = &parallel.decided_at_run_time {
        let _ = writeln!(
            out,
            "{pad}  {} {reason}",
            paint(style::WARN, "workers decided at run time:")
        );
    }
    if let Some(note) = &parallel.note {
        let _ = writeln!(out, "{pad}  {} {note}", paint(style::DIM, "note:"));
    }
    if let Some(balance) = &parallel.balance {
        let _ = writeln!(
            out,
            "{pad}  {} `{}`: {}",
            paint(style::DIM, "balance by duration of"),
            balance.key,
            balance.note
        );
    }
    let shard_count = parallel.counts.map_or(0, |counts| counts.shard_count);
    for worker in &parallel.workers {
        let _ = writeln!(out, "{pad}  {}", worker_line(worker, shard_count));
    }
    let each = parallel
        .workers
        .first()
        .map(|worker| &worker.root)
        .or(parallel.template.as_ref());
    if let Some(root) = each {
        let shown = if parallel.workers.is_empty() {
            "each worker runs:"
        } else {
            "each worker runs (shown for worker 0):"
        };
        let _ = writeln!(out, "{pad}  {}", paint(style::DIM, shown));
        let before = totals.steps;
        write_operations(out, root, depth + 2, totals);
        // Worker steps are not steps of this workflow.
        totals.steps = before;
    }
}

/// `worker 3  shard 1/2  matrix {browser: firefox}  shard {file: [a.py, b.py]}  ~12.3s`
fn worker_line(worker: &PlanWorker, shard_count: usize) -> String {
    let mut line = paint(style::BOLD, format!("worker {}", worker.index));
    if shard_count > 1 {
        let _ = write!(line, "  shard {}/{shard_count}", worker.shard_index);
    }
    if !worker.matrix.is_empty() {
        let matrix = inline_map(worker.matrix.iter().map(|(k, v)| (k.as_str(), plain(v))));
        let _ = write!(line, "  matrix {matrix}");
    }
    if !worker.shard.is_empty() {
        let shard = inline_map(worker.shard.iter().map(|(k, values)| {
            let items: Vec<String> = values.iter().map(plain).collect();
            (k.as_str(), format!("[{}]", items.join(", ")))
        }));
        let _ = write!(line, "  shard {shard}");
    }
    if let Some(seconds) = worker.predicted_seconds {
        let _ = write!(line, "  {}", paint(style::DIM, format!("~{seconds:.1}s")));
    }
    if let Some(description) = &worker.description {
        let _ = write!(line, "  {}", paint(style::DIM, description));
    }
    line
}

fn inline_map<'a>(entries: impl Iterator<Item = (&'a str, String)>) -> String {
    let parts: Vec<String> = entries
        .map(|(key, value)| format!("{key}: {value}"))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn first_line(script: &str) -> String {
    let mut lines = script.trim().lines();
    let first = lines.next().unwrap_or_default().to_owned();
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn worker_lines_show_shard_matrix_items_and_prediction() {
        let worker = PlanWorker {
            index: 3,
            shard_index: 1,
            matrix_index: 1,
            matrix: [("browser".to_owned(), json!("firefox"))]
                .into_iter()
                .collect(),
            shard: [("file".to_owned(), vec![json!("a.py"), json!("b.py")])]
                .into_iter()
                .collect(),
            description: None,
            predicted_seconds: Some(12.34),
            pod: None,
            root: PlanStep {
                id: "root".into(),
                name: None,
                condition: "passed".into(),
                negative: false,
                optional: false,
                paused: false,
                retry: None,
                timeout: None,
                operations: Vec::new(),
            },
        };
        let line = anstream::adapter::strip_str(&worker_line(&worker, 2)).to_string();
        assert_eq!(
            line,
            "worker 3  shard 1/2  matrix {browser: firefox}  shard {file: [a.py, b.py]}  ~12.3s"
        );
    }
}
