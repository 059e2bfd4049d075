//! The MILP encoding of a feed-forward network (Tjeng, Xiao & Tedrake 2019): each neuron whose
//! pre-activation interval `[L, U]` straddles zero gets one binary and the three big-M rows
//! `y ≥ r`, `y ≤ r − L(1 − z)`, `y ≤ U·z` (plus `y ≥ 0` as a bound); neurons with a fixed sign are
//! linear and get no binary. Leaky ReLUs use the same scheme with slope `s`. Bounds must be
//! sound over the encoded input box — they come from provenn-bounds, optionally tightened by
//! [`crate::tighten`].

use provenn_bounds::{Interval, NetworkBounds};
use provenn_nn::{Activation, Mlp};

use crate::model::{Milp, VarId};
use crate::MilpError;

/// An affine expression over MILP variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lin {
    /// Sparse coefficients (one entry per variable).
    pub coefs: Vec<(VarId, f64)>,
    /// Constant term.
    pub constant: f64,
}

impl Lin {
    /// A single variable.
    pub fn var(v: VarId) -> Self {
        Lin {
            coefs: vec![(v, 1.0)],
            constant: 0.0,
        }
    }
    /// A constant.
    pub fn constant(c: f64) -> Self {
        Lin {
            coefs: Vec::new(),
            constant: c,
        }
    }
    /// Builds an expression from terms that may repeat a variable (they are summed).
    pub fn from_terms(mut terms: Vec<(VarId, f64)>, constant: f64) -> Self {
        terms.sort_unstable_by_key(|t| t.0);
        let mut coefs: Vec<(VarId, f64)> = Vec::with_capacity(terms.len());
        for (v, a) in terms {
            match coefs.last_mut() {
                Some(last) if last.0 == v => last.1 += a,
                _ => coefs.push((v, a)),
            }
        }
        coefs.retain(|t| t.1 != 0.0);
        Lin { coefs, constant }
    }
    /// `self += k · other`.
    pub fn add_scaled(&mut self, k: f64, other: &Lin) {
        if k == 0.0 {
            return;
        }
        let mut terms = std::mem::take(&mut self.coefs);
        terms.extend(other.coefs.iter().map(|&(v, a)| (v, k * a)));
        *self = Lin::from_terms(terms, self.constant + k * other.constant);
    }
    /// Value at a point.
    pub fn eval(&self, values: &[f64]) -> f64 {
        self.constant + self.coefs.iter().map(|(v, a)| a * values[v.0]).sum::<f64>()
    }
    /// The coefficients with an extra term, for building rows `coefs + k·v ⋈ rhs − constant`.
    pub fn with(&self, v: VarId, k: f64) -> Vec<(VarId, f64)> {
        let mut c = self.coefs.clone();
        c.push((v, k));
        c
    }
}

/// Sound pre-activation bounds of every layer (hidden and output) over some input box.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronBounds {
    /// `layers[l]` bounds layer `l`'s pre-activations.
    pub layers: Vec<Interval>,
}

impl NeuronBounds {
    /// Takes the pre-activation bounds of a bound propagation.
    pub fn from_network_bounds(b: &NetworkBounds) -> Self {
        NeuronBounds {
            layers: b.layers().iter().map(|l| l.pre.clone()).collect(),
        }
    }
    /// The intersection with `other`, and how many neurons `other` made strictly tighter on at
    /// least one side.
    pub fn merged(&self, other: &NeuronBounds) -> (NeuronBounds, usize) {
        let mut tightened = 0;
        let layers = self
            .layers
            .iter()
            .zip(&other.layers)
            .map(|(a, b)| {
                let mut out = a.clone();
                for i in 0..a.len() {
                    let (lo, hi) = (b.lower[i], b.upper[i]);
                    if lo > a.lower[i] || hi < a.upper[i] {
                        tightened += 1;
                    }
                    out.lower[i] = a.lower[i].max(lo);
                    out.upper[i] = a.upper[i].min(hi);
                }
                out
            })
            .collect();
        (NeuronBounds { layers }, tightened)
    }
    /// Number of neurons in all layers.
    pub fn n_neurons(&self) -> usize {
        self.layers.iter().map(Interval::len).sum()
    }
}

/// Which neurons needed a binary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodingStats {
    /// Piecewise-linear neurons encoded without a binary (fixed sign).
    pub stable: usize,
    /// Piecewise-linear neurons encoded with a binary.
    pub binaries: usize,
}

