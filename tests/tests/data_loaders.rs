//! Every loader on the real files of the shared data directory; expected sizes are those of
//! `shared/data/README.md` and `shared/notes/sade-deepsade.md`.
use provenn_data::usecase::{self, LoanVariant};
use provenn_data::{catalog, loaders, LoadOptions, Targets};
use provenn_tests::real_data_dir;

fn class_counts(t: &Targets) -> Vec<usize> {
    let l = t.labels().unwrap();
    let mut c = vec![0; t.n_outputs()];
    for &v in l {
        c[v] += 1;
    }
    c
}

#[test]
fn sklearn_style_and_pixel_files() {
    let Some(dir) = real_data_dir() else { return };
    let iris = loaders::iris(&dir).unwrap();
    assert_eq!(iris.x.shape(), (150, 4));
    assert_eq!(class_counts(&iris.targets), vec![50, 50, 50]);
    assert_eq!(
        iris.schema.target_names,
        vec!["setosa", "versicolor", "virginica"]
    );
    let wine = loaders::wine(&dir).unwrap();
    assert_eq!(wine.x.shape(), (178, 13));
    assert_eq!(class_counts(&wine.targets), vec![59, 71, 48]);
    let sonar = loaders::sonar(&dir).unwrap();
    assert_eq!(sonar.x.shape(), (208, 60));
    assert_eq!(class_counts(&sonar.targets).iter().sum::<usize>(), 208);
    let digits = loaders::digits(&dir).unwrap();
    assert_eq!(digits.x.shape(), (1797, 64));
    assert!(digits.x.max() <= 16.0 && digits.x.min() >= 0.0);
    let mnist = loaders::mnist(&dir).unwrap();
    assert_eq!(mnist.x.shape(), (5000, 784));
    assert_eq!(mnist.x.max(), 255.0);
    assert_eq!(class_counts(&mnist.targets).len(), 10);
}

#[test]
fn scaled_catalog_entries_lie_in_the_unit_box() {
    let Some(dir) = real_data_dir() else { return };
    for name in ["iris", "wine", "sonar", "digits", "autompg", "heart"] {
        let d = catalog::load(name, &dir, &LoadOptions::default())
            .unwrap()
            .dataset;
        assert!(d.x.min() >= 0.0 && d.x.max() <= 1.0, "{name}");
        let s = d.scaler.as_ref().unwrap();
        // raw values are recovered from the stored transform
        for j in 0..d.n_features() {
            let raw = d.raw(0, j);
            assert!(
                (s.to_scaled(j, raw) - d.x[(0, j)]).abs() < 1e-12,
                "{name} feature {j}"
            );
        }
    }
}

#[test]
fn uc1_expenses_matches_the_paper() {
    let Some(dir) = real_data_dir() else { return };
    let uc = usecase::uc1_expenses(&dir, None).unwrap();
    let d = &uc.dataset;
    assert_eq!(d.x.shape(), (41_417, 13));
    assert_eq!(d.targets.n_outputs(), 5);
    assert_eq!(d.schema.features[12].name, "Total Household Income");
    assert_eq!(uc.skip_features, vec![12]);
    let violating_sum = (0..d.n_rows())
        .filter(|&i| !usecase::uc1_row_satisfies(d, i).0)
        .count();
    let frac = violating_sum as f64 / d.n_rows() as f64;
    // The note: ~77% of households have total expenses above income.
    assert!((0.74..0.80).contains(&frac), "{frac}");
    let sade = usecase::uc1_expenses(&dir, Some(1000)).unwrap().dataset;
    let any = (0..1000)
        .filter(|&i| usecase::uc1_row_satisfies(&sade, i) != (true, true))
        .count();
    // The note reports 862 of SaDe's first 1000 rows; SaDe's file has 126 more (high-income)
    // households, so its first 1000 rows differ from DeepSaDe's. 863 was counted independently
    // on this file with Python's csv module.
    assert!((860..=865).contains(&any), "{any}");
}

#[test]
fn uc2_loan_variants_match_the_notes() {
    let Some(dir) = real_data_dir() else { return };
    let raw = usecase::uc2_loan(&dir, LoanVariant::DeepSaDe, false, 0).unwrap();
    let d = &raw.dataset;
    assert_eq!(d.x.shape(), (492, 13));
    let names: Vec<&str> = d.schema.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names[..5],
        [
            "ApplicantIncome",
            "CoapplicantIncome",
            "LoanAmount",
            "Loan_Amount_Term",
            "Credit_History"
        ]
    );
    assert_eq!(
        names[5..],
        [
            "Married_Yes",
            "Dependents_1",
            "Dependents_2",
            "Dependents_3+",
            "Education_Not Graduate",
            "Self_Employed_Yes",
            "Property_Area_Semiurban",
            "Property_Area_Urban"
        ]
    );
    assert_eq!(raw.skip_features, vec![0, 4]);
    let region = usecase::uc2_region(d);
    let labels = d.targets.labels().unwrap();
    let approved = region.iter().filter(|&&i| labels[i] == 1).count();
    assert_eq!((region.len(), approved), (53, 5));
    let inj = usecase::uc2_loan(&dir, LoanVariant::DeepSaDe, true, 7).unwrap();
    let l2 = inj.dataset.targets.labels().unwrap();
    let violations = region.iter().filter(|&&i| l2[i] == 1).count();
    assert_eq!(violations, 40 + approved);
    assert_eq!(inj.injected_rows.len(), 40);
    let sade = usecase::uc2_loan(&dir, LoanVariant::SaDe, true, 7).unwrap();
    assert_eq!(sade.dataset.x.shape(), (480, 14));
    assert_eq!(sade.injected_rows.len(), 35);
}

#[test]
fn uc3_to_uc5_and_regression_sets() {
    let Some(dir) = real_data_dir() else { return };
    let music = usecase::uc3_music_synthetic(true, 3).unwrap();
    assert_eq!(music.dataset.x.shape(), (793, 13));
    assert_eq!(music.dataset.schema.features[12].name, "artist_The Beatles");
    let labels = music.dataset.targets.labels().unwrap();
    let beatles_bad = (0..793)
        .filter(|&i| music.dataset.x[(i, 12)] == 1.0 && labels[i] < 3)
        .count();
    assert_eq!(beatles_bad, 40);
    let sum = usecase::uc4_mnist_sum(&dir, 50, 1).unwrap().dataset;
    assert_eq!(sum.x.shape(), (50, 3136));
    if let Targets::MultiLabel(y) = &sum.targets {
        for r in y.row_iter() {
            assert_eq!(r.sum(), 4.0);
            let s: f64 = r.iter().enumerate().map(|(i, v)| i as f64 * v).sum();
            assert!(s > 10.0);
        }
    } else {
        panic!("multi-label targets");
    }
    let sushi = usecase::uc5_sushi(&dir).unwrap().dataset;
    assert_eq!(sushi.x.shape(), (4926, 36));
    assert_eq!(sushi.targets.n_outputs(), 16);
    for i in 0..sushi.n_rows() {
        assert_eq!(sushi.x.row(i).sum(), 6.0);
    }
    let auto = loaders::autompg(&dir).unwrap();
    assert_eq!(auto.x.shape(), (392, 7));
    let heart = loaders::heart(&dir).unwrap();
    assert_eq!(heart.x.shape(), (297, 13));
    assert_eq!(heart.targets.n_outputs(), 2);
}
