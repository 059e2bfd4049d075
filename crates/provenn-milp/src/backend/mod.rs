//! Solver backends. Each module turns a [`Milp`] into a good_lp problem for one solver and
//! reports what the solver *proved*, not just what it found: the status distinguishes proven
//! infeasibility from "gave up", and [`SolveOutcome::bound`] is a proven bound on the optimum.

use std::time::Duration;

use good_lp::{Expression, ProblemVariables, Variable};

use crate::model::{Milp, Row, Sense};
use crate::MilpError;

#[cfg(feature = "highs")]
mod highs;
#[cfg(feature = "microlp")]
mod microlp;

#[cfg(feature = "highs")]
pub use self::highs::Highs;
#[cfg(feature = "microlp")]
pub use self::microlp::MicroLp;

/// Per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SolveOptions {
    /// Wall-clock limit; reaching it gives [`SolveStatus::Feasible`] or [`SolveStatus::Unknown`].
    pub time_limit: Option<Duration>,
    /// Stop as soon as a point with objective strictly better than this is found (status
    /// [`SolveStatus::Feasible`]); backends without support solve to optimality.
    pub objective_target: Option<f64>,
    /// Confirm every proof claim (infeasibility, a bound on the optimum) by a second,
    /// differently configured solve, and report only what both solves prove. MILP solvers
    /// have had bugs that declare feasible problems infeasible (HiGHS 1.15.0 did so on a
    /// 17-variable ReLU query, with presolve and cuts); certificates pay for a second solve
    /// rather than rest on one run. Backends with a single configuration ignore it.
    pub confirm_proofs: bool,
}

/// What the solver established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolveStatus {
    /// Solved to optimality (for a feasibility problem: a feasible point was found).
    Optimal,
    /// Proven infeasible.
    Infeasible,
    /// A limit was reached with a feasible point but no optimality proof.
    Feasible,
    /// A limit was reached with nothing proven.
    Unknown,
}

/// Result of one solve.
#[derive(Debug, Clone)]
pub struct SolveOutcome {
    /// Status.
    pub status: SolveStatus,
    /// Objective of the returned point, when there is one.
    pub objective: Option<f64>,
    /// Proven bound on the optimum (upper for maximisation, lower for minimisation), in the
    /// solver's arithmetic: callers pad it by [`Backend::tolerance`]. For a MILP stopped at a
    /// limit, HiGHS's is its LP relaxation's.
    pub bound: Option<f64>,
    /// Values of the variables (empty without a point).
    pub values: Vec<f64>,
    /// Time spent in the solver.
    pub time: Duration,
}

