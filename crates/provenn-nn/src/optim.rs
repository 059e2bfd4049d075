//! Optimisers. Parameter structs are validated once, when the optimiser is built.
use crate::{Gradients, Mlp, NnError};

/// An optimiser updates a network in place from a gradient of the loss.
pub trait Optimizer: Send {
    /// Applies one update.
    fn step(&mut self, net: &mut Mlp, grads: &Gradients);
    /// Current learning rate.
    fn learning_rate(&self) -> f64;
    /// Changes the learning rate (schedules, line searches).
    fn set_learning_rate(&mut self, lr: f64);
}

fn check_lr(lr: f64) -> Result<(), NnError> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(NnError::InvalidConfig(format!(
            "learning rate must be finite and > 0, got {lr}"
        )));
    }
    Ok(())
}

/// Parameters of [`Sgd`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    /// Learning rate (> 0).
    pub learning_rate: f64,
    /// Momentum in `[0, 1)`.
    pub momentum: f64,
    /// L2 weight decay (≥ 0), added to the gradient as `decay · θ`.
    pub weight_decay: f64,
}

impl Default for SgdParams {
    fn default() -> Self {
        SgdParams {
            learning_rate: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }
}

/// Stochastic gradient descent with (heavy-ball) momentum and weight decay, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Sgd {
    p: SgdParams,
    velocity: Vec<Vec<f64>>,
}

impl Sgd {
    /// Validates the parameters.
    pub fn new(p: SgdParams) -> Result<Self, NnError> {
        check_lr(p.learning_rate)?;
        if !(0.0..1.0).contains(&p.momentum) {
            return Err(NnError::InvalidConfig(format!(
                "momentum must lie in [0, 1), got {}",
                p.momentum
            )));
        }
        if !(p.weight_decay >= 0.0 && p.weight_decay.is_finite()) {
            return Err(NnError::InvalidConfig(format!(
                "weight decay must be finite and ≥ 0, got {}",
                p.weight_decay
            )));
        }
        Ok(Sgd {
            p,
            velocity: Vec::new(),
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, net: &mut Mlp, grads: &Gradients) {
        let p = self.p;
        let vel = &mut self.velocity;
        net.for_each_param(grads, |slot, theta, g| {
            if vel.len() <= slot {
                vel.resize(slot + 1, Vec::new());
            }
            let v = &mut vel[slot];
            if v.len() != theta.len() {
                *v = vec![0.0; theta.len()];
            }
            for ((t, &gi), vi) in theta.iter_mut().zip(g).zip(v.iter_mut()) {
                let d = gi + p.weight_decay * *t;
                *vi = p.momentum * *vi + d;
                *t -= p.learning_rate * *vi;
            }
        });
    }
    fn learning_rate(&self) -> f64 {
        self.p.learning_rate
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.p.learning_rate = lr;
    }
}

/// Parameters of [`Adam`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate (> 0).
    pub learning_rate: f64,
    /// First-moment decay in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay in `[0, 1)`.
    pub beta2: f64,
    /// Denominator offset (> 0).
    pub epsilon: f64,
    /// L2 weight decay (≥ 0), added to the gradient (PyTorch `Adam`, not `AdamW`).
    pub weight_decay: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        AdamParams {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam (Kingma & Ba) with bias correction.
#[derive(Debug, Clone)]
pub struct Adam {
    p: AdamParams,
    t: i32,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl Adam {
    /// Validates the parameters.
    pub fn new(p: AdamParams) -> Result<Self, NnError> {
        check_lr(p.learning_rate)?;
        for (name, b) in [("beta1", p.beta1), ("beta2", p.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(NnError::InvalidConfig(format!(
                    "{name} must lie in [0, 1), got {b}"
                )));
            }
        }
        if !(p.epsilon > 0.0 && p.epsilon.is_finite()) {
            return Err(NnError::InvalidConfig("epsilon must be > 0".into()));
        }
        if !(p.weight_decay >= 0.0 && p.weight_decay.is_finite()) {
            return Err(NnError::InvalidConfig("weight decay must be ≥ 0".into()));
        }
        Ok(Adam {
            p,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        })
    }
}

impl Optimizer for Adam {
    fn step(&mut self, net: &mut Mlp, grads: &Gradients) {
        self.t = self.t.saturating_add(1);
        let p = self.p;
        let c1 = 1.0 - p.beta1.powi(self.t);
        let c2 = 1.0 - p.beta2.powi(self.t);
        let (ms, vs) = (&mut self.m, &mut self.v);
        net.for_each_param(grads, |slot, theta, g| {
            if ms.len() <= slot {
                ms.resize(slot + 1, Vec::new());
                vs.resize(slot + 1, Vec::new());
            }
            if ms[slot].len() != theta.len() {
                ms[slot] = vec![0.0; theta.len()];
                vs[slot] = vec![0.0; theta.len()];
            }
            let (m, v) = (&mut ms[slot], &mut vs[slot]);
            for i in 0..theta.len() {
                let d = g[i] + p.weight_decay * theta[i];
                m[i] = p.beta1 * m[i] + (1.0 - p.beta1) * d;
                v[i] = p.beta2 * v[i] + (1.0 - p.beta2) * d * d;
                let mh = m[i] / c1;
                let vh = v[i] / c2;
                theta[i] -= p.learning_rate * mh / (vh.sqrt() + p.epsilon);
            }
        });
    }
    fn learning_rate(&self) -> f64 {
        self.p.learning_rate
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.p.learning_rate = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameters_are_rejected_at_construction() {
        assert!(Sgd::new(SgdParams {
            learning_rate: -1.0,
            ..Default::default()
        })
        .is_err());
        assert!(Sgd::new(SgdParams {
            momentum: 1.0,
            ..Default::default()
        })
        .is_err());
        assert!(Adam::new(AdamParams {
            beta2: 1.5,
            ..Default::default()
        })
        .is_err());
        assert!(Adam::new(AdamParams::default()).is_ok());
    }
}
