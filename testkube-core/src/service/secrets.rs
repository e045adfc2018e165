//! Secrets for a run: `secret(name, key)` in `{{ }}` templates,
//! `env[].valueFrom.secretKeyRef` and `envFrom[].secretRef`, answered from
//! a [`SecretSource`] before planning.
//!
//! Why before planning, and why a trait: the plan, the executor and the
//! step runner then see plain values and need no secret access of their own
//! (a test pod gets no API permission), while where secrets live depends on
//! where the engine runs: the environment or a file on a laptop or CI
//! runner (`testkube_executors::local::LocalSecrets`), Kubernetes Secret
//! objects for the agent. The trait is async for the latter. Every value
//! used is returned so the run masks it; the stored snapshot keeps the
//! calls, so no secret value is written to the store and a rerun reads
//! them again.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::Value;

use super::error::ServiceError;
use crate::expr::{Context, Template};
use crate::model::TestWorkflow;

/// Where a run's secrets come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The value of `key` of secret `name`; `None` when it is not set.
    ///
    /// # Errors
    /// [`SecretError`] when the source cannot be asked (not for a secret
    /// that is simply not set).
    async fn get(&self, name: &str, key: &str) -> Result<Option<String>, SecretError>;

    /// Every key of secret `name` with its value (for `envFrom`); `None`
    /// when the secret is set nowhere.
    ///
    /// # Errors
    /// [`SecretError`] when the source cannot be asked.
    async fn keys(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError>;
}

/// Several sources asked in order: the first that has a secret answers
/// (e.g. a laptop's own values before the cluster's Secrets).
pub struct FirstOf(pub Vec<std::sync::Arc<dyn SecretSource>>);

