//! HardNet-Aff properties on random constraints (n_c ≤ n_out ≤ 20, condition numbers up to
//! 1e5, one- and two-sided and equality rows): `A·P(f) = clip(A f, b_l, b_u)` and feasibility to
//! 1e-9 relative, `P(f) = f` for feasible `f`, the VJP against central finite differences, and
//! the equality-partition variant's constraints.
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use provenn_hardnet::{AffineConstraint, AffineProjection, Partition};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random `n_c × n_out` matrix with singular values spread over `cond`.
fn random_a(rng: &mut ChaCha8Rng, n_c: usize, n_out: usize, cond: f64) -> DMatrix<f64> {
    let g1 = DMatrix::from_fn(n_c, n_c, |_, _| rng.gen_range(-1.0..1.0));
    let g2 = DMatrix::from_fn(n_out, n_c, |_, _| rng.gen_range(-1.0..1.0));
    let u = g1.qr().q();
    let v = g2.qr().q(); // n_out × n_c, orthonormal columns
    let sig = DMatrix::from_diagonal(&DVector::from_fn(n_c, |i, _| {
        if n_c == 1 {
            1.0
        } else {
            cond.powf(-(i as f64) / (n_c - 1) as f64)
        }
    }));
    let scale = 10f64.powf(rng.gen_range(-2.0..2.0));
    u * sig * v.transpose() * scale
}

