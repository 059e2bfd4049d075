use thiserror::Error;

/// Errors of the MaxSMT crate.
#[derive(Debug, Error)]
pub enum MaxSmtError {
    /// The constraint is outside what the chosen encoding supports.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Sizes that do not fit together (weights, features, outputs).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An invalid parameter (found when a parameter struct is built).
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// The solver failed in a way that is not "unknown" (e.g. a model without a value).
    #[error("solver error: {0}")]
    Solver(String),
}
