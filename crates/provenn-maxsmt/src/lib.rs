//! SMT and MaxSMT for the solver-controlled last layer of a network, over universally
//! quantified domain constraints.
//!
//! SaDe and DeepSaDe train by solving, per mini-batch, a MaxSMT problem whose unknowns are the
//! weights `θ = (b, W)` of the last layer `y = b + W·z`: hard constraints are the domain
//! constraint `∀z ∈ box: P(z) ⇒ C(b + W·z)` and a box around the current weights, soft
//! constraints ask to fit the batch's examples with a margin. This crate provides
//!
//! * [`LastLayerConstraint`]: a provenn-dsl constraint restated over the last layer's inputs
//!   `z` (latent box and skip-connected raw features), with an exact check of a concrete `θ`
//!   ([`LastLayerConstraint::counterexample`], Z3 on linear real arithmetic);
//! * two encodings of "θ satisfies the constraint": the faithful quantified one
//!   ([`z3enc::quantified`], non-linear, as the papers do) and the exact ∀-elimination of
//!   [`eliminate()`] (linear, quantifier-free; sound selector encoding for disjunctions and
//!   counts, reported by [`Exactness`]);
//! * MaxSMT solvers over Z3 behind [`MaxSmtSolver`]: [`FuMalik`] (weighted, WPM1) and the
//!   core-guided [`PmRes`], with time limits, cancellation, statuses and statistics;
//! * a MILP back end for the eliminated problem on HiGHS ([`milp`]);
//! * the batch API for trainers, [`LastLayerUpdate`].
//!
//! ```
//! use provenn_dsl::{compile, Bindings};
//! use provenn_maxsmt::*;
//!
//! // One raw input x0 ∈ [0, 1], skip-connected; one latent feature in [0, 2]; two outputs.
//! let c = compile("x[0] <= 0.5 => y[0] > y[1]", &Bindings::anonymous(&[(0.0, 1.0)], 2))?.remove(0);
//! let layer = LastLayer { n_features: 2, n_outputs: 2 };
//! let constraint = LastLayerConstraint::new(layer, &c, &[(0.0, 2.0)], &[0])?;
//! // Two examples (z = [latent, x0]) labelled "output 1", margin 0.
//! let targets = Targets::Classification { labels: vec![vec![false, true]; 2], margins: vec![0.0] };
//! let batch = vec![vec![1.0, 0.9], vec![0.5, 0.2]];
//! let update = LastLayerUpdate::new(&constraint, WeightBox::uniform(layer.n_params(), -1.0, 1.0)?, &batch, &targets)?;
//! let out = update.solve(UpdateMethod::Milp(EliminationOptions::default()), &PmRes, &Limits::default())?;
//! assert_eq!(out.status, Status::Optimal);
//! // The second example has x0 ≤ 0.5, where the constraint forces y0 > y1: only 3 of 4 fit.
//! assert_eq!(out.satisfied, 3);
//! assert!(constraint.counterexample_f64(out.theta_f64.as_ref().unwrap())?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every θ this crate returns as satisfying a constraint has been checked exactly in rational
//! arithmetic by a different encoding (Z3 on `∃z: P(z) ∧ ¬C`, θ fixed), and the returned
//! `f64` weights are checked again after rounding.
#![forbid(unsafe_code)]

mod eliminate;
mod error;
mod lastlayer;
pub mod milp;
mod rational;
mod solver;
mod update;
pub mod z3enc;

pub use eliminate::{
    eliminate, CountTerm, EliminatedProblem, EliminationOptions, Exactness, QfFormula,
};
pub use error::MaxSmtError;
pub use lastlayer::{LastLayer, LastLayerConstraint, LinAtom, LinForm, Rule};
pub use rational::{q_from_f64, q_to_f64};
pub use solver::{
    CancelToken, FuMalik, Instance, Limits, MaxSmtOutcome, MaxSmtSolver, PmRes, SoftConstraint,
    SolveStats, Status, Z3Optimize,
};
pub use update::{Encoding, LastLayerUpdate, Targets, UpdateMethod, UpdateOutcome, WeightBox};

/// The Z3 bindings this crate builds on (to build [`Instance`]s).
pub use z3;

/// Exact rationals (re-exported from provenn-dsl).
pub use provenn_dsl::ir::Q;
