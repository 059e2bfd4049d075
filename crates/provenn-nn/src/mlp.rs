use std::borrow::Cow;

use nalgebra::{DMatrix, DMatrixViewMut, DVector, DVectorViewMut};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{loss::Loss, Activation, Init, NnError};

/// Work (multiply–adds) below which a batch is processed on one thread: splitting small
/// batches costs more in thread hand-off and allocation than it saves (see `benches/nn_forward.rs`).
const PARALLEL_MIN_WORK: usize = 4_000_000;
/// Minimum rows per parallel chunk.
const PARALLEL_MIN_ROWS: usize = 32;

/// One dense layer `a = σ(W·x + b)` with `W` of shape `outputs × inputs`.
///
/// The shape is fixed at construction; setters refuse a different shape, so an [`Mlp`]'s
/// layer chain stays consistent.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    weights: DMatrix<f64>,
    bias: DVector<f64>,
    activation: Activation,
}

impl Dense {
    /// Creates a layer; `bias.len()` must equal `weights.nrows()`.
    pub fn new(
        weights: DMatrix<f64>,
        bias: DVector<f64>,
        activation: Activation,
    ) -> Result<Self, NnError> {
        if bias.len() != weights.nrows() {
            return Err(NnError::shape("bias length", weights.nrows(), bias.len()));
        }
        if weights.nrows() == 0 || weights.ncols() == 0 {
            return Err(NnError::InvalidConfig(format!(
                "a dense layer needs at least one input and one output, got {}x{}",
                weights.nrows(),
                weights.ncols()
            )));
        }
        if let Activation::LeakyRelu(s) = activation {
            if !(0.0..=1.0).contains(&s) {
                return Err(NnError::InvalidConfig(format!(
                    "leaky ReLU slope must lie in [0, 1] to stay monotone, got {s}"
                )));
            }
        }
        Ok(Dense {
            weights,
            bias,
            activation,
        })
    }

    /// Weight matrix, `outputs × inputs`.
    pub fn weights(&self) -> &DMatrix<f64> {
        &self.weights
    }
    /// Bias vector.
    pub fn bias(&self) -> &DVector<f64> {
        &self.bias
    }
    /// Activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }
    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.weights.ncols()
    }
    /// Number of outputs (neurons).
    pub fn outputs(&self) -> usize {
        self.weights.nrows()
    }
    /// Mutable view of the weights (the shape cannot change through it).
    pub fn weights_mut(&mut self) -> DMatrixViewMut<'_, f64> {
        let shape = self.weights.shape();
        self.weights.view_mut((0, 0), shape)
    }
    /// Mutable view of the bias.
    pub fn bias_mut(&mut self) -> DVectorViewMut<'_, f64> {
        let n = self.bias.len();
        self.bias.rows_mut(0, n)
    }
    /// Replaces the weights; the shape must match.
    pub fn set_weights(&mut self, w: DMatrix<f64>) -> Result<(), NnError> {
        if w.shape() != self.weights.shape() {
            return Err(NnError::shape(
                "weights",
                format!("{:?}", self.weights.shape()),
                format!("{:?}", w.shape()),
            ));
        }
        self.weights = w;
        Ok(())
    }
    /// Replaces the bias; the length must match.
    pub fn set_bias(&mut self, b: DVector<f64>) -> Result<(), NnError> {
        if b.len() != self.bias.len() {
            return Err(NnError::shape("bias", self.bias.len(), b.len()));
        }
        self.bias = b;
        Ok(())
    }

    /// Pre-activations for a batch (rows are samples): `Z = A·Wᵀ + 1·bᵀ`.
    fn pre_activation(&self, a: &DMatrix<f64>) -> DMatrix<f64> {
        let mut z = a * self.weights.transpose();
        for (j, mut col) in z.column_iter_mut().enumerate() {
            col.add_scalar_mut(self.bias[j]);
        }
        z
    }
}

/// A multi-layer perceptron with optional skip features.
///
/// With skip features `S`, the last layer's input is `[h_{k-1}(x); x_S]` (the penultimate
/// activations followed by the selected raw inputs, in the order given). For a one-layer
/// network, `h_0(x) = x`.
///
/// Invariants (checked at construction and on load): at least one layer; layer 0 takes
/// `n_inputs` inputs (plus `|S|` if it is also the last layer); layer `i > 0` takes the outputs
/// of layer `i − 1` (plus `|S|` for the last); skip indices are `< n_inputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    n_inputs: usize,
    layers: Vec<Dense>,
    skip_features: Vec<usize>,
}

