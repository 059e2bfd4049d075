//! `provenn certify --monotone` end to end on a saved network whose monotonicity is known by
//! construction: `y = relu(x0 − x1) + 0.5·relu(x0 − 0.8)` is increasing in `x0` and decreasing
//! in `x1` on [0,1]², so "increasing in x1" must come back violated with a pair that the test
//! re-evaluates itself.
mod common;

use nalgebra::{DMatrix, DVector};
use provenn::nn::{io, Dense};
use provenn::{Activation, Mlp};

fn net() -> Mlp {
    let hidden = Dense::new(
        DMatrix::from_row_slice(2, 2, &[1.0, -1.0, 1.0, 0.0]),
        DVector::from_column_slice(&[0.0, -0.8]),
        Activation::Relu,
    )
    .unwrap();
    let out = Dense::new(
        DMatrix::from_row_slice(1, 2, &[1.0, 0.5]),
        DVector::zeros(1),
        Activation::Identity,
    )
    .unwrap();
    Mlp::from_layers(2, vec![hidden, out], vec![]).unwrap()
}

fn certify(path: &std::path::Path, spec: &str) -> (Option<i32>, String) {
    let path = path.as_os_str();
    common::run_provenn([
        "certify".as_ref(),
        "--net".as_ref(),
        path,
        "--monotone".as_ref(),
        spec.as_ref(),
    ])
}

/// The numbers after `label` on the line that starts with it, e.g. `  x  = [0.1, 0.2]`.
fn vector(text: &str, label: &str) -> Vec<f64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {text}"));
    let inner = line
        .split_once('[')
        .unwrap()
        .1
        .trim_end()
        .trim_end_matches(']');
    inner
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

#[test]
fn monotone_features_certify_and_a_wrong_direction_gets_a_checked_pair() {
    let dir = std::env::temp_dir().join(format!("provenn-cli-mono-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.json");
    let f = net();
    io::save(&f, &path).unwrap();

    let (code, text) = certify(&path, "0:inc,1:dec");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("increasing in 0: certified"), "{text}");
    assert!(text.contains("decreasing in 1: certified"), "{text}");

    let (code, text) = certify(&path, "1:inc");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("increasing in 1: violated"), "{text}");
    let (x, x2) = (vector(&text, "x  ="), vector(&text, "x2 ="));
    assert!(x2[1] > x[1] && x2[0] == x[0], "{x:?} {x2:?}");
    let y = |p: &[f64]| f.forward(&DVector::from_column_slice(p)).unwrap()[0];
    assert!(y(&x2) < y(&x) - 1e-5, "{x:?} → {x2:?}");

    for (bad, says) in [
        ("0:up", "not inc or dec"),
        ("5:inc", "out of range"),
        ("age:inc", "not a column index"),
        ("0", "not FEATURE:inc"),
    ] {
        let (code, text) = certify(&path, bad);
        assert!(code != Some(0) && code != Some(2), "{bad}: {text}");
        assert!(text.contains(says), "{bad}: {text}");
        assert!(!text.contains("panicked"), "{bad}: {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
