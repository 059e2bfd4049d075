//! Training networks with and without an enforcement layer, as in the HardNet experiments:
//! plain NN, Soft (penalty `λ‖violation‖²`), DC3 (completion + unrolled gradient correction),
//! HardNet-Aff and HardNet-Cvx, all on the same MLP and loop (task loss + `λ‖violation‖²`,
//! Adam, seeded mini-batches), with an optional warm start (the first `warm_epochs` epochs
//! without the layer, soft penalty on). The task loss is MSE against targets ([`fit`]) or any
//! [`Objective`] of the outputs ([`fit_objective`], e.g. an optimisation problem's cost).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nalgebra::{DMatrix, DVector};
use provenn_bounds::{BoundPropagator, CrownBounds, InputBox};
use provenn_dsl::ir::Constraint;
use provenn_nn::optim::{Adam, AdamParams, Optimizer};
use provenn_nn::{Activation, Dense, Init, Mlp, MlpBuilder};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::affine::{check_bounds, AffineConstraint, AffineProjection, SharedMatrix};
use crate::convex::ConvexSet;
use crate::dc3::{correct, correct_backward, residual, Correction, Dc3Params};
use crate::partition::Partition;
use crate::HardNetError;

/// Input-dependent affine constraints `b_l(x) ≤ A(x) y ≤ b_u(x)`.
pub trait ConstraintSource: Sync {
    /// The constraint at input `x`.
    fn at(&self, x: &[f64]) -> Result<AffineConstraint, HardNetError>;

    /// `Some(A)` when `A(x) = A` for every input (only the bounds depend on `x`): the
    /// enforcement then factorises `A` once, keeps one copy, and reads only
    /// [`ConstraintSource::bounds_at`] per input.
    fn shared_matrix(&self) -> Option<DMatrix<f64>> {
        None
    }

    /// The bounds at `x` (for sources with a shared matrix; defaults to those of `at`).
    fn bounds_at(&self, x: &[f64]) -> Result<(DVector<f64>, DVector<f64>), HardNetError> {
        self.at(x).map(|c| (c.lower, c.upper))
    }
}

/// A constraint written in the DSL, through its affine view.
#[derive(Debug, Clone)]
pub struct DslConstraint {
    /// The constraint.
    pub constraint: Constraint,
    /// Number of network outputs.
    pub n_outputs: usize,
}

impl ConstraintSource for DslConstraint {
    fn at(&self, x: &[f64]) -> Result<AffineConstraint, HardNetError> {
        let rows = self
            .constraint
            .affine_at(x, self.n_outputs)
            .ok_or_else(|| {
                HardNetError::Assumption(format!(
                    "the constraint has no affine form at x = {x:?} (disjunction over outputs, \
                 counting, or violated by the input alone)"
                ))
            })?;
        // Merge rows on the same direction (`y ≥ l` and `y ≤ u` become `l ≤ y ≤ u`): the view
        // lists one row per atom, HardNet needs full row rank. Rows are first scaled so that
        // their largest coefficient is +1.
        let mut merged: Vec<(Vec<f64>, f64, f64)> = Vec::new();
        for ((a, lo), hi) in rows.a.into_iter().zip(rows.lower).zip(rows.upper) {
            let k = a
                .iter()
                .copied()
                .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            if k == 0.0 {
                if lo > 0.0 || hi < 0.0 {
                    return Err(HardNetError::Assumption(format!(
                        "the constraint cannot hold at x = {x:?}"
                    )));
                }
                continue;
            }
            let a: Vec<f64> = a.iter().map(|v| v / k).collect();
            let (lo, hi) = if k > 0.0 {
                (lo / k, hi / k)
            } else {
                (hi / k, lo / k)
            };
            match merged.iter_mut().find(|(b, _, _)| *b == a) {
                Some(row) => {
                    row.1 = row.1.max(lo);
                    row.2 = row.2.min(hi);
                }
                None => merged.push((a, lo, hi)),
            }
        }
        let m = merged.len();
        Ok(AffineConstraint {
            a: DMatrix::from_fn(m, self.n_outputs, |i, j| merged[i].0[j]),
            lower: DVector::from_fn(m, |i, _| merged[i].1),
            upper: DVector::from_fn(m, |i, _| merged[i].2),
        })
    }
}

