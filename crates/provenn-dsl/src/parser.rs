//! Recursive-descent parser: tokens → [`Stmt`]s.
use crate::ast::{BinOp, DomainItem, Expr, Stmt};
use crate::error::{DslError, Span};
use crate::lexer::{lex, Tok, Token};

const KEYWORDS: &[&str] = &[
    "forall", "in", "and", "or", "not", "if", "then", "else", "for", "true", "false", "const",
    "except",
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting accepted (guards the recursion against pathological input).
const MAX_DEPTH: usize = 150;
/// Longest operator chain (plus nesting) accepted; the lowering recurses once per link.
const MAX_CHAIN: usize = 400;

/// Parses a constraint file.
pub fn parse(src: &str) -> Result<Vec<Stmt>, DslError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    loop {
        while p.eat_sym(";") {}
        if p.peek().tok == Tok::Eof {
            break;
        }
        out.push(p.stmt()?);
        if !(p.eat_sym(";") || p.peek().tok == Tok::Eof || p.peek().span.line > p.prev_line()) {
            return Err(p.error(
                "unexpected text after a complete constraint",
                "`;` or a new line",
            ));
        }
    }
    Ok(out)
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Ident(s) | Tok::Num(s) => s.clone(),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Sym(s) => s.to_string(),
        Tok::Eof => "end of input".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }
    fn prev_line(&self) -> usize {
        self.toks[self.pos.saturating_sub(1)].span.line
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn error(&self, message: &str, expected: &str) -> DslError {
        let t = self.peek();
        DslError::new(t.span, message, expected, &tok_text(&t.tok))
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Sym(x) if *x == s)
    }
    fn is_kw(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(x) if x == s)
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn eat_kw(&mut self, s: &str) -> bool {
        if self.is_kw(s) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_sym(&mut self, s: &str) -> Result<Span, DslError> {
        if self.is_sym(s) {
            Ok(self.bump().span)
        } else {
            Err(self.error(&format!("missing `{s}`"), &format!("`{s}`")))
        }
    }
    fn expect_kw(&mut self, s: &str) -> Result<(), DslError> {
        if self.eat_kw(s) {
            Ok(())
        } else {
            Err(self.error(&format!("missing `{s}`"), &format!("`{s}`")))
        }
    }
    fn ident(&mut self, what: &str) -> Result<(String, Span), DslError> {
        match &self.peek().tok {
            Tok::Ident(s) if !KEYWORDS.contains(&s.as_str()) => {
                let t = self.bump();
                Ok((s_of(&t.tok), t.span))
            }
            _ => Err(self.error(&format!("expected {what}"), what)),
        }
    }

    fn stmt(&mut self) -> Result<Stmt, DslError> {
        let span = self.peek().span;
        if self.eat_kw("const") {
            let (name, _) = self.ident("a constant name")?;
            self.expect_sym("=")?;
            let e = self.expr()?;
            return Ok(Stmt::Const(name, e, span));
        }
        let mut vars = Vec::new();
        let mut domain = Vec::new();
        if self.eat_kw("forall") {
            vars.push(self.ident("a variable name such as `x`")?.0);
            while self.eat_sym(",") {
                vars.push(self.ident("a second variable name such as `x2`")?.0);
            }
            if self.eat_kw("in") {
                self.expect_sym("[")?;
                loop {
                    let (feature, fspan) = self.field_name()?;
                    self.expect_sym(":")?;
                    let lo = self.additive()?;
                    self.expect_sym("..")?;
                    let hi = self.additive()?;
                    domain.push(DomainItem {
                        feature,
                        lo,
                        hi,
                        span: fspan,
                    });
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym("]")?;
            }
            self.expect_sym(":")?;
        }
        let body = self.expr()?;
        Ok(Stmt::Constraint {
            vars,
            domain,
            body,
            span,
        })
    }

    fn field_name(&mut self) -> Result<(String, Span), DslError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Ident(s) => {
                self.bump();
                Ok((s, t.span))
            }
            Tok::Str(s) => {
                self.bump();
                Ok((s, t.span))
            }
            _ => Err(self.error(
                "expected a feature or output name",
                "a name or a quoted name",
            )),
        }
    }

    /// Entry point for formulas and terms.
    pub fn expr(&mut self) -> Result<Expr, DslError> {
        self.enter()?;
        let r = self.iff();
        self.depth -= 1;
        r
    }

    /// Left-associative chains build trees as deep as they are long; bound them like nesting.
    fn chain(&self, links: &mut usize) -> Result<(), DslError> {
        *links += 1;
        if self.depth + *links > MAX_CHAIN {
            return Err(self.error(
                "expression too long",
                &format!("at most {MAX_CHAIN} operators in a chain (use sum(...) for long sums)"),
            ));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), DslError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(self.error(
                "expression nested too deeply",
                &format!("at most {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn iff(&mut self) -> Result<Expr, DslError> {
        let mut links = 0usize;
        let mut l = self.implies()?;
        while self.is_sym("<=>") {
            let s = self.bump().span;
            self.chain(&mut links)?;
            let r = self.implies()?;
            l = Expr::Binary(BinOp::Iff, Box::new(l), Box::new(r), s);
        }
        Ok(l)
    }

    fn implies(&mut self) -> Result<Expr, DslError> {
        let l = self.or()?;
        if self.is_sym("=>") {
            let s = self.bump().span;
            self.enter()?;
            let r = self.implies(); // right-associative
            self.depth -= 1;
            let r = r?;
            return Ok(Expr::Binary(BinOp::Implies, Box::new(l), Box::new(r), s));
        }
        Ok(l)
    }

    fn or(&mut self) -> Result<Expr, DslError> {
        let mut links = 0usize;
        let mut l = self.and()?;
        while self.is_kw("or") {
            let s = self.bump().span;
            self.chain(&mut links)?;
            let r = self.and()?;
            l = Expr::Binary(BinOp::Or, Box::new(l), Box::new(r), s);
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, DslError> {
        let mut links = 0usize;
        let mut l = self.not()?;
        while self.is_kw("and") {
            let s = self.bump().span;
            self.chain(&mut links)?;
            let r = self.not()?;
            l = Expr::Binary(BinOp::And, Box::new(l), Box::new(r), s);
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, DslError> {
        if self.is_kw("not") {
            let s = self.bump().span;
            self.enter()?;
            let e = self.not();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e?), s));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, DslError> {
        let l = self.additive()?;
        let op = match &self.peek().tok {
            Tok::Sym("<") => BinOp::Lt,
            Tok::Sym("<=") => BinOp::Le,
            Tok::Sym("==") => BinOp::Eq,
            Tok::Sym("!=") => BinOp::Ne,
            Tok::Sym(">=") => BinOp::Ge,
            Tok::Sym(">") => BinOp::Gt,
            Tok::Sym("=") => return Err(self.error("`=` is not a comparison", "`==` to compare")),
            Tok::Ident(k) if k == "in" => {
                let s = self.bump().span;
                let r = self.additive()?;
                return Ok(Expr::In(Box::new(l), Box::new(r), s));
            }
            _ => return Ok(l),
        };
        let s = self.bump().span;
        let r = self.additive()?;
        if matches!(
            &self.peek().tok,
            Tok::Sym("<" | "<=" | "==" | "!=" | ">=" | ">")
        ) {
            return Err(self.error(
                "chained comparisons are ambiguous",
                "`and` between two comparisons",
            ));
        }
        Ok(Expr::Binary(op, Box::new(l), Box::new(r), s))
    }

    fn additive(&mut self) -> Result<Expr, DslError> {
        let mut links = 0usize;
        let mut l = self.multiplicative()?;
        loop {
            let op = if self.is_sym("+") {
                BinOp::Add
            } else if self.is_sym("-") {
                BinOp::Sub
            } else {
                return Ok(l);
            };
            let s = self.bump().span;
            self.chain(&mut links)?;
            let r = self.multiplicative()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r), s);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, DslError> {
        let mut links = 0usize;
        let mut l = self.unary()?;
        loop {
            let op = if self.is_sym("*") {
                BinOp::Mul
            } else if self.is_sym("/") {
                BinOp::Div
            } else {
                return Ok(l);
            };
            let s = self.bump().span;
            self.chain(&mut links)?;
            let r = self.unary()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r), s);
        }
    }

    fn unary(&mut self) -> Result<Expr, DslError> {
        if self.is_sym("-") || self.is_sym("+") {
            let neg = self.is_sym("-");
            let s = self.bump().span;
            self.enter()?;
            let e = self.unary();
            self.depth -= 1;
            return Ok(if neg { Expr::Neg(Box::new(e?), s) } else { e? });
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, DslError> {
        let base = self.postfix()?;
        if self.is_sym("^") {
            let s = self.bump().span;
            self.enter()?;
            let e = self.unary();
            self.depth -= 1;
            return Ok(Expr::Binary(BinOp::Pow, Box::new(base), Box::new(e?), s));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, DslError> {
        let mut e = self.primary()?;
        loop {
            if self.is_sym(".") {
                let s = self.bump().span;
                let (name, _) = self.field_name()?;
                e = Expr::Field(Box::new(e), name, s);
            } else if self.is_sym("[") {
                let s = self.bump().span;
                let mut idx = vec![self.additive()?];
                while self.eat_sym(",") {
                    idx.push(self.additive()?);
                }
                self.expect_sym("]")?;
                e = Expr::Index(Box::new(e), idx, s);
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, DslError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Num(n) => {
                self.bump();
                Ok(Expr::Num(n, t.span))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Str(s, t.span))
            }
            Tok::Sym("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                self.bump();
                if self.eat_sym("]") {
                    return Ok(Expr::List(vec![], t.span));
                }
                let first = self.expr()?;
                if self.eat_kw("for") {
                    let (v, _) = self.ident("a loop variable")?;
                    self.expect_kw("in")?;
                    let a = self.additive()?;
                    self.expect_sym("..")?;
                    let b = self.additive()?;
                    self.expect_sym("]")?;
                    return Ok(Expr::Comprehension(
                        Box::new(first),
                        v,
                        Box::new(a),
                        Box::new(b),
                        t.span,
                    ));
                }
                let mut items = vec![first];
                while self.eat_sym(",") {
                    items.push(self.expr()?);
                }
                self.expect_sym("]")?;
                Ok(Expr::List(items, t.span))
            }
            Tok::Sym("{") => {
                self.bump();
                let mut items = vec![];
                if !self.is_sym("}") {
                    items.push(self.additive()?);
                    while self.eat_sym(",") {
                        items.push(self.additive()?);
                    }
                }
                self.expect_sym("}")?;
                Ok(Expr::Set(items, t.span))
            }
            Tok::Ident(ref k) if k == "true" || k == "false" => {
                self.bump();
                Ok(Expr::Bool(k == "true", t.span))
            }
            Tok::Ident(ref k) if k == "if" => {
                self.bump();
                let c = self.expr()?;
                self.expect_kw("then")?;
                let a = self.expr()?;
                self.expect_kw("else")?;
                let b = self.expr()?;
                Ok(Expr::Ite(Box::new(c), Box::new(a), Box::new(b), t.span))
            }
            Tok::Ident(ref k) if k == "same" && self.peek_at(1) == &Tok::Sym("(") => {
                self.bump();
                self.bump();
                let (a, _) = self.ident("the first variable")?;
                self.expect_sym(",")?;
                let (b, _) = self.ident("the second variable")?;
                let mut except = vec![];
                if self.eat_sym(",") {
                    self.expect_kw("except")?;
                    self.expect_sym("[")?;
                    loop {
                        except.push(self.field_name()?);
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym("]")?;
                }
                self.expect_sym(")")?;
                Ok(Expr::Same(a, b, except, t.span))
            }
            Tok::Ident(ref name) if !KEYWORDS.contains(&name.as_str()) => {
                self.bump();
                if !self.is_sym("(") {
                    return Ok(Expr::Name(name.clone(), t.span));
                }
                self.bump();
                // `sum(i in 0..10: body)`, `min(...)`, `max(...)` over a range
                if matches!(self.peek_at(0), Tok::Ident(_))
                    && self.peek_at(1) == &Tok::Ident("in".into())
                    && matches!(name.as_str(), "sum" | "min" | "max")
                {
                    let (v, _) = self.ident("a loop variable")?;
                    self.expect_kw("in")?;
                    let a = self.additive()?;
                    self.expect_sym("..")?;
                    let b = self.additive()?;
                    self.expect_sym(":")?;
                    let body = self.expr()?;
                    self.expect_sym(")")?;
                    return Ok(Expr::Reduce(
                        name.clone(),
                        v,
                        Box::new(a),
                        Box::new(b),
                        Box::new(body),
                        t.span,
                    ));
                }
                let mut args = vec![];
                if !self.is_sym(")") {
                    args.push(self.expr()?);
                    while self.eat_sym(",") {
                        args.push(self.expr()?);
                    }
                }
                self.expect_sym(")")?;
                Ok(Expr::Call(name.clone(), args, t.span))
            }
            _ => Err(self.error(
                "expected a term or a formula",
                "a number, a name, `(`, `[`, `if`, `not`",
            )),
        }
    }
}

fn s_of(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => s.clone(),
        _ => String::new(),
    }
}
