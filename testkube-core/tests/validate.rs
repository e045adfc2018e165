//! Broken inputs and the diagnostics users get for them.
//!
//! Each `tests/data/invalid/NAME.yaml` has a `NAME.expected` next to it, one
//! line per expected diagnostic, in file order:
//!
//! ```text
//! LINE:COL: severity code: message substring [=> hint substring]
//! ```
//!
//! `-:-` stands for a diagnostic without a position. The test fails when a
//! diagnostic is missing, unexpected, or differs in position, severity,
//! code, message or hint. Lines starting with `#` are comments.

use std::fs;
use std::path::{Path, PathBuf};

use testkube_core::diagnostic::Diagnostic;
use testkube_core::model::Document;
use testkube_core::resolve::TemplateSet;
use testkube_core::validate::{LoadedFile, check_catalog, load_file};
use testkube_core::yaml::LoadOptions;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid")
}

/// Loads one file and checks its templates as `testkube validate FILE`
/// does: the file and the built-ins form the catalog.
fn load_path(path: &Path) -> LoadedFile {
    let bytes = fs::read(path).expect("read input");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = [load_file(&name, &bytes, &LoadOptions::default())];
    check_catalog(&mut files, TemplateSet::with_builtins().expect("built-ins"));
    let [file] = files;
    file
}

fn describe(diagnostic: &Diagnostic) -> String {
    let position = diagnostic.span().map_or("-:-".to_owned(), |s| {
        format!("{}:{}", s.start.line, s.start.column)
    });
    let mut line = format!(
        "{position}: {} {}: {}",
        diagnostic.severity(),
        diagnostic.code(),
        diagnostic.message()
    );
    if let Some(hint) = diagnostic.hint() {
        line.push_str(" => ");
        line.push_str(hint);
    }
    line
}

struct Expected {
    position: String,
    severity_and_code: String,
    message: String,
    hint: Option<String>,
}

fn parse_expected(line: &str) -> Expected {
    let (head, hint) = match line.split_once(" => ") {
        Some((head, hint)) => (head, Some(hint.trim().to_owned())),
        None => (line, None),
    };
    let mut parts = head.splitn(4, ": ");
    let (Some(line_col), Some(severity_and_code), Some(message)) = (
        parts.next().map(|s| s.to_owned()),
        parts.next().map(|s| s.to_owned()),
        parts.next().map(|s| s.to_owned()),
    ) else {
        panic!("malformed expectation: {line}");
    };
    let message = match parts.next() {
        Some(rest) => format!("{message}: {rest}"),
        None => message,
    };
    Expected {
        position: line_col,
        severity_and_code,
        message: message.trim().to_owned(),
        hint,
    }
}

fn matches(expected: &Expected, diagnostic: &Diagnostic) -> bool {
    let position = diagnostic.span().map_or("-:-".to_owned(), |s| {
        format!("{}:{}", s.start.line, s.start.column)
    });
    let severity_and_code = format!("{} {}", diagnostic.severity(), diagnostic.code());
    position == expected.position
        && severity_and_code == expected.severity_and_code
        && diagnostic.message().contains(&expected.message)
        && expected
            .hint
            .as_ref()
            .is_none_or(|hint| diagnostic.hint().is_some_and(|h| h.contains(hint.as_str())))
}

