//! Errors as the API answers them: Testkube's problem documents
//! (`{type, title, status, detail}`, RFC 7807), with the problems of an
//! invalid workflow listed by field, line and column.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use testkube_core::store::StoreError;

/// One problem of an invalid document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// The field (`spec.steps[0].shell`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Line in the request body (1-based), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Column in the request body (1-based), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// What is wrong and what to do.
    pub message: String,
}

/// An error answer: `{type, title, status, detail, issues?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong and what to do.
    pub detail: String,
    /// The problems of an invalid document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<Issue>,
}

/// An error of a handler, turned into a [`Problem`] answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    detail: String,
    issues: Vec<Issue>,
    /// `WWW-Authenticate` for 401s.
    challenge: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            issues: Vec::new(),
            challenge: false,
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub(crate) fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// A document that is not valid: 400 with every problem.
    pub(crate) fn invalid(detail: impl Into<String>, issues: Vec<Issue>) -> Self {
        ApiError {
            issues,
            ..Self::bad_request(detail)
        }
    }

    /// A store failure: a missing execution is a 404, the rest a 500.
    pub(crate) fn store(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(_) => Self::not_found(err.to_string()),
            other => {
                tracing::warn!("result store: {other}");
                Self::internal(format!("the result store failed: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            issues: self.issues,
        };
        let mut response = (self.status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"testkube\""),
            );
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
