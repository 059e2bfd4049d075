//! `hardnet-cbf`: a safe control policy for a unicycle around two elliptical obstacles
//! (HardNet paper §5.3, v4 Table 4). The policy is `π = π_nom + y`, `y` the (enforced) network
//! output, trained through the simulator by backpropagation through time: each step's
//! Jacobian (state and network output in; next state and loss out) comes from forward-mode
//! dual numbers over the same simulator code that evaluates it; the network's share goes
//! through provenn-nn's VJP. Evaluation enforces with the library layers (HardNet-Aff, DC3's
//! correction) over an `FnConstraint` and cross-checks them against the simulator's own.
mod dual;
mod sim;

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nalgebra::{DMatrix, DVector};
use provenn::hardnet::train::SAFETY_MARGIN;
use provenn::hardnet::{
    AffineConstraint, ConvexSet, Dc3Params, FnConstraint, HardNetError, HardNetModel, Method,
};
use provenn::nn::optim::{Adam, AdamParams, Optimizer};
use provenn::nn::{Activation, Init, Mlp, MlpBuilder};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use self::dual::{Dual, Real, P};
use self::sim::{advance, cbf_rows, ellipse, encode, encode_vjp, residual, Enforce, STEPS};
use super::{Ctx, Experiment, Mode};
use crate::plot;

pub struct HardnetCbf;

/// Trajectory losses stop accumulating past this (the reference's `loss_max`).
const LOSS_MAX: f64 = 20_000.0;

/// Initial states uniform in the reference's box, resampled while inside a barrier's unsafe set.
fn initial_states(n: usize) -> Vec<[f64; 5]> {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = [
            rng.gen_range(-4.0..-3.5),
            rng.gen_range(0.0..0.5),
            rng.gen_range(-PI / 4.0..-PI / 8.0),
            0.0,
            0.0,
        ];
        if (0..2).all(|o| sim::barrier(&x, o).0 >= 0.0) {
            out.push(x);
        }
    }
    out
}

/// The simulator's enforcement for a method, in training or at test time.
fn enforcement(method: Method, dc3: &Dc3Params, training: bool) -> Enforce {
    match method {
        Method::HardNetAff => Enforce::Aff,
        Method::Dc3 => Enforce::Dc3 {
            steps: if training {
                dc3.train_steps
            } else {
                dc3.test_steps
            },
            lr: dc3.corr_lr,
            momentum: dc3.corr_momentum,
            eps: if training { 0.0 } else { dc3.eps },
        },
        _ => Enforce::None,
    }
}

/// The CBF constraint on the residual, read from the network's (encoded) input.
fn constraint_at(enc: &[f64]) -> Result<AffineConstraint, HardNetError> {
    let x = [enc[0], enc[1], enc[3].atan2(enc[2]), enc[4], enc[5]];
    let (a, b) = cbf_rows(&x);
    Ok(AffineConstraint {
        a: DMatrix::from_row_slice(2, 2, &[a[0][0], a[0][1], a[1][0], a[1][1]]),
        lower: DVector::from_element(2, f64::NEG_INFINITY),
        upper: DVector::from_vec(b.to_vec()),
    })
}

fn encode_batch(states: &[[f64; 5]]) -> DMatrix<f64> {
    DMatrix::from_fn(states.len(), 6, |s, k| encode(&states[s])[k])
}

