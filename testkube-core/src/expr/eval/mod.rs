//! Partial evaluation: simplify a tree as far as the context allows.
//!
//! The result of evaluating is again a tree. Whatever the context knows is
//! folded into literals; unknown variables and run-time calls without a hook
//! stay as they are, so the expression can be finished in a later stage
//! (workflow resolution, then per worker, then at run time).
//!
//! The rule every part keeps: evaluating in stages gives what evaluating once
//! with everything known gives. Hence:
//! - `&&`, `||` and `? :` only evaluate the operand they return once the
//!   deciding operand is known; while it is unknown, the other operands are
//!   simplified, and an error there is deferred (the operand is kept with its
//!   variables substituted) because that branch may never be taken;
//! - `x && true` folds to `x` (and `x || false` to `x`) only when `x` is
//!   certainly a boolean, since `&&` returns an operand, not a boolean;
//! - `any()` is the one exception: it returns the first argument known *now*.
//!
//! Work is bounded: nesting by [`MAX_EVAL_DEPTH`] and total work by a fuel
//! budget, so no input (e.g. `map(range(100000), "range(100000)")`) can run
//! away with time or memory.

use serde_json::Value;

use crate::expr::ast::{Arg, BinaryOp, Kind, Node, Step, UnaryOp, path_segment};
use crate::expr::context::Context;
use crate::expr::error::{ExprError, ExprErrorKind, Span};
use crate::expr::value::{self, OpError, describe, to_text, truthy};

mod calls;
mod typing;

use typing::logic_node;
pub(crate) use typing::to_condition;

/// Deepest recursion of one evaluation, including `eval()`, `map()` and
/// `filter()` expressions evaluated inside it.
pub(crate) const MAX_EVAL_DEPTH: usize = 128;

/// Work units one evaluation may spend (a node costs 1, a produced list item
/// 1, a produced string 1 per 64 bytes).
const FUEL: u64 = 5_000_000;

/// Longest string an evaluation may produce.
pub(crate) const MAX_STRING_LEN: usize = 16 << 20;

pub(crate) struct Evaluator<'c> {
    ctx: &'c dyn Context,
    depth: usize,
    fuel: u64,
}

impl<'c> Evaluator<'c> {
    pub(crate) fn new(ctx: &'c dyn Context) -> Self {
        Evaluator {
            ctx,
            depth: 0,
            fuel: FUEL,
        }
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Result<Node, ExprError> {
        self.enter(node.span)?;
        let result = self.eval_node(node);
        self.depth -= 1;
        result
    }

    fn enter(&mut self, span: Span) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_EVAL_DEPTH {
            self.depth -= 1;
            return Err(ExprError::new(
                ExprErrorKind::TooDeep,
                span,
                format!("evaluation nests more than {MAX_EVAL_DEPTH} levels deep"),
            )
            .with_hint("look for eval() or map() expressions that call themselves"));
        }
        self.burn(1, span)
    }

    fn burn(&mut self, units: u64, span: Span) -> Result<(), ExprError> {
        match self.fuel.checked_sub(units) {
            Some(left) => {
                self.fuel = left;
                Ok(())
            }
            None => Err(ExprError::new(
                ExprErrorKind::LimitExceeded,
                span,
                "the expression needs too much work to evaluate",
            )
            .with_hint("reduce the sizes of range(), map() or repeated conversions")),
        }
    }

    /// Charges for a produced value and checks its size.
    fn produced(&mut self, value: Value, span: Span) -> Result<Node, ExprError> {
        let units = match &value {
            Value::String(s) => {
                if s.len() > MAX_STRING_LEN {
                    return Err(ExprError::new(
                        ExprErrorKind::LimitExceeded,
                        span,
                        format!(
                            "the result is a string of {} bytes, more than the limit of {MAX_STRING_LEN}",
                            s.len()
                        ),
                    ));
                }
                s.len() as u64 / 64
            }
            Value::Array(items) => items.len() as u64,
            Value::Object(map) => map.len() as u64,
            _ => 0,
        };
        self.burn(units, span)?;
        Ok(Node::literal(value, span))
    }

