//! Train/validation/test splits and k-fold cross-validation, optionally stratified, all
//! seeded.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// Row indices of a three-way split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

/// Groups row indices by stratum (all one stratum when `strata` is `None`), each shuffled.
fn shuffled_strata(
    n: usize,
    strata: Option<&[usize]>,
    seed: u64,
) -> Result<Vec<Vec<usize>>, DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut groups: Vec<Vec<usize>> = match strata {
        None => vec![(0..n).collect()],
        Some(s) => {
            if s.len() != n {
                return Err(DataError::Invalid(format!(
                    "{} strata labels for {n} rows",
                    s.len()
                )));
            }
            let k = s.iter().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); k];
            for (i, &c) in s.iter().enumerate() {
                g[c].push(i);
            }
            g.retain(|v| !v.is_empty());
            g
        }
    };
    for g in &mut groups {
        g.shuffle(&mut rng);
    }
    Ok(groups)
}

/// Splits `n` rows into train/validation/test with the given validation and test fractions,
/// stratified by `strata` (class labels) when given: each class is split in the same
/// proportions (rounded per class).
pub fn train_val_test(
    n: usize,
    validation: f64,
    test: f64,
    strata: Option<&[usize]>,
    seed: u64,
) -> Result<Split, DataError> {
    if !(0.0..1.0).contains(&validation) || !(0.0..1.0).contains(&test) || validation + test >= 1.0
    {
        return Err(DataError::Invalid(format!(
            "fractions validation={validation}, test={test} must be ≥ 0 and sum to < 1"
        )));
    }
    let mut s = Split {
        train: Vec::new(),
        validation: Vec::new(),
        test: Vec::new(),
    };
    for g in shuffled_strata(n, strata, seed)? {
        let m = g.len();
        let nt = (test * m as f64).round() as usize;
        let nv = ((validation * m as f64).round() as usize).min(m - nt.min(m));
        s.test.extend_from_slice(&g[..nt.min(m)]);
        s.validation
            .extend_from_slice(&g[nt.min(m)..(nt + nv).min(m)]);
        s.train.extend_from_slice(&g[(nt + nv).min(m)..]);
    }
    s.train.sort_unstable();
    s.validation.sort_unstable();
    s.test.sort_unstable();
    Ok(s)
}

/// One fold of k-fold cross-validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// Rows to train on.
    pub train: Vec<usize>,
    /// Held-out rows.
    pub test: Vec<usize>,
}

/// `k`-fold cross-validation over `n` rows (stratified by `strata` when given): every row is
/// held out exactly once.
pub fn k_fold(
    n: usize,
    k: usize,
    strata: Option<&[usize]>,
    seed: u64,
) -> Result<Vec<Fold>, DataError> {
    if k < 2 || k > n {
        return Err(DataError::Invalid(format!(
            "k-fold needs 2 ≤ k ≤ n, got k={k}, n={n}"
        )));
    }
    let mut assignment = vec![0usize; n];
    let mut next = 0;
    for g in shuffled_strata(n, strata, seed)? {
        for i in g {
            assignment[i] = next % k;
            next += 1;
        }
    }
    Ok((0..k)
        .map(|f| Fold {
            train: (0..n).filter(|&i| assignment[i] != f).collect(),
            test: (0..n).filter(|&i| assignment[i] == f).collect(),
        })
        .collect())
}
