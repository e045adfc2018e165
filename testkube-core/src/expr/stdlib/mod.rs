//! The built-in functions.
//!
//! One table says, for every function, how many arguments it takes and
//! whether it is pure. Pure functions run as soon as all their arguments are
//! known. Run-time ones (`file`, `glob`, `secret`, `date`, and path functions
//! that need the working directory) ask the [`Context`] and stay symbolic when
//! it has no answer. `eval`, `map`, `filter` and `any` evaluate expressions,
//! so the evaluator runs them itself.

mod data;
mod date;
pub(crate) mod paths;
mod text;

use serde_json::Value;

use super::context::Context;
use super::error::{ExprError, ExprErrorKind, Span};
use super::value::{self, OpError, describe, to_text, truthy};

/// What calling a function gave.
pub(crate) enum Outcome {
    /// The result.
    Value(Value),
    /// Not computable yet (a run-time hook is missing): keep the call.
    Unresolved,
    /// The call failed.
    Error(ExprErrorKind, String),
}

/// Arity of a built-in.
pub(crate) struct FunctionInfo {
    pub(crate) name: &'static str,
    pub(crate) min: usize,
    /// `None`: any number of arguments.
    pub(crate) max: Option<usize>,
}

const fn f(name: &'static str, min: usize, max: Option<usize>) -> FunctionInfo {
    FunctionInfo { name, min, max }
}

const MANY: Option<usize> = None;

static FUNCTIONS: &[FunctionInfo] = &[
    f("string", 0, MANY),
    f("list", 0, MANY),
    f("int", 1, Some(1)),
    f("float", 1, Some(1)),
    f("bool", 1, Some(1)),
    f("trim", 1, Some(1)),
    f("split", 1, Some(2)),
    f("join", 1, Some(2)),
    f("shellquote", 0, MANY),
    f("shellparse", 1, Some(1)),
    f("len", 1, Some(1)),
    f("at", 2, Some(2)),
    f("slice", 2, Some(3)),
    f("chunk", 2, Some(2)),
    f("range", 1, Some(2)),
    f("entries", 1, Some(1)),
    f("map", 2, Some(2)),
    f("filter", 2, Some(2)),
    f("floor", 1, Some(1)),
    f("ceil", 1, Some(1)),
    f("round", 1, Some(1)),
    f("tojson", 1, Some(1)),
    f("json", 1, Some(1)),
    f("toyaml", 1, Some(1)),
    f("yaml", 1, Some(1)),
    f("jq", 2, Some(2)),
    f("abspath", 1, Some(2)),
    f("relpath", 1, Some(2)),
    f("makepath", 1, MANY),
    f("date", 0, Some(1)),
    f("eval", 1, Some(1)),
    f("any", 0, MANY),
    f("file", 1, Some(1)),
    f("glob", 1, MANY),
    f("secret", 2, Some(2)),
];

/// Longest list `range()` builds.
const MAX_RANGE: i64 = 1_000_000;

/// The built-in called `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static FunctionInfo> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Names of all built-ins.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

/// Whether a call to `name` always gives a string. Not `join`: it gives
/// `null` for `null`, so `string(join(x))` must keep its `string`.
pub(crate) fn returns_string(name: &str) -> bool {
    matches!(
        name,
        "string"
            | "trim"
            | "shellquote"
            | "tojson"
            | "toyaml"
            | "abspath"
            | "relpath"
            | "makepath"
            | "date"
            | "file"
            | "secret"
    )
}

impl FunctionInfo {
    /// Checks the number of (spread-expanded) arguments.
    pub(crate) fn check_arity(&self, count: usize, span: Span) -> Result<(), ExprError> {
        if let Some(message) = self.arity_problem(count) {
            return Err(ExprError::new(ExprErrorKind::Arity, span, message));
        }
        Ok(())
    }

