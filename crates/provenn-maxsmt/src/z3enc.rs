//! Z3 encodings of last-layer constraints: the faithful quantified one (non-linear real
//! arithmetic with `∀z`), the eliminated one (linear, quantifier-free), and the exact check of
//! a concrete `θ`.
use num_traits::{One, Zero};
use provenn_dsl::ir::{Cmp, Formula, Var};
use z3::ast::{Bool, Real};
use z3::{SatResult, Solver};

use crate::eliminate::{EliminatedProblem, QfFormula};
use crate::lastlayer::{coef, LastLayer, LastLayerConstraint, LinAtom, LinForm};
use crate::rational::{model_value, real};
use crate::{MaxSmtError, Q};

/// Fresh real constants for the parameters `θ` of `layer` (named `b{k}`, `w{k}_{j}`).
pub fn theta_vars(layer: LastLayer) -> Vec<Real> {
    let mut v = Vec::with_capacity(layer.n_params());
    for k in 0..layer.n_outputs {
        v.push(Real::fresh_const(&format!("b{k}")));
        for j in 0..layer.n_features {
            v.push(Real::fresh_const(&format!("w{k}_{j}")));
        }
    }
    v
}

fn sum(terms: Vec<Real>) -> Real {
    match terms.len() {
        0 => real(&Q::zero()),
        1 => terms.into_iter().next().expect("one term"),
        _ => Real::add(&terms),
    }
}

fn compare(e: &Real, cmp: Cmp) -> Bool {
    let zero = real(&Q::zero());
    match cmp {
        Cmp::Lt => e.lt(&zero),
        Cmp::Le => e.le(&zero),
        Cmp::Eq => e.eq(&zero),
        Cmp::Ge => e.ge(&zero),
        Cmp::Gt => e.gt(&zero),
    }
}

/// A linear form over `vars` as a Z3 term.
pub fn lin(form: &LinForm, vars: &[Real]) -> Real {
    let mut terms = Vec::with_capacity(form.terms.len() + 1);
    for (i, c) in &form.terms {
        terms.push(if c.is_one() {
            vars[*i].clone()
        } else {
            Real::mul(&[real(c), vars[*i].clone()])
        });
    }
    if !form.constant.is_zero() || terms.is_empty() {
        terms.push(real(&form.constant));
    }
    sum(terms)
}

/// A linear atom as a Z3 Boolean.
pub fn lin_atom(a: &LinAtom, vars: &[Real]) -> Bool {
    compare(&lin(&a.expr, vars), a.cmp)
}

/// A quantifier-free formula as a Z3 Boolean (count selectors become fresh Booleans).
pub fn qf(f: &QfFormula, vars: &[Real]) -> Bool {
    match f {
        QfFormula::True => Bool::from_bool(true),
        QfFormula::False => Bool::from_bool(false),
        QfFormula::Atom(a) => lin_atom(a, vars),
        QfFormula::And(v) => Bool::and(&v.iter().map(|g| qf(g, vars)).collect::<Vec<_>>()),
        QfFormula::Or(v) => Bool::or(&v.iter().map(|g| qf(g, vars)).collect::<Vec<_>>()),
        QfFormula::Count { terms, cmp, bound } => {
            let mut parts = Vec::new();
            let mut counted = Vec::new();
            for t in terms {
                let s = Bool::fresh_const("sel");
                if let Some(h) = &t.holds {
                    parts.push(s.implies(qf(h, vars)));
                }
                if let Some(g) = &t.fails {
                    parts.push(s.not().implies(qf(g, vars)));
                }
                counted.push(s.ite(&real(&t.weight), &real(&Q::zero())));
            }
            counted.push(real(&-bound.clone()));
            parts.push(compare(&sum(counted), *cmp));
            Bool::and(&parts)
        }
    }
}

