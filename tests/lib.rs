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

/// Shape of the random piecewise-linear networks the MILP property tests draw.
#[derive(Debug, Clone)]
pub struct RandomNet {
    /// Inputs.
    pub n_in: usize,
    /// Number of layers (including the output layer).
    pub depth: std::ops::RangeInclusive<usize>,
    /// Width of hidden layers.
    pub hidden: std::ops::RangeInclusive<usize>,
    /// Outputs.
    pub n_out: std::ops::RangeInclusive<usize>,
    /// Weights are uniform in `±weight`, biases in `±bias`.
    pub weight: f64,
    /// See `weight`.
    pub bias: f64,
    /// Slope of the leaky ReLUs (drawn for 20% of hidden layers; the rest are ReLU).
    pub leaky_slope: f64,
    /// Probability that the output layer is a ReLU (else identity).
    pub output_relu: f64,
}

/// A random ReLU / leaky-ReLU network with, 30% of the time, one skip feature.
pub fn random_relu_net(rng: &mut impl rand::Rng, spec: &RandomNet) -> provenn_nn::Mlp {
    use nalgebra::{DMatrix, DVector};
    use provenn_nn::{Activation, Dense, Mlp};
    let n_in = spec.n_in;
    let depth = rng.gen_range(spec.depth.clone());
    let n_out = rng.gen_range(spec.n_out.clone());
    let skip: Vec<usize> = if rng.gen_bool(0.3) {
        vec![rng.gen_range(0..n_in)]
    } else {
        vec![]
    };
    let mut layers = Vec::new();
    let mut prev = n_in;
    for l in 0..depth {
        let last = l + 1 == depth;
        let width = if last {
            n_out
        } else {
            rng.gen_range(spec.hidden.clone())
        };
        let fan_in = prev + if last { skip.len() } else { 0 };
        let w = DMatrix::from_fn(width, fan_in, |_, _| {
            rng.gen_range(-spec.weight..spec.weight)
        });
        let b = DVector::from_fn(width, |_, _| rng.gen_range(-spec.bias..spec.bias));
        let act = if last {
            if rng.gen_bool(spec.output_relu) {
                Activation::Relu
            } else {
                Activation::Identity
            }
        } else if rng.gen_bool(0.8) {
            Activation::Relu
        } else {
            Activation::LeakyRelu(spec.leaky_slope)
        };
        layers.push(Dense::new(w, b, act).unwrap());
        prev = width;
    }
    Mlp::from_layers(n_in, layers, skip).unwrap()
}
