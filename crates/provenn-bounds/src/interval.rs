//! Interval bound propagation (Box/IBP) in centre/radius form.
use nalgebra::{DMatrix, DVector};
use provenn_nn::{Activation, Dense, Mlp};
use rayon::prelude::*;

use crate::fp::{self, down, k, tiny, up};
use crate::{BoundPropagator, BoundsError, InputBox, Interval, LayerBounds, NetworkBounds};

/// Interval arithmetic through every layer (sound under floating point; see the crate docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct IntervalBounds;

/// A dense layer with the quantities interval steps need, computed once per network.
pub(crate) struct PreparedLayer {
    pub w: DMatrix<f64>,
    abs_w: DMatrix<f64>,
    /// Upper bound of `Σ_j |W_ij|` per neuron.
    pub rowsum: DVector<f64>,
    pub b: DVector<f64>,
    pub act: Activation,
    /// Fan-in.
    pub n: usize,
}

impl PreparedLayer {
    pub fn new(l: &Dense) -> Self {
        Self::from_parts(l.weights().clone(), l.bias().clone(), l.activation())
    }

    pub fn from_parts(w: DMatrix<f64>, b: DVector<f64>, act: Activation) -> Self {
        let n = w.ncols();
        let rowsum = DVector::from_iterator(
            w.nrows(),
            w.row_iter()
                .map(|r| up(r.iter().map(|v| v.abs()).sum::<f64>() * (1.0 + k(n)))),
        );
        PreparedLayer {
            abs_w: w.abs(),
            rowsum,
            b,
            act,
            n,
            w,
        }
    }

    /// Bound on the `f64` evaluation error of this layer's pre-activation when every input
    /// has magnitude at most `amax`.
    pub fn eval_error(&self, i: usize, amax: f64) -> f64 {
        up(k(self.n) * (self.rowsum[i] * amax + self.b[i].abs()) + tiny(self.n))
    }

    /// Pre-activation intervals for boxes given as *columns* of `lo`/`hi` (features × boxes).
    /// Each returned interval contains the real pre-activation and the network's `f64` one,
    /// for every input (real or `f64`-evaluated) inside the box.
    pub fn affine(&self, lo: &DMatrix<f64>, hi: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let (c, r, amax) = centre_radius_matrix(lo, hi);
        self.affine_cr(&c, &r, &amax)
    }

    /// [`affine`](Self::affine) for boxes given as centres and radii (`[c − r, c + r]`), with
    /// `amax[i]` an upper bound of `|c| + r` over box `i`.
    pub fn affine_cr(
        &self,
        c: &DMatrix<f64>,
        r: &DMatrix<f64>,
        amax: &[f64],
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let mut out_lo = &self.w * c;
        let zr = &self.abs_w * r;
        let mut out_hi = out_lo.clone();
        let kn = k(self.n);
        for (i, &amax) in amax.iter().enumerate() {
            let (mut lo, mut hi) = (out_lo.column_mut(i), out_hi.column_mut(i));
            for j in 0..self.w.nrows() {
                let centre = lo[j] + self.b[j];
                // Twice the evaluation error: once for fl(Wc + b), once for the network's own
                // f64 evaluation.
                let e = self.eval_error(j, amax);
                let rad = up(zr[(j, i)] * (1.0 + kn) + 2.0 * e);
                lo[j] = down(centre - rad);
                hi[j] = up(centre + rad);
            }
        }
        (out_lo, out_hi)
    }
}

/// Element-wise `(centre, radius)` of interval matrices (features × boxes), and per box an
/// upper bound of `|c| + r`.
pub(crate) fn centre_radius_matrix(
    lo: &DMatrix<f64>,
    hi: &DMatrix<f64>,
) -> (DMatrix<f64>, DMatrix<f64>, Vec<f64>) {
    let mut c = lo.clone();
    let mut r = hi.clone();
    let mut amax = vec![0.0; lo.ncols()];
    for (i, m) in amax.iter_mut().enumerate() {
        let (mut cc, mut rc) = (c.column_mut(i), r.column_mut(i));
        *m = fill_centre_radius(cc.as_mut_slice(), rc.as_mut_slice(), |j| {
            (lo[(j, i)], hi[(j, i)])
        });
    }
    (c, r, amax)
}

