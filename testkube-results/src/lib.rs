//! Test report parsing: JUnit XML in all its dialects (and NUnit, xUnit.net, TRX, `go test
//! -json`, mocha JSON) into one normalized model.
//!
//! The `report` and `split` commands need the same thing from every CI: which tests ran, how they
//! ended and how long they took. Producers disagree on nesting, counters, where the file goes and
//! how reruns are written, so [`parse_report`] folds them all into a [`TestReport`] of
//! [`TestCase`]s with one [`TestStatus`] each, and totals computed from the cases (header
//! counters are never trusted).
//!
//! # Formats
//!
//! Detected from the content, never from the file name: JUnit XML (`<testsuites>`/`<testsuite>`
//! root: Surefire, Gradle, Ant, pytest, Jest, Playwright, Cypress/mocha, go-junit-report,
//! nextest, PHPUnit, tst, ...), NUnit 2 and 3, xUnit.net v2, TRX, `go test -json` and
//! `mocha --reporter json`; see [`ReportFormat`]. Inputs may be UTF-8 (with or without BOM),
//! UTF-16, ISO-8859-1 or windows-1252.
//!
//! # Normalization rules
//!
//! - A case's status comes from its children: `<error>` → errored, `<failure>` → failed,
//!   `<skipped>` → skipped; earlier failed attempts (`flakyFailure`, `rerunFailure`, ...)
//!   without a final failure → flaky; else a `status=` attribute (`disabled`, `notrun`); else
//!   passed. [`TestCase::reruns`] counts the earlier attempts either way.
//! - The message is the `message` attribute, else the first line of the failure text.
//! - Output (failure text, earlier attempts, `system-out`, `system-err`) is kept for cases that
//!   did not pass; passing cases keep none.
//! - `file` comes from the case, else the nearest suite, else an earlier empty suite that named
//!   one (Cypress's "Root Suite"). Names, classes and files are trimmed.
//! - Durations accept `1,234.5`, `0,5`, `12ms`, `1.5s`; an unreadable one is `None`, never an
//!   error.
//!
//! # Limits
//!
//! Reading is streaming over quick-xml: no DOM is built, element nesting is limited to
//! [`MAX_DEPTH`], each case keeps at most [`MAX_OUTPUT_BYTES`] of output and
//! [`MAX_MESSAGE_BYTES`] of message, and entity references other than the five predefined ones
//! and character references are kept as written, never expanded (nor fetched), so entity bombs
//! cannot grow. Memory is the kept cases plus, for [`parse_reader`], the largest single event.
//!
//! # Example
//!
//! ```
//! use testkube_results::{TestStatus, parse_report};
//!
//! let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
//! <testsuite name="io.example.CalcTest" tests="99">
//!   <testcase classname="io.example.CalcTest" name="adds" time="0.012"/>
//!   <testcase classname="io.example.CalcTest" name="divides" time="1,234.5">
//!     <failure message="expected 2 but was 3"><![CDATA[java.lang.AssertionError
//!     at CalcTest.divides(CalcTest.java:20)]]></failure>
//!   </testcase>
//!   <testcase classname="io.example.CalcTest" name="retries" time="0.5">
//!     <flakyFailure message="timeout">first attempt timed out</flakyFailure>
//!   </testcase>
//! </testsuite>"#;
//!
//! let report = parse_report(xml, "TEST-CalcTest.xml")?;
//! assert_eq!(report.totals.tests, 3); // from the cases, not the header's 99
//! assert_eq!((report.totals.passed, report.totals.failed, report.totals.flaky), (1, 1, 1));
//! let divides = &report.cases[1];
//! assert_eq!(divides.status, TestStatus::Failed);
//! assert_eq!(divides.duration, Some(1234.5));
//! assert_eq!(divides.message.as_deref(), Some("expected 2 but was 3"));
//! assert!(divides.output.as_deref().unwrap_or("").starts_with("java.lang.AssertionError"));
//! assert_eq!(report.cases[2].status, TestStatus::Flaky);
//! assert_eq!(report.cases[2].reruns, 1);
//!
//! // Malformed input is a typed error that says where.
//! let err = parse_report(b"<testsuite><testcase name='x'>", "cut.xml").unwrap_err();
//! assert!(err.to_string().starts_with("cut.xml:1:"), "{err}");
//! # Ok::<(), testkube_results::ReportError>(())
//! ```
//!
//! Durations for test splitting come from [`read_timings`], keyed by [`TimingKey`].
#![warn(missing_docs)]

