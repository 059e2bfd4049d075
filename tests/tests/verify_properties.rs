//! `PropertyVerifier` (VNN-LIB properties by CROWN branch and bound with MILP leaves):
//! on random small ReLU networks, boxes and unsafe conditions written as VNN-LIB text, every
//! `sat` carries an input in the box whose f64 output satisfies the condition, no `unsat`
//! is contradicted by dense sampling or by the MILP certifier, and tiny instances are decided.
//! On ACAS Xu, two instances with answers published by others (prop 3: net 1_6 unsat, net 1_7
//! sat) come out right, the witness checked on the ONNX graph itself.
use std::time::Duration;

use proptest::prelude::*;
use provenn_bounds::InputBox;
use provenn_dsl::ir::{Assignment, Constraint};
use provenn_dsl::vnnlib::read_vnnlib;
use provenn_milp::{
    Certificate, CertifyOptions, ConstraintCertifier, PropertyVerifier, Verdict, VerifyOptions,
};
use provenn_tests::{random_relu_net, real_data_dir, RandomNet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn property_text(
    rng: &mut ChaCha8Rng,
    boxed: &[(f64, f64)],
    n_out: usize,
    y_range: (f64, f64),
) -> String {
    let mut s = String::new();
    for j in 0..boxed.len() {
        s += &format!("(declare-const X_{j} Real)\n");
    }
    for k in 0..n_out {
        s += &format!("(declare-const Y_{k} Real)\n");
    }
    for (j, (l, h)) in boxed.iter().enumerate() {
        s += &format!("(assert (>= X_{j} {l:e}))\n(assert (<= X_{j} {h:e}))\n");
    }
    match rng.gen_range(0..3) {
        0 => {
            let t = rng.gen_range(y_range.0..=y_range.1);
            let k = rng.gen_range(0..n_out);
            s += &format!("(assert (>= Y_{k} {t:e}))\n");
        }
        1 => {
            // y_0 maximal
            for k in 1..n_out {
                s += &format!("(assert (<= Y_{k} Y_0))\n");
            }
        }
        _ => {
            let mut alts = Vec::new();
            for k in 1..n_out {
                let t = rng.gen_range(-0.5..0.5);
                alts.push(format!("(and (<= Y_0 Y_{k}) (>= Y_{k} {t:e}))"));
            }
            s += &format!("(assert (or {}))\n", alts.join(" "));
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn verdicts_agree_with_sampling_and_milp(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_in = rng.gen_range(1..=3);
        let n_out = rng.gen_range(2..=3);
        let net = random_relu_net(&mut rng, &RandomNet {
            n_in,
            depth: 1..=3,
            hidden: 1..=6,
            n_out: n_out..=n_out,
            weight: 2.0,
            bias: 1.0,
            leaky_slope: 0.2,
            output_relu: 0.1,
        });
        let boxed: Vec<(f64, f64)> = (0..n_in).map(|_| {
            let a = rng.gen_range(-1.0..1.0);
            let w = rng.gen_range(0.0..1.0);
            (a, a + w)
        }).collect();
        // Output range from samples, to place thresholds where they matter.
        let samples: Vec<(Vec<f64>, Vec<f64>)> = (0..3000).map(|_| {
            let x: Vec<f64> = boxed.iter().map(|(l, h)| rng.gen_range(*l..=*h)).collect();
            let y = net.forward(&nalgebra::DVector::from_column_slice(&x)).unwrap().as_slice().to_vec();
            (x, y)
        }).collect();
        let (ylo, yhi) = samples.iter().flat_map(|(_, y)| y.iter().copied())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let text = property_text(&mut rng, &boxed, n_out, (ylo - 0.2, yhi + 0.2));
        let prop = read_vnnlib(&text).unwrap();
        // Without the attack half of the time, so that branch and bound alone must find
        // counterexamples (and an unsound refutation shows as a wrong `unsat`).
        let verifier = PropertyVerifier::new(VerifyOptions {
            time_limit: Duration::from_secs(30),
            milp_depth: 12,
            attack_restarts: if rng.gen_bool(0.5) { 0 } else { 10 },
            lookahead: rng.gen_bool(0.5),
            ..VerifyOptions::default()
        }).unwrap();
        let r = verifier.verify(&net, &prop).unwrap();
        let holds = |x: &[f64], y: &[f64]| prop.unsafe_output.holds(&Assignment { x, y, x2: &[], y2: &[] });
        let sampled_hit = samples.iter().any(|(x, y)| holds(x, y));
        match &r.verdict {
            Verdict::Sat { x, y } => {
                let inside = x.iter().zip(&boxed).all(|(v, (l, h))| l <= v && v <= h);
                prop_assert!(inside, "witness outside the box");
                let y2 = net.forward(&nalgebra::DVector::from_column_slice(x)).unwrap();
                prop_assert_eq!(y2.as_slice(), y.as_slice());
                prop_assert!(holds(x, y), "witness does not satisfy the unsafe condition");
            }
            Verdict::Unsat => {
                prop_assert!(!sampled_hit, "unsat, but a sampled point is unsafe\n{text}");
                let certifier = ConstraintCertifier::new(CertifyOptions {
                    time_limit: Some(Duration::from_secs(20)),
                    ..CertifyOptions::default()
                }).unwrap();
                let (lo, hi): (Vec<f64>, Vec<f64>) = boxed.iter().copied().unzip();
                let bx = InputBox::new(lo, hi).unwrap();
                let c = Constraint { two_copy: false, domain: boxed.clone(), formula: prop.unsafe_output.clone().negate() };
                let cert = certifier.certify_on(&net, &c, &bx, &bx).unwrap().certificate;
                prop_assert!(!matches!(cert, Certificate::Violated(_)), "unsat, but the MILP found {cert:?}\n{text}");
            }
            Verdict::Unknown { reason } => prop_assert!(false, "undecided on a tiny instance: {reason}\n{text}"),
        }
    }
}

#[test]
fn dimension_mismatch_is_an_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let net = random_relu_net(
        &mut rng,
        &RandomNet {
            n_in: 2,
            depth: 2..=2,
            hidden: 3..=3,
            n_out: 2..=2,
            weight: 1.0,
            bias: 1.0,
            leaky_slope: 0.2,
            output_relu: 0.0,
        },
    );
    let prop = read_vnnlib(&property_text(&mut rng, &[(0.0, 1.0)], 2, (0.0, 1.0))).unwrap();
    let v = PropertyVerifier::new(VerifyOptions::default()).unwrap();
    let err = v.verify(&net, &prop).unwrap_err();
    assert!(err.to_string().contains("1 inputs"), "{err}");
}

#[test]
fn acasxu_known_answers() {
    let Some(dir) = real_data_dir() else { return };
    let d = dir.root().join("acasxu");
    let prop = read_vnnlib(&std::fs::read_to_string(d.join("prop_3.vnnlib")).unwrap()).unwrap();
    for (net_name, expected) in [("1_6", "unsat"), ("1_7", "sat")] {
        let bytes =
            std::fs::read(d.join(format!("ACASXU_run2a_{net_name}_batch_2000.onnx"))).unwrap();
        let net = provenn_nn::onnx::import_onnx(&bytes).unwrap();
        let v = PropertyVerifier::new(VerifyOptions {
            time_limit: Duration::from_secs(116),
            ..VerifyOptions::default()
        })
        .unwrap();
        let r = v.verify(&net, &prop).unwrap();
        assert_eq!(
            r.verdict.word(),
            expected,
            "net {net_name}: {:?}",
            r.verdict
        );
        if let Verdict::Sat { x, .. } = &r.verdict {
            let y = provenn_nn::onnx::evaluate_graph(&bytes, x).unwrap();
            assert!(prop.unsafe_output.holds(&Assignment {
                x,
                y: &y,
                x2: &[],
                y2: &[]
            }));
        }
    }
}
