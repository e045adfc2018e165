//! Broken and hostile inputs: each must give a typed error that names the file and says where
//! and what (never a panic, a hang or a memory blowup), or, for harmless producer sloppiness,
//! parse anyway.

use std::io::{BufRead, BufReader, Read};

use testkube_results::{ReportError, TestStatus, parse_reader, parse_report};

/// Parses `input` in memory and streamed; both must fail with the same message.
fn error(input: &[u8]) -> ReportError {
    let in_memory = match parse_report(input, "bad.xml") {
        Ok(report) => panic!("parsed: {report:?}"),
        Err(e) => e,
    };
    let streamed = match parse_reader(BufReader::with_capacity(16, input), "bad.xml") {
        Ok(report) => panic!("streamed parse succeeded: {report:?}"),
        Err(e) => e,
    };
    assert_eq!(in_memory.to_string(), streamed.to_string());
    in_memory
}

fn message(input: &[u8]) -> String {
    error(input).to_string()
}

#[test]
fn truncated_inside_a_test_case() {
    let input = b"<?xml version=\"1.0\"?>\n<testsuite name=\"s\">\n  <testcase name=\"a\">\n    <failure>boom";
    assert_eq!(
        message(input),
        "bad.xml:4:18: malformed XML: unexpected end of file inside <failure> (3 element(s) not closed): the report is truncated"
    );
    assert!(matches!(error(input), ReportError::Xml { line: 4, .. }));
}

#[test]
fn truncated_inside_an_attribute_value() {
    assert_eq!(
        message(b"<testsuite>\n<testcase name=\"a"),
        "bad.xml:2:1: malformed XML: syntax error: attribute value not closed: `\"` not found before end of input"
    );
}

#[test]
fn truncated_inside_cdata() {
    assert_eq!(
        message(b"<testsuite><testcase name=\"a\"><failure><![CDATA[stack"),
        "bad.xml:1:40: malformed XML: syntax error: CDATA not closed: `]]>` not found before end of input"
    );
}

#[test]
fn truncated_right_after_the_root_start() {
    assert_eq!(
        message(b"<testsuites>"),
        "bad.xml:1:13: malformed XML: unexpected end of file inside <testsuites> (1 element(s) not closed): the report is truncated"
    );
}

#[test]
fn mismatched_end_tag() {
    assert_eq!(
        message(b"<testsuite>\n  <testcase name=\"a\"></testsuite>"),
        "bad.xml:2:22: malformed XML: ill-formed document: expected `</testcase>`, but `</testsuite>` was found"
    );
}

#[test]
fn end_tag_without_start() {
    assert_eq!(
        message(b"<testsuite></testsuite></testsuite>"),
        "bad.xml:1:24: malformed XML: ill-formed document: close tag `</testsuite>` does not match any open tag"
    );
}

#[test]
fn unquoted_attribute_value() {
    assert_eq!(
        message(b"<testsuite>\n<testcase name=\"a\" time=1.5/></testsuite>"),
        "bad.xml:2:1: malformed XML: bad attribute in <testcase>: the value of \"time\" must be quoted"
    );
}

#[test]
fn attribute_without_value() {
    assert_eq!(
        message(b"<testsuite><testcase name skipped=\"x\"/></testsuite>"),
        "bad.xml:1:12: malformed XML: bad attribute in <testcase>: \"name\" has no value"
    );
}

#[test]
fn invalid_utf8_names_the_fix() {
    let err = message(b"<testsuite><testcase name=\"caf\xE9\"/></testsuite>");
    assert!(
        err.starts_with("bad.xml:1:12: malformed XML: invalid UTF-8 ("),
        "{err}"
    );
    assert!(err.ends_with("declare it in the XML declaration"), "{err}");
}