/// Per-layer values of a batch forward pass. All matrices have one row per sample.
#[derive(Debug, Clone)]
pub struct ForwardTrace {
    /// The inputs `x`.
    pub input: DMatrix<f64>,
    /// Pre-activations `z_l = W_l·a_{l-1} + b_l`, one matrix per layer.
    pub pre: Vec<DMatrix<f64>>,
    /// Post-activations `a_l = σ(z_l)`, one per layer; the last one is the network output.
    pub post: Vec<DMatrix<f64>>,
    skip_features: Vec<usize>,
    n_layers: usize,
}

impl ForwardTrace {
    /// The network output (post-activation of the last layer).
    pub fn output(&self) -> &DMatrix<f64> {
        self.post.last().expect("an Mlp has at least one layer")
    }

    /// The input of layer `l` (for the last layer: penultimate activations followed by the skip
    /// features).
    pub fn layer_input(&self, l: usize) -> Cow<'_, DMatrix<f64>> {
        let prev = if l == 0 {
            &self.input
        } else {
            &self.post[l - 1]
        };
        if l + 1 == self.n_layers && !self.skip_features.is_empty() {
            Cow::Owned(concat_skip(prev, &self.input, &self.skip_features))
        } else {
            Cow::Borrowed(prev)
        }
    }

    /// Number of samples.
    pub fn batch_size(&self) -> usize {
        self.input.nrows()
    }
}

/// Gradient of a scalar w.r.t. one layer's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGradient {
    /// `∂L/∂W`, same shape as the weights.
    pub weights: DMatrix<f64>,
    /// `∂L/∂b`.
    pub bias: DVector<f64>,
}

/// Gradient of a scalar w.r.t. every parameter of an [`Mlp`].
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// One entry per layer.
    pub layers: Vec<LayerGradient>,
}

impl Gradients {
    /// All-zero gradients shaped like `net`.
    pub fn zeros_like(net: &Mlp) -> Self {
        Gradients {
            layers: net
                .layers
                .iter()
                .map(|l| LayerGradient {
                    weights: DMatrix::zeros(l.outputs(), l.inputs()),
                    bias: DVector::zeros(l.outputs()),
                })
                .collect(),
        }
    }

    /// `self += other`.
    pub fn add_assign(&mut self, other: &Gradients) {
        for (a, b) in self.layers.iter_mut().zip(&other.layers) {
            a.weights += &b.weights;
            a.bias += &b.bias;
        }
    }

    /// `self *= s`.
    pub fn scale(&mut self, s: f64) {
        for l in &mut self.layers {
            l.weights *= s;
            l.bias *= s;
        }
    }

    /// Euclidean norm over all entries.
    pub fn norm(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.weights.norm_squared() + l.bias.norm_squared())
            .sum::<f64>()
            .sqrt()
    }
}

fn concat_skip(prev: &DMatrix<f64>, x: &DMatrix<f64>, skip: &[usize]) -> DMatrix<f64> {
    let n = prev.nrows();
    let w = prev.ncols();
    let mut out = DMatrix::zeros(n, w + skip.len());
    out.columns_mut(0, w).copy_from(prev);
    for (k, &j) in skip.iter().enumerate() {
        out.column_mut(w + k).copy_from(&x.column(j));
    }
    out
}

fn stack_rows(parts: Vec<DMatrix<f64>>) -> DMatrix<f64> {
    let n: usize = parts.iter().map(|p| p.nrows()).sum();
    let c = parts.first().map_or(0, |p| p.ncols());
    let mut out = DMatrix::zeros(n, c);
    let mut r = 0;
    for p in parts {
        out.rows_mut(r, p.nrows()).copy_from(&p);
        r += p.nrows();
    }
    out
}

impl Mlp {
    /// Builds a network from explicit layers; see the type-level invariants.
    pub fn from_layers(
        n_inputs: usize,
        layers: Vec<Dense>,
        skip_features: Vec<usize>,
    ) -> Result<Self, NnError> {
        let net = Mlp {
            n_inputs,
            layers,
            skip_features,
        };
        net.validate()?;
        Ok(net)
    }

