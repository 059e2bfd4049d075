//! MILPs on which a HiGHS release gave a wrong answer. Each problem is checked to be what
//! the test claims (a known feasible point, verified row by row) before any solver runs, so a
//! failure here means the solver, not the instance.
#![cfg(feature = "highs")]

use provenn_milp::{default_backend, Milp, Sense, SolveOptions, SolveStatus, VarId};

type RowSpec = (&'static [(usize, f64)], f64, f64);

fn milp(vars: &[(f64, f64, bool)], rows: &[RowSpec], objective: usize) -> Milp {
    let mut m = Milp::new();
    let v: Vec<VarId> = vars
        .iter()
        .map(|&(l, u, int)| if int { m.binary() } else { m.continuous(l, u) })
        .collect();
    for &(coefs, lower, upper) in rows {
        m.row(
            coefs.iter().map(|&(i, a)| (v[i], a)).collect(),
            lower,
            upper,
        );
    }
    m.set_objective(Sense::Maximise, vec![(v[objective], 1.0)]);
    m
}

/// The Box+simplify explanation query of `milp_explanations` seed 18082714022601036175
/// (fixed feature 0 of a 4-4-2-3 ReLU classifier; class 2 predicted; does another class
/// reach it?). HiGHS 1.15.0 declared it infeasible after presolve and root cuts, so the
/// explainer dropped a necessary feature; HiGHS 1.16.0 and presolve-off runs find the point.
#[test]
fn relu_disjunction_query_is_feasible() {
    let vars: &[(f64, f64, bool)] = &[
        (0.9939161151633988, 0.9939161151633988, false),
        (0.0, 1.0, false),
        (0.0, 1.0, false),
        (0.0, 1.0, false),
        (-0.0, 0.9092651764062311, false),
        (0.0, 1.0, true),
        (-0.0, 2.8901761109878694, false),
        (0.0, 1.0, true),
        (-0.0, 1.3703934717849282, false),
        (0.0, 1.0, true),
        (0.04497256249756842, 1.6153256250495949, false),
        (-0.8031934321730064, 0.3056610168746588, false),
        (-1.443476341789153, 0.4142527663181817, false),
        (-0.18858348737850092, 0.4910370334027184, false),
        (0.0, 1.0, false),
        (0.0, 1.0, true),
        (0.0, 1.0, true),
    ];
    let rows: &[RowSpec] = &[
        (
            &[
                (0, 0.72534103199975),
                (1, 0.7402518671720724),
                (2, -1.3530708365662303),
                (3, 0.9155508154664145),
                (4, 1.0),
            ],
            0.27712248053376,
            f64::INFINITY,
        ),
        (
            &[
                (0, 0.72534103199975),
                (1, 0.7402518671720724),
                (2, -1.3530708365662303),
                (3, 0.9155508154664145),
                (4, 1.0),
                (5, 2.099608342798572),
            ],
            f64::NEG_INFINITY,
            2.3767308233323323,
        ),
        (
            &[
                (0, 0.0),
                (1, 0.0),
                (2, -0.0),
                (3, 0.0),
                (4, 1.0),
                (5, -0.9092651764062311),
            ],
            f64::NEG_INFINITY,
            0.0,
        ),
        (
            &[
                (0, -0.8885296858304361),
                (1, -0.6520191704910845),
                (2, 1.2331790957701443),
                (3, -1.3506096713041282),
                (6, 1.0),
            ],
            0.004423295644669922,
            f64::INFINITY,
        ),
        (
            &[
                (0, -0.8885296858304361),
                (1, -0.6520191704910845),
                (2, 1.2331790957701443),
                (3, -1.3506096713041282),
                (6, 1.0),
                (7, 0.345631826577576),
            ],
            f64::NEG_INFINITY,
            0.35005512222224594,
        ),
        (
            &[
                (0, -0.0),
                (1, -0.0),
                (2, 0.0),
                (3, -0.0),
                (6, 1.0),
                (7, -2.8901761109878694),
            ],
            f64::NEG_INFINITY,
            0.0,
        ),
        (
            &[
                (0, -0.532514913461505),
                (1, 0.4906429912720862),
                (2, -0.8978587018699358),
                (3, 0.4851065856486163),
                (8, 1.0),
            ],
            -0.05674038413926663,
            f64::INFINITY,
        ),
        (
            &[
                (0, -0.532514913461505),
                (1, 0.4906429912720862),
                (2, -0.8978587018699358),
                (3, 0.4851065856486163),
                (8, 1.0),
                (9, 0.5032148070057628),
            ],
            f64::NEG_INFINITY,
            0.4464744228664962,
        ),
        (
            &[
                (0, -0.0),
                (1, 0.0),
                (2, -0.0),
                (3, 0.0),
                (8, 1.0),
                (9, -1.3703934717849282),
            ],
            f64::NEG_INFINITY,
            -0.0,
        ),
        (
            &[
                (4, -0.8701932169797353),
                (6, 0.2422713702138941),
                (8, 1.4523910284057857),
                (10, -1.0),
            ],
            -0.0756303069852935,
            -0.0756303069852935,
        ),
        (
            &[(10, -0.7061184543936581), (11, -1.0)],
            -0.33741697319554165,
            -0.33741697319554165,
        ),
        (
            &[(10, -1.183003396334881), (12, -1.0)],
            -0.4674554604946568,
            -0.4674554604946568,
        ),
        (
            &[(10, 0.4327809255267727), (13, -1.0)],
            0.20804675459948974,
            0.20804675459948974,
        ),
        (
            &[(11, -1.0), (13, 1.0), (14, 1.0), (15, 2.294230465575725)],
            f64::NEG_INFINITY,
            2.294230465575725,
        ),
        (
            &[(12, -1.0), (13, 1.0), (14, 1.0), (16, 2.9345133751918713)],
            f64::NEG_INFINITY,
            2.9345133751918713,
        ),
        (&[(15, 1.0), (16, 1.0)], 1.0, f64::INFINITY),
    ];
    let m = milp(vars, rows, 14);
    // The network at x = (0.99392, 1, 0.020168, 0): hidden layer 1 (−1.157, 1.515, −2.363, 0)
    // → ReLU, layer 2 (−0.937, 0.443) → ReLU, outputs (0.02489, −0.05614, −0.01650): class 0
    // leads class 2 by 0.0414. Variables: inputs, (post, indicator) of the three unstable
    // neurons, layer 2's active neuron, the outputs, the lead s, one indicator per other class.
    let point = [
        0.9939161151633988,
        1.0,
        0.020168230612909253,
        0.0,
        0.0,
        0.0,
        1.5146953992931855,
        1.0,
        0.0,
        0.0,
        0.442597636828735,
        0.02489061395974973,
        -0.056139047083528903,
        -0.016498939696787368,
        0.0413,
        1.0,
        0.0,
    ];
    assert!(
        m.max_violation(&point) <= 1e-9,
        "{}",
        m.max_violation(&point)
    );

    let backend = default_backend();
    for confirm_proofs in [false, true] {
        let out = backend
            .solve(
                &m,
                &SolveOptions {
                    confirm_proofs,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_ne!(
            out.status,
            SolveStatus::Infeasible,
            "confirm_proofs {confirm_proofs}"
        );
        assert!(out.objective.is_some_and(|o| o >= 0.0413), "{out:?}");
        // No bound below a feasible point's objective.
        assert!(out.bound.is_none_or(|b| b >= 0.0413 - 1e-6), "{out:?}");
    }
}