/// One mini-batch: rollout with Jacobians, then backpropagation through time. Returns the
/// mean loss and the parameter gradients.
fn batch_gradient(
    net: &Mlp,
    starts: &[[f64; 5]],
    how: Enforce,
    lambda: f64,
) -> Result<(f64, provenn::nn::Gradients)> {
    let b = starts.len();
    let mut states = starts.to_vec();
    let mut cum = vec![0.0; b];
    let mut traces = Vec::with_capacity(STEPS);
    let mut history = Vec::with_capacity(STEPS);
    // Per step and sample: Jacobian rows of (next state ×5, weighted loss) in (x ×5, f ×2).
    let mut jacs: Vec<Vec<[[f64; P]; 6]>> = Vec::with_capacity(STEPS);
    let mut total = 0.0;
    for _ in 0..STEPS {
        let trace = net.trace(&encode_batch(&states))?;
        let f = trace.output();
        let mut jac_t = Vec::with_capacity(b);
        let mut next_states = Vec::with_capacity(b);
        for s in 0..b {
            let x: [Dual; 5] = std::array::from_fn(|k| Dual::var(states[s][k], k));
            let fo = [Dual::var(f[(s, 0)], 5), Dual::var(f[(s, 1)], 6)];
            let y = residual(&x, fo, how, SAFETY_MARGIN);
            let st = advance(&x, y);
            let loss =
                st.cost + Dual::c(lambda) * (st.viol[0] * st.viol[0] + st.viol[1] * st.viol[1]);
            // Losses count until the trajectory's total passes LOSS_MAX.
            let w = if cum[s] <= LOSS_MAX {
                1.0 / b as f64
            } else {
                0.0
            };
            cum[s] += loss.v;
            total += w * loss.v;
            let mut rows = [[0.0; P]; 6];
            for (row, v) in rows.iter_mut().zip(&st.next) {
                *row = v.d;
            }
            rows[5] = loss.d.map(|d| d * w);
            jac_t.push(rows);
            next_states.push(st.next.map(|v| v.v));
        }
        traces.push(trace);
        history.push(std::mem::replace(&mut states, next_states));
        jacs.push(jac_t);
    }
    let mut lam = vec![[0.0; 5]; b];
    let mut grads: Option<provenn::nn::Gradients> = None;
    for t in (0..STEPS).rev() {
        let mut g_f = DMatrix::zeros(b, 2);
        let mut x_part = vec![[0.0; 5]; b];
        for s in 0..b {
            let rows = &jacs[t][s];
            let mut v = [0.0; P];
            for (i, row) in rows.iter().enumerate() {
                let coef = if i < 5 { lam[s][i] } else { 1.0 };
                if coef != 0.0 {
                    for k in 0..P {
                        v[k] += coef * row[k];
                    }
                }
            }
            x_part[s].copy_from_slice(&v[..5]);
            g_f[(s, 0)] = v[5];
            g_f[(s, 1)] = v[6];
        }
        let (g, g_in) = net.backward(&traces[t], &g_f)?;
        match &mut grads {
            Some(acc) => acc.add_assign(&g),
            None => grads = Some(g),
        }
        for s in 0..b {
            let row: Vec<f64> = g_in.row(s).iter().copied().collect();
            let e = encode_vjp(&history[t][s], &row);
            for k in 0..5 {
                lam[s][k] = x_part[s][k] + e[k];
            }
        }
    }
    Ok((total, grads.expect("at least one step")))
}

struct Trained {
    model: HardNetModel,
    final_loss: f64,
}

fn train(
    method: Method,
    dc3: &Dc3Params,
    train_states: &[[f64; 5]],
    epochs: usize,
    seed: u64,
) -> Result<Trained> {
    let mut net = MlpBuilder::new(6)
        .init(Init::HeNormal)
        .fan_in_bias(true)
        .seed(seed)
        .hidden(200, Activation::Relu)
        .hidden(200, Activation::Relu)
        .output(2, Activation::Identity)
        .build()?;
    let mut opt = Adam::new(AdamParams {
        learning_rate: 1e-4,
        ..AdamParams::default()
    })?;
    let lambda = if method == Method::Nn { 0.0 } else { 0.01 };
    let how = enforcement(method, dc3, true);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..train_states.len()).collect();
    let mut train_time = Duration::ZERO;
    let mut losses = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        let mut epoch_loss = 0.0;
        for idx in order.chunks(100) {
            let t = Instant::now();
            let starts: Vec<[f64; 5]> = idx.iter().map(|&i| train_states[i]).collect();
            let (loss, grads) = batch_gradient(&net, &starts, how, lambda)?;
            opt.step(&mut net, &grads);
            train_time += t.elapsed();
            epoch_loss += loss * idx.len() as f64;
        }
        losses.push(epoch_loss / train_states.len() as f64);
    }
    let final_loss = *losses.last().unwrap_or(&f64::NAN);
    Ok(Trained {
        model: HardNetModel::from_network(net, method, *dc3, train_time, losses)?,
        final_loss,
    })
}

/// A policy under evaluation.
enum Policy<'a> {
    Model(&'a HardNetModel, Enforce),
    CbfQp,
}

