//! Constraint metrics used by the SaDe/DeepSaDe papers: constraint accuracy on data, and the
//! Adversity Index AdI(δ) — the fraction of data points with a counterexample in their ℓ∞
//! δ-ball (intersected with the domain) — decided by the MILP certifier, so every counted
//! counterexample is a re-validated witness.

use nalgebra::DVector;
use provenn_bounds::InputBox;
use provenn_dsl::ir::{Assignment, Constraint};
use provenn_nn::Mlp;
use rayon::prelude::*;

use crate::certify::{Certificate, ConstraintCertifier};
use crate::MilpError;

/// Fraction of `points` at which the single-copy constraint holds for the network's prediction.
pub fn constraint_accuracy(
    net: &Mlp,
    c: &Constraint,
    points: &[Vec<f64>],
) -> Result<f64, MilpError> {
    if c.two_copy {
        return Err(MilpError::Unsupported(
            "constraint accuracy is defined for single-copy constraints".into(),
        ));
    }
    if points.is_empty() {
        return Ok(1.0);
    }
    let mut ok = 0usize;
    for x in points {
        let y = net.forward(&DVector::from_row_slice(x))?;
        let a = Assignment {
            x,
            y: y.as_slice(),
            x2: &[],
            y2: &[],
        };
        ok += usize::from(c.holds(&a));
    }
    Ok(ok as f64 / points.len() as f64)
}

/// Result of an AdI computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdversityIndex {
    /// Points examined.
    pub points: usize,
    /// Points with a re-validated counterexample in their ball.
    pub violated: usize,
    /// Points the solver could not decide (counted as neither).
    pub unknown: usize,
}

impl AdversityIndex {
    /// `violated / points`.
    pub fn value(&self) -> f64 {
        if self.points == 0 {
            0.0
        } else {
            self.violated as f64 / self.points as f64
        }
    }
}

/// AdI(δ) of `net` for `c` over `points`. For two-copy constraints both inputs range over the
/// ball. Balls are closed (the reference used open balls; the difference is a null set).
pub fn adversity_index(
    certifier: &ConstraintCertifier,
    net: &Mlp,
    c: &Constraint,
    points: &[Vec<f64>],
    delta: f64,
) -> Result<AdversityIndex, MilpError> {
    if !(delta > 0.0 && delta.is_finite()) {
        return Err(MilpError::InvalidParameter(format!(
            "AdI radius must be positive, got {delta}"
        )));
    }
    let (lo, hi): (Vec<f64>, Vec<f64>) = c.domain.iter().copied().unzip();
    let domain = InputBox::new(lo, hi)?;
    let results: Vec<Result<Certificate, MilpError>> = points
        .par_iter()
        .map(|p| {
            let ball = InputBox::linf_ball(p, delta, Some(&domain))?;
            Ok(certifier.certify_on(net, c, &ball, &ball)?.certificate)
        })
        .collect();
    let mut adi = AdversityIndex {
        points: points.len(),
        violated: 0,
        unknown: 0,
    };
    for r in results {
        match r? {
            Certificate::Violated(_) => adi.violated += 1,
            Certificate::Unknown { .. } => adi.unknown += 1,
            Certificate::Certified { .. } => {}
        }
    }
    Ok(adi)
}
