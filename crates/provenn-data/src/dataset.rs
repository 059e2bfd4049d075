use nalgebra::DMatrix;

use crate::{DataError, MinMaxScaler, Schema};

/// Targets of a dataset, one entry per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Real-valued targets, one column per output.
    Regression(DMatrix<f64>),
    /// A class index per row.
    Classes {
        /// Class of each row, `< n_classes`.
        labels: Vec<usize>,
        /// Number of classes.
        n_classes: usize,
    },
    /// Several binary labels per row (multi-hot, entries 0 or 1).
    MultiLabel(DMatrix<f64>),
}

impl Targets {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Targets::Regression(m) | Targets::MultiLabel(m) => m.nrows(),
            Targets::Classes { labels, .. } => labels.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of network outputs the targets call for.
    pub fn n_outputs(&self) -> usize {
        match self {
            Targets::Regression(m) | Targets::MultiLabel(m) => m.ncols(),
            Targets::Classes { n_classes, .. } => *n_classes,
        }
    }

    /// Targets as a matrix (one-hot rows for classes).
    pub fn to_matrix(&self) -> DMatrix<f64> {
        match self {
            Targets::Regression(m) | Targets::MultiLabel(m) => m.clone(),
            Targets::Classes { labels, n_classes } => {
                DMatrix::from_fn(labels.len(), *n_classes, |i, k| {
                    f64::from(u8::from(labels[i] == k))
                })
            }
        }
    }

    /// Class labels, if these are class targets.
    pub fn labels(&self) -> Option<&[usize]> {
        match self {
            Targets::Classes { labels, .. } => Some(labels),
            _ => None,
        }
    }

    /// The rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Targets {
        match self {
            Targets::Regression(m) => Targets::Regression(m.select_rows(idx)),
            Targets::MultiLabel(m) => Targets::MultiLabel(m.select_rows(idx)),
            Targets::Classes { labels, n_classes } => Targets::Classes {
                labels: idx.iter().map(|&i| labels[i]).collect(),
                n_classes: *n_classes,
            },
        }
    }
}

/// A dataset: features (one row per sample), targets, schema and the scaling applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Name (as in the catalogue).
    pub name: String,
    /// Features; scaled to `[0, 1]` when `scaler` is set.
    pub x: DMatrix<f64>,
    /// Targets.
    pub targets: Targets,
    /// Names, kinds and raw ranges.
    pub schema: Schema,
    /// The raw → scaled transform applied to `x`, if any.
    pub scaler: Option<MinMaxScaler>,
    /// Provenance remarks (e.g. "synthetic stand-in"), shown wherever the data is reported.
    pub notes: Vec<String>,
}

impl Dataset {
    /// Checks that shapes agree.
    pub fn new(
        name: impl Into<String>,
        x: DMatrix<f64>,
        targets: Targets,
        schema: Schema,
    ) -> Result<Self, DataError> {
        let name = name.into();
        if x.nrows() != targets.len() {
            return Err(DataError::Invalid(format!(
                "{name}: {} feature rows but {} target rows",
                x.nrows(),
                targets.len()
            )));
        }
        if x.ncols() != schema.features.len() {
            return Err(DataError::Invalid(format!(
                "{name}: {} columns but {} schema features",
                x.ncols(),
                schema.features.len()
            )));
        }
        if let Targets::Classes { labels, n_classes } = &targets {
            if let Some(bad) = labels.iter().find(|&&l| l >= *n_classes) {
                return Err(DataError::Invalid(format!(
                    "{name}: label {bad} with only {n_classes} classes"
                )));
            }
        }
        Ok(Dataset {
            name,
            x,
            targets,
            schema,
            scaler: None,
            notes: Vec::new(),
        })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.x.nrows()
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// Scales the features to `[0, 1]` with `scaler`, recording it. The schema keeps the raw
    /// ranges. Fails if the data is already scaled.
    pub fn apply_scaler(&mut self, scaler: MinMaxScaler) -> Result<(), DataError> {
        if self.scaler.is_some() {
            return Err(DataError::Invalid(format!(
                "{} is already scaled",
                self.name
            )));
        }
        if scaler.len() != self.n_features() {
            return Err(DataError::Invalid(format!(
                "scaler has {} features, data {}",
                scaler.len(),
                self.n_features()
            )));
        }
        scaler.transform(&mut self.x);
        self.scaler = Some(scaler);
        Ok(())
    }

    /// Min–max scales every feature over its range in this data.
    pub fn min_max_scale(&mut self) -> Result<(), DataError> {
        let s = MinMaxScaler::fit(&self.x);
        self.apply_scaler(s)
    }

    /// Raw (unscaled) value of feature `j` in row `i`.
    pub fn raw(&self, i: usize, j: usize) -> f64 {
        match &self.scaler {
            Some(s) => s.to_raw(j, self.x[(i, j)]),
            None => self.x[(i, j)],
        }
    }

    /// The rows `idx`, in that order, sharing schema and scaler.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            x: self.x.select_rows(idx),
            targets: self.targets.select(idx),
            schema: self.schema.clone(),
            scaler: self.scaler.clone(),
            notes: self.notes.clone(),
        }
    }
}
