//! The eliminated problem as a MILP on HiGHS (through good_lp): selectors and soft
//! constraints become binaries with big-M constants from the variable bounds (the weight box
//! and the auxiliaries' ranges), evaluated in `f64` and padded outwards.
//!
//! A MILP solver works in floating point with tolerances, so strict comparisons are stated
//! with a margin and every comparison of the constraint is padded by `safety_margin`; the
//! caller ([`crate::LastLayerUpdate`]) re-checks the returned weights exactly and retries with a
//! larger padding when the check fails.
use std::time::{Duration, Instant};

use good_lp::solvers::highs::highs;
use good_lp::{variable, Constraint, Expression, ProblemVariables, SolverModel, Variable};
use highs::HighsModelStatus;
use num_traits::ToPrimitive;
use provenn_dsl::ir::Cmp;

use crate::eliminate::{EliminatedProblem, QfFormula};
use crate::lastlayer::{LinAtom, LinForm};
use crate::rational::q_to_f64;
use crate::{MaxSmtError, Status, Q};

/// Options of [`solve`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MilpOptions {
    /// Wall-clock limit.
    pub time_limit: Option<Duration>,
    /// Every hard comparison `e ≥ 0` is stated as `e ≥ safety_margin` (and `e > 0` as
    /// `e ≥ 2·safety_margin`), so that HiGHS's 1e-7 feasibility tolerance cannot yield
    /// weights that violate the constraint exactly.
    pub safety_margin: f64,
    /// Re-solve with every binary fixed at its rounded value (an LP in the weights). A binary
    /// HiGHS leaves within its integrality tolerance of 1 still lets a guarded comparison slip
    /// by that tolerance times its big-M, which no margin of the comparison's size covers; with
    /// the binaries fixed exactly, only the LP's feasibility tolerance remains.
    pub polish: bool,
    /// Branch-and-bound node limit (`None`: solve to optimality or the time limit).
    pub node_limit: Option<u64>,
}

impl Default for MilpOptions {
    fn default() -> Self {
        MilpOptions {
            time_limit: None,
            safety_margin: 1e-6,
            polish: false,
            node_limit: None,
        }
    }
}

/// What the MILP returned.
#[derive(Debug, Clone, PartialEq)]
pub struct MilpSolution {
    /// Optimal / feasible without proof (limit) / infeasible / unknown.
    pub status: Status,
    /// The parameters `θ` (first `layer.n_params()` columns), when a point was found.
    pub theta: Option<Vec<f64>>,
    /// Total weight of the soft constraints the MILP counts as satisfied.
    pub objective: Option<f64>,
    /// Binaries in the model.
    pub n_binaries: usize,
    /// Wall-clock time.
    pub time: Duration,
    /// The binaries' values at the point (creation order; empty without a point), for
    /// [`polish`].
    pub binaries: Vec<f64>,
}

/// A literal activating a guarded constraint: `(binary, polarity)`.
type Guard = Vec<(Variable, bool)>;

struct Builder {
    vars: ProblemVariables,
    cols: Vec<Variable>,
    /// Column bounds in `f64` (rounded outwards), for the big-M constants.
    bounds: Vec<(f64, f64)>,
    constraints: Vec<Constraint>,
    margin: f64,
    n_binaries: usize,
    /// Values the binaries are fixed at, in creation order (polishing).
    fixed: Option<Vec<f64>>,
}

/// A [`LinForm`] with every coefficient rounded to the nearest `f64` (`NaN` where that fails),
/// converted once per comparison. Negating it is exact and equals converting the negated
/// form, because rounding to nearest is symmetric; negating in rationals instead (two gcds of
/// big integers per term) took 40% of a DeepSaDe UC1 epoch.
struct Lin64 {
    constant: f64,
    terms: Vec<(usize, f64)>,
}

impl Lin64 {
    fn of(f: &LinForm) -> Self {
        Lin64 {
            constant: q_to_f64(&f.constant),
            terms: f.terms.iter().map(|(i, c)| (*i, q_to_f64(c))).collect(),
        }
    }
    fn neg(&self) -> Self {
        Lin64 {
            constant: -self.constant,
            terms: self.terms.iter().map(|(i, c)| (*i, -c)).collect(),
        }
    }
}

/// `v`, or `default` where it is `NaN` (a coefficient `to_f64` could not convert).
fn unless_nan(v: f64, default: f64) -> f64 {
    if v.is_nan() {
        default
    } else {
        v
    }
}

