//! The expression contexts of services: `services` for the steps that run
//! while they do, and an instance's own variables (`index`, `matrix.*`...)
//! for what is rendered per instance (its probe).

use super::*;

/// A context with the `services` variable on top of another.
pub(crate) struct WithServices<C> {
    pub(super) inner: C,
    pub(super) services: Variables,
}

impl<C: Context> Context for WithServices<C> {
    fn variable(&self, name: &str) -> Option<Value> {
        if name == "services" {
            let services = self.services.read().ok()?;
            if !services.is_empty() {
                return Some(Value::Object(services.clone()));
            }
        }
        self.inner.variable(name)
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        self.inner.file(path)
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        self.inner.glob(patterns)
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        self.inner.secret(name, key)
    }

    fn now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.inner.now()
    }

    fn working_dir(&self) -> Option<String> {
        self.inner.working_dir()
    }
}

/// The variables of one service instance on top of the runner's (and the
/// instance's env).
pub(super) struct InstanceContext<'a> {
    variables: MapContext,
    base: &'a dyn Context,
}

impl<'a> InstanceContext<'a> {
    pub(super) fn new(
        service: &PlanService,
        instance: &PlanServiceInstance,
        base: &'a dyn Context,
    ) -> Self {
        let mut variables = MapContext::new()
            .with("index", json!(instance.index))
            .with("shardIndex", json!(instance.shard_index))
            .with("matrixIndex", json!(instance.matrix_index))
            .with("matrix", json!(instance.matrix))
            .with("shard", json!(instance.shard));
        if let Some(counts) = &service.counts {
            variables.insert("count", json!(counts.count));
            variables.insert("shardCount", json!(counts.shard_count));
            variables.insert("matrixCount", json!(counts.matrix_count));
        }
        InstanceContext { variables, base }
    }
}

impl Context for InstanceContext<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        // An instance variable hides the worker's of the same root (a
        // parallel worker's `matrix.x` must not answer for the service's).
        let root = name.split('.').next().unwrap_or(name);
        if self.variables.variable(root).is_some() {
            return self.variables.variable(name);
        }
        self.base.variable(name)
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        self.base.file(path)
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        self.base.glob(patterns)
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        self.base.secret(name, key)
    }

    fn now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.base.now()
    }

    fn working_dir(&self) -> Option<String> {
        self.base.working_dir()
    }
}

/// Renders a `{{ }}` template with `context`.
pub(super) fn render_with(text: &str, context: &dyn Context) -> Result<String, String> {
    if !text.contains("{{") {
        return Ok(text.to_owned());
    }
    Template::parse(text)
        .and_then(|template| template.render(context))
        .map_err(|err| format!("cannot evaluate `{text}`: {err}"))
}

/// The expression language's truth.
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !matches!(s.as_str(), "" | "false" | "0" | "off"),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}