/// Writes centres and radii of `interval(j)` into `c`, `r`; returns an upper bound of
/// `max_j |c_j| + r_j`.
fn fill_centre_radius(c: &mut [f64], r: &mut [f64], interval: impl Fn(usize) -> (f64, f64)) -> f64 {
    let mut m = 0.0f64;
    for j in 0..c.len() {
        let (l, h) = interval(j);
        let (a, b) = fp::centre_radius(l, h);
        c[j] = a;
        r[j] = b;
        let v = a.abs() + b;
        if v > m {
            m = v;
        }
    }
    up(m * (1.0 + 4.0 * fp::U))
}

/// Pre-activation lower/upper and post-activation lower/upper of one layer (features × boxes).
type LayerMatrices = (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>, DMatrix<f64>);

pub(crate) fn prepare(net: &Mlp) -> Vec<PreparedLayer> {
    net.layers().iter().map(PreparedLayer::new).collect()
}

pub(crate) fn check_input(net: &Mlp, b: &InputBox) -> Result<(), BoundsError> {
    if b.dim() != net.n_inputs() {
        return Err(BoundsError::InvalidBox(format!(
            "box has {} features, network {} inputs",
            b.dim(),
            net.n_inputs()
        )));
    }
    Ok(())
}

pub(crate) fn check_spec(net: &Mlp, spec: Option<&DMatrix<f64>>) -> Result<(), BoundsError> {
    if let Some(c) = spec {
        if c.ncols() != net.n_outputs() {
            return Err(BoundsError::SpecShape {
                expected: net.n_outputs(),
                got: c.ncols(),
            });
        }
    }
    Ok(())
}

/// Appends the skip features (rows `skip` of the input boxes) to layer-input boxes
/// (features × boxes).
pub(crate) fn with_skip(
    lo: DMatrix<f64>,
    hi: DMatrix<f64>,
    in_lo: &DMatrix<f64>,
    in_hi: &DMatrix<f64>,
    skip: &[usize],
) -> (DMatrix<f64>, DMatrix<f64>) {
    if skip.is_empty() {
        return (lo, hi);
    }
    let ext = |m: DMatrix<f64>, src: &DMatrix<f64>| {
        let h = m.nrows();
        let mut out = m.resize_vertically(h + skip.len(), 0.0);
        for (t, &j) in skip.iter().enumerate() {
            out.row_mut(h + t).copy_from(&src.row(j));
        }
        out
    };
    (ext(lo, in_lo), ext(hi, in_hi))
}

/// Bounds of `C·y` for `y` in the output box (no folding).
pub(crate) fn spec_from_box(c: &DMatrix<f64>, y: &Interval) -> Interval {
    let layer =
        PreparedLayer::from_parts(c.clone(), DVector::zeros(c.nrows()), Activation::Identity);
    let lo = DMatrix::from_column_slice(y.len(), 1, &y.lower);
    let hi = DMatrix::from_column_slice(y.len(), 1, &y.upper);
    let (l, h) = layer.affine(&lo, &hi);
    Interval {
        lower: l.iter().copied().collect(),
        upper: h.iter().copied().collect(),
    }
}

/// Bounds of `C·y` with `C` folded into an identity-activated last layer (tighter than
/// bounding `y` first): `C(Wa + b) = fl(CW)a + fl(Cb) + errors`, padded for the folding's
/// rounding and the network's `f64` evaluation of `y`.
pub(crate) fn spec_folded(
    c: &DMatrix<f64>,
    last: &PreparedLayer,
    in_lo: &DMatrix<f64>,
    in_hi: &DMatrix<f64>,
) -> Interval {
    let folded = PreparedLayer::from_parts(&c.clone() * &last.w, c * &last.b, Activation::Identity);
    let (l, h) = folded.affine(in_lo, in_hi);
    let amax = (0..in_lo.nrows())
        .map(|j| in_lo[(j, 0)].abs().max(in_hi[(j, 0)].abs()))
        .fold(0.0f64, f64::max);
    let amax = up(amax * (1.0 + 4.0 * fp::U));
    let kk = k(c.ncols());
    let mut out = Interval {
        lower: Vec::new(),
        upper: Vec::new(),
    };
    for i in 0..c.nrows() {
        let mut extra = 0.0;
        for t in 0..c.ncols() {
            let ac = c[(i, t)].abs();
            // rounding of fl(CW) and fl(Cb), and the f64 output error of neuron t
            extra +=
                ac * (kk * (last.rowsum[t] * amax + last.b[t].abs()) + last.eval_error(t, amax));
        }
        let extra = up(extra * (1.0 + kk) + tiny(c.ncols()));
        out.lower.push(down(l[(i, 0)] - extra));
        out.upper.push(up(h[(i, 0)] + extra));
    }
    out
}