fn down(q: &Q) -> f64 {
    let v = q.to_f64().unwrap_or(f64::NEG_INFINITY);
    v - v.abs() * 1e-12 - 1e-12
}
fn up(q: &Q) -> f64 {
    let v = q.to_f64().unwrap_or(f64::INFINITY);
    v + v.abs() * 1e-12 + 1e-12
}

/// The smallest `f64` ≥ `q`.
fn inward_up(q: &Q) -> f64 {
    let v = q.to_f64().unwrap_or(f64::NEG_INFINITY);
    match Q::from_float(v) {
        Some(e) if e < *q => v.next_up(),
        _ => v,
    }
}
/// The largest `f64` ≤ `q`.
fn inward_down(q: &Q) -> f64 {
    let v = q.to_f64().unwrap_or(f64::INFINITY);
    match Q::from_float(v) {
        Some(e) if e > *q => v.next_down(),
        _ => v,
    }
}

impl Builder {
    fn binary(&mut self) -> Variable {
        let k = self.n_binaries;
        self.n_binaries += 1;
        match self.fixed.as_ref().and_then(|f| f.get(k)) {
            Some(&v) => self.vars.add(variable().min(v).max(v)),
            None => self.vars.add(variable().binary()),
        }
    }

    fn expr(&self, f: &Lin64) -> Expression {
        let mut e = Expression::from(unless_nan(f.constant, 0.0));
        for (i, c) in &f.terms {
            e += unless_nan(*c, 0.0) * self.cols[*i];
        }
        e
    }

    /// `Σ (1 − g)` over positive guard literals and `Σ g` over negative ones: 0 exactly when
    /// every literal holds.
    fn inactive(guard: &Guard) -> Expression {
        let mut e = Expression::from(0.0);
        for (v, pos) in guard {
            if *pos {
                e += 1.0 - *v;
            } else {
                e += *v;
            }
        }
        e
    }

    /// A lower bound of `f` over the column bounds: the exact range evaluated in `f64`,
    /// padded by far more than the rounding of its few products and sums (big-M constants
    /// need only be valid, not tight; rational arithmetic here dominated the solve time).
    fn lower_bound(&self, f: &Lin64) -> f64 {
        let c0 = unless_nan(f.constant, f64::NEG_INFINITY);
        let (mut lo, mut mag) = (c0, c0.abs());
        for &(i, c) in &f.terms {
            let (l, u) = self.bounds[i];
            let t = if c > 0.0 { c * l } else { c * u };
            lo += t;
            mag += t.abs();
        }
        if lo.is_nan() {
            return f64::NEG_INFINITY;
        }
        lo - mag * 1e-9 - 1e-9
    }

    /// `guard ⇒ f ≥ rhs`.
    fn ge(&mut self, f: &Lin64, rhs: f64, guard: &Guard) {
        let e = self.expr(f);
        if guard.is_empty() {
            self.constraints.push(e.geq(rhs));
        } else {
            let lo = self.lower_bound(f);
            let big_m = (rhs - lo).max(0.0) * (1.0 + 1e-9) + 1e-9;
            self.constraints
                .push((e + big_m * Self::inactive(guard)).geq(rhs));
        }
    }

    fn atom(&mut self, a: &LinAtom, guard: &Guard) {
        let m = self.margin;
        let pos = Lin64::of(&a.expr);
        match a.cmp {
            Cmp::Ge => self.ge(&pos, m, guard),
            Cmp::Gt => self.ge(&pos, 2.0 * m, guard),
            Cmp::Le => self.ge(&pos.neg(), m, guard),
            Cmp::Lt => self.ge(&pos.neg(), 2.0 * m, guard),
            Cmp::Eq => {
                // Equalities cannot be padded; they only arise from `==` in the constraint.
                self.ge(&pos, 0.0, guard);
                self.ge(&pos.neg(), 0.0, guard);
            }
        }
    }

