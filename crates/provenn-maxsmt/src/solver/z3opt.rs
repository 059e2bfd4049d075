//! Z3's own MaxSMT engine (`Optimize` with `assert_soft`; MaxRes in Z3 ≥ 4.5). It does not
//! accept the quantified encoding (SaDe §3.3), but the eliminated one is quantifier-free.
use std::time::Instant;

use z3::{Optimize, Params, SatResult};

use super::{
    cost_of, with_watchdog, Instance, Limits, MaxSmtOutcome, MaxSmtSolver, SolveStats, Status,
};

/// Z3's built-in MaxSMT (`Optimize`), for quantifier-free instances.
#[derive(Debug, Clone, Copy, Default)]
pub struct Z3Optimize;

impl MaxSmtSolver for Z3Optimize {
    fn name(&self) -> &'static str {
        "z3-optimize"
    }

    fn solve(&self, instance: &Instance, limits: &Limits) -> MaxSmtOutcome {
        let start = Instant::now();
        let opt = Optimize::new();
        for h in &instance.hard {
            opt.assert(h);
        }
        for s in &instance.soft {
            opt.assert_soft(&s.formula, s.weight, None);
        }
        let mut stats = SolveStats {
            calls: 1,
            ..SolveStats::default()
        };
        let done = |status, model, cost, reason, stats: SolveStats| MaxSmtOutcome {
            status,
            model,
            cost,
            lower_bound: 0,
            stats,
            reason,
        };
        if limits.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            stats.time = start.elapsed();
            return done(Status::Unknown, None, None, Some("cancelled".into()), stats);
        }
        if let Some(t) = limits.time_limit {
            let mut p = Params::new();
            p.set_u32("timeout", t.as_millis().min(u32::MAX as u128) as u32);
            opt.set_params(&p);
        }
        let r = with_watchdog(
            opt.get_context(),
            limits.time_limit,
            limits.cancel.as_ref(),
            || opt.check(&[]),
        );
        stats.time = start.elapsed();
        match r {
            SatResult::Sat => match opt.get_model() {
                Some(m) => {
                    let cost = cost_of(instance, &m);
                    let mut out = done(Status::Optimal, Some(m), Some(cost), None, stats);
                    out.lower_bound = cost;
                    out
                }
                None => done(
                    Status::Unknown,
                    None,
                    None,
                    Some("sat without a model".into()),
                    stats,
                ),
            },
            SatResult::Unsat => done(Status::Unsatisfiable, None, None, None, stats),
            SatResult::Unknown => {
                let reason = opt.get_reason_unknown().unwrap_or_else(|| "unknown".into());
                // Z3 may keep the best model of an interrupted optimisation; it is feasible
                // but not proven optimal.
                match opt.get_model() {
                    Some(m)
                        if instance
                            .hard
                            .iter()
                            .all(|h| m.eval(h, true).and_then(|b| b.as_bool()) == Some(true)) =>
                    {
                        let cost = cost_of(instance, &m);
                        done(
                            Status::Satisfiable,
                            Some(m),
                            Some(cost),
                            Some(reason),
                            stats,
                        )
                    }
                    _ => done(Status::Unknown, None, None, Some(reason), stats),
                }
            }
        }
    }
}
