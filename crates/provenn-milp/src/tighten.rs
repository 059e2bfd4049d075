//! Global neuron bounds over an input box: bound propagation (interval ∩ CROWN), then optional
//! per-neuron LP or MILP tightening. A solver bound only replaces a propagated one when the
//! solver *proved* it (optimal, or the backend's proven bound at a limit), padded for its
//! tolerances.

use std::time::{Duration, Instant};

use provenn_bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
use provenn_nn::Mlp;
use rayon::prelude::*;

use crate::backend::{Backend, SolveOptions};
use crate::encoding::{encode_activation, input_vars, layer_pre, EncodingStats, Lin, NeuronBounds};
use crate::model::{Milp, Sense};
use crate::MilpError;

/// Proven lower and upper bounds of one neuron, when the solver proved them.
type SidePair = (Option<f64>, Option<f64>);

/// How hard to work on the global bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tightening {
    /// Bound propagation only.
    None,
    /// Plus an LP relaxation per unstable neuron (two LPs).
    Lp,
    /// Plus an exact MILP per unstable neuron (two MILPs), as in the Logic-XAI reference.
    #[default]
    Milp,
}

/// Bounds with the work it took.
#[derive(Debug, Clone)]
pub struct TightenedBounds {
    /// The bounds.
    pub bounds: NeuronBounds,
    /// Solver calls made.
    pub solves: usize,
    /// Neurons whose interval the solver shrank.
    pub improved: usize,
    /// Wall time.
    pub time: Duration,
}

/// Sound bounds of every neuron of `net` over `input`.
pub fn propagated_bounds(net: &Mlp, input: &InputBox) -> Result<NeuronBounds, MilpError> {
    let ibp = IntervalBounds.bounds(net, input, None)?;
    let mut b = NeuronBounds::from_network_bounds(&ibp);
    if let Ok(crown) = CrownBounds.bounds(net, input, None) {
        b = b.merged(&NeuronBounds::from_network_bounds(&crown)).0;
    }
    Ok(b)
}

/// Propagated bounds, tightened by the solver as `mode` says; `options` limits each solve.
pub fn global_bounds(
    net: &Mlp,
    input: &InputBox,
    mode: Tightening,
    backend: &dyn Backend,
    options: &SolveOptions,
) -> Result<TightenedBounds, MilpError> {
    let start = Instant::now();
    let bounds = propagated_bounds(net, input)?;
    let mut t = tightened_from(
        net,
        input,
        bounds,
        0..net.layers().len(),
        mode,
        backend,
        options,
    )?;
    t.time = start.elapsed();
    Ok(t)
}

/// Tightens `start` — bounds already sound over `input`, e.g. global bounds merged with a
/// smaller box's propagated ones — by the solver as `mode` says, on the given layers in order.
///
/// Each layer's solves encode the layers before it with the bounds tightened so far, so
/// tighter starting bounds give smaller big-M constants, fewer binaries and faster solves.
/// Hidden layers only solve neurons whose sign is still open; the output layer solves all.
/// Layer 0 is never solved: its interval bounds are exact up to rounding.
pub fn tightened_from(
    net: &Mlp,
    input: &InputBox,
    start: NeuronBounds,
    layers: std::ops::Range<usize>,
    mode: Tightening,
    backend: &dyn Backend,
    options: &SolveOptions,
) -> Result<TightenedBounds, MilpError> {
    let clock = Instant::now();
    let mut bounds = start;
    let (mut solves, mut improved) = (0, 0);
    if mode != Tightening::None {
        let n_layers = net.layers().len();
        for l in layers.start.max(1)..layers.end.min(n_layers) {
            let mut m = Milp::new();
            let (_, ins) = input_vars(&mut m, input.lower(), input.upper());
            let mut cur = ins.clone();
            let mut stats = EncodingStats::default();
            for k in 0..l {
                let pre = layer_pre(net, k, &cur, &ins);
                cur = encode_activation(&mut m, net, k, pre, &bounds.layers[k], &mut stats)?;
            }
            if mode == Tightening::Lp {
                for v in &mut m.vars {
                    v.integer = false;
                }
            }
            let pre = layer_pre(net, l, &cur, &ins);
            let last = l + 1 == n_layers;
            let layer_bounds = &bounds.layers[l];
            let todo: Vec<usize> = (0..pre.len())
                .filter(|&i| last || (layer_bounds.lower[i] < 0.0 && layer_bounds.upper[i] > 0.0))
                .collect();
            let results: Vec<(usize, Result<SidePair, MilpError>)> = todo
                .par_iter()
                .map(|&i| {
                    let r = &pre[i];
                    let solve = |sense: Sense| -> Result<Option<f64>, MilpError> {
                        let mut mm = m.clone();
                        mm.set_objective(sense, r.coefs.clone());
                        let out = backend.solve(&mm, options)?;
                        Ok(out.bound.map(|b| {
                            let pad = pad_for(backend.tolerance(), b + r.constant, r);
                            match sense {
                                Sense::Maximise => b + r.constant + pad,
                                Sense::Minimise => b + r.constant - pad,
                            }
                        }))
                    };
                    (
                        i,
                        solve(Sense::Minimise).and_then(|lo| Ok((lo, solve(Sense::Maximise)?))),
                    )
                })
                .collect();
            let lb = &mut bounds.layers[l];
            for (i, r) in results {
                let (lo, hi) = r?;
                solves += 2;
                let lo = lo.unwrap_or(f64::NEG_INFINITY).max(lb.lower[i]);
                let hi = hi.unwrap_or(f64::INFINITY).min(lb.upper[i]);
                // Both intervals are sound, so they meet; if they do not, the solver's claim is
                // wrong and we keep the propagated interval.
                if lo <= hi && (lo > lb.lower[i] || hi < lb.upper[i]) {
                    lb.lower[i] = lo;
                    lb.upper[i] = hi;
                    improved += 1;
                }
            }
        }
    }
    Ok(TightenedBounds {
        bounds,
        solves,
        improved,
        time: clock.elapsed(),
    })
}

/// Padding of a solver-proven bound: the solver may violate each row by its tolerance, which
/// moves the objective by about tolerance × (1 + |value| + ‖coefficients‖₁); we take twice that.
pub(crate) fn pad_for(tolerance: f64, value: f64, r: &Lin) -> f64 {
    let norm: f64 = r.coefs.iter().map(|(_, a)| a.abs()).sum();
    2.0 * tolerance * (1.0 + value.abs() + norm)
}