impl EncodingStats {
    /// Share of piecewise-linear neurons without a binary (1 when there are none).
    pub fn stable_fraction(&self) -> f64 {
        let n = self.stable + self.binaries;
        if n == 0 {
            1.0
        } else {
            self.stable as f64 / n as f64
        }
    }
}

/// The encoded network: its outputs as expressions over the MILP's variables.
#[derive(Debug, Clone)]
pub struct EncodedNetwork {
    /// Output `k` of the network (the last layer's post-activation).
    pub outputs: Vec<Lin>,
    /// Neuron statistics.
    pub stats: EncodingStats,
}

/// Slope of the negative part for the activations the MILP can express exactly.
fn negative_slope(act: Activation, layer: usize) -> Result<Option<f64>, MilpError> {
    match act {
        Activation::Relu => Ok(Some(0.0)),
        Activation::LeakyRelu(s) => Ok(Some(s)),
        Activation::Identity => Ok(None),
        other => Err(MilpError::Unsupported(format!(
            "layer {layer}: activation {other:?} is not piecewise linear"
        ))),
    }
}

/// Checks that every activation of `net` can be encoded.
pub fn check_encodable(net: &Mlp) -> Result<(), MilpError> {
    for (l, layer) in net.layers().iter().enumerate() {
        negative_slope(layer.activation(), l)?;
    }
    Ok(())
}

/// Pre-activation expressions of layer `l` given the previous layer's outputs `prev` and the
/// input variables (for skip features).
pub fn layer_pre(net: &Mlp, l: usize, prev: &[Lin], inputs: &[Lin]) -> Vec<Lin> {
    let layer = &net.layers()[l];
    let last = l + 1 == net.layers().len();
    let mut src: Vec<&Lin> = prev.iter().collect();
    if last {
        src.extend(net.skip_features().iter().map(|&j| &inputs[j]));
    }
    let w = layer.weights();
    let b = layer.bias();
    (0..layer.outputs())
        .map(|i| {
            let mut terms = Vec::new();
            let mut constant = b[i];
            for (j, s) in src.iter().enumerate() {
                let k = w[(i, j)];
                if k != 0.0 {
                    terms.extend(s.coefs.iter().map(|&(v, a)| (v, k * a)));
                    constant += k * s.constant;
                }
            }
            Lin::from_terms(terms, constant)
        })
        .collect()
}

/// Encodes layer `l`'s activation on `pre` with bounds `bounds`, returning its outputs.
pub fn encode_activation(
    m: &mut Milp,
    net: &Mlp,
    l: usize,
    pre: Vec<Lin>,
    bounds: &Interval,
    stats: &mut EncodingStats,
) -> Result<Vec<Lin>, MilpError> {
    Ok(encode_activation_phases(m, net, l, pre, bounds, stats)?.0)
}

/// Which piece of its activation a neuron is on in the encoding: its derivative with respect
/// to its pre-activation is `slope` on a fixed piece, and `s + (1 − s)·z` with the binary `z`
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// A fixed piece with this slope (1 when active or linear, `s` when inactive).
    Fixed {
        /// The derivative.
        slope: f64,
    },
    /// Either piece, chosen by the binary `z` (1: active); `s` is the negative part's slope.
    Open {
        /// The phase binary.
        z: VarId,
        /// Slope of the negative part.
        s: f64,
    },
}

