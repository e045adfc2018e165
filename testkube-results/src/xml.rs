//! The streaming XML driver: pulls quick-xml events from a byte slice or a `BufRead`, enforces
//! the nesting limit, decodes entity references, turns quick-xml errors into positioned
//! [`ReportError`]s, and feeds a format handler chosen by the root element.
//!
//! Handlers never see raw XML concerns, so JUnit, NUnit, xUnit.net and TRX parsers are just state
//! machines over element names. No DOM is built: memory is the cases kept plus one event buffer.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::model::{ReportFormat, TestReport};
use crate::text::resolve_entity;
use crate::{MAX_DEPTH, ReportError, dotnet, junit, nunit};

/// A format parser driven by [`parse_xml`].
pub(crate) trait XmlHandler {
    /// A start tag. Empty elements (`<a/>`) get a `start` immediately followed by an `end`.
    fn start(&mut self, element: &BytesStart<'_>) -> Result<(), String>;
    /// The end of the element opened by the matching `start`.
    fn end(&mut self);
    /// Whether text at the current position is kept; when `false` the driver skips decoding it.
    fn wants_text(&self) -> bool;
    /// Decoded character data (text, CDATA, resolved references), in pieces.
    fn text(&mut self, text: &str);
    /// The report built from everything seen.
    fn finish(self, name: &str) -> TestReport;
}

/// Where events come from: a slice (zero-copy) or a buffered reader (one reused buffer).
pub(crate) trait EventSource {
    fn next_event(&mut self) -> quick_xml::Result<Event<'_>>;
    /// Byte offset just after the last event read.
    fn position(&self) -> u64;
    /// Byte offset quick-xml attributes its last error to.
    fn error_position(&self) -> u64;
    /// 1-based line and column of a byte offset at or after the last event's start.
    fn line_column(&self, offset: u64) -> (u64, u64);
    /// The input's size when known up front, to size the case list once.
    fn input_len(&self) -> Option<usize> {
        None
    }
}

/// Events borrowed straight from an in-memory report.
pub(crate) struct SliceSource<'a> {
    reader: Reader<&'a [u8]>,
    bytes: &'a [u8],
}

impl<'a> SliceSource<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        SliceSource {
            reader: configured(Reader::from_reader(bytes)),
            bytes,
        }
    }
}

