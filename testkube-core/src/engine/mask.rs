//! Secret masking: sensitive config values and `secret(name, key)` values
//! never leave the engine in clear text.
//!
//! Why here: every frontend (the CLI's live view, `-o json`) and the result
//! store read the same [`Event`](super::Event) stream, so masking it once, where the
//! engine publishes it, covers them all. The workers themselves still get
//! the real values (a step must be able to use its token).
//!
//! [`SecretMasker`] replaces every occurrence of a secret with [`MASK`];
//! overlapping occurrences (of different secrets) become one mask, so no
//! byte of any secret shows. Secrets shorter than [`MIN_SECRET_LEN`] bytes
//! are ignored: masking `1` or `on` would garble every log without
//! protecting anything. Log output arrives in chunks, and a secret may be
//! split across them: [`LogMasker`] holds back the end of a chunk while it
//! could still be the start of a secret (at most the longest secret's
//! length minus one byte), and releases it with the next chunk or at
//! [`LogMasker::finish`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::Value;

use crate::model::ParameterSchema;

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Secrets shorter than this (in bytes) are not masked.
pub const MIN_SECRET_LEN: usize = 3;

/// Replaces secrets in text. Cheap to clone; its `Debug` output never shows
/// the secrets.
#[derive(Clone, Default)]
pub struct SecretMasker {
    /// `None` when there is nothing to mask.
    inner: Option<Arc<Patterns>>,
}

/// Why a [`SecretMasker`] could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the secret masker: {0}")]
pub struct MaskerError(#[from] aho_corasick::BuildError);

struct Patterns {
    automaton: AhoCorasick,
    /// The secrets, sorted and deduplicated, to tell whether a chunk's end
    /// may be the start of one.
    sorted: Vec<Vec<u8>>,
    max_len: usize,
}

impl fmt::Debug for SecretMasker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretMasker")
            .field("secrets", &self.len())
            .finish()
    }
}

impl SecretMasker {
    /// A masker for `secrets`; empty ones and ones shorter than
    /// [`MIN_SECRET_LEN`] bytes are ignored.
    ///
    /// # Errors
    /// [`MaskerError`] when the secrets are too many or too large to search.
    pub fn new<I, S>(secrets: I) -> Result<Self, MaskerError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut sorted: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|secret| secret.as_ref().as_bytes().to_vec())
            .filter(|secret| secret.len() >= MIN_SECRET_LEN)
            .collect();
        sorted.sort();
        sorted.dedup();
        if sorted.is_empty() {
            return Ok(SecretMasker::default());
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&sorted)?;
        let max_len = sorted.iter().map(Vec::len).max().unwrap_or(0);
        Ok(SecretMasker {
            inner: Some(Arc::new(Patterns {
                automaton,
                sorted,
                max_len,
            })),
        })
    }

    /// How many secrets it masks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |inner| inner.sorted.len())
    }

    /// Whether it masks nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// `text` with every secret replaced by [`MASK`].
    #[must_use]
    pub fn mask_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(inner) = &self.inner else {
            return Cow::Borrowed(text);
        };
        let intervals = inner.intervals(text.as_bytes(), 0);
        if intervals.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = Vec::with_capacity(text.len());
        render(text.as_bytes(), &intervals, text.len(), false, &mut out);
        // Secrets and text are UTF-8, so matches start and end on character
        // boundaries; the lossy path is never taken.
        Cow::Owned(
            String::from_utf8(out)
                .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned()),
        )
    }

    /// [`mask_str`](Self::mask_str), owned.
    #[must_use]
    pub fn mask_string(&self, text: String) -> String {
        match self.mask_str(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => masked,
        }
    }

    /// A masker for one stream of chunks (one step's log).
    #[must_use]
    pub fn stream(&self) -> LogMasker {
        LogMasker {
            masker: self.clone(),
            held: Vec::new(),
            covered: 0,
        }
    }
}

/// Masks one stream of byte chunks, also where a secret is split across
/// chunks. Call [`finish`](Self::finish) at the end of the stream.
#[derive(Debug)]
pub struct LogMasker {
    masker: SecretMasker,
    /// The end of the input so far that may still be the start of a
    /// secret: not output yet.
    held: Vec<u8>,
    /// How many bytes at the start of `held` belong to a secret whose start
    /// was already output as [`MASK`] (they are masked, whatever follows).
    covered: usize,
}

