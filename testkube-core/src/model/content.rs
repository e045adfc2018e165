//! `content`: what is fetched into the workspace before a step runs (a Git
//! checkout, inline files, tarballs, an OCI artifact).

use k8s_openapi::api::core::v1::EnvVarSource;
use serde::{Deserialize, Serialize};

/// `content {git, files, tarball, oci}`, on the workflow, a step or a service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// A Git repository to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitContent>,
    /// Files to write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentFile>,
    /// Tarballs to download and unpack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tarball: Vec<ContentTarball>,
    /// An OCI artifact to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciContent>,
}

/// `content.git`: a (sparse, shallow) checkout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct GitContent {
    /// Repository URL (https or ssh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Branch, tag or commit to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Plain-text user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// User name from a secret or config map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_from: Option<EnvVarSource>,
    /// Plain-text token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Token from a secret or config map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<EnvVarSource>,
    /// Plain-text SSH private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// SSH private key from a secret or config map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_from: Option<EnvVarSource>,
    /// How the credentials are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<GitAuthType>,
    /// Where to check out (default `/data/repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// Use cone mode for the sparse checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cone: Option<bool>,
    /// Paths of the sparse checkout (everything when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// `content.git.authType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum GitAuthType {
    /// User name and token as basic auth (default).
    Basic,
    /// Token as a bearer `Authorization` header.
    Header,
    /// A token from Testkube's GitHub App integration (Testkube's Control
    /// Plane issues it; a local run has none and sends `username`/`token`
    /// as with `basic`).
    Github,
}

/// `content.files[]`: a file to write before the step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContentFile {
    /// Absolute or workspace-relative path.
    pub path: String,
    /// Inline content (may contain `{{ }}` templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Content from a secret or config map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_from: Option<EnvVarSource>,
    /// File mode, e.g. `0755` (YAML 1.1 octal) or `493`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// `content.tarball[]`: a tarball to download and unpack.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContentTarball {
    /// Where to download from.
    pub url: String,
    /// Where to unpack to.
    pub path: String,
    /// Mount a fresh volume at `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<bool>,
}

/// `content.oci`: an OCI artifact to pull.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OciContent {
    /// Image reference, e.g. `registry.example.com/org/repo:tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Where to mount (default `/data/oci`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// Sub-path to extract to, relative to `mountPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Registry user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Registry user name from a secret or config map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_from: Option<EnvVarSource>,
    /// Registry token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Registry token from a secret or config map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<EnvVarSource>,
    /// Registry address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}
