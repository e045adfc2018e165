//! `secret(name, key)` and `valueFrom.secretKeyRef` answered before planning:
//! every secret the workflow names is replaced by its value from the local
//! source (the environment or a secrets file), and the values are returned
//! to be masked.

use std::cell::RefCell;

use serde_json::Value;
use testkube_core::expr::{Context, Template};
use testkube_core::model::TestWorkflow;

use crate::commands::CliError;
use crate::input::SecretSource;

/// The workflow with every `secret(name, key)` in its `{{ }}` templates
/// replaced by the value from `source`, and the values used (to mask).
///
/// Done before planning, so the plan, the executor and the step runner see
/// plain values; the stored snapshot keeps the calls, so no secret value is
/// ever written to the store and a rerun reads them again.
pub(super) fn inline_secrets(
    workflow: &TestWorkflow,
    source: &SecretSource,
) -> Result<(TestWorkflow, Vec<String>), CliError> {
    let mut value = serde_json::to_value(workflow)
        .map_err(|err| CliError::input(format!("internal error: {err}")))?;
    let lookup = SecretLookup {
        source,
        used: RefCell::new(Vec::new()),
        missing: RefCell::new(None),
    };
    let mut changed = false;
    inline_in(&mut value, &lookup, &mut changed)?;
    if !changed {
        return Ok((workflow.clone(), Vec::new()));
    }
    let workflow = serde_json::from_value(value)
        .map_err(|err| CliError::input(format!("internal error: {err}")))?;
    Ok((workflow, lookup.used.into_inner()))
}

fn inline_in(
    value: &mut Value,
    lookup: &SecretLookup<'_>,
    changed: &mut bool,
) -> Result<(), CliError> {
    match value {
        Value::String(text) if text.contains("{{") && text.contains("secret(") => {
            // Anything the templates do not parse was refused by resolution
            // already; leave it to the planner's messages.
            let Ok(template) = Template::parse(text) else {
                return Ok(());
            };
            match template.evaluate(lookup) {
                Ok(done) => {
                    let rendered = done.as_string().unwrap_or_else(|| done.to_string());
                    if rendered != *text {
                        *text = rendered;
                        *changed = true;
                    }
                    Ok(())
                }
                Err(err) => match lookup.missing.borrow_mut().take() {
                    Some((name, key)) => Err(lookup.source.missing(&name, &key)),
                    None => Err(CliError::usage(format!("cannot use a secret: {err}"))
                        .with_hint("secret() takes two texts: secret(\"name\", \"key\")")),
                },
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| inline_in(item, lookup, changed)),
        Value::Object(map) => {
            secret_refs(map, lookup, changed)?;
            map.values_mut()
                .try_for_each(|item| inline_in(item, lookup, changed))
        }
        _ => Ok(()),
    }
}

/// Kubernetes references to Secrets in a container's `env` and `envFrom`,
/// answered from the local secrets source as a pod's kubelet would:
/// `env[].valueFrom.secretKeyRef {name, key}` becomes the value, and
/// `envFrom[].secretRef {name}` one variable per key (with `prefix`).
/// Missing secrets stop the run unless the reference is `optional`.
/// References to ConfigMaps and fields stay (the executor refuses them).
fn secret_refs(
    map: &mut serde_json::Map<String, Value>,
    lookup: &SecretLookup<'_>,
    changed: &mut bool,
) -> Result<(), CliError> {
    let text =
        |value: &Value, field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    let optional = |value: &Value| value.get("optional").and_then(Value::as_bool) == Some(true);
    let mut added: Vec<Value> = Vec::new();
    if let Some(Value::Array(sources)) = map.get_mut("envFrom") {
        let mut kept = Vec::new();
        for source in sources.drain(..) {
            let Some(reference) = source.get("secretRef") else {
                kept.push(source);
                continue;
            };
            let name = text(reference, "name").unwrap_or_default();
            let prefix = text(&source, "prefix").unwrap_or_default();
            match lookup.source.keys(&name) {
                Some(keys) => {
                    for (key, value) in keys {
                        lookup.used.borrow_mut().push(value.clone());
                        added.push(
                            serde_json::json!({"name": format!("{prefix}{key}"), "value": value}),
                        );
                    }
                }
                None if optional(reference) => {}
                None => {
                    return Err(CliError::usage(format!(
                        "envFrom uses secret `{name}`, which is not set"
                    ))
                    .with_hint(format!(
                        "set variables {}KEY=VALUE or add `{name}: {{KEY: VALUE}}` to the secrets file (--secrets FILE)",
                        SecretSource::env_var(&name, "")
                    )));
                }
            }
            *changed = true;
        }
        *sources = kept;
    }
    if map
        .get("envFrom")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        map.remove("envFrom");
    }
    if !added.is_empty() {
        // Variables of `env` win over those from `envFrom`, as in a pod.
        let env = map.entry("env").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(env) = env {
            let set: Vec<String> = env.iter().filter_map(|var| text(var, "name")).collect();
            let mut merged: Vec<Value> = added
                .into_iter()
                .filter(|var| text(var, "name").is_some_and(|name| !set.contains(&name)))
                .collect();
            merged.append(env);
            *env = merged;
        }
    }
    if let Some(Value::Array(env)) = map.get_mut("env") {
        for var in env.iter_mut() {
            let Some(reference) = var
                .get("valueFrom")
                .and_then(|from| from.get("secretKeyRef"))
            else {
                continue;
            };
            let (name, key) = (
                text(reference, "name").unwrap_or_default(),
                text(reference, "key").unwrap_or_default(),
            );
            let value = match lookup.source.get(&name, &key) {
                Some(value) => value,
                None if optional(reference) => String::new(),
                None => return Err(lookup.source.missing(&name, &key)),
            };
            lookup.used.borrow_mut().push(value.clone());
            if let Some(var) = var.as_object_mut() {
                var.remove("valueFrom");
                var.insert("value".to_owned(), Value::String(value));
            }
            *changed = true;
        }
    }
    Ok(())
}

