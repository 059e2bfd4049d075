//! Name resolution and typing: syntax tree → IR, against a schema.
use std::collections::HashMap;

use num_traits::{One, Signed, Zero};
use provenn_data::{Dataset, FeatureKind, Schema};

use crate::ast::{BinOp, Expr as Ast, Stmt};
use crate::error::{closest, DslError, Span};
use crate::ir::{
    q_from_f64, q_int, q_to_int, Cmp, Constraint, Expr, Formula, Func, Linear, Side, Var, Q,
};

/// What names mean: inputs (with raw ranges for unit conversion), one-hot groups, outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Bindings {
    inputs: Vec<InputBinding>,
    groups: Vec<Group>,
    outputs: Vec<String>,
}

/// A one-hot group: name, `(column, category)` indicators, the dropped category.
type Group = (String, Vec<(usize, String)>, Option<String>);

#[derive(Debug, Clone, PartialEq)]
struct InputBinding {
    name: String,
    /// `raw = offset + scale · scaled` (identity when the data is not scaled).
    offset: f64,
    scale: f64,
    /// Domain of the scaled value.
    lo: f64,
    hi: f64,
}

impl Bindings {
    /// Names of a dataset: raw units map to its scaled space through its min–max transform.
    pub fn from_dataset(d: &Dataset) -> Self {
        Self::from_schema(
            &d.schema,
            d.scaler.as_ref().map(|s| (s.min.clone(), s.max.clone())),
        )
    }

    /// Names of a schema; `scaling = Some((min, max))` when inputs are min–max scaled.
    pub fn from_schema(schema: &Schema, scaling: Option<(Vec<f64>, Vec<f64>)>) -> Self {
        let inputs = schema
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| match &scaling {
                Some((mn, mx)) => InputBinding {
                    name: f.name.clone(),
                    offset: mn[j],
                    scale: mx[j] - mn[j],
                    lo: 0.0,
                    hi: 1.0,
                },
                None => InputBinding {
                    name: f.name.clone(),
                    offset: 0.0,
                    scale: 1.0,
                    lo: f.raw_min,
                    hi: f.raw_max,
                },
            })
            .collect();
        let mut groups: Vec<Group> = schema
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.columns.clone(), g.dropped.clone()))
            .collect();
        for (j, f) in schema.features.iter().enumerate() {
            if let FeatureKind::OneHot { group, category } = &f.kind {
                if !groups.iter().any(|g| &g.0 == group) {
                    groups.push((group.clone(), vec![], None));
                }
                let g = groups.iter_mut().find(|g| &g.0 == group).expect("inserted");
                if !g.1.iter().any(|(c, _)| *c == j) {
                    g.1.push((j, category.clone()));
                }
            }
        }
        Bindings {
            inputs,
            groups,
            outputs: schema.target_names.clone(),
        }
    }

    /// Anonymous inputs `x[0..n]` in `domain` and outputs `y[0..m]` (e.g. for VNN-LIB).
    pub fn anonymous(domain: &[(f64, f64)], n_outputs: usize) -> Self {
        Bindings {
            inputs: domain
                .iter()
                .enumerate()
                .map(|(j, (l, h))| InputBinding {
                    name: format!("x{j}"),
                    offset: 0.0,
                    scale: 1.0,
                    lo: *l,
                    hi: *h,
                })
                .collect(),
            groups: vec![],
            outputs: (0..n_outputs).map(|k| format!("y{k}")).collect(),
        }
    }

    /// Number of inputs.
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }
}

/// A numeric term during lowering.
#[derive(Debug, Clone)]
enum Num {
    /// Linear (coefficients may depend on inputs).
    Lin(Linear),
    /// `base + Σ wᵢ·[φᵢ]` (from `if φ then a else b` with constant branches).
    Pb(Q, Vec<(Q, Formula)>),
    /// Guarded pieces, guards exclusive and exhaustive.
    Pw(Vec<(Formula, Linear)>),
}

#[derive(Debug, Clone)]
enum Val {
    Bool(Formula),
    Num(Num),
    Vector(Vec<Num>),
    Formulas(Vec<Formula>),
    Argmax(Vec<Linear>),
    Category(Side, usize),
    Str(String),
    Set(Vec<Val>),
    Norm(Vec<Num>),
    Copy(Side, bool),
}

struct Lowerer<'a> {
    b: &'a Bindings,
    consts: HashMap<String, Q>,
    loops: HashMap<String, Q>,
    vars: Vec<String>,
}

type R<T> = Result<T, DslError>;

fn err(span: Span, msg: impl Into<String>, expected: impl Into<String>, found: &str) -> DslError {
    DslError::new(span, msg, expected, found)
}

fn lin_const(q: Q) -> Linear {
    Linear::constant(Expr::Const(q))
}

impl Num {
    fn into_pieces(self) -> Vec<(Formula, Linear)> {
        match self {
            Num::Lin(l) => vec![(Formula::True, l)],
            Num::Pw(v) => v,
            Num::Pb(base, ind) => {
                let mut pieces = vec![(Formula::True, lin_const(base))];
                for (w, f) in ind {
                    let mut next = Vec::new();
                    for (g, l) in pieces {
                        next.push((
                            Formula::and(vec![g.clone(), f.clone()]),
                            l.clone().plus(lin_const(w.clone())),
                        ));
                        next.push((Formula::and(vec![g, f.clone().negate()]), l));
                    }
                    pieces = next;
                }
                pieces
            }
        }
    }
    fn negated(self) -> Num {
        match self {
            Num::Lin(l) => Num::Lin(l.negated()),
            Num::Pb(b, ind) => Num::Pb(-b, ind.into_iter().map(|(w, f)| (-w, f)).collect()),
            Num::Pw(v) => Num::Pw(v.into_iter().map(|(g, l)| (g, l.negated())).collect()),
        }
    }
    fn as_const(&self) -> Option<Q> {
        match self {
            Num::Lin(l) if l.terms.is_empty() => l.constant.as_const().cloned(),
            _ => None,
        }
    }
}

const PIECE_LIMIT: usize = 64;

