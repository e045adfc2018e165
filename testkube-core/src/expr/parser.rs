//! Recursive-descent parser from tokens to the syntax tree.
//!
//! Precedence, loosest first: `? :` (right-associative), `&& ||`,
//! comparisons, `+ -`, `* / %`, `**`, prefix `! -`, postfix `.x [i] .*`.
//! Binary operators are left-associative (as in Testkube, `2 ** 3 ** 2` is
//! `(2 ** 3) ** 2`). Nesting is limited (the tree to [`MAX_DEPTH`] levels, the
//! parser's own recursion, parentheses included, to [`MAX_NESTING`]) so that no input can
//! exhaust the stack of the parser, the printer or the evaluator.

use serde_json::Value;

use super::ast::{Arg, BinaryOp, Kind, Node, Step, UnaryOp};
use super::error::{ExprError, ExprErrorKind, Span};
use super::lexer::{Lexer, Tok, Token};

/// Deepest nesting of the tree the parser accepts. Each operator in a chain
/// (`a + b + c`) counts as one level, as does each bracket or prefix.
pub(crate) const MAX_DEPTH: usize = 30;

/// Deepest recursion of the parser: each bracket, prefix operator, operator
/// of a chain or access step is one level. Printing a tree of at most
/// [`MAX_DEPTH`] levels adds at most one pair of parentheses per level, so
/// what the printer writes always parses again.
const MAX_NESTING: usize = 100;

/// Parses a whole string as one expression.
pub(crate) fn parse_expression(src: &str) -> Result<Node, ExprError> {
    let mut parser = Parser::new(src, 0)?;
    if parser.token.kind == Tok::End {
        return Err(
            ExprError::syntax(Span::new(0, src.len()), "empty expression")
                .with_hint("write a value, e.g. `true` or `config.name`"),
        );
    }
    let node = parser.expression()?;
    parser.expect_end()?;
    check_depth(node)
}

/// Refuses trees deeper than [`MAX_DEPTH`] (also used on evaluation results,
/// which must print to source that parses again).
pub(crate) fn check_depth(node: Node) -> Result<Node, ExprError> {
    if node.depth() > MAX_DEPTH {
        return Err(ExprError::new(
            ExprErrorKind::TooDeep,
            node.span,
            format!("expression nests more than {MAX_DEPTH} levels deep"),
        )
        .with_hint("split it into smaller expressions"));
    }
    Ok(node)
}

/// Parses an expression starting at byte `start` of `src` and stops at the
/// first token that cannot continue it (used for `{{ }}` in templates).
/// Returns the node (or `None` if nothing was there) and the offset where the
/// expression ended.
pub(crate) fn parse_prefix(src: &str, start: usize) -> Result<(Option<Node>, usize), ExprError> {
    let mut parser = Parser::new(src, start)?;
    if matches!(parser.token.kind, Tok::End | Tok::Punct("}")) {
        return Ok((None, parser.token.span.start));
    }
    let node = check_depth(parser.expression()?)?;
    Ok((Some(node), parser.token.span.start))
}

