//! provenn: train neural networks that provably satisfy domain constraints, and prove and
//! explain what trained networks do.
//!
//! This facade re-exports the workspace's crates under one name; the `provenn` binary wires
//! them into a command-line interface. See `docs/ARCHITECTURE.md` for the crate map.
//!
//! ```
//! use provenn::nn::{Activation, MlpBuilder};
//! let net = MlpBuilder::new(2).output(1, Activation::Identity).build().unwrap();
//! assert_eq!(net.n_parameters(), 3);
//! ```
#![forbid(unsafe_code)]

pub use provenn_bounds as bounds;
pub use provenn_data as data;
pub use provenn_dsl as dsl;
pub use provenn_hardnet as hardnet;
pub use provenn_maxsmt as maxsmt;
pub use provenn_milp as milp;
pub use provenn_nn as nn;
pub use provenn_train as train;

pub use provenn_data::{DataDir, Dataset};
pub use provenn_nn::{Activation, Mlp, MlpBuilder};
pub use provenn_train::ffn::{Ffn, FfnParams};
