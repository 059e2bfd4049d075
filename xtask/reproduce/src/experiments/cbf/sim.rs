//! The unicycle with two elliptical obstacles (HardNet paper §5.3): dynamics, nominal
//! controller, high-order control-barrier functions, the per-step CBF constraint on the
//! policy's residual `A(x) y ≤ b(x)`, and one simulator step generic over [`Real`].
use super::dual::Real;

/// Obstacles `(c_x, c_y, r_x, r_y)`.
pub const OBSTACLES: [(f64, f64, f64, f64); 2] = [(-2.25, 0.5, 0.5, 0.75), (-0.8, 0.0, 0.5, 0.5)];
/// Body-centre offset.
const L: f64 = 0.1;
/// HOCBF gain `κ` and class-K gain `α`.
const KAPPA: f64 = 10.0;
const ALPHA: f64 = 20.0;
pub const DT: f64 = 0.02;
pub const STEPS: usize = 50;
const Q: [f64; 5] = [100.0, 100.0, 0.0, 0.1, 0.1];
const R: [f64; 2] = [0.1, 0.1];
/// Control magnitude per unit of sub-step (the reference's adaptive Euler).
const CONTROL_THRESHOLD: f64 = 100.0;

/// The network's input: `[p_x, p_y, cos θ, sin θ, v, w]`.
pub fn encode(x: &[f64; 5]) -> [f64; 6] {
    [x[0], x[1], x[2].cos(), x[2].sin(), x[3], x[4]]
}

/// `∂encode/∂x` applied transposed to `g` (6) → 5.
pub fn encode_vjp(x: &[f64; 5], g: &[f64]) -> [f64; 5] {
    [
        g[0],
        g[1],
        -x[2].sin() * g[2] + x[2].cos() * g[3],
        g[4],
        g[5],
    ]
}

/// Ellipse barrier `h_e` of obstacle `o` (negative inside).
pub fn ellipse<T: Real>(x: &[T; 5], o: usize) -> T {
    let (cx, cy, rx, ry) = OBSTACLES[o];
    let dx = x[0] + T::c(L) * x[2].cos() - T::c(cx);
    let dy = x[1] + T::c(L) * x[2].sin() - T::c(cy);
    dx * dx / T::c(rx * rx) + dy * dy / T::c(ry * ry) - T::c(1.0)
}

/// HOCBF `h = ḣ_e + κ h_e` and its gradient in the state (analytic).
pub fn barrier<T: Real>(x: &[T; 5], o: usize) -> (T, [T; 5]) {
    let (cx, cy, rx, ry) = OBSTACLES[o];
    let (s, c) = (x[2].sin(), x[2].cos());
    let (v, w) = (x[3], x[4]);
    let l = T::c(L);
    let dx = x[0] + l * c - T::c(cx);
    let dy = x[1] + l * s - T::c(cy);
    let dxd = v * c - l * w * s;
    let dyd = v * s + l * w * c;
    let (ax, ay) = (T::c(1.0 / (rx * rx)), T::c(1.0 / (ry * ry)));
    let two = T::c(2.0);
    let he = dx * dx * ax + dy * dy * ay - T::c(1.0);
    let hed = two * dx * dxd * ax + two * dy * dyd * ay;
    // Partials of dx, dy, ẋ_d, ẏ_d in (p_x, p_y, θ, v, w).
    let zero = T::c(0.0);
    let one = T::c(1.0);
    let d_dx = [one, zero, -l * s, zero, zero];
    let d_dy = [zero, one, l * c, zero, zero];
    let d_dxd = [zero, zero, -v * s - l * w * c, c, -l * s];
    let d_dyd = [zero, zero, v * c - l * w * s, s, l * c];
    let mut grad = [zero; 5];
    for k in 0..5 {
        let d_he = two * dx * d_dx[k] * ax + two * dy * d_dy[k] * ay;
        let d_hed =
            two * ax * (d_dx[k] * dxd + dx * d_dxd[k]) + two * ay * (d_dy[k] * dyd + dy * d_dyd[k]);
        grad[k] = d_hed + T::c(KAPPA) * d_he;
    }
    (hed + T::c(KAPPA) * he, grad)
}

/// The nominal controller (go to the origin).
pub fn nominal<T: Real>(x: &[T; 5]) -> [T; 2] {
    let (s, c) = (x[2].sin(), x[2].cos());
    let d = (x[0] * x[0] + x[1] * x[1]).sqrt();
    let w_goal = T::c(10.0) * (x[0] * s - x[1] * c) / (d + T::c(1e-5));
    let v_goal = (T::c(10.0) * d * (-x[0] * c - x[1] * s)).clamp_to(-5.0, 5.0);
    [T::c(5.0) * (v_goal - x[3]), T::c(5.0) * (w_goal - x[4])]
}

