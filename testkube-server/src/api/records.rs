//! What an execution left besides its result: test cases and artifacts.

use serde::{Deserialize, Serialize};
use testkube_core::store::{ArtifactRecord, ExecutionRecord, TestCaseRecord};

use super::ROOT_WORKER;

/// A test case from the execution's reports (ours: `GET .../test-cases`);
/// the fields of [`TestCaseRecord`], which reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    /// The worker that produced the report.
    pub worker: String,
    /// The suite.
    pub suite: String,
    /// The class, when the report names one.
    #[serde(default)]
    pub class: Option<String>,
    /// The test's name.
    pub name: String,
    /// The test file, when known.
    #[serde(default)]
    pub file: Option<String>,
    /// `passed`, `failed`, `errored`, `skipped` or `flaky`.
    pub status: String,
    /// Seconds.
    #[serde(default)]
    pub duration_secs: Option<f64>,
    /// Why it did not pass.
    #[serde(default)]
    pub message: Option<String>,
}

impl TestCase {
    /// The API form of a stored test case.
    #[must_use]
    pub fn of(case: &TestCaseRecord) -> Self {
        TestCase {
            worker: case.worker.clone(),
            suite: case.suite.clone(),
            class: case.class.clone(),
            name: case.name.clone(),
            file: case.file.clone(),
            status: case.status.as_str().to_owned(),
            duration_secs: case.duration_secs,
            message: case.message.clone(),
        }
    }
}

/// An artifact of an execution (`GET .../artifacts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Its name for download: its path, under the worker's folder for a
    /// worker other than the root (`root-tests-1/reports/junit.xml`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Always `ready`: only stored files are listed.
    pub status: String,
    /// The execution's name.
    pub execution_name: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The worker path (ours).
    pub worker: String,
    /// The step that kept it (ours).
    #[serde(rename = "ref")]
    pub step: String,
    /// Its path relative to the step's artifacts folder (ours).
    pub path: String,
}

impl Artifact {
    /// The API form of a stored artifact.
    #[must_use]
    pub fn of(record: &ArtifactRecord, execution: &ExecutionRecord) -> Self {
        Artifact {
            name: artifact_name(record),
            size: record.size,
            status: "ready".to_owned(),
            execution_name: execution.name.clone(),
            workflow_name: execution.workflow.clone(),
            worker: record.worker.clone(),
            step: record.step.clone(),
            path: record.path.clone(),
        }
    }
}

/// An artifact's name: its path for the root worker's, else under the
/// worker's folder, so shards writing the same path stay apart.
#[must_use]
pub fn artifact_name(record: &ArtifactRecord) -> String {
    if record.worker == ROOT_WORKER {
        record.path.clone()
    } else {
        format!(
            "{}/{}",
            testkube_core::engine::WorkerId::folder_of(&record.worker),
            record.path
        )
    }
}