    /// What is wrong with calling this function with `count` arguments.
    pub(crate) fn arity_problem(&self, count: usize) -> Option<String> {
        let ok = count >= self.min && self.max.is_none_or(|max| count <= max);
        if ok {
            return None;
        }
        let expected = match self.max {
            Some(max) if max == self.min => format!("{max}"),
            Some(max) => format!("{} to {max}", self.min),
            None => format!("at least {}", self.min),
        };
        let plural = if expected == "1" { "" } else { "s" };
        Some(format!(
            "{}() takes {expected} argument{plural}, {count} given",
            self.name
        ))
    }
}

/// Calls a built-in (not `eval`, `map`, `filter`, `any`) with known
/// arguments; the arity is already checked.
pub(crate) fn call(name: &str, args: &[Value], ctx: &dyn Context) -> Outcome {
    match call_inner(name, args, ctx) {
        Ok(Some(v)) => Outcome::Value(v),
        Ok(None) => Outcome::Unresolved,
        Err((kind, message)) => Outcome::Error(kind, message),
    }
}

type CallResult = Result<Option<Value>, (ExprErrorKind, String)>;

fn type_error(message: String) -> (ExprErrorKind, String) {
    (ExprErrorKind::Type, message)
}

fn op(result: Result<Value, (OpError, String)>) -> CallResult {
    result.map(Some).map_err(|(kind, message)| {
        let kind = match kind {
            OpError::Type => ExprErrorKind::Type,
            OpError::DivisionByZero => ExprErrorKind::DivisionByZero,
            OpError::Overflow => ExprErrorKind::Overflow,
        };
        (kind, message)
    })
}

fn call_inner(name: &str, args: &[Value], ctx: &dyn Context) -> CallResult {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    let done = |v: Value| Ok(Some(v));
    match name {
        "string" => done(Value::String(args.iter().map(to_text).collect())),
        "list" => done(Value::Array(args.to_vec())),
        "int" => op(value::to_int(arg(0)).map(Value::from)),
        "float" => op(value::to_float(arg(0)).and_then(|f| value::num_value(value::Num::Float(f)))),
        "bool" => done(Value::Bool(truthy(arg(0)))),
        "floor" | "ceil" | "round" => {
            let f = value::to_float(arg(0));
            op(f.and_then(|f| {
                let whole = match name {
                    "floor" => f.floor(),
                    "ceil" => f.ceil(),
                    _ => f.round(),
                };
                value::float_to_int(whole).map(Value::from)
            }))
        }
        "len" => match arg(0) {
            Value::String(s) => done(Value::from(s.chars().count())),
            Value::Array(items) => done(Value::from(items.len())),
            Value::Object(map) => done(Value::from(map.len())),
            other => Err(type_error(format!(
                "needs a string, list or object, got {}",
                describe(other)
            ))),
        },
        "at" => super::eval::access(arg(0), arg(1), Span::default())
            .map(Some)
            .map_err(|e| (e.kind(), e.message().to_string())),
        "slice" => slice(arg(0), arg(1), args.get(2)),
        "chunk" => chunk(arg(0), arg(1)),
        "range" => range(args),
        "entries" => entries(arg(0)),
        "trim" | "split" | "join" | "shellquote" | "shellparse" => text::call(name, args),
        "tojson" | "json" | "toyaml" | "yaml" | "jq" => data::call(name, args),
        "abspath" | "relpath" | "makepath" => paths::call(name, args, ctx),
        "date" => date::call(args, ctx),
        "file" => match ctx.file(&to_text(arg(0))) {
            None => Ok(None),
            Some(Ok(content)) => done(Value::String(content)),
            Some(Err(message)) => Err((ExprErrorKind::Runtime, message)),
        },
        "glob" => {
            let patterns: Vec<String> = args.iter().map(to_text).collect();
            match ctx.glob(&patterns) {
                None => Ok(None),
                Some(Ok(paths)) => {
                    done(Value::Array(paths.into_iter().map(Value::String).collect()))
                }
                Some(Err(message)) => Err((ExprErrorKind::Runtime, message)),
            }
        }
        "secret" => match ctx.secret(&to_text(arg(0)), &to_text(arg(1))) {
            None => Ok(None),
            Some(Ok(value)) => done(Value::String(value)),
            Some(Err(message)) => Err((ExprErrorKind::Runtime, message)),
        },
        other => Err((
            ExprErrorKind::UnknownFunction,
            format!("unknown function `{other}`"),
        )),
    }
}

