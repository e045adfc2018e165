//! Function calls: the built-ins run by the evaluator itself (`eval`,
//! `map`, `filter`, `any`), spreading, and binding known variables into the
//! expression strings of calls that cannot run yet.

use serde_json::{Map, Value};

use super::Evaluator;
use super::typing::simplify_cast;
use crate::expr::ast::{Arg, Kind, Node, Step};
use crate::expr::context::{Context, ScopedContext};
use crate::expr::error::{ExprError, ExprErrorKind, Span, did_you_mean};
use crate::expr::parser::parse_expression;
use crate::expr::stdlib::{self, Outcome};
use crate::expr::value::{describe, to_text, truthy};

impl Evaluator<'_> {
    /// Substitutes known variables inside the expression string of `map`,
    /// `filter` (not their `_`) and `eval`, so the string no longer depends
    /// on this stage's context. Nothing is folded: errors stay where they are.
    pub(super) fn bind_lambda(&mut self, name: &str, args: &mut [Arg]) -> Result<(), ExprError> {
        let (index, hide_underscore) = match name {
            "map" | "filter" => (1, true),
            "eval" => (0, false),
            _ => return Ok(()),
        };
        let Some(arg) = args.get_mut(index) else {
            return Ok(());
        };
        let Some(Value::String(source)) = arg.value.as_literal() else {
            return Ok(());
        };
        let Ok(parsed) = parse_expression(source) else {
            return Ok(());
        };
        let hidden = HideUnderscore { parent: self.ctx };
        let ctx: &dyn Context = if hide_underscore { &hidden } else { self.ctx };
        let mut inner = Evaluator {
            ctx,
            depth: self.depth,
            fuel: self.fuel,
        };
        let bound = inner.substitute(&parsed);
        self.fuel = inner.fuel;
        let bound = bound?;
        if bound != parsed {
            arg.value = Node::literal(Value::String(bound.to_string()), arg.value.span);
        }
        Ok(())
    }

    pub(super) fn eval_call(
        &mut self,
        name: &str,
        args: &[Arg],
        span: Span,
    ) -> Result<Node, ExprError> {
        let Some(info) = stdlib::lookup(name) else {
            let mut err = ExprError::new(
                ExprErrorKind::UnknownFunction,
                span,
                format!("unknown function `{name}`"),
            );
            if let Some(close) = did_you_mean(name, stdlib::names()) {
                err = err.with_hint(format!("did you mean `{close}`?"));
            }
            return Err(err);
        };
        let mut evaluated: Vec<Arg> = Vec::with_capacity(args.len());
        for arg in args {
            evaluated.push(Arg {
                value: self.eval(&arg.value)?,
                spread: arg.spread,
            });
        }
        if name == "any" {
            return first_known(evaluated, span);
        }
        if let Some(simpler) = simplify_cast(name, &evaluated) {
            return Ok(simpler);
        }
        let Some(values) = literal_args(&evaluated, span)? else {
            // The list is not known yet: bind what is known inside the
            // expression string now, as a later stage may not know it.
            self.bind_lambda(name, &mut evaluated)?;
            return Ok(Node::new(Kind::Call(name.to_string(), evaluated), span));
        };
        info.check_arity(values.len(), span)?;
        match name {
            "eval" => self.call_eval(&values[0], span),
            "map" | "filter" => self.call_map(name, &values, evaluated, span),
            _ => match stdlib::call(name, &values, self.ctx) {
                Outcome::Value(v) => self.produced(v, span),
                Outcome::Unresolved => Ok(Node::new(Kind::Call(name.to_string(), evaluated), span)),
                Outcome::Error(kind, message) => {
                    Err(ExprError::new(kind, span, format!("{name}(): {message}")))
                }
            },
        }
    }

    /// `eval("expr")`: parses the string and evaluates it here.
    fn call_eval(&mut self, source: &Value, span: Span) -> Result<Node, ExprError> {
        let parsed = parse_inner("eval", source, span)?;
        self.eval(&parsed)
    }

    /// `map(list, "expr")` and `filter(list, "expr")` with `_.value`,
    /// `_.index` and `_.key` bound for each element.
    fn call_map(
        &mut self,
        name: &str,
        values: &[Value],
        evaluated: Vec<Arg>,
        span: Span,
    ) -> Result<Node, ExprError> {
        let parsed = parse_inner(name, &values[1], span)?;
        let entries: Vec<(Value, Value, Value)> = match &values[0] {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), Value::from(i), v.clone()))
                .collect(),
            Value::Object(map) => map
                .iter()
                .enumerate()
                .map(|(i, (k, v))| (Value::from(i), Value::String(k.clone()), v.clone()))
                .collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(ExprError::new(
                    ExprErrorKind::Type,
                    span,
                    format!(
                        "{name}(): the first argument must be a list, got {}",
                        describe(other)
                    ),
                ));
            }
        };
        let mut results = Vec::with_capacity(entries.len());
        for (index, key, item) in &entries {
            let mut underscore = Map::new();
            underscore.insert("value".into(), item.clone());
            underscore.insert("index".into(), index.clone());
            underscore.insert("key".into(), key.clone());
            let scoped = ScopedContext {
                parent: self.ctx,
                underscore: Value::Object(underscore),
            };
            let mut inner = Evaluator {
                ctx: &scoped,
                depth: self.depth,
                fuel: self.fuel,
            };
            let result = inner.eval(&parsed);
            self.fuel = inner.fuel;
            results.push(result?);
        }
        if name == "map" {
            return Ok(Node::array(results, span));
        }
        if results.iter().any(|r| r.as_literal().is_none()) {
            // Some condition depends on what is not known yet.
            return Ok(Node::new(Kind::Call(name.to_string(), evaluated), span));
        }
        let keep = |r: &Node| r.as_literal().is_some_and(truthy);
        let value = match &values[0] {
            Value::Object(map) => Value::Object(
                map.iter()
                    .zip(&results)
                    .filter(|(_, r)| keep(r))
                    .map(|((k, v), _)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => Value::Array(
                entries
                    .into_iter()
                    .zip(&results)
                    .filter(|(_, r)| keep(r))
                    .map(|((_, _, v), _)| v)
                    .collect(),
            ),
        };
        self.produced(value, span)
    }
}