impl LogMasker {
    /// The masked output for `chunk`: everything up to the part that may
    /// still be the start of a secret (kept for the next chunk).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let Some(inner) = self.masker.inner.clone() else {
            return chunk;
        };
        let buffer: Cow<'_, [u8]> = if self.held.is_empty() {
            Cow::Borrowed(&chunk)
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(&chunk);
            Cow::Owned(joined)
        };
        let hold_from = inner.hold_point(&buffer);
        let intervals = inner.intervals(&buffer, self.covered);
        if hold_from == 0 {
            // Nothing can be released yet; what was covered stays covered.
            self.held = buffer.into_owned();
            return Bytes::new();
        }
        if intervals.is_empty() && hold_from == buffer.len() && matches!(buffer, Cow::Borrowed(_)) {
            return chunk;
        }
        let mut out = Vec::with_capacity(hold_from);
        let covered = render(&buffer, &intervals, hold_from, self.covered > 0, &mut out);
        self.held = buffer[hold_from..].to_vec();
        self.covered = covered;
        Bytes::from(out)
    }

    /// Releases what is held, masked: the stream is over.
    pub fn finish(&mut self) -> Bytes {
        let held = std::mem::take(&mut self.held);
        let covered = std::mem::take(&mut self.covered);
        let Some(inner) = &self.masker.inner else {
            return Bytes::from(held);
        };
        let intervals = inner.intervals(&held, covered);
        let mut out = Vec::with_capacity(held.len());
        render(&held, &intervals, held.len(), covered > 0, &mut out);
        Bytes::from(out)
    }
}

/// The values of the parameters `declarations` marks `sensitive: true`:
/// the value passed for it (`passed`, e.g. the `--config` pairs) or else
/// its default (as JSON text when it is not a string).
#[must_use]
pub fn sensitive_config_values<K, V>(
    declarations: &IndexMap<String, ParameterSchema>,
    passed: impl IntoIterator<Item = (K, V)>,
) -> Vec<String>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let passed: BTreeMap<String, String> = passed
        .into_iter()
        .map(|(key, value)| (key.as_ref().to_owned(), value.as_ref().to_owned()))
        .collect();
    declarations
        .iter()
        .filter(|(_, schema)| schema.sensitive == Some(true))
        .filter_map(|(name, schema)| match passed.get(name) {
            Some(value) => Some(value.clone()),
            None => schema.default.as_ref().map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            }),
        })
        .collect()
}

