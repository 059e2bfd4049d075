//! Soundness of provenn-bounds against the f64 forward pass of provenn-nn.
//!
//! Random networks (depth 1–6, width 1–64, weight scales 1e-3…1e3 per layer, every activation,
//! with and without skip features) and random boxes (some features fixed). For each case, 1,000
//! sampled points, every corner (up to 6 inputs), and points found by projected gradient
//! ascent/descent on every output must lie inside the interval and CROWN bounds — every
//! layer's pre- and post-activations, the latent box, the output and `C·y`. Four properties ×
//! 2,500 cases = 10,000 cases per run. Failures are persisted by proptest in
//! `tests/proptest-regressions/` and replayed first on every later run.
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use provenn_bounds::{
    BoundPropagator, CrownBounds, InputBox, IntervalBounds, JacobianBounds, NetworkBounds,
    RelationalBounds,
};
use provenn_nn::{Activation, Dense, Mlp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
struct Case {
    net: Mlp,
    domain: InputBox,
    spec: DMatrix<f64>,
    seed: u64,
}

fn activation(i: u8) -> Activation {
    match i % 5 {
        0 => Activation::Relu,
        1 => Activation::LeakyRelu(0.1),
        2 => Activation::Sigmoid,
        3 => Activation::Tanh,
        _ => Activation::Identity,
    }
}

fn build(seed: u64, max_depth: usize, max_width: usize, acts: &[u8]) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_in = rng.gen_range(1..=8);
    let depth = rng.gen_range(1..=max_depth);
    let skip: Vec<usize> = if rng.gen_bool(0.5) {
        (0..n_in).filter(|_| rng.gen_bool(0.4)).collect()
    } else {
        vec![]
    };
    let mut layers = Vec::new();
    let mut prev = n_in;
    for l in 0..depth {
        let last = l + 1 == depth;
        let width = if last {
            rng.gen_range(1..=4)
        } else {
            rng.gen_range(1..=max_width)
        };
        let fan_in = prev + if last { skip.len() } else { 0 };
        let scale = 10f64.powf(rng.gen_range(-3.0..3.0)) / (fan_in as f64).sqrt();
        let w = DMatrix::from_fn(width, fan_in, |_, _| rng.gen_range(-1.0..1.0) * scale);
        let b = DVector::from_fn(width, |_, _| rng.gen_range(-1.0..1.0) * scale);
        let act = activation(acts[rng.gen_range(0..acts.len())]);
        layers.push(Dense::new(w, b, act).unwrap());
        prev = width;
    }
    let net = Mlp::from_layers(n_in, layers, skip).unwrap();
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for _ in 0..n_in {
        let c: f64 = rng.gen_range(-2.0..2.0);
        let r = if rng.gen_bool(0.3) {
            0.0
        } else {
            10f64.powf(rng.gen_range(-3.0..0.3))
        };
        lo.push(c - r);
        hi.push(c + r);
    }
    let k = net.n_outputs();
    let spec = DMatrix::from_fn(2, k, |i, j| {
        if j == i % k {
            1.0
        } else if j == (i + 1) % k {
            -1.0
        } else {
            0.0
        }
    });
    Case {
        net,
        domain: InputBox::new(lo, hi).unwrap(),
        spec,
        seed,
    }
}

