//! Resolution and planning over a corpus of workflows (`tests/data/plan/`):
//! every file validates, resolves and plans; the plans (and, for templates,
//! the resolved workflows) are snapshots reviewed by hand; errors are checked
//! message by message.

use std::collections::BTreeMap;
use std::path::PathBuf;

use testkube_core::diagnostic::{Diagnostic, Severity};
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::plan::{Operation, Plan, PlanOptions, PlanStep, plan_workflow};
use testkube_core::resolve::{
    MASK, ResolveError, ResolveOptions, ResolvedWorkflow, TemplateOrigin, TemplateSet,
    resolve_workflow,
};
use testkube_core::validate::{LoadedFile, load_file};
use testkube_core::yaml::{LoadOptions, Node};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/plan")
        .join(name)
}

fn load(name: &str) -> LoadedFile {
    let bytes = std::fs::read(data(name)).expect("corpus file exists");
    load_file(name, &bytes, &LoadOptions::default())
}

/// The workflow called `name` (or the only one) and its YAML tree.
fn workflow<'f>(file: &'f LoadedFile, name: Option<&str>) -> (&'f TestWorkflow, &'f Node) {
    let mut found = file.documents.iter().filter_map(|doc| match &doc.document {
        Some(Document::TestWorkflow(workflow))
            if name.is_none() || workflow.metadata.name.as_deref() == name =>
        {
            Some((&**workflow, &doc.node))
        }
        _ => None,
    });
    let first = found.next().expect("the workflow is in the file");
    assert!(
        name.is_some() || found.next().is_none(),
        "one workflow in the file"
    );
    first
}

fn templates(file: &LoadedFile) -> TemplateSet {
    let mut set = TemplateSet::with_builtins().expect("built-ins parse");
    set.insert_documents(
        file.typed_documents(),
        &TemplateOrigin::File(file.name.clone()),
    );
    set
}

fn resolve_named(
    file_name: &str,
    workflow_name: Option<&str>,
    config: &[(&str, &str)],
) -> Result<ResolvedWorkflow, ResolveError> {
    let file = load(file_name);
    let (workflow, node) = workflow(&file, workflow_name);
    let options = ResolveOptions::new()
        .with_config_pairs(config.iter().copied())
        .mask_sensitive(true);
    resolve_workflow(workflow, &templates(&file), &options, Some(node))
}

