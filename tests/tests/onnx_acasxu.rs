//! ONNX and .nnet import on the 45 ACAS Xu networks: the imported network agrees with a
//! node-by-node interpretation of the ONNX graph, and with its `.nnet` form (written from the
//! import and read back) to 1e-9 on 10,000 random inputs per network. Corrupted files give
//! errors, never panics.
use nalgebra::DMatrix;
use proptest::prelude::*;
use provenn_nn::nnet::{read_nnet, write_nnet};
use provenn_nn::onnx::{evaluate_graph, import_onnx};
use provenn_tests::real_data_dir;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The normalised ACAS Xu input box (prop_1–4 cover this range).
const DOMAIN: [(f64, f64); 5] = [
    (-0.33, 0.68),
    (-0.5, 0.5),
    (-0.5, 0.5),
    (-0.5, 0.5),
    (-0.5, 0.5),
];

fn net_files() -> Option<Vec<std::path::PathBuf>> {
    let dir = real_data_dir()?;
    let mut v: Vec<_> = std::fs::read_dir(dir.root().join("acasxu"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    v.sort();
    Some(v)
}

#[test]
fn all_45_networks_import_and_agree() {
    let Some(files) = net_files() else { return };
    assert_eq!(files.len(), 45);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut worst = 0.0f64;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let net = import_onnx(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(
            net.summary(),
            "5-[50 relu]-[50 relu]-[50 relu]-[50 relu]-[50 relu]-[50 relu]-[5 identity]",
            "{}",
            f.display()
        );
        // independent path: the graph interpreted node by node
        for _ in 0..200 {
            let x: Vec<f64> = DOMAIN.iter().map(|(l, h)| rng.gen_range(*l..=*h)).collect();
            let a = net
                .forward(&nalgebra::DVector::from_vec(x.clone()))
                .unwrap();
            let b = evaluate_graph(&bytes, &x).unwrap();
            for (p, q) in a.iter().zip(&b) {
                let err = (p - q).abs() / (1.0 + q.abs());
                worst = worst.max(err);
                assert!(err <= 1e-9, "{}: {p} vs {q}", f.display());
            }
        }
        // .nnet written from the import and read back
        let text = write_nnet(&net, &DOMAIN).unwrap();
        let back = read_nnet(&text).unwrap();
        assert_eq!(back.domain, DOMAIN.to_vec());
        let xs = DMatrix::from_fn(10_000, 5, |_, j| rng.gen_range(DOMAIN[j].0..=DOMAIN[j].1));
        let (ya, yb) = (
            net.forward_batch(&xs).unwrap(),
            back.net.forward_batch(&xs).unwrap(),
        );
        assert!((ya - yb).abs().max() <= 1e-9, "{}", f.display());
    }
    eprintln!("worst relative difference import vs graph interpretation: {worst:e}");
}

#[test]
fn nnet_normalisation_is_folded_exactly_enough() {
    // a 1-layer net y = 2·((x − 1)/4) + 0.5, output de-normalised by ·3 + 10
    let text = "// test\n1,1,1,1,\n1,1,\n0,\n-5,\n5,\n1,10,\n4,3,\n2,\n0.5,\n";
    let m = read_nnet(text).unwrap();
    let y = m
        .net
        .forward(&nalgebra::DVector::from_vec(vec![3.0]))
        .unwrap()[0];
    assert!((y - ((2.0 * (3.0 - 1.0) / 4.0 + 0.5) * 3.0 + 10.0)).abs() < 1e-12);
    assert_eq!(m.domain, vec![(-5.0, 5.0)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_files_give_errors(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let Some(files) = net_files() else { return Ok(()) };
        let bytes = std::fs::read(&files[0]).unwrap();
        let mut b = bytes.clone();
        for (i, v) in &flips {
            let k = i.index(b.len());
            b[k] ^= v | 1;
        }
        let _ = import_onnx(&b);
        let _ = import_onnx(&bytes[..cut.index(bytes.len())]);
        let net = import_onnx(&bytes).unwrap();
        let text = write_nnet(&net, &DOMAIN).unwrap();
        let mut t: Vec<char> = text.chars().collect();
        for (i, v) in &flips {
            let k = i.index(t.len());
            t[k] = char::from(b' ' + v % 95);
        }
        let t: String = t.into_iter().collect();
        let _ = read_nnet(&t);
        let _ = read_nnet(&text[..cut.index(text.len())]);
    }
}
