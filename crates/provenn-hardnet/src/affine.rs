//! HardNet-Aff: `P(f) = f + A⁺ [ReLU(b_l − A f) − ReLU(A f − b_u)]` with `A⁺ = Aᵀ(AAᵀ)⁻¹`,
//! which gives `A·P(f) = clip(A f, b_l, b_u)` and moves `f` only along the rows of `A`.
//!
//! `A⁺ r` is computed from a QR factorisation of `Aᵀ` (`Aᵀ = QR`, so `A⁺ r = Q R⁻ᵀ r`), which
//! keeps ill-conditioned `A` accurate where forming `AAᵀ` would square the condition number.

use std::sync::{Arc, OnceLock};

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
        check_bounds(r, &self.lower, &self.upper)?;
        if self.a.iter().any(|v| !v.is_finite()) {
            return Err(HardNetError::Assumption("A has non-finite entries".into()));
        }
        Ok(())
    }

    /// The bounds moved inwards by `margin·(1 + |b|)` on each finite side of non-equality rows
    /// (never crossing), so that rounding in the projection and in a later evaluation of the
    /// constraint cannot put the output on the wrong side.
    pub fn shrunk(&self, margin: f64) -> (DVector<f64>, DVector<f64>) {
        shrink_bounds(&self.lower, &self.upper, margin)
    }
}

/// Checks `m` bound pairs: none NaN, `l ≤ u`, `l < +∞`, `u > −∞`.
pub(crate) fn check_bounds(
    m: usize,
    lower: &DVector<f64>,
    upper: &DVector<f64>,
) -> Result<(), HardNetError> {
    if lower.len() != m || upper.len() != m {
        return Err(HardNetError::Shape(format!(
            "{m} rows, bounds {} and {}",
            lower.len(),
            upper.len()
        )));
    }
    for i in 0..m {
        let (l, u) = (lower[i], upper[i]);
        if l.is_nan() || u.is_nan() || l > u || l == f64::INFINITY || u == f64::NEG_INFINITY {
            return Err(HardNetError::Assumption(format!(
                "row {i}: bounds [{l}, {u}] are empty"
            )));
        }
    }
    Ok(())
}

/// See [`AffineConstraint::shrunk`].
pub fn shrink_bounds(
    lower: &DVector<f64>,
    upper: &DVector<f64>,
    margin: f64,
) -> (DVector<f64>, DVector<f64>) {
    let mut lo = lower.clone();
    let mut hi = upper.clone();
    for i in 0..lo.len() {
        (lo[i], hi[i]) = shrink_pair(lower[i], upper[i], margin);
    }
    (lo, hi)
}

/// One row of [`shrink_bounds`]: equality rows stay; bounds that would cross meet midway.
fn shrink_pair(l: f64, u: f64, margin: f64) -> (f64, f64) {
    if margin <= 0.0 || l >= u {
        return (l, u);
    }
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
        (nl, nu)
    } else {
        let m = 0.5 * (l + u);
        (m, m)
    }
}