/// Residuals for a batch of states, through the library's layers (cross-checked against the
/// simulator's own enforcement) or the CBF-QP.
fn residuals(policy: &Policy<'_>, states: &[[f64; 5]]) -> Result<Vec<[f64; 2]>> {
    let enc = encode_batch(states);
    let src = FnConstraint(constraint_at);
    match policy {
        Policy::Model(model, how) => {
            let y = model.predict(&enc, &src)?;
            let f = model.net.forward_batch(&enc)?;
            let mut out = Vec::with_capacity(states.len());
            for (s, x) in states.iter().enumerate() {
                let own = residual(x, [f[(s, 0)], f[(s, 1)]], *how, SAFETY_MARGIN);
                let lib = [y[(s, 0)], y[(s, 1)]];
                for j in 0..2 {
                    if (own[j] - lib[j]).abs() > 1e-7 * (1.0 + lib[j].abs()) {
                        bail!("the library's layer and the simulator's disagree at {x:?}: {lib:?} vs {own:?}");
                    }
                }
                out.push(lib);
            }
            Ok(out)
        }
        Policy::CbfQp => states
            .iter()
            .map(|x| {
                // min ‖y‖² s.t. A y ≤ b: the closest safe control to the nominal one.
                let c = constraint_at(&encode(x))?;
                let set = ConvexSet {
                    a: c.a,
                    lower: c.lower,
                    upper: c
                        .upper
                        .map(|b| b - SAFETY_MARGIN.max(1e-8) * (1.0 + b.abs())),
                    balls: vec![],
                };
                let p = set.project(&DVector::zeros(2))?;
                Ok([p.z[0], p.z[1]])
            })
            .collect(),
    }
}

/// Rolls out test trajectories: mean cost, per-trajectory violations summed over time
/// (max / mean over the two conditions, count > 1e-4, averaged), the smallest ellipse
/// barrier reached, and one trajectory for the plot.
struct Rollout {
    cost: f64,
    viol: [f64; 3],
    min_ellipse: f64,
    entered: usize,
    path: Vec<(f64, f64)>,
}

fn rollout(policy: &Policy<'_>, starts: &[[f64; 5]]) -> Result<Rollout> {
    let n = starts.len();
    let mut states = starts.to_vec();
    let mut cost = vec![0.0; n];
    let mut viol = vec![[0.0; 2]; n];
    let mut min_e = vec![f64::INFINITY; n];
    let mut path = vec![(starts[0][0], starts[0][1])];
    for _ in 0..STEPS {
        let ys = residuals(policy, &states)?;
        for s in 0..n {
            let st = advance(&states[s], ys[s]);
            cost[s] += st.cost;
            for (o, v) in st.viol.iter().enumerate() {
                viol[s][o] += v;
                min_e[s] = min_e[s].min(ellipse(&states[s], o));
            }
            states[s] = st.next;
        }
        path.push((states[0][0], states[0][1]));
    }
    let mut v = [0.0; 3];
    for vs in &viol {
        v[0] += vs[0].max(vs[1]) / n as f64;
        v[1] += 0.5 * (vs[0] + vs[1]) / n as f64;
        v[2] += vs.iter().filter(|&&x| x > 1e-4).count() as f64 / n as f64;
    }
    Ok(Rollout {
        cost: cost.iter().sum::<f64>() / n as f64,
        viol: v,
        min_ellipse: min_e.iter().copied().fold(f64::INFINITY, f64::min),
        entered: min_e.iter().filter(|&&e| e < 0.0).count(),
        path,
    })
}