fn add(a: Num, b: Num, span: Span) -> R<Num> {
    Ok(match (a, b) {
        (Num::Lin(x), Num::Lin(y)) => Num::Lin(x.plus(y)),
        (Num::Pb(b1, mut i1), Num::Pb(b2, i2)) => {
            i1.extend(i2);
            Num::Pb(b1 + b2, i1)
        }
        (Num::Pb(b, i), Num::Lin(l)) | (Num::Lin(l), Num::Pb(b, i))
            if l.terms.is_empty() && l.constant.as_const().is_some() =>
        {
            Num::Pb(b + l.constant.as_const().expect("checked").clone(), i)
        }
        (a, b) => {
            let (pa, pb) = (a.into_pieces(), b.into_pieces());
            if pa.len() * pb.len() > PIECE_LIMIT {
                return Err(err(
                    span,
                    "this sum of conditional terms has too many cases",
                    format!("at most {PIECE_LIMIT} combinations"),
                    "",
                ));
            }
            let mut out = Vec::new();
            for (g1, l1) in &pa {
                for (g2, l2) in &pb {
                    let g = Formula::and(vec![g1.clone(), g2.clone()]);
                    if g != Formula::False {
                        out.push((g, l1.clone().plus(l2.clone())));
                    }
                }
            }
            Num::Pw(out)
        }
    })
}

fn scale(a: Num, k: &Expr) -> Num {
    match a {
        Num::Lin(l) => Num::Lin(l.scale(k)),
        Num::Pb(b, ind) if k.as_const().is_some() => {
            let c = k.as_const().expect("checked").clone();
            Num::Pb(b * &c, ind.into_iter().map(|(w, f)| (w * &c, f)).collect())
        }
        other => Num::Pw(
            other
                .into_pieces()
                .into_iter()
                .map(|(g, l)| (g, l.scale(k)))
                .collect(),
        ),
    }
}

fn compare(a: Num, op: Cmp, span: Span) -> R<Formula> {
    Ok(match a {
        Num::Lin(l) => Formula::atom(l, op),
        Num::Pb(base, ind) => {
            if ind.is_empty() {
                Formula::atom(lin_const(base), op)
            } else {
                Formula::Count {
                    terms: ind,
                    cmp: op,
                    bound: -base,
                }
            }
        }
        Num::Pw(v) => {
            let _ = span;
            Formula::or(
                v.into_iter()
                    .map(|(g, l)| Formula::and(vec![g, Formula::atom(l, op)]))
                    .collect(),
            )
        }
    })
}

fn cmp_of(op: BinOp) -> Option<Cmp> {
    Some(match op {
        BinOp::Lt => Cmp::Lt,
        BinOp::Le => Cmp::Le,
        BinOp::Eq => Cmp::Eq,
        BinOp::Ge => Cmp::Ge,
        BinOp::Gt => Cmp::Gt,
        _ => return None,
    })
}

/// `y_k` is the arg-max (first index on ties): `y_k > y_j` for `j < k`, `y_k ≥ y_j` for `j > k`.
fn argmax_is(ys: &[Linear], k: usize) -> Formula {
    Formula::and(
        (0..ys.len())
            .filter(|&j| j != k)
            .map(|j| {
                Formula::atom(
                    ys[k].clone().plus(ys[j].clone().negated()),
                    if j < k { Cmp::Gt } else { Cmp::Ge },
                )
            })
            .collect(),
    )
}

