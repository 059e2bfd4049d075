//! The typed intermediate representation shared by every solver crate.
//!
//! A [`Constraint`] quantifies one input (`x`) or two (`x`, `x2`, for relational properties)
//! over a box of the *scaled* input space, and holds a [`Formula`]: Boolean structure over
//! [`Atom`]s `Σ aᵥ·v + c ⋈ 0` and [`Formula::Count`] atoms `Σ wᵢ·[φᵢ] ⋈ k`. Variables are
//! scaled inputs and network outputs of either copy. Coefficients are exact rationals
//! ([`Q`]) or, for constraints whose bounds depend non-linearly on the input (HardNet's
//! `b(x)`), input-only expressions ([`Coef::Expr`]). Strict and non-strict comparisons are kept
//! apart.
use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use serde::{Deserialize, Serialize};

/// Exact rational numbers.
pub type Q = BigRational;

/// Which copy of the network a variable belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// `x`, `y`.
    First,
    /// `x2`, `y2` (relational constraints).
    Second,
}

/// A variable: a scaled input feature or a network output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Var {
    /// Scaled input feature `j`.
    Input(Side, usize),
    /// Output `k`.
    Output(Side, usize),
}

/// Functions allowed on input-only expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// sine
    Sin,
    /// cosine
    Cos,
    /// natural exponential
    Exp,
    /// natural logarithm
    Log,
    /// square root
    Sqrt,
    /// absolute value
    Abs,
}

impl Func {
    /// Name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
        }
    }
    /// Applies the function in `f64`.
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Func::Sin => v.sin(),
            Func::Cos => v.cos(),
            Func::Exp => v.exp(),
            Func::Log => v.ln(),
            Func::Sqrt => v.sqrt(),
            Func::Abs => v.abs(),
        }
    }
}

/// An expression over inputs only (possibly non-linear). Used as a coefficient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// An exact constant.
    Const(Q),
    /// A scaled input.
    Input(Side, usize),
    /// Sum.
    Add(Vec<Expr>),
    /// Product.
    Mul(Vec<Expr>),
    /// Quotient.
    Div(Box<Expr>, Box<Expr>),
    /// Integer power.
    Pow(Box<Expr>, i32),
    /// Function application.
    Apply(Func, Box<Expr>),
}

/// A coefficient: an exact constant, or an input-dependent expression.
pub type Coef = Expr;

impl Expr {
    /// The constant, if this is one.
    pub fn as_const(&self) -> Option<&Q> {
        match self {
            Expr::Const(q) => Some(q),
            _ => None,
        }
    }
    /// Constant zero.
    pub fn zero() -> Self {
        Expr::Const(Q::zero())
    }
    /// Whether this is the constant zero.
    pub fn is_zero(&self) -> bool {
        self.as_const().is_some_and(Zero::is_zero)
    }
    /// `self + other` in canonical form: nested sums flattened, constants summed into one
    /// leading term (so printing and re-parsing gives the same expression).
    pub fn plus(self, other: Expr) -> Expr {
        self.combine(other, true)
    }
    /// `self · other` in canonical form: nested products flattened, constants multiplied into
    /// one leading factor.
    pub fn times(self, other: Expr) -> Expr {
        self.combine(other, false)
    }