    fn eval_node(&mut self, node: &Node) -> Result<Node, ExprError> {
        let span = node.span;
        match &node.kind {
            Kind::Literal(_) => Ok(node.clone()),
            Kind::Variable(name) => Ok(match self.ctx.variable(name) {
                Some(v) => Node::literal(v, span),
                None => node.clone(),
            }),
            Kind::Property(..) | Kind::Index(..) => self.eval_access(node),
            Kind::Wildcard(base, steps) => self.eval_wildcard(base, steps, span),
            Kind::Unary(op, operand) => {
                let operand = self.eval(operand)?;
                let Some(v) = operand.as_literal() else {
                    return Ok(Node::new(Kind::Unary(*op, Box::new(operand)), span));
                };
                match op {
                    UnaryOp::Not => Ok(Node::literal(Value::Bool(!truthy(v)), span)),
                    UnaryOp::Neg => value::negate(v)
                        .map(|v| Node::literal(v, span))
                        .map_err(|e| op_error(e, span)),
                }
            }
            Kind::Binary(op @ (BinaryOp::And | BinaryOp::Or), left, right) => {
                self.eval_logic(*op, left, right, span)
            }
            Kind::Binary(op, left, right) => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                match (left.as_literal(), right.as_literal()) {
                    (Some(a), Some(b)) => {
                        let v = value::binary(*op, a, b).map_err(|e| op_error(e, span))?;
                        self.produced(v, span)
                    }
                    _ => Ok(Node::new(
                        Kind::Binary(*op, Box::new(left), Box::new(right)),
                        span,
                    )),
                }
            }
            Kind::Ternary(cond, then, otherwise) => {
                let cond = self.eval(cond)?;
                if let Some(c) = cond.as_literal() {
                    return self.eval(if truthy(c) { then } else { otherwise });
                }
                let then = self.eval_deferred(then)?;
                let otherwise = self.eval_deferred(otherwise)?;
                Ok(Node::new(
                    Kind::Ternary(Box::new(cond), Box::new(then), Box::new(otherwise)),
                    span,
                ))
            }
            Kind::Call(name, args) => self.eval_call(name, args, span),
            Kind::Array(items) => {
                let items = items
                    .iter()
                    .map(|n| self.eval(n))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Node::array(items, span))
            }
            Kind::Object(members) => {
                let members = members
                    .iter()
                    .map(|(k, n)| Ok((k.clone(), self.eval(n)?)))
                    .collect::<Result<Vec<_>, ExprError>>()?;
                Ok(Node::object(members, span))
            }
        }
    }

    /// `&&` and `||` return an operand and short-circuit.
    fn eval_logic(
        &mut self,
        op: BinaryOp,
        left: &Node,
        right: &Node,
        span: Span,
    ) -> Result<Node, ExprError> {
        let left = self.eval(left)?;
        if let Some(l) = left.as_literal() {
            let returns_right = truthy(l) == (op == BinaryOp::And);
            return if returns_right {
                self.eval(right)
            } else {
                Ok(left)
            };
        }
        let right = self.eval_deferred(right)?;
        Ok(logic_node(op, left, right, span))
    }

    /// Evaluates an operand that might never be used: an error is not raised
    /// now but kept for when (if) the operand is taken.
    fn eval_deferred(&mut self, node: &Node) -> Result<Node, ExprError> {
        match self.eval(node) {
            Ok(n) => Ok(n),
            Err(e) if e.is_limit() => Err(e),
            Err(_) => self.substitute(node),
        }
    }

    /// Replaces known variables by their values and changes nothing else.
    fn substitute(&mut self, node: &Node) -> Result<Node, ExprError> {
        self.enter(node.span)?;
        let result = self.substitute_node(node);
        self.depth -= 1;
        result
    }

    fn substitute_node(&mut self, node: &Node) -> Result<Node, ExprError> {
        let span = node.span;
        if let Some(v) = node
            .static_path()
            .and_then(|p| self.ctx.variable(&p.join(".")))
        {
            return Ok(Node::literal(v, span));
        }
        let kind = match &node.kind {
            Kind::Literal(_) | Kind::Variable(_) => return Ok(node.clone()),
            // Reading a property of a known value is kept only if it works;
            // a failing read stays for when (if) it is evaluated.
            Kind::Property(base, name) => {
                let base = self.substitute(base)?;
                let key = Value::String(name.clone());
                if let Some(Ok(v)) = base.as_literal().map(|b| access(b, &key, span)) {
                    return Ok(Node::literal(v, span));
                }
                Kind::Property(Box::new(base), name.clone())
            }
            Kind::Index(base, key) => {
                let base = self.substitute(base)?;
                let key = self.substitute(key)?;
                if let (Some(b), Some(k)) = (base.as_literal(), key.as_literal())
                    && let Ok(v) = access(b, k, span)
                {
                    return Ok(Node::literal(v, span));
                }
                Kind::Index(Box::new(base), Box::new(key))
            }
            Kind::Wildcard(base, steps) => {
                let steps = steps
                    .iter()
                    .map(|s| match s {
                        Step::Property(name) => Ok(Step::Property(name.clone())),
                        Step::Index(key) => Ok(Step::Index(self.substitute(key)?)),
                    })
                    .collect::<Result<_, ExprError>>()?;
                Kind::Wildcard(Box::new(self.substitute(base)?), steps)
            }
            Kind::Unary(op, x) => Kind::Unary(*op, Box::new(self.substitute(x)?)),
            Kind::Binary(op, a, b) => Kind::Binary(
                *op,
                Box::new(self.substitute(a)?),
                Box::new(self.substitute(b)?),
            ),
            Kind::Ternary(c, a, b) => Kind::Ternary(
                Box::new(self.substitute(c)?),
                Box::new(self.substitute(a)?),
                Box::new(self.substitute(b)?),
            ),
            Kind::Call(name, args) => {
                let mut args = args
                    .iter()
                    .map(|a| {
                        Ok(Arg {
                            value: self.substitute(&a.value)?,
                            spread: a.spread,
                        })
                    })
                    .collect::<Result<Vec<_>, ExprError>>()?;
                self.bind_lambda(name, &mut args)?;
                Kind::Call(name.clone(), args)
            }
            Kind::Array(items) => {
                let items = items
                    .iter()
                    .map(|n| self.substitute(n))
                    .collect::<Result<_, _>>()?;
                return Ok(Node::array(items, span));
            }
            Kind::Object(members) => {
                let members = members
                    .iter()
                    .map(|(k, n)| Ok((k.clone(), self.substitute(n)?)))
                    .collect::<Result<_, ExprError>>()?;
                return Ok(Node::object(members, span));
            }
        };
        Ok(Node::new(kind, span))
    }

    /// `a.b`, `a[k]`: the longest known dotted name wins, then indexing.
    fn eval_access(&mut self, node: &Node) -> Result<Node, ExprError> {
        let span = node.span;
        if let Some(v) = node
            .static_path()
            .and_then(|p| self.ctx.variable(&p.join(".")))
        {
            return Ok(Node::literal(v, span));
        }
        match &node.kind {
            Kind::Property(base, name) => {
                let base = self.eval(base)?;
                match base.as_literal() {
                    Some(v) => access(v, &Value::String(name.clone()), span)
                        .map(|v| Node::literal(v, span)),
                    None => Ok(Node::new(
                        Kind::Property(Box::new(base), name.clone()),
                        span,
                    )),
                }
            }
            Kind::Index(base, key) => {
                let key = self.eval(key)?;
                // The key may have just become constant: try the longer name.
                if let (Some(segment), Some(mut path)) =
                    (key.as_literal().and_then(path_segment), base.static_path())
                {
                    path.push(segment);
                    if let Some(v) = self.ctx.variable(&path.join(".")) {
                        return Ok(Node::literal(v, span));
                    }
                }
                let base = self.eval(base)?;
                match (base.as_literal(), key.as_literal()) {
                    (Some(b), Some(k)) => access(b, k, span).map(|v| Node::literal(v, span)),
                    _ => Ok(Node::new(Kind::Index(Box::new(base), Box::new(key)), span)),
                }
            }
            _ => self.eval_node(node),
        }
    }

    /// `list.*.a[0]`: the steps applied to every element.
    fn eval_wildcard(
        &mut self,
        base: &Node,
        steps: &[Step],
        span: Span,
    ) -> Result<Node, ExprError> {
        let base = self.eval(base)?;
        let mut all_known = base.as_literal().is_some();
        let mut new_steps = Vec::with_capacity(steps.len());
        for step in steps {
            new_steps.push(match step {
                Step::Property(name) => Step::Property(name.clone()),
                Step::Index(key) => {
                    let key = self.eval(key)?;
                    all_known &= key.as_literal().is_some();
                    Step::Index(key)
                }
            });
        }
        let (true, Some(list)) = (all_known, base.as_literal()) else {
            return Ok(Node::new(Kind::Wildcard(Box::new(base), new_steps), span));
        };
        let elements: Vec<&Value> = match list {
            Value::Array(items) => items.iter().collect(),
            Value::Object(map) => map.values().collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(ExprError::new(
                    ExprErrorKind::Type,
                    span,
                    format!("`.*` needs a list or an object, got {}", describe(other)),
                ));
            }
        };
        let mut out = Vec::with_capacity(elements.len());
        for element in elements {
            let mut current = element.clone();
            for step in &new_steps {
                current = match step {
                    Step::Property(name) => access(&current, &Value::String(name.clone()), span)?,
                    Step::Index(key) => match key.as_literal() {
                        Some(k) => access(&current, k, span)?,
                        None => {
                            return Err(ExprError::new(
                                ExprErrorKind::Type,
                                span,
                                "unresolved key",
                            ));
                        }
                    },
                };
            }
            out.push(current);
        }
        self.produced(Value::Array(out), span)
    }
}

