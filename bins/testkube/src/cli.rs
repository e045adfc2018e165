//! Argument definitions. Parsing only: validation of what the arguments mean
//! happens in the commands, against the libraries.

use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run, preview and split TestWorkflows: the open test orchestration engine.
#[derive(Debug, Parser)]
#[command(name = "testkube", version, about, propagate_version = true)]
#[command(after_help = "Examples:
  testkube run examples/workflows/sharded-pytest.yaml
  testkube get executions
  testkube validate workflows/
  testkube plan examples/workflows/sharded-pytest.yaml --config workers=4
  testkube split --total 2 --index 0 --by file --timings examples/reports/sharded-pytest/*.xml \\
    -- tests/test_api.py tests/test_ui.py
  testkube report target/nextest/ci/junit.xml")]
pub(crate) struct Cli {
    /// When to use colours.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub(crate) color: ColorChoice,

    /// Where runs, results and artifacts are kept (default: .testkube in the current folder).
    #[arg(long, value_name = "DIR", env = "TESTKUBE_HOME", global = true)]
    pub(crate) home: Option<PathBuf>,

    /// A testkube server to run on and read from (`testkube serve`, the agent):
    /// `run`, `rerun`, `get`, `logs`, `artifacts` and `abort` go to it.
    #[arg(long, value_name = "URL", env = "TESTKUBE_SERVER", global = true)]
    pub(crate) server: Option<String>,

    /// The bearer token for --server.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TESTKUBE_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Adds what clap cannot know to its usage errors: `split` items left
/// before `--` (where `--timings` would have taken them as paths).
pub(crate) fn explain(mut err: clap::Error) -> clap::Error {
    let splitting = std::env::args().skip(1).any(|arg| arg == "split");
    if splitting
        && err.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(item)) = err.get(ContextKind::InvalidArg).cloned()
        && !item.starts_with('-')
    {
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![
                format!("items to split go after `--`: testkube split ... -- {item}").into(),
            ]),
        );
    }
    err
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check workflow files: syntax, fields, names, durations, cron lines, expressions.
    #[command(
        after_help = "Exit status: 0 when every document is valid, 1 when any is not.

Examples:
  testkube validate workflow.yaml
  testkube validate workflows/ templates/ -o json"
    )]
    Validate(ValidateArgs),

    /// Print a workflow with its templates and config applied (a preview, nothing runs).
    #[command(after_help = "Examples:
  testkube render workflow.yaml
  testkube render all.yaml --name k6-smoke --config vus=20 -o json")]
    Render(RenderArgs),

    /// Print the execution plan: steps, containers, conditions and parallel workers.
    #[command(
        after_help = "In JSON, each parallel block has a `workers` list; each worker carries
`index`, `shardIndex`, `matrixIndex`, `matrix` (key -> value) and `shard` (key -> values).

Examples:
  testkube plan workflow.yaml
  testkube plan workflow.yaml --config browsers='[\"chrome\",\"firefox\"]' -o json
  testkube plan sharded.yaml --timings last-run/junit.xml"
    )]
    Plan(PlanArgs),

    /// Print every Kubernetes object one execution of a workflow creates, touching no cluster.
    #[command(
        after_help = "Multi-document YAML: per worker a Secret with its task and a Job. The execution
id is a placeholder (`<workflow>-execution`); workers and children that only the run decides are
named in comments at the top. Sensitive values are masked.

Examples:
  testkube manifests workflow.yaml
  testkube manifests workflow.yaml --config workers=4 --namespace tests | kubectl apply --dry-run=client -f -"
    )]
    Manifests(ManifestsArgs),

    /// Print the CustomResourceDefinitions of every kind (TestWorkflow, ..., WebhookTemplate).
    #[command(
        after_help = "Multi-document YAML, one CRD per document, generated from the same model the YAML
loader reads. A workflow CRD is several hundred KB, past what client-side apply can keep in its
annotation: install them with server-side apply.

Examples:
  testkube crds | kubectl apply --server-side -f -"
    )]
    Crds,

    /// Split test items into shards by recorded duration (CI-agnostic test splitting).
    #[command(
        after_help = "Items come after `--`, or from standard input one per line.
--timings takes every path up to the next flag (so a shell glob works): test reports (JUnit XML
and friends), JSON maps {\"item\": seconds}, or folders of them. --by says what an item names in the
reports: a test name, a class or a file. Items without a timing count as the mean of the known ones.

Examples (run from the repository root):
  printf 'tests/test_%s.py\\n' api auth billing export search ui |
    testkube split --total 2 --index 0 --by file --timings examples/reports/sharded-pytest/*.xml
  testkube split --total 3 --all --by file --timings examples/reports/sharded-pytest/ \\
    -- tests/test_api.py tests/test_auth.py tests/test_billing.py tests/test_ui.py
  testkube split --total 2 --all -o json --by classname \\
    --timings bins/testkube/tests/data/timings-junit.xml \\
    -- io.example.Slow io.example.Medium io.example.Fast
  testkube split --total 3 --index 1 --timings examples/workflows/sharded-pytest.timings.json \\
    -- tests/test_api.py tests/test_ui.py tests/test_search.py
  testkube split --suggest-for 2.5 --by file --timings examples/reports/sharded-pytest \\
    -- tests/test_api.py tests/test_auth.py tests/test_billing.py"
    )]
    Split(SplitArgs),

    /// Summarize test reports: totals, failures with their messages, the slowest tests.
    #[command(
        after_help = "Reads JUnit XML from any common producer (Surefire, Gradle, pytest, jest-junit,
go-junit-report, Playwright, Cypress/mocha, nextest, PHPUnit).
Exit status: 0 when every file was read (even with failing tests), 1 when a file cannot be read.

Examples:
  testkube report build/test-results/test/*.xml
  testkube report junit.xml -o json | jq '.failed'"
    )]
    Report(ReportArgs),

    /// Run a workflow on this machine: live progress, a verdict, the exit code.
    #[command(
        after_help = "Each worker runs in its own folder under .testkube/runs/ (or $TESTKUBE_HOME/runs),
in a sandbox (bubblewrap, else `unshare`; TESTKUBE_SANDBOX=off: plain processes). Ctrl-C aborts the run.
The run is recorded as WORKFLOW-N in the result store; `balance: {by: duration}` shards are split
by the durations earlier runs recorded. secret(name, key) reads $TESTKUBE_SECRET_<NAME>_<KEY>, else
the --secrets file (default: secrets.yaml in the home folder).
Exit status: 0 passed, 1 failed or aborted, 2 invalid input or unsupported feature.

Examples:
  testkube run examples/workflows/local-smoke.yaml
  testkube run all.yaml --name smoke --config workers=2 -o json
  testkube run suite.yaml --tag branch=main --junit reports/testkube.xml"
    )]
    Run(RunArgs),

    /// Run a recorded execution again, from its stored workflow, config and tags.
    #[command(
        after_help = "The workflow runs as it was resolved for the original execution (the file is not read
again), as a new execution of the same workflow. Secrets are read again.
With --failed-only, parallel workers that passed are left out; every other step runs.
Exit status: 0 passed, 1 failed or aborted, 2 unknown execution or invalid input.

Examples:
  testkube rerun sharded-pytest-3
  testkube rerun sharded-pytest-3 --failed-only --junit junit.xml"
    )]
    Rerun(RerunArgs),

    /// Abort a running execution.
    #[command(
        after_help = "Locally, the `testkube run` of the execution (another terminal, same home folder)
aborts it; with --server, the server does.
Exit status: 0 aborting, 1 unknown or finished execution.

Examples:
  testkube abort release-checks-4
  testkube --server http://127.0.0.1:8088 abort release-checks-4"
    )]
    Abort(AbortArgs),

    /// Serve the REST API on this machine: runs start from it, results are read from it.
    #[command(
        after_help = "Runs execute here with the local executor and land in the home folder's result store
(PostgreSQL when TESTKUBE_DATABASE_URL is set). Workflows come from the API (POST /v1/test-workflows,
kept under <home>/definitions) and, read-only, from --workflows files and folders.
Every request needs a token of the --tokens file (`<token> <scope>[,<scope>]...`, scopes read, run,
admin); --no-auth is only allowed on a loopback address. The OpenAPI document is at /openapi.json.

Examples:
  testkube serve --tokens tokens.txt --listen 0.0.0.0:8088
  testkube serve --no-auth --workflows examples/workflows
  testkube --server http://127.0.0.1:8088 run local-smoke -f"
    )]
    Serve(ServeArgs),

    /// Resume the paused steps of a running execution (`paused: true`).
    #[command(
        after_help = "The `testkube run` of the execution (another terminal, same home folder) resumes its
paused steps; in that terminal, Enter does the same.
Exit status: 0 resumed, 1 unknown execution, 2 the execution is not paused.

Examples:
  testkube resume release-checks-4"
    )]
    Resume(ResumeArgs),

    /// Show recorded executions: the history, or one execution in detail.
    #[command(
        after_help = "Reads the result store under .testkube/ (or $TESTKUBE_HOME, --home); runs a killed
process left unfinished show as `aborted`.
Exit status: 0 ok, 1 unknown execution or unreadable store, 2 bad arguments.

Examples:
  testkube get executions --workflow sharded-pytest --status failed --limit 5
  testkube get execution sharded-pytest-3
  testkube get executions -o json | jq -r '.[0].name'"
    )]
    Get(GetArgs),

    /// Print the logs an execution recorded, or follow a running one.
    #[command(
        after_help = "Exit status: 0 ok, 1 unknown execution, step or worker, 2 bad arguments.

Examples:
  testkube logs local-smoke-3
  testkube logs sharded-pytest-3 --step run-tests --worker 2
  testkube logs sharded-pytest-4 -f"
    )]
    Logs(LogsArgs),

    /// List an execution's artifacts, or copy them to a folder.
    #[command(
        after_help = "Exit status: 0 ok, 1 unknown execution or a file that cannot be copied.

Examples:
  testkube artifacts sharded-pytest-3
  testkube artifacts sharded-pytest-3 --download out/"
    )]
    Artifacts(ArtifactsArgs),
}

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Human-readable text.
    Pretty,
    /// JSON, for scripts.
    Json,
    /// YAML.
    Yaml,
}

/// Output formats of commands that print text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TextOutput {
    /// Human-readable text.
    Pretty,
    /// JSON, for scripts.
    Json,
}

/// Output formats of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DocumentOutput {
    /// YAML, as the workflow was written.
    Yaml,
    /// JSON.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Files or folders (folders are searched for *.yaml and *.yml).
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
}

#[derive(Debug, Args)]
pub(crate) struct WorkflowArgs {
    /// The file holding the workflow (and, optionally, its templates).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Which workflow of the file, when it holds several.
    #[arg(long, value_name = "WF")]
    pub(crate) name: Option<String>,
    /// Set a config parameter (repeatable), e.g. `--config workers=4`.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub(crate) config: Vec<String>,
    /// Extra folders or files to load templates from (repeatable).
    #[arg(long = "templates", value_name = "PATH")]
    pub(crate) templates: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    pub(crate) workflow: WorkflowArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = DocumentOutput::Yaml)]
    pub(crate) output: DocumentOutput,
}

#[derive(Debug, Args)]
pub(crate) struct ManifestsArgs {
    #[command(flatten)]
    pub(crate) workflow: WorkflowArgs,
    /// The namespace of the objects (a workflow's `job.namespace` wins).
    #[arg(long, value_name = "NS")]
    pub(crate) namespace: Option<String>,
    /// The image that runs `content.git` checkouts (it must have git; default
    /// alpine/git:v2.47.2).
    #[arg(long, value_name = "IMAGE", env = "TESTKUBE_GIT_IMAGE")]
    pub(crate) git_image: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) workflow: WorkflowArgs,
    /// Recorded durations for `balance: {by: duration}` blocks: JUnit XML or a JSON map (repeatable).
    #[arg(long = "timings", value_name = "FILE")]
    pub(crate) timings: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Pretty)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct SplitArgs {
    /// Number of shards (with --suggest-for: the most shards to consider, default 100).
    #[arg(long, value_name = "N", required_unless_present = "suggest_for")]
    pub(crate) total: Option<usize>,
    /// Which shard to print (0-based); required unless --all or --suggest-for.
    #[arg(long, value_name = "I", required_unless_present_any = ["all", "suggest_for"])]
    pub(crate) index: Option<usize>,
    /// Print the smallest shard count whose slowest shard takes at most SECONDS.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["index", "all"])]
    pub(crate) suggest_for: Option<f64>,
    /// Print every shard with its predicted time (best with -o json).
    #[arg(long)]
    pub(crate) all: bool,
    /// Timing sources: test reports, JSON maps {"item": seconds} or folders of them (one or more).
    #[arg(long = "timings", value_name = "PATH", num_args = 1..)]
    pub(crate) timings: Vec<PathBuf>,
    /// What an item names in the reports.
    #[arg(long, value_enum, default_value_t = SplitBy::Name)]
    pub(crate) by: SplitBy,
    /// Seconds assumed for items without a timing (default: the mean of the known ones).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) default_seconds: Option<f64>,
    /// Output format (pretty prints items one per line).
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
    /// The items to split, after `--`; read from standard input, one per line, when none are given.
    #[arg(value_name = "ITEM", last = true)]
    pub(crate) items: Vec<String>,
}

/// The field of a test case that items are matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SplitBy {
    /// The test case name.
    Name,
    /// The test class (or suite) name.
    Classname,
    /// The test file.
    File,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Report files (JUnit XML and friends).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// How many of the slowest tests to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub(crate) slowest: usize,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) workflow: WorkflowArgs,
    #[command(flatten)]
    pub(crate) run: RunOptions,
}

/// What `run` and `rerun` share: how the run is tagged, shown and reported.
#[derive(Debug, Args)]
pub(crate) struct RunOptions {
    /// Tag the execution (repeatable), e.g. `--tag branch=main`; `execution.tags` in expressions.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    /// Workflows `execute` steps may run: files or folders (repeatable); the run's own file
    /// is always searched.
    #[arg(long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Vec<PathBuf>,
    /// Print the steps' full output as they run (the live view shows the last lines otherwise).
    #[arg(long)]
    pub(crate) logs: bool,
    /// Follow the run's logs as they come (with --server, streamed from the server;
    /// locally the same as --logs).
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Also write the run's test results as one JUnit XML report (written when the run fails too).
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Values for `secret(name, key)`: a YAML file `name: {key: value}`
    /// (default: secrets.yaml in the home folder, when it exists).
    #[arg(long, value_name = "FILE")]
    pub(crate) secrets: Option<PathBuf>,
    /// Output format (json prints the final summary on stdout, progress on stderr).
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
    /// Where the workers run: on this machine, or as Jobs in a Kubernetes cluster (the engine
    /// and the results stay here).
    #[arg(long = "on", value_enum, default_value_t = Target::Local, value_name = "WHERE")]
    pub(crate) on: Target,
    /// With --on kubernetes: the namespace of the Jobs (default: the kubeconfig context's).
    #[arg(long, value_name = "NS")]
    pub(crate) namespace: Option<String>,
    /// With --on kubernetes: the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, value_name = "PATH")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// With --on kubernetes: the image that carries testkube-init.
    #[arg(long, value_name = "IMAGE", env = "TESTKUBE_INIT_IMAGE")]
    pub(crate) init_image: Option<String>,
    /// With --on kubernetes: the image that runs `content.git` checkouts (it must have git;
    /// default alpine/git:v2.47.2).
    #[arg(long, value_name = "IMAGE", env = "TESTKUBE_GIT_IMAGE")]
    pub(crate) git_image: Option<String>,
}

/// Where a run's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// This machine (sandboxed processes).
    Local,
    /// Jobs in a Kubernetes cluster.
    Kubernetes,
}

#[derive(Debug, Args)]
pub(crate) struct AbortArgs {
    /// The execution: its id or its name (`WORKFLOW-N`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8088")]
    pub(crate) listen: String,
    /// The tokens file: one `<token> <scope>[,<scope>]...` a line (scopes read, run, admin).
    #[arg(long, value_name = "FILE", env = "TESTKUBE_TOKENS_FILE")]
    pub(crate) tokens: Option<PathBuf>,
    /// Let every request in, without a token (only on a loopback address).
    #[arg(long)]
    pub(crate) no_auth: bool,
    /// Also serve the workflows and templates of these files and folders, read-only (repeatable).
    #[arg(long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The execution: its id or its name (`WORKFLOW-N`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct RerunArgs {
    /// The execution to run again: its id or its name (`WORKFLOW-N`).
    #[arg(value_name = "ID")]
    pub(crate) execution: String,
    /// Run only the parallel workers that did not pass (the other steps run as before).
    #[arg(long)]
    pub(crate) failed_only: bool,
    #[command(flatten)]
    pub(crate) run: RunOptions,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(subcommand)]
    pub(crate) what: GetCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GetCommand {
    /// Recorded executions, newest first.
    Executions(GetExecutionsArgs),
    /// One execution: status, steps per worker, tests, artifacts and outputs.
    Execution(GetExecutionArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GetExecutionsArgs {
    /// Only this workflow's executions.
    #[arg(long, value_name = "WF")]
    pub(crate) workflow: Option<String>,
    /// Only executions in this status (passed, failed, aborted, running, ...).
    #[arg(long, value_name = "S")]
    pub(crate) status: Option<String>,
    /// At most this many (the newest).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u32>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
}

#[derive(Debug, Args)]
pub(crate) struct GetExecutionArgs {
    /// The execution's id or name (`sharded-pytest-3`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The execution's id or name (`sharded-pytest-3`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Only this step: its id or its name.
    #[arg(long, value_name = "REF")]
    pub(crate) step: Option<String>,
    /// Only this worker: its index in its parallel block (`2`), or its path (`root/tests/2`).
    #[arg(long, value_name = "N")]
    pub(crate) worker: Option<String>,
    /// Keep printing new output until the execution finishes.
    #[arg(short, long)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ArtifactsArgs {
    /// The execution's id or name (`sharded-pytest-3`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Copy the artifacts into `DIR/<worker path>/<path>`.
    #[arg(long, value_name = "DIR")]
    pub(crate) download: Option<PathBuf>,
    /// Output format (of the list).
    #[arg(short, long, value_enum, default_value_t = TextOutput::Pretty)]
    pub(crate) output: TextOutput,
}
