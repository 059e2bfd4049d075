//! MaxSMT over Z3: hard constraints and weighted soft constraints (Booleans), solved by
//! repeated satisfiability calls with assumptions and unsat cores.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use z3::ast::Bool;
use z3::{Model, Params, SatResult, Solver};

mod fu_malik;
mod pmres;
mod z3opt;

pub use fu_malik::FuMalik;
pub use pmres::PmRes;
pub use z3opt::Z3Optimize;

/// A weighted soft constraint.
#[derive(Debug, Clone)]
pub struct SoftConstraint {
    /// The constraint.
    pub formula: Bool,
    /// Its weight (the cost of violating it); must be positive.
    pub weight: u64,
}

/// A MaxSMT instance: satisfy every hard constraint, minimise the weight of violated soft
/// constraints.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    /// Hard constraints.
    pub hard: Vec<Bool>,
    /// Soft constraints.
    pub soft: Vec<SoftConstraint>,
    /// An SMT-LIB logic to create the solver for (e.g. `"NRA"`), or Z3's default.
    pub logic: Option<String>,
}

/// A cancellation flag shared with another thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, unset token.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks every solve holding this token to stop (it then returns what it has).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Limits of one solve.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Wall-clock limit of the whole solve (all calls together).
    pub time_limit: Option<Duration>,
    /// Cancellation from another thread.
    pub cancel: Option<CancelToken>,
    /// Branch-and-bound nodes per MILP solve (HiGHS's `mip_max_nodes`; the Z3 solvers ignore
    /// it). Reaching it returns the best point found without proof of optimality
    /// ([`Status::Satisfiable`]), as a time limit does, but the same problem stops at the same
    /// point on any machine.
    pub node_limit: Option<u64>,
}

/// What a solve established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The model is optimal.
    Optimal,
    /// The model satisfies the hard constraints; optimality was not proven (limit reached).
    Satisfiable,
    /// The hard constraints are unsatisfiable.
    Unsatisfiable,
    /// Nothing established (limit reached, cancelled, or Z3 gave up).
    Unknown,
}

/// Counters of one solve.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SolveStats {
    /// Satisfiability calls.
    pub calls: usize,
    /// Unsat cores processed.
    pub cores: usize,
    /// Wall-clock time.
    pub time: Duration,
}

/// The result of a MaxSMT solve.
#[derive(Debug)]
pub struct MaxSmtOutcome {
    /// What was established.
    pub status: Status,
    /// The best model found (for `Optimal` and `Satisfiable`).
    pub model: Option<Model>,
    /// Weight of the soft constraints the model violates.
    pub cost: Option<u64>,
    /// Proven lower bound on the optimal cost.
    pub lower_bound: u64,
    /// Counters.
    pub stats: SolveStats,
    /// Why the status is `Unknown`/`Satisfiable`, when it is.
    pub reason: Option<String>,
}

/// A MaxSMT algorithm.
pub trait MaxSmtSolver {
    /// Short name for reports.
    fn name(&self) -> &'static str;
    /// Solves `instance` within `limits`.
    fn solve(&self, instance: &Instance, limits: &Limits) -> MaxSmtOutcome;
}

/// The weight of `instance`'s soft constraints that `model` violates.
pub(crate) fn cost_of(instance: &Instance, model: &Model) -> u64 {
    instance
        .soft
        .iter()
        .filter(|s| model.eval(&s.formula, true).and_then(|b| b.as_bool()) != Some(true))
        .map(|s| s.weight)
        .sum()
}

/// Runs `f` (a Z3 call on `ctx`) while a watchdog thread interrupts the context if the call
/// overruns `remaining` by 5% (+5 ms) or `cancel` is set.
pub(crate) fn with_watchdog<R>(
    ctx: &z3::Context,
    remaining: Option<Duration>,
    cancel: Option<&CancelToken>,
    f: impl FnOnce() -> R,
) -> R {
    let handle = ctx.handle();
    let token = cancel.cloned();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let grace = remaining.map(|r| Instant::now() + r + r / 20 + Duration::from_millis(5));
            loop {
                match done_rx.recv_timeout(Duration::from_millis(10)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let late = grace.is_some_and(|g| Instant::now() >= g);
                        if late || token.as_ref().is_some_and(CancelToken::is_cancelled) {
                            handle.interrupt();
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
        let r = f();
        drop(done_tx);
        r
    })
}

/// One solve's clock and solver.
pub(crate) struct Session<'a> {
    pub solver: Solver,
    pub instance: &'a Instance,
    limits: &'a Limits,
    start: Instant,
    deadline: Option<Instant>,
    pub stats: SolveStats,
    pub best: Option<(Model, u64)>,
    pub lower_bound: u64,
}