#[async_trait]
impl SecretSource for FirstOf {
    async fn get(&self, name: &str, key: &str) -> Result<Option<String>, SecretError> {
        for source in &self.0 {
            if let Some(value) = source.get(name, key).await? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    async fn keys(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError> {
        for source in &self.0 {
            if let Some(values) = source.keys(name).await? {
                return Ok(Some(values));
            }
        }
        Ok(None)
    }
}

/// A source that has no secrets: every reference is missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

#[async_trait]
impl SecretSource for NoSecrets {
    async fn get(&self, _name: &str, _key: &str) -> Result<Option<String>, SecretError> {
        Ok(None)
    }

    async fn keys(&self, _name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError> {
        Ok(None)
    }
}

/// A [`SecretSource`] that could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read secret `{name}`: {message}")]
pub struct SecretError {
    /// The secret asked for.
    pub name: String,
    /// What went wrong, and what to do.
    pub message: String,
}

/// One thing to ask the source for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Want {
    Value(String, String),
    Keys(String),
}

/// What the source answered so far.
#[derive(Default)]
struct Answers {
    values: BTreeMap<(String, String), Option<String>>,
    keys: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

/// The workflow with every secret reference replaced by its value from
/// `source`, and the values used (to mask). A workflow without any is
/// returned as it is.
///
/// Secrets are asked for as the walk finds them; a template whose result
/// depends on a secret is evaluated again once the secret is known, so a
/// secret used only in one branch of a condition is still found.
pub(crate) async fn inline_secrets(
    workflow: &TestWorkflow,
    source: &dyn SecretSource,
) -> Result<(TestWorkflow, Vec<String>), ServiceError> {
    let original = serde_json::to_value(workflow).map_err(ServiceError::internal)?;
    let mut answers = Answers::default();
    loop {
        let mut value = original.clone();
        let walk = Walk {
            answers: &answers,
            wanted: RefCell::new(BTreeSet::new()),
            missing: RefCell::new(None),
        };
        let mut changed = false;
        let outcome = walk.inline_in(&mut value, &mut changed);
        let wanted = walk.wanted.into_inner();
        if wanted.is_empty() {
            outcome?;
            if !changed {
                return Ok((workflow.clone(), Vec::new()));
            }
            let used = used_values(&answers);
            let workflow = serde_json::from_value(value).map_err(ServiceError::internal)?;
            return Ok((workflow, used));
        }
        for want in wanted {
            match want {
                Want::Value(name, key) => {
                    let value = source.get(&name, &key).await?;
                    answers.values.insert((name, key), value);
                }
                Want::Keys(name) => {
                    let keys = source.keys(&name).await?;
                    answers.keys.insert(name, keys);
                }
            }
        }
    }
}

/// Every value the source gave, in a stable order.
fn used_values(answers: &Answers) -> Vec<String> {
    let mut used: Vec<String> = answers.values.values().flatten().cloned().collect();
    for keys in answers.keys.values().flatten() {
        used.extend(keys.values().cloned());
    }
    used
}

/// One pass over the workflow with the answers known so far.
struct Walk<'a> {
    answers: &'a Answers,
    /// What the pass needs and the source was not asked for yet.
    wanted: RefCell<BTreeSet<Want>>,
    /// The secret a template asked for that is set nowhere.
    missing: RefCell<Option<(String, String)>>,
}

impl Walk<'_> {
    fn pending(&self) -> bool {
        !self.wanted.borrow().is_empty()
    }

    fn inline_in(&self, value: &mut Value, changed: &mut bool) -> Result<(), ServiceError> {
        match value {
            Value::String(text) if text.contains("{{") && text.contains("secret(") => {
                // Anything the templates do not parse was refused by
                // resolution already; leave it to the planner's messages.
                let Ok(template) = Template::parse(text) else {
                    return Ok(());
                };
                match template.evaluate(self) {
                    Ok(done) => {
                        let rendered = done.as_string().unwrap_or_else(|| done.to_string());
                        if rendered != *text {
                            *text = rendered;
                            *changed = true;
                        }
                        Ok(())
                    }
                    // Evaluated again once the source answered.
                    Err(_) if self.pending() => Ok(()),
                    Err(err) => match self.missing.borrow_mut().take() {
                        Some((name, key)) => Err(ServiceError::MissingSecret { name, key }),
                        None => Err(ServiceError::SecretCall {
                            message: err.to_string(),
                        }),
                    },
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .try_for_each(|item| self.inline_in(item, changed)),
            Value::Object(map) => {
                self.secret_refs(map, changed)?;
                map.values_mut()
                    .try_for_each(|item| self.inline_in(item, changed))
            }
            _ => Ok(()),
        }
    }

    /// Kubernetes references to Secrets in a container's `env` and
    /// `envFrom`, answered as a pod's kubelet would:
    /// `env[].valueFrom.secretKeyRef {name, key}` becomes the value, and
    /// `envFrom[].secretRef {name}` one variable per key (with `prefix`).
    /// Missing secrets stop the run unless the reference is `optional`.
    /// References to ConfigMaps and fields stay (the executor refuses them).
    fn secret_refs(
        &self,
        map: &mut serde_json::Map<String, Value>,
        changed: &mut bool,
    ) -> Result<(), ServiceError> {
        let text = |value: &Value, field: &str| {
            value.get(field).and_then(Value::as_str).map(str::to_owned)
        };
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
                match self.answers.keys.get(&name) {
                    None => {
                        self.wanted.borrow_mut().insert(Want::Keys(name));
                    }
                    Some(Some(keys)) => {
                        for (key, value) in keys {
                            added.push(
                                serde_json::json!({"name": format!("{prefix}{key}"), "value": value}),
                            );
                        }
                    }
                    Some(None) if optional(reference) => {}
                    Some(None) => return Err(ServiceError::MissingEnvFromSecret { name }),
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
                let value = match self.answers.values.get(&(name.clone(), key.clone())) {
                    None => {
                        self.wanted.borrow_mut().insert(Want::Value(name, key));
                        continue;
                    }
                    Some(Some(value)) => value.clone(),
                    Some(None) if optional(reference) => String::new(),
                    Some(None) => return Err(ServiceError::MissingSecret { name, key }),
                };
                if let Some(var) = var.as_object_mut() {
                    var.remove("valueFrom");
                    var.insert("value".to_owned(), Value::String(value));
                }
                *changed = true;
            }
        }
        Ok(())
    }
}

/// A context that knows secrets only: everything else stays for later.
impl Context for Walk<'_> {
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        match self.answers.values.get(&(name.to_owned(), key.to_owned())) {
            Some(Some(value)) => Some(Ok(value.clone())),
            Some(None) => {
                *self.missing.borrow_mut() = Some((name.to_owned(), key.to_owned()));
                Some(Err(format!("secret {name}/{key} is not set")))
            }
            None => {
                self.wanted
                    .borrow_mut()
                    .insert(Want::Value(name.to_owned(), key.to_owned()));
                Some(Err(format!("secret {name}/{key} is not known yet")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets from a map, counting how often the source is asked.
    struct Map(
        BTreeMap<String, BTreeMap<String, String>>,
        std::sync::Mutex<usize>,
    );

    #[async_trait]
    impl SecretSource for Map {
        async fn get(&self, name: &str, key: &str) -> Result<Option<String>, SecretError> {
            *self.1.lock().unwrap() += 1;
            Ok(self.0.get(name).and_then(|keys| keys.get(key)).cloned())
        }

        async fn keys(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError> {
            *self.1.lock().unwrap() += 1;
            Ok(self.0.get(name).cloned())
        }
    }

    fn source() -> Map {
        let secrets = BTreeMap::from([
            (
                "db".to_owned(),
                BTreeMap::from([
                    ("password".to_owned(), "hunter2".to_owned()),
                    ("user".to_owned(), "admin".to_owned()),
                ]),
            ),
            (
                "flag".to_owned(),
                BTreeMap::from([("on".to_owned(), "yes".to_owned())]),
            ),
        ]);
        Map(secrets, std::sync::Mutex::new(0))
    }

    fn workflow(steps: Value) -> TestWorkflow {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflow",
            "metadata": {"name": "s"},
            "spec": {"steps": steps}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn secrets_in_templates_are_replaced_and_reported() {
        let source = source();
        let (done, used) = inline_secrets(
            &workflow(serde_json::json!([
                {"shell": "echo {{ secret('db', 'password') }} {{ env.HOME }}"}
            ])),
            &source,
        )
        .await
        .unwrap();
        let text = serde_json::to_string(&done).unwrap();
        assert!(text.contains("echo hunter2 {{"), "{text}");
        assert_eq!(used, vec!["hunter2".to_owned()]);

        let err = inline_secrets(
            &workflow(serde_json::json!([{"shell": "echo {{ secret('api', 'token') }}"}])),
            &source,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ServiceError::MissingSecret { name, key } if name == "api" && key == "token"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the workflow uses secret(\"api\", \"token\"), which is not set"
        );
    }

    #[tokio::test]
    async fn a_secret_behind_another_one_is_found_too() {
        let source = source();
        let (done, used) = inline_secrets(
            &workflow(serde_json::json!([{
                "shell": "echo {{ secret('flag', 'on') == 'yes' ? secret('db', 'user') : 'nobody' }}"
            }])),
            &source,
        )
        .await
        .unwrap();
        let text = serde_json::to_string(&done).unwrap();
        assert!(text.contains("echo admin"), "{text}");
        assert_eq!(used, vec!["admin".to_owned(), "yes".to_owned()]);
    }

    #[tokio::test]
    async fn env_from_and_secret_key_refs_become_values() {
        let source = source();
        let (done, used) = inline_secrets(
            &workflow(serde_json::json!([{
                "shell": "env",
                "container": {
                    "envFrom": [{"prefix": "DB_", "secretRef": {"name": "db"}}],
                    "env": [
                        {"name": "DB_user", "value": "kept"},
                        {"name": "FLAG", "valueFrom": {"secretKeyRef": {"name": "flag", "key": "on"}}},
                        {"name": "NONE", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y", "optional": true}}}
                    ]
                }
            }])),
            &source,
        )
        .await
        .unwrap();
        let text = serde_json::to_value(&done).unwrap();
        let env = &text["spec"]["steps"][0]["container"]["env"];
        assert_eq!(
            env,
            &serde_json::json!([
                {"name": "DB_password", "value": "hunter2"},
                {"name": "DB_user", "value": "kept"},
                {"name": "FLAG", "value": "yes"},
                {"name": "NONE", "value": ""}
            ])
        );
        assert!(used.contains(&"hunter2".to_owned()) && used.contains(&"yes".to_owned()));
        let missing = inline_secrets(
            &workflow(serde_json::json!([{
                "shell": "env",
                "container": {"envFrom": [{"secretRef": {"name": "nope"}}]}
            }])),
            &source,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&missing, ServiceError::MissingEnvFromSecret { name } if name == "nope"),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn a_workflow_without_secrets_asks_nothing() {
        let source = source();
        let plain = workflow(serde_json::json!([{"shell": "echo {{ env.HOME }}"}]));
        let (done, used) = inline_secrets(&plain, &source).await.unwrap();
        assert_eq!(done, plain);
        assert!(used.is_empty());
        assert_eq!(*source.1.lock().unwrap(), 0);
    }
}
