//! The per-batch last-layer update of SaDe/DeepSaDe as one call.
use std::time::Instant;

use provenn_dsl::ir::Cmp;

use crate::eliminate::{eliminate, EliminationOptions, Exactness, QfFormula};
use crate::lastlayer::{LastLayerConstraint, LinAtom, LinForm};
use crate::milp::{self, MilpOptions};
use crate::rational::{q_from_f64, q_to_f64};
use crate::solver::{Instance, Limits, MaxSmtSolver, PmRes, SoftConstraint, SolveStats, Status};
use crate::EliminatedProblem;
use crate::{z3enc, MaxSmtError, Q};

/// Box of admissible weights `θ`, with strict or non-strict ends.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightBox {
    lower: Vec<(Q, bool)>,
    upper: Vec<(Q, bool)>,
}

impl WeightBox {
    /// `lo ≤ θᵢ ≤ hi` for all `n` parameters (SaDe's weight limit; DeepSaDe's initial box).
    ///
    /// # Errors
    /// `lo > hi` or non-finite bounds.
    pub fn uniform(n: usize, lo: f64, hi: f64) -> Result<Self, MaxSmtError> {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(MaxSmtError::Parameter(format!(
                "empty weight box [{lo}, {hi}]"
            )));
        }
        let (l, h) = (q_from_f64(lo)?, q_from_f64(hi)?);
        Ok(WeightBox {
            lower: vec![(l, false); n],
            upper: vec![(h, false); n],
        })
    }

    /// DeepSaDe's gradient box: a step of at most `step` against the sign of each gradient
    /// component (`g > 0`: `θ − step ≤ θ' < θ`; `g < 0`: `θ < θ' ≤ θ + step`; `g = 0`:
    /// `θ' = θ`), intersected with `[−limit, limit]`.
    ///
    /// # Errors
    /// Length mismatch, non-positive step or limit, non-finite numbers.
    pub fn gradient_orthant(
        current: &[f64],
        gradient: &[f64],
        step: f64,
        limit: f64,
    ) -> Result<Self, MaxSmtError> {
        if current.len() != gradient.len() {
            return Err(MaxSmtError::Shape(format!(
                "{} weights, {} gradient components",
                current.len(),
                gradient.len()
            )));
        }
        if !(step > 0.0 && limit > 0.0) {
            return Err(MaxSmtError::Parameter(format!(
                "step {step} and limit {limit} must be positive"
            )));
        }
        let (s, lim) = (q_from_f64(step)?, q_from_f64(limit)?);
        let mut lower = Vec::with_capacity(current.len());
        let mut upper = Vec::with_capacity(current.len());
        for (&w, &g) in current.iter().zip(gradient) {
            let w = q_from_f64(w)?;
            let (lo, hi) = if g > 0.0 {
                ((&w - &s, false), (w, true))
            } else if g < 0.0 {
                ((w.clone(), true), (&w + &s, false))
            } else if g == 0.0 {
                ((w.clone(), false), (w, false))
            } else {
                return Err(MaxSmtError::Parameter("NaN gradient".into()));
            };
            let lo = if lo.0 < -lim.clone() {
                (-lim.clone(), false)
            } else {
                lo
            };
            let hi = if hi.0 > lim { (lim.clone(), false) } else { hi };
            lower.push(lo);
            upper.push(hi);
        }
        Ok(WeightBox { lower, upper })
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.lower.len()
    }
    /// Whether the box has no parameters.
    pub fn is_empty(&self) -> bool {
        self.lower.is_empty()
    }
    /// The closed box.
    pub fn closed(&self) -> Vec<(Q, Q)> {
        self.lower
            .iter()
            .zip(&self.upper)
            .map(|(l, u)| (l.0.clone(), u.0.clone()))
            .collect()
    }
    /// The bounds as atoms over `θ` (strict ends kept).
    pub fn atoms(&self) -> Vec<QfFormula> {
        let one = Q::from_integer(1.into());
        let mut out = Vec::new();
        for (i, ((l, ls), (u, us))) in self.lower.iter().zip(&self.upper).enumerate() {
            let mut lo = LinForm::var(i, one.clone());
            lo.constant = -l.clone();
            out.push(QfFormula::Atom(LinAtom {
                expr: lo,
                cmp: if *ls { Cmp::Gt } else { Cmp::Ge },
            }));
            let mut hi = LinForm::var(i, one.clone());
            hi.constant = -u.clone();
            out.push(QfFormula::Atom(LinAtom {
                expr: hi,
                cmp: if *us { Cmp::Lt } else { Cmp::Le },
            }));
        }
        out
    }
}

