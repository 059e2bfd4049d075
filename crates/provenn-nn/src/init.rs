use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

/// Weight initialisation scheme. Biases start at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Init {
    /// He/Kaiming normal: `N(0, 2 / fan_in)` (for ReLU layers).
    #[default]
    HeNormal,
    /// He/Kaiming uniform: `U(±sqrt(6 / fan_in))`.
    HeUniform,
    /// Xavier/Glorot normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// Xavier/Glorot uniform: `U(±sqrt(6 / (fan_in + fan_out)))`.
    XavierUniform,
}

impl Init {
    pub(crate) fn sample<R: Rng>(self, fan_in: usize, fan_out: usize, rng: &mut R) -> f64 {
        let fi = fan_in.max(1) as f64;
        let fo = fan_out.max(1) as f64;
        match self {
            Init::HeNormal => Normal::new(0.0, (2.0 / fi).sqrt()).unwrap().sample(rng),
            Init::HeUniform => {
                let a = (6.0 / fi).sqrt();
                Uniform::new_inclusive(-a, a).sample(rng)
            }
            Init::XavierNormal => Normal::new(0.0, (2.0 / (fi + fo)).sqrt())
                .unwrap()
                .sample(rng),
            Init::XavierUniform => {
                let a = (6.0 / (fi + fo)).sqrt();
                Uniform::new_inclusive(-a, a).sample(rng)
            }
        }
    }
}
