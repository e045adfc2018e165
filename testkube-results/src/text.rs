//! Small text helpers shared by the parsers: durations as producers write them, XML entity
//! decoding in attribute values, and size-bounded accumulation of captured output.
//!
//! They live apart from the parsers because each is a place where real reports disagree
//! (commas in numbers, unit suffixes, `\r\n`, huge outputs) and deserves its own tests.

use std::borrow::Cow;

/// Parses a duration in seconds as producers write it: `"1.5"`, `"1,234.5"` (thousands
/// separators), `"0,5"` (decimal comma), `"12ms"`, `"1.5s"`, `" 3 "`. Returns `None` for anything
/// empty, negative, not finite or unreadable: a bad time must not reject the whole report.
///
/// Commas: with a `.` present, commas are thousands separators. Without one, a single comma is a
/// decimal comma unless exactly three digits follow it and the integer part is not `0`
/// (`"1,234"` is 1234 s, `"0,123"` and `"1,5"` are fractions); several commas are thousands
/// separators.
pub(crate) fn parse_seconds(raw: &str) -> Option<f64> {
    // Fast paths: the overwhelmingly common plain decimals.
    if let Some(value) = parse_plain_decimal(raw.as_bytes()) {
        return Some(value);
    }
    if let Ok(value) = raw.parse::<f64>() {
        return finite_non_negative(value);
    }
    let text = raw.trim();
    let (number, scale) = split_unit(text)?;
    let number = number.trim_end();
    let value = if number.contains(',') {
        parse_with_commas(number)?
    } else {
        number.parse::<f64>().ok()?
    };
    finite_non_negative(value * scale)
}

/// `digits[.digits]` with at most 15 significant digits, exactly as `str::parse` would read it:
/// the digits form an integer below 2^53 and 10^k (k ≤ 15) is exact in an f64, so one
/// correctly rounded division gives the correctly rounded result (Clinger's fast path).
fn parse_plain_decimal(bytes: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0;
    let mut fraction_digits = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if fraction_digits.is_none() && i > 0 && i + 1 < bytes.len() => {
                fraction_digits = Some(bytes.len() - i - 1);
            }
            _ => return None,
        }
    }
    if digits > 15 {
        return None;
    }
    Some(mantissa as f64 / POW10[fraction_digits.unwrap_or(0)])
}

fn finite_non_negative(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// Splits a trailing unit off and returns the factor to seconds.
fn split_unit(text: &str) -> Option<(&str, f64)> {
    let digits_end = text
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ',')
        .map_or(0, |i| i + 1);
    let (number, unit) = text.split_at(digits_end);
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "msec" | "millis" | "milliseconds" => 1e-3,
        "us" | "µs" | "μs" | "microseconds" => 1e-6,
        "ns" | "nanoseconds" => 1e-9,
        "m" | "min" | "mins" | "minutes" => 60.0,
        "h" | "hr" | "hours" => 3600.0,
        _ => return None,
    };
    Some((number, scale))
}

fn parse_with_commas(number: &str) -> Option<f64> {
    let commas = number.matches(',').count();
    let thousands = if number.contains('.') || commas > 1 {
        true
    } else {
        let (int, frac) = number.split_once(',')?;
        frac.len() == 3
            && frac.bytes().all(|b| b.is_ascii_digit())
            && int.trim_start_matches('-') != "0"
    };
    if thousands {
        number.replace(',', "").parse().ok()
    } else {
        number.replacen(',', ".", 1).parse().ok()
    }
}

/// Decodes the five predefined XML entities and character references in a raw attribute value.
/// References to any other entity are kept literally (`&foo;`): this crate never expands
/// DTD-declared entities, so entity bombs cannot grow. A lone `&` is kept too.
pub(crate) fn unescape(raw: &str) -> Cow<'_, str> {
    let Some(first) = memchr::memchr(b'&', raw.as_bytes()) else {
        return Cow::Borrowed(raw);
    };
    let mut out = String::with_capacity(raw.len());
    unescape_from(raw, first, &mut out);
    Cow::Owned(out)
}

/// Appends `raw` to `out`, decoded as [`unescape`] does (without an intermediate string).
pub(crate) fn unescape_into(raw: &str, out: &mut String) {
    match memchr::memchr(b'&', raw.as_bytes()) {
        Some(first) => unescape_from(raw, first, out),
        None => out.push_str(raw),
    }
}

