//! Services as pods of the engine's (the in-pod runner): each instance is
//! rendered here, in the worker's scope, exactly as a local one (its env,
//! command, working directory, resources and probe), then sent to the
//! engine, which creates its pod, waits until Kubernetes says it is ready
//! and answers its IP. The runner only keeps the `services` variable and
//! asks the engine to stop them when the step's attempt ends.
//!
//! What only the worker knows is decided here; what Kubernetes does (the
//! probe, restarts, the pod's address) is left to it: probes are sent as
//! Kubernetes `Probe`s, with ports as numbers since a service's container
//! declares no named ports.

use async_trait::async_trait;
use testkube_core::engine::protocol::{
    ServiceInstanceSpec, ServicesOutcome, ServicesRequest, StopServicesRequest,
};
use testkube_core::model::{ContainerConfig, EnvVar};

use super::*;

/// How long stopping a step's service pods may take before the runner goes
/// on without the engine's answer (the engine still deletes them when the
/// worker ends).
const STOP_WAIT: Duration = Duration::from_secs(60);

/// Runs service instances somewhere else than the worker: the in-pod
/// runner asks the engine (over the worker protocol), which runs each as a
/// pod. The runner renders every instance first, in the worker's scope
/// (env, command, working directory, resources, probe), exactly as it does
/// for a local process; the engine only runs what it is sent.
#[async_trait]
pub trait ServicePods: Send + Sync {
    /// Starts the instances and answers once all are ready (their
    /// addresses), or why one is not. Dropping the future gives up on
    /// them (the engine stops them).
    async fn start(&self, request: ServicesRequest) -> ServicesOutcome;

    /// Stops services a step started; answers once they are stopped.
    async fn stop(&self, request: StopServicesRequest) -> ServicesOutcome;
}

impl StepRunner {
    /// Runs this worker's services through `pods` rather than as local
    /// processes.
    #[must_use]
    pub fn with_service_pods(mut self, pods: Arc<dyn ServicePods>) -> Self {
        self.services.pods = Some(pods);
        self
    }

    /// `StartServices` through [`ServicePods`]: renders every instance,
    /// asks for them at once and waits until they are ready.
    pub(super) async fn start_service_pods(
        &mut self,
        step: &PlanStep,
        services: &[PlanService],
        pods: Arc<dyn ServicePods>,
    ) -> OperationEnd {
        let mut instances = Vec::new();
        for service in services {
            match self.render_service(service) {
                Ok(rendered) => instances.extend(rendered),
                Err(message) => return OperationEnd::failed(message),
            }
        }
        let first = self.services.running.len();
        // Known before the request goes: a step that stops waiting (its
        // timeout, an abort) still asks for them to be stopped.
        for (service, instance) in services
            .iter()
            .flat_map(|s| s.instances.iter().map(move |i| (s, i)))
        {
            self.services.running.push(Instance {
                step: step.id.clone(),
                name: service.name.clone(),
                index: instance.index,
                address: address("", instance),
                ready: false,
                running: Running::Pod,
            });
        }
        let request = ServicesRequest {
            step: step.id.clone(),
            instances,
        };
        let mut stop = self.stop_signal();
        let outcome = tokio::select! {
            outcome = pods.start(request) => outcome,
            fired = stop.fired() => return stopped(fired),
        };
        for note in &outcome.notes {
            self.log(&step.id, format!("{note}\n")).await;
        }
        if let Some(message) = outcome.error {
            return OperationEnd::failed(message);
        }
        for instance in &mut self.services.running[first..] {
            let known = outcome
                .addresses
                .iter()
                .find(|a| a.name == instance.name && a.index == instance.index);
            let Some(known) = known else {
                return OperationEnd::failed(format!(
                    "the engine gave no address for service `{}` instance {}",
                    instance.name, instance.index
                ));
            };
            instance.address["ip"] = Value::String(known.ip.clone());
            instance.ready = true;
        }
        self.services.refresh_variables();
        OperationEnd::passed()
    }

