//! String functions: `trim`, `split`, `join`, `shellquote`, `shellparse`.
//!
//! Shell quoting follows the rules of the Go library Testkube uses
//! (go-shellquote): plain words stay as they are, words with a space or
//! control whitespace are single-quoted, other shell-special characters are
//! backslash-escaped; parsing splits on blanks and honours `'`, `"` and `\`.

use serde_json::Value;

use super::CallResult;
use crate::expr::error::ExprErrorKind;
use crate::expr::value::{describe, to_text};

pub(super) fn call(name: &str, args: &[Value]) -> CallResult {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    let separator = || args.get(1).map_or_else(|| ",".to_string(), to_text);
    let value = match name {
        "trim" => match arg(0) {
            Value::String(s) => Value::String(s.trim().to_string()),
            other => {
                return Err((
                    ExprErrorKind::Type,
                    format!("needs a string, got {}", describe(other)),
                ));
            }
        },
        "split" => {
            let text = to_text(arg(0));
            let sep = separator();
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep.as_str())
                    .map(|s| Value::String(s.to_string()))
                    .collect()
            };
            Value::Array(parts)
        }
        "join" => match arg(0) {
            Value::Null => Value::Null,
            Value::Array(items) => Value::String(
                items
                    .iter()
                    .map(to_text)
                    .collect::<Vec<_>>()
                    .join(&separator()),
            ),
            other => {
                return Err((
                    ExprErrorKind::Type,
                    format!("the first argument must be a list, got {}", describe(other)),
                ));
            }
        },
        "shellquote" => Value::String(
            args.iter()
                .map(|a| quote(&to_text(a)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => {
            let words = split_words(&to_text(arg(0))).map_err(|m| (ExprErrorKind::Function, m))?;
            Value::Array(words.into_iter().map(Value::String).collect())
        }
    };
    Ok(Some(value))
}

const SPECIAL: &str = "\\'\"`${[|&;<>()*?!";
const BLANKS: &str = " \t\n";

/// Quotes one word for a POSIX shell.
pub(crate) fn quote(word: &str) -> String {
    if word.is_empty() {
        return "''".to_string();
    }
    if word.chars().any(|c| BLANKS.contains(c)) {
        // Single-quote the word; a `'` inside closes the quotes, is escaped,
        // and the quotes reopen.
        let mut out = String::new();
        let mut open = false;
        for c in word.chars() {
            if c == '\'' {
                if open {
                    out.push('\'');
                    open = false;
                }
                out.push_str("\\'");
            } else {
                if !open {
                    out.push('\'');
                    open = true;
                }
                out.push(c);
            }
        }
        if open {
            out.push('\'');
        }
        return out;
    }
    let mut out = String::with_capacity(word.len());
    for (i, c) in word.chars().enumerate() {
        if SPECIAL.contains(c) || (i == 0 && c == '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits a command line into words like a POSIX shell (without expansion).
pub(crate) fn split_words(input: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| BLANKS.contains(*c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                c if BLANKS.contains(c) => break,
                '\\' => match chars.next() {
                    Some('\n') => {}
                    Some(escaped) => word.push(escaped),
                    None => return Err("unfinished escape at the end".to_string()),
                },
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err("unterminated single-quoted string".to_string()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('$' | '`' | '"' | '\\')) => word.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("unterminated double-quoted string".to_string()),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err("unterminated double-quoted string".to_string()),
                    }
                },
                other => word.push(other),
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_split_back_to_themselves() {
        for word in [
            "",
            "a",
            "a b",
            "it's",
            "it's here",
            "$x",
            "~home",
            "a\tb\nc",
            "\"q\"",
            "back\\slash",
            "é ü",
        ] {
            let quoted = quote(word);
            assert_eq!(split_words(&quoted).unwrap(), [word], "{quoted}");
        }
        let line: Vec<String> = ["a b", "c"].iter().map(|w| quote(w)).collect();
        assert_eq!(split_words(&line.join(" ")).unwrap(), ["a b", "c"]);
    }

    #[test]
    fn unfinished_quotes_are_errors() {
        assert!(split_words("'a").is_err());
        assert!(split_words("\"a").is_err());
        assert!(split_words("a\\").is_err());
    }
}
