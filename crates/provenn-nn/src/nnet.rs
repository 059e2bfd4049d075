//! The `.nnet` text format of the ACAS Xu networks (Reluplex/Marabou).
//!
//! Layout: `//` comment lines; `layers,inputs,outputs,max_width`; the layer sizes; a legacy
//! flag line; input minima; input maxima; means (inputs, then one for the outputs); ranges
//! (same); then for each layer its weight rows followed by its biases, one per line. Hidden
//! layers are ReLU, the last is linear. Inputs are normalised as `(x − mean)/range` and outputs
//! de-normalised as `y·range + mean`; both maps are folded into the first and last layers on
//! import. Inputs are clipped to `[min, max]` by the format's reference implementation; the
//! imported [`Mlp`] has no clipping, so it agrees with it on the box `[min, max]`, which
//! [`NnetModel::domain`] returns.
use nalgebra::{DMatrix, DVector};

use crate::{Activation, Dense, Mlp, NnError};

/// An imported `.nnet` network and its input box.
#[derive(Debug, Clone, PartialEq)]
pub struct NnetModel {
    /// The network, normalisation folded in (inputs and outputs in raw units).
    pub net: Mlp,
    /// Input box `(min, max)` per input.
    pub domain: Vec<(f64, f64)>,
}

fn bad(line: usize, msg: impl Into<String>) -> NnError {
    NnError::InvalidConfig(format!(".nnet line {line}: {}", msg.into()))
}

/// Parses `.nnet` text.
pub fn read_nnet(text: &str) -> Result<NnetModel, NnError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with("//"));
    let mut row = |what: &str| -> Result<(usize, Vec<f64>), NnError> {
        let (ln, l) = lines
            .next()
            .ok_or_else(|| bad(0, format!("file ends before the {what}")))?;
        let v = l
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .map_err(|_| bad(ln, format!("`{s}` is not a number in the {what}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(bad(ln, format!("non-finite value in the {what}")));
        }
        Ok((ln, v))
    };
    let (ln, head) = row("header")?;
    let as_count = |v: f64| (v >= 1.0 && v.fract() == 0.0 && v <= 1e6).then_some(v as usize);
    let [n_layers, n_in, n_out] = match head.get(..3) {
        Some([a, b, c]) => [as_count(*a), as_count(*b), as_count(*c)]
            .map(|x| x.ok_or_else(|| bad(ln, "layer and size counts must be positive integers"))),
        _ => return Err(bad(ln, "expected `layers,inputs,outputs,max_width`")),
    };
    let (n_layers, n_in, n_out) = (n_layers?, n_in?, n_out?);
    let (ln, sizes) = row("layer sizes")?;
    let sizes: Vec<usize> = sizes
        .iter()
        .map(|&v| as_count(v).ok_or_else(|| bad(ln, "layer sizes must be positive integers")))
        .collect::<Result<_, _>>()?;
    if sizes.len() != n_layers + 1 || sizes[0] != n_in || sizes[n_layers] != n_out {
        return Err(bad(
            ln,
            format!(
                "{} layer sizes do not match {n_layers} layers of {n_in} → {n_out}",
                sizes.len()
            ),
        ));
    }
    row("legacy flag")?;
    let (ln, mins) = row("input minima")?;
    let (_, maxs) = row("input maxima")?;
    let (_, means) = row("means")?;
    let (_, ranges) = row("ranges")?;
    if mins.len() != n_in
        || maxs.len() != n_in
        || means.len() != n_in + 1
        || ranges.len() != n_in + 1
    {
        return Err(bad(ln, "normalisation lines have the wrong lengths"));
    }
    if ranges.contains(&0.0) || mins.iter().zip(&maxs).any(|(a, b)| a > b) {
        return Err(bad(ln, "zero range or min > max"));
    }
    let mut layers = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
        let mut w = DMatrix::zeros(fan_out, fan_in);
        for i in 0..fan_out {
            let (ln, r) = row("weights")?;
            if r.len() != fan_in {
                return Err(bad(
                    ln,
                    format!("weight row of {} values, expected {fan_in}", r.len()),
                ));
            }
            w.row_mut(i).copy_from_slice(&r);
        }
        let mut b = DVector::zeros(fan_out);
        for i in 0..fan_out {
            let (ln, r) = row("biases")?;
            if r.len() != 1 {
                return Err(bad(ln, "expected one bias per line"));
            }
            b[i] = r[0];
        }
        if l == 0 {
            // W·((x − μ)/r) + b = (W/r)·x + (b − W·(μ/r))
            let inv: DVector<f64> =
                DVector::from_iterator(n_in, ranges[..n_in].iter().map(|r| 1.0 / r));
            let mu: DVector<f64> = DVector::from_iterator(
                n_in,
                means[..n_in].iter().zip(inv.iter()).map(|(m, i)| m * i),
            );
            b -= &w * mu;
            for j in 0..n_in {
                w.column_mut(j).scale_mut(inv[j]);
            }
        }
        if l + 1 == n_layers {
            let (m, r) = (means[n_in], ranges[n_in]);
            w *= r;
            b *= r;
            b.add_scalar_mut(m);
        }
        let act = if l + 1 == n_layers {
            Activation::Identity
        } else {
            Activation::Relu
        };
        layers.push(Dense::new(w, b, act)?);
    }
    if let Some((ln, _)) = lines.next() {
        return Err(bad(ln, "unexpected data after the last layer"));
    }
    Ok(NnetModel {
        net: Mlp::from_layers(n_in, layers, vec![])?,
        domain: mins.into_iter().zip(maxs).collect(),
    })
}

