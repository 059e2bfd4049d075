//! DeepSaDe-shaped last-layer updates: the quantified Z3 encoding (what the papers solve)
//! against the eliminated encoding on Z3 (LRA) and on HiGHS (MILP).
//!
//! UC2: 10 latent + 2 skip features (income, credit history), 2 outputs, batch 5, margins
//! [0, 1, 2], constraint `income ≤ 5000 ∧ credit_history = 0 ⇒ reject > approve`.
//! UC1: 14 latent + income, 5 outputs, batch 5, tolerance 0.1·max, constraints
//! `Σ expenses ≤ income` and `going_out ≤ 0.05·income` (raw units).
//! The quantified solves are capped (`PROVENN_BENCH_QUANTIFIED_LIMIT`, default 20 s); a capped
//! call is reported as such on stderr and its time is a lower bound.
#![allow(missing_docs)] // criterion_group! generates undocumented items
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use provenn_dsl::{compile, Bindings};
use provenn_maxsmt::{
    EliminationOptions, FuMalik, LastLayer, LastLayerConstraint, LastLayerUpdate, Limits,
    MaxSmtSolver, PmRes, Targets, UpdateMethod, WeightBox, Z3Optimize,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Shape {
    name: &'static str,
    llc: LastLayerConstraint,
    current: Vec<f64>,
    features: Vec<Vec<f64>>,
    targets: Targets,
}

fn latent_box(rng: &mut ChaCha8Rng, n: usize) -> Vec<(f64, f64)> {
    (0..n).map(|_| (0.0, rng.gen_range(0.5..3.0))).collect()
}

fn batch(rng: &mut ChaCha8Rng, latent: &[(f64, f64)], skip_dom: &[(f64, f64)]) -> Vec<Vec<f64>> {
    (0..5)
        .map(|_| {
            latent
                .iter()
                .chain(skip_dom)
                .map(|&(l, u)| if u > l { rng.gen_range(l..u) } else { l })
                .collect()
        })
        .collect()
}

/// A feasible starting last layer (the trainer's initial solution).
fn initial(llc: &LastLayerConstraint, lo: f64, hi: f64) -> Vec<f64> {
    let n = llc.layer().n_params();
    let none = Targets::Classification {
        labels: vec![],
        margins: vec![],
    };
    let up = LastLayerUpdate::new(llc, WeightBox::uniform(n, lo, hi).unwrap(), &[], &none).unwrap();
    up.feasible(
        UpdateMethod::Milp(EliminationOptions::default()),
        &PmRes,
        &Limits::default(),
    )
    .unwrap()
    .theta_f64
    .expect("a feasible initial layer")
}

fn uc2() -> Shape {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let domain = vec![(0.0, 1.0); 13];
    let c = compile(
        "x[0] <= 0.06 and x[4] == 0 => y[0] > y[1]",
        &Bindings::anonymous(&domain, 2),
    )
    .unwrap()
    .remove(0);
    let layer = LastLayer {
        n_features: 12,
        n_outputs: 2,
    };
    let latent = latent_box(&mut rng, 10);
    let llc = LastLayerConstraint::new(layer, &c, &latent, &[0, 4]).unwrap();
    let current = initial(&llc, -1.0, 1.0);
    let features = batch(&mut rng, &latent, &[(0.0, 1.0), (0.0, 1.0)]);
    let labels = (0..5).map(|i| vec![i % 3 == 0, i % 3 != 0]).collect();
    Shape {
        name: "uc2",
        llc,
        current,
        features,
        targets: Targets::Classification {
            labels,
            margins: vec![0.0, 1.0, 2.0],
        },
    }
}

fn uc1() -> Shape {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let domain = vec![(0.0, 1.0); 13];
    // income (raw, 10k PHP) = 198·x12 + 1.1
    let src =
        "y[0] + y[1] + y[2] + y[3] + y[4] <= 198*x[12] + 1.1 and y[1] <= 0.05*(198*x[12] + 1.1)";
    let c = compile(src, &Bindings::anonymous(&domain, 5))
        .unwrap()
        .remove(0);
    let layer = LastLayer {
        n_features: 15,
        n_outputs: 5,
    };
    let latent = latent_box(&mut rng, 14);
    let llc = LastLayerConstraint::new(layer, &c, &latent, &[12]).unwrap();
    let current = initial(&llc, -0.1, -0.01);
    let features = batch(&mut rng, &latent, &[(0.0, 1.0)]);
    let targets: Vec<Vec<f64>> = (0..5)
        .map(|_| {
            (0..5)
                .map(|k| rng.gen_range(0.0..[8.0, 0.5, 1.0, 4.0, 1.0][k]))
                .collect()
        })
        .collect();
    let tol: Vec<f64> = (0..5)
        .map(|k| 0.1 * targets.iter().map(|t| t[k]).fold(0.0, f64::max))
        .collect();
    Shape {
        name: "uc1",
        llc,
        current,
        features,
        targets: Targets::Regression {
            targets,
            tolerances: vec![tol],
        },
    }
}

fn bench(c: &mut Criterion) {
    let cap: u64 = std::env::var("PROVENN_BENCH_QUANTIFIED_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for shape in [uc2(), uc1()] {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let grad: Vec<f64> = shape
            .current
            .iter()
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let wb = WeightBox::gradient_orthant(&shape.current, &grad, 0.1, 100.0).unwrap();
        let up = LastLayerUpdate::new(&shape.llc, wb, &shape.features, &shape.targets).unwrap();
        let opts = EliminationOptions::default();
        let unlimited = Limits::default();
        let capped = Limits {
            time_limit: Some(Duration::from_secs(cap)),
            cancel: None,
            node_limit: None,
        };
        let methods: [(&str, UpdateMethod, &dyn MaxSmtSolver, &Limits); 5] = [
            (
                "eliminated-lra-pmres",
                UpdateMethod::Eliminated(opts),
                &PmRes,
                &unlimited,
            ),
            (
                "eliminated-lra-z3opt",
                UpdateMethod::Eliminated(opts),
                &Z3Optimize,
                &unlimited,
            ),
            (
                "eliminated-lra-fumalik",
                UpdateMethod::Eliminated(opts),
                &FuMalik,
                &unlimited,
            ),
            (
                "eliminated-milp-highs",
                UpdateMethod::Milp(opts),
                &PmRes,
                &unlimited,
            ),
            (
                "quantified-fumalik",
                UpdateMethod::Quantified,
                &FuMalik,
                &capped,
            ),
        ];
        let mut group = c.benchmark_group(shape.name);
        group.sample_size(10);
        for (name, method, solver, limits) in methods {
            let probe = up.solve(method, solver, limits).unwrap();
            eprintln!(
                "{}/{name}: {:?}, {}/{} soft satisfied, {} calls, {} cores, {:.3} s{}",
                shape.name,
                probe.status,
                probe.satisfied,
                probe.n_soft,
                probe.stats.calls,
                probe.stats.cores,
                probe.stats.time.as_secs_f64(),
                probe.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            );
            if name.starts_with("quantified") {
                group.warm_up_time(Duration::from_millis(1));
                group.measurement_time(Duration::from_secs(1));
            } else {
                group.warm_up_time(Duration::from_secs(1));
                group.measurement_time(Duration::from_secs(5));
            }
            group.bench_function(name, |b| {
                b.iter(|| up.solve(method, solver, limits).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
