//! SaDe (Goyal et al., ECML PKDD 2022): a linear model (one score per class, or per target)
//! that satisfies the domain constraint for every input, learned by one MaxSMT problem per
//! mini-batch.
//!
//! Per batch (sequential, as the reference code): the gradient of the loss on the *whole*
//! training set; a MaxSMT step inside the gradient-sign box of half-width `max_step` (α) whose
//! hard constraints are the domain constraint and whose soft constraints fit the batch with
//! each margin; on failure the gradient direction is flipped for the next batch (the paper's
//! restart). The iterate with the lowest training loss is returned (the paper's
//! `argmin_w L(D, w)`) — for more than two classes the one with the highest training accuracy,
//! ties by loss, as the reference's multi-class learner (one-vs-rest BCE's minimum can push
//! every score negative and leave the arg-max near the majority class) — certified
//! independently by provenn-milp. The domain constraint is
//! exact here: the model's inputs are the raw features, so the ∀ over the input box is
//! eliminated exactly (conjunctions) by provenn-maxsmt.
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use provenn_data::split::k_fold;
use provenn_data::{Dataset, Targets as DataTargets};
use provenn_dsl::ir::Constraint;
use provenn_maxsmt::{
    EliminationOptions, LastLayer, LastLayerConstraint, LastLayerUpdate, Limits, PmRes,
    UpdateMethod, WeightBox,
};
use provenn_nn::loss::{BceWithLogits, Loss, Mse};
use provenn_nn::{Activation, Mlp, MlpBuilder};

pub use crate::last_layer::Guarantee;
use crate::last_layer::{
    certify, initial_layer, set_theta, soft_targets, theta_gradient, theta_of, validate_common,
};
use crate::TrainError;

/// Hyper-parameters of [`Sade`], validated by [`SadeParams::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct SadeParams {
    /// Epochs (paper: 10).
    pub epochs: usize,
    /// Mini-batch size (paper: 5).
    pub batch_size: usize,
    /// Half-width α of the gradient-sign box (paper's grid: 0.5, 1, 2).
    pub max_step: f64,
    /// Classification margins (paper's grid: [0,1], [0,1,2], [1,2]).
    pub margins: Vec<f64>,
    /// Regression tolerance levels, times `max |y|` of the batch.
    pub tolerances: Vec<f64>,
    /// Weight limit (paper: 100).
    pub weight_limit: f64,
    /// Box of the initial satisfying weights.
    pub initial_box: (f64, f64),
    /// How each step is solved.
    pub update: UpdateMethod,
    /// Time limit of one step (paper: 5 s); a timeout is a failed step.
    pub step_time_limit: Duration,
    /// Time limit of the final certification.
    pub certify_time_limit: Duration,
}

impl Default for SadeParams {
    fn default() -> Self {
        SadeParams {
            epochs: 10,
            batch_size: 5,
            max_step: 1.0,
            margins: vec![0.0, 1.0, 2.0],
            tolerances: vec![0.1],
            weight_limit: 100.0,
            initial_box: (-1.0, 1.0),
            update: UpdateMethod::Milp(EliminationOptions::default()),
            step_time_limit: Duration::from_secs(5),
            certify_time_limit: Duration::from_secs(60),
        }
    }
}

/// A validated [`SadeParams`].
#[derive(Debug, Clone)]
pub struct Sade {
    p: SadeParams,
}

impl SadeParams {
    /// Validates the parameters.
    ///
    /// # Errors
    /// Zero sizes, non-positive step or limit, an empty initial box, negative margins.
    pub fn build(self) -> Result<Sade, TrainError> {
        let bad = |m: &str| Err(TrainError::InvalidParams(m.into()));
        if self.epochs == 0 || self.batch_size == 0 {
            return bad("epochs and batch size must be ≥ 1");
        }
        let levels: Vec<f64> = self
            .margins
            .iter()
            .chain(&self.tolerances)
            .copied()
            .collect();
        validate_common(
            self.max_step,
            self.weight_limit,
            self.initial_box,
            &levels,
            &[self.step_time_limit, self.certify_time_limit],
        )?;
        Ok(Sade { p: self })
    }
}

