//! `hardnet-opt`: learning a solver for the DC3 nonconvex problem
//! `min ½yᵀQy + pᵀsin y  s.t.  Ay ≤ b, Cy = x` (100 variables, 50 inequalities, 50 equalities;
//! HardNet paper §5.2, v4 Table 3), unsupervised: the loss is the objective plus `λ‖violation‖²`.
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Result};
use nalgebra::{DMatrix, DVector};
use provenn::dsl::ir::Assignment;
use provenn::dsl::{compile, Bindings};
use provenn::hardnet::{
    fit_objective, sqp, Dc3Params, HardNetParams, LinearConstraints, Method, Objective,
    SharedMatrixConstraint, SmoothObjective, SqpOptions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::{Ctx, Experiment, Mode};

pub struct HardnetOpt;

/// Lower and upper bounds of the constraint rows at one input.
type Bounds = (DVector<f64>, DVector<f64>);

const N: usize = 100;
const N_INEQ: usize = 50;
const N_EQ: usize = 50;

/// One problem family: `Q = diag(q)`, `p`, `A`, `b`, `C`, and the instances `x`.
struct Problem {
    q: DVector<f64>,
    p: DVector<f64>,
    a: DMatrix<f64>,
    b: DVector<f64>,
    c: DMatrix<f64>,
    x: DMatrix<f64>,
}

impl Problem {
    /// The reference generator's recipe (Q, p uniform; A, C standard normal; `b = Σ|A C⁺|`,
    /// which makes `C⁺x` feasible on `[-1, 1]^50`; x uniform) on our seeded RNG.
    fn generate(n_instances: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let q = DVector::from_fn(N, |_, _| rng.gen_range(0.0..1.0));
        let p = DVector::from_fn(N, |_, _| rng.gen_range(0.0..1.0));
        let a = DMatrix::from_fn(N_INEQ, N, |_, _| rng.sample::<f64, _>(StandardNormal));
        let c = DMatrix::from_fn(N_EQ, N, |_, _| rng.sample::<f64, _>(StandardNormal));
        let pc = c.clone().pseudo_inverse(1e-12).expect("SVD converges");
        let b = (&a * pc).abs().column_sum();
        let x = DMatrix::from_fn(n_instances, N_EQ, |_, _| rng.gen_range(-1.0..1.0));
        Problem { q, p, a, b, c, x }
    }

    fn value(&self, y: &DVector<f64>) -> f64 {
        (0..N)
            .map(|i| 0.5 * self.q[i] * y[i] * y[i] + self.p[i] * y[i].sin())
            .sum()
    }

    /// `[A; C]` with bounds `(-∞, b]` and `[x, x]`: what HardNet-Aff projects onto.
    fn source(&self) -> SharedMatrixConstraint<impl Fn(&[f64]) -> Bounds + Sync + '_> {
        let mut full = DMatrix::zeros(N_INEQ + N_EQ, N);
        full.rows_mut(0, N_INEQ).copy_from(&self.a);
        full.rows_mut(N_INEQ, N_EQ).copy_from(&self.c);
        SharedMatrixConstraint {
            a: full,
            bounds: move |x: &[f64]| {
                let lo = DVector::from_fn(N_INEQ + N_EQ, |i, _| {
                    if i < N_INEQ {
                        f64::NEG_INFINITY
                    } else {
                        x[i - N_INEQ]
                    }
                });
                let hi = DVector::from_fn(N_INEQ + N_EQ, |i, _| {
                    if i < N_INEQ {
                        self.b[i]
                    } else {
                        x[i - N_INEQ]
                    }
                });
                (lo, hi)
            },
        }
    }

    /// The constraint in the DSL (every coefficient printed exactly), for evaluation.
    fn dsl(&self) -> String {
        let row = |coef: &dyn Fn(usize) -> f64| {
            (0..N)
                .map(|j| {
                    let v = coef(j);
                    format!("{} {:e} * y[{j}]", if v < 0.0 { "-" } else { "+" }, v.abs())
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut atoms = Vec::new();
        for i in 0..N_INEQ {
            atoms.push(format!("0 {} <= {:e}", row(&|j| self.a[(i, j)]), self.b[i]));
        }
        for i in 0..N_EQ {
            atoms.push(format!("0 {} == x[{i}]", row(&|j| self.c[(i, j)])));
        }
        format!("forall x: {}", atoms.join(" and "))
    }
}

/// The mean objective of a batch and its gradient.
struct BatchObjective<'a>(&'a Problem);

impl Objective for BatchObjective<'_> {
    fn batch(&self, _idx: &[usize], y: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        let pr = self.0;
        let n = y.nrows() as f64;
        let mut v = 0.0;
        let g = DMatrix::from_fn(y.nrows(), N, |s, i| {
            let t = y[(s, i)];
            v += 0.5 * pr.q[i] * t * t + pr.p[i] * t.sin();
            (pr.q[i] * t + pr.p[i] * t.cos()) / n
        });
        (v / n, g)
    }
}

/// One instance for the SQP reference.
struct Instance<'a>(&'a Problem);