fn random_bounds(rng: &mut ChaCha8Rng, af: &DVector<f64>) -> (DVector<f64>, DVector<f64>) {
    let n = af.len();
    let mut lo = DVector::zeros(n);
    let mut hi = DVector::zeros(n);
    for i in 0..n {
        let c = af[i] + rng.gen_range(-2.0..2.0) * (1.0 + af[i].abs());
        let w = rng.gen_range(0.0..1.0) * (1.0 + af[i].abs());
        match rng.gen_range(0..5) {
            0 => {
                lo[i] = f64::NEG_INFINITY;
                hi[i] = c;
            }
            1 => {
                lo[i] = c;
                hi[i] = f64::INFINITY;
            }
            2 => {
                lo[i] = c;
                hi[i] = c;
            }
            _ => {
                lo[i] = c - w;
                hi[i] = c + w;
            }
        }
    }
    (lo, hi)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn projection_clips_and_is_feasible(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_out = rng.gen_range(1..=20);
        let n_c = rng.gen_range(1..=n_out);
        let cond = 10f64.powf(rng.gen_range(0.0..5.0));
        let a = random_a(&mut rng, n_c, n_out, cond);
        let f = DVector::from_fn(n_out, |_, _| rng.gen_range(-5.0..5.0));
        let af = &a * &f;
        let (lo, hi) = random_bounds(&mut rng, &af);
        let c = AffineConstraint { a: a.clone(), lower: lo.clone(), upper: hi.clone() };
        let p = AffineProjection::shared(c, n_out).unwrap();
        let y = p.forward(&DMatrix::from_row_slice(1, n_out, f.as_slice())).unwrap();
        let yv = y.row(0).transpose();
        let ay = &a * &yv;
        let tol = |v: f64| 1e-9 * (1.0 + v.abs() + a.norm() * yv.norm());
        for i in 0..n_c {
            let target = af[i].clamp(lo[i], hi[i]);
            prop_assert!((ay[i] - target).abs() <= tol(target), "row {i}: {} vs {target} (cond {cond:.1e})", ay[i]);
            prop_assert!(ay[i] >= lo[i] - tol(lo[i]) && ay[i] <= hi[i] + tol(hi[i]));
        }
        // Feasible outputs are left alone.
        let y2 = p.forward(&y).unwrap();
        let ay2 = &a * y2.row(0).transpose();
        let feasible = (0..n_c).all(|i| ay[i] >= lo[i] && ay[i] <= hi[i]);
        if feasible {
            prop_assert_eq!(&y2, &y);
        } else {
            for i in 0..n_c { prop_assert!((ay2[i] - ay[i]).abs() <= tol(ay[i])); }
        }
    }

    #[test]
    fn vjp_matches_finite_differences(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_out = rng.gen_range(1..=8);
        let n_c = rng.gen_range(1..=n_out);
        let cond = 10f64.powf(rng.gen_range(0.0..2.0));
        let a = random_a(&mut rng, n_c, n_out, cond);
        let f = DVector::from_fn(n_out, |_, _| rng.gen_range(-3.0..3.0));
        let af = &a * &f;
        let (lo, hi) = random_bounds(&mut rng, &af);
        // Keep f away from kinks so the finite difference sees one linear piece.
        let h = 1e-6;
        let margin = (0..n_c).map(|i| (af[i] - lo[i]).abs().min((af[i] - hi[i]).abs())).fold(f64::INFINITY, f64::min);
        prop_assume!(margin > 1e-3 * (1.0 + a.norm() * f.norm()));
        let c = AffineConstraint { a, lower: lo, upper: hi };
        let p = AffineProjection::shared(c, n_out).unwrap();
        let g = DVector::from_fn(n_out, |_, _| rng.gen_range(-1.0..1.0));
        let fm = DMatrix::from_row_slice(1, n_out, f.as_slice());
        let vjp = p.backward(&fm, &DMatrix::from_row_slice(1, n_out, g.as_slice())).unwrap();
        for j in 0..n_out {
            let mut fp = fm.clone();
            let mut fn_ = fm.clone();
            fp[(0, j)] += h;
            fn_[(0, j)] -= h;
            let lp = (p.forward(&fp).unwrap().row(0) * &g)[0];
            let ln = (p.forward(&fn_).unwrap().row(0) * &g)[0];
            let fd = (lp - ln) / (2.0 * h);
            prop_assert!((fd - vjp[(0, j)]).abs() <= 1e-5 * (1.0 + fd.abs()), "coord {j}: fd {fd} vs vjp {}", vjp[(0, j)]);
        }
    }

    #[test]
    fn partition_variant_satisfies_both_kinds(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_out = rng.gen_range(2..=10);
        let n_eq = rng.gen_range(1..n_out);
        let n_in = rng.gen_range(1..=(n_out - n_eq));
        let c = DMatrix::from_fn(n_eq, n_out, |_, _| rng.gen_range(-1.0..1.0));
        let a = DMatrix::from_fn(n_in, n_out, |_, _| rng.gen_range(-1.0..1.0));
        let dependent: Vec<usize> = (0..n_eq).collect();
        let part = match Partition::new(&a, &c, dependent) {
            Ok(p) => p,
            Err(_) => { prop_assume!(false); unreachable!() }
        };
        let d = DMatrix::from_fn(1, n_eq, |_, _| rng.gen_range(-1.0..1.0));
        let lo = DMatrix::from_fn(1, n_in, |_, _| rng.gen_range(-2.0..0.0));
        let hi = DMatrix::from_fn(1, n_in, |_, _| rng.gen_range(0.0..2.0));
        let z = DMatrix::from_fn(1, n_out - n_eq, |_, _| rng.gen_range(-5.0..5.0));
        let (y, _) = match part.forward(&z, &d, &lo, &hi) {
            Ok(v) => v,
            Err(_) => { prop_assume!(false); unreachable!() } // reduced A not full row rank
        };
        let yv = y.row(0).transpose();
        let cy = &c * &yv;
        let ay = &a * &yv;
        let tol = 1e-8 * (1.0 + yv.norm());
        for i in 0..n_eq { prop_assert!((cy[i] - d[(0, i)]).abs() <= tol); }
        for i in 0..n_in { prop_assert!(ay[i] >= lo[(0, i)] - tol && ay[i] <= hi[(0, i)] + tol); }
    }
}

