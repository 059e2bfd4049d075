//! Dense feed-forward networks (MLPs) in `f64` on [`nalgebra`].
//!
//! This crate is the bottom layer of provenn: every other crate (bounds, solvers, trainers)
//! reads the types defined here. It provides
//!
//! * [`Mlp`]: dense layers with [`Activation`]s and optional *skip features* — a chosen subset of
//!   the input copied by identity into the input of the last layer (DeepSaDe's architecture), so
//!   the last layer sees `[h_{k-1}(x); x_S]`;
//! * forward passes for one sample or a batch (rows are samples), with a [`ForwardTrace`] giving
//!   every layer's pre- and post-activations;
//! * exact reverse-mode gradients ([`Mlp::backward`]), exposed as a vector–Jacobian product so
//!   that other crates can append differentiable layers;
//! * [`loss`] functions, [`optim`]isers (SGD with momentum/weight decay, Adam), a seeded
//!   mini-batch training loop ([`train::fit`]) with per-epoch callbacks;
//! * versioned binary save/load with typed errors, and JSON export ([`io`]).
//!
//! All randomness comes from a `u64` seed.
//!
//! ```
//! use provenn_nn::{Activation, Init, MlpBuilder};
//! use nalgebra::DVector;
//!
//! let net = MlpBuilder::new(3)
//!     .hidden(8, Activation::Relu)
//!     .output(2, Activation::Identity)
//!     .skip_features(vec![0])
//!     .init(Init::HeNormal)
//!     .seed(7)
//!     .build()
//!     .unwrap();
//! let y = net.forward(&DVector::from_vec(vec![0.1, 0.2, 0.3])).unwrap();
//! assert_eq!(y.len(), 2);
//! ```
#![forbid(unsafe_code)]

mod activation;
mod error;
mod init;
pub mod io;
pub mod loss;
mod mlp;
pub mod nnet;
pub mod onnx;
pub mod optim;
pub mod train;

pub use activation::Activation;
pub use error::NnError;
pub use init::Init;
pub use mlp::{Dense, ForwardTrace, Gradients, LayerGradient, Mlp, MlpBuilder};

/// Re-exported so that downstream crates use the same linear-algebra types.
pub use nalgebra;
