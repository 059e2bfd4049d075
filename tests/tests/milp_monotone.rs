//! The derivative MILP for monotonicity (`MonotonicityCertifier`) against the two-copy MILP
//! of `ConstraintCertifier` and against sampling, on random ReLU / leaky-ReLU networks (skip
//! features, output ReLUs, several outputs), half of them made monotone by taking absolute
//! weights, over random sub-boxes:
//! - "certified" never co-exists with a sampled pair that decreases by more than the
//!   tolerance (plus f64 evaluation error), nor with a two-copy witness;
//! - every "violated" carries a pair inside the box, differing only in the feature, that the
//!   test re-evaluates in f64 and finds decreasing, and the two-copy MILP does not certify;
//! - "unknown" (no pair confirms the MILP's negative derivative) stays rare.
use nalgebra::DVector;
use proptest::prelude::*;
use provenn_bounds::InputBox;
use provenn_dsl::{compile, Bindings};
use provenn_milp::{Certificate, CertifyOptions, ConstraintCertifier, MonotonicityCertifier};
use provenn_nn::Mlp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn out(net: &Mlp, x: &[f64]) -> Vec<f64> {
    net.forward(&DVector::from_column_slice(x))
        .unwrap()
        .iter()
        .copied()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn derivative_certificates_agree_with_two_copy_ones(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(1..=4);
        let mut net = provenn_tests::random_relu_net(
            &mut rng,
            &provenn_tests::RandomNet {
                n_in: n,
                depth: 1..=3,
                hidden: 1..=6,
                n_out: 1..=2,
                weight: 2.0,
                bias: 1.0,
                leaky_slope: 0.2,
                output_relu: 0.2,
            },
        );
        let monotone = rng.gen_bool(0.5);
        if monotone {
            for l in 0..net.layers().len() {
                let w = net.layers()[l].weights().map(f64::abs);
                net.layer_mut(l).set_weights(w).unwrap();
            }
        }
        let feature = rng.gen_range(0..n);
        let increasing = rng.gen_bool(if monotone { 0.8 } else { 0.5 });
        let (lo, hi): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|_| {
                let a: f64 = rng.gen_range(-1.0..1.0);
                let b: f64 = rng.gen_range(-1.0..1.0);
                (a.min(b), a.max(b) + 0.05)
            })
            .unzip();
        let b = InputBox::new(lo.clone(), hi.clone()).unwrap();
        let options = CertifyOptions::default();
        let tol = options.tolerance;
        let report = MonotonicityCertifier::new(options.clone())
            .unwrap()
            .certify_on(&net, feature, increasing, &b)
            .unwrap();

        let n_out = net.n_outputs();
        let cmp = if increasing { ">=" } else { "<=" };
        let src = format!(
            "forall x, x2: x2[{feature}] >= x[{feature}] and same(x, x2, except [x{feature}]) => {}",
            (0..n_out).map(|k| format!("y2[{k}] {cmp} y[{k}]")).collect::<Vec<_>>().join(" and ")
        );
        let dom: Vec<(f64, f64)> = lo.iter().copied().zip(hi.iter().copied()).collect();
        let c = compile(&src, &Bindings::anonymous(&dom, n_out)).unwrap().remove(0);
        let two_copy = ConstraintCertifier::new(options).unwrap().certify_on(&net, &c, &b, &b).unwrap();
        let sign = if increasing { 1.0 } else { -1.0 };

        match &report.certificate {
            Certificate::Certified { margin } => {
                prop_assert!(*margin >= -tol, "margin {margin}");
                prop_assert!(
                    !matches!(&two_copy.certificate, Certificate::Violated(w) if w.violation > 2.0 * tol),
                    "{src}: derivative certified, two-copy {:?}", two_copy.certificate
                );
                // Sampled pairs along the feature.
                for _ in 0..400 {
                    let x: Vec<f64> = dom.iter().map(|&(l, h)| rng.gen_range(l..=h)).collect();
                    let mut x2 = x.clone();
                    x2[feature] = rng.gen_range(x[feature]..=hi[feature]);
                    let (y, y2) = (out(&net, &x), out(&net, &x2));
                    for k in 0..n_out {
                        let decrease = -sign * (y2[k] - y[k]);
                        let slack = tol + 1e-9 * (1.0 + y[k].abs() + y2[k].abs());
                        prop_assert!(decrease <= slack, "{src}: {x:?} → {x2:?} decreases by {decrease}");
                    }
                }
            }
            Certificate::Violated(w) => {
                let inside = |p: &[f64]| p.iter().zip(&dom).all(|(v, &(l, h))| (l..=h).contains(v));
                prop_assert!(inside(&w.x) && inside(&w.x2));
                prop_assert!(w.x2[feature] >= w.x[feature]);
                prop_assert!((0..n).all(|j| j == feature || w.x[j] == w.x2[j]));
                let (y, y2) = (out(&net, &w.x), out(&net, &w.x2));
                let worst = (0..n_out).map(|k| -sign * (y2[k] - y[k])).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(w.violation > tol && worst >= w.violation, "{worst} vs {}", w.violation);
                prop_assert!(
                    !matches!(two_copy.certificate, Certificate::Certified { .. }),
                    "{src}: derivative witness {w:?}, two-copy certified"
                );
            }
            Certificate::Unknown { reason } => {
                // Allowed only where the two-copy MILP does not find a clear violation either.
                prop_assert!(
                    !matches!(&two_copy.certificate, Certificate::Violated(w) if w.violation > 1e-3),
                    "{src}: unknown ({reason}) but two-copy {:?}", two_copy.certificate
                );
            }
        }
    }
}
