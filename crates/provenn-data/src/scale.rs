use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// Per-feature min–max scaling to `[0, 1]`: `s = (raw − min) / (max − min)`.
///
/// The inverse map is the affine `raw = min + (max − min)·s` with `min` and `max` stored as
/// the exact `f64` values seen in the data, so a constraint in raw units can be rewritten in
/// scaled units exactly (in rational arithmetic) by consumers. A constant feature
/// (`max == min`) maps to 0 and its inverse is the constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinMaxScaler {
    /// Per-feature raw minimum.
    pub min: Vec<f64>,
    /// Per-feature raw maximum.
    pub max: Vec<f64>,
}

impl MinMaxScaler {
    /// Fits the per-column range of `x` (rows are samples). Non-finite values are ignored.
    pub fn fit(x: &DMatrix<f64>) -> Self {
        let (mut min, mut max) = (Vec::new(), Vec::new());
        for c in x.column_iter() {
            let finite = c.iter().copied().filter(|v| v.is_finite());
            let lo = finite.clone().fold(f64::INFINITY, f64::min);
            let hi = finite.fold(f64::NEG_INFINITY, f64::max);
            min.push(if lo.is_finite() { lo } else { 0.0 });
            max.push(if hi.is_finite() { hi } else { 0.0 });
        }
        MinMaxScaler { min, max }
    }

    /// Fixed ranges (e.g. pixels in `[0, 255]`).
    pub fn from_ranges(min: Vec<f64>, max: Vec<f64>) -> Self {
        assert_eq!(min.len(), max.len(), "one min and one max per feature");
        MinMaxScaler { min, max }
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.min.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.min.is_empty()
    }

    /// `max − min` of feature `j`.
    pub fn range(&self, j: usize) -> f64 {
        self.max[j] - self.min[j]
    }

    /// Raw value → scaled value for feature `j`.
    pub fn to_scaled(&self, j: usize, raw: f64) -> f64 {
        let r = self.range(j);
        if r == 0.0 {
            0.0
        } else {
            (raw - self.min[j]) / r
        }
    }

    /// Scaled value → raw value for feature `j`.
    pub fn to_raw(&self, j: usize, scaled: f64) -> f64 {
        self.min[j] + self.range(j) * scaled
    }

    /// Scales every column of `x` in place.
    pub fn transform(&self, x: &mut DMatrix<f64>) {
        for (j, mut c) in x.column_iter_mut().enumerate() {
            for v in c.iter_mut() {
                *v = self.to_scaled(j, *v);
            }
        }
    }

    /// Inverse of [`transform`](Self::transform).
    pub fn inverse_transform(&self, x: &mut DMatrix<f64>) {
        for (j, mut c) in x.column_iter_mut().enumerate() {
            for v in c.iter_mut() {
                *v = self.to_raw(j, *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_transform_maps_to_unit_interval() {
        let mut x = DMatrix::from_row_slice(3, 2, &[1.0, 5.0, 3.0, 5.0, 2.0, 5.0]);
        let s = MinMaxScaler::fit(&x);
        s.transform(&mut x);
        assert_eq!(x.column(0).as_slice(), &[0.0, 1.0, 0.5]);
        assert_eq!(x.column(1).as_slice(), &[0.0, 0.0, 0.0]);
        assert_eq!(s.to_raw(0, 0.5), 2.0);
        assert_eq!(s.to_raw(1, 0.0), 5.0);
    }
}