    /// The instances of `service` as the engine runs them, rendered in
    /// this worker's scope.
    fn render_service(&self, service: &PlanService) -> Result<Vec<ServiceInstanceSpec>, String> {
        let name = &service.name;
        if service.content.is_some() || !service.transfer.is_empty() {
            // The engine refuses such plans before they start; this says
            // why should one reach a runner anyway.
            return Err(format!(
                "services.{name}: `content` and `transfer` of services are not supported when \
                 services run as pods"
            ));
        }
        let settings = self.service_settings(service)?;
        let timeout_ms = u64::try_from(settings.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut rendered = Vec::new();
        for instance in &service.instances {
            let label = format!("service `{name}` instance {}", instance.index);
            let env = self.env_of(&instance.container.env);
            let container =
                pod_container(&env, instance).map_err(|err| format!("{label}: {err}"))?;
            let readiness_probe = match &settings.probe {
                None => None,
                Some(probe) => {
                    let context = InstanceContext::new(service, instance, &env);
                    Some(pod_probe(probe, &context).map_err(|err| format!("{label}: {err}"))?)
                }
            };
            rendered.push(ServiceInstanceSpec {
                name: name.clone(),
                index: instance.index,
                container,
                readiness_probe,
                restart_policy: service.restart_policy,
                pod: service.pod.clone(),
                timeout_ms,
                logs: settings.logs,
            });
        }
        Ok(rendered)
    }
}

/// Asks `pods` to stop the pod instances `stopping`, one request per step;
/// notes for the steps' logs.
pub(super) async fn stop(pods: &dyn ServicePods, stopping: &[Instance]) -> Vec<(String, String)> {
    let mut by_step: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for instance in stopping {
        let names = by_step.entry(&instance.step).or_default();
        if !names.contains(&instance.name) {
            names.push(instance.name.clone());
        }
    }
    let mut notes = Vec::new();
    for (step, names) in by_step {
        let request = StopServicesRequest {
            step: step.to_owned(),
            names,
        };
        let outcome = match tokio::time::timeout(STOP_WAIT, pods.stop(request)).await {
            Ok(outcome) => outcome,
            Err(_) => ServicesOutcome::failed(format!(
                "the engine did not confirm within {}s that the services were stopped; it \
                 deletes them when the worker ends",
                STOP_WAIT.as_secs()
            )),
        };
        for note in outcome.notes.into_iter().chain(outcome.error) {
            notes.push((step.to_owned(), format!("{note}\n")));
        }
    }
    notes
}

/// An instance's container with its templates rendered in `env`: the
/// command (a `shell` as `/bin/sh -e -c`, as locally), `env` values
/// (`valueFrom` kept for Kubernetes), and every other string field.
fn pod_container(
    env: &super::super::env::StepEnv<'_>,
    instance: &PlanServiceInstance,
) -> Result<ContainerConfig, String> {
    let written = &instance.container;
    let mut others = written.as_ref().clone();
    others.env = Vec::new();
    let mut container: ContainerConfig = {
        let mut value = serde_json::to_value(&others).map_err(|err| err.to_string())?;
        render_strings(&mut value, &|text| env.render(text))?;
        serde_json::from_value(value).map_err(|err| err.to_string())?
    };
    if let Some(script) = &instance.shell {
        container.command = Some(
            shell_argv(script)
                .iter()
                .map(|arg| env.render(arg))
                .collect::<Result<_, _>>()?,
        );
        container.args = None;
    }
    // Values as the process would see them; a later definition wins.
    let values = env.process_env(Vec::new())?;
    container.env = values
        .into_iter()
        .map(|(name, value)| {
            let source = written
                .env
                .iter()
                .rev()
                .find(|var| var.name == name)
                .and_then(|var| var.value_from.clone());
            EnvVar {
                value: source.is_none().then_some(value),
                value_from: source,
                name,
                global: None,
            }
        })
        .collect();
    Ok(container)
}

/// A readiness probe with its templates rendered (instance variables
/// known) and its ports as numbers, as Kubernetes' `Probe` type `P`.
fn pod_probe<P: serde::de::DeserializeOwned>(
    probe: &Value,
    context: &InstanceContext<'_>,
) -> Result<P, String> {
    let mut probe = probe.clone();
    render_strings(&mut probe, &|text| render_with(text, context))?;
    for action in ["tcpSocket", "httpGet", "grpc"] {
        let Some(port) = probe.get_mut(action).and_then(|a| a.get_mut("port")) else {
            continue;
        };
        if let Value::String(text) = port {
            let number: u16 = text.trim().parse().map_err(|_| {
                format!(
                    "readinessProbe.{action}.port `{text}` is not a port number (a service's \
                     container declares no named ports: write the number)"
                )
            })?;
            *port = json!(number);
        }
    }
    serde_json::from_value(probe).map_err(|err| format!("readinessProbe: {err}"))
}

/// Renders every string of `value` (not keys).
fn render_strings(
    value: &mut Value,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), String> {
    match value {
        Value::String(text) if text.contains("{{") => *text = render(text)?,
        Value::Array(items) => {
            for item in items {
                render_strings(item, render)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                render_strings(item, render)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_templates_and_ports_are_rendered_for_kubernetes() {
        let service: PlanService = serde_json::from_value(json!({
            "name": "web",
            "container": {},
            "instances": [{
                "index": 1, "shardIndex": 0, "matrixIndex": 1,
                "matrix": {}, "shard": {}, "container": {}
            }]
        }))
        .unwrap();
        let base = MapContext::new().with("config", json!({"port": 8000}));
        let context = InstanceContext::new(&service, &service.instances[0], &base);
        let probe = json!({
            "httpGet": {"path": "/health/{{ index }}", "port": "{{ config.port + index }}"},
            "periodSeconds": 1
        });
        let spec = ServiceInstanceSpec {
            name: "web".into(),
            index: 1,
            container: ContainerConfig::default(),
            readiness_probe: Some(pod_probe(&probe, &context).unwrap()),
            restart_policy: None,
            pod: None,
            timeout_ms: 1000,
            logs: false,
        };
        let sent = serde_json::to_value(&spec.readiness_probe).unwrap();
        assert_eq!(sent["httpGet"]["path"], "/health/1");
        assert_eq!(sent["httpGet"]["port"], 8001);
        assert_eq!(sent["periodSeconds"], 1);
        let named = json!({"tcpSocket": {"port": "http"}});
        let err = pod_probe::<Value>(&named, &context).unwrap_err();
        assert!(err.contains("tcpSocket.port `http`"), "{err}");
    }
}