#[cfg(feature = "artifacts")]
pub mod artifacts;
mod builder;
mod case_name;
mod dotnet;
mod error;
mod input;
mod json;
mod junit;
mod model;
mod nunit;
mod records;
#[cfg(any(feature = "store", feature = "postgres", feature = "conformance"))]
pub mod store;
mod text;
mod timings;
mod xml;

use std::io::{BufRead, Cursor, Read};

pub use case_name::CaseName;
pub use error::ReportError;
pub use model::{ReportFormat, SuiteSummary, TestCase, TestReport, TestStatus, Totals};
pub use records::test_case_record;
pub use timings::{TimingKey, read_timings, read_timings_by};

use input::{Encoding, Syntax, UTF8_BOM, detect_encoding, prepare};
use xml::{BufSource, SliceSource, parse_xml};

/// Deepest element nesting accepted. Real reports stay under a few dozen levels (NUnit nests
/// namespaces); deeper input is refused with [`ReportError::TooDeep`].
pub const MAX_DEPTH: usize = 256;

/// Most bytes of output kept per test case; the rest is replaced by a
/// `… [truncated: N more bytes]` marker.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Most bytes of message kept per test case; longer ones end with `…`.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// Parses a report held in memory. `name` (usually the path) names the input in errors and in
/// [`TestReport::name`].
///
/// The format is detected from the content: the root element for XML (`<testsuites>` and
/// `<testsuite>` are JUnit), the shape for JSON. UTF-8 (with or without BOM), UTF-16,
/// ISO-8859-1 and windows-1252 inputs are read; other declared encodings are refused.
///
/// # Errors
///
/// [`ReportError`] for empty, non-report, malformed, too deeply nested or unsupported-encoding
/// input, with the position where it applies.
pub fn parse_report(bytes: &[u8], name: &str) -> Result<TestReport, ReportError> {
    let prepared = prepare(bytes, name)?;
    match prepared.syntax {
        Syntax::Xml => parse_xml(SliceSource::new(&prepared.bytes), name, prepared.transcoded),
        Syntax::Json => json::parse_json(&prepared.bytes, name),
    }
}

/// Parses a report from a reader, streaming: XML in UTF-8 is parsed as it is read with one
/// reused buffer, so memory holds the cases, not the document. Other encodings and JSON are read
/// into memory first (still bounded by the input's size). See [`parse_report`].
///
/// # Errors
///
/// As [`parse_report`], plus [`ReportError::Io`] when reading fails.
pub fn parse_reader<R: BufRead>(mut reader: R, name: &str) -> Result<TestReport, ReportError> {
    let io = |source| ReportError::Io {
        file: name.to_owned(),
        source,
    };
    // Enough of the start to see a byte order mark and the whole XML declaration, whatever the
    // reader's buffer size.
    let mut head = Vec::with_capacity(HEAD_BYTES);
    reader
        .by_ref()
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let streamable = detect_encoding(&head, name)? == Encoding::Utf8
        && head
            .strip_prefix(UTF8_BOM)
            .unwrap_or(&head)
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            == Some(&b'<');
    if streamable {
        if head.starts_with(UTF8_BOM) {
            head.drain(..UTF8_BOM.len());
        }
        return parse_xml(BufSource::new(Cursor::new(head).chain(reader)), name, false);
    }
    let mut bytes = head;
    reader.read_to_end(&mut bytes).map_err(io)?;
    parse_report(&bytes, name)
}

/// How much of a streamed input is looked at before parsing starts.
const HEAD_BYTES: usize = 1024;
