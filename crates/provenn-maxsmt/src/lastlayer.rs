//! The last layer `y = b + W·z` and a domain constraint restated over its inputs `z`.
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use num_traits::{One, Signed, Zero};
use provenn_dsl::ir::{Assignment, Cmp, Constraint, Formula, Linear, Side, Var};

use crate::rational::q_from_f64;
use crate::{MaxSmtError, Q};

/// Shape of the solver-controlled last layer `y_k = b_k + Σ_j W_kj z_j`.
///
/// The parameters `θ` are laid out output by output, bias first (as DeepSaDe's `[bias,
/// w_latent…, w_skip…]`): `θ[k·(n+1)] = b_k`, `θ[k·(n+1) + 1 + j] = W_kj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastLayer {
    /// Number of inputs `z` (latent features then skip-connected raw features).
    pub n_features: usize,
    /// Number of outputs.
    pub n_outputs: usize,
}

impl LastLayer {
    /// Number of parameters `θ`.
    pub fn n_params(&self) -> usize {
        self.n_outputs * (self.n_features + 1)
    }
    /// Index of `b_k` in `θ`.
    pub fn bias(&self, k: usize) -> usize {
        k * (self.n_features + 1)
    }
    /// Index of `W_kj` in `θ`.
    pub fn weight(&self, k: usize, j: usize) -> usize {
        k * (self.n_features + 1) + 1 + j
    }
    /// `y_k` as a linear form in `θ` at a concrete `z`.
    pub fn output_form(&self, k: usize, z: &[Q]) -> LinForm {
        let mut f = LinForm::var(self.bias(k), Q::from_integer(1.into()));
        for (j, zj) in z.iter().enumerate() {
            f.add_term(self.weight(k, j), zj.clone());
        }
        f
    }
    /// Outputs at `z` in `f64`.
    pub fn outputs_f64(&self, theta: &[f64], z: &[f64]) -> Vec<f64> {
        (0..self.n_outputs)
            .map(|k| {
                let mut s = theta[self.bias(k)];
                for (j, zj) in z.iter().enumerate() {
                    s += theta[self.weight(k, j)] * zj;
                }
                s
            })
            .collect()
    }
}

/// An exact linear form `Σ cᵢ·vᵢ + c` over solver variables (`θ` first, then auxiliaries).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinForm {
    /// Non-zero coefficients by variable index.
    pub terms: BTreeMap<usize, Q>,
    /// Constant term.
    pub constant: Q,
}

/// `c·k`, without a gcd when `k` is ±1 (a product of big rationals reduces by two gcds; the
/// MILP builder and the eliminator negate forms all the time).
fn times(c: &Q, k: &Q) -> Q {
    if k.is_one() {
        c.clone()
    } else if k.is_integer() && (-k.numer()).is_one() {
        -c.clone()
    } else {
        c * k
    }
}

