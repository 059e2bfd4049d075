//! A local solver for smooth (possibly nonconvex) objectives under linear constraints,
//! `min f(y) s.t. A y ≤ b, C y = d`: the reference optimiser of the "learning an optimisation
//! solver" experiment, where the paper used IPOPT.
//!
//! Sequential quadratic programming with a feasible start: a projection QP first makes the
//! start feasible; each iteration solves `min ½dᵀHd + ∇fᵀd` over the linearised (here: exact)
//! constraints with clarabel, `H` the Hessian with its eigenvalues lifted to a positive floor
//! (so the QP is convex), then backtracks on `f` along `d`. Since the constraints are linear,
//! every step in `[0, 1]` stays feasible and no merit function is needed. It stops at a KKT
//! point: `d ≈ 0`, and then the QP's multipliers are the problem's.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use nalgebra::{DMatrix, DVector};

use crate::HardNetError;

/// A twice-differentiable objective.
pub trait SmoothObjective {
    /// `f(y)`.
    fn value(&self, y: &DVector<f64>) -> f64;
    /// `∇f(y)`.
    fn gradient(&self, y: &DVector<f64>) -> DVector<f64>;
    /// `∇²f(y)` (symmetric).
    fn hessian(&self, y: &DVector<f64>) -> DMatrix<f64>;
}

/// `A y ≤ b`, `C y = d`.
#[derive(Debug, Clone)]
pub struct LinearConstraints {
    /// Inequality rows.
    pub a: DMatrix<f64>,
    /// Their right-hand sides.
    pub b: DVector<f64>,
    /// Equality rows.
    pub c: DMatrix<f64>,
    /// Their right-hand sides.
    pub d: DVector<f64>,
}

impl LinearConstraints {
    /// Largest violation at `y` (`max(A y − b)₊` and `|C y − d|`).
    pub fn max_violation(&self, y: &DVector<f64>) -> f64 {
        let ineq = (&self.a * y - &self.b)
            .iter()
            .fold(0.0f64, |m, v| m.max(*v));
        let eq = (&self.c * y - &self.d).amax();
        ineq.max(eq)
    }
}

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqpOptions {
    /// Iteration limit.
    pub max_iterations: usize,
    /// Stop when `‖d‖∞ ≤ tolerance·(1 + ‖y‖∞)` (or the predicted decrease is at rounding
    /// level).
    pub tolerance: f64,
    /// Floor of the modified Hessian's eigenvalues.
    pub min_curvature: f64,
}

impl Default for SqpOptions {
    fn default() -> Self {
        SqpOptions {
            max_iterations: 200,
            tolerance: 1e-9,
            min_curvature: 1e-6,
        }
    }
}

/// A local solution.
#[derive(Debug, Clone)]
pub struct SqpSolution {
    /// The point.
    pub y: DVector<f64>,
    /// `f(y)`.
    pub value: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Stationarity `‖y − Π(y − ∇f(y))‖∞`, `Π` the Euclidean projection onto the feasible
    /// set: 0 exactly at KKT points, and independent of the model Hessians.
    pub kkt_residual: f64,
    /// Largest constraint violation at `y`.
    pub max_violation: f64,
    /// Whether the step-size test was met within the iteration limit.
    pub converged: bool,
}

/// A QP solution.
struct QpSolution {
    x: DVector<f64>,
}

/// Solves `min ½ xᵀPx + qᵀx` s.t. `C x = d`, `A x ≤ b`.
fn qp(
    p: &DMatrix<f64>,
    q: &DVector<f64>,
    cons: &LinearConstraints,
) -> Result<QpSolution, HardNetError> {
    // Degenerate optima (more tight rows than variables) occasionally stall clarabel's
    // interior-point method: retry without equilibration, then with shorter steps, then at
    // clarabel's default accuracy, before giving up.
    let mut last = None;
    for (tol, equilibrate, step_fraction) in [
        (1e-10, true, 0.99),
        (1e-10, false, 0.99),
        (1e-10, true, 0.9),
        (1e-8, false, 0.9),
    ] {
        match qp_at(p, q, cons, tol, equilibrate, step_fraction) {
            Err(e @ HardNetError::Solver(_)) => last = Some(e),
            other => return other,
        }
    }
    Err(last.expect("tried at least once"))
}

