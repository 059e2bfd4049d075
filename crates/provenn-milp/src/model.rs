//! A solver-independent sparse MILP: the encodings build one, a [`Backend`](crate::Backend)
//! solves it. Keeping our own model (rather than building solver objects directly) lets the
//! encodings count binaries, check solutions against the rows, and run on any backend.

/// Index of a variable in a [`Milp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub(crate) usize);

impl VarId {
    /// Position of the variable (its column).
    pub fn index(self) -> usize {
        self.0
    }
}

/// A variable's domain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VarDef {
    /// Lower bound (may be `-∞`).
    pub lower: f64,
    /// Upper bound (may be `+∞`).
    pub upper: f64,
    /// Whether the variable is integer.
    pub integer: bool,
}

/// `lower ≤ Σ aᵢ·xᵢ ≤ upper`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Sparse coefficients.
    pub coefs: Vec<(VarId, f64)>,
    /// Lower side (may be `-∞`).
    pub lower: f64,
    /// Upper side (may be `+∞`).
    pub upper: f64,
}

/// Direction of the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// Maximise the objective.
    Maximise,
    /// Minimise the objective.
    Minimise,
}

/// A mixed-integer linear program.
#[derive(Debug, Clone, Default)]
pub struct Milp {
    pub(crate) vars: Vec<VarDef>,
    pub(crate) rows: Vec<Row>,
    pub(crate) objective: Vec<(VarId, f64)>,
    pub(crate) sense: Option<Sense>,
}

impl Milp {
    /// An empty feasibility problem.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a continuous variable with bounds `[lower, upper]`.
    pub fn continuous(&mut self, lower: f64, upper: f64) -> VarId {
        self.vars.push(VarDef {
            lower,
            upper,
            integer: false,
        });
        VarId(self.vars.len() - 1)
    }
    /// Adds a binary variable.
    pub fn binary(&mut self) -> VarId {
        self.vars.push(VarDef {
            lower: 0.0,
            upper: 1.0,
            integer: true,
        });
        VarId(self.vars.len() - 1)
    }
    /// Adds `lower ≤ Σ coefs ≤ upper`.
    pub fn row(&mut self, coefs: Vec<(VarId, f64)>, lower: f64, upper: f64) {
        self.rows.push(Row {
            coefs,
            lower,
            upper,
        });
    }
    /// Adds `Σ coefs ≤ upper`.
    pub fn le(&mut self, coefs: Vec<(VarId, f64)>, upper: f64) {
        self.row(coefs, f64::NEG_INFINITY, upper);
    }
    /// Adds `Σ coefs ≥ lower`.
    pub fn ge(&mut self, coefs: Vec<(VarId, f64)>, lower: f64) {
        self.row(coefs, lower, f64::INFINITY);
    }
    /// Adds `Σ coefs = value`.
    pub fn eq(&mut self, coefs: Vec<(VarId, f64)>, value: f64) {
        self.row(coefs, value, value);
    }
    /// Sets the objective (replacing any previous one).
    pub fn set_objective(&mut self, sense: Sense, coefs: Vec<(VarId, f64)>) {
        self.sense = Some(sense);
        self.objective = coefs;
    }
    /// Removes the objective: a feasibility problem.
    pub fn clear_objective(&mut self) {
        self.sense = None;
        self.objective.clear();
    }
    /// Changes a variable's bounds (used to fix features).
    pub fn set_bounds(&mut self, v: VarId, lower: f64, upper: f64) {
        self.vars[v.0].lower = lower;
        self.vars[v.0].upper = upper;
    }
    /// The variable definitions.
    pub fn vars(&self) -> &[VarDef] {
        &self.vars
    }
    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
    /// Number of integer variables.
    pub fn n_integer(&self) -> usize {
        self.vars.iter().filter(|v| v.integer).count()
    }
    /// Largest violation of a bound, a row or integrality by `values` (0 for a feasible point).
    pub fn max_violation(&self, values: &[f64]) -> f64 {
        let mut worst: f64 = 0.0;
        for (d, &v) in self.vars.iter().zip(values) {
            worst = worst.max(d.lower - v).max(v - d.upper);
            if d.integer {
                worst = worst.max((v - v.round()).abs());
            }
        }
        for r in &self.rows {
            let s: f64 = r.coefs.iter().map(|(x, a)| a * values[x.0]).sum();
            worst = worst.max(r.lower - s).max(s - r.upper);
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_measures_rows_bounds_and_integrality() {
        let mut m = Milp::new();
        let x = m.continuous(0.0, 1.0);
        let z = m.binary();
        m.le(vec![(x, 1.0), (z, 1.0)], 1.0);
        assert_eq!(m.max_violation(&[0.5, 0.0]), 0.0);
        assert!((m.max_violation(&[0.5, 1.0]) - 0.5).abs() < 1e-12);
        assert!((m.max_violation(&[0.0, 0.25]) - 0.25).abs() < 1e-12);
        assert!((m.max_violation(&[1.5, 0.0]) - 0.5).abs() < 1e-12);
    }
}
