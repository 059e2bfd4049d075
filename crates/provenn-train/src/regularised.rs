//! Soft-constraint baselines: an MLP trained on `(1 − α)·loss + α·penalty`, where the penalty
//! measures how far the network's outputs are from the domain constraint at each *training*
//! row — nothing is guaranteed beyond those rows.
//!
//! At a row `x` the constraint's input atoms are decided (`P(x) ⇒ C(y)` becomes `C(y)` where
//! `P(x)` holds and `true` elsewhere, which then costs nothing), and what is left — a formula
//! over output atoms `a·y + c ⋈ 0` — is scored by one of three penalties:
//! - [`Penalty::SemanticLoss`] (Xu et al. 2018): `−log P(formula)` with each atom an independent
//!   Bernoulli `σ(±(a·y + c))`, the weighted model count computed exactly by enumerating the
//!   atoms' truth assignments (DeepSaDe's UC3 baseline used the approximation
//!   `(σ₃ + σ₄)(1 − σ₀)…`; this is the exact count);
//! - [`Penalty::Sbr`] (semantic-based regularisation, Diligenti et al.): `1 − t(formula)` with
//!   Gödel fuzzy semantics (`∧` = min, `∨` = max) on the same atom probabilities;
//! - [`Penalty::Hinge`] (DeepSaDe's UC1 "REG"): the sum over conjuncts of each atom's violation
//!   `max(0, ∓(a·y + c))` (the cheapest disjunct for `∨`).
//!
//! The base loss is binary cross-entropy on logits for class and multi-label targets (class
//! logits read as independent Bernoullis, as the constraint's sign atoms do and as the
//! reference baselines trained) and MSE for regression. `α` is chosen by [`select_alpha`]:
//! inner cross-validation, fewest validation violations first, then the best score — the
//! reference code's tie-break sorted accuracy ascending and so took the *worst*.
use std::sync::{Arc, OnceLock};

use nalgebra::DMatrix;
use num_traits::ToPrimitive;
use provenn_data::split::k_fold;
use provenn_data::{Dataset, Targets};
use provenn_dsl::ir::{Assignment, Cmp, Constraint, Formula, Side, Var};
use provenn_nn::loss::{BceWithLogits, Loss, Mse};
use provenn_nn::optim::{Adam, AdamParams, Optimizer};
use provenn_nn::train::{Control, EarlyStopping};
use provenn_nn::{Activation, Mlp, MlpBuilder};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ffn::{score, Score};
use crate::TrainError;

/// How a row's residual constraint is turned into a differentiable penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// `−log` of the exact probability that the formula holds (independent atoms).
    SemanticLoss,
    /// `1 −` the Gödel truth value of the formula.
    Sbr,
    /// Summed hinge violations of the atoms.
    Hinge,
}

impl Penalty {
    /// Short name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Penalty::SemanticLoss => "SL",
            Penalty::Sbr => "SBR",
            Penalty::Hinge => "REG",
        }
    }
}

/// Most distinct output atoms a row may leave for the semantic loss (its count enumerates the
/// `2^atoms` assignments once per distinct formula, then sums over the satisfying ones).
pub const MAX_SL_ATOMS: usize = 20;

/// Hyper-parameters of [`Regularised`], validated by [`RegularisedParams::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct RegularisedParams {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Inputs skip-connected into the last layer.
    pub skip_features: Vec<usize>,
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Stop after this many epochs without improvement of the validation objective.
    pub patience: usize,
    /// The penalty.
    pub penalty: Penalty,
    /// Weight `α ∈ [0, 1]` of the penalty.
    pub alpha: f64,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl Default for RegularisedParams {
    fn default() -> Self {
        RegularisedParams {
            hidden: vec![16, 16],
            activation: Activation::Relu,
            skip_features: vec![],
            epochs: 200,
            batch_size: 16,
            learning_rate: 1e-2,
            patience: 30,
            penalty: Penalty::SemanticLoss,
            alpha: 0.5,
            seed: 0,
        }
    }
}