/// What the batch's examples ask of the last layer (soft constraints, weight 1 each).
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Logits: `y_k > m` for a positive label, `y_k < −m` for a negative one, for every margin
    /// `m` (DeepSaDe's `[0, 1, 2]`).
    Classification {
        /// One label vector per example (one Boolean per output).
        labels: Vec<Vec<bool>>,
        /// Margins.
        margins: Vec<f64>,
    },
    /// `|y_k − target_k| ≤ e` for every tolerance level.
    Regression {
        /// One target vector per example.
        targets: Vec<Vec<f64>>,
        /// Per level, one tolerance per output (DeepSaDe: `m · max` of the batch's targets).
        tolerances: Vec<Vec<f64>>,
    },
}

/// How to solve the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMethod {
    /// The faithful quantified encoding on Z3 (non-linear; slow; what the papers do).
    Quantified,
    /// The eliminated encoding on Z3 (linear real arithmetic).
    Eliminated(EliminationOptions),
    /// The eliminated encoding as a MILP on HiGHS.
    Milp(EliminationOptions),
}

/// Which encoding produced the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// The quantified formula itself.
    Quantified,
    /// The eliminated problem, exact or sound.
    Eliminated(Exactness),
}

/// Result of [`LastLayerUpdate::solve`].
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// Optimal / satisfiable without proof of optimality / unsatisfiable / unknown.
    pub status: Status,
    /// The new weights, exact (checked against the constraint exactly).
    pub theta: Option<Vec<Q>>,
    /// The same rounded to `f64`.
    pub theta_f64: Option<Vec<f64>>,
    /// Whether the rounded weights satisfy the constraint too (checked exactly).
    pub f64_verified: bool,
    /// Soft constraints the exact weights satisfy.
    pub satisfied: usize,
    /// Number of soft constraints.
    pub n_soft: usize,
    /// The encoding used.
    pub encoding: Encoding,
    /// Solver counters.
    pub stats: SolveStats,
    /// Why the status is not `Optimal`, when known.
    pub reason: Option<String>,
}

impl UpdateOutcome {
    fn without_weights(
        status: Status,
        n_soft: usize,
        encoding: Encoding,
        stats: SolveStats,
        reason: Option<String>,
    ) -> Self {
        UpdateOutcome {
            status,
            theta: None,
            theta_f64: None,
            f64_verified: false,
            satisfied: 0,
            n_soft,
            encoding,
            stats,
            reason,
        }
    }
}

/// One last-layer update: new weights in the weight box that satisfy the domain constraint
/// and as many of the batch's soft constraints as possible.
#[derive(Debug, Clone)]
pub struct LastLayerUpdate<'a> {
    constraint: &'a LastLayerConstraint,
    weight_box: WeightBox,
    soft: Vec<QfFormula>,
}

