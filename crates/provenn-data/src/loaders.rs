//! One loader per file of the data directory. Loaders return the data in raw units (no
//! scaling) unless stated; the [`catalog`](crate::catalog) applies the papers' scaling.
use std::collections::BTreeSet;

use nalgebra::DMatrix;

use crate::table::{file_name, is_na, parse_csv, read_text, RawTable};
use crate::{DataDir, DataError, Dataset, Feature, FeatureKind, OneHotGroup, Schema, Targets};

fn continuous(names: &[&str], x: &DMatrix<f64>) -> Vec<Feature> {
    names
        .iter()
        .enumerate()
        .map(|(j, n)| feature(n, FeatureKind::Continuous, x, j))
        .collect()
}

fn feature(name: &str, kind: FeatureKind, x: &DMatrix<f64>, j: usize) -> Feature {
    let c = x.column(j);
    Feature {
        name: name.to_string(),
        kind,
        raw_min: if c.is_empty() { 0.0 } else { c.min() },
        raw_max: if c.is_empty() { 0.0 } else { c.max() },
    }
}

fn read_table(dir: &DataDir, file: &str, header: bool, delim: u8) -> Result<RawTable, DataError> {
    let path = dir.path(file)?;
    parse_csv(&file_name(&path), &read_text(&path)?, header, delim)
}

/// Files in scikit-learn's layout: header `n_rows,n_features,class names...`, then rows of
/// features followed by an integer class.
fn sklearn_style(
    dir: &DataDir,
    file: &str,
    name: &str,
    features: &[&str],
) -> Result<Dataset, DataError> {
    let t = read_table(dir, file, true, b',')?;
    let h = t.header.clone().unwrap_or_default();
    let bad_header = || {
        DataError::parse(
            file,
            1,
            "expected header `n_rows,n_features,class names...`",
        )
    };
    let n: usize = h
        .first()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad_header)?;
    let d: usize = h
        .get(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad_header)?;
    let classes: Vec<String> = h[2..].to_vec();
    if d != features.len() || classes.is_empty() {
        return Err(DataError::parse(
            file,
            1,
            format!(
                "header announces {d} features and {} classes; expected {}",
                classes.len(),
                features.len()
            ),
        ));
    }
    if t.rows.len() != n {
        return Err(DataError::parse(
            file,
            1,
            format!("header announces {n} rows, file has {}", t.rows.len()),
        ));
    }
    t.expect_width(d + 1)?;
    labelled_matrix(&t, name, d, classes, features)
}

/// Rows of `d` numeric features then an integer class in the last column.
fn labelled_matrix(
    t: &RawTable,
    name: &str,
    d: usize,
    classes: Vec<String>,
    features: &[&str],
) -> Result<Dataset, DataError> {
    let n = t.rows.len();
    let mut x = DMatrix::zeros(n, d);
    let mut labels = Vec::with_capacity(n);
    for r in 0..n {
        for c in 0..d {
            x[(r, c)] = t.num(r, c)?;
        }
        labels.push(t.class(r, d, classes.len())?);
    }
    let schema = Schema {
        features: continuous(features, &x),
        groups: vec![],
        target_names: classes.clone(),
    };
    Dataset::new(
        name,
        x,
        Targets::Classes {
            labels,
            n_classes: classes.len(),
        },
        schema,
    )
}

/// UCI Iris (150 × 4, 3 classes).
pub fn iris(dir: &DataDir) -> Result<Dataset, DataError> {
    sklearn_style(
        dir,
        "iris.csv",
        "iris",
        &["sepal_length", "sepal_width", "petal_length", "petal_width"],
    )
}

/// UCI Wine (178 × 13, 3 classes).
pub fn wine(dir: &DataDir) -> Result<Dataset, DataError> {
    sklearn_style(
        dir,
        "wine.csv",
        "wine",
        &[
            "alcohol",
            "malic_acid",
            "ash",
            "alcalinity_of_ash",
            "magnesium",
            "total_phenols",
            "flavanoids",
            "nonflavanoid_phenols",
            "proanthocyanins",
            "color_intensity",
            "hue",
            "od280_od315",
            "proline",
        ],
    )
}

/// UCI Sonar (208 × 60, classes 0/1).
pub fn sonar(dir: &DataDir) -> Result<Dataset, DataError> {
    let t = read_table(dir, "sonar.csv", true, b',')?;
    let h = t.header.clone().unwrap_or_default();
    if h.len() != 61 {
        return Err(DataError::parse(
            "sonar.csv",
            1,
            format!("expected 61 header fields, found {}", h.len()),
        ));
    }
    t.expect_width(61)?;
    let names: Vec<&str> = h[..60].iter().map(String::as_str).collect();
    labelled_matrix(
        &t,
        "sonar",
        60,
        vec!["class_0".into(), "class_1".into()],
        &names,
    )
}