/// A validated [`RegularisedParams`].
#[derive(Debug, Clone)]
pub struct Regularised {
    p: RegularisedParams,
}

impl RegularisedParams {
    /// Validates the parameters.
    ///
    /// # Errors
    /// Zero sizes, a non-positive learning rate, `α` outside `[0, 1]`.
    pub fn build(self) -> Result<Regularised, TrainError> {
        let bad = |m: &str| Err(TrainError::InvalidParams(m.into()));
        if self.epochs == 0 || self.batch_size == 0 || self.patience == 0 {
            return bad("epochs, batch size and patience must be ≥ 1");
        }
        if self.hidden.contains(&0) {
            return bad("hidden widths must be ≥ 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("the learning rate must be finite and > 0");
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return bad("α must lie in [0, 1]");
        }
        Ok(Regularised { p: self })
    }
}

/// An output atom `s·(a·y + c) ≥ 0` (or `>`) left at one row; `s = ±1` orients it.
#[derive(Debug, Clone, PartialEq)]
struct OutAtom {
    coefs: Vec<(usize, f64)>,
    constant: f64,
    sign: f64,
}

impl OutAtom {
    /// The oriented value `s·(a·y + c)`: the atom holds where it is positive.
    fn value(&self, y: &[f64]) -> f64 {
        let v: f64 = self.constant + self.coefs.iter().map(|&(k, a)| a * y[k]).sum::<f64>();
        self.sign * v
    }
    /// Adds `g · ∂value/∂y` to `grad`.
    fn backprop(&self, g: f64, grad: &mut [f64]) {
        for &(k, a) in &self.coefs {
            grad[k] += g * self.sign * a;
        }
    }
}

/// A constraint with its input atoms decided at one row.
#[derive(Debug, Clone, PartialEq)]
enum Residual {
    True,
    False,
    /// Index into the row's atom list.
    Atom(usize),
    And(Vec<Residual>),
    Or(Vec<Residual>),
    Count {
        terms: Vec<(f64, Residual)>,
        cmp: Cmp,
        bound: f64,
    },
}

/// The constraint at one row: a formula over output atoms.
#[derive(Debug, Clone, PartialEq)]
struct RowConstraint {
    atoms: Vec<OutAtom>,
    formula: Residual,
    /// The formula's satisfying assignments (bit `j` = atom `j`), enumerated on first use by
    /// the semantic loss and shared by the rows with the same formula.
    models: SharedModels,
}

/// A formula's satisfying assignments, computed once and shared between rows.
type SharedModels = Arc<OnceLock<Vec<u32>>>;

impl RowConstraint {
    fn new(atoms: Vec<OutAtom>, formula: Residual) -> Self {
        RowConstraint {
            atoms,
            formula,
            models: Arc::default(),
        }
    }