    fn formula(&mut self, f: &QfFormula, guard: &Guard) {
        match f {
            QfFormula::True => {}
            QfFormula::False => {
                // Unsatisfiable when active: 0 ≥ 1 unless inactive.
                let e = Self::inactive(guard);
                self.constraints.push(e.geq(1.0));
            }
            QfFormula::Atom(a) => self.atom(a, guard),
            QfFormula::And(v) => v.iter().for_each(|g| self.formula(g, guard)),
            QfFormula::Or(v) => {
                let mut pick = Expression::from(0.0);
                for g in v {
                    let s = self.binary();
                    pick += s;
                    let mut inner = guard.clone();
                    inner.push((s, true));
                    self.formula(g, &inner);
                }
                // Σ s ≥ 1 when active.
                self.constraints
                    .push((pick + Self::inactive(guard)).geq(1.0));
            }
            QfFormula::Count { terms, cmp, bound } => {
                let mut count = LinForm::constant(-bound.clone());
                let integral = terms.iter().all(|t| t.weight.is_integer()) && bound.is_integer();
                for t in terms {
                    let s = self.binary();
                    let idx = self.cols.len();
                    self.cols.push(s);
                    self.bounds.push((0.0, 1.0));
                    count.add_term(idx, t.weight.clone());
                    if let Some(h) = &t.holds {
                        let mut inner = guard.clone();
                        inner.push((s, true));
                        self.formula(h, &inner);
                    }
                    if let Some(g) = &t.fails {
                        let mut inner = guard.clone();
                        inner.push((s, false));
                        self.formula(g, &inner);
                    }
                }
                let count = Lin64::of(&count);
                let neg = count.neg();
                // Counts of binaries are exact in integers; only non-integral weights need
                // a margin for strictness.
                let strict = if integral { 1.0 } else { self.margin };
                match cmp {
                    Cmp::Ge => self.ge(&count, 0.0, guard),
                    Cmp::Gt => self.ge(&count, strict, guard),
                    Cmp::Le => self.ge(&neg, 0.0, guard),
                    Cmp::Lt => self.ge(&neg, strict, guard),
                    Cmp::Eq => {
                        self.ge(&count, 0.0, guard);
                        self.ge(&neg, 0.0, guard);
                    }
                }
            }
        }
    }
}

/// Solves "satisfy `problem`, maximise the weight of satisfied `soft`" on HiGHS. `soft` are
/// formulas over `θ` only; the weight box is `problem`'s bounds of `θ`.
///
/// # Errors
/// HiGHS failing to build or reporting an unexpected status.
pub fn solve(
    problem: &EliminatedProblem,
    soft: &[(QfFormula, u64)],
    options: &MilpOptions,
) -> Result<MilpSolution, MaxSmtError> {
    let start = Instant::now();
    let mut out = run(problem, soft, options, None)?;
    if options.polish && out.theta.is_some() && !out.binaries.is_empty() {
        let remaining = options
            .time_limit
            .map(|t| t.saturating_sub(start.elapsed()));
        let polished = polish(
            problem,
            soft,
            &MilpOptions {
                time_limit: remaining,
                ..*options
            },
            &out.binaries,
        )?;
        // An infeasible or unfinished LP keeps the MILP's point (the caller checks it).
        if polished.theta.is_some() {
            out.theta = polished.theta;
        }
    }
    out.time = start.elapsed();
    Ok(out)
}

/// The LP left when every binary of `problem` + `soft` is fixed at the rounded value in
/// `binaries` (a [`MilpSolution::binaries`] of the same problem, soft constraints and margin):
/// weights whose guarded comparisons hold up to the LP's feasibility tolerance only, without
/// the integrality tolerance times big-M a MILP point may leak. `theta` is `None` when the LP
/// is infeasible or unfinished; `status` and `objective` are the LP's, not the MILP's.
///
/// # Errors
/// As [`solve`]; also a `binaries` of the wrong length.
pub fn polish(
    problem: &EliminatedProblem,
    soft: &[(QfFormula, u64)],
    options: &MilpOptions,
    binaries: &[f64],
) -> Result<MilpSolution, MaxSmtError> {
    let fixed: Vec<f64> = binaries.iter().map(|v| v.round()).collect();
    run(problem, soft, options, Some(fixed))
}

