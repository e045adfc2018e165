//! The syntax tree of an expression.
//!
//! Every node carries the byte [`Span`] of the source it came from, so errors
//! found while evaluating point at the right place. Spans are not part of a
//! node's identity: two trees that print the same are equal, whatever source
//! they were parsed from.

use serde_json::Value;

use super::error::Span;

/// One node of the tree with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
}

/// What a node is.
///
/// Invariant kept by the parser and the evaluator: an `Array` or `Object`
/// node holds at least one element that is not a literal (all-literal ones are
/// folded into one `Literal`), so a literal value has one representation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A JSON value.
    Literal(Value),
    /// A root name, e.g. `config` in `config.x`.
    Variable(String),
    /// `base.name` (the name may be digits: `list.0`).
    Property(Box<Node>, String),
    /// `base[key]`.
    Index(Box<Node>, Box<Node>),
    /// `base.*` followed by steps applied to every element.
    Wildcard(Box<Node>, Vec<Step>),
    /// `!x` or `-x`.
    Unary(UnaryOp, Box<Node>),
    /// `a op b`.
    Binary(BinaryOp, Box<Node>, Box<Node>),
    /// `cond ? then : else`.
    Ternary(Box<Node>, Box<Node>, Box<Node>),
    /// `name(args)`.
    Call(String, Vec<Arg>),
    /// `[a, b]` with at least one non-literal element.
    Array(Vec<Node>),
    /// `{"k": v}` with at least one non-literal value.
    Object(Vec<(String, Node)>),
}

/// One access applied to each element after a wildcard.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.name`
    Property(String),
    /// `[key]`
    Index(Node),
}

/// A call argument, possibly spread (`list...`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    pub(crate) value: Node,
    pub(crate) spread: bool,
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
}

/// Infix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinaryOp {
    /// Binding strength: higher binds tighter. All binary operators are
    /// left-associative, as in Testkube.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::And | BinaryOp::Or => 1,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 2,
            BinaryOp::Add | BinaryOp::Sub => 3,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 4,
            BinaryOp::Pow => 5,
        }
    }

    /// The canonical spelling.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "**",
        }
    }

    pub(crate) fn is_comparison(self) -> bool {
        self.precedence() == 2
    }
}

/// Precedence of a ternary (loosest) and of prefix and postfix forms.
pub(crate) const TERNARY_PRECEDENCE: u8 = 0;
pub(crate) const UNARY_PRECEDENCE: u8 = 6;
pub(crate) const POSTFIX_PRECEDENCE: u8 = 7;

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.kind == other.kind
    }
}

impl Node {
    pub(crate) fn new(kind: Kind, span: Span) -> Node {
        Node { kind, span }
    }

    pub(crate) fn literal(value: Value, span: Span) -> Node {
        Node::new(Kind::Literal(value), span)
    }

    pub(crate) fn as_literal(&self) -> Option<&Value> {
        match &self.kind {
            Kind::Literal(v) => Some(v),
            _ => None,
        }
    }

    /// How tightly this node binds when printed, to decide on parentheses.
    pub(crate) fn precedence(&self) -> u8 {
        match &self.kind {
            Kind::Ternary(..) => TERNARY_PRECEDENCE,
            Kind::Binary(op, ..) => op.precedence(),
            Kind::Unary(..) => UNARY_PRECEDENCE,
            // A negative number prints with a leading `-`, like a prefix form.
            Kind::Literal(Value::Number(n)) if n.as_f64().is_some_and(|f| f.is_sign_negative()) => {
                UNARY_PRECEDENCE
            }
            _ => POSTFIX_PRECEDENCE,
        }
    }

    /// An array node, folded into a literal when every element is one.
    pub(crate) fn array(items: Vec<Node>, span: Span) -> Node {
        if items.iter().all(|n| n.as_literal().is_some()) {
            let values = items
                .into_iter()
                .filter_map(|n| match n.kind {
                    Kind::Literal(v) => Some(v),
                    _ => None,
                })
                .collect();
            Node::literal(Value::Array(values), span)
        } else {
            Node::new(Kind::Array(items), span)
        }
    }

    /// An object node, folded into a literal when every value is one.
    pub(crate) fn object(members: Vec<(String, Node)>, span: Span) -> Node {
        if members.iter().all(|(_, n)| n.as_literal().is_some()) {
            let mut map = serde_json::Map::new();
            for (key, node) in members {
                if let Kind::Literal(v) = node.kind {
                    map.insert(key, v);
                }
            }
            Node::literal(Value::Object(map), span)
        } else {
            Node::new(Kind::Object(members), span)
        }
    }

    /// The dotted name of a variable reference made only of names and
    /// constant keys, e.g. `["services", "db", "0", "ip"]` for
    /// `services.db[0].ip`; `None` when the chain has a computed part.
    pub(crate) fn static_path(&self) -> Option<Vec<String>> {
        match &self.kind {
            Kind::Variable(name) => Some(vec![name.clone()]),
            Kind::Property(base, name) => {
                let mut path = base.static_path()?;
                path.push(name.clone());
                Some(path)
            }
            Kind::Index(base, key) => {
                let segment = key.as_literal().and_then(path_segment)?;
                let mut path = base.static_path()?;
                path.push(segment);
                Some(path)
            }
            _ => None,
        }
    }

    /// Levels of the tree: 1 for a leaf.
    pub(crate) fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut child = |n: &Node| deepest = deepest.max(n.depth());
        match &self.kind {
            Kind::Literal(_) | Kind::Variable(_) => {}
            Kind::Property(base, _) => child(base),
            Kind::Index(base, key) => {
                child(base);
                child(key);
            }
            Kind::Wildcard(base, steps) => {
                child(base);
                for step in steps {
                    if let Step::Index(key) = step {
                        child(key);
                    }
                }
            }
            Kind::Unary(_, x) => child(x),
            Kind::Binary(_, a, b) => {
                child(a);
                child(b);
            }
            Kind::Ternary(c, a, b) => {
                child(c);
                child(a);
                child(b);
            }
            Kind::Call(_, args) => args.iter().for_each(|a| child(&a.value)),
            Kind::Array(items) => items.iter().for_each(&mut child),
            Kind::Object(members) => members.iter().for_each(|(_, n)| child(n)),
        }
        deepest + 1
    }

    /// Calls `f` on this node and every node below it, parents first.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        match &self.kind {
            Kind::Literal(_) | Kind::Variable(_) => {}
            Kind::Property(base, _) => base.visit(f),
            Kind::Index(base, key) => {
                base.visit(f);
                key.visit(f);
            }
            Kind::Wildcard(base, steps) => {
                base.visit(f);
                for step in steps {
                    if let Step::Index(key) = step {
                        key.visit(f);
                    }
                }
            }
            Kind::Unary(_, x) => x.visit(f),
            Kind::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Kind::Ternary(c, a, b) => {
                c.visit(f);
                a.visit(f);
                b.visit(f);
            }
            Kind::Call(_, args) => args.iter().for_each(|a| a.value.visit(f)),
            Kind::Array(items) => items.iter().for_each(|n| n.visit(f)),
            Kind::Object(members) => members.iter().for_each(|(_, n)| n.visit(f)),
        }
    }
}

/// A literal key usable as one segment of a dotted variable name: a string
/// made of name characters, or a non-negative integer.
pub(crate) fn path_segment(key: &Value) -> Option<String> {
    match key {
        Value::String(s) if is_name(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|i| i.to_string()),
        _ => None,
    }
}

/// `[A-Za-z0-9_]+`: what may follow a `.` in an access.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
