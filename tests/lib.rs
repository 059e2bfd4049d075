//! Shared helpers for the cross-crate tests in `tests/tests/`.
#![forbid(unsafe_code)]

use provenn_data::DataDir;

/// The shared data directory for tests that read the real files.
///
/// Returns `None` (the caller skips) when `PROVENN_DATA` is unset on a developer machine; in CI
/// (`CI` set) a missing `PROVENN_DATA` is an error, so the real-data tests cannot silently skip
/// there.
pub fn real_data_dir() -> Option<DataDir> {
    match std::env::var_os("PROVENN_DATA") {
        Some(v) if !v.is_empty() => Some(DataDir::new(std::path::PathBuf::from(v))),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must set PROVENN_DATA so the real-data tests run")
        }
        _ => {
            eprintln!("PROVENN_DATA not set: skipping a real-data test");
            None
        }
    }
}
