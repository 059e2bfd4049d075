//! microlp through good_lp: a pure-Rust fallback for builds without a C++ toolchain. It has no
//! time limit and reports no dual bound, so an optimal objective doubles as the bound.

use std::time::Instant;

use good_lp::solvers::microlp::microlp;
use good_lp::{ResolutionError, Solution, SolverModel};

use super::{to_good_lp, Backend, SolveOptions, SolveOutcome, SolveStatus};
use crate::model::{Milp, Sense};
use crate::MilpError;

/// The microlp solver.
#[derive(Debug, Clone, Default)]
pub struct MicroLp;

impl Backend for MicroLp {
    fn name(&self) -> &'static str {
        "microlp"
    }

    fn tolerance(&self) -> f64 {
        1e-6
    }

    fn solve(&self, milp: &Milp, _options: &SolveOptions) -> Result<SolveOutcome, MilpError> {
        let parts = to_good_lp(milp);
        let objective = parts.objective.clone();
        let unsolved = match milp.sense {
            Some(Sense::Maximise) => parts.vars.maximise(parts.objective),
            _ => parts.vars.minimise(parts.objective),
        };
        let mut problem = unsolved.using(microlp);
        for c in parts.constraints {
            problem.add_constraint(c);
        }
        let start = Instant::now();
        let result = problem.solve();
        let time = start.elapsed();
        match result {
            Ok(sol) => {
                let values: Vec<f64> = parts.columns.iter().map(|&c| sol.value(c)).collect();
                let obj = objective.eval_with(&sol);
                Ok(SolveOutcome {
                    status: SolveStatus::Optimal,
                    objective: Some(obj),
                    bound: milp.sense.map(|_| obj),
                    values,
                    time,
                })
            }
            Err(ResolutionError::Infeasible) => Ok(SolveOutcome {
                status: SolveStatus::Infeasible,
                objective: None,
                bound: None,
                values: Vec::new(),
                time,
            }),
            Err(e) => Err(MilpError::Solver(format!("microlp: {e}"))),
        }
    }
}
