//! `bounds-tightness`: interval vs CROWN bounds on the 45 ACAS Xu networks (imported from
//! ONNX; He-initialised networks of the same shape when the data is absent, labelled so) and
//! an MNIST-shaped network, with stability counts and timing.
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;
use provenn::bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
use provenn::{Activation, MlpBuilder};

use super::{Ctx, Experiment, Mode};

pub struct BoundsTightness;

impl Experiment for BoundsTightness {
    fn name(&self) -> &'static str {
        "bounds-tightness"
    }
    fn title(&self) -> &'static str {
        "interval (IBP) vs CROWN bounds: output width, stability, time"
    }
    fn required_files(&self) -> &'static [&'static str] {
        &[]
    }
    fn run(&self, ctx: &Ctx) -> Result<String> {
        let (nets, boxes) = match ctx.mode {
            Mode::Smoke => (2, 2),
            Mode::Quick => (10, 10),
            Mode::Full => (45, 20),
        };
        let mut md = String::new();
        let acas_dir = ctx.data.root().join("acasxu");
        let mut real: Vec<provenn::Mlp> = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&acas_dir) {
            let mut files: Vec<_> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
                .collect();
            files.sort();
            for f in files.into_iter().take(nets) {
                real.push(provenn::nn::onnx::import_onnx(&std::fs::read(&f)?)?);
            }
        }
        let acas_label = if real.is_empty() {
            "acasxu-shape (SYNTHETIC weights: acasxu/ missing)"
        } else {
            "acasxu (VNN-COMP 2021 networks)"
        };
        let _ = writeln!(md, "ACAS Xu networks (5 inputs, 6 hidden ReLU layers of 50, 5 outputs): {acas_label}, over random sub-boxes of the normalised ACAS Xu input domain (width 10–50% per feature), and a 784-100-100-10 He-initialised network over ℓ∞ balls of radius 0.01 in [0,1]^784. Both propagators are sound for the f64 forward pass (see provenn-bounds' docs). No paper reports this comparison; auto_LiRPA's CROWN is the reference method.\n");
        let _ = writeln!(md, "| network | boxes | mean output width IBP | mean output width CROWN | CROWN/IBP | unstable ReLUs IBP | unstable ReLUs CROWN | ms/box IBP | ms/box CROWN |\n|---|---|---|---|---|---|---|---|---|");
        let mut rng_state = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            rng_state ^= rng_state << 13;
            rng_state ^= rng_state >> 7;
            rng_state ^= rng_state << 17;
            (rng_state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut rows = Vec::new();
        for kind in [acas_label, "mnist-shape"] {
            let (mut wi, mut wc, mut ui, mut uc, mut ti, mut tc, mut count) =
                (0.0, 0.0, 0usize, 0usize, 0.0, 0.0, 0usize);
            let n_nets = if kind == "mnist-shape" {
                nets.min(3)
            } else {
                nets
            };
            for s in 0..n_nets {
                let net = if kind == acas_label && !real.is_empty() {
                    real[s % real.len()].clone()
                } else if kind == acas_label {
                    let mut b = MlpBuilder::new(5).seed(s as u64);
                    for _ in 0..6 {
                        b = b.hidden(50, Activation::Relu);
                    }
                    b.output(5, Activation::Identity).build()?
                } else {
                    MlpBuilder::new(784)
                        .hidden(100, Activation::Relu)
                        .hidden(100, Activation::Relu)
                        .output(10, Activation::Identity)
                        .seed(s as u64)
                        .build()?
                };
                for _ in 0..boxes {
                    let dom = if kind == acas_label {
                        let (lo, hi): (Vec<f64>, Vec<f64>) = (0..5)
                            .map(|_| {
                                let w = 0.1 + 0.4 * rnd();
                                let l = -0.5 + (1.0 - w) * rnd();
                                (l, l + w)
                            })
                            .unzip();
                        InputBox::new(lo, hi)?
                    } else {
                        let x: Vec<f64> = (0..784).map(|_| rnd()).collect();
                        InputBox::linf_ball(&x, 0.01, Some(&InputBox::unit(784)))?
                    };
                    let t = Instant::now();
                    let i = IntervalBounds.bounds(&net, &dom, None)?;
                    ti += t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    let c = CrownBounds.bounds(&net, &dom, None)?;
                    tc += t.elapsed().as_secs_f64();
                    wi += i.output().mean_width();
                    wc += c.output().mean_width();
                    ui += i
                        .stability()
                        .iter()
                        .take(net.layers().len() - 1)
                        .map(|s| s.unstable)
                        .sum::<usize>();
                    uc += c
                        .stability()
                        .iter()
                        .take(net.layers().len() - 1)
                        .map(|s| s.unstable)
                        .sum::<usize>();
                    count += 1;
                }
            }
            let n = count as f64;
            rows.push((kind, wc / wi));
            let _ = writeln!(
                md,
                "| {kind} | {count} | {:.4e} | {:.4e} | {:.3} | {:.1} | {:.1} | {:.3} | {:.3} |",
                wi / n,
                wc / n,
                wc / wi,
                ui as f64 / n,
                uc as f64 / n,
                1e3 * ti / n,
                1e3 * tc / n
            );
        }
        for (kind, ratio) in rows {
            anyhow::ensure!(
                ratio < 1.0,
                "CROWN not tighter than IBP on {kind} (ratio {ratio})"
            );
        }
        Ok(md)
    }
}
