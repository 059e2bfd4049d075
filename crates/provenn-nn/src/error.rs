use thiserror::Error;

/// Errors of the network crate.
#[derive(Debug, Error)]
pub enum NnError {
    /// A network or parameter was specified inconsistently.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An input or target had the wrong shape.
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// Expected size.
        expected: String,
        /// Actual size.
        got: String,
    },
    /// A saved network could not be read.
    #[error("cannot read network file: {0}")]
    Format(#[from] crate::io::FormatError),
    /// An I/O error while reading or writing a network file.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl NnError {
    pub(crate) fn shape(what: &'static str, expected: impl ToString, got: impl ToString) -> Self {
        NnError::Shape {
            what,
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}