    /// Shared canonicalisation of sums (`sum = true`) and products.
    fn combine(self, other: Expr, sum: bool) -> Expr {
        let unit = if sum { Q::zero() } else { Q::one() };
        let mut c = unit.clone();
        let mut parts = Vec::new();
        let mut absorb = |e: Expr, parts: &mut Vec<Expr>| match e {
            Expr::Const(q) if sum => c += q,
            Expr::Const(q) => c *= q,
            f => parts.push(f),
        };
        for e in [self, other] {
            match (e, sum) {
                (Expr::Add(v), true) | (Expr::Mul(v), false) => {
                    v.into_iter().for_each(|f| absorb(f, &mut parts))
                }
                (e, _) => absorb(e, &mut parts),
            }
        }
        if parts.is_empty() || (!sum && c.is_zero()) {
            return Expr::Const(c);
        }
        if c == unit && parts.len() == 1 {
            return parts.pop().expect("one part");
        }
        if c != unit {
            parts.insert(0, Expr::Const(c));
        }
        if sum {
            Expr::Add(parts)
        } else {
            Expr::Mul(parts)
        }
    }
    /// `−self`.
    pub fn negated(self) -> Expr {
        self.times(Expr::Const(-Q::one()))
    }
    /// Evaluates with the given inputs (`x`, and `x2` for relational constraints).
    pub fn eval(&self, x: &[f64], x2: &[f64]) -> f64 {
        match self {
            Expr::Const(q) => q.to_f64().unwrap_or(f64::NAN),
            Expr::Input(Side::First, j) => x.get(*j).copied().unwrap_or(f64::NAN),
            Expr::Input(Side::Second, j) => x2.get(*j).copied().unwrap_or(f64::NAN),
            Expr::Add(v) => v.iter().map(|e| e.eval(x, x2)).sum(),
            Expr::Mul(v) => v.iter().map(|e| e.eval(x, x2)).product(),
            Expr::Div(a, b) => a.eval(x, x2) / b.eval(x, x2),
            Expr::Pow(a, k) => a.eval(x, x2).powi(*k),
            Expr::Apply(f, a) => f.apply(a.eval(x, x2)),
        }
    }
}

/// Exact rational from an `f64` (every finite `f64` is a dyadic rational).
pub fn q_from_f64(v: f64) -> Option<Q> {
    Q::from_float(v)
}

/// Comparison against zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// `< 0`
    Lt,
    /// `<= 0`
    Le,
    /// `== 0`
    Eq,
    /// `>= 0`
    Ge,
    /// `> 0`
    Gt,
}

impl Cmp {
    /// Operator text.
    pub fn text(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "==",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
    /// Whether `v ⋈ 0` holds.
    pub fn holds(self, v: f64) -> bool {
        match self {
            Cmp::Lt => v < 0.0,
            Cmp::Le => v <= 0.0,
            Cmp::Eq => v == 0.0,
            Cmp::Ge => v >= 0.0,
            Cmp::Gt => v > 0.0,
        }
    }
    /// How far `v` is from satisfying `v ⋈ 0` (0 when satisfied or on a strict boundary).
    pub fn violation(self, v: f64) -> f64 {
        match self {
            Cmp::Lt | Cmp::Le => v.max(0.0),
            Cmp::Eq => v.abs(),
            Cmp::Ge | Cmp::Gt => (-v).max(0.0),
        }
    }
    /// The comparison with the sides swapped (`a < b` ⇔ `b > a`).
    pub fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Ge => Cmp::Le,
            Cmp::Gt => Cmp::Lt,
            Cmp::Eq => Cmp::Eq,
        }
    }
    /// The comparison of the negated statement (`¬(v < 0)` is `v >= 0`); `None` for `==`.
    pub fn negate(self) -> Option<Cmp> {
        Some(match self {
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Ge => Cmp::Lt,
            Cmp::Gt => Cmp::Le,
            Cmp::Eq => return None,
        })
    }
}

/// A linear expression `Σ aᵥ·v + c` with canonical (sorted, zero-free) terms.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Linear {
    /// Coefficients by variable; no zero entries. Serialised as a list of pairs so that
    /// formats with string-only map keys (JSON) can hold it.
    #[serde(with = "terms_as_pairs")]
    pub terms: BTreeMap<Var, Coef>,
    /// Constant term.
    pub constant: Coef,
}

impl Default for Expr {
    fn default() -> Self {
        Expr::zero()
    }
}