    fn models(&self) -> &[u32] {
        self.models.get_or_init(|| {
            (0..(1u32 << self.atoms.len()))
                .filter(|&bits| holds_bits(&self.formula, bits))
                .collect()
        })
    }
}

fn decide(f: &Formula, x: &[f64], atoms: &mut Vec<OutAtom>) -> Result<Residual, TrainError> {
    Ok(match f {
        Formula::True => Residual::True,
        Formula::False => Residual::False,
        Formula::Atom(at) if at.expr.is_input_only() => {
            let a = Assignment {
                x,
                y: &[],
                x2: &[],
                y2: &[],
            };
            if at.cmp.holds(at.expr.eval(&a)) {
                Residual::True
            } else {
                Residual::False
            }
        }
        Formula::Atom(at) => {
            let sign = match at.cmp {
                Cmp::Gt | Cmp::Ge => 1.0,
                Cmp::Lt | Cmp::Le => -1.0,
                Cmp::Eq => {
                    return Err(TrainError::InvalidParams(
                        "soft-constraint penalties need inequalities over outputs, not `==`".into(),
                    ))
                }
            };
            let mut constant = at.expr.constant.eval(x, &[]);
            let mut coefs = Vec::new();
            for (v, c) in &at.expr.terms {
                let c = c.eval(x, &[]);
                match v {
                    Var::Input(Side::First, j) => constant += c * x[*j],
                    Var::Output(Side::First, k) => coefs.push((*k, c)),
                    _ => {
                        return Err(TrainError::InvalidParams(
                            "soft-constraint penalties take single-copy constraints".into(),
                        ))
                    }
                }
            }
            let atom = OutAtom {
                coefs,
                constant,
                sign,
            };
            // An atom written twice (UC5's y[r, c] > 0 in its row and its column) is one
            // Bernoulli variable of the semantic loss, not two independent ones.
            match atoms.iter().position(|a| *a == atom) {
                Some(i) => Residual::Atom(i),
                None => {
                    atoms.push(atom);
                    Residual::Atom(atoms.len() - 1)
                }
            }
        }
        Formula::And(parts) => {
            let mut kept = Vec::new();
            for p in parts {
                match decide(p, x, atoms)? {
                    Residual::True => {}
                    Residual::False => return Ok(Residual::False),
                    r => kept.push(r),
                }
            }
            match kept.len() {
                0 => Residual::True,
                1 => kept.pop().expect("one part"),
                _ => Residual::And(kept),
            }
        }
        Formula::Or(parts) => {
            let mut kept = Vec::new();
            for p in parts {
                match decide(p, x, atoms)? {
                    Residual::True => return Ok(Residual::True),
                    Residual::False => {}
                    r => kept.push(r),
                }
            }
            match kept.len() {
                0 => Residual::False,
                1 => kept.pop().expect("one part"),
                _ => Residual::Or(kept),
            }
        }
        Formula::Count { terms, cmp, bound } => {
            let mut bound = q_f64(bound);
            let mut kept = Vec::new();
            for (w, p) in terms {
                let w = q_f64(w);
                match decide(p, x, atoms)? {
                    Residual::True => bound -= w,
                    Residual::False => {}
                    r => kept.push((w, r)),
                }
            }
            if kept.is_empty() {
                if cmp.holds(-bound) {
                    Residual::True
                } else {
                    Residual::False
                }
            } else {
                Residual::Count {
                    terms: kept,
                    cmp: *cmp,
                    bound,
                }
            }
        }
    })
}

fn q_f64(q: &provenn_dsl::ir::Q) -> f64 {
    q.to_f64().unwrap_or(f64::NAN)
}

/// The logistic function without overflow at either extreme.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Whether `r` holds when atom `i` has truth `bits >> i & 1`.
fn holds_bits(r: &Residual, bits: u32) -> bool {
    match r {
        Residual::True => true,
        Residual::False => false,
        Residual::Atom(i) => bits >> i & 1 == 1,
        Residual::And(v) => v.iter().all(|p| holds_bits(p, bits)),
        Residual::Or(v) => v.iter().any(|p| holds_bits(p, bits)),
        Residual::Count { terms, cmp, bound } => {
            let s: f64 = terms
                .iter()
                .filter(|(_, p)| holds_bits(p, bits))
                .map(|(w, _)| w)
                .sum();
            cmp.holds(s - bound)
        }
    }
}

/// Gödel truth value and the atom that decides it (min/max pick one child).
fn godel(r: &Residual, p: &[f64]) -> Result<(f64, Option<usize>), TrainError> {
    Ok(match r {
        Residual::True => (1.0, None),
        Residual::False => (0.0, None),
        Residual::Atom(i) => (p[*i], Some(*i)),
        Residual::And(v) | Residual::Or(v) => {
            let is_and = matches!(r, Residual::And(_));
            let mut best = (if is_and { f64::INFINITY } else { -1.0 }, None);
            for c in v {
                let t = godel(c, p)?;
                if (is_and && t.0 < best.0) || (!is_and && t.0 > best.0) {
                    best = t;
                }
            }
            best
        }
        Residual::Count { .. } => {
            return Err(TrainError::InvalidParams(
                "SBR's fuzzy semantics has no counting connective; use the semantic loss".into(),
            ))
        }
    })
}

/// Hinge violation of `r` at oriented atom values `v`, adding `g·∂/∂v` to `dv`.
fn hinge(r: &Residual, v: &[f64], g: f64, dv: &mut [f64]) -> Result<f64, TrainError> {
    Ok(match r {
        Residual::True | Residual::False => 0.0,
        Residual::Atom(i) => {
            if v[*i] < 0.0 {
                dv[*i] -= g;
            }
            (-v[*i]).max(0.0)
        }
        Residual::And(parts) => {
            let mut s = 0.0;
            for p in parts {
                s += hinge(p, v, g, dv)?;
            }
            s
        }
        Residual::Or(parts) => {
            // The cheapest disjunct carries the gradient.
            let mut scratch = vec![0.0; dv.len()];
            let mut best = (f64::INFINITY, None);
            for (j, p) in parts.iter().enumerate() {
                let h = hinge(p, v, 0.0, &mut scratch)?;
                if h < best.0 {
                    best = (h, Some(j));
                }
            }
            if let Some(j) = best.1 {
                hinge(&parts[j], v, g, dv)?;
            }
            best.0
        }
        Residual::Count { .. } => {
            return Err(TrainError::InvalidParams(
                "the hinge penalty has no counting connective; use the semantic loss".into(),
            ))
        }
    })
}

impl RowConstraint {
    /// Penalty at outputs `y` and its gradient (added into `grad`, times `scale`).
    fn penalty(
        &self,
        kind: Penalty,
        y: &[f64],
        scale: f64,
        grad: &mut [f64],
    ) -> Result<f64, TrainError> {
        if matches!(self.formula, Residual::True | Residual::False) {
            // Nothing to learn: satisfied at this row whatever the outputs, or unsatisfiable.
            return Ok(0.0);
        }
        let v: Vec<f64> = self.atoms.iter().map(|a| a.value(y)).collect();
        let m = self.atoms.len();
        let mut dv = vec![0.0; m];
        let value = match kind {
            Penalty::SemanticLoss => {
                if m > MAX_SL_ATOMS {
                    return Err(TrainError::InvalidParams(format!(
                        "the semantic loss enumerates 2^atoms assignments; a row leaves {m} atoms (at most {MAX_SL_ATOMS})"
                    )));
                }
                let p: Vec<f64> = v.iter().map(|&z| sigmoid(z)).collect();
                // W = Σ over satisfying assignments of Π q_j; ∂W/∂p_i from the same sum.
                let mut w = 0.0;
                let mut dw = vec![0.0; m];
                let mut q = vec![0.0; m];
                for &bits in self.models() {
                    for (j, qj) in q.iter_mut().enumerate() {
                        *qj = if bits >> j & 1 == 1 { p[j] } else { 1.0 - p[j] };
                    }
                    w += q.iter().product::<f64>();
                    for (i, d) in dw.iter_mut().enumerate() {
                        let rest: f64 = (0..m).filter(|&j| j != i).map(|j| q[j]).product();
                        *d += if bits >> i & 1 == 1 { rest } else { -rest };
                    }
                }
                let w_safe = w.max(1e-12);
                for ((d, dwi), pi) in dv.iter_mut().zip(&dw).zip(&p) {
                    *d = -dwi / w_safe * pi * (1.0 - pi);
                }
                -w_safe.ln()
            }
            Penalty::Sbr => {
                let p: Vec<f64> = v.iter().map(|&z| sigmoid(z)).collect();
                let (t, atom) = godel(&self.formula, &p)?;
                if let Some(i) = atom {
                    dv[i] = -p[i] * (1.0 - p[i]);
                }
                1.0 - t
            }
            Penalty::Hinge => hinge(&self.formula, &v, 1.0, &mut dv)?,
        };
        for (a, d) in self.atoms.iter().zip(&dv) {
            a.backprop(scale * d, grad);
        }
        Ok(value)
    }
}

/// The constraint decided at every row of `x`.
fn decide_rows(c: &Constraint, x: &DMatrix<f64>) -> Result<Vec<RowConstraint>, TrainError> {
    if c.two_copy {
        return Err(TrainError::InvalidParams(
            "soft-constraint penalties take single-copy constraints".into(),
        ));
    }
    // Rows with the same residual formula share its model enumeration.
    let mut shared: Vec<(Residual, usize, SharedModels)> = Vec::new();
    (0..x.nrows())
        .map(|i| {
            let xi: Vec<f64> = x.row(i).iter().copied().collect();
            let mut atoms = Vec::new();
            let formula = decide(&c.formula, &xi, &mut atoms)?;
            let mut row = RowConstraint::new(atoms, formula);
            match shared
                .iter()
                .find(|(f, n, _)| *n == row.atoms.len() && *f == row.formula)
            {
                Some((_, _, models)) => row.models = Arc::clone(models),
                None if shared.len() < 64 => shared.push((
                    row.formula.clone(),
                    row.atoms.len(),
                    Arc::clone(&row.models),
                )),
                None => {}
            }
            Ok(row)
        })
        .collect()
}

/// The mean penalty of `kind` over the rows of `x` at the network's outputs.
///
/// # Errors
/// A two-copy constraint, an `==` atom over outputs, a connective the penalty lacks.
pub fn mean_penalty(
    net: &Mlp,
    c: &Constraint,
    kind: Penalty,
    x: &DMatrix<f64>,
) -> Result<f64, TrainError> {
    let rows = decide_rows(c, x)?;
    let out = net.forward_batch(x)?;
    let mut scratch = vec![0.0; out.ncols()];
    let mut s = 0.0;
    for (i, r) in rows.iter().enumerate() {
        let y: Vec<f64> = out.row(i).iter().copied().collect();
        s += r.penalty(kind, &y, 0.0, &mut scratch)?;
    }
    Ok(s / rows.len().max(1) as f64)
}

fn base_loss(t: &Targets) -> &'static dyn Loss {
    match t {
        Targets::Regression(_) => &Mse,
        _ => &BceWithLogits,
    }
}

