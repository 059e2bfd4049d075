//! ∀-elimination for the last layer: every weight vector the eliminated encoding admits
//! satisfies the quantified constraint (checked by Z3 on the closed ∀ formula and by
//! sampling); on conjunctive constraints the encodings admit exactly the same weights and
//! their MaxSMT optima agree with the quantified Fu-Malik.
use std::time::Duration;

use num_traits::{Signed, Zero};
use proptest::prelude::*;
use provenn_dsl::ir::{Cmp, Formula, Var};
use provenn_dsl::{compile, Bindings};
use provenn_maxsmt::milp::{self, MilpOptions};
use provenn_maxsmt::z3enc;
use provenn_maxsmt::{
    eliminate, q_from_f64, q_to_f64, EliminationOptions, Encoding, Exactness, FuMalik, LastLayer,
    LastLayerConstraint, LastLayerUpdate, Limits, PmRes, Status, Targets, UpdateMethod, WeightBox,
    Q,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_INPUTS: usize = 3;

fn coef(rng: &mut ChaCha8Rng) -> String {
    format!("{:.2}", rng.gen_range(-2.0..2.0))
}

fn atom(rng: &mut ChaCha8Rng, n_out: usize, skip: &[usize]) -> String {
    let mut terms = vec![format!("{}*y[{}]", coef(rng), rng.gen_range(0..n_out))];
    if n_out > 1 && rng.gen_bool(0.5) {
        terms.push(format!("{}*y[{}]", coef(rng), rng.gen_range(0..n_out)));
    }
    if !skip.is_empty() && rng.gen_bool(0.5) {
        terms.push(format!(
            "{}*x[{}]",
            coef(rng),
            skip[rng.gen_range(0..skip.len())]
        ));
    }
    let cmp = ["<=", "<", ">=", ">"][rng.gen_range(0..4)];
    format!("{} {cmp} {}", terms.join(" + "), coef(rng))
}

/// A random constraint over outputs and skip features; `conjunctive` picks the exact fragment.
fn constraint_src(rng: &mut ChaCha8Rng, n_out: usize, skip: &[usize], conjunctive: bool) -> String {
    let premise = if skip.is_empty() || rng.gen_bool(0.3) {
        None
    } else {
        let s = skip[rng.gen_range(0..skip.len())];
        Some(match rng.gen_range(0..3) {
            0 => format!("x[{s}] <= {:.2}", rng.gen_range(0.1..0.9)),
            1 => format!("x[{s}] == 0"),
            _ => format!(
                "x[{s}] >= {:.2} and x[{s}] < {:.2}",
                rng.gen_range(0.0..0.4),
                rng.gen_range(0.5..1.0)
            ),
        })
    };
    let conclusion = if conjunctive {
        let k = rng.gen_range(1..3);
        (0..k)
            .map(|_| atom(rng, n_out, skip))
            .collect::<Vec<_>>()
            .join(" and ")
    } else {
        match rng.gen_range(0..3) {
            0 => format!(
                "({}) or ({})",
                atom(rng, n_out, skip),
                atom(rng, n_out, skip)
            ),
            1 => format!(
                "at_least(1, [{}, {}])",
                atom(rng, n_out, skip),
                atom(rng, n_out, skip)
            ),
            _ => format!(
                "exactly(1, [{}, {}])",
                atom(rng, n_out, skip),
                atom(rng, n_out, skip)
            ),
        }
    };
    match premise {
        Some(p) => format!("{p} => {conclusion}"),
        None => conclusion,
    }
}

struct Case {
    llc: LastLayerConstraint,
    layer: LastLayer,
    src: String,
    features: Vec<Vec<f64>>,
    labels: Vec<Vec<bool>>,
    bound: f64,
}

fn case(seed: u64, conjunctive: bool) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_latent = rng.gen_range(1..3);
    let n_skip = rng.gen_range(0..3);
    let skip: Vec<usize> = (0..N_INPUTS).take(n_skip).collect();
    let n_out = rng.gen_range(1..3);
    let latent: Vec<(f64, f64)> = (0..n_latent)
        .map(|_| {
            let l = rng.gen_range(-1.0..1.0);
            let w = if rng.gen_bool(0.2) {
                0.0
            } else {
                rng.gen_range(0.1..2.0)
            };
            (l, l + w)
        })
        .collect();
    let domain = vec![(0.0, 1.0); N_INPUTS];
    let src = constraint_src(&mut rng, n_out, &skip, conjunctive);
    let c = compile(&src, &Bindings::anonymous(&domain, n_out))
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .remove(0);
    let layer = LastLayer {
        n_features: n_latent + n_skip,
        n_outputs: n_out,
    };
    let llc = LastLayerConstraint::new(layer, &c, &latent, &skip).unwrap();
    let full: Vec<(f64, f64)> = latent
        .iter()
        .copied()
        .chain(skip.iter().map(|_| (0.0, 1.0)))
        .collect();
    let n_ex = rng.gen_range(1..4);
    let features = (0..n_ex)
        .map(|_| {
            full.iter()
                .map(|&(l, u)| if u > l { rng.gen_range(l..u) } else { l })
                .collect()
        })
        .collect();
    let labels = (0..n_ex)
        .map(|_| (0..n_out).map(|_| rng.gen_bool(0.5)).collect())
        .collect();
    Case {
        llc,
        layer,
        src,
        features,
        labels,
        bound: [1.0, 3.0][rng.gen_range(0..2)],
    }
}