/// Loads a valid corpus file, resolves it with `config` and plans it.
fn plan_with(
    name: &str,
    config: &[(&str, &str)],
    options: &PlanOptions,
) -> (ResolvedWorkflow, Plan) {
    let file = load(name);
    let errors: Vec<String> = file
        .diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .map(|d| d.render(file.source.as_deref()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not validate:\n{}",
        errors.join("\n")
    );
    let resolved = resolve_named(name, None, config)
        .unwrap_or_else(|err| panic!("{name} does not resolve: {:#?}", err.diagnostics));
    let plan = plan_workflow(resolved.workflow(), options)
        .unwrap_or_else(|err| panic!("{name} does not plan: {:#?}", err.diagnostics));
    (resolved, plan)
}

fn plan(name: &str) -> Plan {
    plan_with(name, &[], &PlanOptions::new()).1
}

fn render(name: &str) -> TestWorkflow {
    plan_with(name, &[], &PlanOptions::new()).0.into_workflow()
}

fn errors(err: &ResolveError) -> Vec<(String, String, Option<String>)> {
    err.diagnostics
        .iter()
        .map(|d: &Diagnostic| {
            (
                d.code().to_owned(),
                d.message().to_owned(),
                d.hint().map(str::to_owned),
            )
        })
        .collect()
}

fn steps_of(step: &PlanStep) -> Vec<&PlanStep> {
    step.operations
        .iter()
        .flat_map(|op| match op {
            Operation::Steps { steps } | Operation::Setup { steps } => steps.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

macro_rules! plan_snapshot {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            insta::assert_yaml_snapshot!(stringify!($test), plan($file));
        }
    };
}

plan_snapshot!(basic_steps, "basic-steps.yaml");
plan_snapshot!(nested_groups, "nested-groups.yaml");
plan_snapshot!(global_env, "global-env.yaml");
plan_snapshot!(artifacts, "artifacts.yaml");
plan_snapshot!(template_step_use, "template-step-use.yaml");
plan_snapshot!(template_step_template, "template-step-template.yaml");
plan_snapshot!(distribute_evenly, "distribute-evenly.yaml");
plan_snapshot!(matrix, "matrix.yaml");
plan_snapshot!(matrix_expressions, "matrix-expressions.yaml");
plan_snapshot!(shards_counts, "shards-counts.yaml");
plan_snapshot!(services, "services.yaml");
plan_snapshot!(execute, "execute.yaml");
plan_snapshot!(zero_workers, "zero-workers.yaml");
plan_snapshot!(parallel_block, "parallel-block.yaml");
plan_snapshot!(template_in_parallel, "template-in-parallel.yaml");

#[test]
fn template_top_level_render_and_plan() {
    let (resolved, plan) = plan_with("template-top-level.yaml", &[], &PlanOptions::new());
    insta::assert_yaml_snapshot!("template_top_level_render", resolved.workflow());
    insta::assert_yaml_snapshot!("template_top_level", plan);
}

#[test]
fn template_config_casts_render() {
    insta::assert_yaml_snapshot!(
        "template_config_casts_render",
        render("template-config-casts.yaml")
    );
}

#[test]
fn workflow_config_defaults_and_passed_values() {
    let defaults = plan_with("workflow-config.yaml", &[], &PlanOptions::new());
    insta::assert_yaml_snapshot!("workflow_config_defaults", defaults.1);
    let passed = plan_with(
        "workflow-config.yaml",
        &[
            ("target", "production"),
            ("smoke", "false"),
            ("retries", "5"),
        ],
        &PlanOptions::new(),
    );
    insta::assert_yaml_snapshot!("workflow_config_passed", passed.1);
    assert_eq!(
        passed.0.config().get("retries"),
        Some(&serde_json::json!(5))
    );
    assert_eq!(
        passed.0.config().get("smoke"),
        Some(&serde_json::json!(false))
    );
}

#[test]
fn sensitive_config_is_masked_in_output_but_kept_for_running() {
    let file = load("workflow-config.yaml");
    let (workflow, node) = workflow(&file, None);
    let options = ResolveOptions::new().with_config("token", "hunter2");
    let real =
        resolve_workflow(workflow, &templates(&file), &options, Some(node)).expect("resolves");
    assert_eq!(real.config().get("token"), Some(&serde_json::json!(MASK)));
    let text = serde_json::to_string(real.workflow()).expect("serializes");
    assert!(
        text.contains("hunter2"),
        "the running workflow keeps the value"
    );

    let masked = resolve_workflow(
        workflow,
        &templates(&file),
        &options.mask_sensitive(true),
        Some(node),
    )
    .expect("resolves");
    let text = serde_json::to_string(masked.workflow()).expect("serializes");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        !text.contains("not-a-real-token"),
        "the default is masked too: {text}"
    );
    assert!(text.contains(MASK));
}

#[test]
fn balance_with_recorded_durations() {
    let durations: BTreeMap<String, f64> = [
        ("tests/test_api.py", 40.0),
        ("tests/test_auth.py", 5.0),
        ("tests/test_billing.py", 30.0),
        ("tests/test_search.py", 20.0),
        ("tests/test_ui.py", 25.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let options = PlanOptions::new().with_duration_map(durations);
    let (_, plan) = plan_with("balance.yaml", &[("workers", "2")], &options);
    insta::assert_yaml_snapshot!("balance_with_durations", plan);
}

#[test]
fn balance_without_durations_falls_back_to_contiguous() {
    let (_, plan) = plan_with("balance.yaml", &[("workers", "3")], &PlanOptions::new());
    insta::assert_yaml_snapshot!("balance_without_durations", plan);
}

#[test]
fn plans_are_deterministic() {
    let corpus = std::fs::read_dir(data("")).expect("corpus folder");
    let mut names: Vec<String> = corpus
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "corpus has {} workflows", names.len());
    for name in names {
        let first = serde_json::to_string(&plan(&name)).expect("serializes");
        let second = serde_json::to_string(&plan(&name)).expect("serializes");
        assert_eq!(first, second, "{name} plans differently twice");
    }
}

#[test]
fn step_ids_are_explicit_derived_or_positional() {
    let plan = plan("basic-steps.yaml");
    let ids: Vec<&str> = steps_of(&plan.root).iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "install_tools",
            "run_unit_tests",
            "lint",
            "root_4",
            "clean_up"
        ]
    );
}

