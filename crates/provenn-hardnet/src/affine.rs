//! HardNet-Aff: `P(f) = f + A⁺ [ReLU(b_l − A f) − ReLU(A f − b_u)]` with `A⁺ = Aᵀ(AAᵀ)⁻¹`,
//! which gives `A·P(f) = clip(A f, b_l, b_u)` and moves `f` only along the rows of `A`.
//!
//! `A⁺ r` is computed from a QR factorisation of `Aᵀ` (`Aᵀ = QR`, so `A⁺ r = Q R⁻ᵀ r`), which
//! keeps ill-conditioned `A` accurate where forming `AAᵀ` would square the condition number.

use nalgebra::{DMatrix, DVector};

use crate::HardNetError;

/// Two-sided affine constraints `b_l ≤ A y ≤ b_u` for one input. One-sided rows use `±∞`.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineConstraint {
    /// `n_c × n_out`, full row rank.
    pub a: DMatrix<f64>,
    /// Lower bounds (`-∞` allowed).
    pub lower: DVector<f64>,
    /// Upper bounds (`+∞` allowed).
    pub upper: DVector<f64>,
}

impl AffineConstraint {
    /// Checks shapes and `b_l ≤ b_u` (with full row rank, that is feasibility).
    pub fn validate(&self, n_out: usize) -> Result<(), HardNetError> {
        let (r, c) = self.a.shape();
        if c != n_out || self.lower.len() != r || self.upper.len() != r {
            return Err(HardNetError::Shape(format!(
                "A is {r}×{c}, bounds {} and {}, outputs {n_out}",
                self.lower.len(),
                self.upper.len()
            )));
        }
        if r > c {
            return Err(HardNetError::Assumption(format!(
                "{r} constraints on {c} outputs cannot have full row rank"
            )));
        }
        for i in 0..r {
            let (l, u) = (self.lower[i], self.upper[i]);
            if l.is_nan() || u.is_nan() || l > u || l == f64::INFINITY || u == f64::NEG_INFINITY {
                return Err(HardNetError::Assumption(format!(
                    "row {i}: bounds [{l}, {u}] are empty"
                )));
            }
        }
        if self.a.iter().any(|v| !v.is_finite()) {
            return Err(HardNetError::Assumption("A has non-finite entries".into()));
        }
        Ok(())
    }

    /// The bounds moved inwards by `margin·(1 + |b|)` on each finite side of non-equality rows
    /// (never crossing), so that rounding in the projection and in a later evaluation of the
    /// constraint cannot put the output on the wrong side.
    pub fn shrunk(&self, margin: f64) -> (DVector<f64>, DVector<f64>) {
        let mut lo = self.lower.clone();
        let mut hi = self.upper.clone();
        if margin > 0.0 {
            for i in 0..lo.len() {
                if lo[i] < hi[i] {
                    let (l, u) = (lo[i], hi[i]);
                    let nl = if l.is_finite() {
                        l + margin * (1.0 + l.abs())
                    } else {
                        l
                    };
                    let nu = if u.is_finite() {
                        u - margin * (1.0 + u.abs())
                    } else {
                        u
                    };
                    if nl <= nu {
                        lo[i] = nl;
                        hi[i] = nu;
                    } else {
                        lo[i] = 0.5 * (l + u);
                        hi[i] = lo[i];
                    }
                }
            }
        }
        (lo, hi)
    }
}

/// A factorised constraint matrix: `Aᵀ = QR`.
#[derive(Debug, Clone)]
pub struct Factorised {
    q: DMatrix<f64>,
    r: DMatrix<f64>,
}

impl Factorised {
    /// Factorises `a` (`n_c × n_out`), checking full row rank with a relative tolerance.
    pub fn new(a: &DMatrix<f64>) -> Result<Self, HardNetError> {
        let qr = a.transpose().qr();
        let (q, r) = (qr.q(), qr.r());
        let scale = r.diagonal().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = scale * 1e-12 * a.ncols().max(1) as f64;
        if let Some(i) = (0..r.nrows()).find(|&i| r[(i, i)].abs() <= tol || scale == 0.0) {
            return Err(HardNetError::Assumption(format!(
                "A does not have full row rank (row {i} depends on the others)"
            )));
        }
        Ok(Factorised { q, r })
    }

    /// `A⁺ v = Q R⁻ᵀ v`.
    pub fn pinv_mul(&self, v: &DVector<f64>) -> DVector<f64> {
        let w = self
            .r
            .transpose()
            .solve_lower_triangular(v)
            .expect("R has a non-zero diagonal");
        &self.q * w
    }

    /// `(A⁺)ᵀ g = R⁻¹ Qᵀ g`.
    pub fn pinv_t_mul(&self, g: &DVector<f64>) -> DVector<f64> {
        self.r
            .solve_upper_triangular(&(self.q.transpose() * g))
            .expect("R has a non-zero diagonal")
    }
}

