//! Abductive explanations (Ignatiev, Narodytska & Marques-Silva 2019): a subset-minimal set of
//! features that, fixed to the instance's values, entails the predicted class for every value
//! of the other features in the domain. Deletion-based: try to free each feature in turn; a
//! feature stays when a MILP finds an input on which some other class scores at least as high.
//!
//! Three modes, which must agree on the explanation (Gomes et al. 2026):
//! - [`ExplainMode::Inms`]: every query is a MILP with the global neuron bounds;
//! - [`ExplainMode::Box`]: interval bounds on the current box first; the MILP only when they
//!   cannot prove the prediction;
//! - [`ExplainMode::BoxSimplify`]: as `Box`, and the MILP uses the global bounds intersected with
//!   the Box bounds, so neurons the Box proves stable lose their binary.
//!
//! In every mode, a feature whose domain is a single point is freed without a query: freeing it
//! leaves the box unchanged (the reference runs a MILP for each).
//!
//! Every solver counterexample is re-validated in f64; a candidate that does not validate keeps
//! its feature (the explanation still entails the prediction) and is counted.
//!
//! Beyond the reference (all optional, none changes the explanation): CROWN pre-checks, a
//! gradient counterexample search, input splitting, query-box bound tightening, and
//! tentative frees proven a group at a time ([`ExplainOptions::speculation`]).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use nalgebra::DVector;
use provenn_bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
use provenn_nn::Mlp;
use rayon::prelude::*;

use crate::backend::{default_backend, Backend, SolveOptions, SolveOutcome, SolveStatus};
use crate::encoding::{
    check_encodable, encode_network, input_vars, EncodingStats, Lin, NeuronBounds,
};
use crate::falsify::find_counterexample;
use crate::model::{Milp, Sense, VarId};
use crate::split::{decide_by_splitting, SplitAnswer};
use crate::tighten::{
    global_bounds, pad_for, propagated_bounds, tightened_from, TightenedBounds, Tightening,
};
use crate::MilpError;

/// Which accelerations the explainer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExplainMode {
    /// MILP with global bounds for every query (the INMS baseline).
    Inms,
    /// Interval (Box) pre-check, then the INMS MILP.
    Box,
    /// Box pre-check, then a MILP simplified with the Box bounds.
    #[default]
    BoxSimplify,
}

impl ExplainMode {
    /// All modes, in increasing order of acceleration.
    pub const ALL: [ExplainMode; 3] = [
        ExplainMode::Inms,
        ExplainMode::Box,
        ExplainMode::BoxSimplify,
    ];

    /// Name used by the CLI and reports.
    pub fn name(self) -> &'static str {
        match self {
            ExplainMode::Inms => "inms",
            ExplainMode::Box => "box",
            ExplainMode::BoxSimplify => "box-simplify",
        }
    }
}

impl std::str::FromStr for ExplainMode {
    type Err = MilpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExplainMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                MilpError::InvalidParameter(format!(
                    "unknown explanation mode '{s}' (expected inms, box or box-simplify)"
                ))
            })
    }
}

/// Parameters of an [`AbductiveExplainer`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainOptions {
    /// Acceleration mode.
    pub mode: ExplainMode,
    /// How the global neuron bounds are computed (once per explainer). The default is
    /// [`Tightening::Lp`]: the Box+simplify queries intersect them with bounds on their own,
    /// much smaller, boxes, so exact MILP bounds pay little — on Digits 6L-12N (test rows 3–4,
    /// run side by side in one sitting) MILP bounds took 460.8 s against 0.1 s for LP bounds,
    /// and the default explainer then took 197.3 s and 185.9 s; on MNIST 6L-8N (test rows 0–3)
    /// 104.9 s against 0.5 s, then 168.0 s and 185.4 s. The paper's modes use
    /// [`Tightening::Milp`], as the reference does.
    pub tightening: Tightening,
    /// Limit per solver call. A query that hits it keeps its feature.
    pub time_limit: Option<Duration>,
    /// Before each MILP, look for a counterexample by projected gradient ascent from the
    /// instance, random points and the explanation's latest counterexamples (found ones are
    /// checked in f64 and decide the query without the solver). Not in the reference; it
    /// changes no answer, only how often the MILP runs. On the first MNIST 6L-8N test instance
    /// the last 4 counterexamples as starts took it from 39 to 501 of its 604 counterexamples
    /// (246 s → 119 s).
    pub falsify: bool,
    /// In the Box modes, also use CROWN: its bounds on `o_class − o_j` as the pre-check and its
    /// neuron bounds in the simplification. Not in the reference (which uses interval
    /// arithmetic only); sound, and it changes no answer.
    pub crown: bool,
    /// Before each MILP, decide the query by input-splitting branch and bound with CROWN,
    /// opening at most this many pieces of the box (0: off). Not in the reference; both its
    /// answers are exact (CROWN proofs on pieces covering the box, counterexamples checked in
    /// f64), and an undecided query goes to the MILP, so it changes no answer. Once it runs out
    /// of pieces or of [`ExplainOptions::split_time_limit`] in an explanation, later steps of
    /// that explanation (which free more features) skip it. Once it has decided a query, the next query's MILP first gets as long as that
    /// decision took, and splitting runs only if the MILP is undecided by then.
    pub split_budget: usize,
    /// Wall time input splitting may spend on one query, besides its piece budget (`None`:
    /// pieces only).
    pub split_time_limit: Option<Duration>,
    /// In mode `BoxSimplify`, before each MILP, tighten the neuron bounds on the query box
    /// with one LP per unstable neuron and side (proven bounds only, padded as in
    /// [`Tightening::Lp`]), starting from the merged global and Box bounds. Not in the
    /// reference; it changes no answer.
    pub lp_tighten: bool,
    /// In mode `BoxSimplify`, escalation for a query whose MILP is not decided quickly:
    /// tighten the hidden neurons' bounds on its box with time-limited MILPs (proven bounds
    /// only, padded, as [`Tightening::MilpSign`]), starting from the bounds the query already has,
    /// and solve it again. `None`: off. Not in the reference; it changes no answer.
    pub milp_tighten: Option<QueryTightening>,
    /// Verify freed features in groups of at most this many (0 or 1: every query the cheap
    /// checks leave open gets its own MILP, as in the reference). A query that Box, CROWN and
    /// the falsifier leave open frees its feature *tentatively*; one MILP over the box of the
    /// latest tentative free then proves all of them at once, since the boxes only grow along
    /// the deletion loop. When it finds a counterexample instead, the earliest tentative box
    /// containing it is not entailed either; one more MILP on the box before it (repeated if
    /// that one fails too) finds the first tentative free that was wrong. That feature is kept
    /// with the counterexample as its witness and the loop resumes after it, so the
    /// explanation is the one the deletion loop gives (a timeout keeps a feature, as there).
    /// Input splitting and the query-box tightening then serve the verifying queries only.
    /// Not in the reference.
    pub speculation: usize,
    /// Ask each open query with one MILP per rival class left open by CROWN (maximise a lead
    /// `s ≥ 0` with `o_j − o_class ≥ s`) instead of the reference's single MILP with one
    /// indicator binary per rival and big-M rows on the outputs. Not in the reference; it
    /// changes no answer. Off by default: it pays a little where few rivals are left open and
    /// loses where many are. Test rows one at a time on one thread, with and without it side
    /// by side: Digits 6L-12N rows 3–7, 10, 12 and 16 took 352.3 s against 409.5 s (0.86×;
    /// row 5 78.1 s → 40.3 s, one escalation fewer; row 16 the same), and over 31 rows (0–16
    /// and the odd ones to 37, the two runs an hour apart) 574.5 s against 625.8 s (0.92×);
    /// MNIST 6L-8N rows 0–3 took 119.5 s against 63.8 s (1.9×: about five rivals a query, each
    /// MILP presolved and rooted anew, and the longer queries escalated 13 times, never
    /// without it). Those runs capped the lead at 1; uncapped, the 8 Digits rows 3–7, 87, 131
    /// and 135 took 246.0 s against 250.3 s without it, and MNIST row 0 32.9 s against 14.9 s.
    pub per_rival: bool,
}