impl<'a> LastLayerUpdate<'a> {
    /// Validates the pieces: `features[i]` is example `i`'s last-layer input `z`.
    ///
    /// # Errors
    /// Shape mismatches and non-finite numbers.
    pub fn new(
        constraint: &'a LastLayerConstraint,
        weight_box: WeightBox,
        features: &[Vec<f64>],
        targets: &Targets,
    ) -> Result<Self, MaxSmtError> {
        let layer = constraint.layer();
        if weight_box.len() != layer.n_params() {
            return Err(MaxSmtError::Shape(format!(
                "weight box of {} for {} parameters",
                weight_box.len(),
                layer.n_params()
            )));
        }
        let n_examples = match targets {
            Targets::Classification { labels, .. } => labels.len(),
            Targets::Regression { targets, .. } => targets.len(),
        };
        if n_examples != features.len() {
            return Err(MaxSmtError::Shape(format!(
                "{} feature rows, {} targets",
                features.len(),
                n_examples
            )));
        }
        let mut soft = Vec::new();
        for (i, z) in features.iter().enumerate() {
            if z.len() != layer.n_features {
                return Err(MaxSmtError::Shape(format!(
                    "example {i} has {} features, the layer {}",
                    z.len(),
                    layer.n_features
                )));
            }
            let zq = z
                .iter()
                .map(|&v| q_from_f64(v))
                .collect::<Result<Vec<_>, _>>()?;
            let outputs: Vec<LinForm> = (0..layer.n_outputs)
                .map(|k| layer.output_form(k, &zq))
                .collect();
            match targets {
                Targets::Classification { labels, margins } => {
                    if labels[i].len() != layer.n_outputs {
                        return Err(MaxSmtError::Shape(format!(
                            "label {i} has the wrong length"
                        )));
                    }
                    for m in margins {
                        let m = q_from_f64(*m)?;
                        for (k, y) in outputs.iter().enumerate() {
                            let mut e = y.clone();
                            let cmp = if labels[i][k] {
                                e.constant -= &m;
                                Cmp::Gt
                            } else {
                                e.constant += &m;
                                Cmp::Lt
                            };
                            soft.push(QfFormula::Atom(LinAtom { expr: e, cmp }));
                        }
                    }
                }
                Targets::Regression {
                    targets,
                    tolerances,
                } => {
                    if targets[i].len() != layer.n_outputs {
                        return Err(MaxSmtError::Shape(format!(
                            "target {i} has the wrong length"
                        )));
                    }
                    for level in tolerances {
                        if level.len() != layer.n_outputs {
                            return Err(MaxSmtError::Shape(
                                "tolerance level of the wrong length".into(),
                            ));
                        }
                        for (k, y) in outputs.iter().enumerate() {
                            let t = q_from_f64(targets[i][k])?;
                            let e = q_from_f64(level[k])?;
                            let mut lo = y.clone();
                            lo.constant -= &t - &e;
                            let mut hi = y.clone();
                            hi.constant -= &t + &e;
                            soft.push(QfFormula::And(vec![
                                QfFormula::Atom(LinAtom {
                                    expr: lo,
                                    cmp: Cmp::Ge,
                                }),
                                QfFormula::Atom(LinAtom {
                                    expr: hi,
                                    cmp: Cmp::Le,
                                }),
                            ]));
                        }
                    }
                }
            }
        }
        Ok(LastLayerUpdate {
            constraint,
            weight_box,
            soft,
        })
    }

    /// The soft constraints over `θ`.
    pub fn soft_constraints(&self) -> &[QfFormula] {
        &self.soft
    }

    /// Number of soft constraints `θ` satisfies, exactly.
    pub fn count_satisfied(&self, theta: &[Q]) -> usize {
        let theta_f64: Vec<f64> = theta.iter().map(q_to_f64).collect();
        self.soft
            .iter()
            .filter(|f| holds_screened(f, theta, &theta_f64))
            .count()
    }

    /// Solves the update: all hard constraints, as many soft ones as possible.
    ///
    /// # Errors
    /// Unsupported constraints for the method; solver failures; a returned `θ` that fails the
    /// exact check (a bug, reported rather than returned).
    pub fn solve(
        &self,
        method: UpdateMethod,
        solver: &dyn MaxSmtSolver,
        limits: &Limits,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        self.run(method, solver, limits, true)
    }

    /// Finds any `θ` in the box that satisfies the constraint (no soft constraints), e.g. an
    /// initial last layer.
    ///
    /// # Errors
    /// As [`solve`](Self::solve).
    pub fn feasible(
        &self,
        method: UpdateMethod,
        solver: &dyn MaxSmtSolver,
        limits: &Limits,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        self.run(method, solver, limits, false)
    }

    fn run(
        &self,
        method: UpdateMethod,
        solver: &dyn MaxSmtSolver,
        limits: &Limits,
        with_soft: bool,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        let n_soft = if with_soft { self.soft.len() } else { 0 };
        match method {
            UpdateMethod::Milp(opts) => self.run_milp(opts, limits, with_soft),
            UpdateMethod::Quantified | UpdateMethod::Eliminated(_) => {
                let soft: Vec<usize> = if with_soft {
                    (0..self.soft.len()).collect()
                } else {
                    Vec::new()
                };
                self.run_z3(method, solver, limits, &[], &soft, n_soft)
            }
        }
    }

