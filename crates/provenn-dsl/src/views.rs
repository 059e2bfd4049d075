//! Views of a constraint that solver crates consume: the affine form HardNet projects onto,
//! and the conjunctive-box fragment on which ∀ over a box can be eliminated exactly.
use num_traits::ToPrimitive;

use crate::ir::{Atom, Cmp, Constraint, Formula, Side, Var};

/// `lower ≤ A·y ≤ upper` at one input (rows of `A` over the outputs); `±∞` for one-sided rows.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineRows {
    /// Coefficient rows over the outputs.
    pub a: Vec<Vec<f64>>,
    /// Lower bounds (`-∞` if none).
    pub lower: Vec<f64>,
    /// Upper bounds (`+∞` if none).
    pub upper: Vec<f64>,
}

fn input_only(f: &Formula) -> bool {
    match f {
        Formula::True | Formula::False => true,
        Formula::Atom(a) => a.expr.is_input_only(),
        Formula::And(v) | Formula::Or(v) => v.iter().all(input_only),
        Formula::Count { terms, .. } => terms.iter().all(|(_, f)| input_only(f)),
    }
}

/// Row `a·y ⋈ b` of an atom at input `x`, if the atom mentions only first-copy outputs.
fn row(at: &Atom, x: &[f64], n_out: usize) -> Option<(Vec<f64>, f64, f64)> {
    let mut a = vec![0.0; n_out];
    let mut rest = at.expr.constant.eval(x, &[]);
    for (v, c) in &at.expr.terms {
        let cv = c.eval(x, &[]);
        match v {
            Var::Output(Side::First, k) if *k < n_out => a[*k] += cv,
            Var::Input(Side::First, j) => rest += cv * x.get(*j).copied()?,
            _ => return None,
        }
    }
    // a·y + rest ⋈ 0  ⇔  a·y ⋈ −rest; strict comparisons are taken as their closure
    let b = -rest;
    Some(match at.cmp {
        Cmp::Le | Cmp::Lt => (a, f64::NEG_INFINITY, b),
        Cmp::Ge | Cmp::Gt => (a, b, f64::INFINITY),
        Cmp::Eq => (a, b, b),
    })
}

fn collect(f: &Formula, x: &[f64], n_out: usize, out: &mut AffineRows) -> Option<()> {
    let probe = crate::ir::Assignment {
        x,
        y: &[],
        x2: &[],
        y2: &[],
    };
    match f {
        Formula::True => Some(()),
        Formula::False => None,
        Formula::And(v) => v.iter().try_for_each(|g| collect(g, x, n_out, out)),
        Formula::Atom(a) if a.expr.is_input_only() => {
            a.cmp.holds(a.expr.eval(&probe)).then_some(())
        }
        Formula::Atom(a) => {
            let (r, l, u) = row(a, x, n_out)?;
            out.a.push(r);
            out.lower.push(l);
            out.upper.push(u);
            Some(())
        }
        Formula::Or(v) => {
            // piecewise-in-x: all disjuncts but one depend on the input only
            let (inp, outp): (Vec<&Formula>, Vec<&Formula>) = v.iter().partition(|g| input_only(g));
            if inp.iter().any(|g| g.holds(&probe)) {
                return Some(()); // the constraint is inactive at this x
            }
            match outp.as_slice() {
                [g] => collect(g, x, n_out, out),
                [] => None,
                _ => None,
            }
        }
        Formula::Count { .. } => None,
    }
}

impl Constraint {
    /// The affine form `b_l(x) ≤ A(x)·y ≤ b_u(x)` at input `x` (scaled), when the constraint
    /// is a conjunction of atoms linear in the outputs, possibly guarded by conditions on the
    /// input (`x ≤ −1 ⇒ y ≥ …`). `None` if it is not of that kind (disjunctions over outputs,
    /// counting atoms, relational constraints) or is violated independently of `y`.
    pub fn affine_at(&self, x: &[f64], n_outputs: usize) -> Option<AffineRows> {
        if self.two_copy {
            return None;
        }
        let mut out = AffineRows {
            a: vec![],
            lower: vec![],
            upper: vec![],
        };
        collect(&self.formula, x, n_outputs, &mut out)?;
        Some(out)
    }