impl Lowerer<'_> {
    fn side_of(&self, name: &str) -> Option<(Side, bool)> {
        let pos = self.vars.iter().position(|v| v == name);
        match (pos, name) {
            (Some(0), _) => Some((Side::First, true)),
            (Some(1), _) => Some((Side::Second, true)),
            _ => {
                // outputs: `y` for the first variable, `y2` (or `y` + suffix of x2) for the second
                let first = self.vars.first().map(String::as_str).unwrap_or("x");
                let second = self.vars.get(1).map(String::as_str);
                if name == "y" {
                    return Some((Side::First, false));
                }
                if let Some(s) = second {
                    let suffix = s.strip_prefix(first).unwrap_or("2");
                    if name == format!("y{suffix}") || name == "y2" {
                        return Some((Side::Second, false));
                    }
                }
                if self.vars.is_empty() && name == "x" {
                    return Some((Side::First, true));
                }
                None
            }
        }
    }

    fn input_var(&self, side: Side, j: usize, raw: bool) -> Linear {
        let ib = &self.b.inputs[j];
        let scaled = Linear::var(Var::Input(side, j), Expr::Const(Q::one()));
        if raw && (ib.offset != 0.0 || ib.scale != 1.0) {
            let s = q_from_f64(ib.scale).unwrap_or_else(Q::one);
            let o = q_from_f64(ib.offset).unwrap_or_else(Q::zero);
            scaled.scale(&Expr::Const(s)).plus(lin_const(o))
        } else {
            scaled
        }
    }

    fn copy_vector(&self, side: Side, input: bool) -> Vec<Num> {
        if input {
            (0..self.b.inputs.len())
                .map(|j| Num::Lin(self.input_var(side, j, true)))
                .collect()
        } else {
            (0..self.b.outputs.len())
                .map(|k| Num::Lin(Linear::var(Var::Output(side, k), Expr::Const(Q::one()))))
                .collect()
        }
    }

    fn int(&mut self, e: &Ast) -> R<i64> {
        match self.value(e)? {
            Val::Num(n) => n
                .as_const()
                .and_then(|q| q_to_int(&q))
                .ok_or_else(|| err(e.span(), "expected an integer constant", "an integer", "")),
            _ => Err(err(
                e.span(),
                "expected an integer constant",
                "an integer",
                "",
            )),
        }
    }

    fn num(&mut self, e: &Ast) -> R<Num> {
        match self.value(e)? {
            Val::Num(n) => Ok(n),
            Val::Bool(_) => Err(err(
                e.span(),
                "a formula is used where a number is expected",
                "a numeric term",
                "",
            )),
            _ => Err(err(
                e.span(),
                "expected a number",
                "a scalar term (use an index or a field)",
                "",
            )),
        }
    }

    fn formula(&mut self, e: &Ast) -> R<Formula> {
        match self.value(e)? {
            Val::Bool(f) => Ok(f),
            _ => Err(err(
                e.span(),
                "expected a formula",
                "a comparison or a Boolean combination",
                "",
            )),
        }
    }

    fn formulas(&mut self, e: &Ast) -> R<Vec<Formula>> {
        match self.value(e)? {
            Val::Formulas(v) => Ok(v),
            Val::Bool(f) => Ok(vec![f]),
            _ => Err(err(
                e.span(),
                "expected a list of formulas",
                "`[φ1, φ2, ...]` or `[φ for i in a..b]`",
                "",
            )),
        }
    }

    fn range(&mut self, a: &Ast, b: &Ast) -> R<(i64, i64)> {
        let (lo, hi) = (self.int(a)?, self.int(b)?);
        if hi < lo || hi.checked_sub(lo).is_none_or(|n| n > 100_000) {
            return Err(err(
                a.span(),
                "bad range",
                "a range `a..b` with a ≤ b (end excluded)",
                "",
            ));
        }
        Ok((lo, hi))
    }

    fn with_loop<T>(&mut self, v: &str, i: i64, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        let prev = self.loops.insert(v.to_string(), q_int(i));
        let r = f(self);
        match prev {
            Some(p) => self.loops.insert(v.to_string(), p),
            None => self.loops.remove(v),
        };
        r
    }

    fn value(&mut self, e: &Ast) -> R<Val> {
        match e {
            Ast::Num(s, sp) => {
                let q =
                    parse_number(s).ok_or_else(|| err(*sp, "bad number", "a decimal number", s))?;
                Ok(Val::Num(Num::Lin(lin_const(q))))
            }
            Ast::Str(s, _) => Ok(Val::Str(s.clone())),
            Ast::Bool(b, _) => Ok(Val::Bool(if *b { Formula::True } else { Formula::False })),
            Ast::Name(n, sp) => {
                if let Some(q) = self.loops.get(n).or_else(|| self.consts.get(n)) {
                    return Ok(Val::Num(Num::Lin(lin_const(q.clone()))));
                }
                if n == "pi" {
                    return Ok(Val::Num(Num::Lin(lin_const(
                        q_from_f64(std::f64::consts::PI).expect("finite"),
                    ))));
                }
                if let Some((s, inp)) = self.side_of(n) {
                    return Ok(Val::Copy(s, inp));
                }
                Ok(Val::Str(n.clone())).and_then(|v| {
                    if self.b.outputs.iter().any(|o| o == n) {
                        Ok(v)
                    } else {
                        let mut cands: Vec<&str> = self.consts.keys().map(String::as_str).collect();
                        cands.extend(self.vars.iter().map(String::as_str));
                        cands.extend(self.b.outputs.iter().map(String::as_str));
                        cands.push("y");
                        Err(err(
                            *sp,
                            format!("unknown name `{n}`"),
                            "a variable, a constant or a class name",
                            n,
                        )
                        .suggest(closest(n, cands)))
                    }
                })
            }
            Ast::Field(base, field, sp) => {
                let (side, input) = match self.value(base)? {
                    Val::Copy(s, i) => (s, i),
                    _ => {
                        return Err(err(
                            *sp,
                            "fields are taken of `x`/`y` (or `x2`/`y2`)",
                            "`x.name` or `y.name`",
                            field,
                        ))
                    }
                };
                if input {
                    if let Some(j) = self.b.inputs.iter().position(|i| &i.name == field) {
                        return Ok(Val::Num(Num::Lin(self.input_var(side, j, true))));
                    }
                    if let Some(g) = self.b.groups.iter().position(|g| &g.0 == field) {
                        return Ok(Val::Category(side, g));
                    }
                    if let Some(j) = field
                        .strip_prefix('#')
                        .and_then(|s| s.parse::<usize>().ok())
                        .filter(|j| *j < self.b.inputs.len())
                    {
                        return Ok(Val::Num(Num::Lin(self.input_var(side, j, false))));
                    }
                    let cands = self
                        .b
                        .inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .chain(self.b.groups.iter().map(|g| g.0.as_str()));
                    Err(err(
                        *sp,
                        format!("unknown input `{field}`"),
                        "an input feature or a one-hot group of the schema",
                        field,
                    )
                    .suggest(closest(field, cands)))
                } else {
                    match self.b.outputs.iter().position(|o| o == field) {
                        Some(k) => Ok(Val::Num(Num::Lin(Linear::var(
                            Var::Output(side, k),
                            Expr::Const(Q::one()),
                        )))),
                        None => Err(err(
                            *sp,
                            format!("unknown output `{field}`"),
                            "an output (target) name",
                            field,
                        )
                        .suggest(closest(field, self.b.outputs.iter().map(String::as_str)))),
                    }
                }
            }
            Ast::Index(base, idx, sp) => {
                let (side, input) = match self.value(base)? {
                    Val::Copy(s, i) => (s, i),
                    _ => {
                        return Err(err(
                            *sp,
                            "only `x` and `y` can be indexed",
                            "`x[i]` or `y[i]`",
                            "",
                        ))
                    }
                };
                let n = if input {
                    self.b.inputs.len()
                } else {
                    self.b.outputs.len()
                };
                let k = match idx.as_slice() {
                    [i] => self.int(i)?,
                    [r, c] => {
                        let cols = (n as f64).sqrt() as i64;
                        if cols * cols != n as i64 {
                            return Err(err(
                                *sp,
                                "two indices need a square number of outputs",
                                "a single index",
                                "",
                            ));
                        }
                        let (r, c) = (self.int(r)?, self.int(c)?);
                        if r < 0 || r >= cols {
                            return Err(err(
                                *sp,
                                "row index out of range",
                                format!("0..{cols}"),
                                &r.to_string(),
                            ));
                        }
                        if c < 0 || c >= cols {
                            return Err(err(
                                *sp,
                                "column index out of range",
                                format!("0..{cols}"),
                                &c.to_string(),
                            ));
                        }
                        r * cols + c
                    }
                    _ => return Err(err(*sp, "too many indices", "one or two", "")),
                };
                if k < 0 || k as usize >= n {
                    return Err(err(
                        *sp,
                        "index out of range",
                        format!("0..{n}"),
                        &k.to_string(),
                    ));
                }
                let k = k as usize;
                // indices are in the scaled space for inputs (the printer's form)
                Ok(Val::Num(Num::Lin(if input {
                    self.input_var(side, k, false)
                } else {
                    Linear::var(Var::Output(side, k), Expr::Const(Q::one()))
                })))
            }
            Ast::Neg(a, sp) => match self.value(a)? {
                Val::Num(n) => Ok(Val::Num(n.negated())),
                Val::Vector(v) => Ok(Val::Vector(v.into_iter().map(Num::negated).collect())),
                Val::Copy(s, i) => Ok(Val::Vector(
                    self.copy_vector(s, i)
                        .into_iter()
                        .map(Num::negated)
                        .collect(),
                )),
                _ => Err(err(*sp, "cannot negate this", "a number or vector", "")),
            },
            Ast::Not(a, _) => Ok(Val::Bool(self.formula(a)?.negate())),
            Ast::Ite(c, a, b, sp) => {
                let cond = self.formula(c)?;
                match (self.value(a)?, self.value(b)?) {
                    (Val::Bool(fa), Val::Bool(fb)) => Ok(Val::Bool(Formula::or(vec![
                        Formula::and(vec![cond.clone(), fa]),
                        Formula::and(vec![cond.negate(), fb]),
                    ]))),
                    (Val::Num(na), Val::Num(nb)) => {
                        if let (Some(qa), Some(qb)) = (na.as_const(), nb.as_const()) {
                            return Ok(Val::Num(Num::Pb(qb.clone(), vec![(qa - qb, cond)])));
                        }
                        let mut pieces = Vec::new();
                        for (g, l) in na.into_pieces() {
                            pieces.push((Formula::and(vec![cond.clone(), g]), l));
                        }
                        for (g, l) in nb.into_pieces() {
                            pieces.push((Formula::and(vec![cond.clone().negate(), g]), l));
                        }
                        if pieces.len() > PIECE_LIMIT {
                            return Err(err(
                                *sp,
                                "conditional term has too many cases",
                                format!("at most {PIECE_LIMIT}"),
                                "",
                            ));
                        }
                        Ok(Val::Num(Num::Pw(pieces)))
                    }
                    _ => Err(err(
                        *sp,
                        "both branches of `if` must be numbers or both formulas",
                        "matching branch types",
                        "",
                    )),
                }
            }
            Ast::List(items, _) => {
                let vals: Vec<Val> = items.iter().map(|i| self.value(i)).collect::<R<_>>()?;
                if vals.iter().all(|v| matches!(v, Val::Bool(_))) {
                    Ok(Val::Formulas(
                        vals.into_iter()
                            .map(|v| {
                                if let Val::Bool(f) = v {
                                    f
                                } else {
                                    unreachable!()
                                }
                            })
                            .collect(),
                    ))
                } else if vals.iter().all(|v| matches!(v, Val::Num(_))) {
                    Ok(Val::Vector(
                        vals.into_iter()
                            .map(|v| {
                                if let Val::Num(n) = v {
                                    n
                                } else {
                                    unreachable!()
                                }
                            })
                            .collect(),
                    ))
                } else {
                    Err(err(
                        e.span(),
                        "a list must hold only formulas or only numbers",
                        "a homogeneous list",
                        "",
                    ))
                }
            }
            Ast::Comprehension(body, v, a, b, _) => {
                let (lo, hi) = self.range(a, b)?;
                let mut fs = Vec::new();
                let mut ns = Vec::new();
                for i in lo..hi {
                    match self.with_loop(v, i, |s| s.value(body))? {
                        Val::Bool(f) => fs.push(f),
                        Val::Num(n) => ns.push(n),
                        _ => {
                            return Err(err(
                                body.span(),
                                "a comprehension body must be a formula or a number",
                                "a formula or a number",
                                "",
                            ))
                        }
                    }
                }
                Ok(if ns.is_empty() {
                    Val::Formulas(fs)
                } else {
                    Val::Vector(ns)
                })
            }
            Ast::Set(items, _) => Ok(Val::Set(
                items.iter().map(|i| self.value(i)).collect::<R<_>>()?,
            )),
            Ast::In(a, b, sp) => self.membership(a, b, *sp),
            Ast::Reduce(f, v, a, b, body, sp) => {
                let (lo, hi) = self.range(a, b)?;
                let mut terms = Vec::new();
                for i in lo..hi {
                    terms.push(self.with_loop(v, i, |s| s.num(body))?);
                }
                self.reduce(f, terms, *sp)
            }
            Ast::Same(a, b, except, sp) => {
                let (sa, sb) = match (self.side_of(a), self.side_of(b)) {
                    (Some((s1, true)), Some((s2, true))) if s1 != s2 => (s1, s2),
                    _ => {
                        return Err(err(
                            *sp,
                            "`same` compares the two quantified inputs",
                            "`same(x, x2, except [...])`",
                            "",
                        ))
                    }
                };
                let mut skip = vec![false; self.b.inputs.len()];
                for (name, nsp) in except {
                    if let Some(j) = self.b.inputs.iter().position(|i| &i.name == name) {
                        skip[j] = true;
                    } else if let Some(g) = self.b.groups.iter().find(|g| &g.0 == name) {
                        for (j, _) in &g.1 {
                            skip[*j] = true;
                        }
                    } else {
                        let cands = self
                            .b
                            .inputs
                            .iter()
                            .map(|i| i.name.as_str())
                            .chain(self.b.groups.iter().map(|g| g.0.as_str()));
                        return Err(err(
                            *nsp,
                            format!("unknown input `{name}`"),
                            "an input feature or group",
                            name,
                        )
                        .suggest(closest(name, cands)));
                    }
                }
                Ok(Val::Bool(Formula::and(
                    (0..self.b.inputs.len())
                        .filter(|j| !skip[*j])
                        .map(|j| {
                            Formula::atom(
                                self.input_var(sa, j, false)
                                    .plus(self.input_var(sb, j, false).negated()),
                                Cmp::Eq,
                            )
                        })
                        .collect(),
                )))
            }
            Ast::Call(f, args, sp) => self.call(f, args, *sp),
            Ast::Binary(op, a, b, sp) => self.binary(*op, a, b, *sp),
        }
    }

    fn reduce(&mut self, f: &str, terms: Vec<Num>, sp: Span) -> R<Val> {
        match f {
            "sum" => {
                let mut acc = Num::Lin(Linear::default());
                for t in terms {
                    acc = add(acc, t, sp)?;
                }
                Ok(Val::Num(acc))
            }
            "max" | "min" => {
                let mut it = terms.into_iter();
                let mut acc = it
                    .next()
                    .ok_or_else(|| err(sp, "empty min/max", "at least one term", ""))?;
                for t in it {
                    let d = add(acc.clone(), t.clone().negated(), sp)?;
                    let ge = compare(d, Cmp::Ge, sp)?;
                    let (keep, other) = if f == "max" { (acc, t) } else { (t, acc) };
                    let mut pieces = Vec::new();
                    for (g, l) in keep.into_pieces() {
                        pieces.push((Formula::and(vec![ge.clone(), g]), l));
                    }
                    for (g, l) in other.into_pieces() {
                        pieces.push((Formula::and(vec![ge.clone().negate(), g]), l));
                    }
                    if pieces.len() > PIECE_LIMIT {
                        return Err(err(
                            sp,
                            "min/max has too many cases",
                            format!("at most {PIECE_LIMIT}"),
                            "",
                        ));
                    }
                    acc = Num::Pw(pieces);
                }
                Ok(Val::Num(acc))
            }
            _ => Err(err(
                sp,
                format!("`{f}` cannot range over a loop"),
                "sum, min or max",
                f,
            )),
        }
    }

    fn vector(&mut self, e: &Ast) -> R<Vec<Num>> {
        match self.value(e)? {
            Val::Vector(v) => Ok(v),
            Val::Copy(s, i) => Ok(self.copy_vector(s, i)),
            Val::Num(n) => Ok(vec![n]),
            _ => Err(err(
                e.span(),
                "expected a vector",
                "`y`, `x - x2`, or a list of numbers",
                "",
            )),
        }
    }

    fn call(&mut self, f: &str, args: &[Ast], sp: Span) -> R<Val> {
        let arity = |n: usize| -> R<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(err(
                    sp,
                    format!("`{f}` takes {n} argument(s), got {}", args.len()),
                    format!("{n} argument(s)"),
                    f,
                ))
            }
        };
        match f {
            "sum" => {
                arity(1)?;
                let v = self.vector(&args[0])?;
                self.reduce("sum", v, sp)
            }
            "min" | "max" => {
                let terms = if args.len() == 1 {
                    self.vector(&args[0])?
                } else {
                    args.iter().map(|a| self.num(a)).collect::<R<_>>()?
                };
                self.reduce(f, terms, sp)
            }
            "abs" => {
                arity(1)?;
                match self.value(&args[0])? {
                    Val::Num(n) => Ok(Val::Num(abs(n, sp)?)),
                    Val::Vector(v) => Ok(Val::Vector(
                        v.into_iter().map(|n| abs(n, sp)).collect::<R<_>>()?,
                    )),
                    Val::Copy(s, i) => Ok(Val::Vector(
                        self.copy_vector(s, i)
                            .into_iter()
                            .map(|n| abs(n, sp))
                            .collect::<R<_>>()?,
                    )),
                    _ => Err(err(
                        sp,
                        "`abs` needs a number or a vector",
                        "a numeric term",
                        "",
                    )),
                }
            }
            "linf" => {
                arity(1)?;
                Ok(Val::Norm(self.vector(&args[0])?))
            }
            "argmax" => {
                arity(1)?;
                let v = self.vector(&args[0])?;
                let lins = v
                    .into_iter()
                    .map(|n| match n {
                        Num::Lin(l) => Ok(l),
                        _ => Err(err(
                            sp,
                            "argmax of conditional terms is not supported",
                            "linear terms",
                            "",
                        )),
                    })
                    .collect::<R<_>>()?;
                Ok(Val::Argmax(lins))
            }
            "exactly" | "at_most" | "at_least" => {
                arity(2)?;
                let k = self.int(&args[0])?;
                let fs = self.formulas(&args[1])?;
                let cmp = match f {
                    "exactly" => Cmp::Eq,
                    "at_most" => Cmp::Le,
                    _ => Cmp::Ge,
                };
                Ok(Val::Bool(Formula::Count {
                    terms: fs.into_iter().map(|f| (Q::one(), f)).collect(),
                    cmp,
                    bound: q_int(k),
                }))
            }
            "sum_if" => {
                // printer form: sum_if([w1, φ1, w2, φ2, ...]) compared with a constant
                arity(1)?;
                let items = match &args[0] {
                    Ast::List(items, _) if items.len() % 2 == 0 => items,
                    _ => {
                        return Err(err(
                            sp,
                            "`sum_if` takes a list of weight, formula pairs",
                            "`sum_if([w1, φ1, ...])`",
                            "",
                        ))
                    }
                };
                let mut ind = Vec::new();
                for pair in items.chunks(2) {
                    let w = self.num(&pair[0])?.as_const().ok_or_else(|| {
                        err(pair[0].span(), "weights must be constants", "a number", "")
                    })?;
                    ind.push((w, self.formula(&pair[1])?));
                }
                Ok(Val::Num(Num::Pb(Q::zero(), ind)))
            }
            "all" | "any" => {
                arity(1)?;
                let fs = self.formulas(&args[0])?;
                Ok(Val::Bool(if f == "all" {
                    Formula::and(fs)
                } else {
                    Formula::or(fs)
                }))
            }
            "sin" | "cos" | "exp" | "log" | "sqrt" => {
                arity(1)?;
                let func = match f {
                    "sin" => Func::Sin,
                    "cos" => Func::Cos,
                    "exp" => Func::Exp,
                    "log" => Func::Log,
                    _ => Func::Sqrt,
                };
                let a = self.input_expr(&args[0], f)?;
                Ok(Val::Num(Num::Lin(Linear::constant(fold_apply(func, a)))))
            }
            _ => {
                let known = [
                    "sum", "min", "max", "abs", "linf", "argmax", "exactly", "at_most", "at_least",
                    "all", "any", "sin", "cos", "exp", "log", "sqrt", "same",
                ];
                Err(
                    err(sp, format!("unknown function `{f}`"), "a known function", f)
                        .suggest(closest(f, known)),
                )
            }
        }
    }

    fn input_expr(&mut self, a: &Ast, f: &str) -> R<Expr> {
        match self.num(a)? {
            Num::Lin(l) => l.to_expr().ok_or_else(|| {
                err(
                    a.span(),
                    format!("`{f}` of a network output is not linear"),
                    "a term over inputs and constants only",
                    "",
                )
            }),
            _ => Err(err(
                a.span(),
                format!("`{f}` of a conditional term is not supported"),
                "a term over inputs",
                "",
            )),
        }
    }

    fn membership(&mut self, a: &Ast, b: &Ast, sp: Span) -> R<Val> {
        let set = match self.value(b)? {
            Val::Set(v) => v,
            _ => return Err(err(b.span(), "`in` needs a set", "`{a, b, ...}`", "")),
        };
        let mut parts = Vec::new();
        for item in set {
            let lhs = self.value(a)?;
            parts.push(self.equals(lhs, item, sp)?);
        }
        Ok(Val::Bool(Formula::or(parts)))
    }

    fn class_index(&self, v: &Val, sp: Span) -> R<usize> {
        match v {
            Val::Str(s) => self
                .b
                .outputs
                .iter()
                .position(|o| o == s || o.eq_ignore_ascii_case(s))
                .ok_or_else(|| {
                    err(
                        sp,
                        format!("unknown class `{s}`"),
                        "an output (class) name",
                        s,
                    )
                    .suggest(closest(s, self.b.outputs.iter().map(String::as_str)))
                }),
            Val::Num(n) => n
                .as_const()
                .and_then(|q| q_to_int(&q))
                .filter(|k| *k >= 0 && (*k as usize) < self.b.outputs.len())
                .map(|k| k as usize)
                .ok_or_else(|| {
                    err(
                        sp,
                        "class index out of range",
                        format!("0..{}", self.b.outputs.len()),
                        "",
                    )
                }),
            _ => Err(err(sp, "expected a class", "a class name or index", "")),
        }
    }

    /// `a == b` for the non-numeric cases (classes, categories).
    fn equals(&mut self, a: Val, b: Val, sp: Span) -> R<Formula> {
        match (a, b) {
            (Val::Argmax(ys), Val::Argmax(zs)) => {
                if ys.len() != zs.len() {
                    return Err(err(
                        sp,
                        "arg-max of vectors of different lengths",
                        "same-length vectors",
                        "",
                    ));
                }
                Ok(Formula::or(
                    (0..ys.len())
                        .map(|k| Formula::and(vec![argmax_is(&ys, k), argmax_is(&zs, k)]))
                        .collect(),
                ))
            }
            (Val::Argmax(ys), other) | (other, Val::Argmax(ys)) => {
                let k = self.class_index(&other, sp)?;
                // A class is an output index; an arg-max over a shorter vector has fewer.
                if k >= ys.len() {
                    return Err(err(
                        sp,
                        "class index out of range for this arg-max",
                        format!("0..{}", ys.len()),
                        "",
                    ));
                }
                Ok(argmax_is(&ys, k))
            }
            (Val::Category(side, g), Val::Str(cat)) | (Val::Str(cat), Val::Category(side, g)) => {
                let (name, cols, dropped) = &self.b.groups[g];
                if let Some((j, _)) = cols.iter().find(|(_, c)| c == &cat) {
                    return Ok(Formula::atom(
                        self.input_var(side, *j, false).plus(lin_const(-Q::one())),
                        Cmp::Eq,
                    ));
                }
                if dropped.as_deref() == Some(cat.as_str()) {
                    return Ok(Formula::and(
                        cols.iter()
                            .map(|(j, _)| Formula::atom(self.input_var(side, *j, false), Cmp::Eq))
                            .collect(),
                    ));
                }
                let cands = cols
                    .iter()
                    .map(|(_, c)| c.as_str())
                    .chain(dropped.as_deref());
                Err(err(
                    sp,
                    format!("`{name}` has no category `{cat}`"),
                    "one of its categories",
                    &cat,
                )
                .suggest(closest(&cat, cands)))
            }
            (Val::Category(s1, g1), Val::Category(s2, g2)) if g1 == g2 => {
                let cols = self.b.groups[g1].1.clone();
                Ok(Formula::and(
                    cols.iter()
                        .map(|(j, _)| {
                            Formula::atom(
                                self.input_var(s1, *j, false)
                                    .plus(self.input_var(s2, *j, false).negated()),
                                Cmp::Eq,
                            )
                        })
                        .collect(),
                ))
            }
            (Val::Num(x), Val::Num(y)) => compare(add(x, y.negated(), sp)?, Cmp::Eq, sp),
            _ => Err(err(
                sp,
                "these two things cannot be compared",
                "numbers, classes or categories of the same kind",
                "",
            )),
        }
    }

    fn binary(&mut self, op: BinOp, a: &Ast, b: &Ast, sp: Span) -> R<Val> {
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies | BinOp::Iff => {
                let (fa, fb) = (self.formula(a)?, self.formula(b)?);
                Ok(Val::Bool(match op {
                    BinOp::And => Formula::and(vec![fa, fb]),
                    BinOp::Or => Formula::or(vec![fa, fb]),
                    BinOp::Implies => Formula::or(vec![fa.negate(), fb]),
                    _ => Formula::or(vec![
                        Formula::and(vec![fa.clone(), fb.clone()]),
                        Formula::and(vec![fa.negate(), fb.negate()]),
                    ]),
                }))
            }
            BinOp::Add | BinOp::Sub => {
                let (va, vb) = (self.value(a)?, self.value(b)?);
                let sub = op == BinOp::Sub;
                match (va, vb) {
                    (Val::Num(x), Val::Num(y)) => {
                        Ok(Val::Num(add(x, if sub { y.negated() } else { y }, sp)?))
                    }
                    (va, vb) => {
                        let (x, y) = (self.as_vector(va, a)?, self.as_vector(vb, b)?);
                        if x.len() != y.len() {
                            return Err(err(
                                sp,
                                format!("vectors of lengths {} and {}", x.len(), y.len()),
                                "vectors of the same length",
                                "",
                            ));
                        }
                        Ok(Val::Vector(
                            x.into_iter()
                                .zip(y)
                                .map(|(p, q)| add(p, if sub { q.negated() } else { q }, sp))
                                .collect::<R<_>>()?,
                        ))
                    }
                }
            }
            BinOp::Mul => {
                let (x, y) = (self.num(a)?, self.num(b)?);
                mul(x, y, sp).map(Val::Num)
            }
            BinOp::Div => {
                let (x, y) = (self.num(a)?, self.num(b)?);
                let d = match y {
                    Num::Lin(l) => l.to_expr().ok_or_else(|| {
                        err(
                            sp,
                            "division by a network output is not linear",
                            "a divisor over inputs and constants",
                            "",
                        )
                    })?,
                    _ => {
                        return Err(err(
                            sp,
                            "division by a conditional term",
                            "a divisor over inputs and constants",
                            "",
                        ))
                    }
                };
                let inv = match d.as_const() {
                    Some(q) if q.is_zero() => {
                        return Err(err(sp, "division by zero", "a non-zero divisor", ""))
                    }
                    Some(q) => Expr::Const(q.recip()),
                    None => Expr::Div(Box::new(Expr::Const(Q::one())), Box::new(d)),
                };
                Ok(Val::Num(scale(x, &inv)))
            }
            BinOp::Pow => {
                let k = self.int(b)?;
                if !(0..=16).contains(&k) {
                    return Err(err(
                        b.span(),
                        "exponent out of range",
                        "an integer in 0..=16",
                        "",
                    ));
                }
                let base = self.num(a)?;
                if let Some(q) = base.as_const() {
                    let mut r = Q::one();
                    for _ in 0..k {
                        r *= &q;
                    }
                    return Ok(Val::Num(Num::Lin(lin_const(r))));
                }
                let e = match base {
                    Num::Lin(l) => l.to_expr().ok_or_else(|| {
                        err(
                            sp,
                            "a power of a network output is not linear",
                            "a base over inputs",
                            "",
                        )
                    })?,
                    _ => {
                        return Err(err(
                            sp,
                            "a power of a conditional term",
                            "a base over inputs",
                            "",
                        ))
                    }
                };
                Ok(Val::Num(Num::Lin(Linear::constant(Expr::Pow(
                    Box::new(e),
                    k as i32,
                )))))
            }
            BinOp::Ne => {
                let f = self.binary(BinOp::Eq, a, b, sp)?;
                match f {
                    Val::Bool(f) => Ok(Val::Bool(f.negate())),
                    _ => unreachable!("equality yields a formula"),
                }
            }
            BinOp::Lt | BinOp::Le | BinOp::Eq | BinOp::Ge | BinOp::Gt => {
                let cmp = cmp_of(op).expect("comparison");
                let (va, vb) = (self.value(a)?, self.value(b)?);
                match (va, vb) {
                    (Val::Num(x), Val::Num(y)) => {
                        Ok(Val::Bool(compare(add(x, y.negated(), sp)?, cmp, sp)?))
                    }
                    (Val::Norm(v), Val::Num(c)) => norm_cmp(v, cmp, c, sp).map(Val::Bool),
                    (Val::Num(c), Val::Norm(v)) => norm_cmp(v, cmp.flip(), c, sp).map(Val::Bool),
                    (va @ (Val::Argmax(_) | Val::Category(..) | Val::Str(_)), vb)
                    | (va, vb @ (Val::Argmax(_) | Val::Category(..) | Val::Str(_))) => {
                        if cmp != Cmp::Eq {
                            return Err(err(
                                sp,
                                "classes and categories can only be compared with `==`/`!=`",
                                "`==`",
                                op.text(),
                            ));
                        }
                        self.equals(va, vb, sp).map(Val::Bool)
                    }
                    (va, vb) => {
                        // element-wise (vector vs vector, or vector vs scalar)
                        let x = self.as_vector(va, a)?;
                        let y = match vb {
                            Val::Num(n) => vec![n; x.len()],
                            other => self.as_vector(other, b)?,
                        };
                        if x.len() != y.len() {
                            return Err(err(
                                sp,
                                "vectors of different lengths",
                                "same-length vectors",
                                "",
                            ));
                        }
                        let parts = x
                            .into_iter()
                            .zip(y)
                            .map(|(p, q)| compare(add(p, q.negated(), sp)?, cmp, sp))
                            .collect::<R<_>>()?;
                        Ok(Val::Bool(Formula::and(parts)))
                    }
                }
            }
        }
    }

    fn as_vector(&self, v: Val, at: &Ast) -> R<Vec<Num>> {
        match v {
            Val::Vector(v) => Ok(v),
            Val::Copy(s, i) => Ok(self.copy_vector(s, i)),
            Val::Num(n) => Ok(vec![n]),
            _ => Err(err(
                at.span(),
                "expected a number or a vector",
                "a numeric term",
                "",
            )),
        }
    }
}