/// Result of one limited call.
pub(crate) enum Call {
    Sat(Model),
    /// The core, as sorted positions in the assumptions.
    Unsat(Vec<usize>),
    Stopped(String),
}

impl<'a> Session<'a> {
    pub fn new(instance: &'a Instance, limits: &'a Limits) -> Self {
        let solver = instance
            .logic
            .as_deref()
            .and_then(Solver::new_for_logic)
            .unwrap_or_default();
        for h in &instance.hard {
            solver.assert(h);
        }
        let start = Instant::now();
        Session {
            solver,
            instance,
            limits,
            start,
            deadline: limits.time_limit.map(|t| start + t),
            stats: SolveStats::default(),
            best: None,
            lower_bound: 0,
        }
    }

    /// One satisfiability call under `assumptions`, within what is left of the limits. Z3's
    /// own `timeout` parameter is the main limit; a watchdog interrupts the context shortly
    /// after the deadline (or on cancellation) in case Z3 overruns it.
    pub fn check(&mut self, assumptions: &[Bool]) -> Call {
        let cancelled = || {
            self.limits
                .cancel
                .as_ref()
                .is_some_and(CancelToken::is_cancelled)
        };
        if cancelled() {
            return Call::Stopped("cancelled".into());
        }
        let remaining = match self.deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(r) if r > Duration::from_millis(1) => Some(r),
                _ => return Call::Stopped("time limit".into()),
            },
            None => None,
        };
        let mut params = Params::new();
        params.set_u32(
            "timeout",
            remaining.map_or(u32::MAX, |r| r.as_millis().min(u32::MAX as u128) as u32),
        );
        self.solver.set_params(&params);
        self.stats.calls += 1;
        let solver = &self.solver;
        let result = with_watchdog(
            solver.get_context(),
            remaining,
            self.limits.cancel.as_ref(),
            || solver.check_assumptions(assumptions),
        );
        match result {
            SatResult::Sat => match self.solver.get_model() {
                Some(m) => Call::Sat(m),
                None => Call::Stopped("sat without a model".into()),
            },
            SatResult::Unsat => {
                let index: HashMap<String, usize> = assumptions
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a.to_string(), i))
                    .collect();
                let mut core: Vec<usize> = self
                    .solver
                    .get_unsat_core()
                    .iter()
                    .filter_map(|c| index.get(&c.to_string()).copied())
                    .collect();
                core.sort_unstable();
                core.dedup();
                Call::Unsat(core)
            }
            SatResult::Unknown => Call::Stopped(
                self.solver
                    .get_reason_unknown()
                    .unwrap_or_else(|| "unknown".into()),
            ),
        }
    }

    /// Records a model that satisfies the hard constraints.
    pub fn offer(&mut self, model: Model) {
        let cost = cost_of(self.instance, &model);
        if self.best.as_ref().is_none_or(|(_, c)| cost < *c) {
            self.best = Some((model, cost));
        }
    }

    /// The outcome once the algorithm ends with `status` (`Optimal` when it proved optimality).
    pub fn finish(mut self, proven_optimal: bool, reason: Option<String>) -> MaxSmtOutcome {
        self.stats.time = self.start.elapsed();
        let (status, model, cost) = match self.best.take() {
            Some((m, c)) if proven_optimal => (Status::Optimal, Some(m), Some(c)),
            Some((m, c)) => (Status::Satisfiable, Some(m), Some(c)),
            None => (Status::Unknown, None, None),
        };
        MaxSmtOutcome {
            status,
            model,
            cost,
            lower_bound: self.lower_bound,
            stats: self.stats,
            reason,
        }
    }

    /// The outcome for unsatisfiable hard constraints.
    pub fn unsatisfiable(mut self) -> MaxSmtOutcome {
        self.stats.time = self.start.elapsed();
        MaxSmtOutcome {
            status: Status::Unsatisfiable,
            model: None,
            cost: None,
            lower_bound: self.lower_bound,
            stats: self.stats,
            reason: None,
        }
    }

    /// First call: the hard constraints alone (an upper bound, or unsatisfiability).
    /// Returns `Err(outcome)` when the solve is already over.
    pub fn start(mut self) -> Result<Self, MaxSmtOutcome> {
        match self.check(&[]) {
            Call::Sat(m) => {
                self.offer(m);
                Ok(self)
            }
            Call::Unsat(_) => Err(self.unsatisfiable()),
            Call::Stopped(r) => Err(self.finish(false, Some(r))),
        }
    }
}
