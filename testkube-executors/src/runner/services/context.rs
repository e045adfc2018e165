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

    fn parent(&self) -> Option<&dyn Context> {
        Some(&self.inner)
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

    fn parent(&self) -> Option<&dyn Context> {
        Some(self.base)
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