/// When and how hard [`ExplainOptions::milp_tighten`] tightens a query's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryTightening {
    /// Time the query's MILP gets before escalating, at least: within an explanation the trial
    /// also lasts 1.5 times as long as the slowest MILP a trial has decided (before its limit)
    /// so far, since each query frees one feature more than an earlier one (zero: tighten
    /// first, without a trial).
    pub after: Duration,
    /// Time limit of each tightening MILP (two per unstable neuron); one that runs out gives
    /// its LP relaxation's bound instead.
    pub per_solve: Duration,
    /// How many of the last layers, the output layer included, are tightened by LP (on the
    /// bounds the MILPs left before them) instead of by MILP. 0: MILPs on every hidden layer
    /// and the output layer left as it was; 1: the output layer by LP too; 2 (the default):
    /// the last hidden layer by LP as well, whose MILPs carry the binaries of all the layers
    /// before it and cost the most.
    pub lp_layers: usize,
    /// Once a query of an explanation has escalated, escalate its later queries without a
    /// trial: they free more features, and in the Digits 6L-12N rows traced (4 and 77) every
    /// query after the first escalation escalated too. Test rows 3–7, 87, 131 and 135, one at
    /// a time, side by side: 229.4 s against 254.7 s (the same tightening solves; each
    /// skipped trial saved its second).
    pub trial_once: bool,
    /// Solve an escalated query, once tightened, as one MILP per rival class, as
    /// [`ExplainOptions::per_rival`] does for every query: with the output bounds just
    /// tightened, that is where it pays.
    pub per_rival: bool,
    /// A query whose box lies inside the latest escalated query's box takes the bounds that
    /// escalation proved (sound on every box inside its own) instead of tightening its own,
    /// and is solved as an escalated query. That happens where speculation steps back: a
    /// group's largest box escalates and is refuted, and the earlier, smaller boxes of the
    /// group and the queries redone after the refuted free lie inside it. Digits 6L-12N test
    /// rows 3–7, one at a time on one thread, both with the sign cuts of
    /// [`tightened_from`] (while a two-thread run shared the machine): 128.1 s against
    /// 139.0 s (escalations 20 → 15, 5 reused; rows 4–5 79.4 s against 88.0 s); rows 40–59,
    /// the two run side by side on one thread each: 220.6 s against 228.9 s (10 reused).
    pub reuse_inside: bool,
}

impl Default for QueryTightening {
    /// After 1 s, 0.3 s per MILP. On Digits 6L-12N (fourth and fifth test instances, one
    /// query at a time) the queries that got here took 8.8–18 s and 13–331 s without it and
    /// 9.1–12.3 s and 10.8–17.4 s with it: the instances took 77.5 s → 66.3 s and more than
    /// 822 s (unfinished) → 205.1 s, and 161 s once the tightening started from the query's
    /// bounds and skipped the output layer. 0.1 s per MILP made that instance 267 s, 0.6 s
    /// made it 157 s. A query decided within 1 s is untouched.
    ///
    /// LP on the last two layers: Digits 6L-12N test rows 3–7, one at a time on one thread,
    /// took 186.3 s against 240.7 s with MILPs on every hidden layer (tightening 139 s → 47 s,
    /// the MILPs after it somewhat slower); 220.3 s with LP on the output layer alone, and LP on
    /// the last three layers made row 5 alone take 149.7 s (67.1 s). Over 23 more rows (0–2,
    /// 8–16 and the odd ones to 37) 257.5 s against 334.8 s.
    ///
    /// One MILP per rival after tightening: rows 3–7 then took 119.8 s against 186.3 s (the
    /// same, 118.0 s, with [`ExplainOptions::per_rival`] for every query, which is 1.9× slower
    /// on MNIST 6L-8N, where queries rarely escalate). Both together on the five slowest rows
    /// of 109 timed before them (58, 110, 128, 142, 178): 317.1 s against 506.0 s.
    fn default() -> Self {
        QueryTightening {
            after: Duration::from_secs(1),
            per_solve: Duration::from_millis(300),
            lp_layers: 2,
            trial_once: true,
            per_rival: true,
            reuse_inside: true,
        }
    }
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            mode: ExplainMode::BoxSimplify,
            tightening: Tightening::Lp,
            time_limit: Some(Duration::from_secs(60)),
            falsify: true,
            crown: true,
            split_budget: DEFAULT_SPLIT_BUDGET,
            split_time_limit: Some(DEFAULT_SPLIT_TIME_LIMIT),
            lp_tighten: true,
            milp_tighten: Some(QueryTightening::default()),
            speculation: DEFAULT_SPECULATION,
            per_rival: false,
        }
    }
}

/// How many of an explanation's latest counterexamples the falsifier starts from. On the first
/// MNIST 6L-8N test instance (604 kept features), 4 found 503 counterexamples, 16 found 573
/// and 64 found 596; MILPs 182 → 95 → 68, time 1.7× and 1.16× better per step (each pair run
/// side by side).
const RECENT_COUNTEREXAMPLES: usize = 64;

/// Default [`ExplainOptions::split_budget`]: on Digits 6L-12N a piece costs about 0.12 ms, so
/// a query that splitting cannot decide wastes about 1.2 s before its MILP, which at that size
/// takes 3–40 s; queries with up to about 14 free features were decided within it.
pub const DEFAULT_SPLIT_BUDGET: usize = 10_000;

/// Default [`ExplainOptions::split_time_limit`]: a little more than the piece budget takes on
/// Digits 6L-12N; on MNIST 6L-8N (784 inputs) a piece costs about 0.43 ms and the budget
/// 4.3 s.
pub const DEFAULT_SPLIT_TIME_LIMIT: Duration = Duration::from_millis(1_500);

/// Default [`ExplainOptions::speculation`]. About one tentative free in eight is refuted (the
/// falsifier misses a counterexample the MILP finds), and a refutation costs a MILP or two and
/// a rerun of the loop after it, so small groups pay best. Test rows one at a time on one
/// thread, each group size run after the other in one sitting: MNIST 6L-8N rows 0–3 took
/// 96.6 s one MILP per query, 78.7 s in groups of 2, 60.0 s of 3, 64.3 s of 4, 84.5 s of 8
/// and 112.9 s of 16 (MILPs 253 → 133 with 3, 132 with 4); Digits 6L-12N rows 18, 36, 90 and
/// 144 took 84.1 s, 59.7 s with 3 and 54.7 s with 4 (explanation sizes the same in every run;
/// equality is what the tests check). MNIST 6L-8N's 20 test instances on 2 threads: 198 s
/// (`xai-table1 --provenn-only`), against 299 s one MILP per query.
pub const DEFAULT_SPECULATION: usize = 4;