impl SmoothObjective for Instance<'_> {
    fn value(&self, y: &DVector<f64>) -> f64 {
        self.0.value(y)
    }
    fn gradient(&self, y: &DVector<f64>) -> DVector<f64> {
        DVector::from_fn(N, |i, _| self.0.q[i] * y[i] + self.0.p[i] * y[i].cos())
    }
    fn hessian(&self, y: &DVector<f64>) -> DMatrix<f64> {
        DMatrix::from_diagonal(&DVector::from_fn(N, |i, _| {
            self.0.q[i] - self.0.p[i] * y[i].sin()
        }))
    }
}

/// Paper (v4 Table 3): obj, ineq max/mean/#, eq max/mean/#, T_test ms, T_train s.
fn paper(m: Method) -> [f64; 9] {
    match m {
        Method::Nn => [-27.43, 12.05, 1.11, 12.00, 15.11, 6.39, 50.00, 0.32, 78.10],
        Method::Soft => [-13.13, 0.0, 0.0, 0.0, 0.35, 0.13, 49.98, 0.37, 77.58],
        Method::Dc3 => [-12.57, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.61, 3606.74],
        _ => [-14.10, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.69, 1343.80],
    }
}

/// Per-sample violation statistics (max, mean, count > 1e-4) averaged over samples.
fn violation_stats(rows: impl Iterator<Item = Vec<f64>>) -> [f64; 3] {
    let mut acc = [0.0; 3];
    let mut n = 0.0;
    for v in rows {
        let k = v.len() as f64;
        acc[0] += v.iter().fold(0.0f64, |m, x| m.max(*x));
        acc[1] += v.iter().sum::<f64>() / k;
        acc[2] += v.iter().filter(|&&x| x > 1e-4).count() as f64;
        n += 1.0;
    }
    acc.map(|a| a / n)
}

