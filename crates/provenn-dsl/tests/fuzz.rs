//! Arbitrary and mutated constraint text never makes the front end panic (100,000+ inputs per
//! run across the two properties).
use proptest::prelude::*;
use provenn_dsl::{compile, Bindings};

const SEEDS: &[&str] = &[
    "forall x: x[0] <= 0.5 and x[1] == 0 => y[0] > y[1]",
    "forall x: sum(i in 0..3: if y[i] > 0 then i else 0) > 1",
    "forall x: all([exactly(1, [y[r, c] > 0 for c in 0..2]) for r in 0..2])",
    "forall x, x2: linf(x - x2) <= 0.05 => abs(y - y2) <= 0.1",
    "forall x, x2: same(x, x2, except [x0]) => argmax(y) == argmax(y2)",
    "const k = 5\nforall x in [x0: -1 .. 1]: x[0] <= -1 => y[0] >= k * sin(pi/2*(x[0]+1))^2",
    "forall x: max(y[0], y[1]) - min(y[2], y[3]) < 3 or not (y[0] >= 1e-3)",
    "forall x: argmax(y) in {0, 2} <=> (y[1] != 2.5)",
];

/// Applies deletions (0), insertions (1) and truncations (2) at the given positions.
fn mutate(seed: &str, edits: Vec<(prop::sample::Index, u8, String)>) -> String {
    let mut s: Vec<char> = seed.chars().collect();
    for (pos, kind, text) in edits {
        let i = if s.is_empty() { 0 } else { pos.index(s.len()) };
        match kind {
            0 => {
                if !s.is_empty() {
                    s.remove(i);
                }
            }
            1 => {
                for (k, c) in text.chars().enumerate() {
                    s.insert((i + k).min(s.len()), c);
                }
            }
            _ => s.truncate(i),
        }
    }
    s.into_iter().collect()
}

fn bindings() -> Bindings {
    Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0), (-1.0, 1.0)], 4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(50_000))]

    #[test]
    fn arbitrary_text_never_panics(s in "[ -~\n]{0,80}") {
        let _ = compile(&s, &bindings());
    }

    #[test]
    fn mutated_constraints_never_panic(seed in 0..SEEDS.len(), edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~]{0,3}"), 1..5)) {
        let text = mutate(SEEDS[seed], edits);
        let _ = compile(&text, &bindings());
    }
}

#[test]
fn seeds_compile() {
    for s in SEEDS {
        compile(s, &bindings()).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("forall x: {}y[0] > 0{}", "(".repeat(5000), ")".repeat(5000));
    assert!(compile(&deep, &bindings())
        .unwrap_err()
        .to_string()
        .contains("nested too deeply"));
}

#[test]
fn long_prefix_chains_are_errors_not_stack_overflows() {
    let b = bindings();
    for op in ["not ", "-", "y[0] > 0 => ", "2 ^ "] {
        let src = format!("forall x: {}y[0] > 0", op.repeat(100_000));
        let r = compile(&src, &b);
        assert!(r.is_err(), "{op}");
    }
}

#[test]
fn long_operator_chains_are_bounded_and_moderate_ones_work() {
    let b = bindings();
    for op in [" + y[0]", " and y[0] > 0", " * 2", " or y[1] > 0"] {
        let long = format!("forall x: y[0]{} > 0", op.repeat(100_000));
        assert!(compile(&long, &b).is_err(), "{op}");
    }
    let moderate = format!("forall x: y[0]{} > 0", " + y[1]".repeat(300));
    assert!(compile(&moderate, &b).is_ok());
}

const VNN: &str = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(assert (<= X_0 0.5))\n(assert (>= X_0 -0.5))\n(assert (or (and (<= X_1 1) (>= X_1 0)) (and (<= X_1 3) (>= X_1 2))))\n(assert (or (and (<= Y_0 Y_1)) (and (>= (+ Y_0 (* -2 Y_1)) 0.25))))\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn vnnlib_reader_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~\n]{0,3}"), 0..6)) {
        let text = mutate(VNN, edits);
        if let Ok(p) = provenn_dsl::vnnlib::read_vnnlib(&text) {
            if let Some(w) = provenn_dsl::vnnlib::write_vnnlib(&p) {
                prop_assert_eq!(provenn_dsl::vnnlib::read_vnnlib(&w).unwrap(), p);
            }
        }
    }
}

#[test]
fn vnnlib_seed_reads_two_boxes() {
    let p = provenn_dsl::vnnlib::read_vnnlib(VNN).unwrap();
    assert_eq!(
        p.input_boxes,
        vec![vec![(-0.5, 0.5), (0.0, 1.0)], vec![(-0.5, 0.5), (2.0, 3.0)]]
    );
}
