//! Sound bound propagation for [`provenn_nn::Mlp`] networks.
//!
//! Given an [`InputBox`] (per-feature intervals; degenerate intervals fix a feature),
//! a [`BoundPropagator`] returns [`NetworkBounds`]: pre- and post-activation intervals of
//! every neuron, the *latent box* of the last layer's input (penultimate activations plus skip
//! features — what DeepSaDe constrains), the output box, optionally bounds of `C·y` for a
//! specification matrix `C`, and ReLU stability counts. Two propagators:
//!
//! * [`IntervalBounds`] — interval arithmetic (Box/IBP) in centre/radius form, one pair of
//!   matrix products per layer, also batched over many boxes;
//! * [`CrownBounds`] — CROWN back-substitution with adaptive lower slopes for unstable ReLUs,
//!   intersected with the interval bounds. Sigmoid and tanh use constant (interval) relaxations
//!   in CROWN for now; their linear relaxations are future work.
//!
//! [`RelationalBounds`] bounds `h(x') − h(x)` layer by layer for pairs `x' = x + d` with `d` in
//! a box, tighter than subtracting two independent boxes. [`JacobianBounds`] bounds the
//! partial derivatives `∂h/∂x_i` over a box: every difference quotient along `x_i` lies in
//! them, which is what monotonicity needs.
//!
//! # Floating-point soundness
//!
//! Every interval this crate returns contains, for every input in the box, **both** the value
//! of the network in exact real arithmetic (weights taken as the exact rationals their `f64`s
//! denote) **and** the value `provenn_nn` computes in `f64`, whatever summation order its matrix
//! products use. The argument, with `u = 2⁻⁵³` and `γ_n = n·u / (1 − n·u)`:
//!
//! 1. *Dot products.* For any summation order, `|fl(Σ wᵢaᵢ + b) − (Σ wᵢaᵢ + b)| ≤
//!    γ_{n+1} (Σ|wᵢ||aᵢ| + |b|)` plus an underflow term below `(n+2)·2⁻¹⁰⁷⁴` (Higham,
//!    *Accuracy and Stability of Numerical Algorithms*, §3.1; FMA only lowers the error).
//!    With `|aᵢ| ≤ m` on the box this is at most `γ_{n+1}(m·Σ|wᵢ| + |b|)`.
//! 2. *Interval layer.* For inputs in `c ± r` the real pre-activation lies in
//!    `Wc + b ± |W|r`. We compute `fl(Wc + b)` and `fl(|W|r)` with ordinary `f64` products and
//!    widen by: the error of `fl(Wc + b)` (item 1), the error of the *network's own* `f64`
//!    evaluation (item 1 again, so the `f64` forward value is covered as well as the real one),
//!    and the relative error of the non-negative sum `fl(|W|r)` (`≤ γ_n`). All padding factors
//!    use `k_n = (n + 16)·2⁻⁵²` ≥ `2γ_{n+2}`, and the slack (≥ 12u) absorbs the rounding of the
//!    few non-negative operations that compute the padding itself. The final `centre ± radius`
//!    is rounded outward with `next_down`/`next_up` (`next_up(fl(x)) ≥ x` under
//!    round-to-nearest).
//! 3. *Activations.* ReLU and identity are exact in `f64`. Leaky ReLU rounds `s·z` once; its
//!    interval endpoints are rounded outward. Sigmoid and tanh come from the platform `libm`
//!    (`exp`, `tanh`), whose error we assume below `2⁻⁴⁷` relative (glibc documents ≤ 1–2 ulp);
//!    their intervals are widened by that and clamped to the functions' true ranges.
//! 4. *CROWN.* A backward pass multiplies coefficient matrices `Λ` by weights in `f64`. Instead
//!    of trusting `fl(ΛW)`, each step subtracts `|Λ|·pad` where `pad` bounds (a) the rounding of
//!    `ΛW` on the layer's input box (`k_n·|W|·m`), (b) the network's own `f64` evaluation error
//!    of that layer (item 1), and (c) the activation's rounding error. Relaxation lines are
//!    chosen in `f64` and their intercepts computed *from the endpoints with outward rounding*,
//!    so a line is valid whatever its rounded slope (a line above both endpoints of a convex
//!    function on an interval is above it everywhere). Constants accumulate with `next_down`.
//!
//! There is no unsound fast mode: the padding costs `O(n)` per layer and one extra matrix
//! product, measured in `benches/bounds.rs`.
//!
//! ```
//! use provenn_bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
//! use provenn_nn::{Activation, MlpBuilder};
//!
//! let net = MlpBuilder::new(2).hidden(8, Activation::Relu).output(1, Activation::Identity)
//!     .seed(3).build().unwrap();
//! let domain = InputBox::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
//! let ibp = IntervalBounds.bounds(&net, &domain, None).unwrap();
//! let crown = CrownBounds::default().bounds(&net, &domain, None).unwrap();
//! let (lo, hi) = (crown.output().lower[0], crown.output().upper[0]);
//! assert!(ibp.output().lower[0] <= lo && hi <= ibp.output().upper[0]);
//! let y = net.forward(&nalgebra::DVector::from_vec(vec![0.5, 0.25])).unwrap()[0];
//! assert!(lo <= y && y <= hi);
//! ```
#![forbid(unsafe_code)]

mod crown;
mod domain;
mod fp;
mod interval;
mod jacobian;
mod relational;
mod result;

pub use crown::CrownBounds;
pub use domain::InputBox;
pub use interval::IntervalBounds;
pub use jacobian::{JacobianBounds, JacobianColumn};
pub use relational::{RelationalBounds, RelationalResult};
pub use result::{Interval, LayerBounds, NetworkBounds, Stability};

use nalgebra::DMatrix;
use provenn_nn::Mlp;
use thiserror::Error;

/// Errors of bound propagation.
#[derive(Debug, Error, PartialEq)]
pub enum BoundsError {
    /// The box does not match the network or is malformed.
    #[error("invalid input box: {0}")]
    InvalidBox(String),
    /// The specification matrix has the wrong number of columns.
    #[error("specification matrix has {got} columns, the network has {expected} outputs")]
    SpecShape {
        /// Network outputs.
        expected: usize,
        /// Columns of `C`.
        got: usize,
    },
    /// Bounds overflowed to infinity or NaN (weights or box too large).
    #[error("bounds are not finite at layer {0}")]
    NonFinite(usize),
    /// A feature index beyond the network's inputs.
    #[error("feature {feature} is out of range: the network has {inputs} inputs")]
    FeatureOutOfRange {
        /// The index asked for.
        feature: usize,
        /// Network inputs.
        inputs: usize,
    },
}

/// Computes sound bounds of a network over an input box.
pub trait BoundPropagator {
    /// Bounds of every layer and of the output; with `spec = Some(C)`, also of `C·y`.
    fn bounds(
        &self,
        net: &Mlp,
        input: &InputBox,
        spec: Option<&DMatrix<f64>>,
    ) -> Result<NetworkBounds, BoundsError>;
}
