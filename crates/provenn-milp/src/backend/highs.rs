//! HiGHS through good_lp. good_lp builds the model; we then drive the `highs::Model` ourselves
//! because good_lp's `solve` hides what we need for soundness: the MIP dual bound, and the
//! difference between "infeasible" and "time limit reached without a point".

use std::time::Instant;

use good_lp::solvers::highs::highs;
use good_lp::SolverModel;
use highs::HighsModelStatus;

use super::{confirmed, to_good_lp, Backend, SolveOptions, SolveOutcome, SolveStatus};
use crate::model::{Milp, Sense};
use crate::MilpError;

/// The HiGHS MILP solver (single-threaded per call; parallelism comes from solving many
/// problems at once).
#[derive(Debug, Clone, Default)]
pub struct Highs;

impl Backend for Highs {
    fn name(&self) -> &'static str {
        "HiGHS"
    }

    fn tolerance(&self) -> f64 {
        // HiGHS defaults: primal feasibility 1e-7, MIP feasibility 1e-6.
        1e-6
    }

    fn solve(&self, milp: &Milp, options: &SolveOptions) -> Result<SolveOutcome, MilpError> {
        let start = Instant::now();
        let first = solve_once(milp, options, start, Config::Default)?;
        let claims_proof = first.status == SolveStatus::Infeasible || first.bound.is_some();
        if !options.confirm_proofs || !claims_proof {
            return Ok(first);
        }
        // The confirming solve runs without presolve (and with another random seed): on the
        // instance HiGHS 1.15.0 got wrong, presolve off finds the point and another seed alone
        // does not. It costs 2–4× on hard certificates (measured on smile-monotonic), gets what
        // is left of the time limit, and confirms nothing when none is left.
        let second = match remaining(options, start) {
            Some(rest) => solve_once(milp, &rest, Instant::now(), Config::Confirming)?,
            None => unknown(Instant::now()),
        };
        Ok(confirmed(milp.sense, first, second))
    }
}

/// How a solve is configured: HiGHS's defaults (with our options); the confirming
/// configuration (presolve off, another random seed); or presolve off alone (the retry after
/// a solve error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Default,
    Confirming,
    NoPresolve,
}

/// Nothing proven, nothing found.
fn unknown(start: Instant) -> SolveOutcome {
    SolveOutcome {
        status: SolveStatus::Unknown,
        objective: None,
        bound: None,
        values: Vec::new(),
        time: start.elapsed(),
    }
}

/// `options` with what is left of its time limit after `start` (`None`: nothing left).
fn remaining(options: &SolveOptions, start: Instant) -> Option<SolveOptions> {
    let mut rest = *options;
    if let Some(t) = options.time_limit {
        match t.checked_sub(start.elapsed()) {
            Some(r) if !r.is_zero() => rest.time_limit = Some(r),
            _ => return None,
        }
    }
    Some(rest)
}

/// One HiGHS run (and its retry without presolve on a solve error).
fn solve_once(
    milp: &Milp,
    options: &SolveOptions,
    start: Instant,
    config: Config,
) -> Result<SolveOutcome, MilpError> {
    // HiGHS occasionally ends a MIP with "solve error" (e.g. it claims optimality with a
    // 1e-6 primal infeasibility). Solving again without presolve has fixed every case we
    // met; if that fails too, nothing is proven and the answer is "unknown".
    let solved = match build(milp, options, config)?.try_solve() {
        Ok(s) if s.status() != HighsModelStatus::SolveError => s,
        // Presolve was already off: the same run again would end the same way.
        _ if config != Config::Default => return Ok(unknown(start)),
        _ => {
            let Some(rest) = remaining(options, start) else {
                return Ok(unknown(start));
            };
            match build(milp, &rest, Config::NoPresolve)?.try_solve() {
                Ok(s) if s.status() != HighsModelStatus::SolveError => s,
                _ => return Ok(unknown(start)),
            }
        }
    };
    let time = start.elapsed();
    let has_point = solved.primal_solution_status() == highs::HighsSolutionStatus::Feasible;
    let status = match solved.status() {
        HighsModelStatus::Optimal => SolveStatus::Optimal,
        // Every variable of our models is bounded, so "unbounded or infeasible" is infeasible.
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
            SolveStatus::Infeasible
        }
        HighsModelStatus::ReachedTimeLimit
        | HighsModelStatus::ReachedIterationLimit
        | HighsModelStatus::ReachedSolutionLimit
        | HighsModelStatus::ReachedInterrupt
        | HighsModelStatus::ReachedMemoryLimit
        | HighsModelStatus::ObjectiveBound
        | HighsModelStatus::ObjectiveTarget
        | HighsModelStatus::Unknown => {
            if has_point {
                SolveStatus::Feasible
            } else {
                SolveStatus::Unknown
            }
        }
        other => return Err(MilpError::Solver(format!("HiGHS status {other:?}"))),
    };
    let values = if has_point {
        solved.get_solution().columns().to_vec()
    } else {
        Vec::new()
    };
    let objective = has_point.then(|| solved.objective_value());
    let bound = match (status, milp.sense) {
        (SolveStatus::Infeasible | SolveStatus::Unknown, _) | (_, None) => None,
        (_, Some(_)) if milp.n_integer() == 0 => {
            // An LP solved to optimality: the optimum is the objective (up to tolerance).
            (status == SolveStatus::Optimal).then(|| solved.objective_value())
        }
        (SolveStatus::Optimal, Some(_)) => solved
            .double_info_value(c"mip_dual_bound")
            .ok()
            .filter(|b| b.is_finite()),
        // Stopped at a point past the objective target: its callers want the point, so no
        // LP relaxation is solved for a bound nobody reads (one per counterexample found).
        _ if solved.status() == HighsModelStatus::ObjectiveTarget => None,
        // A MIP stopped at a limit with a point: HiGHS has reported dual bounds past the
        // optimum there (`tests/milp_bounds.rs`, seed 9661093671480682536: −1.392 for a
        // neuron whose minimum, and LP relaxation, is −1.462, after a 1.4 ms limit), so the
        // bound is that of the LP relaxation, solved to optimality.
        (_, Some(_)) => {
            let mut lp = milp.clone();
            for v in &mut lp.vars {
                v.integer = false;
            }
            solve_once(&lp, &SolveOptions::default(), Instant::now(), config)?.bound
        }
    };
    Ok(SolveOutcome {
        status,
        objective,
        bound,
        values,
        time,
    })
}

