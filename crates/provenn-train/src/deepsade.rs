//! DeepSaDe (Goyal et al., AAAI 2024): an MLP whose last layer is kept, at every accepted
//! step, inside the set of weights that satisfy the domain constraint for *every* input, while
//! the earlier layers follow plain gradient steps.
//!
//! Per mini-batch: the loss gradient; a line search on the last layer (`θ − lr·g·s/steps`,
//! s = steps…1), each candidate checked exactly over the latent box (interval bounds of the
//! penultimate layer over the constraint's domain, plus the skip-connected raw features);
//! if no candidate passes (and MaxSMT steps are on), a MaxSMT update inside DeepSaDe's
//! gradient-sign box (provenn-maxsmt, the exact ∀-elimination solved as a MILP by default). An accepted step snapshots the model
//! when the validation loss improves — before the earlier layers move, so the snapshot's last
//! layer is certified for the snapshot's own latent box — and then steps the earlier layers. A
//! failed step flips each gradient sign with probability ½ next time (the papers' restart).
//! The returned model is then certified independently by provenn-milp on the whole network
//! over the whole domain; the trainer reports the certificate and never calls an uncertified
//! model guaranteed.
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use provenn_bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
use provenn_data::{Dataset, Targets as DataTargets};
use provenn_dsl::ir::{q_from_f64, Constraint, Formula, Var};
use provenn_maxsmt::{
    EliminationOptions, LastLayer, LastLayerConstraint, LastLayerUpdate, Limits, PmRes, Status,
    UpdateMethod, WeightBox,
};
use provenn_nn::loss::{BceWithLogits, Loss, Mse};
use provenn_nn::{Activation, Mlp, MlpBuilder};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use crate::last_layer::Guarantee;
use crate::last_layer::{
    certify, initial_layer, set_theta, soft_targets, theta_gradient, theta_of, validate_common,
};
use crate::TrainError;

/// Hyper-parameters of [`DeepSade`], validated by [`DeepSadeParams::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeepSadeParams {
    /// Hidden layer widths (ReLU).
    pub hidden: Vec<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// SGD learning rate (earlier layers, and the line search's full step).
    pub learning_rate: f64,
    /// Largest change of one last-layer weight in a MaxSMT step (DeepSaDe: 0.1).
    pub max_step: f64,
    /// Classification margins `m` (soft constraints `y_k > m` / `< −m`; DeepSaDe `[0, 1, 2]`).
    pub margins: Vec<f64>,
    /// Regression tolerance levels `m` (soft constraints `|y_k − t_k| ≤ m·max_batch t_k`;
    /// DeepSaDe `[0.1]`).
    pub tolerances: Vec<f64>,
    /// Line-search candidates per step (DeepSaDe: 5).
    pub line_search_steps: usize,
    /// Box of the last-layer weights (DeepSaDe: 100).
    pub weight_limit: f64,
    /// Box of the initial satisfying last layer.
    pub initial_box: (f64, f64),
    /// Training rows (drawn at random) whose soft constraints the initial last layer
    /// maximises, by one MaxSMT solve in the initial box; 0 takes any satisfying layer (the
    /// reference's `find_initial_solution`; its UC1 `DC_INITIALIZATION` fits the first
    /// batch). Where the satisfying weights fall apart into regions no step can cross — UC5's
    /// permutations — this choice is the prediction's only chance to fit the data.
    pub initial_fit_rows: usize,
    /// Whether a failed line search falls back to a MaxSMT step (the reference: on for UC1–UC3,
    /// off for UC4 and UC5, which train by line search and sign-flip restarts only).
    pub maxsmt: bool,
    /// How MaxSMT steps are solved.
    pub update: UpdateMethod,
    /// How the latent box (the penultimate layer's range over the domain) is bounded.
    pub latent_bounds: LatentBounds,
    /// Time limit of one MaxSMT step (a timeout is a failed step).
    pub step_time_limit: Duration,
    /// Branch-and-bound nodes per MaxSMT step on HiGHS (`None`: solve each step to proven
    /// optimality or the time limit). A step that reaches the limit takes the best weights
    /// found — exactly checked like every other — without proof that no weights in the box
    /// satisfy more soft constraints; `DeepSadeStats::maxsmt_unproven` counts those steps.
    pub step_node_limit: Option<u64>,
    /// Time limit of the final certification.
    pub certify_time_limit: Duration,
    /// Slack the last layer must keep on every output comparison of the constraint (see
    /// `Formula::with_output_slack`); 0 trains on the constraint as written. A strict
    /// comparison met with no slack (`y > 0` at `y = 1e-12`) holds exactly but cannot be
    /// certified in floating point: counting constraints need a slack above the certifier's
    /// tolerance.
    pub slack: f64,
    /// Seed of initialisation, shuffling and restarts.
    pub seed: u64,
}