/// A factorised constraint matrix: `Aᵀ = QR`.
#[derive(Debug, Clone)]
pub struct Factorised {
    q: DMatrix<f64>,
    r: DMatrix<f64>,
    /// `A⁺ = Q R⁻ᵀ` (`n_out × n_c`), formed on first use by a batched product.
    pinv: OnceLock<DMatrix<f64>>,
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
        Ok(Factorised {
            q,
            r,
            pinv: OnceLock::new(),
        })
    }

    fn pinv_matrix(&self) -> &DMatrix<f64> {
        self.pinv.get_or_init(|| {
            let eye = DMatrix::identity(self.r.nrows(), self.r.nrows());
            let w = self
                .r
                .transpose()
                .solve_lower_triangular(&eye)
                .expect("R has a non-zero diagonal");
            &self.q * w
        })
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

/// A constraint matrix with its factorisation, shared between batches and samples.
pub type SharedMatrix = Arc<(DMatrix<f64>, Factorised)>;

/// The HardNet-Aff layer for a batch: one constraint per sample (input-dependent), one shared
/// constraint factorised once, or one shared matrix with per-sample bounds.
#[derive(Debug, Clone)]
pub struct AffineProjection {
    mats: Vec<SharedMatrix>,
    bounds: Vec<(DVector<f64>, DVector<f64>)>,
    shared_mat: bool,
    shared_bounds: bool,
    margin: f64,
}

impl AffineProjection {
    /// One constraint per sample; fails naming the first sample that breaks the assumption.
    pub fn per_sample(
        constraints: Vec<AffineConstraint>,
        n_out: usize,
    ) -> Result<Self, HardNetError> {
        let parts = constraints
            .into_iter()
            .enumerate()
            .map(|(s, c)| {
                c.validate(n_out)
                    .and_then(|_| Factorised::new(&c.a))
                    .map(|f| (c, f))
                    .map_err(|e| HardNetError::AtInput(s, Box::new(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_parts(parts))
    }

    /// From constraints already validated and factorised (one per sample).
    pub fn from_parts(parts: Vec<(AffineConstraint, Factorised)>) -> Self {
        let (mats, bounds) = parts
            .into_iter()
            .map(|(c, f)| (Arc::new((c.a, f)), (c.lower, c.upper)))
            .unzip();
        Self::from_shared_parts(mats, bounds)
    }

    /// One factorised matrix and one pair of bounds per sample (matrices may be shared
    /// between samples).
    ///
    /// # Panics
    /// When `mats` and `bounds` differ in length (a caller's bug, not a data error).
    pub fn from_shared_parts(
        mats: Vec<SharedMatrix>,
        bounds: Vec<(DVector<f64>, DVector<f64>)>,
    ) -> Self {
        assert_eq!(mats.len(), bounds.len(), "one matrix per pair of bounds");
        AffineProjection {
            mats,
            bounds,
            shared_mat: false,
            shared_bounds: false,
            margin: 0.0,
        }
    }

    /// One constraint for every sample (factorised once).
    pub fn shared(constraint: AffineConstraint, n_out: usize) -> Result<Self, HardNetError> {
        constraint.validate(n_out)?;
        let f = Factorised::new(&constraint.a)?;
        Ok(AffineProjection {
            mats: vec![Arc::new((constraint.a, f))],
            bounds: vec![(constraint.lower, constraint.upper)],
            shared_mat: true,
            shared_bounds: true,
            margin: 0.0,
        })
    }

    /// One matrix factorised once (see [`AffineProjection::factorise_shared`]) with bounds per
    /// sample (e.g. `C y = x` with `x` the input); fails naming the first bad sample.
    pub fn shared_matrix(
        matrix: SharedMatrix,
        bounds: Vec<(DVector<f64>, DVector<f64>)>,
    ) -> Result<Self, HardNetError> {
        for (s, (lo, hi)) in bounds.iter().enumerate() {
            check_bounds(matrix.0.nrows(), lo, hi)
                .map_err(|e| HardNetError::AtInput(s, Box::new(e)))?;
        }
        Ok(AffineProjection {
            mats: vec![matrix],
            bounds,
            shared_mat: true,
            shared_bounds: false,
            margin: 0.0,
        })
    }

    /// Validates and factorises a matrix for [`AffineProjection::shared_matrix`].
    pub fn factorise_shared(a: DMatrix<f64>) -> Result<SharedMatrix, HardNetError> {
        if a.nrows() > a.ncols() {
            return Err(HardNetError::Assumption(format!(
                "{} constraints on {} outputs cannot have full row rank",
                a.nrows(),
                a.ncols()
            )));
        }
        if a.iter().any(|v| !v.is_finite()) {
            return Err(HardNetError::Assumption("A has non-finite entries".into()));
        }
        let f = Factorised::new(&a)?;
        Ok(Arc::new((a, f)))
    }

    /// Projects into the bounds shrunk by `margin` (relative; see
    /// [`AffineConstraint::shrunk`]) instead of onto their boundary. 0 is the paper's layer.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin.max(0.0);
        self
    }

    /// Matrix, factorisation and (shrunk) bounds of sample `s`.
    fn at(&self, s: usize) -> (&DMatrix<f64>, &Factorised, DVector<f64>, DVector<f64>) {
        let m = &self.mats[if self.shared_mat { 0 } else { s }];
        let (lo, hi) = &self.bounds[if self.shared_bounds { 0 } else { s }];
        let (lo, hi) = shrink_bounds(lo, hi, self.margin);
        (&m.0, &m.1, lo, hi)
    }

    fn check_batch(&self, f: &DMatrix<f64>) -> Result<(), HardNetError> {
        let per_sample = if !self.shared_bounds {
            Some(self.bounds.len())
        } else if !self.shared_mat {
            Some(self.mats.len())
        } else {
            None
        };
        if let Some(n) = per_sample {
            if f.nrows() != n {
                return Err(HardNetError::Shape(format!(
                    "{} outputs for {n} constraints",
                    f.nrows()
                )));
            }
        }
        let n_out = self.mats[0].0.ncols();
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
        if self.shared_mat {
            return Ok(self.forward_shared(f));
        }
        let mut out = f.clone();
        for s in 0..f.nrows() {
            let (a, fac, lo, hi) = self.at(s);
            let fs = f.row(s).transpose();
            let af = a * &fs;
            let r = DVector::from_fn(af.len(), |i, _| af[i].clamp(lo[i], hi[i]) - af[i]);
            if r.iter().any(|v| *v != 0.0) {
                let p = fs + fac.pinv_mul(&r);
                out.row_mut(s).copy_from(&p.transpose());
            }
        }
        Ok(out)
    }

    /// Bounds of row `i` for sample `s`, shrunk.
    fn bound(&self, s: usize, i: usize) -> (f64, f64) {
        let (lo, hi) = &self.bounds[if self.shared_bounds { 0 } else { s }];
        shrink_pair(lo[i], hi[i], self.margin)
    }

    /// With one matrix the batch goes through two matrix products, `F Aᵀ` and `R (A⁺)ᵀ`.
    fn forward_shared(&self, f: &DMatrix<f64>) -> DMatrix<f64> {
        let (a, fac) = &*self.mats[0];
        let af = f * a.transpose();
        let mut r = DMatrix::zeros(af.nrows(), af.ncols());
        let mut any = false;
        for s in 0..af.nrows() {
            for i in 0..af.ncols() {
                let (lo, hi) = self.bound(s, i);
                let v = af[(s, i)];
                r[(s, i)] = v.clamp(lo, hi) - v;
                any |= r[(s, i)] != 0.0;
            }
        }
        if !any {
            return f.clone();
        }
        let mut out = f + r * fac.pinv_matrix().transpose();
        // Rows with nothing to clip are left exactly as they were.
        for s in 0..af.nrows() {
            if (0..af.ncols()).all(|i| {
                let (lo, hi) = self.bound(s, i);
                (lo..=hi).contains(&af[(s, i)])
            }) {
                out.row_mut(s).copy_from(&f.row(s));
            }
        }
        out
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
        if self.shared_mat {
            // ∂L/∂f = G − ((G A⁺) ⊙ D) A, batched.
            let (a, fac) = &*self.mats[0];
            let af = f * a.transpose();
            let mut w = g * fac.pinv_matrix();
            for s in 0..af.nrows() {
                for i in 0..af.ncols() {
                    let (lo, hi) = self.bound(s, i);
                    if (lo..=hi).contains(&af[(s, i)]) {
                        w[(s, i)] = 0.0;
                    }
                }
            }
            return Ok(g - w * a);
        }
        let mut out = g.clone();
        for s in 0..f.nrows() {
            let (a, fac, lo, hi) = self.at(s);
            let fs = f.row(s).transpose();
            let af = a * &fs;
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
            let corr = a.transpose() * w;
            out.row_mut(s).copy_from(&(gs - corr).transpose());
        }
        Ok(out)
    }
}
