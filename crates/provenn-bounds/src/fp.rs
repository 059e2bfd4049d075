//! Floating-point padding helpers (see the crate docs for the argument).
use provenn_nn::Activation;

/// Unit roundoff `u = 2⁻⁵³`.
pub(crate) const U: f64 = 1.0 / 9_007_199_254_740_992.0;

/// Relative error assumed for `libm`'s `exp`/`tanh`-based activations.
pub(crate) const LIBM_REL: f64 = 1.0 / 140_737_488_355_328.0; // 2^-47

/// Padding factor for a length-`n` dot product: `(n + 16)·2⁻⁵²` ≥ `2γ_{n+2}` with slack.
pub(crate) fn k(n: usize) -> f64 {
    (n as f64 + 16.0) * 2.0 * U
}

/// Absolute underflow allowance for a length-`n` dot product.
pub(crate) fn tiny(n: usize) -> f64 {
    (n as f64 + 2.0) * f64::from_bits(2) // 2 · 2^-1074 per term
}

#[inline]
pub(crate) fn up(x: f64) -> f64 {
    x.next_up()
}

#[inline]
pub(crate) fn down(x: f64) -> f64 {
    x.next_down()
}

/// Slope of a (leaky) ReLU for negative inputs: the leak, or 0.
pub(crate) fn leak(act: Activation) -> f64 {
    match act {
        Activation::LeakyRelu(s) => s,
        _ => 0.0,
    }
}

/// Interval image of a monotone activation, widened for its `f64` evaluation error.
pub(crate) fn activation_interval(act: Activation, lo: f64, hi: f64) -> (f64, f64) {
    match act {
        Activation::Relu => (lo.max(0.0), hi.max(0.0)),
        Activation::Identity => (lo, hi),
        Activation::LeakyRelu(s) => {
            let f = |z: f64, r: fn(f64) -> f64| if z >= 0.0 { z } else { r(s * z) };
            (f(lo, down), f(hi, up))
        }
        Activation::Sigmoid => {
            let a = provenn_nn::Activation::Sigmoid.apply(lo);
            let b = provenn_nn::Activation::Sigmoid.apply(hi);
            (
                down(a - a * 2.0 * LIBM_REL - tiny(1)).max(0.0),
                up(b + b * 2.0 * LIBM_REL + tiny(1)).min(1.0),
            )
        }
        Activation::Tanh => {
            let a = lo.tanh();
            let b = hi.tanh();
            (
                down(a - a.abs() * 2.0 * LIBM_REL - tiny(1)).max(-1.0),
                up(b + b.abs() * 2.0 * LIBM_REL + tiny(1)).min(1.0),
            )
        }
    }
}

/// Bound on `|σ_f64(z) − σ(z)|` for `|z| ≤ zmax`.
pub(crate) fn activation_error(act: Activation, zmax: f64) -> f64 {
    match act {
        Activation::Relu | Activation::Identity => 0.0,
        Activation::LeakyRelu(s) => up(2.0 * U * s * zmax) + tiny(1),
        Activation::Sigmoid | Activation::Tanh => up(2.0 * LIBM_REL) + tiny(1),
    }
}

/// `(centre, radius)` of `[lo, hi]` such that `[c − r, c + r] ⊇ [lo, hi]`.
#[inline]
pub(crate) fn centre_radius(lo: f64, hi: f64) -> (f64, f64) {
    let c = lo * 0.5 + hi * 0.5;
    let spread = (hi - c).max(c - lo);
    // `hi − c == 0` only when `hi == c` (and likewise for `lo`), so a point stays a point:
    // `next_up(0)` would be a subnormal radius, and subnormals slow matrix products ~50×.
    (c, if spread > 0.0 { up(spread) } else { 0.0 })
}