impl LinForm {
    /// A constant.
    pub fn constant(c: Q) -> Self {
        LinForm {
            terms: BTreeMap::new(),
            constant: c,
        }
    }
    /// `c · v_i`.
    pub fn var(i: usize, c: Q) -> Self {
        let mut f = LinForm::default();
        f.add_term(i, c);
        f
    }
    /// Adds `c · v_i`.
    pub fn add_term(&mut self, i: usize, c: Q) {
        if c.is_zero() {
            return;
        }
        match self.terms.entry(i) {
            // Inserted as is: `0 + c` would reduce `c` by a gcd again.
            Entry::Vacant(v) => {
                v.insert(c);
            }
            Entry::Occupied(mut o) => {
                *o.get_mut() += c;
                if o.get().is_zero() {
                    o.remove();
                }
            }
        }
    }
    /// `self + k·other`.
    pub fn add_scaled(&mut self, other: &LinForm, k: &Q) {
        for (i, c) in &other.terms {
            self.add_term(*i, times(c, k));
        }
        self.constant += times(&other.constant, k);
    }
    /// `k·self`.
    pub fn scaled(&self, k: &Q) -> LinForm {
        if k.is_zero() {
            return LinForm::default();
        }
        // Non-zero times non-zero: no term cancels, so the map is built directly (adding into
        // an empty form cost a second gcd per term).
        LinForm {
            terms: self.terms.iter().map(|(i, c)| (*i, times(c, k))).collect(),
            constant: times(&self.constant, k),
        }
    }
    /// Whether no variable occurs.
    pub fn is_constant(&self) -> bool {
        self.terms.is_empty()
    }
    /// Exact value at `v`.
    pub fn eval(&self, v: &[Q]) -> Q {
        let mut s = self.constant.clone();
        for (i, c) in &self.terms {
            s += c * &v[*i];
        }
        s
    }
    /// Exact range over the box `bounds` (interval arithmetic is exact for one linear form).
    pub fn range(&self, bounds: &[(Q, Q)]) -> (Q, Q) {
        let (mut lo, mut hi) = (self.constant.clone(), self.constant.clone());
        for (i, c) in &self.terms {
            let (l, u) = &bounds[*i];
            if c.is_positive() {
                lo += c * l;
                hi += c * u;
            } else {
                lo += c * u;
                hi += c * l;
            }
        }
        (lo, hi)
    }
}

/// `expr ⋈ 0` over solver variables.
#[derive(Debug, Clone, PartialEq)]
pub struct LinAtom {
    /// Left-hand side.
    pub expr: LinForm,
    /// Comparison with zero.
    pub cmp: Cmp,
}

impl LinAtom {
    /// Whether the atom holds at `v`, exactly.
    pub fn holds(&self, v: &[Q]) -> bool {
        let e = self.expr.eval(v);
        match self.cmp {
            Cmp::Lt => e.is_negative(),
            Cmp::Le => !e.is_positive(),
            Cmp::Eq => e.is_zero(),
            Cmp::Ge => !e.is_negative(),
            Cmp::Gt => e.is_positive(),
        }
    }
}

/// One implication `∀z ∈ box: premise(z) ⇒ conclusion(z, y)` of a constraint, with variables
/// renumbered to the last layer: `Var::Input(First, j)` is `z_j`, `Var::Output(First, k)` is
/// `y_k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Premise over `z` only.
    pub premise: Formula,
    /// The box of `z` on which the premise holds, when the premise is a conjunction of
    /// single-feature bounds (`None` otherwise: only the quantified encoding applies).
    pub region: Option<Vec<(Q, Q)>>,
    /// Whether the region dropped a strict bound (it is the closure of the premise's set).
    pub region_closed_strict: bool,
    /// Conclusion over `z` and `y`.
    pub conclusion: Formula,
}

/// A domain constraint restated over the last layer's inputs `z = [latent…, skip…]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LastLayerConstraint {
    layer: LastLayer,
    domain: Vec<(Q, Q)>,
    rules: Vec<Rule>,
}