    /// Z3 on the box, the constraint (quantified or eliminated), the soft constraints
    /// `required` as hard ones and `soft` as soft ones.
    fn run_z3(
        &self,
        method: UpdateMethod,
        solver: &dyn MaxSmtSolver,
        limits: &Limits,
        required: &[usize],
        soft: &[usize],
        n_soft: usize,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        let layer = self.constraint.layer();
        let theta = z3enc::theta_vars(layer);
        let mut hard: Vec<_> = self
            .weight_box
            .atoms()
            .iter()
            .map(|a| z3enc::qf(a, &theta))
            .collect();
        let encoding = match method {
            UpdateMethod::Eliminated(opts) | UpdateMethod::Milp(opts) => {
                let p = eliminate(self.constraint, &self.weight_box.closed(), opts)?;
                hard.extend(z3enc::eliminated(&p, &theta));
                Encoding::Eliminated(p.exactness)
            }
            UpdateMethod::Quantified => {
                hard.extend(z3enc::quantified(self.constraint, &theta));
                Encoding::Quantified
            }
        };
        hard.extend(required.iter().map(|&k| z3enc::qf(&self.soft[k], &theta)));
        let soft = soft
            .iter()
            .map(|&k| SoftConstraint {
                formula: z3enc::qf(&self.soft[k], &theta),
                weight: 1,
            })
            .collect();
        let instance = Instance {
            hard,
            soft,
            logic: None,
        };
        let out = solver.solve(&instance, limits);
        let theta_q = match &out.model {
            Some(m) => Some(z3enc::read_theta(m, &theta)?),
            None => None,
        };
        self.finish(out.status, theta_q, encoding, out.stats, out.reason, n_soft)
    }

    fn run_milp(
        &self,
        opts: EliminationOptions,
        limits: &Limits,
        with_soft: bool,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        let start = Instant::now();
        let mut p = eliminate(self.constraint, &self.weight_box.closed(), opts)?;
        let soft: Vec<(QfFormula, u64)> = if with_soft {
            self.soft.iter().map(|f| (f.clone(), 1)).collect()
        } else {
            Vec::new()
        };
        let n_soft = soft.len();
        let mut margin = MilpOptions::default().safety_margin;
        let mut stats = SolveStats::default();
        let box_bounds = p.bounds[..self.weight_box.len()].to_vec();
        // How far an infeasible MILP has been relaxed: 0 none, 1 strict box ends 1e-10 inside,
        // 2 also the constraint's margin cut to 1e-9.
        let mut relaxed = 0;
        // Set once HiGHS's weights fail the exact check and polishing that point (the LP with
        // its binaries fixed: big-M leakage) does not mend them: every later solve is polished.
        let mut polish = false;
        // The padding makes HiGHS's tolerances harmless in practice; the exact check decides,
        // and a failure is retried with a wider padding.
        // Margins m, 100m, 10⁴m, 10⁶m (each also polished), with the relaxations above.
        for _ in 0..4 {
            let tight_ends = relaxed > 0;
            // The weight box becomes column bounds, strict ends pulled in by the margin. (As
            // padded atoms, a fixed weight — zero gradient — would be infeasible.)
            let pad = q_from_f64(if tight_ends { 1e-10 } else { 2.0 * margin })?;
            for (i, (l, u)) in box_bounds.iter().enumerate() {
                let lo = if self.weight_box.lower[i].1 {
                    l + &pad
                } else {
                    l.clone()
                };
                let hi = if self.weight_box.upper[i].1 {
                    u - &pad
                } else {
                    u.clone()
                };
                if lo > hi {
                    // A strict end narrower than the padding: only the exact path can tell.
                    return self.milp_fallback(
                        opts,
                        limits,
                        with_soft,
                        stats,
                        "weight box narrower than the MILP margin",
                    );
                }
                p.bounds[i] = (lo, hi);
            }
            let remaining = limits.time_limit.map(|t| t.saturating_sub(start.elapsed()));
            let sol = milp::solve(
                &p,
                &soft,
                &MilpOptions {
                    time_limit: remaining,
                    safety_margin: margin,
                    polish,
                    node_limit: limits.node_limit,
                },
            )?;
            stats.calls += 1;
            stats.time = start.elapsed();
            if sol.status == Status::Unsatisfiable {
                if relaxed == 2 {
                    // Exactly feasible weights may have no slack at all (an atom the box
                    // cannot move off zero); no margin finds them. Let HiGHS choose the soft
                    // constraints without a margin, then ask Z3 for exact weights meeting
                    // those as hard constraints: one satisfiability check, not a MaxSMT run.
                    if let Some(out) = self.milp_then_exact(&p, &soft, opts, limits, &mut stats)? {
                        return Ok(out);
                    }
                }
                if relaxed < 2 {
                    // Weights near the constraint's boundary with a gradient pointing out of
                    // it leave feasible steps only close to the box's strict ends (at the
                    // current weights) and with less slack than the margin, which the padding
                    // cuts off; Z3 then took ~35 ms (SaDe/loan) to 10 s (DeepSaDe/expenses)
                    // per step. Retry with the strict ends 1e-10 inside, then also with a
                    // 1e-9 margin: weights HiGHS returns within its tolerance but outside the
                    // constraint fail the exact check below and widen the margin again.
                    relaxed += 1;
                    if relaxed == 2 {
                        margin = margin.min(1e-9);
                    }
                    continue;
                }
                // Infeasible *with the safety margin* is not a proof: the exact path decides.
                return self.milp_fallback(
                    opts,
                    limits,
                    with_soft,
                    stats,
                    "HiGHS found no weights with the safety margin",
                );
            }
            let Some(theta) = sol.theta.clone() else {
                return Ok(UpdateOutcome::without_weights(
                    sol.status,
                    n_soft,
                    Encoding::Eliminated(p.exactness),
                    stats,
                    None,
                ));
            };
            if let Some(out) = self.exactly_checked(theta, &sol, with_soft, &p, &stats)? {
                return Ok(out);
            }
            if !polish {
                // The same MILP with the binaries fixed at this point's values (an LP): solving
                // the MILP again would only return this point.
                let polished = milp::polish(
                    &p,
                    &soft,
                    &MilpOptions {
                        time_limit: limits.time_limit.map(|t| t.saturating_sub(start.elapsed())),
                        safety_margin: margin,
                        polish: false,
                        node_limit: None,
                    },
                    &sol.binaries,
                )?;
                stats.calls += 1;
                stats.time = start.elapsed();
                if let Some(theta) = polished.theta {
                    if let Some(out) = self.exactly_checked(theta, &sol, with_soft, &p, &stats)? {
                        return Ok(out);
                    }
                }
                // From now on every solve is polished.
                polish = true;
            }
            margin *= 100.0;
        }
        Ok(UpdateOutcome::without_weights(
            Status::Unknown,
            n_soft,
            Encoding::Eliminated(p.exactness),
            stats,
            Some("HiGHS's weights failed the exact check at every padding tried".into()),
        ))
    }