/// Counters of one SaDe run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SadeStats {
    /// MaxSMT steps attempted.
    pub steps: usize,
    /// Steps that returned new weights.
    pub accepted: usize,
    /// Training loss of the returned iterate.
    pub best_loss: f64,
    /// Training accuracy (arg-max) of the returned iterate; `None` for regression.
    pub best_accuracy: Option<f64>,
    /// Training time, certification excluded.
    pub train_time: Duration,
    /// Certification time.
    pub certify_time: Duration,
}

/// A trained SaDe model.
#[derive(Debug, Clone)]
pub struct FittedSade {
    /// The linear model as a one-layer network (scores/logits per output).
    pub net: Mlp,
    /// The independent certificate.
    pub guarantee: Guarantee,
    /// Counters.
    pub stats: SadeStats,
}

impl Sade {
    /// Trains on `train` under `constraint` (over the scaled inputs and the model's outputs).
    ///
    /// # Errors
    /// A constraint outside the linear-model fragment; no satisfying initial weights.
    pub fn fit(&self, train: &Dataset, constraint: &Constraint) -> Result<FittedSade, TrainError> {
        let p = &self.p;
        let start = Instant::now();
        let (d, n_out) = (train.n_features(), train.targets.n_outputs());
        let mut net = MlpBuilder::new(d)
            .output(n_out, Activation::Identity)
            .build()?;
        let layer = LastLayer {
            n_features: d,
            n_outputs: n_out,
        };
        let all: Vec<usize> = (0..d).collect();
        let llc = LastLayerConstraint::new(layer, constraint, &[], &all)?;
        let (loss, regression): (&dyn Loss, bool) = match &train.targets {
            DataTargets::Regression(_) => (&Mse, true),
            _ => (&BceWithLogits, false),
        };
        let y = train.targets.to_matrix();
        let limits = Limits {
            time_limit: Some(p.step_time_limit),
            cancel: None,
            node_limit: None,
        };
        set_theta(
            &mut net,
            &initial_layer(&llc, p.initial_box, p.update, &limits)?,
        )?;
        let mut stats = SadeStats::default();
        // Iterates are ranked by (−accuracy, loss) for multi-class, by loss otherwise.
        let multi_class =
            matches!(&train.targets, DataTargets::Classes { n_classes, .. } if *n_classes > 2);
        let rank = |net: &Mlp, l: f64| -> Result<(f64, f64), TrainError> {
            Ok(if multi_class {
                (-train_accuracy(net, train)?, l)
            } else {
                (0.0, l)
            })
        };
        let (mut l, mut grads) = net.loss_gradient(&train.x, &y, loss)?;
        let mut best = (rank(&net, l)?, net.clone());
        let mut direction = 1.0;
        for _ in 0..p.epochs {
            for start_row in (0..train.n_rows()).step_by(p.batch_size) {
                let rows: Vec<usize> =
                    (start_row..(start_row + p.batch_size).min(train.n_rows())).collect();
                let g: Vec<f64> = theta_gradient(&grads.layers[0])
                    .iter()
                    .map(|v| v * direction)
                    .collect();
                let features: Vec<Vec<f64>> = rows
                    .iter()
                    .map(|&i| train.x.row(i).iter().copied().collect())
                    .collect();
                let yb = DMatrix::from_fn(rows.len(), n_out, |i, k| y[(rows[i], k)]);
                let soft = soft_targets(&yb, regression, &p.margins, &p.tolerances);
                let theta = theta_of(&net);
                let wb = WeightBox::gradient_orthant(&theta, &g, p.max_step, p.weight_limit)?;
                stats.steps += 1;
                let out = LastLayerUpdate::new(&llc, wb, &features, &soft)?
                    .solve(p.update, &PmRes, &limits)?;
                match (out.theta_f64, out.f64_verified) {
                    (Some(t), true) => {
                        stats.accepted += 1;
                        set_theta(&mut net, &t)?;
                        (l, grads) = net.loss_gradient(&train.x, &y, loss)?;
                        let r = rank(&net, l)?;
                        if r < best.0 {
                            best = (r, net.clone());
                        }
                    }
                    // Unsat or timeout: the paper's restart reverses the search direction.
                    _ => direction = -direction,
                }
            }
        }
        stats.best_loss = best.0 .1;
        stats.best_accuracy = match &train.targets {
            DataTargets::Regression(_) => None,
            _ => Some(train_accuracy(&best.1, train)?),
        };
        stats.train_time = start.elapsed();
        let t0 = Instant::now();
        let guarantee = certify(&best.1, constraint, p.certify_time_limit)?;
        stats.certify_time = t0.elapsed();
        Ok(FittedSade {
            net: best.1,
            guarantee,
            stats,
        })
    }
}

