//! Exact elimination of `∀z ∈ box` for constraints linear in `z` once `θ` is fixed.
//!
//! For an atom `a(θ)·z + c(θ) ≥ 0` (each `a_j`, `c` linear in `θ`) and a box `[l, u]`:
//! `∀z: a·z + c ≥ 0 ⇔ Σ_j min(a_j l_j, a_j u_j) + c ≥ 0 ⇔ ∃t: t_j ≤ a_j l_j, t_j ≤ a_j u_j,
//! Σ_j t_j + c ≥ 0` — linear in `(θ, t)` and exact; the same holds for `>`, and `≤`/`<`/`=`
//! reduce to it. Conjunctions distribute over `∀`. Disjunctions and counts do not: for them
//! the encoding requires each disjunct to hold (or fail) on a whole sub-box ("selectors"),
//! which is sound but may reject a `θ` the constraint allows; [`Exactness`] says so.
use num_traits::Signed;
use provenn_dsl::ir::{Atom, Cmp, Formula, Var};

use crate::lastlayer::{coef, LastLayer, LastLayerConstraint, LinAtom, LinForm};
use crate::{MaxSmtError, Q};

/// Options of [`eliminate()`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EliminationOptions {
    /// For disjunctions and counts: bisect the region this many times (along its widest
    /// feature) and choose the disjunct per piece. 0 = one choice for the whole region.
    pub split_depth: usize,
}

/// Whether an eliminated encoding is equivalent to the quantified constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exactness {
    /// Equivalent: the same `θ` satisfy both.
    Exact,
    /// Sound only: every `θ` it admits satisfies the constraint, but some admissible `θ` may be
    /// rejected; the reason is given.
    Sound(String),
}

/// A quantifier-free formula over solver variables (`θ`, then auxiliaries).
#[derive(Debug, Clone, PartialEq)]
pub enum QfFormula {
    /// Always true.
    True,
    /// Always false.
    False,
    /// A linear atom.
    Atom(LinAtom),
    /// Conjunction.
    And(Vec<QfFormula>),
    /// Disjunction.
    Or(Vec<QfFormula>),
    /// `∃s ∈ {0,1}ⁿ: (sᵢ ⇒ holdsᵢ) ∧ (¬sᵢ ⇒ failsᵢ) ∧ Σ wᵢ sᵢ ⋈ bound`.
    Count {
        /// The terms.
        terms: Vec<CountTerm>,
        /// Comparison of `Σ wᵢ sᵢ − bound` with zero.
        cmp: Cmp,
        /// Bound.
        bound: Q,
    },
}

/// One term of [`QfFormula::Count`].
#[derive(Debug, Clone, PartialEq)]
pub struct CountTerm {
    /// Weight `wᵢ`.
    pub weight: Q,
    /// What selecting the term (`sᵢ = 1`) requires, if anything.
    pub holds: Option<QfFormula>,
    /// What not selecting it (`sᵢ = 0`) requires, if anything.
    pub fails: Option<QfFormula>,
}

/// The quantifier-free problem over `(θ, t)` produced by [`eliminate()`].
#[derive(Debug, Clone, PartialEq)]
pub struct EliminatedProblem {
    /// The last layer.
    pub layer: LastLayer,
    /// Bounds of every variable: the weight box, then the auxiliaries' exact ranges.
    pub bounds: Vec<(Q, Q)>,
    /// Definitions of the auxiliaries (`t_j ≤ a_j l_j`, `t_j ≤ a_j u_j`); always hard.
    pub definitions: Vec<LinAtom>,
    /// The constraint.
    pub formula: QfFormula,
    /// Whether it is equivalent to the quantified constraint.
    pub exactness: Exactness,
}

impl EliminatedProblem {
    /// Number of variables (`θ` and auxiliaries).
    pub fn n_vars(&self) -> usize {
        self.bounds.len()
    }
    /// Number of auxiliaries.
    pub fn n_aux(&self) -> usize {
        self.bounds.len() - self.layer.n_params()
    }
}

struct Ctx {
    layer: LastLayer,
    bounds: Vec<(Q, Q)>,
    definitions: Vec<LinAtom>,
    sound: Vec<String>,
}

