//! `nn-sanity`: plain MLPs on Iris and Wine; checks that the network stack learns.
use std::fmt::Write as _;

use anyhow::Result;
use provenn::data::{catalog, split, LoadOptions};
use provenn::train::ffn::{score, FfnParams, Score};
use provenn::Activation;

use super::{Ctx, Experiment, Mode};
use crate::plot;

pub struct NnSanity;

impl Experiment for NnSanity {
    fn name(&self) -> &'static str {
        "nn-sanity"
    }
    fn title(&self) -> &'static str {
        "plain MLPs on Iris and Wine (stratified 70/10/20 split)"
    }
    fn required_files(&self) -> &'static [&'static str] {
        &["iris.csv", "wine.csv"]
    }
    fn run(&self, ctx: &Ctx) -> Result<String> {
        let (seeds, epochs) = match ctx.mode {
            Mode::Smoke => (1, 30),
            Mode::Quick => (5, 300),
            Mode::Full => (20, 500),
        };
        let mut md = String::new();
        let _ = writeln!(md, "Network 16-16 ReLU, Adam lr 0.01, batch 16, up to {epochs} epochs with early stopping on the validation split (patience 30), {seeds} seed(s). Inputs min-max scaled to [0, 1]. There is no paper number for this check; the bar is the acceptance criterion (Iris ≥ 0.90).\n");
        let _ = writeln!(md, "| dataset | rows | test accuracy (mean ± sd) | min | expected | epochs run (mean) | train time per model (s) |\n|---|---|---|---|---|---|---|");
        let mut curves = Vec::new();
        for (name, expected) in [("iris", "≥ 0.90"), ("wine", "≥ 0.90 (typical for MLPs)")] {
            let d = catalog::load(name, &ctx.data, &LoadOptions::default())?.dataset;
            let mut accs = Vec::new();
            let mut epochs_run = 0.0;
            let t0 = std::time::Instant::now();
            for seed in 0..seeds {
                let s = split::train_val_test(d.n_rows(), 0.1, 0.2, d.targets.labels(), seed)?;
                let (tr, va, te) = (
                    d.select(&s.train),
                    d.select(&s.validation),
                    d.select(&s.test),
                );
                let fitted = FfnParams {
                    hidden: vec![16, 16],
                    activation: Activation::Relu,
                    epochs,
                    batch_size: 16,
                    learning_rate: 0.01,
                    patience: Some(30),
                    seed,
                    ..Default::default()
                }
                .build()?
                .fit(&tr, Some(&va), &mut |_| {})?;
                if let Score::Accuracy(a) = score(&fitted.net, &te)? {
                    accs.push(a);
                }
                epochs_run += fitted.epochs_run as f64;
                if seed == 0 {
                    curves.push((name.to_string(), fitted.loss_curve.clone()));
                }
            }
            let per_model = t0.elapsed().as_secs_f64() / seeds as f64;
            let n = accs.len() as f64;
            let mean = accs.iter().sum::<f64>() / n;
            let sd = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
            let min = accs.iter().copied().fold(f64::INFINITY, f64::min);
            let _ = writeln!(md, "| {name} | {} | {mean:.3} ± {sd:.3} | {min:.3} | {expected} | {:.0} | {per_model:.2} |", d.n_rows(), epochs_run / seeds as f64);
            if name == "iris" && ctx.mode != Mode::Smoke && mean < 0.9 {
                anyhow::bail!("iris test accuracy {mean:.3} is below 0.90");
            }
        }
        let png = ctx.out.join("nn-sanity-loss.png");
        plot::lines(
            &png,
            "nn-sanity: training loss (seed 0)",
            "epoch",
            "cross-entropy",
            &curves,
        )?;
        let _ = writeln!(md, "\n![training loss](nn-sanity-loss.png)");
        Ok(md)
    }
}
