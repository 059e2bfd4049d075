//! `hardnet-acas`: "learning safe decision logic for aircraft systems" (HardNet v1/v2). The
//! ACAS Xu network N(1,1) is distilled into a smaller MLP on sampled inputs, once plain and once
//! with HardNet-Aff enforcing ACAS Xu properties 1, 5 and 6 as input-dependent affine
//! constraints (active only inside each property's input region). Both students are then
//! verified with `provenn verify`'s procedure on the VNN-LIB files of those properties — a
//! different encoding from the one that trained them: the HardNet student is written as a ReLU
//! network per cell of its regions (`HardNetModel::enforced_network`), and every witness is
//! re-checked on the model itself.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nalgebra::{DMatrix, DVector};
use provenn::bounds::InputBox;
use provenn::dsl::ir::Assignment;
use provenn::dsl::vnnlib::{read_vnnlib, VnnLib};
use provenn::hardnet::train::{fit, FnConstraint, HardNetModel, HardNetParams, Method};
use provenn::hardnet::{AffineConstraint, Dc3Params, HardNetError};
use provenn::milp::{PropertyVerifier, Verdict, VerifyOptions};
use provenn::nn::onnx::import_onnx;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Ctx, Experiment, Mode};

pub struct HardnetAcas;

/// The normalised input domain of the ACAS Xu networks ((x − mean) / range of the .nnet
/// min/max; the VNN-LIB boxes use the same coordinates).
const DOMAIN: [(f64, f64); 5] = [
    (-0.328_422_877, 0.679_857_769),
    (-0.5, 0.5),
    (-0.5, 0.5),
    (-0.5, 0.5),
    (-0.5, 0.5),
];

/// Inward slack of the enforced rows (normalised output units): the VNN-LIB unsafe sets are
/// closed (`≤`), so the properties need strict inequalities.
const SLACK: f64 = 1e-3;

/// A property: its VNN-LIB form (regions and unsafe set, used for checking) and the affine
/// rows `a·y ≤ b` the HardNet student enforces inside its regions (from Katz et al.'s
/// definitions, written independently of the VNN-LIB file).
struct Property {
    name: &'static str,
    spec: VnnLib,
    rows: Vec<(Vec<f64>, f64)>,
}

fn unit(k: usize) -> Vec<f64> {
    let mut e = vec![0.0; 5];
    e[k] = 1.0;
    e
}

/// `y_k − y_j ≤ −SLACK` for every `j ≠ k`: advisory `k` is strictly minimal.
fn minimal(k: usize) -> Vec<(Vec<f64>, f64)> {
    (0..5)
        .filter(|&j| j != k)
        .map(|j| {
            let mut a = unit(k);
            a[j] = -1.0;
            (a, -SLACK)
        })
        .collect()
}

fn inside(b: &[(f64, f64)], x: &[f64]) -> bool {
    b.iter().zip(x).all(|(&(l, u), v)| l <= *v && *v <= u)
}

/// The constraint at `x`: the rows of every property whose region contains `x`; a vacuous
/// row (unbounded both ways, so the layer is the identity) elsewhere.
fn constraint_at(props: &[Property], x: &[f64]) -> Result<AffineConstraint, HardNetError> {
    let rows: Vec<&(Vec<f64>, f64)> = props
        .iter()
        .filter(|p| p.spec.input_boxes.iter().any(|b| inside(b, x)))
        .flat_map(|p| &p.rows)
        .collect();
    if rows.is_empty() {
        return Ok(AffineConstraint {
            a: DMatrix::from_row_slice(1, 5, &unit(0)),
            lower: DVector::from_element(1, f64::NEG_INFINITY),
            upper: DVector::from_element(1, f64::INFINITY),
        });
    }
    Ok(AffineConstraint {
        a: DMatrix::from_fn(rows.len(), 5, |r, k| rows[r].0[k]),
        lower: DVector::from_element(rows.len(), f64::NEG_INFINITY),
        upper: DVector::from_iterator(rows.len(), rows.iter().map(|r| r.1)),
    })
}

