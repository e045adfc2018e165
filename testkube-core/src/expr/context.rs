//! What an expression can know: variables, and the hooks of run-time
//! functions.
//!
//! A [`Context`] answers one question per variable: "do you know this dotted
//! name yet?". The evaluator asks for the longest name first
//! (`config.db.host`, then `config.db`, then `config`) and indexes into the
//! value it gets, so a context may provide whole roots (`config` as an object)
//! or single names (`matrix.browser`). `None` means "not known yet": the
//! reference stays in the expression for a later stage.
//!
//! Functions that depend on the world (`file`, `glob`, `secret`, `date`, and
//! `abspath`/`relpath` of a relative path) call hooks; a context that does
//! not provide one keeps the call symbolic, so planning stays deterministic.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The source of variable values and run-time hooks for evaluation.
///
/// Every method but [`Context::variable`] has a default: the
/// [`parent`](Context::parent)'s answer, or nothing known without one. A
/// context that adds variables over another (a step's `env`, a service's
/// instance) answers `variable` and names the other as its parent; the
/// hooks then come from it.
pub trait Context {
    /// The value of a dotted variable name (`"config"`, `"config.x"`,
    /// `"services.db.0.ip"`), or `None` if it is not known yet.
    fn variable(&self, name: &str) -> Option<Value>;

    /// The context this one adds to: the hooks it does not answer itself
    /// are the parent's. `None` (the default) for a context of its own.
    fn parent(&self) -> Option<&dyn Context> {
        None
    }

    /// Contents of a file of the workspace for `file(path)`; `None` keeps the
    /// call for later, `Some(Err(message))` fails the evaluation.
    fn file(&self, path: &str) -> Option<Result<String, String>> {
        self.parent()?.file(path)
    }

    /// Paths matching glob patterns for `glob(patterns...)` (patterns starting
    /// with `!` exclude); `None` keeps the call for later.
    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        self.parent()?.glob(patterns)
    }

    /// The value of key `key` of secret `name` for `secret(name, key)`;
    /// `None` keeps the call for later.
    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        self.parent()?.secret(name, key)
    }

    /// The current time for `date()`; `None` (the default without a parent)
    /// keeps `date()` symbolic so that planning is deterministic.
    fn now(&self) -> Option<DateTime<Utc>> {
        self.parent()?.now()
    }

    /// The working directory for `abspath`/`relpath` of relative paths;
    /// `None` keeps such calls for run time.
    fn working_dir(&self) -> Option<String> {
        self.parent()?.working_dir()
    }
}

/// A context that knows nothing: evaluation only folds constants.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyContext;

impl Context for EmptyContext {
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }
}

/// A context built from values, for tests, planning and simple embedding.
///
/// ```
/// use testkube_core::expr::{Expr, MapContext};
/// use serde_json::json;
/// let ctx = MapContext::new()
///     .with("config", json!({"workers": 3}))
///     .with("matrix.browser", json!("firefox"));
/// let e = Expr::parse("config.workers * 2 + len(matrix.browser)").unwrap();
/// assert_eq!(e.evaluate(&ctx).unwrap().value(), Some(&json!(13)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MapContext {
    variables: BTreeMap<String, Value>,
    files: BTreeMap<String, String>,
    secrets: BTreeMap<(String, String), String>,
    now: Option<DateTime<Utc>>,
    working_dir: Option<String>,
}

impl MapContext {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a variable (a root like `config` or a dotted name like
    /// `config.x`).
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds or replaces a variable.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.variables.insert(name.into(), value);
    }

    /// Adds a file for `file()` and `glob()` (absolute path, `/` separators).
    #[must_use]
    pub fn with_file(mut self, path: impl Into<String>, content: impl Into<String>) -> Self {
        self.files.insert(path.into(), content.into());
        self
    }

    /// Adds a secret value for `secret(name, key)`; a context with at least
    /// one secret answers every `secret()` call (unknown ones are errors).
    #[must_use]
    pub fn with_secret(
        mut self,
        name: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.secrets.insert((name.into(), key.into()), value.into());
        self
    }

    /// Sets the clock for `date()`.
    #[must_use]
    pub fn with_now(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }

    /// Sets the working directory; it also makes `file()` and `glob()`
    /// available (they are run-time functions).
    #[must_use]
    pub fn with_working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    fn absolute(&self, path: &str) -> String {
        let dir = self.working_dir.as_deref().unwrap_or("/");
        super::stdlib::paths::absolute(path, dir)
    }
}

impl Context for MapContext {
    fn variable(&self, name: &str) -> Option<Value> {
        self.variables.get(name).cloned()
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        self.working_dir.as_ref()?;
        let path = self.absolute(path);
        Some(
            self.files
                .get(&path)
                .cloned()
                .ok_or_else(|| format!("file {path} does not exist")),
        )
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        self.working_dir.as_ref()?;
        let (exclude, include): (Vec<_>, Vec<_>) =
            patterns.iter().partition(|p| p.starts_with('!'));
        let include: Vec<String> = include.iter().map(|p| self.absolute(p)).collect();
        let exclude: Vec<String> = exclude.iter().map(|p| self.absolute(&p[1..])).collect();
        Some(Ok(self
            .files
            .keys()
            .filter(|path| include.iter().any(|p| glob_match(p, path)))
            .filter(|path| !exclude.iter().any(|p| glob_match(p, path)))
            .cloned()
            .collect()))
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        if self.secrets.is_empty() {
            return None;
        }
        Some(
            self.secrets
                .get(&(name.to_string(), key.to_string()))
                .cloned()
                .ok_or_else(|| format!("secret {name} has no key {key}")),
        )
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    fn working_dir(&self) -> Option<String> {
        self.working_dir.clone()
    }
}

/// A context that binds `_` (for `map` and `filter` expressions) over another.
pub(crate) struct ScopedContext<'a> {
    pub(crate) parent: &'a dyn Context,
    pub(crate) underscore: Value,
}

impl Context for ScopedContext<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        if name == "_" {
            return Some(self.underscore.clone());
        }
        if let Some(rest) = name.strip_prefix("_.") {
            let mut value = &self.underscore;
            for segment in rest.split('.') {
                value = value.get(segment)?;
            }
            return Some(value.clone());
        }
        self.parent.variable(name)
    }

    fn parent(&self) -> Option<&dyn Context> {
        Some(self.parent)
    }
}

/// Matches a `/`-separated path against a glob with `*` (within a segment),
/// `?` and `**` (any number of segments).
fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    match_segments(&pattern, &path)
}

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((first, rest)) => path.split_first().is_some_and(|(segment, tail)| {
            match_segment(first, segment) && match_segments(rest, tail)
        }),
    }
}

fn match_segment(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}