/// Points to test: random samples, corners, and PGD iterates on every output.
fn points(c: &Case) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x9e37_79b9);
    let (lo, hi) = (c.domain.lower(), c.domain.upper());
    let n = lo.len();
    let mut rows: Vec<Vec<f64>> = (0..1000)
        .map(|_| {
            (0..n)
                .map(|j| {
                    if lo[j] == hi[j] {
                        lo[j]
                    } else {
                        rng.gen_range(lo[j]..=hi[j])
                    }
                })
                .collect()
        })
        .collect();
    if n <= 6 {
        for m in 0..(1usize << n) {
            rows.push(
                (0..n)
                    .map(|j| if m >> j & 1 == 1 { hi[j] } else { lo[j] })
                    .collect(),
            );
        }
    }
    // Projected sign-gradient ascent (+) and descent (−) on every output, batched.
    let k = c.net.n_outputs();
    let mut x = DMatrix::from_fn(2 * k, n, |_, j| {
        if lo[j] == hi[j] {
            lo[j]
        } else {
            rng.gen_range(lo[j]..=hi[j])
        }
    });
    for step in 0..8 {
        let trace = c.net.trace(&x).unwrap();
        let g = DMatrix::from_fn(2 * k, k, |r, o| {
            if o == r % k {
                if r < k {
                    1.0
                } else {
                    -1.0
                }
            } else {
                0.0
            }
        });
        let (_, gx) = c.net.backward(&trace, &g).unwrap();
        let size = 0.5f64.powi(step);
        for r in 0..2 * k {
            for j in 0..n {
                let v = x[(r, j)] + size * (hi[j] - lo[j]) * gx[(r, j)].signum();
                x[(r, j)] = v.clamp(lo[j], hi[j]);
            }
            rows.push(x.row(r).iter().copied().collect());
        }
    }
    DMatrix::from_fn(rows.len(), n, |i, j| rows[i][j])
}

fn check(c: &Case, b: &NetworkBounds, name: &str) -> Result<(), TestCaseError> {
    let x = points(c);
    let t = c.net.trace(&x).unwrap();
    let last = c.net.layers().len() - 1;
    let latent = b.latent_box();
    for i in 0..x.nrows() {
        for l in 0..=last {
            let lb = b.layer(l);
            for (v, what, iv) in [(&t.pre[l], "pre", &lb.pre), (&t.post[l], "post", &lb.post)] {
                for j in 0..v.ncols() {
                    let y = v[(i, j)];
                    prop_assert!(
                        iv.lower[j] <= y && y <= iv.upper[j],
                        "{name}: layer {l} {what}[{j}] = {y:e} outside [{:e}, {:e}] at {:?}",
                        iv.lower[j],
                        iv.upper[j],
                        x.row(i)
                    );
                }
            }
        }
        let li = t.layer_input(last);
        for j in 0..li.ncols() {
            prop_assert!(
                latent.lower[j] <= li[(i, j)] && li[(i, j)] <= latent.upper[j],
                "{name}: latent[{j}]"
            );
        }
        if let Some(s) = b.spec() {
            let y = t.output().row(i);
            for r in 0..c.spec.nrows() {
                let v: f64 = c.spec.row(r).iter().zip(y.iter()).map(|(a, b)| a * b).sum();
                let tol = 4.0
                    * f64::EPSILON
                    * c.spec
                        .row(r)
                        .iter()
                        .zip(y.iter())
                        .map(|(a, b)| (a * b).abs())
                        .sum::<f64>();
                prop_assert!(
                    s.lower[r] - tol <= v && v <= s.upper[r] + tol,
                    "{name}: spec row {r}: {v:e} outside [{:e}, {:e}]",
                    s.lower[r],
                    s.upper[r]
                );
            }
        }
    }
    Ok(())
}