fn pixel_dataset(dir: &DataDir, file: &str, name: &str, side: usize) -> Result<Dataset, DataError> {
    let t = read_table(dir, file, false, b',')?;
    let d = side * side;
    t.expect_width(d + 1)?;
    let names: Vec<String> = (0..d)
        .map(|i| format!("px_{}_{}", i / side, i % side))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    labelled_matrix(&t, name, d, (0..10).map(|c| c.to_string()).collect(), &refs)
}

/// UCI optical digits 8×8 (1,797 × 64, pixels 0–16, 10 classes).
pub fn digits(dir: &DataDir) -> Result<Dataset, DataError> {
    pixel_dataset(dir, "digits.csv.gz", "digits", 8)
}

/// MNIST 5k subset (5,000 × 784, pixels 0–255, 10 classes).
pub fn mnist(dir: &DataDir) -> Result<Dataset, DataError> {
    pixel_dataset(dir, "mnist_5k.csv.gz", "mnist", 28)
}

/// Filipino family income and expenditure as prepared by DeepSaDe (41,417 rows): 13
/// predictors (household head sex coded Male = 1; `Total Household Income` last, index 12) and
/// 5 expense targets, all money in 10,000 PHP; raw units.
pub fn expenses(dir: &DataDir) -> Result<Dataset, DataError> {
    let t = read_table(dir, "expenses.csv", true, b',')?;
    let h = t.header.clone().unwrap_or_default();
    if h.len() != 19 {
        return Err(DataError::parse(
            "expenses.csv",
            1,
            format!(
                "expected 19 columns (index, 13 predictors, 5 targets), found {}",
                h.len()
            ),
        ));
    }
    t.expect_width(19)?;
    let n = t.rows.len();
    let sex = t.col("Household Head Sex")?;
    let mut x = DMatrix::zeros(n, 13);
    let mut y = DMatrix::zeros(n, 5);
    for r in 0..n {
        for c in 0..13 {
            x[(r, c)] = if c + 1 == sex {
                match t.rows[r][sex].as_str() {
                    "Male" => 1.0,
                    "Female" => 0.0,
                    other => {
                        return Err(DataError::parse(
                            "expenses.csv",
                            t.lines[r],
                            format!("Household Head Sex must be Male or Female, found `{other}`"),
                        ))
                    }
                }
            } else {
                t.num(r, c + 1)?
            };
        }
        for k in 0..5 {
            y[(r, k)] = t.num(r, 14 + k)?;
        }
    }
    let mut features = continuous(&h[1..14].iter().map(String::as_str).collect::<Vec<_>>(), &x);
    for f in &mut features {
        if f.name == "Household Head Sex"
            || f.name == "Electricity"
            || f.name == "Agricultural Household indicator"
        {
            f.kind = FeatureKind::Binary;
        }
    }
    let schema = Schema {
        features,
        groups: vec![],
        target_names: h[14..].to_vec(),
    };
    Dataset::new("expenses", x, Targets::Regression(y), schema)
}

