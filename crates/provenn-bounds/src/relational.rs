//! Relational (two-copy) bounds: intervals of `h_l(x') − h_l(x)` for `x` in a domain box and
//! `x' = x + d`, `d` in a difference box, `x'` also in the domain.
use nalgebra::DMatrix;
use provenn_nn::{Activation, Mlp};

use crate::fp::{self, down, up};
use crate::interval::{check_input, prepare, with_skip};
use crate::{BoundPropagator, BoundsError, InputBox, Interval, IntervalBounds, NetworkBounds};

/// Propagates differences between two copies of the network.
///
/// Affine layers map differences exactly (`Δz = W·Δa`, the bias cancels), so the difference
/// interval does not grow with the magnitude of the activations as subtracting two independent
/// boxes does. Activations use the mean-value theorem: `Δa = σ'(ξ)·Δz` with `σ'(ξ)` in the
/// range of slopes on the hull of both copies' pre-activation intervals (ReLU: exactly `Δz` if
/// stably active, 0 if stably inactive). Every difference interval is also intersected with the
/// difference of the two copies' own interval bounds, and padded for floating point like the
/// interval propagator (both copies' `f64` evaluation errors are added).
#[derive(Debug, Clone, Copy, Default)]
pub struct RelationalBounds;

/// Result of a relational propagation.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationalResult {
    /// Bounds of the first copy, `x` in the domain.
    pub first: NetworkBounds,
    /// Bounds of the second copy, `x'` in `domain ∩ (domain + d)`.
    pub second: NetworkBounds,
    /// Per layer, bounds of the post-activation difference `a_l(x') − a_l(x)`.
    pub delta: Vec<Interval>,
}

impl RelationalResult {
    /// Bounds of `f(x') − f(x)`.
    pub fn output_delta(&self) -> &Interval {
        self.delta.last().expect("at least one layer")
    }
}

/// Range of `σ'` on `[l, u]` (monotone activations, so the slopes are ≥ 0).
pub(crate) fn slope_range(act: Activation, l: f64, u: f64) -> (f64, f64) {
    match act {
        Activation::Identity => (1.0, 1.0),
        Activation::Relu | Activation::LeakyRelu(_) => {
            let leak = fp::leak(act);
            if l >= 0.0 {
                (1.0, 1.0)
            } else if u <= 0.0 {
                (leak, leak)
            } else {
                (leak, 1.0)
            }
        }
        Activation::Sigmoid | Activation::Tanh => {
            let d = |z: f64| match act {
                Activation::Sigmoid => {
                    let s = Activation::Sigmoid.apply(z);
                    s * (1.0 - s)
                }
                _ => 1.0 - z.tanh().powi(2),
            };
            // σ' is unimodal with its peak at 0.
            let peak = if act == Activation::Sigmoid {
                0.25
            } else {
                1.0
            };
            let hi = if l <= 0.0 && 0.0 <= u {
                peak
            } else {
                d(l).max(d(u))
            };
            // Pad the derivative evaluations generously: they only need to be sound bounds.
            (
                (d(l).min(d(u)) * (1.0 - 1e-12) - 1e-300).max(0.0),
                (hi * (1.0 + 1e-12)).min(peak),
            )
        }
    }
}