/// `(1 − α)·loss + α·mean penalty` over rows `idx` and its gradient w.r.t. the outputs.
fn objective(
    p: &RegularisedParams,
    out: &DMatrix<f64>,
    y: &DMatrix<f64>,
    rows: &[&RowConstraint],
    loss: &dyn Loss,
) -> Result<(f64, DMatrix<f64>), TrainError> {
    let (sum, g) = loss.sum_and_gradient(out, y);
    let norm = loss.normaliser(out.nrows(), out.ncols());
    let mut grad = g * ((1.0 - p.alpha) / norm);
    let mut value = (1.0 - p.alpha) * sum / norm;
    let scale = p.alpha / rows.len().max(1) as f64;
    let mut g_row = vec![0.0; out.ncols()];
    for (i, r) in rows.iter().enumerate() {
        let yi: Vec<f64> = out.row(i).iter().copied().collect();
        g_row.iter_mut().for_each(|v| *v = 0.0);
        value += scale * r.penalty(p.penalty, &yi, scale, &mut g_row)?;
        for (k, gk) in g_row.iter().enumerate() {
            grad[(i, k)] += gk;
        }
    }
    Ok((value, grad))
}

/// A network trained with a soft-constraint penalty. Nothing is certified: run it through
/// provenn-milp to see whether (and by how much) it violates the constraint.
#[derive(Debug, Clone)]
pub struct FittedRegularised {
    /// The network (logits for classification).
    pub net: Mlp,
    /// Epochs run.
    pub epochs_run: usize,
    /// Validation (or training) objective of the returned epoch.
    pub best_objective: f64,
}

