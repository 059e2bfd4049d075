//! Verification of VNN-LIB properties (VNN-COMP's question: is there an input in the region
//! whose output is in the unsafe set?).
//!
//! The unsafe output condition is put in disjunctive normal form of half-spaces. Each input
//! box is then searched by branch and bound on the inputs: at every node the network is
//! evaluated at the centre (a hit is a counterexample), CROWN bounds every half-space of the
//! disjuncts still alive (floating-point sound, so a disjunct with one half-space bounded away
//! is impossible on the node), and the node is split in two along the input with the largest
//! `|∂/∂x_j| · width_j` of the closest half-space (or, with [`VerifyOptions::lookahead`], the
//! input whose halves bound best). Deep nodes go to the MILP certifier instead.
//! A projected-gradient attack runs first on each box.
//!
//! `Unsat` holds when every leaf was closed by CROWN (sound in real and f64 arithmetic) or by
//! the MILP certifier ("no point violates by more than its tolerance", counted separately);
//! `Sat` always carries an input in the region whose f64 output satisfies the unsafe condition
//! as evaluated by the DSL; running out of time gives `Unknown`.
use std::time::{Duration, Instant};

use nalgebra::{DMatrix, DVector};
use provenn_bounds::{BoundPropagator, CrownBounds, InputBox};
use provenn_dsl::ir::{Assignment, Cmp, Constraint, Formula, Var};
use provenn_dsl::vnnlib::VnnLib;
use provenn_nn::Mlp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::certify::{Certificate, CertifyOptions, ConstraintCertifier};
use crate::MilpError;

/// Parameters of a [`PropertyVerifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOptions {
    /// Wall-clock limit for one property (all its input boxes).
    pub time_limit: Duration,
    /// Random restarts of the projected-gradient attack per box and disjunct.
    pub attack_restarts: usize,
    /// Nodes at this depth go to the MILP certifier instead of being split.
    pub milp_depth: usize,
    /// Seed of the attack.
    pub seed: u64,
    /// Choose each split by bounding both halves of every candidate input (`2n` extra bound
    /// computations per node) instead of by `|∂/∂x_j| · width_j`. On ACAS Xu it needs fewer
    /// nodes but more time, so it is off by default.
    pub lookahead: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            time_limit: Duration::from_secs(60),
            attack_restarts: 64,
            milp_depth: 40,
            seed: 0,
            lookahead: false,
        }
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A counterexample: an input in the region and its f64 output, which satisfies the
    /// unsafe condition.
    Sat {
        /// The input.
        x: Vec<f64>,
        /// The network's output at `x`.
        y: Vec<f64>,
    },
    /// No input in the region reaches the unsafe set.
    Unsat,
    /// Not decided.
    Unknown {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// `sat`, `unsat` or `unknown` (VNN-COMP's words).
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Sat { .. } => "sat",
            Verdict::Unsat => "unsat",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    /// VNN-COMP's result text: the word, and for `sat` the assignment of `X_i` and `Y_j`.
    pub fn vnncomp(&self) -> String {
        match self {
            Verdict::Sat { x, y } => {
                let mut s = String::from("sat\n(");
                let vars: Vec<String> = x
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("(X_{i} {v:e})"))
                    .chain(y.iter().enumerate().map(|(j, v)| format!("(Y_{j} {v:e})")))
                    .collect();
                s.push_str(&vars.join("\n "));
                s.push_str(")\n");
                s
            }
            other => format!("{}\n", other.word()),
        }
    }
}

/// A verdict with the work it took.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The answer.
    pub verdict: Verdict,
    /// Branch-and-bound nodes bounded.
    pub nodes: usize,
    /// Nodes closed by the MILP certifier (an `Unsat` with any holds up to its tolerance).
    pub milp_leaves: usize,
    /// Wall time.
    pub time: Duration,
}

/// `out·y + inp·x + k ≤ 0` (`< 0` when strict).
#[derive(Debug, Clone)]
struct HalfSpace {
    out: Vec<f64>,
    inp: Vec<f64>,
    k: f64,
    strict: bool,
}

impl HalfSpace {
    fn value(&self, x: &[f64], y: &[f64]) -> f64 {
        let a: f64 = self.out.iter().zip(y).map(|(c, v)| c * v).sum();
        let b: f64 = self.inp.iter().zip(x).map(|(c, v)| c * v).sum();
        a + b + self.k
    }
}

type Disjunct = Vec<HalfSpace>;

/// At most this many disjuncts after expansion.
const MAX_DISJUNCTS: usize = 4096;