fn qp_at(
    p: &DMatrix<f64>,
    q: &DVector<f64>,
    cons: &LinearConstraints,
    tol: f64,
    equilibrate: bool,
    step_fraction: f64,
) -> Result<QpSolution, HardNetError> {
    let n = q.len();
    let (n_eq, n_in) = (cons.c.nrows(), cons.a.nrows());
    // clarabel reads the upper triangle of P.
    let upper = DMatrix::from_fn(n, n, |i, j| if i <= j { p[(i, j)] } else { 0.0 });
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| upper.row(i).iter().copied().collect())
        .collect();
    let pm = CscMatrix::from(rows.iter().map(|r| r.iter()));
    let mut dense: Vec<Vec<f64>> = Vec::with_capacity(n_eq + n_in);
    let mut rhs = Vec::with_capacity(n_eq + n_in);
    for i in 0..n_eq {
        dense.push(cons.c.row(i).iter().copied().collect());
        rhs.push(cons.d[i]);
    }
    for i in 0..n_in {
        dense.push(cons.a.row(i).iter().copied().collect());
        rhs.push(cons.b[i]);
    }
    let am = CscMatrix::from(dense.iter().map(|r| r.iter()));
    let mut cones = Vec::new();
    if n_eq > 0 {
        cones.push(SupportedConeT::ZeroConeT(n_eq));
    }
    if n_in > 0 {
        cones.push(SupportedConeT::NonnegativeConeT(n_in));
    }
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(tol)
        .tol_gap_rel(tol)
        .tol_feas(tol)
        .max_iter(500)
        .equilibrate_enable(equilibrate)
        .max_step_fraction(step_fraction)
        .build()
        .map_err(|e| HardNetError::Solver(format!("{e:?}")))?;
    let qv: Vec<f64> = q.iter().copied().collect();
    let mut solver = DefaultSolver::new(&pm, &qv, &am, &rhs, &cones, settings)
        .map_err(|e| HardNetError::Solver(format!("{e:?}")))?;
    solver.solve();
    let sol = &solver.solution;
    match sol.status {
        SolverStatus::Solved => {}
        SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
            return Err(HardNetError::Assumption(
                "the linear constraints are infeasible".into(),
            ))
        }
        // The interior-point method sometimes stalls just short of its own certificate: take
        // the point only if it passes our KKT check.
        SolverStatus::AlmostSolved
        | SolverStatus::MaxIterations
        | SolverStatus::InsufficientProgress => {
            if !kkt_ok(p, q, cons, &sol.x, &sol.z) {
                return Err(HardNetError::Solver(format!("clarabel: {:?}", sol.status)));
            }
        }
        other => return Err(HardNetError::Solver(format!("clarabel: {other:?}"))),
    }
    Ok(QpSolution {
        x: DVector::from_column_slice(&sol.x),
    })
}

/// The QP's KKT conditions at `x` with multipliers `z` (equalities first), to 1e-7 relative:
/// primal feasibility, dual feasibility, complementarity and stationarity.
fn kkt_ok(
    p: &DMatrix<f64>,
    q: &DVector<f64>,
    cons: &LinearConstraints,
    x: &[f64],
    z: &[f64],
) -> bool {
    let n_eq = cons.c.nrows();
    let x = DVector::from_column_slice(x);
    let mu = DVector::from_fn(n_eq, |i, _| z[i]);
    let lambda = DVector::from_fn(cons.a.nrows(), |i, _| z[n_eq + i]);
    let scale = 1.0 + x.amax() + q.amax();
    let tol = 1e-7 * scale;
    let slack = &cons.b - &cons.a * &x;
    let stationarity =
        (p * &x + q + cons.c.transpose() * &mu + cons.a.transpose() * &lambda).amax();
    cons.max_violation(&x) <= tol
        && lambda.iter().all(|&l| l >= -tol)
        && (0..slack.len()).all(|i| (lambda[i] * slack[i]).abs() <= tol)
        && stationarity <= tol
}

/// A positive definite model Hessian: `H + ρCᵀC` (`C` the equalities and tight rows) with the smallest `ρ ∈ {0, s, 10s, …, 1e4 s}`
/// (`s = ‖H‖/‖CᵀC‖`, larger `ρ` makes the QP ill-conditioned) that makes it so — exact on the feasible set, where `C(z − y) = 0`, so Newton's fast local
/// convergence is kept whenever `H` is positive definite on the equalities' null space — and
/// otherwise eigenvalues lifted to a floor.
fn convexified_hessian(h: &DMatrix<f64>, ctc: &DMatrix<f64>, min_curvature: f64) -> DMatrix<f64> {
    let h = (h + h.transpose()) * 0.5;
    let scale = h.amax().max(1e-12) / ctc.amax().max(1e-300);
    let mut rho = 0.0;
    loop {
        let m = &h + ctc * rho;
        let eig = m.clone().symmetric_eigen();
        let top = eig.eigenvalues.amax();
        let floor = min_curvature.max(1e-10 * top);
        if eig.eigenvalues.min() >= floor {
            return m;
        }
        if rho >= 1e4 * scale || ctc.amax() == 0.0 {
            let lifted = eig.eigenvalues.map(|v| v.max(floor));
            let m =
                &eig.eigenvectors * DMatrix::from_diagonal(&lifted) * eig.eigenvectors.transpose();
            return (&m + m.transpose()) * 0.5;
        }
        rho = if rho == 0.0 { scale } else { rho * 10.0 };
    }
}