    /// The conjunctive-box fragment: `∧ᵢ (x ∈ Bᵢ ⇒ ∧ⱼ aᵢⱼ·(x, y) ⋈ 0)` with each premise a
    /// sub-box given by single-input bounds and each conclusion a conjunction of atoms linear
    /// in inputs and outputs with constant coefficients. On this fragment, `∀x` over a box can
    /// be eliminated exactly (provenn-maxsmt). `None` otherwise.
    ///
    /// Premise boxes are closed: the complement of a strict bound `x > c` is `x ≤ c`, and of a
    /// non-strict `x ≥ c` the closure `x ≤ c` of `x < c`; enforcing a conclusion on the closed
    /// box is sound (it covers the open one).
    pub fn box_clauses(&self) -> Option<Vec<BoxClause>> {
        if self.two_copy {
            return None;
        }
        let clauses: Vec<&Formula> = match &self.formula {
            Formula::And(v) => v.iter().collect(),
            f => vec![f],
        };
        clauses
            .into_iter()
            .map(|c| box_clause(c, &self.domain))
            .collect()
    }
}

/// `x ∈ premise ⇒ ∧ conclusion`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxClause {
    /// The premise sub-box of the domain, per input `(lower, upper)`.
    pub premise: Vec<(f64, f64)>,
    /// Atoms linear in inputs and outputs (constant coefficients).
    pub conclusion: Vec<Atom>,
}

fn single_input_bound(f: &Formula) -> Option<(usize, Cmp, f64)> {
    let Formula::Atom(a) = f else { return None };
    if a.expr.terms.len() != 1 {
        return None;
    }
    let (v, c) = a.expr.terms.iter().next()?;
    let Var::Input(Side::First, j) = v else {
        return None;
    };
    let c = c.as_const()?.to_f64()?;
    let k = a.expr.constant.as_const()?.to_f64()?;
    if c == 0.0 {
        return None;
    }
    let cmp = if c > 0.0 { a.cmp } else { a.cmp.flip() };
    Some((*j, cmp, -k / c))
}

fn linear_atoms(f: &Formula) -> Option<Vec<Atom>> {
    match f {
        Formula::Atom(a) if a.expr.is_linear() => Some(vec![a.clone()]),
        Formula::And(v) => v
            .iter()
            .map(linear_atoms)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat()),
        Formula::True => Some(vec![]),
        _ => None,
    }
}

fn box_clause(f: &Formula, domain: &[(f64, f64)]) -> Option<BoxClause> {
    let items: Vec<&Formula> = match f {
        Formula::Or(v) => v.iter().collect(),
        g => vec![g],
    };
    let mut premise = domain.to_vec();
    let mut conclusion = None;
    // `x_j ≠ c` arrives as the pair (x_j < c) ∨ (x_j > c): its complement is x_j = c.
    let bounds: Vec<Option<(usize, Cmp, f64)>> =
        items.iter().map(|g| single_input_bound(g)).collect();
    for (g, b) in items.iter().zip(&bounds) {
        match b {
            Some((j, cmp, c)) => {
                let (lo, hi) = &mut premise[*j];
                // premise is the complement of the disjunct
                match cmp {
                    Cmp::Lt => {
                        let paired = bounds
                            .iter()
                            .any(|o| matches!(o, Some((jj, Cmp::Gt, cc)) if jj == j && cc == c));
                        if paired {
                            *lo = lo.max(*c);
                            *hi = hi.min(*c);
                        } else {
                            *lo = lo.max(*c);
                        }
                    }
                    Cmp::Le => *lo = lo.max(*c),
                    Cmp::Gt => {
                        let paired = bounds
                            .iter()
                            .any(|o| matches!(o, Some((jj, Cmp::Lt, cc)) if jj == j && cc == c));
                        if !paired {
                            *hi = hi.min(*c);
                        }
                    }
                    Cmp::Ge => *hi = hi.min(*c),
                    Cmp::Eq => return None, // complement of an equality is not a box
                }
            }
            None => {
                if conclusion.is_some() {
                    return None;
                }
                conclusion = Some(linear_atoms(g)?);
            }
        }
    }
    if premise.iter().any(|(l, h)| l > h) {
        return Some(BoxClause {
            premise,
            conclusion: vec![],
        }); // empty premise: vacuous
    }
    Some(BoxClause {
        premise,
        conclusion: conclusion?,
    })
}