impl Linear {
    /// A constant.
    pub fn constant(c: Coef) -> Self {
        Linear {
            terms: BTreeMap::new(),
            constant: c,
        }
    }
    /// `coef · v`.
    pub fn var(v: Var, coef: Coef) -> Self {
        let mut terms = BTreeMap::new();
        if !coef.is_zero() {
            terms.insert(v, coef);
        }
        Linear {
            terms,
            constant: Expr::zero(),
        }
    }
    /// `self + other`.
    pub fn plus(mut self, other: Linear) -> Linear {
        for (v, c) in other.terms {
            let cur = self.terms.remove(&v).unwrap_or_default();
            let s = cur.plus(c);
            if !s.is_zero() {
                self.terms.insert(v, s);
            }
        }
        self.constant = std::mem::take(&mut self.constant).plus(other.constant);
        self
    }
    /// `k · self` for an input-only `k`.
    pub fn scale(self, k: &Coef) -> Linear {
        if k.is_zero() {
            return Linear::default();
        }
        Linear {
            terms: self
                .terms
                .into_iter()
                .map(|(v, c)| (v, c.times(k.clone())))
                .filter(|(_, c)| !c.is_zero())
                .collect(),
            constant: self.constant.times(k.clone()),
        }
    }
    /// `−self`.
    pub fn negated(self) -> Linear {
        self.scale(&Expr::Const(-Q::one()))
    }
    /// Whether no output variable occurs.
    pub fn is_input_only(&self) -> bool {
        self.terms.keys().all(|v| matches!(v, Var::Input(..)))
    }
    /// Whether every coefficient is constant (linear in inputs and outputs).
    pub fn is_linear(&self) -> bool {
        self.terms
            .values()
            .chain(std::iter::once(&self.constant))
            .all(|c| c.as_const().is_some())
    }
    /// Converts an input-only linear expression to an input expression.
    pub fn to_expr(&self) -> Option<Expr> {
        if !self.is_input_only() {
            return None;
        }
        let mut e = self.constant.clone();
        for (v, c) in &self.terms {
            if let Var::Input(s, j) = v {
                e = e.plus(c.clone().times(Expr::Input(*s, *j)));
            }
        }
        Some(e)
    }
    /// Value at a concrete assignment.
    pub fn eval(&self, a: &Assignment<'_>) -> f64 {
        let mut s = self.constant.eval(a.x, a.x2);
        for (v, c) in &self.terms {
            s += c.eval(a.x, a.x2) * a.get(*v);
        }
        s
    }
}

/// `expr ⋈ 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atom {
    /// Left-hand side.
    pub expr: Linear,
    /// Comparison with zero.
    pub cmp: Cmp,
}

/// A Boolean formula in negation normal form (negation only inside atoms' comparisons).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Formula {
    /// Always true.
    True,
    /// Always false.
    False,
    /// A linear comparison.
    Atom(Atom),
    /// Conjunction.
    And(Vec<Formula>),
    /// Disjunction.
    Or(Vec<Formula>),
    /// `Σ wᵢ·[φᵢ] ⋈ bound` (exactly/at-most/at-least and weighted counts).
    Count {
        /// Weighted sub-formulas.
        terms: Vec<(Q, Formula)>,
        /// Comparison of `Σ − bound` with zero.
        cmp: Cmp,
        /// Bound.
        bound: Q,
    },
}

/// Concrete values of the variables.
#[derive(Debug, Clone, Copy)]
pub struct Assignment<'a> {
    /// Scaled inputs of the first copy.
    pub x: &'a [f64],
    /// Outputs of the first copy.
    pub y: &'a [f64],
    /// Scaled inputs of the second copy (empty for single-copy constraints).
    pub x2: &'a [f64],
    /// Outputs of the second copy.
    pub y2: &'a [f64],
}

impl Assignment<'_> {
    fn get(&self, v: Var) -> f64 {
        let (s, i) = match v {
            Var::Input(Side::First, i) => (self.x, i),
            Var::Input(Side::Second, i) => (self.x2, i),
            Var::Output(Side::First, i) => (self.y, i),
            Var::Output(Side::Second, i) => (self.y2, i),
        };
        s.get(i).copied().unwrap_or(f64::NAN)
    }
}