/// The formula as a disjunction of conjunctions of half-spaces.
fn dnf(f: &Formula, n_in: usize, n_out: usize) -> Result<Vec<Disjunct>, MilpError> {
    Ok(match f {
        Formula::True => vec![vec![]],
        Formula::False => vec![],
        Formula::Atom(at) => {
            let mut out = vec![0.0; n_out];
            let mut inp = vec![0.0; n_in];
            let konst = |c: &provenn_dsl::ir::Expr| {
                c.as_const()
                    .and_then(num_traits::ToPrimitive::to_f64)
                    .ok_or_else(|| MilpError::Unsupported("a non-constant coefficient".into()))
            };
            for (v, c) in &at.expr.terms {
                let c = konst(c)?;
                match *v {
                    Var::Output(_, k) if k < n_out => out[k] += c,
                    Var::Input(_, j) if j < n_in => inp[j] += c,
                    _ => return Err(MilpError::Dimension(format!("variable {v:?} out of range"))),
                }
            }
            let k = konst(&at.expr.constant)?;
            let neg = |v: &[f64]| v.iter().map(|c| -c).collect::<Vec<_>>();
            let le = |strict| HalfSpace {
                out: out.clone(),
                inp: inp.clone(),
                k,
                strict,
            };
            let ge = |strict| HalfSpace {
                out: neg(&out),
                inp: neg(&inp),
                k: -k,
                strict,
            };
            match at.cmp {
                Cmp::Le => vec![vec![le(false)]],
                Cmp::Lt => vec![vec![le(true)]],
                Cmp::Ge => vec![vec![ge(false)]],
                Cmp::Gt => vec![vec![ge(true)]],
                Cmp::Eq => vec![vec![le(false), ge(false)]],
            }
        }
        Formula::Or(v) => {
            let mut all = Vec::new();
            for g in v {
                all.extend(dnf(g, n_in, n_out)?);
                if all.len() > MAX_DISJUNCTS {
                    return Err(MilpError::Unsupported("too many disjuncts".into()));
                }
            }
            all
        }
        Formula::And(v) => {
            let mut acc: Vec<Disjunct> = vec![vec![]];
            for g in v {
                let d = dnf(g, n_in, n_out)?;
                let mut next = Vec::with_capacity(acc.len() * d.len());
                for a in &acc {
                    for b in &d {
                        next.push(a.iter().chain(b).cloned().collect());
                    }
                }
                if next.len() > MAX_DISJUNCTS {
                    return Err(MilpError::Unsupported("too many disjuncts".into()));
                }
                acc = next;
            }
            acc
        }
        Formula::Count { .. } => {
            return Err(MilpError::Unsupported(
                "counting in an unsafe condition".into(),
            ))
        }
    })
}

/// The lower and upper halves of `bx` cut at the midpoint of input `j`.
pub(crate) fn bisect(bx: &InputBox, j: usize) -> Option<(InputBox, InputBox)> {
    let (lo, hi) = (bx.lower(), bx.upper());
    let mid = 0.5 * (lo[j] + hi[j]);
    let (mut u1, mut l2) = (hi.to_vec(), lo.to_vec());
    u1[j] = mid;
    l2[j] = mid;
    Some((
        InputBox::new(lo.to_vec(), u1).ok()?,
        InputBox::new(l2, hi.to_vec()).ok()?,
    ))
}

/// Decides VNN-LIB properties of ReLU networks.
pub struct PropertyVerifier {
    options: VerifyOptions,
}

/// What a node came to.
enum Node {
    Closed { milp: bool },
    Sat(Vec<f64>, Vec<f64>),
    Split(InputBox, InputBox, Vec<usize>),
    Unknown(String),
}

impl PropertyVerifier {
    /// Checks the options.
    pub fn new(options: VerifyOptions) -> Result<Self, MilpError> {
        if options.time_limit.is_zero() {
            return Err(MilpError::InvalidParameter("time limit of zero".into()));
        }
        Ok(PropertyVerifier { options })
    }