/// Arg-max accuracy of `net` on `data`'s class labels (multi-label: every output's sign right).
fn train_accuracy(net: &Mlp, data: &Dataset) -> Result<f64, TrainError> {
    let out = net.forward_batch(&data.x)?;
    let y = data.targets.to_matrix();
    let n = out.nrows().max(1) as f64;
    let correct = (0..out.nrows())
        .filter(|&i| match &data.targets {
            DataTargets::Classes { labels, .. } => out.row(i).transpose().argmax().0 == labels[i],
            _ => (0..out.ncols()).all(|k| (out[(i, k)] > 0.0) == (y[(i, k)] > 0.5)),
        })
        .count();
    Ok(correct as f64 / n)
}

/// One hyper-parameter setting tried by [`select_sade`].
#[derive(Debug, Clone, PartialEq)]
pub struct SadeTrial {
    /// Half-width α of the gradient box.
    pub max_step: f64,
    /// Margins (classification) or tolerances (regression).
    pub levels: Vec<f64>,
    /// Loss on the held-out inner folds, averaged over the folds.
    pub held_out_loss: f64,
}

/// SaDe's inner cross-validation (the reference's `CrossValidation*.py`): every pair of a
/// maximal step in `max_steps` and a level set in `level_sets` (margins for classification,
/// tolerances for regression) is trained on `inner_folds − 1` folds and scored by its loss on
/// the held-out fold; the pair with the lowest mean held-out loss (first in grid order on ties)
/// is returned in `base`, with every trial.
///
/// # Errors
/// An empty grid, fewer than 2 folds, and [`Sade::fit`]'s errors.
pub fn select_sade(
    base: &SadeParams,
    max_steps: &[f64],
    level_sets: &[Vec<f64>],
    train: &Dataset,
    constraint: &Constraint,
    inner_folds: usize,
    seed: u64,
) -> Result<(SadeParams, Vec<SadeTrial>), TrainError> {
    if max_steps.is_empty() || level_sets.is_empty() || inner_folds < 2 {
        return Err(TrainError::InvalidParams(
            "SaDe selection needs non-empty grids and ≥ 2 folds".into(),
        ));
    }
    let regression = matches!(train.targets, DataTargets::Regression(_));
    let loss: &dyn Loss = if regression { &Mse } else { &BceWithLogits };
    let folds = k_fold(train.n_rows(), inner_folds, train.targets.labels(), seed)?;
    let mut trials = Vec::new();
    let mut best: Option<(f64, SadeParams)> = None;
    for &max_step in max_steps {
        for levels in level_sets {
            let mut params = SadeParams {
                max_step,
                ..base.clone()
            };
            if regression {
                params.tolerances = levels.clone();
            } else {
                params.margins = levels.clone();
            }
            let trainer = params.clone().build()?;
            let mut total = 0.0;
            for fold in &folds {
                let fitted = trainer.fit(&train.select(&fold.train), constraint)?;
                let held = train.select(&fold.test);
                let pred = fitted.net.forward_batch(&held.x)?;
                total += loss.value(&pred, &held.targets.to_matrix());
            }
            let held_out_loss = total / folds.len() as f64;
            trials.push(SadeTrial {
                max_step,
                levels: levels.clone(),
                held_out_loss,
            });
            if best.as_ref().is_none_or(|(l, _)| held_out_loss < *l) {
                best = Some((held_out_loss, params));
            }
        }
    }
    let (_, params) = best.expect("non-empty grids");
    Ok((params, trials))
}
