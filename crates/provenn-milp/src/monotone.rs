//! Monotonicity certificates from the network's directional derivative (the MILP of Liu et
//! al., "Certified Monotonic Neural Networks", NeurIPS 2020): a ReLU network is piecewise
//! linear and continuous, so `f(x + t·e_i) − f(x)` is the integral of `∂f/∂x_i` along the
//! segment, and `∂f/∂x_i` on a linear piece is a product of weights and activation phases.
//! One copy of the network with its phase binaries, plus the derivative propagated through
//! the phases (`d = z·g` linearised exactly with interval bounds on `g`), gives a MILP whose
//! minimum of `σ·∂f_k/∂x_i` over the box bounds every admissible pair's difference.
//!
//! Against the two-copy encoding of [`crate::ConstraintCertifier`] this has half the binaries
//! and no freedom for the copies to take different phases at `x = x'`, which is what makes the
//! two-copy relaxation weak near the diagonal.
//!
//! ```
//! use nalgebra::{DMatrix, DVector};
//! use provenn_bounds::InputBox;
//! use provenn_milp::{Certificate, CertifyOptions, MonotonicityCertifier};
//! use provenn_nn::{Activation, Dense, Mlp};
//!
//! // y = relu(x0 - x1) + 0.5·relu(x0 - 0.8): increasing in x0, decreasing in x1.
//! let hidden = Dense::new(
//!     DMatrix::from_row_slice(2, 2, &[1.0, -1.0, 1.0, 0.0]),
//!     DVector::from_column_slice(&[0.0, -0.8]),
//!     Activation::Relu,
//! )
//! .unwrap();
//! let out = Dense::new(
//!     DMatrix::from_row_slice(1, 2, &[1.0, 0.5]),
//!     DVector::zeros(1),
//!     Activation::Identity,
//! )
//! .unwrap();
//! let net = Mlp::from_layers(2, vec![hidden, out], vec![]).unwrap();
//! let b = InputBox::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
//! let m = MonotonicityCertifier::new(CertifyOptions::default()).unwrap();
//!
//! let up = m.certify_on(&net, 0, true, &b).unwrap();
//! assert_eq!(up.certificate.status(), "certified");
//! let down = m.certify_on(&net, 1, false, &b).unwrap();
//! assert_eq!(down.certificate.status(), "certified");
//! match m.certify_on(&net, 1, true, &b).unwrap().certificate {
//!     // A pair differing in x1 only, with x2[1] ≥ x[1], along which y falls.
//!     Certificate::Violated(w) => assert!(w.x2[1] > w.x[1] && w.y2[0] < w.y[0]),
//!     other => panic!("expected a counterexample, got {other:?}"),
//! }
//! ```

use std::time::{Duration, Instant};

use provenn_bounds::InputBox;
use provenn_nn::Mlp;

use crate::backend::{default_backend, Backend, SolveOptions, SolveStatus};
use provenn_dsl::{compile, Bindings};

use crate::certify::{Certificate, CertifyOptions, CertifyReport, ConstraintCertifier, Witness};
use crate::encoding::{encode_activation_phases, input_vars, layer_pre, EncodingStats, Lin, Phase};
use crate::model::{Milp, Sense};
use crate::tighten::{global_bounds, pad_for};
use crate::MilpError;

/// Certifies `σ·(f_k(x') − f_k(x)) ≥ 0` for every pair of a box that differs only in one
/// feature, `x'_i ≥ x_i`, for every output `k` (see the module docs).
pub struct MonotonicityCertifier {
    backend: Box<dyn Backend>,
    options: CertifyOptions,
}

impl std::fmt::Debug for MonotonicityCertifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonotonicityCertifier")
            .field("backend", &self.backend.name())
            .field("options", &self.options)
            .finish()
    }
}

impl MonotonicityCertifier {
    /// A certifier on the default backend. `options.tolerance` is in output units: certified
    /// means no pair in the box decreases (`σ = 1`) by more than it.
    pub fn new(options: CertifyOptions) -> Result<Self, MilpError> {
        options.validate()?;
        Ok(MonotonicityCertifier {
            backend: default_backend(),
            options,
        })
    }

    /// The options.
    pub fn options(&self) -> &CertifyOptions {
        &self.options
    }

