//! ONNX export: export → import gives the same network (bit for bit for ReLU / identity
//! layers; LeakyRelu slopes pass through ONNX's `float`), the exported graph evaluated node by
//! node agrees with the network, networks with skip features are refused, and every ACAS Xu
//! network survives import → export → import unchanged. Truncated or bit-flipped exports give
//! errors or networks, never panics.
use nalgebra::DVector;
use proptest::prelude::*;
use provenn_nn::onnx::{evaluate_graph, export_onnx, import_onnx};
use provenn_nn::{Activation, MlpBuilder};
use provenn_tests::real_data_dir;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn export_import_round_trip(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_in = rng.gen_range(1..=6);
        let exact = rng.gen_bool(0.5);
        let mut b = MlpBuilder::new(n_in).seed(seed).fan_in_bias(true);
        for _ in 0..rng.gen_range(0..=3) {
            let act = if exact {
                Activation::Relu
            } else {
                match rng.gen_range(0..4) {
                    0 => Activation::Relu,
                    1 => Activation::LeakyRelu(rng.gen_range(0.0..1.0)),
                    2 => Activation::Sigmoid,
                    _ => Activation::Tanh,
                }
            };
            b = b.hidden(rng.gen_range(1..=8), act);
        }
        let out_act = if rng.gen_bool(0.3) { Activation::Relu } else { Activation::Identity };
        let net = b.output(rng.gen_range(1..=4), out_act).build().unwrap();
        let bytes = export_onnx(&net).unwrap();
        let back = import_onnx(&bytes).unwrap();
        prop_assert_eq!(back.n_inputs(), n_in);
        prop_assert_eq!(back.n_outputs(), net.n_outputs());
        if exact {
            prop_assert_eq!(back.layers().len(), net.layers().len());
            for (a, c) in net.layers().iter().zip(back.layers()) {
                prop_assert_eq!(a.weights(), c.weights());
                prop_assert_eq!(a.bias(), c.bias());
                prop_assert_eq!(a.activation(), c.activation());
            }
        }
        for _ in 0..10 {
            let x: Vec<f64> = (0..n_in).map(|_| rng.gen_range(-3.0..3.0)).collect();
            let y = net.forward(&DVector::from_column_slice(&x)).unwrap();
            let y_back = back.forward(&DVector::from_column_slice(&x)).unwrap();
            let y_graph = evaluate_graph(&bytes, &x).unwrap();
            for k in 0..y.len() {
                let tol = if exact { 1e-12 } else { 1e-6 } * (1.0 + y[k].abs());
                prop_assert!((y[k] - y_back[k]).abs() <= tol, "import: {} vs {}", y[k], y_back[k]);
                prop_assert!((y[k] - y_graph[k]).abs() <= tol, "graph: {} vs {}", y[k], y_graph[k]);
            }
        }
        // Damaged files: an error or some network, never a panic.
        let mut bad = bytes.clone();
        let i = rng.gen_range(0..bad.len());
        bad[i] ^= 1 << rng.gen_range(0..8);
        let _ = import_onnx(&bad);
        let _ = import_onnx(&bytes[..rng.gen_range(0..bytes.len())]);
    }
}

#[test]
fn skip_features_are_refused() {
    let net = MlpBuilder::new(3)
        .hidden(4, Activation::Relu)
        .output(1, Activation::Identity)
        .skip_features(vec![1])
        .build()
        .unwrap();
    let err = export_onnx(&net).unwrap_err();
    assert!(err.to_string().contains("skip features"), "{err}");
}

#[test]
fn acasxu_networks_survive_a_round_trip() {
    let Some(dir) = real_data_dir() else { return };
    let d = dir.root().join("acasxu");
    let mut n = 0;
    for e in std::fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "onnx") {
            continue;
        }
        let net = import_onnx(&std::fs::read(&p).unwrap()).unwrap();
        let back = import_onnx(&export_onnx(&net).unwrap()).unwrap();
        for (a, c) in net.layers().iter().zip(back.layers()) {
            assert_eq!(a.weights(), c.weights(), "{}", p.display());
            assert_eq!(a.bias(), c.bias());
        }
        n += 1;
    }
    assert_eq!(n, 45);
}
