//! The spanned YAML loader and `from_node`, as a workflow author meets them:
//! positions of errors, unknown-field reports, type errors with paths, and
//! hostile input refused safely.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Deserialize;
use testkube_core::diagnostic::{Diagnostic, Span};
use testkube_core::yaml::{
    FieldPath, LoadOptions, Node, NodeValue, PathSeg, ScalarStyle, decode_utf8, from_node,
    load_documents,
};

// ---------------------------------------------------------------------------
// A miniature workflow model, shaped like the real one.

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Workflow {
    api_version: Option<String>,
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
struct Metadata {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
struct Spec {
    container: Option<k8s_openapi::api::core::v1::Container>,
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
struct Step {
    name: Option<String>,
    shell: Option<String>,
    timeout: Option<String>,
    retries: Option<u32>,
    run: Option<StepRun>,
    condition: Option<Condition>,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
struct StepRun {
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: Vec<k8s_openapi::api::core::v1::EnvVar>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
enum Condition {
    Always,
    Passed,
    Failed,
    Expression(String),
}

// ---------------------------------------------------------------------------
// Helpers.

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/yaml/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(source: &str) -> Vec<Node> {
    load_documents(source, &LoadOptions::default())
        .unwrap_or_else(|d| panic!("{}", d.render(Some(source))))
}

fn load_one(source: &str) -> Node {
    let mut docs = load(source);
    assert_eq!(docs.len(), 1, "expected one document");
    docs.remove(0)
}

fn load_err(source: &str) -> Diagnostic {
    match load_documents(source, &LoadOptions::default()) {
        Ok(docs) => panic!("expected an error, loaded {} documents", docs.len()),
        Err(d) => d,
    }
}

fn path(segments: &[&str]) -> Vec<PathSeg> {
    segments
        .iter()
        .map(|s| match s.parse::<usize>() {
            Ok(i) => PathSeg::Index(i),
            Err(_) => PathSeg::Key((*s).to_owned()),
        })
        .collect()
}

fn line_col(span: Span) -> (u32, u32) {
    (span.start.line, span.start.column)
}

/// `(code, line, column, path, hint)` of each diagnostic.
fn summary(diags: &[Diagnostic]) -> Vec<(String, u32, u32, String, String)> {
    diags
        .iter()
        .map(|d| {
            let (line, col) = d.span().map_or((0, 0), line_col);
            (
                d.code().to_owned(),
                line,
                col,
                d.path().unwrap_or_default().to_owned(),
                d.hint().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Spans.

#[test]
fn spans_of_nested_keys_and_values_point_at_the_source() {
    let source = data("workflow.yaml");
    let doc = load_one(&source);

    let key = doc
        .key_span(&path(&["spec", "steps", "1", "timeout"]))
        .unwrap();
    assert_eq!(line_col(key), (19, 5));
    assert_eq!(key.text(&source), Some("timeout"));

    let value = doc.get(&path(&["spec", "steps", "1", "timeout"])).unwrap();
    assert_eq!(line_col(value.span), (19, 14));
    assert_eq!(value.span.text(&source), Some("10m"));
    assert_eq!(value.as_str(), Some("10m"));

    let item = doc
        .get(&path(&["spec", "steps", "1", "run", "command", "1"]))
        .unwrap();
    assert_eq!(line_col(item.span), (22, 22));
    assert_eq!(
        doc.key_span(&path(&["metadata", "labels", "app.kubernetes.io/name"]))
            .and_then(|s| s.text(&source)),
        Some("app.kubernetes.io/name")
    );

    // A mapping spans from its first key to its last value.
    let step = doc.get(&path(&["spec", "steps", "0"])).unwrap();
    assert_eq!(
        step.span.text(&source),
        Some("name: install\n    shell: npm ci")
    );
    assert_eq!((step.span.end.line, step.span.end.column), (17, 18));
}

#[test]
fn documents_of_a_stream_keep_their_own_positions_and_empty_ones_are_skipped() {
    let source = data("multi-doc.yaml");
    let docs = load(&source);
    let names: Vec<_> = docs
        .iter()
        .map(|d| d.get(&path(&["metadata", "name"])).and_then(Node::as_str))
        .collect();
    assert_eq!(names, [Some("first"), Some("second"), Some("third")]);
    let third = docs[2].get(&path(&["metadata", "name"])).unwrap();
    assert_eq!(line_col(third.span), (15, 9));
    assert_eq!(third.span.text(&source), Some("third"));
    assert!(load("").is_empty());
    assert!(load("---\n---\n# nothing\n...\n").is_empty());
}

#[test]
fn crlf_files_have_the_same_lines_and_columns_and_exact_byte_offsets() {
    let lf = "kind: TestWorkflow\nmetadata:\n  name: crlf\nspec:\n  steps:\n  - name: \"été\"\n    shell: echo ok\n";
    let crlf = lf.replace('\n', "\r\n");
    let (a, b) = (load_one(lf), load_one(&crlf));
    for p in [&["metadata", "name"][..], &["spec", "steps", "0", "shell"]] {
        let (na, nb) = (a.get(&path(p)).unwrap(), b.get(&path(p)).unwrap());
        assert_eq!(line_col(na.span), line_col(nb.span), "{p:?}");
        assert_eq!(nb.span.text(&crlf), na.span.text(lf));
    }
    let shell = b.get(&path(&["spec", "steps", "0", "shell"])).unwrap();
    assert_eq!(line_col(shell.span), (7, 12));
    assert_eq!(shell.as_str(), Some("echo ok"));
}

#[test]
fn columns_count_characters_and_offsets_count_bytes() {
    let source = "name: \"héllo wörld\"  # ü\nitems: [ü, 日本, x]\n\tkey: no\n";
    let err = load_err(source);
    assert_eq!(err.code(), "yaml-syntax");

    let source = "name: \"héllo wörld\"  # ü\nitems: [ü, 日本, x]\nnext:\t value\n";
    let doc = load_one(source);
    let x = doc.get(&path(&["items", "2"])).unwrap();
    assert_eq!(line_col(x.span), (2, 16));
    assert_eq!(x.span.text(source), Some("x"));
    assert_eq!(x.span.offset, source.find(", x").unwrap() + 2);
    let nihon = doc.get(&path(&["items", "1"])).unwrap();
    assert_eq!((nihon.span.start.column, nihon.span.end.column), (12, 14));
    assert_eq!(nihon.span.text(source), Some("日本"));
    // A tab after `:` is separation whitespace and counts as one column.
    let value = doc.get(&path(&["next"])).unwrap();
    assert_eq!(line_col(value.span), (3, 8));
    assert_eq!(value.as_str(), Some("value"));
}

#[test]
fn block_scalars_span_their_text_only() {
    let source = "shell: |\n  echo one\n  echo two\n\nnext: 1\n";
    let doc = load_one(source);
    let shell = doc.get_key("shell").unwrap();
    assert_eq!(shell.as_str(), Some("echo one\necho two\n"));
    assert!(matches!(
        shell.value,
        NodeValue::Scalar {
            style: ScalarStyle::Block,
            ..
        }
    ));
    assert_eq!(shell.span.text(source), Some("echo one\n  echo two"));
    assert_eq!((shell.span.end.line, shell.span.end.column), (3, 11));
}

// ---------------------------------------------------------------------------
// Scalars and JSON.

#[test]
fn plain_scalars_resolve_with_the_core_schema_and_quoted_ones_stay_strings() {
    let doc = load_one(
        "a: 5\nb: '5'\nc: -1.5e3\nd: 0x1F\ne: true\nf: yes\ng: ~\nh:\ni: !!str 7\nj: .inf\nk: \"null\"\n5: int key\n",
    );
    assert_eq!(
        doc.to_json(),
        serde_json::json!({"a": 5, "b": "5", "c": -1500.0, "d": 31, "e": true, "f": "yes",
            "g": null, "h": null, "i": "7", "j": null, "k": "null", "5": "int key"})
    );
    assert!(doc.get_key("g").unwrap().is_null());
    assert_eq!(doc.get_key("i").unwrap().as_str(), Some("7"));
}

#[test]
fn complex_keys_are_stringified_as_json() {
    let doc = load_one("? [a, 1]\n: x\n");
    assert_eq!(doc.to_json(), serde_json::json!({"[\"a\",1]": "x"}));
}

/// JSON values without floats that YAML and JSON print differently.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    // Strings: any printable text, including quotes, backslashes, unicode
    // and escapes JSON writes as `\n`, `\t`, `\u001f`.
    let string = "[ -~\t\n\u{1f}éü日本😀\"\\\\]{0,12}";
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        string.prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(string, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// JSON is YAML: loading JSON text gives back the same value, compact or
    /// pretty-printed. (Compared with the generated value, not with
    /// `serde_json::from_str`: without its `float_roundtrip` feature that
    /// parser can be one ulp off, while ours parses floats exactly.)
    #[test]
    fn loading_json_text_gives_the_same_value(value in json_value()) {
        for text in [
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let docs = load_documents(&text, &LoadOptions::default())
                .map_err(|d| TestCaseError::fail(format!("{}\n{text}", d.render(Some(&text)))))?;
            let loaded = docs.first().map_or(serde_json::Value::Null, Node::to_json);
            prop_assert_eq!(&loaded, &value, "{}", text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the text, loading returns documents or a diagnostic that
    /// renders; it never panics.
    #[test]
    fn loading_any_text_never_panics(text in "[-:?&*!|>'\"%@`#,\\[\\]{}<\n\r\t a-c0-9é]{0,48}") {
        let options = LoadOptions { max_depth: 4, max_nodes: 40, ..LoadOptions::default() };
        match load_documents(&text, &options) {
            Ok(docs) => {
                for doc in &docs {
                    let _ = doc.to_json();
                    let (_, diags) = from_node::<serde_json::Value>(doc);
                    for d in diags {
                        let _ = d.render(Some(&text));
                    }
                }
            }
            Err(d) => {
                let span = d.span();
                let rendered = d.render(Some(&text));
                prop_assert!(rendered.contains(d.message()));
                if let Some(span) = span {
                    prop_assert!(span.offset + span.len <= text.len());
                    prop_assert!(span.text(&text).is_some());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// from_node: unknown fields, types, enums.

#[test]
fn a_valid_workflow_deserializes_without_diagnostics() {
    let source = data("workflow.yaml");
    let (wf, diags) = from_node::<Workflow>(&load_one(&source));
    assert!(diags.is_empty(), "{diags:?}");
    let wf = wf.unwrap();
    assert_eq!(wf.metadata.name, "api-tests");
    assert_eq!(wf.metadata.labels["app.kubernetes.io/name"], "shop");
    assert_eq!(wf.spec.steps[1].retries, Some(2));
    // `value: 5` is the string "5" where a string is expected.
    let run = wf.spec.steps[1].run.as_ref().unwrap();
    assert_eq!(run.env[0].value.as_deref(), Some("5"));
    assert_eq!(run.command, ["npm", "test"]);
    // Kubernetes quantities keep their text: `cpu: 1.10` is not the float 1.1.
    let container = wf.spec.container.unwrap();
    let requests = container.resources.unwrap().requests.unwrap();
    assert_eq!(requests["cpu"].0, "1.10");
    assert_eq!(requests["memory"].0, "512Mi");
}

#[test]
fn every_unknown_field_is_reported_at_its_key_with_a_suggestion() {
    let source = data("unknown-fields.yaml");
    let (wf, diags) = from_node::<Workflow>(&load_one(&source));
    // Deserialization went on: the known fields are there.
    let wf = wf.unwrap();
    assert_eq!(wf.spec.steps.len(), 2);
    assert_eq!(wf.spec.steps[0].shell.as_deref(), Some("echo one"));
    assert_eq!(
        summary(&diags),
        [
            (
                "unknown-field".into(),
                5,
                3,
                "metadata.labls".into(),
                "did you mean `labels`?".into()
            ),
            (
                "unknown-field".into(),
                10,
                5,
                "spec.steps[0].timout".into(),
                "did you mean `timeout`?".into()
            ),
            (
                "unknown-field".into(),
                13,
                5,
                "spec.steps[1].shel".into(),
                "did you mean `shell`?".into()
            ),
            (
                "unknown-field".into(),
                14,
                5,
                "spec.steps[1].frobnicate".into(),
                "expected one of: name, shell, timeout, retries, run, condition".into()
            ),
        ]
    );
    assert_eq!(diags[1].message(), "unknown field `timout` in step");
    assert_eq!(diags[0].message(), "unknown field `labls` in metadata");
    assert_eq!(diags[1].span().unwrap().text(&source), Some("timout"));
}

#[test]
fn unknown_fields_in_kubernetes_types_are_reported_too() {
    let source = "kind: TestWorkflow\nmetadata: {name: k}\nspec:\n  container:\n    image: alpine\n    imagePullPolice: Always\n";
    let (_, diags) = from_node::<Workflow>(&load_one(source));
    assert_eq!(
        summary(&diags),
        [(
            "unknown-field".into(),
            6,
            5,
            "spec.container.imagePullPolice".into(),
            "did you mean `imagePullPolicy`?".into()
        )]
    );
    assert_eq!(
        diags[0].message(),
        "unknown field `imagePullPolice` in container"
    );
}

#[test]
fn a_type_error_names_the_field_path_and_the_value_position() {
    let source = "kind: TestWorkflow\nmetadata:\n  name: x\nspec:\n  steps:\n  - name: a\n  - retries: many\n";
    let (wf, diags) = from_node::<Workflow>(&load_one(source));
    assert!(wf.is_none());
    assert_eq!(
        summary(&diags),
        [(
            "invalid-type".into(),
            7,
            14,
            "spec.steps[1].retries".into(),
            "use a number, or a `{{ }}` expression where the field allows it".into()
        )]
    );
    assert_eq!(
        diags[0].message(),
        "invalid type: expected a non-negative integer, found the string \"many\""
    );
}

#[test]
fn unknown_fields_before_a_fatal_type_error_are_all_kept() {
    let source =
        "kind: TestWorkflow\nmetadata:\n  name: x\n  lables: {}\nspec:\n  steps:\n  - name: [a]\n";
    let (wf, diags) = from_node::<Workflow>(&load_one(source));
    assert!(wf.is_none());
    let codes: Vec<_> = summary(&diags)
        .into_iter()
        .map(|s| (s.0, s.1, s.3))
        .collect();
    assert_eq!(
        codes,
        [
            ("unknown-field".into(), 4, "metadata.lables".into()),
            ("invalid-type".into(), 7, "spec.steps[0].name".into()),
        ]
    );
    assert_eq!(
        diags[1].hint(),
        Some("this value is a list; give a single value")
    );
}

#[test]
fn type_errors_explain_quoted_numbers_lists_and_maps() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct T {
        count: Option<u32>,
        items: Option<Vec<String>>,
        inner: Option<Metadata>,
    }
    let cases = [
        (
            "count: \"3\"\n",
            "remove the quotes: quoted values are always strings",
        ),
        (
            "items: one\n",
            "write a list: each item on its own line starting with `- `",
        ),
        (
            "inner: text\n",
            "write `key: value` pairs, indented on the lines below",
        ),
    ];
    for (source, hint) in cases {
        let (_, diags) = from_node::<T>(&load_one(source));
        assert_eq!(diags.len(), 1, "{source}");
        assert_eq!(diags[0].hint(), Some(hint), "{source}");
        assert_eq!(line_col(diags[0].span().unwrap()), (1, 8), "{source}");
    }
    let (_, diags) = from_node::<T>(&load_one("inner:\n  labels: []\n  name: x\n"));
    assert_eq!(
        diags[0].message(),
        "invalid type: expected a map, found a sequence"
    );
    assert_eq!(diags[0].path(), Some("inner.labels"));
    let (_, diags) = from_node::<T>(&load_one("inner: {labels: {}}\n"));
    assert_eq!(diags[0].code(), "missing-field");
    assert_eq!(diags[0].message(), "missing field `name`");
    assert_eq!(diags[0].path(), Some("inner"));
}

#[test]
fn enums_accept_names_and_single_entry_maps_and_suggest_close_names() {
    let (step, diags) = from_node::<Step>(&load_one("condition: always\n"));
    assert!(diags.is_empty());
    assert_eq!(step.unwrap().condition, Some(Condition::Always));
    let (step, _) = from_node::<Step>(&load_one("condition:\n  expression: passed && x\n"));
    assert_eq!(
        step.unwrap().condition,
        Some(Condition::Expression("passed && x".into()))
    );

    let source = "name: a\ncondition: allways\n";
    let (step, diags) = from_node::<Step>(&load_one(source));
    assert!(step.is_none());
    assert_eq!(
        summary(&diags),
        [(
            "unknown-variant".into(),
            2,
            12,
            "condition".into(),
            "did you mean `always`?".into()
        )]
    );
    assert_eq!(
        diags[0].message(),
        "unknown value `allways`",
        "with a close match, the hint says it all"
    );

    let (_, diags) = from_node::<Step>(&load_one("condition: {always: 1, passed: 2}\n"));
    assert_eq!(diags[0].code(), "invalid-type");
}

#[test]
fn nulls_are_none_or_empty_and_any_scalar_is_a_string() {
    let (step, diags) = from_node::<Step>(&load_one("name: 42\nshell: true\ntimeout:\nrun:\n"));
    assert!(diags.is_empty(), "{diags:?}");
    let step = step.unwrap();
    assert_eq!(step.name.as_deref(), Some("42"));
    assert_eq!(step.shell.as_deref(), Some("true"));
    assert_eq!(step.timeout, None);
    assert_eq!(step.run, None);
    let (spec, _) = from_node::<Spec>(&load_one("steps:\n"));
    assert!(spec.unwrap().steps.is_empty());
    let (value, diags) = from_node::<serde_json::Value>(&load_one("a: [1, x, 2.5, null]\n"));
    assert!(diags.is_empty());
    assert_eq!(
        value.unwrap(),
        serde_json::json!({"a": [1, "x", 2.5, null]})
    );
}

#[test]
fn field_paths_display_like_the_spec_shows_them() {
    let mut p = FieldPath::default();
    p.push("spec");
    p.push("steps");
    p.push(0);
    assert_eq!(p.child("name").to_string(), "spec.steps[0].name");
    assert_eq!(p.segments().len(), 3);
}

// ---------------------------------------------------------------------------
// Load errors.

#[test]
fn duplicate_keys_are_errors_at_the_second_key() {
    let source = "metadata:\n  name: a\n  labels: {}\n  name: b\n";
    let err = load_err(source);
    assert_eq!(err.code(), "duplicate-key");
    assert_eq!(line_col(err.span().unwrap()), (4, 3));
    assert_eq!(err.message(), "duplicate key `name` in this mapping");
    // Keys compare by their text, whatever the quoting.
    assert_eq!(load_err("a: 1\n'a': 2\n").code(), "duplicate-key");
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let err = load_err("spec:\n  steps:\n  - name: a\n   shell: b\n");
    assert_eq!(err.code(), "yaml-syntax");
    assert_eq!(line_col(err.span().unwrap()), (4, 4));
    assert_eq!(
        err.message(),
        "invalid YAML: while parsing a block mapping, did not find expected key"
    );
    let err = load_err("a: [1, 2\nb: 3\n");
    assert_eq!(err.code(), "yaml-syntax");
    let err = load_err("spec:\n\tsteps: []\n");
    assert_eq!(
        err.hint(),
        Some("indent with spaces: YAML does not allow tabs for indentation")
    );
    assert_eq!(line_col(err.span().unwrap()).0, 2);
}

#[test]
fn merge_keys_merge_mappings_and_explicit_keys_win() {
    let source = data("merge-keys.yaml");
    let doc = load_one(&source);
    assert_eq!(
        doc.get_key("steps").unwrap().to_json(),
        serde_json::json!([
            {"name": "explicit wins", "image": "busybox", "workingDir": "/data", "env": {"CI": "1"}},
            {"name": "several sources", "image": "alpine:3.20", "workingDir": "/data",
             "env": {"CI": "1"}, "shell": "echo hi"},
        ])
    );
    // Merged values keep the position where they are written (the anchor).
    let merged = doc.get(&path(&["steps", "0", "workingDir"])).unwrap();
    assert_eq!(line_col(merged.span), (3, 15));

    let err = load_err("a: &a [1]\nb:\n  <<: *a\n");
    assert_eq!(err.code(), "invalid-merge");
    assert_eq!(line_col(err.span().unwrap()), (3, 7));
    assert_eq!(load_err("b:\n  <<: text\n").code(), "invalid-merge");
    // A quoted "<<" is an ordinary key.
    assert_eq!(
        load_one("'<<': 1\n").to_json(),
        serde_json::json!({"<<": 1})
    );
}

#[test]
fn aliases_expand_to_copies_of_their_anchor() {
    let doc = load_one("base: &b {image: alpine, env: [A, B]}\none: *b\ntwo: [*b, &s str, *s]\n");
    assert_eq!(
        doc.to_json(),
        serde_json::json!({"base": {"image": "alpine", "env": ["A", "B"]},
            "one": {"image": "alpine", "env": ["A", "B"]},
            "two": [{"image": "alpine", "env": ["A", "B"]}, "str", "str"]})
    );
    // An expansion is shown where the alias is written; its insides where
    // the anchor is.
    let one = doc.get_key("one").unwrap();
    assert_eq!(line_col(one.span), (2, 6));
    let image = one.get_key("image").unwrap();
    assert_eq!(line_col(image.span), (1, 18));
    // Anchors belong to their document.
    assert_eq!(load_err("a: &x 1\n---\nb: *x\n").code(), "unknown-anchor");
}

#[test]
fn a_recursive_alias_is_refused() {
    let err = load_err("a: &a [1, *a]\n");
    assert!(
        ["unknown-anchor", "yaml-syntax"].contains(&err.code()),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Hostile input.

#[test]
fn the_billion_laughs_alias_bomb_is_refused() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in b'b'..=b'i' {
        let prev = char::from(level - 1);
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!(
            "{}: &{} [{refs}]\n",
            char::from(level),
            char::from(level)
        ));
    }
    let err = load_err(&bomb);
    assert_eq!(err.code(), "budget");
    assert!(
        err.message()
            .contains("aliases expand to more than 100000 nodes"),
        "{err}"
    );
    // It stops at the first alias that would go over, before expanding it:
    // the first `*e` of line 6 (e expands to 66,430 nodes).
    assert_eq!(line_col(err.span().unwrap()), (6, 8));
}

/// Expansion gets a node budget of its own: the same nodes written out
/// load, while aliases producing them are refused. An alias inside an
/// anchor is counted once, as part of that anchor's expansion.
#[test]
fn aliases_have_a_node_budget_of_their_own() {
    let written = format!("a: [{}]\n", vec!["x"; 150_000].join(","));
    assert!(load_documents(&written, &LoadOptions::default()).is_ok());
    let mut aliased = format!("a: &a [{}]\nb: [", vec!["x"; 50_000].join(","));
    aliased.push_str("*a, *a]\n");
    let err = load_documents(&aliased, &LoadOptions::default()).unwrap_err();
    assert_eq!(
        err.message(),
        "the document is too large: aliases expand to more than 100000 nodes"
    );
    assert_eq!(line_col(err.span().unwrap()), (2, 9));

    let options = LoadOptions {
        max_alias_nodes: 32,
        ..LoadOptions::default()
    };
    // b: 2 × 5 = 10 expanded nodes; c: 2 × 11 = 22 more, 32 in all.
    let nested = "a: &a [1, 2, 3, 4]\nb: &b [*a, *a]\nc: [*b, *b]\n";
    assert!(load_documents(nested, &options).is_ok());
    let over = "a: &a [1, 2, 3, 4]\nb: &b [*a, *a]\nc: [*b, *b, *a]\n";
    let err = load_documents(over, &options).unwrap_err();
    assert_eq!(line_col(err.span().unwrap()), (3, 13));
}

#[test]
fn a_long_string_aliased_many_times_is_refused_by_the_byte_budget() {
    let options = LoadOptions {
        max_alias_bytes: 1024 * 1024,
        ..LoadOptions::default()
    };
    let mut source = format!("s: &s \"{}\"\nl: [", "x".repeat(100_000));
    source.push_str(&vec!["*s"; 20].join(","));
    source.push_str("]\n");
    let err = load_documents(&source, &options).unwrap_err();
    assert_eq!(err.code(), "budget");
    assert!(err.message().contains("bytes of text"), "{err}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let flow = "[".repeat(10_000);
    let block = "- ".repeat(10_000) + "x\n";
    let mut mapping = String::new();
    for _ in 0..10_000 {
        mapping.push_str("{a: ");
    }
    for source in [flow, block, mapping] {
        let err = load_err(&source);
        assert!(
            err.code() == "budget" || err.code() == "yaml-syntax",
            "{}",
            err
        );
    }
    let err = load_err(&"- ".repeat(10_000));
    assert_eq!(err.code(), "budget");
    assert_eq!(
        err.message(),
        "the document is nested more than 128 levels deep"
    );
    // Up to the limit is fine.
    let ok = "[".repeat(128) + &"]".repeat(128);
    assert_eq!(load(&ok).len(), 1);
    assert_eq!(
        load_err(&("[".repeat(129) + &"]".repeat(129))).code(),
        "budget"
    );
}

#[test]
fn aliases_cannot_nest_deeper_than_the_depth_limit() {
    let options = LoadOptions {
        max_depth: 8,
        ..LoadOptions::default()
    };
    // The root mapping, two sequences and the alias's five levels: 8.
    let ok = "a: &a [[[[[1]]]]]\nb: [[*a]]\n";
    assert!(load_documents(ok, &options).is_ok());
    let deep = "a: &a [[[[[1]]]]]\nb: [[[*a]]]\n";
    assert_eq!(load_documents(deep, &options).unwrap_err().code(), "budget");
}

#[test]
fn a_huge_file_is_refused_by_size_before_parsing() {
    let huge = "# padding\n".repeat(1_700_000);
    let err = load_err(&huge);
    assert_eq!(err.code(), "budget");
    assert!(
        err.message().starts_with("the file is 17000000 bytes"),
        "{err}"
    );
    assert!(err.span().is_none());
}

#[test]
fn too_many_nodes_are_refused() {
    let options = LoadOptions {
        max_nodes: 1000,
        ..LoadOptions::default()
    };
    let source = "- x\n".repeat(1000);
    assert_eq!(
        load_documents(&source, &options).unwrap_err().code(),
        "budget"
    );
    assert!(load_documents(&"- x\n".repeat(998), &options).is_ok());
}

#[test]
fn invalid_utf8_is_reported_at_its_line_and_column() {
    let path = format!(
        "{}/tests/data/yaml/invalid-utf8.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).unwrap();
    let err = decode_utf8(&bytes)
        .unwrap_err()
        .with_file("invalid-utf8.yaml");
    assert_eq!(line_col(err.span().unwrap()), (3, 12));
    insta::assert_snapshot!(err.render(None), @r"
    invalid-utf8.yaml:3:12: error: the file is not valid UTF-8 (byte 0xE9)
       = help: save the file as UTF-8
    ");
}

/// The same hostile inputs through `load_file`, the entry `testkube
/// validate` uses: each is refused with one diagnostic that names the file
/// and says what is wrong, and nothing is read from it.
#[test]
fn load_file_refuses_hostile_files_with_one_clear_diagnostic() {
    let mut bomb = String::from(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: lol}\n\
         a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in b'b'..=b'j' {
        let previous = char::from(level - 1);
        let refs = vec![format!("*{previous}"); 9].join(", ");
        let name = char::from(level);
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let deep = "spec:\n  steps:\n    ".to_owned() + &"- ".repeat(10_000) + "x\n";
    let mut huge_scalar = String::from("metadata:\n  name: ");
    huge_scalar.push_str(&"x".repeat(20 * 1024 * 1024));
    let not_utf8 = b"kind: TestWorkflow\nmetadata:\n  name: caf\xE9\n".to_vec();

    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        (
            "bomb.yaml",
            bomb.into_bytes(),
            "budget",
            "the document is too large: aliases expand to more than 100000 nodes",
        ),
        (
            "deep.yaml",
            deep.into_bytes(),
            "budget",
            "the document is nested more than 128 levels deep",
        ),
        (
            "huge.yaml",
            huge_scalar.into_bytes(),
            "budget",
            "the file is 20971538 bytes, more than the limit of 16777216 bytes",
        ),
        (
            "latin1.yaml",
            not_utf8,
            "invalid-utf8",
            "the file is not valid UTF-8 (byte 0xE9)",
        ),
    ];
    for (name, bytes, code, message) in cases {
        let file = testkube_core::load_file(name, &bytes, &LoadOptions::default());
        assert_eq!(file.diagnostics.len(), 1, "{name}: {:#?}", file.diagnostics);
        let diagnostic = &file.diagnostics[0];
        assert_eq!(diagnostic.code(), code, "{name}: {diagnostic}");
        assert!(
            diagnostic.message().starts_with(message),
            "{name}: {diagnostic}"
        );
        assert!(diagnostic.hint().is_some(), "{name}: no hint: {diagnostic}");
        assert_eq!(diagnostic.file(), Some(name));
        assert!(file.documents.is_empty(), "{name}: a document was read");
        let rendered = diagnostic.render(file.source.as_deref());
        assert!(rendered.starts_with(name), "{rendered}");
    }
}

// ---------------------------------------------------------------------------
// Rendered diagnostics.

fn render_all(file: &str, source: &str, diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.clone().with_file(file).render(Some(source)))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn rendered_unknown_field_diagnostics() {
    let source = data("unknown-fields.yaml");
    let (_, diags) = from_node::<Workflow>(&load_one(&source));
    insta::assert_snapshot!(render_all("unknown-fields.yaml", &source, &diags[1..3]), @r"
    unknown-fields.yaml:10:5: error: unknown field `timout` in step
       |
    10 |     timout: 5m
       |     ^^^^^^
       = field: spec.steps[0].timout
       = help: did you mean `timeout`?

    unknown-fields.yaml:13:5: error: unknown field `shel` in step
       |
    13 |     shel: echo two
       |     ^^^^
       = field: spec.steps[1].shel
       = help: did you mean `shell`?
    ");
}

#[test]
fn rendered_type_syntax_and_budget_diagnostics() {
    let source = "spec:\n  steps:\n  - name: a\n    retries: \"3\"\n";
    let (_, diags) = from_node::<Workflow>(&load_one(source));
    let missing = diags.iter().find(|d| d.code() == "invalid-type").cloned();
    insta::assert_snapshot!(render_all("wf.yaml", source, &[missing.unwrap()]), @r#"
    wf.yaml:4:14: error: invalid type: expected a non-negative integer, found the string "3"
      |
    4 |     retries: "3"
      |              ^^^
      = field: spec.steps[0].retries
      = help: remove the quotes: quoted values are always strings
    "#);

    let source = "spec:\n  steps:\n  - name: a\n   shell: b\n";
    insta::assert_snapshot!(render_all("wf.yaml", source, &[load_err(source)]), @r"
    wf.yaml:4:4: error: invalid YAML: while parsing a block mapping, did not find expected key
      |
    4 |    shell: b
      |    ^
    ");

    let source = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
    let options = LoadOptions {
        max_nodes: 15,
        ..LoadOptions::default()
    };
    let err = load_documents(source, &options).unwrap_err();
    insta::assert_snapshot!(render_all("bomb.yaml", source, &[err]), @r"
    bomb.yaml:3:5: error: the document is too large: aliases expand to more than 15 nodes
      |
    3 | c: [*b, *b]
      |     ^^
      = help: a YAML alias bomb? reduce the use of anchors and aliases (`&name`, `*name`)
    ");
}
