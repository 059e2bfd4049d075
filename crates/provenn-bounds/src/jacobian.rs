//! Bounds of partial derivatives `∂a_l/∂x_i` over an input box: the interval Jacobian column of
//! every layer, of the last layer's input (latent activations plus skip features) and of the
//! output.
//!
//! For a piecewise-linear (or smooth monotone-activation) network, `t ↦ a_l(x + t·e_i)` is
//! absolutely continuous, so `a_l(x + t·e_i) − a_l(x) = t · (mean of ∂a_l/∂x_i on the segment)`.
//! Wherever the derivative exists it is `σ'(z_l)·W_l·…·σ'(z_1)·W_1·e_i` with each slope in the
//! range of `σ'` on that neuron's pre-activation interval, so interval arithmetic over those
//! slope ranges contains it, and the mean of values in a box stays in the box. Hence every
//! difference quotient along feature `i` between two points of the box lies in the returned
//! intervals — the scale-free relational bound that monotonicity needs (the difference bounds
//! of [`crate::RelationalBounds`] cannot shrink with the step).
//!
//! The intervals contain the derivative of the network in exact real arithmetic (weights taken
//! as the rationals their `f64`s denote): every interval product is padded by the rounding
//! error of its `f64` evaluation and rounded outward.
use nalgebra::DMatrix;
use provenn_nn::Mlp;

use crate::fp::{self, down, up};
use crate::interval::{check_input, with_skip};
use crate::relational::slope_range;
use crate::{BoundPropagator, BoundsError, InputBox, Interval, IntervalBounds};

/// Propagates interval derivatives along one input feature.
#[derive(Debug, Clone, Copy, Default)]
pub struct JacobianBounds;

/// Interval bounds of `∂/∂x_i` over a box.
#[derive(Debug, Clone, PartialEq)]
pub struct JacobianColumn {
    /// The feature differentiated by.
    pub feature: usize,
    /// Per layer, bounds of the post-activation derivative `∂a_l/∂x_i`.
    pub layers: Vec<Interval>,
    /// Bounds of the derivative of the last layer's input: latent activations, then the skip
    /// features (exactly 1 for the skip entry of `x_i`, 0 for the others).
    pub latent: Interval,
}

impl JacobianColumn {
    /// Bounds of `∂f/∂x_i` (the network output).
    pub fn output(&self) -> &Interval {
        self.layers.last().expect("at least one layer")
    }
}

/// `[Σ_j W_ij·[lo_j, hi_j]]` padded for rounding: the products `W_ij·lo_j` are exact reals
/// whose `f64` sum may be off by `k(n)·Σ|W_ij|·max(|lo_j|, |hi_j|)`.
fn interval_matvec(w: &DMatrix<f64>, lo: &[f64], hi: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = w.ncols();
    let pad_k = fp::k(n);
    let mut out_lo = Vec::with_capacity(w.nrows());
    let mut out_hi = Vec::with_capacity(w.nrows());
    for r in 0..w.nrows() {
        let (mut a, mut b, mut mag) = (0.0, 0.0, 0.0);
        for j in 0..n {
            let x = w[(r, j)];
            let (p, q) = (x * lo[j], x * hi[j]);
            a += p.min(q);
            b += p.max(q);
            mag += x.abs() * lo[j].abs().max(hi[j].abs());
        }
        let pad = pad_k * mag + fp::tiny(n);
        out_lo.push(down(a - pad));
        out_hi.push(up(b + pad));
    }
    (out_lo, out_hi)
}

impl JacobianBounds {
    /// Bounds of `∂a_l/∂x_feature` for every layer `l`, for `x` anywhere in `domain`.
    pub fn column(
        &self,
        net: &Mlp,
        domain: &InputBox,
        feature: usize,
    ) -> Result<JacobianColumn, BoundsError> {
        check_input(net, domain)?;
        let n = net.n_inputs();
        if feature >= n {
            return Err(BoundsError::FeatureOutOfRange { feature, inputs: n });
        }
        let ibp = IntervalBounds.bounds(net, domain, None)?;
        let mut e = DMatrix::zeros(n, 1);
        e[(feature, 0)] = 1.0;
        let (mut lo, mut hi) = (e.clone(), e.clone());
        let last = net.layers().len() - 1;
        let mut layers = Vec::with_capacity(net.layers().len());
        let mut latent = None;
        for (l, layer) in net.layers().iter().enumerate() {
            if l == last {
                let (a, b) = with_skip(lo, hi, &e, &e, net.skip_features());
                latent = Some(Interval {
                    lower: a.column(0).iter().copied().collect(),
                    upper: b.column(0).iter().copied().collect(),
                });
                lo = a;
                hi = b;
            }
            let (gl, gh) = interval_matvec(layer.weights(), lo.as_slice(), hi.as_slice());
            let pre = &ibp.layer(l).pre;
            let mut post = Interval {
                lower: Vec::with_capacity(gl.len()),
                upper: Vec::with_capacity(gl.len()),
            };
            for i in 0..gl.len() {
                let (smin, smax) = slope_range(layer.activation(), pre.lower[i], pre.upper[i]);
                // Slopes are ≥ 0, so the extremes are at the corners; round each outward.
                let cands = [smin * gl[i], smax * gl[i], smin * gh[i], smax * gh[i]];
                let a = cands.iter().copied().fold(f64::INFINITY, f64::min);
                let b = cands.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exact = smin == smax && smin == 1.0;
                post.lower.push(if exact { a } else { down(a) });
                post.upper.push(if exact { b } else { up(b) });
            }
            if post.lower.iter().chain(&post.upper).any(|v| !v.is_finite()) {
                return Err(BoundsError::NonFinite(l));
            }
            lo = DMatrix::from_column_slice(post.len(), 1, &post.lower);
            hi = DMatrix::from_column_slice(post.len(), 1, &post.upper);
            layers.push(post);
        }
        Ok(JacobianColumn {
            feature,
            layers,
            latent: latent.expect("the last layer is visited"),
        })
    }
}