/// Checks the analytic barrier gradient and the dual-number Jacobians against central
/// differences at a few states (the trainer relies on both).
fn self_check() -> Result<()> {
    let states = initial_states(5);
    for x in &states {
        let x = [x[0] + 1.0, x[1], x[2], 1.3, -0.4];
        for o in 0..2 {
            let (_, g) = sim::barrier(&x, o);
            for k in 0..5 {
                let h = 1e-6;
                let (mut xp, mut xm) = (x, x);
                xp[k] += h;
                xm[k] -= h;
                let fd = (sim::barrier(&xp, o).0 - sim::barrier(&xm, o).0) / (2.0 * h);
                if (fd - g[k]).abs() > 1e-5 * (1.0 + fd.abs()) {
                    bail!("barrier gradient {k}: {} vs {fd}", g[k]);
                }
            }
        }
        let f = [0.3, -0.2];
        let xd: [Dual; 5] = std::array::from_fn(|k| Dual::var(x[k], k));
        let fd_in = [Dual::var(f[0], 5), Dual::var(f[1], 6)];
        let st = advance(&xd, residual(&xd, fd_in, Enforce::Aff, SAFETY_MARGIN));
        for k in 0..P {
            let h = 1e-6;
            let eval = |d: f64| {
                let mut xx = x;
                let mut ff = f;
                if k < 5 {
                    xx[k] += d;
                } else {
                    ff[k - 5] += d;
                }
                advance(&xx, residual(&xx, ff, Enforce::Aff, SAFETY_MARGIN)).cost
            };
            let fd = (eval(h) - eval(-h)) / (2.0 * h);
            if (fd - st.cost.d[k]).abs() > 1e-4 * (1.0 + fd.abs()) {
                bail!("step Jacobian (cost, {k}): {} vs {fd}", st.cost.d[k]);
            }
        }
    }
    Ok(())
}

/// Paper (v4 Table 4): cost, train loss, max, mean, # viol, T_test ms, T_train min.
fn paper(m: Option<Method>) -> &'static str {
    match m {
        None => "948.32 / — / 0 / 0 / 0 / 579.29 / —",
        Some(Method::Nn) => "421.92 / 412.84 / 157.62 / 118.92 / 2.00 / 0.23 / 256.34",
        Some(Method::Soft) => "480.10 / 479.98 / 6.92 / 3.95 / 1.96 / 0.22 / 255.07",
        Some(Method::Dc3) => "480.21 / 479.99 / 6.86 / 3.88 / 1.92 / 15.71 / 637.69",
        _ => "518.85 / 513.08 / 0 / 0 / 0 / 2.71 / 370.05",
    }
}

fn median_ms(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[2])
}

