//! PM-RES / MaxRes (Narodytska & Bacchus 2014): core-guided MaxSMT by MaxSAT resolution. For a
//! core `l₁…l_k` of minimum weight `w`, the cost rises by `w`, every member loses `w`, and the
//! soft constraints `l_{i+1} ∨ (l₁ ∧ … ∧ l_i)` (i = 1…k−1) of weight `w` are added: exactly
//! `#false(l) − 1` of them fail whenever at least one `l` does, so the residual problem charges
//! every further violation and nothing else. No cardinality constraints are needed.
use z3::ast::Bool;

use super::{Call, Instance, Limits, MaxSmtOutcome, MaxSmtSolver, Session};

/// Core-guided MaxSMT by MaxSAT resolution.
#[derive(Debug, Clone, Copy, Default)]
pub struct PmRes;

impl MaxSmtSolver for PmRes {
    fn name(&self) -> &'static str {
        "pm-res"
    }

    fn solve(&self, instance: &Instance, limits: &Limits) -> MaxSmtOutcome {
        let mut s = match Session::new(instance, limits).start() {
            Ok(s) => s,
            Err(done) => return done,
        };
        let mut softs: Vec<(Bool, u64)> = instance
            .soft
            .iter()
            .map(|sc| {
                let lit = Bool::fresh_const("b");
                s.solver.assert(lit.implies(&sc.formula));
                (lit, sc.weight)
            })
            .collect();
        loop {
            if s.best.as_ref().is_some_and(|(_, c)| *c == s.lower_bound) {
                return s.finish(true, None);
            }
            let assumptions: Vec<Bool> = softs.iter().map(|(l, _)| l.clone()).collect();
            match s.check(&assumptions) {
                Call::Sat(m) => {
                    s.offer(m);
                    return s.finish(true, None);
                }
                Call::Unsat(idx) => {
                    if idx.is_empty() {
                        return s.finish(false, Some("empty unsat core".into()));
                    }
                    s.stats.cores += 1;
                    let w = idx.iter().map(|&i| softs[i].1).min().unwrap_or(0);
                    s.lower_bound += w;
                    let lits: Vec<Bool> = idx.iter().map(|&i| softs[i].0.clone()).collect();
                    for &i in &idx {
                        softs[i].1 -= w;
                    }
                    softs.retain(|(_, wt)| *wt > 0);
                    let mut prefix = lits[0].clone(); // l₁ ∧ … ∧ l_i
                    for i in 1..lits.len() {
                        let t = Bool::fresh_const("b");
                        s.solver
                            .assert(t.implies(Bool::or(&[lits[i].clone(), prefix.clone()])));
                        softs.push((t, w));
                        if i + 1 < lits.len() {
                            let d = Bool::fresh_const("d");
                            s.solver
                                .assert(d.iff(Bool::and(&[prefix.clone(), lits[i].clone()])));
                            prefix = d;
                        }
                    }
                }
                Call::Stopped(reason) => return s.finish(false, Some(reason)),
            }
        }
    }
}