/// Writes a ReLU network (ReLU hidden layers, linear output, no skip features) as `.nnet`
/// with identity normalisation (means 0, ranges 1) and the given input box. Values are
/// written in Rust's shortest round-trip form, so reading the file back gives the same
/// weights exactly.
pub fn write_nnet(net: &Mlp, domain: &[(f64, f64)]) -> Result<String, NnError> {
    let layers = net.layers();
    let last = layers.len() - 1;
    if !net.skip_features().is_empty()
        || layers.iter().enumerate().any(|(l, d)| {
            d.activation()
                != if l == last {
                    Activation::Identity
                } else {
                    Activation::Relu
                }
        })
    {
        return Err(NnError::InvalidConfig(
            ".nnet holds ReLU hidden layers and a linear output layer, without skip features"
                .into(),
        ));
    }
    if domain.len() != net.n_inputs() {
        return Err(NnError::shape("domain", net.n_inputs(), domain.len()));
    }
    let n_in = net.n_inputs();
    let mut sizes = vec![n_in];
    sizes.extend(layers.iter().map(Dense::outputs));
    let join = |v: &mut dyn Iterator<Item = f64>| v.map(|x| format!("{x:?},")).collect::<String>();
    let mut s = String::from("// written by provenn\n");
    s.push_str(&format!(
        "{},{},{},{},\n",
        layers.len(),
        n_in,
        net.n_outputs(),
        sizes.iter().max().unwrap_or(&0)
    ));
    s.push_str(&sizes.iter().map(|v| format!("{v},")).collect::<String>());
    s.push_str("\n0,\n");
    s.push_str(&join(&mut domain.iter().map(|d| d.0)));
    s.push('\n');
    s.push_str(&join(&mut domain.iter().map(|d| d.1)));
    s.push('\n');
    s.push_str(&join(&mut std::iter::repeat_n(0.0, n_in + 1)));
    s.push('\n');
    s.push_str(&join(&mut std::iter::repeat_n(1.0, n_in + 1)));
    s.push('\n');
    for d in layers {
        for r in d.weights().row_iter() {
            s.push_str(&join(&mut r.iter().copied()));
            s.push('\n');
        }
        for v in d.bias().iter() {
            s.push_str(&format!("{v:?},\n"));
        }
    }
    Ok(s)
}