fn fold_apply(f: Func, a: Expr) -> Expr {
    match a.as_const().and_then(num_traits::ToPrimitive::to_f64) {
        // Constants through transcendental functions are rounded to f64 once, here.
        Some(v) => Expr::Const(q_from_f64(f.apply(v)).unwrap_or_else(Q::zero)),
        None => Expr::Apply(f, Box::new(a)),
    }
}

fn abs(n: Num, sp: Span) -> R<Num> {
    let mut pieces = Vec::new();
    for (g, l) in n.into_pieces() {
        if let Some(e) = l.to_expr().filter(|_| l.terms.is_empty()) {
            pieces.push((
                g,
                Linear::constant(match e.as_const() {
                    Some(q) => Expr::Const(q.abs()),
                    None => Expr::Apply(Func::Abs, Box::new(e)),
                }),
            ));
            continue;
        }
        let nonneg = Formula::atom(l.clone(), Cmp::Ge);
        pieces.push((Formula::and(vec![g.clone(), nonneg.clone()]), l.clone()));
        pieces.push((Formula::and(vec![g, nonneg.negate()]), l.negated()));
    }
    if pieces.len() > PIECE_LIMIT {
        return Err(err(
            sp,
            "abs has too many cases",
            format!("at most {PIECE_LIMIT}"),
            "",
        ));
    }
    Ok(if pieces.len() == 1 {
        Num::Lin(pieces.pop().expect("one").1)
    } else {
        Num::Pw(pieces)
    })
}