impl Default for DeepSadeParams {
    fn default() -> Self {
        DeepSadeParams {
            hidden: vec![16, 16],
            epochs: 10,
            batch_size: 16,
            learning_rate: 0.05,
            max_step: 0.1,
            margins: vec![0.0, 1.0, 2.0],
            tolerances: vec![0.1],
            line_search_steps: 5,
            weight_limit: 100.0,
            initial_box: (-1.0, 1.0),
            initial_fit_rows: 0,
            maxsmt: true,
            update: UpdateMethod::Milp(EliminationOptions::default()),
            latent_bounds: LatentBounds::Interval,
            step_time_limit: Duration::from_secs(10),
            step_node_limit: None,
            certify_time_limit: Duration::from_secs(120),
            slack: 0.0,
            seed: 0,
        }
    }
}

/// The bound propagation that gives DeepSaDe's latent box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatentBounds {
    /// Interval bounds (IBP), as the papers.
    #[default]
    Interval,
    /// CROWN's bounds intersected with IBP's: never looser, so the last layer is constrained
    /// over a smaller box (less conservative) at the cost of a back-substitution per layer.
    Crown,
}

/// A validated [`DeepSadeParams`].
#[derive(Debug, Clone)]
pub struct DeepSade {
    p: DeepSadeParams,
}

impl DeepSadeParams {
    /// Validates the parameters.
    ///
    /// # Errors
    /// Zero sizes, non-positive rates, steps or limits, an empty initial box.
    pub fn build(self) -> Result<DeepSade, TrainError> {
        let bad = |m: &str| Err(TrainError::InvalidParams(m.into()));
        if self.epochs == 0 || self.batch_size == 0 || self.line_search_steps == 0 {
            return bad("epochs, batch size and line-search steps must be ≥ 1");
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return bad("DeepSaDe needs at least one hidden layer, all widths ≥ 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("the learning rate must be finite and > 0");
        }
        if !(self.slack >= 0.0 && self.slack.is_finite()) {
            return bad("the slack must be finite and ≥ 0");
        }
        if self.step_node_limit == Some(0) {
            return bad("a node limit must be ≥ 1");
        }
        let levels: Vec<f64> = self
            .margins
            .iter()
            .chain(&self.tolerances)
            .copied()
            .collect();
        validate_common(
            self.max_step,
            self.weight_limit,
            self.initial_box,
            &levels,
            &[self.step_time_limit, self.certify_time_limit],
        )?;
        Ok(DeepSade { p: self })
    }
}

/// Counters of one DeepSaDe run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeepSadeStats {
    /// Mini-batches processed.
    pub batches: usize,
    /// Steps accepted by the line search.
    pub line_search_steps: usize,
    /// Steps accepted from a MaxSMT solve.
    pub maxsmt_steps: usize,
    /// Of those, steps whose solve stopped at a limit (time or nodes) with weights that are
    /// not proven to satisfy the most soft constraints.
    pub maxsmt_unproven: usize,
    /// Failed steps (each followed by a gradient-sign restart).
    pub failed_steps: usize,
    /// Time spent in MaxSMT solves (the steps and the initial fit).
    pub maxsmt_time: Duration,
    /// Validation (or training) loss of the returned snapshot.
    pub best_loss: f64,
    /// Wall-clock training time, certification excluded.
    pub train_time: Duration,
    /// Certification time.
    pub certify_time: Duration,
}

/// A trained DeepSaDe model.
#[derive(Debug, Clone)]
pub struct FittedDeepSade {
    /// The network (logits for classification).
    pub net: Mlp,
    /// The independent certificate.
    pub guarantee: Guarantee,
    /// Counters.
    pub stats: DeepSadeStats,
}

/// Progress of one batch (for progress bars).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeepSadeProgress {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Accepted steps so far.
    pub accepted: usize,
    /// Restarts so far.
    pub restarts: usize,
    /// Best validation loss so far.
    pub best_loss: f64,
}