impl Regularised {
    /// Trains on `train` under the soft constraint `c`, keeping the epoch with the lowest
    /// objective on `validation` (early stopping), or the last epoch without one.
    ///
    /// # Errors
    /// See [`mean_penalty`]; network errors.
    pub fn fit(
        &self,
        train: &Dataset,
        validation: Option<&Dataset>,
        c: &Constraint,
    ) -> Result<FittedRegularised, TrainError> {
        let p = &self.p;
        let mut b = MlpBuilder::new(train.n_features()).seed(p.seed);
        for &w in &p.hidden {
            b = b.hidden(w, p.activation);
        }
        let mut net = b
            .output(train.targets.n_outputs(), Activation::Identity)
            .skip_features(p.skip_features.clone())
            .build()?;
        let mut opt = Adam::new(AdamParams {
            learning_rate: p.learning_rate,
            ..Default::default()
        })?;
        let loss = base_loss(&train.targets);
        let y = train.targets.to_matrix();
        let rows = decide_rows(c, &train.x)?;
        let val = match validation {
            Some(v) if v.n_rows() > 0 => Some((v, v.targets.to_matrix(), decide_rows(c, &v.x)?)),
            _ => None,
        };
        let mut stopper = EarlyStopping::new(p.patience);
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed.wrapping_add(1));
        let mut order: Vec<usize> = (0..train.n_rows()).collect();
        let mut epochs_run = 0;
        let mut last = f64::NAN;
        for _ in 0..p.epochs {
            epochs_run += 1;
            order.shuffle(&mut rng);
            for batch in order.chunks(p.batch_size) {
                let xb = train.x.select_rows(batch);
                let yb = y.select_rows(batch);
                let rb: Vec<&RowConstraint> = batch.iter().map(|&i| &rows[i]).collect();
                let trace = net.trace(&xb)?;
                let (_, g) = objective(p, trace.output(), &yb, &rb, loss)?;
                let (grads, _) = net.backward(&trace, &g)?;
                opt.step(&mut net, &grads);
            }
            let Some((v, vy, vrows)) = &val else {
                continue;
            };
            let out = net.forward_batch(&v.x)?;
            let vr: Vec<&RowConstraint> = vrows.iter().collect();
            last = objective(p, &out, vy, &vr, loss)?.0;
            if stopper.observe(last, &net) == Control::Stop {
                break;
            }
        }
        let best_objective = stopper.best_score().unwrap_or(last);
        if let Some(best) = stopper.into_best() {
            net = best;
        }
        Ok(FittedRegularised {
            net,
            epochs_run,
            best_objective,
        })
    }
}