fn mul(x: Num, y: Num, sp: Span) -> R<Num> {
    let as_factor = |n: &Num| match n {
        Num::Lin(l) => l.to_expr(),
        _ => None,
    };
    if let Some(k) = as_factor(&x) {
        return Ok(scale(y, &k));
    }
    if let Some(k) = as_factor(&y) {
        return Ok(scale(x, &k));
    }
    Err(err(
        sp,
        "product of two terms that both contain network outputs is not linear",
        "at most one factor with outputs",
        "",
    ))
}

/// `linf(v) ⋈ c` as a conjunction or disjunction of `|vᵢ| ⋈ c`.
fn norm_cmp(v: Vec<Num>, cmp: Cmp, c: Num, sp: Span) -> R<Formula> {
    let parts = v
        .into_iter()
        .map(|n| {
            let a = abs(n, sp)?;
            compare(add(a, c.clone().negated(), sp)?, cmp, sp)
        })
        .collect::<R<Vec<_>>>()?;
    Ok(match cmp {
        Cmp::Lt | Cmp::Le => Formula::and(parts),
        Cmp::Gt | Cmp::Ge => Formula::or(parts),
        Cmp::Eq => {
            return Err(err(
                sp,
                "`linf(...) == c` is not supported",
                "`<=`, `<`, `>=` or `>`",
                "==",
            ))
        }
    })
}

