//! Evaluating a constraint on the rows of a dataset.
use provenn_data::{Dataset, Targets};

use crate::ir::{Assignment, Constraint};

/// Outcome of [`check_rows`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowCheck {
    /// Rows evaluated.
    pub rows: usize,
    /// Rows violating the constraint.
    pub violating: usize,
    /// Largest violation magnitude among them (see [`crate::ir::Formula::violation`]).
    pub worst: f64,
}

/// Evaluates a single-copy constraint on every row, taking the row's targets as the outputs:
/// regression targets as they are, class and multi-label targets as logits `+1` (label
/// present) / `−1` (absent). `None` for relational (two-copy) constraints.
pub fn check_rows(c: &Constraint, d: &Dataset) -> Option<RowCheck> {
    if c.two_copy {
        return None;
    }
    let y = d.targets.to_matrix();
    let logits = !matches!(d.targets, Targets::Regression(_));
    let mut out = RowCheck {
        rows: d.n_rows(),
        violating: 0,
        worst: 0.0,
    };
    for i in 0..d.n_rows() {
        let x: Vec<f64> = d.x.row(i).iter().copied().collect();
        let yi: Vec<f64> = y
            .row(i)
            .iter()
            .map(|v| if logits { 2.0 * v - 1.0 } else { *v })
            .collect();
        let a = Assignment {
            x: &x,
            y: &yi,
            x2: &[],
            y2: &[],
        };
        if !c.holds(&a) {
            out.violating += 1;
            out.worst = out.worst.max(c.formula.violation(&a));
        }
    }
    Some(out)
}