/// What two solves of the same problem prove together: infeasibility only if both say so, and
/// otherwise the weaker of the two bounds, where "infeasible" bounds the optimum by anything
/// (so a run that proves infeasibility and one that proves `≤ b` together prove `≤ b`, as
/// happens when one run accepts a point within its tolerances that the other rejects). Either
/// run without a proof leaves no bound. A point found by either run is kept (the better one);
/// callers re-validate points.
pub(crate) fn confirmed(
    sense: Option<Sense>,
    first: SolveOutcome,
    second: SolveOutcome,
) -> SolveOutcome {
    let time = first.time + second.time;
    let infeasible = |o: &SolveOutcome| o.status == SolveStatus::Infeasible;
    if infeasible(&first) && infeasible(&second) {
        return SolveOutcome { time, ..first };
    }
    let maximise = sense == Some(Sense::Maximise);
    let claim = |o: &SolveOutcome| {
        if infeasible(o) {
            Some(if maximise {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        } else {
            o.bound
        }
    };
    let bound = match (claim(&first), claim(&second)) {
        (Some(a), Some(b)) => Some(if maximise { a.max(b) } else { a.min(b) }),
        _ => None,
    };
    let has_point = |o: &SolveOutcome| !o.values.is_empty();
    let better = |a: &SolveOutcome, b: &SolveOutcome| match (a.objective, b.objective) {
        (Some(x), Some(y)) => {
            if maximise {
                y > x
            } else {
                y < x
            }
        }
        (None, Some(_)) => true,
        _ => false,
    };
    let proven_optimal = |o: &SolveOutcome| o.status == SolveStatus::Optimal || infeasible(o);
    let both_optimal = proven_optimal(&first) && proven_optimal(&second);
    let point = if has_point(&second) && better(&first, &second) {
        second
    } else {
        first
    };
    let status = if !has_point(&point) {
        SolveStatus::Unknown
    } else if both_optimal && bound.is_some() {
        SolveStatus::Optimal
    } else {
        SolveStatus::Feasible
    };
    SolveOutcome {
        status,
        bound,
        time,
        ..point
    }
}

/// A MILP solver.
pub trait Backend: Send + Sync {
    /// Name for reports.
    fn name(&self) -> &'static str;
    /// Solves `milp`.
    fn solve(&self, milp: &Milp, options: &SolveOptions) -> Result<SolveOutcome, MilpError>;
    /// Feasibility tolerance the solver works to: rows may be violated by this much (absolute).
    fn tolerance(&self) -> f64;
}

/// The default backend of this build: HiGHS when the `highs` feature is on.
pub fn default_backend() -> Box<dyn Backend> {
    #[cfg(feature = "highs")]
    {
        Box::new(Highs)
    }
    #[cfg(all(not(feature = "highs"), feature = "microlp"))]
    {
        Box::new(MicroLp)
    }
}

/// Variables and rows translated to good_lp, shared by the backends.
pub(crate) struct GoodLpParts {
    pub vars: ProblemVariables,
    #[cfg_attr(not(feature = "microlp"), allow(dead_code))]
    pub columns: Vec<Variable>,
    pub objective: Expression,
    pub constraints: Vec<good_lp::Constraint>,
}

pub(crate) fn to_good_lp(milp: &Milp) -> GoodLpParts {
    let mut vars = ProblemVariables::new();
    let columns: Vec<Variable> = milp
        .vars
        .iter()
        .map(|d| {
            let mut def = good_lp::variable().min(d.lower).max(d.upper);
            if d.integer {
                def = def.integer();
            }
            vars.add(def)
        })
        .collect();
    let expr = |coefs: &[(crate::VarId, f64)]| {
        let mut e = Expression::with_capacity(coefs.len());
        for &(v, a) in coefs {
            e.add_mul(a, columns[v.0]);
        }
        e
    };
    let objective = expr(&milp.objective);
    let mut constraints = Vec::with_capacity(milp.rows.len());
    for Row {
        coefs,
        lower,
        upper,
    } in &milp.rows
    {
        let e = expr(coefs);
        if lower == upper {
            constraints.push(e.eq(*lower));
            continue;
        }
        if lower.is_finite() {
            constraints.push(e.clone().geq(*lower));
        }
        if upper.is_finite() {
            constraints.push(e.leq(*upper));
        }
    }
    GoodLpParts {
        vars,
        columns,
        objective,
        constraints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An outcome as a solver reports it: a point only with Optimal/Feasible, and a bound at
    /// the point (Optimal) or beyond it in the objective's direction (Feasible, sometimes none).
    fn outcome(maximise: bool) -> impl Strategy<Value = SolveOutcome> {
        let status = prop_oneof![
            Just(SolveStatus::Optimal),
            Just(SolveStatus::Infeasible),
            Just(SolveStatus::Feasible),
            Just(SolveStatus::Unknown),
        ];
        (status, -5.0..5.0f64, 0.0..3.0f64, any::<bool>()).prop_map(
            move |(status, obj, gap, has_bound)| {
                let point = matches!(status, SolveStatus::Optimal | SolveStatus::Feasible);
                let gap = match status {
                    SolveStatus::Optimal => 0.0,
                    _ if maximise => gap,
                    _ => -gap,
                };
                SolveOutcome {
                    status,
                    objective: point.then_some(obj),
                    bound: (point && (has_bound || status == SolveStatus::Optimal))
                        .then_some(obj + gap),
                    values: if point { vec![obj] } else { Vec::new() },
                    time: Duration::from_millis(1),
                }
            },
        )
    }

    proptest! {
        /// Two runs together never prove more than each proves alone: infeasible only if both
        /// say so, a bound only if each run proves it (infeasibility proves every bound); and
        /// a point either run found is never lost.
        #[test]
        fn confirmed_claims_no_more_than_either_run(
            (maximise, first, second) in any::<bool>()
                .prop_flat_map(|m| (Just(m), outcome(m), outcome(m))),
        ) {
            let sense = Some(if maximise { Sense::Maximise } else { Sense::Minimise });
            let c = confirmed(sense, first.clone(), second.clone());
            if c.status == SolveStatus::Infeasible {
                prop_assert!(first.status == SolveStatus::Infeasible);
                prop_assert!(second.status == SolveStatus::Infeasible);
            }
            // What one run proves about the optimum: infeasibility proves every bound.
            let proves = |o: &SolveOutcome, b: f64| {
                o.status == SolveStatus::Infeasible
                    || o.bound.is_some_and(|ob| if maximise { ob <= b } else { ob >= b })
            };
            if let Some(b) = c.bound {
                prop_assert!(proves(&first, b) && proves(&second, b));
                prop_assert!(b.is_finite());
            }
            if c.status == SolveStatus::Optimal {
                prop_assert!(first.status != SolveStatus::Feasible);
                prop_assert!(second.status != SolveStatus::Feasible);
                prop_assert!(c.bound.is_some());
            }
            let found = !first.values.is_empty() || !second.values.is_empty();
            prop_assert_eq!(!c.values.is_empty(), found);
            prop_assert_eq!(c.objective.is_some(), found);
            prop_assert_eq!(c.time, first.time + second.time);
        }
    }
}