    /// Decides `prop` on `net`.
    pub fn verify(&self, net: &Mlp, prop: &VnnLib) -> Result<VerifyReport, MilpError> {
        let start = Instant::now();
        let deadline = start + self.options.time_limit;
        if prop.n_inputs != net.n_inputs() || prop.n_outputs != net.n_outputs() {
            return Err(MilpError::Dimension(format!(
                "property has {} inputs and {} outputs, network {} and {}",
                prop.n_inputs,
                prop.n_outputs,
                net.n_inputs(),
                net.n_outputs()
            )));
        }
        let disjuncts = dnf(&prop.unsafe_output, prop.n_inputs, prop.n_outputs)?;
        let mut report = VerifyReport {
            verdict: Verdict::Unsat,
            nodes: 0,
            milp_leaves: 0,
            time: Duration::ZERO,
        };
        let mut unknown = None;
        for (b, region) in prop.input_boxes.iter().enumerate() {
            let (lo, hi): (Vec<f64>, Vec<f64>) = region.iter().copied().unzip();
            let root = InputBox::new(lo, hi)?;
            match self.verify_box(net, prop, &disjuncts, root, deadline, &mut report)? {
                Verdict::Sat { x, y } => {
                    report.verdict = Verdict::Sat { x, y };
                    report.time = start.elapsed();
                    return Ok(report);
                }
                Verdict::Unknown { reason } => {
                    unknown.get_or_insert(format!("input box {b}: {reason}"));
                }
                Verdict::Unsat => {}
            }
        }
        if let Some(reason) = unknown {
            report.verdict = Verdict::Unknown { reason };
        }
        report.time = start.elapsed();
        Ok(report)
    }

    /// A checked counterexample: `x` in the region and `U(f(x))` in f64.
    fn check(net: &Mlp, prop: &VnnLib, region: &InputBox, x: &[f64]) -> Option<Vec<f64>> {
        if !region.contains(x) {
            return None;
        }
        let y = net.forward(&DVector::from_column_slice(x)).ok()?;
        let a = Assignment {
            x,
            y: y.as_slice(),
            x2: &[],
            y2: &[],
        };
        prop.unsafe_output.holds(&a).then(|| y.as_slice().to_vec())
    }

    /// `∂(h·(y, x))/∂x` at `x`.
    fn gradient(net: &Mlp, h: &HalfSpace, x: &[f64]) -> Option<Vec<f64>> {
        let trace = net.trace(&DMatrix::from_row_slice(1, x.len(), x)).ok()?;
        let g = DMatrix::from_row_slice(1, h.out.len(), &h.out);
        let (_, gx) = net.backward(&trace, &g).ok()?;
        Some((0..x.len()).map(|j| gx[(0, j)] + h.inp[j]).collect())
    }

    /// Projected sign-gradient descent on the worst half-space of each disjunct.
    fn attack(
        &self,
        net: &Mlp,
        prop: &VnnLib,
        disjuncts: &[Disjunct],
        region: &InputBox,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        let (lo, hi) = (region.lower(), region.upper());
        let n = lo.len();
        (0..self.options.attack_restarts * disjuncts.len())
            .into_par_iter()
            .find_map_any(|r| {
                let d = &disjuncts[r % disjuncts.len()];
                let mut rng = ChaCha8Rng::seed_from_u64(self.options.seed ^ (r as u64));
                let x: Vec<f64> = (0..n)
                    .map(|j| {
                        if r < disjuncts.len() {
                            0.5 * (lo[j] + hi[j])
                        } else {
                            rng.gen_range(lo[j]..=hi[j])
                        }
                    })
                    .collect();
                self.descend(net, prop, d, region, region, x, 200)
            })
    }

    /// Projected sign-gradient descent on the worst half-space of `d` within `bx`, checking
    /// every iterate against the region `root`.
    #[allow(clippy::too_many_arguments)]
    fn descend(
        &self,
        net: &Mlp,
        prop: &VnnLib,
        d: &Disjunct,
        root: &InputBox,
        bx: &InputBox,
        mut x: Vec<f64>,
        steps: usize,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        let (lo, hi) = (bx.lower(), bx.upper());
        for it in 0..steps {
            if let Some(y) = Self::check(net, prop, root, &x) {
                return Some((x, y));
            }
            let y = net.forward(&DVector::from_column_slice(&x)).ok()?;
            let worst = d.iter().max_by(|a, b| {
                a.value(&x, y.as_slice())
                    .total_cmp(&b.value(&x, y.as_slice()))
            })?;
            let g = Self::gradient(net, worst, &x)?;
            let step = 0.1 * (1.0 - it as f64 / steps as f64);
            for j in 0..x.len() {
                x[j] = (x[j] - step * (hi[j] - lo[j]) * g[j].signum()).clamp(lo[j], hi[j]);
            }
        }
        Self::check(net, prop, root, &x).map(|y| (x, y))
    }