impl Formula {
    /// Conjunction, flattening and folding constants.
    pub fn and(parts: Vec<Formula>) -> Formula {
        let mut out = Vec::new();
        for p in parts {
            match p {
                Formula::True => {}
                Formula::False => return Formula::False,
                Formula::And(v) => out.extend(v),
                f => out.push(f),
            }
        }
        match out.len() {
            0 => Formula::True,
            1 => out.pop().expect("one element"),
            _ => Formula::And(out),
        }
    }
    /// Disjunction, flattening and folding constants.
    pub fn or(parts: Vec<Formula>) -> Formula {
        let mut out = Vec::new();
        for p in parts {
            match p {
                Formula::False => {}
                Formula::True => return Formula::True,
                Formula::Or(v) => out.extend(v),
                f => out.push(f),
            }
        }
        match out.len() {
            0 => Formula::False,
            1 => out.pop().expect("one element"),
            _ => Formula::Or(out),
        }
    }
    /// An atom, folded to a constant when it has no variables and a constant side.
    pub fn atom(expr: Linear, cmp: Cmp) -> Formula {
        if expr.terms.is_empty() {
            if let Some(c) = expr.constant.as_const() {
                let v = if c.is_zero() {
                    0.0
                } else if c.is_positive() {
                    1.0
                } else {
                    -1.0
                };
                return if cmp.holds(v) {
                    Formula::True
                } else {
                    Formula::False
                };
            }
        }
        Formula::Atom(Atom { expr, cmp })
    }
    /// Negation, pushed into atoms (the result stays in negation normal form).
    pub fn negate(self) -> Formula {
        match self {
            Formula::True => Formula::False,
            Formula::False => Formula::True,
            Formula::And(v) => Formula::or(v.into_iter().map(Formula::negate).collect()),
            Formula::Or(v) => Formula::and(v.into_iter().map(Formula::negate).collect()),
            Formula::Atom(a) => match a.cmp.negate() {
                Some(c) => Formula::atom(a.expr, c),
                None => Formula::or(vec![
                    Formula::atom(a.expr.clone(), Cmp::Lt),
                    Formula::atom(a.expr, Cmp::Gt),
                ]),
            },
            Formula::Count { terms, cmp, bound } => match cmp.negate() {
                Some(c) => Formula::Count {
                    terms,
                    cmp: c,
                    bound,
                },
                None => Formula::or(vec![
                    Formula::Count {
                        terms: terms.clone(),
                        cmp: Cmp::Lt,
                        bound: bound.clone(),
                    },
                    Formula::Count {
                        terms,
                        cmp: Cmp::Gt,
                        bound,
                    },
                ]),
            },
        }
    }

    /// A stronger formula whose output comparisons hold with slack `eps`: `e > 0` and `e ≥ 0`
    /// become `e ≥ eps`, `e < 0` and `e ≤ 0` become `e ≤ −eps` (equalities and input-only atoms
    /// are kept). Whatever satisfies the result satisfies `self`, and so does anything within
    /// `eps` of it, so a model trained on the result can be certified in floating point.
    ///
    /// Strengthening under a count is not monotone (a term that holds only weakly would drop
    /// out of the sum while still counting in the original), so a count is replaced by a
    /// bound on its value that only robustly decided terms can move: a lower bound for `>`
    /// and `≥`, an upper bound for `<` and `≤`, both for `==`.
    ///
    /// `eps ≤ 0` returns the formula unchanged.
    pub fn with_output_slack(&self, eps: &Q) -> Formula {
        if !eps.is_positive() {
            return self.clone();
        }
        match self {
            Formula::True | Formula::False => self.clone(),
            Formula::Atom(a) if a.expr.is_input_only() || a.cmp == Cmp::Eq => self.clone(),
            Formula::Atom(a) => {
                let (shift, cmp) = match a.cmp {
                    Cmp::Gt | Cmp::Ge => (-eps.clone(), Cmp::Ge),
                    _ => (eps.clone(), Cmp::Le),
                };
                Formula::atom(
                    a.expr.clone().plus(Linear::constant(Expr::Const(shift))),
                    cmp,
                )
            }
            Formula::And(v) => Formula::and(v.iter().map(|f| f.with_output_slack(eps)).collect()),
            Formula::Or(v) => Formula::or(v.iter().map(|f| f.with_output_slack(eps)).collect()),
            Formula::Count { terms, cmp, bound } => {
                // With `S = Σ w·[φ]`: a term robustly true (`φ^eps`) certainly counts and one
                // robustly false (`(¬φ)^eps`) certainly does not, so
                //   L = Σ_{w>0} w·[φ^eps] + Σ_{w<0} w·(1 − [(¬φ)^eps]) ≤ S
                //   U = Σ_{w>0} w·(1 − [(¬φ)^eps]) + Σ_{w<0} w·[φ^eps] ≥ S,
                // and `L ⋈ b` (for > and ≥), `U ⋈ b` (for < and ≤) imply `S ⋈ b`; both sides
                // for ==. Terms no comparison decides robustly stay free (UC4's
                // `Σ j·[y_j > 0] > 10` only needs enough robust terms).
                let robust = |f: &Formula| f.with_output_slack(eps);
                let robust_not = |f: &Formula| f.clone().negate().with_output_slack(eps);
                // L and U have the same shape: a term enters as `w·[φ^eps]` where it can only
                // raise the bound (w > 0 for L, w < 0 for U), else as `w − w·[(¬φ)^eps]`.
                let side = |cmp: Cmp, upper: bool| {
                    let mut b = bound.clone();
                    let t = terms
                        .iter()
                        .filter(|(w, _)| !w.is_zero())
                        .map(|(w, f)| {
                            if w.is_positive() != upper {
                                (w.clone(), robust(f))
                            } else {
                                b -= w;
                                (-w.clone(), robust_not(f))
                            }
                        })
                        .collect();
                    Formula::Count {
                        terms: t,
                        cmp,
                        bound: b,
                    }
                };
                match cmp {
                    Cmp::Gt | Cmp::Ge => side(*cmp, false),
                    Cmp::Lt | Cmp::Le => side(*cmp, true),
                    Cmp::Eq => Formula::and(vec![side(Cmp::Ge, false), side(Cmp::Le, true)]),
                }
            }
        }
    }

