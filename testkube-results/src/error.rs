//! The one error type of the crate.
//!
//! Every variant names the input (the `name` the caller passed, usually a path) so a CLI can print
//! the error as is, and XML/JSON errors carry a 1-based `line:column`.

use thiserror::Error;

/// Why a report (or a timings file) could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading the input failed.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The input's name.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The input holds nothing but whitespace.
    #[error("{file}: empty file: expected a JUnit XML report (or another supported format)")]
    Empty {
        /// The input's name.
        file: String,
    },

    /// The input is well-formed enough to look at but is not a format this crate reads: not XML or
    /// JSON at all, an unknown root element, or JSON of another shape.
    #[error("{file}: not a test report: {detail}")]
    NotAReport {
        /// The input's name.
        file: String,
        /// What was found instead, and what was expected.
        detail: String,
    },

    /// The XML is malformed (truncated, mismatched tags, bad attribute syntax, invalid UTF-8...).
    #[error("{file}:{line}:{column}: malformed XML: {message}")]
    Xml {
        /// The input's name.
        file: String,
        /// 1-based line of the error.
        line: u64,
        /// 1-based column (in bytes) of the error.
        column: u64,
        /// What is wrong.
        message: String,
    },

    /// Elements are nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH); no real report comes
    /// close, so the input is refused rather than tracked.
    #[error(
        "{file}:{line}:{column}: elements nested deeper than {limit} levels; this is not a test report"
    )]
    TooDeep {
        /// The input's name.
        file: String,
        /// 1-based line of the element that went over the limit.
        line: u64,
        /// 1-based column of that element.
        column: u64,
        /// The limit.
        limit: usize,
    },

    /// The XML declares (or its byte order mark shows) an encoding this crate does not decode.
    #[error(
        "{file}: unsupported encoding {encoding:?}: supported are UTF-8, UTF-16, ISO-8859-1 and windows-1252; convert the report first (e.g. `iconv -f {encoding} -t UTF-8`)"
    )]
    UnsupportedEncoding {
        /// The input's name.
        file: String,
        /// The encoding's name as declared or detected.
        encoding: String,
    },

    /// The input looked like JSON but is not valid JSON.
    #[error("{file}:{line}:{column}: malformed JSON: {message}")]
    Json {
        /// The input's name.
        file: String,
        /// 1-based line of the error.
        line: u64,
        /// 1-based column of the error.
        column: u64,
        /// What is wrong.
        message: String,
    },

    /// A JSON timings map holds something other than non-negative numbers of seconds.
    #[error("{file}: invalid timings: {message}")]
    InvalidTimings {
        /// The input's name.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl ReportError {
    /// The name of the input the error is about.
    pub fn file(&self) -> &str {
        match self {
            ReportError::Io { file, .. }
            | ReportError::Empty { file }
            | ReportError::NotAReport { file, .. }
            | ReportError::Xml { file, .. }
            | ReportError::TooDeep { file, .. }
            | ReportError::UnsupportedEncoding { file, .. }
            | ReportError::Json { file, .. }
            | ReportError::InvalidTimings { file, .. } => file,
        }
    }

    pub(crate) fn json(file: &str, error: &serde_json::Error) -> Self {
        // serde_json's Display appends " at line L column C"; we print the position ourselves.
        let text = error.to_string();
        let message = match text.rfind(" at line ") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        ReportError::Json {
            file: file.to_owned(),
            line: error.line() as u64,
            column: error.column() as u64,
            message,
        }
    }
}
