//! DeepSaDe on UC2 (loan, 40 injected violations): the trainer returns a model the independent
//! MILP certifier accepts, and the constraint holds on every sampled input of its region.
use provenn_data::split::train_val_test;
use provenn_data::usecase::{self, LoanVariant};
use provenn_dsl::{compile, Bindings};
use provenn_tests::real_data_dir;
use provenn_train::deepsade::{DeepSadeParams, Guarantee};
use rand::{Rng, SeedableRng};

#[test]
fn deepsade_uc2_is_certified_and_satisfies_the_constraint() {
    let Some(dir) = real_data_dir() else { return };
    let uc = usecase::uc2_loan(&dir, LoanVariant::DeepSaDe, true, 1).unwrap();
    let d = &uc.dataset;
    let c = compile(
        "forall x: x.ApplicantIncome <= 5000 and x.Credit_History == 0 => y.reject > y.approve",
        &Bindings::from_dataset(d),
    )
    .unwrap()
    .remove(0);
    let split = train_val_test(d.n_rows(), 0.1, 0.2, None, 1).unwrap();
    let (train, val, test) = (
        d.select(&split.train),
        d.select(&split.validation),
        d.select(&split.test),
    );
    let model = DeepSadeParams {
        hidden: vec![8],
        epochs: 10,
        seed: 1,
        ..DeepSadeParams::default()
    }
    .build()
    .unwrap()
    .fit(&train, Some(&val), &c, &uc.skip_features, &mut |_| {})
    .unwrap();
    assert!(
        matches!(model.guarantee, Guarantee::Certified { .. }),
        "{:?}",
        model.guarantee
    );
    assert!(
        model.stats.line_search_steps + model.stats.maxsmt_steps > 0,
        "{:?}",
        model.stats
    );

    // Sampled check: inputs anywhere in the domain with the skip features in the region.
    let (inc, ch) = (uc.skip_features[0], uc.skip_features[1]);
    let inc_max = (5000.0 - d.scaler.as_ref().unwrap().min[inc])
        / (d.scaler.as_ref().unwrap().max[inc] - d.scaler.as_ref().unwrap().min[inc]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for _ in 0..5000 {
        let mut x: Vec<f64> = c
            .domain
            .iter()
            .map(|&(l, u)| rng.gen_range(l..=u))
            .collect();
        x[inc] = rng.gen_range(0.0..=inc_max.clamp(0.0, 1.0));
        x[ch] = 0.0;
        let y = model
            .net
            .forward(&nalgebra::DVector::from_vec(x.clone()))
            .unwrap();
        assert!(
            y[0] - y[1] > -1e-9,
            "reject {} ≤ approve {} at {x:?}",
            y[0],
            y[1]
        );
    }
    // It learns something: on the test rows whose labels satisfy the constraint ("corrected"
    // accuracy, as the paper reports), better than the majority class.
    let out = model.net.forward_batch(&test.x).unwrap();
    let labels = test.targets.labels().unwrap();
    let clean: Vec<usize> = (0..labels.len())
        .filter(|&i| !(test.raw(i, ch) == 0.0 && test.raw(i, inc) <= 5000.0 && labels[i] == 1))
        .collect();
    let acc = clean
        .iter()
        .filter(|&&i| usize::from(out[(i, 1)] > out[(i, 0)]) == labels[i])
        .count() as f64
        / clean.len() as f64;
    let approve = clean.iter().filter(|&&i| labels[i] == 1).count() as f64 / clean.len() as f64;
    let majority = approve.max(1.0 - approve);
    eprintln!(
        "DeepSaDe UC2: corrected test accuracy {acc:.3} (majority class {majority:.3}), {:?}",
        model.stats
    );
    assert!(
        acc > majority,
        "accuracy {acc} vs majority class {majority}"
    );
}

/// SaDe (linear) on SaDe's loan preparation (35 injected violations): certified, the
/// constraint holds on sampled region inputs, and it beats the majority class on the
/// corrected test rows.
#[test]
fn sade_loan_is_certified_and_satisfies_the_constraint() {
    use provenn_train::sade::SadeParams;
    let Some(dir) = real_data_dir() else { return };
    let uc = usecase::uc2_loan(&dir, LoanVariant::SaDe, true, 1).unwrap();
    let d = &uc.dataset;
    let c = compile(
        "forall x: x.ApplicantIncome <= 5000 and x.Credit_History == 0 => y.reject > y.approve",
        &Bindings::from_dataset(d),
    )
    .unwrap()
    .remove(0);
    let split = train_val_test(d.n_rows(), 0.0, 0.2, None, 1).unwrap();
    let (train, test) = (d.select(&split.train), d.select(&split.test));
    let model = SadeParams {
        epochs: 2,
        ..SadeParams::default()
    }
    .build()
    .unwrap()
    .fit(&train, &c)
    .unwrap();
    assert!(
        matches!(model.guarantee, Guarantee::Certified { .. }),
        "{:?}",
        model.guarantee
    );
    assert!(model.stats.accepted > 0, "{:?}", model.stats);
    let (inc, ch) = (uc.skip_features[0], uc.skip_features[1]);
    let sc = d.scaler.as_ref().unwrap();
    let inc_max = ((5000.0 - sc.min[inc]) / (sc.max[inc] - sc.min[inc])).clamp(0.0, 1.0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for _ in 0..5000 {
        let mut x: Vec<f64> = c
            .domain
            .iter()
            .map(|&(l, u)| rng.gen_range(l..=u))
            .collect();
        x[inc] = rng.gen_range(0.0..=inc_max);
        x[ch] = 0.0;
        let y = model
            .net
            .forward(&nalgebra::DVector::from_vec(x.clone()))
            .unwrap();
        assert!(
            y[0] - y[1] > -1e-9,
            "reject {} ≤ approve {} at {x:?}",
            y[0],
            y[1]
        );
    }
    let out = model.net.forward_batch(&test.x).unwrap();
    let labels = test.targets.labels().unwrap();
    let clean: Vec<usize> = (0..labels.len())
        .filter(|&i| !(test.raw(i, ch) == 0.0 && test.raw(i, inc) <= 5000.0 && labels[i] == 1))
        .collect();
    let acc = clean
        .iter()
        .filter(|&&i| usize::from(out[(i, 1)] > out[(i, 0)]) == labels[i])
        .count() as f64
        / clean.len() as f64;
    let approve = clean.iter().filter(|&&i| labels[i] == 1).count() as f64 / clean.len() as f64;
    let majority = approve.max(1.0 - approve);
    eprintln!(
        "SaDe loan: corrected test accuracy {acc:.3} (majority class {majority:.3}), {:?}",
        model.stats
    );
    assert!(
        acc > majority,
        "accuracy {acc} vs majority class {majority}"
    );
}
