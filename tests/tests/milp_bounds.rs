//! Soundness of solver-tightened neuron bounds against dense sampling.
//!
//! Random ReLU / leaky-ReLU networks (1–4 inputs, optional skip feature) over a sub-box of
//! `[-1, 1]^n`, as the explainer uses them: the global bounds of the whole domain merged with
//! the sub-box's propagated bounds are the start, and `tightened_from` tightens them on the
//! sub-box by LP or MILP, with or without a (tiny) time limit per solve and on a random range
//! of layers. Properties:
//! - the result lies inside the start (tightening never loosens a bound);
//! - every pre-activation the test computes in f64 at sampled points and corners of the
//!   sub-box lies inside the result — a bound read from an incumbent instead of the proven dual
//!   bound at a time limit fails here within a few cases (dropping the padding for solver
//!   tolerance does not: sampling rarely lands within 1e-9 of an optimum);
//! - without a time limit, MILP tightening of the first hidden layer after layer 0 is at least
//!   as tight as LP tightening (both from the same start), exact or sign-first
//!   ([`Tightening::MilpSign`]), and every neuron the exact MILPs find stable the sign-first ones
//!   find stable too (their zero cuts prove it by infeasibility).
use nalgebra::DMatrix;
use proptest::prelude::*;
use provenn_bounds::InputBox;
use provenn_milp::{
    default_backend, global_bounds, propagated_bounds, tightened_from, NeuronBounds, SolveOptions,
    Tightening,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Rounding slack of the test's own f64 forward pass.
fn slack(v: f64) -> f64 {
    1e-12 * (1.0 + v.abs())
}

fn assert_inside(inner: &NeuronBounds, outer: &NeuronBounds) -> Result<(), TestCaseError> {
    for (l, (a, b)) in inner.layers.iter().zip(&outer.layers).enumerate() {
        for i in 0..a.lower.len() {
            prop_assert!(
                a.lower[i] >= b.lower[i] && a.upper[i] <= b.upper[i],
                "layer {l} neuron {i}: [{}, {}] not inside the start [{}, {}]",
                a.lower[i],
                a.upper[i],
                b.lower[i],
                b.upper[i]
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn tightened_bounds_contain_every_sampled_activation(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_in = rng.gen_range(1..=4);
        let net = provenn_tests::random_relu_net(
            &mut rng,
            &provenn_tests::RandomNet {
                n_in,
                depth: 2..=4,
                hidden: 1..=6,
                n_out: 1..=3,
                weight: 2.0,
                bias: 1.0,
                leaky_slope: 0.2,
                output_relu: 0.2,
            },
        );
        let n_layers = net.layers().len();
        let domain = InputBox::new(vec![-1.0; n_in], vec![1.0; n_in]).unwrap();
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for _ in 0..n_in {
            let a: f64 = rng.gen_range(-1.0..1.0);
            let b: f64 = rng.gen_range(-1.0..1.0);
            lo.push(a.min(b));
            hi.push(a.max(b));
        }
        let sub = InputBox::new(lo.clone(), hi.clone()).unwrap();
        let backend = default_backend();
        let global = global_bounds(
            &net,
            &domain,
            Tightening::Lp,
            &*backend,
            &SolveOptions::default(),
        )
        .unwrap();
        let start = global
            .bounds
            .merged(&propagated_bounds(&net, &sub).unwrap())
            .0;

        let mode = [Tightening::Lp, Tightening::Milp, Tightening::MilpSign][rng.gen_range(0..3)];
        let time_limit = if rng.gen_bool(0.5) {
            Some(Duration::from_micros(rng.gen_range(1..2_000)))
        } else {
            None
        };
        let first = rng.gen_range(0..n_layers);
        let last = rng.gen_range(first..=n_layers);
        let options = SolveOptions { time_limit, ..Default::default() };
        let t = tightened_from(&net, &sub, start.clone(), first..last, mode, &*backend, &options)
            .unwrap();
        assert_inside(&t.bounds, &start)?;

        let n = 400;
        let mut x = DMatrix::from_fn(n + (1 << n_in), n_in, |_, j| rng.gen_range(lo[j]..=hi[j]));
        for mask in 0..(1usize << n_in) {
            for j in 0..n_in {
                x[(n + mask, j)] = if mask & (1 << j) != 0 { hi[j] } else { lo[j] };
            }
        }
        let trace = net.trace(&x).unwrap();
        for (l, b) in t.bounds.layers.iter().enumerate() {
            for s in 0..x.nrows() {
                for i in 0..b.lower.len() {
                    let v = trace.pre[l][(s, i)];
                    prop_assert!(
                        v >= b.lower[i] - slack(v) && v <= b.upper[i] + slack(v),
                        "{mode:?} (limit {time_limit:?}, layers {first}..{last}): layer {l} \
                         neuron {i} = {v} at sample {s}, outside [{}, {}]",
                        b.lower[i],
                        b.upper[i]
                    );
                }
            }
        }

        if n_layers > 1 {
            let exact = SolveOptions::default();
            let lp = tightened_from(&net, &sub, start.clone(), 1..2, Tightening::Lp, &*backend, &exact)
                .unwrap();
            let milp =
                tightened_from(&net, &sub, start.clone(), 1..2, Tightening::Milp, &*backend, &exact)
                    .unwrap();
            let sign =
                tightened_from(&net, &sub, start, 1..2, Tightening::MilpSign, &*backend, &exact)
                    .unwrap();
            let b = &lp.bounds.layers[1];
            for (name, t) in [("MILP", &milp), ("sign-first MILP", &sign)] {
                let a = &t.bounds.layers[1];
                for i in 0..a.lower.len() {
                    // Both are padded by about 2·tol·(1 + |v| + ‖coefs‖₁); allow that much.
                    let tol = 1e-5 * (1.0 + b.lower[i].abs() + b.upper[i].abs());
                    prop_assert!(
                        a.lower[i] >= b.lower[i] - tol && a.upper[i] <= b.upper[i] + tol,
                        "neuron {i}: {name} [{}, {}] looser than LP [{}, {}]",
                        a.lower[i],
                        a.upper[i],
                        b.lower[i],
                        b.upper[i]
                    );
                }
            }
            if n_layers > 2 {
                let (e, g) = (&milp.bounds.layers[1], &sign.bounds.layers[1]);
                for i in 0..e.lower.len() {
                    prop_assert!(
                        !(e.lower[i] >= 0.0 || e.upper[i] <= 0.0)
                            || g.lower[i] >= 0.0
                            || g.upper[i] <= 0.0,
                        "neuron {i}: exact MILP bounds [{}, {}] stable, sign-first [{}, {}] not",
                        e.lower[i],
                        e.upper[i],
                        g.lower[i],
                        g.upper[i]
                    );
                }
            }
        }
    }
}