/// The inputs a constraint reads (sorted): DeepSaDe skip-connects exactly these into the last
/// layer, so that the premise can restrict them there.
pub fn constraint_inputs(c: &Constraint) -> Vec<usize> {
    fn walk(f: &Formula, out: &mut Vec<usize>) {
        match f {
            Formula::True | Formula::False => {}
            Formula::Atom(a) => out.extend(a.expr.terms.keys().filter_map(|v| match v {
                Var::Input(_, j) => Some(*j),
                Var::Output(..) => None,
            })),
            Formula::And(v) | Formula::Or(v) => v.iter().for_each(|g| walk(g, out)),
            Formula::Count { terms, .. } => terms.iter().for_each(|(_, g)| walk(g, out)),
        }
    }
    let mut out = Vec::new();
    walk(&c.formula, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// The last layer's inputs (latent features, then skip features) for each row of `x`.
fn last_layer_inputs(net: &Mlp, x: &DMatrix<f64>) -> Result<Vec<Vec<f64>>, TrainError> {
    let trace = net.trace(x)?;
    let z = trace.layer_input(net.layers().len() - 1);
    Ok((0..x.nrows())
        .map(|i| z.row(i).iter().copied().collect())
        .collect())
}

impl DeepSade {
    /// The parameters.
    pub fn params(&self) -> &DeepSadeParams {
        &self.p
    }

    /// Trains on `train` under `constraint` (over the dataset's scaled inputs and the network's
    /// outputs; its domain is the input box). `skip` lists the raw inputs the constraint reads,
    /// skip-connected into the last layer. The snapshot with the lowest loss on `validation`
    /// (else on `train`) is returned, with its certificate.
    ///
    /// # Errors
    /// Shape mismatches, a constraint outside the last-layer fragment, no initial satisfying
    /// last layer in the initial box.
    pub fn fit(
        &self,
        train: &Dataset,
        validation: Option<&Dataset>,
        constraint: &Constraint,
        skip: &[usize],
        on_batch: &mut dyn FnMut(&DeepSadeProgress),
    ) -> Result<FittedDeepSade, TrainError> {
        let p = &self.p;
        let start = Instant::now();
        let n_out = train.targets.n_outputs();
        let mut b = MlpBuilder::new(train.n_features()).seed(p.seed);
        for &w in &p.hidden {
            b = b.hidden(w, Activation::Relu);
        }
        let mut net = b
            .output(n_out, Activation::Identity)
            .skip_features(skip.to_vec())
            .build()?;
        let (lo, hi): (Vec<f64>, Vec<f64>) = constraint.domain.iter().copied().unzip();
        let domain = InputBox::new(lo, hi)?;
        let last = net.layers().len() - 1;
        let layer = LastLayer {
            n_features: net.layers()[last].inputs(),
            n_outputs: n_out,
        };
        let slack = q_from_f64(p.slack)
            .ok_or_else(|| TrainError::InvalidParams("the slack must be finite".into()))?;
        // The trainer enforces the strengthened constraint; the certificate is for the original.
        let trained = constraint.with_output_slack(&slack);
        let restate = |net: &Mlp| -> Result<LastLayerConstraint, TrainError> {
            let bounds = IntervalBounds.bounds(net, &domain, None)?;
            let h = &bounds.layer(last - 1).post;
            let mut latent: Vec<(f64, f64)> = h
                .lower
                .iter()
                .copied()
                .zip(h.upper.iter().copied())
                .collect();
            if p.latent_bounds == LatentBounds::Crown {
                // Both boxes are sound, so is their intersection.
                let crown = CrownBounds.bounds(net, &domain, None)?;
                let c = &crown.layer(last - 1).post;
                for (j, (l, u)) in latent.iter_mut().enumerate() {
                    *l = l.max(c.lower[j]);
                    *u = u.min(c.upper[j]);
                }
            }
            Ok(LastLayerConstraint::new(layer, &trained, &latent, skip)?)
        };
        let (loss, regression): (&dyn Loss, bool) = match &train.targets {
            DataTargets::Regression(_) => (&Mse, true),
            _ => (&BceWithLogits, false),
        };
        let y_all = train.targets.to_matrix();
        let limits = Limits {
            time_limit: Some(p.step_time_limit),
            cancel: None,
            node_limit: p.step_node_limit,
        };
        let mut stats = DeepSadeStats::default();

        // An initial last layer that satisfies the constraint.
        let llc = restate(&net)?;
        let fitted = if p.initial_fit_rows == 0 {
            None
        } else {
            let mut rows: Vec<usize> = (0..train.n_rows()).collect();
            rows.shuffle(&mut ChaCha8Rng::seed_from_u64(p.seed ^ 0x1417));
            rows.truncate(p.initial_fit_rows);
            let xb = DMatrix::from_fn(rows.len(), train.n_features(), |i, j| train.x[(rows[i], j)]);
            let yb = DMatrix::from_fn(rows.len(), n_out, |i, k| y_all[(rows[i], k)]);
            let features = last_layer_inputs(&net, &xb)?;
            // The first level only (DeepSaDe's margin 0: the outputs' signs; for regression
            // the first tolerance): the fit chooses which outputs are on where; the further
            // levels are for the training steps, and would triple the binaries.
            let soft = soft_targets(
                &yb,
                regression,
                &p.margins[..p.margins.len().min(1)],
                &p.tolerances[..p.tolerances.len().min(1)],
            );
            let wb = WeightBox::uniform(layer.n_params(), p.initial_box.0, p.initial_box.1)?;
            let t0 = Instant::now();
            let out = LastLayerUpdate::new(&llc, wb, &features, &soft)?
                .solve(p.update, &PmRes, &limits)?;
            stats.maxsmt_time += t0.elapsed();
            // A step that finds nothing (time limit) falls back to any satisfying layer.
            out.theta_f64.filter(|_| out.f64_verified)
        };
        let theta0 = match fitted {
            Some(t) => t,
            None => initial_layer(&llc, p.initial_box, p.update, &limits)?,
        };
        set_theta(&mut net, &theta0)?;
        let eval_loss = |net: &Mlp| -> Result<f64, TrainError> {
            let (x, y) = match validation {
                Some(v) => (&v.x, v.targets.to_matrix()),
                None => (&train.x, y_all.clone()),
            };
            Ok(loss.value(&net.forward_batch(x)?, &y))
        };
        let mut best = net.clone();
        stats.best_loss = eval_loss(&net)?;

        let mut rng = ChaCha8Rng::seed_from_u64(p.seed.wrapping_add(0x5ade));
        let mut order: Vec<usize> = (0..train.n_rows()).collect();
        let mut restart = false;
        for epoch in 0..p.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(p.batch_size) {
                stats.batches += 1;
                let xb = DMatrix::from_fn(chunk.len(), train.n_features(), |i, j| {
                    train.x[(chunk[i], j)]
                });
                let yb = DMatrix::from_fn(chunk.len(), n_out, |i, k| y_all[(chunk[i], k)]);
                let (_, grads) = net.loss_gradient(&xb, &yb, loss)?;
                let mut g = theta_gradient(&grads.layers[last]);
                if restart {
                    for v in &mut g {
                        if rng.gen_bool(0.5) {
                            *v = -*v;
                        }
                    }
                }
                let theta = theta_of(&net);
                let llc = restate(&net)?;
                // Line search: the largest step whose last layer satisfies the constraint.
                let mut accepted: Option<Vec<f64>> = None;
                for s in (1..=p.line_search_steps).rev() {
                    let f = p.learning_rate * s as f64 / p.line_search_steps as f64;
                    let cand: Vec<f64> = theta.iter().zip(&g).map(|(t, gi)| t - f * gi).collect();
                    if llc.counterexample_f64(&cand)?.is_none() {
                        accepted = Some(cand);
                        stats.line_search_steps += 1;
                        break;
                    }
                }
                if accepted.is_none() && p.maxsmt {
                    let features = last_layer_inputs(&net, &xb)?;
                    let soft = soft_targets(&yb, regression, &p.margins, &p.tolerances);
                    let wb = WeightBox::gradient_orthant(&theta, &g, p.max_step, p.weight_limit)?;
                    let t0 = Instant::now();
                    let out = LastLayerUpdate::new(&llc, wb, &features, &soft)?
                        .solve(p.update, &PmRes, &limits)?;
                    stats.maxsmt_time += t0.elapsed();
                    if let (Some(t), true) = (out.theta_f64, out.f64_verified) {
                        accepted = Some(t);
                        stats.maxsmt_steps += 1;
                        stats.maxsmt_unproven += usize::from(out.status != Status::Optimal);
                    }
                }
                match accepted {
                    Some(t) => {
                        restart = false;
                        set_theta(&mut net, &t)?;
                        let l = eval_loss(&net)?;
                        if l < stats.best_loss {
                            stats.best_loss = l;
                            best = net.clone();
                        }
                        // Earlier layers: plain SGD with the batch's gradient.
                        for (li, lgr) in grads.layers.iter().enumerate().take(last) {
                            let layer = net.layer_mut(li);
                            let w = layer.weights().clone() - &lgr.weights * p.learning_rate;
                            let bias = layer.bias().clone() - &lgr.bias * p.learning_rate;
                            layer.set_weights(w)?;
                            layer.set_bias(bias)?;
                        }
                    }
                    None => {
                        restart = true;
                        stats.failed_steps += 1;
                    }
                }
                on_batch(&DeepSadeProgress {
                    epoch,
                    accepted: stats.line_search_steps + stats.maxsmt_steps,
                    restarts: stats.failed_steps,
                    best_loss: stats.best_loss,
                });
            }
        }
        stats.train_time = start.elapsed();

        let t0 = Instant::now();
        let guarantee = certify(&best, constraint, p.certify_time_limit)?;
        stats.certify_time = t0.elapsed();
        Ok(FittedDeepSade {
            net: best,
            guarantee,
            stats,
        })
    }
}