/// Work done for one explanation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExplainStats {
    /// MILP calls.
    pub solver_calls: usize,
    /// Features freed by the Box check without a solver call.
    pub box_frees: usize,
    /// Features with a one-point domain (constant in the data, such as MNIST's border
    /// pixels), freed without any check: freeing one leaves the query box as it was.
    pub constant_frees: usize,
    /// Features kept because gradient search found a counterexample (no solver call).
    pub falsified: usize,
    /// Queries decided by input splitting (no solver call).
    pub split_decided: usize,
    /// Pieces input splitting opened (CROWN calls), decided or not.
    pub split_pieces: usize,
    /// LPs solved to tighten query-box bounds before MILPs (not in `solver_calls`).
    pub lp_solves: usize,
    /// Queries escalated to MILP tightening ([`ExplainOptions::milp_tighten`]), and the
    /// tightening solves they made: MILPs, and LPs on the last [`QueryTightening::lp_layers`]
    /// layers (not in `solver_calls`).
    pub escalations: usize,
    /// See `escalations`.
    pub tightening_solves: usize,
    /// Escalated queries that took an earlier escalation's bounds instead of tightening.
    pub reused: usize,
    /// Features freed tentatively ([`ExplainOptions::speculation`]), counted again when a
    /// refutation sends the loop back over them.
    pub tentative_frees: usize,
    /// Tentative frees found wrong (their features were kept).
    pub refuted_frees: usize,
    /// Time in the solver, including the LPs that tighten query-box bounds.
    pub solver_time: Duration,
    /// Of `solver_time`, the query-box LP tightening (wall time of its layers' solves).
    pub lp_time: Duration,
    /// Of `solver_time`, the escalations' tightening MILPs (wall time).
    pub tightening_time: Duration,
    /// Total time.
    pub time: Duration,
    /// Solver candidates that did not re-validate in f64 (their features were kept).
    pub unvalidated: usize,
    /// Queries that hit the time limit (their features were kept).
    pub timeouts: usize,
    /// Neuron bounds compared in Box/global merges (mode `BoxSimplify`).
    pub merged_neurons: usize,
    /// Of those, neurons the Box made strictly tighter on at least one side.
    pub tightened_neurons: usize,
    /// Piecewise-linear neurons encoded across MILP calls, and how many needed a binary.
    pub encoded: EncodingStats,
}

impl ExplainStats {
    fn add(&mut self, o: &ExplainStats) {
        self.solver_calls += o.solver_calls;
        self.box_frees += o.box_frees;
        self.constant_frees += o.constant_frees;
        self.falsified += o.falsified;
        self.split_decided += o.split_decided;
        self.split_pieces += o.split_pieces;
        self.lp_solves += o.lp_solves;
        self.escalations += o.escalations;
        self.tightening_solves += o.tightening_solves;
        self.reused += o.reused;
        self.tentative_frees += o.tentative_frees;
        self.refuted_frees += o.refuted_frees;
        self.solver_time += o.solver_time;
        self.lp_time += o.lp_time;
        self.tightening_time += o.tightening_time;
        self.time += o.time;
        self.unvalidated += o.unvalidated;
        self.timeouts += o.timeouts;
        self.merged_neurons += o.merged_neurons;
        self.tightened_neurons += o.tightened_neurons;
        self.encoded.stable += o.encoded.stable;
        self.encoded.binaries += o.encoded.binaries;
    }

    /// Sums statistics.
    pub fn total<'a>(it: impl IntoIterator<Item = &'a ExplainStats>) -> ExplainStats {
        let mut s = ExplainStats::default();
        for o in it {
            s.add(o);
        }
        s
    }
}

/// An abductive explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The predicted class being explained.
    pub class: usize,
    /// Kept features, ascending.
    pub features: Vec<usize>,
    /// For each kept feature (same order as `features`), the counterexample that kept it: an
    /// input, re-validated in f64, that agrees with the instance on the features fixed at that
    /// step and on which another class scores at least as high. `None` when the query was
    /// undecided (time limit or a candidate that did not re-validate). Since later steps only
    /// free more features, it also shows the feature necessary in the final explanation;
    /// [`check_explanation`] re-checks it that way.
    pub witnesses: Vec<Option<Vec<f64>>>,
    /// Work done.
    pub stats: ExplainStats,
}

/// Answer of one entailment query.
#[derive(Debug, Clone, PartialEq)]
pub enum Entailment {
    /// The prediction holds on the whole box.
    Entailed,
    /// A re-validated input on which another class scores at least as high.
    Counterexample(Vec<f64>),
    /// Not decided (limit reached, or a candidate that did not re-validate).
    Unknown,
}

/// Explains the predictions of one network over one domain.
pub struct AbductiveExplainer {
    net: Mlp,
    domain: InputBox,
    global: TightenedBounds,
    global_stats: EncodingStats,
    backend: std::sync::Arc<dyn Backend>,
    options: ExplainOptions,
}

impl std::fmt::Debug for AbductiveExplainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbductiveExplainer")
            .field("net", &self.net.summary())
            .field("backend", &self.backend.name())
            .field("options", &self.options)
            .finish()
    }
}

/// Index of the largest output (the first on ties).
pub fn predicted_class(y: &[f64]) -> usize {
    let mut best = 0;
    for (k, v) in y.iter().enumerate() {
        if *v > y[best] {
            best = k;
        }
    }
    best
}

/// Whether some class other than `class` scores at least as high as `class` at `x`, with the
/// network evaluated in f64: what makes `x` a counterexample.
pub(crate) fn loses(net: &Mlp, x: &[f64], class: usize) -> Result<bool, MilpError> {
    let y = net.forward(&DVector::from_row_slice(x))?;
    Ok(y.iter()
        .enumerate()
        .any(|(j, v)| j != class && *v >= y[class]))
}

impl AbductiveExplainer {
    /// Prepares an explainer: computes the global neuron bounds over `domain` once.
    pub fn new(net: &Mlp, domain: InputBox, options: ExplainOptions) -> Result<Self, MilpError> {
        Self::with_backend(net, domain, options, default_backend())
    }

    /// As [`AbductiveExplainer::new`] on a chosen backend.
    pub fn with_backend(
        net: &Mlp,
        domain: InputBox,
        options: ExplainOptions,
        backend: Box<dyn Backend>,
    ) -> Result<Self, MilpError> {
        check_encodable(net)?;
        if domain.dim() != net.n_inputs() {
            return Err(MilpError::Dimension(format!(
                "domain has {} features, network {} inputs",
                domain.dim(),
                net.n_inputs()
            )));
        }
        if net.n_outputs() < 2 {
            return Err(MilpError::InvalidParameter(
                "explanations need a classifier with at least two outputs".into(),
            ));
        }
        let global = global_bounds(
            net,
            &domain,
            options.tightening,
            &*backend,
            &SolveOptions {
                time_limit: options.time_limit,
                ..Default::default()
            },
        )?;
        let global_stats = stats_of(net, &global.bounds);
        Ok(AbductiveExplainer {
            net: net.clone(),
            domain,
            global,
            global_stats,
            backend: backend.into(),
            options,
        })
    }

    /// The same explainer with other options; the global bounds are kept (`tightening` is
    /// ignored).
    pub fn with_options(&self, options: ExplainOptions) -> AbductiveExplainer {
        AbductiveExplainer {
            options,
            ..self.with_mode(self.options.mode)
        }
    }

    /// The same explainer (network, domain, global bounds, backend) in another mode, without
    /// recomputing the global bounds.
    pub fn with_mode(&self, mode: ExplainMode) -> AbductiveExplainer {
        AbductiveExplainer {
            net: self.net.clone(),
            domain: self.domain.clone(),
            global: self.global.clone(),
            global_stats: self.global_stats,
            backend: self.backend.clone(),
            options: ExplainOptions {
                mode,
                ..self.options.clone()
            },
        }
    }

    /// The global bounds and the work they took.
    pub fn global_bounds(&self) -> &TightenedBounds {
        &self.global
    }

    /// Stable and binary neurons under the global bounds.
    pub fn global_stats(&self) -> EncodingStats {
        self.global_stats
    }

    /// The options.
    pub fn options(&self) -> &ExplainOptions {
        &self.options
    }

    /// Explains the prediction at `x`, trying features in column order.
    pub fn explain(&self, x: &[f64]) -> Result<Explanation, MilpError> {
        let order: Vec<usize> = (0..x.len()).collect();
        self.explain_in_order(x, &order)
    }

