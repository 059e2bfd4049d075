//! Fu-Malik for weighted MaxSMT (WPM1, Ansótegui, Bonet & Levy 2009): each unsat core's soft
//! constraints get fresh relaxation variables, at most one of which may be true; a core member
//! heavier than the core's minimum weight is split, its remainder kept as a separate soft
//! constraint. Unlike the SaDe/DeepSaDe reference loop, the at-most-one constraint is added, so
//! a core is relaxed by one constraint, not dropped.
use z3::ast::Bool;

use super::{Call, Instance, Limits, MaxSmtOutcome, MaxSmtSolver, Session};

/// Weighted Fu-Malik (WPM1).
#[derive(Debug, Clone, Copy, Default)]
pub struct FuMalik;

struct Soft {
    clause: Bool,
    weight: u64,
    lit: Bool,
}

impl MaxSmtSolver for FuMalik {
    fn name(&self) -> &'static str {
        "fu-malik"
    }

    fn solve(&self, instance: &Instance, limits: &Limits) -> MaxSmtOutcome {
        let mut s = match Session::new(instance, limits).start() {
            Ok(s) => s,
            Err(done) => return done,
        };
        let guarded = |s: &Session<'_>, clause: Bool, weight: u64| {
            let lit = Bool::fresh_const("a");
            s.solver.assert(lit.implies(&clause));
            Soft {
                clause,
                weight,
                lit,
            }
        };
        let mut softs: Vec<Soft> = instance
            .soft
            .iter()
            .map(|sc| guarded(&s, sc.formula.clone(), sc.weight))
            .collect();
        loop {
            if s.best.as_ref().is_some_and(|(_, c)| *c == s.lower_bound) {
                return s.finish(true, None);
            }
            let assumptions: Vec<Bool> = softs.iter().map(|x| x.lit.clone()).collect();
            match s.check(&assumptions) {
                Call::Sat(m) => {
                    s.offer(m);
                    return s.finish(true, None);
                }
                Call::Unsat(idx) => {
                    if idx.is_empty() {
                        // The hard constraints were satisfiable at the start and relaxation
                        // only weakens the soft ones, so this means Z3 returned a bad core.
                        return s.finish(false, Some("empty unsat core".into()));
                    }
                    s.stats.cores += 1;
                    let wmin = idx.iter().map(|&i| softs[i].weight).min().unwrap_or(0);
                    s.lower_bound += wmin;
                    let mut relax = Vec::with_capacity(idx.len());
                    for &i in &idx {
                        if softs[i].weight > wmin {
                            let rest = softs[i].weight - wmin;
                            let copy = guarded(&s, softs[i].clause.clone(), rest);
                            softs.push(copy);
                        }
                        let r = Bool::fresh_const("r");
                        let clause = Bool::or(&[softs[i].clause.clone(), r.clone()]);
                        softs[i] = guarded(&s, clause, wmin);
                        relax.push(r);
                    }
                    let ones: Vec<(&Bool, i32)> = relax.iter().map(|r| (r, 1)).collect();
                    s.solver.assert(Bool::pb_le(&ones, 1));
                }
                Call::Stopped(reason) => return s.finish(false, Some(reason)),
            }
        }
    }
}