/// The eliminated problem's hard constraints over `θ` (auxiliaries are created fresh).
pub fn eliminated(p: &EliminatedProblem, theta: &[Real]) -> Vec<Bool> {
    let mut vars = theta.to_vec();
    for _ in 0..p.n_aux() {
        vars.push(Real::fresh_const("t"));
    }
    let mut out: Vec<Bool> = p.definitions.iter().map(|d| lin_atom(d, &vars)).collect();
    out.push(qf(&p.formula, &vars));
    out
}

/// A DSL formula as a Z3 Boolean, with variables given by `var`.
fn dsl(f: &Formula, var: &dyn Fn(Var) -> Real) -> Bool {
    match f {
        Formula::True => Bool::from_bool(true),
        Formula::False => Bool::from_bool(false),
        Formula::Atom(a) => {
            let mut terms: Vec<Real> = a
                .expr
                .terms
                .iter()
                .map(|(v, c)| Real::mul(&[real(&coef(c)), var(*v)]))
                .collect();
            terms.push(real(&coef(&a.expr.constant)));
            compare(&sum(terms), a.cmp)
        }
        Formula::And(v) => Bool::and(&v.iter().map(|g| dsl(g, var)).collect::<Vec<_>>()),
        Formula::Or(v) => Bool::or(&v.iter().map(|g| dsl(g, var)).collect::<Vec<_>>()),
        Formula::Count { terms, cmp, bound } => {
            let mut counted: Vec<Real> = terms
                .iter()
                .map(|(w, g)| dsl(g, var).ite(&real(w), &real(&Q::zero())))
                .collect();
            counted.push(real(&-bound.clone()));
            compare(&sum(counted), *cmp)
        }
    }
}

/// `(z, body)` for one rule: `box(z) ∧ premise(z) ⇒ conclusion(z, y(θ, z))`, with the
/// outputs given by `outputs(z)`.
fn rule_body(
    c: &LastLayerConstraint,
    premise: &Formula,
    conclusion: &Formula,
    z: &[Real],
    y: &[Real],
) -> (Bool, Bool) {
    let var = |v: Var| match v {
        Var::Input(_, j) => z[j].clone(),
        Var::Output(_, k) => y[k].clone(),
    };
    let mut in_box = Vec::new();
    for (zj, (l, u)) in z.iter().zip(c.domain()) {
        in_box.push(zj.ge(real(l)));
        in_box.push(zj.le(real(u)));
    }
    in_box.push(dsl(premise, &var));
    (Bool::and(&in_box), dsl(conclusion, &var))
}

fn outputs(layer: LastLayer, theta: &[Real], z: &[Real]) -> Vec<Real> {
    (0..layer.n_outputs)
        .map(|k| {
            let mut terms = vec![theta[layer.bias(k)].clone()];
            for (j, zj) in z.iter().enumerate() {
                terms.push(Real::mul(&[theta[layer.weight(k, j)].clone(), zj.clone()]));
            }
            sum(terms)
        })
        .collect()
}

/// The faithful quantified encoding, one `∀z` per rule: `∀z: box(z) ∧ P(z) ⇒ C(b + W·z)` with
/// `θ` free — non-linear (products `W_kj·z_j`), as SaDe/DeepSaDe state it.
pub fn quantified(c: &LastLayerConstraint, theta: &[Real]) -> Vec<Bool> {
    let layer = c.layer();
    c.rules()
        .iter()
        .map(|r| {
            let z: Vec<Real> = (0..layer.n_features)
                .map(|j| Real::fresh_const(&format!("z{j}")))
                .collect();
            let y = outputs(layer, theta, &z);
            let (pre, concl) = rule_body(c, &r.premise, &r.conclusion, &z, &y);
            let bound: Vec<&dyn z3::ast::Ast> = z.iter().map(|v| v as &dyn z3::ast::Ast).collect();
            z3::ast::forall_const(&bound, &[], &pre.implies(concl))
        })
        .collect()
}

