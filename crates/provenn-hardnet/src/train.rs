//! Training networks with and without an enforcement layer, as in the HardNet experiments:
//! plain NN, Soft (penalty `λ‖violation‖²`), HardNet-Aff and HardNet-Cvx, all on the same MLP
//! and loop (MSE + `λ‖violation(output)‖²`, Adam, seeded mini-batches), with an optional warm
//! start (the first `warm_epochs` epochs without the layer, soft penalty on).

use std::time::{Duration, Instant};

use nalgebra::{DMatrix, DVector};
use provenn_dsl::ir::Constraint;
use provenn_nn::optim::{Adam, AdamParams, Optimizer};
use provenn_nn::{Activation, Init, Mlp, MlpBuilder};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::affine::{AffineConstraint, AffineProjection, Factorised};
use crate::convex::ConvexSet;
use crate::HardNetError;

/// Input-dependent affine constraints `b_l(x) ≤ A(x) y ≤ b_u(x)`.
pub trait ConstraintSource: Sync {
    /// The constraint at input `x`.
    fn at(&self, x: &[f64]) -> Result<AffineConstraint, HardNetError>;
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
            Method::HardNetAff => "HardNet-Aff",
            Method::HardNetCvx => "HardNet-Cvx",
        }
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
        Ok(())
    }
}

/// A trained model: the network and how its outputs are enforced.
#[derive(Debug, Clone)]
pub struct HardNetModel {
    /// The network.
    pub net: Mlp,
    /// The enforcement.
    pub method: Method,
    /// Training wall time (forward, backward and steps; no evaluation).
    pub train_time: Duration,
    /// Training loss per epoch.
    pub losses: Vec<f64>,
}

/// Relative inward margin of the enforcement layers in training and prediction, so that
/// outputs satisfy the constraint when it is re-evaluated in f64 (the layer's arithmetic and
/// the evaluator's round differently). Negligible against the task's scale.
pub const SAFETY_MARGIN: f64 = 1e-9;

/// Precomputed constraints of a data set (they depend on the input only).
struct Prepared {
    cons: Vec<(AffineConstraint, Option<Factorised>)>,
}

impl Prepared {
    fn new(
        x: &DMatrix<f64>,
        src: &dyn ConstraintSource,
        n_out: usize,
        factorise: bool,
    ) -> Result<Self, HardNetError> {
        let cons = (0..x.nrows())
            .map(|s| {
                let xs: Vec<f64> = x.row(s).iter().copied().collect();
                let c = src
                    .at(&xs)
                    .map_err(|e| HardNetError::AtInput(s, Box::new(e)))?;
                c.validate(n_out)
                    .map_err(|e| HardNetError::AtInput(s, Box::new(e)))?;
                let f = if factorise {
                    Some(Factorised::new(&c.a).map_err(|e| HardNetError::AtInput(s, Box::new(e)))?)
                } else {
                    None
                };
                Ok((c, f))
            })
            .collect::<Result<Vec<_>, HardNetError>>()?;
        Ok(Prepared { cons })
    }

    fn projection(&self, idx: &[usize]) -> AffineProjection {
        AffineProjection::from_parts(
            idx.iter()
                .map(|&s| {
                    let (c, f) = &self.cons[s];
                    (c.clone(), f.clone().expect("factorised for HardNet-Aff"))
                })
                .collect(),
        )
        .with_margin(SAFETY_MARGIN)
    }
}

/// Squared violation per sample and its gradient.
fn violation(y: &DMatrix<f64>, cons: &[&AffineConstraint]) -> (f64, DMatrix<f64>) {
    let mut total = 0.0;
    let mut g = DMatrix::zeros(y.nrows(), y.ncols());
    for (s, c) in cons.iter().enumerate() {
        let ys = y.row(s).transpose();
        let ay = &c.a * &ys;
        let mut r = DVector::zeros(ay.len());
        for i in 0..ay.len() {
            r[i] = (ay[i] - c.upper[i]).max(0.0) - (c.lower[i] - ay[i]).max(0.0);
        }
        total += r.norm_squared();
        let gs = c.a.transpose() * r * 2.0;
        g.row_mut(s).copy_from(&gs.transpose());
    }
    (total, g)
}

