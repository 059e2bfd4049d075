//! Property tests of provenn-nn: gradients against central finite differences, and the saved
//! file format against mutation and truncation.
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use provenn_nn::io::{from_bytes, to_bytes};
use provenn_nn::loss::{BceWithLogits, Loss, Mse, SoftmaxCrossEntropy};
use provenn_nn::{Activation, Init, Mlp, MlpBuilder};

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Relu),
        (0.0f64..1.0).prop_map(Activation::LeakyRelu),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Identity),
    ]
}

/// A random network: 1–6 inputs, 1–4 layers of width 1–8, any activations, optional skip
/// features, random seed.
fn network() -> impl Strategy<Value = Mlp> {
    (
        1usize..=6,
        prop::collection::vec((1usize..=8, activation()), 1..=4),
        any::<u64>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..=3),
        prop_oneof![Just(Init::HeNormal), Just(Init::XavierUniform)],
    )
        .prop_map(|(n_in, layers, seed, skip, init)| {
            let mut b = MlpBuilder::new(n_in).init(init).seed(seed);
            for (w, a) in layers {
                b = b.hidden(w, a);
            }
            let skip: Vec<usize> = skip.iter().map(|i| i.index(n_in)).collect();
            b.skip_features(skip).build().unwrap()
        })
}

fn near_kink(net: &Mlp, x: &DMatrix<f64>) -> bool {
    let t = net.trace(x).unwrap();
    net.layers().iter().zip(&t.pre).any(|(l, z)| {
        matches!(l.activation(), Activation::Relu | Activation::LeakyRelu(_))
            && z.iter().any(|v| v.abs() < 1e-3)
    })
}

fn close(analytic: f64, numeric: f64) -> bool {
    (analytic - numeric).abs() <= 1e-6 * analytic.abs().max(numeric.abs()) + 1e-8
}

fn check_gradients(
    net: &Mlp,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    loss: &dyn Loss,
) -> Result<(), TestCaseError> {
    let (_, grads) = net.loss_gradient(x, y, loss).unwrap();
    let f = |n: &Mlp, x: &DMatrix<f64>| loss.value(&n.forward_batch(x).unwrap(), y);
    let h = 1e-5;
    for l in 0..net.layers().len() {
        let (r, c) = net.layers()[l].weights().shape();
        for i in 0..r {
            for j in 0..c {
                let mut p = net.clone();
                p.layer_mut(l).weights_mut()[(i, j)] += h;
                let mut m = net.clone();
                m.layer_mut(l).weights_mut()[(i, j)] -= h;
                let num = (f(&p, x) - f(&m, x)) / (2.0 * h);
                let ana = grads.layers[l].weights[(i, j)];
                prop_assert!(
                    close(ana, num),
                    "dW[{l}][{i},{j}]: analytic {ana}, numeric {num}"
                );
            }
            let mut p = net.clone();
            p.layer_mut(l).bias_mut()[i] += h;
            let mut m = net.clone();
            m.layer_mut(l).bias_mut()[i] -= h;
            let num = (f(&p, x) - f(&m, x)) / (2.0 * h);
            let ana = grads.layers[l].bias[i];
            prop_assert!(
                close(ana, num),
                "db[{l}][{i}]: analytic {ana}, numeric {num}"
            );
        }
    }
    // Input gradient through the VJP.
    let trace = net.trace(x).unwrap();
    let (_, g_out) = loss.sum_and_gradient(trace.output(), y);
    let g_out = g_out / loss.normaliser(y.nrows(), y.ncols());
    let (_, gx) = net.backward(&trace, &g_out).unwrap();
    for i in 0..x.nrows() {
        for j in 0..x.ncols() {
            let mut xp = x.clone();
            xp[(i, j)] += h;
            let mut xm = x.clone();
            xm[(i, j)] -= h;
            let num = (f(net, &xp) - f(net, &xm)) / (2.0 * h);
            prop_assert!(
                close(gx[(i, j)], num),
                "dx[{i},{j}]: analytic {}, numeric {num}",
                gx[(i, j)]
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn gradients_match_finite_differences(net in network(), rows in 1usize..=3, seed in any::<u64>(), which in 0usize..3) {
        let mut s = seed;
        let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0 };
        let x = DMatrix::from_fn(rows, net.n_inputs(), |_, _| next());
        prop_assume!(!near_kink(&net, &x));
        let k = net.n_outputs();
        match which {
            0 => { let y = DMatrix::from_fn(rows, k, |_, _| next()); check_gradients(&net, &x, &y, &Mse)?; }
            1 => { let y = DMatrix::from_fn(rows, k, |_, _| f64::from(u8::from(next() > 0.0))); check_gradients(&net, &x, &y, &BceWithLogits)?; }
            _ => { let y = DMatrix::from_fn(rows, k, |i, j| f64::from(u8::from(j == i % k))); check_gradients(&net, &x, &y, &SoftmaxCrossEntropy)?; }
        }
    }

    #[test]
    fn save_load_reproduces_outputs_bit_for_bit(net in network(), xs in prop::collection::vec(-10.0f64..10.0, 6)) {
        let back = from_bytes(&to_bytes(&net)).unwrap();
        let x = DVector::from_iterator(net.n_inputs(), xs.into_iter().take(net.n_inputs()));
        let a = net.forward(&x).unwrap();
        let b = back.forward(&x).unwrap();
        prop_assert!(a.iter().zip(b.iter()).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Flipped bytes, truncations and insertions all give a typed error, never a panic and
    /// never a silently different network.
    #[test]
    fn mutated_files_give_typed_errors(net in network(), edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255, 0u8..3), 1..4)) {
        let mut bytes = to_bytes(&net);
        for (pos, val, kind) in edits {
            if bytes.is_empty() { break; }
            let i = pos.index(bytes.len());
            match kind {
                0 => bytes[i] ^= val,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, val),
            }
        }
        match from_bytes(&bytes) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            // An insertion followed by a truncation can restore the exact file.
            Ok(n) => prop_assert_eq!(bytes, to_bytes(&n)),
        }
    }
}