/// The HardNet-Aff layer for a batch: one constraint per sample (input-dependent), or one
/// shared constraint factorised once.
#[derive(Debug, Clone)]
pub struct AffineProjection {
    constraints: Vec<(AffineConstraint, Factorised)>,
    shared: bool,
    margin: f64,
}

impl AffineProjection {
    /// One constraint per sample; fails naming the first sample that breaks the assumption.
    pub fn per_sample(
        constraints: Vec<AffineConstraint>,
        n_out: usize,
    ) -> Result<Self, HardNetError> {
        let constraints = constraints
            .into_iter()
            .enumerate()
            .map(|(s, c)| {
                c.validate(n_out)
                    .and_then(|_| Factorised::new(&c.a))
                    .map(|f| (c, f))
                    .map_err(|e| HardNetError::AtInput(s, Box::new(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AffineProjection {
            constraints,
            shared: false,
            margin: 0.0,
        })
    }

    /// From constraints already validated and factorised (one per sample).
    pub fn from_parts(parts: Vec<(AffineConstraint, Factorised)>) -> Self {
        AffineProjection {
            constraints: parts,
            shared: false,
            margin: 0.0,
        }
    }

    /// One constraint for every sample (factorised once).
    pub fn shared(constraint: AffineConstraint, n_out: usize) -> Result<Self, HardNetError> {
        constraint.validate(n_out)?;
        let f = Factorised::new(&constraint.a)?;
        Ok(AffineProjection {
            constraints: vec![(constraint, f)],
            shared: true,
            margin: 0.0,
        })
    }

    /// Projects into the bounds shrunk by `margin` (relative; see
    /// [`AffineConstraint::shrunk`]) instead of onto their boundary. 0 is the paper's layer.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin.max(0.0);
        self
    }

    fn at(&self, s: usize) -> &(AffineConstraint, Factorised) {
        if self.shared {
            &self.constraints[0]
        } else {
            &self.constraints[s]
        }
    }

    fn check_batch(&self, f: &DMatrix<f64>) -> Result<(), HardNetError> {
        if !self.shared && f.nrows() != self.constraints.len() {
            return Err(HardNetError::Shape(format!(
                "{} outputs for {} constraints",
                f.nrows(),
                self.constraints.len()
            )));
        }
        let n_out = self.constraints[0].0.a.ncols();
        if f.ncols() != n_out {
            return Err(HardNetError::Shape(format!(
                "outputs have {} columns, constraints {n_out}",
                f.ncols()
            )));
        }
        Ok(())
    }

    /// `P(f)` for a batch (rows are samples).
    pub fn forward(&self, f: &DMatrix<f64>) -> Result<DMatrix<f64>, HardNetError> {
        self.check_batch(f)?;
        let mut out = f.clone();
        for s in 0..f.nrows() {
            let (c, fac) = self.at(s);
            let fs = f.row(s).transpose();
            let (lo, hi) = c.shrunk(self.margin);
            let af = &c.a * &fs;
            let r = DVector::from_fn(af.len(), |i, _| af[i].clamp(lo[i], hi[i]) - af[i]);
            if r.iter().any(|v| *v != 0.0) {
                let p = fs + fac.pinv_mul(&r);
                out.row_mut(s).copy_from(&p.transpose());
            }
        }
        Ok(out)
    }

    /// Vector–Jacobian product: given `g = ∂L/∂P` (rows are samples) at outputs `f`, returns
    /// `∂L/∂f = g − Aᵀ D (A⁺)ᵀ g`, with `D` selecting the rows clipped at `f` (where the
    /// projection's Jacobian is `I − A⁺ D A`).
    pub fn backward(
        &self,
        f: &DMatrix<f64>,
        g: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, HardNetError> {
        self.check_batch(f)?;
        if g.shape() != f.shape() {
            return Err(HardNetError::Shape(
                "gradient and outputs differ in shape".into(),
            ));
        }
        let mut out = g.clone();
        for s in 0..f.nrows() {
            let (c, fac) = self.at(s);
            let fs = f.row(s).transpose();
            let af = &c.a * &fs;
            let (lo, hi) = c.shrunk(self.margin);
            let active: Vec<bool> = (0..af.len())
                .map(|i| af[i] < lo[i] || af[i] > hi[i])
                .collect();
            if !active.iter().any(|&a| a) {
                continue;
            }
            let gs = g.row(s).transpose();
            let mut w = fac.pinv_t_mul(&gs);
            for (i, &a) in active.iter().enumerate() {
                if !a {
                    w[i] = 0.0;
                }
            }
            let corr = c.a.transpose() * w;
            out.row_mut(s).copy_from(&(gs - corr).transpose());
        }
        Ok(out)
    }
}