    /// The outcome for weights `theta` from the MILP solution `sol` (possibly polished), if
    /// they satisfy the constraint and the weight box exactly.
    fn exactly_checked(
        &self,
        theta: Vec<f64>,
        sol: &milp::MilpSolution,
        with_soft: bool,
        p: &EliminatedProblem,
        stats: &SolveStats,
    ) -> Result<Option<UpdateOutcome>, MaxSmtError> {
        let theta_q = theta
            .iter()
            .map(|&v| q_from_f64(v))
            .collect::<Result<Vec<_>, _>>()?;
        if self.constraint.counterexample(&theta_q)?.is_some() || !self.weight_box_holds(&theta_q) {
            return Ok(None);
        }
        let satisfied = if with_soft {
            self.count_satisfied(&theta_q)
        } else {
            0
        };
        // HiGHS counts padded soft constraints; an exact count below its objective means
        // optimality is not established.
        let status = match (sol.status, sol.objective) {
            (Status::Optimal, Some(o)) if (o - satisfied as f64).abs() < 0.5 => Status::Optimal,
            (Status::Optimal, _) => Status::Satisfiable,
            (s, _) => s,
        };
        Ok(Some(UpdateOutcome {
            status,
            theta: Some(theta_q),
            theta_f64: Some(theta),
            f64_verified: true,
            satisfied,
            n_soft: if with_soft { self.soft.len() } else { 0 },
            encoding: Encoding::Eliminated(p.exactness.clone()),
            stats: stats.clone(),
            reason: None,
        }))
    }

