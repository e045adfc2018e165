//! Integration tests of the expression language: golden cases for every
//! function (tests/data/expr/functions.txt), the partial-evaluation property
//! (evaluating in stages equals evaluating at once), printing round trips,
//! templates, static checks and hostile input.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use testkube_core::expr::{
    Checker, EmptyContext, Expr, ExprErrorKind, MapContext, Template, evaluate_template_str,
};

// ---------------------------------------------------------------- golden --

fn golden_context() -> MapContext {
    MapContext::new()
        .with(
            "config",
            json!({"workers": 3, "name": "api", "enabled": true, "list": [1, 2, 3],
                   "browsers": ["chrome", "firefox"], "empty": ""}),
        )
        .with("matrix.browser", json!("firefox"))
        .with(
            "services",
            json!({"db": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}),
        )
        .with("execution", json!({"id": "exec-1"}))
        .with_now(
            Utc.with_ymd_and_hms(2024, 6, 4, 11, 59, 32).unwrap()
                + chrono::Duration::milliseconds(308),
        )
        .with_working_dir("/data/repo")
        .with_file("/data/repo/a.txt", "hello\n")
        .with_file("/data/repo/src/x.js", "x")
        .with_file("/data/repo/src/y.ts", "y")
        .with_file("/data/repo/src/deep/z.js", "z")
        .with_secret("db", "password", "s3cret")
}

#[test]
fn golden_functions() {
    let text = include_str!("data/expr/functions.txt");
    let ctx = golden_context();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((source, expected)) = line.split_once(" => ") else {
            panic!("line {}: no ` => `: {line}", number + 1);
        };
        cases += 1;
        let source = source.trim();
        let result = Expr::parse(source).and_then(|e| e.evaluate(&ctx));
        let problem = match (
            expected.strip_prefix("error: "),
            expected.strip_prefix("partial: "),
            &result,
        ) {
            (Some(want), _, Err(e))
                if e.message().contains(want) || e.hint().is_some_and(|h| h.contains(want)) =>
            {
                None
            }
            (Some(want), _, other) => {
                Some(format!("expected an error with {want:?}, got {other:?}"))
            }
            (_, Some(want), Ok(e)) if !e.is_literal() && e.to_string() == want => None,
            (_, Some(want), other) => {
                Some(format!("expected partial `{want}`, got {}", show(other)))
            }
            (None, None, Ok(e)) => {
                let want: Value = serde_json::from_str(expected).unwrap_or_else(|err| {
                    panic!("line {}: bad JSON {expected}: {err}", number + 1)
                });
                (e.value() != Some(&want))
                    .then(|| format!("expected {want}, got {}", show(&result)))
            }
            (None, None, Err(e)) => Some(format!("expected {expected}, got error: {e}")),
        };
        if let Some(problem) = problem {
            failures.push(format!("line {}: {source}\n    {problem}", number + 1));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} golden cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases > 300, "only {cases} cases read");
}

fn show(result: &Result<Expr, testkube_core::expr::ExprError>) -> String {
    match result {
        Ok(e) => format!("`{e}`"),
        Err(e) => format!("error: {e}"),
    }
}

// --------------------------------------------------------------- behaviour --

fn eval(source: &str, ctx: &MapContext) -> Expr {
    Expr::parse(source).unwrap().evaluate(ctx).unwrap()
}

#[test]
fn the_readme_example_resolves_in_two_stages() {
    let e = Expr::parse("passed && config.enabled").unwrap();
    let planned = e
        .evaluate(&MapContext::new().with("config.enabled", json!(true)))
        .unwrap();
    assert_eq!(planned.to_string(), "passed && true");
    let as_condition = planned.clone().into_condition();
    assert_eq!(as_condition.to_string(), "bool(passed)");
    let ctx = MapContext::new().with("passed", json!(true));
    assert_eq!(planned.evaluate(&ctx).unwrap().value(), Some(&json!(true)));
    assert_eq!(
        as_condition.evaluate(&ctx).unwrap().value(),
        Some(&json!(true))
    );
}

#[test]
fn longest_known_name_wins_and_roots_can_be_whole_objects() {
    let ctx = MapContext::new()
        .with("config", json!({"x": {"y": 1}}))
        .with("config.x.y", json!(2));
    assert_eq!(eval("config.x.y", &ctx).value(), Some(&json!(2)));
    assert_eq!(eval("config.x", &ctx).value(), Some(&json!({"y": 1})));
    assert_eq!(eval("config[\"x\"][\"y\"]", &ctx).value(), Some(&json!(2)));
}