    /// Explains the prediction at `x`, trying to free features in `order`.
    pub fn explain_in_order(&self, x: &[f64], order: &[usize]) -> Result<Explanation, MilpError> {
        let start = Instant::now();
        if x.len() != self.net.n_inputs() || !self.domain.contains(x) {
            return Err(MilpError::Dimension(format!(
                "instance has {} features (network {}) or lies outside the domain",
                x.len(),
                self.net.n_inputs()
            )));
        }
        let mut seen = vec![false; x.len()];
        for &i in order {
            if i >= x.len() || std::mem::replace(&mut seen[i], true) {
                return Err(MilpError::InvalidParameter(format!(
                    "feature order is not a permutation (entry {i})"
                )));
            }
        }
        let y = self.net.forward(&DVector::from_row_slice(x))?;
        let class = predicted_class(y.as_slice());
        let mut fixed = vec![true; x.len()];
        let mut stats = ExplainStats::default();
        let mut history = QueryHistory::new(self.options.split_budget > 0);
        let mut witness: Vec<Option<Vec<f64>>> = vec![None; x.len()];
        // The latest counterexamples, newest first: starting points for the falsifier.
        let mut recent: Vec<Vec<f64>> = Vec::with_capacity(RECENT_COUNTEREXAMPLES + 1);
        // Whether every fixed set of this loop entails `class`. The first (all features fixed)
        // does unless another class ties at `x` itself; each later one is either an earlier
        // set or one a query found (or a pending verification will find) entailed, and if `x`
        // ties no query is entailed.
        let entailed_throughout = !loses(&self.net, x, class)?;
        let (lo, hi) = (self.domain.lower(), self.domain.upper());
        let group = self.options.speculation;
        // Tentative frees not verified yet: position in `order`, the fixed set just after, and
        // the open query its screen left (so verifying it does not screen the box again).
        let mut pending: Vec<Pending<'_>> = Vec::new();
        let mut p = 0;
        loop {
            let verify_now = !pending.is_empty() && (pending.len() >= group || p == order.len());
            if verify_now {
                let refuted = self.settle(x, &pending, class, &mut stats, &mut history)?;
                if let Some((k, answer)) = refuted {
                    // Everything after the refuted free is redone on the corrected set.
                    let Pending {
                        at,
                        fixed: ref snapshot,
                        ..
                    } = pending[k];
                    let i = order[at];
                    fixed.clone_from(snapshot);
                    fixed[i] = true;
                    for &j in &order[at..] {
                        witness[j] = None;
                    }
                    stats.refuted_frees += 1;
                    if let Entailment::Counterexample(c) = answer {
                        recent.insert(0, c.clone());
                        recent.truncate(RECENT_COUNTEREXAMPLES);
                        witness[i] = Some(c);
                    }
                    p = at + 1;
                }
                pending.clear();
                continue;
            }
            let Some(&i) = order.get(p) else { break };
            p += 1;
            fixed[i] = false;
            if entailed_throughout && lo[i] == hi[i] {
                // The query box is the current one, which entails `class`; in every mode,
                // since no bound enters this. 121 of MNIST's 784 pixels are constant: the first
                // MNIST 6L-8N test instance went from 112 s to 68 s (219 → 144 MILPs).
                continue;
            }
            let answer = if group > 1 {
                match self.screen(x, &fixed, class, Some(&recent), &mut stats)? {
                    Screened::Decided(e) => e,
                    Screened::Open(open) => {
                        stats.tentative_frees += 1;
                        pending.push(Pending {
                            at: p - 1,
                            fixed: fixed.clone(),
                            open,
                        });
                        continue;
                    }
                }
            } else {
                self.query(x, &fixed, class, &recent, &mut stats, &mut history)?
            };
            match answer {
                Entailment::Entailed => {}
                Entailment::Counterexample(c) => {
                    fixed[i] = true;
                    recent.insert(0, c.clone());
                    recent.truncate(RECENT_COUNTEREXAMPLES);
                    witness[i] = Some(c);
                }
                Entailment::Unknown => fixed[i] = true,
            }
        }
        // Counted at the end: a refuted tentative free sends the loop back over some of them.
        stats.constant_frees = (0..x.len())
            .filter(|&i| entailed_throughout && lo[i] == hi[i] && !fixed[i])
            .count();
        stats.time = start.elapsed();
        let features: Vec<usize> = (0..x.len()).filter(|&i| fixed[i]).collect();
        Ok(Explanation {
            class,
            witnesses: features.iter().map(|&i| witness[i].take()).collect(),
            features,
            stats,
        })
    }

    /// Verifies tentative frees (each with the fixed set just after it, in loop order):
    /// `None` when all are entailed, else the first that is not, with its answer (a
    /// counterexample in its box, or `Unknown`).
    fn settle(
        &self,
        x: &[f64],
        pending: &[Pending<'_>],
        class: usize,
        stats: &mut ExplainStats,
        history: &mut QueryHistory,
    ) -> Result<Option<(usize, Entailment)>, MilpError> {
        let mut decide = |q: &Pending<'_>, stats: &mut ExplainStats| {
            self.solve_open(q.open.clone(), class, stats, history)
        };
        // Invariant: `refuted` is the earliest pending free known not to be entailed, and the
        // first `top` are undecided. Boxes grow along the list, so once one of them is
        // entailed, so are all before it.
        let mut refuted = None;
        let mut top = pending.len();
        while top > 0 {
            match decide(&pending[top - 1], stats)? {
                Entailment::Entailed => break,
                Entailment::Counterexample(c) => {
                    // The earliest box holding `c` is not entailed either (and the boxes are
                    // nested, so `c` is in none before it).
                    let k = pending[..top]
                        .iter()
                        .position(|q| in_box(x, &q.fixed, &c))
                        .unwrap_or(top - 1);
                    refuted = Some((k, Entailment::Counterexample(c)));
                    top = k;
                }
                Entailment::Unknown => {
                    // Undecided within the limit: decide the earlier ones one by one, as the
                    // deletion loop would, rather than step back through more timeouts.
                    refuted = Some((top - 1, Entailment::Unknown));
                    for (k, q) in pending[..top - 1].iter().enumerate() {
                        let e = decide(q, stats)?;
                        if e != Entailment::Entailed {
                            refuted = Some((k, e));
                            break;
                        }
                    }
                    break;
                }
            }
        }
        Ok(refuted)
    }

    /// Explains many instances in parallel (one solver thread per instance).
    pub fn explain_many(&self, xs: &[Vec<f64>]) -> Vec<Result<Explanation, MilpError>> {
        xs.par_iter().map(|x| self.explain(x)).collect()
    }

    /// Whether fixing the features marked in `fixed` to their values in `x` entails `class`.
    pub fn entails(
        &self,
        x: &[f64],
        fixed: &[bool],
        class: usize,
    ) -> Result<Entailment, MilpError> {
        let mut stats = ExplainStats::default();
        let mut history = QueryHistory::new(self.options.split_budget > 0);
        self.query(x, fixed, class, &[], &mut stats, &mut history)
    }

    fn query_box(&self, x: &[f64], fixed: &[bool]) -> Result<InputBox, MilpError> {
        let mut b = self.domain.clone();
        for (i, &f) in fixed.iter().enumerate() {
            if f {
                b.fix(i, x[i])?;
            }
        }
        Ok(b)
    }

    /// Decides one entailment query; `recent` are earlier counterexamples of this explanation
    /// (falsifier starting points); `history` is what this explanation's earlier queries
    /// took.
    fn query(
        &self,
        x: &[f64],
        fixed: &[bool],
        class: usize,
        recent: &[Vec<f64>],
        stats: &mut ExplainStats,
        history: &mut QueryHistory,
    ) -> Result<Entailment, MilpError> {
        match self.screen(x, fixed, class, Some(recent), stats)? {
            Screened::Decided(e) => Ok(e),
            Screened::Open(open) => self.solve_open(open, class, stats, history),
        }
    }

