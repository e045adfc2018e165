//! What the evaluator knows about the type of an expression it cannot
//! evaluate yet, and the simplifications that knowledge allows.

use serde_json::Value;

use crate::expr::ast::{Arg, BinaryOp, Kind, Node, UnaryOp};
use crate::expr::error::Span;
use crate::expr::stdlib;
use crate::expr::value::truthy;

/// `&&`/`||` with a left operand that is not known yet.
pub(super) fn logic_node(op: BinaryOp, left: Node, right: Node, span: Span) -> Node {
    // `b && true` is `b` and `b || false` is `b`, when `b` is a boolean.
    if is_bool_typed(&left) && right.as_literal() == Some(&Value::Bool(op == BinaryOp::And)) {
        return left;
    }
    Node::new(Kind::Binary(op, Box::new(left), Box::new(right)), span)
}

/// Whether a node certainly evaluates to `true` or `false`.
pub(crate) fn is_bool_typed(node: &Node) -> bool {
    match &node.kind {
        Kind::Literal(v) => v.is_boolean(),
        Kind::Unary(UnaryOp::Not, _) => true,
        Kind::Binary(op, a, b) => {
            op.is_comparison()
                || (matches!(op, BinaryOp::And | BinaryOp::Or)
                    && is_bool_typed(a)
                    && is_bool_typed(b))
        }
        Kind::Ternary(_, a, b) => is_bool_typed(a) && is_bool_typed(b),
        Kind::Call(name, args) => name == "bool" && args.len() == 1 && !args[0].spread,
        _ => false,
    }
}

/// Whether a node certainly evaluates to a string.
pub(super) fn is_string_typed(node: &Node) -> bool {
    match &node.kind {
        Kind::Literal(v) => v.is_string(),
        Kind::Binary(BinaryOp::Add, a, b) => is_string_typed(a) || is_string_typed(b),
        Kind::Ternary(_, a, b) => is_string_typed(a) && is_string_typed(b),
        Kind::Call(name, _) => stdlib::returns_string(name),
        _ => false,
    }
}

/// `bool(x)` and `string(x)` of an `x` already of that type is `x`; a cast to
/// bool distributes over `&&`, `||` and `? :` so conditions simplify.
pub(super) fn simplify_cast(name: &str, args: &[Arg]) -> Option<Node> {
    let [arg] = args else { return None };
    if arg.spread || arg.value.as_literal().is_some() {
        return None;
    }
    match name {
        "string" if is_string_typed(&arg.value) => Some(arg.value.clone()),
        "bool" => Some(to_condition(arg.value.clone())),
        _ => None,
    }
}

/// The same truth value as a boolean-typed node, without evaluating.
pub(crate) fn to_condition(node: Node) -> Node {
    if is_bool_typed(&node) {
        return node;
    }
    let span = node.span;
    match node.kind {
        Kind::Literal(v) => Node::literal(Value::Bool(truthy(&v)), span),
        Kind::Binary(op @ (BinaryOp::And | BinaryOp::Or), a, b) => {
            let a = to_condition(*a);
            let b = to_condition(*b);
            match a.as_literal() {
                Some(l) if truthy(l) == (op == BinaryOp::And) => b,
                Some(_) => a,
                None => logic_node(op, a, b, span),
            }
        }
        Kind::Ternary(c, a, b) => Node::new(
            Kind::Ternary(c, Box::new(to_condition(*a)), Box::new(to_condition(*b))),
            span,
        ),
        kind => Node::new(
            Kind::Call(
                "bool".into(),
                vec![Arg {
                    value: Node::new(kind, span),
                    spread: false,
                }],
            ),
            span,
        ),
    }
}