#[test]
fn variables_lists_remaining_dotted_names() {
    let e = Expr::parse(
        "config.a + env.HOME + services.db.*.ip + m[k] + map(l, \"_.value + env.X\") + f(config.a)",
    )
    .unwrap();
    assert_eq!(
        e.variables(),
        [
            "config.a",
            "env.HOME",
            "services.db",
            "m",
            "k",
            "l",
            "env.X"
        ]
    );
    let partial = e
        .evaluate(&MapContext::new().with("env", json!({"HOME": "/root", "X": 1})))
        .unwrap_err();
    assert_eq!(partial.kind(), ExprErrorKind::UnknownFunction);
    let e = Expr::parse("services.db[0].ip").unwrap();
    assert_eq!(e.variables(), ["services.db.0.ip"]);
    assert_eq!(
        Expr::parse("file(\"a\") + date()").unwrap().functions(),
        ["file", "date"]
    );
}

#[test]
fn resolve_requires_a_value_and_names_what_is_missing() {
    let err = Expr::parse("config.a + env.B")
        .unwrap()
        .resolve(&EmptyContext)
        .unwrap_err();
    assert_eq!(err.kind(), ExprErrorKind::Unresolved);
    assert!(err.message().contains("config.a, env.B"), "{err}");
    let err = Expr::parse("file(\"x\")")
        .unwrap()
        .resolve(&EmptyContext)
        .unwrap_err();
    assert!(err.message().contains("file()"), "{err}");
    assert_eq!(
        Expr::parse("1 + 1")
            .unwrap()
            .resolve(&EmptyContext)
            .unwrap(),
        json!(2)
    );
}

#[test]
fn run_time_functions_stay_symbolic_without_hooks() {
    for source in [
        "date()",
        "file(\"a\")",
        "glob(\"*\")",
        "secret(\"a\", \"b\")",
        "abspath(\"x\")",
        "relpath(\"/x\")",
    ] {
        let e = eval(source, &MapContext::new());
        assert!(!e.is_literal(), "{source} resolved without a hook");
        assert_eq!(e.to_string(), source);
    }
    // An absolute path needs no working directory.
    assert_eq!(
        eval("abspath(\"/a/./b\")", &MapContext::new()).value(),
        Some(&json!("/a/b"))
    );
}

#[test]
fn errors_point_at_the_culprit() {
    let source = "config.a + (10 / 0)";
    let err = Expr::parse(source)
        .unwrap()
        .evaluate(&MapContext::new())
        .unwrap_err();
    assert_eq!(err.kind(), ExprErrorKind::DivisionByZero);
    assert_eq!(&source[err.span().range()], "10 / 0");

    let source = "len(x) + lenn(y)";
    let err = Expr::parse(source)
        .unwrap()
        .evaluate(&MapContext::new())
        .unwrap_err();
    assert_eq!(&source[err.span().range()], "lenn(y)");
    assert_eq!(err.hint(), Some("did you mean `len`?"));

    let source = "[1, 2] + )";
    let err = Expr::parse(source).unwrap_err();
    assert_eq!(err.kind(), ExprErrorKind::Syntax);
    assert_eq!(err.span().start, 9);
}

#[test]
fn checker_reports_functions_arity_and_undeclared_config() {
    let checker = Checker::new().with_config(["workers", "name"]);
    let e = Expr::parse(
        "config.worker + config.name + config[\"name\"] + lenn(1) + len(1, 2) + join(x...) + join(a, b, c, d...) + map(l, \"_.value + config.nope\") + eval(\"(\")",
    )
    .unwrap();
    let errors = e.check(&checker);
    let kinds: Vec<_> = errors.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            ExprErrorKind::UndeclaredConfig,
            ExprErrorKind::UnknownFunction,
            ExprErrorKind::Arity,
            ExprErrorKind::Arity,
            ExprErrorKind::UndeclaredConfig,
            ExprErrorKind::Syntax,
        ],
        "{errors:#?}"
    );
    assert_eq!(errors[0].hint(), Some("did you mean `config.workers`?"));
    assert!(
        errors[2]
            .message()
            .contains("len() takes 1 argument, 2 given")
    );
    // Without declared names, config references are not checked.
    assert_eq!(
        Expr::parse("config.anything")
            .unwrap()
            .check(&Checker::new()),
        []
    );
}