    pub(crate) fn validate(&self) -> Result<(), NnError> {
        if self.n_inputs == 0 {
            return Err(NnError::InvalidConfig("network has zero inputs".into()));
        }
        if self.layers.is_empty() {
            return Err(NnError::InvalidConfig("network has no layers".into()));
        }
        for &j in &self.skip_features {
            if j >= self.n_inputs {
                return Err(NnError::InvalidConfig(format!(
                    "skip feature {j} out of range for {} inputs",
                    self.n_inputs
                )));
            }
        }
        for (l, layer) in self.layers.iter().enumerate() {
            if layer.bias.len() != layer.weights.nrows() || layer.outputs() == 0 {
                return Err(NnError::InvalidConfig(format!(
                    "layer {l}: bias length {} does not match {} outputs",
                    layer.bias.len(),
                    layer.outputs()
                )));
            }
            let expected = self.layer_input_width(l);
            if layer.inputs() != expected {
                return Err(NnError::InvalidConfig(format!(
                    "layer {l} takes {} inputs but receives {expected}",
                    layer.inputs()
                )));
            }
            if let Activation::LeakyRelu(s) = layer.activation {
                if !(0.0..=1.0).contains(&s) {
                    return Err(NnError::InvalidConfig(format!(
                        "layer {l}: leaky ReLU slope {s} outside [0, 1]"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Width of the input that layer `l` receives.
    pub fn layer_input_width(&self, l: usize) -> usize {
        let base = if l == 0 {
            self.n_inputs
        } else {
            self.layers[l - 1].outputs()
        };
        if l + 1 == self.layers.len() {
            base + self.skip_features.len()
        } else {
            base
        }
    }

    /// Number of inputs.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }
    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, Dense::outputs)
    }
    /// The layers, first to last.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }
    /// Mutable access to one layer (its shape cannot change).
    pub fn layer_mut(&mut self, l: usize) -> &mut Dense {
        &mut self.layers[l]
    }
    /// Indices of the inputs copied into the last layer's input.
    pub fn skip_features(&self) -> &[usize] {
        &self.skip_features
    }
    /// Total number of trainable parameters.
    pub fn n_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weights.len() + l.bias.len())
            .sum()
    }

    /// Human-readable architecture, e.g. `4-[16 relu]-[3 identity] skip[0]`.
    pub fn summary(&self) -> String {
        let mut s = self.n_inputs.to_string();
        for l in &self.layers {
            s.push_str(&format!("-[{} {}]", l.outputs(), l.activation.name()));
        }
        if !self.skip_features.is_empty() {
            s.push_str(&format!(" skip{:?}", self.skip_features));
        }
        s
    }

    fn check_input_cols(&self, cols: usize) -> Result<(), NnError> {
        if cols != self.n_inputs {
            return Err(NnError::shape("input features", self.n_inputs, cols));
        }
        Ok(())
    }

    /// Forward pass for one sample.
    pub fn forward(&self, x: &DVector<f64>) -> Result<DVector<f64>, NnError> {
        self.check_input_cols(x.len())?;
        let last = self.layers.len() - 1;
        let mut a = x.clone();
        for (l, layer) in self.layers.iter().enumerate() {
            if l == last && !self.skip_features.is_empty() {
                let mut ext = DVector::zeros(a.len() + self.skip_features.len());
                ext.rows_mut(0, a.len()).copy_from(&a);
                for (k, &j) in self.skip_features.iter().enumerate() {
                    ext[a.len() + k] = x[j];
                }
                a = ext;
            }
            let mut z = &layer.weights * &a;
            z += &layer.bias;
            z.apply(|v| *v = layer.activation.apply(*v));
            a = z;
        }
        Ok(a)
    }

    /// Forward pass for a batch (rows are samples); returns one output row per sample.
    pub fn forward_batch(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, NnError> {
        self.check_input_cols(x.ncols())?;
        Ok(self.map_chunks(x, |c| self.trace_serial(c).post.pop().unwrap(), stack_rows))
    }

    /// Forward pass for a batch keeping every layer's pre- and post-activations.
    pub fn trace(&self, x: &DMatrix<f64>) -> Result<ForwardTrace, NnError> {
        self.check_input_cols(x.ncols())?;
        Ok(self.map_chunks(
            x,
            |c| self.trace_serial(c),
            |parts| {
                let n_layers = self.layers.len();
                let mut pre = Vec::with_capacity(n_layers);
                let mut post = Vec::with_capacity(n_layers);
                for l in 0..n_layers {
                    pre.push(stack_rows(parts.iter().map(|p| p.pre[l].clone()).collect()));
                    post.push(stack_rows(
                        parts.iter().map(|p| p.post[l].clone()).collect(),
                    ));
                }
                ForwardTrace {
                    input: x.clone(),
                    pre,
                    post,
                    skip_features: self.skip_features.clone(),
                    n_layers,
                }
            },
        ))
    }

    fn trace_serial(&self, x: &DMatrix<f64>) -> ForwardTrace {
        let mut trace = ForwardTrace {
            input: x.clone(),
            pre: Vec::with_capacity(self.layers.len()),
            post: Vec::with_capacity(self.layers.len()),
            skip_features: self.skip_features.clone(),
            n_layers: self.layers.len(),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let z = layer.pre_activation(&trace.layer_input(l));
            let act = layer.activation;
            let a = z.map(|v| act.apply(v));
            trace.pre.push(z);
            trace.post.push(a);
        }
        trace
    }

    /// Multiply–adds of one sample's forward pass.
    fn work_per_sample(&self) -> usize {
        self.layers.iter().map(|l| l.weights.len()).sum()
    }

    /// Number of row chunks to split a batch of `n` rows into.
    fn n_chunks(&self, n: usize) -> usize {
        let threads = rayon::current_num_threads();
        if threads < 2 || n * self.work_per_sample() < PARALLEL_MIN_WORK {
            return 1;
        }
        threads.min(n / PARALLEL_MIN_ROWS).max(1)
    }

    fn map_chunks<T: Send, R>(
        &self,
        x: &DMatrix<f64>,
        f: impl Fn(&DMatrix<f64>) -> T + Sync,
        merge: impl FnOnce(Vec<T>) -> R,
    ) -> R {
        let n = x.nrows();
        let chunks = self.n_chunks(n);
        if chunks == 1 {
            return merge(vec![f(x)]);
        }
        let size = n.div_ceil(chunks);
        let parts: Vec<T> = (0..chunks)
            .into_par_iter()
            .filter_map(|c| {
                let start = c * size;
                (start < n).then(|| f(&x.rows(start, size.min(n - start)).into_owned()))
            })
            .collect();
        merge(parts)
    }

    /// Reverse-mode vector–Jacobian product.
    ///
    /// Given a trace of a batch and `grad_output = ∂L/∂y` (one row per sample), returns
    /// `∂L/∂θ` for every weight and bias (summed over the batch) and `∂L/∂x` (one row per
    /// sample). Layers appended after the network (e.g. a HardNet projection) compute their own
    /// VJP and pass the result here.
    pub fn backward(
        &self,
        trace: &ForwardTrace,
        grad_output: &DMatrix<f64>,
    ) -> Result<(Gradients, DMatrix<f64>), NnError> {
        self.backward_impl(trace, grad_output, true)
    }

    fn backward_impl(
        &self,
        trace: &ForwardTrace,
        grad_output: &DMatrix<f64>,
        input_gradient: bool,
    ) -> Result<(Gradients, DMatrix<f64>), NnError> {
        let out = trace.output();
        if grad_output.shape() != out.shape() {
            return Err(NnError::shape(
                "output gradient",
                format!("{:?}", out.shape()),
                format!("{:?}", grad_output.shape()),
            ));
        }
        let last = self.layers.len() - 1;
        let mut grads = Vec::with_capacity(self.layers.len());
        let mut grad_x = DMatrix::zeros(trace.input.nrows(), self.n_inputs);
        // delta = ∂L/∂z_l
        let act = self.layers[last].activation;
        let mut delta = grad_output.zip_zip_map(&trace.pre[last], &trace.post[last], |g, z, a| {
            g * act.derivative(z, a)
        });
        for l in (0..=last).rev() {
            let layer = &self.layers[l];
            let a_in = trace.layer_input(l);
            // An explicit transpose lets nalgebra use its blocked GEMM (`tr_mul` does not).
            let dw = delta.transpose() * a_in.as_ref();
            let db = DVector::from_iterator(delta.ncols(), delta.column_iter().map(|c| c.sum()));
            grads.push(LayerGradient {
                weights: dw,
                bias: db,
            });
            if l == 0 && !input_gradient && self.skip_features.is_empty() {
                break;
            }
            let mut d_in = &delta * &layer.weights;
            if l == last && !self.skip_features.is_empty() {
                let base = d_in.ncols() - self.skip_features.len();
                for (k, &j) in self.skip_features.iter().enumerate() {
                    let mut target = grad_x.column_mut(j);
                    target += d_in.column(base + k);
                }
                d_in = d_in.columns(0, base).into_owned();
            }
            if l == 0 {
                if input_gradient {
                    grad_x += d_in;
                }
            } else {
                let act = self.layers[l - 1].activation;
                delta = d_in.zip_zip_map(&trace.pre[l - 1], &trace.post[l - 1], |g, z, a| {
                    g * act.derivative(z, a)
                });
            }
        }
        grads.reverse();
        Ok((Gradients { layers: grads }, grad_x))
    }

    /// Loss (averaged as the loss defines) and its gradient w.r.t. every parameter, for a batch.
    /// Large batches are split across threads.
    pub fn loss_gradient(
        &self,
        x: &DMatrix<f64>,
        y: &DMatrix<f64>,
        loss: &dyn Loss,
    ) -> Result<(f64, Gradients), NnError> {
        self.check_input_cols(x.ncols())?;
        if y.nrows() != x.nrows() || y.ncols() != self.n_outputs() {
            return Err(NnError::shape(
                "targets",
                format!("({}, {})", x.nrows(), self.n_outputs()),
                format!("{:?}", y.shape()),
            ));
        }
        let norm = loss.normaliser(x.nrows(), y.ncols());
        let n = x.nrows();
        let chunks = self.n_chunks(n);
        let size = n.div_ceil(chunks);
        let run = |start: usize, len: usize| -> (f64, Gradients) {
            let xc = x.rows(start, len).into_owned();
            let yc = y.rows(start, len).into_owned();
            let trace = self.trace_serial(&xc);
            let (l, g) = loss.sum_and_gradient(trace.output(), &yc);
            let (grads, _) = self
                .backward_impl(&trace, &g, false)
                .expect("shapes checked above");
            (l, grads)
        };
        let parts: Vec<(f64, Gradients)> = if chunks == 1 {
            vec![run(0, n)]
        } else {
            (0..chunks)
                .into_par_iter()
                .filter_map(|c| {
                    let start = c * size;
                    (start < n).then(|| run(start, size.min(n - start)))
                })
                .collect()
        };
        let mut total = 0.0;
        let mut grads = Gradients::zeros_like(self);
        for (l, g) in &parts {
            total += l;
            grads.add_assign(g);
        }
        grads.scale(1.0 / norm);
        Ok((total / norm, grads))
    }

    /// Gradient step helper used by optimisers: `θ += f(θ, g)` for every parameter slice.
    pub(crate) fn for_each_param(
        &mut self,
        grads: &Gradients,
        mut f: impl FnMut(usize, &mut [f64], &[f64]),
    ) {
        let mut slot = 0;
        for (layer, g) in self.layers.iter_mut().zip(&grads.layers) {
            f(slot, layer.weights.as_mut_slice(), g.weights.as_slice());
            f(slot + 1, layer.bias.as_mut_slice(), g.bias.as_slice());
            slot += 2;
        }
    }
}

/// Builder for [`Mlp`] with seeded initialisation.
#[derive(Debug, Clone)]
pub struct MlpBuilder {
    n_inputs: usize,
    layers: Vec<(usize, Activation)>,
    skip: Vec<usize>,
    init: Init,
    fan_in_bias: bool,
    seed: u64,
}

impl MlpBuilder {
    /// Starts a network with `n_inputs` inputs.
    pub fn new(n_inputs: usize) -> Self {
        MlpBuilder {
            n_inputs,
            layers: Vec::new(),
            skip: Vec::new(),
            init: Init::default(),
            fan_in_bias: false,
            seed: 0,
        }
    }
    /// Appends a hidden layer.
    pub fn hidden(mut self, width: usize, activation: Activation) -> Self {
        self.layers.push((width, activation));
        self
    }
    /// Appends the output layer (same as `hidden`; reads better at the end of a chain).
    pub fn output(self, width: usize, activation: Activation) -> Self {
        self.hidden(width, activation)
    }
    /// Inputs copied into the last layer's input.
    pub fn skip_features(mut self, features: Vec<usize>) -> Self {
        self.skip = features;
        self
    }
    /// Weight initialisation.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Biases drawn from `U(±1/sqrt(fan_in))` (PyTorch's `nn.Linear` default) instead of 0.
    /// With zero biases every first-layer ReLU of a 1-D input has its kink at 0, which makes
    /// small 1-D regression problems fit badly.
    pub fn fan_in_bias(mut self, on: bool) -> Self {
        self.fan_in_bias = on;
        self
    }
    /// Seed of the initialisation RNG.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Builds and validates the network.
    pub fn build(self) -> Result<Mlp, NnError> {
        if self.layers.is_empty() {
            return Err(NnError::InvalidConfig(
                "add at least an output layer".into(),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let n = self.layers.len();
        let mut layers = Vec::with_capacity(n);
        let mut prev = self.n_inputs;
        for (i, &(width, act)) in self.layers.iter().enumerate() {
            let fan_in = prev + if i + 1 == n { self.skip.len() } else { 0 };
            if width == 0 || fan_in == 0 {
                return Err(NnError::InvalidConfig(format!(
                    "layer {i} would have shape {width}x{fan_in}"
                )));
            }
            let w = DMatrix::from_fn(width, fan_in, |_, _| {
                self.init.sample(fan_in, width, &mut rng)
            });
            let b = if self.fan_in_bias {
                let k = 1.0 / (fan_in as f64).sqrt();
                DVector::from_fn(width, |_, _| rng.gen_range(-k..=k))
            } else {
                DVector::zeros(width)
            };
            layers.push(Dense::new(w, b, act)?);
            prev = width;
        }
        Mlp::from_layers(self.n_inputs, layers, self.skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(skip: Vec<usize>) -> Mlp {
        MlpBuilder::new(4)
            .hidden(5, Activation::Tanh)
            .hidden(3, Activation::Relu)
            .output(2, Activation::Identity)
            .skip_features(skip)
            .seed(3)
            .build()
            .unwrap()
    }

    #[test]
    fn single_and_batch_forward_agree() {
        let n = net(vec![2, 0]);
        let x = DMatrix::from_fn(7, 4, |i, j| (i as f64 - 3.0) * 0.3 + j as f64 * 0.1);
        let yb = n.forward_batch(&x).unwrap();
        for i in 0..7 {
            let yi = n.forward(&x.row(i).transpose()).unwrap();
            for k in 0..2 {
                assert!((yi[k] - yb[(i, k)]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn skip_features_reach_the_last_layer_by_hand() {
        // One hidden identity layer with zero weights: output = w_skip * x_j + b.
        let l0 = Dense::new(
            DMatrix::zeros(2, 3),
            DVector::zeros(2),
            Activation::Identity,
        )
        .unwrap();
        let l1 = Dense::new(
            DMatrix::from_row_slice(1, 3, &[1.0, 1.0, 2.0]),
            DVector::from_vec(vec![0.5]),
            Activation::Identity,
        )
        .unwrap();
        let n = Mlp::from_layers(3, vec![l0, l1], vec![1]).unwrap();
        let y = n.forward(&DVector::from_vec(vec![9.0, 4.0, 9.0])).unwrap();
        assert_eq!(y[0], 8.5);
    }

    #[test]
    fn invalid_shapes_are_rejected() {
        let l0 = Dense::new(DMatrix::zeros(2, 3), DVector::zeros(2), Activation::Relu).unwrap();
        let l1 = Dense::new(DMatrix::zeros(1, 3), DVector::zeros(1), Activation::Relu).unwrap();
        assert!(Mlp::from_layers(3, vec![l0.clone(), l1], vec![]).is_err());
        assert!(Mlp::from_layers(3, vec![l0], vec![5]).is_err());
        assert!(Dense::new(DMatrix::zeros(2, 3), DVector::zeros(3), Activation::Relu).is_err());
        let n = net(vec![]);
        assert!(n.forward(&DVector::zeros(3)).is_err());
        let mut n = n;
        assert!(n.layer_mut(0).set_weights(DMatrix::zeros(1, 1)).is_err());
    }

    #[test]
    fn summary_names_the_architecture() {
        assert_eq!(
            net(vec![1]).summary(),
            "4-[5 tanh]-[3 relu]-[2 identity] skip[1]"
        );
    }
}
