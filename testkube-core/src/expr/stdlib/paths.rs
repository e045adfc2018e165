//! Path functions: `abspath`, `relpath`, `makepath`, on `/`-separated paths
//! with the lexical rules of Go's `filepath.Clean` (no file system access).
//!
//! A relative path needs the working directory, which only the run-time
//! context knows: without it the call stays symbolic, except where the answer
//! does not depend on it (`relpath("a/b", "a")` is `"b"` anywhere).

use serde_json::Value;

use super::CallResult;
use crate::expr::context::Context;
use crate::expr::value::to_text;

pub(super) fn call(name: &str, args: &[Value], ctx: &dyn Context) -> CallResult {
    let texts: Vec<String> = args.iter().map(to_text).collect();
    let result = match name {
        "makepath" => Some(clean(&texts.join("/"))),
        "abspath" => abspath(&texts[0], texts.get(1).map(String::as_str), ctx),
        _ => relpath(&texts[0], texts.get(1).map(String::as_str), ctx),
    };
    Ok(result.map(Value::String))
}

fn abspath(path: &str, base: Option<&str>, ctx: &dyn Context) -> Option<String> {
    if path.starts_with('/') {
        return Some(clean(path));
    }
    let base = resolve_base(base, ctx)?;
    Some(absolute(path, &base))
}

fn relpath(target: &str, base: Option<&str>, ctx: &dyn Context) -> Option<String> {
    let both_relative = !target.starts_with('/') && base.is_some_and(|b| !b.starts_with('/'));
    let climbs = |p: &str| clean(p).starts_with("..");
    if both_relative && !climbs(target) && base.is_some_and(|b| !climbs(b)) {
        // Relative to the same (unknown) directory: it cancels out.
        return Some(relative(
            &absolute(target, "/"),
            &absolute(base.unwrap_or("."), "/"),
        ));
    }
    let cwd = ctx.working_dir();
    let absolute_of = |p: &str| -> Option<String> {
        if p.starts_with('/') {
            Some(clean(p))
        } else {
            Some(absolute(p, cwd.as_deref()?))
        }
    };
    let base = match base {
        Some(b) => absolute_of(b)?,
        None => absolute_of(".")?,
    };
    Some(relative(&absolute_of(target)?, &base))
}

/// `base` made absolute with the context's working directory if needed.
fn resolve_base(base: Option<&str>, ctx: &dyn Context) -> Option<String> {
    match base {
        Some(b) if b.starts_with('/') => Some(clean(b)),
        Some(b) => Some(absolute(b, &ctx.working_dir()?)),
        None => ctx.working_dir().map(|d| absolute(&d, "/")),
    }
}

/// `path` joined to `dir` (unless absolute) and cleaned.
pub(crate) fn absolute(path: &str, dir: &str) -> String {
    if path.starts_with('/') {
        clean(path)
    } else {
        clean(&format!("{dir}/{path}"))
    }
}

/// Lexical cleaning like Go's `path.Clean`: collapses `//`, removes `.`,
/// resolves `..` (never above the root), `""` becomes `"."`.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The path of absolute `target` relative to absolute `base`.
fn relative(target: &str, base: &str) -> String {
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (t, b) = (split(target), split(base));
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(t[common..].iter().cloned());
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_lexical_like_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a//b/./c/..", "a/b"),
            ("/../a", "/a"),
            ("../../a/..", "../.."),
            ("a/../..", ".."),
            ("/a/b/", "/a/b"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative("/a/b/c", "/a"), "b/c");
        assert_eq!(relative("/a", "/a/b/c"), "../..");
        assert_eq!(relative("/", "/"), ".");
        assert_eq!(relative("/x/y", "/a/b"), "../../x/y");
    }
}