fn run(
    problem: &EliminatedProblem,
    soft: &[(QfFormula, u64)],
    options: &MilpOptions,
    fixed: Option<Vec<f64>>,
) -> Result<MilpSolution, MaxSmtError> {
    let start = Instant::now();
    let mut vars = ProblemVariables::new();
    let n_theta = problem.layer.n_params();
    let cols: Vec<Variable> = problem
        .bounds
        .iter()
        .enumerate()
        .map(|(i, (l, u))| {
            // The weights' bounds are rounded inwards (the caller checks the box exactly);
            // the auxiliaries' outwards (they only need to contain the exact range).
            let (lo, hi) = if i < n_theta {
                (inward_up(l), inward_down(u))
            } else {
                (down(l), up(u))
            };
            vars.add(variable().min(lo).max(hi.max(lo)))
        })
        .collect();
    let mut b = Builder {
        vars,
        cols,
        bounds: problem
            .bounds
            .iter()
            .map(|(l, u)| (down(l), up(u)))
            .collect(),
        constraints: Vec::new(),
        margin: options.safety_margin,
        n_binaries: 0,
        fixed,
    };
    let n_cols = problem.bounds.len();
    for d in &problem.definitions {
        // Definitions t ≤ a·l are relaxations in the right direction: no padding needed.
        b.ge(&Lin64::of(&d.expr).neg(), 0.0, &Vec::new());
    }
    b.formula(&problem.formula, &Vec::new());
    let mut objective = Expression::from(0.0);
    for (f, w) in soft {
        let s = b.binary();
        objective += (*w as f64) * s;
        b.formula(f, &vec![(s, true)]);
    }
    let Builder {
        vars,
        constraints,
        n_binaries,
        fixed,
        ..
    } = b;
    if let Some(f) = fixed.filter(|f| f.len() != n_binaries) {
        // Checked before solving: a short list would leave real binaries (a MILP, not an LP).
        return Err(MaxSmtError::Solver(format!(
            "polish: {} binary values for a problem with {n_binaries} binaries",
            f.len()
        )));
    }
    let mut model = vars.maximise(objective).using(highs);
    for c in constraints {
        model.add_constraint(c);
    }
    let mut inner = model
        .try_into_inner()
        .map_err(|e| MaxSmtError::Solver(e.to_string()))?;
    let opt = |r: Result<(), _>, name: &str| {
        r.map_err(|e| MaxSmtError::Solver(format!("HiGHS option {name}: {e:?}")))
    };
    opt(inner.try_set_option("output_flag", false), "output_flag")?;
    opt(inner.try_set_option("threads", 1), "threads")?;
    opt(inner.try_set_option("mip_rel_gap", 0.0), "mip_rel_gap")?;
    opt(inner.try_set_option("mip_abs_gap", 0.0), "mip_abs_gap")?;
    // The feasibility-jump heuristic took a quarter of SaDe's solve time on these small,
    // easy models (perf, loan data) without changing their answers.
    opt(
        inner.try_set_option("mip_heuristic_run_feasibility_jump", false),
        "mip_heuristic_run_feasibility_jump",
    )?;
    // So did RINS and RENS on DeepSaDe's UC1 steps: with both off, HiGHS needed 0.27 s
    // instead of 0.54 s on 40 sampled steps and 4.8 s instead of 8.4 s on the five slowest of
    // a run (the optimum is the same; the proof of optimality dominates these solves).
    for name in ["mip_heuristic_run_rins", "mip_heuristic_run_rens"] {
        opt(inner.try_set_option(name, false), name)?;
    }
    if let Some(t) = options.time_limit {
        opt(
            inner.try_set_option("time_limit", t.as_secs_f64()),
            "time_limit",
        )?;
    }
    if let Some(n) = options.node_limit {
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        opt(inner.try_set_option("mip_max_nodes", n), "mip_max_nodes")?;
    }
    let solved = inner
        .try_solve()
        .map_err(|e| MaxSmtError::Solver(format!("HiGHS: {e:?}")))?;
    let has_point = solved.primal_solution_status() == highs::HighsSolutionStatus::Feasible;
    let status = match solved.status() {
        HighsModelStatus::Optimal => Status::Optimal,
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
            Status::Unsatisfiable
        }
        _ if has_point => Status::Satisfiable,
        _ => Status::Unknown,
    };
    let (theta, value, binaries) = if has_point && status != Status::Unsatisfiable {
        let sol = solved.get_solution();
        let columns = sol.columns();
        // good_lp adds columns in creation order: θ and auxiliaries first, then the binaries.
        let theta: Vec<f64> = columns[..n_theta].to_vec();
        let binaries = columns[n_cols..].to_vec();
        (Some(theta), Some(solved.objective_value()), binaries)
    } else {
        (None, None, Vec::new())
    };
    Ok(MilpSolution {
        status,
        theta,
        objective: value,
        n_binaries,
        time: start.elapsed(),
        binaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rational::big_q;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Negating the rounded form is bit-for-bit the rounding of the negated form (the
        /// builder relies on it to skip rational negation), also past `f64`'s range.
        #[test]
        fn negating_in_f64_equals_rounding_the_negation(
            terms in prop::collection::vec((0usize..6, big_q(1200)), 0..8),
            c in big_q(1200),
        ) {
            let mut f = LinForm::constant(c);
            for (i, q) in terms {
                f.add_term(i, q);
            }
            let fast = Lin64::of(&f).neg();
            let slow = Lin64::of(&f.scaled(&-Q::from_integer(1.into())));
            let bits = |l: &Lin64| {
                let terms: Vec<(usize, u64)> = l.terms.iter().map(|(i, c)| (*i, c.to_bits())).collect();
                (l.constant.to_bits(), terms)
            };
            prop_assert_eq!(bits(&fast), bits(&slow));
        }
    }
}
