//! What SaDe and DeepSaDe share: the solver-controlled last layer in provenn-maxsmt's
//! parameter layout, the batch's soft constraints, and the final certificate.
use std::time::Duration;

use nalgebra::{DMatrix, DVector};
use provenn_dsl::ir::Constraint;
use provenn_maxsmt::Targets as SoftTargets;
use provenn_milp::{Certificate, CertifyOptions, ConstraintCertifier};
use provenn_nn::{LayerGradient, Mlp};

use provenn_maxsmt::{
    LastLayerConstraint, LastLayerUpdate, Limits, PmRes, UpdateMethod, WeightBox,
};

use crate::TrainError;

/// Checks the parameters SaDe and DeepSaDe share.
pub(crate) fn validate_common(
    max_step: f64,
    weight_limit: f64,
    initial_box: (f64, f64),
    levels: &[f64],
    time_limits: &[Duration],
) -> Result<(), TrainError> {
    let bad = |m: &str| Err(TrainError::InvalidParams(m.into()));
    let positive = |v: f64| v > 0.0 && v.is_finite();
    if !(positive(max_step) && positive(weight_limit)) {
        return bad("max step and weight limit must be finite and > 0");
    }
    let (lo, hi) = initial_box;
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return bad("the initial box must be finite and non-empty");
    }
    if levels.iter().any(|m| !m.is_finite() || *m < 0.0) {
        return bad("margins and tolerances must be finite and ≥ 0");
    }
    if time_limits.iter().any(Duration::is_zero) {
        return bad("time limits must be > 0");
    }
    Ok(())
}

/// Weights in `initial_box` that satisfy the constraint (verified after rounding to f64).
pub(crate) fn initial_layer(
    llc: &LastLayerConstraint,
    initial_box: (f64, f64),
    update: UpdateMethod,
    limits: &Limits,
) -> Result<Vec<f64>, TrainError> {
    let none = SoftTargets::Classification {
        labels: vec![],
        margins: vec![],
    };
    let n = llc.layer().n_params();
    let wb = WeightBox::uniform(n, initial_box.0, initial_box.1)?;
    let init = LastLayerUpdate::new(llc, wb, &[], &none)?.feasible(update, &PmRes, limits)?;
    match (init.theta_f64, init.f64_verified) {
        (Some(t), true) => Ok(t),
        _ => Err(TrainError::Failed(format!(
            "no weights in {initial_box:?} satisfy the constraint ({:?})",
            init.status
        ))),
    }
}

/// Whether a returned model carries a guarantee.
#[derive(Debug, Clone, PartialEq)]
pub enum Guarantee {
    /// provenn-milp certified the whole network over the whole domain (no input violates by
    /// more than the certifier's tolerance; `margin` is the proven slack).
    Certified {
        /// Proven margin.
        margin: f64,
    },
    /// No certificate: the model must not be called guaranteed.
    NotCertified {
        /// The certifier's answer.
        reason: String,
    },
}

/// The last layer's parameters (per output: bias, then weights).
pub(crate) fn theta_of(net: &Mlp) -> Vec<f64> {
    let last = net.layers().last().expect("an Mlp has layers");
    let (w, b) = (last.weights(), last.bias());
    let mut t = Vec::with_capacity(w.nrows() * (w.ncols() + 1));
    for k in 0..w.nrows() {
        t.push(b[k]);
        t.extend(w.row(k).iter());
    }
    t
}

/// A last-layer gradient in the same layout.
pub(crate) fn theta_gradient(g: &LayerGradient) -> Vec<f64> {
    let mut t = Vec::with_capacity(g.weights.nrows() * (g.weights.ncols() + 1));
    for k in 0..g.weights.nrows() {
        t.push(g.bias[k]);
        t.extend(g.weights.row(k).iter());
    }
    t
}

pub(crate) fn set_theta(net: &mut Mlp, theta: &[f64]) -> Result<(), TrainError> {
    let l = net.layers().len() - 1;
    let (n_out, n_in) = {
        let w = net.layers()[l].weights();
        (w.nrows(), w.ncols())
    };
    let w = DMatrix::from_fn(n_out, n_in, |k, j| theta[k * (n_in + 1) + 1 + j]);
    let b = DVector::from_fn(n_out, |k, _| theta[k * (n_in + 1)]);
    let layer = net.layer_mut(l);
    layer.set_weights(w)?;
    layer.set_bias(b)?;
    Ok(())
}

/// The batch's soft constraints: margins on logits (one-hot / multi-hot targets), or
/// tolerances `m·max_batch |t_k|` around regression targets (as DeepSaDe computes them).
pub(crate) fn soft_targets(
    yb: &DMatrix<f64>,
    regression: bool,
    margins: &[f64],
    tolerances: &[f64],
) -> SoftTargets {
    let rows = |f: &dyn Fn(f64) -> f64| -> Vec<Vec<f64>> {
        (0..yb.nrows())
            .map(|i| yb.row(i).iter().map(|v| f(*v)).collect())
            .collect()
    };
    if regression {
        let maxes: Vec<f64> = (0..yb.ncols()).map(|k| yb.column(k).amax()).collect();
        SoftTargets::Regression {
            targets: rows(&|v| v),
            tolerances: tolerances
                .iter()
                .map(|m| maxes.iter().map(|mx| m * mx).collect())
                .collect(),
        }
    } else {
        SoftTargets::Classification {
            labels: rows(&|v| v)
                .into_iter()
                .map(|r| r.into_iter().map(|v| v > 0.5).collect())
                .collect(),
            margins: margins.to_vec(),
        }
    }
}

/// The independent certificate of a trained model.
pub(crate) fn certify(
    net: &Mlp,
    constraint: &Constraint,
    time_limit: Duration,
) -> Result<Guarantee, TrainError> {
    let certifier = ConstraintCertifier::new(CertifyOptions {
        time_limit: Some(time_limit),
        ..CertifyOptions::default()
    })?;
    Ok(match certifier.certify(net, constraint)?.certificate {
        Certificate::Certified { margin } => Guarantee::Certified { margin },
        Certificate::Violated(w) => Guarantee::NotCertified {
            reason: format!("violated at x = {:?} by {}", w.x, w.violation),
        },
        Certificate::Unknown { reason } => Guarantee::NotCertified { reason },
    })
}