impl Patterns {
    /// The merged byte ranges of `buffer` that belong to a secret, with
    /// `[0, covered)` among them.
    fn intervals(&self, buffer: &[u8], covered: usize) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = self
            .automaton
            .find_overlapping_iter(buffer)
            .map(|found| (found.start(), found.end()))
            .collect();
        if covered > 0 {
            found.push((0, covered.min(buffer.len())));
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// Where the longest end of `buffer` that is the start of a longer
    /// secret begins; `buffer.len()` when there is none.
    fn hold_point(&self, buffer: &[u8]) -> usize {
        let longest = buffer.len().min(self.max_len.saturating_sub(1));
        (1..=longest)
            .rev()
            .map(|len| buffer.len() - len)
            .find(|&start| self.starts_longer_secret(&buffer[start..]))
            .unwrap_or(buffer.len())
    }

    fn starts_longer_secret(&self, tail: &[u8]) -> bool {
        // Secrets starting with `tail` sort right after it (`tail` itself,
        // if it is a secret, first).
        let first = self
            .sorted
            .partition_point(|secret| secret.as_slice() < tail);
        self.sorted
            .iter()
            .skip(first)
            .take(2)
            .any(|secret| secret.len() > tail.len() && secret.starts_with(tail))
    }
}

/// Writes `buffer[..until]` with `intervals` masked to `out`. A mask that
/// starts at 0 while `continues` is not written again (the previous output
/// ended with it). Returns how far past `until` the last mask reaches.
fn render(
    buffer: &[u8],
    intervals: &[(usize, usize)],
    until: usize,
    continues: bool,
    out: &mut Vec<u8>,
) -> usize {
    let mut cursor = 0;
    let mut beyond = 0;
    for &(start, end) in intervals.iter().take_while(|(start, _)| *start < until) {
        out.extend_from_slice(&buffer[cursor..start]);
        if !(start == 0 && continues) {
            out.extend_from_slice(MASK.as_bytes());
        }
        cursor = end.min(until);
        beyond = end.saturating_sub(until);
    }
    out.extend_from_slice(&buffer[cursor..until]);
    beyond
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(secrets: &[&str]) -> SecretMasker {
        SecretMasker::new(secrets).unwrap_or_default()
    }

    /// Feeds `chunks` through one stream and returns all the output.
    fn stream(masker: &SecretMasker, chunks: &[&str]) -> String {
        let mut stream = masker.stream();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&stream.push(Bytes::copy_from_slice(chunk.as_bytes())));
        }
        out.extend_from_slice(&stream.finish());
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn masks_every_occurrence_in_text() {
        let masker = masker(&["hunter2"]);
        assert_eq!(
            masker.mask_str("pw=hunter2, again hunter2."),
            "pw=********, again ********."
        );
        assert!(matches!(masker.mask_str("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn ignores_empty_and_short_secrets() {
        let masker = masker(&["", "a", "on", "abc"]);
        assert_eq!(masker.len(), 1);
        assert_eq!(masker.mask_str("a on abc"), "a on ********");
        assert!(SecretMasker::new(["", "x"]).is_ok_and(|m| m.is_empty()));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let text = format!("{:?}", masker(&["hunter2"]));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn masks_a_secret_split_over_two_chunks() {
        let masker = masker(&["s3cr3t-token"]);
        assert_eq!(
            stream(&masker, &["token: s3cr", "3t-token\n"]),
            "token: ********\n"
        );
    }

    #[test]
    fn masks_a_secret_split_over_three_chunks() {
        let masker = masker(&["s3cr3t-token"]);
        assert_eq!(
            stream(&masker, &["a s3", "cr3t-t", "oken b"]),
            "a ******** b"
        );
        assert_eq!(stream(&masker, &["s", "3cr3t-toke", "n"]), "********");
    }

    #[test]
    fn releases_a_held_prefix_that_turns_out_not_to_be_a_secret() {
        let masker = masker(&["s3cr3t-token"]);
        let mut log = masker.stream();
        assert_eq!(&log.push(Bytes::from_static(b"line s3cr"))[..], b"line ");
        assert_eq!(&log.push(Bytes::from_static(b"ew\n"))[..], b"s3crew\n");
        assert_eq!(&log.push(Bytes::from_static(b"end s3"))[..], b"end ");
        assert_eq!(&log.finish()[..], b"s3");
    }

    #[test]
    fn holds_nothing_back_when_the_end_cannot_start_a_secret() {
        let masker = masker(&["s3cr3t-token"]);
        let mut log = masker.stream();
        assert_eq!(
            &log.push(Bytes::from_static(b"plain line\n"))[..],
            b"plain line\n"
        );
        assert!(log.finish().is_empty());
    }

    #[test]
    fn masks_the_longest_of_secrets_that_are_prefixes_of_each_other() {
        let masker = masker(&["abc", "abcdef"]);
        assert_eq!(stream(&masker, &["x abcd", "ef y"]), "x ******** y");
        assert_eq!(stream(&masker, &["x abcd", "zz"]), "x ********dzz");
        assert_eq!(masker.mask_str("abcdef abc"), "******** ********");
    }

    #[test]
    fn masks_overlapping_secrets_as_one() {
        let masker = masker(&["abcd", "cdef"]);
        assert_eq!(masker.mask_str("xabcdefx"), "x********x");
        // The first secret is complete when the chunk ends; the second one
        // may still follow.
        assert_eq!(stream(&masker, &["xxabcd", "efx"]), "xx********x");
        assert_eq!(stream(&masker, &["xxabcd", "zz"]), "xx********zz");
        assert_eq!(
            stream(&masker, &["xxab", "c", "d", "e", "f!"]),
            "xx********!"
        );
    }

    #[test]
    fn masks_many_secrets_at_once() {
        let secrets: Vec<String> = (0..200).map(|i| format!("secret-{i:04}")).collect();
        let masker = SecretMasker::new(&secrets).unwrap_or_default();
        let text = secrets.join(" | ");
        let masked = masker.mask_str(&text);
        assert!(!masked.contains("secret-"), "{masked}");
        let chunks: Vec<&str> = text
            .as_bytes()
            .chunks(7)
            .filter_map(|chunk| std::str::from_utf8(chunk).ok())
            .collect();
        let streamed = stream(&masker, &chunks);
        assert_eq!(streamed, masked);
    }

    #[test]
    fn keeps_text_valid_utf8_around_secrets() {
        let masker = masker(&["clé-secrète"]);
        assert_eq!(masker.mask_str("é clé-secrète ü"), "é ******** ü");
    }

    #[test]
    fn finds_sensitive_values_passed_or_defaulted() {
        let declarations: IndexMap<String, ParameterSchema> =
            serde_json::from_value(serde_json::json!({
                "token": {"type": "string", "sensitive": true},
                "password": {"type": "string", "sensitive": true, "default": "dflt-pass"},
                "port": {"type": "integer", "sensitive": true, "default": 5432},
                "user": {"type": "string", "default": "admin"},
            }))
            .unwrap_or_default();
        let values =
            sensitive_config_values(&declarations, [("token", "passed-token"), ("user", "root")]);
        assert_eq!(values, ["passed-token", "dflt-pass", "5432"]);
    }
}