    /// HiGHS without a safety margin picks which soft constraints to meet; Z3 then looks for
    /// exact weights meeting all of them. `None` when either finds nothing (the caller falls
    /// back to MaxSMT on Z3). The count is exact but optimality is not claimed: the MILP
    /// without a margin is only optimal up to HiGHS's tolerances.
    fn milp_then_exact(
        &self,
        p: &EliminatedProblem,
        soft: &[(QfFormula, u64)],
        opts: EliminationOptions,
        limits: &Limits,
        stats: &mut SolveStats,
    ) -> Result<Option<UpdateOutcome>, MaxSmtError> {
        let start = Instant::now();
        let sol = milp::solve(
            p,
            soft,
            &MilpOptions {
                time_limit: limits.time_limit.map(|t| t.saturating_sub(stats.time)),
                safety_margin: 0.0,
                polish: false,
                node_limit: limits.node_limit,
            },
        )?;
        stats.calls += 1;
        let Some(theta) = sol.theta else {
            stats.time += start.elapsed();
            return Ok(None);
        };
        // The soft constraints HiGHS meets, up to its 1e-7 feasibility tolerance.
        let chosen: Vec<usize> = soft
            .iter()
            .enumerate()
            .filter(|(_, (f, _))| holds_within(f, &theta, 1e-6))
            .map(|(k, _)| k)
            .collect();
        let mut rest = limits.clone();
        rest.time_limit = limits.time_limit.map(|t| t.saturating_sub(stats.time));
        let out = self.run_z3(
            UpdateMethod::Eliminated(opts),
            &PmRes,
            &rest,
            &chosen,
            &[],
            soft.len(),
        )?;
        stats.calls += out.stats.calls;
        stats.time += start.elapsed();
        if out.theta.is_none() {
            return Ok(None);
        }
        let satisfied = out.theta.as_deref().map_or(0, |t| self.count_satisfied(t));
        Ok(Some(UpdateOutcome {
            status: Status::Satisfiable,
            satisfied,
            stats: stats.clone(),
            reason: Some(format!(
                "no weights with HiGHS's safety margin; Z3 met the {} soft constraints HiGHS chose without one",
                chosen.len()
            )),
            ..out
        }))
    }

    /// The eliminated problem on Z3 (exact), after the MILP could not decide.
    fn milp_fallback(
        &self,
        opts: EliminationOptions,
        limits: &Limits,
        with_soft: bool,
        mut stats: SolveStats,
        why: &str,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        let mut rest = limits.clone();
        if let Some(t) = limits.time_limit {
            rest.time_limit = Some(t.saturating_sub(stats.time));
        }
        let mut out = self.run(UpdateMethod::Eliminated(opts), &PmRes, &rest, with_soft)?;
        stats.calls += out.stats.calls;
        stats.cores += out.stats.cores;
        stats.time += out.stats.time;
        out.stats = stats;
        let note = format!("{why}; solved exactly on Z3 instead");
        out.reason = Some(match out.reason {
            Some(r) => format!("{note}; {r}"),
            None => note,
        });
        Ok(out)
    }

    fn weight_box_holds(&self, theta: &[Q]) -> bool {
        self.weight_box.atoms().iter().all(|f| holds(f, theta))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        status: Status,
        theta: Option<Vec<Q>>,
        encoding: Encoding,
        stats: SolveStats,
        reason: Option<String>,
        n_soft: usize,
    ) -> Result<UpdateOutcome, MaxSmtError> {
        let Some(theta) = theta else {
            return Ok(UpdateOutcome::without_weights(
                status, n_soft, encoding, stats, reason,
            ));
        };
        if let Some(z) = self.constraint.counterexample(&theta)? {
            return Err(MaxSmtError::Solver(format!(
                "the {encoding:?} encoding returned weights that violate the constraint at z = {:?}",
                z.iter().map(q_to_f64).collect::<Vec<_>>()
            )));
        }
        let theta_f64: Vec<f64> = theta.iter().map(q_to_f64).collect();
        let f64_verified = self.constraint.counterexample_f64(&theta_f64)?.is_none();
        let satisfied = if n_soft > 0 {
            self.count_satisfied(&theta)
        } else {
            0
        };
        Ok(UpdateOutcome {
            status,
            theta: Some(theta),
            theta_f64: Some(theta_f64),
            f64_verified,
            satisfied,
            n_soft,
            encoding,
            stats,
            reason,
        })
    }
}

