//! Who may call the API: bearer tokens with scopes, read from a tokens file.
//!
//! Why scopes and not users: the API's callers are CI jobs, dashboards and
//! agents, each given one token by whoever runs the server. `read` sees
//! workflows, executions, logs and artifacts; `run` starts, aborts and
//! reruns executions and changes their tags; `admin` changes workflows and
//! templates (what `run` tokens may start). A token holds only the scopes it
//! lists: `admin` does not imply `run`.
//!
//! The tokens file holds one token a line, `<token> <scope>[,<scope>]...`,
//! with `#` comments and blank lines; in a cluster it is mounted from a
//! Secret. Tokens are compared in constant time.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read workflows, executions, logs and artifacts.
    Read,
    /// Start, abort and rerun executions; change their tags.
    Run,
    /// Create, change and delete workflows and templates.
    Admin,
}

impl Scope {
    /// The scope's name in the tokens file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Run => "run",
            Scope::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Scope::Read),
            "run" => Some(Scope::Run),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tokens the server accepts, with their scopes.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(String, BTreeSet<Scope>)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish()
    }
}

/// Why a tokens file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The file cannot be read.
    #[error("cannot read the tokens file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `<token> <scope>[,<scope>]...`.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The file holds no token: nobody could call the server.
    #[error("{} holds no token; add a line `<token> read,run` (or start with --no-auth on loopback)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl Tokens {
    /// Reads a tokens file.
    ///
    /// # Errors
    /// [`TokensError`] naming the file and line.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a tokens file (`path` names it in errors).
    ///
    /// # Errors
    /// [`TokensError::Invalid`] for a malformed line, [`TokensError::Empty`]
    /// when no line holds a token.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TokensError> {
        let mut tokens = Tokens::default();
        for (index, line) in text.lines().enumerate() {
            let invalid = |message: String| TokensError::Invalid {
                path: path.to_owned(),
                line: index + 1,
                message,
            };
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let mut words = line.split_whitespace();
            let Some(token) = words.next() else { continue };
            let Some(scopes) = words.next() else {
                return Err(invalid(
                    "a token without scopes; write `<token> read,run,admin` (the scopes it has)"
                        .to_owned(),
                ));
            };
            if let Some(extra) = words.next() {
                return Err(invalid(format!(
                    "unexpected `{extra}`; scopes are separated by commas without spaces"
                )));
            }
            if token.len() < 16 {
                return Err(invalid(
                    "a token shorter than 16 characters is too easy to guess; use e.g. `openssl rand -hex 32`"
                        .to_owned(),
                ));
            }
            let mut set = BTreeSet::new();
            for name in scopes.split(',').filter(|name| !name.is_empty()) {
                let scope = Scope::parse(name).ok_or_else(|| {
                    invalid(format!(
                        "unknown scope `{name}`; the scopes are read, run and admin"
                    ))
                })?;
                set.insert(scope);
            }
            if tokens.entries.iter().any(|(known, _)| known == token) {
                return Err(invalid(
                    "this token is listed twice; give each token one line".to_owned(),
                ));
            }
            tokens.entries.push((token.to_owned(), set));
        }
        if tokens.entries.is_empty() {
            return Err(TokensError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(tokens)
    }

    /// The scopes of `token`, when it is known.
    fn scopes(&self, token: &str) -> Option<&BTreeSet<Scope>> {
        // Every entry is compared, whatever matched, so the time taken says
        // nothing about which bytes were right.
        let mut found = None;
        for (known, scopes) in &self.entries {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(scopes);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How requests are authorized.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Bearer tokens from a tokens file.
    Tokens(Tokens),
    /// Every request may do everything. Only for a server on loopback
    /// (`testkube serve --no-auth`); the binary refuses it elsewhere.
    Disabled,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No token, or not a known one: 401.
    Unauthenticated(&'static str),
    /// A known token without the scope: 403.
    Forbidden(Scope),
}

impl Auth {
    /// Whether the `Authorization` header value allows `scope`.
    pub(crate) fn check(&self, header: Option<&str>, scope: Scope) -> Result<(), Denied> {
        let Auth::Tokens(tokens) = self else {
            return Ok(());
        };
        let Some(header) = header else {
            return Err(Denied::Unauthenticated(
                "no token: send `Authorization: Bearer <token>`",
            ));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(Denied::Unauthenticated(
                "the Authorization header is not `Bearer <token>`",
            ))?;
        let scopes = tokens.scopes(token).ok_or(Denied::Unauthenticated(
            "the token is not known to this server",
        ))?;
        if scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Denied::Forbidden(scope))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "0123456789abcdef-read";
    const RUN: &str = "0123456789abcdef-run";

    fn tokens() -> Auth {
        let text = format!("# CI\n{READ} read\n\n{RUN} read,run # the pipeline\n");
        Auth::Tokens(Tokens::parse(&text, Path::new("tokens")).unwrap())
    }

    #[test]
    fn scopes_decide_what_a_token_may_do() {
        let auth = tokens();
        let bearer = |token: &str| format!("Bearer {token}");
        assert_eq!(auth.check(Some(&bearer(READ)), Scope::Read), Ok(()));
        assert_eq!(
            auth.check(Some(&bearer(READ)), Scope::Run),
            Err(Denied::Forbidden(Scope::Run))
        );
        assert_eq!(auth.check(Some(&bearer(RUN)), Scope::Run), Ok(()));
        assert_eq!(
            auth.check(Some(&bearer(RUN)), Scope::Admin),
            Err(Denied::Forbidden(Scope::Admin))
        );
        assert!(matches!(
            auth.check(None, Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.check(Some("Bearer 0123456789abcdef-reaX"), Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.check(Some(READ), Scope::Read),
            Err(Denied::Unauthenticated(_))
        ));
        assert_eq!(Auth::Disabled.check(None, Scope::Admin), Ok(()));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let err = |text: &str| Tokens::parse(text, Path::new("/etc/tk/tokens")).unwrap_err();
        assert_eq!(
            err("# x\n0123456789abcdef\n").to_string(),
            "/etc/tk/tokens:2: a token without scopes; write `<token> read,run,admin` (the scopes it has)"
        );
        assert!(
            err("0123456789abcdef read,write\n")
                .to_string()
                .contains("unknown scope `write`")
        );
        assert!(err("short read\n").to_string().contains("shorter than 16"));
        assert!(
            err("0123456789abcdef read, run\n")
                .to_string()
                .contains("unexpected `run`")
        );
        assert!(err("# nothing\n").to_string().contains("holds no token"));
        assert!(
            err("0123456789abcdef read\n0123456789abcdef run\n")
                .to_string()
                .contains(":2: this token is listed twice")
        );
    }
}
