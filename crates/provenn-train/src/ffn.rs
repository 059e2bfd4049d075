//! The unconstrained feed-forward baseline: an MLP trained by Adam on a dataset's targets,
//! with validation-based early stopping. The loss follows the targets: softmax cross-entropy
//! for classes, binary cross-entropy on logits for multi-label, MSE for regression.
use provenn_data::{Dataset, Targets};
use provenn_nn::loss::{BceWithLogits, Loss, Mse, SoftmaxCrossEntropy};
use provenn_nn::optim::{Adam, AdamParams};
use provenn_nn::train::{fit, Control, EarlyStopping, EpochReport, TrainConfig};
use provenn_nn::{Activation, Mlp, MlpBuilder};

use crate::{metrics, TrainError};

/// Hyper-parameters of [`Ffn`], validated by [`FfnParams::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct FfnParams {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Inputs skip-connected into the last layer.
    pub skip_features: Vec<usize>,
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Stop after this many epochs without validation-loss improvement (needs validation data);
    /// the epoch with the lowest validation loss is returned.
    pub patience: Option<usize>,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl Default for FfnParams {
    fn default() -> Self {
        FfnParams {
            hidden: vec![16, 16],
            activation: Activation::Relu,
            skip_features: vec![],
            epochs: 200,
            batch_size: 32,
            learning_rate: 1e-2,
            weight_decay: 0.0,
            patience: Some(30),
            seed: 0,
        }
    }
}

/// A validated [`FfnParams`].
#[derive(Debug, Clone)]
pub struct Ffn {
    p: FfnParams,
}

impl FfnParams {
    /// Validates the parameters.
    pub fn build(self) -> Result<Ffn, TrainError> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(TrainError::InvalidParams(
                "epochs and batch size must be ≥ 1".into(),
            ));
        }
        if self.hidden.contains(&0) {
            return Err(TrainError::InvalidParams(
                "hidden widths must be ≥ 1".into(),
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::InvalidParams(
                "learning rate must be > 0".into(),
            ));
        }
        if self.patience == Some(0) {
            return Err(TrainError::InvalidParams("patience must be ≥ 1".into()));
        }
        Ok(Ffn { p: self })
    }
}

/// A trained model with the loss it was trained on.
#[derive(Debug, Clone)]
pub struct FittedFfn {
    /// The network (outputs are logits for classification).
    pub net: Mlp,
    /// Epochs run.
    pub epochs_run: usize,
    /// Final training loss.
    pub train_loss: f64,
    /// Per-epoch training loss.
    pub loss_curve: Vec<f64>,
}

/// The evaluation a dataset's targets call for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Score {
    /// Classification accuracy.
    Accuracy(f64),
    /// Exact-match accuracy for multi-label targets.
    ExactMatch(f64),
    /// Mean squared error.
    Mse(f64),
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Score::Accuracy(a) => write!(f, "accuracy {a:.4}"),
            Score::ExactMatch(a) => write!(f, "exact-match accuracy {a:.4}"),
            Score::Mse(m) => write!(f, "MSE {m:.4}"),
        }
    }
}

fn loss_for(t: &Targets) -> &'static dyn Loss {
    match t {
        Targets::Classes { .. } => &SoftmaxCrossEntropy,
        Targets::MultiLabel(_) => &BceWithLogits,
        Targets::Regression(_) => &Mse,
    }
}

/// Scores a network on a dataset.
pub fn score(net: &Mlp, d: &Dataset) -> Result<Score, TrainError> {
    let out = net.forward_batch(&d.x)?;
    Ok(match &d.targets {
        Targets::Classes { labels, .. } => Score::Accuracy(metrics::accuracy(&out, labels)),
        Targets::MultiLabel(y) => Score::ExactMatch(metrics::exact_match(&out, y)),
        Targets::Regression(y) => Score::Mse(metrics::mse(&out, y)),
    })
}

impl Ffn {
    /// Trains on `train`, selecting the epoch with the lowest loss on `validation` if given.
    /// `on_epoch` sees each epoch's report (for progress bars).
    pub fn fit(
        &self,
        train: &Dataset,
        validation: Option<&Dataset>,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Result<FittedFfn, TrainError> {
        let p = &self.p;
        let mut b = MlpBuilder::new(train.n_features()).seed(p.seed);
        for &w in &p.hidden {
            b = b.hidden(w, p.activation);
        }
        let mut net = b
            .output(train.targets.n_outputs(), Activation::Identity)
            .skip_features(p.skip_features.clone())
            .build()?;
        let mut opt = Adam::new(AdamParams {
            learning_rate: p.learning_rate,
            weight_decay: p.weight_decay,
            ..Default::default()
        })?;
        let cfg = TrainConfig::new(p.epochs, p.batch_size, p.seed.wrapping_add(1))?;
        let y = train.targets.to_matrix();
        let loss = loss_for(&train.targets);
        let val_y = validation.map(|v| v.targets.to_matrix());
        let mut stopper = validation.map(|_| EarlyStopping::new(p.patience.unwrap_or(usize::MAX)));
        let mut val_err = None;
        // Early stopping watches the validation *loss*: on small validation sets accuracy is
        // too coarse and stops long before the model has converged.
        let history = fit(&mut net, &mut opt, loss, &train.x, &y, &cfg, &mut |r, n| {
            on_epoch(r);
            match (&mut stopper, validation, &val_y) {
                (Some(s), Some(v), Some(vy)) => match n.forward_batch(&v.x) {
                    Ok(out) => s.observe(loss.value(&out, vy), n),
                    Err(e) => {
                        val_err = Some(e);
                        Control::Stop
                    }
                },
                _ => Control::Continue,
            }
        })?;
        if let Some(e) = val_err {
            return Err(e.into());
        }
        if let Some(best) = stopper.and_then(EarlyStopping::into_best) {
            net = best;
        }
        Ok(FittedFfn {
            net,
            epochs_run: history.epochs.len(),
            train_loss: history.epochs.last().map_or(f64::NAN, |e| e.train_loss),
            loss_curve: history.epochs.iter().map(|e| e.train_loss).collect(),
        })
    }
}
