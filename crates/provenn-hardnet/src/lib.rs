//! HardNet enforcement layers (Min & Azizan, arXiv 2410.10807): appended to any network, they
//! make its outputs satisfy input-dependent affine constraints `b_l(x) ≤ A(x) y ≤ b_u(x)` *by
//! construction*, with exact backward passes that plug into `provenn-nn`'s VJP.
//!
//! - [`AffineProjection`] (HardNet-Aff): the closed form `f + A⁺[ReLU(b_l − Af) − ReLU(Af − b_u)]`
//!   for full-row-rank `A`, with `A·P(f) = clip(Af, b_l, b_u)`.
//! - [`Partition`]: the equality-partition variant (`C y = d` completed from a free part).
//! - [`ConvexSet`] (HardNet-Cvx): the exact Euclidean projection onto affine rows of any rank
//!   and norm balls, by clarabel, with a KKT-based backward pass.
//!
//! ```
//! use nalgebra::{DMatrix, DVector};
//! use provenn_hardnet::{AffineConstraint, AffineProjection};
//!
//! // Example 1 of the paper: y0 ≥ x·y1 at x = 1, i.e. [-1, 1]·y ≤ 0; f = [3, 5] → [4, 4].
//! let c = AffineConstraint {
//!     a: DMatrix::from_row_slice(1, 2, &[-1.0, 1.0]),
//!     lower: DVector::from_element(1, f64::NEG_INFINITY),
//!     upper: DVector::from_element(1, 0.0),
//! };
//! let p = AffineProjection::shared(c, 2).unwrap();
//! let y = p.forward(&DMatrix::from_row_slice(1, 2, &[3.0, 5.0])).unwrap();
//! assert!((y[(0, 0)] - 4.0).abs() < 1e-12 && (y[(0, 1)] - 4.0).abs() < 1e-12);
//! ```

pub mod affine;
pub mod convex;
pub mod dc3;
pub mod partition;
pub mod sqp;
pub mod train;

pub use affine::{AffineConstraint, AffineProjection, Factorised, SharedMatrix};
pub use convex::{ConvexProjection, ConvexSet};
pub use dc3::Dc3Params;
pub use partition::Partition;
pub use sqp::{sqp, LinearConstraints, SmoothObjective, SqpOptions, SqpSolution};
pub use train::{
    fit, fit_objective, ConstraintSource, DslConstraint, FnConstraint, HardNetModel, HardNetParams,
    Method, Mse, Objective, SharedMatrixConstraint,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum HardNetError {
    /// Sizes do not match.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// The constraints break the method's assumption (full row rank, feasibility).
    #[error("assumption violated: {0}")]
    Assumption(String),
    /// The QP solver failed.
    #[error("solver: {0}")]
    Solver(String),
    /// The assumption fails at one input of a batch.
    #[error("input {0}: {1}")]
    AtInput(usize, Box<HardNetError>),
}
