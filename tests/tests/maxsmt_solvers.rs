//! MaxSMT solvers: Fu-Malik and PM-RES agree with each other and with Z3's own `Optimize`
//! (an independent implementation) on random weighted instances; limits are honoured.
use std::time::{Duration, Instant};

use proptest::prelude::*;
use provenn_maxsmt::z3::ast::{Bool, Real};
use provenn_maxsmt::z3::{Optimize, SatResult};
use provenn_maxsmt::{
    CancelToken, FuMalik, Instance, Limits, MaxSmtSolver, PmRes, SoftConstraint, Status, Z3Optimize,
};

/// A literal or a small linear atom over two reals, from a code.
fn lit(bools: &[Bool], reals: &[Real], code: (u8, bool, i8)) -> Bool {
    let (v, neg, k) = code;
    let b = if (v as usize) < bools.len() {
        bools[v as usize].clone()
    } else {
        let r = &reals[v as usize % reals.len()];
        let other = &reals[(v as usize + 1) % reals.len()];
        Real::add(&[r.clone(), other.clone()])
            .le(Real::from_rational_str(&k.to_string(), "2").unwrap())
    };
    if neg {
        b.not()
    } else {
        b
    }
}

type Clause = Vec<(u8, bool, i8)>;

fn clause() -> impl Strategy<Value = Clause> {
    prop::collection::vec((0u8..7, any::<bool>(), -4i8..5), 1..4)
}

/// Soft constraints are short (mostly units) so that cores overlap and optima need several.
fn short_clause() -> impl Strategy<Value = Clause> {
    prop::collection::vec((0u8..5, any::<bool>(), -4i8..5), 1..3)
}

fn optimum_by_z3_optimize(hard: &[Bool], soft: &[SoftConstraint]) -> Option<u64> {
    let opt = Optimize::new();
    for h in hard {
        opt.assert(h);
    }
    for s in soft {
        opt.assert_soft(&s.formula, s.weight, None);
    }
    match opt.check(&[]) {
        SatResult::Sat => {
            let m = opt.get_model()?;
            Some(
                soft.iter()
                    .filter(|s| m.eval(&s.formula, true).and_then(|b| b.as_bool()) != Some(true))
                    .map(|s| s.weight)
                    .sum(),
            )
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn fu_malik_and_pm_res_agree_on_weighted_instances(
        hard in prop::collection::vec(clause(), 0..5),
        soft in prop::collection::vec((short_clause(), 1u64..6), 3..14),
    ) {
        let bools: Vec<Bool> = (0..4).map(|i| Bool::new_const(format!("p{i}"))).collect();
        let reals: Vec<Real> = (0..3).map(|i| Real::new_const(format!("r{i}"))).collect();
        let to_bool = |c: &Clause| Bool::or(&c.iter().map(|&l| lit(&bools, &reals, l)).collect::<Vec<_>>());
        let inst = Instance {
            hard: hard.iter().map(to_bool).collect(),
            soft: soft.iter().map(|(c, w)| SoftConstraint { formula: to_bool(c), weight: *w }).collect(),
            logic: None,
        };
        let limits = Limits::default();
        let fm = FuMalik.solve(&inst, &limits);
        let pm = PmRes.solve(&inst, &limits);
        let zo = Z3Optimize.solve(&inst, &limits);
        let reference = optimum_by_z3_optimize(&inst.hard, &inst.soft);
        if std::env::var("MAXSMT_STATS").is_ok() {
            eprintln!("opt {:?} cores fm {} pm {}", reference, fm.stats.cores, pm.stats.cores);
        }
        match reference {
            None => {
                prop_assert_eq!(fm.status, Status::Unsatisfiable);
                prop_assert_eq!(pm.status, Status::Unsatisfiable);
                prop_assert_eq!(zo.status, Status::Unsatisfiable);
            }
            Some(opt) => {
                prop_assert_eq!(fm.status, Status::Optimal);
                prop_assert_eq!(pm.status, Status::Optimal);
                prop_assert_eq!(fm.cost, Some(opt));
                prop_assert_eq!(pm.cost, Some(opt));
                prop_assert_eq!(zo.status, Status::Optimal);
                prop_assert_eq!(zo.cost, Some(opt));
                // The lower bounds the algorithms prove are the optimum.
                prop_assert_eq!(fm.lower_bound, opt);
                prop_assert_eq!(pm.lower_bound, opt);
                // The models satisfy the hard constraints.
                for h in &inst.hard {
                    prop_assert_eq!(fm.model.as_ref().unwrap().eval(h, true).and_then(|b| b.as_bool()), Some(true));
                    prop_assert_eq!(pm.model.as_ref().unwrap().eval(h, true).and_then(|b| b.as_bool()), Some(true));
                }
            }
        }
    }
}

/// Pigeonhole: `n + 1` pigeons in `n` holes, as hard clauses (exponential for resolution).
fn pigeonhole(n: usize) -> Vec<Bool> {
    let p: Vec<Vec<Bool>> = (0..=n)
        .map(|i| {
            (0..n)
                .map(|h| Bool::new_const(format!("ph{i}_{h}")))
                .collect()
        })
        .collect();
    let mut hard = Vec::new();
    for row in &p {
        hard.push(Bool::or(row));
    }
    for h in 0..n {
        let column: Vec<&Bool> = p.iter().map(|row| &row[h]).collect();
        for (i, a) in column.iter().enumerate() {
            for b in &column[i + 1..] {
                hard.push(Bool::or(&[a.not(), b.not()]));
            }
        }
    }
    hard
}

#[test]
fn time_limit_gives_unknown_within_ten_percent() {
    let inst = Instance {
        hard: pigeonhole(12),
        soft: vec![],
        logic: None,
    };
    for solver in [&FuMalik as &dyn MaxSmtSolver, &PmRes, &Z3Optimize] {
        let limit = Duration::from_millis(1500);
        let t0 = Instant::now();
        let out = solver.solve(
            &inst,
            &Limits {
                time_limit: Some(limit),
                ..Limits::default()
            },
        );
        let took = t0.elapsed();
        assert_eq!(
            out.status,
            Status::Unknown,
            "{}: {:?}",
            solver.name(),
            out.reason
        );
        assert!(
            took <= limit + limit / 10,
            "{} took {took:?}",
            solver.name()
        );
    }
}

#[test]
fn cancellation_stops_a_running_call() {
    let inst = Instance {
        hard: pigeonhole(12),
        soft: vec![],
        logic: None,
    };
    let token = CancelToken::new();
    let t = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        t.cancel();
    });
    let t0 = Instant::now();
    let out = PmRes.solve(
        &inst,
        &Limits {
            time_limit: Some(Duration::from_secs(60)),
            cancel: Some(token),
            node_limit: None,
        },
    );
    canceller.join().unwrap();
    assert_eq!(out.status, Status::Unknown);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}
