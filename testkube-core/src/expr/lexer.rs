//! Splits expression source into tokens, on demand.
//!
//! The parser pulls one token at a time so it can switch modes: after a `.`
//! it asks for a property name (which may be all digits, `list.0.1`) instead of
//! a number (`0.1`). Offsets are absolute in the string given to the lexer, so
//! a template can lex an expression in the middle of a larger string and its
//! spans stay right.

use super::error::{ExprError, Span};

/// One token with its span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Tok,
    pub(crate) span: Span,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A number as written (validated later).
    Number(String),
    /// A string literal, escapes decoded.
    Str(String),
    /// A name: variable, function, `true`, `false`, `null`.
    Ident(String),
    /// Punctuation and operators, as written.
    Punct(&'static str),
    /// End of input.
    End,
}

/// Operators and punctuation, longest first so `**` wins over `*`.
const PUNCTS: &[&str] = &[
    "...", "**", "==", "!=", "<>", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}", ",", ":",
    "?", ".", "!", "+", "-", "*", "/", "%", "<", ">", "=",
];

pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(src: &'s str, pos: usize) -> Self {
        Lexer { src, pos }
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn skip_space(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    /// The next token in normal mode.
    pub(crate) fn next(&mut self) -> Result<Token, ExprError> {
        self.skip_space();
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                kind: Tok::End,
                span: Span::new(start, start),
            });
        };
        let kind = if c.is_ascii_digit() {
            let len = number_len(rest);
            self.pos += len;
            Tok::Number(rest[..len].to_string())
        } else if c == '"' || c == '\'' {
            Tok::Str(self.string(c)?)
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            self.pos += len;
            Tok::Ident(rest[..len].to_string())
        } else if let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            self.pos += p.len();
            Tok::Punct(p)
        } else {
            let end = start + c.len_utf8();
            return Err(ExprError::syntax(
                Span::new(start, end),
                format!("unexpected character `{c}`"),
            ));
        };
        Ok(Token {
            kind,
            span: Span::new(start, self.pos),
        })
    }

    /// The name after a `.`: `[A-Za-z0-9_]+` or `*`; `None` when neither.
    pub(crate) fn property_name(&mut self) -> Option<(String, Span)> {
        self.skip_space();
        let start = self.pos;
        let rest = self.rest();
        let len = if rest.starts_with('*') {
            1
        } else {
            rest.bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count()
        };
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some((rest[..len].to_string(), Span::new(start, self.pos)))
    }

    /// A quoted string starting at the current position; JSON escapes plus
    /// `\'`. Raw newlines and tabs are allowed inside, as in Testkube.
    fn string(&mut self, quote: char) -> Result<String, ExprError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos = start + i + 1;
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((j, e)) = chars.next() else { break };
            let escaped = match e {
                '"' => '"',
                '\'' => '\'',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let (ch, used) = self.unicode_escape(start + j + 1)?;
                    for _ in 0..used {
                        chars.next();
                    }
                    ch
                }
                other => {
                    let at = start + j - 1;
                    return Err(ExprError::syntax(
                        Span::new(at, at + 1 + other.len_utf8()),
                        format!("unknown escape `\\{other}` in string"),
                    )
                    .with_hint("write `\\\\` for a backslash"));
                }
            };
            out.push(escaped);
        }
        Err(
            ExprError::syntax(Span::new(start, self.src.len()), "string is not closed")
                .with_hint(format!("add the closing {quote}")),
        )
    }

    /// Decodes `XXXX` (and a following `\uXXXX` low surrogate) at byte `at`;
    /// returns the char and how many source chars were consumed after `u`.
    fn unicode_escape(&self, at: usize) -> Result<(char, usize), ExprError> {
        let bad = || {
            ExprError::syntax(
                Span::new(at.saturating_sub(2), (at + 4).min(self.src.len())),
                "invalid `\\u` escape in string",
            )
            .with_hint("write four hex digits, e.g. `\\u00e9`")
        };
        let hex = |from: usize| -> Option<u32> {
            let digits = self.src.get(from..from + 4)?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(digits, 16).ok()
        };
        let first = hex(at).ok_or_else(bad)?;
        if (0xD800..0xDC00).contains(&first) {
            if self.src.get(at + 4..at + 6) == Some("\\u") {
                let second = hex(at + 6).ok_or_else(bad)?;
                if (0xDC00..0xE000).contains(&second) {
                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    return char::from_u32(code).map(|c| (c, 10)).ok_or_else(bad);
                }
            }
            return Err(bad());
        }
        char::from_u32(first).map(|c| (c, 4)).ok_or_else(bad)
    }
}

/// Length of a JSON-like number at the start of `s` (digits, optional
/// fraction with digits, optional exponent with digits).
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut len = digits(0);
    if b.get(len) == Some(&b'.') && b.get(len + 1).is_some_and(u8::is_ascii_digit) {
        len += 1 + digits(len + 1);
    }
    if matches!(b.get(len), Some(b'e' | b'E')) {
        let mut exp = len + 1;
        if matches!(b.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let n = digits(exp);
        if n > 0 {
            len = exp + n;
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<Tok> {
        let mut lexer = Lexer::new(src, 0);
        let mut out = Vec::new();
        loop {
            let token = lexer.next().unwrap();
            if token.kind == Tok::End {
                return out;
            }
            out.push(token.kind);
        }
    }

    #[test]
    fn longest_operators_win() {
        assert_eq!(
            tokens("a**b<>c...!=d"),
            [
                Tok::Ident("a".into()),
                Tok::Punct("**"),
                Tok::Ident("b".into()),
                Tok::Punct("<>"),
                Tok::Ident("c".into()),
                Tok::Punct("..."),
                Tok::Punct("!="),
                Tok::Ident("d".into()),
            ]
        );
    }

    #[test]
    fn numbers_strings_and_offsets() {
        assert_eq!(
            tokens("1.5e3 2. 'a\\'b'"),
            [
                Tok::Number("1.5e3".into()),
                Tok::Number("2".into()),
                Tok::Punct("."),
                Tok::Str("a'b".into()),
            ]
        );
        let mut lexer = Lexer::new("xx  \"é\"", 2);
        let token = lexer.next().unwrap();
        assert_eq!(token.span, Span::new(4, 8));
        assert_eq!(token.kind, Tok::Str("é".into()));
        let err = Lexer::new("  \"\\u12\"", 0).next().unwrap_err();
        assert!(err.message().contains("\\u"));
        let err = Lexer::new("\"\\ud800\"", 0).next().unwrap_err();
        assert!(err.message().contains("\\u"));
    }
}