/// `value[key]` / `value.key`.
pub(crate) fn access(value: &Value, key: &Value, span: Span) -> Result<Value, ExprError> {
    let error = |kind, message: String| Err(ExprError::new(kind, span, message));
    match value {
        Value::Object(map) => Ok(map.get(&to_text(key)).cloned().unwrap_or(Value::Null)),
        Value::Array(items) => match index_of(key, items.len()) {
            Ok(i) => Ok(items[i].clone()),
            Err(message) => error(ExprErrorKind::Index, message),
        },
        Value::String(s) => {
            let count = s.chars().count();
            match index_of(key, count) {
                Ok(i) => Ok(Value::String(
                    s.chars().nth(i).map(String::from).unwrap_or_default(),
                )),
                Err(message) => error(ExprErrorKind::Index, message),
            }
        }
        other => error(
            ExprErrorKind::Type,
            format!("cannot read `{}` of {}", to_text(key), describe(other)),
        ),
    }
}

/// A list position from a key: a whole number in `0..len`.
fn index_of(key: &Value, len: usize) -> Result<usize, String> {
    let number = match key {
        Value::Number(_) | Value::String(_) => value::to_num(key).ok(),
        _ => None,
    };
    let index = match number {
        Some(value::Num::Int(i)) => i,
        Some(value::Num::Float(f)) if f.fract() == 0.0 => f as i64,
        _ => {
            return Err(format!(
                "a list index must be a whole number, got {}",
                describe(key)
            ));
        }
    };
    usize::try_from(index)
        .ok()
        .filter(|i| *i < len)
        .ok_or_else(|| format!("index {index} is out of bounds (length {len})"))
}

fn op_error((kind, message): (OpError, String), span: Span) -> ExprError {
    let kind = match kind {
        OpError::Type => ExprErrorKind::Type,
        OpError::DivisionByZero => ExprErrorKind::DivisionByZero,
        OpError::Overflow => ExprErrorKind::Overflow,
    };
    ExprError::new(kind, span, message)
}
