//! Every named dataset, with the papers' preparation applied.
use crate::usecase::{self, LoanVariant, UseCase};
use crate::{loaders, DataDir, DataError, MinMaxScaler};

/// Options for [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Seed for injection and synthetic generation.
    pub seed: u64,
    /// Whether to inject the papers' constraint violations (UC2, UC3).
    pub inject_violations: bool,
    /// Number of samples for generated datasets (UC4; default 20,000 as in the paper) or the
    /// number of leading rows (UC1 SaDe variant).
    pub n_samples: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            seed: 1,
            inject_violations: true,
            n_samples: None,
        }
    }
}

/// A catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Name for [`load`] and the CLI.
    pub name: &'static str,
    /// What it is and how it is prepared.
    pub description: &'static str,
    /// Files it reads.
    pub files: &'static [&'static str],
}

/// Every dataset [`load`] knows.
pub const CATALOG: &[Entry] = &[
    Entry { name: "iris", description: "UCI Iris, 150 × 4, 3 classes; min-max scaled", files: &["iris.csv"] },
    Entry { name: "wine", description: "UCI Wine, 178 × 13, 3 classes; min-max scaled", files: &["wine.csv"] },
    Entry { name: "sonar", description: "UCI Sonar, 208 × 60, 2 classes; min-max scaled", files: &["sonar.csv"] },
    Entry { name: "digits", description: "UCI digits 8×8, 1,797 × 64, 10 classes; pixels / 16", files: &["digits.csv.gz"] },
    Entry { name: "mnist", description: "MNIST 5k subset, 5,000 × 784, 10 classes; pixels / 255", files: &["mnist_5k.csv.gz"] },
    Entry { name: "expenses", description: "UC1 expenses, 41,417 × 13 → 5 targets; X min-max scaled; income skip feature", files: &["expenses.csv"] },
    Entry { name: "expenses-sade", description: "UC1 SaDe variant: first 1,000 rows of the expenses data", files: &["expenses.csv"] },
    Entry { name: "loan", description: "UC2 DeepSaDe loan, 492 × 13, 2 classes (reject, approve); 40 injected violations", files: &["loan.csv"] },
    Entry { name: "loan-sade", description: "UC2 SaDe loan with Gender, 480 × 14; 35 injected violations", files: &["loan.csv"] },
    Entry { name: "music", description: "UC3 music genre, SYNTHETIC stand-in with the real schema, 793 × 13, 5 classes; 40 injected violations", files: &[] },
    Entry { name: "mnist-sum", description: "UC4 4-digit MNIST sums, 3,136 inputs → 10 multi-hot outputs", files: &["mnist_5k.csv.gz"] },
    Entry { name: "sushi", description: "UC5 sushi preferences, 4,926 × 36 → 16 (4×4 permutation)", files: &["sushi.soc"] },
    Entry { name: "autompg", description: "Auto MPG, 392 × 7 → mpg; min-max scaled", files: &["autompg.csv.gz"] },
    Entry { name: "heart", description: "Cleveland heart disease, 297 × 13 (NA rows dropped), 2 classes; min-max scaled", files: &["heart_disease.tab"] },
];

/// Loads a dataset by catalogue name.
pub fn load(name: &str, dir: &DataDir, opts: &LoadOptions) -> Result<UseCase, DataError> {
    let scaled = |mut d: crate::Dataset| -> Result<UseCase, DataError> {
        d.min_max_scale()?;
        Ok(usecase::plain(d))
    };
    let pixels = |mut d: crate::Dataset, max: f64| -> Result<UseCase, DataError> {
        let n = d.n_features();
        d.apply_scaler(MinMaxScaler::from_ranges(vec![0.0; n], vec![max; n]))?;
        Ok(usecase::plain(d))
    };
    match name {
        "iris" => scaled(loaders::iris(dir)?),
        "wine" => scaled(loaders::wine(dir)?),
        "sonar" => scaled(loaders::sonar(dir)?),
        "digits" => pixels(loaders::digits(dir)?, 16.0),
        "mnist" => pixels(loaders::mnist(dir)?, 255.0),
        "expenses" => usecase::uc1_expenses(dir, opts.n_samples),
        "expenses-sade" => usecase::uc1_expenses(dir, Some(opts.n_samples.unwrap_or(1000))),
        "loan" => usecase::uc2_loan(
            dir,
            LoanVariant::DeepSaDe,
            opts.inject_violations,
            opts.seed,
        ),
        "loan-sade" => usecase::uc2_loan(dir, LoanVariant::SaDe, opts.inject_violations, opts.seed),
        "music" => usecase::uc3_music_synthetic(opts.inject_violations, opts.seed),
        "mnist-sum" => usecase::uc4_mnist_sum(dir, opts.n_samples.unwrap_or(20_000), opts.seed),
        "sushi" => usecase::uc5_sushi(dir),
        "autompg" => scaled(loaders::autompg(dir)?),
        "heart" => scaled(loaders::heart(dir)?),
        _ => Err(DataError::UnknownDataset {
            name: name.to_string(),
            known: CATALOG
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The catalogue entry of `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|e| e.name == name)
}