impl Experiment for HardnetCbf {
    fn name(&self) -> &'static str {
        "hardnet-cbf"
    }
    fn title(&self) -> &'static str {
        "HardNet: safe control of a unicycle around two obstacles (v4 Table 4)"
    }
    fn required_files(&self) -> &'static [&'static str] {
        &[]
    }
    fn run(&self, ctx: &Ctx) -> Result<String> {
        self_check()?;
        let (n_states, epochs, seeds) = match ctx.mode {
            Mode::Smoke => (200, 1, 1),
            Mode::Quick => (1000, 60, 1),
            Mode::Full => (1000, 1000, 5),
        };
        let seeds = ctx.seeds(seeds);
        let all = initial_states(n_states);
        let n_test = (n_states as f64 * 0.084).round() as usize;
        let n_valid = (n_states as f64 * 0.083).round() as usize;
        let train_states = &all[..n_states - n_test - n_valid];
        let test_states = &all[n_states - n_test..];
        let dc3 = Dc3Params {
            completion: false,
            corr_lr: 1e-7,
            corr_momentum: 0.5,
            train_steps: 5,
            test_steps: 5,
            eps: 1e-4,
        };
        let mut md = String::new();
        let _ = writeln!(md, "State `[p_x, p_y, θ, v, w]`, control `π_nom + y`, HOCBFs of the two ellipses (κ = 10, α = 20), cost `dt Σ xᵀQx + uᵀRu` over 50 steps of 0.02 s with the reference's adaptive Euler; {} initial states from the reference's box on our seeded RNG (resampled while unsafe), split in order {} train / {n_valid} validation (unused) / {n_test} test. MLP 6-200-200-2 (ReLU), Adam lr 1e-4, batch 100, {epochs} epoch(s){}, λ = 0.01 except NN, {seeds} seed(s). Training backpropagates through the simulator exactly (per-step Jacobians by dual numbers, the network by its VJP; the step Jacobian and the barrier gradient are checked against central differences before training). At test time the residual comes from provenn-hardnet's layers over an `FnConstraint` and is cross-checked against the simulator's own enforcement. DC3: full correction, 5 steps of size 1e-7 (momentum 0.5) in training and up to 5 at test. CBF-QP: `min ‖y‖² s.t. A y ≤ b` per state by clarabel, applied as `π_nom + y*` (the reference's code may add `π_nom` twice, see the note). Violations `ReLU(A y − b)` are summed along each test trajectory (per obstacle), then max / mean / count > 1e-4 over the two, averaged over trajectories; HardNet-Aff must have none. 'entered' counts test trajectories whose body point enters an ellipse. T_test: one policy evaluation on the {n_test} test states (median of 5).\n",
            n_states, train_states.len(),
            if ctx.mode == Mode::Full { "" } else { " (the paper trains 1000)" });
        let _ = writeln!(md, "| method | cost | train loss | max viol | mean viol | # viol | min ellipse (entered) | T_test (ms) | T_train (min) | paper cost / loss / max / mean / # / T_test / T_train |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        let mut paths = Vec::new();
        let qp = rollout(&Policy::CbfQp, test_states)?;
        let qp_ms = median_ms(|| residuals(&Policy::CbfQp, test_states).map(|_| ()))?;
        let _ = writeln!(
            md,
            "| CBF-QP | {:.2} | — | {:.2e} | {:.2e} | {:.2} | {:.3} ({}) | {qp_ms:.2} | — | {} |",
            qp.cost,
            qp.viol[0],
            qp.viol[1],
            qp.viol[2],
            qp.min_ellipse,
            qp.entered,
            paper(None)
        );
        paths.push(("CBF-QP".to_string(), qp.path));
        for method in [Method::Nn, Method::Soft, Method::Dc3, Method::HardNetAff] {
            let mut rows: Vec<[f64; 9]> = Vec::new();
            for seed in 0..seeds {
                let t = train(method, &dc3, train_states, epochs, seed as u64 + 1)?;
                let how = enforcement(method, &dc3, false);
                let policy = Policy::Model(&t.model, how);
                let r = rollout(&policy, test_states)?;
                if method == Method::HardNetAff && r.viol[0] > 0.0 {
                    bail!(
                        "HardNet-Aff violates the CBF condition on a test trajectory ({:e})",
                        r.viol[0]
                    );
                }
                let ms = median_ms(|| residuals(&policy, test_states).map(|_| ()))?;
                rows.push([
                    r.cost,
                    t.final_loss,
                    r.viol[0],
                    r.viol[1],
                    r.viol[2],
                    r.min_ellipse,
                    r.entered as f64,
                    ms,
                    t.model.train_time.as_secs_f64() / 60.0,
                ]);
                if seed == 0 {
                    paths.push((method.name().to_string(), r.path));
                }
            }
            let n = rows.len() as f64;
            let mean = |k: usize| rows.iter().map(|r| r[k]).sum::<f64>() / n;
            let sd =
                |k: usize| (rows.iter().map(|r| (r[k] - mean(k)).powi(2)).sum::<f64>() / n).sqrt();
            let _ = writeln!(md, "| {} | {:.2} ({:.2}) | {:.2} | {:.2e} | {:.2e} | {:.2} | {:.3} ({:.1}) | {:.2} | {:.2} ({:.2}) | {} |",
                method.name(), mean(0), sd(0), mean(1), mean(2), mean(3), mean(4), mean(5), mean(6), mean(7), mean(8), sd(8), paper(Some(method)));
        }
        // Trajectories from the first test state, with the obstacles.
        let mut curves = paths;
        for (o, &(cx, cy, rx, ry)) in sim::OBSTACLES.iter().enumerate() {
            curves.push((
                format!("obstacle {}", o + 1),
                (0..=100)
                    .map(|i| {
                        let a = 2.0 * PI * i as f64 / 100.0;
                        (cx + rx * a.cos(), cy + ry * a.sin())
                    })
                    .collect(),
            ));
        }
        let png = "hardnet-cbf.png";
        plot::xy(
            &ctx.out.join(png),
            "hardnet-cbf: trajectories from the first test state (seed 0)",
            "p_x",
            "p_y",
            &curves,
            Some(("start", &[(test_states[0][0], test_states[0][1])])),
        )?;
        let _ = writeln!(md, "\n![hardnet-cbf]({png})");
        Ok(md)
    }
}