impl LastLayerConstraint {
    /// Restates `constraint` (over the network's scaled inputs `x` and outputs `y`) for the last
    /// layer: `latent_box` bounds the penultimate activations (e.g. from IBP), `skip[i]` is the
    /// raw feature that feeds last-layer input `latent_box.len() + i`, with the constraint's
    /// domain as its range.
    ///
    /// # Errors
    /// Two-copy constraints, input-dependent coefficients, inputs that are not skip-connected,
    /// and shape mismatches.
    pub fn new(
        layer: LastLayer,
        constraint: &Constraint,
        latent_box: &[(f64, f64)],
        skip: &[usize],
    ) -> Result<Self, MaxSmtError> {
        if constraint.two_copy {
            return Err(MaxSmtError::Unsupported(
                "two-copy constraints on the last layer".into(),
            ));
        }
        let n_latent = latent_box.len();
        if n_latent + skip.len() != layer.n_features {
            return Err(MaxSmtError::Shape(format!(
                "{} latent + {} skip features, but the last layer has {} inputs",
                n_latent,
                skip.len(),
                layer.n_features
            )));
        }
        let mut domain = Vec::with_capacity(layer.n_features);
        for &(l, u) in latent_box {
            domain.push((q_from_f64(l)?, q_from_f64(u)?));
        }
        for &i in skip {
            let &(l, u) = constraint.domain.get(i).ok_or_else(|| {
                MaxSmtError::Shape(format!("skip feature x{i} is outside the domain"))
            })?;
            domain.push((q_from_f64(l)?, q_from_f64(u)?));
        }
        if let Some(j) = domain.iter().position(|(l, u)| l > u) {
            return Err(MaxSmtError::Parameter(format!("empty range for z{j}")));
        }
        let remap = |v: Var| -> Result<Var, MaxSmtError> {
            match v {
                Var::Input(Side::First, i) => skip
                    .iter()
                    .position(|&s| s == i)
                    .map(|p| Var::Input(Side::First, n_latent + p))
                    .ok_or_else(|| {
                        MaxSmtError::Unsupported(format!(
                            "the constraint reads x{i}, which is not skip-connected to the last layer"
                        ))
                    }),
                Var::Output(Side::First, k) if k < layer.n_outputs => Ok(v),
                other => Err(MaxSmtError::Shape(format!("variable {other:?} out of range"))),
            }
        };
        let formula = remap_formula(&constraint.formula, &remap)?;
        let parts = match formula {
            Formula::And(v) => v,
            f => vec![f],
        };
        let rules = parts.into_iter().map(|f| Rule::split(f, &domain)).collect();
        Ok(LastLayerConstraint {
            layer,
            domain,
            rules,
        })
    }

    /// The layer shape.
    pub fn layer(&self) -> LastLayer {
        self.layer
    }
    /// The full box of `z`.
    pub fn domain(&self) -> &[(Q, Q)] {
        &self.domain
    }
    /// The implications, one per top-level conjunct.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether the constraint holds at one `z` for `θ` (in `f64`; for tests and diagnostics).
    pub fn holds_at(&self, theta: &[f64], z: &[f64]) -> bool {
        let y = self.layer.outputs_f64(theta, z);
        let a = Assignment {
            x: z,
            y: &y,
            x2: &[],
            y2: &[],
        };
        self.rules
            .iter()
            .all(|r| !r.premise.holds(&a) || r.conclusion.holds(&a))
    }

    /// Whether the constraint holds at one `z` for `θ`, in exact arithmetic (`z` outside the
    /// domain counts as holding: the constraint quantifies over the domain only).
    pub fn holds_at_exact(&self, theta: &[Q], z: &[Q]) -> bool {
        if z.len() != self.layer.n_features || theta.len() != self.layer.n_params() {
            return false;
        }
        if z.iter().zip(&self.domain).any(|(v, (l, u))| v < l || v > u) {
            return true;
        }
        let y: Vec<Q> = (0..self.layer.n_outputs)
            .map(|k| self.layer.output_form(k, z).eval(theta))
            .collect();
        self.rules
            .iter()
            .all(|r| !exact_holds(&r.premise, z, &y) || exact_holds(&r.conclusion, z, &y))
    }

    /// A point `z` of the domain where the constraint fails for the concrete `θ`, or `None` if
    /// it holds everywhere: exact, by Z3 on linear real arithmetic (`θ` is fixed, so
    /// `∃z: box ∧ P(z) ∧ ¬C(z)` is linear).
    ///
    /// # Errors
    /// Z3 answering "unknown" (it does not on linear arithmetic without a time limit).
    pub fn counterexample(&self, theta: &[Q]) -> Result<Option<Vec<Q>>, MaxSmtError> {
        if theta.len() == self.layer.n_params() {
            if let Some(answer) = self.box_counterexample(theta) {
                return Ok(answer);
            }
        }
        crate::z3enc::counterexample(self, theta)
    }

