//! The relational trainer's guarantee: models trained with last-layer projection satisfy the
//! property for every pair in the domain — the independent two-copy MILP certifies them and no
//! sampled pair violates them — for random data, networks and properties (monotonicity in
//! random features and directions, global robustness, individual fairness). An unconstrained
//! network trained on data that contradicts the property is refuted with a witness pair that
//! violates the property when re-evaluated in f64.
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use provenn_bounds::InputBox;
use provenn_data::{Dataset, Feature, FeatureKind, Schema, Targets};
use provenn_dsl::ir::Assignment;
use provenn_milp::Tightening;
use provenn_milp::{Certificate, CertifyOptions, ConstraintCertifier};
use provenn_nn::Mlp;
use provenn_train::pair_attack::PairAttack;
use provenn_train::relational::{
    Direction, Enforcement, Guarantee, RelationalCertifier, RelationalModel, RelationalParams,
    RelationalProperty, RelationalTrainer,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn dataset(x: DMatrix<f64>, targets: Targets) -> Dataset {
    let n = x.ncols();
    let k = targets.n_outputs();
    Dataset::new(
        "random",
        x,
        targets,
        Schema {
            features: (0..n)
                .map(|j| Feature {
                    name: format!("x{j}"),
                    kind: FeatureKind::Continuous,
                    raw_min: 0.0,
                    raw_max: 1.0,
                })
                .collect(),
            groups: vec![],
            target_names: (0..k).map(|j| format!("y{j}")).collect(),
        },
    )
    .unwrap()
}

/// A random smooth regression (or binary) task on `[0,1]^n`.
fn random_task(rng: &mut ChaCha8Rng, n: usize, rows: usize, binary: bool) -> Dataset {
    let x = DMatrix::from_fn(rows, n, |_, _| rng.gen_range(0.0..1.0));
    let a: Vec<f64> = (0..n).map(|_| rng.gen_range(-3.0..3.0)).collect();
    let f = |r: usize| -> f64 {
        (0..n).map(|j| a[j] * x[(r, j)]).sum::<f64>() + (4.0 * x[(r, 0)]).sin()
    };
    let targets = if binary {
        Targets::Classes {
            labels: (0..rows).map(|r| usize::from(f(r) > 0.0)).collect(),
            n_classes: 2,
        }
    } else {
        Targets::Regression(DMatrix::from_fn(rows, 1, |r, _| f(r)))
    };
    dataset(x, targets)
}

/// The worst violation over `n` random admissible pairs.
fn sampled_violation(net: &Mlp, p: &RelationalProperty, dim: usize, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut worst: f64 = f64::NEG_INFINITY;
    for _ in 0..2000 {
        let x: Vec<f64> = (0..dim).map(|_| rng.gen_range(0.0..=1.0)).collect();
        let mut x2 = x.clone();
        let mut sign = 1.0;
        match p {
            RelationalProperty::Monotonic { features } => {
                let (i, d) = features[rng.gen_range(0..features.len())];
                sign = if d == Direction::Increasing {
                    1.0
                } else {
                    -1.0
                };
                x2[i] = rng.gen_range(x[i]..=1.0);
            }
            RelationalProperty::Robust { delta, .. } => {
                for v in &mut x2 {
                    *v = (*v + rng.gen_range(-delta..=*delta)).clamp(0.0, 1.0);
                }
            }
            RelationalProperty::Fair { sensitive, .. } => {
                for &s in sensitive {
                    x2[s] = rng.gen_range(0.0..=1.0);
                }
            }
        }
        let f1 = net.forward(&DVector::from_vec(x)).unwrap();
        let f2 = net.forward(&DVector::from_vec(x2)).unwrap();
        for k in 0..f1.len() {
            let d = f2[k] - f1[k];
            let v = match p {
                RelationalProperty::Monotonic { .. } => -sign * d,
                RelationalProperty::Robust { epsilon, .. }
                | RelationalProperty::Fair { epsilon, .. } => d.abs() - epsilon,
            };
            worst = worst.max(v);
        }
    }
    worst
}

fn random_property(rng: &mut ChaCha8Rng, n: usize) -> RelationalProperty {
    match rng.gen_range(0..3) {
        0 => {
            let mut feats: Vec<usize> = (0..n).filter(|_| rng.gen_bool(0.5)).collect();
            if feats.is_empty() {
                feats.push(rng.gen_range(0..n));
            }
            RelationalProperty::Monotonic {
                features: feats
                    .into_iter()
                    .map(|i| {
                        let d = if rng.gen_bool(0.5) {
                            Direction::Increasing
                        } else {
                            Direction::Decreasing
                        };
                        (i, d)
                    })
                    .collect(),
            }
        }
        1 => RelationalProperty::Robust {
            delta: rng.gen_range(0.01..0.2),
            epsilon: rng.gen_range(0.05..0.5),
        },
        _ => RelationalProperty::Fair {
            sensitive: vec![rng.gen_range(0..n)],
            epsilon: rng.gen_range(0.05..0.5),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn projected_models_are_certified_and_never_violated(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(2..=4);
        let binary = rng.gen_bool(0.3);
        let train = random_task(&mut rng, n, 80, binary);
        let validation = random_task(&mut rng, n, 20, binary);
        let property = random_property(&mut rng, n);
        let trainer = RelationalParams {
            hidden: vec![rng.gen_range(2..=6); rng.gen_range(1..=2)],
            epochs: rng.gen_range(1..=4),
            batch_size: 16,
            certify_split_depth: rng.gen_range(0..=2),
            seed,
            ..RelationalParams::default()
        }
        .build()
        .unwrap();
        let m = trainer
            .fit(
                &train,
                &validation,
                &property,
                &Enforcement::Projection { split_depth: rng.gen_range(0..=3) },
                None,
                &mut |_| {},
            )
            .unwrap();
        prop_assert!(
            matches!(m.guarantee, Guarantee::Certified { .. }),
            "{property:?}: {:?}",
            m.guarantee
        );
        let worst = sampled_violation(&m.net, &property, n, seed);
        prop_assert!(worst <= 1e-9, "{property:?}: sampled violation {worst:e}");
        let domain = InputBox::new(vec![0.0; n], vec![1.0; n]).unwrap();
        let attack = PairAttack { starts: 200, steps: 30, seed }
            .run(&m.net, &property, &domain)
            .unwrap();
        prop_assert!(attack.violation <= 1e-9, "{property:?}: PGD violation {attack:?}");
    }
}

/// Training rows 0..160, validation the rest.
fn first_160_and_rest(d: Dataset) -> (Dataset, Dataset) {
    let n = d.n_rows();
    (
        d.select(&(0..160).collect::<Vec<_>>()),
        d.select(&(160..n).collect::<Vec<_>>()),
    )
}

/// An unconstrained network (`Enforcement::None`).
fn fit_unconstrained(
    trainer: &RelationalTrainer,
    train: &Dataset,
    validation: &Dataset,
    property: &RelationalProperty,
) -> RelationalModel {
    trainer
        .fit(
            train,
            validation,
            property,
            &Enforcement::None,
            None,
            &mut |_| {},
        )
        .unwrap()
}

/// Data that contradicts the property: an unconstrained network is refuted with a witness pair
/// that violates the compiled constraint in f64; the projected model is certified.
#[test]
fn unconstrained_networks_are_refuted_with_revalidated_witnesses() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: DMatrix<f64> = DMatrix::from_fn(200, 2, |_, _| rng.gen_range(0.0..1.0));
    let y = DMatrix::from_fn(200, 1, |r, _| (6.0 * x[(r, 0)]).sin() + x[(r, 1)]);
    let (train, validation) = first_160_and_rest(dataset(x, Targets::Regression(y)));
    let property = RelationalProperty::Monotonic {
        features: vec![(0, Direction::Increasing)],
    };
    let trainer = RelationalParams {
        hidden: vec![8, 8],
        epochs: 200,
        ..RelationalParams::default()
    }
    .build()
    .unwrap();
    let free = fit_unconstrained(&trainer, &train, &validation, &property);
    assert!(matches!(free.guarantee, Guarantee::NotCertified { .. }));
    let domain = InputBox::new(vec![0.0; 2], vec![1.0; 2]).unwrap();
    let c = property.constraints(&domain, 1).unwrap().remove(0);
    let report = ConstraintCertifier::new(CertifyOptions::default())
        .unwrap()
        .certify(&free.net, &c)
        .unwrap();
    let Certificate::Violated(w) = report.certificate else {
        panic!("expected a witness, got {:?}", report.certificate);
    };
    let y1 = free.net.forward(&DVector::from_vec(w.x.clone())).unwrap();
    let y2 = free.net.forward(&DVector::from_vec(w.x2.clone())).unwrap();
    assert!(
        w.x2[0] >= w.x[0] && w.x2[1] == w.x[1],
        "witness is an admissible pair"
    );
    assert!(
        y2[0] < y1[0],
        "f64 re-evaluation violates: {} < {}",
        y2[0],
        y1[0]
    );
    let (y1, y2): (Vec<f64>, Vec<f64>) =
        (y1.iter().copied().collect(), y2.iter().copied().collect());
    assert!(!c.holds(&Assignment {
        x: &w.x,
        y: &y1,
        x2: &w.x2,
        y2: &y2
    }));

    // The gradient attack finds a violating, admissible pair too.
    let attack = PairAttack::default()
        .run(&free.net, &property, &domain)
        .unwrap();
    assert!(attack.violation > 1e-3, "{attack:?}");
    assert!(attack.x2[0] >= attack.x[0] && attack.x2[1] == attack.x[1]);
    assert!(attack
        .x
        .iter()
        .chain(&attack.x2)
        .all(|v| (0.0..=1.0).contains(v)));
    let f = |p: &[f64]| free.net.forward(&DVector::from_column_slice(p)).unwrap()[0];
    assert_eq!(attack.violation, f(&attack.x) - f(&attack.x2));
    // With the attack on, the certifier settles it without a MILP, witness included.
    let cert = RelationalCertifier {
        split_depth: 0,
        time_limit: std::time::Duration::from_secs(30),
        tightening: Tightening::None,
        refine_depth: 0,
        attack: Some(PairAttack::default()),
    }
    .certify(&free.net, &property, &domain)
    .unwrap();
    assert_eq!(cert.milps, 0);
    let (x, x2, v) = cert.witness.expect("a witness");
    assert!(x2[0] >= x[0] && x2[1] == x[1] && v > 1e-5);
    assert_eq!(v, f(&x) - f(&x2));

    let fixed = trainer
        .fit(
            &train,
            &validation,
            &property,
            &Enforcement::Projection { split_depth: 2 },
            None,
            &mut |_| {},
        )
        .unwrap();
    assert!(
        matches!(fixed.guarantee, Guarantee::Certified { .. }),
        "{:?}",
        fixed.guarantee
    );
    assert!(sampled_violation(&fixed.net, &property, 2, 1) <= 1e-9);
}

/// The gradient attack refutes an unconstrained network for monotonicity, robustness and
/// fairness with admissible pairs, and climbs: it beats its own starting pairs.
#[test]
fn pair_attack_finds_admissible_violations() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x: DMatrix<f64> = DMatrix::from_fn(200, 3, |_, _| rng.gen_range(0.0..1.0));
    let y = DMatrix::from_fn(200, 1, |r, _| 3.0 * x[(r, 0)] + (6.0 * x[(r, 1)]).sin());
    let (train, validation) = first_160_and_rest(dataset(x, Targets::Regression(y)));
    let domain = InputBox::new(vec![0.0; 3], vec![1.0; 3]).unwrap();
    let trainer = RelationalParams {
        hidden: vec![8, 8],
        epochs: 100,
        ..RelationalParams::default()
    }
    .build()
    .unwrap();
    for property in [
        RelationalProperty::Monotonic {
            features: vec![(1, Direction::Increasing)],
        },
        RelationalProperty::Robust {
            delta: 0.1,
            epsilon: 0.05,
        },
        RelationalProperty::Fair {
            sensitive: vec![0],
            epsilon: 0.05,
        },
    ] {
        let free = fit_unconstrained(&trainer, &train, &validation, &property);
        let climbed = PairAttack::default()
            .run(&free.net, &property, &domain)
            .unwrap();
        let starts = PairAttack {
            steps: 0,
            ..PairAttack::default()
        }
        .run(&free.net, &property, &domain)
        .unwrap();
        assert!(climbed.violation > 0.0, "{property:?}: {climbed:?}");
        assert!(
            climbed.violation > starts.violation,
            "{climbed:?} vs {starts:?}"
        );
        for j in 0..3 {
            let gap = (climbed.x2[j] - climbed.x[j]).abs();
            match &property {
                RelationalProperty::Robust { delta, .. } => assert!(gap <= *delta),
                RelationalProperty::Fair { .. } => assert!(j == 0 || gap == 0.0),
                RelationalProperty::Monotonic { .. } => {
                    assert!(if j == 1 {
                        climbed.x2[1] >= climbed.x[1]
                    } else {
                        gap == 0.0
                    })
                }
            }
        }
        let f = |p: &[f64]| free.net.forward(&DVector::from_column_slice(p)).unwrap()[0];
        let change = f(&climbed.x2) - f(&climbed.x);
        let expected = match &property {
            RelationalProperty::Monotonic { .. } => -change,
            _ => change.abs() - 0.05,
        };
        assert_eq!(climbed.violation, expected);
    }
}

#[test]
fn invalid_properties_and_parameters_are_errors() {
    assert!(RelationalParams {
        hidden: vec![],
        ..Default::default()
    }
    .build()
    .is_err());
    assert!(RelationalParams {
        learning_rate: 0.0,
        ..Default::default()
    }
    .build()
    .is_err());
    let bad = [
        RelationalProperty::Monotonic { features: vec![] },
        RelationalProperty::Monotonic {
            features: vec![(5, Direction::Increasing)],
        },
        RelationalProperty::Monotonic {
            features: vec![(0, Direction::Increasing), (0, Direction::Decreasing)],
        },
        RelationalProperty::Robust {
            delta: 0.0,
            epsilon: 1.0,
        },
        RelationalProperty::Fair {
            sensitive: vec![3],
            epsilon: 1.0,
        },
    ];
    for p in bad {
        assert!(p.validate(2).is_err(), "{p:?}");
    }
}

/// Restarts keep the restart with the lowest validation loss, judged on validation data alone:
/// with three restarts the kept network is exactly the best of the three single trainings from
/// the restart seeds, and it is certified.
#[test]
fn restarts_keep_the_best_validation_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x: DMatrix<f64> = DMatrix::from_fn(200, 2, |_, _| rng.gen_range(0.0..1.0));
    let y = DMatrix::from_fn(200, 1, |r, _| {
        x[(r, 0)] + (5.0 * x[(r, 1)]).sin() + 0.3 * rng.gen_range(-1.0..1.0)
    });
    let (train, validation) = first_160_and_rest(dataset(x, Targets::Regression(y)));
    let property = RelationalProperty::Monotonic {
        features: vec![(0, Direction::Increasing)],
    };
    let params = |restarts, seed| RelationalParams {
        hidden: vec![6, 6],
        epochs: 40,
        patience: 10,
        restarts,
        seed,
        ..RelationalParams::default()
    };
    let fit = |p: RelationalParams, seen: &mut Vec<usize>| {
        p.build()
            .unwrap()
            .fit(
                &train,
                &validation,
                &property,
                &Enforcement::Projection { split_depth: 2 },
                None,
                &mut |e| seen.push(e.restart),
            )
            .unwrap()
    };
    let validation_mse = |m: &RelationalModel| {
        let out = m.net.forward_batch(&validation.x).unwrap();
        let Targets::Regression(y) = &validation.targets else {
            unreachable!()
        };
        (&out - y).norm_squared()
    };
    let mut seen = Vec::new();
    let kept = fit(params(3, 7), &mut seen);
    assert!(matches!(kept.guarantee, Guarantee::Certified { .. }));
    for r in 0..3 {
        assert!(seen.contains(&r), "restart {r} ran");
    }
    let singles: Vec<f64> = (0..3u64)
        .map(|r| validation_mse(&fit(params(1, 7 + 1_000_003 * r), &mut Vec::new())))
        .collect();
    let best = singles.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        (validation_mse(&kept) - best).abs() <= 1e-9 * best.max(1.0),
        "kept {} vs singles {singles:?}",
        validation_mse(&kept)
    );
    assert!(
        singles.iter().any(|&s| s > best),
        "the restarts differ (else the test shows nothing): {singles:?}"
    );
}