/// A context that does not know `_` (the element of `map` and `filter`).
struct HideUnderscore<'a> {
    parent: &'a dyn Context,
}

impl Context for HideUnderscore<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        if name == "_" || name.starts_with("_.") {
            None
        } else {
            self.parent.variable(name)
        }
    }

    fn parent(&self) -> Option<&dyn Context> {
        Some(self.parent)
    }
}

/// `any(...)`: the first argument known now (the first item of a spread
/// list), `null` when every argument is known and none gives a value.
fn first_known(args: Vec<Arg>, span: Span) -> Result<Node, ExprError> {
    let mut pending = false;
    for arg in &args {
        match (arg.value.as_literal(), arg.spread) {
            (None, _) => pending = true,
            (Some(v), false) => return Ok(Node::literal(v.clone(), span)),
            (Some(Value::Array(items)), true) => {
                if let Some(first) = items.first() {
                    return Ok(Node::literal(first.clone(), span));
                }
            }
            (Some(Value::Null), true) => {}
            (Some(other), true) => return Err(spread_error(other, span)),
        }
    }
    Ok(if pending {
        Node::new(Kind::Call("any".into(), args), span)
    } else {
        Node::literal(Value::Null, span)
    })
}

/// All argument values with spreads expanded, or `None` if one is unknown.
fn literal_args(args: &[Arg], span: Span) -> Result<Option<Vec<Value>>, ExprError> {
    let mut values = Vec::with_capacity(args.len());
    for arg in args {
        let Some(v) = arg.value.as_literal() else {
            return Ok(None);
        };
        if !arg.spread {
            values.push(v.clone());
            continue;
        }
        match v {
            Value::Array(items) => values.extend(items.iter().cloned()),
            Value::Null => {}
            other => return Err(spread_error(other, span)),
        }
    }
    Ok(Some(values))
}

fn spread_error(value: &Value, span: Span) -> ExprError {
    ExprError::new(
        ExprErrorKind::Type,
        span,
        format!("`...` spreads a list, got {}", describe(value)),
    )
}

/// Parses the expression-string argument of `eval`, `map` or `filter`, with
/// spans pointing at the call.
fn parse_inner(name: &str, source: &Value, span: Span) -> Result<Node, ExprError> {
    let text = to_text(source);
    match parse_expression(&text) {
        Ok(mut node) => {
            respan(&mut node, span);
            Ok(node)
        }
        Err(e) => Err(ExprError::new(
            e.kind(),
            span,
            format!(
                "{name}(): invalid expression {}: {}",
                Value::String(text),
                e.message()
            ),
        )),
    }
}

fn respan(node: &mut Node, span: Span) {
    node.span = span;
    match &mut node.kind {
        Kind::Literal(_) | Kind::Variable(_) => {}
        Kind::Property(base, _) => respan(base, span),
        Kind::Index(base, key) => {
            respan(base, span);
            respan(key, span);
        }
        Kind::Wildcard(base, steps) => {
            respan(base, span);
            for step in steps {
                if let Step::Index(key) = step {
                    respan(key, span);
                }
            }
        }
        Kind::Unary(_, x) => respan(x, span),
        Kind::Binary(_, a, b) => {
            respan(a, span);
            respan(b, span);
        }
        Kind::Ternary(c, a, b) => {
            respan(c, span);
            respan(a, span);
            respan(b, span);
        }
        Kind::Call(_, args) => args.iter_mut().for_each(|a| respan(&mut a.value, span)),
        Kind::Array(items) => items.iter_mut().for_each(|n| respan(n, span)),
        Kind::Object(members) => members.iter_mut().for_each(|(_, n)| respan(n, span)),
    }
}