#[cfg(test)]
mod tests {
    use crate::{compile, Bindings};

    #[test]
    fn affine_view_of_a_piecewise_constraint() {
        let b = Bindings::anonymous(&[(-2.0, 2.0)], 2);
        let c = &compile("forall x: (x[0] <= -1 => y[0] >= 5 * sin(pi / 2 * (x[0] + 1)) ^ 2) and y[0] - y[1] <= x[0] + 3", &b).unwrap()[0];
        let r = c.affine_at(&[-1.5], 2).unwrap();
        let bound = 5.0 * (std::f64::consts::FRAC_PI_2 * -0.5).sin().powi(2);
        assert_eq!(r.a, vec![vec![1.0, 0.0], vec![1.0, -1.0]]);
        assert!((r.lower[0] - bound).abs() < 1e-12 && r.upper[0] == f64::INFINITY);
        assert_eq!((r.lower[1], r.upper[1]), (f64::NEG_INFINITY, 1.5));
        let r = c.affine_at(&[0.5], 2).unwrap();
        assert_eq!(r.a, vec![vec![1.0, -1.0]], "the guarded row is inactive");
        let disj = &compile("forall x: y[0] > 0 or y[1] > 0", &b).unwrap()[0];
        assert!(disj.affine_at(&[0.0], 2).is_none());
    }

    #[test]
    fn box_fragment_of_an_implication() {
        let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0), (0.0, 1.0)], 2);
        let c = &compile(
            "forall x: x[0] <= 0.5 and x[1] == 0 => y[0] > y[1] and y[0] <= 3 * x[2]",
            &b,
        )
        .unwrap()[0];
        let cl = c.box_clauses().unwrap();
        assert_eq!(cl.len(), 1);
        assert_eq!(cl[0].premise, vec![(0.0, 0.5), (0.0, 0.0), (0.0, 1.0)]);
        assert_eq!(cl[0].conclusion.len(), 2);
        let two = &compile("forall x: y[0] >= 0 and (x[2] > 0.25 => y[1] <= 1)", &b).unwrap()[0];
        let cl = two.box_clauses().unwrap();
        assert_eq!(cl[1].premise, vec![(0.0, 1.0), (0.0, 1.0), (0.25, 1.0)]);
        let not_box = &compile("forall x: y[0] > 0 or y[1] > 0", &b).unwrap()[0];
        assert!(not_box.box_clauses().is_none());
    }
}

#[cfg(test)]
mod violation_tests {
    use crate::ir::Assignment;
    use crate::{compile, Bindings};

    #[test]
    fn violation_measures_the_outputs_with_inputs_fixed() {
        let b = Bindings::anonymous(&[(0.0, 1.0)], 2);
        let c = &compile("forall x: x[0] <= 0.5 => y[0] >= y[1] + 1", &b).unwrap()[0];
        let v = |x: f64, y0: f64, y1: f64| {
            c.formula.violation(&Assignment {
                x: &[x],
                y: &[y0, y1],
                x2: &[],
                y2: &[],
            })
        };
        assert_eq!(v(0.2, 0.0, 2.0), 3.0); // premise holds: conclusion short by 3
        assert_eq!(v(0.2, 3.0, 2.0), 0.0);
        assert_eq!(v(0.9, 0.0, 2.0), 0.0); // premise false: satisfied
        let strict = &compile("forall x: y[0] > y[1]", &b).unwrap()[0];
        let a = Assignment {
            x: &[0.0],
            y: &[1.0, 1.0],
            x2: &[],
            y2: &[],
        };
        assert!(!strict.holds(&a), "strict comparisons stay strict");
        assert_eq!(strict.formula.violation(&a), 0.0);
    }
}
