//! A projected-gradient attack on pairs of inputs for [`RelationalProperty`]: the falsifier
//! beside the two-copy MILP. It can show a violation, never its absence.
//!
//! Each start is an admissible pair `(x, x′)`; signed gradient steps on both copies (shared
//! coordinates move together) raise the violation of one output, and every step projects the
//! pair back onto the admissible set (domain box; `x′_i ≥ x_i` and the other coordinates equal
//! for monotonicity; `‖x′ − x‖∞ ≤ δ` for robustness; equal outside the sensitive features for
//! fairness). The reported pair is re-evaluated with the network in `f64`.

use nalgebra::DMatrix;
use provenn_bounds::InputBox;
use provenn_nn::Mlp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::relational::{Direction, RelationalProperty};
use crate::TrainError;

/// Parameters of the attack.
#[derive(Debug, Clone, PartialEq)]
pub struct PairAttack {
    /// Random admissible starting pairs.
    pub starts: usize,
    /// Signed-gradient steps per start (the step shrinks linearly from 10% of the box).
    pub steps: usize,
    /// Seed of the starting pairs.
    pub seed: u64,
}

impl Default for PairAttack {
    fn default() -> Self {
        PairAttack {
            starts: 2000,
            steps: 50,
            seed: 0,
        }
    }
}

/// The worst pair an attack found.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackedPair {
    /// First input.
    pub x: Vec<f64>,
    /// Second input.
    pub x2: Vec<f64>,
    /// Output whose property it violates most.
    pub output: usize,
    /// Violation in `f64` (≤ 0: the property holds at this pair): `−σ(f(x′) − f(x))` for
    /// monotonicity, `|f(x′) − f(x)| − ε` otherwise.
    pub violation: f64,
}

/// What one start optimises and how its pair is kept admissible.
#[derive(Clone, Copy)]
enum Move {
    /// Only feature `i` differs, `x′_i ≥ x_i`; violation `−σ·Δf`.
    Monotone { i: usize, sigma: f64 },
    /// `|x′_j − x_j| ≤ δ`; violation `s·Δf − ε`.
    Robust { s: f64 },
    /// Equal outside the sensitive features; violation `s·Δf − ε`.
    Fair { s: f64 },
}

