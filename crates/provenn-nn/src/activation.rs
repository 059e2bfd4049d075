use serde::{Deserialize, Serialize};

/// Elementwise activation of a dense layer. Every variant is monotone non-decreasing, which
/// interval bound propagation relies on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `z` if `z ≥ 0`, else `slope · z`; `slope` must lie in `[0, 1]` (monotone).
    LeakyRelu(f64),
    /// `1 / (1 + e^{-z})`.
    Sigmoid,
    /// `tanh(z)`.
    Tanh,
    /// `z`.
    Identity,
}

impl Activation {
    /// Applies the activation to one pre-activation value.
    #[inline]
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(s) => {
                if z >= 0.0 {
                    z
                } else {
                    s * z
                }
            }
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Identity => z,
        }
    }

    /// Derivative at pre-activation `z`, given the post-activation `a = apply(z)`.
    /// For ReLU at exactly 0 the derivative 0 is used (the usual sub-gradient convention).
    #[inline]
    pub fn derivative(self, z: f64, a: f64) -> f64 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(s) => {
                if z >= 0.0 {
                    1.0
                } else {
                    s
                }
            }
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Tanh => 1.0 - a * a,
            Activation::Identity => 1.0,
        }
    }

    /// Whether the activation is piecewise linear (ReLU, LeakyReLU, Identity): exactly
    /// encodable in a MILP.
    pub fn is_piecewise_linear(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::LeakyRelu(_) | Activation::Identity
        )
    }

    /// Short lower-case name, used in summaries and the CLI.
    pub fn name(self) -> String {
        match self {
            Activation::Relu => "relu".into(),
            Activation::LeakyRelu(s) => format!("leaky_relu({s})"),
            Activation::Sigmoid => "sigmoid".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Identity => "identity".into(),
        }
    }

    /// Parses `relu`, `leaky_relu(0.01)`, `leaky_relu`, `sigmoid`, `tanh`, `identity`/`linear`.
    pub fn parse(s: &str) -> Option<Activation> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "identity" | "linear" | "none" => Activation::Identity,
            "leaky_relu" | "leakyrelu" => Activation::LeakyRelu(0.01),
            _ => {
                let inner = s
                    .strip_prefix("leaky_relu(")
                    .or_else(|| s.strip_prefix("leakyrelu("))?
                    .strip_suffix(')')?;
                let slope: f64 = inner.trim().parse().ok()?;
                if !(0.0..=1.0).contains(&slope) {
                    return None;
                }
                Activation::LeakyRelu(slope)
            }
        })
    }
}

/// Numerically stable logistic function.
#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_names() {
        for a in [
            Activation::Relu,
            Activation::LeakyRelu(0.2),
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Identity,
        ] {
            assert_eq!(Activation::parse(&a.name()), Some(a));
        }
        assert_eq!(Activation::parse("leaky_relu(2)"), None);
        assert_eq!(Activation::parse("softplus"), None);
    }

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
    }
}