/// Kaggle loan prediction, prepared as the papers do: NA rows dropped, numeric columns first
/// (ApplicantIncome, CoapplicantIncome, LoanAmount, Loan_Amount_Term, Credit_History), then
/// drop-first dummies of the categorical columns in file order; target classes
/// `[reject, approve]` (Loan_Status N/Y). With `keep_gender = false` the Gender column is
/// dropped first, as DeepSaDe's `iloc[:, 1:]` does (492 rows × 13); with `true`, SaDe's
/// variant (480 rows × 14). Raw units.
pub fn loan(dir: &DataDir, keep_gender: bool) -> Result<Dataset, DataError> {
    let mut t = read_table(dir, "loan.csv", true, b',')?;
    t.expect_width(12)?;
    let gender = t.col("Gender")?;
    let used: Vec<usize> = (0..12).filter(|&c| keep_gender || c != gender).collect();
    t.drop_na(&used);
    let numeric = [
        "ApplicantIncome",
        "CoapplicantIncome",
        "LoanAmount",
        "Loan_Amount_Term",
        "Credit_History",
    ];
    let mut cat_cols = vec![
        "Married",
        "Dependents",
        "Education",
        "Self_Employed",
        "Property_Area",
    ];
    if keep_gender {
        cat_cols.insert(0, "Gender");
    }
    let n = t.rows.len();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    let mut features = Vec::new();
    let mut groups = Vec::new();
    for name in numeric {
        cols.push(t.numeric(t.col(name)?)?);
        features.push((
            name.to_string(),
            if name == "Credit_History" {
                FeatureKind::Binary
            } else {
                FeatureKind::Continuous
            },
        ));
    }
    for name in cat_cols {
        let enc = t.one_hot(t.col(name)?, true);
        let mut group = OneHotGroup {
            name: name.to_string(),
            columns: vec![],
            dropped: enc.dropped,
        };
        for (cat, col) in enc.categories.into_iter().zip(enc.columns) {
            group.columns.push((features.len(), cat.clone()));
            cols.push(col);
            features.push((
                format!("{name}_{cat}"),
                FeatureKind::OneHot {
                    group: name.to_string(),
                    category: cat,
                },
            ));
        }
        groups.push(group);
    }
    let status = t.col("Loan_Status")?;
    let mut labels = Vec::with_capacity(n);
    for r in 0..n {
        labels.push(match t.rows[r][status].as_str() {
            "Y" => 1,
            "N" => 0,
            other => {
                return Err(DataError::parse(
                    "loan.csv",
                    t.lines[r],
                    format!("Loan_Status must be Y or N, found `{other}`"),
                ))
            }
        });
    }
    let x = DMatrix::from_fn(n, cols.len(), |r, c| cols[c][r]);
    let features = features
        .into_iter()
        .enumerate()
        .map(|(j, (name, kind))| feature(&name, kind, &x, j))
        .collect();
    let schema = Schema {
        features,
        groups,
        target_names: vec!["reject".into(), "approve".into()],
    };
    Dataset::new(
        if keep_gender { "loan-sade" } else { "loan" },
        x,
        Targets::Classes {
            labels,
            n_classes: 2,
        },
        schema,
    )
}

/// Items ranked into the 6×6 input permutation matrix of the sushi task.
pub const SUSHI_INPUT_ITEMS: [usize; 6] = [1, 2, 3, 5, 7, 8];
/// Items ranked into the 4×4 output permutation matrix.
pub const SUSHI_OUTPUT_ITEMS: [usize; 4] = [4, 6, 9, 10];

