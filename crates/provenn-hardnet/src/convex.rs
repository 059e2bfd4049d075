//! HardNet-Cvx: the Euclidean projection `argmin_z ½‖z − f‖²` onto `{z : b_l ≤ A z ≤ b_u,
//! ‖z − c_k‖₂ ≤ r_k}` — any number of affine rows (no rank condition) and optional norm balls —
//! solved per sample with the clarabel interior-point QP solver. The backward pass
//! differentiates the KKT conditions: with only affine rows active, the Jacobian is the
//! orthogonal projector onto the null space of the active rows, `I − A_Sᵀ (A_S A_Sᵀ)⁺ A_S`.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use nalgebra::{DMatrix, DVector};

use crate::HardNetError;

/// A convex set for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvexSet {
    /// `m × n_out` (any rank).
    pub a: DMatrix<f64>,
    /// Lower bounds (`-∞` allowed).
    pub lower: DVector<f64>,
    /// Upper bounds (`+∞` allowed).
    pub upper: DVector<f64>,
    /// Balls `‖z − centre‖₂ ≤ radius`.
    pub balls: Vec<(DVector<f64>, f64)>,
}

/// A projection with its multipliers.
#[derive(Debug, Clone)]
pub struct ConvexProjection {
    /// The projected point.
    pub z: DVector<f64>,
    /// Multipliers of `A z ≤ b_u` (≥ 0).
    pub upper_duals: DVector<f64>,
    /// Multipliers of `A z ≥ b_l` (≥ 0).
    pub lower_duals: DVector<f64>,
    /// Multipliers of the balls (≥ 0).
    pub ball_duals: Vec<f64>,
}

/// Accuracy asked of the solver.
const EPS: f64 = 1e-10;

impl ConvexSet {
    /// Projects `f`. Fails if the set is empty or the solver does not converge.
    pub fn project(&self, f: &DVector<f64>) -> Result<ConvexProjection, HardNetError> {
        let n = f.len();
        let m = self.a.nrows();
        if self.a.ncols() != n || self.lower.len() != m || self.upper.len() != m {
            return Err(HardNetError::Shape(
                "convex set and output differ in size".into(),
            ));
        }
        // Rows: equalities (zero cone), then ≤ rows (nonnegative), then balls (SOC).
        let mut eq_rows = Vec::new();
        let mut ineq_rows: Vec<(usize, f64)> = Vec::new(); // (row, sign): sign·A z ≤ sign·b
        for i in 0..m {
            let (l, u) = (self.lower[i], self.upper[i]);
            if l > u {
                return Err(HardNetError::Assumption(format!("row {i}: empty bounds")));
            }
            if l == u {
                eq_rows.push(i);
                continue;
            }
            if u.is_finite() {
                ineq_rows.push((i, 1.0));
            }
            if l.is_finite() {
                ineq_rows.push((i, -1.0));
            }
        }
        let n_rows =
            eq_rows.len() + ineq_rows.len() + self.balls.iter().map(|_| n + 1).sum::<usize>();
        let mut dense = vec![vec![0.0; n]; n_rows];
        let mut b = vec![0.0; n_rows];
        let mut r = 0;
        for &i in &eq_rows {
            for (j, d) in dense[r].iter_mut().enumerate() {
                *d = self.a[(i, j)];
            }
            b[r] = self.upper[i];
            r += 1;
        }
        for &(i, sign) in &ineq_rows {
            for (j, d) in dense[r].iter_mut().enumerate() {
                *d = sign * self.a[(i, j)];
            }
            b[r] = if sign > 0.0 {
                self.upper[i]
            } else {
                -self.lower[i]
            };
            r += 1;
        }
        for (c, rad) in &self.balls {
            // s = (rad, z − c) ∈ SOC  ⇔  [0; −I] z + s = [rad; −c]
            b[r] = *rad;
            r += 1;
            for j in 0..n {
                dense[r][j] = -1.0;
                b[r] = -c[j];
                r += 1;
            }
        }
        let p = CscMatrix::identity(n);
        let q: Vec<f64> = f.iter().map(|v| -v).collect();
        let a = CscMatrix::from(dense.iter().map(|row| row.iter()));
        let mut cones = Vec::new();
        if !eq_rows.is_empty() {
            cones.push(SupportedConeT::ZeroConeT(eq_rows.len()));
        }
        if !ineq_rows.is_empty() {
            cones.push(SupportedConeT::NonnegativeConeT(ineq_rows.len()));
        }
        for _ in &self.balls {
            cones.push(SupportedConeT::SecondOrderConeT(n + 1));
        }
        let settings = DefaultSettingsBuilder::default()
            .verbose(false)
            .tol_gap_abs(EPS)
            .tol_gap_rel(EPS)
            .tol_feas(EPS)
            .build()
            .map_err(|e| HardNetError::Solver(format!("{e:?}")))?;
        let mut solver = DefaultSolver::new(&p, &q, &a, &b, &cones, settings)
            .map_err(|e| HardNetError::Solver(format!("{e:?}")))?;
        solver.solve();
        let sol = &solver.solution;
        match sol.status {
            SolverStatus::Solved | SolverStatus::AlmostSolved => {}
            SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
                return Err(HardNetError::Assumption("the convex set is empty".into()))
            }
            other => return Err(HardNetError::Solver(format!("clarabel: {other:?}"))),
        }
        let mut upper_duals = DVector::zeros(m);
        let mut lower_duals = DVector::zeros(m);
        for (k, &i) in eq_rows.iter().enumerate() {
            // An equality's multiplier has either sign: split it.
            let y = sol.z[k];
            if y >= 0.0 {
                upper_duals[i] = y;
            } else {
                lower_duals[i] = -y;
            }
        }
        for (k, &(i, sign)) in ineq_rows.iter().enumerate() {
            let y = sol.z[eq_rows.len() + k];
            if sign > 0.0 {
                upper_duals[i] = y;
            } else {
                lower_duals[i] = y;
            }
        }
        let base = eq_rows.len() + ineq_rows.len();
        let ball_duals = (0..self.balls.len())
            .map(|k| sol.z[base + k * (n + 1)])
            .collect();
        Ok(ConvexProjection {
            z: DVector::from_column_slice(&sol.x),
            upper_duals,
            lower_duals,
            ball_duals,
        })
    }

    /// `∂L/∂f` from `g = ∂L/∂z` at a projection: `g` projected onto the null space of the
    /// active affine rows (those with a positive multiplier, or whose bounds coincide).
    /// Active balls are not supported by the backward pass.
    pub fn backward(
        &self,
        proj: &ConvexProjection,
        g: &DVector<f64>,
    ) -> Result<DVector<f64>, HardNetError> {
        if proj.ball_duals.iter().any(|&d| d > 1e-7) {
            return Err(HardNetError::Assumption(
                "backward through an active norm ball is not implemented".into(),
            ));
        }
        let active: Vec<usize> = (0..self.a.nrows())
            .filter(|&i| {
                self.lower[i] == self.upper[i]
                    || proj.upper_duals[i] > 1e-8
                    || proj.lower_duals[i] > 1e-8
            })
            .collect();
        if active.is_empty() {
            return Ok(g.clone());
        }
        let a_s = self.a.select_rows(&active);
        let gram = &a_s * a_s.transpose();
        let eps = 1e-12 * gram.norm().max(1.0);
        let pinv = gram
            .pseudo_inverse(eps)
            .map_err(|e| HardNetError::Solver(e.to_string()))?;
        Ok(g - a_s.transpose() * (pinv * (&a_s * g)))
    }
}