// --------------------------------------------------------------- templates --

#[test]
fn templates_render_partially_and_escape_braces() {
    let ctx = MapContext::new().with("config", json!({"v": 20, "list": [1, 2]}));
    let t =
        evaluate_template_str("node:{{ config.v }} {{config.list}} {{ env.X }}!", &ctx).unwrap();
    assert_eq!(t.to_string(), "node:20 1,2 {{ env.X }}!");
    assert_eq!(t.variables(), ["env.X"]);
    assert!(!t.is_literal());

    let t = Template::parse(r#"foo{{"{{"}}bar{{ "}}" }}baz{{}}"#).unwrap();
    assert_eq!(t.as_string().as_deref(), Some("foo{{bar}}baz"));
    assert_eq!(t.to_string(), r#"foo{{"{{"}}bar}}baz"#);
    assert_eq!(Template::parse(&t.to_string()).unwrap(), t);

    // A `{` before an expression must not merge into `{{{`.
    let t = Template::parse(r#"a{{"{"}}{{ x }}"#).unwrap();
    assert_eq!(t.to_string(), r#"a{{"{"}}{{ x }}"#);
    assert_eq!(Template::parse(&t.to_string()).unwrap(), t);
    let done = t.evaluate(&MapContext::new().with("x", json!(1))).unwrap();
    assert_eq!(done.as_string().as_deref(), Some("a{1"));

    // Object literals inside `{{ }}`.
    let t = evaluate_template_str(r#"{{ {"a": {"b": 1}}.a.b }}}"#, &EmptyContext).unwrap();
    assert_eq!(t.as_string().as_deref(), Some("1}"));
}

#[test]
fn template_errors_carry_offsets_into_the_whole_string() {
    let source = "abc {{ 1 + }} def";
    let err = Template::parse(source).unwrap_err();
    assert_eq!(err.span().start, 11, "{err}");
    let err = Template::parse("abc {{ x").unwrap_err();
    assert_eq!(err.span().range(), 4..6);
    assert!(err.message().contains("not closed"));
    let err = Template::parse("abc {{ x y }}").unwrap_err();
    assert_eq!(err.span().start, 9);
    let source = "ab {{ 1 / 0 }}";
    let err = Template::parse(source)
        .unwrap()
        .evaluate(&EmptyContext)
        .unwrap_err();
    assert_eq!(&source[err.span().range()], "1 / 0");
}

#[test]
fn template_sole_expression_and_render() {
    let t = Template::parse("  {{ config.list }} ").unwrap();
    assert_eq!(
        t.sole_expression().map(ToString::to_string).as_deref(),
        Some("config.list")
    );
    assert!(
        Template::parse("a {{ x }}")
            .unwrap()
            .sole_expression()
            .is_none()
    );
    let err = Template::parse("{{ env.A }}")
        .unwrap()
        .render(&EmptyContext)
        .unwrap_err();
    assert_eq!(err.kind(), ExprErrorKind::Unresolved);
    assert_eq!(Template::literal("x").render(&EmptyContext).unwrap(), "x");
}

// ----------------------------------------------------------------- limits --

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for source in [
        "(".repeat(10_000) + "1" + &")".repeat(10_000),
        "[".repeat(10_000) + &"]".repeat(10_000),
        "!".repeat(10_000) + "x",
        "-".repeat(10_000) + "x",
        vec!["1"; 10_000].join(" + "),
        "a".to_string() + &".b".repeat(10_000),
        "f(".repeat(10_000),
    ] {
        let err = Expr::parse(&source).unwrap_err();
        assert_eq!(err.kind(), ExprErrorKind::TooDeep, "{}", &source[..20]);
    }
    // The deepest accepted trees print to source that parses again, and can
    // be evaluated and dropped on a test thread's 2 MiB stack (debug build).
    let deepest = [
        "(".repeat(29) + "x" + &" + 1)".repeat(29),
        "x".to_string() + &" + 1".repeat(29),
        "-".repeat(29) + "x",
        "f(".repeat(29) + "x" + &")".repeat(29),
        "[".repeat(29) + "x" + &"]".repeat(29),
        "x".to_string() + &".a".repeat(29),
        "a ? ".repeat(29) + "x" + &" : b".repeat(29),
        "1 + (".repeat(29) + "x" + &")".repeat(29),
    ];
    for source in deepest {
        let e = Expr::parse(&source).unwrap_or_else(|err| panic!("{source}: {err}"));
        let round = Expr::parse(&e.to_string()).unwrap_or_else(|err| panic!("{e}: {err}"));
        assert_eq!(round, e);
        let _ = e.evaluate(&MapContext::new().with("x", json!(1)));
        assert!(Expr::parse(&format!("!!({source})")).is_err(), "{source}");
        assert!(Expr::parse(&format!("-({source})")).is_err(), "-({source})");
    }
    let e = Expr::parse(&("(".repeat(29) + "x" + &" + 1)".repeat(29))).unwrap();
    let v = e.evaluate(&MapContext::new().with("x", json!(1))).unwrap();
    assert_eq!(v.value(), Some(&json!(30)));
    // A result deeper than any parsed tree is refused too.
    let inner = "[".repeat(20) + "x" + &"]".repeat(20);
    let source = format!("{}eval({:?}){}", "[".repeat(20), inner, "]".repeat(20));
    let err = Expr::parse(&source)
        .unwrap()
        .evaluate(&EmptyContext)
        .unwrap_err();
    assert_eq!(err.kind(), ExprErrorKind::TooDeep);
}

#[test]
fn self_referencing_eval_hits_the_depth_limit() {
    let ctx = MapContext::new().with("x", json!("eval(x)"));
    let err = Expr::parse("eval(x)").unwrap().evaluate(&ctx).unwrap_err();
    assert_eq!(err.kind(), ExprErrorKind::TooDeep);
}

#[test]
fn runaway_work_and_sizes_are_limited() {
    let err = eval_err("map(range(100000), \"range(1000)\")");
    assert_eq!(err.kind(), ExprErrorKind::LimitExceeded);
    let nested = (0..25).fold("\"\\\"\"".to_string(), |acc, _| format!("tojson({acc})"));
    let err = eval_err(&nested);
    assert_eq!(err.kind(), ExprErrorKind::LimitExceeded);
}

fn eval_err(source: &str) -> testkube_core::expr::ExprError {
    Expr::parse(source)
        .unwrap()
        .evaluate(&EmptyContext)
        .unwrap_err()
}

#[test]
fn huge_flat_input_parses_quickly() {
    let list = format!("[{}]", vec!["1"; 200_000].join(", "));
    let e = Expr::parse(&list).unwrap();
    assert_eq!(
        e.value().and_then(Value::as_array).map(Vec::len),
        Some(200_000)
    );
    let text = "x".repeat(1 << 20);
    let t = Template::parse(&format!("{text}{{{{ 1 }}}}{text}")).unwrap();
    assert_eq!(t.as_string().map(|s| s.len()), Some(2 << 20 | 1));
}

// -------------------------------------------------------------- properties --

/// Source of a random expression over the variables `a`, `b`, `s` and
/// `cfg.x`, `cfg.y`, `cfg.list`, built from every construct but `any()`.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (-3i64..12).prop_map(|i| i.to_string()),
        prop::sample::select(vec!["0.5", "2.5", "-1.5", "1e2"]).prop_map(String::from),
        prop::sample::select(vec![
            "\"a\"",
            "\"10\"",
            "\"\"",
            "'x y'",
            "\"0\"",
            "\"off\"",
            "true",
            "false",
            "null",
            "[1, 2, 3]",
            "[]",
            "[\"a\", \"b\"]",
            "{\"k\": 1}",
            "{\"k\": \"v\", \"n\": [1]}",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "a",
            "b",
            "s",
            "cfg.x",
            "cfg.y",
            "cfg.list",
            "cfg[\"x\"]",
            "cfg.list.0",
            "cfg.list.*",
            "a.k",
            "a[1]",
            "cfg[s]",
        ])
        .prop_map(String::from),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let op = prop::sample::select(vec![
            "&&", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "**",
        ]);
        let lambda = prop::sample::select(vec![
            "_.value",
            "_.index + 1",
            "_.value + a",
            "bool(_.value) && b",
            "_.key",
            "1 / _.value",
        ]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            inner.clone().prop_map(|x| format!("!({x})")),
            inner.clone().prop_map(|x| format!("-({x})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, t, f)| format!("({c}) ? ({t}) : ({f})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("[{x}, {y}]")),
            inner
                .clone()
                .prop_map(|x| format!("{{\"k\": {x}, \"c\": 1}}")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x})[{y}]")),
            inner.clone().prop_map(|x| format!("({x}).k")),
            inner.clone().prop_map(|x| format!("({x}).*.k")),
            (inner.clone(), lambda.clone())
                .prop_map(|(x, l)| format!("map({x}, {})", Value::from(l))),
            (inner.clone(), lambda).prop_map(|(x, l)| format!("filter({x}, {})", Value::from(l))),
            (
                prop::sample::select(vec![
                    "len",
                    "string",
                    "int",
                    "bool",
                    "join",
                    "split",
                    "tojson",
                    "trim",
                    "float",
                    "floor",
                    "entries",
                    "shellquote"
                ]),
                inner.clone()
            )
                .prop_map(|(f, x)| format!("{f}({x})")),
            (
                prop::sample::select(vec![
                    "at", "string", "join", "split", "range", "chunk", "list", "slice"
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(f, x, y)| format!("{f}({x}, {y})")),
            inner.clone().prop_map(|x| format!("string({x}...)")),
            inner.clone().prop_map(|x| format!("eval(tojson({x}))")),
            inner
                .clone()
                .prop_map(|x| format!("eval(\"a + b\") + ({x})")),
        ]
    })
}

/// A small random JSON value.
fn json_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        (-3i64..12).prop_map(Value::from),
        prop::sample::select(vec![0.5, -2.5, 3.0]).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "1", "x y", "0", "k"]).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    prop_oneof![
        3 => scalar.clone(),
        1 => prop::collection::vec(scalar.clone(), 0..4).prop_map(Value::Array),
        1 => scalar.prop_map(|v| json!({"k": v})),
    ]
}

