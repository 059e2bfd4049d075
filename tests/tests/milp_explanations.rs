//! Abductive explanations against a brute-force oracle.
//!
//! For random small ReLU classifiers (2–6 inputs) the entailment of *every* subset of fixed
//! features is decided by an independent encoding (one MILP per other class, maximising
//! `o_j − o_c` on bounds propagated for that subset's box). Replaying the deletion algorithm on
//! that table gives the expected explanation; all three explainer modes must return it, and the
//! explanation must pass `check_explanation` (entailed; each kept feature necessary, with a
//! counterexample re-validated in f64) and carry a witness for every kept feature, while
//! tampered copies (misplaced witnesses, a freeable feature added, a kept feature dropped) must
//! not pass. Some features have a one-point domain.
use nalgebra::DVector;
use proptest::prelude::*;
use provenn_bounds::InputBox;
use provenn_milp::{
    check_explanation, default_backend, entailed_by_class_margins, AbductiveExplainer, Entailment,
    ExplainMode, ExplainOptions, MarginBounds, SolveOptions, Tightening,
};
use provenn_nn::Mlp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_classifier(rng: &mut ChaCha8Rng) -> Mlp {
    let n_in = rng.gen_range(2..=6);
    provenn_tests::random_relu_net(
        rng,
        &provenn_tests::RandomNet {
            n_in,
            depth: 2..=3,
            hidden: 2..=5,
            n_out: 2..=3,
            weight: 1.5,
            bias: 0.5,
            leaky_slope: 0.1,
            output_relu: 0.0,
        },
    )
}