#[test]
fn wrong_root_element() {
    let err = error(b"<?xml version=\"1.0\"?>\n<html><body>404</body></html>");
    assert!(matches!(&err, ReportError::NotAReport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("bad.xml: not a test report: root element is <html>, expected <testsuites> or <testsuite> (JUnit)"),
        "{err}"
    );
}

#[test]
fn not_xml_at_all() {
    assert_eq!(
        message(b"PASS src/app.test.js\nTests: 3 passed"),
        "bad.xml: not a test report: starts with \"PASS\", expected XML ('<') or JSON ('{')"
    );
}

#[test]
fn empty_and_blank_files() {
    for input in [&b""[..], b"  \n\t ", b"\xEF\xBB\xBF"] {
        let err = error(input);
        assert!(
            matches!(err, ReportError::Empty { .. }),
            "{input:?}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "bad.xml: empty file: expected a JUnit XML report (or another supported format)"
        );
    }
}

#[test]
fn declaration_without_root_element() {
    assert_eq!(
        message(b"<?xml version=\"1.0\"?>\n<!-- nothing here -->\n"),
        "bad.xml: not a test report: no root element"
    );
}

#[test]
fn text_before_the_root_element() {
    assert_eq!(
        message(b"<!-- report -->junk<testsuite/>"),
        "bad.xml: not a test report: text before the root element"
    );
}

#[test]
fn deeply_nested_elements_are_refused_early() {
    let mut input = b"<testsuites>".to_vec();
    for _ in 0..1_000_000 {
        input.extend_from_slice(b"<testsuite>");
    }
    let err = error(&input);
    assert!(
        matches!(
            err,
            ReportError::TooDeep {
                limit: 256,
                line: 1,
                column: 2818,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "bad.xml:1:2818: elements nested deeper than 256 levels; this is not a test report"
    );
}

#[test]
fn entity_bomb_is_never_expanded() {
    let mut input =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol \"lol\">\n");
    for level in 1..=9 {
        let previous = if level == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", level - 1)
        };
        input.push_str(&format!(
            "  <!ENTITY lol{level} \"{}\">\n",
            format!("&{previous};").repeat(10)
        ));
    }
    input.push_str("]>\n<testsuite name=\"&lol9;\"><testcase name=\"t\"><failure message=\"&lol9;\">&lol9; and &lt;ok&gt;</failure></testcase></testsuite>");
    let report = parse_report(input.as_bytes(), "lolz.xml").unwrap_or_else(|e| panic!("{e}"));
    let case = &report.cases[0];
    assert_eq!(&*case.suite, "&lol9;");
    assert_eq!(case.status, TestStatus::Failed);
    assert_eq!(case.message.as_deref(), Some("&lol9;"));
    assert_eq!(case.output.as_deref(), Some("&lol9; and <ok>"));
}

#[test]
fn external_entities_are_not_fetched() {
    let input = b"<?xml version=\"1.0\"?><!DOCTYPE t [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><testsuite><testcase name=\"&xxe;\"><failure>&xxe;</failure></testcase></testsuite>";
    let report = parse_report(input, "xxe.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.cases[0].name, "&xxe;");
    assert_eq!(report.cases[0].output.as_deref(), Some("&xxe;"));
}

#[test]
fn unsupported_encodings_are_refused_by_name() {
    let err = error(b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><testsuite/>");
    assert_eq!(
        err.to_string(),
        "bad.xml: unsupported encoding \"Shift_JIS\": supported are UTF-8, UTF-16, ISO-8859-1 and windows-1252; convert the report first (e.g. `iconv -f Shift_JIS -t UTF-8`)"
    );
    let utf32 = error(b"\xFF\xFE\x00\x00<\x00\x00\x00");
    assert!(
        matches!(&utf32, ReportError::UnsupportedEncoding { encoding, .. } if encoding == "UTF-32"),
        "{utf32:?}"
    );
}

#[test]
fn read_errors_are_io_errors_with_the_file_name() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let err = parse_reader(BufReader::new(Failing), "gone.xml").err();
    assert!(
        matches!(&err, Some(ReportError::Io { file, .. }) if file == "gone.xml"),
        "{err:?}"
    );
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("gone.xml: cannot read: disk on fire")
    );
}

#[test]
fn read_error_midway_through_a_stream() {
    /// Serves the start of a report, then fails.
    struct HalfThenFail(&'static [u8]);
    impl Read for HalfThenFail {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let reader = BufReader::with_capacity(8, HalfThenFail(b"<testsuite><testcase name=\"a\"/>"));
    assert!(reader.buffer().is_empty());
    let err = parse_reader(reader, "net.xml").err();
    assert!(matches!(err, Some(ReportError::Io { .. })), "{err:?}");
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("net.xml: cannot read: connection reset")
    );
}

// Sloppy but readable input is accepted.

#[test]
fn lone_ampersands_in_text_are_kept() {
    let report = parse_report(
        b"<testsuite><testcase name=\"AT&T\"><failure>a & b &amp; c</failure></testcase></testsuite>",
        "amp.xml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.cases[0].name, "AT&T");
    assert_eq!(report.cases[0].output.as_deref(), Some("a & b & c"));
}

#[test]
fn odd_durations_do_not_reject_the_report() {
    let report = parse_report(
        br#"<testsuite>
            <testcase name="thousands" time="1,234.5"/>
            <testcase name="decimal-comma" time="0,25"/>
            <testcase name="millis" time="250ms"/>
            <testcase name="garbage" time="n/a"/>
            <testcase name="negative" time="-3"/>
            <testcase name="missing"/>
        </testsuite>"#,
        "times.xml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let durations: Vec<Option<f64>> = report.cases.iter().map(|c| c.duration).collect();
    assert_eq!(
        durations,
        [Some(1234.5), Some(0.25), Some(0.25), None, None, None]
    );
    assert_eq!(report.totals.tests, 6);
}

#[test]
fn bom_and_legacy_encodings_are_decoded() {
    let utf8_bom = b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?><testsuite><testcase name=\"caf\xC3\xA9\"/></testsuite>";
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite><testcase name=\"caf\xE9\"/></testsuite>";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?><testsuite><testcase name=\"café\"/></testsuite>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    for input in [&utf8_bom[..], latin1, &utf16] {
        let in_memory = parse_report(input, "enc.xml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(in_memory.cases[0].name, "café");
        let streamed = parse_reader(BufReader::with_capacity(16, input), "enc.xml")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(streamed, in_memory);
    }
}

#[test]
fn streamed_errors_point_at_the_same_line_as_in_memory_ones() {
    let mut input = String::from("<testsuite>\n");
    for i in 0..200 {
        input.push_str(&format!(
            "  <testcase name=\"t{i}\">\n    <system-out>line one\nline two</system-out>\n  </testcase>\n"
        ));
    }
    input.push_str("  <testcase name=\"broken\"></testsuite>\n");
    // The in-memory and streamed errors are compared by `error`.
    assert_eq!(
        message(input.as_bytes()),
        "bad.xml:802:27: malformed XML: ill-formed document: expected `</testcase>`, but `</testsuite>` was found"
    );
}

#[test]
fn a_reader_whose_first_chunk_is_blank_still_works() {
    // parse_reader peeks at the buffer to decide whether to stream; a first chunk with nothing
    // telling in it falls back to reading everything.
    let input: &[u8] = b"  \n<testsuite><testcase name=\"a\"/></testsuite>";
    let mut reader = BufReader::with_capacity(1, input);
    assert_eq!(reader.fill_buf().map(<[u8]>::len).ok(), Some(1));
    let report = parse_reader(reader, "tiny.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.totals.tests, 1);
}

#[test]
fn concatenated_reports_are_all_read() {
    // `cat TEST-*.xml > all.xml` is a common way to collect reports.
    let input = b"<?xml version=\"1.0\"?>\n<testsuite name=\"a\"><testcase name=\"t1\"/></testsuite>\n<?xml version=\"1.0\"?>\n<testsuite name=\"b\"><testcase name=\"t2\"><failure message=\"m\"/></testcase></testsuite>\n";
    let report = parse_report(input, "all.xml").unwrap_or_else(|e| panic!("{e}"));
    let suites: Vec<&str> = report.cases.iter().map(|c| &*c.suite).collect();
    assert_eq!(suites, ["a", "b"]);
    assert_eq!((report.totals.passed, report.totals.failed), (1, 1));
}
