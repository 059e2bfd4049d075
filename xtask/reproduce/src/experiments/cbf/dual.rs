//! Forward-mode dual numbers with a fixed number of partials: the Jacobian of one simulator
//! step (state and network output in; next state, cost and violations out) in one pass.
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Scalars the simulator is written over: `f64` for evaluation, [`Dual`] for Jacobians.
pub trait Real:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn c(v: f64) -> Self;
    fn v(self) -> f64;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn sqrt(self) -> Self;
    fn relu(self) -> Self {
        if self.v() > 0.0 {
            self
        } else {
            Self::c(0.0)
        }
    }
    /// `clamp` with the derivative of the selected branch.
    fn clamp_to(self, lo: f64, hi: f64) -> Self {
        if self.v() < lo {
            Self::c(lo)
        } else if self.v() > hi {
            Self::c(hi)
        } else {
            self
        }
    }
}

impl Real for f64 {
    fn c(v: f64) -> Self {
        v
    }
    fn v(self) -> f64 {
        self
    }
    fn sin(self) -> Self {
        f64::sin(self)
    }
    fn cos(self) -> Self {
        f64::cos(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// Number of partials: 5 state components and 2 network outputs.
pub const P: usize = 7;

/// A value with its partial derivatives.
#[derive(Clone, Copy, Debug)]
pub struct Dual {
    pub v: f64,
    pub d: [f64; P],
}

impl Dual {
    /// The `k`-th independent variable at value `v`.
    pub fn var(v: f64, k: usize) -> Self {
        let mut d = [0.0; P];
        d[k] = 1.0;
        Dual { v, d }
    }
    fn map(self, v: f64, dv: f64) -> Self {
        Dual {
            v,
            d: self.d.map(|x| x * dv),
        }
    }
}

impl Add for Dual {
    type Output = Dual;
    fn add(self, o: Dual) -> Dual {
        let mut d = self.d;
        for (a, b) in d.iter_mut().zip(o.d) {
            *a += b;
        }
        Dual { v: self.v + o.v, d }
    }
}

impl Sub for Dual {
    type Output = Dual;
    fn sub(self, o: Dual) -> Dual {
        self + (-o)
    }
}

impl Neg for Dual {
    type Output = Dual;
    fn neg(self) -> Dual {
        self.map(-self.v, -1.0)
    }
}

impl Mul for Dual {
    type Output = Dual;
    fn mul(self, o: Dual) -> Dual {
        let mut d = [0.0; P];
        for (k, x) in d.iter_mut().enumerate() {
            *x = self.d[k] * o.v + self.v * o.d[k];
        }
        Dual { v: self.v * o.v, d }
    }
}

impl Div for Dual {
    type Output = Dual;
    fn div(self, o: Dual) -> Dual {
        let inv = 1.0 / o.v;
        let mut d = [0.0; P];
        for (k, x) in d.iter_mut().enumerate() {
            *x = (self.d[k] - self.v * inv * o.d[k]) * inv;
        }
        Dual { v: self.v * inv, d }
    }
}

impl Real for Dual {
    fn c(v: f64) -> Self {
        Dual { v, d: [0.0; P] }
    }
    fn v(self) -> f64 {
        self.v
    }
    fn sin(self) -> Self {
        self.map(self.v.sin(), self.v.cos())
    }
    fn cos(self) -> Self {
        self.map(self.v.cos(), -self.v.sin())
    }
    fn sqrt(self) -> Self {
        let r = self.v.sqrt();
        self.map(r, 0.5 / r)
    }
}