#[test]
fn rank_deficient_constraint_names_the_input() {
    let good = AffineConstraint {
        a: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
        lower: DVector::from_element(1, 0.0),
        upper: DVector::from_element(1, 1.0),
    };
    let bad = AffineConstraint {
        a: DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 4.0]),
        lower: DVector::from_element(2, 0.0),
        upper: DVector::from_element(2, 1.0),
    };
    let err = AffineProjection::per_sample(vec![good.clone(), bad], 2).unwrap_err();
    assert!(err.to_string().starts_with("input 1:"), "{err}");
    let empty = AffineConstraint {
        lower: DVector::from_element(1, 2.0),
        ..good
    };
    let err = AffineProjection::per_sample(vec![empty], 2).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// HardNet-Cvx on affine rows of any rank (duplicates included) and an optional ball:
    /// feasibility, KKT stationarity and complementary slackness, and — when the rows have full
    /// rank so HardNet-Aff applies — never farther from `f` than HardNet-Aff's output.
    #[test]
    fn convex_projection_satisfies_kkt(seed in any::<u64>()) {
        use provenn_hardnet::ConvexSet;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(1..=10);
        let full_rank = rng.gen_bool(0.5);
        let m = if full_rank { rng.gen_range(1..=n) } else { rng.gen_range(1..=2 * n) };
        let cond = 10f64.powf(rng.gen_range(0.0..3.0));
        let mut a = if full_rank {
            random_a(&mut rng, m, n, cond)
        } else {
            DMatrix::from_fn(m, n, |_, _| rng.gen_range(-1.0..1.0))
        };
        if !full_rank && m >= 2 {
            let r0 = a.row(0).clone_owned();
            a.row_mut(m - 1).copy_from(&r0); // a duplicated row: rank deficient
        }
        let x0 = DVector::from_fn(n, |_, _| rng.gen_range(-1.0..1.0)); // a feasible point
        let ax0 = &a * &x0;
        let lo = DVector::from_fn(m, |i, _| ax0[i] - rng.gen_range(0.0..1.0));
        let hi = DVector::from_fn(m, |i, _| ax0[i] + rng.gen_range(0.0..1.0));
        let balls = if rng.gen_bool(0.3) { vec![(x0.clone(), rng.gen_range(0.5..2.0))] } else { vec![] };
        let set = ConvexSet { a: a.clone(), lower: lo.clone(), upper: hi.clone(), balls: balls.clone() };
        let f = DVector::from_fn(n, |_, _| rng.gen_range(-4.0..4.0));
        let p = set.project(&f).unwrap();
        let z = &p.z;
        let az = &a * z;
        let tol = 1e-6 * (1.0 + f.norm());
        for i in 0..m {
            prop_assert!(az[i] >= lo[i] - tol && az[i] <= hi[i] + tol, "row {i} infeasible");
            prop_assert!(p.upper_duals[i] >= -tol && p.lower_duals[i] >= -tol);
            prop_assert!(p.upper_duals[i] * (hi[i] - az[i]).abs() <= tol);
            prop_assert!(p.lower_duals[i] * (az[i] - lo[i]).abs() <= tol);
        }
        // Stationarity: z − f + Aᵀ(λ_u − λ_l) + Σ μ_k (z − c_k)/‖z − c_k‖ = 0.
        let mut grad = z - &f + a.transpose() * (&p.upper_duals - &p.lower_duals);
        for ((c, r), mu) in balls.iter().zip(&p.ball_duals) {
            let d = z - c;
            prop_assert!(d.norm() <= r + tol);
            if *mu > tol { grad += d.clone() * (*mu / d.norm()); }
        }
        // Second-order cones converge less tightly in clarabel than the polyhedral case.
        let ball_active = p.ball_duals.iter().any(|&mu| mu > tol);
        let stat_tol = if ball_active { 1e-4 } else { 1e-5 } * (1.0 + f.norm());
        prop_assert!(grad.norm() <= stat_tol, "stationarity residual {} (balls {}, duals {:?}, m {m} n {n} full {full_rank})", grad.norm(), balls.len(), p.ball_duals);
        if full_rank && balls.is_empty() {
            let aff = AffineProjection::shared(AffineConstraint { a, lower: lo, upper: hi }, n).unwrap();
            let y = aff.forward(&DMatrix::from_row_slice(1, n, f.as_slice())).unwrap();
            let d_aff = (y.row(0).transpose() - &f).norm();
            // The objective ½‖z − f‖² is 1-strongly convex, so a KKT residual within
            // `stat_tol` puts z within about `stat_tol` of the exact projection; `tol` alone
            // failed on a point `f` already feasible (clarabel's z 8.1e-6 from it, tol 6.4e-6,
            // condition number 342).
            prop_assert!((z - &f).norm() <= d_aff + stat_tol, "cvx {} aff {d_aff}", (z - &f).norm());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// DC3's unrolled correction: its VJP against central finite differences of the whole
    /// unrolled map (away from kinks along the trajectory), and each step lowers the squared
    /// violation for a small enough step size — in particular lower-bound violations are pushed
    /// up (the reference code pushes them down).
    #[test]
    fn dc3_correction_vjp_and_descent(seed in any::<u64>()) {
        use provenn_hardnet::dc3::{correct, correct_backward, residual};
        use provenn_hardnet::Dc3Params;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(1..=8);
        let m = rng.gen_range(1..=10);
        let a = DMatrix::from_fn(m, n, |_, _| rng.gen_range(-1.0..1.0));
        let f = DVector::from_fn(n, |_, _| rng.gen_range(-3.0..3.0));
        let (lo, hi) = random_bounds(&mut rng, &(&a * &f));
        let p = Dc3Params {
            corr_lr: 0.5 / (a.norm_squared() + 1.0),
            corr_momentum: rng.gen_range(0.0..0.9),
            ..Dc3Params::default()
        };
        let steps = rng.gen_range(1..=10);
        let c = correct(&a, &lo, &hi, f.clone(), &p, steps, false);
        prop_assert_eq!(c.steps(), steps);
        // Without momentum every step is a gradient step on ‖r‖² with η·L ≤ 1/2: no increase.
        let p0 = Dc3Params { corr_momentum: 0.0, ..p };
        let c0 = correct(&a, &lo, &hi, f.clone(), &p0, steps, false);
        let v0 = residual(&a, &lo, &hi, &f).norm_squared();
        let v1 = residual(&a, &lo, &hi, c0.output()).norm_squared();
        prop_assert!(v1 <= v0 * (1.0 + 1e-12) + 1e-15, "violation {v0} → {v1}");
        // Finite differences need every iterate away from the kinks.
        let h = 1e-6;
        let mut w = f.clone();
        let mut far = true;
        let cf = correct(&a, &lo, &hi, w.clone(), &p, steps, false);
        for t in 0..=steps {
            let ct = correct(&a, &lo, &hi, f.clone(), &p, t, false);
            w = ct.output().clone();
            let aw = &a * &w;
            for i in 0..m {
                let d = (aw[i] - lo[i]).abs().min((aw[i] - hi[i]).abs());
                far &= d > 1e-4;
            }
        }
        prop_assume!(far);
        let g = DVector::from_fn(n, |_, _| rng.gen_range(-1.0..1.0));
        let vjp = correct_backward(&a, &lo, &hi, &cf, g.clone(), &p);
        for j in 0..n {
            let mut fp = f.clone();
            let mut fm = f.clone();
            fp[j] += h;
            fm[j] -= h;
            let lp = correct(&a, &lo, &hi, fp, &p, steps, false).output().dot(&g);
            let ln = correct(&a, &lo, &hi, fm, &p, steps, false).output().dot(&g);
            let fd = (lp - ln) / (2.0 * h);
            prop_assert!((fd - vjp[j]).abs() <= 1e-5 * (1.0 + fd.abs()), "coord {j}: fd {fd} vs vjp {}", vjp[j]);
        }
    }

    /// A shared matrix with per-sample bounds projects as per-sample constraints do.
    #[test]
    fn shared_matrix_projection_matches_per_sample(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_out = rng.gen_range(1..=10);
        let n_c = rng.gen_range(1..=n_out);
        let a = random_a(&mut rng, n_c, n_out, 100.0);
        let batch = rng.gen_range(1..=5);
        let f = DMatrix::from_fn(batch, n_out, |_, _| rng.gen_range(-3.0..3.0));
        let bounds: Vec<_> = (0..batch)
            .map(|s| random_bounds(&mut rng, &(&a * f.row(s).transpose())))
            .collect();
        let per = AffineProjection::per_sample(
            bounds.iter().map(|(l, u)| AffineConstraint { a: a.clone(), lower: l.clone(), upper: u.clone() }).collect(),
            n_out,
        ).unwrap();
        let shared = AffineProjection::shared_matrix(AffineProjection::factorise_shared(a.clone()).unwrap(), bounds).unwrap();
        // The shared path batches through matrix products: equal up to rounding.
        let close = |x: &DMatrix<f64>, y: &DMatrix<f64>| (x - y).amax() <= 1e-9 * (1.0 + x.amax());
        let (pf, sf) = (per.forward(&f).unwrap(), shared.forward(&f).unwrap());
        prop_assert!(close(&pf, &sf), "forward differs by {}", (&pf - &sf).amax());
        let g = DMatrix::from_fn(batch, n_out, |_, _| rng.gen_range(-1.0..1.0));
        let (pb, sb) = (per.backward(&f, &g).unwrap(), shared.backward(&f, &g).unwrap());
        prop_assert!(close(&pb, &sb), "backward differs by {}", (&pb - &sb).amax());
        // A batch of the wrong size is an error, not a panic.
        prop_assert!(shared.forward(&DMatrix::zeros(batch + 1, n_out)).is_err());
    }
}

/// DC3 with completion and HardNet-Aff on a shared matrix (`A y ≤ b`, `C y = x`, the shape of
/// the paper's optimisation experiment): predictions satisfy the equalities to rounding, and
/// HardNet-Aff's also the inequalities, checked here by direct evaluation.
#[test]
fn dc3_completion_and_shared_hardnet_keep_equalities() {
    use provenn_hardnet::{
        fit_objective, Dc3Params, HardNetParams, Method, Objective, SharedMatrixConstraint,
    };
    struct SumSq;
    impl Objective for SumSq {
        fn batch(&self, _idx: &[usize], y: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
            let n = y.nrows() as f64;
            (y.norm_squared() / n, y * (2.0 / n))
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n, n_ineq, n_eq) = (6, 2, 3);
    let a_in = DMatrix::from_fn(n_ineq, n, |_, _| rng.gen_range(-1.0..1.0));
    let c = DMatrix::from_fn(n_eq, n, |_, _| rng.gen_range(-1.0..1.0));
    let b = (&a_in * c.clone().pseudo_inverse(1e-12).unwrap())
        .abs()
        .column_sum();
    let mut full = DMatrix::zeros(n_ineq + n_eq, n);
    full.rows_mut(0, n_ineq).copy_from(&a_in);
    full.rows_mut(n_ineq, n_eq).copy_from(&c);
    let b_src = b.clone();
    let src = SharedMatrixConstraint {
        a: full,
        bounds: move |x: &[f64]| {
            let lo = DVector::from_fn(n_ineq + n_eq, |i, _| {
                if i < n_ineq {
                    f64::NEG_INFINITY
                } else {
                    x[i - n_ineq]
                }
            });
            let hi = DVector::from_fn(n_ineq + n_eq, |i, _| {
                if i < n_ineq {
                    b_src[i]
                } else {
                    x[i - n_ineq]
                }
            });
            (lo, hi)
        },
    };
    let x = DMatrix::from_fn(40, n_eq, |_, _| rng.gen_range(-1.0..1.0));
    for (method, completion) in [(Method::Dc3, true), (Method::HardNetAff, false)] {
        let params = HardNetParams {
            method,
            hidden: vec![16],
            epochs: 20,
            batch_size: 10,
            learning_rate: 1e-3,
            soft_weight: 10.0,
            warm_epochs: 5,
            dc3: Dc3Params {
                completion,
                corr_lr: 1e-3,
                test_steps: 5,
                ..Dc3Params::default()
            },
            seed: 1,
        };
        let model = fit_objective(&params, &x, &SumSq, n, &src).unwrap();
        assert_eq!(model.losses.len(), 20);
        assert!(model.losses.iter().all(|l| l.is_finite()));
        let y = model.predict(&x, &src).unwrap();
        assert_eq!(y.shape(), (40, n));
        for s in 0..40 {
            let ys = y.row(s).transpose();
            let cy = &c * &ys;
            for i in 0..n_eq {
                assert!(
                    (cy[i] - x[(s, i)]).abs() <= 1e-9 * (1.0 + ys.norm()),
                    "{}: C y ≠ x at sample {s}",
                    method.name()
                );
            }
            if method == Method::HardNetAff {
                let ay = &a_in * &ys;
                for i in 0..n_ineq {
                    assert!(ay[i] <= b[i], "HardNet-Aff: A y > b at sample {s}");
                }
            }
        }
    }
}

/// The paper's nonconvex objective `½ yᵀ diag(q) y + pᵀ sin y`.
struct SinQuadratic {
    q: DVector<f64>,
    p: DVector<f64>,
}

impl provenn_hardnet::SmoothObjective for SinQuadratic {
    fn value(&self, y: &DVector<f64>) -> f64 {
        (0..y.len())
            .map(|i| 0.5 * self.q[i] * y[i] * y[i] + self.p[i] * y[i].sin())
            .sum()
    }
    fn gradient(&self, y: &DVector<f64>) -> DVector<f64> {
        DVector::from_fn(y.len(), |i, _| self.q[i] * y[i] + self.p[i] * y[i].cos())
    }
    fn hessian(&self, y: &DVector<f64>) -> DMatrix<f64> {
        DMatrix::from_diagonal(&DVector::from_fn(y.len(), |i, _| {
            self.q[i] - self.p[i] * y[i].sin()
        }))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// SQP on random instances of the paper's nonconvex problem (`A y ≤ b`, `C y = x`, `b`
    /// making `pinv(C) x` feasible): the result is feasible, converged with a small KKT
    /// residual, and no better point is found along segments towards random feasible points
    /// (a first-order local-optimality check that does not use the solver's multipliers).
    #[test]
    fn sqp_finds_feasible_local_optima(seed in any::<u64>()) {
        use provenn_hardnet::{sqp, LinearConstraints, SmoothObjective, SqpOptions};
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(2..=12);
        let n_eq = rng.gen_range(1..n);
        let n_in = rng.gen_range(1..=n);
        let obj = SinQuadratic {
            q: DVector::from_fn(n, |_, _| rng.gen_range(0.0..1.0)),
            p: DVector::from_fn(n, |_, _| rng.gen_range(0.0..1.0)),
        };
        let a = DMatrix::from_fn(n_in, n, |_, _| rng.gen_range(-1.0..1.0));
        let c = DMatrix::from_fn(n_eq, n, |_, _| rng.gen_range(-1.0..1.0));
        let pc = c.clone().pseudo_inverse(1e-12).unwrap();
        let b = (&a * &pc).abs().column_sum();
        let x = DVector::from_fn(n_eq, |_, _| rng.gen_range(-1.0..1.0));
        let cons = LinearConstraints { a: a.clone(), b: b.clone(), c: c.clone(), d: x.clone() };
        // A start that is infeasible for the equalities exercises phase 1.
        let y0 = DVector::from_fn(n, |_, _| rng.gen_range(-2.0..2.0));
        let sol = sqp(&obj, &cons, &y0, &SqpOptions::default()).unwrap();
        prop_assert!(sol.converged, "not converged in {} iterations", sol.iterations);
        prop_assert!(sol.max_violation <= 1e-8, "violation {}", sol.max_violation);
        prop_assert!(sol.kkt_residual <= 1e-5, "KKT residual {}", sol.kkt_residual);
        prop_assert!((sol.value - obj.value(&sol.y)).abs() <= 1e-12 * (1.0 + sol.value.abs()));
        // Random feasible points: pinv(C) x plus null-space moves, scaled back into A y ≤ b.
        let y_f = &pc * &x;
        let null = DMatrix::identity(n, n) - &pc * &c;
        for _ in 0..20 {
            let dir = &null * DVector::from_fn(n, |_, _| rng.gen_range(-1.0..1.0));
            let slack = &b - &a * &y_f;
            let ad = &a * &dir;
            let t_max = (0..n_in).filter(|&i| ad[i] > 0.0).map(|i| slack[i] / ad[i]).fold(1.0f64, f64::min);
            let z = &y_f + dir * t_max;
            for t in [1e-3, 1e-2] {
                let w = &sol.y + (&z - &sol.y) * t;
                prop_assert!(obj.value(&w) >= sol.value - 1e-7 * (1.0 + sol.value.abs()),
                    "a feasible point {t} along the segment is better: {} < {}", obj.value(&w), sol.value);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// `HardNetModel::enforced_network` is the HardNet-Aff model as a plain ReLU network: on
    /// random networks, constraints (one-sided, two-sided, equality rows, ill-conditioned) and
    /// inputs it agrees with `predict` to rounding, and refuses what it cannot represent.
    #[test]
    fn enforced_network_equals_the_layer(seed in any::<u64>()) {
        use provenn_hardnet::train::{FnConstraint, HardNetModel, Method};
        use provenn_hardnet::Dc3Params;
        use provenn_nn::{Activation, MlpBuilder};
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_in = rng.gen_range(1..=4);
        let n_out = rng.gen_range(1..=6);
        let n_c = rng.gen_range(1..=n_out);
        let mut b = MlpBuilder::new(n_in);
        for _ in 0..rng.gen_range(0..=2) {
            b = b.hidden(rng.gen_range(1..=8), Activation::Relu);
        }
        let net = b.output(n_out, Activation::Identity).seed(seed).build().unwrap();
        let model = HardNetModel::from_network(net.clone(), Method::HardNetAff, Dc3Params::default(), Default::default(), vec![]).unwrap();
        let cond = 10f64.powf(rng.gen_range(0.0..4.0));
        let a = random_a(&mut rng, n_c, n_out, cond);
        let x0 = DVector::from_fn(n_in, |_, _| rng.gen_range(-1.0..1.0));
        let f0 = net.forward(&x0).unwrap();
        let (lower, upper) = random_bounds(&mut rng, &(&a * &f0));
        let c = AffineConstraint { a, lower, upper };
        // Either form of the pass-through: two ReLUs, or one shifted by the bound over a box
        // (then only valid inside it, where the inputs are drawn).
        let boxed = rng.gen_bool(0.5);
        let (lo, hi): (Vec<f64>, Vec<f64>) = (0..n_in).map(|_| {
            let l = rng.gen_range(-2.0..1.0);
            (l, l + rng.gen_range(0.0..1.0))
        }).unzip();
        let bx = provenn_bounds::InputBox::new(lo.clone(), hi.clone()).unwrap();
        let relu = model.enforced_network(&c, boxed.then_some(&bx)).unwrap();
        if boxed {
            prop_assert!(relu.layers()[relu.layers().len() - 2].outputs() < 2 * n_out + 2 * n_c);
        }
        let src = FnConstraint(|_: &[f64]| Ok(c.clone()));
        for _ in 0..10 {
            let x = DVector::from_fn(n_in, |j, _| if boxed { rng.gen_range(lo[j]..=hi[j]) } else { rng.gen_range(-2.0..2.0) });
            let y = model.predict(&DMatrix::from_row_slice(1, n_in, x.as_slice()), &src).unwrap();
            let z = relu.forward(&x).unwrap();
            let scale = 1.0 + y.amax() + net.forward(&x).unwrap().amax();
            for k in 0..n_out {
                prop_assert!((y[(0, k)] - z[k]).abs() <= 1e-9 * scale, "output {k}: {} vs {}", y[(0, k)], z[k]);
            }
        }
        let nn = HardNetModel::from_network(net, Method::Nn, Dc3Params::default(), Default::default(), vec![]).unwrap();
        prop_assert!(nn.enforced_network(&c, None).is_err());
    }
}