    /// The same check without Z3 where every rule's premise is a box. With `θ` fixed each atom
    /// is linear in `z`, and its exact range over the box is attained at a corner. A
    /// conjunction of atoms is decided exactly (a failing atom fails at a corner); any other
    /// conclusion is evaluated in three-valued logic from its atoms' ranges, which decides it
    /// when every atom it depends on keeps one truth value over the box (DeepSaDe's structured
    /// outputs, trained with slack, are in this case). `None` when some rule is outside this
    /// fragment or undecided, or a violating corner lies on a strict premise bound the box
    /// closed (the corner may not satisfy the premise; Z3 decides).
    fn box_counterexample(&self, theta: &[Q]) -> Option<Option<Vec<Q>>> {
        for r in &self.rules {
            let region = r.region.as_ref()?;
            if region.iter().any(|(l, u)| l > u) {
                continue;
            }
            let atoms: Option<Vec<&provenn_dsl::ir::Atom>> = match &r.conclusion {
                Formula::And(v) => v
                    .iter()
                    .map(|f| match f {
                        Formula::Atom(a) => Some(a),
                        _ => None,
                    })
                    .collect(),
                Formula::True => Some(vec![]),
                Formula::Atom(a) => Some(vec![a]),
                _ => None,
            };
            let Some(atoms) = atoms else {
                match self.truth_over(&r.conclusion, theta, region) {
                    Truth::True => continue,
                    Truth::False if !r.region_closed_strict => {
                        // False at every point of the box, so at any corner of it.
                        return Some(Some(region.iter().map(|(l, _)| l.clone()).collect()));
                    }
                    // Undecided: the corners where an atom attains its extremes are the likely
                    // witnesses (an output that must keep its sign first loses it there); any
                    // corner that fails exactly is one. Otherwise Z3 decides.
                    _ => match self.corner_witness(r, theta, region) {
                        Some(z) => return Some(Some(z)),
                        None => return None,
                    },
                }
            };
            for a in atoms {
                let g = self.atom_form(a, theta);
                let (lo, hi) = g.range(region);
                let fails_at_min = match a.cmp {
                    Cmp::Gt => !lo.is_positive(),
                    Cmp::Ge | Cmp::Eq => lo.is_negative(),
                    _ => false,
                };
                let fails_at_max = match a.cmp {
                    Cmp::Lt => !hi.is_negative(),
                    Cmp::Le | Cmp::Eq => hi.is_positive(),
                    _ => false,
                };
                if !(fails_at_min || fails_at_max) {
                    continue;
                }
                if r.region_closed_strict {
                    return None;
                }
                // The corner that attains the failing end.
                return Some(Some(extreme_corner(&g, region, fails_at_min)));
            }
        }
        Some(None)
    }

    /// The atom as `c + Σ_j g_j z_j`, outputs replaced by `b_k + Σ_j W_kj z_j`.
    fn atom_form(&self, a: &provenn_dsl::ir::Atom, theta: &[Q]) -> LinForm {
        let mut g = LinForm::constant(coef(&a.expr.constant));
        for (v, c) in &a.expr.terms {
            let c = coef(c);
            match *v {
                Var::Input(_, j) => g.add_term(j, c),
                Var::Output(_, k) => {
                    g.constant += &c * &theta[self.layer.bias(k)];
                    for j in 0..self.layer.n_features {
                        g.add_term(j, &c * &theta[self.layer.weight(k, j)]);
                    }
                }
            }
        }
        g
    }

