//! Trainers.
//!
//! Today this crate holds the unconstrained feed-forward baseline ([`ffn`]) and the
//! [`metrics`] every trainer reports. The constraint-aware trainers — SaDe, DeepSaDe,
//! relational-property (SMiLE-style) training and the SL/SBR/REG baselines, each returning
//! models certified by an independent check — are owned by the trainers issue.
#![forbid(unsafe_code)]

pub mod ffn;
pub mod metrics;

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
}
