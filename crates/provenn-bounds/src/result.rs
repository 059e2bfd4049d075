/// Element-wise intervals `[lower[i], upper[i]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Lower bounds.
    pub lower: Vec<f64>,
    /// Upper bounds.
    pub upper: Vec<f64>,
}

impl Interval {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lower.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.lower.is_empty()
    }
    /// Mean of `upper − lower`.
    pub fn mean_width(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.lower
            .iter()
            .zip(&self.upper)
            .map(|(l, u)| u - l)
            .sum::<f64>()
            / self.len() as f64
    }
    /// Whether `v` lies inside, entry by entry.
    pub fn contains(&self, v: &[f64]) -> bool {
        v.len() == self.len()
            && v.iter()
                .zip(self.lower.iter().zip(&self.upper))
                .all(|(x, (l, u))| l <= x && x <= u)
    }
    /// Intersection with another sound interval of the same quantity.
    pub fn intersect(&mut self, other: &Interval) {
        for i in 0..self.len() {
            self.lower[i] = self.lower[i].max(other.lower[i]);
            self.upper[i] = self.upper[i].min(other.upper[i]);
        }
    }
    pub(crate) fn max_abs(&self) -> Vec<f64> {
        self.lower
            .iter()
            .zip(&self.upper)
            .map(|(l, u)| l.abs().max(u.abs()))
            .collect()
    }
}

/// Bounds of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBounds {
    /// Pre-activations `z = W·a + b`.
    pub pre: Interval,
    /// Post-activations `σ(z)`.
    pub post: Interval,
}

/// ReLU-style stability of one layer's neurons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stability {
    /// Neurons with `z ≥ 0` on the whole box.
    pub active: usize,
    /// Neurons with `z ≤ 0` on the whole box.
    pub inactive: usize,
    /// Neurons whose sign can change.
    pub unstable: usize,
}

/// Bounds of every layer of a network over an input box.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkBounds {
    pub(crate) input: Interval,
    pub(crate) layers: Vec<LayerBounds>,
    pub(crate) skip_features: Vec<usize>,
    pub(crate) spec: Option<Interval>,
}

impl NetworkBounds {
    /// Bounds of layer `l`.
    pub fn layer(&self, l: usize) -> &LayerBounds {
        &self.layers[l]
    }
    /// All layers.
    pub fn layers(&self) -> &[LayerBounds] {
        &self.layers
    }
    /// The input box.
    pub fn input(&self) -> &Interval {
        &self.input
    }
    /// Output bounds.
    pub fn output(&self) -> &Interval {
        &self.layers.last().expect("at least one layer").post
    }
    /// Bounds of `C·y` when a specification was given.
    pub fn spec(&self) -> Option<&Interval> {
        self.spec.as_ref()
    }
    /// The box of the last layer's input: penultimate post-activations followed by the skip
    /// features (for a one-layer network, the input followed by the skip features).
    pub fn latent_box(&self) -> Interval {
        let base = if self.layers.len() >= 2 {
            &self.layers[self.layers.len() - 2].post
        } else {
            &self.input
        };
        let mut b = base.clone();
        for &j in &self.skip_features {
            b.lower.push(self.input.lower[j]);
            b.upper.push(self.input.upper[j]);
        }
        b
    }
    /// Stability of each layer's pre-activations (meaningful for ReLU layers).
    pub fn stability(&self) -> Vec<Stability> {
        self.layers
            .iter()
            .map(|l| {
                let mut s = Stability::default();
                for (lo, hi) in l.pre.lower.iter().zip(&l.pre.upper) {
                    if *lo >= 0.0 {
                        s.active += 1;
                    } else if *hi <= 0.0 {
                        s.inactive += 1;
                    } else {
                        s.unstable += 1;
                    }
                }
                s
            })
            .collect()
    }
}
