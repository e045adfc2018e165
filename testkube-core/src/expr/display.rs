//! Prints a syntax tree back as canonical source.
//!
//! The output re-parses to an equal tree: parentheses are added exactly where
//! precedence needs them, literals print as JSON, and a few forms that would
//! read differently are guarded (`(5).x` rather than `5.x`, `-(5)` for a
//! negation of a positive literal, since `-5` is the literal minus five).

use std::fmt::{self, Write};

use serde_json::Value;

use super::ast::{
    Kind, Node, POSTFIX_PRECEDENCE, Step, TERNARY_PRECEDENCE, UNARY_PRECEDENCE, UnaryOp,
};

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_node(f, self)
    }
}

fn write_node(f: &mut dyn Write, node: &Node) -> fmt::Result {
    match &node.kind {
        Kind::Literal(v) => write_value(f, v),
        Kind::Variable(name) => f.write_str(name),
        Kind::Property(base, name) => {
            write_postfix_base(f, base)?;
            write!(f, ".{name}")
        }
        Kind::Index(base, key) => {
            write_postfix_base(f, base)?;
            f.write_char('[')?;
            write_node(f, key)?;
            f.write_char(']')
        }
        Kind::Wildcard(base, steps) => {
            write_base(f, base, false)?;
            f.write_str(".*")?;
            for step in steps {
                match step {
                    Step::Property(name) => write!(f, ".{name}")?,
                    Step::Index(key) => {
                        f.write_char('[')?;
                        write_node(f, key)?;
                        f.write_char(']')?;
                    }
                }
            }
            Ok(())
        }
        Kind::Unary(op, operand) => {
            let negative_number = matches!(&operand.kind, Kind::Literal(Value::Number(n))
                if n.as_f64().is_some_and(f64::is_sign_negative));
            match op {
                UnaryOp::Not => f.write_char('!')?,
                // `- -x` and `- -5`: a space, not parentheses, keeps `--`
                // apart without adding a level of nesting (found by fuzzing).
                UnaryOp::Neg
                    if negative_number || matches!(operand.kind, Kind::Unary(UnaryOp::Neg, _)) =>
                {
                    f.write_str("- ")?
                }
                UnaryOp::Neg => f.write_char('-')?,
            }
            // `-(5)`: without parentheses `-5` reads as the literal minus five.
            let positive_number =
                matches!(operand.kind, Kind::Literal(Value::Number(_))) && !negative_number;
            let needs_parens =
                operand.precedence() < UNARY_PRECEDENCE || (*op == UnaryOp::Neg && positive_number);
            write_maybe_parens(f, operand, needs_parens)
        }
        Kind::Binary(op, left, right) => {
            let prec = op.precedence();
            write_maybe_parens(f, left, left.precedence() < prec)?;
            write!(f, " {} ", op.symbol())?;
            write_maybe_parens(f, right, right.precedence() <= prec)
        }
        Kind::Ternary(cond, then, otherwise) => {
            write_maybe_parens(f, cond, cond.precedence() == TERNARY_PRECEDENCE)?;
            f.write_str(" ? ")?;
            write_node(f, then)?;
            f.write_str(" : ")?;
            write_node(f, otherwise)
        }
        Kind::Call(name, args) => {
            write!(f, "{name}(")?;
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_node(f, &arg.value)?;
                if arg.spread {
                    f.write_str("...")?;
                }
            }
            f.write_char(')')
        }
        Kind::Array(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_node(f, item)?;
            }
            f.write_char(']')
        }
        Kind::Object(members) => {
            f.write_char('{')?;
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_json_string(f, key)?;
                f.write_str(": ")?;
                write_node(f, value)?;
            }
            f.write_char('}')
        }
    }
}

/// The base of `.x`, `[i]` or `.*`: parenthesized unless it is itself a
/// postfix form or a non-number literal. A wildcard base of `.x` or `[i]` is
/// parenthesized too, or the step would apply to each element.
fn write_postfix_base(f: &mut dyn Write, base: &Node) -> fmt::Result {
    write_base(f, base, matches!(base.kind, Kind::Wildcard(..)))
}

fn write_base(f: &mut dyn Write, base: &Node, close_wildcard: bool) -> fmt::Result {
    let needs_parens = base.precedence() < POSTFIX_PRECEDENCE
        || close_wildcard
        || matches!(base.kind, Kind::Literal(Value::Number(_)));
    write_maybe_parens(f, base, needs_parens)
}

fn write_maybe_parens(f: &mut dyn Write, node: &Node, parens: bool) -> fmt::Result {
    if parens {
        f.write_char('(')?;
        write_node(f, node)?;
        f.write_char(')')
    } else {
        write_node(f, node)
    }
}

/// A JSON value in expression syntax (`[1, 2]`, `{"a": 1}`).
pub(crate) fn write_value(f: &mut dyn Write, value: &Value) -> fmt::Result {
    match value {
        Value::String(s) => write_json_string(f, s),
        Value::Array(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_value(f, item)?;
            }
            f.write_char(']')
        }
        Value::Object(map) => {
            f.write_char('{')?;
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_json_string(f, key)?;
                f.write_str(": ")?;
                write_value(f, item)?;
            }
            f.write_char('}')
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => write!(f, "{value}"),
    }
}

fn write_json_string(f: &mut dyn Write, s: &str) -> fmt::Result {
    write!(f, "{}", Value::String(s.to_string()))
}
