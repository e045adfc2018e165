//! Defaulting the real API server does on create and that clients read
//! back: pod and container defaults, Job selector and labels, namespace
//! phase, CRD conditions. Only what clients of this project look at.

use serde_json::{Value, json};

/// Fills defaults; an error names the field and says what is wrong.
pub(crate) fn on_create(key: &str, object: &mut Value) -> Result<(), (String, String)> {
    match key {
        "/pods" => {
            let mut status = Value::Null;
            pod(&mut object["spec"], &mut status, "spec")?;
            object["status"] = status;
        }
        "/secrets" => {
            if let Some(string_data) = object.get("stringData").and_then(Value::as_object).cloned() {
                use base64::Engine;
                for (k, v) in string_data {
                    object["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or("")));
                }
                if let Some(o) = object.as_object_mut() {
                    o.remove("stringData");
                }
            }
            set_default(object, "type", json!("Opaque"));
        }
        "batch/jobs" => job(object)?,
        "/namespaces" => {
            object["spec"]["finalizers"] = json!(["kubernetes"]);
            object["status"] = json!({"phase": "Active"});
            let name = object["metadata"]["name"].clone();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        }
        _ => {}
    }
    Ok(())
}

fn set_default(v: &mut Value, field: &str, default: Value) {
    if v.get(field).is_none_or(Value::is_null) {
        v[field] = default;
    }
}

/// Pod spec defaults (also applied to Job templates).
fn pod(spec: &mut Value, status: &mut Value, path: &str) -> Result<(), (String, String)> {
    if !spec["containers"].as_array().is_some_and(|c| !c.is_empty()) {
        return Err((format!("{path}.containers"), "Required value".into()));
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "enableServiceLinks", json!(true));
    let sa = spec.get("serviceAccountName").cloned().unwrap_or(json!("default"));
    spec["serviceAccountName"] = sa.clone();
    set_default(spec, "serviceAccount", sa);
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec[list].as_array_mut() else { continue };
        for (i, c) in containers.iter_mut().enumerate() {
            if c["name"].as_str().is_none_or(str::is_empty) {
                return Err((format!("{path}.{list}[{i}].name"), "Required value".into()));
            }
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            let image = c["image"].as_str().unwrap_or("");
            let latest = !image.contains(':') || image.ends_with(":latest");
            set_default(c, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
            set_default(c, "resources", json!({}));
        }
    }
    if path == "spec" {
        *status = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
    Ok(())
}

fn job(object: &mut Value) -> Result<(), (String, String)> {
    let uid = object["metadata"]["uid"].clone();
    let name = object["metadata"]["name"].clone();
    let spec = &mut object["spec"];
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completions", json!(1));
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "manualSelector", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatedOrFailed"));
    let restart = spec["template"]["spec"]["restartPolicy"].as_str().unwrap_or("");
    if !matches!(restart, "Never" | "OnFailure") {
        return Err((
            "spec.template.spec.restartPolicy".into(),
            format!("Unsupported value: \"{restart}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
    let mut none = Value::Null;
    pod(&mut spec["template"]["spec"], &mut none, "spec.template.spec")?;
    let labels = json!({
        "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid,
        "job-name": name, "batch.kubernetes.io/job-name": name,
    });
    if spec["manualSelector"] != json!(true) {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    }
    let tl = &mut spec["template"]["metadata"]["labels"];
    if let (Some(t), Some(l)) = (tl.as_object_mut().or(None), labels.as_object()) {
        for (k, v) in l {
            t.insert(k.clone(), v.clone());
        }
    } else {
        *tl = labels;
    }
    Ok(())
}

/// A CRD's status as the apiextensions controller sets it at once.
pub(crate) fn crd_established(crd: &mut Value) {
    let now = crate::store::now();
    let names = crd["spec"]["names"].clone();
    crd["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": crd["spec"]["versions"].as_array().map(|v| v.iter().filter(|x| x["storage"] == json!(true)).map(|x| x["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
    });
}
