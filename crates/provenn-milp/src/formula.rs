//! Encoding of IR formulas (negation normal form) into MILP rows over the network's input and
//! output expressions, switched on or off by binary literals with exact big-M constants taken
//! from the variables' bounds.
//!
//! The encoding *over-approximates* the set of points where the formula holds when
//! `strict = 0`: strict comparisons become non-strict, and a counted sub-formula may be counted
//! as true or false on its boundary. Searching for counterexamples in an over-approximation is
//! sound for certification; candidates are then re-checked exactly in f64.

use num_traits::ToPrimitive;
use provenn_dsl::ir::{Atom, Cmp, Formula, Linear, Side, Var};

use crate::encoding::Lin;
use crate::model::{Milp, VarId};
use crate::MilpError;

/// When a sub-formula must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lit {
    /// Unconditionally.
    Always,
    /// When the binary is 1.
    Pos(VarId),
    /// When the binary is 0.
    Neg(VarId),
}

/// Encodes formulas over one or two copies of a network.
pub(crate) struct FormulaEncoder<'a> {
    pub m: &'a mut Milp,
    /// Input expressions of each copy.
    pub x: [&'a [Lin]; 2],
    /// Output expressions of each copy.
    pub y: [&'a [Lin]; 2],
    /// Margin variable subtracted from the slack of output atoms outside counts.
    pub t: Option<VarId>,
    /// Inward shift of every inequality (0: strict comparisons relax to non-strict, an
    /// over-approximation; > 0: an under-approximation used to find robust witnesses).
    pub strict: f64,
}

fn q(v: &provenn_dsl::ir::Q) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

impl FormulaEncoder<'_> {
    /// The expression of a linear IR term; coefficients must be constants.
    pub fn lin(&self, e: &Linear) -> Result<Lin, MilpError> {
        let konst = |c: &provenn_dsl::ir::Expr| {
            c.as_const().map(q).ok_or_else(|| {
                MilpError::Unsupported(
                    "a coefficient depends on the input: the constraint is not linear".into(),
                )
            })
        };
        let mut out = Lin::constant(konst(&e.constant)?);
        for (v, c) in &e.terms {
            let k = konst(c)?;
            let (side, src, i) = match *v {
                Var::Input(s, i) => (s, &self.x, i),
                Var::Output(s, i) => (s, &self.y, i),
            };
            let copy = usize::from(side == Side::Second);
            let term = src[copy].get(i).ok_or_else(|| {
                MilpError::Dimension(format!(
                    "the constraint uses {} {i} of copy {}, which does not exist",
                    if matches!(v, Var::Input(..)) {
                        "input"
                    } else {
                        "output"
                    },
                    copy + 1
                ))
            })?;
            out.add_scaled(k, term);
        }
        Ok(out)
    }

    /// Interval of an expression from the variables' bounds.
    pub fn range(&self, e: &Lin) -> (f64, f64) {
        let (mut lo, mut hi) = (e.constant, e.constant);
        for &(v, a) in &e.coefs {
            let d = self.m.vars()[v.0];
            if a >= 0.0 {
                lo += a * d.lower;
                hi += a * d.upper;
            } else {
                lo += a * d.upper;
                hi += a * d.lower;
            }
        }
        (lo, hi)
    }

    /// Adds `e ≤ 0` (`upper = true`) or `e ≥ 0` when `lit` holds.
    fn cond_row(&mut self, e: &Lin, upper: bool, lit: Lit) -> Result<(), MilpError> {
        let (lo, hi) = self.range(e);
        let rhs = -e.constant;
        // Big-M: how far the row can be from holding anywhere in the box.
        let big = if upper { hi } else { -lo };
        if big <= 0.0 {
            return Ok(()); // holds everywhere
        }
        if !big.is_finite() {
            return Err(MilpError::Bounds(
                "an atom is unbounded over the domain (infinite big-M)".into(),
            ));
        }
        let sign = if upper { 1.0 } else { -1.0 };
        let mut coefs = e.coefs.clone();
        let mut r = rhs;
        match lit {
            Lit::Always => {}
            // e ≤ M(1 − b)  ⇔  e + M·b ≤ M (mirrored for ≥)
            Lit::Pos(b) => {
                coefs.push((b, sign * big));
                r += sign * big;
            }
            // e ≤ M·b
            Lit::Neg(b) => coefs.push((b, -sign * big)),
        }
        if upper {
            self.m.le(coefs, r);
        } else {
            self.m.ge(coefs, r);
        }
        Ok(())
    }

    fn never(&mut self, lit: Lit) {
        match lit {
            Lit::Always => {
                let v = self.m.continuous(0.0, 0.0);
                self.m.ge(vec![(v, 1.0)], 1.0);
            }
            Lit::Pos(b) => self.m.set_bounds(b, 0.0, 0.0),
            Lit::Neg(b) => self.m.set_bounds(b, 1.0, 1.0),
        }
    }

    fn atom(&mut self, a: &Atom, lit: Lit, margin: bool) -> Result<(), MilpError> {
        let mut e = self.lin(&a.expr)?;
        let uses_output = a.expr.terms.keys().any(|v| matches!(v, Var::Output(..)));
        // With a strict margin every inequality is shifted inwards, not only strict ones: the
        // search is then for a witness that survives rounding (e.g. a premise `x ≥ c` whose
        // optimum lies on its boundary, where the solver may return `c − 1 ulp`).
        let shift = self.strict;
        let t = if margin && uses_output { self.t } else { None };
        match a.cmp {
            Cmp::Le | Cmp::Lt => {
                e.constant += shift;
                if let Some(t) = t {
                    e.coefs.push((t, 1.0));
                }
                self.cond_row(&e, true, lit)
            }
            Cmp::Ge | Cmp::Gt => {
                e.constant -= shift;
                if let Some(t) = t {
                    e.coefs.push((t, -1.0));
                }
                self.cond_row(&e, false, lit)
            }
            Cmp::Eq => {
                self.cond_row(&e, true, lit)?;
                self.cond_row(&e, false, lit)
            }
        }
    }

    /// Adds rows forcing `f` whenever `lit` holds; `margin` applies the margin variable.
    pub fn formula(&mut self, f: &Formula, lit: Lit, margin: bool) -> Result<(), MilpError> {
        match f {
            Formula::True => Ok(()),
            Formula::False => {
                self.never(lit);
                Ok(())
            }
            Formula::Atom(a) => self.atom(a, lit, margin),
            Formula::And(parts) => parts.iter().try_for_each(|p| self.formula(p, lit, margin)),
            Formula::Or(parts) => {
                let bs: Vec<VarId> = parts.iter().map(|_| self.m.binary()).collect();
                let mut coefs: Vec<(VarId, f64)> = bs.iter().map(|&b| (b, 1.0)).collect();
                match lit {
                    Lit::Always => self.m.ge(coefs, 1.0),
                    Lit::Pos(b) => {
                        coefs.push((b, -1.0));
                        self.m.ge(coefs, 0.0);
                    }
                    Lit::Neg(b) => {
                        coefs.push((b, 1.0));
                        self.m.ge(coefs, 1.0);
                    }
                }
                for (p, &b) in parts.iter().zip(&bs) {
                    self.formula(p, Lit::Pos(b), margin)?;
                }
                Ok(())
            }
            Formula::Count { terms, cmp, bound } => {
                let mut sum = Lin::constant(-q(bound));
                let mut integral = bound.is_integer();
                for (w, g) in terms {
                    let c = self.m.binary();
                    self.formula(g, Lit::Pos(c), false)?;
                    self.formula(&g.clone().negate(), Lit::Neg(c), false)?;
                    sum.add_scaled(q(w), &Lin::var(c));
                    integral &= w.is_integer();
                }
                // Integer counts make strict comparisons exact: `s < b` ⇔ `s ≤ b − 1`.
                let step = if integral { 1.0 } else { self.strict };
                match cmp {
                    Cmp::Le => self.cond_row(&sum, true, lit),
                    Cmp::Lt => {
                        sum.constant += step;
                        self.cond_row(&sum, true, lit)
                    }
                    Cmp::Ge => self.cond_row(&sum, false, lit),
                    Cmp::Gt => {
                        sum.constant -= step;
                        self.cond_row(&sum, false, lit)
                    }
                    Cmp::Eq => {
                        self.cond_row(&sum, true, lit)?;
                        self.cond_row(&sum, false, lit)
                    }
                }
            }
        }
    }
}

/// Largest absolute value any output atom of `f` can take, for bounding the margin variable.
pub(crate) fn atom_scale(enc: &FormulaEncoder<'_>, f: &Formula) -> Result<f64, MilpError> {
    Ok(match f {
        Formula::True | Formula::False | Formula::Count { .. } => 0.0,
        Formula::Atom(a) => {
            let (lo, hi) = enc.range(&enc.lin(&a.expr)?);
            lo.abs().max(hi.abs())
        }
        Formula::And(v) | Formula::Or(v) => v
            .iter()
            .map(|g| atom_scale(enc, g))
            .try_fold(0.0f64, |acc, s| s.map(|s| acc.max(s)))?,
    })
}