/// Exact truth of a (remapped) DSL formula at rational `z` and `y`.
fn holds_q(f: &Formula, z: &[Q], y: &[Q]) -> bool {
    match f {
        Formula::True => true,
        Formula::False => false,
        Formula::Atom(a) => {
            let mut e = a.expr.constant.as_const().unwrap().clone();
            for (v, k) in &a.expr.terms {
                let val = match v {
                    Var::Input(_, j) => &z[*j],
                    Var::Output(_, o) => &y[*o],
                };
                e += k.as_const().unwrap() * val;
            }
            match a.cmp {
                Cmp::Lt => e.is_negative(),
                Cmp::Le => !e.is_positive(),
                Cmp::Eq => e.is_zero(),
                Cmp::Ge => !e.is_negative(),
                Cmp::Gt => e.is_positive(),
            }
        }
        Formula::And(v) => v.iter().all(|g| holds_q(g, z, y)),
        Formula::Or(v) => v.iter().any(|g| holds_q(g, z, y)),
        Formula::Count { terms, cmp, bound } => {
            let mut s = -bound.clone();
            for (w, g) in terms {
                if holds_q(g, z, y) {
                    s += w;
                }
            }
            match cmp {
                Cmp::Lt => s.is_negative(),
                Cmp::Le => !s.is_positive(),
                Cmp::Eq => s.is_zero(),
                Cmp::Ge => !s.is_negative(),
                Cmp::Gt => s.is_positive(),
            }
        }
    }
}

/// Sampled check (corners included), evaluated exactly in rationals: f64 rounding would
/// misjudge points where a count's atom sits exactly on its boundary.
fn sampled_ok(c: &Case, theta: &[Q], seed: u64) -> bool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dom: Vec<(f64, f64)> = c
        .llc
        .domain()
        .iter()
        .map(|(l, u)| (q_to_f64(l), q_to_f64(u)))
        .collect();
    (0..400).all(|i| {
        let z: Vec<Q> = dom
            .iter()
            .map(|&(l, u)| {
                if i % 4 == 0 {
                    if rng.gen_bool(0.5) {
                        l
                    } else {
                        u
                    }
                } else if u > l {
                    rng.gen_range(l..=u)
                } else {
                    l
                }
            })
            .map(|v| q_from_f64(v).unwrap())
            .collect();
        let y: Vec<Q> = (0..c.layer.n_outputs)
            .map(|k| c.layer.output_form(k, &z).eval(theta))
            .collect();
        c.llc
            .rules()
            .iter()
            .all(|r| !holds_q(&r.premise, &z, &y) || holds_q(&r.conclusion, &z, &y))
    })
}