impl EventSource for SliceSource<'_> {
    fn next_event(&mut self) -> quick_xml::Result<Event<'_>> {
        self.reader.read_event()
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn error_position(&self) -> u64 {
        self.reader.error_position()
    }

    fn line_column(&self, offset: u64) -> (u64, u64) {
        let end = usize::try_from(offset).map_or(self.bytes.len(), |o| o.min(self.bytes.len()));
        let before = &self.bytes[..end];
        let line = memchr::memchr_iter(b'\n', before).count() as u64 + 1;
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        (line, (end - line_start) as u64 + 1)
    }

    fn input_len(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// Events read through a `BufRead` into one reused buffer. The bytes are gone once parsed, so
/// lines are counted as events go by: the buffer holds the bytes of the latest event (or of the
/// partial event that failed), which locate a position inside it exactly.
pub(crate) struct BufSource<R> {
    reader: Reader<R>,
    buf: Vec<u8>,
    /// Where the latest event starts, and the line count and line start there.
    event_start: u64,
    lines: u64,
    line_start: u64,
}

impl<R: BufRead> BufSource<R> {
    pub(crate) fn new(reader: R) -> Self {
        BufSource {
            reader: configured(Reader::from_reader(reader)),
            buf: Vec::with_capacity(16 * 1024),
            event_start: 0,
            lines: 0,
            line_start: 0,
        }
    }
}

impl<R: BufRead> EventSource for BufSource<R> {
    fn next_event(&mut self) -> quick_xml::Result<Event<'_>> {
        // The previous event is consumed: fold its newlines into the count.
        if let Some(last) = memchr::memrchr(b'\n', &self.buf) {
            self.lines += memchr::memchr_iter(b'\n', &self.buf).count() as u64;
            self.line_start = self.event_start + last as u64 + 1;
        }
        self.buf.clear();
        self.event_start = self.reader.buffer_position();
        self.reader.read_event_into(&mut self.buf)
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn error_position(&self) -> u64 {
        self.reader.error_position()
    }

    fn line_column(&self, offset: u64) -> (u64, u64) {
        let within = usize::try_from(offset.saturating_sub(self.event_start))
            .map_or(self.buf.len(), |n| n.min(self.buf.len()));
        let before = &self.buf[..within];
        match memchr::memrchr(b'\n', before) {
            Some(last) => {
                let lines = self.lines + memchr::memchr_iter(b'\n', before).count() as u64;
                let line_start = self.event_start + last as u64 + 1;
                (lines + 1, offset.saturating_sub(line_start) + 1)
            }
            None => (self.lines + 1, offset.saturating_sub(self.line_start) + 1),
        }
    }
}

/// Reader settings shared by both sources.
fn configured<R>(mut reader: Reader<R>) -> Reader<R> {
    // A bare `&` in text ("AT&T") is a common producer bug; keep it as text rather than
    // rejecting the report.
    reader.config_mut().allow_dangling_amp = true;
    reader
}

/// The handlers, one per XML format, chosen from the root element.
enum AnyHandler {
    Junit(junit::JunitHandler),
    Nunit(nunit::NunitHandler),
    Xunit(dotnet::XunitHandler),
    Trx(dotnet::TrxHandler),
}

/// Parses an XML report from `source`. `transcoded` says the bytes were converted to UTF-8
/// already, so the declaration's `encoding` is no longer checked.
pub(crate) fn parse_xml<S: EventSource>(
    mut source: S,
    file: &str,
    transcoded: bool,
) -> Result<TestReport, ReportError> {
    // A generous guess at the number of cases (real reports spend a few hundred bytes per case)
    // so the case list is allocated once instead of being copied as it doubles; pages that are
    // never written are never touched, so over-reserving costs address space, not memory.
    let capacity = source.input_len().map_or(0, |len| (len / 256).min(1 << 20));
    let (handler, open) = loop {
        let event_start = source.position();
        let event = source.next_event();
        let (element, empty) = match event {
            Ok(Event::Start(element)) => (element, false),
            Ok(Event::Empty(element)) => (element, true),
            Ok(Event::Decl(decl)) => {
                check_declared_encoding(&decl, transcoded, file)?;
                continue;
            }
            Ok(Event::Text(text)) if text.trim().is_empty() => continue,
            Ok(Event::Comment(_) | Event::PI(_) | Event::DocType(_)) => continue,
            Ok(Event::Eof) => {
                return Err(ReportError::NotAReport {
                    file: file.to_owned(),
                    detail: "no root element".to_owned(),
                });
            }
            Ok(_) => {
                return Err(ReportError::NotAReport {
                    file: file.to_owned(),
                    detail: "text before the root element".to_owned(),
                });
            }
            Err(error) => return Err(xml_error(&source, &error, file)),
        };
        let root = element.local_name().into_inner();
        let mut handler = match root {
            "testsuites" | "testsuite" => AnyHandler::Junit(junit::JunitHandler::new(capacity)),
            "test-results" => {
                AnyHandler::Nunit(nunit::NunitHandler::new(ReportFormat::Nunit2, capacity))
            }
            "test-run" => {
                AnyHandler::Nunit(nunit::NunitHandler::new(ReportFormat::Nunit3, capacity))
            }
            "assemblies" | "assembly" => AnyHandler::Xunit(dotnet::XunitHandler::new(capacity)),
            "TestRun" => AnyHandler::Trx(dotnet::TrxHandler::new(capacity)),
            other => {
                return Err(ReportError::NotAReport {
                    file: file.to_owned(),
                    detail: format!(
                        "root element is <{other}>, expected <testsuites> or <testsuite> (JUnit), \
                         <test-run>/<test-results> (NUnit), <assemblies> (xUnit.net) or <TestRun> (TRX)"
                    ),
                });
            }
        };
        let started = match &mut handler {
            AnyHandler::Junit(h) => open_root(h, &element, empty),
            AnyHandler::Nunit(h) => open_root(h, &element, empty),
            AnyHandler::Xunit(h) => open_root(h, &element, empty),
            AnyHandler::Trx(h) => open_root(h, &element, empty),
        };
        if let Err(message) = started {
            return Err(positioned(&source, event_start, message, file));
        }
        let mut open = OpenElements::default();
        if !empty {
            open.push(element.name().into_inner());
        }
        break (handler, open);
    };
    match handler {
        AnyHandler::Junit(h) => drive(source, h, open, file, transcoded),
        AnyHandler::Nunit(h) => drive(source, h, open, file, transcoded),
        AnyHandler::Xunit(h) => drive(source, h, open, file, transcoded),
        AnyHandler::Trx(h) => drive(source, h, open, file, transcoded),
    }
}

fn open_root<H: XmlHandler>(h: &mut H, root: &BytesStart<'_>, empty: bool) -> Result<(), String> {
    h.start(root)?;
    if empty {
        h.end();
    }
    Ok(())
}

/// The event loop after the root element: depth limit, text decoding, end-of-file checks.
fn drive<S: EventSource, H: XmlHandler>(
    mut source: S,
    mut handler: H,
    root: OpenElements,
    file: &str,
    transcoded: bool,
) -> Result<TestReport, ReportError> {
    let mut open = root;
    loop {
        let event_start = source.position();
        let event = match source.next_event() {
            Ok(event) => event,
            Err(error) => return Err(xml_error(&source, &error, file)),
        };
        match event {
            Event::Start(element) => {
                if open.depth() >= MAX_DEPTH {
                    let (line, column) = source.line_column(event_start);
                    return Err(ReportError::TooDeep {
                        file: file.to_owned(),
                        line,
                        column,
                        limit: MAX_DEPTH,
                    });
                }
                open.push(element.name().into_inner());
                if let Err(message) = handler.start(&element) {
                    return Err(positioned(&source, event_start, message, file));
                }
            }
            Event::Empty(element) => {
                if let Err(message) = handler.start(&element) {
                    return Err(positioned(&source, event_start, message, file));
                }
                handler.end();
            }
            Event::End(_) => {
                // quick-xml has already checked that the name matches the open element.
                if open.pop() {
                    handler.end();
                }
            }
            Event::Text(text) => {
                if handler.wants_text() {
                    handler.text(&text);
                }
            }
            Event::CData(cdata) => {
                if handler.wants_text() {
                    handler.text(&cdata);
                }
            }
            Event::GeneralRef(reference) => {
                if handler.wants_text() {
                    let mut utf8 = [0u8; 4];
                    match resolve_entity(&reference, &mut utf8) {
                        Some(text) => handler.text(text),
                        // Custom entities are never expanded (no entity bombs): keep them as
                        // written.
                        None => {
                            handler.text("&");
                            handler.text(&reference);
                            handler.text(";");
                        }
                    }
                }
            }
            Event::Decl(decl) => check_declared_encoding(&decl, transcoded, file)?,
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => {
                if let Some(innermost) = open.innermost() {
                    let offset = source.position();
                    let message = format!(
                        "unexpected end of file inside <{innermost}> ({} element(s) not closed): the report is truncated",
                        open.depth()
                    );
                    return Err(positioned(&source, offset, message, file));
                }
                return Ok(handler.finish(file));
            }
        }
    }
}

/// The names of the open elements, innermost last, kept in one string so that tracking them
/// does not allocate per element; used for the nesting limit and truncation errors.
#[derive(Default)]
struct OpenElements {
    names: String,
    starts: Vec<usize>,
}

impl OpenElements {
    fn depth(&self) -> usize {
        self.starts.len()
    }

    fn push(&mut self, name: &str) {
        self.starts.push(self.names.len());
        self.names.push_str(name);
    }

    /// Closes the innermost element; `false` when none is open.
    fn pop(&mut self) -> bool {
        match self.starts.pop() {
            Some(start) => {
                self.names.truncate(start);
                true
            }
            None => false,
        }
    }

    fn innermost(&self) -> Option<&str> {
        self.starts.last().map(|&start| &self.names[start..])
    }
}

/// Refuses a document whose declaration names an encoding the input was not converted from
/// (only reachable when a streamed input's declaration did not fit in the first peeked bytes).
fn check_declared_encoding(
    decl: &quick_xml::events::BytesDecl<'_>,
    transcoded: bool,
    file: &str,
) -> Result<(), ReportError> {
    if transcoded {
        return Ok(());
    }
    if let Some(Ok(encoding)) = decl.encoding() {
        let lower = encoding.to_ascii_lowercase();
        if !matches!(
            lower.as_str(),
            "utf-8" | "utf8" | "us-ascii" | "ascii" | "utf-16" | "utf-16le" | "utf-16be" | "utf16"
        ) {
            return Err(ReportError::UnsupportedEncoding {
                file: file.to_owned(),
                encoding: encoding.into_owned(),
            });
        }
    }
    Ok(())
}

fn xml_error<S: EventSource>(source: &S, error: &quick_xml::Error, file: &str) -> ReportError {
    // quick-xml records a position for syntax errors; for others (invalid UTF-8) it leaves 0,
    // and the place it stopped reading is the better answer.
    let offset = match source.error_position() {
        0 => source.position(),
        offset => offset,
    };
    let message = match error {
        quick_xml::Error::Io(io) => {
            return ReportError::Io {
                file: file.to_owned(),
                source: std::io::Error::new(io.kind(), io.to_string()),
            };
        }
        quick_xml::Error::Encoding(e) => format!(
            "invalid UTF-8 ({e}); if the file is in another encoding, declare it in the XML declaration"
        ),
        other => other.to_string(),
    };
    positioned(source, offset, message, file)
}

fn positioned<S: EventSource>(source: &S, offset: u64, message: String, file: &str) -> ReportError {
    let (line, column) = source.line_column(offset);
    ReportError::Xml {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// Calls `each(key, raw_value)` for every attribute of `element`, without allocating; values are
/// still escaped (see [`crate::text::unescape`]).
///
/// A small byte scanner of our own rather than quick-xml's attribute iterator: this runs for
/// every element of the report and only has to split `key="value"` pairs. Every index it slices
/// at is an ASCII delimiter, so slicing never splits a character.
pub(crate) fn for_each_attribute<'e>(
    element: &'e BytesStart<'_>,
    mut each: impl FnMut(&'e str, &'e str),
) -> Result<(), String> {
    let content: &'e str = element;
    let bytes = content.as_bytes();
    let name = element.name().into_inner();
    let bad = |what: String| format!("bad attribute in <{name}>: {what}");
    let skip_space = |mut i: usize| {
        while i < bytes.len() && is_xml_space(bytes[i]) {
            i += 1;
        }
        i
    };
    let mut i = name.len();
    loop {
        i = skip_space(i);
        if i >= bytes.len() {
            return Ok(());
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !is_xml_space(bytes[i]) {
            i += 1;
        }
        let key = &content[key_start..i];
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            return Err(bad(format!("{key:?} has no value")));
        }
        i = skip_space(i + 1);
        let quote = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(bad(format!("the value of {key:?} must be quoted"))),
        };
        let value_start = i + 1;
        let Some(length) = memchr::memchr(quote, &bytes[value_start..]) else {
            return Err(bad(format!("the value of {key:?} is not closed")));
        };
        each(key, &content[value_start..value_start + length]);
        i = value_start + length + 1;
    }
}

fn is_xml_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}
