//! Syntax tree of constraint text (untyped; names are resolved when lowering to the IR).
use crate::error::Span;

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^` (integer exponent)
    Pow,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `and`
    And,
    /// `or`
    Or,
    /// `=>`
    Implies,
    /// `<=>`
    Iff,
}

impl BinOp {
    /// Source text of the operator.
    pub fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Ge => ">=",
            BinOp::Gt => ">",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Implies => "=>",
            BinOp::Iff => "<=>",
        }
    }
}

/// An expression (Boolean or numeric; typed when lowered).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Number literal as written.
    Num(String, Span),
    /// String literal.
    Str(String, Span),
    /// `true` / `false`.
    Bool(bool, Span),
    /// A name: variable, constant, output/class name.
    Name(String, Span),
    /// `base.field` (field may be a quoted string).
    Field(Box<Expr>, String, Span),
    /// `base[i]` or `base[r, c]`.
    Index(Box<Expr>, Vec<Expr>, Span),
    /// `f(args)`.
    Call(String, Vec<Expr>, Span),
    /// `-e`.
    Neg(Box<Expr>, Span),
    /// `not e`.
    Not(Box<Expr>, Span),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
    /// `if c then a else b`.
    Ite(Box<Expr>, Box<Expr>, Box<Expr>, Span),
    /// `[a, b, ...]`.
    List(Vec<Expr>, Span),
    /// `[body for v in a..b]`.
    Comprehension(Box<Expr>, String, Box<Expr>, Box<Expr>, Span),
    /// `{a, b}`.
    Set(Vec<Expr>, Span),
    /// `e in {…}`.
    In(Box<Expr>, Box<Expr>, Span),
    /// `sum(v in a..b: body)` (also `min`/`max` over a range).
    Reduce(String, String, Box<Expr>, Box<Expr>, Box<Expr>, Span),
    /// `same(x, x2, except [f, …])`.
    Same(String, String, Vec<(String, Span)>, Span),
}

impl Expr {
    /// Where the expression starts.
    pub fn span(&self) -> Span {
        match self {
            Expr::Num(_, s)
            | Expr::Str(_, s)
            | Expr::Bool(_, s)
            | Expr::Name(_, s)
            | Expr::Field(_, _, s)
            | Expr::Index(_, _, s)
            | Expr::Call(_, _, s)
            | Expr::Neg(_, s)
            | Expr::Not(_, s)
            | Expr::Binary(_, _, _, s)
            | Expr::Ite(_, _, _, s)
            | Expr::List(_, s)
            | Expr::Comprehension(_, _, _, _, s)
            | Expr::Set(_, s)
            | Expr::In(_, _, s)
            | Expr::Reduce(_, _, _, _, _, s)
            | Expr::Same(_, _, _, s) => *s,
        }
    }
}

/// A per-feature domain override `name: lo .. hi`.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainItem {
    /// Feature name.
    pub feature: String,
    /// Lower bound.
    pub lo: Expr,
    /// Upper bound.
    pub hi: Expr,
    /// Position.
    pub span: Span,
}

/// A top-level statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `const name = expr`.
    Const(String, Expr, Span),
    /// `forall x[, x2] [in [f: lo..hi, ...]]: body`, or a bare body.
    Constraint {
        /// Quantified input variables (`x`, or `x, x2` for two-copy constraints).
        vars: Vec<String>,
        /// Domain overrides.
        domain: Vec<DomainItem>,
        /// The formula.
        body: Expr,
        /// Position.
        span: Span,
    },
}
