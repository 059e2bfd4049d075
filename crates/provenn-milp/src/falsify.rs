//! Cheap counterexample search before a MILP: projected signed-gradient ascent on the margin
//! of the best other class, from the instance and a few pseudo-random points of the box. It
//! only ever *finds* counterexamples (each checked in f64); failing to find one proves nothing,
//! and the caller then asks the MILP.

use nalgebra::DMatrix;
use provenn_bounds::InputBox;
use provenn_nn::Mlp;

/// Searches `qbox` for a point where some class other than `class` scores at least as high.
pub(crate) fn find_counterexample(
    net: &Mlp,
    qbox: &InputBox,
    start: &[f64],
    class: usize,
    seed: u64,
) -> Option<Vec<f64>> {
    const STARTS: usize = 8;
    const STEPS: usize = 25;
    let n = qbox.dim();
    let (lo, hi) = (qbox.lower(), qbox.upper());
    let free: Vec<usize> = (0..n).filter(|&i| hi[i] > lo[i]).collect();
    if free.is_empty() {
        return None;
    }
    // xorshift: deterministic starts without a rand dependency.
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = DMatrix::from_fn(STARTS, n, |r, c| {
        if r == 0 || hi[c] == lo[c] {
            start[c].clamp(lo[c], hi[c])
        } else {
            lo[c] + next() * (hi[c] - lo[c])
        }
    });
    let k = net.n_outputs();
    for step in 0..STEPS {
        let trace = net.trace(&x).ok()?;
        let y = trace.output();
        let mut g = DMatrix::zeros(STARTS, k);
        for r in 0..STARTS {
            let best = (0..k)
                .filter(|&j| j != class)
                .max_by(|&a, &b| y[(r, a)].total_cmp(&y[(r, b)]))?;
            if y[(r, best)] >= y[(r, class)] {
                return Some(x.row(r).iter().copied().collect());
            }
            g[(r, best)] = 1.0;
            g[(r, class)] = -1.0;
        }
        let (_, dx) = net.backward(&trace, &g).ok()?;
        let rate = 0.25 * (1.0 - step as f64 / STEPS as f64);
        for r in 0..STARTS {
            for &c in &free {
                let v = x[(r, c)] + rate * (hi[c] - lo[c]) * dx[(r, c)].signum();
                x[(r, c)] = v.clamp(lo[c], hi[c]);
            }
        }
    }
    None
}