fn whole_number(value: &Value, what: &str) -> Result<i64, (ExprErrorKind, String)> {
    match value::to_num(value) {
        Ok(value::Num::Int(i)) => Ok(i),
        Ok(value::Num::Float(f)) if f.fract() == 0.0 => {
            value::float_to_int(f).map_err(|(_, m)| (ExprErrorKind::Overflow, m))
        }
        _ => Err(type_error(format!(
            "{what} must be a whole number, got {}",
            describe(value)
        ))),
    }
}

/// `slice(list|string, start, end?)`: negative positions count from the end;
/// positions are clamped to the bounds.
fn slice(value: &Value, start: &Value, end: Option<&Value>) -> CallResult {
    let clamp = |i: i64, len: usize| -> usize {
        let len = len as i64;
        let i = if i < 0 { i.saturating_add(len) } else { i };
        i.clamp(0, len) as usize
    };
    let bounds = |len: usize| -> Result<(usize, usize), (ExprErrorKind, String)> {
        let from = clamp(whole_number(start, "the start")?, len);
        let to = match end {
            Some(e) if !e.is_null() => clamp(whole_number(e, "the end")?, len),
            _ => len,
        };
        Ok((from, to.max(from)))
    };
    match value {
        Value::Array(items) => {
            let (from, to) = bounds(items.len())?;
            Ok(Some(Value::Array(items[from..to].to_vec())))
        }
        Value::String(s) => {
            let (from, to) = bounds(s.chars().count())?;
            Ok(Some(Value::String(
                s.chars().skip(from).take(to - from).collect(),
            )))
        }
        other => Err(type_error(format!(
            "needs a list or a string, got {}",
            describe(other)
        ))),
    }
}

fn chunk(list: &Value, size: &Value) -> CallResult {
    let Value::Array(items) = list else {
        return Err(type_error(format!(
            "the first argument must be a list, got {}",
            describe(list)
        )));
    };
    let size = whole_number(size, "the chunk size")?;
    if size < 1 {
        return Err((
            ExprErrorKind::Function,
            format!("the chunk size must be at least 1, got {size}"),
        ));
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(Some(Value::Array(
        items
            .chunks(size)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    )))
}

fn range(args: &[Value]) -> CallResult {
    let first = whole_number(&args[0], "a range bound")?;
    let (start, end) = match args.get(1) {
        Some(end) => (first, whole_number(end, "a range bound")?),
        None => (0, first),
    };
    let count = end.saturating_sub(start).max(0);
    if count > MAX_RANGE {
        return Err((
            ExprErrorKind::LimitExceeded,
            format!("the range has {count} items, more than the limit of {MAX_RANGE}"),
        ));
    }
    Ok(Some(Value::Array((start..end).map(Value::from).collect())))
}

fn entries(value: &Value) -> CallResult {
    let entry = |key: Value, value: &Value| {
        let mut map = serde_json::Map::new();
        map.insert("key".into(), key);
        map.insert("value".into(), value.clone());
        Value::Object(map)
    };
    match value {
        Value::Object(map) => Ok(Some(Value::Array(
            map.iter()
                .map(|(k, v)| entry(Value::String(k.clone()), v))
                .collect(),
        ))),
        Value::Array(items) => Ok(Some(Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| entry(Value::String(i.to_string()), v))
                .collect(),
        ))),
        Value::Null => Ok(Some(Value::Array(Vec::new()))),
        other => Err(type_error(format!(
            "needs an object, got {}",
            describe(other)
        ))),
    }
}