#[test]
fn every_broken_input_gets_its_expected_diagnostics() {
    let mut inputs: Vec<PathBuf> = fs::read_dir(data_dir())
        .expect("invalid folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 30, "only {} broken inputs", inputs.len());
    let mut failures = Vec::new();
    for input in &inputs {
        let file = load_path(input);
        let actual: Vec<String> = file.diagnostics.iter().map(describe).collect();
        let expected_path = input.with_extension("expected");
        let Ok(expected_text) = fs::read_to_string(&expected_path) else {
            failures.push(format!(
                "{}: no .expected file; actual:\n{}",
                input.display(),
                actual.join("\n")
            ));
            continue;
        };
        let expected: Vec<Expected> = expected_text
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(parse_expected)
            .collect();
        let same = expected.len() == file.diagnostics.len()
            && expected
                .iter()
                .zip(&file.diagnostics)
                .all(|(e, d)| matches(e, d));
        if !same {
            failures.push(format!(
                "{}:\nexpected:\n{}\nactual:\n{}",
                input.display(),
                expected_text.trim_end(),
                actual.join("\n")
            ));
        }
        assert!(
            file.diagnostics
                .iter()
                .all(|d| d.file() == file.name.as_str().into()),
            "{}: every diagnostic names the file",
            input.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn load_text(text: &str) -> LoadedFile {
    load_file("inline.yaml", text.as_bytes(), &LoadOptions::default())
}

#[test]
fn unknown_fields_do_not_hide_the_document() {
    let file = load_text(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: wf\nspec:\n  steps:\n    - shell: make\n      timout: 5m\n",
    );
    assert!(file.has_errors());
    let document = file.documents[0]
        .document
        .as_ref()
        .expect("typed despite the typo");
    assert!(matches!(document, Document::TestWorkflow(_)));
}

#[test]
fn rendered_diagnostic_points_at_the_typo_with_a_hint() {
    let source = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: wf\nspec:\n  steps:\n    - shell: make\n      timout: 5m\n";
    let file = load_text(source);
    let rendered = file.diagnostics[0].render(file.source.as_deref());
    assert!(
        rendered.starts_with("inline.yaml:8:7: error: unknown field `timout`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("8 |       timout: 5m\n  |       ^^^^^^"),
        "{rendered}"
    );
    assert!(rendered.contains("did you mean `timeout`?"), "{rendered}");
}

#[test]
fn expression_errors_point_inside_the_string() {
    let source = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: wf\nspec:\n  config:\n    vus: {type: integer, default: 1}\n  steps:\n    - shell: 'k6 run --vus {{ config.vu }}'\n";
    let file = load_text(source);
    assert_eq!(file.diagnostics.len(), 1, "{:#?}", file.diagnostics);
    let span = file.diagnostics[0].span().expect("span");
    let source = file.source.as_deref().unwrap_or_default();
    assert_eq!(span.text(source), Some("config.vu"));
}

#[test]
fn templates_and_use_skip_the_undeclared_config_check() {
    let template = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowTemplate\nmetadata:\n  name: t\nspec:\n  steps:\n    - shell: echo {{ config.anything }}\n";
    assert!(load_text(template).diagnostics.is_empty());
    let using = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: w\nspec:\n  use: [{name: t}]\n  steps:\n    - shell: echo {{ config.anything }}\n";
    assert!(load_text(using).diagnostics.is_empty());
}

#[test]
fn worker_config_extends_the_parent_scope() {
    let source = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: w\nspec:\n  config:\n    a: {default: x}\n  steps:\n    - parallel:\n        count: 2\n        config:\n          b: {default: y}\n        shell: echo {{ config.a }} {{ config.b }}\n      shell: echo {{ config.b }}\n";
    let file = load_text(source);
    let messages: Vec<&str> = file.diagnostics.iter().map(Diagnostic::message).collect();
    assert_eq!(messages, ["`config.b` is not a declared parameter"]);
    let span = file.diagnostics[0].span().expect("span");
    assert_eq!(span.start.line, 14, "the reference outside the worker");
}

#[test]
fn hostile_inputs_fail_fast_with_one_diagnostic() {
    for name in ["alias-bomb.yaml", "deep-nesting.yaml", "invalid-utf8.yaml"] {
        let file = load_path(&data_dir().join(name));
        assert_eq!(file.diagnostics.len(), 1, "{name}: {:#?}", file.diagnostics);
        assert!(file.documents.is_empty(), "{name}");
    }
    let huge = "a: b\n".repeat(5_000_000);
    let file = load_file("huge.yaml", huge.as_bytes(), &LoadOptions::default());
    assert_eq!(file.diagnostics.len(), 1);
    assert_eq!(file.diagnostics[0].code(), "budget");
    assert!(
        file.source.is_none(),
        "a file over the size budget is not kept"
    );
}

#[test]
fn valid_document_next_to_a_broken_one_is_still_read() {
    let source = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: good\nspec:\n  steps:\n    - shell: make\n---\napiVersion: testworkflows.testkube.io/v1\nkind: Nope\nmetadata:\n  name: bad\n";
    let file = load_text(source);
    assert_eq!(file.documents.len(), 2);
    assert!(file.documents[0].document.is_some());
    assert!(file.documents[1].document.is_none());
    assert_eq!(file.diagnostics.len(), 1);
    assert_eq!(file.diagnostics[0].span().map(|s| s.start.line), Some(10));
}

#[test]
fn type_errors_do_not_hide_the_rest_and_keep_file_paths() {
    let file = load_path(&data_dir().join("type-errors-all-reported.yaml"));
    let paths: Vec<(&str, &str)> = file
        .diagnostics
        .iter()
        .map(|d| (d.code(), d.path().unwrap_or_default()))
        .collect();
    // `steps[1]` (not a map) is removed to read the rest; what follows is
    // still named as written in the file.
    assert!(
        paths.contains(&("invalid-type", "spec.steps[1]")),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("unknown-field", "spec.steps[2].timout")),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("conflicting-fields", "spec.steps[2].run.command")),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("invalid-type", "spec.steps[0].container.env[0].name")),
        "{paths:?}"
    );
    // Every round of reading sees the typo again; it is reported once.
    let typos = paths
        .iter()
        .filter(|(code, _)| *code == "unknown-field")
        .count();
    assert_eq!(typos, 1, "{paths:?}");
    // Removing `name: [A]` leaves the env entry without a name: that is the
    // same error, not a second one.
    assert!(
        !paths.iter().any(|(code, _)| *code == "missing-field"),
        "{paths:?}"
    );
    // A document read past its type errors is not handed out as the file's.
    assert!(file.documents[0].document.is_none());
}

#[test]
fn type_errors_say_what_to_write_instead() {
    let source = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: wf\nspec:\n  job: {activeDeadlineSeconds: soon}\n  steps:\n    - shell: make\n      negative: maybe\n";
    let file = load_text(source);
    let hints: Vec<(&str, Option<&str>)> = file
        .diagnostics
        .iter()
        .map(|d| (d.path().unwrap_or_default(), d.hint()))
        .collect();
    assert_eq!(
        hints,
        [
            (
                "spec.job.activeDeadlineSeconds",
                Some("use a number, or a `{{ }}` expression where the field allows it")
            ),
            ("spec.steps[0].negative", Some("use true or false")),
        ]
    );
}

#[test]
fn enum_errors_list_a_few_values_only_when_nothing_is_close() {
    let source = "apiVersion: executor.testkube.io/v1\nkind: Webhook\nmetadata:\n  name: wh\nspec:\n  uri: https://example.com/hook\n  events: [zzzzzz, end-testworkflow-sucess]\n";
    let file = load_text(source);
    let messages: Vec<(&str, Option<&str>)> = file
        .diagnostics
        .iter()
        .map(|d| (d.message(), d.hint()))
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let (far, far_hint) = messages[0];
    assert!(
        far.starts_with("unknown value `zzzzzz`, expected one of `"),
        "{far}"
    );
    assert!(far.ends_with(", … (33 in all)"), "{far}");
    assert_eq!(far.matches('`').count(), 2 + 2 * 12, "twelve values: {far}");
    assert_eq!(far_hint, None);
    assert_eq!(
        messages[1],
        (
            "unknown value `end-testworkflow-sucess`",
            Some("did you mean `end-testworkflow-success`?")
        )
    );
}

#[test]
fn files_checked_together_are_one_template_catalog() {
    let template = |name: &str, parameter: &str| {
        format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowTemplate\nmetadata:\n  name: {name}\nspec:\n  config:\n    {parameter}: {{type: string}}\n  steps:\n    - shell: echo {{{{ config.{parameter} }}}}\n"
        )
    };
    let workflow = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: wf\nspec:\n  steps:\n    - use:\n        - name: tools/greet\n          config: {who: x}\n";
    let load = |name: &str, text: &str| load_file(name, text.as_bytes(), &LoadOptions::default());
    let builtins = || TemplateSet::with_builtins().expect("built-ins");

    // The template in another file serves the workflow.
    let mut files = [
        load("wf.yaml", workflow),
        load("t.yaml", &template("tools--greet", "who")),
    ];
    check_catalog(&mut files, builtins());
    assert!(!files[0].has_errors(), "{:#?}", files[0].diagnostics);

    // Of two files defining one name, the later wins: its parameter is
    // `whom`, so `who` is unknown and `whom` missing, both at the `use`.
    let mut files = [
        load("t1.yaml", &template("tools/greet", "who")),
        load("wf.yaml", workflow),
        load("t2.yaml", &template("tools/greet", "whom")),
    ];
    check_catalog(&mut files, builtins());
    let found: Vec<(&str, Option<u32>, Option<&str>)> = files[1]
        .diagnostics
        .iter()
        .map(|d| (d.code(), d.span().map(|s| s.start.line), d.file()))
        .collect();
    assert_eq!(
        found,
        [
            ("unknown-config", Some(8), Some("wf.yaml")),
            ("missing-config", Some(8), Some("wf.yaml")),
        ]
    );
    assert!(!files[0].has_errors() && !files[2].has_errors());
}