fn subset_box(domain: &InputBox, x: &[f64], mask: u32) -> InputBox {
    let mut b = domain.clone();
    for (i, &v) in x.iter().enumerate() {
        if mask & (1 << i) != 0 {
            b.fix(i, v).unwrap();
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 220, ..ProptestConfig::default() })]

    #[test]
    fn explanations_match_brute_force(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = random_classifier(&mut rng);
        let n = net.n_inputs();
        let x: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..=1.0)).collect();
        // Some features are constant in the domain (as MNIST's border pixels): the explainer
        // frees those without a query, which must agree with the oracle.
        let constant: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.2)).collect();
        let lo: Vec<f64> = (0..n).map(|i| if constant[i] { x[i] } else { 0.0 }).collect();
        let hi: Vec<f64> = (0..n).map(|i| if constant[i] { x[i] } else { 1.0 }).collect();
        let domain = InputBox::new(lo, hi).unwrap();
        let y = net.forward(&DVector::from_row_slice(&x)).unwrap();
        let class = provenn_milp::predicted_class(y.as_slice());
        let backend = default_backend();
        let opts = SolveOptions::default();

        // Entailment of every subset of fixed features (bit i set = feature i fixed).
        let mut table = Vec::with_capacity(1 << n);
        for mask in 0..(1u32 << n) {
            let e = entailed_by_class_margins(&net, &subset_box(&domain, &x, mask), class, MarginBounds::Propagated, &*backend, &opts).unwrap();
            if let Entailment::Counterexample(c) = &e {
                // The oracle's own witnesses are real: inside the box, and another class wins.
                let b = subset_box(&domain, &x, mask);
                prop_assert!(b.contains(c));
                let yc = net.forward(&DVector::from_row_slice(c)).unwrap();
                prop_assert!((0..yc.len()).any(|j| j != class && yc[j] >= yc[class]));
            }
            table.push(e);
        }
        // Borderline cases (ties within solver tolerance) have no well-defined answer.
        prop_assume!(table.iter().all(|e| *e != Entailment::Unknown));
        let entailed = |mask: u32| table[mask as usize] == Entailment::Entailed;
        // Fixing everything must entail the prediction unless x itself is a tie.
        prop_assume!(entailed((1 << n) - 1));

        let mut mask: u32 = (1 << n) - 1;
        for i in 0..n {
            if entailed(mask & !(1 << i)) {
                mask &= !(1 << i);
            }
        }
        let expected: Vec<usize> = (0..n).filter(|&i| mask & (1 << i) != 0).collect();
        // Subset-minimal: freeing any kept feature breaks entailment (monotonicity makes one
        // removal enough).
        for &i in &expected {
            prop_assert!(!entailed(mask & !(1 << i)));
        }

        let tightening = if rng.gen_bool(0.5) { Tightening::Milp } else { Tightening::Lp };
        let falsify = rng.gen_bool(0.5);
        // Input splitting off, with a budget small enough to run out (then the MILP decides),
        // or with the default.
        let split_budget = [0, rng.gen_range(1..40), provenn_milp::DEFAULT_SPLIT_BUDGET][rng.gen_range(0..3)];
        // A splitting time limit that may cut splitting short (then the MILP decides).
        let split_time_limit =
            rng.gen_bool(0.5).then(|| std::time::Duration::from_micros(rng.gen_range(0..2_000)));
        let lp_tighten = rng.gen_bool(0.5);
        // MILP tightening: off, or escalating every query at once or after a trial of a few
        // microseconds, which these MILPs may or may not finish (a MILP on these networks never
        // takes a second, so "after 1 s" would never escalate; with `trial_once` the queries
        // after an escalation skip the trial), with limits short enough to
        // stop some tightening MILPs at their limit (whose bound is then the LP relaxation's),
        // and LP on none, some or all of the
        // last layers (the networks have 2–3 layers, the output layer included).
        let milp_tighten = rng.gen_bool(0.5).then(|| provenn_milp::QueryTightening {
            after: std::time::Duration::from_micros([0, rng.gen_range(1..300)][rng.gen_range(0..2)]),
            per_solve: std::time::Duration::from_micros(rng.gen_range(1..2_000)),
            lp_layers: rng.gen_range(0..=4),
            trial_once: rng.gen_bool(0.5),
            per_rival: rng.gen_bool(0.5),
            reuse_inside: rng.gen_bool(0.5),
        });
        // Tentative frees proven in groups: off, one at a time, small groups (with the
        // falsifier off, every open query is a tentative free, so wrong ones are common and
        // the refutation path runs), or the default.
        let speculation = [0, 1, rng.gen_range(2..=4), provenn_milp::DEFAULT_SPECULATION][rng.gen_range(0..4)];
        // The reference's one MILP per query, or one MILP per rival class.
        let per_rival = rng.gen_bool(0.5);
        for mode in ExplainMode::ALL {
            let ex = AbductiveExplainer::new(&net, domain.clone(), ExplainOptions {
                mode, tightening, time_limit: None, falsify, crown: !falsify, split_budget,
                split_time_limit, lp_tighten, milp_tighten, speculation, per_rival,
            }).unwrap();
            let e = ex.explain(&x).unwrap();
            prop_assert_eq!(e.class, class);
            prop_assert_eq!(&e.features, &expected, "mode {} speculation {} per rival {}", mode.name(), speculation, per_rival);
            prop_assert!(e.stats.refuted_frees <= e.stats.tentative_frees);
            prop_assert_eq!(e.stats.unvalidated + e.stats.timeouts, 0);
            prop_assert_eq!(e.stats.constant_frees, constant.iter().filter(|c| **c).count());
            // Every kept feature carries the counterexample that kept it.
            prop_assert!(e.witnesses.iter().all(Option::is_some));
            if mode == ExplainMode::BoxSimplify {
                let check = check_explanation(&net, &domain, &x, &e, &*backend, &opts).unwrap();
                prop_assert!(check.is_valid(), "{:?}", check);
                prop_assert_eq!(check.by_witness, e.features.len());
                tampered_explanations_fail(&net, &domain, &x, &e, mask, &*backend)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The oracle and the checker's entailment: their MILPs stop once a rival can no longer
    /// come within `τ` of the class, so an "entailed" must survive dense sampling of the box
    /// (every corner and 3,000 uniform points, evaluated in f64), and a counterexample must lie
    /// in the box and lose; on propagated bounds and on tightened ones (every solve of those,
    /// tightening and class-margin MILPs alike, limited to 1–3,000 µs or not at all, confirmed
    /// or not), which never contradict each other.
    #[test]
    fn class_margin_entailment_survives_sampling(
        seed in any::<u64>(),
        limit_us in prop_oneof![Just(0u64), 1..3_000u64],
        confirm in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = random_classifier(&mut rng);
        let n = net.n_inputs();
        let (mut lo, mut hi) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            let (a, b): (f64, f64) = (rng.gen_range(0.0..=1.0), rng.gen_range(0.0..=1.0));
            let fixed = rng.gen_bool(0.3);
            lo[i] = a.min(b);
            hi[i] = if fixed { lo[i] } else { a.max(b) };
        }
        let b = InputBox::new(lo.clone(), hi.clone()).unwrap();
        let centre: Vec<f64> = (0..n).map(|i| 0.5 * (lo[i] + hi[i])).collect();
        let class = provenn_milp::predicted_class(net.forward(&DVector::from_row_slice(&centre)).unwrap().as_slice());
        let loses = |p: &[f64]| {
            let y = net.forward(&DVector::from_row_slice(p)).unwrap();
            (0..y.len()).any(|j| j != class && y[j] >= y[class])
        };
        let corners = (0..1u32 << n).map(|m| (0..n).map(|i| if m & (1 << i) != 0 { hi[i] } else { lo[i] }).collect::<Vec<_>>());
        let uniform: Vec<Vec<f64>> = (0..3_000).map(|_| (0..n).map(|i| if hi[i] > lo[i] { rng.gen_range(lo[i]..=hi[i]) } else { lo[i] }).collect()).collect();
        let samples: Vec<Vec<f64>> = corners.chain(uniform).collect();
        let options = SolveOptions {
            time_limit: (limit_us > 0).then(|| std::time::Duration::from_micros(limit_us)),
            confirm_proofs: confirm,
            ..SolveOptions::default()
        };
        let backend = default_backend();
        let answers = [
            entailed_by_class_margins(&net, &b, class, MarginBounds::Propagated, &*backend, &SolveOptions::default()).unwrap(),
            entailed_by_class_margins(&net, &b, class, MarginBounds::Tightened, &*backend, &options).unwrap(),
        ];
        for e in &answers {
            match e {
                Entailment::Entailed => {
                    for p in &samples {
                        prop_assert!(!loses(p), "entailed, but {:?} loses", p);
                    }
                }
                Entailment::Counterexample(c) => prop_assert!(b.contains(c) && loses(c)),
                Entailment::Unknown => {}
            }
        }
        // The two never contradict each other.
        let decided = |e: &Entailment| match e {
            Entailment::Entailed => Some(true),
            Entailment::Counterexample(_) => Some(false),
            Entailment::Unknown => None,
        };
        if let (Some(a), Some(t)) = (decided(&answers[0]), decided(&answers[1])) {
            prop_assert_eq!(a, t);
        }
    }
}