/// Variable values and, for each, whether stage A (true) or B knows it.
#[derive(Debug, Clone)]
struct Stages {
    values: Vec<(&'static str, Value, bool)>,
    /// Whether `cfg` is given whole (as an object) or by dotted names.
    cfg_whole: Option<bool>,
}

fn stages() -> impl Strategy<Value = Stages> {
    let names = ["a", "b", "s", "cfg.x", "cfg.y", "cfg.list"];
    (
        prop::collection::vec((json_value(), any::<bool>()), names.len()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(move |(values, cfg_whole)| Stages {
            values: names
                .iter()
                .zip(values)
                .map(|(n, (v, stage))| (*n, v, stage))
                .collect(),
            cfg_whole,
        })
}

impl Stages {
    /// The context of stage A (`Some(true)`), B (`Some(false)`) or both.
    fn context(&self, stage: Option<bool>) -> MapContext {
        let mut ctx = MapContext::new();
        let mut cfg = serde_json::Map::new();
        let cfg_stage = self.cfg_whole.unwrap_or(true);
        for (name, value, in_a) in &self.values {
            match name.strip_prefix("cfg.") {
                Some(key) if self.cfg_whole.is_some() => {
                    cfg.insert(key.to_string(), value.clone());
                }
                _ if stage.is_none_or(|s| s == *in_a) => ctx.insert(*name, value.clone()),
                _ => {}
            }
        }
        if self.cfg_whole.is_some() && stage.is_none_or(|s| s == cfg_stage) {
            ctx.insert("cfg", Value::Object(cfg));
        }
        ctx
    }
}

fn assert_round_trip(e: &Expr) -> Result<(), TestCaseError> {
    let printed = e.to_string();
    let reparsed = Expr::parse(&printed)
        .map_err(|err| TestCaseError::fail(format!("`{printed}` does not parse: {err}")))?;
    prop_assert_eq!(&reparsed, e, "`{}` reparses differently", printed);
    prop_assert_eq!(reparsed.to_string(), printed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    /// The main property of the module: for any expression and any split of
    /// the variables into two stages, evaluating stage A, printing and
    /// re-parsing the result, then evaluating stage B gives what evaluating
    /// with everything at once gives (the same value, or an error in both).
    #[test]
    fn evaluating_in_stages_equals_evaluating_at_once(source in expression(), stages in stages()) {
        let e = Expr::parse(&source).map_err(|err| TestCaseError::fail(format!("{source}: {err}")))?;
        assert_round_trip(&e)?;
        let at_once = e.evaluate(&stages.context(None));
        let first = e.evaluate(&stages.context(Some(true)));
        let staged = match &first {
            Ok(partial) => {
                assert_round_trip(partial)?;
                Expr::parse(&partial.to_string()).unwrap().evaluate(&stages.context(Some(false)))
            }
            Err(err) => Err(err.clone()),
        };
        // When something stays unknown (e.g. `cfg[s]` with `cfg` given by
        // dotted names only), both results are partial and may differ in
        // form; a value or an error must be the same either way.
        let outcome = |r: &Result<Expr, _>| match r {
            Ok(e) => e.value().map(|v| Some(v.clone())),
            Err(_) => Some(None),
        };
        if outcome(&at_once).is_some() || outcome(&staged).is_some() {
            prop_assert_eq!(outcome(&at_once), outcome(&staged), "source: {}\nat once: {}\nafter A: {}\nstaged: {}",
                source, show(&at_once), show(&first), show(&staged));
        }
        // Evaluating again changes nothing.
        if let Ok(x) = &at_once {
            prop_assert_eq!(&x.evaluate(&stages.context(None)).unwrap(), x);
        }
    }

    /// Evaluating with nothing known and then with everything is the same as
    /// evaluating with everything.
    #[test]
    fn constant_folding_first_changes_nothing(source in expression(), stages in stages()) {
        let e = Expr::parse(&source).unwrap();
        let all = stages.context(None);
        let direct = e.evaluate(&all);
        let folded = e.evaluate(&EmptyContext).and_then(|f| f.evaluate(&all));
        let outcome = |r: &Result<Expr, _>| match r {
            Ok(e) => e.value().map(|v| Some(v.clone())),
            Err(_) => Some(None),
        };
        if outcome(&direct).is_some() || outcome(&folded).is_some() {
            prop_assert_eq!(outcome(&direct), outcome(&folded), "{}: {} vs {}", source, show(&direct), show(&folded));
        }
    }

    /// Templates print back to source that parses to the same template.
    #[test]
    fn templates_round_trip(parts in prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec!["a", "{", "}", "{{\"{{\"}}", " x ", "}}", "{{\"{\"}}", "é"]).prop_map(String::from),
            expression().prop_map(|e| format!("{{{{ {e} }}}}")),
        ], 0..6), stages in stages()) {
        let source: String = parts.concat();
        let Ok(t) = Template::parse(&source) else { return Ok(()) };
        let printed = t.to_string();
        let again = Template::parse(&printed)
            .map_err(|err| TestCaseError::fail(format!("`{printed}`: {err}")))?;
        prop_assert_eq!(&again, &t, "{}", printed);
        if let Ok(partial) = t.evaluate(&stages.context(Some(true))) {
            let printed = partial.to_string();
            prop_assert_eq!(&Template::parse(&printed).unwrap(), &partial, "{}", printed);
        }
    }

    /// Arbitrary text never panics the parser, and what parses round-trips.
    #[test]
    fn arbitrary_text_parses_or_errors(source in "[-a-z0-9_.+*/%!=<>&|?:()\\[\\]{}\"', ]{0,40}") {
        if let Ok(e) = Expr::parse(&source) {
            assert_round_trip(&e)?;
            if let Ok(v) = e.evaluate(&EmptyContext) {
                assert_round_trip(&v)?;
            }
        }
    }
}

#[test]
fn expressions_and_templates_serialize_as_source_text() {
    let e = Expr::parse("config.a+1").unwrap();
    assert_eq!(serde_json::to_value(&e).unwrap(), json!("config.a + 1"));
    let back: Expr = serde_json::from_value(json!("config.a + 1")).unwrap();
    assert_eq!(back, e);
    assert!(serde_json::from_value::<Expr>(json!("1 +")).is_err());
    let t: Template = serde_json::from_value(json!("v{{ x }}")).unwrap();
    assert_eq!(serde_json::to_value(&t).unwrap(), json!("v{{ x }}"));
}

#[test]
fn big_numbers_print_and_read_back_exactly() {
    // Found by fuzzing: an integer beyond u64 becomes a float whose printed
    // form must read back to the same float.
    for source in [
        "- - -x",
        "-(-5)",
        "- -(5)",
        "-(5)",
        "--(--x)",
        "922337203685476854775875807 + n",
        "18446744073709551615",
        "-9223372036854775808",
        "1.7976931348623157e308",
        "5e-324",
    ] {
        let e = Expr::parse(source).unwrap();
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e, "{source}");
    }
}
