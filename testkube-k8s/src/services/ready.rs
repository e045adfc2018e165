//! What Kubernetes says about a service instance's pod while the engine
//! waits for it: ready (and its IP), never going to be on its own (ended,
//! cannot start), or why it is not yet, in words for the step's message.

use k8s_openapi::api::core::v1::Pod;
use testkube_core::engine::protocol::ServiceInstanceSpec;

use super::CONTAINER;
use crate::follow::container_state;
use crate::pods::PodView;

/// Waiting reasons after which a container never starts on its own.
const STUCK: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The pod's IP once it is ready.
pub(super) fn ready_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    status.pod_ip.clone().filter(|ip| !ip.is_empty())
}

/// Whether the pod's phase is final.
pub(super) fn is_over(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Why a pod that is not ready never will be on its own: its container
/// ended (and is not restarted), or cannot start.
pub(super) fn not_running(pod: &Pod) -> Option<String> {
    let restarts = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.restart_policy.as_deref())
        .is_some_and(|policy| policy != "Never");
    if let Some(state) = container_state(pod, CONTAINER) {
        if let Some(terminated) = &state.terminated
            && (!restarts || is_over(pod))
        {
            let reason = terminated.reason.as_deref().unwrap_or("no reason given");
            let message = terminated
                .message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Some(format!(
                "exited with code {} before it was ready (Kubernetes: {reason}{message})",
                terminated.exit_code
            ));
        }
        if let Some(waiting) = &state.waiting
            && let Some(reason) = &waiting.reason
            && STUCK.contains(&reason.as_str())
        {
            let message = waiting
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Some(format!("cannot start (Kubernetes: {reason}{message})"));
        }
    }
    if is_over(pod) {
        let status = pod.status.as_ref();
        let reason = status
            .and_then(|s| s.reason.clone().or_else(|| s.message.clone()))
            .unwrap_or_else(|| "the pod ended".to_owned());
        return Some(format!("ended before it was ready (Kubernetes: {reason})"));
    }
    None
}

/// Why a pod is not ready, when the wait for it ends.
pub(super) fn not_ready(view: &PodView, spec: &ServiceInstanceSpec) -> String {
    let within = format!("was not ready within {}s", spec.timeout().as_secs_f64());
    let probe = spec
        .readiness_probe
        .as_ref()
        .map(describe_probe)
        .unwrap_or_default();
    let Some(pod) = &view.pod else {
        return format!("{within}{probe}: its pod was never seen");
    };
    let status = pod.status.as_ref();
    let condition = status
        .and_then(|s| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "Ready" && c.status != "True")
        })
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("not ready");
            match c.message.as_deref() {
                Some(message) => format!("{reason}: {message}"),
                None => reason.to_owned(),
            }
        });
    let waiting = container_state(pod, CONTAINER)
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_owned());
    let said = condition.or(waiting).map_or_else(
        || format!("phase {phase}"),
        |why| format!("phase {phase}, {why}"),
    );
    format!("{within}{probe} (Kubernetes: {said})")
}

/// ` (readinessProbe httpGet :8000/health)`.
fn describe_probe(probe: &k8s_openapi::api::core::v1::Probe) -> String {
    let port = |port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString| match port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    };
    let action = if let Some(http) = &probe.http_get {
        format!(
            "httpGet :{}{}",
            port(&http.port),
            http.path.as_deref().unwrap_or("/")
        )
    } else if let Some(tcp) = &probe.tcp_socket {
        format!("tcpSocket :{}", port(&tcp.port))
    } else if let Some(exec) = &probe.exec {
        format!(
            "exec `{}`",
            exec.command.clone().unwrap_or_default().join(" ")
        )
    } else if let Some(grpc) = &probe.grpc {
        format!("grpc :{}", grpc.port)
    } else {
        return String::new();
    };
    format!(" (readinessProbe {action})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(restart: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"restartPolicy": restart, "containers": [{"name": CONTAINER}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn ready_pods_answer_their_ip_and_ended_ones_why() {
        let ready = pod(
            "Never",
            serde_json::json!({
                "phase": "Running", "podIP": "10.1.2.3",
                "conditions": [{"type": "Ready", "status": "True"}]
            }),
        );
        assert_eq!(ready_ip(&ready).as_deref(), Some("10.1.2.3"));
        assert_eq!(not_running(&ready), None);
        let exited = serde_json::json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": CONTAINER, "image": "x", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 3, "reason": "Error"}}
            }]
        });
        let why = not_running(&pod("Never", exited.clone())).unwrap();
        assert_eq!(
            why,
            "exited with code 3 before it was ready (Kubernetes: Error)"
        );
        // Kubernetes starts it again: not over yet.
        assert_eq!(not_running(&pod("OnFailure", exited)), None);
        let stuck = pod(
            "Never",
            serde_json::json!({
                "phase": "Pending",
                "containerStatuses": [{
                    "name": CONTAINER, "image": "x", "imageID": "", "ready": false,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}
                }]
            }),
        );
        assert_eq!(
            not_running(&stuck).as_deref(),
            Some("cannot start (Kubernetes: ErrImagePull: no such image)")
        );
    }
}
