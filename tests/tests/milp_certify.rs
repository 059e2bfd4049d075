//! Soundness of MILP certification against dense sampling.
//!
//! 1,000 random ReLU / leaky-ReLU networks (1–4 inputs, optional skip features) and random constraints
//! from several templates (bounds on outputs, implications with input premises, disjunctions,
//! counting atoms, and two-copy relational properties) written in the DSL, with thresholds
//! drawn from the sampled output range so both outcomes occur. Properties:
//! - "certified" at margin `m` never co-exists with a sampled violation larger than
//!   `max(−m, 0)` (plus the network's f64 evaluation error), and `m ≥ −tolerance`;
//! - every "violated" carries a witness that is inside the domain and violates the constraint
//!   when the test itself re-evaluates the network in f64;
//! - a clear sampled violation (margin > 1e-3 on a single-atom conclusion) is found, not
//!   reported as "unknown".
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use provenn_dsl::ir::{Assignment, Constraint};
use provenn_dsl::{compile, Bindings};
use provenn_milp::{Certificate, CertifyOptions, ConstraintCertifier};
use provenn_nn::{Activation, Dense, Mlp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_net(rng: &mut ChaCha8Rng, n_in: usize, n_out: usize) -> Mlp {
    provenn_tests::random_relu_net(
        rng,
        &provenn_tests::RandomNet {
            n_in,
            depth: 1..=3,
            hidden: 1..=6,
            n_out: n_out..=n_out,
            weight: 2.0,
            bias: 1.0,
            leaky_slope: 0.2,
            output_relu: 0.2,
        },
    )
}

fn samples(rng: &mut ChaCha8Rng, domain: &[(f64, f64)], n: usize) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = (0..n)
        .map(|_| domain.iter().map(|&(l, h)| rng.gen_range(l..=h)).collect())
        .collect();
    // Corners.
    for mask in 0..(1u32 << domain.len()) {
        out.push(
            domain
                .iter()
                .enumerate()
                .map(|(i, &(l, h))| if mask & (1 << i) != 0 { h } else { l })
                .collect(),
        );
    }
    out
}

fn out(net: &Mlp, x: &[f64]) -> Vec<f64> {
    net.forward(&DVector::from_row_slice(x))
        .unwrap()
        .as_slice()
        .to_vec()
}

