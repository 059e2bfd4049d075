//! CROWN: backward linear relaxation (Zhang et al., 2018) with adaptive lower slopes,
//! padded for floating point (see the crate docs, item 4).
use nalgebra::DMatrix;
use provenn_nn::{Activation, Mlp};

use crate::fp::{self, down, k, tiny, up, U};
use crate::interval::{check_input, check_spec, prepare, spec_from_box, PreparedLayer};
use crate::{
    BoundPropagator, BoundsError, InputBox, Interval, IntervalBounds, LayerBounds, NetworkBounds,
};

/// CROWN bounds intersected with interval bounds.
///
/// Intermediate pre-activation bounds are computed by CROWN itself, layer by layer (full
/// CROWN, quadratic in depth), which is what makes it tighter than CROWN-IBP. ReLU and leaky
/// ReLU use the chord as upper relaxation and the adaptive lower slope (`1` if `u > −l`, else
/// `0` / the leak); sigmoid and tanh use constant relaxations (their interval image).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrownBounds;

/// A relaxation `s·z + t` of `σ(z)` on `[l, u]`, below (`lower = true`) or above.
fn relax(act: Activation, l: f64, u: f64, lower: bool) -> (f64, f64) {
    let chord = |fl_up: f64| {
        // slope through (l, σ(l)) and (u, u); intercept from both endpoints, rounded up
        let d = (u - fl_up) / (u - l);
        let d = if d.is_finite() {
            d.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let t1 = up(fl_up - down(d * l));
        let t2 = up(u - down(d * u));
        (d, t1.max(t2))
    };
    match act {
        Activation::Identity => (1.0, 0.0),
        Activation::Relu | Activation::LeakyRelu(_) => {
            let leak = fp::leak(act);
            if l >= 0.0 {
                (1.0, 0.0)
            } else if u <= 0.0 {
                (leak, 0.0)
            } else if lower {
                (if u > -l { 1.0 } else { leak }, 0.0)
            } else {
                chord(up(leak * l))
            }
        }
        Activation::Sigmoid | Activation::Tanh => {
            let (lo, hi) = fp::activation_interval(act, l, u);
            (0.0, if lower { lo } else { hi })
        }
    }
}

/// Lower bound of `Σ_i λ_i x_i` for `x` in the box `c ± r`.
fn lin_lower(lam: impl Iterator<Item = f64> + Clone, c: &[f64], r: &[f64]) -> f64 {
    let n = c.len();
    let s1: f64 = lam.clone().zip(c).map(|(l, c)| l * c).sum();
    let s2: f64 = lam
        .zip(c.iter().zip(r))
        .map(|(l, (c, r))| l.abs() * (r * (1.0 + k(n)) + k(n) * (c.abs() + r)))
        .sum();
    down(s1 - up(s2 * (1.0 + k(n)) + tiny(n)))
}

struct Context<'a> {
    layers: &'a [PreparedLayer],
    skip: &'a [usize],
    input: &'a InputBox,
    /// Current pre-activation bounds per layer (sound for real and f64 values).
    pre: Vec<Interval>,
}

