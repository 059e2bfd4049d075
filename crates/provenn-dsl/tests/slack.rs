//! `Formula::with_output_slack`: the strengthened formula implies the original, keeps holding
//! under output perturbations smaller than the slack, and agrees with the original wherever
//! every output comparison is decided by more than the slack.
use proptest::prelude::*;
use provenn_dsl::ir::{Assignment, Constraint, Formula, Q};
use provenn_dsl::{compile, Bindings};

const SOURCES: &[&str] = &[
    "forall x: x[0] <= 0.5 and x[1] <= 0.5 => y[0] > y[1]",
    "forall x: sum(i in 0..4: if y[i] > 0 then i else 0) > 2",
    "forall x: sum(i in 0..4: if y[i] >= x[1] then 2 - i else 0) <= 0 and sum(i in 0..4: if y[i] < 0 then i - 1 else 0) == 1",
    "forall x: all([exactly(1, [y[r, c] > 0 for c in 0..2]) for r in 0..2]) and all([exactly(1, [y[r, c] > 0 for r in 0..2]) for c in 0..2])",
    "forall x: max(y[0], y[1]) - min(y[2], y[3]) < 3 or not (y[0] >= 1e-3)",
    "forall x: argmax(y) in {0, 2} <=> (y[1] != 0.5)",
    "forall x: at_most(2, [y[i] >= x[0] for i in 0..4]) => y[3] <= x[2]",
];

fn constraints() -> Vec<Constraint> {
    let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0), (-1.0, 1.0)], 4);
    SOURCES
        .iter()
        .map(|s| {
            compile(s, &b)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .remove(0)
        })
        .collect()
}

const EPS: f64 = 0.01;

fn holds(f: &Formula, x: &[f64], y: &[f64]) -> bool {
    f.holds(&Assignment {
        x,
        y,
        x2: &[],
        y2: &[],
    })
}

/// The smallest |value| of any output-reading atom at `(x, y)`.
fn closest_output_atom(f: &Formula, x: &[f64], y: &[f64]) -> f64 {
    let a = Assignment {
        x,
        y,
        x2: &[],
        y2: &[],
    };
    match f {
        Formula::True | Formula::False => f64::INFINITY,
        Formula::Atom(at) if at.expr.is_input_only() => f64::INFINITY,
        Formula::Atom(at) => at.expr.eval(&a).abs(),
        Formula::And(v) | Formula::Or(v) => v
            .iter()
            .map(|g| closest_output_atom(g, x, y))
            .fold(f64::INFINITY, f64::min),
        Formula::Count { terms, .. } => terms
            .iter()
            .map(|(_, g)| closest_output_atom(g, x, y))
            .fold(f64::INFINITY, f64::min),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn slack_strengthens_and_is_exact_away_from_the_boundaries(
        which in 0..SOURCES.len(),
        x in prop::collection::vec(0.0f64..1.0, 3),
        // Half the outputs on or near the boundaries (0, ±eps/2, ±eps).
        y in prop::collection::vec(prop_oneof![
            -1.0f64..1.0,
            prop::sample::select(vec![-0.01, -0.005, 0.0, 0.005, 0.01, 0.5]),
        ], 4),
        dy in prop::collection::vec(-1.0f64..1.0, 4),
    ) {
        let c = &constraints()[which];
        let eps = Q::new(1.into(), 100.into());
        let strong = c.with_output_slack(&eps).formula;
        let weak = &c.formula;
        if holds(&strong, &x, &y) {
            prop_assert!(holds(weak, &x, &y), "strengthened holds, original fails at {y:?}");
            // Output coefficients here are ±1 with at most 2 terms per atom, so moving every
            // output by < eps/2 keeps each comparison on its side.
            let y2: Vec<f64> = y.iter().zip(&dy).map(|(v, d)| v + d * EPS * 0.49).collect();
            prop_assert!(holds(weak, &x, &y2), "original fails within eps/2 of {y:?}: {y2:?}");
        }
        if closest_output_atom(weak, &x, &y) > EPS {
            prop_assert_eq!(holds(&strong, &x, &y), holds(weak, &x, &y));
        }
    }
}

#[test]
fn zero_slack_is_the_identity() {
    for c in constraints() {
        assert_eq!(c.with_output_slack(&Q::from_integer(0.into())), c);
    }
}

#[test]
fn a_count_term_decided_weakly_is_not_counted_either_way() {
    // Exactly one of y0, y1 positive: y = (0.5, 0.005) satisfies neither the original
    // (two positives) nor the strengthened formula; y = (0.5, -0.5) satisfies both; and
    // y = (0.5, -0.005) satisfies only the original (y1 is not decided with slack).
    let b = Bindings::anonymous(&[(0.0, 1.0)], 2);
    let c = compile("forall x: exactly(1, [y[i] > 0 for i in 0..2])", &b)
        .unwrap()
        .remove(0);
    let strong = c.with_output_slack(&Q::new(1.into(), 100.into())).formula;
    let x = [0.5];
    assert!(!holds(&c.formula, &x, &[0.5, 0.005]));
    assert!(!holds(&strong, &x, &[0.5, 0.005]));
    assert!(holds(&c.formula, &x, &[0.5, -0.5]) && holds(&strong, &x, &[0.5, -0.5]));
    assert!(holds(&c.formula, &x, &[0.5, -0.005]));
    assert!(!holds(&strong, &x, &[0.5, -0.005]));
}

#[test]
fn a_count_leaves_terms_it_does_not_need_free() {
    // UC4's form: Σ j·[y_j > 0] > 2 with y3 robustly positive (3 > 2): y0..y2 may sit
    // anywhere, even on their boundaries, and the strengthened formula still holds; with
    // only y2 robust (2), weakly positive y1 and y3 do not count.
    let b = Bindings::anonymous(&[(0.0, 1.0)], 4);
    let c = compile(
        "forall x: sum(j in 0..4: if y[j] > 0 then j else 0) > 2",
        &b,
    )
    .unwrap()
    .remove(0);
    let strong = c.with_output_slack(&Q::new(1.into(), 100.into())).formula;
    assert!(holds(&strong, &[0.5], &[0.0, 0.001, -0.001, 1.0]));
    assert!(holds(&c.formula, &[0.5], &[1.0, 0.005, 1.0, 0.005]));
    assert!(!holds(&strong, &[0.5], &[1.0, 0.005, 1.0, 0.005]));
}
