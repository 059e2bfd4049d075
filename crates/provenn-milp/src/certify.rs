//! Certification of IR constraints `∀x ∈ D (and x' ∈ D): F(x, f(x)[, x', f(x')])` on a ReLU
//! network: a MILP maximises how far `F` can be violated; the answer is a certificate, a
//! witness re-validated in f64, or "unknown" — never "certified" without a proof.

use std::time::{Duration, Instant};

use provenn_bounds::InputBox;
use provenn_dsl::ir::{Assignment, Constraint, Formula};
use provenn_nn::Mlp;

use crate::backend::{default_backend, Backend, SolveOptions, SolveStatus};
use crate::encoding::{encode_network, input_vars, Lin, NeuronBounds};
use crate::formula::{atom_scale, FormulaEncoder, Lit};
use crate::model::{Milp, Sense, VarId};
use crate::tighten::{global_bounds, pad_for, Tightening};
use crate::MilpError;

/// Parameters of a [`ConstraintCertifier`], validated by [`CertifyOptions::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct CertifyOptions {
    /// Violations up to this size are attributed to solver tolerance: "certified" means no
    /// input violates the constraint by more than this.
    pub tolerance: f64,
    /// Margin used to search for a *strict* witness when the relaxed search only finds points
    /// on a strict boundary.
    pub strict_margin: f64,
    /// Limit per solver call; reaching it gives "unknown".
    pub time_limit: Option<Duration>,
    /// Neuron-bound tightening before encoding.
    pub tightening: Tightening,
}

impl Default for CertifyOptions {
    fn default() -> Self {
        CertifyOptions {
            tolerance: 1e-5,
            strict_margin: 1e-6,
            time_limit: Some(Duration::from_secs(60)),
            tightening: Tightening::None,
        }
    }
}

impl CertifyOptions {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), MilpError> {
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(MilpError::InvalidParameter(format!(
                "tolerance must be finite and ≥ 0, got {}",
                self.tolerance
            )));
        }
        if !(self.strict_margin > 0.0 && self.strict_margin.is_finite()) {
            return Err(MilpError::InvalidParameter(format!(
                "strict_margin must be finite and > 0, got {}",
                self.strict_margin
            )));
        }
        if let Some(t) = self.time_limit {
            if t.is_zero() {
                return Err(MilpError::InvalidParameter("time limit of zero".into()));
            }
        }
        Ok(())
    }
}

/// Inputs and outputs at which the constraint fails, re-computed with the network in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Witness {
    /// First input.
    pub x: Vec<f64>,
    /// Network output at `x`.
    pub y: Vec<f64>,
    /// Second input (two-copy constraints; empty otherwise).
    pub x2: Vec<f64>,
    /// Network output at `x2`.
    pub y2: Vec<f64>,
    /// The formula's violation at the witness (`∞` when an input-only part fails; 0 when it
    /// fails only on a strict boundary).
    pub violation: f64,
}

/// The outcome of certification.
#[derive(Debug, Clone, PartialEq)]
pub enum Certificate {
    /// No admissible input violates the constraint by more than the tolerance. `margin` is a
    /// proven lower bound on the slack of the output conditions (≥ −tolerance; `∞` when no
    /// admissible input reaches them).
    Certified {
        /// Proven slack.
        margin: f64,
    },
    /// A counterexample, re-validated in f64.
    Violated(Witness),
    /// Nothing proven.
    Unknown {
        /// Why.
        reason: String,
    },
}

impl Certificate {
    /// Short name: `certified`, `violated` or `unknown`.
    pub fn status(&self) -> &'static str {
        match self {
            Certificate::Certified { .. } => "certified",
            Certificate::Violated(_) => "violated",
            Certificate::Unknown { .. } => "unknown",
        }
    }
}

/// A certificate with the work it took.
#[derive(Debug, Clone)]
pub struct CertifyReport {
    /// The outcome.
    pub certificate: Certificate,
    /// Solver calls.
    pub solves: usize,
    /// Time in the solver.
    pub solver_time: Duration,
    /// Total time.
    pub time: Duration,
    /// Binaries for unstable neurons (all copies).
    pub neuron_binaries: usize,
}