#[test]
fn matrix_workers_follow_yaml_key_order_last_key_fastest() {
    let plan = plan("matrix.yaml");
    let Some(Operation::Parallel(parallel)) = steps_of(&plan.root)[0].operations.first() else {
        panic!("the first step is a parallel block");
    };
    let combos: Vec<String> = parallel
        .workers
        .iter()
        .map(|w| format!("{}/{}", w.matrix["browser"], w.matrix["viewport"]).replace('"', ""))
        .collect();
    assert_eq!(
        combos,
        [
            "chrome/desktop",
            "chrome/tablet",
            "chrome/mobile",
            "firefox/desktop",
            "firefox/tablet",
            "firefox/mobile"
        ]
    );
}

#[test]
fn missing_required_config_names_the_parameter() {
    let err = resolve_named("errors/config.yaml", None, &[]).unwrap_err();
    assert_eq!(
        errors(&err),
        [(
            "missing-config".to_owned(),
            "missing required config `workers` (integer: how many shards)".to_owned(),
            Some("pass it as --config workers=<integer>".to_owned())
        )]
    );
    let diagnostic = &err.diagnostics[0];
    assert_eq!(diagnostic.path(), Some("spec.config.workers"));
    let span = diagnostic.span().expect("points at the parameter");
    assert_eq!((span.start.line, span.start.column), (10, 7));
}

#[test]
fn unknown_config_key_suggests_the_declared_one() {
    let err = resolve_named(
        "errors/config.yaml",
        None,
        &[("worker", "2"), ("workers", "2")],
    )
    .unwrap_err();
    assert_eq!(
        errors(&err),
        [(
            "unknown-config".to_owned(),
            "unknown config `worker`: the workflow does not declare it".to_owned(),
            Some("did you mean `workers`? (declared parameters: workers, browser)".to_owned())
        )]
    );
}

#[test]
fn invalid_config_values_are_refused() {
    let err = resolve_named(
        "errors/config.yaml",
        None,
        &[("workers", "0"), ("browser", "safari")],
    )
    .unwrap_err();
    assert_eq!(
        errors(&err),
        [
            (
                "invalid-config".to_owned(),
                "config `workers` must be at least 1, got 0".to_owned(),
                Some("pass it as --config workers=<integer>".to_owned())
            ),
            (
                "invalid-config".to_owned(),
                "config `browser` must be one of `chrome`, `firefox`, got `safari`".to_owned(),
                Some("pick one of the allowed values, e.g. `chrome`".to_owned())
            ),
        ]
    );
    let err = resolve_named("errors/config.yaml", None, &[("workers", "two")]).unwrap_err();
    assert_eq!(
        errors(&err)[0].1,
        "config `workers` must be an integer, got `two`"
    );
}

#[test]
fn unknown_template_suggests_the_closest_name() {
    let err = resolve_named("errors/templates.yaml", Some("misspelled"), &[]).unwrap_err();
    assert_eq!(
        errors(&err),
        [(
            "unknown-template".to_owned(),
            "unknown template `distribute/evnly`".to_owned(),
            Some("did you mean `distribute/evenly`?".to_owned())
        )]
    );
    assert_eq!(err.diagnostics[0].path(), Some("spec.steps[0].use[0].name"));
    let span = err.diagnostics[0].span().expect("points into the file");
    assert_eq!(span.start.line, 54);
}