    /// The cheap checks of a query: in the Box modes interval bounds and CROWN, which may
    /// prove it (and rule out rival classes); then, given starting points, the falsifier,
    /// which may refute it. What is left open carries the bounds its MILP starts from.
    fn screen(
        &self,
        x: &[f64],
        fixed: &[bool],
        class: usize,
        falsify_from: Option<&[Vec<f64>]>,
        stats: &mut ExplainStats,
    ) -> Result<Screened<'_>, MilpError> {
        let mode = self.options.mode;
        let qbox = self.query_box(x, fixed)?;
        let mut bounds = Cow::Borrowed(&self.global.bounds);
        // Classes that may still beat `class` on the box; CROWN rules some out.
        let mut rivals: Vec<usize> = (0..self.net.n_outputs()).filter(|&j| j != class).collect();
        if mode != ExplainMode::Inms {
            let ibp = IntervalBounds.bounds(&self.net, &qbox, None)?;
            let out = ibp.output();
            let others_max = (0..out.len())
                .filter(|&j| j != class)
                .map(|j| out.upper[j])
                .fold(f64::NEG_INFINITY, f64::max);
            if out.lower[class] > others_max {
                stats.box_frees += 1;
                return Ok(Screened::Decided(Entailment::Entailed));
            }
            let mut local = NeuronBounds::from_network_bounds(&ibp);
            if self.options.crown {
                let k = out.len();
                let spec = DMatrix::from_fn(k - 1, k, |r, col| {
                    let j = if r < class { r } else { r + 1 };
                    if col == class {
                        1.0
                    } else if col == j {
                        -1.0
                    } else {
                        0.0
                    }
                });
                let crown = CrownBounds.bounds(&self.net, &qbox, Some(&spec))?;
                if let Some(margins) = crown.spec() {
                    rivals.retain(|&j| margins.lower[if j < class { j } else { j - 1 }] <= 0.0);
                }
                if rivals.is_empty() {
                    stats.box_frees += 1;
                    return Ok(Screened::Decided(Entailment::Entailed));
                }
                local = local.merged(&NeuronBounds::from_network_bounds(&crown)).0;
            }
            if mode == ExplainMode::BoxSimplify {
                let (merged, tightened) = self.global.bounds.merged(&local);
                stats.merged_neurons += merged.n_neurons();
                stats.tightened_neurons += tightened;
                bounds = Cow::Owned(merged);
            }
        }
        if let Some(recent) = falsify_from.filter(|_| self.options.falsify) {
            let seed = fixed.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, &f| {
                h.rotate_left(5) ^ u64::from(f)
            });
            // The instance, then the latest counterexamples with this query's fixed features
            // put back: the deletion order keeps most free features from one query to the
            // next, so an earlier counterexample is often one step from a new one.
            let starts: Vec<&[f64]> = std::iter::once(x)
                .chain(recent.iter().map(Vec::as_slice))
                .collect();
            if let Some(c) = find_counterexample(&self.net, &qbox, &starts, class, seed) {
                stats.falsified += 1;
                return Ok(Screened::Decided(Entailment::Counterexample(c)));
            }
        }
        Ok(Screened::Open(OpenQuery {
            qbox,
            rivals,
            bounds,
        }))
    }

    /// Decides a query the cheap checks left open: input splitting while it pays, query-box
    /// LP tightening, the MILP (escalated to MILP tightening when slow), and the f64 check of
    /// what the MILP found.
    fn solve_open(
        &self,
        open: OpenQuery<'_>,
        class: usize,
        stats: &mut ExplainStats,
        history: &mut QueryHistory,
    ) -> Result<Entailment, MilpError> {
        let mode = self.options.mode;
        let OpenQuery {
            qbox,
            rivals,
            mut bounds,
        } = open;
        // Tightened bounds on the query box: `how` on `layers`, each solve within `time_limit`.
        let tighten = |bounds: NeuronBounds,
                       layers: std::ops::Range<usize>,
                       how: Tightening,
                       time_limit: Option<Duration>| {
            tightened_from(
                &self.net,
                &qbox,
                bounds,
                layers,
                how,
                &*self.backend,
                &SolveOptions {
                    time_limit,
                    ..Default::default()
                },
            )
        };
        // `per_rival`: one MILP per rival class rather than the reference's single MILP.
        let solve = |bounds: &NeuronBounds,
                     time_limit: Option<Duration>,
                     stats: &mut ExplainStats,
                     per_rival: bool|
         -> Result<(Vec<VarId>, SolveOutcome), MilpError> {
            if per_rival {
                return rival_by_rival(
                    &self.net,
                    &qbox,
                    bounds,
                    class,
                    &rivals,
                    &*self.backend,
                    time_limit,
                    stats,
                );
            }
            let q = disjunction_query(&self.net, &qbox, bounds, class, &rivals)?;
            stats.encoded.stable += q.stats.stable;
            stats.encoded.binaries += q.stats.binaries;
            let out = self.backend.solve(
                &q.milp,
                &SolveOptions {
                    time_limit,
                    objective_target: Some(CLEAR_MARGIN),
                    ..Default::default()
                },
            )?;
            stats.solver_calls += 1;
            stats.solver_time += out.time;
            Ok((q.inputs, out))
        };
        if history.split_on {
            if let Some(last) = history.split_last {
                // First give the MILP as long as splitting's latest decision took: where MILPs
                // are the faster ones they decide here, and where splitting is, this costs
                // about one more splitting run. On MNIST 6L-8N (784 inputs, about 0.43 ms a
                // piece) the MILPs were faster: 3 test instances took 162 s → 130 s.
                let limit = self.options.time_limit.map_or(last, |t| t.min(last));
                let (inputs, out) = solve(&bounds, Some(limit), stats, self.options.per_rival)?;
                if out.status != SolveStatus::Unknown || Some(limit) == self.options.time_limit {
                    return self.conclude(&qbox, &bounds, class, &rivals, &inputs, &out, stats);
                }
            }
            let clock = Instant::now();
            let (answer, pieces) = decide_by_splitting(
                &self.net,
                &qbox,
                class,
                &rivals,
                self.options.split_budget,
                self.options.split_time_limit.map(|t| clock + t),
            )?;
            stats.split_pieces += pieces;
            let decided = match answer {
                SplitAnswer::Entailed => Entailment::Entailed,
                SplitAnswer::Counterexample(c) => Entailment::Counterexample(c),
                SplitAnswer::Undecided => Entailment::Unknown,
            };
            if decided == Entailment::Unknown {
                history.split_on = false;
            } else {
                stats.split_decided += 1;
                history.split_last = Some(clock.elapsed());
                return Ok(decided);
            }
        }
        let escalation = self
            .options
            .milp_tighten
            .filter(|_| mode == ExplainMode::BoxSimplify);
        // Bounds an escalation proved on a box around this one hold here too: with them this
        // query counts as escalated already.
        let reused = match escalation
            .filter(|e| e.reuse_inside)
            .and_then(|_| history.tightened_around(&qbox))
        {
            Some(t) => {
                bounds = Cow::Owned(bounds.merged(t).0);
                true
            }
            None => false,
        };
        if self.options.lp_tighten && mode == ExplainMode::BoxSimplify {
            // Two LPs per unstable neuron on the query box cost about 60 ms on Digits 6L-12N
            // and made its hard MILPs (12–17 free features) about 1.8× faster.
            let t = tighten(
                bounds.into_owned(),
                0..self.net.layers().len(),
                Tightening::Lp,
                self.options.time_limit,
            )?;
            stats.lp_solves += t.solves;
            stats.solver_time += t.time;
            stats.lp_time += t.time;
            bounds = Cow::Owned(t.bounds);
        }
        let mut trial = None;
        let mut per_rival = self.options.per_rival;
        if let Some(e) = escalation {
            let after = history.trial(e.after);
            let limit = self.options.time_limit.map_or(after, |t| t.min(after));
            let skip_trial = e.after.is_zero() || (e.trial_once && history.escalated) || reused;
            if !skip_trial {
                let (inputs, out) = solve(&bounds, Some(limit), stats, self.options.per_rival)?;
                history.record_trial(&out, limit);
                // Undecided within the trial: escalate, unless the trial already had the
                // query's whole time limit.
                if out.status != SolveStatus::Unknown || Some(limit) == self.options.time_limit {
                    trial = Some((inputs, out));
                }
            }
            if trial.is_none() {
                // Never MILPs on the output layer: they are as hard as the query itself, and
                // skipping them made Digits 6L-12N's 5th test instance 1.37× faster
                // (228 s → 167 s).
                let n = self.net.layers().len();
                let lp_from = n.saturating_sub(e.lp_layers.max(1));
                let lp_to = if e.lp_layers == 0 { lp_from } else { n };
                history.escalated = true;
                per_rival |= e.per_rival;
                if reused {
                    stats.reused += 1;
                } else {
                    stats.escalations += 1;
                    for (layers, how, time_limit) in [
                        (0..lp_from, Tightening::MilpSign, Some(e.per_solve)),
                        (lp_from..lp_to, Tightening::Lp, self.options.time_limit),
                    ] {
                        let t = tighten(bounds.into_owned(), layers, how, time_limit)?;
                        stats.tightening_solves += t.solves;
                        stats.solver_time += t.time;
                        stats.tightening_time += t.time;
                        bounds = Cow::Owned(t.bounds);
                    }
                    history.tightened = Some((qbox.clone(), bounds.clone().into_owned()));
                }
            }
        }
        let (inputs, out) = match trial {
            Some(done) => done,
            None => solve(&bounds, self.options.time_limit, stats, per_rival)?,
        };
        self.conclude(&qbox, &bounds, class, &rivals, &inputs, &out, stats)
    }

    /// The answer of a query from its MILP's outcome: a point found is re-evaluated in f64,
    /// and one within solver tolerance of a tie goes to one MILP per rival class.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        qbox: &InputBox,
        bounds: &NeuronBounds,
        class: usize,
        rivals: &[usize],
        inputs: &[VarId],
        out: &SolveOutcome,
        stats: &mut ExplainStats,
    ) -> Result<Entailment, MilpError> {
        match out.status {
            SolveStatus::Infeasible => Ok(Entailment::Entailed),
            SolveStatus::Unknown => {
                stats.timeouts += 1;
                Ok(Entailment::Unknown)
            }
            SolveStatus::Optimal | SolveStatus::Feasible => {
                let cand = clip(&out.values, inputs, qbox);
                if loses(&self.net, &cand, class)? {
                    return Ok(Entailment::Counterexample(cand));
                }
                // A candidate within solver tolerance of a tie: ask for the largest margin of
                // each other class instead, which either finds a clear counterexample or
                // proves entailment.
                let (e, calls, time) = class_margins(
                    &self.net,
                    qbox,
                    bounds,
                    class,
                    rivals,
                    &*self.backend,
                    &SolveOptions {
                        time_limit: self.options.time_limit,
                        ..Default::default()
                    },
                )?;
                stats.solver_calls += calls;
                stats.solver_time += time;
                if e == Entailment::Unknown {
                    stats.unvalidated += 1;
                }
                Ok(e)
            }
        }
    }
}