fn enforce(
    method: Method,
    f: &DMatrix<f64>,
    idx: &[usize],
    prep: &Prepared,
) -> Result<(DMatrix<f64>, Option<AffineProjection>), HardNetError> {
    match method {
        Method::Nn | Method::Soft => Ok((f.clone(), None)),
        Method::HardNetAff => {
            let p = prep.projection(idx);
            Ok((p.forward(f)?, Some(p)))
        }
        Method::HardNetCvx => {
            let mut out = f.clone();
            for (r, &s) in idx.iter().enumerate() {
                let set = convex_set(&prep.cons[s].0);
                let p = set.project(&f.row(r).transpose())?;
                out.row_mut(r).copy_from(&p.z.transpose());
            }
            Ok((out, None))
        }
    }
}

/// Trains a model on inputs `x` and targets `y` (rows are samples).
pub fn fit(
    params: &HardNetParams,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    src: &dyn ConstraintSource,
) -> Result<HardNetModel, HardNetError> {
    params.validate()?;
    let n_out = y.ncols();
    let mut b = MlpBuilder::new(x.ncols())
        .init(Init::HeNormal)
        .seed(params.seed);
    for &w in &params.hidden {
        b = b.hidden(w, Activation::Relu);
    }
    let mut net = b
        .output(n_out, Activation::Identity)
        .build()
        .map_err(|e| HardNetError::Shape(e.to_string()))?;
    let prep = Prepared::new(x, src, n_out, params.method == Method::HardNetAff)?;
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
        let warm = epoch < params.warm_epochs;
        let method = if warm && matches!(params.method, Method::HardNetAff | Method::HardNetCvx) {
            Method::Soft
        } else {
            params.method
        };
        let lambda = if method == Method::Nn {
            0.0
        } else {
            params.soft_weight
        };
        let mut epoch_loss = 0.0;
        for idx in order.chunks(params.batch_size) {
            let t = Instant::now();
            let xb = x.select_rows(idx);
            let yb = y.select_rows(idx);
            let trace = net
                .trace(&xb)
                .map_err(|e| HardNetError::Shape(e.to_string()))?;
            let f = trace.output().clone();
            let (p, proj) = enforce(method, &f, idx, &prep)?;
            let n = idx.len() as f64;
            let diff = &p - &yb;
            let cons: Vec<&AffineConstraint> = idx.iter().map(|&s| &prep.cons[s].0).collect();
            let (v, gv) = violation(&p, &cons);
            epoch_loss += diff.norm_squared() / (n * n_out as f64) * n + lambda * v / n * n;
            let mut g = diff * (2.0 / (n * n_out as f64)) + gv * (lambda / n);
            g = match (method, proj) {
                (Method::HardNetAff, Some(pr)) => pr.backward(&f, &g)?,
                (Method::HardNetCvx, _) => cvx_backward(&f, &p, &g, idx, &prep)?,
                _ => g,
            };
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
        train_time,
        losses,
    })
}

/// The convex set of a constraint with its bounds shrunk for the QP's accuracy (1e-10) too.
fn convex_set(c: &AffineConstraint) -> ConvexSet {
    let (lower, upper) = c.shrunk(SAFETY_MARGIN.max(1e-8));
    ConvexSet {
        a: c.a.clone(),
        lower,
        upper,
        balls: vec![],
    }
}

fn cvx_backward(
    f: &DMatrix<f64>,
    _p: &DMatrix<f64>,
    g: &DMatrix<f64>,
    idx: &[usize],
    prep: &Prepared,
) -> Result<DMatrix<f64>, HardNetError> {
    let mut out = g.clone();
    for (r, &s) in idx.iter().enumerate() {
        let set = convex_set(&prep.cons[s].0);
        let proj = set.project(&f.row(r).transpose())?;
        let gs = set.backward(&proj, &g.row(r).transpose())?;
        out.row_mut(r).copy_from(&gs.transpose());
    }
    Ok(out)
}

impl HardNetModel {
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
        let prep = Prepared::new(x, src, f.ncols(), self.method == Method::HardNetAff)?;
        let idx: Vec<usize> = (0..x.nrows()).collect();
        Ok(enforce(self.method, &f, &idx, &prep)?.0)
    }
}