    /// Whether the formula holds at `a`.
    pub fn holds(&self, a: &Assignment<'_>) -> bool {
        match self {
            Formula::True => true,
            Formula::False => false,
            Formula::Atom(at) => at.cmp.holds(at.expr.eval(a)),
            Formula::And(v) => v.iter().all(|f| f.holds(a)),
            Formula::Or(v) => v.iter().any(|f| f.holds(a)),
            Formula::Count { terms, cmp, bound } => {
                let s: f64 = terms
                    .iter()
                    .filter(|(_, f)| f.holds(a))
                    .map(|(w, _)| w.to_f64().unwrap_or(f64::NAN))
                    .sum();
                cmp.holds(s - bound.to_f64().unwrap_or(f64::NAN))
            }
        }
    }

    /// How far the *outputs* are from satisfying the formula, inputs held fixed: 0 when it
    /// holds (or fails only on a strict boundary), positive otherwise. An atom over inputs only
    /// is 0 or `∞` (no output can repair it), so the magnitude of `P(x) ⇒ C(y)` is that of `C`
    /// when `P` holds. Conjunctions take the largest, disjunctions the smallest.
    pub fn violation(&self, a: &Assignment<'_>) -> f64 {
        match self {
            Formula::True => 0.0,
            Formula::False => f64::INFINITY,
            Formula::Atom(at) if at.expr.is_input_only() => {
                if at.cmp.holds(at.expr.eval(a)) {
                    0.0
                } else {
                    f64::INFINITY
                }
            }
            Formula::Atom(at) => at.cmp.violation(at.expr.eval(a)),
            Formula::And(v) => v.iter().map(|f| f.violation(a)).fold(0.0, f64::max),
            Formula::Or(v) => v
                .iter()
                .map(|f| f.violation(a))
                .fold(f64::INFINITY, f64::min),
            Formula::Count { terms, cmp, bound } => {
                let s: f64 = terms
                    .iter()
                    .filter(|(_, f)| f.holds(a))
                    .map(|(w, _)| w.to_f64().unwrap_or(f64::NAN))
                    .sum();
                cmp.violation(s - bound.to_f64().unwrap_or(f64::NAN))
            }
        }
    }

    /// Number of atoms (size measure).
    pub fn n_atoms(&self) -> usize {
        match self {
            Formula::True | Formula::False => 0,
            Formula::Atom(_) => 1,
            Formula::And(v) | Formula::Or(v) => v.iter().map(Formula::n_atoms).sum(),
            Formula::Count { terms, .. } => terms.iter().map(|(_, f)| f.n_atoms()).sum(),
        }
    }
}

/// A quantified constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    /// Whether it quantifies two inputs `x, x2` (relational).
    pub two_copy: bool,
    /// Domain of each scaled input: `(lower, upper)`; the data's box unless overridden.
    pub domain: Vec<(f64, f64)>,
    /// The formula (negation normal form).
    pub formula: Formula,
}

