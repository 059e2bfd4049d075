//! The papers' constraints in the provenn language: they parse against the real schemas,
//! round-trip (print → parse → same IR), and count violating rows as the papers/notes state.
use provenn_data::usecase::{self, LoanVariant};
use provenn_data::Dataset;
use provenn_dsl::ir::{Assignment, Constraint};
use provenn_dsl::{compile, Bindings};
use provenn_tests::real_data_dir;

fn one(src: &str, b: &Bindings) -> Constraint {
    let mut v = compile(src, b).unwrap_or_else(|e| panic!("{src}\n{e}"));
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

fn round_trip(c: &Constraint, b: &Bindings) {
    let text = c.to_string();
    let back = one(&text, b);
    assert_eq!(&back, c, "printed form:\n{text}");
}

/// Rows violating `c` when the outputs are the row's targets (class labels as ±1 logits).
fn violating_rows(c: &Constraint, d: &Dataset) -> usize {
    provenn_dsl::check_rows(c, d)
        .expect("single-copy constraint")
        .violating
}

#[test]
fn uc1_expenses_constraint() {
    let Some(dir) = real_data_dir() else { return };
    let d = usecase::uc1_expenses(&dir, None).unwrap().dataset;
    let b = Bindings::from_dataset(&d);
    let sum_only = one(r#"forall x: sum(y) <= x."Total Household Income""#, &b);
    round_trip(&sum_only, &b);
    let n = violating_rows(&sum_only, &d);
    // independent count with the raw file (see data_loaders.rs): ~77% violate the sum
    let frac = n as f64 / d.n_rows() as f64;
    assert!((0.74..0.80).contains(&frac), "{frac}");
    let both = one(
        r#"forall x: sum(y) <= x."Total Household Income" and y.Going_Out_Expenses <= 0.05 * x."Total Household Income""#,
        &b,
    );
    round_trip(&both, &b);
    let sade = usecase::uc1_expenses(&dir, Some(1000)).unwrap().dataset;
    let b2 = Bindings::from_dataset(&sade);
    let both2 = one(
        r#"forall x: sum(y) <= x."Total Household Income" and y.Going_Out_Expenses <= 0.05 * x."Total Household Income""#,
        &b2,
    );
    // 863 counted independently with Python on the raw file (data_loaders.rs)
    assert_eq!(violating_rows(&both2, &sade), 863);
}

#[test]
fn uc2_loan_constraint_counts_injected_violations() {
    let Some(dir) = real_data_dir() else { return };
    let src =
        "forall x: x.ApplicantIncome <= 5000 and x.Credit_History == 0 => y.reject > y.approve";
    let clean = usecase::uc2_loan(&dir, LoanVariant::DeepSaDe, false, 3)
        .unwrap()
        .dataset;
    let b = Bindings::from_dataset(&clean);
    let c = one(src, &b);
    round_trip(&c, &b);
    assert_eq!(violating_rows(&c, &clean), 5);
    let inj = usecase::uc2_loan(&dir, LoanVariant::DeepSaDe, true, 3)
        .unwrap()
        .dataset;
    assert_eq!(violating_rows(&c, &inj), 45, "40 injected + 5 original");
}

#[test]
fn uc3_to_uc5_constraints() {
    let Some(dir) = real_data_dir() else { return };
    let music = usecase::uc3_music_synthetic(true, 5).unwrap().dataset;
    let b = Bindings::from_dataset(&music);
    let c = one(
        r#"forall x: x.artist == "The Beatles" => (y.Pop > 0 or y.Rock > 0) and y.Classical < 0 and y.Electronic < 0 and y.Metal < 0"#,
        &b,
    );
    round_trip(&c, &b);
    assert_eq!(violating_rows(&c, &music), 40);
    let cls = one(
        r#"forall x: x.artist == "The Beatles" => argmax(y) in {Pop, Rock}"#,
        &b,
    );
    round_trip(&cls, &b);
    assert_eq!(violating_rows(&cls, &music), 40);

    let sums = usecase::uc4_mnist_sum(&dir, 200, 2).unwrap().dataset;
    let b = Bindings::from_dataset(&sums);
    let c = one(
        "forall x: sum(i in 0..10: if y[i] > 0 then i else 0) > 10",
        &b,
    );
    round_trip(&c, &b);
    assert_eq!(violating_rows(&c, &sums), 0);

    let sushi = usecase::uc5_sushi(&dir).unwrap().dataset;
    let b = Bindings::from_dataset(&sushi);
    let c = one("forall x: all([exactly(1, [y[r, c] > 0 for c in 0..4]) for r in 0..4]) and all([exactly(1, [y[r, c] > 0 for r in 0..4]) for c in 0..4])", &b);
    round_trip(&c, &b);
    assert_eq!(violating_rows(&c, &sushi), 0);
}

#[test]
fn relational_and_hardnet_constraints_parse_and_round_trip() {
    let Some(dir) = real_data_dir() else { return };
    let auto = provenn_data::catalog::load("autompg", &dir, &Default::default())
        .unwrap()
        .dataset;
    let b = Bindings::from_dataset(&auto);
    for src in [
        "forall x, x2: x2.weight >= x.weight and same(x, x2, except [weight]) => y2.mpg <= y.mpg",
        "forall x, x2: linf(x - x2) <= 0.05 => abs(y - y2) <= 0.1",
        "forall x in [weight: 2000 .. 3000]: y.mpg >= 10",
    ] {
        let c = one(src, &b);
        assert_eq!(c.two_copy, src.contains("x2"));
        round_trip(&c, &b);
    }
    let heart = provenn_data::catalog::load("heart", &dir, &Default::default())
        .unwrap()
        .dataset;
    let b = Bindings::from_dataset(&heart);
    let fair = one(
        "forall x, x2: same(x, x2, except [gender]) => argmax(y) == argmax(y2)",
        &b,
    );
    round_trip(&fair, &b);
    // HardNet pwc: input-dependent bounds (non-linear in x, linear in y)
    let pwc = Bindings::anonymous(&[(-2.0, 2.0)], 1);
    let c = one(
        "const k = 5\nforall x: x[0] <= -1 => y[0] >= k * sin(pi / 2 * (x[0] + 1)) ^ 2",
        &pwc,
    );
    let at = |x: f64, y: f64| {
        c.holds(&Assignment {
            x: &[x],
            y: &[y],
            x2: &[],
            y2: &[],
        })
    };
    let bound = 5.0 * (std::f64::consts::PI / 2.0 * (-1.5 + 1.0)).sin().powi(2);
    assert!(at(-1.5, bound + 1e-9) && !at(-1.5, bound - 1e-6) && at(0.0, -100.0));
    round_trip(&c, &pwc);
}