    /// Certifies that every output is increasing (`increasing`) or decreasing in `feature`
    /// over pairs inside `b`. A witness is a pair re-evaluated in `f64`; where the derivative
    /// MILP finds a negative derivative that no pair through its point confirms, the two-copy
    /// MILP decides that output. "Unknown" only at a solver limit.
    pub fn certify_on(
        &self,
        net: &Mlp,
        feature: usize,
        increasing: bool,
        b: &InputBox,
    ) -> Result<CertifyReport, MilpError> {
        let start = Instant::now();
        let n = net.n_inputs();
        if b.dim() != n || feature >= n {
            return Err(MilpError::Dimension(format!(
                "box of {} inputs, feature {feature}, network of {n} inputs",
                b.dim()
            )));
        }
        let mut report = CertifyReport {
            certificate: Certificate::Certified {
                margin: f64::INFINITY,
            },
            solves: 0,
            solver_time: Duration::ZERO,
            time: Duration::ZERO,
            neuron_binaries: 0,
        };
        let width = b.upper()[feature] - b.lower()[feature];
        if width <= 0.0 {
            // No two points of the box differ in the feature.
            report.time = start.elapsed();
            return Ok(report);
        }
        // The neuron bounds the encoding trusts and the final infeasibility are confirmed by a
        // second solve, as in the two-copy certifier.
        let solve_opts = SolveOptions {
            time_limit: self.options.time_limit,
            confirm_proofs: true,
            ..Default::default()
        };
        let bounds = global_bounds(net, b, self.options.tightening, &*self.backend, &solve_opts)?;
        report.solves += bounds.solves;
        let sign = if increasing { 1.0 } else { -1.0 };
        let tol = self.options.tolerance;
        // A derivative ≥ −floor on the box keeps every pair's decrease within
        // floor·width ≤ tolerance minus the solver's padding.
        let floor =
            (tol - pad_for(self.backend.tolerance(), tol, &Lin::constant(0.0))).max(0.0) / width;
        // Proven lower bound on every pair's σ·(f_k(x') − f_k(x)).
        let mut margin = f64::INFINITY;
        for k in 0..net.n_outputs() {
            let q = DerivativeQuery::build(net, feature, b, &bounds.bounds.layers, k, sign, floor)?;
            report.neuron_binaries = q.binaries;
            if let Some(d) = q.constant {
                if d >= -floor {
                    // Pairs with x = x' give 0; the rest move by d·(x'_i − x_i).
                    margin = margin.min((d * width).min(0.0));
                    continue;
                }
                let centre: Vec<f64> = (0..n)
                    .map(|j| 0.5 * (b.lower()[j] + b.upper()[j]))
                    .collect();
                match self.refute(net, feature, increasing, b, k, &centre, &mut report)? {
                    Certificate::Certified { margin: m } => margin = margin.min(m),
                    other => {
                        report.certificate = other;
                        break;
                    }
                }
                continue;
            }
            let out = self.backend.solve(&q.milp, &solve_opts)?;
            report.solves += 1;
            report.solver_time += out.time;
            let candidate = match out.status {
                SolveStatus::Infeasible => {
                    margin = margin.min(-tol);
                    continue;
                }
                _ if !out.values.is_empty() => q
                    .inputs
                    .iter()
                    .map(|v| out.values[v.index()])
                    .collect::<Vec<f64>>(),
                _ => {
                    report.certificate = Certificate::Unknown {
                        reason: "solver limit reached before any bound was proven".into(),
                    };
                    break;
                }
            };
            match self.refute(net, feature, increasing, b, k, &candidate, &mut report)? {
                Certificate::Certified { margin: m } => margin = margin.min(m),
                other => {
                    report.certificate = other;
                    break;
                }
            }
        }
        if let Certificate::Certified { margin: m } = &mut report.certificate {
            *m = margin;
        }
        report.time = start.elapsed();
        Ok(report)
    }