    fn verify_box(
        &self,
        net: &Mlp,
        prop: &VnnLib,
        disjuncts: &[Disjunct],
        root: InputBox,
        deadline: Instant,
        report: &mut VerifyReport,
    ) -> Result<Verdict, MilpError> {
        if disjuncts.is_empty() {
            return Ok(Verdict::Unsat);
        }
        if let Some((x, y)) = self.attack(net, prop, disjuncts, &root) {
            return Ok(Verdict::Sat { x, y });
        }
        let all: Vec<usize> = (0..disjuncts.len()).collect();
        let mut stack = vec![(root.clone(), all, 0usize)];
        let batch = 2 * rayon::current_num_threads().max(1);
        while !stack.is_empty() {
            if Instant::now() >= deadline {
                return Ok(Verdict::Unknown {
                    reason: format!("time limit with {} open nodes", stack.len()),
                });
            }
            let take = stack.len().min(batch);
            let work: Vec<_> = stack.split_off(stack.len() - take);
            let results: Vec<(Node, usize)> = work
                .into_par_iter()
                .map(|(bx, alive, depth)| {
                    let node = self.node(net, prop, disjuncts, &root, &bx, &alive, depth, deadline);
                    (node, depth)
                })
                .collect();
            for (node, depth) in results {
                report.nodes += 1;
                match node {
                    Node::Closed { milp } => report.milp_leaves += usize::from(milp),
                    Node::Sat(x, y) => return Ok(Verdict::Sat { x, y }),
                    Node::Split(a, b, alive) => {
                        stack.push((a, alive.clone(), depth + 1));
                        stack.push((b, alive, depth + 1));
                    }
                    Node::Unknown(r) => return Ok(Verdict::Unknown { reason: r }),
                }
            }
        }
        Ok(Verdict::Unsat)
    }

    /// CROWN bounds on every half-space of the disjuncts in `alive` over `bx`: for each
    /// disjunct not ruled out, `(disjunct, best lower bound of its half-spaces, that
    /// half-space)`. A disjunct is ruled out when one half-space's value is bounded above 0
    /// (≥ 0 when strict), since it needs all of them ≤ 0.
    fn open_disjuncts(
        net: &Mlp,
        disjuncts: &[Disjunct],
        alive: &[usize],
        bx: &InputBox,
    ) -> Result<Vec<(usize, f64, usize)>, String> {
        let (lo, hi) = (bx.lower(), bx.upper());
        let rows: Vec<(usize, usize)> = alive
            .iter()
            .flat_map(|&d| (0..disjuncts[d].len()).map(move |h| (d, h)))
            .collect();
        let n_out = net.n_outputs();
        let spec = DMatrix::from_fn(rows.len(), n_out, |r, k| {
            disjuncts[rows[r].0][rows[r].1].out[k]
        });
        let bounds = CrownBounds
            .bounds(net, bx, Some(&spec))
            .map_err(|e| format!("bounds: {e}"))?;
        let sb = bounds.spec().ok_or("no spec bounds")?;
        let mut open = Vec::new();
        let mut r = 0;
        for &d in alive {
            let mut refuted = false;
            let mut best = (f64::NEG_INFINITY, 0);
            for (h, hs) in disjuncts[d].iter().enumerate() {
                let inp_min: f64 = hs
                    .inp
                    .iter()
                    .zip(lo.iter().zip(hi))
                    .map(|(c, (l, u))| (c * l).min(c * u))
                    .sum();
                // Rounding of the sum: a relative pad keeps the test sound.
                let parts = sb.lower[r + h].abs() + inp_min.abs() + hs.k.abs();
                let value = sb.lower[r + h] + inp_min + hs.k - 1e-12 * (1.0 + parts);
                if value > 0.0 || (hs.strict && value >= 0.0) {
                    refuted = true;
                }
                if value > best.0 {
                    best = (value, h);
                }
            }
            r += disjuncts[d].len();
            if !refuted {
                open.push((d, best.0, best.1));
            }
        }
        Ok(open)
    }

    /// The input with the largest `|∂/∂x_j| · width_j` at the centre.
    fn gradient_split(bx: &InputBox, g: &[f64]) -> usize {
        let (lo, hi) = (bx.lower(), bx.upper());
        (0..lo.len())
            .max_by(|&a, &b| {
                let sa = g[a].abs() * (hi[a] - lo[a]) + 1e-12 * (hi[a] - lo[a]);
                let sb = g[b].abs() * (hi[b] - lo[b]) + 1e-12 * (hi[b] - lo[b]);
                sa.total_cmp(&sb)
            })
            .expect("inputs")
    }