/// A query the cheap checks left open: its box, the classes that may still beat the
/// predicted one there, and the neuron bounds its MILP starts from.
#[derive(Clone)]
struct OpenQuery<'a> {
    qbox: InputBox,
    rivals: Vec<usize>,
    bounds: Cow<'a, NeuronBounds>,
}

/// A tentative free awaiting verification.
struct Pending<'a> {
    /// Position in the loop's order.
    at: usize,
    /// The fixed set just after it.
    fixed: Vec<bool>,
    /// Its query, as its screen left it.
    open: OpenQuery<'a>,
}

/// What a query's cheap checks concluded.
enum Screened<'a> {
    /// Proven by bounds or refuted by the falsifier.
    Decided(Entailment),
    /// Still open.
    Open(OpenQuery<'a>),
}

/// Whether `c` lies in the box that fixes the features marked in `fixed` to their values in
/// `x` (points from the solver are clipped to their box, so fixed features are exact).
fn in_box(x: &[f64], fixed: &[bool], c: &[f64]) -> bool {
    fixed
        .iter()
        .zip(x.iter().zip(c))
        .all(|(&f, (a, b))| !f || a == b)
}

/// What one explanation's queries learn about the next ones: each query frees one more
/// feature than the last entailed one, so its cost resembles theirs.
#[derive(Debug, Clone)]
struct QueryHistory {
    /// Input splitting is still worth trying: cleared when a query runs it out of budget or
    /// time.
    split_on: bool,
    /// How long splitting's latest decision took; later queries give their MILP that long
    /// first.
    split_last: Option<Duration>,
    /// The slowest MILP that decided a query within its escalation trial; later trials last
    /// [`TRIAL_GROWTH`] times as long, if that is longer than [`QueryTightening::after`].
    slowest_trial: Duration,
    /// A query of this explanation has escalated ([`QueryTightening::trial_once`]).
    escalated: bool,
    /// The latest escalation's box and the bounds its tightening proved there: sound on every
    /// box inside it.
    tightened: Option<(InputBox, NeuronBounds)>,
}

impl QueryHistory {
    fn new(split_on: bool) -> Self {
        QueryHistory {
            split_on,
            split_last: None,
            slowest_trial: Duration::ZERO,
            escalated: false,
            tightened: None,
        }
    }

    /// The latest escalation's bounds, when `qbox` lies inside its box.
    fn tightened_around(&self, qbox: &InputBox) -> Option<&NeuronBounds> {
        let (b, bounds) = self.tightened.as_ref()?;
        let inside = (0..qbox.dim())
            .all(|i| qbox.lower()[i] >= b.lower()[i] && qbox.upper()[i] <= b.upper()[i]);
        inside.then_some(bounds)
    }

    /// Length of the next escalation trial.
    fn trial(&self, after: Duration) -> Duration {
        after.max(self.slowest_trial.mul_f64(TRIAL_GROWTH))
    }

    /// Notes a trial MILP's outcome. Only a decision reached before the trial's limit counts:
    /// one that stopped at the limit with some point (status Feasible) says nothing about how
    /// long deciding takes, and counting it would let each such trial grow the next by 1.5×.
    fn record_trial(&mut self, out: &SolveOutcome, limit: Duration) {
        if out.status != SolveStatus::Unknown && out.time < limit {
            self.slowest_trial = self.slowest_trial.max(out.time);
        }
    }
}

/// How much longer than the slowest trial-decided MILP of the explanation so far the next
/// escalation trial lasts. MNIST 6L-8N's MILPs grow from 0.4 s to 1.2 s over an explanation,
/// so a fixed 1 s trial escalated queries one step short of being decided (after the
/// tightening their MILPs still took 0.75–1.27 s): test rows 1–3, one at a time, side by side
/// in one sitting, took 89.2 s with the fixed trial and 79.9 s with this (row 1: 9
/// escalations → 0, 53.4 s → 40.2 s). Digits 6L-12N's hard queries exceed any such trial, and
/// its rows 3–4 took the same time either way (183.8 s, 183.2 s).
const TRIAL_GROWTH: f64 = 1.5;

fn clip(values: &[f64], inputs: &[VarId], b: &InputBox) -> Vec<f64> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, v)| values[v.index()].clamp(b.lower()[i], b.upper()[i]))
        .collect()
}

fn stats_of(net: &Mlp, b: &NeuronBounds) -> EncodingStats {
    let mut s = EncodingStats::default();
    for (l, layer) in net.layers().iter().enumerate() {
        if matches!(layer.activation(), provenn_nn::Activation::Identity) {
            continue;
        }
        for i in 0..b.layers[l].len() {
            if b.layers[l].lower[i] >= 0.0 || b.layers[l].upper[i] <= 0.0 {
                s.stable += 1;
            } else {
                s.binaries += 1;
            }
        }
    }
    s
}

struct DisjunctionQuery {
    milp: Milp,
    inputs: Vec<VarId>,
    stats: EncodingStats,
}

/// Margin at which the explainer stops searching: a counterexample whose other class leads by
/// this much re-validates in f64 without doubt.
const CLEAR_MARGIN: f64 = 1e-4;