impl PairAttack {
    /// Attacks `net` for `property` over `domain`.
    pub fn run(
        &self,
        net: &Mlp,
        property: &RelationalProperty,
        domain: &InputBox,
    ) -> Result<AttackedPair, TrainError> {
        let n = domain.dim();
        property.validate(n)?;
        if net.n_inputs() != n {
            return Err(TrainError::InvalidParams(format!(
                "domain has {n} inputs, network {}",
                net.n_inputs()
            )));
        }
        if self.starts == 0 {
            return Err(TrainError::InvalidParams("the attack needs a start".into()));
        }
        let n_out = net.n_outputs();
        let (lo, hi) = (domain.lower(), domain.upper());
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let m = self.starts;
        let mut x = DMatrix::from_fn(m, n, |_, j| rng.gen_range(lo[j]..=hi[j]));
        let mut x2 = x.clone();
        let (epsilon, sensitive, delta) = match property {
            RelationalProperty::Monotonic { .. } => (0.0, vec![], 0.0),
            RelationalProperty::Robust { delta, epsilon } => (*epsilon, vec![], *delta),
            RelationalProperty::Fair { sensitive, epsilon } => (*epsilon, sensitive.clone(), 0.0),
        };
        let moves: Vec<(usize, Move)> = (0..m)
            .map(|r| {
                let k = r % n_out;
                let s = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                let mv = match property {
                    RelationalProperty::Monotonic { features } => {
                        let (i, d) = features[(r / n_out) % features.len()];
                        let sigma = if d == Direction::Increasing {
                            1.0
                        } else {
                            -1.0
                        };
                        x2[(r, i)] = rng.gen_range(x[(r, i)]..=hi[i]);
                        Move::Monotone { i, sigma }
                    }
                    RelationalProperty::Robust { .. } => {
                        for j in 0..n {
                            x2[(r, j)] =
                                (x[(r, j)] + rng.gen_range(-delta..=delta)).clamp(lo[j], hi[j]);
                        }
                        Move::Robust { s }
                    }
                    RelationalProperty::Fair { .. } => {
                        for &j in &sensitive {
                            x2[(r, j)] = rng.gen_range(lo[j]..=hi[j]);
                        }
                        Move::Fair { s }
                    }
                };
                (k, mv)
            })
            .collect();
        let violation = |r: usize, f1: &DMatrix<f64>, f2: &DMatrix<f64>| -> f64 {
            let (k, mv) = moves[r];
            let d = f2[(r, k)] - f1[(r, k)];
            match mv {
                Move::Monotone { sigma, .. } => -sigma * d,
                Move::Robust { .. } | Move::Fair { .. } => d.abs() - epsilon,
            }
        };
        let mut best: Option<(f64, usize, Vec<f64>, Vec<f64>)> = None;
        for step in 0..=self.steps {
            let t1 = net.trace(&x)?;
            let t2 = net.trace(&x2)?;
            let (f1, f2) = (t1.output().clone(), t2.output().clone());
            for (r, &(k, _)) in moves.iter().enumerate() {
                let v = violation(r, &f1, &f2);
                if best.as_ref().is_none_or(|b| v > b.0) {
                    best = Some((
                        v,
                        k,
                        x.row(r).iter().copied().collect(),
                        x2.row(r).iter().copied().collect(),
                    ));
                }
            }
            if step == self.steps {
                break;
            }
            // d(violation)/d f(x′) = c, d/d f(x) = −c, on output k.
            let mut c = DMatrix::zeros(m, n_out);
            for r in 0..m {
                let (k, mv) = moves[r];
                c[(r, k)] = match mv {
                    Move::Monotone { sigma, .. } => -sigma,
                    Move::Robust { s } | Move::Fair { s } => s,
                };
            }
            let (_, g2) = net.backward(&t2, &c)?;
            let (_, g1) = net.backward(&t1, &(-&c))?;
            let eta = 0.1 * (1.0 - step as f64 / self.steps as f64) + 1e-3;
            for r in 0..m {
                let mv = moves[r].1;
                for j in 0..n {
                    let width = hi[j] - lo[j];
                    let shared = match mv {
                        Move::Monotone { i, .. } => j != i,
                        Move::Robust { .. } => false,
                        Move::Fair { .. } => !sensitive.contains(&j),
                    };
                    if shared {
                        let g = g1[(r, j)] + g2[(r, j)];
                        let v = (x[(r, j)] + eta * width * g.signum()).clamp(lo[j], hi[j]);
                        x[(r, j)] = v;
                        x2[(r, j)] = v;
                    } else {
                        x[(r, j)] =
                            (x[(r, j)] + eta * width * g1[(r, j)].signum()).clamp(lo[j], hi[j]);
                        x2[(r, j)] =
                            (x2[(r, j)] + eta * width * g2[(r, j)].signum()).clamp(lo[j], hi[j]);
                    }
                }
                match mv {
                    Move::Monotone { i, .. } if x2[(r, i)] < x[(r, i)] => {
                        let mid = 0.5 * (x[(r, i)] + x2[(r, i)]);
                        x[(r, i)] = mid;
                        x2[(r, i)] = mid;
                    }
                    Move::Robust { .. } => {
                        for j in 0..n {
                            let a = x[(r, j)];
                            x2[(r, j)] = x2[(r, j)].clamp(a - delta, a + delta).clamp(lo[j], hi[j]);
                        }
                    }
                    _ => {}
                }
            }
        }
        let (_, output, bx, bx2) = best.expect("at least one start");
        // Re-evaluate the reported pair on its own, in f64.
        let f = |p: &[f64]| -> Result<f64, TrainError> {
            Ok(net.forward(&nalgebra::DVector::from_column_slice(p))?[output])
        };
        let d = f(&bx2)? - f(&bx)?;
        let violation = match property {
            RelationalProperty::Monotonic { features } => {
                let (_, dir) = features
                    .iter()
                    .copied()
                    .find(|&(i, _)| bx[i] != bx2[i])
                    .unwrap_or(features[0]);
                if dir == Direction::Increasing {
                    -d
                } else {
                    d
                }
            }
            _ => d.abs() - epsilon,
        };
        Ok(AttackedPair {
            x: bx,
            x2: bx2,
            output,
            violation,
        })
    }
}
