//! HardNet's constraints (pwc, pwcbox, ACAS Xu properties as input-guarded affine rows) in the
//! language: they compile, round-trip, and their affine views agree with the formulas of
//! `shared/notes/hardnet.md` evaluated directly.
use provenn_dsl::{compile, Bindings};

const PWC: &str = "
forall x:
  (x[0] <= -1 => y[0] >= 5 * sin(pi / 2 * (x[0] + 1)) ^ 2) and
  (x[0] > -1 and x[0] <= 0 => y[0] <= 0) and
  (x[0] > 0 and x[0] <= 1 => y[0] >= (4 - 9 * (x[0] - 2 / 3) ^ 2) * x[0]) and
  (x[0] > 1 => y[0] <= 4.5 * (1 - x[0]) + 3)";

const PWCBOX: &str = "
forall x:
  (x[0] <= -1 => y[0] >= 5 * sin(pi / 2 * (x[0] + 1)) ^ 2 - 2 and y[0] <= -3 * sin(pi / 2 * (x[0] + 1))) and
  (x[0] > -1 and x[0] <= 0 => y[0] == -2) and
  (x[0] > 0 and x[0] <= 1 => y[0] >= (4 - 9 * (x[0] - 2 / 3) ^ 2) * x[0] - 2 and y[0] <= 3 - 4 * (x[0] - 0.5) ^ 2) and
  (x[0] > 1 => y[0] >= 3 / x[0] ^ 3 - 2 and y[0] <= 2)";

fn pwc_direct(x: f64) -> (f64, f64) {
    let s = |x: f64| (std::f64::consts::PI / 2.0 * (x + 1.0)).sin();
    if x <= -1.0 {
        (5.0 * s(x).powi(2), f64::INFINITY)
    } else if x <= 0.0 {
        (f64::NEG_INFINITY, 0.0)
    } else if x <= 1.0 {
        ((4.0 - 9.0 * (x - 2.0 / 3.0).powi(2)) * x, f64::INFINITY)
    } else {
        (f64::NEG_INFINITY, 4.5 * (1.0 - x) + 3.0)
    }
}

fn pwcbox_direct(x: f64) -> (f64, f64) {
    let s = |x: f64| (std::f64::consts::PI / 2.0 * (x + 1.0)).sin();
    if x <= -1.0 {
        (5.0 * s(x).powi(2) - 2.0, -3.0 * s(x))
    } else if x <= 0.0 {
        (-2.0, -2.0)
    } else if x <= 1.0 {
        (
            (4.0 - 9.0 * (x - 2.0 / 3.0).powi(2)) * x - 2.0,
            3.0 - 4.0 * (x - 0.5).powi(2),
        )
    } else {
        (3.0 / x.powi(3) - 2.0, 2.0)
    }
}

#[test]
fn pwc_and_pwcbox_affine_views_match_the_paper() {
    let b = Bindings::anonymous(&[(-2.0, 2.0)], 1);
    for (src, direct) in [
        (PWC, pwc_direct as fn(f64) -> (f64, f64)),
        (PWCBOX, pwcbox_direct),
    ] {
        let c = &compile(src, &b).unwrap()[0];
        let back = &compile(&c.to_string(), &b).unwrap()[0];
        assert_eq!(back, c);
        for i in 0..=400 {
            let x = -2.0 + 4.0 * i as f64 / 400.0;
            let rows = c.affine_at(&[x], 1).unwrap();
            let lo = rows.lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let hi = rows.upper.iter().copied().fold(f64::INFINITY, f64::min);
            let (dl, dh) = direct(x);
            let close = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-12 * (1.0 + b.abs());
            assert!(
                close(lo, dl) && close(hi, dh),
                "x = {x}: view [{lo}, {hi}], paper [{dl}, {dh}]"
            );
            assert!(rows.a.iter().all(|r| r == &vec![1.0]));
        }
    }
}

#[test]
fn acas_properties_as_guarded_affine_rows() {
    // Normalised ACAS Xu inputs: (x − mean) / range with the note's constants.
    let mean = [19791.091, 0.0, 0.0, 650.0, 600.0];
    let range = [
        60261.0,
        2.0 * std::f64::consts::PI,
        2.0 * std::f64::consts::PI,
        1100.0,
        1200.0,
    ];
    let n = |j: usize, v: f64| (v - mean[j]) / range[j];
    let b = Bindings::anonymous(&[(-0.5, 0.5); 5], 5);
    let src = format!(
        "forall x: (x[0] >= {} and x[3] >= {} and x[4] <= {} => y[0] <= 3.991125645861615) and
         (x[0] >= {} and x[0] <= {} and x[1] >= {} and x[1] <= {} => all([y[4] <= y[j] for j in 0..4]))",
        n(0, 55947.691), n(3, 1145.0), n(4, 60.0),
        n(0, 250.0), n(0, 400.0), n(1, 0.2), n(1, 0.4)
    );
    let c = &compile(&src, &b).unwrap()[0];
    assert_eq!(&compile(&c.to_string(), &b).unwrap()[0], c);
    let inside1 = [n(0, 60000.0), 0.0, 0.0, n(3, 1150.0), n(4, 50.0)];
    let rows = c.affine_at(&inside1, 5).unwrap();
    assert_eq!(rows.a, vec![vec![1.0, 0.0, 0.0, 0.0, 0.0]]);
    let inside5 = [n(0, 300.0), n(1, 0.3), 0.0, 0.0, 0.0];
    let rows = c.affine_at(&inside5, 5).unwrap();
    assert_eq!(
        rows.a.len(),
        4,
        "strong right minimal: y4 − y_j ≤ 0 for four j"
    );
    let outside = [0.0; 5];
    assert!(c.affine_at(&outside, 5).unwrap().a.is_empty());
}

#[test]
fn the_ir_serialises_and_deserialises_exactly() {
    let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0)], 4);
    for src in [
        PWC,
        "forall x: sum(i in 0..4: if y[i] > 0 then i else 0) > 2 and x[0] * 0.1 <= y[1]",
        "forall x, x2: linf(x - x2) <= 0.05 => abs(y - y2) <= 0.1",
    ] {
        let b = if src == PWC {
            Bindings::anonymous(&[(-2.0, 2.0)], 1)
        } else {
            b.clone()
        };
        let c = &compile(src, &b).unwrap()[0];
        let json = serde_json::to_string(c).unwrap();
        let back: provenn_dsl::ir::Constraint = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, c);
    }
}