    /// A corner of `region` that minimises or maximises one of the conclusion's atoms and at
    /// which the rule fails, exactly.
    fn corner_witness(&self, r: &Rule, theta: &[Q], region: &[(Q, Q)]) -> Option<Vec<Q>> {
        fn atoms<'a>(f: &'a Formula, out: &mut Vec<&'a provenn_dsl::ir::Atom>) {
            match f {
                Formula::True | Formula::False => {}
                Formula::Atom(a) => out.push(a),
                Formula::And(v) | Formula::Or(v) => v.iter().for_each(|g| atoms(g, out)),
                Formula::Count { terms, .. } => terms.iter().for_each(|(_, g)| atoms(g, out)),
            }
        }
        let mut list = Vec::new();
        atoms(&r.conclusion, &mut list);
        for a in list {
            let g = self.atom_form(a, theta);
            for low in [true, false] {
                let z = extreme_corner(&g, region, low);
                let y: Vec<Q> = (0..self.layer.n_outputs)
                    .map(|k| self.layer.output_form(k, &z).eval(theta))
                    .collect();
                if exact_holds(&r.premise, &z, &y) && !exact_holds(&r.conclusion, &z, &y) {
                    return Some(z);
                }
            }
        }
        None
    }

    /// Kleene evaluation of `f` over the whole box `region`: `True` (`False`) when it holds
    /// (fails) at every point, from each atom's exact range.
    fn truth_over(&self, f: &Formula, theta: &[Q], region: &[(Q, Q)]) -> Truth {
        match f {
            Formula::True => Truth::True,
            Formula::False => Truth::False,
            Formula::Atom(a) => {
                let (lo, hi) = self.atom_form(a, theta).range(region);
                Truth::of_range(&lo, &hi, a.cmp)
            }
            Formula::And(v) => v.iter().fold(Truth::True, |acc, g| {
                acc.and(self.truth_over(g, theta, region))
            }),
            Formula::Or(v) => v.iter().fold(Truth::False, |acc, g| {
                acc.or(self.truth_over(g, theta, region))
            }),
            Formula::Count { terms, cmp, bound } => {
                // The sum's range: certain terms always count, unknown ones may or may not.
                let (mut lo, mut hi) = (-bound.clone(), -bound.clone());
                for (w, g) in terms {
                    match self.truth_over(g, theta, region) {
                        Truth::True => {
                            lo += w;
                            hi += w;
                        }
                        Truth::False => {}
                        Truth::Unknown if w.is_negative() => lo += w,
                        Truth::Unknown => hi += w,
                    }
                }
                Truth::of_range(&lo, &hi, *cmp)
            }
        }
    }

    /// [`counterexample`](Self::counterexample) for `f64` weights (their exact values).
    ///
    /// # Errors
    /// As [`counterexample`](Self::counterexample); non-finite weights.
    pub fn counterexample_f64(&self, theta: &[f64]) -> Result<Option<Vec<Q>>, MaxSmtError> {
        let q: Result<Vec<Q>, _> = theta.iter().map(|&v| q_from_f64(v)).collect();
        self.counterexample(&q?)
    }
}

/// The corner of `region` where `g` is smallest (`low`) or largest.
fn extreme_corner(g: &LinForm, region: &[(Q, Q)], low: bool) -> Vec<Q> {
    region
        .iter()
        .enumerate()
        .map(|(j, (l, u))| {
            let positive = g.terms.get(&j).is_some_and(Signed::is_positive);
            if positive == low {
                l.clone()
            } else {
                u.clone()
            }
        })
        .collect()
}

/// A truth value over a whole box: always, never, or depends on the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    /// `v ⋈ 0` for every `v ∈ [lo, hi]` (`True`), for none (`False`), or for some.
    fn of_range(lo: &Q, hi: &Q, cmp: Cmp) -> Truth {
        let (always, never) = match cmp {
            Cmp::Gt => (lo.is_positive(), !hi.is_positive()),
            Cmp::Ge => (!lo.is_negative(), hi.is_negative()),
            Cmp::Lt => (hi.is_negative(), !lo.is_negative()),
            Cmp::Le => (!hi.is_positive(), lo.is_positive()),
            Cmp::Eq => (
                lo.is_zero() && hi.is_zero(),
                lo.is_positive() || hi.is_negative(),
            ),
        };
        match (always, never) {
            (true, _) => Truth::True,
            (_, true) => Truth::False,
            _ => Truth::Unknown,
        }
    }
    fn and(self, o: Truth) -> Truth {
        match (self, o) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }
    fn or(self, o: Truth) -> Truth {
        match (self, o) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }
}