impl IntervalBounds {
    /// Bounds for many boxes at once; the matrix products are shared, which is what makes
    /// interval propagation of a batch cost a small multiple of a forward pass.
    pub fn bounds_batch(
        &self,
        net: &Mlp,
        boxes: &[InputBox],
    ) -> Result<Vec<NetworkBounds>, BoundsError> {
        let layers = prepare(net);
        self.bounds_batch_prepared(net, &layers, boxes, None)
    }

    pub(crate) fn bounds_batch_prepared(
        &self,
        net: &Mlp,
        layers: &[PreparedLayer],
        boxes: &[InputBox],
        spec: Option<&DMatrix<f64>>,
    ) -> Result<Vec<NetworkBounds>, BoundsError> {
        for b in boxes {
            check_input(net, b)?;
        }
        check_spec(net, spec)?;
        let work: usize = layers.iter().map(|l| l.w.len()).sum::<usize>() * boxes.len();
        let threads = rayon::current_num_threads();
        // Same policy as provenn-nn's forward pass: split only when the work pays for it.
        if threads > 1 && work >= 4_000_000 && boxes.len() >= 64 {
            let size = boxes.len().div_ceil(threads);
            let parts: Vec<Result<Vec<NetworkBounds>, BoundsError>> = boxes
                .par_chunks(size)
                .map(|chunk| self.propagate(net, layers, chunk, spec))
                .collect();
            let mut out = Vec::with_capacity(boxes.len());
            for p in parts {
                out.extend(p?);
            }
            return Ok(out);
        }
        self.propagate(net, layers, boxes, spec)
    }

    /// Propagation with boxes as columns (features × boxes), so each box is contiguous.
    fn propagate(
        &self,
        net: &Mlp,
        layers: &[PreparedLayer],
        boxes: &[InputBox],
        spec: Option<&DMatrix<f64>>,
    ) -> Result<Vec<NetworkBounds>, BoundsError> {
        let n = boxes.len();
        let d = net.n_inputs();
        let input_lo = || DMatrix::from_fn(d, n, |j, i| boxes[i].lower()[j]);
        let input_hi = || DMatrix::from_fn(d, n, |j, i| boxes[i].upper()[j]);
        let mut c = DMatrix::zeros(d, n);
        let mut r = DMatrix::zeros(d, n);
        let mut amax = vec![0.0; n];
        for (i, b) in boxes.iter().enumerate() {
            let (mut cc, mut rc) = (c.column_mut(i), r.column_mut(i));
            amax[i] = fill_centre_radius(cc.as_mut_slice(), rc.as_mut_slice(), |j| {
                (b.lower()[j], b.upper()[j])
            });
        }
        let skip = net.skip_features();
        let last = layers.len() - 1;
        let mut per_layer: Vec<LayerMatrices> = Vec::with_capacity(layers.len());
        let mut last_input = None;
        for (l, layer) in layers.iter().enumerate() {
            if l == last && (l > 0 || !skip.is_empty()) {
                let (lo, hi) = match per_layer.last() {
                    Some((_, _, al, ah)) => (al.clone(), ah.clone()),
                    None => (input_lo(), input_hi()),
                };
                let (lo, hi) = if skip.is_empty() {
                    (lo, hi)
                } else {
                    with_skip(lo, hi, &input_lo(), &input_hi(), skip)
                };
                (c, r, amax) = centre_radius_matrix(&lo, &hi);
                if spec.is_some() {
                    last_input = Some((lo, hi));
                }
            } else if l > 0 {
                let (_, _, al, ah) = per_layer.last().expect("previous layer");
                (c, r, amax) = centre_radius_matrix(al, ah);
            }
            let (zl, zh) = layer.affine_cr(&c, &r, &amax);
            if zl.iter().chain(zh.iter()).any(|v| !v.is_finite()) {
                return Err(BoundsError::NonFinite(l));
            }
            let mut al = zl.clone();
            let mut ah = zh.clone();
            for (a, b) in al.iter_mut().zip(ah.iter_mut()) {
                let (x, y) = fp::activation_interval(layer.act, *a, *b);
                *a = x;
                *b = y;
            }
            per_layer.push((zl, zh, al, ah));
        }
        let last_input = last_input.or_else(|| spec.map(|_| (input_lo(), input_hi())));
        let col = |m: &DMatrix<f64>, i: usize| m.column(i).as_slice().to_vec();
        let mut out = Vec::with_capacity(n);
        for (i, b) in boxes.iter().enumerate() {
            let layers_i: Vec<LayerBounds> = per_layer
                .iter()
                .map(|(zl, zh, al, ah)| LayerBounds {
                    pre: Interval {
                        lower: col(zl, i),
                        upper: col(zh, i),
                    },
                    post: Interval {
                        lower: col(al, i),
                        upper: col(ah, i),
                    },
                })
                .collect();
            let spec_i = spec.map(|c| {
                let mut s = spec_from_box(c, &layers_i[last].post);
                if layers[last].act == Activation::Identity {
                    let (llo, lhi) = last_input.as_ref().expect("kept when a spec is given");
                    let lo_i = llo.columns(i, 1).into_owned();
                    let hi_i = lhi.columns(i, 1).into_owned();
                    s.intersect(&spec_folded(c, &layers[last], &lo_i, &hi_i));
                }
                s
            });
            out.push(NetworkBounds {
                input: Interval {
                    lower: b.lower().to_vec(),
                    upper: b.upper().to_vec(),
                },
                layers: layers_i,
                skip_features: skip.to_vec(),
                spec: spec_i,
            });
        }
        Ok(out)
    }
}