impl RelationalBounds {
    /// Bounds of both copies and of their difference, layer by layer.
    pub fn bounds(
        &self,
        net: &Mlp,
        domain: &InputBox,
        delta: &InputBox,
    ) -> Result<RelationalResult, BoundsError> {
        check_input(net, domain)?;
        check_input(net, delta)?;
        let n = net.n_inputs();
        // x' = x + d must also lie in the domain.
        let mut lo2 = Vec::with_capacity(n);
        let mut hi2 = Vec::with_capacity(n);
        let mut dlo = Vec::with_capacity(n);
        let mut dhi = Vec::with_capacity(n);
        for j in 0..n {
            let (l, u) = (domain.lower()[j], domain.upper()[j]);
            lo2.push(l.max(down(l + delta.lower()[j])));
            hi2.push(u.min(up(u + delta.upper()[j])));
            // The realised difference is also bounded by the two copies' boxes.
            dlo.push(delta.lower()[j].max(down(lo2[j] - u)));
            dhi.push(delta.upper()[j].min(up(hi2[j] - l)));
        }
        let second_box = InputBox::new(lo2, hi2)
            .map_err(|_| BoundsError::InvalidBox("no x' = x + d lies in the domain".into()))?;
        let first = IntervalBounds.bounds(net, domain, None)?;
        let second = IntervalBounds.bounds(net, &second_box, None)?;
        let layers = prepare(net);
        let last = layers.len() - 1;
        let din_lo = DMatrix::from_column_slice(n, 1, &dlo);
        let din_hi = DMatrix::from_column_slice(n, 1, &dhi);
        let (mut lo, mut hi) = (din_lo.clone(), din_hi.clone());
        let mut out = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            if l == last {
                let (a, b) = with_skip(lo, hi, &din_lo, &din_hi, net.skip_features());
                lo = a;
                hi = b;
            }
            // Δz = W·Δa exactly; `affine` adds the bias and pads for one evaluation, so remove
            // the bias by using a bias-free copy and add the second copy's evaluation error.
            let nobias = crate::interval::PreparedLayer::from_parts(
                layer.w.clone(),
                nalgebra::DVector::zeros(layer.w.nrows()),
                Activation::Identity,
            );
            let (zl, zh) = nobias.affine(&lo, &hi);
            let (p1, p2) = (first.layer(l), second.layer(l));
            let in1 = if l == 0 {
                first.input().max_abs()
            } else {
                first.layer(l - 1).post.max_abs()
            };
            let in2 = if l == 0 {
                second.input().max_abs()
            } else {
                second.layer(l - 1).post.max_abs()
            };
            let amax = in1.into_iter().chain(in2).fold(0.0, f64::max);
            let amax = up(amax * (1.0 + 4.0 * fp::U));
            let mut dpost = Interval {
                lower: Vec::new(),
                upper: Vec::new(),
            };
            for i in 0..layer.w.nrows() {
                let e = 2.0 * layer.eval_error(i, amax);
                let dz_lo = down(zl[(i, 0)] - e).max(down(p2.pre.lower[i] - p1.pre.upper[i]));
                let dz_hi = up(zh[(i, 0)] + e).min(up(p2.pre.upper[i] - p1.pre.lower[i]));
                let hull_l = p1.pre.lower[i].min(p2.pre.lower[i]);
                let hull_u = p1.pre.upper[i].max(p2.pre.upper[i]);
                let (smin, smax) = slope_range(layer.act, hull_l, hull_u);
                let cands = [smin * dz_lo, smax * dz_lo, smin * dz_hi, smax * dz_hi];
                let zmax = hull_l.abs().max(hull_u.abs());
                let ae = 2.0 * fp::activation_error(layer.act, zmax);
                let mut lo_i = down(cands.iter().copied().fold(f64::INFINITY, f64::min) - ae);
                let mut hi_i = up(cands.iter().copied().fold(f64::NEG_INFINITY, f64::max) + ae);
                // and the difference of the copies' own post-activation boxes
                lo_i = lo_i.max(down(p2.post.lower[i] - p1.post.upper[i]));
                hi_i = hi_i.min(up(p2.post.upper[i] - p1.post.lower[i]));
                dpost.lower.push(lo_i);
                dpost.upper.push(hi_i);
            }
            lo = DMatrix::from_column_slice(dpost.len(), 1, &dpost.lower);
            hi = DMatrix::from_column_slice(dpost.len(), 1, &dpost.upper);
            out.push(dpost);
        }
        Ok(RelationalResult {
            first,
            second,
            delta: out,
        })
    }
}
