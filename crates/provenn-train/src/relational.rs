//! Training networks that satisfy global relational (two-copy) properties — monotonicity,
//! global robustness, individual fairness — with full guarantees, and the baselines they are
//! compared with. The design and its soundness argument are in `docs/relational-properties.md`.
//!
//! [`Enforcement::Projection`] (provenn's method) alternates Adam steps on the whole network
//! with a projection of the *last layer* onto the weights that satisfy the property for every
//! admissible pair, given the current hidden layers:
//!
//! * the domain is split into sub-boxes; on each, a **relational latent box** bounds how the
//!   last layer's input `z = [h(x), skip features]` can move between the two copies —
//!   [`JacobianBounds`] (the derivative `∂z/∂x_i`, scale-free, for monotonicity) or
//!   [`RelationalBounds`] (`z(x') − z(x)`, for robustness and fairness);
//! * the property then reads `∀u ∈ [lo, hi]: σ·w_k·u ≥ r` per row, which is exactly
//!   `Σ_j min(σ w_kj lo_j, σ w_kj hi_j) ≥ r` — linear in the weights with one auxiliary per term
//!   (the ∀-elimination of provenn-maxsmt, specialised to a difference), so the closest weights
//!   come from one convex QP (clarabel);
//! * the projected rows are re-checked in `f64` with rounding-error bounds.
//!
//! Whatever the enforcement, the returned model is run through the independent two-copy MILP
//! certifier of provenn-milp over the whole network and the whole domain, with the property
//! written in the constraint language; the guarantee is that certificate and nothing else.
//!
//! ```
//! use nalgebra::DMatrix;
//! use provenn_data::{Dataset, Feature, FeatureKind, Schema, Targets};
//! use provenn_train::relational::{
//!     Direction, Enforcement, Guarantee, RelationalParams, RelationalProperty,
//! };
//!
//! // y = sin(6·x0) + x1 is not monotone in x0; the trained model must be.
//! let x = DMatrix::from_fn(60, 2, |r, c| ((r * 7 + c * 13) % 60) as f64 / 59.0);
//! let y = DMatrix::from_fn(60, 1, |r, _| (6.0 * x[(r, 0)]).sin() + x[(r, 1)]);
//! let feature = |name: &str| Feature {
//!     name: name.into(),
//!     kind: FeatureKind::Continuous,
//!     raw_min: 0.0,
//!     raw_max: 1.0,
//! };
//! let schema = Schema {
//!     features: vec![feature("a"), feature("b")],
//!     groups: vec![],
//!     target_names: vec!["y".into()],
//! };
//! let data = Dataset::new("toy", x, Targets::Regression(y), schema).unwrap();
//! let property = RelationalProperty::Monotonic {
//!     features: vec![(0, Direction::Increasing)],
//! };
//! let trainer = RelationalParams { hidden: vec![6], epochs: 20, ..Default::default() }
//!     .build()
//!     .unwrap();
//! let model = trainer
//!     .fit(&data, &data, &property, &Enforcement::Projection { split_depth: 2 }, None, &mut |_| {})
//!     .unwrap();
//! assert!(matches!(model.guarantee, Guarantee::Certified { .. }));
//! ```
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use nalgebra::{DMatrix, DVector};
use provenn_bounds::{InputBox, JacobianBounds, RelationalBounds};
use provenn_data::{Dataset, Targets};
use provenn_dsl::ir::{Assignment, Constraint};
use provenn_dsl::{compile, Bindings};
use provenn_milp::{
    Certificate, CertifyOptions, CertifyReport, ConstraintCertifier, MonotonicityCertifier,
    Tightening,
};
use provenn_nn::loss::{BceWithLogits, Loss, Mse, SoftmaxCrossEntropy};
use provenn_nn::optim::{Adam, AdamParams, Optimizer};
use provenn_nn::{Activation, Gradients, Mlp, MlpBuilder};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use crate::last_layer::Guarantee;
use crate::pair_attack::PairAttack;
use crate::TrainError;

/// Direction of a monotonicity constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `x'_i ≥ x_i ⇒ f(x') ≥ f(x)`.
    Increasing,
    /// `x'_i ≥ x_i ⇒ f(x') ≤ f(x)`.
    Decreasing,
}

impl Direction {
    fn sign(self) -> f64 {
        match self {
            Direction::Increasing => 1.0,
            Direction::Decreasing => -1.0,
        }
    }
}

/// A global relational property over pairs of (scaled) inputs anywhere in the domain, on every
/// network output (the logit for binary classification).
#[derive(Debug, Clone, PartialEq)]
pub enum RelationalProperty {
    /// Monotone in each listed feature, the others held equal.
    Monotonic {
        /// Features and directions.
        features: Vec<(usize, Direction)>,
    },
    /// `|x_j − x'_j| ≤ delta` for every feature ⇒ `|f_k(x) − f_k(x')| ≤ epsilon` for every output.
    Robust {
        /// Input radius (scaled units).
        delta: f64,
        /// Output tolerance (target units; logits for classification).
        epsilon: f64,
    },
    /// Inputs equal except the sensitive features ⇒ `|f_k(x) − f_k(x')| ≤ epsilon`.
    Fair {
        /// Sensitive features.
        sensitive: Vec<usize>,
        /// Output tolerance (target units; logits for classification).
        epsilon: f64,
    },
}

impl RelationalProperty {
    /// Checks the property against the input and output counts.
    pub fn validate(&self, n_inputs: usize) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidParams(m));
        match self {
            RelationalProperty::Monotonic { features } => {
                if features.is_empty() {
                    return bad("monotonicity needs at least one feature".into());
                }
                for &(i, _) in features {
                    if i >= n_inputs {
                        return bad(format!("feature {i} is out of range ({n_inputs} inputs)"));
                    }
                }
                let mut seen: Vec<usize> = features.iter().map(|f| f.0).collect();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != features.len() {
                    return bad("a feature is listed twice".into());
                }
            }
            RelationalProperty::Robust { delta, epsilon } => {
                if !(delta.is_finite() && *delta > 0.0 && epsilon.is_finite() && *epsilon > 0.0) {
                    return bad(format!(
                        "robustness needs delta > 0 and epsilon > 0, got {delta}, {epsilon}"
                    ));
                }
            }
            RelationalProperty::Fair { sensitive, epsilon } => {
                if sensitive.is_empty() || sensitive.iter().any(|&i| i >= n_inputs) {
                    return bad(format!(
                        "fairness needs sensitive features in 0..{n_inputs}, got {sensitive:?}"
                    ));
                }
                if !(epsilon.is_finite() && *epsilon > 0.0) {
                    return bad(format!("fairness needs epsilon > 0, got {epsilon}"));
                }
            }
        }
        Ok(())
    }

    /// The property in the constraint language, over scaled inputs `x[j]` and outputs `y[k]`
    /// (one constraint per monotone feature). These are what the certifier checks.
    pub fn to_dsl(&self, n_inputs: usize, n_outputs: usize) -> Vec<String> {
        let outputs =
            |f: &dyn Fn(usize) -> String| (0..n_outputs).map(f).collect::<Vec<_>>().join(" and ");
        match self {
            RelationalProperty::Monotonic { features } => features
                .iter()
                .map(|&(i, dir)| {
                    let cmp = match dir {
                        Direction::Increasing => ">=",
                        Direction::Decreasing => "<=",
                    };
                    format!(
                        "forall x, x2: x2[{i}] >= x[{i}] and same(x, x2, except [x{i}]) => {}",
                        outputs(&|k| format!("y2[{k}] {cmp} y[{k}]"))
                    )
                })
                .collect(),
            RelationalProperty::Robust { delta, epsilon } => {
                let near = (0..n_inputs)
                    .map(|j| format!("abs(x[{j}] - x2[{j}]) <= {delta:e}"))
                    .collect::<Vec<_>>()
                    .join(" and ");
                vec![format!(
                    "forall x, x2: {near} => {}",
                    outputs(&|k| format!("abs(y[{k}] - y2[{k}]) <= {epsilon:e}"))
                )]
            }
            RelationalProperty::Fair { sensitive, epsilon } => {
                let except = sensitive
                    .iter()
                    .map(|i| format!("x{i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![format!(
                    "forall x, x2: same(x, x2, except [{except}]) => {}",
                    outputs(&|k| format!("abs(y[{k}] - y2[{k}]) <= {epsilon:e}"))
                )]
            }
        }
    }

    /// Compiles [`RelationalProperty::to_dsl`] over `domain`.
    pub fn constraints(
        &self,
        domain: &InputBox,
        n_outputs: usize,
    ) -> Result<Vec<Constraint>, TrainError> {
        let dom: Vec<(f64, f64)> = domain.intervals();
        let bindings = Bindings::anonymous(&dom, n_outputs);
        let mut out = Vec::new();
        for src in self.to_dsl(domain.dim(), n_outputs) {
            out.extend(compile(&src, &bindings).map_err(|e| {
                TrainError::Failed(format!("property does not compile ({src}): {e}"))
            })?);
        }
        Ok(out)
    }
}