/// [`encode_activation`], also returning each neuron's [`Phase`].
pub fn encode_activation_phases(
    m: &mut Milp,
    net: &Mlp,
    l: usize,
    pre: Vec<Lin>,
    bounds: &Interval,
    stats: &mut EncodingStats,
) -> Result<(Vec<Lin>, Vec<Phase>), MilpError> {
    let slope = negative_slope(net.layers()[l].activation(), l)?;
    let mut out = Vec::with_capacity(pre.len());
    let mut phases = Vec::with_capacity(pre.len());
    for (i, r) in pre.into_iter().enumerate() {
        let (lo, hi) = (bounds.lower[i], bounds.upper[i]);
        if lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()) || !lo.is_finite() || !hi.is_finite() {
            return Err(MilpError::Bounds(format!(
                "layer {l} neuron {i}: bounds [{lo}, {hi}] are not a finite interval"
            )));
        }
        let Some(s) = slope else {
            // Identity: a variable keeps later expressions sparse.
            let y = m.continuous(lo, hi);
            m.eq(r.with(y, -1.0), -r.constant);
            out.push(Lin::var(y));
            phases.push(Phase::Fixed { slope: 1.0 });
            continue;
        };
        if hi <= 0.0 {
            stats.stable += 1;
            phases.push(Phase::Fixed { slope: s });
            if s == 0.0 {
                out.push(Lin::constant(0.0));
            } else {
                let y = m.continuous(s * lo, s * hi);
                // y = s·r
                let mut c: Vec<(VarId, f64)> = r.coefs.iter().map(|&(v, a)| (v, s * a)).collect();
                c.push((y, -1.0));
                m.eq(c, -s * r.constant);
                out.push(Lin::var(y));
            }
            continue;
        }
        if lo >= 0.0 {
            stats.stable += 1;
            phases.push(Phase::Fixed { slope: 1.0 });
            let y = m.continuous(lo, hi);
            m.eq(r.with(y, -1.0), -r.constant);
            out.push(Lin::var(y));
            continue;
        }
        stats.binaries += 1;
        let y = m.continuous(s * lo, hi);
        let z = m.binary();
        phases.push(Phase::Open { z, s });
        let neg: Vec<(VarId, f64)> = r.coefs.iter().map(|&(v, a)| (v, -a)).collect();
        // y ≥ r
        let mut c = neg.clone();
        c.push((y, 1.0));
        m.ge(c, r.constant);
        // y ≤ r − (1−s)·L·(1 − z)
        let mut c = neg.clone();
        c.push((y, 1.0));
        c.push((z, -(1.0 - s) * lo));
        m.le(c, r.constant - (1.0 - s) * lo);
        // y ≤ s·r + (1−s)·U·z
        let mut c: Vec<(VarId, f64)> = r.coefs.iter().map(|&(v, a)| (v, -s * a)).collect();
        c.push((y, 1.0));
        c.push((z, -(1.0 - s) * hi));
        m.le(c, s * r.constant);
        if s > 0.0 {
            // y ≥ s·r
            let mut c: Vec<(VarId, f64)> = r.coefs.iter().map(|&(v, a)| (v, -s * a)).collect();
            c.push((y, 1.0));
            m.ge(c, s * r.constant);
        }
        out.push(Lin::var(y));
    }
    Ok((out, phases))
}

/// Encodes the whole network on the input expressions `inputs` (usually one variable per
/// feature, bounded by the input box the `bounds` were computed for).
pub fn encode_network(
    m: &mut Milp,
    net: &Mlp,
    inputs: &[Lin],
    bounds: &NeuronBounds,
) -> Result<EncodedNetwork, MilpError> {
    if inputs.len() != net.n_inputs() {
        return Err(MilpError::Dimension(format!(
            "{} input expressions for a network with {} inputs",
            inputs.len(),
            net.n_inputs()
        )));
    }
    if bounds.layers.len() != net.layers().len() {
        return Err(MilpError::Dimension(format!(
            "bounds for {} layers, network has {}",
            bounds.layers.len(),
            net.layers().len()
        )));
    }
    let mut stats = EncodingStats::default();
    let mut cur: Vec<Lin> = inputs.to_vec();
    for l in 0..net.layers().len() {
        let pre = layer_pre(net, l, &cur, inputs);
        cur = encode_activation(m, net, l, pre, &bounds.layers[l], &mut stats)?;
    }
    Ok(EncodedNetwork {
        outputs: cur,
        stats,
    })
}

/// Adds one continuous variable per input with the box's bounds, and returns the variables
/// and the expressions the encoding uses for the inputs: the variable, or for a fixed input
/// (`lower == upper`) its constant value.
///
/// Constants keep fixed inputs out of every row: an explanation query on MNIST fixes most of
/// its 784 inputs, and as variables they put hundreds of terms in each first-layer row (and
/// in each row a stable neuron passes them on to).
pub fn input_vars(m: &mut Milp, lower: &[f64], upper: &[f64]) -> (Vec<VarId>, Vec<Lin>) {
    let vars: Vec<VarId> = lower
        .iter()
        .zip(upper)
        .map(|(&l, &u)| m.continuous(l, u))
        .collect();
    let lins = vars
        .iter()
        .zip(lower.iter().zip(upper))
        .map(|(&v, (&l, &u))| {
            if l == u {
                Lin::constant(l)
            } else {
                Lin::var(v)
            }
        })
        .collect();
    (vars, lins)
}
