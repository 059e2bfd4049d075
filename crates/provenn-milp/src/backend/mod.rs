//! Solver backends. Each module turns a [`Milp`] into a good_lp problem for one solver and
//! reports what the solver *proved*, not just what it found: the status distinguishes proven
//! infeasibility from "gave up", and [`SolveOutcome::bound`] is a proven bound on the optimum.

use std::time::Duration;

use good_lp::{Expression, ProblemVariables, Variable};

use crate::model::{Milp, Row};
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
    /// solver's arithmetic: callers pad it by [`Backend::tolerance`].
    pub bound: Option<f64>,
    /// Values of the variables (empty without a point).
    pub values: Vec<f64>,
    /// Time spent in the solver.
    pub time: Duration,
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
