//! `config` parameters: the typed inputs of a workflow or template.

use serde::{Deserialize, Serialize};

/// One entry of `spec.config`: the declaration of a parameter. A parameter
/// without `default` is required.
///
/// Numeric constraints are JSON numbers rather than floats so that a file
/// comes back as written (`minimum: 1` stays `1`, not `1.0`); use
/// [`ParameterSchema::bound`] to compare against them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ParameterSchema {
    /// What the parameter is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value type; passed values are cast to it (default `string`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub param_type: Option<ParameterType>,
    /// Allowed values.
    #[serde(rename = "enum", default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<serde_json::Value>,
    /// An example value, for documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<serde_json::Value>,
    /// Default value (may contain `{{ }}` templates); none means required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Mask the value in logs and results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    /// Predefined string format (free text, informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Regular expression a string value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Minimum string length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum string length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Inclusive lower bound of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<serde_json::Number>,
    /// Inclusive upper bound of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<serde_json::Number>,
    /// Exclusive lower bound of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<serde_json::Number>,
    /// Exclusive upper bound of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_maximum: Option<serde_json::Number>,
    /// A number must be a multiple of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<serde_json::Number>,
}

impl ParameterSchema {
    /// The declared type, `string` when absent.
    pub fn effective_type(&self) -> ParameterType {
        self.param_type.unwrap_or(ParameterType::String)
    }

    /// A numeric constraint as a float, for comparisons.
    pub fn bound(number: Option<&serde_json::Number>) -> Option<f64> {
        number.and_then(serde_json::Number::as_f64)
    }

    /// Whether a caller must pass a value.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// `config.<name>.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// Text (the default).
    String,
    /// A 64-bit integer.
    Integer,
    /// A 64-bit float.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl ParameterType {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "string",
            ParameterType::Integer => "integer",
            ParameterType::Number => "number",
            ParameterType::Boolean => "boolean",
        }
    }
}