fn run(c: &Case) -> Result<(), TestCaseError> {
    let ibp = IntervalBounds.bounds(&c.net, &c.domain, Some(&c.spec));
    let crown = CrownBounds.bounds(&c.net, &c.domain, Some(&c.spec));
    match (ibp, crown) {
        (Ok(i), Ok(cr)) => {
            check(c, &i, "IBP")?;
            check(c, &cr, "CROWN")?;
            // CROWN is intersected with IBP, so never looser.
            prop_assert!(cr.output().mean_width() <= i.output().mean_width());
            Ok(())
        }
        // Only overflow may stop propagation, and then the network really overflows there.
        (Err(e), _) | (_, Err(e)) => {
            prop_assert!(
                matches!(e, provenn_bounds::BoundsError::NonFinite(_)),
                "{e}"
            );
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2500))]

    #[test]
    fn piecewise_linear_networks(seed in any::<u64>()) {
        run(&build(seed, 6, 64, &[0, 1, 4]))?;
    }

    #[test]
    fn smooth_networks(seed in any::<u64>()) {
        run(&build(seed, 6, 64, &[2, 3, 4]))?;
    }

    #[test]
    fn mixed_networks(seed in any::<u64>()) {
        run(&build(seed, 6, 64, &[0, 1, 2, 3, 4]))?;
    }

    #[test]
    fn deep_narrow_relu_networks(seed in any::<u64>()) {
        run(&build(seed, 6, 8, &[0]))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Relational bounds contain f(x') − f(x) for sampled pairs with x' − x in the difference
    /// box and both in the domain, and are never wider than subtracting the two copies' boxes.
    #[test]
    fn relational_bounds_contain_sampled_pairs(seed in any::<u64>()) {
        let c = build(seed, 4, 32, &[0, 1, 2, 3, 4]);
        let n = c.net.n_inputs();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let delta_r: Vec<f64> = (0..n).map(|_| if rng.gen_bool(0.5) { 0.0 } else { rng.gen_range(0.0..0.2) }).collect();
        let delta = InputBox::new(delta_r.iter().map(|d| -d).collect(), delta_r.clone()).unwrap();
        let r = match RelationalBounds.bounds(&c.net, &c.domain, &delta) {
            Ok(r) => r,
            Err(e) => { prop_assert!(matches!(e, provenn_bounds::BoundsError::NonFinite(_)), "{e}"); return Ok(()); }
        };
        let out = r.output_delta();
        let (y1, y2) = (r.first.output(), r.second.output());
        for j in 0..out.len() {
            prop_assert!(out.lower[j] >= (y2.lower[j] - y1.upper[j]).next_down().next_down());
            prop_assert!(out.upper[j] <= (y2.upper[j] - y1.lower[j]).next_up().next_up());
        }
        let (lo, hi) = (c.domain.lower(), c.domain.upper());
        for _ in 0..300 {
            let x: Vec<f64> = (0..n).map(|j| if lo[j] == hi[j] { lo[j] } else { rng.gen_range(lo[j]..=hi[j]) }).collect();
            let x2: Vec<f64> = (0..n).map(|j| (x[j] + rng.gen_range(-delta_r[j]..=delta_r[j])).clamp(lo[j], hi[j])).collect();
            let f1 = c.net.forward(&DVector::from_vec(x)).unwrap();
            let f2 = c.net.forward(&DVector::from_vec(x2)).unwrap();
            for j in 0..out.len() {
                let d = f2[j] - f1[j];
                let tol = 2.0 * f64::EPSILON * (f1[j].abs() + f2[j].abs());
                prop_assert!(out.lower[j] - tol <= d && d <= out.upper[j] + tol, "Δf[{j}] = {d:e} outside [{:e}, {:e}]", out.lower[j], out.upper[j]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Every difference quotient `(a(x + t·e_i) − a(x)) / t` of the last layer's input and of
    /// the output, for pairs in the box, lies in the Jacobian bounds of feature `i`; so do
    /// finite-difference derivatives at random points.
    #[test]
    fn jacobian_bounds_contain_difference_quotients(seed in any::<u64>()) {
        let c = build(seed, 4, 32, &[0, 1, 2, 3, 4]);
        let n = c.net.n_inputs();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x51);
        let (lo, hi) = (c.domain.lower(), c.domain.upper());
        let free: Vec<usize> = (0..n).filter(|&j| hi[j] > lo[j]).collect();
        prop_assume!(!free.is_empty());
        let i = free[rng.gen_range(0..free.len())];
        let col = match JacobianBounds.column(&c.net, &c.domain, i) {
            Ok(col) => col,
            Err(e) => { prop_assert!(matches!(e, provenn_bounds::BoundsError::NonFinite(_)), "{e}"); return Ok(()); }
        };
        prop_assert!(JacobianBounds.column(&c.net, &c.domain, n).is_err());
        let last = c.net.layers().len() - 1;
        // The f64 forward pass errs by about ε times the largest intermediate magnitude (not
        // the output's), which a short step divides by t.
        let ibp = IntervalBounds.bounds(&c.net, &c.domain, None).unwrap();
        // A dot product's rounding scales with Σ|w·a|, not with its (possibly cancelled) value:
        // bound every layer input by the largest pre-activation or domain magnitude (+1 for
        // activations such as softplus) and take the largest Σ_j |W_kj|·M + |b_k|.
        let pre_mag = ibp.layers().iter().flat_map(|l| l.pre.lower.iter().chain(&l.pre.upper)).fold(1.0f64, |m, v| m.max(v.abs()));
        let m_in = lo.iter().chain(hi.iter()).fold(pre_mag, |m, v| m.max(v.abs())) + 1.0;
        let terms = c.net.layers().iter().flat_map(|l| {
            (0..l.weights().nrows()).map(move |k| l.weights().row(k).iter().map(|w| w.abs()).sum::<f64>() * m_in + l.bias()[k].abs())
        }).fold(0.0f64, f64::max);
        let mag = pre_mag.max(terms);
        let width = c.net.layers().iter().map(|l| l.inputs()).max().unwrap_or(1) as f64;
        for _ in 0..200 {
            let x: Vec<f64> = (0..n).map(|j| if lo[j] == hi[j] { lo[j] } else { rng.gen_range(lo[j]..=hi[j]) }).collect();
            let room = hi[i] - x[i];
            if room <= 0.0 { continue; }
            // Long steps and (rarely) tiny ones: the bound must hold at every scale.
            let t = if rng.gen_bool(0.1) { room * 1e-6 } else { rng.gen_range(0.05..=1.0) * room };
            let mut x2 = x.clone();
            x2[i] = (x[i] + t).min(hi[i]);
            let t = x2[i] - x[i];
            if t <= 0.0 { continue; }
            let m = DMatrix::from_row_slice(2, n, &[x.clone(), x2].concat());
            let tr = c.net.trace(&m).unwrap();
            let z = tr.layer_input(last);
            let y = tr.output();
            let check = |a: f64, b: f64, l: f64, u: f64, what: &str| -> Result<(), TestCaseError> {
                let q = (b - a) / t;
                let tol = 4.0 * width * f64::EPSILON * mag * (last as f64 + 1.0) / t;
                prop_assert!(l - tol <= q && q <= u + tol, "{what}: quotient {q:e} outside [{l:e}, {u:e}] (t = {t:e})");
                Ok(())
            };
            for k in 0..z.ncols() {
                check(z[(0, k)], z[(1, k)], col.latent.lower[k], col.latent.upper[k], "latent")?;
            }
            for k in 0..y.ncols() {
                check(y[(0, k)], y[(1, k)], col.output().lower[k], col.output().upper[k], "output")?;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// `bounds_with_coefficients` gives the same bounds as `bounds`, and on linear networks
    /// its input coefficients are the linear map `C·W_L⋯W_1` (skip columns excluded).
    #[test]
    fn crown_coefficients_of_linear_networks_are_the_linear_map(seed in any::<u64>()) {
        let c = build(seed, 4, 16, &[4]);
        let plain = CrownBounds.bounds(&c.net, &c.domain, Some(&c.spec));
        let with = CrownBounds.bounds_with_coefficients(&c.net, &c.domain, Some(&c.spec));
        let (Ok(plain), Ok((b, a))) = (plain, with) else {
            return Ok(()); // overflow, covered by the soundness properties
        };
        prop_assert_eq!(&b.spec().unwrap().lower, &plain.spec().unwrap().lower);
        prop_assert_eq!(&b.spec().unwrap().upper, &plain.spec().unwrap().upper);
        let a = a.expect("the output layer is linear");
        let layers = c.net.layers();
        let last = layers.len() - 1;
        let w_last = layers[last].weights();
        let base = w_last.ncols() - c.net.skip_features().len();
        let mut m = &c.spec * w_last.columns(0, base);
        for layer in layers[..last].iter().rev() {
            m = &m * layer.weights();
        }
        prop_assert_eq!(a.shape(), m.shape());
        let scale = m.iter().fold(1.0f64, |s, v| s.max(v.abs()));
        for (x, y) in a.iter().zip(m.iter()) {
            prop_assert!((x - y).abs() <= 1e-9 * scale, "{x} vs {y}");
        }
    }
}