    /// The input whose bisection most improves the halves' bounds: each candidate is split and
    /// both halves are bounded; the score is the mean of the halves' least-refuted open
    /// disjunct bounds, a closed half counting as 0. (Scoring by the worse half alone keeps
    /// splitting a narrow input, because CROWN bounds are not monotone under splitting.)
    /// Ties go to the gradient rule.
    fn lookahead_split(
        net: &Mlp,
        disjuncts: &[Disjunct],
        alive: &[usize],
        bx: &InputBox,
        g: &[f64],
    ) -> usize {
        let (lo, hi) = (bx.lower(), bx.upper());
        let score = |b: InputBox| -> f64 {
            match Self::open_disjuncts(net, disjuncts, alive, &b) {
                Ok(open) => open.iter().map(|o| o.1).fold(f64::INFINITY, f64::min),
                Err(_) => f64::NEG_INFINITY,
            }
        };
        let fallback = Self::gradient_split(bx, g);
        let mut best = (f64::NEG_INFINITY, fallback);
        for j in 0..lo.len() {
            if hi[j] <= lo[j] {
                continue;
            }
            let Some((a, b)) = bisect(bx, j) else {
                continue;
            };
            // A closed half counts as slack 0; the mean rewards splits that help both halves.
            let s = 0.5 * (score(a).min(0.0) + score(b).min(0.0));
            if s > best.0 || (s == best.0 && j == fallback) {
                best = (s, j);
            }
        }
        best.1
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &self,
        net: &Mlp,
        prop: &VnnLib,
        disjuncts: &[Disjunct],
        root: &InputBox,
        bx: &InputBox,
        alive: &[usize],
        depth: usize,
        deadline: Instant,
    ) -> Node {
        let (lo, hi) = (bx.lower(), bx.upper());
        let centre: Vec<f64> = lo.iter().zip(hi).map(|(l, h)| 0.5 * (l + h)).collect();
        if let Some(y) = Self::check(net, prop, root, &centre) {
            return Node::Sat(centre, y);
        }
        let lowest = match Self::open_disjuncts(net, disjuncts, alive, bx) {
            Ok(l) => l,
            Err(e) => return Node::Unknown(e),
        };
        let still: Vec<usize> = lowest.iter().map(|l| l.0).collect();
        if still.is_empty() {
            return Node::Closed { milp: false };
        }
        if depth >= self.options.milp_depth {
            return self.milp_leaf(net, prop, root, bx, deadline);
        }
        // Split where the closest half-space is most sensitive.
        let &(d, _, h) = lowest
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("a disjunct is alive");
        // A few descent steps inside the node towards the closest disjunct.
        if let Some((x, y)) = self.descend(net, prop, &disjuncts[d], root, bx, centre.clone(), 8) {
            return Node::Sat(x, y);
        }
        let g = Self::gradient(net, &disjuncts[d][h], &centre)
            .unwrap_or_else(|| vec![1.0; centre.len()]);
        let j = if self.options.lookahead {
            Self::lookahead_split(net, disjuncts, &still, bx, &g)
        } else {
            Self::gradient_split(bx, &g)
        };
        if hi[j] <= lo[j] {
            return self.milp_leaf(net, prop, root, bx, deadline);
        }
        // The half nearer the unsafe set (by the gradient) is explored first (pushed last).
        match bisect(bx, j) {
            Some((a, b)) if g[j] > 0.0 => Node::Split(b, a, still),
            Some((a, b)) => Node::Split(a, b, still),
            None => Node::Unknown("split failed".into()),
        }
    }

    /// Closes a node with the MILP certifier: the constraint "the unsafe condition fails".
    fn milp_leaf(
        &self,
        net: &Mlp,
        prop: &VnnLib,
        root: &InputBox,
        bx: &InputBox,
        deadline: Instant,
    ) -> Node {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Node::Unknown("time limit".into());
        }
        let certifier = match ConstraintCertifier::new(CertifyOptions {
            time_limit: Some(remaining),
            ..CertifyOptions::default()
        }) {
            Ok(c) => c,
            Err(e) => return Node::Unknown(e.to_string()),
        };
        let c = Constraint {
            two_copy: false,
            domain: bx.intervals(),
            formula: prop.unsafe_output.clone().negate(),
        };
        match certifier.certify_on(net, &c, bx, bx) {
            Ok(r) => match r.certificate {
                Certificate::Certified { .. } => Node::Closed { milp: true },
                Certificate::Violated(w) => match Self::check(net, prop, root, &w.x) {
                    Some(y) => Node::Sat(w.x, y),
                    None => Node::Unknown(
                        "the MILP's counterexample does not satisfy the unsafe condition in f64"
                            .into(),
                    ),
                },
                Certificate::Unknown { reason } => Node::Unknown(reason),
            },
            Err(e) => Node::Unknown(e.to_string()),
        }
    }
}