/// Sushi preferences (PrefLib `.soc`): one row per distinct full ranking of the 10 sushi
/// (4,926). Inputs: the relative order of items {1,2,3,5,7,8} as a 6×6 permutation matrix
/// (entry `a·6 + r` is 1 when item `a` is ranked `r`-th among them); outputs: the relative order
/// of items {4,6,9,10} as a 4×4 permutation matrix (multi-label).
pub fn sushi(dir: &DataDir) -> Result<Dataset, DataError> {
    const F: &str = "sushi.soc";
    let text = read_text(&dir.path(F)?)?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let mut next = |what: &str| {
        lines
            .next()
            .ok_or_else(|| DataError::parse(F, 0, format!("file ends before the {what}")))
    };
    let (ln, first) = next("item count")?;
    let m: usize = first.parse().map_err(|_| {
        DataError::parse(
            F,
            ln,
            format!("expected the number of items, found `{first}`"),
        )
    })?;
    if m != 10 {
        return Err(DataError::parse(
            F,
            ln,
            format!("expected 10 items, found {m}"),
        ));
    }
    let mut names = Vec::new();
    for i in 1..=m {
        let (ln, l) = next("item names")?;
        let (idx, name) = l
            .split_once(',')
            .ok_or_else(|| DataError::parse(F, ln, "expected `index,name`"))?;
        if idx.trim().parse::<usize>().ok() != Some(i) {
            return Err(DataError::parse(
                F,
                ln,
                format!("expected item {i}, found `{idx}`"),
            ));
        }
        names.push(name.trim().to_string());
    }
    let (ln, totals) = next("totals line")?;
    let totals: Vec<usize> = totals
        .split(',')
        .map(|v| v.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| DataError::parse(F, ln, "expected `voters,sum of counts,distinct orders`"))?;
    if totals.len() != 3 {
        return Err(DataError::parse(
            F,
            ln,
            "expected `voters,sum of counts,distinct orders`",
        ));
    }
    let mut x_rows: Vec<[f64; 36]> = Vec::new();
    let mut y_rows: Vec<[f64; 16]> = Vec::new();
    let mut count_sum = 0;
    for (ln, l) in lines {
        let v: Vec<usize> = l
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| DataError::parse(F, ln, "expected `count,item1,...,item10`"))?;
        if v.len() != m + 1 {
            return Err(DataError::parse(
                F,
                ln,
                format!("expected {} fields, found {}", m + 1, v.len()),
            ));
        }
        let ranking = &v[1..];
        let distinct: BTreeSet<usize> = ranking.iter().copied().collect();
        if distinct.len() != m || distinct.iter().any(|&i| i == 0 || i > m) {
            return Err(DataError::parse(
                F,
                ln,
                "a ranking must list each item 1..=10 once",
            ));
        }
        count_sum += v[0];
        let order = |items: &[usize]| -> Vec<usize> {
            ranking
                .iter()
                .filter_map(|it| items.iter().position(|a| a == it))
                .collect()
        };
        let mut xr = [0.0; 36];
        for (r, a) in order(&SUSHI_INPUT_ITEMS).into_iter().enumerate() {
            xr[a * 6 + r] = 1.0;
        }
        let mut yr = [0.0; 16];
        for (r, a) in order(&SUSHI_OUTPUT_ITEMS).into_iter().enumerate() {
            yr[a * 4 + r] = 1.0;
        }
        x_rows.push(xr);
        y_rows.push(yr);
    }
    if x_rows.len() != totals[2] || count_sum != totals[1] {
        return Err(DataError::parse(
            F,
            ln,
            format!(
                "totals line announces {} orders with {} votes; the file has {} with {count_sum}",
                totals[2],
                totals[1],
                x_rows.len()
            ),
        ));
    }
    let n = x_rows.len();
    let x = DMatrix::from_fn(n, 36, |i, j| x_rows[i][j]);
    let y = DMatrix::from_fn(n, 16, |i, j| y_rows[i][j]);
    let mut features = Vec::new();
    for (a, &item) in SUSHI_INPUT_ITEMS.iter().enumerate() {
        for r in 0..6 {
            features.push(feature(
                &format!("{}@{r}", names[item - 1]),
                FeatureKind::Binary,
                &x,
                a * 6 + r,
            ));
        }
    }
    let target_names = SUSHI_OUTPUT_ITEMS
        .iter()
        .flat_map(|&item| (0..4).map(move |r| (item, r)))
        .map(|(item, r)| format!("{}@{r}", names[item - 1]))
        .collect();
    Dataset::new(
        "sushi",
        x,
        Targets::MultiLabel(y),
        Schema {
            features,
            groups: vec![],
            target_names,
        },
    )
}

/// Auto MPG (392 rows): 7 numeric features (cylinders, displacement, horsepower, weight,
/// acceleration, model year, origin code), target mpg; raw units.
pub fn autompg(dir: &DataDir) -> Result<Dataset, DataError> {
    let t = read_table(dir, "autompg.csv.gz", false, b',')?;
    t.expect_width(9)?;
    let n = t.rows.len();
    let mut x = DMatrix::zeros(n, 7);
    let mut y = DMatrix::zeros(n, 1);
    for r in 0..n {
        for c in 0..7 {
            x[(r, c)] = t.num(r, c)?;
        }
        y[(r, 0)] = t.num(r, 8)?;
    }
    let features = continuous(
        &[
            "cylinders",
            "displacement",
            "horsepower",
            "weight",
            "acceleration",
            "model_year",
            "origin",
        ],
        &x,
    );
    Dataset::new(
        "autompg",
        x,
        Targets::Regression(y),
        Schema {
            features,
            groups: vec![],
            target_names: vec!["mpg".into()],
        },
    )
}