/// "Some class `j ≠ class` has `o_j ≥ o_class`" over `qbox`, as in the reference — one binary
/// `q_j` per rival class and `Σ q_j ≥ 1` — with a lead `s ≥ 0` that is maximised until it
/// reaches [`CLEAR_MARGIN`]: `o_j − o_class ≥ s − M_j (1 − q_j)`. Infeasible ⇔ entailed, as in
/// the plain feasibility query; a found point leads clearly whenever any point does, so
/// near-ties within solver tolerance rarely need the per-class fallback. `rivals` are the
/// classes that bound propagation could not rule out on `qbox`; the others are left out.
fn disjunction_query(
    net: &Mlp,
    qbox: &InputBox,
    bounds: &NeuronBounds,
    class: usize,
    rivals: &[usize],
) -> Result<DisjunctionQuery, MilpError> {
    let mut m = Milp::new();
    let (inputs, xs) = input_vars(&mut m, qbox.lower(), qbox.upper());
    let enc = encode_network(&mut m, net, &xs, bounds)?;
    let out_b = bounds.layers.last().expect("at least one layer");
    let s_max = 1.0;
    let s = m.continuous(0.0, s_max);
    let mut qs = Vec::new();
    for &j in rivals {
        // Upper bound of o_class − o_j + s over the box.
        let big = out_b.upper[class] - out_b.lower[j] + s_max;
        if out_b.upper[j] < out_b.lower[class] {
            continue; // class j can never reach o_class
        }
        let qj = m.binary();
        let mut d = enc.outputs[class].clone();
        d.add_scaled(-1.0, &enc.outputs[j]);
        // o_c − o_j + s ≤ M_j (1 − q_j)  ⇔  d + s + M·q_j ≤ M − const
        let mut coefs = d.coefs.clone();
        coefs.push((s, 1.0));
        coefs.push((qj, big));
        m.le(coefs, big - d.constant);
        qs.push(qj);
    }
    if qs.is_empty() {
        // No class can catch up: an always-infeasible row keeps the query a MILP.
        let v = m.continuous(0.0, 0.0);
        m.ge(vec![(v, 1.0)], 1.0);
    } else {
        m.ge(qs.iter().map(|&q| (q, 1.0)).collect(), 1.0);
    }
    m.set_objective(Sense::Maximise, vec![(s, 1.0)]);
    Ok(DisjunctionQuery {
        milp: m,
        inputs,
        stats: enc.stats,
    })
}

/// The open query as one MILP per rival class `j`: maximise a lead `s ≥ 0` subject to
/// `o_j − o_class ≥ s`, until it reaches [`CLEAR_MARGIN`]. Entailed ⇔ every one is infeasible,
/// so no indicator binaries and no big-M rows on the outputs weaken the relaxation. Rivals go
/// in order of how far their output bound reaches past the predicted class's (the likeliest
/// winner first), within one time limit for all; the first point found ends the query. Returns
/// the input variables (shared by all) and the combined outcome: the point found, else
/// infeasible when all were, else unknown.
#[allow(clippy::too_many_arguments)]
fn rival_by_rival(
    net: &Mlp,
    qbox: &InputBox,
    bounds: &NeuronBounds,
    class: usize,
    rivals: &[usize],
    backend: &dyn Backend,
    time_limit: Option<Duration>,
    stats: &mut ExplainStats,
) -> Result<(Vec<VarId>, SolveOutcome), MilpError> {
    let start = Instant::now();
    let mut m = Milp::new();
    let (inputs, xs) = input_vars(&mut m, qbox.lower(), qbox.upper());
    let enc = encode_network(&mut m, net, &xs, bounds)?;
    stats.encoded.stable += enc.stats.stable;
    stats.encoded.binaries += enc.stats.binaries;
    let out_b = bounds.layers.last().expect("at least one layer");
    let reach = |j: usize| out_b.upper[j] - out_b.lower[class];
    let mut order: Vec<usize> = rivals
        .iter()
        .copied()
        .filter(|&j| reach(j) >= 0.0)
        .collect();
    order.sort_by(|&a, &b| reach(b).total_cmp(&reach(a)));
    // The lead is capped only by how far any rival can reach, not at 1: with a cap the LP
    // relaxations of most branch-and-bound nodes sit at it, their bounds say nothing, and
    // branching goes blind. No big-M row contains it, so the cap costs nothing in strength.
    // Digits 6L-12N rows 3–7, 87, 131 and 135 (one at a time, side by side) took 254.3 s
    // against 320.1 s capped at 1 (row 77: 59.8 s against 99.9 s).
    let s_max = order.first().map_or(1.0, |&j| reach(j).max(1.0));
    let s = m.continuous(0.0, s_max);
    m.set_objective(Sense::Maximise, vec![(s, 1.0)]);
    let mut status = SolveStatus::Infeasible;
    for j in order {
        let limit = match time_limit.map(|t| t.checked_sub(start.elapsed())) {
            Some(Some(left)) if !left.is_zero() => Some(left),
            Some(_) => {
                status = SolveStatus::Unknown;
                break;
            }
            None => None,
        };
        let mut d = enc.outputs[j].clone();
        d.add_scaled(-1.0, &enc.outputs[class]);
        let mut coefs = d.coefs;
        coefs.push((s, -1.0));
        let mut mj = m.clone();
        mj.ge(coefs, -d.constant);
        let out = backend.solve(
            &mj,
            &SolveOptions {
                time_limit: limit,
                objective_target: Some(CLEAR_MARGIN),
                ..Default::default()
            },
        )?;
        stats.solver_calls += 1;
        stats.solver_time += out.time;
        match out.status {
            SolveStatus::Infeasible => {}
            SolveStatus::Unknown => status = SolveStatus::Unknown,
            SolveStatus::Optimal | SolveStatus::Feasible => {
                return Ok((
                    inputs,
                    SolveOutcome {
                        time: start.elapsed(),
                        ..out
                    },
                ))
            }
        }
    }
    Ok((
        inputs,
        SolveOutcome {
            status,
            objective: None,
            bound: None,
            values: Vec::new(),
            time: start.elapsed(),
        },
    ))
}

/// The result of checking an explanation independently of the explainer.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplanationCheck {
    /// Fixing the kept features entails the class (`None`: not decided).
    pub entailed: Option<bool>,
    /// For each kept feature: whether freeing it yields a re-validated counterexample.
    pub necessary: Vec<Option<bool>>,
    /// How many entries of `necessary` the explanation's own witnesses settled (each checked
    /// here: inside the box, and losing in f64) rather than a MILP.
    pub by_witness: usize,
}

impl ExplanationCheck {
    /// Entailed, and every kept feature shown necessary.
    pub fn is_valid(&self) -> bool {
        self.entailed == Some(true) && self.necessary.iter().all(|n| *n == Some(true))
    }

    /// The check decided against the explanation: not entailed, or a kept feature that can be
    /// freed. (Neither valid nor refuted: some question was left undecided.)
    pub fn is_refuted(&self) -> bool {
        self.entailed == Some(false) || self.necessary.contains(&Some(false))
    }
}

/// The neuron bounds [`entailed_by_class_margins`] encodes the network with, all computed for
/// the query box alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarginBounds {
    /// Interval arithmetic intersected with CROWN: no solver claim enters the bounds (the
    /// test suite's brute-force oracle uses these).
    Propagated,
    /// Those, tightened as an escalated explainer query is by default ([`QueryTightening`]'s
    /// defaults): LP on every layer, then [`Tightening::MilpSign`] MILPs (each within
    /// `per_solve`, or its LP relaxation's bound) on the layers before the last `lp_layers`,
    /// then LP on those. Each bound
    /// is one the solver proved, padded, and confirmed by a second solve when the options
    /// ask for it ([`SolveOptions::confirm_proofs`], as [`check_explanation`] does); a bound
    /// not proven leaves the propagated one. Checking explanations one thread each, the
    /// variants one after the other on the same explanations: Digits 6L-12N test rows 3–7
    /// 41.9 s against 142.5 s propagated (95.7 s with the LPs alone); MNIST 6L-8N rows 0–3
    /// 17.4 s against 50.1 s (45.7 s).
    Tightened,
}