impl Constraint {
    /// Whether the constraint holds at `a`.
    pub fn holds(&self, a: &Assignment<'_>) -> bool {
        self.formula.holds(a)
    }

    /// The same constraint with its output comparisons required to hold with slack `eps`
    /// (see [`Formula::with_output_slack`]).
    pub fn with_output_slack(&self, eps: &Q) -> Constraint {
        Constraint {
            two_copy: self.two_copy,
            domain: self.domain.clone(),
            formula: self.formula.with_output_slack(eps),
        }
    }
}

mod terms_as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Coef, Var};

    pub fn serialize<S: Serializer>(m: &BTreeMap<Var, Coef>, s: S) -> Result<S::Ok, S::Error> {
        m.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Var, Coef>, D::Error> {
        Ok(Vec::<(Var, Coef)>::deserialize(d)?.into_iter().collect())
    }
}

// ---- printing (round-trips through the parser) ----

fn fmt_q(q: &Q) -> String {
    if q.is_integer() {
        q.to_integer().to_string()
    } else {
        format!("({}/{})", q.numer(), q.denom())
    }
}

fn side_name(s: Side, input: bool) -> &'static str {
    match (s, input) {
        (Side::First, true) => "x",
        (Side::Second, true) => "x2",
        (Side::First, false) => "y",
        (Side::Second, false) => "y2",
    }
}

/// `(a<sep>b<sep>…)`.
fn write_joined<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    sep: &str,
) -> fmt::Result {
    write!(f, "(")?;
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            write!(f, "{sep}")?;
        }
        write!(f, "{e}")?;
    }
    write!(f, ")")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(q) => write!(f, "{}", fmt_q(q)),
            Expr::Input(s, j) => write!(f, "{}[{j}]", side_name(*s, true)),
            Expr::Add(v) => write_joined(f, v, " + "),
            Expr::Mul(v) => write_joined(f, v, " * "),
            Expr::Div(a, b) => write!(f, "({a} / {b})"),
            Expr::Pow(a, k) => write!(f, "({a} ^ {k})"),
            Expr::Apply(func, a) => write!(f, "{}({a})", func.name()),
        }
    }
}

impl fmt::Display for Linear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (v, c) in &self.terms {
            if !first {
                write!(f, " + ")?;
            }
            first = false;
            let (s, j, inp) = match v {
                Var::Input(s, j) => (*s, *j, true),
                Var::Output(s, j) => (*s, *j, false),
            };
            write!(f, "{} * {}[{j}]", c, side_name(s, inp))?;
        }
        if first || !self.constant.is_zero() {
            if !first {
                write!(f, " + ")?;
            }
            write!(f, "{}", self.constant)?;
        }
        Ok(())
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Formula::True => write!(f, "true"),
            Formula::False => write!(f, "false"),
            Formula::Atom(a) => write!(f, "({} {} 0)", a.expr, a.cmp.text()),
            Formula::And(v) => write_joined(f, v, " and "),
            Formula::Or(v) => write_joined(f, v, " or "),
            Formula::Count { terms, cmp, bound } => {
                write!(f, "(sum_if([")?;
                for (i, (w, p)) in terms.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}, {p}", fmt_q(w))?;
                }
                write!(f, "]) {} {})", cmp.text(), fmt_q(bound))
            }
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "forall {}", if self.two_copy { "x, x2" } else { "x" })?;
        write!(f, " in [")?;
        for (j, (l, u)) in self.domain.iter().enumerate() {
            if j > 0 {
                write!(f, ", ")?;
            }
            let lq = q_from_f64(*l).map_or_else(|| l.to_string(), |q| fmt_q(&q));
            let uq = q_from_f64(*u).map_or_else(|| u.to_string(), |q| fmt_q(&q));
            write!(f, "\"#{j}\": {lq} .. {uq}")?;
        }
        write!(f, "]: {}", self.formula)
    }
}

/// Integer value of a rational, if it is one.
pub(crate) fn q_to_int(q: &Q) -> Option<i64> {
    if q.is_integer() {
        q.to_integer().to_i64()
    } else {
        None
    }
}

/// `n` as a rational.
pub(crate) fn q_int(n: i64) -> Q {
    Q::from_integer(BigInt::from(n))
}