/// Rows of `d` where the network's prediction breaks the single-copy constraint `c`.
pub fn violations(net: &Mlp, c: &Constraint, d: &Dataset) -> Result<usize, TrainError> {
    let out = net.forward_batch(&d.x)?;
    Ok((0..d.n_rows())
        .filter(|&i| {
            let x: Vec<f64> = d.x.row(i).iter().copied().collect();
            let y: Vec<f64> = out.row(i).iter().copied().collect();
            !c.holds(&Assignment {
                x: &x,
                y: &y,
                x2: &[],
                y2: &[],
            })
        })
        .count())
}

/// One `α` of a [`select_alpha`] search.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaTrial {
    /// The weight.
    pub alpha: f64,
    /// Mean validation violations over the inner folds.
    pub violations: f64,
    /// Mean validation accuracy (classes), exact match (multi-label) or MSE (regression).
    pub score: f64,
}

/// The chosen `α` and every trial.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaChoice {
    /// The chosen weight.
    pub alpha: f64,
    /// Every weight tried, in grid order.
    pub trials: Vec<AlphaTrial>,
}

/// Chooses `α` from `grid` by `inner_folds`-fold cross-validation on `train`: the fewest mean
/// validation violations, ties broken by the best mean score (highest accuracy, lowest MSE),
/// then by the grid order. Each inner training holds out 10% of its part for early stopping.
///
/// # Errors
/// An empty grid, fewer than 2 folds, and [`Regularised::fit`]'s errors.
pub fn select_alpha(
    params: &RegularisedParams,
    grid: &[f64],
    train: &Dataset,
    c: &Constraint,
    inner_folds: usize,
    seed: u64,
) -> Result<AlphaChoice, TrainError> {
    if grid.is_empty() || inner_folds < 2 {
        return Err(TrainError::InvalidParams(
            "α selection needs a non-empty grid and ≥ 2 folds".into(),
        ));
    }
    let folds = k_fold(train.n_rows(), inner_folds, train.targets.labels(), seed)?;
    let mut trials = Vec::with_capacity(grid.len());
    for &alpha in grid {
        let trainer = RegularisedParams {
            alpha,
            ..params.clone()
        }
        .build()?;
        let (mut viol, mut sc) = (0.0, 0.0);
        for (f, fold) in folds.iter().enumerate() {
            let mut tr = fold.train.clone();
            tr.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(f as u64)));
            let (stop_idx, fit_idx) = tr.split_at(tr.len() / 10);
            let held = train.select(&fold.test);
            let fitted = trainer.fit(&train.select(fit_idx), Some(&train.select(stop_idx)), c)?;
            viol += violations(&fitted.net, c, &held)? as f64;
            sc += match score(&fitted.net, &held)? {
                Score::Accuracy(a) | Score::ExactMatch(a) => a,
                Score::Mse(m) => -m,
            };
        }
        let n = folds.len() as f64;
        trials.push(AlphaTrial {
            alpha,
            violations: viol / n,
            score: sc / n,
        });
    }
    let best = trials
        .iter()
        .min_by(|a, b| {
            a.violations
                .total_cmp(&b.violations)
                .then(b.score.total_cmp(&a.score))
        })
        .expect("non-empty grid");
    let alpha = best.alpha;
    // Report MSE as itself, not negated.
    if matches!(train.targets, Targets::Regression(_)) {
        trials.iter_mut().for_each(|t| t.score = -t.score);
    }
    Ok(AlphaChoice { alpha, trials })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn atom(k: usize, sign: f64, constant: f64) -> OutAtom {
        OutAtom {
            coefs: vec![(k, 1.0)],
            constant,
            sign,
        }
    }

    /// `(y3 > 0 ∨ y4 > 0) ∧ y0 < 0 ∧ y1 < 0 ∧ y2 < 0` — the music constraint at a Beatles row.
    fn music() -> RowConstraint {
        RowConstraint::new(
            vec![
                atom(3, 1.0, 0.0),
                atom(4, 1.0, 0.0),
                atom(0, -1.0, 0.0),
                atom(1, -1.0, 0.0),
                atom(2, -1.0, 0.0),
            ],
            Residual::And(vec![
                Residual::Or(vec![Residual::Atom(0), Residual::Atom(1)]),
                Residual::Atom(2),
                Residual::Atom(3),
                Residual::Atom(4),
            ]),
        )
    }

    fn formula_strategy() -> impl Strategy<Value = Residual> {
        let leaf = (0usize..4).prop_map(Residual::Atom);
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Residual::And),
                prop::collection::vec(inner, 2..4).prop_map(Residual::Or),
            ]
        })
    }

    #[test]
    fn semantic_loss_is_the_exact_probability_of_the_music_formula() {
        let y = [0.3f64, -1.2, 0.7, -0.4, 1.1];
        let s: Vec<f64> = y.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
        let want = (1.0 - (1.0 - s[3]) * (1.0 - s[4])) * (1.0 - s[0]) * (1.0 - s[1]) * (1.0 - s[2]);
        let mut g = vec![0.0; 5];
        let got = music()
            .penalty(Penalty::SemanticLoss, &y, 1.0, &mut g)
            .unwrap();
        assert!((got + want.ln()).abs() < 1e-12, "{got} vs {}", -want.ln());
        let sbr = music().penalty(Penalty::Sbr, &y, 1.0, &mut g).unwrap();
        let t = s[3]
            .max(s[4])
            .min(1.0 - s[0])
            .min(1.0 - s[1])
            .min(1.0 - s[2]);
        assert!((sbr - (1.0 - t)).abs() < 1e-12);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Every penalty's gradient matches central finite differences (away from the kinks
        /// of min/max/hinge, which the generated points avoid with high probability).
        #[test]
        fn penalty_gradients_match_finite_differences(
            formula in formula_strategy(),
            signs in prop::collection::vec(prop::bool::ANY, 4),
            consts in prop::collection::vec(-1.0..1.0f64, 4),
            y in prop::collection::vec(-3.0..3.0f64, 3),
            kind in prop_oneof![Just(Penalty::SemanticLoss), Just(Penalty::Sbr), Just(Penalty::Hinge)],
        ) {
            // Four atoms over three outputs (one shared) with mixed coefficients.
            let atoms: Vec<OutAtom> = (0..4)
                .map(|i| OutAtom {
                    coefs: vec![(i % 3, 1.0 + i as f64 * 0.5), ((i + 1) % 3, -0.7)],
                    constant: consts[i],
                    sign: if signs[i] { 1.0 } else { -1.0 },
                })
                .collect();
            let r = RowConstraint::new(atoms, formula);
            let mut g = vec![0.0; 3];
            r.penalty(kind, &y, 1.0, &mut g).unwrap();
            let h = 1e-6;
            for k in 0..3 {
                let (mut up, mut down) = (y.clone(), y.clone());
                up[k] += h;
                down[k] -= h;
                let mut s = vec![0.0; 3];
                let fd = (r.penalty(kind, &up, 0.0, &mut s).unwrap()
                    - r.penalty(kind, &down, 0.0, &mut s).unwrap())
                    / (2.0 * h);
                // A kink within h shows as a finite difference between the one-sided slopes.
                let v0 = r.penalty(kind, &y, 0.0, &mut s).unwrap();
                let left = (v0 - r.penalty(kind, &down, 0.0, &mut s).unwrap()) / h;
                let right = (r.penalty(kind, &up, 0.0, &mut s).unwrap() - v0) / h;
                if (left - right).abs() > 1e-3 {
                    continue;
                }
                prop_assert!((g[k] - fd).abs() < 1e-4 * (1.0 + fd.abs()), "{kind:?} k={k}: {} vs {fd}", g[k]);
            }
        }

        /// The semantic loss is −log of the satisfaction probability estimated by sampling
        /// independent atom truths (a different computation from the enumeration).
        #[test]
        fn semantic_loss_matches_sampled_probability(
            formula in formula_strategy(),
            y in prop::collection::vec(-2.0..2.0f64, 4),
            seed in 0u64..1000,
        ) {
            use rand::Rng;
            let atoms: Vec<OutAtom> = (0..4).map(|k| atom(k, 1.0, 0.0)).collect();
            let r = RowConstraint::new(atoms, formula.clone());
            let mut g = vec![0.0; 4];
            let sl = r.penalty(Penalty::SemanticLoss, &y, 0.0, &mut g).unwrap();
            let p: Vec<f64> = y.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = 20_000;
            let hits = (0..n)
                .filter(|_| {
                    let bits = (0..4).fold(0u32, |b, j| b | (u32::from(rng.gen::<f64>() < p[j]) << j));
                    holds_bits(&formula, bits)
                })
                .count();
            let est = hits as f64 / n as f64;
            // 5 standard errors.
            let se = (est * (1.0 - est) / n as f64).sqrt().max(1e-3);
            prop_assert!(((-sl).exp() - est).abs() < 5.0 * se + 1e-9, "exp(-SL) {} vs sampled {est}", (-sl).exp());
        }
    }
}