impl Context<'_> {
    fn post(&self, j: usize) -> Interval {
        let p = &self.pre[j];
        let (lower, upper) = p
            .lower
            .iter()
            .zip(&p.upper)
            .map(|(&l, &u)| fp::activation_interval(self.layers[j].act, l, u))
            .unzip();
        Interval { lower, upper }
    }

    /// Box of layer `j`'s input, excluding skip features.
    fn layer_input(&self, j: usize) -> Interval {
        if j == 0 {
            Interval {
                lower: self.input.lower().to_vec(),
                upper: self.input.upper().to_vec(),
            }
        } else {
            self.post(j - 1)
        }
    }

    fn skip_box(&self) -> Interval {
        Interval {
            lower: self.skip.iter().map(|&j| self.input.lower()[j]).collect(),
            upper: self.skip.iter().map(|&j| self.input.upper()[j]).collect(),
        }
    }

    /// Lower bounds of each row of `Λ·z_kk` (real and f64 values) over the input box; when
    /// `coefs` is given, it receives the input-space coefficients of each row's linear lower
    /// bound (skip features excluded).
    fn lower_with_coefficients(
        &self,
        mut lam: DMatrix<f64>,
        kk: usize,
        mut coefs: Option<&mut DMatrix<f64>>,
    ) -> Vec<f64> {
        let m = lam.nrows();
        let last = self.layers.len() - 1;
        let mut beta = vec![0.0f64; m];
        let mut j = kk;
        loop {
            let layer = &self.layers[j];
            let mut inp = self.layer_input(j);
            if j == last && !self.skip.is_empty() {
                let s = self.skip_box();
                inp.lower.extend(s.lower);
                inp.upper.extend(s.upper);
            }
            let mmax = inp.max_abs();
            let amax = up(mmax.iter().copied().fold(0.0, f64::max) * (1.0 + 4.0 * U));
            let o = layer.w.nrows();
            // pad_i: f64 evaluation error of neuron i + rounding of fl(ΛW) on this input box
            let pad: Vec<f64> = (0..o)
                .map(|i| {
                    let wm: f64 = layer
                        .w
                        .row(i)
                        .iter()
                        .zip(&mmax)
                        .map(|(w, a)| w.abs() * a)
                        .sum();
                    up(layer.eval_error(i, amax) + k(o) * wm * (1.0 + k(layer.n)))
                })
                .collect();
            for (r, b) in beta.iter_mut().enumerate() {
                let row = lam.row(r);
                let s1: f64 = row.iter().zip(layer.b.iter()).map(|(l, b)| l * b).sum();
                let s2: f64 = row
                    .iter()
                    .zip(layer.b.iter().zip(&pad))
                    .map(|(l, (b, p))| l.abs() * (p + k(o) * b.abs()))
                    .sum();
                *b = down(*b + down(s1 - up(s2 * (1.0 + k(o)) + tiny(o))));
            }
            let mut lam_in = &lam * &layer.w;
            if j == last && !self.skip.is_empty() {
                let base = lam_in.ncols() - self.skip.len();
                let s = self.skip_box();
                let (c, r): (Vec<f64>, Vec<f64>) = s
                    .lower
                    .iter()
                    .zip(&s.upper)
                    .map(|(&l, &u)| fp::centre_radius(l, u))
                    .unzip();
                for (rr, b) in beta.iter_mut().enumerate() {
                    let row = lam_in.row(rr);
                    *b = down(*b + lin_lower(row.iter().skip(base).copied(), &c, &r));
                }
                lam_in = lam_in.columns(0, base).into_owned();
            }
            if j == 0 {
                let (c, r): (Vec<f64>, Vec<f64>) = self
                    .input
                    .lower()
                    .iter()
                    .zip(self.input.upper())
                    .map(|(&l, &u)| fp::centre_radius(l, u))
                    .unzip();
                for (rr, b) in beta.iter_mut().enumerate() {
                    *b = down(*b + lin_lower(lam_in.row(rr).iter().copied(), &c, &r));
                }
                if let Some(out) = coefs.as_deref_mut() {
                    *out = lam_in;
                }
                return beta;
            }
            // Relax the activation of layer j − 1.
            let prev = &self.layers[j - 1];
            let z = &self.pre[j - 1];
            let zmax = z.max_abs();
            let n = lam_in.ncols();
            let act_err: Vec<f64> = zmax
                .iter()
                .map(|&v| fp::activation_error(prev.act, v))
                .collect();
            let lower_relax: Vec<(f64, f64)> = (0..n)
                .map(|i| relax(prev.act, z.lower[i], z.upper[i], true))
                .collect();
            let upper_relax: Vec<(f64, f64)> = (0..n)
                .map(|i| relax(prev.act, z.lower[i], z.upper[i], false))
                .collect();
            let mut next = DMatrix::zeros(m, n);
            for (r, b) in beta.iter_mut().enumerate() {
                let mut consts = 0.0f64;
                let mut err = 0.0f64;
                for i in 0..n {
                    let l = lam_in[(r, i)];
                    if l == 0.0 {
                        continue;
                    }
                    let (s, t) = if l > 0.0 {
                        lower_relax[i]
                    } else {
                        upper_relax[i]
                    };
                    let nl = l * s;
                    next[(r, i)] = nl;
                    consts = down(consts + down(l * t));
                    err += l.abs() * act_err[i] + 2.0 * U * nl.abs() * zmax[i];
                }
                *b = down(*b + down(consts - up(err * (1.0 + k(n)) + tiny(n))));
            }
            lam = next;
            j -= 1;
        }
    }

    /// Lower and upper bounds of `Λ·z_kk` via one backward pass over `[Λ; −Λ]`.
    fn two_sided(&self, lam: &DMatrix<f64>, kk: usize) -> Interval {
        self.two_sided_with_coefficients(lam, kk, None)
    }

    /// As [`Context::two_sided`]; `coefs` receives the input coefficients of the lower-bound
    /// rows followed by those of the upper-bound rows (negated).
    fn two_sided_with_coefficients(
        &self,
        lam: &DMatrix<f64>,
        kk: usize,
        coefs: Option<&mut DMatrix<f64>>,
    ) -> Interval {
        let m = lam.nrows();
        let mut stacked = DMatrix::zeros(2 * m, lam.ncols());
        stacked.rows_mut(0, m).copy_from(lam);
        stacked.rows_mut(m, m).copy_from(&(-lam));
        let v = self.lower_with_coefficients(stacked, kk, coefs);
        Interval {
            lower: v[..m].to_vec(),
            upper: v[m..].iter().map(|x| -x).collect(),
        }
    }
}