fn holds(c: &Constraint, net: &Mlp, x: &[f64], x2: &[f64]) -> bool {
    let y = out(net, x);
    let y2 = if x2.is_empty() { vec![] } else { out(net, x2) };
    c.holds(&Assignment {
        x,
        y: &y,
        x2,
        y2: &y2,
    })
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * q) as usize]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn certification_is_sound(seed in any::<u64>(), template in 0usize..7) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_in = rng.gen_range(1..=4);
        let n_out = 2;
        let net = random_net(&mut rng, n_in, n_out);
        let domain: Vec<(f64, f64)> = (0..n_in).map(|_| {
            let l = rng.gen_range(-1.0..0.5);
            (l, l + rng.gen_range(0.1..1.5))
        }).collect();
        let pts = samples(&mut rng, &domain, 3000);
        let mut y0: Vec<f64> = pts.iter().map(|p| out(&net, p)[0]).collect();
        let mut d01: Vec<f64> = pts.iter().map(|p| { let y = out(&net, p); y[0] - y[1] }).collect();
        let q: f64 = rng.gen_range(0.0..1.05);
        let c0 = quantile(&mut y0, q.min(1.0)) + if q > 1.0 { 0.01 } else { 0.0 };
        let cd = quantile(&mut d01, q.min(1.0));
        let mid = 0.5 * (domain[0].0 + domain[0].1);
        let src = match template {
            0 => format!("y[0] <= {c0}"),
            1 => format!("y[0] >= {c0}"),
            2 => format!("x[0] >= {mid} => y[0] - y[1] <= {cd}"),
            3 => format!("y[0] <= {c0} or y[1] >= {c0}"),
            4 => format!("at_most(1, [y[0] > {c0}, y[1] > {c0}])"),
            5 => format!("forall x, x2: x2[0] >= x[0] and same(x, x2, except [x0]) => y2[0] >= y[0] - {}", (q - 0.5).abs()),
            _ => format!("forall x, x2: linf(x - x2) <= 0.1 => abs(y[0] - y2[0]) <= {}", q.abs()),
        };
        let b = Bindings::anonymous(&domain, n_out);
        let c = compile(&src, &b).unwrap().remove(0);
        let certifier = ConstraintCertifier::new(CertifyOptions { time_limit: None, ..CertifyOptions::default() }).unwrap();
        let report = certifier.certify(&net, &c).unwrap();

        // Sampled violations (for two-copy constraints: pairs built to satisfy the premise).
        let mut sampled_violation: Option<f64> = None;
        for (k, p) in pts.iter().enumerate() {
            let p2: Vec<f64> = if c.two_copy {
                let other = &pts[(k * 7919 + 13) % pts.len()];
                match template {
                    5 => { let mut v = p.clone(); v[0] = other[0].max(p[0]); v }
                    _ => p.iter().zip(other).zip(&domain).map(|((a, o), &(l, h))| (a + 0.1 * (o - a).signum() * (o - a).abs().min(1.0)).clamp(l, h)).collect(),
                }
            } else { vec![] };
            if !holds(&c, &net, p, &p2) {
                let y = out(&net, p);
                let y2 = if p2.is_empty() { vec![] } else { out(&net, &p2) };
                let v = c.formula.violation(&Assignment { x: p, y: &y, x2: &p2, y2: &y2 });
                sampled_violation = Some(sampled_violation.unwrap_or(0.0).max(v));
            }
        }
        match &report.certificate {
            Certificate::Certified { margin } => {
                // The contract: no input violates by more than the proven bound −margin, which
                // is at most the tolerance. The MILP reasons in exact reals; 1e-9 covers the
                // network's own f64 evaluation error at these sizes.
                prop_assert!(*margin >= -CertifyOptions::default().tolerance, "{src}: margin {margin}");
                let allowed = (-margin).max(0.0) + 1e-9;
                prop_assert!(
                    sampled_violation.is_none_or(|v| v <= allowed),
                    "{src}: certified at margin {margin} but sampling violates by {:?}",
                    sampled_violation
                );
            }
            Certificate::Violated(w) => {
                let inside = |x: &[f64]| x.iter().zip(&domain).all(|(v, &(l, h))| *v >= l && *v <= h);
                prop_assert!(inside(&w.x));
                prop_assert_eq!(&w.y, &out(&net, &w.x));
                if c.two_copy { prop_assert!(inside(&w.x2)); }
                prop_assert!(!holds(&c, &net, &w.x, &w.x2), "{src}: witness does not violate");
            }
            Certificate::Unknown { reason } => {
                // Only borderline cases may stay undecided.
                let clear = sampled_violation.is_some_and(|v| v > 1e-3) && template <= 2;
                prop_assert!(!clear, "{src}: unknown ({reason}) despite a clear violation");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Candidates that violate decide the certificate: "violated" at the candidate violating
    /// most, re-evaluated in f64, with no solver call; candidates outside the domain are
    /// skipped; with no violating candidate the answer is the plain certificate's.
    #[test]
    fn violating_candidates_refute_without_a_solver(seed in any::<u64>(), template in 0usize..5) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_in = rng.gen_range(1..=4);
        let net = random_net(&mut rng, n_in, 2);
        let domain: Vec<(f64, f64)> = (0..n_in).map(|_| {
            let l = rng.gen_range(-1.0..0.5);
            (l, l + rng.gen_range(0.1..1.5))
        }).collect();
        let pts = samples(&mut rng, &domain, 300);
        let mut y0: Vec<f64> = pts.iter().map(|p| out(&net, p)[0]).collect();
        let c0 = quantile(&mut y0, rng.gen_range(0.0..1.0));
        let mid = 0.5 * (domain[0].0 + domain[0].1);
        let src = match template {
            0 => format!("y[0] <= {c0}"),
            1 => format!("y[0] >= {c0}"),
            2 => format!("x[0] >= {mid} => y[0] - y[1] <= {c0}"),
            3 => format!("y[0] <= {c0} or y[1] >= {c0}"),
            _ => format!("at_most(1, [y[0] > {c0}, y[1] > {c0}])"),
        };
        let c = compile(&src, &Bindings::anonymous(&domain, 2)).unwrap().remove(0);
        // A few candidates, some pushed just outside the domain (not admissible).
        let mut candidates: Vec<Vec<f64>> = pts.iter().step_by(13).cloned().collect();
        for p in pts.iter().skip(5).step_by(17) {
            let mut q = p.clone();
            let i = rng.gen_range(0..n_in);
            q[i] = if rng.gen_bool(0.5) { domain[i].0 - 0.05 } else { domain[i].1 + 0.05 };
            candidates.push(q);
        }
        let inside = |x: &[f64]| x.iter().zip(&domain).all(|(v, &(l, h))| *v >= l && *v <= h);
        let worst = candidates.iter().filter(|x| inside(x) && !holds(&c, &net, x, &[])).map(|x| {
            let y = out(&net, x);
            c.formula.violation(&Assignment { x, y: &y, x2: &[], y2: &[] })
        }).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let certifier = ConstraintCertifier::new(CertifyOptions { time_limit: None, ..CertifyOptions::default() }).unwrap();
        let report = certifier.certify_with_candidates(&net, &c, &candidates).unwrap();
        match worst {
            Some(v) => {
                prop_assert_eq!(report.solves, 0);
                let Certificate::Violated(w) = &report.certificate else {
                    return Err(TestCaseError::fail(format!("{src}: {:?} despite a violating candidate", report.certificate)));
                };
                prop_assert!(candidates.contains(&w.x) && inside(&w.x));
                prop_assert_eq!(&w.y, &out(&net, &w.x));
                prop_assert!(!holds(&c, &net, &w.x, &[]));
                prop_assert_eq!(w.violation, v);
            }
            None => {
                let plain = certifier.certify(&net, &c).unwrap();
                prop_assert_eq!(report.certificate.status(), plain.certificate.status(), "{}", src);
            }
        }
    }
}