impl Experiment for HardnetOpt {
    fn name(&self) -> &'static str {
        "hardnet-opt"
    }
    fn title(&self) -> &'static str {
        "HardNet: learning a solver for a nonconvex problem, 100 variables (v4 Table 3)"
    }
    fn required_files(&self) -> &'static [&'static str] {
        &[]
    }
    fn run(&self, ctx: &Ctx) -> Result<String> {
        let (n_instances, epochs, warm, seeds, n_ref) = match ctx.mode {
            Mode::Smoke => (600, 2, 1, 1, 4),
            Mode::Quick => (10_000, 100, 10, 1, 100),
            Mode::Full => (10_000, 1000, 100, 5, 833),
        };
        let seeds = ctx.seeds(seeds);
        let pr = Problem::generate(n_instances);
        // The reference's split fractions: 1/12 validation, 1/12 test, in order.
        let n_test = (n_instances as f64 * 0.0833).round() as usize;
        let n_train = n_instances - 2 * n_test;
        let x_train = pr.x.rows(0, n_train).into_owned();
        let x_test = pr.x.rows(n_instances - n_test, n_test).into_owned();
        let src = pr.source();
        let constraint =
            compile(&pr.dsl(), &Bindings::anonymous(&vec![(-1.0, 1.0); N_EQ], N))?.remove(0);

        // The reference optimum by SQP on the first `n_ref` test instances, from C⁺x.
        let pc =
            pr.c.clone()
                .pseudo_inverse(1e-12)
                .map_err(anyhow::Error::msg)?;
        let t = Instant::now();
        let refs: Vec<_> = (0..n_ref.min(n_test))
            .into_par_iter()
            .map(|s| {
                let x = x_test.row(s).transpose();
                let cons = LinearConstraints {
                    a: pr.a.clone(),
                    b: pr.b.clone(),
                    c: pr.c.clone(),
                    d: x.clone(),
                };
                sqp(&Instance(&pr), &cons, &(&pc * x), &SqpOptions::default())
            })
            .collect::<Result<_, _>>()?;
        let ref_ms = t.elapsed().as_secs_f64() * 1e3 * rayon::current_num_threads() as f64
            / refs.len().max(1) as f64;
        let ref_obj: Vec<f64> = refs.iter().map(|r| r.value).collect();
        let ref_mean = ref_obj.iter().sum::<f64>() / ref_obj.len() as f64;
        let unconverged = refs.iter().filter(|r| !r.converged).count();
        let worst_kkt = refs.iter().map(|r| r.kkt_residual).fold(0.0f64, f64::max);
        let worst_viol = refs.iter().map(|r| r.max_violation).fold(0.0f64, f64::max);
        let iters = refs.iter().map(|r| r.iterations).sum::<usize>() as f64 / refs.len() as f64;

        let mut md = String::new();
        let _ = writeln!(md, "Problem generated with the reference's recipe (`Q = diag(U[0,1))`, `p ~ U[0,1)`, `A, C ~ N(0,1)` 50×100, `b = Σ_j |A C⁺|_ij`, `x ~ U[-1,1]^50`) on our seeded RNG, so the matrices differ from the paper's. {n_instances} instances split in order {n_train} train / {n_test} validation (unused) / {n_test} test. MLP 50-200-200-100 (ReLU; the reference adds BatchNorm and dropout 0.2, provenn-nn has neither), Adam lr 1e-4, batch 200, {epochs} epochs{}, λ = 10 except NN, {seeds} seed(s). HardNet-Aff projects onto `[A; C]` (100×100, factorised once) with bounds `(-∞, b]` and `[x, x]`, warm start {warm} epochs. DC3 as configured by the reference: completion of the last 50 variables from the equalities, 10 correction steps of size 1e-7 (momentum 0.5) in training, none at test. Violations are evaluated on the {n_test} test instances directly (`max(Ay − b, 0)`, `|Cy − x|`; per-sample max / mean / count > 1e-4, averaged over samples), and for HardNet-Aff also by the DSL's evaluator on the constraint written in the DSL, where each inequality must hold exactly and the conjunction's violation (only the equalities can miss, by rounding) must be ≤ 1e-9. The optimality gap is `(obj − obj*) / |obj*|`, averaged over the first {} test instances, `obj*` from our SQP (clarabel QPs; the paper used IPOPT through GEKKO).\n",
            if ctx.mode == Mode::Full { "" } else { " (the paper trains 1000)" },
            refs.len());
        let _ = writeln!(md, "| method | obj | gap to SQP | ineq max / mean / # | eq max / mean / # | T_test (ms, {n_test} inst.) | T_train (s) | paper obj / ineq / eq / T_test / T_train |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        let _ = writeln!(md, "| Optimizer (SQP, ours) | {ref_mean:.3} (first {} test inst.) | 0 | max {worst_viol:.1e} | — | {ref_ms:.1} per instance, {iters:.1} iterations; {unconverged} not converged; worst stationarity {worst_kkt:.1e} | — | IPOPT: -14.28 / 0 / 0 / 1182.00 per instance / — |", refs.len());
        for method in [Method::Nn, Method::Soft, Method::Dc3, Method::HardNetAff] {
            let mut rows: Vec<[f64; 10]> = Vec::new();
            for seed in 0..seeds {
                let params = HardNetParams {
                    method,
                    hidden: vec![200, 200],
                    epochs,
                    batch_size: 200,
                    learning_rate: 1e-4,
                    soft_weight: if method == Method::Nn { 0.0 } else { 10.0 },
                    warm_epochs: if method == Method::HardNetAff {
                        warm
                    } else {
                        0
                    },
                    dc3: Dc3Params {
                        completion: true,
                        corr_lr: 1e-7,
                        corr_momentum: 0.5,
                        train_steps: 10,
                        test_steps: 0,
                        eps: 1e-4,
                    },
                    seed: seed as u64 + 1,
                };
                let model = fit_objective(&params, &x_train, &BatchObjective(&pr), N, &src)?;
                let _ = model.predict(&x_test, &src)?; // warm-up
                let mut times = Vec::new();
                let mut y = DMatrix::zeros(0, 0);
                for _ in 0..5 {
                    let t = Instant::now();
                    y = model.predict(&x_test, &src)?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                times.sort_by(f64::total_cmp);
                let ys: Vec<DVector<f64>> = (0..n_test).map(|s| y.row(s).transpose()).collect();
                let obj = ys.iter().map(|v| pr.value(v)).sum::<f64>() / n_test as f64;
                let gap = (0..refs.len())
                    .map(|s| (pr.value(&ys[s]) - ref_obj[s]) / ref_obj[s].abs())
                    .sum::<f64>()
                    / refs.len() as f64;
                let ineq = violation_stats(
                    ys.iter()
                        .map(|v| (&pr.a * v - &pr.b).iter().map(|r| r.max(0.0)).collect()),
                );
                let eq = violation_stats((0..n_test).map(|s| {
                    (&pr.c * &ys[s] - x_test.row(s).transpose())
                        .iter()
                        .map(|r| r.abs())
                        .collect()
                }));
                if method == Method::HardNetAff {
                    for (s, v) in ys.iter().enumerate() {
                        let xs: Vec<f64> = x_test.row(s).iter().copied().collect();
                        let a = Assignment {
                            x: &xs,
                            y: v.as_slice(),
                            x2: &[],
                            y2: &[],
                        };
                        let dsl_viol = constraint.formula.violation(&a);
                        let ineq_ok = (&pr.a * v - &pr.b).iter().all(|r| *r <= 0.0);
                        if !ineq_ok || dsl_viol > 1e-9 {
                            bail!("HardNet-Aff violates the constraint on test instance {s} (DSL violation {dsl_viol:e})");
                        }
                    }
                }
                rows.push([
                    obj,
                    gap,
                    ineq[0],
                    ineq[1],
                    ineq[2],
                    eq[0],
                    eq[1],
                    eq[2],
                    times[2],
                    model.train_time.as_secs_f64(),
                ]);
            }
            let n = rows.len() as f64;
            let mean = |k: usize| rows.iter().map(|r| r[k]).sum::<f64>() / n;
            let sd =
                |k: usize| (rows.iter().map(|r| (r[k] - mean(k)).powi(2)).sum::<f64>() / n).sqrt();
            let p = paper(method);
            let _ = writeln!(md, "| {} | {:.3} ({:.3}) | {:.2}% | {:.2e} / {:.2e} / {:.2} | {:.2e} / {:.2e} / {:.2} | {:.2} | {:.1} ({:.1}) | {:.2} / {:.2}, {:.2}, {:.2} / {:.2}, {:.2}, {:.2} / {:.2} / {:.1} |",
                method.name(), mean(0), sd(0), 100.0 * mean(1), mean(2), mean(3), mean(4), mean(5), mean(6), mean(7), mean(8), mean(9), sd(9),
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]);
        }
        Ok(md)
    }
}