/// The checker must not take an explanation's word for anything: witnesses that are not
/// counterexamples for their feature are re-decided, a feature that can be freed is caught, and
/// so is a kept set that does not entail the class.
fn tampered_explanations_fail(
    net: &Mlp,
    domain: &InputBox,
    x: &[f64],
    e: &provenn_milp::Explanation,
    mask: u32,
    backend: &dyn provenn_milp::Backend,
) -> Result<(), TestCaseError> {
    let n = x.len();
    let opts = SolveOptions::default();
    let check = |t: &provenn_milp::Explanation| {
        check_explanation(net, domain, x, t, backend, &opts).unwrap()
    };
    // Witnesses rotated to the wrong features, or replaced by the instance itself (which never
    // loses): the checker decides necessity by MILP and still finds the explanation valid.
    let mut t = e.clone();
    if !t.witnesses.is_empty() {
        t.witnesses.rotate_left(1);
    }
    let c = check(&t);
    prop_assert!(c.is_valid(), "{:?}", c);
    t.witnesses = vec![Some(x.to_vec()); t.features.len()];
    let c = check(&t);
    prop_assert!(c.is_valid() && c.by_witness == 0, "{:?}", c);
    // A freed feature added back: not necessary. Its "witness" is another feature's real
    // counterexample, which loses in f64 but differs from x on a kept feature (the kept set
    // entails the class), so it lies outside this feature's box; without one, the instance.
    if let Some(extra) = (0..n).find(|&i| mask & (1 << i) == 0) {
        let mut t = e.clone();
        let at = t.features.partition_point(|&i| i < extra);
        let fake = e
            .witnesses
            .first()
            .cloned()
            .flatten()
            .unwrap_or_else(|| x.to_vec());
        t.features.insert(at, extra);
        t.witnesses.insert(at, Some(fake));
        let c = check(&t);
        prop_assert!(c.is_refuted(), "{:?}", c);
        prop_assert_eq!(c.necessary[at], Some(false));
    }
    // A kept feature dropped (witness and all): the rest no longer entails the class.
    if !e.features.is_empty() {
        let mut t = e.clone();
        t.features.remove(0);
        t.witnesses.remove(0);
        let c = check(&t);
        prop_assert!(c.is_refuted() && c.entailed == Some(false), "{:?}", c);
    }
    Ok(())
}

