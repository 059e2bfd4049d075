//! Evaluation metrics.
use nalgebra::DMatrix;

/// Index of the largest entry of each row (first on ties).
pub fn argmax_rows(m: &DMatrix<f64>) -> Vec<usize> {
    m.row_iter()
        .map(|r| {
            let mut best = 0;
            for (j, v) in r.iter().enumerate() {
                if *v > r[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Fraction of rows whose arg-max output equals the label.
pub fn accuracy(outputs: &DMatrix<f64>, labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let hits = argmax_rows(outputs)
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    hits as f64 / labels.len() as f64
}

/// Mean squared error over all entries.
pub fn mse(outputs: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
    (outputs - targets).norm_squared() / (targets.len().max(1)) as f64
}

/// Fraction of rows whose thresholded outputs (logit > 0) equal the multi-hot targets exactly.
pub fn exact_match(outputs: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
    let n = outputs.nrows().max(1);
    let hits = (0..outputs.nrows())
        .filter(|&i| {
            outputs
                .row(i)
                .iter()
                .zip(targets.row(i).iter())
                .all(|(o, t)| (*o > 0.0) == (*t > 0.5))
        })
        .count();
    hits as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_argmax_hits() {
        let o = DMatrix::from_row_slice(3, 2, &[0.1, 0.9, 2.0, -1.0, 0.0, 0.0]);
        assert_eq!(accuracy(&o, &[1, 0, 1]), 2.0 / 3.0);
        assert_eq!(argmax_rows(&o), vec![1, 0, 0]);
    }
}
