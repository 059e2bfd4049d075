//! The equality-partition variant of HardNet-Aff: constraints `b_l ≤ A y ≤ b_u`, `C y = d`.
//! The network predicts the free part `z` of `y`; the dependent part is completed from the
//! equalities, `y_dep = C_dep⁻¹ (d − C_free z)`, and the inequalities become affine
//! constraints on `z` alone, `b_l − A_dep C_dep⁻¹ d ≤ (A_free − A_dep C_dep⁻¹ C_free) z ≤ …`,
//! enforced by [`AffineProjection`].

use nalgebra::{DMatrix, DVector, LU};

use crate::affine::{AffineConstraint, AffineProjection};
use crate::HardNetError;

/// A shared (input-independent) partition: which outputs are completed from the equalities.
#[derive(Debug, Clone)]
pub struct Partition {
    free: Vec<usize>,
    dependent: Vec<usize>,
    /// `C_dep⁻¹ C_free` (`n_eq × n_free`).
    elim: DMatrix<f64>,
    c_dep: LU<f64, nalgebra::Dyn, nalgebra::Dyn>,
    /// `A_free − A_dep C_dep⁻¹ C_free`.
    a_reduced: DMatrix<f64>,
    /// `A_dep C_dep⁻¹`.
    a_shift: DMatrix<f64>,
    n_out: usize,
}

impl Partition {
    /// Builds the partition with `dependent` output indices (one per equality row).
    pub fn new(
        a: &DMatrix<f64>,
        c: &DMatrix<f64>,
        dependent: Vec<usize>,
    ) -> Result<Self, HardNetError> {
        let n_out = c.ncols();
        if a.ncols() != n_out || dependent.len() != c.nrows() {
            return Err(HardNetError::Shape(format!(
                "A has {} columns, C is {}×{n_out}, {} dependent outputs",
                a.ncols(),
                c.nrows(),
                dependent.len()
            )));
        }
        let mut is_dep = vec![false; n_out];
        for &j in &dependent {
            if j >= n_out || std::mem::replace(&mut is_dep[j], true) {
                return Err(HardNetError::Shape(format!("bad dependent output {j}")));
            }
        }
        let free: Vec<usize> = (0..n_out).filter(|&j| !is_dep[j]).collect();
        let c_dep = c.select_columns(&dependent);
        let c_free = c.select_columns(&free);
        let lu = c_dep.clone().lu();
        let elim = lu.solve(&c_free).ok_or_else(|| {
            HardNetError::Assumption("C restricted to the dependent outputs is singular".into())
        })?;
        let inv = lu
            .try_inverse()
            .ok_or_else(|| HardNetError::Assumption("C_dep is singular".into()))?;
        let a_dep = a.select_columns(&dependent);
        let a_reduced = a.select_columns(&free) - &a_dep * &elim;
        let a_shift = a_dep * inv;
        Ok(Partition {
            free,
            dependent,
            elim,
            c_dep: c_dep.lu(),
            a_reduced,
            a_shift,
            n_out,
        })
    }

    /// Number of outputs the network must predict.
    pub fn n_free(&self) -> usize {
        self.free.len()
    }

    /// The reduced inequality matrix on `z`, `A_free − A_dep C_dep⁻¹ C_free`.
    pub fn reduced_matrix(&self) -> &DMatrix<f64> {
        &self.a_reduced
    }

    /// Bounds of the reduced inequalities for right-hand sides `d`, `b_l`, `b_u`.
    pub fn reduced_bounds(
        &self,
        d: &DVector<f64>,
        lower: &DVector<f64>,
        upper: &DVector<f64>,
    ) -> (DVector<f64>, DVector<f64>) {
        let shift = &self.a_shift * d;
        (lower - &shift, upper - &shift)
    }

    /// The reduced constraint on `z` for right-hand sides `d`, `b_l`, `b_u`.
    pub fn reduced(
        &self,
        d: &DVector<f64>,
        lower: &DVector<f64>,
        upper: &DVector<f64>,
    ) -> AffineConstraint {
        let (lower, upper) = self.reduced_bounds(d, lower, upper);
        AffineConstraint {
            a: self.a_reduced.clone(),
            lower,
            upper,
        }
    }

    /// Full outputs from projected free parts `z` (rows) and right-hand sides `d` (rows).
    pub fn complete(&self, z: &DMatrix<f64>, d: &DMatrix<f64>) -> DMatrix<f64> {
        let mut y = DMatrix::zeros(z.nrows(), self.n_out);
        for s in 0..z.nrows() {
            let zs = z.row(s).transpose();
            let ds = d.row(s).transpose();
            let dep =
                self.c_dep.solve(&ds).expect("C_dep was checked invertible") - &self.elim * &zs;
            for (k, &j) in self.free.iter().enumerate() {
                y[(s, j)] = zs[k];
            }
            for (k, &j) in self.dependent.iter().enumerate() {
                y[(s, j)] = dep[k];
            }
        }
        y
    }

    /// `∂L/∂z` from `∂L/∂y` (rows are samples).
    pub fn complete_backward(&self, g: &DMatrix<f64>) -> DMatrix<f64> {
        let g_free = g.select_columns(&self.free);
        let g_dep = g.select_columns(&self.dependent);
        g_free - g_dep * &self.elim
    }

    /// Forward pass: project the network's free outputs `z` and complete them.
    pub fn forward(
        &self,
        z: &DMatrix<f64>,
        d: &DMatrix<f64>,
        lower: &DMatrix<f64>,
        upper: &DMatrix<f64>,
    ) -> Result<(DMatrix<f64>, AffineProjection), HardNetError> {
        let cons = (0..z.nrows())
            .map(|s| {
                self.reduced(
                    &d.row(s).transpose(),
                    &lower.row(s).transpose(),
                    &upper.row(s).transpose(),
                )
            })
            .collect();
        let proj = AffineProjection::per_sample(cons, self.n_free())?;
        let zp = proj.forward(z)?;
        Ok((self.complete(&zp, d), proj))
    }
}