/// Certifies constraints on networks with a MILP backend.
pub struct ConstraintCertifier {
    backend: Box<dyn Backend>,
    options: CertifyOptions,
}

impl std::fmt::Debug for ConstraintCertifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintCertifier")
            .field("backend", &self.backend.name())
            .field("options", &self.options)
            .finish()
    }
}

impl ConstraintCertifier {
    /// A certifier on the default backend.
    pub fn new(options: CertifyOptions) -> Result<Self, MilpError> {
        Self::with_backend(options, default_backend())
    }

    /// A certifier on `backend`.
    pub fn with_backend(
        options: CertifyOptions,
        backend: Box<dyn Backend>,
    ) -> Result<Self, MilpError> {
        options.validate()?;
        Ok(ConstraintCertifier { backend, options })
    }

    /// The options.
    pub fn options(&self) -> &CertifyOptions {
        &self.options
    }

    /// Certifies `c` over its own domain.
    pub fn certify(&self, net: &Mlp, c: &Constraint) -> Result<CertifyReport, MilpError> {
        let (lo, hi): (Vec<f64>, Vec<f64>) = c.domain.iter().copied().unzip();
        let domain = InputBox::new(lo, hi)?;
        self.certify_on(net, c, &domain, &domain)
    }

    /// Certifies `c` over its own domain, after evaluating `candidates` — inputs the caller
    /// suspects, such as data rows — with the network in f64. If some admissible candidate
    /// violates `c`, the answer is [`Certificate::Violated`] at the candidate that violates
    /// most, without a solver call (a MILP on thousands of inputs can run out of time on a
    /// constraint the data already refutes); otherwise it is [`certify`](Self::certify)'s.
    /// Candidates outside the domain are not admissible and are skipped.
    ///
    /// # Errors
    /// A two-copy constraint (candidates are single inputs), a candidate of the wrong
    /// dimension, and [`certify`](Self::certify)'s errors.
    pub fn certify_with_candidates(
        &self,
        net: &Mlp,
        c: &Constraint,
        candidates: &[Vec<f64>],
    ) -> Result<CertifyReport, MilpError> {
        let start = Instant::now();
        if c.two_copy && !candidates.is_empty() {
            return Err(MilpError::InvalidParameter(
                "candidates are single inputs; the constraint is two-copy".into(),
            ));
        }
        let mut worst: Option<Witness> = None;
        for x in candidates {
            if x.len() != c.domain.len() || x.len() != net.n_inputs() {
                return Err(MilpError::Dimension(format!(
                    "candidate of {} inputs for a domain of {} and a network of {}",
                    x.len(),
                    c.domain.len(),
                    net.n_inputs()
                )));
            }
            let admissible = x
                .iter()
                .zip(&c.domain)
                .all(|(v, &(l, h))| l <= *v && *v <= h);
            if !admissible {
                continue;
            }
            let y = net
                .forward(&nalgebra::DVector::from_column_slice(x))?
                .as_slice()
                .to_vec();
            let a = Assignment {
                x,
                y: &y,
                x2: &[],
                y2: &[],
            };
            if c.formula.holds(&a) {
                continue;
            }
            let violation = c.formula.violation(&a);
            if worst.as_ref().is_none_or(|w| violation > w.violation) {
                worst = Some(Witness {
                    x: x.clone(),
                    y,
                    x2: Vec::new(),
                    y2: Vec::new(),
                    violation,
                });
            }
        }
        match worst {
            Some(w) => Ok(CertifyReport {
                certificate: Certificate::Violated(w),
                solves: 0,
                solver_time: Duration::ZERO,
                time: start.elapsed(),
                neuron_binaries: 0,
            }),
            None => self.certify(net, c),
        }
    }