/// How the property is enforced during training.
#[derive(Debug, Clone, PartialEq)]
pub enum Enforcement {
    /// Nothing: the unconstrained network (still certified, to show what it violates).
    None,
    /// provenn's method: project the last layer onto the weights that satisfy the property over
    /// relational latent boxes of `2^split_depth` sub-boxes of the domain.
    Projection {
        /// Bisections of the domain.
        split_depth: usize,
    },
    /// Soft baseline: squared violations on pairs sampled around each batch, times `weight`.
    PairPenalty {
        /// Penalty weight λ.
        weight: f64,
    },
    /// Monotone by construction: weights from the monotone features signed by their direction,
    /// every later weight non-negative (ReLU is monotone), enforced by clipping after each step.
    NonNegative,
    /// Globally robust by construction: rows of every weight matrix rescaled after each step so
    /// that `∏_l ‖W_l‖_∞ ≤ ε/δ` (ReLU is 1-Lipschitz, so `|Δf| ≤ ε` when `‖Δx‖∞ ≤ δ`).
    LipschitzBounded,
}

impl Enforcement {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Enforcement::None => "ffn",
            Enforcement::Projection { .. } => "provenn-projection",
            Enforcement::PairPenalty { .. } => "pair-penalty",
            Enforcement::NonNegative => "non-negative",
            Enforcement::LipschitzBounded => "lipschitz",
        }
    }
}

/// Hyper-parameters of [`RelationalTrainer`], validated by [`RelationalParams::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct RelationalParams {
    /// Hidden widths (ReLU).
    pub hidden: Vec<usize>,
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Stop after this many epochs without validation improvement.
    pub patience: usize,
    /// Projections per epoch besides the one at its end (0: only at the end).
    pub projections_per_epoch: usize,
    /// Independent trainings from different initialisations (seed, seed + 1,000,003, …); the
    /// one with the lowest validation loss is kept and certified. Selection uses validation
    /// data only, never the test set.
    pub restarts: usize,
    /// Time limit per certifier call.
    pub certify_time_limit: Duration,
    /// The certifier splits the domain into `2^certify_split_depth` boxes (one MILP each).
    pub certify_split_depth: usize,
    /// The certifier's neuron-bound tightening.
    pub certify_tightening: Tightening,
    /// Bisections of a box the certifier's MILPs leave undecided
    /// ([`RelationalCertifier::refine_depth`]).
    pub certify_refine_depth: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for RelationalParams {
    fn default() -> Self {
        RelationalParams {
            hidden: vec![16, 16],
            epochs: 300,
            batch_size: 32,
            learning_rate: 1e-2,
            weight_decay: 0.0,
            patience: 40,
            projections_per_epoch: 1,
            restarts: 1,
            certify_time_limit: Duration::from_secs(120),
            certify_split_depth: 0,
            certify_tightening: Tightening::None,
            certify_refine_depth: 2,
            seed: 0,
        }
    }
}

/// A validated [`RelationalParams`].
#[derive(Debug, Clone)]
pub struct RelationalTrainer {
    p: RelationalParams,
}

impl RelationalParams {
    /// Validates the parameters.
    pub fn build(self) -> Result<RelationalTrainer, TrainError> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(TrainError::InvalidParams(
                "at least one hidden layer, every width ≥ 1".into(),
            ));
        }
        if self.epochs == 0 || self.batch_size == 0 || self.patience == 0 || self.restarts == 0 {
            return Err(TrainError::InvalidParams(
                "epochs, batch size, patience and restarts must be ≥ 1".into(),
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::InvalidParams(
                "learning rate must be > 0".into(),
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(TrainError::InvalidParams("weight decay must be ≥ 0".into()));
        }
        if self.certify_split_depth > 16 {
            return Err(TrainError::InvalidParams(
                "certify split depth above 16 (65,536 MILPs per constraint)".into(),
            ));
        }
        if self.certify_refine_depth > 8 {
            return Err(TrainError::InvalidParams(
                "certify refine depth above 8 (256 boxes per undecided one)".into(),
            ));
        }
        if self.certify_time_limit.is_zero() {
            return Err(TrainError::InvalidParams(
                "certify time limit of zero".into(),
            ));
        }
        Ok(RelationalTrainer { p: self })
    }
}

/// Per-epoch progress.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationalEpoch {
    /// Restart from 0 (see [`RelationalParams::restarts`]).
    pub restart: usize,
    /// Epoch from 0 within the restart.
    pub epoch: usize,
    /// Mean training loss (data term).
    pub train_loss: f64,
    /// Validation loss of the epoch's (projected) model.
    pub validation_loss: f64,
    /// Projections so far.
    pub projections: usize,
    /// Time since the start.
    pub elapsed: Duration,
}

/// A trained model and its certificate.
#[derive(Debug, Clone)]
pub struct RelationalModel {
    /// The network, in target units (one logit for binary classification; logits otherwise).
    pub net: Mlp,
    /// The independent certificate of every constraint of the property.
    pub guarantee: Guarantee,
    /// The property in the constraint language (what was certified).
    pub constraints: Vec<String>,
    /// Epochs run by the kept restart.
    pub epochs_run: usize,
    /// Projections of the last layer over all restarts (Projection only).
    pub projections: usize,
    /// Largest relative weight change of one projection, over all restarts.
    pub max_projection_shift: f64,
    /// Training time (without certification).
    pub train_time: Duration,
    /// Certification time.
    pub certify_time: Duration,
    /// Binaries of the certifier's MILPs (all constraints).
    pub certify_binaries: usize,
}

/// What the network is trained to output.
#[derive(Debug, Clone)]
enum Task {
    /// Standardised regression targets: `y = μ + σ·out`.
    Regression { mean: Vec<f64>, scale: Vec<f64> },
    /// Binary classification with one logit (class 1).
    Binary,
    /// Multi-class logits.
    Multi,
}

impl Task {
    fn of(t: &Targets) -> Result<(Task, usize), TrainError> {
        Ok(match t {
            Targets::Regression(y) => {
                let n = y.nrows().max(1) as f64;
                let mut mean = Vec::new();
                let mut scale = Vec::new();
                for c in y.column_iter() {
                    let m = c.sum() / n;
                    let v = c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
                    mean.push(m);
                    scale.push(if v > 0.0 { v.sqrt() } else { 1.0 });
                }
                (Task::Regression { mean, scale }, y.ncols())
            }
            Targets::Classes { n_classes: 2, .. } => (Task::Binary, 1),
            Targets::Classes { n_classes, .. } => (Task::Multi, *n_classes),
            Targets::MultiLabel(_) => {
                return Err(TrainError::InvalidParams(
                    "relational training supports regression and class targets".into(),
                ))
            }
        })
    }
    fn targets(&self, t: &Targets) -> DMatrix<f64> {
        match (self, t) {
            (Task::Regression { mean, scale }, Targets::Regression(y)) => {
                DMatrix::from_fn(y.nrows(), y.ncols(), |r, c| {
                    (y[(r, c)] - mean[c]) / scale[c]
                })
            }
            (Task::Binary, Targets::Classes { labels, .. }) => {
                DMatrix::from_fn(labels.len(), 1, |r, _| labels[r] as f64)
            }
            _ => t.to_matrix(),
        }
    }
    fn loss(&self) -> &'static dyn Loss {
        match self {
            Task::Regression { .. } => &Mse,
            Task::Binary => &BceWithLogits,
            Task::Multi => &SoftmaxCrossEntropy,
        }
    }
    /// Output units per trained unit (the property's tolerances are divided by these).
    fn out_scale(&self, n_out: usize) -> Vec<f64> {
        match self {
            Task::Regression { scale, .. } => scale.clone(),
            _ => vec![1.0; n_out],
        }
    }
}

/// One projection row: `∀u ∈ [lo, hi]: sign·w_k·u ≥ rhs`.
#[derive(Debug, Clone)]
struct Row {
    output: usize,
    sign: f64,
    lo: Vec<f64>,
    hi: Vec<f64>,
    rhs: f64,
}

