use crate::BoundsError;

/// A box of inputs: feature `j` ranges over `[lower[j], upper[j]]`. Degenerate intervals
/// (`lower == upper`) fix a feature.
#[derive(Debug, Clone, PartialEq)]
pub struct InputBox {
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl InputBox {
    /// Validates `lower ≤ upper`, equal lengths, finite entries.
    pub fn new(lower: Vec<f64>, upper: Vec<f64>) -> Result<Self, BoundsError> {
        if lower.len() != upper.len() {
            return Err(BoundsError::InvalidBox(format!(
                "{} lower and {} upper bounds",
                lower.len(),
                upper.len()
            )));
        }
        for (j, (l, u)) in lower.iter().zip(&upper).enumerate() {
            if !(l.is_finite() && u.is_finite()) {
                return Err(BoundsError::InvalidBox(format!(
                    "feature {j}: non-finite bound"
                )));
            }
            if l > u {
                return Err(BoundsError::InvalidBox(format!(
                    "feature {j}: empty interval [{l}, {u}]"
                )));
            }
        }
        Ok(InputBox { lower, upper })
    }

    /// The unit box `[0, 1]^n` (the domain of min–max scaled data).
    pub fn unit(n: usize) -> Self {
        InputBox {
            lower: vec![0.0; n],
            upper: vec![1.0; n],
        }
    }

    /// The single point `x`.
    pub fn point(x: &[f64]) -> Result<Self, BoundsError> {
        InputBox::new(x.to_vec(), x.to_vec())
    }

    /// The ℓ∞ ball of radius `eps` around `x`, intersected with `within` if given.
    pub fn linf_ball(x: &[f64], eps: f64, within: Option<&InputBox>) -> Result<Self, BoundsError> {
        if eps.is_nan() || eps < 0.0 {
            return Err(BoundsError::InvalidBox(format!("radius {eps} < 0")));
        }
        let mut lo: Vec<f64> = x.iter().map(|v| v - eps).collect();
        let mut hi: Vec<f64> = x.iter().map(|v| v + eps).collect();
        if let Some(w) = within {
            for j in 0..lo.len().min(w.dim()) {
                lo[j] = lo[j].max(w.lower[j]);
                hi[j] = hi[j].min(w.upper[j]);
            }
        }
        InputBox::new(lo, hi)
    }

    /// Fixes feature `j` to `v`.
    pub fn fix(&mut self, j: usize, v: f64) -> Result<(), BoundsError> {
        if j >= self.dim() || !v.is_finite() {
            return Err(BoundsError::InvalidBox(format!(
                "cannot fix feature {j} to {v}"
            )));
        }
        self.lower[j] = v;
        self.upper[j] = v;
        Ok(())
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.lower.len()
    }
    /// Lower bounds.
    pub fn lower(&self) -> &[f64] {
        &self.lower
    }
    /// Upper bounds.
    pub fn upper(&self) -> &[f64] {
        &self.upper
    }
    /// `(lower[j], upper[j])` per feature (the form constraint-language bindings take).
    pub fn intervals(&self) -> Vec<(f64, f64)> {
        self.lower
            .iter()
            .copied()
            .zip(self.upper.iter().copied())
            .collect()
    }
    /// Whether `x` lies in the box.
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(self.lower.iter().zip(&self.upper))
                .all(|(v, (l, u))| l <= v && v <= u)
    }

    /// Parses `l1:u1,l2:u2,...` (a bare number fixes a feature).
    pub fn parse(s: &str) -> Result<Self, BoundsError> {
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for (j, part) in s.split(',').enumerate() {
            let part = part.trim();
            let num = |t: &str| {
                t.trim().parse::<f64>().map_err(|_| {
                    BoundsError::InvalidBox(format!("feature {j}: `{t}` is not a number"))
                })
            };
            match part.split_once(':') {
                Some((a, b)) => {
                    lo.push(num(a)?);
                    hi.push(num(b)?);
                }
                None => {
                    let v = num(part)?;
                    lo.push(v);
                    hi.push(v);
                }
            }
        }
        InputBox::new(lo, hi)
    }
}