/// Constraints from a closure (e.g. control-barrier conditions).
pub struct FnConstraint<F>(pub F);

/// Constraints with one matrix for every input and bounds from a closure (e.g. `A y ≤ b`,
/// `C y = x` of a parametric optimisation problem).
pub struct SharedMatrixConstraint<F> {
    /// The matrix.
    pub a: DMatrix<f64>,
    /// `x ↦ (b_l(x), b_u(x))`.
    pub bounds: F,
}

impl<F> ConstraintSource for SharedMatrixConstraint<F>
where
    F: Fn(&[f64]) -> (DVector<f64>, DVector<f64>) + Sync,
{
    fn at(&self, x: &[f64]) -> Result<AffineConstraint, HardNetError> {
        let (lower, upper) = (self.bounds)(x);
        Ok(AffineConstraint {
            a: self.a.clone(),
            lower,
            upper,
        })
    }
    fn shared_matrix(&self) -> Option<DMatrix<f64>> {
        Some(self.a.clone())
    }
    fn bounds_at(&self, x: &[f64]) -> Result<(DVector<f64>, DVector<f64>), HardNetError> {
        Ok((self.bounds)(x))
    }
}

impl<F> ConstraintSource for FnConstraint<F>
where
    F: Fn(&[f64]) -> Result<AffineConstraint, HardNetError> + Sync,
{
    fn at(&self, x: &[f64]) -> Result<AffineConstraint, HardNetError> {
        (self.0)(x)
    }
}

/// How outputs are kept inside the constraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Plain network, no penalty.
    Nn,
    /// Plain network with the violation penalty.
    Soft,
    /// DC3 (Donti et al. 2021): optional equality completion, then gradient steps on the
    /// violation, unrolled and differentiated in training; see [`Dc3Params`].
    Dc3,
    /// HardNet-Aff layer.
    HardNetAff,
    /// HardNet-Cvx layer.
    HardNetCvx,
}

impl Method {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Nn => "NN",
            Method::Soft => "Soft",
            Method::Dc3 => "DC3",
            Method::HardNetAff => "HardNet-Aff",
            Method::HardNetCvx => "HardNet-Cvx",
        }
    }

    fn is_layer(self) -> bool {
        matches!(self, Method::HardNetAff | Method::HardNetCvx | Method::Dc3)
    }
}

/// Training parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct HardNetParams {
    /// Method.
    pub method: Method,
    /// Hidden widths (ReLU).
    pub hidden: Vec<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Weight `λ` of `‖violation‖²` (ignored by `Nn`).
    pub soft_weight: f64,
    /// Epochs trained without the enforcement layer first (with the penalty).
    pub warm_epochs: usize,
    /// DC3's settings (used by [`Method::Dc3`] only).
    pub dc3: Dc3Params,
    /// Seed.
    pub seed: u64,
}

impl HardNetParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), HardNetError> {
        if self.epochs == 0
            || self.batch_size == 0
            || self.learning_rate.is_nan()
            || self.learning_rate <= 0.0
        {
            return Err(HardNetError::Shape(
                "epochs, batch size and learning rate must be positive".into(),
            ));
        }
        if self.soft_weight.is_nan() || self.soft_weight < 0.0 {
            return Err(HardNetError::Shape("soft weight must be ≥ 0".into()));
        }
        let d = &self.dc3;
        if !(d.corr_lr >= 0.0 && (0.0..1.0).contains(&d.corr_momentum) && d.eps >= 0.0) {
            return Err(HardNetError::Shape(
                "DC3: step ≥ 0, momentum in [0, 1), eps ≥ 0".into(),
            ));
        }
        Ok(())
    }
}

/// A task loss of the (enforced) outputs of a batch.
pub trait Objective: Sync {
    /// Mean loss over the batch `idx` (indices into the training inputs) with outputs `y`
    /// (rows), and its gradient with respect to `y`.
    fn batch(&self, idx: &[usize], y: &DMatrix<f64>) -> (f64, DMatrix<f64>);
}

/// Mean squared error against targets (rows are samples), averaged over samples and outputs.
pub struct Mse<'a>(pub &'a DMatrix<f64>);

