//! MILP encodings of ReLU networks on good_lp (HiGHS by default; microlp as a pure-Rust
//! fallback behind the `microlp` feature): certification of IR constraints with re-validated
//! counterexamples, abductive explanations, and the AdI / constraint-accuracy metrics.
//!
//! Every answer distinguishes what was *proven* from what was merely not found: solver limits
//! give "unknown", counterexamples are re-evaluated with the network in f64 before they are
//! reported, and solver bounds are used only when proven (optimal or dual bound) and padded.
//!
//! ```
//! use provenn_milp::{Certificate, CertifyOptions, ConstraintCertifier};
//! use provenn_dsl::{compile, Bindings};
//! use nalgebra::{DMatrix, DVector};
//! use provenn_nn::{Activation, Dense, Mlp};
//!
//! // y = relu(x0 - x1) is never negative on [0, 1]^2, but can exceed 0.5.
//! let hidden = Dense::new(
//!     DMatrix::from_row_slice(1, 2, &[1.0, -1.0]),
//!     DVector::from_element(1, 0.0),
//!     Activation::Relu,
//! )
//! .unwrap();
//! let out = Dense::new(
//!     DMatrix::from_element(1, 1, 1.0),
//!     DVector::from_element(1, 0.0),
//!     Activation::Identity,
//! )
//! .unwrap();
//! let net = Mlp::from_layers(2, vec![hidden, out], vec![]).unwrap();
//! let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0)], 1);
//! let certifier = ConstraintCertifier::new(CertifyOptions::default()).unwrap();
//!
//! let holds = &compile("y[0] >= 0", &b).unwrap()[0];
//! let r = certifier.certify(&net, holds).unwrap();
//! assert_eq!(r.certificate.status(), "certified");
//!
//! let fails = &compile("y[0] <= 0.5", &b).unwrap()[0];
//! match certifier.certify(&net, fails).unwrap().certificate {
//!     Certificate::Violated(w) => assert!(w.y[0] > 0.5),
//!     other => panic!("expected a counterexample, got {other:?}"),
//! }
//! ```

pub mod backend;
pub mod certify;
pub mod encoding;
pub mod explain;
mod falsify;
mod formula;
pub mod metrics;
pub mod model;
pub mod monotone;
mod split;
pub mod tighten;
pub mod verify;

pub use backend::{default_backend, Backend, SolveOptions, SolveOutcome, SolveStatus};
pub use certify::{Certificate, CertifyOptions, CertifyReport, ConstraintCertifier, Witness};
pub use encoding::{encode_network, EncodedNetwork, EncodingStats, Lin, NeuronBounds};
pub use explain::{
    check_explanation, entailed_by_class_margins, predicted_class, AbductiveExplainer, Entailment,
    ExplainMode, ExplainOptions, ExplainStats, Explanation, ExplanationCheck, MarginBounds,
    QueryTightening, DEFAULT_SPECULATION, DEFAULT_SPLIT_BUDGET, DEFAULT_SPLIT_TIME_LIMIT,
};
pub use metrics::{adversity_index, constraint_accuracy, AdversityIndex};
pub use model::{Milp, Sense, VarId};
pub use monotone::MonotonicityCertifier;
pub use tighten::{global_bounds, propagated_bounds, tightened_from, TightenedBounds, Tightening};
pub use verify::{PropertyVerifier, Verdict, VerifyOptions, VerifyReport};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MilpError {
    /// The network or constraint uses something a MILP cannot express exactly.
    #[error("not expressible as a MILP: {0}")]
    Unsupported(String),
    /// Sizes do not match.
    #[error("dimension mismatch: {0}")]
    Dimension(String),
    /// Bounds are missing, infinite or inconsistent.
    #[error("bounds: {0}")]
    Bounds(String),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The solver failed (not a limit: an error).
    #[error("solver error: {0}")]
    Solver(String),
    /// Bound propagation failed.
    #[error(transparent)]
    Propagation(#[from] provenn_bounds::BoundsError),
    /// Network evaluation failed.
    #[error(transparent)]
    Network(#[from] provenn_nn::NnError),
}
