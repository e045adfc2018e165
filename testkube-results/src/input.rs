//! Looks at the first bytes of an input to decide how to read it: XML or JSON, and in which
//! character encoding.
//!
//! quick-xml (without its `encoding` feature, which pulls in encoding_rs) reads UTF-8 only, while
//! reports in the wild also come as UTF-16 (with or without a byte order mark) and, from older
//! Java and .NET tools, as ISO-8859-1 or windows-1252. Those few are transcoded to UTF-8 up front
//! (in memory, bounded by the input's size); any other declared encoding is refused with a clear
//! error instead of producing mojibake.

use std::borrow::Cow;

use crate::ReportError;

/// What the input is, judging by its first bytes.
pub(crate) enum Syntax {
    Xml,
    Json,
}

/// The character encodings this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8, or ASCII, which is a subset of it.
    Utf8,
    Utf16Le,
    Utf16Be,
    Latin1,
    Windows1252,
}

/// The input after the byte order mark is removed and, when needed, transcoded to UTF-8.
pub(crate) struct Prepared<'a> {
    pub(crate) bytes: Cow<'a, [u8]>,
    pub(crate) syntax: Syntax,
    /// Whether the bytes were transcoded (the XML declaration then no longer tells the truth).
    pub(crate) transcoded: bool,
}

pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Detects the encoding and syntax of `bytes` and returns UTF-8 bytes to parse.
pub(crate) fn prepare<'a>(bytes: &'a [u8], file: &str) -> Result<Prepared<'a>, ReportError> {
    let encoding = detect_encoding(bytes, file)?;
    let (bytes, transcoded) = match encoding {
        Encoding::Utf8 => (
            Cow::Borrowed(bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)),
            false,
        ),
        other => (
            Cow::Owned(transcode(bytes, other, file)?.into_bytes()),
            true,
        ),
    };
    let syntax = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(ReportError::Empty {
                file: file.to_owned(),
            });
        }
        Some(b'<') => Syntax::Xml,
        Some(b'{' | b'[') => Syntax::Json,
        Some(_) => {
            return Err(ReportError::NotAReport {
                file: file.to_owned(),
                detail: format!(
                    "starts with {:?}, expected XML ('<') or JSON ('{{')",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(20)])
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                ),
            });
        }
    };
    Ok(Prepared {
        bytes,
        syntax,
        transcoded,
    })
}

/// Decides the encoding from a byte order mark, the zero bytes of BOM-less UTF-16, or the XML
/// declaration's `encoding` pseudo-attribute. Needs only the first few hundred bytes, so a
/// streaming caller can pass what it has peeked.
pub(crate) fn detect_encoding(head: &[u8], file: &str) -> Result<Encoding, ReportError> {
    let unsupported = |name: &str| ReportError::UnsupportedEncoding {
        file: file.to_owned(),
        encoding: name.to_owned(),
    };
    if head.starts_with(b"\x00\x00\xFE\xFF") || head.starts_with(b"\xFF\xFE\x00\x00") {
        return Err(unsupported("UTF-32"));
    }
    if head.starts_with(UTF8_BOM) {
        return Ok(Encoding::Utf8);
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"<\x00") {
        return Ok(Encoding::Utf16Le);
    }
    if head.starts_with(b"\xFE\xFF") || head.starts_with(b"\x00<") {
        return Ok(Encoding::Utf16Be);
    }
    let Some(declared) = declared_encoding(head) else {
        return Ok(Encoding::Utf8);
    };
    match declared.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => Ok(Encoding::Utf8),
        // The bytes are 8-bit (we checked for UTF-16 above), so the declaration is stale, as
        // happens when a tool re-encodes a file without rewriting it: read the bytes as UTF-8.
        "utf-16" | "utf-16le" | "utf-16be" | "utf16" => Ok(Encoding::Utf8),
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" => {
            Ok(Encoding::Latin1)
        }
        "windows-1252" | "cp1252" | "x-cp1252" => Ok(Encoding::Windows1252),
        _ => Err(unsupported(&declared)),
    }
}

/// The `encoding="..."` value of an XML declaration at the very start of `head`, if any.
pub(crate) fn declared_encoding(head: &[u8]) -> Option<String> {
    let head = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    let head = &head[..head.len().min(512)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = memchr::memmem::find(head, b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    let close = value.find(quote)?;
    Some(value[..close].trim().to_owned())
}

fn transcode(bytes: &[u8], encoding: Encoding, file: &str) -> Result<String, ReportError> {
    let invalid = || ReportError::UnsupportedEncoding {
        file: file.to_owned(),
        encoding: "UTF-16 (with invalid surrogates)".to_owned(),
    };
    match encoding {
        Encoding::Utf8 => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Encoding::Utf16Le | Encoding::Utf16Be => {
            let body = bytes
                .strip_prefix(b"\xFF\xFE")
                .or_else(|| bytes.strip_prefix(b"\xFE\xFF"))
                .unwrap_or(bytes);
            let units = body.chunks_exact(2).map(|pair| {
                let pair = [pair[0], pair[1]];
                if encoding == Encoding::Utf16Le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| invalid())
        }
        Encoding::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Encoding::Windows1252 => Ok(bytes.iter().map(|&b| windows_1252(b)).collect()),
    }
}

/// windows-1252 is ISO-8859-1 except for 0x80..=0x9F, which hold typographic characters.
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_encoding_is_read_from_the_declaration_only() {
        assert_eq!(
            declared_encoding(b"<?xml version='1.0' encoding = 'ISO-8859-1'?><a/>").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(declared_encoding(b"<a encoding=\"x\"/>"), None);
    }

    #[test]
    fn latin1_and_windows_1252_become_utf8() {
        let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>caf\xE9</a>";
        let prepared = prepare(latin1, "f").ok().map(|p| p.bytes.into_owned());
        assert_eq!(
            prepared.as_deref(),
            Some("<?xml version='1.0' encoding='ISO-8859-1'?><a>café</a>".as_bytes())
        );
        let cp1252 = b"<?xml version='1.0' encoding='windows-1252'?><a>\x80 \x93q\x94</a>";
        let prepared = prepare(cp1252, "f").ok().map(|p| p.bytes.into_owned());
        assert_eq!(
            prepared.as_deref(),
            Some("<?xml version='1.0' encoding='windows-1252'?><a>€ “q”</a>".as_bytes())
        );
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let text = "<a>é</a>";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for input in [le, be] {
            let prepared = prepare(&input, "f").ok().map(|p| p.bytes.into_owned());
            assert_eq!(prepared.as_deref(), Some(text.as_bytes()));
        }
    }

    #[test]
    fn other_encodings_are_refused_by_name() {
        let err = prepare(b"<?xml version='1.0' encoding='Shift_JIS'?><a/>", "r.xml").err();
        assert!(
            matches!(&err, Some(ReportError::UnsupportedEncoding { encoding, .. }) if encoding == "Shift_JIS"),
            "{err:?}"
        );
    }
}