impl Objective for Mse<'_> {
    fn batch(&self, idx: &[usize], y: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        let diff = y - self.0.select_rows(idx);
        let k = (y.nrows() * y.ncols()).max(1) as f64;
        (diff.norm_squared() / k, diff * (2.0 / k))
    }
}

/// A trained model: the network and how its outputs are enforced.
#[derive(Debug, Clone)]
pub struct HardNetModel {
    /// The network.
    pub net: Mlp,
    /// The enforcement.
    pub method: Method,
    /// DC3's settings (when `method` is DC3).
    pub dc3: Dc3Params,
    /// Training wall time (forward, backward and steps; no evaluation).
    pub train_time: Duration,
    /// Training loss per epoch.
    pub losses: Vec<f64>,
    /// DC3's completion, fixed in training.
    completion: Option<Arc<Completion>>,
    /// HardNet-Aff's factorised shared matrix from training, reused when prediction's source
    /// has the same matrix.
    factorised: Option<SharedMatrix>,
}

/// Relative inward margin of the enforcement layers in training and prediction, so that
/// outputs satisfy the constraint when it is re-evaluated in f64 (the layer's arithmetic and
/// the evaluator's round differently). Negligible against the task's scale.
pub const SAFETY_MARGIN: f64 = 1e-9;

/// DC3's equality completion for a shared matrix: `y_dep` solved from the equality rows.
#[derive(Debug, Clone)]
struct Completion {
    /// The full matrix it was built from.
    a: DMatrix<f64>,
    partition: Partition,
    eq_rows: Vec<usize>,
    ineq_rows: Vec<usize>,
    /// The reduced inequality matrix on the free outputs.
    reduced: DMatrix<f64>,
}

impl Completion {
    /// Equality rows are those with `b_l = b_u` at every sample; the last `n_eq` outputs are
    /// the dependent ones (as the reference).
    fn new(
        a: &DMatrix<f64>,
        bounds: &[(DVector<f64>, DVector<f64>)],
    ) -> Result<Self, HardNetError> {
        let eq_rows: Vec<usize> = (0..a.nrows())
            .filter(|&i| bounds.iter().all(|(l, u)| l[i] == u[i]))
            .collect();
        let ineq_rows: Vec<usize> = (0..a.nrows()).filter(|i| !eq_rows.contains(i)).collect();
        let n = a.ncols();
        if eq_rows.is_empty() || eq_rows.len() >= n {
            return Err(HardNetError::Assumption(format!(
                "DC3 completion needs 1..{n} equality rows, found {}",
                eq_rows.len()
            )));
        }
        let dependent: Vec<usize> = (n - eq_rows.len()..n).collect();
        let partition = Partition::new(
            &a.select_rows(&ineq_rows),
            &a.select_rows(&eq_rows),
            dependent,
        )?;
        let reduced = partition.reduced_matrix().clone();
        Ok(Completion {
            a: a.clone(),
            partition,
            eq_rows,
            ineq_rows,
            reduced,
        })
    }

    /// Right-hand sides of the equalities (rows).
    fn rhs(&self, bounds: &[&(DVector<f64>, DVector<f64>)]) -> Result<DMatrix<f64>, HardNetError> {
        let mut d = DMatrix::zeros(bounds.len(), self.eq_rows.len());
        for (s, (l, u)) in bounds.iter().enumerate() {
            for (k, &i) in self.eq_rows.iter().enumerate() {
                if l[i] != u[i] {
                    return Err(HardNetError::AtInput(
                        s,
                        Box::new(HardNetError::Assumption(format!(
                            "row {i} is an equality in training but not here"
                        ))),
                    ));
                }
                d[(s, k)] = u[i];
            }
        }
        Ok(d)
    }

    /// Bounds of the reduced inequalities on the free outputs for one sample.
    fn reduced_bounds(
        &self,
        d: &DVector<f64>,
        (l, u): &(DVector<f64>, DVector<f64>),
    ) -> (DVector<f64>, DVector<f64>) {
        let lo = DVector::from_fn(self.ineq_rows.len(), |k, _| l[self.ineq_rows[k]]);
        let hi = DVector::from_fn(self.ineq_rows.len(), |k, _| u[self.ineq_rows[k]]);
        self.partition.reduced_bounds(d, &lo, &hi)
    }
}