/// Decides entailment with a different encoding from the explainer's: one MILP per other class
/// maximising `o_j − o_class`, on bounds computed for the query box only (no global bounds, no
/// Box shortcut, no indicator binaries), as `how` says.
pub fn entailed_by_class_margins(
    net: &Mlp,
    qbox: &InputBox,
    class: usize,
    how: MarginBounds,
    backend: &dyn Backend,
    options: &SolveOptions,
) -> Result<Entailment, MilpError> {
    check_encodable(net)?;
    let mut bounds = propagated_bounds(net, qbox)?;
    if how == MarginBounds::Tightened {
        let recipe = QueryTightening::default();
        let n = net.layers().len();
        let lp_from = n.saturating_sub(recipe.lp_layers.max(1));
        let per_milp = SolveOptions {
            time_limit: Some(
                options
                    .time_limit
                    .map_or(recipe.per_solve, |t| t.min(recipe.per_solve)),
            ),
            ..*options
        };
        for (layers, mode, opts) in [
            (0..n, Tightening::Lp, options),
            (0..lp_from, Tightening::MilpSign, &per_milp),
            (lp_from..n, Tightening::Lp, options),
        ] {
            bounds = tightened_from(net, qbox, bounds, layers, mode, backend, opts)?.bounds;
        }
    }
    let rivals: Vec<usize> = (0..net.n_outputs()).filter(|&j| j != class).collect();
    Ok(class_margins(net, qbox, &bounds, class, &rivals, backend, options)?.0)
}

/// One MILP per other class `j` maximising `o_j − o_class` over the points of `qbox` where it
/// is at least `−τ` (`τ` the padding of a proven bound at 0), stopping at the first point
/// past [`CLEAR_MARGIN`]; returns the answer, the number of solver calls and the solver time.
/// Rival `j` is ruled out when that MILP is infeasible (or its proven bound, padded, is below
/// zero). Without the cut-off row each MILP had to close its gap at the exact (negative)
/// maximum, where only its sign matters: checking Digits 6L-12N explanations (test rows 3, 6
/// and 7, 60 s per solve) took 60.1 s with it against 136.8 s.
fn class_margins(
    net: &Mlp,
    qbox: &InputBox,
    bounds: &NeuronBounds,
    class: usize,
    rivals: &[usize],
    backend: &dyn Backend,
    options: &SolveOptions,
) -> Result<(Entailment, usize, Duration), MilpError> {
    let mut m = Milp::new();
    let (inputs, xs) = input_vars(&mut m, qbox.lower(), qbox.upper());
    let enc = encode_network(&mut m, net, &xs, bounds)?;
    let mut undecided = false;
    let (mut calls, mut time) = (0, Duration::ZERO);
    for &j in rivals {
        let mut d: Lin = enc.outputs[j].clone();
        d.add_scaled(-1.0, &enc.outputs[class]);
        let mut mm = m.clone();
        let tau = pad_for(backend.tolerance(), 0.0, &d);
        mm.ge(d.coefs.clone(), -tau - d.constant);
        mm.set_objective(Sense::Maximise, d.coefs.clone());
        let out = backend.solve(
            &mm,
            &SolveOptions {
                objective_target: Some(CLEAR_MARGIN - d.constant),
                ..*options
            },
        )?;
        calls += 1;
        time += out.time;
        if !out.values.is_empty() {
            let cand = clip(&out.values, &inputs, qbox);
            if loses(net, &cand, class)? {
                return Ok((Entailment::Counterexample(cand), calls, time));
            }
        }
        match (out.status, out.bound) {
            (SolveStatus::Infeasible, _) => {}
            (_, Some(b))
                if b + d.constant + pad_for(backend.tolerance(), b + d.constant, &d) < 0.0 => {}
            _ => undecided = true,
        }
    }
    let e = if undecided {
        Entailment::Unknown
    } else {
        Entailment::Entailed
    };
    Ok((e, calls, time))
}

/// Checks `explanation` of the prediction at `x` over `domain`: entailment of the kept set
/// with [`entailed_by_class_margins`] on [`MarginBounds::Tightened`] bounds (a different
/// encoding from the explainer's, every bound and the proof confirmed by a second solve), and
/// a counterexample for each kept feature freed alone.
///
/// A counterexample needs no solver to be trusted: the explanation's witness for a feature is
/// accepted when it lies in the box with that feature freed and another class scores at least
/// as high on it in f64. Features without such a witness get the class-margin MILPs.
pub fn check_explanation(
    net: &Mlp,
    domain: &InputBox,
    x: &[f64],
    explanation: &Explanation,
    backend: &dyn Backend,
    options: &SolveOptions,
) -> Result<ExplanationCheck, MilpError> {
    let fixed_box = |free: Option<usize>| -> Result<InputBox, MilpError> {
        let mut b = domain.clone();
        for &i in &explanation.features {
            if Some(i) != free {
                b.fix(i, x[i])?;
            }
        }
        Ok(b)
    };
    let decide = |e: Entailment| match e {
        Entailment::Entailed => Some(true),
        Entailment::Counterexample(_) => Some(false),
        Entailment::Unknown => None,
    };
    // Entailment is a proof claim (every class margin bounded below zero): confirm it with a
    // second solve. Necessity rests on counterexamples, which are re-validated instead.
    let entailed = decide(entailed_by_class_margins(
        net,
        &fixed_box(None)?,
        explanation.class,
        MarginBounds::Tightened,
        backend,
        &SolveOptions {
            confirm_proofs: true,
            ..*options
        },
    )?);
    let mut by_witness = 0;
    let necessary = explanation
        .features
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let b = fixed_box(Some(i))?;
            if let Some(Some(w)) = explanation.witnesses.get(k) {
                if w.len() == x.len() && b.contains(w) && loses(net, w, explanation.class)? {
                    by_witness += 1;
                    return Ok(Some(true));
                }
            }
            let e = entailed_by_class_margins(
                net,
                &b,
                explanation.class,
                MarginBounds::Tightened,
                backend,
                options,
            )?;
            Ok(decide(e).map(|entailed| !entailed))
        })
        .collect::<Result<Vec<_>, MilpError>>()?;
    Ok(ExplanationCheck {
        entailed,
        necessary,
        by_witness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escalation trial lasts `after` until a trial decides a query more slowly than
    /// `after / 1.5`, then 1.5× the slowest such decision; it never shrinks.
    #[test]
    fn escalation_trials_grow_with_the_slowest_decided_trial() {
        let mut h = QueryHistory::new(false);
        let after = Duration::from_secs(1);
        assert_eq!(h.trial(after), after);
        h.slowest_trial = Duration::from_millis(600);
        assert_eq!(h.trial(after), after);
        h.slowest_trial = Duration::from_millis(900);
        assert_eq!(h.trial(after), Duration::from_millis(1_350));
        assert_eq!(h.trial(Duration::from_secs(2)), Duration::from_secs(2));
    }

    /// Only trials decided before their limit grow the next one.
    #[test]
    fn trials_stopped_at_their_limit_do_not_grow_the_next() {
        let outcome = |status, millis| SolveOutcome {
            status,
            objective: None,
            bound: None,
            values: Vec::new(),
            time: Duration::from_millis(millis),
        };
        let limit = Duration::from_secs(1);
        let mut h = QueryHistory::new(false);
        h.record_trial(&outcome(SolveStatus::Feasible, 1_001), limit);
        h.record_trial(&outcome(SolveStatus::Unknown, 1_002), limit);
        assert_eq!(h.trial(limit), limit);
        h.record_trial(&outcome(SolveStatus::Infeasible, 800), limit);
        assert_eq!(h.trial(limit), Duration::from_millis(1_200));
        h.record_trial(&outcome(SolveStatus::Feasible, 900), limit);
        assert_eq!(h.trial(limit), Duration::from_millis(1_350));
    }
}