impl Rule {
    /// Splits `¬P₁ ∨ … ∨ C` into premise `P₁ ∧ …` (the input-only disjuncts, negated) and
    /// conclusion (the rest), and reads the premise as a box when it is one.
    fn split(f: Formula, domain: &[(Q, Q)]) -> Rule {
        let disjuncts = match f {
            Formula::Or(v) => v,
            f => vec![f],
        };
        let (neg_premise, rest): (Vec<_>, Vec<_>) =
            disjuncts.into_iter().partition(formula_is_input_only);
        let premise = Formula::or(neg_premise).negate();
        let conclusion = Formula::or(rest);
        let (region, region_closed_strict) = match premise_box(&premise, domain) {
            Some((b, s)) => (Some(b), s),
            None => (None, false),
        };
        Rule {
            premise,
            region,
            region_closed_strict,
            conclusion,
        }
    }
}

fn formula_is_input_only(f: &Formula) -> bool {
    match f {
        Formula::True | Formula::False => true,
        Formula::Atom(a) => a.expr.is_input_only(),
        Formula::And(v) | Formula::Or(v) => v.iter().all(formula_is_input_only),
        Formula::Count { terms, .. } => terms.iter().all(|(_, f)| formula_is_input_only(f)),
    }
}

/// The box `{z ∈ domain : premise}` when the premise is a conjunction of single-feature
/// bounds, and whether a strict bound was closed. An empty box is returned as `l > u`.
fn premise_box(premise: &Formula, domain: &[(Q, Q)]) -> Option<(Vec<(Q, Q)>, bool)> {
    let atoms: Vec<&Formula> = match premise {
        Formula::True => vec![],
        Formula::And(v) => v.iter().collect(),
        f => vec![f],
    };
    let mut b = domain.to_vec();
    let mut strict = false;
    for f in atoms {
        let Formula::Atom(a) = f else {
            return (matches!(f, Formula::False)).then(|| {
                let empty = vec![(Q::from_integer(1.into()), Q::zero()); domain.len()];
                (empty, false)
            });
        };
        if a.expr.terms.len() != 1 {
            return None;
        }
        let (v, c) = a.expr.terms.iter().next()?;
        let (Var::Input(Side::First, j), Some(c)) = (v, c.as_const()) else {
            return None;
        };
        let k = a.expr.constant.as_const()?;
        // c·z + k ⋈ 0  ⇔  z ⋈' −k/c
        let t = -k / c;
        let cmp = if c.is_negative() { a.cmp.flip() } else { a.cmp };
        let (l, u) = &mut b[*j];
        match cmp {
            Cmp::Lt | Cmp::Le => {
                strict |= cmp == Cmp::Lt;
                if t < *u {
                    *u = t;
                }
            }
            Cmp::Gt | Cmp::Ge => {
                strict |= cmp == Cmp::Gt;
                if t > *l {
                    *l = t;
                }
            }
            Cmp::Eq => {
                if t > *l {
                    *l = t.clone();
                }
                if t < *u {
                    *u = t;
                }
            }
        }
    }
    Some((b, strict))
}

fn remap_formula(
    f: &Formula,
    remap: &dyn Fn(Var) -> Result<Var, MaxSmtError>,
) -> Result<Formula, MaxSmtError> {
    Ok(match f {
        Formula::True => Formula::True,
        Formula::False => Formula::False,
        Formula::Atom(a) => {
            let mut expr = Linear::default();
            for (v, c) in &a.expr.terms {
                if c.as_const().is_none() {
                    return Err(MaxSmtError::Unsupported(
                        "input-dependent coefficients".into(),
                    ));
                }
                expr = expr.plus(Linear::var(remap(*v)?, c.clone()));
            }
            if a.expr.constant.as_const().is_none() {
                return Err(MaxSmtError::Unsupported("input-dependent constants".into()));
            }
            expr.constant = a.expr.constant.clone();
            Formula::atom(expr, a.cmp)
        }
        Formula::And(v) => Formula::and(
            v.iter()
                .map(|g| remap_formula(g, remap))
                .collect::<Result<_, _>>()?,
        ),
        Formula::Or(v) => Formula::or(
            v.iter()
                .map(|g| remap_formula(g, remap))
                .collect::<Result<_, _>>()?,
        ),
        Formula::Count { terms, cmp, bound } => Formula::Count {
            terms: terms
                .iter()
                .map(|(w, g)| Ok((w.clone(), remap_formula(g, remap)?)))
                .collect::<Result<_, MaxSmtError>>()?,
            cmp: *cmp,
            bound: bound.clone(),
        },
    })
}

