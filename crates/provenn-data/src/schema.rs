use serde::{Deserialize, Serialize};

/// What kind of values a feature takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FeatureKind {
    /// A real value.
    Continuous,
    /// 0 or 1 (in raw units).
    Binary,
    /// One indicator of a one-hot group: 1 when the categorical feature `group` equals
    /// `category`.
    OneHot {
        /// Name of the categorical feature.
        group: String,
        /// The category this column indicates.
        category: String,
    },
}

/// One input feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Name, as in the source file.
    pub name: String,
    /// Kind.
    pub kind: FeatureKind,
    /// Smallest raw value in the data (before scaling).
    pub raw_min: f64,
    /// Largest raw value in the data (before scaling).
    pub raw_max: f64,
}

/// A categorical feature encoded as indicator columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHotGroup {
    /// Name of the categorical feature.
    pub name: String,
    /// `(column index, category)` of each indicator.
    pub columns: Vec<(usize, String)>,
    /// The category encoded by all indicators being 0 (drop-first encoding), if any.
    pub dropped: Option<String>,
}

/// Names and kinds of a dataset's inputs and outputs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// Input features, in column order.
    pub features: Vec<Feature>,
    /// One-hot groups.
    pub groups: Vec<OneHotGroup>,
    /// Output names (class names for classification, target names for regression).
    pub target_names: Vec<String>,
}

impl Schema {
    /// Column index of a feature by exact name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Index of an output by exact name.
    pub fn target_index(&self, name: &str) -> Option<usize> {
        self.target_names.iter().position(|t| t == name)
    }

    /// The one-hot group of a categorical feature.
    pub fn group(&self, name: &str) -> Option<&OneHotGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Number of input columns.
    pub fn n_features(&self) -> usize {
        self.features.len()
    }
}