    /// After the derivative MILP found `σ·∂f_k/∂x_i` below the floor at `x`: a pair through
    /// `x` that decreases in `f64`, or else the two-copy MILP of [`ConstraintCertifier`] on
    /// output `k` (the negative piece may be too thin for a pair through a vertex to show it,
    /// or the decrease within the tolerance), whose answer is final.
    #[allow(clippy::too_many_arguments)]
    fn refute(
        &self,
        net: &Mlp,
        feature: usize,
        increasing: bool,
        b: &InputBox,
        k: usize,
        x: &[f64],
        report: &mut CertifyReport,
    ) -> Result<Certificate, MilpError> {
        let sign = if increasing { 1.0 } else { -1.0 };
        if let Some(w) = self.pair_at(net, feature, sign, b, k, x)? {
            return Ok(Certificate::Violated(w));
        }
        let src = format!(
            "forall x, x2: x2[{feature}] >= x[{feature}] and same(x, x2, except [x{feature}]) \
             => y2[{k}] {} y[{k}]",
            if increasing { ">=" } else { "<=" }
        );
        let dom: Vec<(f64, f64)> = b.intervals();
        let c = compile(&src, &Bindings::anonymous(&dom, net.n_outputs()))
            .map_err(|e| MilpError::InvalidParameter(format!("{src}: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| MilpError::InvalidParameter(format!("{src}: no constraint")))?;
        let two_copy = ConstraintCertifier::new(self.options.clone())?.certify_on(net, &c, b, b)?;
        report.solves += two_copy.solves;
        report.solver_time += two_copy.solver_time;
        report.neuron_binaries = report.neuron_binaries.max(two_copy.neuron_binaries);
        Ok(two_copy.certificate)
    }

    /// A pair through `x` along `feature` (steps halving from the box's width, both
    /// directions) whose output `k` moves against `sign` by more than the tolerance in `f64`.
    fn pair_at(
        &self,
        net: &Mlp,
        feature: usize,
        sign: f64,
        b: &InputBox,
        k: usize,
        x: &[f64],
    ) -> Result<Option<Witness>, MilpError> {
        let (lo, hi) = (b.lower()[feature], b.upper()[feature]);
        let mut x = x.to_vec();
        for (j, v) in x.iter_mut().enumerate() {
            *v = v.clamp(b.lower()[j], b.upper()[j]);
        }
        let eval = |p: &[f64]| -> Result<Vec<f64>, MilpError> {
            Ok(net
                .forward(&nalgebra::DVector::from_column_slice(p))?
                .iter()
                .copied()
                .collect())
        };
        let mut best: Option<Witness> = None;
        let mut step = hi - lo;
        for _ in 0..40 {
            for (a, c) in [
                (x[feature], (x[feature] + step).min(hi)),
                ((x[feature] - step).max(lo), x[feature]),
            ] {
                if c <= a {
                    continue;
                }
                let (mut p, mut p2) = (x.clone(), x.clone());
                p[feature] = a;
                p2[feature] = c;
                let (y, y2) = (eval(&p)?, eval(&p2)?);
                let violation = -sign * (y2[k] - y[k]);
                if violation > self.options.tolerance
                    && best.as_ref().is_none_or(|w| violation > w.violation)
                {
                    best = Some(Witness {
                        x: p,
                        y,
                        x2: p2,
                        y2,
                        violation,
                    });
                }
            }
            step /= 2.0;
        }
        Ok(best)
    }
}

/// One copy of the network with its phases, the derivative of output `k` along `feature`
/// propagated through them, and the row `σ·∂f_k/∂x_i ≤ −floor` (minimised).
struct DerivativeQuery {
    milp: Milp,
    inputs: Vec<crate::model::VarId>,
    binaries: usize,
    /// `σ·∂f_k/∂x_i` when it is the same on the whole box (no row, nothing to solve).
    constant: Option<f64>,
}

impl DerivativeQuery {
    fn build(
        net: &Mlp,
        feature: usize,
        b: &InputBox,
        pre_bounds: &[provenn_bounds::Interval],
        k: usize,
        sign: f64,
        floor: f64,
    ) -> Result<Self, MilpError> {
        let mut m = Milp::new();
        let (inputs, x) = input_vars(&mut m, b.lower(), b.upper());
        let n = net.n_inputs();
        // The inputs' derivatives: e_i.
        let dx: Vec<Lin> = (0..n)
            .map(|j| Lin::constant(if j == feature { 1.0 } else { 0.0 }))
            .collect();
        let dx_box: Vec<(f64, f64)> = (0..n)
            .map(|j| if j == feature { (1.0, 1.0) } else { (0.0, 0.0) })
            .collect();
        let mut stats = EncodingStats::default();
        let (mut cur, mut dcur) = (x.clone(), dx.clone());
        let mut dbox: Vec<(f64, f64)> = dx_box.clone();
        let layers = net.layers();
        for (l, layer) in layers.iter().enumerate() {
            let pre = layer_pre(net, l, &cur, &x);
            let (post, phases) =
                encode_activation_phases(&mut m, net, l, pre, &pre_bounds[l], &mut stats)?;
            // The pre-activation derivative is the layer's linear map without its bias.
            let mut dpre = layer_pre(net, l, &dcur, &dx);
            for (i, g) in dpre.iter_mut().enumerate() {
                g.constant -= layer.bias()[i];
            }
            let dpre_box = interval_map(net, l, &dbox, &dx_box);
            let mut dpost = Vec::with_capacity(dpre.len());
            let mut dpost_box = Vec::with_capacity(dpre.len());
            for ((g, (gl, gu)), phase) in dpre.into_iter().zip(dpre_box).zip(phases) {
                match phase {
                    Phase::Fixed { slope } => {
                        let mut d = Lin::constant(0.0);
                        d.add_scaled(slope, &g);
                        dpost.push(d);
                        let (a, c) = (slope * gl, slope * gu);
                        dpost_box.push((a.min(c), a.max(c)));
                    }
                    Phase::Open { z, s } => {
                        // p = z·g, exact for binary z with g ∈ [gl, gu].
                        let p = m.continuous(gl.min(0.0), gu.max(0.0));
                        m.le(vec![(p, 1.0), (z, -gu)], 0.0);
                        m.ge(vec![(p, 1.0), (z, -gl)], 0.0);
                        let neg_g: Vec<_> = g.coefs.iter().map(|&(v, a)| (v, -a)).collect();
                        let mut c = neg_g.clone();
                        c.push((p, 1.0));
                        c.push((z, -gl));
                        m.le(c, -gl + g.constant);
                        let mut c = neg_g;
                        c.push((p, 1.0));
                        c.push((z, -gu));
                        m.ge(c, -gu + g.constant);
                        // d = s·g + (1 − s)·p
                        let mut d = Lin::constant(0.0);
                        d.add_scaled(s, &g);
                        d.add_scaled(1.0 - s, &Lin::var(p));
                        dpost.push(d);
                        let ends = [s * gl, gl, s * gu, gu];
                        dpost_box.push((
                            ends.iter().copied().fold(f64::INFINITY, f64::min),
                            ends.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        ));
                    }
                }
            }
            cur = post;
            dcur = dpost;
            dbox = dpost_box;
        }
        let target = &dcur[k];
        if target.coefs.is_empty() {
            // Every neuron stable: one linear piece, one derivative.
            return Ok(DerivativeQuery {
                milp: m,
                inputs,
                binaries: stats.binaries,
                constant: Some(sign * target.constant),
            });
        }
        // σ·d ≤ −floor, and the most negative one first.
        let coefs: Vec<_> = target.coefs.iter().map(|&(v, a)| (v, sign * a)).collect();
        m.le(coefs.clone(), -floor - sign * target.constant);
        m.set_objective(Sense::Minimise, coefs);
        Ok(DerivativeQuery {
            milp: m,
            inputs,
            binaries: stats.binaries,
            constant: None,
        })
    }
}

/// Interval image of layer `l`'s linear map without bias on `[d]` (skip features' derivatives
/// `[dx]` on the last layer), padded outward for rounding: big-M constants must not cut off
/// real points.
fn interval_map(net: &Mlp, l: usize, d: &[(f64, f64)], dx: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let layer = &net.layers()[l];
    let last = l + 1 == net.layers().len();
    let mut src: Vec<(f64, f64)> = d.to_vec();
    if last {
        src.extend(net.skip_features().iter().map(|&j| dx[j]));
    }
    let w = layer.weights();
    (0..layer.outputs())
        .map(|i| {
            let (mut lo, mut hi, mut mag) = (0.0, 0.0, 0.0);
            for (j, &(a, c)) in src.iter().enumerate() {
                let wij = w[(i, j)];
                let (p, q) = (wij * a, wij * c);
                lo += p.min(q);
                hi += p.max(q);
                mag += p.abs().max(q.abs());
            }
            let pad = 1e-12 * (1.0 + mag);
            (lo - pad, hi + pad)
        })
        .collect()
}
