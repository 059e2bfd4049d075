//! DC3 (Donti, Rolnick & Kolter 2021), the HardNet paper's baseline: optional equality
//! completion (see [`crate::Partition`]), then gradient steps on the squared violation of the
//! inequalities, unrolled and differentiated exactly in training.

use nalgebra::{DMatrix, DVector};

/// DC3's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dc3Params {
    /// Complete the equality rows (`b_l = b_u` at every training input; needs a shared
    /// matrix): the network predicts the other outputs and the last `n_eq` are solved for.
    pub completion: bool,
    /// Step size of the correction.
    pub corr_lr: f64,
    /// Momentum of the correction.
    pub corr_momentum: f64,
    /// Correction steps in training (always all of them, as the reference).
    pub train_steps: usize,
    /// Maximal correction steps at prediction; stops early once the violation ≤ `eps`.
    pub test_steps: usize,
    /// Violation under which test-time correction stops.
    pub eps: f64,
}

impl Default for Dc3Params {
    /// The reference's pwc settings: full correction, lr 1e-2, momentum 0.5, 10 training
    /// steps, none at test time.
    fn default() -> Self {
        Dc3Params {
            completion: false,
            corr_lr: 1e-2,
            corr_momentum: 0.5,
            train_steps: 10,
            test_steps: 0,
            eps: 1e-4,
        }
    }
}

/// `r = ReLU(Ay − b_u) − ReLU(b_l − Ay)`: the violation vector, whose squared norm is the
/// penalty and `2Aᵀr` its gradient (lower-bound violations push up: the reference's DC3 has
/// the sign wrong there).
pub fn residual(
    a: &DMatrix<f64>,
    lo: &DVector<f64>,
    hi: &DVector<f64>,
    y: &DVector<f64>,
) -> DVector<f64> {
    let ay = a * y;
    DVector::from_fn(ay.len(), |i, _| {
        (ay[i] - hi[i]).max(0.0) - (lo[i] - ay[i]).max(0.0)
    })
}

/// DC3's correction of one sample, with the iterates kept for the backward pass.
#[derive(Debug, Clone)]
pub struct Correction {
    iterates: Vec<DVector<f64>>,
}

impl Correction {
    /// The corrected point.
    pub fn output(&self) -> &DVector<f64> {
        self.iterates.last().expect("starts with the initial point")
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.iterates.len() - 1
    }
}

/// Runs up to `steps` correction steps on `w0` towards `lo ≤ M w ≤ hi`: `v_{t+1} = 2η Mᵀ r(w_t)
/// + μ v_t`, `w_{t+1} = w_t − v_{t+1}` (`r` from [`residual`]), stopping once the violation is
/// ≤ `eps` when `stop_early`.
pub fn correct(
    m: &DMatrix<f64>,
    lo: &DVector<f64>,
    hi: &DVector<f64>,
    w0: DVector<f64>,
    p: &Dc3Params,
    steps: usize,
    stop_early: bool,
) -> Correction {
    let mut iterates = vec![w0];
    let mut v = DVector::zeros(iterates[0].len());
    for _ in 0..steps {
        let w = iterates.last().expect("starts with the initial point");
        let r = residual(m, lo, hi, w);
        if stop_early && r.amax() <= p.eps {
            break;
        }
        v = m.transpose() * r * (2.0 * p.corr_lr) + v * p.corr_momentum;
        let next = w - &v;
        iterates.push(next);
    }
    Correction { iterates }
}

/// `∂L/∂w₀` from `∂L/∂w_T` through the unrolled steps `v_{t+1} = 2η Mᵀ r(w_t) + μ v_t`,
/// `w_{t+1} = w_t − v_{t+1}`, where `∂r/∂w = D_t M` (`D_t` the violated rows).
pub fn correct_backward(
    m: &DMatrix<f64>,
    lo: &DVector<f64>,
    hi: &DVector<f64>,
    c: &Correction,
    g: DVector<f64>,
    p: &Dc3Params,
) -> DVector<f64> {
    let mut a_w = g;
    let mut a_v = DVector::zeros(a_w.len());
    for t in (0..c.iterates.len() - 1).rev() {
        let a_vt = a_v - &a_w;
        let mw = m * &c.iterates[t];
        let mut dm = m * &a_vt;
        for i in 0..mw.len() {
            if !(mw[i] > hi[i] || mw[i] < lo[i]) {
                dm[i] = 0.0;
            }
        }
        a_w += m.transpose() * dm * (2.0 * p.corr_lr);
        a_v = a_vt * p.corr_momentum;
    }
    a_w
}
