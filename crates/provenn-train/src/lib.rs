//! Trainers.
//!
//! The unconstrained feed-forward baseline ([`ffn`]), SaDe ([`sade`]) and DeepSaDe
//! ([`deepsade`]) for single-input constraints, global relational properties
//! ([`relational`]: monotonicity, robustness, fairness, with baselines), and the [`metrics`]
//! every trainer reports. Every constraint-aware trainer returns its model with the verdict of
//! an independent certifier (provenn-milp); only a certified model is called guaranteed. The
//! soft-constraint baselines (SL, SBR, REG) are in [`regularised`]; they guarantee nothing and go
//! through the same certifier.
#![forbid(unsafe_code)]

pub mod deepsade;
pub mod ffn;
mod last_layer;
pub mod metrics;
pub mod pair_attack;
pub mod regularised;
pub mod relational;
pub mod sade;

use thiserror::Error;

/// Errors of the trainers.
#[derive(Debug, Error)]
pub enum TrainError {
    /// Invalid hyper-parameters.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A network error.
    #[error(transparent)]
    Nn(#[from] provenn_nn::NnError),
    /// A data error.
    #[error(transparent)]
    Data(#[from] provenn_data::DataError),
    /// A bound-propagation error.
    #[error(transparent)]
    Bounds(#[from] provenn_bounds::BoundsError),
    /// A MaxSMT/last-layer error.
    #[error(transparent)]
    MaxSmt(#[from] provenn_maxsmt::MaxSmtError),
    /// A MILP (certification) error.
    #[error(transparent)]
    Milp(#[from] provenn_milp::MilpError),
    /// Training could not start or produced nothing usable.
    #[error("training failed: {0}")]
    Failed(String),
}
