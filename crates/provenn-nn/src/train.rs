//! A seeded mini-batch training loop with per-epoch callbacks.
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{loss::Loss, optim::Optimizer, Mlp, NnError};

/// Settings of [`fit`], validated at construction.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    epochs: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
}

impl TrainConfig {
    /// `epochs ≥ 1`, `batch_size ≥ 1`; shuffling on, seeded by `seed`.
    pub fn new(epochs: usize, batch_size: usize, seed: u64) -> Result<Self, NnError> {
        if epochs == 0 || batch_size == 0 {
            return Err(NnError::InvalidConfig(format!(
                "epochs and batch size must be ≥ 1 (got {epochs}, {batch_size})"
            )));
        }
        Ok(TrainConfig {
            epochs,
            batch_size,
            seed,
            shuffle: true,
        })
    }
    /// Turns per-epoch shuffling on or off.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// Number of epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// Mini-batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Mean of the mini-batch losses (weighted by batch size).
    pub train_loss: f64,
    /// Time since training started.
    pub elapsed: Duration,
}

/// A callback's verdict after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// The epochs run.
#[derive(Debug, Clone, Default)]
pub struct TrainHistory {
    /// One report per epoch run.
    pub epochs: Vec<EpochReport>,
    /// Whether a callback stopped training before the last epoch.
    pub stopped_early: bool,
}

/// Trains `net` on `(x, y)` (one row per sample) by mini-batch gradient descent.
///
/// Batches are drawn from a permutation of the rows, reshuffled every epoch by a
/// `ChaCha8` RNG seeded from the config, so a run is reproducible from its seed.
/// `on_epoch` sees every epoch's report and the current network and may stop training.
pub fn fit(
    net: &mut Mlp,
    optimizer: &mut dyn Optimizer,
    loss: &dyn Loss,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochReport, &Mlp) -> Control,
) -> Result<TrainHistory, NnError> {
    if x.nrows() != y.nrows() {
        return Err(NnError::shape("target rows", x.nrows(), y.nrows()));
    }
    if x.nrows() == 0 {
        return Err(NnError::InvalidConfig("no training rows".into()));
    }
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    let mut history = TrainHistory::default();
    for epoch in 0..config.epochs {
        if config.shuffle {
            order.shuffle(&mut rng);
        }
        let mut total = 0.0;
        for batch in order.chunks(config.batch_size) {
            let (xb, yb) = if batch.len() == x.nrows() && !config.shuffle {
                (x.clone(), y.clone())
            } else {
                (x.select_rows(batch), y.select_rows(batch))
            };
            let (l, grads) = net.loss_gradient(&xb, &yb, loss)?;
            optimizer.step(net, &grads);
            total += l * batch.len() as f64;
        }
        let report = EpochReport {
            epoch,
            train_loss: total / x.nrows() as f64,
            elapsed: start.elapsed(),
        };
        let verdict = on_epoch(&report, net);
        history.epochs.push(report);
        if verdict == Control::Stop {
            history.stopped_early = epoch + 1 < config.epochs;
            break;
        }
    }
    Ok(history)
}

/// Early stopping on a validation score (lower is better) that remembers the best network.
///
/// ```
/// use provenn_nn::train::{Control, EarlyStopping};
/// # use provenn_nn::{MlpBuilder, Activation};
/// # let net = MlpBuilder::new(1).output(1, Activation::Identity).build().unwrap();
/// let mut stop = EarlyStopping::new(2);
/// assert_eq!(stop.observe(1.0, &net), Control::Continue);
/// assert_eq!(stop.observe(2.0, &net), Control::Continue);
/// assert_eq!(stop.observe(3.0, &net), Control::Stop);
/// assert_eq!(stop.best_score(), Some(1.0));
/// ```
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    since_best: usize,
    best: Option<(f64, Mlp)>,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement.
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            since_best: 0,
            best: None,
        }
    }
    /// Records a score; returns whether to continue.
    pub fn observe(&mut self, score: f64, net: &Mlp) -> Control {
        let improved = match &self.best {
            None => true,
            Some((b, _)) => score < *b,
        };
        if improved && !score.is_nan() {
            self.best = Some((score, net.clone()));
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        if self.since_best >= self.patience {
            Control::Stop
        } else {
            Control::Continue
        }
    }
    /// Best score seen.
    pub fn best_score(&self) -> Option<f64> {
        self.best.as_ref().map(|(s, _)| *s)
    }
    /// The network at the best score.
    pub fn into_best(self) -> Option<Mlp> {
        self.best.map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Mse;
    use crate::optim::{Adam, AdamParams};
    use crate::{Activation, MlpBuilder};

    #[test]
    fn fit_learns_a_linear_map_and_is_reproducible() {
        let x = DMatrix::from_fn(64, 2, |i, j| ((i * 7 + j * 3) % 11) as f64 / 11.0);
        let y = DMatrix::from_fn(64, 1, |i, _| 2.0 * x[(i, 0)] - x[(i, 1)] + 0.5);
        let run = || {
            let mut net = MlpBuilder::new(2)
                .output(1, Activation::Identity)
                .seed(1)
                .build()
                .unwrap();
            let mut opt = Adam::new(AdamParams {
                learning_rate: 0.05,
                ..Default::default()
            })
            .unwrap();
            let cfg = TrainConfig::new(300, 16, 9).unwrap();
            let h = fit(&mut net, &mut opt, &Mse, &x, &y, &cfg, &mut |_, _| {
                Control::Continue
            })
            .unwrap();
            (net, h)
        };
        let (a, ha) = run();
        let (b, _) = run();
        assert_eq!(a, b, "same seed, same network");
        let last = ha.epochs.last().unwrap().train_loss;
        assert!(last < 1e-4, "loss {last}");
        assert!(ha.epochs[0].train_loss > 10.0 * last);
    }

    #[test]
    fn callback_can_stop() {
        let x = DMatrix::from_element(4, 1, 1.0);
        let y = DMatrix::from_element(4, 1, 1.0);
        let mut net = MlpBuilder::new(1)
            .output(1, Activation::Identity)
            .build()
            .unwrap();
        let mut opt = Adam::new(AdamParams::default()).unwrap();
        let cfg = TrainConfig::new(10, 2, 0).unwrap();
        let h = fit(&mut net, &mut opt, &Mse, &x, &y, &cfg, &mut |r, _| {
            if r.epoch == 2 {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .unwrap();
        assert_eq!(h.epochs.len(), 3);
        assert!(h.stopped_early);
    }
}