fn random_theta(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<Q> {
    (0..n)
        .map(|_| {
            // Coarse values so that boundary cases (min exactly 0) occur.
            let v = (rng.gen_range(-bound..bound) * 4.0).round() / 4.0;
            q_from_f64(v).unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The eliminated encoding admits θ ⇔ θ satisfies the constraint (conjunctive fragment),
    /// or ⇒ (disjunctions and counts, sound selector encoding).
    #[test]
    fn elimination_admits_exactly_the_satisfying_weights(seed in any::<u64>(), conjunctive in any::<bool>()) {
        let c = case(seed, conjunctive);
        let wbox = vec![(q_from_f64(-c.bound).unwrap(), q_from_f64(c.bound).unwrap()); c.layer.n_params()];
        // Region splitting (for disjunctions and counts) must stay sound at every depth.
        let split_depth = (seed % 3) as usize;
        let p = eliminate(&c.llc, &wbox, EliminationOptions { split_depth }).unwrap();
        if conjunctive {
            // Only a strict premise bound (closed by the encoding) may cost exactness.
            let ok = match &p.exactness {
                Exactness::Exact => true,
                Exactness::Sound(why) => why.contains("strict premise"),
            };
            prop_assert!(ok, "{:?} for {}", p.exactness, c.src);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        for _ in 0..12 {
            let theta = random_theta(&mut rng, c.layer.n_params(), c.bound);
            let admitted = z3enc::admits(&p, &theta).unwrap();
            let witness = c.llc.counterexample(&theta).unwrap();
            let holds = witness.is_none();
            if let Some(z) = &witness {
                // The witness is a point of the domain where the constraint fails, exactly.
                prop_assert!(!c.llc.holds_at_exact(&theta, z), "witness {z:?} satisfies {}", c.src);
            }
            let holds_q = z3enc::quantified_holds(&c.llc, &theta).unwrap();
            prop_assert_eq!(holds, holds_q, "the two exact checks disagree on {}", c.src);
            if admitted {
                prop_assert!(holds, "admitted a violating θ for {}", c.src);
            }
            if p.exactness == Exactness::Exact {
                prop_assert_eq!(admitted, holds, "{}", c.src);
            }
        }
    }

    /// Solutions of the eliminated MaxSMT and MILP satisfy the ∀ constraint (Z3 on the closed
    /// formula, and sampling); on conjunctive constraints the eliminated optimum equals the
    /// quantified Fu-Malik optimum.
    #[test]
    fn eliminated_maxsmt_matches_the_quantified_optimum(seed in any::<u64>(), conjunctive in any::<bool>()) {
        let c = case(seed, conjunctive);
        let targets = Targets::Classification { labels: c.labels.clone(), margins: vec![0.0, 0.5] };
        let wb = WeightBox::uniform(c.layer.n_params(), -c.bound, c.bound).unwrap();
        let up = LastLayerUpdate::new(&c.llc, wb, &c.features, &targets).unwrap();
        let limits = Limits { time_limit: Some(Duration::from_secs(10)), ..Limits::default() };
        let opts = EliminationOptions::default();
        let elim = up.solve(UpdateMethod::Eliminated(opts), &PmRes, &limits).unwrap();
        let milp = up.solve(UpdateMethod::Milp(opts), &PmRes, &limits).unwrap();
        for out in [&elim, &milp] {
            if let Some(theta) = &out.theta {
                prop_assert!(z3enc::quantified_holds(&c.llc, theta).unwrap(), "{}", c.src);
                prop_assert!(sampled_ok(&c, theta, seed), "{}", c.src);
                prop_assert_eq!(out.satisfied, up.count_satisfied(theta));
            }
        }
        // Optima are compared where the encoding is exact (a closed strict premise bound makes
        // it sound only, and then it may admit fewer weights).
        if conjunctive && elim.encoding == Encoding::Eliminated(Exactness::Exact) {
            prop_assert!(matches!(elim.status, Status::Optimal | Status::Unsatisfiable), "{}", c.src);
            let quant = up.solve(UpdateMethod::Quantified, &FuMalik, &limits).unwrap();
            if std::env::var("MAXSMT_STATS").is_ok() {
                eprintln!("cmp {:?} {:?} {} {} {}", quant.status, elim.status, quant.satisfied, elim.satisfied, milp.satisfied);
            }
            match (quant.status, elim.status) {
                (Status::Optimal, Status::Optimal) => {
                    prop_assert_eq!(quant.satisfied, elim.satisfied, "{}", c.src);
                    // HiGHS states strict comparisons with a 1e-6 margin: never more.
                    prop_assert!(milp.satisfied <= elim.satisfied, "{}", c.src);
                }
                (Status::Unsatisfiable, s) | (s, Status::Unsatisfiable) if s != Status::Unknown => {
                    prop_assert_eq!(quant.status, elim.status, "{}", c.src);
                    prop_assert_eq!(milp.status, Status::Unsatisfiable, "{}", c.src);
                }
                _ => {} // the quantified solve ran out of time: nothing to compare
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    /// A MaxSMT step stopped by a node limit is still exactly checked: its weights satisfy the
    /// ∀ constraint, it never satisfies more soft constraints than the unlimited optimum, and
    /// it claims optimality only with the optimum's count.
    #[test]
    fn node_limited_steps_are_sound_and_never_beat_the_optimum(seed in any::<u64>(), conjunctive in any::<bool>()) {
        let c = case(seed, conjunctive);
        let targets = Targets::Classification { labels: c.labels.clone(), margins: vec![0.0, 0.5] };
        let wb = WeightBox::uniform(c.layer.n_params(), -c.bound, c.bound).unwrap();
        let up = LastLayerUpdate::new(&c.llc, wb, &c.features, &targets).unwrap();
        let opts = EliminationOptions::default();
        let full = Limits { time_limit: Some(Duration::from_secs(10)), ..Limits::default() };
        let capped = Limits { node_limit: Some(1), ..full.clone() };
        let best = up.solve(UpdateMethod::Milp(opts), &PmRes, &full).unwrap();
        let out = up.solve(UpdateMethod::Milp(opts), &PmRes, &capped).unwrap();
        if let Some(theta) = &out.theta {
            prop_assert!(out.f64_verified);
            prop_assert!(z3enc::quantified_holds(&c.llc, theta).unwrap(), "{}", c.src);
            prop_assert_eq!(out.satisfied, up.count_satisfied(theta));
            if best.status == Status::Optimal {
                prop_assert!(out.satisfied <= best.satisfied, "{}", c.src);
                if out.status == Status::Optimal {
                    prop_assert_eq!(out.satisfied, best.satisfied, "{}", c.src);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    /// Polishing a MILP point fixes exactly that point's binaries: the LP keeps every binary
    /// at its rounded value (so it meets the same soft constraints as the MILP counted), its
    /// weights stay in the box, and binaries of the wrong count are an error, not a panic.
    #[test]
    fn polishing_keeps_the_milp_points_binaries(seed in any::<u64>(), conjunctive in any::<bool>()) {
        let c = case(seed, conjunctive);
        let targets = Targets::Classification { labels: c.labels.clone(), margins: vec![0.0, 0.5] };
        let wb = WeightBox::uniform(c.layer.n_params(), -c.bound, c.bound).unwrap();
        let up = LastLayerUpdate::new(&c.llc, wb.clone(), &c.features, &targets).unwrap();
        let p = eliminate(&c.llc, &wb.closed(), EliminationOptions::default()).unwrap();
        let soft: Vec<_> = up.soft_constraints().iter().map(|f| (f.clone(), 1)).collect();
        let opts = MilpOptions { time_limit: Some(Duration::from_secs(10)), ..MilpOptions::default() };
        let sol = milp::solve(&p, &soft, &opts).unwrap();
        prop_assert_eq!(sol.binaries.len(), if sol.theta.is_some() { sol.n_binaries } else { 0 });
        if sol.theta.is_none() || sol.binaries.is_empty() {
            return Ok(());
        }
        let polished = milp::polish(&p, &soft, &opts, &sol.binaries).unwrap();
        if let Some(theta) = &polished.theta {
            let rounded: Vec<f64> = sol.binaries.iter().map(|v| v.round()).collect();
            prop_assert_eq!(&polished.binaries, &rounded, "{}", c.src);
            let objective = polished.objective.unwrap();
            prop_assert!((objective - sol.objective.unwrap()).abs() < 1e-4, "{} vs {:?}", objective, sol.objective);
            // Within HiGHS's 1e-7 feasibility tolerance (the caller checks the box exactly).
            prop_assert!(theta.iter().all(|t| t.abs() <= c.bound + 1e-6), "{:?}", theta);
        }
        let mut short = sol.binaries.clone();
        short.pop();
        prop_assert!(milp::polish(&p, &soft, &opts, &short).is_err());
    }
}

/// A strict atom whose exact minimum over the region is 0 fails there (and a non-strict one
/// holds): the corner check must not round the boundary either way.
#[test]
fn counterexample_decides_strict_boundaries_exactly() {
    let domain = vec![(0.0, 1.0)];
    let layer = LastLayer {
        n_features: 1,
        n_outputs: 1,
    };
    let theta = [Q::zero(), Q::from_integer(1.into())];
    for (src, fails) in [
        ("y[0] > 0", true),
        ("y[0] >= 0", false),
        ("y[0] < 1", true),
        ("y[0] <= 1", false),
    ] {
        let c = compile(src, &Bindings::anonymous(&domain, 1))
            .unwrap()
            .remove(0);
        let llc = LastLayerConstraint::new(layer, &c, &[(0.0, 1.0)], &[]).unwrap();
        let w = llc.counterexample(&theta).unwrap();
        assert_eq!(w.is_some(), fails, "{src}: {w:?}");
        if let Some(z) = w {
            assert!(
                !llc.holds_at_exact(&theta, &z),
                "{src} holds at the witness {z:?}"
            );
        }
    }
}

/// Conclusions outside the conjunctive fragment (counts with negative weights, nested
/// disjunctions) over coarse integer boxes and weights, so atoms often touch 0 exactly at a
/// corner: the box check must agree with Z3 on the closed ∀ formula whenever it answers, and
/// its witnesses must violate exactly.
const STRUCTURED: &[&str] = &[
    "exactly(1, [y[0] > 0, y[1] > 0, y[2] > 0])",
    "sum(i in 0..3: if y[i] >= 0 then i - 1 else 0) >= 0",
    "sum(i in 0..3: if y[i] > 0 then 1 - 2 * i else 0) < 0",
    "(y[0] > 0 or y[1] < 0) and at_most(1, [y[0] > 0, y[2] <= 0])",
    "at_least(2, [y[0] > y[1], y[1] > y[2], y[2] >= 0]) or y[0] == 1",
    "x[0] <= 0.5 => exactly(1, [y[0] < 0, y[1] + x[0] <= 1])",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn box_check_agrees_with_z3_on_structured_conclusions(
        which in 0..STRUCTURED.len(),
        ends in prop::collection::vec((-1i32..=1, 0i32..=1), 2),
        theta in prop::collection::vec(-2i32..=2, 12),
    ) {
        let src = STRUCTURED[which];
        let domain = vec![(0.0, 1.0)];
        let c = compile(src, &Bindings::anonymous(&domain, 3)).unwrap().remove(0);
        let skip: Vec<usize> = if src.contains("x[0]") { vec![0] } else { vec![] };
        let latent: Vec<(f64, f64)> = ends.iter().map(|&(l, w)| (f64::from(l), f64::from(l + w))).collect();
        let layer = LastLayer { n_features: latent.len() + skip.len(), n_outputs: 3 };
        let llc = LastLayerConstraint::new(layer, &c, &latent, &skip).unwrap();
        let theta: Vec<Q> = theta.iter().take(layer.n_params()).map(|&v| Q::from_integer(v.into())).collect();
        let witness = llc.counterexample(&theta).unwrap();
        let holds = z3enc::quantified_holds(&llc, &theta).unwrap();
        prop_assert_eq!(witness.is_none(), holds, "{} θ={:?}", src, theta);
        if let Some(z) = &witness {
            prop_assert!(!llc.holds_at_exact(&theta, z), "witness {:?} satisfies {}", z, src);
        }
    }
}