fn exact_holds(f: &Formula, z: &[Q], y: &[Q]) -> bool {
    match f {
        Formula::True => true,
        Formula::False => false,
        Formula::Atom(a) => {
            let mut e = coef(&a.expr.constant);
            for (v, c) in &a.expr.terms {
                let val = match *v {
                    Var::Input(_, j) => &z[j],
                    Var::Output(_, k) => &y[k],
                };
                e += coef(c) * val;
            }
            LinAtom {
                expr: LinForm::constant(e),
                cmp: a.cmp,
            }
            .holds(&[])
        }
        Formula::And(v) => v.iter().all(|p| exact_holds(p, z, y)),
        Formula::Or(v) => v.iter().any(|p| exact_holds(p, z, y)),
        Formula::Count { terms, cmp, bound } => {
            let mut s = -bound.clone();
            for (w, p) in terms {
                if exact_holds(p, z, y) {
                    s += w;
                }
            }
            LinAtom {
                expr: LinForm::constant(s),
                cmp: *cmp,
            }
            .holds(&[])
        }
    }
}

/// The constant of a DSL coefficient (remapped formulas only hold constants).
pub(crate) fn coef(c: &provenn_dsl::ir::Coef) -> Q {
    c.as_const().cloned().unwrap_or_else(Q::zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rational::big_q;
    use num_bigint::BigInt;
    use proptest::prelude::*;

    fn form() -> impl Strategy<Value = LinForm> {
        (
            prop::collection::vec((0usize..8, big_q(140)), 0..10),
            big_q(140),
        )
            .prop_map(|(terms, c)| {
                let mut f = LinForm::constant(c);
                for (i, q) in terms {
                    f.add_term(i, q);
                }
                f
            })
    }

    fn factor() -> impl Strategy<Value = Q> {
        prop_oneof![
            Just(Q::one()),
            Just(-Q::one()),
            Just(Q::zero()),
            Just(Q::from_integer(BigInt::from(-2))),
            big_q(140),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The fast paths of `scaled`, `add_scaled` and `add_term` (no gcd for ±1, direct
        /// insertion) give the term-wise products and sums, with no zero coefficient kept.
        #[test]
        fn scaling_and_adding_are_term_wise(a in form(), b in form(), k in factor()) {
            let s = a.scaled(&k);
            prop_assert_eq!(&s.constant, &(&a.constant * &k));
            let expected: BTreeMap<usize, Q> = a
                .terms
                .iter()
                .map(|(i, c)| (*i, c * &k))
                .filter(|(_, c)| !c.is_zero())
                .collect();
            prop_assert_eq!(&s.terms, &expected);

            let mut sum = a.clone();
            sum.add_scaled(&b, &k);
            let mut expected = a.terms.clone();
            for (i, c) in &b.terms {
                let e = expected.entry(*i).or_insert_with(Q::zero);
                *e = &*e + c * &k;
            }
            expected.retain(|_, c| !c.is_zero());
            prop_assert_eq!(&sum.terms, &expected);
            prop_assert_eq!(&sum.constant, &(&a.constant + &b.constant * &k));

            // Cancellation removes every term.
            let mut zero = a.clone();
            zero.add_scaled(&a, &-Q::one());
            prop_assert!(zero.terms.is_empty() && zero.constant.is_zero());
        }
    }
}