/// Eliminates the quantifiers of `constraint` for weights in `theta_box` (closed; it bounds
/// the auxiliaries, which the MILP back end needs for exact big-M constants).
///
/// # Errors
/// A premise that is not a box (use the quantified encoding), a weight box of the wrong size.
pub fn eliminate(
    constraint: &LastLayerConstraint,
    theta_box: &[(Q, Q)],
    options: EliminationOptions,
) -> Result<EliminatedProblem, MaxSmtError> {
    let layer = constraint.layer();
    if theta_box.len() != layer.n_params() {
        return Err(MaxSmtError::Shape(format!(
            "weight box has {} entries, the layer {} parameters",
            theta_box.len(),
            layer.n_params()
        )));
    }
    let mut ctx = Ctx {
        layer,
        bounds: theta_box.to_vec(),
        definitions: Vec::new(),
        sound: Vec::new(),
    };
    let mut parts = Vec::new();
    for (r, rule) in constraint.rules().iter().enumerate() {
        let region = rule.region.as_ref().ok_or_else(|| {
            MaxSmtError::Unsupported(format!(
                "rule {r}: the premise is not a conjunction of single-feature bounds; use the quantified encoding"
            ))
        })?;
        if region.iter().any(|(l, u)| l > u) {
            continue; // the premise never holds
        }
        if rule.region_closed_strict && has_strict(&rule.conclusion) {
            ctx.sound.push(format!(
                "rule {r}: a strict premise bound is closed, and the conclusion has strict comparisons"
            ));
        }
        parts.push(elim(
            &mut ctx,
            &rule.conclusion,
            region,
            options.split_depth,
        ));
    }
    let exactness = if ctx.sound.is_empty() {
        Exactness::Exact
    } else {
        Exactness::Sound(ctx.sound.join("; "))
    };
    Ok(EliminatedProblem {
        layer,
        bounds: ctx.bounds,
        definitions: ctx.definitions,
        formula: and(parts),
        exactness,
    })
}

fn has_strict(f: &Formula) -> bool {
    match f {
        Formula::True | Formula::False => false,
        Formula::Atom(a) => matches!(a.cmp, Cmp::Lt | Cmp::Gt),
        Formula::And(v) | Formula::Or(v) => v.iter().any(has_strict),
        Formula::Count { .. } => true,
    }
}

fn and(v: Vec<QfFormula>) -> QfFormula {
    let mut out = Vec::new();
    for f in v {
        match f {
            QfFormula::True => {}
            QfFormula::False => return QfFormula::False,
            QfFormula::And(w) => out.extend(w),
            f => out.push(f),
        }
    }
    match out.len() {
        0 => QfFormula::True,
        1 => out.pop().expect("one"),
        _ => QfFormula::And(out),
    }
}

fn or(v: Vec<QfFormula>) -> QfFormula {
    let mut out = Vec::new();
    for f in v {
        match f {
            QfFormula::False => {}
            QfFormula::True => return QfFormula::True,
            QfFormula::Or(w) => out.extend(w),
            f => out.push(f),
        }
    }
    match out.len() {
        0 => QfFormula::False,
        1 => out.pop().expect("one"),
        _ => QfFormula::Or(out),
    }
}

/// A box: one closed interval per feature.
type Region = Vec<(Q, Q)>;

/// Bisects `region` along its widest feature (`None` for a point).
fn bisect(region: &[(Q, Q)]) -> Option<(Region, Region)> {
    let (j, _) = region
        .iter()
        .enumerate()
        .map(|(j, (l, u))| (j, u - l))
        .filter(|(_, w)| w.is_positive())
        .max_by(|a, b| a.1.cmp(&b.1))?;
    let mid = (&region[j].0 + &region[j].1) / Q::from_integer(2.into());
    let mut a = region.to_vec();
    let mut b = region.to_vec();
    a[j].1 = mid.clone();
    b[j].0 = mid;
    Some((a, b))
}

fn is_point(region: &[(Q, Q)]) -> bool {
    region.iter().all(|(l, u)| l == u)
}

fn elim(ctx: &mut Ctx, f: &Formula, region: &[(Q, Q)], depth: usize) -> QfFormula {
    match f {
        Formula::True => QfFormula::True,
        Formula::False => QfFormula::False,
        Formula::Atom(a) => forall_atom(ctx, a, region),
        Formula::And(v) => and(v.iter().map(|g| elim(ctx, g, region, depth)).collect()),
        Formula::Or(_) | Formula::Count { .. } => {
            if depth > 0 {
                if let Some((a, b)) = bisect(region) {
                    let fa = elim(ctx, f, &a, depth - 1);
                    let fb = elim(ctx, f, &b, depth - 1);
                    return and(vec![fa, fb]);
                }
            }
            if !is_point(region) {
                let what = if matches!(f, Formula::Or(_)) {
                    "a disjunction"
                } else {
                    "a count"
                };
                let msg = format!("{what} is decided per region (selectors)");
                if !ctx.sound.contains(&msg) {
                    ctx.sound.push(msg);
                }
            }
            match f {
                Formula::Or(v) => or(v.iter().map(|g| elim(ctx, g, region, 0)).collect()),
                Formula::Count { terms, cmp, bound } => {
                    let ge_type = matches!(cmp, Cmp::Ge | Cmp::Gt);
                    let le_type = matches!(cmp, Cmp::Le | Cmp::Lt);
                    let terms = terms
                        .iter()
                        .map(|(w, g)| {
                            let pos = w.is_positive();
                            let need_holds =
                                *cmp == Cmp::Eq || (pos && ge_type) || (!pos && le_type);
                            let need_fails =
                                *cmp == Cmp::Eq || (pos && le_type) || (!pos && ge_type);
                            CountTerm {
                                weight: w.clone(),
                                holds: need_holds.then(|| elim(ctx, g, region, 0)),
                                fails: need_fails
                                    .then(|| elim(ctx, &g.clone().negate(), region, 0)),
                            }
                        })
                        .collect();
                    QfFormula::Count {
                        terms,
                        cmp: *cmp,
                        bound: bound.clone(),
                    }
                }
                _ => unreachable!("matched above"),
            }
        }
    }
}