    /// Certifies `c` with the first copy's input in `first` and the second's in `second`
    /// (ignored for single-copy constraints). Used for local queries such as the AdI.
    pub fn certify_on(
        &self,
        net: &Mlp,
        c: &Constraint,
        first: &InputBox,
        second: &InputBox,
    ) -> Result<CertifyReport, MilpError> {
        let start = Instant::now();
        for b in [first, second] {
            if b.dim() != net.n_inputs() {
                return Err(MilpError::Dimension(format!(
                    "domain has {} inputs, network {}",
                    b.dim(),
                    net.n_inputs()
                )));
            }
        }
        // Everything the certificate rests on — the neuron bounds the encoding trusts (MILP/LP
        // tightening) and the violation query's answer — is confirmed by a second solve.
        let solve_opts = SolveOptions {
            time_limit: self.options.time_limit,
            confirm_proofs: true,
            ..Default::default()
        };
        let mut solves = 0;
        let mut solver_time = Duration::ZERO;
        let b1 = global_bounds(
            net,
            first,
            self.options.tightening,
            &*self.backend,
            &solve_opts,
        )?;
        solves += b1.solves;
        let b2 = if c.two_copy {
            let b = global_bounds(
                net,
                second,
                self.options.tightening,
                &*self.backend,
                &solve_opts,
            )?;
            solves += b.solves;
            Some(b.bounds)
        } else {
            None
        };
        let negated = c.formula.clone().negate();
        // Relational constraints are typically violated by exactly 0 at x = x2 (monotonicity,
        // robustness), so proving "max violation ≤ tolerance" by closing the gap to that 0 is
        // hopeless; asking only for violations above a floor (tolerance minus the solver's
        // padding) lets the solver prune every node whose bound is below it, and infeasibility
        // is the certificate. A violation above the floor is still maximised.
        let floor = c.two_copy.then(|| {
            let tol = self.options.tolerance;
            (tol - pad_for(self.backend.tolerance(), tol, &Lin::constant(0.0))).max(0.0)
        });
        let mut binaries = 0;
        let mut attempt = |strict: f64| -> Result<Attempt, MilpError> {
            let q = ViolationQuery::build(
                net,
                &negated,
                [first, second],
                [&b1.bounds, b2.as_ref().unwrap_or(&b1.bounds)],
                c.two_copy,
                strict,
                floor,
            )?;
            binaries = q.neuron_binaries;
            let out = self.backend.solve(&q.milp, &solve_opts)?;
            solves += 1;
            solver_time += out.time;
            let witness = (!out.values.is_empty())
                .then(|| q.witness(net, c, &out.values, [first, second]))
                .transpose()?
                .flatten();
            let bound = match (q.t, out.bound) {
                (Some(_), Some(b)) => {
                    Some(b + pad_for(self.backend.tolerance(), b, &Lin::constant(0.0)))
                }
                _ => None,
            };
            Ok(Attempt {
                status: out.status,
                bound,
                has_margin: q.t.is_some(),
                witness,
            })
        };
        let first_try = attempt(0.0)?;
        let certificate = match first_try {
            Attempt {
                status: SolveStatus::Infeasible,
                has_margin,
                ..
            } => Certificate::Certified {
                // With a floor, infeasible means "no violation above the tolerance".
                margin: if floor.is_some() && has_margin {
                    -self.options.tolerance
                } else {
                    f64::INFINITY
                },
            },
            Attempt {
                witness: Some(w), ..
            } => Certificate::Violated(w),
            Attempt {
                status: SolveStatus::Unknown,
                ..
            } => Certificate::Unknown {
                reason: "solver limit reached before any bound was proven".into(),
            },
            Attempt {
                status,
                bound,
                has_margin,
                ..
            } => {
                let proven = status == SolveStatus::Optimal || bound.is_some();
                match bound {
                    Some(b) if has_margin && proven && b <= self.options.tolerance => {
                        Certificate::Certified { margin: -b }
                    }
                    _ => {
                        // The relaxed search found only points that do not violate in f64
                        // (strict boundaries, tolerances): look for a strict witness.
                        let second = attempt(self.options.strict_margin)?;
                        match second {
                            Attempt {
                                witness: Some(w), ..
                            } => Certificate::Violated(w),
                            _ => Certificate::Unknown {
                                reason: format!(
                                    "the solver's candidate counterexample does not violate the \
                                     constraint when the network is evaluated in f64, and no \
                                     counterexample with strict margin {} was found",
                                    self.options.strict_margin
                                ),
                            },
                        }
                    }
                }
            }
        };
        Ok(CertifyReport {
            certificate,
            solves,
            solver_time,
            time: start.elapsed(),
            neuron_binaries: binaries,
        })
    }
}