/// A context that knows secrets only: everything else stays for later.
struct SecretLookup<'a> {
    source: &'a SecretSource,
    used: RefCell<Vec<String>>,
    missing: RefCell<Option<(String, String)>>,
}

impl Context for SecretLookup<'_> {
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        match self.source.get(name, key) {
            Some(value) => {
                self.used.borrow_mut().push(value.clone());
                Some(Ok(value))
            }
            None => {
                *self.missing.borrow_mut() = Some((name.to_owned(), key.to_owned()));
                Some(Err(format!("secret {name}/{key} is not set")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_templates_are_replaced_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.yaml");
        std::fs::write(&file, "db: {password: hunter2}\n").unwrap();
        let source = SecretSource::load(Some(&file), &file).unwrap();
        let workflow: TestWorkflow = serde_json::from_value(serde_json::json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflow",
            "metadata": {"name": "s"},
            "spec": {"steps": [{"shell": "echo {{ secret('db', 'password') }} {{ env.HOME }}"}]}
        }))
        .unwrap();
        let (done, used) = inline_secrets(&workflow, &source).unwrap();
        let text = serde_json::to_string(&done).unwrap();
        assert!(text.contains("echo hunter2 {{"), "{text}");
        assert_eq!(used, vec!["hunter2".to_owned()]);

        let missing: TestWorkflow = serde_json::from_value(serde_json::json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflow",
            "metadata": {"name": "s"},
            "spec": {"steps": [{"shell": "echo {{ secret('api', 'token') }}"}]}
        }))
        .unwrap();
        let err = inline_secrets(&missing, &source).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("secret(\"api\", \"token\")"));
        assert!(
            err.hint()
                .is_some_and(|hint| hint.contains("TESTKUBE_SECRET_API_TOKEN"))
        );
    }
}