#[test]
fn templates_cannot_use_templates() {
    let err = resolve_named("errors/templates.yaml", Some("nested"), &[]).unwrap_err();
    assert_eq!(
        errors(&err),
        [(
            "template-uses-template".to_owned(),
            "template `layered` uses template `base` at `spec.steps[0].use[0]`: templates \
             cannot use other templates"
                .to_owned(),
            Some(
                "use `base` next to `layered` here instead, or copy what it provides into \
                 `layered`"
                    .to_owned()
            )
        )]
    );
}

#[test]
fn template_config_is_checked_like_workflow_config() {
    let err = resolve_named(
        "errors/templates.yaml",
        Some("missing-template-config"),
        &[],
    )
    .unwrap_err();
    assert_eq!(
        errors(&err),
        [
            (
                "unknown-config".to_owned(),
                "template `needs/version` has no config parameter `versoin`".to_owned(),
                Some("did you mean `version`?".to_owned())
            ),
            (
                "missing-config".to_owned(),
                "missing required config `version` of template `needs/version` (string)".to_owned(),
                Some("set it in the `use` entry: `config: {version: <string>}`".to_owned())
            ),
        ]
    );
    // A parameter the template does not declare is an error, not a silent
    // fallback to the default.
    assert_eq!(err.diagnostics[0].severity(), Severity::Error);

    let err =
        resolve_named("errors/templates.yaml", Some("undeclared-in-template"), &[]).unwrap_err();
    let found = errors(&err);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "undeclared-config");
    assert!(
        found[0]
            .1
            .starts_with("in template `sloppy` at `spec.steps[0].shell`: "),
        "{}",
        found[0].1
    );
    assert_eq!(
        found[0].2.as_deref(),
        Some("did you mean `config.name`? (the template declares `name`)")
    );
    assert_eq!(err.diagnostics[0].path(), Some("spec.steps[0].template"));
}

fn shells(workflow: &TestWorkflow) -> Vec<String> {
    fn collect(steps: &[testkube_core::model::Step], out: &mut Vec<String>) {
        for step in steps {
            let run_shell = step.run.as_ref().and_then(|run| run.shell.as_ref());
            out.extend(step.shell.iter().chain(run_shell).cloned());
            collect(&step.setup, out);
            collect(&step.steps, out);
        }
    }
    let mut out = Vec::new();
    collect(&workflow.spec.steps, &mut out);
    out
}