/// [`holds`], deciding each atom in `f64` where its value is far from zero relative to its
/// terms (the rounding of a few conversions, products and sums is below `1e-10` of their
/// magnitudes), and exactly otherwise.
fn holds_screened(f: &QfFormula, theta: &[Q], theta_f64: &[f64]) -> bool {
    match f {
        QfFormula::Atom(a) => {
            let mut v = q_to_f64(&a.expr.constant);
            let mut mag = v.abs();
            for (i, c) in &a.expr.terms {
                let t = q_to_f64(c) * theta_f64[*i];
                v += t;
                mag += t.abs();
            }
            if v.is_finite() && v.abs() > 1e-10 * mag {
                a.cmp.holds(v)
            } else {
                a.holds(theta)
            }
        }
        QfFormula::And(v) => v.iter().all(|g| holds_screened(g, theta, theta_f64)),
        QfFormula::Or(v) => v.iter().any(|g| holds_screened(g, theta, theta_f64)),
        _ => holds(f, theta),
    }
}

/// Truth of a formula over `θ` in `f64`, each atom allowed to miss by `tol` (for reading which
/// soft constraints a MILP solution meets within the solver's tolerance).
fn holds_within(f: &QfFormula, theta: &[f64], tol: f64) -> bool {
    match f {
        QfFormula::True => true,
        QfFormula::False | QfFormula::Count { .. } => false,
        QfFormula::Atom(a) => {
            let v = q_to_f64(&a.expr.constant)
                + a.expr
                    .terms
                    .iter()
                    .map(|(i, c)| q_to_f64(c) * theta[*i])
                    .sum::<f64>();
            match a.cmp {
                Cmp::Ge | Cmp::Gt => v >= -tol,
                Cmp::Le | Cmp::Lt => v <= tol,
                Cmp::Eq => v.abs() <= tol,
            }
        }
        QfFormula::And(v) => v.iter().all(|g| holds_within(g, theta, tol)),
        QfFormula::Or(v) => v.iter().any(|g| holds_within(g, theta, tol)),
    }
}

/// Exact truth of a formula over `θ` only (atoms, conjunctions, disjunctions).
fn holds(f: &QfFormula, theta: &[Q]) -> bool {
    match f {
        QfFormula::True => true,
        QfFormula::False => false,
        QfFormula::Atom(a) => a.holds(theta),
        QfFormula::And(v) => v.iter().all(|g| holds(g, theta)),
        QfFormula::Or(v) => v.iter().any(|g| holds(g, theta)),
        QfFormula::Count { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use provenn_dsl::{compile, Bindings};

    use super::*;
    use crate::{LastLayer, PmRes};

    /// Zero gradients fix weights (`lo = hi`); the MILP must still find the box's points, and
    /// strict ends must be kept exactly.
    #[test]
    fn gradient_box_with_fixed_weights_is_solved_by_every_method() {
        let c = compile("y[0] >= 0", &Bindings::anonymous(&[(0.0, 1.0)], 1))
            .unwrap()
            .remove(0);
        let layer = LastLayer {
            n_features: 2,
            n_outputs: 1,
        };
        let llc = LastLayerConstraint::new(layer, &c, &[(0.0, 1.0)], &[0]).unwrap();
        let current = [0.5, 0.25, 0.25];
        let grad = [0.0, 1.0, -1.0];
        let wb = WeightBox::gradient_orthant(&current, &grad, 0.1, 100.0).unwrap();
        let none = Targets::Classification {
            labels: vec![],
            margins: vec![],
        };
        let up = LastLayerUpdate::new(&llc, wb, &[], &none).unwrap();
        for m in [
            UpdateMethod::Milp(EliminationOptions::default()),
            UpdateMethod::Eliminated(EliminationOptions::default()),
            UpdateMethod::Quantified,
        ] {
            let out = up.feasible(m, &PmRes, &Limits::default()).unwrap();
            assert_eq!(out.status, Status::Optimal, "{m:?}: {:?}", out.reason);
            let t = out.theta.unwrap();
            assert_eq!(t[0], q_from_f64(0.5).unwrap(), "{m:?}");
            let (w, s) = (q_from_f64(0.25).unwrap(), q_from_f64(0.1).unwrap());
            assert!(t[1] < w && t[1] >= &w - &s, "{m:?}");
            assert!(t[2] > w && t[2] <= &w + &s, "{m:?}");
            assert!(out.f64_verified);
        }
    }
}