/// Precomputed constraints of a data set (they depend on the input only): one matrix per
/// sample, or one shared matrix; bounds per sample.
struct Prepared {
    mats: Vec<DMatrix<f64>>,
    facs: Vec<SharedMatrix>,
    bounds: Vec<(DVector<f64>, DVector<f64>)>,
    shared: bool,
}

impl Prepared {
    fn new(
        x: &DMatrix<f64>,
        src: &dyn ConstraintSource,
        n_out: usize,
        factorise: bool,
        cached: Option<&SharedMatrix>,
    ) -> Result<Self, HardNetError> {
        let shared = src.shared_matrix();
        let mut mats = Vec::new();
        let mut bounds = Vec::with_capacity(x.nrows());
        for s in 0..x.nrows() {
            let xs: Vec<f64> = x.row(s).iter().copied().collect();
            let at = |e| HardNetError::AtInput(s, Box::new(e));
            let c = match &shared {
                // Validate the bounds against the shared matrix without copying it.
                Some(a) => {
                    let (lower, upper) = src.bounds_at(&xs).map_err(at)?;
                    check_bounds(a.nrows(), &lower, &upper).map_err(at)?;
                    AffineConstraint {
                        a: DMatrix::zeros(0, 0),
                        lower,
                        upper,
                    }
                }
                None => {
                    let c = src.at(&xs).map_err(at)?;
                    c.validate(n_out).map_err(at)?;
                    c
                }
            };
            if shared.is_none() {
                mats.push(c.a);
            }
            bounds.push((c.lower, c.upper));
        }
        if let Some(a) = &shared {
            if a.ncols() != n_out || a.iter().any(|v| !v.is_finite()) {
                return Err(HardNetError::Shape(format!(
                    "the shared matrix is {}×{} (finite entries needed), outputs {n_out}",
                    a.nrows(),
                    a.ncols()
                )));
            }
        }
        let is_shared = shared.is_some();
        if let Some(a) = shared {
            mats.push(a);
        }
        let reuse = match (cached, is_shared) {
            (Some(c), true) if c.0 == mats[0] => Some(c.clone()),
            _ => None,
        };
        let facs = if let (true, Some(c)) = (factorise, reuse) {
            vec![c]
        } else if factorise {
            mats.iter()
                .enumerate()
                .map(|(s, a)| {
                    AffineProjection::factorise_shared(a.clone())
                        .map_err(|e| HardNetError::AtInput(s, Box::new(e)))
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Prepared {
            mats,
            facs,
            bounds,
            shared: is_shared,
        })
    }

    fn a(&self, s: usize) -> &DMatrix<f64> {
        &self.mats[if self.shared { 0 } else { s }]
    }

    fn projection(&self, idx: &[usize]) -> Result<AffineProjection, HardNetError> {
        let bounds: Vec<_> = idx.iter().map(|&s| self.bounds[s].clone()).collect();
        let p = if self.shared {
            AffineProjection::shared_matrix(self.facs[0].clone(), bounds)?
        } else {
            AffineProjection::from_shared_parts(
                idx.iter().map(|&s| self.facs[s].clone()).collect(),
                bounds,
            )
        };
        Ok(p.with_margin(SAFETY_MARGIN))
    }

    fn completion(&self) -> Result<Completion, HardNetError> {
        if !self.shared {
            return Err(HardNetError::Assumption(
                "DC3 completion needs a constraint source with a shared matrix".into(),
            ));
        }
        Completion::new(&self.mats[0], &self.bounds)
    }
}

/// Squared violation summed over the batch, and its gradient.
fn violation(y: &DMatrix<f64>, idx: &[usize], prep: &Prepared) -> (f64, DMatrix<f64>) {
    let mut total = 0.0;
    let mut g = DMatrix::zeros(y.nrows(), y.ncols());
    for (r, &s) in idx.iter().enumerate() {
        let a = prep.a(s);
        let (lo, hi) = &prep.bounds[s];
        let res = residual(a, lo, hi, &y.row(r).transpose());
        total += res.norm_squared();
        let gs = a.transpose() * res * 2.0;
        g.row_mut(r).copy_from(&gs.transpose());
    }
    (total, g)
}

/// The state of one enforced batch, for its backward pass.
enum Enforced {
    Plain,
    Aff(AffineProjection),
    Cvx,
    Dc3 {
        corrections: Vec<Correction>,
        /// Per sample: correction matrix is the reduced one (completion) or the full one.
        reduced_bounds: Option<Vec<(DVector<f64>, DVector<f64>)>>,
    },
}

fn enforce(
    method: Method,
    dc3: (&Dc3Params, Option<&Completion>, bool),
    f: &DMatrix<f64>,
    idx: &[usize],
    prep: &Prepared,
) -> Result<(DMatrix<f64>, Enforced), HardNetError> {
    match method {
        Method::Nn | Method::Soft => Ok((f.clone(), Enforced::Plain)),
        Method::HardNetAff => {
            let p = prep.projection(idx)?;
            Ok((p.forward(f)?, Enforced::Aff(p)))
        }
        Method::HardNetCvx => {
            let mut out = f.clone();
            for (r, &s) in idx.iter().enumerate() {
                let set = convex_set(prep.a(s), &prep.bounds[s]);
                let p = set.project(&f.row(r).transpose())?;
                out.row_mut(r).copy_from(&p.z.transpose());
            }
            Ok((out, Enforced::Cvx))
        }
        Method::Dc3 => {
            let (params, completion, training) = dc3;
            let steps = if training {
                params.train_steps
            } else {
                params.test_steps
            };
            let mut corrections = Vec::with_capacity(idx.len());
            match completion {
                None => {
                    let mut out = f.clone();
                    for (r, &s) in idx.iter().enumerate() {
                        let (lo, hi) = &prep.bounds[s];
                        let c = correct(
                            prep.a(s),
                            lo,
                            hi,
                            f.row(r).transpose(),
                            params,
                            steps,
                            !training,
                        );
                        let w = c.output();
                        out.row_mut(r).copy_from(&w.transpose());
                        corrections.push(c);
                    }
                    Ok((
                        out,
                        Enforced::Dc3 {
                            corrections,
                            reduced_bounds: None,
                        },
                    ))
                }
                Some(comp) => {
                    let bounds: Vec<_> = idx.iter().map(|&s| &prep.bounds[s]).collect();
                    let d = comp.rhs(&bounds)?;
                    let mut z = f.clone();
                    let mut rb = Vec::with_capacity(idx.len());
                    for (r, b) in bounds.iter().enumerate() {
                        let (lo, hi) = comp.reduced_bounds(&d.row(r).transpose(), b);
                        let c = correct(
                            &comp.reduced,
                            &lo,
                            &hi,
                            f.row(r).transpose(),
                            params,
                            steps,
                            !training,
                        );
                        let w = c.output();
                        z.row_mut(r).copy_from(&w.transpose());
                        corrections.push(c);
                        rb.push((lo, hi));
                    }
                    Ok((
                        comp.partition.complete(&z, &d),
                        Enforced::Dc3 {
                            corrections,
                            reduced_bounds: Some(rb),
                        },
                    ))
                }
            }
        }
    }
}

/// `∂L/∂f` from `∂L/∂y` through the enforcement.
fn enforce_backward(
    state: &Enforced,
    dc3: (&Dc3Params, Option<&Completion>),
    f: &DMatrix<f64>,
    g: DMatrix<f64>,
    idx: &[usize],
    prep: &Prepared,
) -> Result<DMatrix<f64>, HardNetError> {
    match state {
        Enforced::Plain => Ok(g),
        Enforced::Aff(p) => p.backward(f, &g),
        Enforced::Cvx => {
            let mut out = g.clone();
            for (r, &s) in idx.iter().enumerate() {
                let set = convex_set(prep.a(s), &prep.bounds[s]);
                let proj = set.project(&f.row(r).transpose())?;
                let gs = set.backward(&proj, &g.row(r).transpose())?;
                out.row_mut(r).copy_from(&gs.transpose());
            }
            Ok(out)
        }
        Enforced::Dc3 {
            corrections,
            reduced_bounds,
        } => {
            let (params, completion) = dc3;
            let g = match completion {
                Some(comp) => comp.partition.complete_backward(&g),
                None => g,
            };
            let mut out = DMatrix::zeros(f.nrows(), f.ncols());
            for (r, &s) in idx.iter().enumerate() {
                let gs = g.row(r).transpose();
                let gw = match (completion, reduced_bounds) {
                    (Some(comp), Some(rb)) => correct_backward(
                        &comp.reduced,
                        &rb[r].0,
                        &rb[r].1,
                        &corrections[r],
                        gs,
                        params,
                    ),
                    _ => {
                        let (lo, hi) = &prep.bounds[s];
                        correct_backward(prep.a(s), lo, hi, &corrections[r], gs, params)
                    }
                };
                out.row_mut(r).copy_from(&gw.transpose());
            }
            Ok(out)
        }
    }
}

/// Trains a model on inputs `x` and targets `y` (rows are samples) with the MSE loss.
pub fn fit(
    params: &HardNetParams,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    src: &dyn ConstraintSource,
) -> Result<HardNetModel, HardNetError> {
    if y.nrows() != x.nrows() {
        return Err(HardNetError::Shape(format!(
            "{} inputs, {} targets",
            x.nrows(),
            y.nrows()
        )));
    }
    fit_objective(params, x, &Mse(y), y.ncols(), src)
}

/// Trains a model on inputs `x` (rows) for a task loss of its `n_out` enforced outputs.
pub fn fit_objective(
    params: &HardNetParams,
    x: &DMatrix<f64>,
    objective: &dyn Objective,
    n_out: usize,
    src: &dyn ConstraintSource,
) -> Result<HardNetModel, HardNetError> {
    params.validate()?;
    let prep = Prepared::new(x, src, n_out, params.method == Method::HardNetAff, None)?;
    let completion = if params.method == Method::Dc3 && params.dc3.completion {
        Some(Arc::new(prep.completion()?))
    } else {
        None
    };
    let net_out = completion.as_ref().map_or(n_out, |c| c.partition.n_free());
    // As the reference: Kaiming-normal weights, PyTorch's default fan-in uniform biases.
    let mut b = MlpBuilder::new(x.ncols())
        .init(Init::HeNormal)
        .fan_in_bias(true)
        .seed(params.seed);
    for &w in &params.hidden {
        b = b.hidden(w, Activation::Relu);
    }
    let mut net = b
        .output(net_out, Activation::Identity)
        .build()
        .map_err(|e| HardNetError::Shape(e.to_string()))?;
    let mut opt = Adam::new(AdamParams {
        learning_rate: params.learning_rate,
        ..AdamParams::default()
    })
    .map_err(|e| HardNetError::Shape(e.to_string()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    let mut losses = Vec::with_capacity(params.epochs);
    let mut train_time = Duration::ZERO;
    for epoch in 0..params.epochs {
        order.shuffle(&mut rng);
        // Warm start: layers (and DC3's correction) off, penalty on. DC3 with completion
        // keeps its completion (the network predicts the free part only).
        let warm = epoch < params.warm_epochs && params.method.is_layer();
        let method = if warm && completion.is_none() {
            Method::Soft
        } else {
            params.method
        };
        let lambda = if params.method == Method::Nn {
            0.0
        } else {
            params.soft_weight
        };
        let mut dc3 = params.dc3;
        if warm {
            dc3.train_steps = 0;
        }
        let mut epoch_loss = 0.0;
        for idx in order.chunks(params.batch_size) {
            let t = Instant::now();
            let xb = x.select_rows(idx);
            let trace = net
                .trace(&xb)
                .map_err(|e| HardNetError::Shape(e.to_string()))?;
            let f = trace.output().clone();
            let (p, state) = enforce(method, (&dc3, completion.as_deref(), true), &f, idx, &prep)?;
            let n = idx.len() as f64;
            let (task, g_task) = objective.batch(idx, &p);
            let (v, gv) = violation(&p, idx, &prep);
            epoch_loss += (task + lambda * v / n) * n;
            let g = g_task + gv * (lambda / n);
            let g = enforce_backward(&state, (&dc3, completion.as_deref()), &f, g, idx, &prep)?;
            let (grads, _) = net
                .backward(&trace, &g)
                .map_err(|e| HardNetError::Shape(e.to_string()))?;
            opt.step(&mut net, &grads);
            train_time += t.elapsed();
        }
        losses.push(epoch_loss / x.nrows() as f64);
    }
    Ok(HardNetModel {
        net,
        method: params.method,
        dc3: params.dc3,
        train_time,
        losses,
        completion,
        factorised: if prep.shared {
            prep.facs.first().cloned()
        } else {
            None
        },
    })
}

/// The convex set of a constraint with its bounds shrunk for the QP's accuracy (1e-10) too.
fn convex_set(a: &DMatrix<f64>, (lo, hi): &(DVector<f64>, DVector<f64>)) -> ConvexSet {
    let (lower, upper) = crate::affine::shrink_bounds(lo, hi, SAFETY_MARGIN.max(1e-8));
    ConvexSet {
        a: a.clone(),
        lower,
        upper,
        balls: vec![],
    }
}

impl HardNetModel {
    /// Wraps a network trained elsewhere (e.g. through a simulator, as in safe control) with
    /// an enforcement method. DC3 with completion needs [`fit_objective`].
    pub fn from_network(
        net: Mlp,
        method: Method,
        dc3: Dc3Params,
        train_time: Duration,
        losses: Vec<f64>,
    ) -> Result<Self, HardNetError> {
        if method == Method::Dc3 && dc3.completion {
            return Err(HardNetError::Assumption(
                "DC3 completion is set up by fit_objective".into(),
            ));
        }
        Ok(HardNetModel {
            net,
            method,
            dc3,
            train_time,
            losses,
            completion: None,
            factorised: None,
        })
    }

    /// The HardNet-Aff model on the inputs where the constraint is `c`, as one ReLU network:
    /// `P(f) = f + A⁺[ReLU(b_l − A f) − ReLU(A f − b_u)]` with the bounds shrunk by
    /// [`SAFETY_MARGIN`] as in [`HardNetModel::predict`]. The pass-through `f` is written
    /// `ReLU(f) − ReLU(−f)`, or, given an input box `on`, `ReLU(f − L) + L` with `L` CROWN's
    /// lower bound of `f` over it — always-active ReLUs that bound propagation treats exactly.
    /// The result equals the model in real arithmetic wherever `A(x) = A` and `b(x) = b` (and,
    /// with `on`, inside that box), so a verifier for ReLU networks can reason about the
    /// enforced model region by region. Needs a HardNet-Aff model whose network has a linear
    /// last layer and no skip features.
    ///
    /// ```
    /// use nalgebra::{DMatrix, DVector};
    /// use provenn_hardnet::{AffineConstraint, Dc3Params};
    /// use provenn_hardnet::train::{FnConstraint, HardNetModel, Method};
    /// use provenn_nn::{Activation, MlpBuilder};
    ///
    /// let net = MlpBuilder::new(2).hidden(4, Activation::Relu).output(2, Activation::Identity)
    ///     .seed(1).build().unwrap();
    /// let model = HardNetModel::from_network(net, Method::HardNetAff, Dc3Params::default(),
    ///     Default::default(), vec![]).unwrap();
    /// // y0 + y1 ≤ 0.1 everywhere.
    /// let c = AffineConstraint { a: DMatrix::from_row_slice(1, 2, &[1.0, 1.0]),
    ///     lower: DVector::from_element(1, f64::NEG_INFINITY), upper: DVector::from_element(1, 0.1) };
    /// let relu = model.enforced_network(&c, None).unwrap();
    /// let src = FnConstraint(|_: &[f64]| Ok(c.clone()));
    /// let x = DMatrix::from_row_slice(1, 2, &[0.3, -0.7]);
    /// let y = model.predict(&x, &src).unwrap();
    /// let z = relu.forward(&DVector::from_row_slice(&[0.3, -0.7])).unwrap();
    /// assert!((y[(0, 0)] - z[0]).abs() < 1e-12 && (y[(0, 1)] - z[1]).abs() < 1e-12);
    /// ```
    pub fn enforced_network(
        &self,
        c: &AffineConstraint,
        on: Option<&InputBox>,
    ) -> Result<Mlp, HardNetError> {
        if self.method != Method::HardNetAff {
            return Err(HardNetError::Assumption(format!(
                "a {} model has no closed-form ReLU form",
                self.method.name()
            )));
        }
        if !self.net.skip_features().is_empty() {
            return Err(HardNetError::Assumption(
                "networks with skip features (they feed the last layer)".into(),
            ));
        }
        let n_out = self.net.n_outputs();
        c.validate(n_out)?;
        let layers = self.net.layers();
        let last = &layers[layers.len() - 1];
        if last.activation() != Activation::Identity {
            return Err(HardNetError::Assumption(
                "the network's last layer is not linear".into(),
            ));
        }
        let factor = crate::affine::Factorised::new(&c.a)?;
        let (lo, hi) = c.shrunk(SAFETY_MARGIN);
        let (w, b) = (last.weights(), last.bias());
        let floor: Vec<f64> = match on {
            Some(bx) => CrownBounds
                .bounds(&self.net, bx, None)
                .map_err(|e| HardNetError::Shape(e.to_string()))?
                .output()
                .lower
                .clone(),
            None => vec![f64::NEG_INFINITY; n_out],
        };
        // Hidden units (row of the pre-activation map, bias) and the output column each feeds.
        let mut units: Vec<(DVector<f64>, f64, DVector<f64>)> = Vec::new();
        let mut out_bias = DVector::zeros(n_out);
        for k in 0..n_out {
            let wk = w.row(k).transpose();
            let ek = DVector::from_fn(n_out, |i, _| if i == k { 1.0 } else { 0.0 });
            if floor[k].is_finite() {
                units.push((wk, b[k] - floor[k], ek));
                out_bias[k] = floor[k];
            } else {
                units.push((wk.clone(), b[k], ek.clone()));
                units.push((-wk, -b[k], -ek));
            }
        }
        let aw = &c.a * w;
        let ab = &c.a * b;
        for i in 0..c.a.nrows() {
            let mut e = DVector::zeros(c.a.nrows());
            e[i] = 1.0;
            let col = factor.pinv_mul(&e);
            let r = aw.row(i).transpose();
            if hi[i].is_finite() {
                units.push((r.clone(), ab[i] - hi[i], -&col));
            }
            if lo[i].is_finite() {
                units.push((-r, lo[i] - ab[i], col));
            }
        }
        let width = units.len();
        let mut hw = DMatrix::zeros(width, w.ncols());
        let mut hb = DVector::zeros(width);
        let mut ow = DMatrix::zeros(n_out, width);
        for (j, (r, bias, col)) in units.into_iter().enumerate() {
            hw.row_mut(j).copy_from(&r.transpose());
            hb[j] = bias;
            ow.column_mut(j).copy_from(&col);
        }
        let shape = |e: provenn_nn::NnError| HardNetError::Shape(e.to_string());
        let mut out: Vec<Dense> = layers[..layers.len() - 1].to_vec();
        out.push(Dense::new(hw, hb, Activation::Relu).map_err(shape)?);
        out.push(Dense::new(ow, out_bias, Activation::Identity).map_err(shape)?);
        Mlp::from_layers(self.net.n_inputs(), out, vec![]).map_err(shape)
    }

    /// Outputs for inputs `x` (rows), with the enforcement layer applied.
    pub fn predict(
        &self,
        x: &DMatrix<f64>,
        src: &dyn ConstraintSource,
    ) -> Result<DMatrix<f64>, HardNetError> {
        let f = self
            .net
            .forward_batch(x)
            .map_err(|e| HardNetError::Shape(e.to_string()))?;
        if matches!(self.method, Method::Nn | Method::Soft) {
            return Ok(f);
        }
        let comp = self.completion.as_deref();
        let n_out = comp.map_or(f.ncols(), |c| c.a.ncols());
        let prep = Prepared::new(
            x,
            src,
            n_out,
            self.method == Method::HardNetAff,
            self.factorised.as_ref(),
        )?;
        if let Some(c) = comp {
            // `rhs` rejects inputs where a training equality row is not an equality.
            if !prep.shared || prep.mats[0] != c.a {
                return Err(HardNetError::Assumption(
                    "DC3 completion: the constraint matrix differs from training".into(),
                ));
            }
        }
        let idx: Vec<usize> = (0..x.nrows()).collect();
        Ok(enforce(self.method, (&self.dc3, comp, false), &f, &idx, &prep)?.0)
    }
}