impl BoundPropagator for IntervalBounds {
    fn bounds(
        &self,
        net: &Mlp,
        input: &InputBox,
        spec: Option<&DMatrix<f64>>,
    ) -> Result<NetworkBounds, BoundsError> {
        let layers = prepare(net);
        let mut v = self.bounds_batch_prepared(net, &layers, std::slice::from_ref(input), spec)?;
        Ok(v.pop().expect("one box in, one out"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provenn_nn::{Dense, Mlp};

    /// z = x1 + x2 − x3 at x = (1, 1e-16, 1): the real value is 1e-16 but naive f64 interval
    /// arithmetic computes fl(fl(1 + 1e-16) − 1) = 0 for both ends and excludes it.
    #[test]
    fn outward_padding_keeps_a_value_naive_f64_arithmetic_loses() {
        let w = DMatrix::from_row_slice(1, 3, &[1.0, 1.0, -1.0]);
        let net = Mlp::from_layers(
            3,
            vec![Dense::new(w, DVector::zeros(1), Activation::Identity).unwrap()],
            vec![],
        )
        .unwrap();
        let x = [1.0, 1e-16, 1.0];
        // naive interval arithmetic (what unpadded IBP computes on a degenerate box)
        let naive_lo = (1.0f64 * x[0] + 1.0 * x[1]) - 1.0 * x[2];
        let naive_hi = naive_lo;
        let real = 1e-16; // exact: 1 + 1e-16 − 1
        assert!(
            !(naive_lo <= real && real <= naive_hi),
            "naive f64 bounds exclude the real value"
        );
        let b = IntervalBounds
            .bounds(&net, &InputBox::point(&x).unwrap(), None)
            .unwrap();
        let o = b.output();
        assert!(o.lower[0] <= real && real <= o.upper[0], "{o:?}");
        let f = net.forward(&DVector::from_vec(x.to_vec())).unwrap()[0];
        assert!(o.lower[0] <= f && f <= o.upper[0]);
        // and the padding is tiny
        assert!(o.upper[0] - o.lower[0] < 1e-13);
    }

    #[test]
    fn folded_spec_is_at_least_as_tight_as_the_box_difference() {
        let net = provenn_nn::MlpBuilder::new(3)
            .hidden(10, Activation::Relu)
            .output(3, Activation::Identity)
            .seed(5)
            .build()
            .unwrap();
        let c = DMatrix::from_row_slice(2, 3, &[1.0, -1.0, 0.0, 1.0, 0.0, -1.0]);
        let b = IntervalBounds
            .bounds(&net, &InputBox::unit(3), Some(&c))
            .unwrap();
        let s = b.spec().unwrap();
        let y = b.output();
        assert!(s.lower[0] >= y.lower[0] - y.upper[1] - 1e-12);
        assert!(s.upper[0] <= y.upper[0] - y.lower[1] + 1e-12);
    }
}