/// Decodes `raw`, whose first `&` is at `first`, onto `out`.
fn unescape_from(raw: &str, first: usize, out: &mut String) {
    let bytes = raw.as_bytes();
    // `raw[copied..i]` is pending verbatim text; every index sliced at is an ASCII `&` or `;`.
    let mut copied = 0;
    let mut i = first;
    while i < bytes.len() {
        if bytes[i] == b'&'
            && let Some(length) = bytes[i + 1..].iter().take(13).position(|&b| b == b';')
        {
            let mut utf8 = [0u8; 4];
            if let Some(text) = resolve_entity(&raw[i + 1..i + 1 + length], &mut utf8) {
                out.push_str(&raw[copied..i]);
                out.push_str(text);
                i += length + 2;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&raw[copied..]);
}

/// `text` without leading and trailing XML whitespace (space, tab, CR, LF), byte-wise: cheaper
/// than `str::trim`, which checks for every Unicode space.
pub(crate) fn trim_xml_space(text: &str) -> &str {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let bytes = text.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

/// Resolves a predefined entity or a character reference (`#10`, `#x1F600`) by name, writing
/// characters into `utf8`. `None` for anything else (custom entities, invalid code points).
pub(crate) fn resolve_entity<'b>(name: &str, utf8: &'b mut [u8; 4]) -> Option<&'b str> {
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                name.strip_prefix('#')?.parse::<u32>().ok()?
            };
            char::from_u32(code).filter(|&c| c != '\0')?
        }
    };
    Some(ch.encode_utf8(utf8))
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A string that grows up to a byte budget, then only counts what it drops, so one test's
/// megabytes of `system-out` cannot blow memory up. `\r\n` and lone `\r` become `\n` as the XML
/// spec asks parsers to do.
#[derive(Debug, Default)]
pub(crate) struct BoundedText {
    text: String,
    dropped: u64,
    /// The last chunk ended with `\r` (written as `\n`): a `\n` starting the next chunk is the
    /// rest of that line end. Chunks split at entities (`&#xD;` then a newline) need this.
    after_cr: bool,
}

impl BoundedText {
    /// Appends `chunk`, keeping at most `limit` bytes in total.
    pub(crate) fn push(&mut self, chunk: &str, limit: usize) {
        let chunk = match std::mem::take(&mut self.after_cr) {
            true => chunk.strip_prefix('\n').unwrap_or(chunk),
            false => chunk,
        };
        if self.dropped > 0 {
            self.dropped += chunk.len() as u64;
            return;
        }
        let room = limit.saturating_sub(self.text.len());
        if memchr::memchr(b'\r', chunk.as_bytes()).is_some() {
            self.after_cr = chunk.ends_with('\r');
            let normalized = chunk.replace("\r\n", "\n").replace('\r', "\n");
            self.push_normalized(&normalized, room);
        } else {
            self.push_normalized(chunk, room);
        }
    }

    fn push_normalized(&mut self, chunk: &str, room: usize) {
        let kept = truncate_at_char(chunk, room);
        self.text.push_str(kept);
        self.dropped += (chunk.len() - kept.len()) as u64;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Appends markup we generate ourselves (section headers): no line ends to normalize.
    pub(crate) fn push_plain(&mut self, text: &str, limit: usize) {
        if self.dropped > 0 || self.text.len() + text.len() > limit {
            self.push(text, limit);
        } else {
            self.text.push_str(text);
        }
    }

    /// Forgets the text, keeping the buffer.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.dropped = 0;
        self.after_cr = false;
    }

    /// Removes trailing whitespace (the indentation before a closing tag).
    pub(crate) fn trim_end(&mut self) {
        if self.dropped == 0 {
            let len = self.text.trim_end().len();
            self.text.truncate(len);
        }
    }

    /// Truncates back to `len` bytes (dropping a section header that got no content).
    pub(crate) fn truncate(&mut self, len: usize) {
        if self.dropped == 0 {
            self.text.truncate(len);
        }
    }

    /// The text with a marker saying how much was cut, or `None` when nothing was captured.
    /// Leaves `self` empty but keeps its buffer, so one `BoundedText` serves every case and each
    /// result is allocated once at its exact size.
    pub(crate) fn take(&mut self) -> Option<String> {
        let marker =
            (self.dropped > 0).then(|| format!("\n… [truncated: {} more bytes]", self.dropped));
        let marker = marker.as_deref().unwrap_or("");
        let taken = (!self.text.is_empty()).then(|| {
            let mut exact = String::with_capacity(self.text.len() + marker.len());
            exact.push_str(&self.text);
            exact.push_str(marker);
            exact
        });
        self.clear();
        taken
    }
}