/// `2^depth` boxes covering `domain`, bisecting the free features in turn.
fn sub_boxes(domain: &InputBox, depth: usize) -> Result<Vec<InputBox>, TrainError> {
    let free: Vec<usize> = (0..domain.dim())
        .filter(|&j| domain.upper()[j] > domain.lower()[j])
        .collect();
    let mut boxes = vec![domain.clone()];
    if free.is_empty() {
        return Ok(boxes);
    }
    for d in 0..depth {
        let j = free[d % free.len()];
        let mut next = Vec::with_capacity(boxes.len() * 2);
        for b in boxes {
            let (lower, upper) = bisect(&b, j)?;
            next.push(lower);
            next.push(upper);
        }
        boxes = next;
    }
    Ok(boxes)
}

/// The projection rows of `property` for the current hidden layers.
fn projection_rows(
    net: &Mlp,
    property: &RelationalProperty,
    domain: &InputBox,
    boxes: &[InputBox],
    out_scale: &[f64],
) -> Result<Vec<Row>, TrainError> {
    let n_out = net.n_outputs();
    let last = net.layers().len() - 1;
    let mut rows = Vec::new();
    for b in boxes {
        match property {
            RelationalProperty::Monotonic { features } => {
                for &(i, dir) in features {
                    let col = JacobianBounds.column(net, b, i)?;
                    for k in 0..n_out {
                        rows.push(Row {
                            output: k,
                            sign: dir.sign(),
                            lo: col.latent.lower.clone(),
                            hi: col.latent.upper.clone(),
                            rhs: 0.0,
                        });
                    }
                }
            }
            RelationalProperty::Robust { .. } | RelationalProperty::Fair { .. } => {
                let n = domain.dim();
                let (mut lo, mut hi) = (b.lower().to_vec(), b.upper().to_vec());
                let (mut dlo, mut dhi) = (vec![0.0; n], vec![0.0; n]);
                let epsilon = match property {
                    RelationalProperty::Robust { delta, epsilon } => {
                        // x in the sub-box and x' within δ of it: both lie in the sub-box
                        // grown by δ (clipped to the domain).
                        for j in 0..n {
                            if domain.upper()[j] > domain.lower()[j] {
                                lo[j] = (lo[j] - delta).max(domain.lower()[j]);
                                hi[j] = (hi[j] + delta).min(domain.upper()[j]);
                                dlo[j] = -delta;
                                dhi[j] = *delta;
                            }
                        }
                        *epsilon
                    }
                    RelationalProperty::Fair { sensitive, epsilon } => {
                        for &s in sensitive {
                            lo[s] = domain.lower()[s];
                            hi[s] = domain.upper()[s];
                            dlo[s] = lo[s] - hi[s];
                            dhi[s] = hi[s] - lo[s];
                        }
                        *epsilon
                    }
                    RelationalProperty::Monotonic { .. } => unreachable!(),
                };
                let r = RelationalBounds.bounds(
                    net,
                    &InputBox::new(lo, hi)?,
                    &InputBox::new(dlo.clone(), dhi.clone())?,
                )?;
                let mut zlo = r.delta[last - 1].lower.clone();
                let mut zhi = r.delta[last - 1].upper.clone();
                for &j in net.skip_features() {
                    zlo.push(dlo[j]);
                    zhi.push(dhi[j]);
                }
                for (k, s) in out_scale.iter().enumerate() {
                    for sign in [1.0, -1.0] {
                        rows.push(Row {
                            output: k,
                            sign,
                            lo: zlo.clone(),
                            hi: zhi.clone(),
                            rhs: -epsilon / s,
                        });
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// How much the last layer's weights satisfy `row` by, with the rounding of the `f64` sum
/// bounded (negative: the row fails).
fn row_slack(w: &DMatrix<f64>, row: &Row) -> f64 {
    let n = row.lo.len();
    let (mut s, mut mag) = (0.0, 0.0);
    for j in 0..n {
        let c = row.sign * w[(row.output, j)];
        s += (c * row.lo[j]).min(c * row.hi[j]);
        mag += c.abs() * row.lo[j].abs().max(row.hi[j].abs());
    }
    // γ_n ≤ (n + 2)·2⁻⁵³ for the sum and the products; pad generously.
    let err = (n as f64 + 16.0) * f64::EPSILON * mag + 1e-300;
    s - err - row.rhs
}

/// Projects the last layer onto `rows` (closest weights in the Euclidean norm, biases kept).
/// Returns the relative shift of the weights.
///
/// Active set: the QP only takes the rows in `working` (indices into `rows`, kept between calls
/// because consecutive projections are alike) plus the few worst rows the current weights
/// violate; the worst rows the solution violates are added and the QP solved again. Projecting onto fewer rows gives the
/// closest point of a larger set, so once that point passes every row it is the projection
/// onto all of them.
fn project(net: &mut Mlp, rows: &[Row], working: &mut Vec<usize>) -> Result<f64, TrainError> {
    let last = net.layers().len() - 1;
    let w0 = net.layers()[last].weights().clone();
    // Failing rows, worst first.
    let failing = |w: &DMatrix<f64>| -> Vec<usize> {
        let mut f: Vec<(f64, usize)> = (0..rows.len())
            .map(|i| (row_slack(w, &rows[i]), i))
            .filter(|&(s, _)| s.is_nan() || s < 0.0)
            .collect();
        f.sort_by(|a, b| a.0.total_cmp(&b.0));
        f.into_iter().map(|(_, i)| i).collect()
    };
    // Rows added per round: the projection onto the worst few usually fixes the rest.
    const ADD: usize = 4;
    let violated = failing(&w0);
    if violated.is_empty() {
        return Ok(0.0);
    }
    working.retain(|&i| i < rows.len());
    working.extend(violated.into_iter().take(ADD));
    working.sort_unstable();
    working.dedup();
    let mut margin = 1e-9;
    let mut margin_raises = 0;
    loop {
        let subset: Vec<&Row> = working.iter().map(|&i| &rows[i]).collect();
        let w = solve_projection(&w0, &subset, margin)?;
        let failed = failing(&w);
        if failed.is_empty() {
            let shift = (&w - &w0).norm() / w0.norm().max(1e-12);
            // Keep the rows the solution is tight on for the next call.
            let scale = 1e-6 * (1.0 + w.amax());
            working.retain(|&i| row_slack(&w, &rows[i]) <= scale + margin);
            net.layer_mut(last).set_weights(w)?;
            return Ok(shift);
        }
        let outside: Vec<usize> = failed
            .iter()
            .copied()
            .filter(|i| working.binary_search(i).is_err())
            .take(ADD)
            .collect();
        if outside.is_empty() {
            // The interior-point solution sits within tolerance of the boundary of a row it
            // was given: ask for more.
            margin_raises += 1;
            if margin_raises >= 6 {
                return Err(TrainError::Failed(
                    "the projected weights do not pass the f64 row check".into(),
                ));
            }
            margin *= 100.0;
        } else {
            working.extend(outside);
            working.sort_unstable();
        }
    }
}

/// The closest weights to `w0` that satisfy `rows` with `margin` (one clarabel QP).
fn solve_projection(
    w0: &DMatrix<f64>,
    rows: &[&Row],
    margin: f64,
) -> Result<DMatrix<f64>, TrainError> {
    let (n_out, n_z) = w0.shape();
    let n_w = n_out * n_z;
    let wi = |k: usize, j: usize| k * n_z + j;
    // Variables: weights, then one auxiliary per (row, term with lo < hi).
    let (mut ai, mut aj, mut av, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut n_var = n_w;
    let mut r = 0;
    for row in rows {
        // Σ_j t_j ≥ rhs + margin  ⇔  −Σ t_j − Σ_fixed σ w lo ≤ −(rhs + margin)
        let sum_row = r;
        r += 1;
        b.push(-(row.rhs + margin));
        for j in 0..n_z {
            let (l, h) = (row.lo[j], row.hi[j]);
            let wv = wi(row.output, j);
            if l == h {
                if l != 0.0 {
                    ai.push(sum_row);
                    aj.push(wv);
                    av.push(-row.sign * l);
                }
                continue;
            }
            let t = n_var;
            n_var += 1;
            ai.push(sum_row);
            aj.push(t);
            av.push(-1.0);
            for e in [l, h] {
                // t ≤ σ w e  ⇔  t − σ e w ≤ 0
                ai.push(r);
                aj.push(t);
                av.push(1.0);
                ai.push(r);
                aj.push(wv);
                av.push(-row.sign * e);
                b.push(0.0);
                r += 1;
            }
        }
    }
    let a = CscMatrix::new_from_triplets(r, n_var, ai, aj, av);
    let p = CscMatrix::new_from_triplets(
        n_var,
        n_var,
        (0..n_w).collect(),
        (0..n_w).collect(),
        vec![1.0; n_w],
    );
    let mut q = vec![0.0; n_var];
    for k in 0..n_out {
        for j in 0..n_z {
            q[wi(k, j)] = -w0[(k, j)];
        }
    }
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(1e-10)
        .tol_gap_rel(1e-10)
        .tol_feas(1e-10)
        .build()
        .map_err(|e| TrainError::Failed(format!("clarabel settings: {e:?}")))?;
    let cones = [SupportedConeT::NonnegativeConeT(r)];
    let mut solver = DefaultSolver::new(&p, &q, &a, &b, &cones, settings)
        .map_err(|e| TrainError::Failed(format!("clarabel: {e:?}")))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        s => {
            return Err(TrainError::Failed(format!(
                "the projection QP ended with {s:?}"
            )))
        }
    }
    let x = &solver.solution.x;
    Ok(DMatrix::from_fn(n_out, n_z, |k, j| x[wi(k, j)]))
}

/// Certifies a network against a [`RelationalProperty`] with provenn-milp's exact MILPs over
/// the whole network — encodings independent of the trainer's latent boxes.
///
/// Monotonicity is certified by [`MonotonicityCertifier`]: one copy of the network with its
/// phase binaries and its directional derivative `∂f/∂x_i` propagated through the phases; a
/// minimum of `σ·∂f/∂x_i` above `−tolerance/width` bounds every pair's decrease (the network is
/// piecewise linear and continuous). Where that MILP finds a negative derivative that no pair
/// through its point confirms in `f64`, the two-copy MILP decides. Robustness and fairness use
/// the two-copy MILP of [`ConstraintCertifier`] on the property compiled from the constraint
/// language.
///
/// The domain is split into `2^split_depth` boxes `B`; each MILP takes the first copy in `B`
/// and the second in the smallest box that holds every admissible partner of a point of `B`
/// (robustness: `B` grown by `δ`; fairness: `B` with the sensitive features over their whole
/// range). The boxes cover the domain, so the certificates together cover every admissible
/// pair; smaller boxes leave fewer unstable ReLUs, hence faster MILPs. A box whose MILPs end
/// "unknown" (also after a retry with MILP-tightened neuron bounds) is bisected, up to
/// `refine_depth` times, along the axis that moves the first layer most, excluding the
/// monotone feature of its constraint and sensitive features.
///
/// Monotonicity needs less: both copies stay in `B`. A pair `x ≤ x′` that differs in `x_i`
/// only runs along a segment parallel to axis `i`; the boxes' faces cut it into pieces that
/// each lie in one (closed) box, so `f(x) ≤ f(p₁) ≤ … ≤ f(x′)` through the cut points. A piece
/// ends only where a box ends, so there are at most `k` = 1 + (distinct upper faces along `i`)
/// pieces, and a proven slack of `−τ` per piece becomes `−kτ`, which the reported margin
/// accounts for.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationalCertifier {
    /// Bisections of the domain.
    pub split_depth: usize,
    /// Limit per MILP; reaching it means "not certified".
    pub time_limit: Duration,
    /// Neuron-bound tightening before each MILP (an "unknown" is retried once with MILP
    /// tightening).
    pub tightening: Tightening,
    /// How many times a box whose MILPs ended "unknown" may be bisected again (0: never).
    /// The halves cover the box, so their certificates together are the box's.
    pub refine_depth: usize,
    /// A gradient attack run before the MILPs: a pair it finds that breaks a compiled
    /// constraint in `f64` by more than the certifier's tolerance settles the question (a
    /// counterexample needs no proof) and spares the MILPs.
    pub attack: Option<PairAttack>,
}

/// What [`RelationalCertifier::certify`] found.
#[derive(Debug, Clone)]
pub struct RelationalCertificate {
    /// Certified for every pair, or why not (a re-validated witness, or a limit).
    pub guarantee: Guarantee,
    /// The witness pair when one was found: `(x, x2, violation)`.
    pub witness: Option<(Vec<f64>, Vec<f64>, f64)>,
    /// Solver calls (neuron-bound tightening included).
    pub milps: usize,
    /// Binaries over all MILPs.
    pub binaries: usize,
    /// Undecided boxes that were bisected (see [`RelationalCertifier::refine_depth`]).
    pub bisections: usize,
}

impl RelationalCertifier {
    /// Certifies `net` for `property` over `domain`.
    pub fn certify(
        &self,
        net: &Mlp,
        property: &RelationalProperty,
        domain: &InputBox,
    ) -> Result<RelationalCertificate, TrainError> {
        property.validate(domain.dim())?;
        let constraints = property.constraints(domain, net.n_outputs())?;
        if let RelationalProperty::Monotonic { features } = property {
            // One compiled constraint per feature, in order (the second box depends on it).
            if constraints.len() != features.len() {
                return Err(TrainError::Failed(format!(
                    "{} monotone features compiled to {} constraints",
                    features.len(),
                    constraints.len()
                )));
            }
        }
        let certifier = ConstraintCertifier::new(CertifyOptions {
            time_limit: Some(self.time_limit),
            tightening: self.tightening,
            ..CertifyOptions::default()
        })?;
        if let Some(attack) = &self.attack {
            let a = attack.run(net, property, domain)?;
            let y = |p: &[f64]| -> Result<Vec<f64>, TrainError> {
                Ok(net
                    .forward(&DVector::from_column_slice(p))?
                    .iter()
                    .copied()
                    .collect())
            };
            let (y1, y2) = (y(&a.x)?, y(&a.x2)?);
            let assignment = Assignment {
                x: &a.x,
                y: &y1,
                x2: &a.x2,
                y2: &y2,
            };
            let broken = constraints.iter().any(|c| !c.holds(&assignment));
            if broken && a.violation > certifier.options().tolerance {
                return Ok(RelationalCertificate {
                    guarantee: Guarantee::NotCertified {
                        reason: format!(
                            "violated by {:.3e} at x = {:?}, x2 = {:?} (outputs {y1:?}, {y2:?}; \
                             found by the gradient attack)",
                            a.violation, a.x, a.x2
                        ),
                    },
                    witness: Some((a.x, a.x2, a.violation)),
                    milps: 0,
                    binaries: 0,
                    bisections: 0,
                });
            }
        }
        let tight = ConstraintCertifier::new(CertifyOptions {
            time_limit: Some(self.time_limit),
            tightening: Tightening::Milp,
            ..CertifyOptions::default()
        })?;
        let derivative = MonotonicityCertifier::new(certifier.options().clone())?;
        let derivative_tight = MonotonicityCertifier::new(tight.options().clone())?;
        let solve = |ci: usize, first: &InputBox| -> Result<Solved, TrainError> {
            // Monotonicity: the derivative MILP (one copy and its phases; it calls the
            // two-copy MILP itself where only that can refute); the rest: the two-copy MILP.
            let run = |tightened: bool| -> Result<CertifyReport, TrainError> {
                Ok(match property {
                    RelationalProperty::Monotonic { features } => {
                        let (i, d) = features[ci];
                        let m = if tightened {
                            &derivative_tight
                        } else {
                            &derivative
                        };
                        m.certify_on(net, i, d == Direction::Increasing, first)?
                    }
                    _ => {
                        let m = if tightened { &tight } else { &certifier };
                        let second = partner_box(property, domain, first)?;
                        m.certify_on(net, &constraints[ci], first, &second)?
                    }
                })
            };
            let mut report = run(false)?;
            let (mut milps, mut binaries) = (report.solves, 0);
            if matches!(report.certificate, Certificate::Unknown { .. })
                && self.tightening != Tightening::Milp
            {
                // Loose big-M constants let the solver's tolerances fake a tiny violation
                // (monotonicity's optimum is exactly 0, at x = x2); tightened neuron bounds
                // often settle it.
                binaries += report.neuron_binaries;
                report = run(true)?;
                milps += report.solves;
            }
            binaries += report.neuron_binaries;
            Ok(Solved {
                milps,
                binaries,
                certificate: report.certificate,
            })
        };
        self.certify_with(net, property, domain, constraints.len(), &solve)
    }

    /// The MILP jobs of [`RelationalCertifier::certify`] with the per-box solve passed in
    /// (tests pass one that refuses large boxes, to exercise the bisection).
    fn certify_with(
        &self,
        net: &Mlp,
        property: &RelationalProperty,
        domain: &InputBox,
        n_constraints: usize,
        solve: &SolveBox<'_>,
    ) -> Result<RelationalCertificate, TrainError> {
        let boxes = sub_boxes(domain, self.split_depth)?;
        // One job per (sub-box, constraint): the first copy in the sub-box, the second in the
        // box of its admissible partners ([`partner_box`]).
        let jobs: Vec<(usize, &InputBox)> = boxes
            .iter()
            .flat_map(|b| (0..n_constraints).map(move |ci| (ci, b)))
            .collect();
        // The MILPs are independent and HiGHS runs single-threaded: solve them in parallel,
        // skipping the ones not yet started once any has failed.
        let failed = AtomicBool::new(false);
        let first_layer = net.layers()[0].weights();
        let axis = |ci: usize, b: &InputBox| bisection_axis(property, first_layer, ci, b);
        let found: Vec<Found> = jobs
            .par_iter()
            .map(|&(ci, b)| self.solve_or_bisect(ci, b.clone(), 0, solve, &axis, &failed))
            .collect::<Result<_, _>>()?;
        let mut out = RelationalCertificate {
            guarantee: Guarantee::Certified {
                margin: f64::INFINITY,
            },
            witness: None,
            milps: 0,
            binaries: 0,
            bisections: 0,
        };
        let mut unknown = None;
        let leaves: Vec<(usize, InputBox, Certificate)> = found
            .into_iter()
            .flat_map(|f| {
                out.milps += f.milps;
                out.binaries += f.binaries;
                out.bisections += f.bisections;
                f.leaves
            })
            .collect();
        // A monotone pair runs along a segment parallel to its feature's axis; the boxes'
        // faces cut it into pieces, each inside one closed box, and each piece's slack adds
        // up: a negative proven margin (within the tolerance) counts once per piece. A piece
        // ends only where a box ends, so there are at most 1 + (distinct upper faces below
        // the domain's) pieces — bisections across other axes add none.
        let pieces = |ci: usize| -> f64 {
            match property {
                RelationalProperty::Monotonic { features } => {
                    let i = features[ci].0;
                    let mut faces: Vec<f64> = leaves
                        .iter()
                        .filter(|l| l.0 == ci && l.1.upper()[i] < domain.upper()[i])
                        .map(|l| l.1.upper()[i])
                        .collect();
                    faces.sort_by(f64::total_cmp);
                    faces.dedup();
                    1.0 + faces.len() as f64
                }
                _ => 1.0,
            }
        };
        for (ci, _, certificate) in &leaves {
            match certificate {
                Certificate::Certified { margin } => {
                    let margin = if *margin < 0.0 {
                        margin * pieces(*ci)
                    } else {
                        *margin
                    };
                    if let Guarantee::Certified { margin: m } = &mut out.guarantee {
                        *m = m.min(margin);
                    }
                }
                // The first witness in job order wins; a witness outranks an unknown.
                Certificate::Violated(w) if out.witness.is_none() => {
                    out.guarantee = Guarantee::NotCertified {
                        reason: format!(
                            "violated by {:.3e} at x = {:?}, x2 = {:?} (outputs {:?}, {:?})",
                            w.violation, w.x, w.x2, w.y, w.y2
                        ),
                    };
                    out.witness = Some((w.x.clone(), w.x2.clone(), w.violation));
                }
                Certificate::Violated(_) => {}
                Certificate::Unknown { reason } => {
                    unknown.get_or_insert_with(|| reason.clone());
                }
            }
        }
        if out.witness.is_none() {
            if let Some(reason) = unknown {
                out.guarantee = Guarantee::NotCertified { reason };
            } else if failed.load(Ordering::Relaxed) {
                // Unreachable: a failing job always leaves a witness or a reason.
                out.guarantee = Guarantee::NotCertified {
                    reason: "certification failed".into(),
                };
            }
        }
        Ok(out)
    }

    /// Solves one (constraint, box) job; an "unknown" is bisected (both halves in parallel)
    /// while `refine_depth` allows, since smaller boxes leave fewer unstable ReLUs.
    fn solve_or_bisect(
        &self,
        ci: usize,
        first: InputBox,
        level: usize,
        solve: &SolveBox<'_>,
        axis: &(dyn Fn(usize, &InputBox) -> Option<usize> + Sync),
        failed: &AtomicBool,
    ) -> Result<Found, TrainError> {
        let mut found = Found::default();
        if failed.load(Ordering::Relaxed) {
            return Ok(found);
        }
        let s = solve(ci, &first)?;
        found.milps += s.milps;
        found.binaries += s.binaries;
        let unknown = matches!(s.certificate, Certificate::Unknown { .. });
        let split = if unknown && level < self.refine_depth {
            axis(ci, &first)
        } else {
            None
        };
        let Some(j) = split else {
            if !matches!(s.certificate, Certificate::Certified { .. }) {
                failed.store(true, Ordering::Relaxed);
            }
            found.leaves.push((ci, first, s.certificate));
            return Ok(found);
        };
        let (lower, upper) = bisect(&first, j)?;
        let (a, b) = rayon::join(
            || self.solve_or_bisect(ci, lower, level + 1, solve, axis, failed),
            || self.solve_or_bisect(ci, upper, level + 1, solve, axis, failed),
        );
        found.bisections += 1;
        for half in [a?, b?] {
            found.milps += half.milps;
            found.binaries += half.binaries;
            found.bisections += half.bisections;
            found.leaves.extend(half.leaves);
        }
        Ok(found)
    }
}

/// What one (constraint, box) solve gave: MILPs, binaries, and the certificate.
struct Solved {
    milps: usize,
    binaries: usize,
    certificate: Certificate,
}

/// The per-box solve of [`RelationalCertifier`]: constraint index and first copy's box.
type SolveBox<'a> = dyn Fn(usize, &InputBox) -> Result<Solved, TrainError> + Sync + 'a;

/// What a job and its bisections found: the final boxes with their certificates.
#[derive(Default)]
struct Found {
    leaves: Vec<(usize, InputBox, Certificate)>,
    milps: usize,
    binaries: usize,
    bisections: usize,
}

/// The smallest box holding every admissible partner `x2` of a point `x` of `first`.
fn partner_box(
    property: &RelationalProperty,
    domain: &InputBox,
    first: &InputBox,
) -> Result<InputBox, TrainError> {
    let (mut lo, mut hi) = (first.lower().to_vec(), first.upper().to_vec());
    match property {
        // Monotonicity is transitive: pairs inside one box suffice (see
        // [`RelationalCertifier`]), so the second copy stays in `first`.
        RelationalProperty::Monotonic { .. } => {}
        RelationalProperty::Robust { delta, .. } => {
            for j in 0..lo.len() {
                lo[j] = (lo[j] - delta).max(domain.lower()[j]);
                hi[j] = (hi[j] + delta).min(domain.upper()[j]);
            }
        }
        RelationalProperty::Fair { sensitive, .. } => {
            for &s in sensitive {
                lo[s] = domain.lower()[s];
                hi[s] = domain.upper()[s];
            }
        }
    }
    Ok(InputBox::new(lo, hi)?)
}

/// The axis to bisect an undecided box along: the one that moves the first layer's
/// pre-activations most (width times the column's absolute weight sum), excluding axes a
/// bisection cannot help or would break: a monotone feature (both copies move along it, and
/// the margin accounting counts its cuts) and sensitive features (the second copy spans them
/// anyway). `None` when no axis is left.
fn bisection_axis(
    property: &RelationalProperty,
    first_layer: &DMatrix<f64>,
    ci: usize,
    b: &InputBox,
) -> Option<usize> {
    let excluded: Vec<usize> = match property {
        RelationalProperty::Monotonic { features } => vec![features[ci].0],
        RelationalProperty::Robust { .. } => vec![],
        RelationalProperty::Fair { sensitive, .. } => sensitive.clone(),
    };
    (0..b.dim())
        .filter(|j| !excluded.contains(j))
        .map(|j| {
            let width = b.upper()[j] - b.lower()[j];
            let weight: f64 = first_layer.column(j).iter().map(|w| w.abs()).sum();
            (j, width * weight)
        })
        .filter(|&(_, score)| score > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(j, _)| j)
}

/// `b` cut in two at the middle of axis `j` (lower half first).
fn bisect(b: &InputBox, j: usize) -> Result<(InputBox, InputBox), TrainError> {
    let (l, u) = (b.lower()[j], b.upper()[j]);
    let m = l + (u - l) / 2.0;
    let (mut lo, mut hi) = (b.lower().to_vec(), b.upper().to_vec());
    hi[j] = m;
    let lower = InputBox::new(lo.clone(), hi)?;
    lo[j] = m;
    Ok((lower, InputBox::new(lo, b.upper().to_vec())?))
}

/// Makes the network monotone by construction (see [`Enforcement::NonNegative`]).
fn clip_non_negative(net: &mut Mlp, features: &[(usize, Direction)]) {
    let monotone: Vec<(usize, f64)> = features.iter().map(|&(i, d)| (i, d.sign())).collect();
    let skip: Vec<usize> = net.skip_features().to_vec();
    let last = net.layers().len() - 1;
    for l in 0..net.layers().len() {
        let layer = net.layer_mut(l);
        let mut w = layer.weights_mut();
        let h = if l == last {
            w.ncols() - skip.len()
        } else {
            w.ncols()
        };
        for j in 0..w.ncols() {
            // Which input, if any, this column reads directly.
            let input = if l == 0 {
                Some(j)
            } else if j >= h {
                Some(skip[j - h])
            } else {
                None
            };
            let sign = match input {
                None => Some(1.0),
                Some(i) => monotone.iter().find(|m| m.0 == i).map(|m| m.1),
            };
            if let Some(s) = sign {
                for r in 0..w.nrows() {
                    if w[(r, j)] * s < 0.0 {
                        w[(r, j)] = 0.0;
                    }
                }
            }
        }
    }
}

/// Rescales weight rows so that `∏ ‖W_l‖_∞ ≤ bound` (see [`Enforcement::LipschitzBounded`]).
fn clip_lipschitz(net: &mut Mlp, bound: f64) {
    let per_layer = bound.powf(1.0 / net.layers().len() as f64);
    for l in 0..net.layers().len() {
        let layer = net.layer_mut(l);
        let mut w = layer.weights_mut();
        for r in 0..w.nrows() {
            let s: f64 = w.row(r).iter().map(|v| v.abs()).sum();
            if s > per_layer {
                // Slightly inside, so the product's rounding cannot exceed the bound.
                let f = per_layer / s * (1.0 - 1e-12);
                for v in w.row_mut(r).iter_mut() {
                    *v *= f;
                }
            }
        }
    }
}

/// `Σ c ⊙ out` as a loss: its gradient w.r.t. the outputs is the fixed coefficient matrix.
struct LinearTerm;

impl Loss for LinearTerm {
    fn sum_and_gradient(&self, pred: &DMatrix<f64>, coef: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
        (pred.component_mul(coef).sum(), coef.clone())
    }
    fn normaliser(&self, _: usize, _: usize) -> f64 {
        1.0
    }
}

/// The gradient of `weight · mean_r Σ_k v_rk²` over sampled pairs, where `v` is the
/// property's violation on the pair.
fn pair_penalty_gradient(
    net: &Mlp,
    property: &RelationalProperty,
    xb: &DMatrix<f64>,
    domain: &InputBox,
    out_scale: &[f64],
    weight: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Gradients, TrainError> {
    let (m, n) = xb.shape();
    let mut x2 = xb.clone();
    let (lo, hi) = (domain.lower(), domain.upper());
    // The direction of the monotone feature each pair moves (monotonicity only).
    let mut sign = vec![1.0f64; m];
    for r in 0..m {
        match property {
            RelationalProperty::Monotonic { features } => {
                let (i, d) = features[rng.gen_range(0..features.len())];
                sign[r] = d.sign();
                x2[(r, i)] = rng.gen_range(xb[(r, i)]..=hi[i].max(xb[(r, i)]));
            }
            RelationalProperty::Robust { delta, .. } => {
                for j in 0..n {
                    x2[(r, j)] = (xb[(r, j)] + rng.gen_range(-delta..=*delta)).clamp(lo[j], hi[j]);
                }
            }
            RelationalProperty::Fair { sensitive, .. } => {
                for &s in sensitive {
                    x2[(r, s)] = if rng.gen_bool(0.5) { lo[s] } else { hi[s] };
                }
            }
        }
    }
    let f1 = net.forward_batch(xb)?;
    let f2 = net.forward_batch(&x2)?;
    let k = f1.ncols();
    let mut c1 = DMatrix::zeros(m, k);
    let mut c2 = DMatrix::zeros(m, k);
    let scale = weight / m as f64;
    for r in 0..m {
        for o in 0..k {
            let d = f2[(r, o)] - f1[(r, o)];
            match property {
                RelationalProperty::Monotonic { .. } => {
                    // violation s·(f1 − f2) > 0 for a pair that should satisfy s·(f2 − f1) ≥ 0
                    let s = sign[r];
                    let v = (-s * d).max(0.0);
                    c1[(r, o)] = scale * 2.0 * v * s;
                    c2[(r, o)] = -scale * 2.0 * v * s;
                }
                RelationalProperty::Robust { epsilon, .. }
                | RelationalProperty::Fair { epsilon, .. } => {
                    let v = (d.abs() - epsilon / out_scale[o]).max(0.0);
                    let g = scale * 2.0 * v * d.signum();
                    c1[(r, o)] = -g;
                    c2[(r, o)] = g;
                }
            }
        }
    }
    let (_, mut g) = net.loss_gradient(xb, &c1, &LinearTerm)?;
    let (_, g2) = net.loss_gradient(&x2, &c2, &LinearTerm)?;
    g.add_assign(&g2);
    Ok(g)
}

impl RelationalTrainer {
    /// The parameters.
    pub fn params(&self) -> &RelationalParams {
        &self.p
    }

    /// Trains on `train` with `enforcement`, selecting the epoch (over all
    /// [`restarts`](RelationalParams::restarts)) with the lowest validation loss of the enforced
    /// model, then certifies that one network over `domain` (the scaled data box when `None`).
    /// `on_epoch` sees every epoch (progress bars).
    pub fn fit(
        &self,
        train: &Dataset,
        validation: &Dataset,
        property: &RelationalProperty,
        enforcement: &Enforcement,
        domain: Option<&InputBox>,
        on_epoch: &mut dyn FnMut(&RelationalEpoch),
    ) -> Result<RelationalModel, TrainError> {
        let p = &self.p;
        let n_in = train.n_features();
        property.validate(n_in)?;
        let domain = match domain {
            Some(d) => d.clone(),
            None => InputBox::new(vec![0.0; n_in], vec![1.0; n_in])?,
        };
        let (task, n_out) = Task::of(&train.targets)?;
        let out_scale = task.out_scale(n_out);
        match (enforcement, property) {
            (Enforcement::NonNegative, RelationalProperty::Monotonic { .. })
            | (Enforcement::LipschitzBounded, RelationalProperty::Robust { .. })
            | (Enforcement::None | Enforcement::Projection { .. }, _) => {}
            (Enforcement::PairPenalty { weight }, _) if *weight >= 0.0 && weight.is_finite() => {}
            (e, _) => {
                return Err(TrainError::InvalidParams(format!(
                    "enforcement {} does not apply to {property:?}",
                    e.name()
                )))
            }
        }
        // Monotone features are skip-connected: their exact unit derivative lets the last
        // layer satisfy the property with a margin whatever the hidden layers do.
        let skip: Vec<usize> = match (enforcement, property) {
            (Enforcement::Projection { .. }, RelationalProperty::Monotonic { features }) => {
                let mut s: Vec<usize> = features.iter().map(|f| f.0).collect();
                s.sort_unstable();
                s
            }
            _ => vec![],
        };
        let boxes = match enforcement {
            Enforcement::Projection { split_depth } => sub_boxes(&domain, *split_depth)?,
            _ => vec![],
        };
        let lipschitz = match property {
            RelationalProperty::Robust { delta, epsilon } => {
                // ε in trained units, smallest over the outputs.
                out_scale
                    .iter()
                    .map(|s| epsilon / s)
                    .fold(f64::INFINITY, f64::min)
                    / delta
            }
            _ => f64::INFINITY,
        };
        let enforce_step = |net: &mut Mlp| match (enforcement, property) {
            (Enforcement::NonNegative, RelationalProperty::Monotonic { features }) => {
                clip_non_negative(net, features)
            }
            (Enforcement::LipschitzBounded, _) => clip_lipschitz(net, lipschitz),
            _ => {}
        };
        let projections = std::cell::Cell::new(0usize);
        let max_shift = std::cell::Cell::new(0.0f64);
        let working = std::cell::RefCell::new(Vec::new());
        let enforce_projection = |net: &mut Mlp| -> Result<(), TrainError> {
            if let Enforcement::Projection { .. } = enforcement {
                let rows = projection_rows(net, property, &domain, &boxes, &out_scale)?;
                max_shift.set(
                    max_shift
                        .get()
                        .max(project(net, &rows, &mut working.borrow_mut())?),
                );
                projections.set(projections.get() + 1);
            }
            Ok(())
        };
        let start = Instant::now();
        let y = task.targets(&train.targets);
        let vy = task.targets(&validation.targets);
        let loss = task.loss();
        let n_batches = train.n_rows().div_ceil(p.batch_size);
        let project_at: Vec<usize> = (1..=p.projections_per_epoch)
            .map(|i| i * n_batches / (p.projections_per_epoch + 1))
            .collect();
        // One training from restart `restart`'s initialisation: the validation loss, network
        // and epochs run of its best epoch.
        let mut train_restart = |restart: usize| -> Result<(f64, Mlp, usize), TrainError> {
            // Restart 0 keeps the plain seed, so one restart trains exactly as before.
            let seed = p.seed.wrapping_add(1_000_003 * restart as u64);
            let mut b = MlpBuilder::new(n_in).seed(seed);
            for &w in &p.hidden {
                b = b.hidden(w, Activation::Relu);
            }
            let mut net = b
                .output(n_out, Activation::Identity)
                .skip_features(skip.clone())
                .build()?;
            enforce_step(&mut net);
            // The working set belongs to one network's projections.
            working.borrow_mut().clear();
            let mut opt = Adam::new(AdamParams {
                learning_rate: p.learning_rate,
                weight_decay: p.weight_decay,
                ..Default::default()
            })?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
            let mut order: Vec<usize> = (0..train.n_rows()).collect();
            enforce_projection(&mut net)?;
            let mut best: Option<(f64, Mlp)> = None;
            let mut since_best = 0;
            let mut epochs_run = 0;
            for epoch in 0..p.epochs {
                order.shuffle(&mut rng);
                let mut total = 0.0;
                for (bi, batch) in order.chunks(p.batch_size).enumerate() {
                    let xb = train.x.select_rows(batch);
                    let yb = y.select_rows(batch);
                    let (l, mut grads) = net.loss_gradient(&xb, &yb, loss)?;
                    if let Enforcement::PairPenalty { weight } = enforcement {
                        grads.add_assign(&pair_penalty_gradient(
                            &net, property, &xb, &domain, &out_scale, *weight, &mut rng,
                        )?);
                    }
                    opt.step(&mut net, &grads);
                    enforce_step(&mut net);
                    if project_at.contains(&bi) {
                        enforce_projection(&mut net)?;
                    }
                    total += l * batch.len() as f64;
                }
                enforce_projection(&mut net)?;
                epochs_run = epoch + 1;
                let vl = loss.value(&net.forward_batch(&validation.x)?, &vy);
                on_epoch(&RelationalEpoch {
                    restart,
                    epoch,
                    train_loss: total / train.n_rows() as f64,
                    validation_loss: vl,
                    projections: projections.get(),
                    elapsed: start.elapsed(),
                });
                if best.as_ref().is_none_or(|(b, _)| vl < *b) {
                    best = Some((vl, net.clone()));
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= p.patience {
                        break;
                    }
                }
            }
            let (vl, net) = best.unwrap_or((f64::INFINITY, net));
            Ok((vl, net, epochs_run))
        };
        let mut chosen: Option<(f64, Mlp, usize)> = None;
        for restart in 0..p.restarts {
            let run = train_restart(restart)?;
            if chosen.as_ref().is_none_or(|(b, _, _)| run.0 < *b) {
                chosen = Some(run);
            }
        }
        let (_, mut net, epochs_run) = chosen.expect("restarts ≥ 1 is validated");
        if let Task::Regression { mean, scale } = &task {
            // Back to target units: a positive scaling of each output keeps every property.
            let last = net.layers().len() - 1;
            let layer = net.layer_mut(last);
            let w = DMatrix::from_fn(layer.outputs(), layer.inputs(), |k, j| {
                layer.weights()[(k, j)] * scale[k]
            });
            let bias =
                DVector::from_fn(layer.outputs(), |k, _| layer.bias()[k] * scale[k] + mean[k]);
            layer.set_weights(w)?;
            layer.set_bias(bias)?;
        }
        let train_time = start.elapsed();
        let cstart = Instant::now();
        let cert = RelationalCertifier {
            split_depth: p.certify_split_depth,
            time_limit: p.certify_time_limit,
            tightening: p.certify_tightening,
            refine_depth: p.certify_refine_depth,
            attack: Some(PairAttack {
                starts: 500,
                steps: 30,
                seed: p.seed,
            }),
        }
        .certify(&net, property, &domain)?;
        Ok(RelationalModel {
            net,
            guarantee: cert.guarantee,
            constraints: property.to_dsl(n_in, n_out),
            epochs_run,
            projections: projections.get(),
            max_projection_shift: max_shift.get(),
            train_time,
            certify_time: cstart.elapsed(),
            certify_binaries: cert.binaries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest, ProptestConfig};
    use provenn_milp::{CertifyOptions, ConstraintCertifier};
    use provenn_nn::Dense;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The active-set projection passes every row and equals the projection onto all rows
        /// at once (it is the closest point of the same set), also when a working set carries
        /// over from an earlier call.
        #[test]
        fn active_set_projection_is_the_full_projection(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n_out = rng.gen_range(1..=2);
            let n_z = rng.gen_range(2..=8);
            // A feasible point, so the rows always have a solution.
            let feasible = DMatrix::from_fn(n_out, n_z, |_, _| rng.gen_range(-1.0..1.0));
            let rows: Vec<Row> = (0..rng.gen_range(1..=40))
                .map(|_| {
                    let (mut lo, mut hi) = (Vec::new(), Vec::new());
                    for _ in 0..n_z {
                        let a: f64 = rng.gen_range(-1.0..1.0);
                        let b = if rng.gen_bool(0.2) { a } else { rng.gen_range(-1.0..1.0) };
                        lo.push(a.min(b));
                        hi.push(a.max(b));
                    }
                    let mut row = Row {
                        output: rng.gen_range(0..n_out),
                        sign: if rng.gen_bool(0.5) { 1.0 } else { -1.0 },
                        lo,
                        hi,
                        rhs: 0.0,
                    };
                    row.rhs = row_slack(&feasible, &row) - rng.gen_range(0.01..0.5);
                    row
                })
                .collect();
            let layer = |w: DMatrix<f64>| {
                Mlp::from_layers(
                    n_z,
                    vec![Dense::new(w, DVector::zeros(n_out), Activation::Identity).unwrap()],
                    vec![],
                )
                .unwrap()
            };
            let mut working = Vec::new();
            for round in 0..2 {
                let w0 = DMatrix::from_fn(n_out, n_z, |_, _| rng.gen_range(-3.0..3.0));
                let mut net = layer(w0.clone());
                project(&mut net, &rows, &mut working).unwrap();
                let w = net.layers()[0].weights().clone();
                for (i, r) in rows.iter().enumerate() {
                    prop_assert!(row_slack(&w, r) >= 0.0, "round {round}: row {i} fails");
                }
                let all: Vec<&Row> = rows.iter().collect();
                let full = if rows.iter().all(|r| row_slack(&w0, r) >= 0.0) {
                    w0.clone()
                } else {
                    solve_projection(&w0, &all, 1e-9).unwrap()
                };
                prop_assert!(
                    (&w - &full).norm() <= 1e-5 * (1.0 + w0.norm()),
                    "round {round}: active set {w} vs full {full}"
                );
            }
        }
    }

    /// `clamp(10·(x − 0.5), −0.4, 0.4)` on `[0, 1]` with ‖Δx‖ ≤ 0.1 ⇒ |Δf| ≤ 0.6 fails only
    /// for pairs across `x = 0.5` (a pair inside either half changes by ≤ 0.4): after the
    /// whole domain is refused and bisected at 0.5, the halves' partner boxes must reach
    /// across the face, and the witness must be such a pair.
    #[test]
    fn robust_pairs_across_a_bisection_face_are_checked() {
        let net = Mlp::from_layers(
            1,
            vec![
                Dense::new(
                    DMatrix::from_column_slice(2, 1, &[10.0, 10.0]),
                    DVector::from_column_slice(&[-5.0 + 0.4, -5.0 - 0.4]),
                    Activation::Relu,
                )
                .unwrap(),
                Dense::new(
                    DMatrix::from_row_slice(1, 2, &[1.0, -1.0]),
                    DVector::from_element(1, -0.4),
                    Activation::Identity,
                )
                .unwrap(),
            ],
            vec![],
        )
        .unwrap();
        let property = RelationalProperty::Robust {
            delta: 0.1,
            epsilon: 0.6,
        };
        let domain = InputBox::new(vec![0.0], vec![1.0]).unwrap();
        let constraints = property.constraints(&domain, 1).unwrap();
        let milp = ConstraintCertifier::new(CertifyOptions::default()).unwrap();
        let solve = refusing_solve(&net, &property, &domain, &constraints, &milp, 0.6);
        let cert = RelationalCertifier {
            split_depth: 0,
            time_limit: Duration::from_secs(30),
            tightening: Tightening::None,
            refine_depth: 1,
            attack: None,
        }
        .certify_with(&net, &property, &domain, constraints.len(), &solve)
        .unwrap();
        assert_eq!(cert.bisections, 1);
        let (x, x2, v) = cert.witness.expect("a pair across the face violates");
        assert!((x[0] - 0.5) * (x2[0] - 0.5) < 0.0, "{x:?}, {x2:?}");
        assert!(
            (x[0] - x2[0]).abs() <= 0.1 + 1e-9 && v > 0.1,
            "{x:?}, {x2:?}, {v}"
        );
    }

    /// A per-box solve for [`RelationalCertifier::certify_with`]: "unknown" for a box wider
    /// than `threshold` along some axis, else the two-copy MILP on it and its partner box.
    fn refusing_solve<'a>(
        net: &'a Mlp,
        property: &'a RelationalProperty,
        domain: &'a InputBox,
        constraints: &'a [Constraint],
        milp: &'a ConstraintCertifier,
        threshold: f64,
    ) -> impl Fn(usize, &InputBox) -> Result<Solved, TrainError> + Sync + 'a {
        move |ci, first| {
            let widest = (0..first.dim())
                .map(|j| first.upper()[j] - first.lower()[j])
                .fold(0.0, f64::max);
            if widest > threshold {
                return Ok(Solved {
                    milps: 0,
                    binaries: 0,
                    certificate: Certificate::Unknown {
                        reason: "refused".into(),
                    },
                });
            }
            let second = partner_box(property, domain, first)?;
            let r = milp.certify_on(net, &constraints[ci], first, &second)?;
            Ok(Solved {
                milps: 1,
                binaries: r.neuron_binaries,
                certificate: r.certificate,
            })
        }
    }

    /// The largest `|f_k(x) − f_k(x')|` over 500 random pairs `(x, partner(x))` of `[0, 1]^n`.
    fn sampled_change(
        net: &Mlp,
        rng: &mut ChaCha8Rng,
        partner: impl Fn(&[f64], &mut ChaCha8Rng) -> Vec<f64>,
    ) -> f64 {
        let mut worst: f64 = 1e-3;
        for _ in 0..500 {
            let x: Vec<f64> = (0..net.n_inputs())
                .map(|_| rng.gen_range(0.0..=1.0))
                .collect();
            let x2 = partner(&x, rng);
            let y = net.forward(&DVector::from_vec(x)).unwrap();
            let y2 = net.forward(&DVector::from_vec(x2)).unwrap();
            worst = worst.max((&y - &y2).amax());
        }
        worst
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Bisecting undecided boxes never changes the answer, only how it is reached: with a
        /// per-box solve that refuses ("unknown") every box wider than a threshold, the
        /// bisected certificate agrees with the direct one on the whole domain, a certified
        /// model survives the gradient attack, and a refusal nothing can split stays "not
        /// certified".
        #[test]
        fn bisected_certificates_agree_with_direct_ones(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = rng.gen_range(2..=3);
            let n_out = rng.gen_range(1..=2);
            // Non-negative weights make the network increasing in every input, so some
            // monotonicity cases certify; signed ones mostly violate.
            let non_negative = rng.gen_bool(0.5);
            let weight = |rng: &mut ChaCha8Rng| {
                let w: f64 = rng.gen_range(-1.0..1.0);
                if non_negative { w.abs() } else { w }
            };
            let mut layers = Vec::new();
            let mut width_in = n;
            for _ in 0..rng.gen_range(1..=2) {
                let width = rng.gen_range(2..=4);
                let w = DMatrix::from_fn(width, width_in, |_, _| weight(&mut rng));
                let b = DVector::from_fn(width, |_, _| rng.gen_range(-0.5..0.5));
                layers.push(Dense::new(w, b, Activation::Relu).unwrap());
                width_in = width;
            }
            let w = DMatrix::from_fn(n_out, width_in, |_, _| weight(&mut rng));
            layers.push(Dense::new(w, DVector::zeros(n_out), Activation::Identity).unwrap());
            let net = Mlp::from_layers(n, layers, vec![]).unwrap();
            let direction = |rng: &mut ChaCha8Rng| {
                if rng.gen_bool(0.7) { Direction::Increasing } else { Direction::Decreasing }
            };
            let property = match rng.gen_range(0..3) {
                0 => {
                    let mut features: Vec<(usize, Direction)> = Vec::new();
                    for i in 0..n {
                        if rng.gen_bool(0.6) {
                            features.push((i, direction(&mut rng)));
                        }
                    }
                    if features.is_empty() {
                        features.push((0, direction(&mut rng)));
                    }
                    RelationalProperty::Monotonic { features }
                }
                // ε near the largest change sampled pairs show, so that pairs across the
                // bisections' faces decide some cases.
                1 => {
                    let delta = rng.gen_range(0.02..0.2);
                    let change = sampled_change(&net, &mut rng, |x, r| {
                        x.iter().map(|v| (v + r.gen_range(-delta..=delta)).clamp(0.0, 1.0)).collect()
                    });
                    RelationalProperty::Robust { delta, epsilon: change * rng.gen_range(0.9..1.6) }
                }
                _ => {
                    let s = rng.gen_range(0..n);
                    let change = sampled_change(&net, &mut rng, |x, r| {
                        let mut x2 = x.to_vec();
                        x2[s] = r.gen_range(0.0..=1.0);
                        x2
                    });
                    RelationalProperty::Fair { sensitive: vec![s], epsilon: change * rng.gen_range(0.9..1.6) }
                }
            };
            let domain = InputBox::new(vec![0.0; n], vec![1.0; n]).unwrap();
            let split_depth = rng.gen_range(0..=1);
            let certifier = |refine_depth| RelationalCertifier {
                split_depth,
                time_limit: Duration::from_secs(30),
                tightening: Tightening::None,
                refine_depth,
                attack: None,
            };
            let direct = certifier(0).certify(&net, &property, &domain).unwrap();
            let constraints = property.constraints(&domain, n_out).unwrap();
            let milp = ConstraintCertifier::new(CertifyOptions::default()).unwrap();
            // The reference: the two-copy MILP over the whole domain, both copies anywhere in
            // it (no sub-boxes, no partner boxes).
            let reference: Vec<Certificate> = constraints
                .iter()
                .map(|c| milp.certify(&net, c).unwrap().certificate)
                .collect();
            let reference_certified =
                reference.iter().all(|c| matches!(c, Certificate::Certified { .. }));
            let reference_violated = reference.iter().any(|c| {
                matches!(c, Certificate::Violated(w) if w.violation > 2.0 * CertifyOptions::default().tolerance)
            });
            // Wider than every sub-box of the split, so the first solve always refuses.
            let threshold = rng.gen_range(0.1..0.45);
            let solve = refusing_solve(&net, &property, &domain, &constraints, &milp, threshold);
            let bisected = certifier(6)
                .certify_with(&net, &property, &domain, constraints.len(), &solve)
                .unwrap();
            prop_assert!(bisected.bisections > 0);
            let certified = |c: &RelationalCertificate| {
                matches!(c.guarantee, Guarantee::Certified { .. })
            };
            prop_assert_eq!(
                certified(&direct),
                reference_certified,
                "{:?}: direct {:?}, reference {:?}", property, direct.guarantee, reference
            );
            match (&bisected.witness, certified(&bisected)) {
                (Some(_), _) => prop_assert!(
                    !reference_certified,
                    "{property:?}: bisected found a witness, reference {reference:?}"
                ),
                (None, true) => {
                    prop_assert!(
                        !reference_violated,
                        "{property:?}: bisected certified, reference {reference:?}"
                    );
                    let attack = PairAttack { starts: 200, steps: 30, seed }
                        .run(&net, &property, &domain)
                        .unwrap();
                    prop_assert!(attack.violation <= 1e-6, "{property:?}: {attack:?}");
                }
                (None, false) => {
                    let refused = matches!(
                        &bisected.guarantee,
                        Guarantee::NotCertified { reason } if reason == "refused"
                    );
                    prop_assert!(refused, "{:?}", bisected.guarantee);
                }
            }
        }
    }
}