/// `∀z ∈ region: atom(θ, z)` as linear atoms over `(θ, t)`.
fn forall_atom(ctx: &mut Ctx, atom: &Atom, region: &[(Q, Q)]) -> QfFormula {
    let layer = ctx.layer;
    // e(θ, z) = Σ_j a_j(θ) z_j + c(θ)
    let mut a: Vec<LinForm> = vec![LinForm::default(); layer.n_features];
    let mut c = LinForm::constant(coef(&atom.expr.constant));
    for (v, k) in &atom.expr.terms {
        let k = coef(k);
        match v {
            Var::Output(_, o) => {
                c.add_term(layer.bias(*o), k.clone());
                for (j, aj) in a.iter_mut().enumerate() {
                    aj.add_term(layer.weight(*o, j), k.clone());
                }
            }
            Var::Input(_, j) => a[*j].constant += k,
        }
    }
    let minus = Q::from_integer((-1).into());
    match atom.cmp {
        Cmp::Ge | Cmp::Gt => min_atom(ctx, &a, &c, atom.cmp, region),
        Cmp::Le | Cmp::Lt => {
            let a: Vec<LinForm> = a.iter().map(|f| f.scaled(&minus)).collect();
            min_atom(ctx, &a, &c.scaled(&minus), atom.cmp.flip(), region)
        }
        Cmp::Eq => {
            let lo = min_atom(ctx, &a, &c, Cmp::Ge, region);
            let na: Vec<LinForm> = a.iter().map(|f| f.scaled(&minus)).collect();
            let hi = min_atom(ctx, &na, &c.scaled(&minus), Cmp::Ge, region);
            and(vec![lo, hi])
        }
    }
}

/// `min_{z ∈ region} (a·z + c) ⋈ 0` for `⋈ ∈ {≥, >}`.
fn min_atom(ctx: &mut Ctx, a: &[LinForm], c: &LinForm, cmp: Cmp, region: &[(Q, Q)]) -> QfFormula {
    let mut sum = c.clone();
    for (aj, (l, u)) in a.iter().zip(region) {
        if l == u {
            sum.add_scaled(aj, l);
            continue;
        }
        let (alo, ahi) = aj.range(&ctx.bounds);
        if !alo.is_negative() {
            // a_j ≥ 0 on the weight box: the minimum is at l_j.
            sum.add_scaled(aj, l);
        } else if !ahi.is_positive() {
            sum.add_scaled(aj, u);
        } else {
            let al = aj.scaled(l);
            let au = aj.scaled(u);
            let (l1, h1) = al.range(&ctx.bounds);
            let (l2, h2) = au.range(&ctx.bounds);
            let t = ctx.bounds.len();
            ctx.bounds.push((l1.min(l2), h1.min(h2)));
            for bound in [al, au] {
                // t − a_j·bound ≤ 0
                let mut d = LinForm::var(t, Q::from_integer(1.into()));
                d.add_scaled(&bound, &Q::from_integer((-1).into()));
                ctx.definitions.push(LinAtom {
                    expr: d,
                    cmp: Cmp::Le,
                });
            }
            sum.add_term(t, Q::from_integer(1.into()));
        }
    }
    if sum.is_constant() {
        let holds = LinAtom { expr: sum, cmp }.holds(&[]);
        return if holds {
            QfFormula::True
        } else {
            QfFormula::False
        };
    }
    QfFormula::Atom(LinAtom { expr: sum, cmp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisect_halves_the_widest_feature() {
        let q = |n: i64| Q::from_integer(n.into());
        let (a, b) = bisect(&[(q(0), q(1)), (q(0), q(4))]).unwrap();
        assert_eq!(a[1], (q(0), q(2)));
        assert_eq!(b[1], (q(2), q(4)));
        assert_eq!(a[0], (q(0), q(1)));
        assert!(bisect(&[(q(1), q(1))]).is_none());
    }
}