struct Parser<'s> {
    lexer: Lexer<'s>,
    token: Token,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str, start: usize) -> Result<Self, ExprError> {
        let mut lexer = Lexer::new(src, start);
        let token = lexer.next()?;
        Ok(Parser {
            lexer,
            token,
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<Token, ExprError> {
        let next = self.lexer.next()?;
        Ok(std::mem::replace(&mut self.token, next))
    }

    fn at(&self, punct: &str) -> bool {
        matches!(&self.token.kind, Tok::Punct(p) if *p == punct)
    }

    fn eat(&mut self, punct: &str) -> Result<bool, ExprError> {
        if self.at(punct) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect(&mut self, punct: &str, what: &str) -> Result<Span, ExprError> {
        if self.at(punct) {
            Ok(self.advance()?.span)
        } else {
            Err(self.unexpected(&format!("expected `{punct}` {what}")))
        }
    }

    fn expect_end(&self) -> Result<(), ExprError> {
        if self.token.kind == Tok::End {
            Ok(())
        } else {
            Err(self.unexpected("expected the end of the expression"))
        }
    }

    fn unexpected(&self, expected: &str) -> ExprError {
        let found = match &self.token.kind {
            Tok::End => "the end".to_string(),
            Tok::Number(n) => format!("`{n}`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Punct(p) => format!("`{p}`"),
        };
        ExprError::syntax(self.token.span, format!("{expected}, found {found}"))
    }

    /// Enters one level of nesting; the caller must call `leave`.
    fn enter(&mut self, span: Span) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExprError::new(
                ExprErrorKind::TooDeep,
                span,
                "expression nests too deeply".to_string(),
            )
            .with_hint("split it into smaller expressions"));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth = self.depth.saturating_sub(levels);
    }

    fn expression(&mut self) -> Result<Node, ExprError> {
        self.enter(self.token.span)?;
        let result = self.ternary();
        self.leave(1);
        result
    }

    fn ternary(&mut self) -> Result<Node, ExprError> {
        let cond = self.binary(1)?;
        if !self.eat("?")? {
            return Ok(cond);
        }
        let then = self.expression()?;
        self.expect(":", "between the branches of `? :`")?;
        let otherwise = self.expression()?;
        let span = cond.span.to(otherwise.span);
        Ok(Node::new(
            Kind::Ternary(Box::new(cond), Box::new(then), Box::new(otherwise)),
            span,
        ))
    }

    /// Binary operators of precedence `min` and tighter, left-associative
    /// (precedence climbing: one frame per operator, not per level).
    fn binary(&mut self, min: u8) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        let mut levels = 0;
        let result = loop {
            let Some(op) = self.binary_op().filter(|op| op.precedence() >= min) else {
                break Ok(left);
            };
            let op_span = match self.advance() {
                Ok(token) => token.span,
                Err(e) => break Err(e),
            };
            levels += 1;
            if let Err(e) = self.enter(op_span) {
                break Err(e);
            }
            let right = match self.binary(op.precedence() + 1) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let span = left.span.to(right.span);
            left = Node::new(Kind::Binary(op, Box::new(left), Box::new(right)), span);
        };
        self.leave(levels);
        result
    }

    fn binary_op(&self) -> Option<BinaryOp> {
        let Tok::Punct(p) = self.token.kind else {
            return None;
        };
        Some(match p {
            "&&" => BinaryOp::And,
            "||" => BinaryOp::Or,
            "==" | "=" => BinaryOp::Eq,
            "!=" | "<>" => BinaryOp::Ne,
            "<" => BinaryOp::Lt,
            "<=" => BinaryOp::Le,
            ">" => BinaryOp::Gt,
            ">=" => BinaryOp::Ge,
            "+" => BinaryOp::Add,
            "-" => BinaryOp::Sub,
            "*" => BinaryOp::Mul,
            "/" => BinaryOp::Div,
            "%" => BinaryOp::Mod,
            "**" => BinaryOp::Pow,
            _ => return None,
        })
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        let op = if self.at("!") {
            UnaryOp::Not
        } else if self.at("-") {
            UnaryOp::Neg
        } else {
            return self.postfix();
        };
        let op_span = self.advance()?.span;
        // `-` right before a number is part of the literal, so that every
        // negative number has one form: `-5` parses as the literal -5.
        if op == UnaryOp::Neg
            && let Tok::Number(text) = &self.token.kind
        {
            let text = format!("-{text}");
            let span = op_span.to(self.token.span);
            let value = number(&text, span)?;
            self.advance()?;
            return self.postfix_of(Node::literal(value, span));
        }
        self.enter(op_span)?;
        let operand = self.unary();
        self.leave(1);
        let operand = operand?;
        let span = op_span.to(operand.span);
        Ok(Node::new(Kind::Unary(op, Box::new(operand)), span))
    }

    fn postfix(&mut self) -> Result<Node, ExprError> {
        let base = self.primary()?;
        self.postfix_of(base)
    }

    /// Applies `.name`, `.*`, `[key]` to `node` while they follow. Steps
    /// after a `.*` of this chain apply to each element; a parenthesized
    /// wildcard (`(list.*).x`) is closed and `.x` applies to the whole list.
    fn postfix_of(&mut self, mut node: Node) -> Result<Node, ExprError> {
        let mut levels = 0;
        let mut open_wildcard = false;
        let result = loop {
            if let Err(e) = self.enter(self.token.span) {
                break Err(e);
            }
            levels += 1;
            match self.postfix_step(node, &mut open_wildcard) {
                Ok((next, true)) => node = next,
                Ok((next, false)) => break Ok(next),
                Err(e) => break Err(e),
            }
        };
        self.leave(levels);
        result
    }

    /// One postfix step; the bool says whether one was applied.
    fn postfix_step(
        &mut self,
        node: Node,
        open_wildcard: &mut bool,
    ) -> Result<(Node, bool), ExprError> {
        if self.at(".") {
            let dot = self.token.span;
            // Read the name in property mode, then resume normal lexing.
            self.lexer.set_pos(dot.end);
            let Some((name, name_span)) = self.lexer.property_name() else {
                self.token = self.lexer.next()?;
                return Err(self.unexpected("expected a property name after `.`"));
            };
            self.token = self.lexer.next()?;
            let span = node.span.to(name_span);
            let next = if name == "*" {
                *open_wildcard = true;
                Node::new(Kind::Wildcard(Box::new(node), Vec::new()), span)
            } else {
                push_step(node, Step::Property(name), span, *open_wildcard)
            };
            return Ok((next, true));
        }
        if self.at("[") {
            self.advance()?;
            let key = self.expression()?;
            let close = self.expect("]", "to close the index")?;
            let span = node.span.to(close);
            return Ok((
                push_step(node, Step::Index(key), span, *open_wildcard),
                true,
            ));
        }
        Ok((node, false))
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let token = self.token.clone();
        match token.kind {
            Tok::Number(text) => {
                self.advance()?;
                Ok(Node::literal(number(&text, token.span)?, token.span))
            }
            Tok::Str(s) => {
                self.advance()?;
                Ok(Node::literal(Value::String(s), token.span))
            }
            Tok::Ident(name) => {
                self.advance()?;
                match name.as_str() {
                    "true" => return Ok(Node::literal(Value::Bool(true), token.span)),
                    "false" => return Ok(Node::literal(Value::Bool(false), token.span)),
                    "null" => return Ok(Node::literal(Value::Null, token.span)),
                    _ => {}
                }
                if self.at("(") {
                    self.advance()?;
                    return self.call(name, token.span);
                }
                Ok(Node::new(Kind::Variable(name), token.span))
            }
            Tok::Punct("(") => {
                self.advance()?;
                let inner = self.expression()?;
                self.expect(")", "to close the parenthesis")?;
                Ok(inner)
            }
            Tok::Punct("[") => {
                self.advance()?;
                let mut items = Vec::new();
                while !self.at("]") {
                    if !items.is_empty() {
                        self.expect(",", "or `]` in the list")?;
                    }
                    items.push(self.expression()?);
                }
                let close = self.advance()?.span;
                Ok(Node::array(items, token.span.to(close)))
            }
            Tok::Punct("{") => self.object(token.span),
            _ => Err(self.unexpected("expected a value")),
        }
    }

    fn object(&mut self, open: Span) -> Result<Node, ExprError> {
        self.advance()?;
        let mut members = Vec::new();
        while !self.at("}") {
            if !members.is_empty() {
                self.expect(",", "or `}` in the object")?;
            }
            let key = match &self.token.kind {
                Tok::Str(s) => s.clone(),
                _ => {
                    return Err(self
                        .unexpected("expected a quoted key in the object")
                        .with_hint("object keys are strings: {\"name\": value}"));
                }
            };
            self.advance()?;
            self.expect(":", "after the object key")?;
            members.push((key, self.expression()?));
        }
        let close = self.advance()?.span;
        Ok(Node::object(members, open.to(close)))
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Node, ExprError> {
        let mut args = Vec::new();
        while !self.at(")") {
            if !args.is_empty() {
                self.expect(",", "or `)` after a call argument")?;
            }
            let value = self.expression()?;
            let spread = self.eat("...")?;
            args.push(Arg { value, spread });
        }
        let close = self.advance()?.span;
        Ok(Node::new(Kind::Call(name, args), name_span.to(close)))
    }
}

/// Adds an access step: after an open wildcard it applies to each element.
fn push_step(node: Node, step: Step, span: Span, open_wildcard: bool) -> Node {
    match node.kind {
        Kind::Wildcard(base, mut steps) if open_wildcard => {
            steps.push(step);
            Node::new(Kind::Wildcard(base, steps), span)
        }
        kind => {
            let base = Box::new(Node::new(kind, node.span));
            match step {
                Step::Property(name) => Node::new(Kind::Property(base, name), span),
                Step::Index(key) => Node::new(Kind::Index(base, Box::new(key)), span),
            }
        }
    }
}

/// A number literal: integers stay integers (i64/u64), the rest is f64.
fn number(text: &str, span: Span) -> Result<Value, ExprError> {
    let invalid = || ExprError::syntax(span, format!("invalid number `{text}`"));
    let digits = text.trim_start_matches('-');
    if digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit() {
        return Err(invalid().with_hint("numbers do not start with 0"));
    }
    let integral = !text.contains(['.', 'e', 'E']);
    if integral {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok(Value::from(u));
        }
    }
    // Rust's float parsing is correctly rounded, so the shortest form that
    // `Display` prints reads back to the same float (found by fuzzing:
    // serde_json's default parser is not).
    let float: f64 = text.parse().map_err(|_| invalid())?;
    serde_json::Number::from_f64(float)
        .map(Value::Number)
        .ok_or_else(|| invalid().with_hint("the number is too large"))
}