impl BoundPropagator for CrownBounds {
    fn bounds(
        &self,
        net: &Mlp,
        input: &InputBox,
        spec: Option<&DMatrix<f64>>,
    ) -> Result<NetworkBounds, BoundsError> {
        Ok(self.bounds_with_coefficients(net, input, spec)?.0)
    }
}

impl CrownBounds {
    /// As [`BoundPropagator::bounds`], and, when `spec = C` is given and the output layer is
    /// linear, the input-space coefficients `A` of CROWN's linear lower bound `C·y ≥ A·x + b`
    /// (one row per row of `C`, skip features excluded). `A` is what CROWN back-substituted,
    /// without padding: for heuristics such as choosing which input to split, not for proofs
    /// (the returned bounds are the proofs).
    pub fn bounds_with_coefficients(
        &self,
        net: &Mlp,
        input: &InputBox,
        spec: Option<&DMatrix<f64>>,
    ) -> Result<(NetworkBounds, Option<DMatrix<f64>>), BoundsError> {
        check_input(net, input)?;
        check_spec(net, spec)?;
        let layers = prepare(net);
        let ibp = IntervalBounds
            .bounds_batch_prepared(net, &layers, std::slice::from_ref(input), spec)?
            .pop()
            .expect("one box");
        let mut ctx = Context {
            layers: &layers,
            skip: net.skip_features(),
            input,
            pre: ibp.layers.iter().map(|l| l.pre.clone()).collect(),
        };
        // Layer 0's interval bounds are already exact up to rounding.
        for (kk, layer) in layers.iter().enumerate().skip(1) {
            let n = layer.w.nrows();
            let crown = ctx.two_sided(&DMatrix::identity(n, n), kk);
            if crown
                .lower
                .iter()
                .chain(&crown.upper)
                .any(|v| !v.is_finite())
            {
                return Err(BoundsError::NonFinite(kk));
            }
            ctx.pre[kk].intersect(&crown);
        }
        let last = layers.len() - 1;
        let out_layers: Vec<LayerBounds> = (0..layers.len())
            .map(|j| LayerBounds {
                pre: ctx.pre[j].clone(),
                post: ctx.post(j),
            })
            .collect();
        let mut coefficients = None;
        let spec_bounds = spec.map(|c| {
            let mut s = spec_from_box(c, &out_layers[last].post);
            if layers[last].act == Activation::Identity {
                // C·y = C·z_L: back-substitute C directly (tighter than bounding y first).
                let mut a = DMatrix::zeros(0, 0);
                s.intersect(&ctx.two_sided_with_coefficients(c, last, Some(&mut a)));
                coefficients = Some(a.rows(0, c.nrows()).into_owned());
            }
            if let Some(i) = ibp.spec.as_ref() {
                s.intersect(i);
            }
            s
        });
        Ok((
            NetworkBounds {
                input: ibp.input.clone(),
                layers: out_layers,
                skip_features: net.skip_features().to_vec(),
                spec: spec_bounds,
            },
            coefficients,
        ))
    }
}