/// See [`LastLayerConstraint::counterexample`].
pub(crate) fn counterexample(
    c: &LastLayerConstraint,
    theta: &[Q],
) -> Result<Option<Vec<Q>>, MaxSmtError> {
    let layer = c.layer();
    if theta.len() != layer.n_params() {
        return Err(MaxSmtError::Shape(format!(
            "{} weights for a layer with {} parameters",
            theta.len(),
            layer.n_params()
        )));
    }
    let z: Vec<Real> = (0..layer.n_features)
        .map(|j| Real::fresh_const(&format!("z{j}")))
        .collect();
    let y: Vec<Real> = (0..layer.n_outputs)
        .map(|k| {
            let mut f = LinForm::constant(theta[layer.bias(k)].clone());
            for j in 0..layer.n_features {
                f.add_term(j, theta[layer.weight(k, j)].clone());
            }
            lin(&f, &z)
        })
        .collect();
    let solver = Solver::new();
    let violated: Vec<Bool> = c
        .rules()
        .iter()
        .map(|r| {
            let (pre, concl) = rule_body(c, &r.premise, &r.conclusion, &z, &y);
            Bool::and(&[pre, concl.not()])
        })
        .collect();
    solver.assert(Bool::or(&violated));
    match solver.check() {
        SatResult::Unsat => Ok(None),
        SatResult::Sat => {
            let model = solver
                .get_model()
                .ok_or_else(|| MaxSmtError::Solver("sat without a model".into()))?;
            let point = z
                .iter()
                .map(|v| {
                    model_value(&model, v)
                        .ok_or_else(|| MaxSmtError::Solver("non-rational model value".into()))
                })
                .collect::<Result<Vec<Q>, _>>()?;
            Ok(Some(point))
        }
        SatResult::Unknown => Err(MaxSmtError::Solver(format!(
            "Z3 unknown on a linear check: {}",
            solver.get_reason_unknown().unwrap_or_default()
        ))),
    }
}

/// Whether the eliminated problem admits the concrete weights `θ` (some auxiliaries and
/// selectors make it true), exactly.
///
/// # Errors
/// A wrong number of weights; Z3 answering "unknown".
pub fn admits(p: &EliminatedProblem, theta: &[Q]) -> Result<bool, MaxSmtError> {
    if theta.len() != p.layer.n_params() {
        return Err(MaxSmtError::Shape(format!(
            "{} weights for {} parameters",
            theta.len(),
            p.layer.n_params()
        )));
    }
    let numerals: Vec<Real> = theta.iter().map(real).collect();
    let solver = Solver::new();
    for b in eliminated(p, &numerals) {
        solver.assert(&b);
    }
    match solver.check() {
        SatResult::Sat => Ok(true),
        SatResult::Unsat => Ok(false),
        SatResult::Unknown => Err(MaxSmtError::Solver("Z3 unknown on a linear check".into())),
    }
}

/// Whether the quantified formula holds for the concrete weights `θ`, decided by Z3 on the
/// closed `∀z` formula (linear once `θ` is fixed) — a check independent of
/// [`LastLayerConstraint::counterexample`], which searches `∃z: ¬C`.
///
/// # Errors
/// A wrong number of weights; Z3 answering "unknown".
pub fn quantified_holds(c: &LastLayerConstraint, theta: &[Q]) -> Result<bool, MaxSmtError> {
    if theta.len() != c.layer().n_params() {
        return Err(MaxSmtError::Shape("wrong number of weights".into()));
    }
    let numerals: Vec<Real> = theta.iter().map(real).collect();
    let solver = Solver::new();
    for b in quantified(c, &numerals) {
        solver.assert(&b);
    }
    match solver.check() {
        SatResult::Sat => Ok(true),
        SatResult::Unsat => Ok(false),
        SatResult::Unknown => Err(MaxSmtError::Solver(format!(
            "Z3 unknown on the quantified check: {}",
            solver.get_reason_unknown().unwrap_or_default()
        ))),
    }
}

/// Reads `θ` from a model.
pub(crate) fn read_theta(model: &z3::Model, theta: &[Real]) -> Result<Vec<Q>, MaxSmtError> {
    theta
        .iter()
        .map(|v| {
            model_value(model, v)
                .ok_or_else(|| MaxSmtError::Solver("non-rational weight in the model".into()))
        })
        .collect()
}
