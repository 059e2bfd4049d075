//! Scratch: time explanation queries on Digits.
use provenn::bounds::InputBox;
use provenn::data::{catalog, split, LoadOptions};
use provenn::milp::{AbductiveExplainer, ExplainMode, ExplainOptions, Tightening};
use provenn::train::ffn::FfnParams;
use provenn::{Activation, DataDir};

fn main() {
    let dir = DataDir::resolve(None);
    let d = catalog::load("digits", &dir, &LoadOptions::default())
        .unwrap()
        .dataset;
    let s = split::train_val_test(d.n_rows(), 0.0, 0.1, d.targets.labels(), 0).unwrap();
    let (tr, te) = (d.select(&s.train), d.select(&s.test));
    let hidden: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or("8,8".into())
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let net = FfnParams {
        hidden,
        activation: Activation::Relu,
        epochs: 100,
        batch_size: 8,
        learning_rate: 1e-3,
        patience: None,
        seed: 0,
        ..Default::default()
    }
    .build()
    .unwrap()
    .fit(&tr, None, &mut |_| {})
    .unwrap()
    .net;
    let lo: Vec<f64> = d.x.column_iter().map(|c| c.min()).collect();
    let hi: Vec<f64> = d.x.column_iter().map(|c| c.max()).collect();
    let domain = InputBox::new(lo, hi).unwrap();
    let ex = AbductiveExplainer::new(
        &net,
        domain,
        ExplainOptions {
            mode: ExplainMode::BoxSimplify,
            tightening: Tightening::Milp,
            time_limit: None,
            falsify: std::env::var("NOFALS").is_err(),
            crown: std::env::var("NOCROWN").is_err(),
        },
    )
    .unwrap();
    println!(
        "global {:?} stable {:?}",
        ex.global_bounds().time,
        ex.global_stats()
    );
    let x: Vec<f64> = te.x.row(0).iter().copied().collect();
    for mode in ExplainMode::ALL {
        let t = std::time::Instant::now();
        let e = ex.with_mode(mode).explain(&x).unwrap();
        println!(
            "{:?}: {:?} size {} stats {:?}",
            mode,
            t.elapsed(),
            e.features.len(),
            e.stats
        );
    }
}