/// The HiGHS model of `milp` with our options in configuration `config`.
fn build(milp: &Milp, options: &SolveOptions, config: Config) -> Result<highs::Model, MilpError> {
    let parts = to_good_lp(milp);
    let unsolved = match milp.sense {
        Some(Sense::Maximise) => parts.vars.maximise(parts.objective),
        _ => parts.vars.minimise(parts.objective),
    };
    let mut problem = unsolved.using(highs);
    for c in parts.constraints {
        problem.add_constraint(c);
    }
    let mut model = problem
        .try_into_inner()
        .map_err(|e| MilpError::Solver(e.to_string()))?;
    let set = |model: &mut highs::Model, r: Result<(), _>, name: &str| {
        let _ = model;
        r.map_err(|e| MilpError::Solver(format!("HiGHS option {name}: {e:?}")))
    };
    let r = model.try_set_option("output_flag", std::env::var("HIGHS_LOG").is_ok());
    let _ = model.try_set_option("log_to_console", std::env::var("HIGHS_LOG").is_ok());
    set(&mut model, r, "output_flag")?;
    // One thread per solve: HiGHS's scheduler is process-global, and callers run many
    // solves in parallel with rayon instead.
    let r = model.try_set_option("threads", 1);
    set(&mut model, r, "threads")?;
    // Restarts cost more than they save on our small ReLU MILPs: measured 1.5–1.9× faster
    // explanations on Digits networks without them.
    let r = model.try_set_option("mip_allow_restart", false);
    set(&mut model, r, "mip_allow_restart")?;
    // The RINS and RENS sub-MIP heuristics search for points that most of our queries
    // (entailed explanation steps, certificates) do not have: 5 Digits 6L-8N explanations
    // (INMS, one thread) took 85.7 s instead of 109.9 s without them; the answers are the same.
    for name in ["mip_heuristic_run_rins", "mip_heuristic_run_rens"] {
        let r = model.try_set_option(name, false);
        set(&mut model, r, name)?;
    }
    // Cuts at the root only: HiGHS's root rounds find the cuts that close these big-M
    // relaxations, and separating again at every node cost more than it pruned. Explainer
    // probes (default options, one instance at a time, side by side): Digits 6L-12N test rows
    // 3, 5-7, 11, 12 took 66.2 s against 70.0 s with node cuts, rows 40-47 50.2 s against
    // 52.5 s; MNIST 6L-8N rows 0-3 83.1 s against 90.7 s (the same explanations).
    let r = model.try_set_option("mip_allow_cut_separation_at_nodes", false);
    set(&mut model, r, "mip_allow_cut_separation_at_nodes")?;
    let r = model.try_set_option("mip_rel_gap", 0.0);
    set(&mut model, r, "mip_rel_gap")?;
    let r = model.try_set_option("mip_abs_gap", 0.0);
    set(&mut model, r, "mip_abs_gap")?;
    if let Some(t) = options.time_limit {
        let r = model.try_set_option("time_limit", t.as_secs_f64());
        set(&mut model, r, "time_limit")?;
    }
    if let Some(t) = options.objective_target {
        let r = model.try_set_option("objective_target", t);
        set(&mut model, r, "objective_target")?;
    }
    for (k, v) in tuning() {
        let r = match v.as_str() {
            "true" | "false" => model.try_set_option(k.as_str(), v == "true"),
            _ if v.contains(['.', 'e']) => match v.parse::<f64>() {
                Ok(f) => model.try_set_option(k.as_str(), f),
                Err(_) => model.try_set_option(k.as_str(), v.as_str()),
            },
            _ => match v.parse::<i32>() {
                Ok(i) => model.try_set_option(k.as_str(), i),
                Err(_) => model.try_set_option(k.as_str(), v.as_str()),
            },
        };
        set(&mut model, r, &k)?;
    }
    if config != Config::Default {
        let r = model.try_set_option("presolve", "off");
        set(&mut model, r, "presolve")?;
    }
    if config == Config::Confirming {
        let r = model.try_set_option("random_seed", 1);
        set(&mut model, r, "random_seed")?;
    }
    Ok(model)
}

/// Extra HiGHS options from `PROVENN_HIGHS_OPTIONS` (`name=value,...`), for tuning
/// experiments.
fn tuning() -> Vec<(String, String)> {
    std::env::var("PROVENN_HIGHS_OPTIONS")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}