/// Exact value of a decimal literal.
pub(crate) fn parse_number(s: &str) -> Option<Q> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || exp.abs() > 400 {
        return None;
    }
    let n: num_bigint::BigInt = digits.parse().ok()?;
    let scale = exp - frac.len() as i32;
    let ten = Q::from_integer(10.into());
    let mut q = Q::from_integer(n);
    if scale >= 0 {
        for _ in 0..scale {
            q *= &ten;
        }
    } else {
        for _ in 0..(-scale) {
            q /= &ten;
        }
    }
    Some(q)
}

/// Lowers parsed statements to constraints.
pub fn lower(stmts: &[Stmt], b: &Bindings) -> Result<Vec<Constraint>, DslError> {
    let mut l = Lowerer {
        b,
        consts: HashMap::new(),
        loops: HashMap::new(),
        vars: vec![],
    };
    let mut out = Vec::new();
    for s in stmts {
        match s {
            Stmt::Const(name, e, sp) => {
                l.vars.clear();
                let q = l.num(e)?.as_const().ok_or_else(|| {
                    err(
                        *sp,
                        "a constant must be a number",
                        "a constant expression",
                        name,
                    )
                })?;
                l.consts.insert(name.clone(), q);
            }
            Stmt::Constraint {
                vars,
                domain,
                body,
                span,
            } => {
                if vars.len() > 2 {
                    return Err(err(
                        *span,
                        "at most two quantified variables",
                        "`forall x` or `forall x, x2`",
                        "",
                    ));
                }
                l.vars = if vars.is_empty() {
                    vec!["x".into()]
                } else {
                    vars.clone()
                };
                let mut dom: Vec<(f64, f64)> = b.inputs.iter().map(|i| (i.lo, i.hi)).collect();
                for item in domain {
                    let j = b
                        .inputs
                        .iter()
                        .position(|i| i.name == item.feature)
                        .or_else(|| {
                            item.feature
                                .strip_prefix('#')
                                .and_then(|s| s.parse().ok())
                                .filter(|j: &usize| *j < b.inputs.len())
                        });
                    let Some(j) = j else {
                        return Err(err(
                            item.span,
                            format!("unknown input `{}`", item.feature),
                            "an input feature",
                            &item.feature,
                        )
                        .suggest(closest(
                            &item.feature,
                            b.inputs.iter().map(|i| i.name.as_str()),
                        )));
                    };
                    let lo = l.num(&item.lo)?.as_const().ok_or_else(|| {
                        err(item.lo.span(), "bounds must be constants", "a number", "")
                    })?;
                    let hi = l.num(&item.hi)?.as_const().ok_or_else(|| {
                        err(item.hi.span(), "bounds must be constants", "a number", "")
                    })?;
                    let ib = &b.inputs[j];
                    // `#j` bounds are scaled values (printer form); named bounds are raw units
                    let to_scaled = |q: &Q| {
                        let v = num_traits::ToPrimitive::to_f64(q).unwrap_or(f64::NAN);
                        if item.feature.starts_with('#') || ib.scale == 0.0 {
                            v
                        } else {
                            (v - ib.offset) / ib.scale
                        }
                    };
                    let (slo, shi) = (to_scaled(&lo), to_scaled(&hi));
                    if slo.is_nan() || shi.is_nan() || slo > shi {
                        return Err(err(
                            item.span,
                            "empty domain",
                            "lower bound ≤ upper bound",
                            &item.feature,
                        ));
                    }
                    dom[j] = (slo, shi);
                }
                let f = l.formula(body)?;
                out.push(Constraint {
                    two_copy: l.vars.len() == 2,
                    domain: dom,
                    formula: f,
                });
            }
        }
    }
    Ok(out)
}
