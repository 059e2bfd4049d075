//! Datasets for provenn.
//!
//! * [`Dataset`]: a feature matrix (one row per sample), [`Targets`], a [`Schema`] (feature
//!   names and kinds, one-hot groups, per-feature raw ranges, target names) and, when the
//!   features were scaled, the [`MinMaxScaler`] that maps raw units to `[0, 1]` — kept so that
//!   constraints written in raw units (`income <= 5000`) map into the scaled space exactly.
//! * Loaders for every file of the shared data directory ([`DataDir`], resolved from `--data`,
//!   `PROVENN_DATA`, or `./data`); a missing file is an error naming the file, the directory
//!   searched and where the file comes from.
//! * Splits ([`split`]): stratified train/validation/test and k-fold.
//! * Use-case builders ([`usecase`]) reproducing the papers' preprocessing, with seeded
//!   violation injection, and a registry ([`catalog`]) of every named dataset.
//!
//! ```no_run
//! use provenn_data::{catalog, DataDir, LoadOptions};
//! let dir = DataDir::resolve(None);
//! let iris = catalog::load("iris", &dir, &LoadOptions::default()).unwrap();
//! assert_eq!(iris.dataset.x.shape(), (150, 4));
//! ```
#![forbid(unsafe_code)]

pub mod catalog;
mod dataset;
mod dir;
mod error;
pub mod loaders;
mod scale;
mod schema;
pub mod split;
pub mod table;
pub mod usecase;

pub use catalog::LoadOptions;
pub use dataset::{Dataset, Targets};
pub use dir::{DataDir, DataFile, DATA_FILES};
pub use error::DataError;
pub use scale::MinMaxScaler;
pub use schema::{Feature, FeatureKind, OneHotGroup, Schema};
