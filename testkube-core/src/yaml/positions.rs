//! Character indexes to byte offsets: `saphyr-parser` counts positions in
//! characters, our [`Span`](crate::diagnostic::Span)s slice the source by
//! bytes.

/// Converts the parser's character indexes to byte offsets.
///
/// Events arrive roughly in source order, so a cursor that walks forward and
/// backward from the last answer makes the whole load linear.
pub(crate) struct Positions<'s> {
    source: &'s str,
    ascii: bool,
    cursor_chars: usize,
    cursor_bytes: usize,
}

impl<'s> Positions<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Positions {
            source,
            ascii: source.is_ascii(),
            cursor_chars: 0,
            cursor_bytes: 0,
        }
    }

    /// The byte offset of the character at `char_index` (the source's
    /// length for indexes at or past its end).
    pub(crate) fn byte_offset(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.source.len());
        }
        if char_index >= self.cursor_chars {
            for (i, _) in self.source[self.cursor_bytes..].char_indices() {
                if self.cursor_chars == char_index {
                    self.cursor_bytes += i;
                    return self.cursor_bytes;
                }
                self.cursor_chars += 1;
            }
            self.cursor_bytes = self.source.len();
        } else {
            for (i, _) in self.source[..self.cursor_bytes].char_indices().rev() {
                self.cursor_chars -= 1;
                if self.cursor_chars == char_index {
                    self.cursor_bytes = i;
                    break;
                }
            }
        }
        self.cursor_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_convert_char_indexes_to_byte_offsets_in_both_directions() {
        let source = "aé日😀b";
        let mut positions = Positions::new(source);
        let expected = [0, 1, 3, 6, 10, 11];
        for (chars, bytes) in expected.iter().enumerate() {
            assert_eq!(positions.byte_offset(chars), *bytes);
        }
        for (chars, bytes) in expected.iter().enumerate().rev() {
            assert_eq!(positions.byte_offset(chars), *bytes);
        }
        assert_eq!(positions.byte_offset(3), 6);
        assert_eq!(positions.byte_offset(99), source.len());
        let mut ascii = Positions::new("abc");
        assert_eq!(ascii.byte_offset(2), 2);
        assert_eq!(ascii.byte_offset(7), 3);
    }
}
