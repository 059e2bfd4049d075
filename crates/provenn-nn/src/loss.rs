//! Loss functions. Each reports the *sum* over its terms and the gradient of that sum, plus the
//! normaliser that turns the sum into the mean the loss is defined as; this lets large batches be
//! split across threads and summed exactly once.
use nalgebra::DMatrix;

use crate::activation::sigmoid;

/// A differentiable loss between predictions and targets (one row per sample).
pub trait Loss: Sync {
    /// Sum of the per-term losses and its gradient w.r.t. `pred`.
    fn sum_and_gradient(&self, pred: &DMatrix<f64>, target: &DMatrix<f64>) -> (f64, DMatrix<f64>);
    /// Divisor that turns the sum into the loss's mean.
    fn normaliser(&self, rows: usize, cols: usize) -> f64;
    /// The (mean) loss value.
    fn value(&self, pred: &DMatrix<f64>, target: &DMatrix<f64>) -> f64 {
        self.sum_and_gradient(pred, target).0 / self.normaliser(pred.nrows(), pred.ncols())
    }
}

/// Mean squared error over all entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mse;

impl Loss for Mse {
    fn sum_and_gradient(&self, pred: &DMatrix<f64>, target: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        let diff = pred - target;
        (diff.norm_squared(), diff * 2.0)
    }
    fn normaliser(&self, rows: usize, cols: usize) -> f64 {
        (rows * cols).max(1) as f64
    }
}

/// Binary cross-entropy on logits, independently per output (multi-label), averaged over all
/// entries. Targets are in `[0, 1]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BceWithLogits;

impl Loss for BceWithLogits {
    fn sum_and_gradient(&self, pred: &DMatrix<f64>, target: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        let mut total = 0.0;
        let grad = pred.zip_map(target, |z, t| {
            // max(z,0) − z·t + log(1 + e^{−|z|}) is the overflow-free form.
            total += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
            sigmoid(z) - t
        });
        (total, grad)
    }
    fn normaliser(&self, rows: usize, cols: usize) -> f64 {
        (rows * cols).max(1) as f64
    }
}

/// Softmax cross-entropy on logits, averaged over samples. Targets are probability rows
/// (one-hot for hard labels).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftmaxCrossEntropy;

impl Loss for SoftmaxCrossEntropy {
    fn sum_and_gradient(&self, pred: &DMatrix<f64>, target: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        let mut total = 0.0;
        let mut grad = DMatrix::zeros(pred.nrows(), pred.ncols());
        for i in 0..pred.nrows() {
            let row = pred.row(i);
            let m = row.max();
            let sum_exp: f64 = row.iter().map(|z| (z - m).exp()).sum();
            let lse = m + sum_exp.ln();
            let t_sum: f64 = target.row(i).sum();
            for k in 0..pred.ncols() {
                let t = target[(i, k)];
                total += t * (lse - pred[(i, k)]);
                grad[(i, k)] = ((pred[(i, k)] - lse).exp()) * t_sum - t;
            }
        }
        (total, grad)
    }
    fn normaliser(&self, rows: usize, _cols: usize) -> f64 {
        rows.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_matches_naive_formula_on_moderate_logits() {
        let z = DMatrix::from_row_slice(1, 3, &[-2.0, 0.3, 4.0]);
        let t = DMatrix::from_row_slice(1, 3, &[0.0, 1.0, 1.0]);
        let naive: f64 = z
            .iter()
            .zip(t.iter())
            .map(|(&z, &t): (&f64, &f64)| {
                let p: f64 = 1.0 / (1.0 + (-z).exp());
                -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 3.0;
        assert!((BceWithLogits.value(&z, &t) - naive).abs() < 1e-12);
    }

    #[test]
    fn softmax_ce_of_uniform_logits_is_log_k() {
        let z = DMatrix::from_row_slice(2, 4, &[1.0; 8]);
        let t = DMatrix::from_row_slice(2, 4, &[1., 0., 0., 0., 0., 0., 1., 0.]);
        assert!((SoftmaxCrossEntropy.value(&z, &t) - 4f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn bce_is_finite_for_huge_logits() {
        let z = DMatrix::from_row_slice(1, 2, &[1e4, -1e4]);
        let t = DMatrix::from_row_slice(1, 2, &[0.0, 1.0]);
        let v = BceWithLogits.value(&z, &t);
        assert!((v - 1e4).abs() < 1e-6, "{v}");
    }
}