fn drift<T: Real>(x: &[T; 5]) -> [T; 5] {
    [
        x[3] * x[2].cos(),
        x[3] * x[2].sin(),
        x[4],
        T::c(0.0),
        T::c(0.0),
    ]
}

/// The CBF condition on the residual `y` (`u = π_nom + y`): `A y ≤ b` with
/// `A_i = −∇h_iᵀ g`, `b_i = ∇h_iᵀ(f + g π_nom) + α h_i`.
pub fn cbf_rows<T: Real>(x: &[T; 5]) -> ([[T; 2]; 2], [T; 2]) {
    let nom = nominal(x);
    let f = drift(x);
    let mut a = [[T::c(0.0); 2]; 2];
    let mut b = [T::c(0.0); 2];
    for o in 0..2 {
        let (h, g) = barrier(x, o);
        a[o] = [-g[3], -g[4]];
        let mut lie = T::c(0.0);
        for k in 0..5 {
            lie = lie + g[k] * f[k];
        }
        b[o] = lie + g[3] * nom[0] + g[4] * nom[1] + T::c(ALPHA) * h;
    }
    (a, b)
}

/// How the residual is made (mirrors `provenn_hardnet::Method` on the 2×2 constraint).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Enforce {
    /// `y = f`.
    None,
    /// HardNet-Aff: `y = f − A⁻¹ ReLU(A f − b')`, `b'` shrunk by the library's margin.
    Aff,
    /// DC3's correction: `steps` gradient steps on `‖ReLU(A y − b)‖²`.
    Dc3 {
        steps: usize,
        lr: f64,
        momentum: f64,
        eps: f64,
    },
}

/// One step's results.
pub struct Step<T> {
    pub next: [T; 5],
    /// `dt (xᵀQx + uᵀRu)`.
    pub cost: T,
    /// `ReLU(A y − b)` per obstacle.
    pub viol: [T; 2],
}

/// The residual for network output `f` at state `x`.
pub fn residual<T: Real>(x: &[T; 5], f: [T; 2], how: Enforce, margin: f64) -> [T; 2] {
    let (a, b) = cbf_rows(x);
    match how {
        Enforce::None => f,
        Enforce::Aff => {
            let bs = [
                b[0] - T::c(margin * (1.0 + b[0].v().abs())),
                b[1] - T::c(margin * (1.0 + b[1].v().abs())),
            ];
            let r = [
                (a[0][0] * f[0] + a[0][1] * f[1] - bs[0]).relu(),
                (a[1][0] * f[0] + a[1][1] * f[1] - bs[1]).relu(),
            ];
            let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
            // f − A⁻¹ r
            [
                f[0] - (a[1][1] * r[0] - a[0][1] * r[1]) / det,
                f[1] - (-a[1][0] * r[0] + a[0][0] * r[1]) / det,
            ]
        }
        Enforce::Dc3 {
            steps,
            lr,
            momentum,
            eps,
        } => {
            let mut y = f;
            let mut v = [T::c(0.0); 2];
            for _ in 0..steps {
                let r = [
                    (a[0][0] * y[0] + a[0][1] * y[1] - b[0]).relu(),
                    (a[1][0] * y[0] + a[1][1] * y[1] - b[1]).relu(),
                ];
                if eps > 0.0 && r[0].v().max(r[1].v()) <= eps {
                    break;
                }
                for j in 0..2 {
                    v[j] =
                        T::c(2.0 * lr) * (a[0][j] * r[0] + a[1][j] * r[1]) + T::c(momentum) * v[j];
                    y[j] = y[j] - v[j];
                }
            }
            y
        }
    }
}

/// One step from `x` with residual `y` already computed.
pub fn advance<T: Real>(x: &[T; 5], y: [T; 2]) -> Step<T> {
    let (a, b) = cbf_rows(x);
    let nom = nominal(x);
    let u = [nom[0] + y[0], nom[1] + y[1]];
    let viol = [
        (a[0][0] * y[0] + a[0][1] * y[1] - b[0]).relu(),
        (a[1][0] * y[0] + a[1][1] * y[1] - b[1]).relu(),
    ];
    let mut cost = T::c(0.0);
    for k in 0..5 {
        cost = cost + T::c(Q[k]) * x[k] * x[k];
    }
    for j in 0..2 {
        cost = cost + T::c(R[j]) * u[j] * u[j];
    }
    let umax = u[0].v().abs().max(u[1].v().abs());
    let n_sub = ((umax / CONTROL_THRESHOLD).ceil() as usize).clamp(1, 1000);
    let h = T::c(DT / n_sub as f64);
    let mut s = *x;
    for _ in 0..n_sub {
        let d = drift(&s);
        let mut nx = s;
        for k in 0..5 {
            nx[k] = s[k] + h * d[k];
        }
        nx[3] = nx[3] + h * u[0];
        nx[4] = nx[4] + h * u[1];
        s = nx;
    }
    Step {
        next: s,
        cost: T::c(DT) * cost,
        viol,
    }
}