struct Attempt {
    status: SolveStatus,
    bound: Option<f64>,
    has_margin: bool,
    witness: Option<Witness>,
}

/// The MILP "maximise how much `¬F` holds".
struct ViolationQuery {
    milp: Milp,
    inputs: [Vec<VarId>; 2],
    t: Option<VarId>,
    two_copy: bool,
    neuron_binaries: usize,
}

impl ViolationQuery {
    fn build(
        net: &Mlp,
        negated: &Formula,
        boxes: [&InputBox; 2],
        bounds: [&NeuronBounds; 2],
        two_copy: bool,
        strict: f64,
        floor: Option<f64>,
    ) -> Result<Self, MilpError> {
        let mut m = Milp::new();
        let (v1, x1) = input_vars(&mut m, boxes[0].lower(), boxes[0].upper());
        let n1 = encode_network(&mut m, net, &x1, bounds[0])?;
        let (v2, x2, y2, nb2) = if two_copy {
            let (v2, x2) = input_vars(&mut m, boxes[1].lower(), boxes[1].upper());
            let n2 = encode_network(&mut m, net, &x2, bounds[1])?;
            (v2, x2, n2.outputs, n2.stats.binaries)
        } else {
            (Vec::new(), Vec::new(), Vec::new(), 0)
        };
        let neuron_binaries = n1.stats.binaries + nb2;
        let mut enc = FormulaEncoder {
            m: &mut m,
            x: [&x1, &x2],
            y: [&n1.outputs, &y2],
            t: None,
            strict,
        };
        let scale = atom_scale(&enc, negated)?;
        let t = (scale > 0.0).then(|| {
            let lower = floor.map_or(-(scale + 1.0), |f| f.min(scale + 1.0));
            let t = enc.m.continuous(lower, scale + 1.0);
            enc.t = Some(t);
            t
        });
        enc.formula(negated, Lit::Always, true)?;
        if let Some(t) = t {
            m.set_objective(Sense::Maximise, vec![(t, 1.0)]);
        }
        Ok(ViolationQuery {
            milp: m,
            inputs: [v1, v2],
            t,
            two_copy,
            neuron_binaries,
        })
    }

    /// The candidate at `values`, clipped into the boxes, if it violates in f64.
    fn witness(
        &self,
        net: &Mlp,
        c: &Constraint,
        values: &[f64],
        boxes: [&InputBox; 2],
    ) -> Result<Option<Witness>, MilpError> {
        let point = |k: usize| -> Vec<f64> {
            self.inputs[k]
                .iter()
                .enumerate()
                .map(|(i, v)| values[v.index()].clamp(boxes[k].lower()[i], boxes[k].upper()[i]))
                .collect()
        };
        let x = point(0);
        let y = net
            .forward(&nalgebra::DVector::from_vec(x.clone()))?
            .as_slice()
            .to_vec();
        let mut candidates = Vec::new();
        if self.two_copy {
            let x2 = point(1);
            // The solver's equalities between copies (`same(x, x2, …)`) hold only to its
            // feasibility tolerance, which can break them in f64: also try the candidate with
            // near-equal coordinates made equal.
            let snapped: Vec<f64> = x2
                .iter()
                .zip(&x)
                .enumerate()
                .map(|(i, (&b, &a))| {
                    let inside = boxes[1].lower()[i] <= a && a <= boxes[1].upper()[i];
                    if (b - a).abs() <= 1e-6 * (1.0 + a.abs()) && inside {
                        a
                    } else {
                        b
                    }
                })
                .collect();
            let snap_differs = snapped != x2;
            candidates.push(x2);
            if snap_differs {
                candidates.push(snapped);
            }
        } else {
            candidates.push(Vec::new());
        }
        for x2 in candidates {
            let y2 = if self.two_copy {
                net.forward(&nalgebra::DVector::from_vec(x2.clone()))?
                    .as_slice()
                    .to_vec()
            } else {
                Vec::new()
            };
            let a = Assignment {
                x: &x,
                y: &y,
                x2: &x2,
                y2: &y2,
            };
            if c.formula.holds(&a) {
                continue;
            }
            let violation = c.formula.violation(&a);
            return Ok(Some(Witness {
                x,
                y,
                x2,
                y2,
                violation,
            }));
        }
        Ok(None)
    }
}