/// Every check off but the MILP (INMS mode), so each query no MILP has decided yet is a
/// tentative free when `speculation` > 1.
fn milp_only(time_limit: Option<std::time::Duration>, speculation: usize) -> ExplainOptions {
    ExplainOptions {
        mode: ExplainMode::Inms,
        tightening: Tightening::Lp,
        time_limit,
        falsify: false,
        crown: false,
        split_budget: 0,
        split_time_limit: None,
        lp_tighten: false,
        milp_tighten: None,
        speculation,
        per_rival: false,
    }
}

/// Tentative frees with nothing to catch a wrong one early (no falsifier, no bound checks, one
/// group for the whole loop): every refutation goes through the locating MILPs and the rerun,
/// and the explanations must still be those of one MILP per query. The runs must include
/// refutations, or this would not test that path.
#[test]
fn speculation_refuted_and_rerun_gives_the_deletion_result() {
    let (mut runs, mut refuted) = (0, 0);
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = random_classifier(&mut rng);
        let n = net.n_inputs();
        let x: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..=1.0)).collect();
        let domain = InputBox::new(vec![0.0; n], vec![1.0; n]).unwrap();
        let options = |speculation| milp_only(None, speculation);
        let one_by_one = AbductiveExplainer::new(&net, domain.clone(), options(0))
            .unwrap()
            .explain(&x)
            .unwrap();
        let grouped = AbductiveExplainer::new(&net, domain.clone(), options(64))
            .unwrap()
            .explain(&x)
            .unwrap();
        assert_eq!(grouped.features, one_by_one.features, "seed {seed}");
        assert!(grouped.witnesses.iter().all(Option::is_some), "seed {seed}");
        let check = check_explanation(
            &net,
            &domain,
            &x,
            &grouped,
            &*default_backend(),
            &SolveOptions::default(),
        )
        .unwrap();
        assert!(check.is_valid(), "seed {seed}: {check:?}");
        runs += 1;
        refuted += grouped.stats.refuted_frees;
    }
    assert!(
        refuted > 0,
        "no refuted tentative free in {runs} explanations"
    );
}

/// When the verifying MILPs run out of time, the tentative frees are decided one by one and
/// an undecided one keeps its feature: the explanation may then not be minimal, but it still
/// entails the class. Half the runs ask one MILP per rival class, whose shared time limit
/// runs out between rivals.
#[test]
fn speculation_under_timeouts_still_entails() {
    let mut timeouts = 0;
    for seed in 0..20u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = random_classifier(&mut rng);
        let n = net.n_inputs();
        let x: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..=1.0)).collect();
        let domain = InputBox::new(vec![0.0; n], vec![1.0; n]).unwrap();
        let e = AbductiveExplainer::new(
            &net,
            domain.clone(),
            ExplainOptions {
                per_rival: seed % 2 == 1,
                ..milp_only(Some(std::time::Duration::from_nanos(1)), 64)
            },
        )
        .unwrap()
        .explain(&x)
        .unwrap();
        timeouts += e.stats.timeouts;
        let check = check_explanation(
            &net,
            &domain,
            &x,
            &e,
            &*default_backend(),
            &SolveOptions::default(),
        )
        .unwrap();
        assert_eq!(check.entailed, Some(true), "seed {seed}: {check:?}");
    }
    assert!(timeouts > 0, "no verifying MILP ran out of time");
}