/// `Π(y − ∇f) − y`, `Π` the projection onto the feasible set.
fn projected_gradient_step(
    y: &DVector<f64>,
    g: &DVector<f64>,
    cons: &LinearConstraints,
) -> Result<DVector<f64>, HardNetError> {
    let eye = DMatrix::identity(y.len(), y.len());
    Ok(qp(&eye, &(g - y), cons)?.x - y)
}

/// Backtracking (Armijo) from `y` along `s`; every point of `[y, y + s]` is feasible.
fn line_search(
    f: &dyn SmoothObjective,
    y: &mut DVector<f64>,
    s: &DVector<f64>,
    f0: f64,
    slope: f64,
) -> bool {
    let mut alpha = 1.0;
    for _ in 0..40 {
        let cand = &*y + s * alpha;
        if f.value(&cand) <= f0 + 1e-4 * alpha * slope.min(0.0) {
            *y = cand;
            return true;
        }
        alpha *= 0.5;
    }
    false
}

/// Finds a KKT point of `min f(y)` under `cons`, starting from `y0`.
pub fn sqp(
    f: &dyn SmoothObjective,
    cons: &LinearConstraints,
    y0: &DVector<f64>,
    opts: &SqpOptions,
) -> Result<SqpSolution, HardNetError> {
    let n = y0.len();
    if cons.a.ncols() != n
        || cons.c.ncols() != n
        || cons.a.nrows() != cons.b.len()
        || cons.c.nrows() != cons.d.len()
    {
        return Err(HardNetError::Shape(
            "constraints and start differ in size".into(),
        ));
    }
    // Phase 1: the closest feasible point to y0.
    let eye = DMatrix::identity(n, n);
    let mut y = qp(&eye, &(-y0), cons)?.x;
    let ctc = cons.c.transpose() * &cons.c;
    let mut converged = false;
    let mut iterations = 0;
    while iterations < opts.max_iterations {
        iterations += 1;
        let g = f.gradient(&y);
        // Rows tight at y join the equalities in the convexification: near a solution with
        // strictly complementary multipliers they stay tight, so the model is exact there.
        let slack = &cons.b - &cons.a * &y;
        let tight: Vec<usize> = (0..slack.len())
            .filter(|&i| slack[i] <= 1e-9 * (1.0 + cons.b[i].abs()))
            .collect();
        let a_t = cons.a.select_rows(&tight);
        let h = convexified_hessian(
            &f.hessian(&y),
            &(&ctc + a_t.transpose() * &a_t),
            opts.min_curvature,
        );
        // The QP over the next point z = y + s under the original constraints (not over s
        // with right-hand sides b − Ay, which sit at 0 where y is at a vertex and stall the
        // interior-point method): min ½(z − y)ᵀH(z − y) + gᵀ(z − y).
        let z = qp(&h, &(&g - &h * &y), cons)?.x;
        let mut s = z - &y;
        let f0 = f.value(&y);
        let mut slope = g.dot(&s);
        // A negligible step, or no predicted decrease beyond rounding, means stationarity
        // only if the projected gradient agrees; otherwise (an inaccurate or ill-conditioned
        // QP) take the projected-gradient step, a feasible descent direction.
        let y_scale = 1.0 + y.amax();
        let negligible = |s: &DVector<f64>, slope: f64| {
            s.amax() <= opts.tolerance * y_scale || -slope <= 1e-14 * (1.0 + f0.abs())
        };
        if negligible(&s, slope) {
            s = projected_gradient_step(&y, &g, cons)?;
            slope = g.dot(&s);
            if negligible(&s, slope) {
                converged = true;
                break;
            }
        }
        if !line_search(f, &mut y, &s, f0, slope) {
            let pg = projected_gradient_step(&y, &g, cons)?;
            let pg_slope = g.dot(&pg);
            if negligible(&pg, pg_slope) {
                converged = true;
                break;
            }
            if !line_search(f, &mut y, &pg, f0, pg_slope) {
                // No decrease at rounding level along a descent direction.
                break;
            }
        }
    }
    let kkt = projected_gradient_step(&y, &f.gradient(&y), cons)?.amax();
    Ok(SqpSolution {
        value: f.value(&y),
        max_violation: cons.max_violation(&y),
        y,
        iterations,
        kkt_residual: kkt,
        converged,
    })
}