/// The first non-blank line of `text`, trimmed, at most `max` bytes: a message for failures that
/// only carry a body (Jest writes `<failure>Error: …\n    at …</failure>`).
pub(crate) fn first_line(text: &str, max: usize) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| bounded_message(line, max))
}

/// A message cut to `max` bytes with an ellipsis when cut.
pub(crate) fn bounded_message(text: &str, max: usize) -> String {
    let kept = truncate_at_char(text, max);
    if kept.len() == text.len() {
        kept.to_owned()
    } else {
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_in_the_forms_producers_write() {
        assert_eq!(parse_seconds("1.5"), Some(1.5));
        assert_eq!(parse_seconds("0"), Some(0.0));
        assert_eq!(parse_seconds(" 2.25 "), Some(2.25));
        assert_eq!(parse_seconds("1,234.5"), Some(1234.5));
        assert_eq!(parse_seconds("1,234,567"), Some(1_234_567.0));
        assert_eq!(parse_seconds("1,234"), Some(1234.0));
        assert_eq!(parse_seconds("0,123"), Some(0.123));
        assert_eq!(parse_seconds("1,5"), Some(1.5));
        assert_eq!(parse_seconds("12ms"), Some(0.012));
        assert_eq!(parse_seconds("1.5s"), Some(1.5));
        assert_eq!(parse_seconds("2 min"), Some(120.0));
        assert_eq!(parse_seconds("1e-3"), Some(0.001));
        assert_eq!(parse_seconds("007"), Some(7.0));
        assert_eq!(
            parse_seconds("12345678901234567890.5"),
            Some(12345678901234567890.5)
        );
    }

    #[test]
    fn unreadable_seconds_are_none_not_errors() {
        for raw in [
            "",
            "  ",
            "abc",
            "-1",
            "NaN",
            "inf",
            "1.2.3",
            "5 parsecs",
            "1,2,3.4.5",
        ] {
            assert_eq!(parse_seconds(raw), None, "{raw:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_decimals_parse_exactly_like_std(int in 0u64..10_000_000, frac in 0u64..100_000_000, width in 0usize..9) {
            let text = if width == 0 { int.to_string() } else { format!("{int}.{frac:0width$}") };
            proptest::prop_assert_eq!(parse_seconds(&text), text.parse::<f64>().ok());
        }
    }

    #[test]
    fn unescape_decodes_predefined_and_char_refs_only() {
        assert_eq!(unescape("plain"), "plain");
        assert!(matches!(unescape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            unescape("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;"),
            "a <b> & \"c\" 'd'"
        );
        assert_eq!(unescape("line&#10;next&#x9;tab"), "line\nnext\ttab");
        assert_eq!(unescape("&lol9; stays"), "&lol9; stays");
        assert_eq!(unescape("AT&T & co"), "AT&T & co");
        assert_eq!(unescape("&#0; &#xD800;"), "&#0; &#xD800;");
    }

    #[test]
    fn bounded_text_cuts_on_char_boundary_and_counts_the_rest() {
        let mut text = BoundedText::default();
        text.push("héllo", 2);
        text.push(" world", 2);
        assert_eq!(text.as_str(), "h");
        assert_eq!(
            text.take().as_deref(),
            Some("h\n… [truncated: 11 more bytes]")
        );
        assert_eq!(text.take(), None);
        text.push("again", 10);
        assert_eq!(text.take().as_deref(), Some("again"));
    }

    #[test]
    fn bounded_text_normalizes_line_ends() {
        let mut text = BoundedText::default();
        text.push("a\r\nb\rc", 100);
        assert_eq!(text.take().as_deref(), Some("a\nb\nc"));
        // `&#xD;` then a newline arrive as two chunks.
        for chunk in ["x", "\r", "\ny\r", "\r\n", "z"] {
            text.push(chunk, 100);
        }
        assert_eq!(text.take().as_deref(), Some("x\ny\n\nz"));
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(
            first_line("\n  \n  Error: boom\n at x", 100).as_deref(),
            Some("Error: boom")
        );
        assert_eq!(first_line("   ", 100), None);
        assert_eq!(first_line("abcdef", 3).as_deref(), Some("abc…"));
    }
}