#[test]
fn candidates_are_single_inputs() {
    let domain = [(0.0, 1.0), (0.0, 1.0)];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = random_net(&mut rng, 2, 2);
    let certifier = ConstraintCertifier::new(CertifyOptions::default()).unwrap();
    let b = Bindings::anonymous(&domain, 2);
    let relational = compile(
        "forall x, x2: linf(x - x2) <= 0.1 => abs(y[0] - y2[0]) <= 1",
        &b,
    )
    .unwrap()
    .remove(0);
    assert!(certifier
        .certify_with_candidates(&net, &relational, &[vec![0.5, 0.5]])
        .is_err());
    let single = compile("y[0] <= 1", &b).unwrap().remove(0);
    assert!(certifier
        .certify_with_candidates(&net, &single, &[vec![0.5]])
        .is_err());
}

/// AdI and constraint accuracy on a network whose answers are known by hand:
/// `y = relu(x0 − x1)` and the constraint `y ≤ 0.5` on `[0, 1]²`.
#[test]
fn adversity_index_and_constraint_accuracy_by_hand() {
    use provenn_milp::{adversity_index, constraint_accuracy};
    let hidden = Dense::new(
        DMatrix::from_row_slice(1, 2, &[1.0, -1.0]),
        DVector::from_element(1, 0.0),
        Activation::Relu,
    )
    .unwrap();
    let out_layer = Dense::new(
        DMatrix::from_element(1, 1, 1.0),
        DVector::from_element(1, 0.0),
        Activation::Identity,
    )
    .unwrap();
    let net = Mlp::from_layers(2, vec![hidden, out_layer], vec![]).unwrap();
    let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0)], 1);
    let c = compile("y[0] <= 0.5", &b).unwrap().remove(0);
    // y = 0, 0.8, 0 and 0.4 at these points.
    let pts = vec![
        vec![0.1, 0.9],
        vec![0.9, 0.1],
        vec![0.5, 0.5],
        vec![0.6, 0.2],
    ];
    assert!((constraint_accuracy(&net, &c, &pts).unwrap() - 0.75).abs() < 1e-12);
    let certifier = ConstraintCertifier::new(CertifyOptions::default()).unwrap();
    // δ = 0.1: the balls reach y = 0, 1.0, 0.2 and 0.6 at most → two points have a counterexample.
    let adi = adversity_index(&certifier, &net, &c, &pts, 0.1).unwrap();
    assert_eq!((adi.points, adi.violated, adi.unknown), (4, 2, 0));
    assert!((adi.value() - 0.5).abs() < 1e-12);
    // δ = 0.01: only the second point (y ≤ 0.82 nearby, and 0.4 + 0.02 < 0.5 at the fourth).
    let adi = adversity_index(&certifier, &net, &c, &pts, 0.01).unwrap();
    assert_eq!(adi.violated, 1);
}
