use std::path::PathBuf;

use thiserror::Error;

/// Errors of the data crate.
#[derive(Debug, Error)]
pub enum DataError {
    /// A dataset file is not in the data directory.
    #[error("data file `{file}` not found in {dir} ({origin}). Set PROVENN_DATA or --data to the directory holding it, or run `cargo xtask data`.")]
    Missing {
        /// File name.
        file: String,
        /// Directory searched.
        dir: PathBuf,
        /// Where the file comes from.
        origin: String,
    },
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file does not have the expected content.
    #[error("{file}, line {line}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line number (0 when not tied to a line).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An argument or dataset is inconsistent.
    #[error("invalid: {0}")]
    Invalid(String),
    /// No dataset has this name.
    #[error("unknown dataset `{name}`; known: {known}")]
    UnknownDataset {
        /// Name asked for.
        name: String,
        /// Known names.
        known: String,
    },
}

impl DataError {
    pub(crate) fn parse(file: &str, line: usize, message: impl Into<String>) -> Self {
        DataError::Parse {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}