#[test]
fn masking_leaves_sensitive_references_symbolic() {
    let masked =
        resolve_named("sensitive.yaml", Some("sensitive"), &[("token", "tk_x")]).expect("resolves");
    assert_eq!(
        shells(masked.workflow()),
        [
            "echo {{ config.token + \"x\" }}",
            "echo {{ shellquote(config.token) }} eu",
            "echo {{ config.token == \"tk_x\" ? \"yes\" : \"no\" }}",
            "echo {{ tojson(config) }}",
            "echo pin={{ config.pin * 2 }}",
            "login --password {{ shellquote(config.password) }}",
        ]
    );
    let text = serde_json::to_string(masked.workflow()).expect("serializes");
    for secret in [
        "tk_default",
        "1234",
        "2468",
        "tmpl-default-secret",
        "********x",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(masked.config().get("token"), Some(&serde_json::json!(MASK)));
    assert_eq!(masked.config().get("pin"), Some(&serde_json::json!(MASK)));
    assert_eq!(
        masked.config().get("region"),
        Some(&serde_json::json!("eu"))
    );

    // The engine resolves without masking: the real values are used.
    let file = load("sensitive.yaml");
    let (workflow, node) = workflow(&file, Some("sensitive"));
    let options = ResolveOptions::new().with_config("token", "tk_x");
    let real =
        resolve_workflow(workflow, &templates(&file), &options, Some(node)).expect("resolves");
    assert_eq!(
        shells(real.workflow()),
        [
            "echo tk_xx",
            "echo tk_x eu",
            "echo yes",
            "echo {\"token\":\"tk_x\",\"pin\":1234,\"region\":\"eu\"}",
            "echo pin=2468",
            "login --password tmpl-default-secret",
        ]
    );
}

#[test]
fn sensitive_values_are_never_echoed_in_errors() {
    for (passed, rule) in [
        (
            ("token", "TOPSECRET"),
            "config `token` must match the pattern `^tk_`",
        ),
        (
            ("token", "tk"),
            "config `token` must be at least 3 characters long",
        ),
        (("pin", "TOPSECRET"), "config `pin` must be an integer"),
        (("pin", "12"), "config `pin` must be at least 1000"),
        (
            ("token", "{{ TOPSECRET( }}"),
            "config `token` holds a `{{ }}` expression",
        ),
    ] {
        let err = resolve_named("sensitive.yaml", Some("sensitive"), &[passed]).unwrap_err();
        let shown = format!("{:?}", errors(&err));
        assert!(!shown.contains(passed.1), "{passed:?} echoed: {shown}");
        let message = &errors(&err)[0].1;
        assert!(message.starts_with(rule), "{message}");
        assert!(message.contains("sensitive, not shown"), "{message}");
    }
    // A parameter that is not sensitive still shows what was wrong.
    let err = resolve_named("errors/config.yaml", None, &[("workers", "two")]).unwrap_err();
    assert!(errors(&err)[0].1.ends_with("got `two`"));
}

#[test]
fn builtin_k6_template_takes_the_script_as_params() {
    let resolved = render("k6-params.yaml");
    assert_eq!(shells(&resolved), ["k6 run k6-smoke-test-without-envs.js"]);
    let (resolved, _) = plan_with("k6-params.yaml", &[], &PlanOptions::new());
    assert!(resolved.warnings().is_empty(), "{:?}", resolved.warnings());
    let text = serde_json::to_string(resolved.workflow()).expect("serializes");
    assert!(text.contains("grafana/k6:0.48.0"), "{text}");
    // Testkube's own tests pass the whole command as `run` instead.
    let plan = plan("template-step-template.yaml");
    let text = serde_json::to_string(&plan).expect("serializes");
    assert!(text.contains("\"k6 run script.js\""), "{text}");
}

#[test]
fn any_operation_searches_sub_steps_and_parallel_workers() {
    let is_execute = |operation: &Operation| matches!(operation, Operation::Execute(_));
    assert!(plan("execute.yaml").root.any_operation(&is_execute));
    assert!(!plan("basic-steps.yaml").root.any_operation(&is_execute));
    // Shells inside parallel workers are found too.
    let is_shell = |operation: &Operation| matches!(operation, Operation::Shell { .. });
    assert!(plan("parallel-block.yaml").root.any_operation(&is_shell));
}

#[test]
fn run_time_expressions_are_left_for_the_runner() {
    let name = "run-time-expressions.yaml";
    let planned = serde_json::to_string(&plan(name)).expect("serializes");
    let rendered = serde_json::to_string(&render(name)).expect("serializes");
    for kept in [
        r#"make > \"{{ step.results }}/build.log\"; echo \"{{ env.GLOBAL }}\""#,
        r#"cat \"{{ step.build.results }}/build.log\""#,
        r#"serve --port \"{{ env.PORT }}\" --dir \"{{ step.results }}\""#,
        "g-{{ env.HOME }}",
        r#"env.GLOBAL != \"\""#,
    ] {
        assert!(planned.contains(kept), "{kept} in {planned}");
        assert!(rendered.contains(kept), "{kept} in {rendered}");
    }
    // Worker variables are filled in; the rest stays.
    for index in [0, 1] {
        let kept = format!(r#"echo \"{{{{ env.W }}}} {{{{ step.results }}}} {index}\""#);
        assert!(planned.contains(&kept), "{kept} in {planned}");
        assert!(planned.contains(&format!("\"w{index}\"")), "{planned}");
    }
}
