//! The ten ACAS Xu VNN-LIB properties: they parse, their IR agrees with a direct reading of
//! the files on sampled points, and write → read reproduces them.
use provenn_dsl::ir::Assignment;
use provenn_dsl::vnnlib::{read_vnnlib, write_vnnlib};
use provenn_tests::real_data_dir;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The unsafe output conditions, transcribed by hand from the files.
fn direct(prop: usize, y: &[f64]) -> bool {
    let le = |a: usize, b: usize| y[a] <= y[b];
    match prop {
        1 => y[0] >= 3.991125645861615,
        2 => (1..5).all(|i| le(i, 0)),
        3 | 4 => (1..5).all(|i| le(0, i)),
        5 => [0, 1, 2, 3].iter().any(|&i| le(i, 4)),
        6 | 10 => (1..5).any(|i| le(i, 0)),
        7 => [3, 4].iter().any(|&k| [0, 1, 2].iter().all(|&i| le(k, i))),
        8 => [2, 3, 4].iter().any(|&k| [0, 1].iter().all(|&i| le(k, i))),
        9 => [0, 1, 2, 4].iter().any(|&i| le(i, 3)),
        _ => unreachable!(),
    }
}

#[test]
fn all_ten_properties_parse_evaluate_and_round_trip() {
    let Some(dir) = real_data_dir() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for prop in 1..=10 {
        let path = dir
            .root()
            .join("acasxu")
            .join(format!("prop_{prop}.vnnlib"));
        let text = std::fs::read_to_string(&path).unwrap();
        let p = read_vnnlib(&text).unwrap_or_else(|e| panic!("prop {prop}: {e}"));
        assert_eq!((p.n_inputs, p.n_outputs), (5, 5));
        assert_eq!(
            p.input_boxes.len(),
            if prop == 6 { 2 } else { 1 },
            "prop {prop}"
        );
        for b in &p.input_boxes {
            assert!(
                b.iter().all(|(l, h)| l <= h && *l >= -0.6 && *h <= 0.71),
                "prop {prop}: {b:?}"
            );
        }
        let mut agree = 0;
        for _ in 0..2000 {
            let b = &p.input_boxes[rng.gen_range(0..p.input_boxes.len())];
            let x: Vec<f64> = b.iter().map(|(l, h)| rng.gen_range(*l..=*h)).collect();
            // outputs near the thresholds and ties, to exercise every comparison
            let y: Vec<f64> = (0..5)
                .map(|_| {
                    if rng.gen_bool(0.2) {
                        3.991125645861615
                    } else {
                        rng.gen_range(-1.0..5.0f64).round() / 2.0
                    }
                })
                .collect();
            let ir = p.unsafe_output.holds(&Assignment {
                x: &x,
                y: &y,
                x2: &[],
                y2: &[],
            });
            assert_eq!(ir, direct(prop, &y), "prop {prop} at y = {y:?}");
            agree += 1;
        }
        assert_eq!(agree, 2000);
        let written = write_vnnlib(&p).expect("expressible");
        let back = read_vnnlib(&written).unwrap();
        assert_eq!(back, p, "prop {prop} round trip:\n{written}");
    }
}