/// Cells of `bx` cut at every region bound that falls inside it, so that the set of regions
/// containing a cell's interior is constant on the cell. A point on a cell's face that lies in
/// a region also lies in the neighbouring cell inside that region (boxes are closed), which is
/// checked with that region's rows.
fn cells(bx: &[(f64, f64)], regions: &[&Vec<(f64, f64)>]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for (j, &(l, u)) in bx.iter().enumerate() {
        let mut cuts: Vec<f64> = regions
            .iter()
            .flat_map(|r| [r[j].0, r[j].1])
            .filter(|&c| c > l && c < u)
            .collect();
        cuts.push(l);
        cuts.push(u);
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let pieces: Vec<(f64, f64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        out = out
            .into_iter()
            .flat_map(|c: Vec<(f64, f64)>| {
                pieces.iter().map(move |&p| {
                    let mut c = c.clone();
                    c.push(p);
                    c
                })
            })
            .collect();
    }
    out
}

fn sample(rng: &mut ChaCha8Rng, props: &[Property], n: usize) -> DMatrix<f64> {
    let boxes: Vec<&Vec<(f64, f64)>> = props.iter().flat_map(|p| &p.spec.input_boxes).collect();
    let mut x = DMatrix::zeros(n, 5);
    for i in 0..n {
        // Half the points inside the property regions, so that they shape the fit there.
        let b: &[(f64, f64)] = if rng.gen_bool(0.5) {
            &DOMAIN
        } else {
            boxes[rng.gen_range(0..boxes.len())]
        };
        for (j, &(l, u)) in b.iter().enumerate() {
            x[(i, j)] = rng.gen_range(l..=u);
        }
    }
    x
}

fn argmin(v: &[f64]) -> usize {
    (0..v.len())
        .min_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

/// Verdict of one student on one property, over every cell of its regions.
fn verify(
    model: &HardNetModel,
    props: &[Property],
    p: &Property,
    limit: Duration,
    milp_depth: usize,
) -> Result<(String, Duration)> {
    let start = Instant::now();
    // The plain student is one network everywhere: its boxes need no cells.
    let regions: Vec<&Vec<(f64, f64)>> = if model.method == Method::HardNetAff {
        props.iter().flat_map(|q| &q.spec.input_boxes).collect()
    } else {
        Vec::new()
    };
    let src = FnConstraint(|x: &[f64]| constraint_at(props, x));
    let mut unknown = None;
    for bx in &p.spec.input_boxes {
        for cell in cells(bx, &regions) {
            let remaining = limit.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                return Ok(("unknown (time limit)".into(), start.elapsed()));
            }
            let net = if model.method == Method::HardNetAff {
                let centre: Vec<f64> = cell.iter().map(|(l, u)| 0.5 * (l + u)).collect();
                let (lo, hi): (Vec<f64>, Vec<f64>) = cell.iter().copied().unzip();
                let bx = InputBox::new(lo, hi)?;
                model.enforced_network(&constraint_at(props, &centre)?, Some(&bx))?
            } else {
                model.net.clone()
            };
            let sub = VnnLib {
                input_boxes: vec![cell],
                ..p.spec.clone()
            };
            let v = PropertyVerifier::new(VerifyOptions {
                time_limit: remaining,
                milp_depth,
                // Up to 54 cells share the limit; a short attack per cell leaves time to bound.
                attack_restarts: 4,
                ..VerifyOptions::default()
            })?;
            match v.verify(&net, &sub)?.verdict {
                Verdict::Unsat => {}
                Verdict::Sat { x, .. } => {
                    // The witness must violate on the model itself, with its own layer.
                    let y = model.predict(&DMatrix::from_row_slice(1, 5, &x), &src)?;
                    let y: Vec<f64> = y.row(0).iter().copied().collect();
                    let a = Assignment {
                        x: &x,
                        y: &y,
                        x2: &[],
                        y2: &[],
                    };
                    if p.spec.input_boxes.iter().any(|b| inside(b, &x))
                        && p.spec.unsafe_output.holds(&a)
                    {
                        return Ok((format!("sat (x = {x:.4?})"), start.elapsed()));
                    }
                    unknown.get_or_insert(
                        "unknown (a cell's witness does not violate on the model)".to_string(),
                    );
                }
                Verdict::Unknown { reason } => {
                    unknown.get_or_insert(format!("unknown ({reason})"));
                }
            }
        }
    }
    Ok((unknown.unwrap_or_else(|| "unsat".into()), start.elapsed()))
}

impl Experiment for HardnetAcas {
    fn name(&self) -> &'static str {
        "hardnet-acas"
    }
    fn title(&self) -> &'static str {
        "HardNet: distilling ACAS Xu N(1,1) with properties 1, 5 and 6 enforced (HardNet v1/v2)"
    }
    fn required_files(&self) -> &'static [&'static str] {
        &[
            "acasxu/ACASXU_run2a_1_1_batch_2000.onnx",
            "acasxu/prop_1.vnnlib",
            "acasxu/prop_5.vnnlib",
            "acasxu/prop_6.vnnlib",
        ]
    }
    fn run(&self, ctx: &Ctx) -> Result<String> {
        let dir = ctx.data.root().join("acasxu");
        let teacher = import_onnx(&std::fs::read(
            dir.join("ACASXU_run2a_1_1_batch_2000.onnx"),
        )?)
        .context("N(1,1)")?;
        let spec = |f: &str| -> Result<VnnLib> {
            Ok(read_vnnlib(&std::fs::read_to_string(dir.join(f))?)?)
        };
        let props = vec![
            Property {
                name: "1 (COC score ≤ 1500)",
                spec: spec("prop_1.vnnlib")?,
                rows: vec![(unit(0), 3.991_125_645_861_615 - SLACK)],
            },
            Property {
                name: "5 (strong right minimal)",
                spec: spec("prop_5.vnnlib")?,
                rows: minimal(4),
            },
            Property {
                name: "6 (COC minimal)",
                spec: spec("prop_6.vnnlib")?,
                rows: minimal(0),
            },
        ];
        let (n_train, n_test, epochs, limit) = match ctx.mode {
            Mode::Smoke => (400, 200, 2, Duration::from_secs(5)),
            Mode::Quick => (8000, 4000, 200, Duration::from_secs(116)),
            Mode::Full => (40_000, 10_000, 500, Duration::from_secs(116)),
        };
        let milp_depth = 40;
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        let x = sample(&mut rng, &props, n_train);
        let x_test = sample(&mut rng, &props, n_test);
        let y = teacher.forward_batch(&x)?;
        let y_test = teacher.forward_batch(&x_test)?;
        let src = FnConstraint(|x: &[f64]| constraint_at(&props, x));
        let mut md = String::new();
        let _ = writeln!(md, "Teacher: VNN-COMP's ONNX N(1,1) (5-300-5, ReLU), on normalised inputs. Students: MLP 5-64-64-64-5 (ReLU), Adam lr 1e-3, batch 128, {epochs} epochs, MSE to the teacher's scores on {n_train} inputs (half uniform on the domain, half in the property regions), 1 seed; test on {n_test} fresh inputs drawn the same way. HardNet-Aff enforces, inside each region, property 1 as `y_COC ≤ 3.99113 − {SLACK}` and properties 5 and 6 as `y_k − y_j ≤ −{SLACK}` (advisory k strictly minimal), with 5 rows where regions 1 and 6 overlap and the identity elsewhere. Violations on test points are counted by the DSL evaluator of the VNN-LIB unsafe set. Verification: `provenn verify`'s procedure on each property's VNN-LIB form, {}s per property and student; the HardNet student is written as a ReLU network per cell of the region arrangement (`HardNetModel::enforced_network` with the cell's box, so that the pass-through is exact for bound propagation; MILP leaves from depth {milp_depth}), and witnesses are re-checked on the model itself. The paper's ACAS Xu set-up and numbers were not recoverable (see `notes/hardnet.md`), so there is no paper column; the teacher's own verdicts (VNN-COMP 2021: properties 1, 5, 6 hold on N(1,1)) are the reference.\n", limit.as_secs());
        let _ = writeln!(md, "| student | MSE to teacher | advisory agrees | test points in regions 1 / 5 / 6 | violations 1 / 5 / 6 | verify 1 | verify 5 | verify 6 | T_train (s) |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for method in [Method::Nn, Method::HardNetAff] {
            let params = HardNetParams {
                method,
                hidden: vec![64, 64, 64],
                epochs,
                batch_size: 128,
                learning_rate: 1e-3,
                soft_weight: 0.0,
                warm_epochs: 0,
                dc3: Dc3Params::default(),
                seed: 7,
            };
            let model = fit(&params, &x, &y, &src)?;
            let pred = model.predict(&x_test, &src)?;
            let mse = (&pred - &y_test).norm_squared() / (n_test * 5) as f64;
            let agree = (0..n_test)
                .filter(|&i| {
                    let a: Vec<f64> = pred.row(i).iter().copied().collect();
                    let b: Vec<f64> = y_test.row(i).iter().copied().collect();
                    argmin(&a) == argmin(&b)
                })
                .count() as f64
                / n_test as f64;
            let mut counts = Vec::new();
            let mut viols = Vec::new();
            for p in &props {
                let (mut n, mut v) = (0, 0);
                for i in 0..n_test {
                    let xi: Vec<f64> = x_test.row(i).iter().copied().collect();
                    if !p.spec.input_boxes.iter().any(|b| inside(b, &xi)) {
                        continue;
                    }
                    n += 1;
                    let yi: Vec<f64> = pred.row(i).iter().copied().collect();
                    let a = Assignment {
                        x: &xi,
                        y: &yi,
                        x2: &[],
                        y2: &[],
                    };
                    v += usize::from(p.spec.unsafe_output.holds(&a));
                }
                counts.push(n.to_string());
                viols.push(v);
            }
            if method == Method::HardNetAff && viols.iter().any(|&v| v > 0) {
                anyhow::bail!("HardNet-Aff violates a property on a test point: {viols:?}");
            }
            let mut verdicts = Vec::new();
            for p in &props {
                let (v, t) = verify(&model, &props, p, limit, milp_depth)
                    .with_context(|| format!("property {}", p.name))?;
                eprintln!(
                    "[hardnet-acas] {} property {}: {v} in {t:.2?}",
                    method.name(),
                    p.name
                );
                verdicts.push(format!("{v} ({:.1} s)", t.as_secs_f64()));
            }
            let viols: Vec<String> = viols.iter().map(usize::to_string).collect();
            let _ = writeln!(
                md,
                "| {} | {mse:.4} | {:.3} | {} | {} | {} | {} | {} | {:.1} |",
                method.name(),
                agree,
                counts.join(" / "),
                viols.join(" / "),
                verdicts[0],
                verdicts[1],
                verdicts[2],
                model.train_time.as_secs_f64()
            );
        }
        Ok(md)
    }
}