/// Splits an Orange type declaration into values, honouring `\ ` escapes.
fn orange_values(decl: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = decl.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if chars.peek() == Some(&' ') => {
                cur.push(' ');
                chars.next();
            }
            ' ' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// UCI Cleveland heart disease in Orange's `.tab` format (303 rows, 13 features, binary
/// class `diameter narrowing`). Rows with a missing value are dropped (297 remain). Discrete
/// features are coded by the index of their value in the declared value list (sorted when the
/// file only says `d`); two-valued ones are marked binary. Raw units.
pub fn heart(dir: &DataDir) -> Result<Dataset, DataError> {
    const F: &str = "heart_disease.tab";
    let text = read_text(&dir.path(F)?)?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 4 {
        return Err(DataError::parse(
            F,
            lines.len(),
            "expected three header lines and data",
        ));
    }
    let names: Vec<&str> = lines[0].split('\t').map(str::trim).collect();
    let types: Vec<&str> = lines[1].split('\t').map(str::trim).collect();
    let roles: Vec<&str> = lines[2].split('\t').map(str::trim).collect();
    let w = names.len();
    if types.len() != w {
        return Err(DataError::parse(
            F,
            2,
            format!("{} type fields for {w} columns", types.len()),
        ));
    }
    let class_col = (0..w)
        .find(|&c| roles.get(c) == Some(&"class"))
        .ok_or_else(|| DataError::parse(F, 3, "no column has the `class` role"))?;
    let mut rows: Vec<(usize, Vec<&str>)> = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(3) {
        if l.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = l.split('\t').map(str::trim).collect();
        if cells.len() != w {
            return Err(DataError::parse(
                F,
                i + 1,
                format!("expected {w} fields, found {}", cells.len()),
            ));
        }
        if cells.iter().all(|c| !is_na(c)) {
            rows.push((i + 1, cells));
        }
    }
    // Value list per discrete column.
    let mut values: Vec<Option<Vec<String>>> = Vec::with_capacity(w);
    for (c, &ty) in types.iter().enumerate() {
        values.push(match ty {
            "c" | "continuous" => None,
            "d" | "discrete" => {
                let set: BTreeSet<&str> = rows.iter().map(|(_, r)| r[c]).collect();
                let mut v: Vec<String> = set.into_iter().map(String::from).collect();
                if v.iter().all(|s| s.parse::<f64>().is_ok()) {
                    v.sort_by(|a, b| {
                        a.parse::<f64>()
                            .unwrap()
                            .total_cmp(&b.parse::<f64>().unwrap())
                    });
                }
                Some(v)
            }
            decl => Some(orange_values(decl)),
        });
    }
    let n = rows.len();
    let feat_cols: Vec<usize> = (0..w).filter(|&c| c != class_col).collect();
    let mut x = DMatrix::zeros(n, feat_cols.len());
    let mut labels = Vec::with_capacity(n);
    let class_values = values[class_col]
        .clone()
        .ok_or_else(|| DataError::parse(F, 2, "the class column must be discrete"))?;
    let code = |c: usize, line: usize, cell: &str| -> Result<f64, DataError> {
        match &values[c] {
            None => cell
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    DataError::parse(
                        F,
                        line,
                        format!("column `{}`: expected a number, found `{cell}`", names[c]),
                    )
                }),
            Some(vals) => vals
                .iter()
                .position(|v| v == cell)
                .map(|p| p as f64)
                .ok_or_else(|| {
                    DataError::parse(
                        F,
                        line,
                        format!("column `{}`: `{cell}` is not one of {vals:?}", names[c]),
                    )
                }),
        }
    };
    for (i, (line, r)) in rows.iter().enumerate() {
        for (j, &c) in feat_cols.iter().enumerate() {
            x[(i, j)] = code(c, *line, r[c])?;
        }
        labels.push(code(class_col, *line, r[class_col])? as usize);
    }
    let features = feat_cols
        .iter()
        .enumerate()
        .map(|(j, &c)| {
            let kind = match &values[c] {
                Some(v) if v.len() == 2 => FeatureKind::Binary,
                _ => FeatureKind::Continuous,
            };
            feature(names[c], kind, &x, j)
        })
        .collect();
    let schema = Schema {
        features,
        groups: vec![],
        target_names: class_values.clone(),
    };
    Dataset::new(
        "heart",
        x,
        Targets::Classes {
            labels,
            n_classes: class_values.len(),
        },
        schema,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orange_value_lists_keep_escaped_spaces() {
        assert_eq!(
            orange_values(r"normal left\ vent\ hypertrophy ST-T\ abnormal"),
            vec!["normal", "left vent hypertrophy", "ST-T abnormal"]
        );
    }

    #[test]
    fn malformed_files_give_errors_with_line_numbers() {
        let dir = std::env::temp_dir().join(format!("provenn-data-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("iris.csv"),
            "3,4,a,b,c\n1,2,3,4,0\n1,2,x,4,1\n1,2,3,4,2\n",
        )
        .unwrap();
        let e = iris(&DataDir::new(&dir)).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("`x`"), "{e}");
        std::fs::write(
            dir.join("iris.csv"),
            "3,4,a,b,c\n1,2,3,4,0\n1,2,3,4,7\n1,2,3,4,2\n",
        )
        .unwrap();
        let e = iris(&DataDir::new(&dir)).unwrap_err().to_string();
        assert!(e.contains("class in 0..3"), "{e}");
        std::fs::write(dir.join("sushi.soc"), "10\n1,a\n").unwrap();
        let e = sushi(&DataDir::new(&dir)).unwrap_err().to_string();
        assert!(e.contains("file ends"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
